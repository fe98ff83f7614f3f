"""Tests of the mask-overlap tracker and single-cell tracking."""

from __future__ import annotations

import numpy as np
import pytest
from _tracking_data import graph_edges, gt_edges, on_moving_stage
from pydantic import ValidationError

from h4tracks.core.graph import TrackGraph
from h4tracks.core.measure import measure_movie
from h4tracks.core.project import LabelMovie, Project
from h4tracks.core.tracking import OverlapParams, track_overlap, track_single_cell
from h4tracks.core.tracking.overlap import frame_overlaps
from h4tracks.errors import H4TracksError, InputError


def division_movie() -> np.ndarray:
    """t0: cell 1 (big) and 5; t1: 1 split into 2 (left) and 3 (right), 5 -> 6;
    t2: 2 -> 7, 3 -> 8, 6 vanishes; t3: only a cell (9) that overlaps nothing."""
    lab = np.zeros((4, 20, 30), np.uint32)
    lab[0, 2:10, 2:14] = 1
    lab[0, 14:18, 20:26] = 5
    lab[1, 2:10, 2:8] = 2
    lab[1, 2:10, 8:15] = 3
    lab[1, 14:18, 21:27] = 6
    lab[2, 3:10, 2:8] = 7
    lab[2, 3:10, 8:15] = 8
    lab[3, 15:18, 0:3] = 9
    return lab


def test_frame_overlaps_matches_brute_force(dense_movie):
    a, b = dense_movie.labels[4], dense_movie.labels[5]
    la, lb, shared = frame_overlaps(a, b)
    ref = {(i, j): int(np.count_nonzero((a == i) & (b == j)))
           for i in np.unique(a[a > 0]) for j in np.unique(b[b > 0])}
    ref = {k: v for k, v in ref.items() if v}
    pairs = zip(la.tolist(), lb.tolist(), strict=True)
    assert dict(zip(pairs, shared.tolist(), strict=True)) == ref
    big = np.zeros((2, 4, 4), np.uint32)
    big[0, 0, 0] = big[1, 0, 0] = 2**32 - 1
    la, lb, shared = frame_overlaps(big[0], big[1])
    assert (la.tolist(), lb.tolist(), shared.tolist()) == ([2**32 - 1], [2**32 - 1], [1])


def test_divisions_and_one_to_one():
    lab = division_movie()
    g = track_overlap(lab, OverlapParams())
    assert graph_edges(g) == {((0, 1), (1, 2)), ((0, 1), (1, 3)), ((0, 5), (1, 6)),
                              ((1, 2), (2, 7)), ((1, 3), (2, 8))}
    assert g.n_divisions == 1
    # nodes are measured like the project measures them
    ref = measure_movie(lab)
    assert all(np.array_equal(g.node_table()[c], ref[c]) for c in ("t", "label", "y", "x"))
    nodiv = graph_edges(track_overlap(lab, OverlapParams(divisions=False)))
    assert len(nodiv) == 4 and ((0, 5), (1, 6)) in nodiv
    # IoU of the daughters with the mother is below 0.5: no link at all at that threshold
    iou = graph_edges(track_overlap(lab, OverlapParams(measure="iou", min_overlap=0.6)))
    assert iou == {((0, 5), (1, 6)), ((1, 2), (2, 7)), ((1, 3), (2, 8))}


def test_conflict_is_resolved_globally():
    # A (1) overlaps X (3) by 10 px and Y (4) by 12; B (2) overlaps only Y, by 11 px.
    # Greedy (best pair first) would give A-Y and leave B unlinked; the LAP gives A-X, B-Y.
    lab = np.zeros((2, 10, 60), np.uint32)
    lab[0, 0, 0:22] = 1
    lab[0, 1, 30:41] = 2
    lab[1, 0, 0:10] = 3
    lab[1, 0, 10:22] = 4
    lab[1, 1, 30:41] = 4
    p = OverlapParams(measure="iou", min_overlap=0.2, divisions=False)
    assert graph_edges(track_overlap(lab, p)) == {((0, 1), (1, 3)), ((0, 2), (1, 4))}


def test_tracks_synthetic_movie(movie):
    gt = gt_edges(movie.labels, movie.lineage)
    calls = []
    g = track_overlap(LabelMovie(movie.labels), progress=lambda d, n: calls.append((d, n)))
    got = graph_edges(g)
    assert len(got & gt) / len(gt) > 0.95 and len(got - gt) / len(got) < 0.05
    assert calls == [(i, 20) for i in range(1, 21)]
    with pytest.raises(H4TracksError, match="Tracking cancelled"):
        track_overlap(movie.labels, cancel=lambda: True)
    with pytest.raises(InputError):
        track_overlap(np.zeros((4, 4)))


