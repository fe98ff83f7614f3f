"""Tests of learning the global tracker's weights from curated frames."""

from __future__ import annotations

import numpy as np
import pytest
from _tracking_data import graph_edges

from h4tracks.core.evaluation import evaluate_tracking
from h4tracks.core.graph import TrackGraph
from h4tracks.core.project import Project
from h4tracks.core.tracking import (
    GlobalParams,
    detect,
    fit_weights,
    retrack_with_corrections,
    track_global,
)
from h4tracks.errors import InputError


def disk(frame: np.ndarray, cy: float, cx: float, r: float, value: int) -> None:
    yy, xx = np.ogrid[: frame.shape[0], : frame.shape[1]]
    frame[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = value


def leapfrog() -> tuple[np.ndarray, np.ndarray]:
    """Pairs of a big and a small cell swapping places every frame.

    Distance and mask overlap both point to the wrong partner (the small cell lands inside
    the big cell's old mask); only the area says who is who: a systematic mistake of the
    default weights that the curated frames can teach away.
    """
    n_t = 10
    movie = np.zeros((n_t, 160, 160), np.uint16)
    for t in range(n_t):
        for k, cy in enumerate((30, 80, 130)):
            left, right = (40, 62) if t % 2 == 0 else (62, 40)
            disk(movie[t], cy, left, 10, 2 * k + 1)  # big cell
            disk(movie[t], cy, right, 4, 2 * k + 2)  # small cell
            disk(movie[t], cy, 120, 7, 10 + k)  # a still cell, linked the same by any weights
    truth = np.array([(t, v, t + 1, v) for t in range(n_t - 1) for v in range(1, 7)]
                     + [(t, v, t + 1, v) for t in range(n_t - 1) for v in (10, 11, 12)])
    return movie, truth


def _project(movie: np.ndarray, edges: np.ndarray, curated: list[int]) -> Project:
    p = Project(movie.astype(np.uint16), movie)
    det = detect(movie)
    p.graph = TrackGraph.from_arrays(det.node_columns(), edges)
    p.set_curated(curated)
    return p


PARAMS = GlobalParams(max_distance=30, max_gap=0, motion="none")


def test_learning_fixes_systematic_mistake_and_keeps_curated_links():
    movie, truth = leapfrog()
    auto = track_global(movie, PARAMS)
    truth_set = {((a, b), (c, d)) for a, b, c, d in truth.tolist()}
    assert graph_edges(auto) != truth_set  # the default weights swap big and small cells
    # the user corrected frames 0..3 (links between them are the truth) — elsewhere: auto
    cur = [0, 1, 2, 3]
    auto_e = auto.edge_array()
    keep = ~(np.isin(auto_e[:, 0], cur) & np.isin(auto_e[:, 2], cur))
    fixed = truth[np.isin(truth[:, 0], cur) & np.isin(truth[:, 2], cur)]
    p = _project(movie, np.concatenate([fixed, auto_e[keep]]), cur)
    w = fit_weights(p, cur, PARAMS)
    assert w["area"] > 2.0  # the area change became the decisive feature
    g = retrack_with_corrections(p, params=PARAMS)
    e = graph_edges(g)
    assert {((a, b), (c, d)) for a, b, c, d in fixed.tolist()} <= e  # curated links kept
    assert not any(a in cur and c in cur and ((a, b), (c, d)) not in truth_set
                   for (a, b), (c, d) in e)
    assert e == truth_set  # the mistake is fixed in the frames nobody curated
    ref = np.column_stack([truth, np.zeros(len(truth), np.int64)])
    tra_before = evaluate_tracking(movie, p.graph, movie, ref, frames=cur).tra
    tra_after = evaluate_tracking(movie, g, movie, ref, frames=cur).tra
    assert tra_after >= tra_before
    assert evaluate_tracking(movie, g, movie, ref).tra == 1.0


def test_learning_needs_two_consecutive_frames_with_links():
    movie, truth = leapfrog()
    p = _project(movie, truth, [2])
    with pytest.raises(InputError, match="2 consecutive"):
        retrack_with_corrections(p)
    with pytest.raises(InputError, match="2 consecutive"):
        fit_weights(p, [1, 3])
    empty = _project(movie, np.zeros((0, 4), np.int64), [0, 1])
    with pytest.raises(InputError, match="no links"):
        retrack_with_corrections(empty)
    with pytest.raises(InputError, match="no links"):
        fit_weights((movie, empty.graph), [0, 1])
