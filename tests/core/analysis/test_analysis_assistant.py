"""Curation assistant: each flag on a constructed graph, and no false alarms on clean tracks."""

from __future__ import annotations

import numpy as np
import pytest

from h4tracks.core.analysis.assistant import (
    KINDS,
    AssistantParams,
    Flag,
    find_suspicious,
    project_suspicious,
)
from h4tracks.core.graph import TrackGraph
from h4tracks.core.project import Project
from h4tracks.datasets.synthetic import make_movie
from h4tracks.errors import InputError

SHAPE = (10, 100, 100)


def _graph(tracks: list[list[tuple[int, float, float, float]]],
           extra_edges: list[tuple[int, int, int, int]] = ()) -> TrackGraph:
    """A graph from tracks given as [(t, y, x, area), ...]; label = track index + 1 + 100 * k
    for the k-th node so (t, label) is unique; consecutive nodes of a track are linked."""
    t, lab, y, x, area, edges = [], [], [], [], [], list(extra_edges)
    for i, tr in enumerate(tracks):
        prev = None
        for tt, yy, xx, aa in tr:
            t.append(tt)
            lab.append(i + 1)
            y.append(yy)
            x.append(xx)
            area.append(aa)
            if prev is not None:
                edges.append((prev, i + 1, tt, i + 1))
            prev = tt
    nodes = {"t": np.array(t), "label": np.array(lab), "y": np.array(y, float),
             "x": np.array(x, float), "area": np.array(area)}
    return TrackGraph.from_arrays(nodes, np.array(edges, np.int64).reshape(-1, 4))


def _walk(y0: float, x0: float, t0: int = 0, t1: int = 10, dx: float = 1.0,
          area: float = 100.0) -> list[tuple[int, float, float, float]]:
    return [(t, y0, x0 + dx * (t - t0), area) for t in range(t0, t1)]


def test_clean_full_tracks_raise_no_flag():
    g = _graph([_walk(30, 20), _walk(60, 30), _walk(50, 50, dx=1.2)])
    rep = find_suspicious(g, SHAPE)
    assert rep.total == 0
    assert set(rep.counts()) == set(KINDS)


def test_early_end_mid_image_is_flagged_at_border_is_not():
    mid = _walk(50, 40, t1=5)  # ends at frame 4 in the middle
    edge = [(t, 50.0, 90.0 + 2 * t, 100.0) for t in range(0, 5)]  # leaves at x = 98
    g = _graph([mid, edge, _walk(20, 20)])
    rep = find_suspicious(g, SHAPE, AssistantParams(border_margin=5))
    assert [(f.t, f.label) for f in rep["early_end"]] == [(4, 1)]
    f = rep["early_end"][0]
    assert isinstance(f, Flag) and f.y == 50 and f.x == 44 and "ends at frame 4" in f.reason


def test_late_start_but_not_division_daughters():
    late = _walk(50, 40, t0=3)
    # a division at frame 4: mother track 2 ends, daughters 3 and 4 start at frame 5
    mother = _walk(30, 30, t1=5)
    d1 = [(t, 25.0, 30.0 + t, 50.0) for t in range(5, 10)]
    d2 = [(t, 35.0, 30.0 + t, 50.0) for t in range(5, 10)]
    g = _graph([late, mother, d1, d2], [(4, 2, 5, 3), (4, 2, 5, 4)])
    rep = find_suspicious(g, SHAPE, AssistantParams(area_ratio=5))
    assert [(f.t, f.label) for f in rep["late_start"]] == [(3, 1)]
    assert rep["early_end"] == []  # the mother divides, it does not end


def test_area_jump_and_small_cell():
    jump = [(t, 50.0, 30.0 + t, 100.0 if t < 5 else 260.0) for t in range(10)]
    tiny = [(t, 20.0, 20.0 + t, 100.0 if t != 6 else 12.0) for t in range(10)]
    g = _graph([jump, tiny, _walk(80, 40)])
    rep = find_suspicious(g, SHAPE)
    jumps = [(f.t, f.label) for f in rep["area_jump"]]
    assert (5, 1) in jumps
    assert (6, 2) in jumps and (7, 2) in jumps  # into and out of the tiny mask
    assert [(f.t, f.label) for f in rep["small_cell"]] == [(6, 2)]
    assert "median 100" in rep["small_cell"][0].reason


def test_speed_jump_uses_robust_z_and_ratio():
    rng = np.random.default_rng(0)
    tracks = []
    for i in range(6):
        tr = [(t, 20.0 + 12 * i, 20.0 + t + rng.normal(0, 0.2), 100.0) for t in range(10)]
        tracks.append(tr)
    # track 1 teleports by 30 px between frames 6 and 7
    tracks[0] = [(t, yy, xx + (30.0 if t >= 7 else 0.0), a) for t, yy, xx, a in tracks[0]]
    rep = find_suspicious(_graph(tracks), SHAPE)
    assert [(f.t, f.label) for f in rep["speed_jump"]] == [(7, 1)]
    # a stricter ratio guard silences it
    assert find_suspicious(_graph(tracks), SHAPE, AssistantParams(speed_ratio=100))[
        "speed_jump"] == []


def test_short_tracks_and_unlinked_cells():
    short = _walk(50, 40, t0=4, t1=6)  # 2 detections, linked
    lone = [(3, 70.0, 70.0, 100.0)]  # a cell no track holds
    g = _graph([_walk(30, 20), _walk(80, 20), short, lone])
    rep = find_suspicious(g, SHAPE)
    assert [(f.t, f.label) for f in rep["short_track"]] == [(4, 3)]
    assert [(f.t, f.label) for f in rep["unlinked"]] == [(3, 4)]
    # before tracking every cell is unlinked: no flood of "unlinked" flags
    nodes = {k: v for k, v in g.node_table().items() if k != "track_id"}
    untracked = TrackGraph.from_arrays(nodes)
    assert find_suspicious(untracked, SHAPE)["unlinked"] == []


def test_params_are_validated_and_empty_graph():
    with pytest.raises(InputError, match="area_ratio"):
        AssistantParams(area_ratio=1.0)
    with pytest.raises(InputError, match="border_margin"):
        AssistantParams(border_margin=-1)
    with pytest.raises(InputError, match="image_shape"):
        find_suspicious(TrackGraph(), (5,))
    assert find_suspicious(TrackGraph(), SHAPE).total == 0


def test_project_wrapper_on_synthetic_movie():
    m = make_movie(n_frames=8, shape=(96, 96), n_cells=6, radius=7, seed=1)
    p = Project(m.image, m.labels, graph=TrackGraph.from_ctc(m.labels, m.lineage))
    rep = project_suspicious(p)
    assert set(rep.flags) == set(KINDS)
    d = rep.as_dict()
    assert d["params"]["border_margin"] == 10.0
