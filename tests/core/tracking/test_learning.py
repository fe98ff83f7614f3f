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
from h4tracks.core.tracking.global_link import DEFAULT_WEIGHTS, DIVISION_FEATURES
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


def budding() -> tuple[np.ndarray, np.ndarray]:
    """Budding yeast: 6 mothers (radius 9) stay put and each buds once — a daughter of
    radius 3 growing 0.5 px per frame, touching her mother — mothers 1-3 in frames 1-3,
    mothers 4-6 in frames 7-9.

    The default division weights expect two daughters of half the mother's size on opposite
    sides, so every bud becomes a new track: a mistake only learnt division weights fix.
    """
    n_t = 12
    movie = np.zeros((n_t, 150, 220), np.uint16)
    birth = [1, 2, 3, 7, 8, 9]
    edges = []
    for k in range(6):
        cy, cx = 40 + 70 * (k // 3), 40 + 70 * (k % 3)
        for t in range(n_t):
            disk(movie[t], cy, cx, 9, k + 1)
            edges += [(t, k + 1, t + 1, k + 1)] if t < n_t - 1 else []
            if t >= birth[k]:
                r = 3 + 0.5 * (t - birth[k])
                disk(movie[t], cy - 9 - r, cx, r, 11 + k)
                edges += [(t, 11 + k, t + 1, 11 + k)] if t < n_t - 1 else []
        edges.append((birth[k] - 1, k + 1, birth[k], 11 + k))
    return movie, np.array(sorted(edges), np.int64)


def test_learning_division_weights_finds_asymmetric_divisions():
    movie, truth = budding()
    auto = track_global(movie, PARAMS)
    truth_set = {((a, b), (c, d)) for a, b, c, d in truth.tolist()}
    missed = truth_set - graph_edges(auto)
    assert len(missed) == 6 and not graph_edges(auto) - truth_set  # every bud starts a track
    cur = [0, 1, 2, 3, 4]  # the user links buds 1-3 to their mothers
    auto_e = auto.edge_array()
    keep = ~(np.isin(auto_e[:, 0], cur) & np.isin(auto_e[:, 2], cur))
    fixed = truth[np.isin(truth[:, 0], cur) & np.isin(truth[:, 2], cur)]
    p = _project(movie, np.concatenate([fixed, auto_e[keep]]), cur)
    w = fit_weights(p, cur, PARAMS)
    default = dict(DEFAULT_WEIGHTS)
    assert w["div_balance"] < default["div_balance"]  # unequal daughters became acceptable
    assert graph_edges(retrack_with_corrections(p, params=PARAMS)) == truth_set
    # the link weights alone do not find the buds of frames 7-9: the division fit does
    links_only = {**w, **{k: default[k] for k in DIVISION_FEATURES}}
    g = track_global(movie, PARAMS.model_copy(update={"weights": links_only}),
                     fixed_edges=fixed, forbidden_nodes_frames=cur)
    assert {e for e in truth_set - graph_edges(g) if e[0][0] > 4} == {
        e for e in missed if e[0][0] > 4}


def test_learning_without_divisions_keeps_division_weights():
    movie, truth = leapfrog()
    p = _project(movie, truth, [0, 1, 2])
    w = fit_weights(p, params=PARAMS.model_copy(update={"divisions": False}))
    default = dict(DEFAULT_WEIGHTS)
    assert all(w[k] == default[k] for k in DIVISION_FEATURES)
