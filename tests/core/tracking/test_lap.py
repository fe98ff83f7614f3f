"""Tests of the LAP tracker against laptrack (the oracle) and the ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from _tracking_data import (
    graph_edges,
    gt_edges,
    laptrack_edges,
    on_moving_stage,
    random_walk_points,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from h4tracks.core.tracking import Detections, LapParams, detect, track_lap
from h4tracks.core.tracking.lap import max_weight_matching
from h4tracks.errors import H4TracksError, InputError

SETTINGS = [
    LapParams(max_distance=20),
    LapParams(max_distance=20, max_gap=2),
    LapParams(max_distance=20, divisions=True),
    LapParams(max_distance=15, max_gap=1, gap_distance=25, divisions=True,
              division_distance=12),
]


@pytest.mark.parametrize("params", SETTINGS, ids=lambda p: f"gap{p.max_gap}-div{p.divisions}")
@pytest.mark.parametrize("which", ["movie", "dense_movie"])
def test_same_edges_as_laptrack_on_synthetic_movies(which, params, request):
    m = request.getfixturevalue(which)
    det = detect(m.labels)
    g = track_lap(det, params)
    assert graph_edges(g) == laptrack_edges(det, params)
    # nodes are the cells of the label image, keyed by (t, label)
    tab = g.node_table()
    assert np.array_equal(tab["label"], det.label) and np.array_equal(tab["y"], det.y)


def test_tracks_synthetic_movie_well(movie):
    """Frame links on a sparse movie are the ground truth; divisions are mostly found."""
    gt = gt_edges(movie.labels, movie.lineage)
    g = track_lap(movie.labels, LapParams(max_distance=20, divisions=True))
    got = graph_edges(g)
    assert len(got & gt) / len(gt) > 0.95
    assert len(got - gt) / len(got) < 0.05
    assert g.n_divisions >= 10


@pytest.mark.parametrize("seed", range(4))
def test_same_edges_as_laptrack_on_random_walks(seed):
    pts = random_walk_points(25, 80, 250.0, 4.0, seed, drop=0.08, split=0.01)
    det = Detections.from_points(pts)
    for p in (LapParams(max_distance=14), LapParams(max_distance=14, max_gap=3, gap_distance=20),
              LapParams(max_distance=14, max_gap=1, divisions=True, division_distance=9)):
        assert graph_edges(track_lap(det, p)) == laptrack_edges(det, p)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 30),
    frames=st.integers(1, 6),
    max_gap=st.integers(0, 2),
    divisions=st.booleans(),
)
def test_random_clouds_match_laptrack(seed, n, frames, max_gap, divisions):
    rng = np.random.default_rng(seed)
    # continuous coordinates: exact ties of the objective (where two optimal solutions may
    # legitimately differ) have probability zero
    pts = [rng.uniform(0, 60, (rng.integers(0, n + 1), 2)) for _ in range(frames)]
    det = Detections.from_points(pts)
    p = LapParams(max_distance=12, max_gap=max_gap, divisions=divisions)
    g = track_lap(det, p)
    assert len(g) == len(det)
    if len(det):  # laptrack itself fails on a movie without points
        assert graph_edges(g) == laptrack_edges(det, p)


def test_hand_made_gap_and_division():
    # cell 1 moves right, is missed in frame 2 and back in frame 3 (plus a newcomer near it);
    # cell 2 divides between frames 1 and 2
    pts = [
        np.array([[10.0, 10.0], [50.0, 50.0]]),
        np.array([[10.0, 12.0], [50.0, 51.0]]),
        np.array([[47.0, 51.0], [53.1, 51.0]]),
        np.array([[10.0, 15.0], [10.0, 16.5], [47.0, 52.0], [53.1, 52.0]]),
    ]
    det = Detections.from_points(pts)
    plain = graph_edges(track_lap(det, LapParams(max_distance=5)))
    assert plain == {((0, 1), (1, 1)), ((0, 2), (1, 2)), ((1, 2), (2, 1)),
                     ((2, 1), (3, 3)), ((2, 2), (3, 4))}
    p = LapParams(max_distance=5, max_gap=1, divisions=True)
    full = track_lap(det, p)
    # segment costs 9 (gap), 9.61 (split), 20.25 (gap to the newcomer): the alternative cost is
    # 1.05 × their 90th percentile ("lower") = 1.05 × 9.61, so only the first two are taken
    assert graph_edges(full) == plain | {((1, 1), (3, 1)), ((1, 2), (2, 2))}
    assert graph_edges(full) == laptrack_edges(det, p)
    assert full.n_divisions == 1
    assert full.track_id((1, 1)) == full.track_id((3, 1))
    # without gap closing the gap stays open; max_gap=0 would not bridge it
    assert ((1, 1), (3, 1)) not in graph_edges(track_lap(det, LapParams(max_distance=5,
                                                                        divisions=True)))


def test_area_weight_prefers_similar_sizes():
    # the small cell of frame 1 is slightly closer to the big cell of frame 0
    pts = [np.array([[0.0, 0.0], [0.0, 10.0]]), np.array([[0.0, 4.0], [0.0, 5.5]])]
    areas = [np.array([100, 20]), np.array([21, 100])]
    det = Detections.from_points(pts, areas)
    near = graph_edges(track_lap(det, LapParams(max_distance=8)))
    assert near == {((0, 1), (1, 1)), ((0, 2), (1, 2))}
    sized = graph_edges(track_lap(det, LapParams(max_distance=8, area_weight=2.0)))
    assert sized == {((0, 1), (1, 2)), ((0, 2), (1, 1))}


def test_progress_cancel_and_inputs(movie):
    det = detect(movie.labels)
    calls = []
    track_lap(det, LapParams(max_gap=1), progress=lambda d, n: calls.append((d, n)))
    assert calls[-1] == (20, 20) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    state = {"n": 0}

    def cancel_after_3() -> bool:
        state["n"] += 1
        return state["n"] > 3

    with pytest.raises(H4TracksError, match="Tracking cancelled"):
        track_lap(det, LapParams(), cancel=cancel_after_3)
    with pytest.raises(InputError):
        track_lap(det, {"max_distance": 3})  # type: ignore[arg-type]
    empty = track_lap(np.zeros((3, 8, 8), np.uint8))
    assert len(empty) == 0 and empty.n_edges == 0


def test_params_are_validated():
    for bad in ({"max_distance": 0}, {"max_gap": -1}, {"gap_distance": -2.0},
                {"area_weight": -1}, {"division_distance": 0}, {"unknown": 1},
                {"max_gap": 1.5}):
        with pytest.raises(ValidationError):
            LapParams(**bad)
    p = LapParams(max_distance=30)
    assert p.effective_gap_distance == 30 and p.effective_division_distance == 30
    assert LapParams.model_validate(p.model_dump()) == p


def test_max_weight_matching_is_optimal():
    rng = np.random.default_rng(0)
    from scipy.optimize import linear_sum_assignment

    for _ in range(20):
        w = rng.random((6, 5)) * (rng.random((6, 5)) < 0.5)
        r, c = np.nonzero(w)
        sel = max_weight_matching(r * 7, c + 100, w[r, c])  # arbitrary ids
        assert np.unique(r[sel]).size == sel.size and np.unique(c[sel]).size == sel.size
        rr, cc = linear_sum_assignment(w, maximize=True)
        assert np.isclose(w[r[sel], c[sel]].sum(), w[rr, cc].sum())
    assert max_weight_matching(np.empty(0), np.empty(0), np.empty(0)).size == 0


def test_gap_closing_on_movie_with_missed_cells(dense_movie):
    """Cells erased from some frames (missed detections): gap closing bridges them like
    laptrack does, and mostly with the true links."""
    lab = dense_movie.labels.copy()
    rng = np.random.default_rng(7)
    for t in range(1, lab.shape[0] - 1):
        ids = np.unique(lab[t])[1:]
        lab[t][np.isin(lab[t], rng.choice(ids, size=max(1, ids.size // 12), replace=False))] = 0
    det = detect(lab)
    p = LapParams(max_distance=20, max_gap=2, divisions=True)
    g = track_lap(det, p)
    assert graph_edges(g) == laptrack_edges(det, p)
    gaps = [e for e in graph_edges(g) if e[1][0] - e[0][0] > 1]
    assert len(gaps) >= 10
    assert np.mean([a[1] == b[1] for a, b in gaps]) > 0.8  # label == ground-truth track id


# ------------------------------------------------------------------------ stage drift
@pytest.mark.parametrize("params", [LapParams(max_distance=20, divisions=True, drift=True),
                                    LapParams(max_distance=15, max_gap=1, divisions=True,
                                              drift=True)],
                         ids=["divisions", "gaps"])
def test_stage_jumps_are_taken_out(movie, params):
    """Jumps of 42 px (twice the cut-off) every 4 frames: with the drift measured from the
    masks the links are those of the still movie, without it (laptrack's model) the cells
    are lost at every jump."""
    moved, steps = on_moving_stage(movie.labels)
    still = graph_edges(track_lap(movie.labels, params))
    assert graph_edges(track_lap(moved, params)) == still
    plain = graph_edges(track_lap(moved, params.model_copy(update={"drift": False})))
    assert plain == laptrack_edges(detect(moved), params)
    assert len(plain & still) < 0.9 * len(still)
    # a drift measured already is used as it is
    assert graph_edges(track_lap(detect(moved), params, drift=steps)) == still


@pytest.mark.parametrize("which", ["movie", "dense_movie"])
def test_no_drift_invented_on_a_still_stage(which, request):
    """Cells that move on their own leave the stage still: the links are laptrack's."""
    m = request.getfixturevalue(which)
    p = LapParams(max_distance=20, max_gap=1, divisions=True, drift=True)
    assert graph_edges(track_lap(m.labels, p)) == laptrack_edges(detect(m.labels), p)


def test_drift_is_on_by_default_and_measured_only_where_cells_moved(movie, monkeypatch):
    """The default compensates the stage, and only the frame pairs whose cells did not stay
    put are compared: on a still stage of ten fast cells at most two pairs of 19 (the links are
    laptrack's), on a moving one the jump frames too (and the links are those of the still
    movie)."""
    from h4tracks.core.tracking import motion

    assert LapParams().drift is True
    moved, steps = on_moving_stage(movie.labels)
    calm = motion.drift_suspects(detect(movie.labels))
    assert calm.sum() <= 2 and not calm[0]
    jumps = np.abs(steps).sum(axis=1) > 0
    suspects = motion.drift_suspects(detect(moved))
    assert suspects[jumps].all() and suspects.sum() <= jumps.sum() + calm.sum()

    compared: list[int] = []
    frame_drift = motion.frame_drift
    monkeypatch.setattr(motion, "frame_drift",
                        lambda a, b, *s: compared.append(1) or frame_drift(a, b, *s))
    p = LapParams(max_distance=20, divisions=True)
    still = graph_edges(track_lap(movie.labels, p))
    assert still == laptrack_edges(detect(movie.labels), p)
    assert len(compared) == calm.sum()
    compared.clear()
    assert graph_edges(track_lap(moved, p)) == still
    assert len(compared) == suspects.sum()


@pytest.mark.parametrize("cores", [1, 2])
def test_movie_drift_of_chosen_pairs_reads_only_their_frames(movie, cores, monkeypatch):
    """Measuring some frame pairs gives those rows of the full measurement, zero elsewhere,
    reads no other frame (a movie whose other frames cannot be read still works) and
    compares no other pair (for pairs 4 and 6, frames 3-6 are read in order, and the pair
    5 between them is not compared)."""
    from h4tracks.core.tracking import motion
    from h4tracks.core.tracking.motion import movie_drift

    moved, _ = on_moving_stage(movie.labels)
    full = movie_drift(moved)
    compared: list[int] = []
    frame_drift = motion.frame_drift
    monkeypatch.setattr(motion, "frame_drift",
                        lambda a, b, *s: compared.append(1) or frame_drift(a, b, *s))
    pairs = np.zeros(len(moved), bool)
    pairs[[4, 6]] = True
    gapped = movie_drift(moved, cores=cores, pairs=pairs)
    assert np.array_equal(gapped[pairs], full[pairs]) and not gapped[~pairs].any()
    assert len(compared) == 2
    pairs = np.zeros(len(moved), bool)
    pairs[[4, 5, 8]] = True

    class OnlySome:
        shape, dtype = moved.shape, moved.dtype

        def __getitem__(self, t):
            assert t in (3, 4, 5, 7, 8), f"frame {t} read"
            return moved[t]

    seen: list[tuple[int, int]] = []
    part = movie_drift(OnlySome(), cores=cores, pairs=pairs,
                       progress=lambda d, n: seen.append((d, n)))
    assert np.array_equal(part[pairs], full[pairs]) and not part[~pairs].any()
    assert seen[-1] == (3, 3)
    assert not movie_drift(OnlySome(), pairs=np.zeros(len(moved), bool)).any()