def test_stage_jumps_are_taken_out(movie, monkeypatch):
    """A stage jumping 42 px every 4 frames (cells ~10 px across) leaves no cell overlapping
    itself: with the drift compensated (the default) the links are the still movie's, without
    it the tracks break at every jump. On the still movie no frame pair is compared."""
    from h4tracks.core.tracking import overlap

    assert OverlapParams().drift is True
    moved, steps = on_moving_stage(movie.labels)
    compared: list[int] = []
    drift_of = overlap.frame_drift
    monkeypatch.setattr(overlap, "frame_drift",
                        lambda a, b, *s: compared.append(1) or drift_of(a, b, *s))
    still = graph_edges(track_overlap(movie.labels))
    assert still == graph_edges(track_overlap(movie.labels, OverlapParams(drift=False)))
    n_still = len(compared)
    assert n_still <= 2  # ten fast cells: at most a pair or two look moved
    assert graph_edges(track_overlap(moved)) == still
    assert len(compared) - n_still >= int((np.abs(steps).sum(axis=1) > 0).sum())
    plain = graph_edges(track_overlap(moved, OverlapParams(drift=False)))
    assert len(plain & still) < 0.9 * len(still)


def test_single_cell_follows_forward():
    lab = division_movie()
    project = Project(lab.astype(np.uint16), lab)
    g = project.graph
    # daughter 2 lies inside the mother (fraction 1) while 3 sticks out (48/56)
    assert track_single_cell(project, g, 0, 1) == [((0, 1), (1, 2)), ((1, 2), (2, 7))]
    assert track_single_cell(lab, g, 1, 3) == [((1, 3), (2, 8))]
    assert track_single_cell(lab, g, 0, 5) == [((0, 5), (1, 6))]  # 6 overlaps nothing next
    assert track_single_cell(lab, g, 2, 7) == []  # nothing overlaps in the last frame
    g.add_edge((1, 2), (2, 7))
    assert track_single_cell(lab, g, 0, 1) == [((0, 1), (1, 2))]  # 2 already continues
    g.add_edge((0, 1), (1, 3))
    assert track_single_cell(lab, g, 0, 1) == []  # 1 already has a successor
    g2 = TrackGraph.from_arrays(measure_movie(lab))
    g2.add_edge((0, 5), (1, 2))
    assert track_single_cell(lab, g2, 0, 1) == []  # 2 already has a predecessor
    with pytest.raises(InputError, match="no cell"):
        track_single_cell(lab, g, 0, 4)
    with pytest.raises(InputError):
        track_single_cell(lab, g, 9, 1)


def test_single_cell_on_synthetic_movie(movie):
    project = Project(movie.image, movie.labels)
    tid = int(movie.lineage[0, 0])
    last = int(movie.lineage[0, 2])
    edges = track_single_cell(project, project.graph, 0, tid, OverlapParams())
    assert edges[:last] == [((t, tid), (t + 1, tid)) for t in range(last)]
    daughters = set(movie.lineage[movie.lineage[:, 3] == tid, 0].tolist())
    if len(edges) > last:  # the cell divided: it is followed into one daughter
        assert edges[last][0] == (last, tid) and edges[last][1][1] in daughters


def test_stage_jumping_every_frame(movie, monkeypatch):
    """A jump at every frame pair: each pair is measured and each frame's outline spectrum is
    computed once (kept for the next pair, never the shifted copy's), and the links are
    still the still movie's."""
    from h4tracks.core.tracking import overlap

    moved, _ = on_moving_stage(movie.labels, every=1)
    still = graph_edges(track_overlap(movie.labels))
    spectra: list[int] = []
    spectrum = overlap.outline_spectrum
    monkeypatch.setattr(overlap, "outline_spectrum",
                        lambda f: spectra.append(1) or spectrum(f))
    assert graph_edges(track_overlap(moved)) == still
    assert len(spectra) == len(moved)


def test_single_cell_is_followed_through_stage_jumps(movie):
    """Stage jumps of 42 px every 4 frames: the clicked cell is followed as on a still stage
    (the shift measured at the jumps); without drift it is lost, or led onto another cell
    that the jump laid on its place, at the first jump."""
    moved, _ = on_moving_stage(movie.labels)
    first = movie.lineage[movie.lineage[:, 1] == 0]
    tid, last = (int(v) for v in first[np.argmax(first[:, 2]), [0, 2]])
    assert last >= 9  # the track crosses the jumps into frames 4 and 8
    still = track_single_cell(movie.labels, Project(movie.image, movie.labels).graph, 0, tid)
    assert len(still) >= 8
    project = Project(np.zeros(moved.shape, np.uint16), moved)
    assert track_single_cell(moved, project.graph, 0, tid) == still
    plain = track_single_cell(moved, project.graph, 0, tid, OverlapParams(drift=False))
    assert plain[:3] == still[:3] and plain[3:4] != still[3:4]  # lost or led astray


def test_params_validated():
    for bad in ({"min_overlap": 0}, {"min_overlap": 1.5}, {"measure": "dice"}, {"x": 1}):
        with pytest.raises(ValidationError):
            OverlapParams(**bad)
