"""Tests of the growth and cell-cycle priors of the global tracker (cell_cycle, growth in
estimate_defaults and the area / division terms) and of tracking a fast-growing colony at a
lower frame rate."""

from __future__ import annotations

import numpy as np
import pytest

from h4tracks.core.evaluation import evaluate_tracking, lineage_edges
from h4tracks.core.parameters import GlobalParams
from h4tracks.core.tracking import OverlapParams, detect, track_global, track_overlap
from h4tracks.core.tracking.cell_cycle import MIN_CYCLES, lineage_age
from h4tracks.core.tracking.detections import Detections
from h4tracks.core.tracking.global_problem import (
    DIVISION_FEATURES,
    LINK_FEATURES,
    estimate_defaults,
    prepare,
)
from h4tracks.testing.colony import make_colony
from h4tracks.testing.degrade import every_nth_frame


def _lineage(cycle: int, generations: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes (frames) and links of one founder whose descendants all divide every
    ``cycle`` frames: a node is (t, index within its frame)."""
    t_list, par, chi = [0], [], []
    current = [0]  # node ids alive in the last frame
    for t in range(1, cycle * generations + 1):
        nxt = []
        divide = t % cycle == 0
        for node in current:
            for _ in range(2 if divide else 1):
                t_list.append(t)
                par.append(node)
                chi.append(len(t_list) - 1)
                nxt.append(len(t_list) - 1)
        current = nxt
    return np.array(t_list), np.array(par), np.array(chi)


def test_lineage_age_counts_frames_since_birth():
    t, par, chi = _lineage(cycle=4, generations=3)  # 1 + 2 + 4 mothers, 8 leaves
    age, young = lineage_age(t, par, chi, t.size)
    assert np.all(np.isinf(age[t < 4]))  # the founder's own birth is unknown
    born = t >= 4
    assert np.array_equal(age[born], (t[born] - 4) % 4)
    # complete cycles: the 2 + 4 daughters of generations 1 and 2 divide 4 frames after birth
    assert young == pytest.approx(2.0)


def test_lineage_age_needs_enough_cycles():
    t, par, chi = _lineage(cycle=3, generations=2)  # 2 complete cycles < MIN_CYCLES
    assert MIN_CYCLES > 2
    age, young = lineage_age(t, par, chi, t.size)
    assert young == 0.0
    assert np.isfinite(age[t >= 3]).all()
    empty_age, empty_young = lineage_age(t, par[:0], chi[:0], t.size)
    assert np.all(np.isinf(empty_age)) and empty_young == 0.0


def _growing_points(growth: float, n_frames: int = 6) -> Detections:
    """Ten well separated cells whose area grows by ``growth`` every frame."""
    pts = []
    for t in range(n_frames):
        for i in range(10):
            pts.append((t, 20.0 + 40 * i, 50.0, 100.0 * growth**t))
    arr = np.array(pts)
    off = np.searchsorted(arr[:, 0], np.arange(n_frames + 1))
    return Detections.from_points([arr[off[f]:off[f + 1], 1:3] for f in range(n_frames)],
                                  [np.rint(arr[off[f]:off[f + 1], 3]) for f in range(n_frames)])


@pytest.mark.parametrize("growth", [1.0, 1.2])
def test_growth_is_estimated_from_unambiguous_pairs(growth):
    est = estimate_defaults(_growing_points(growth))
    assert est["growth"] == pytest.approx(growth, rel=0.01)


def test_growth_needs_five_pairs_and_is_bounded():
    det = _growing_points(1.2, n_frames=1)
    assert estimate_defaults(det)["growth"] == 1.0
    assert estimate_defaults(_growing_points(3.0))["growth"] == 1.5


def test_area_terms_expect_the_growth():
    det = _growing_points(1.2, n_frames=3)
    prob = prepare(det, GlobalParams(motion="none"))
    assert prob.growth == pytest.approx(1.2, rel=0.01)
    n = 10
    par = np.arange(n)  # frame 0 -> the same cell one and two frames later
    feats = prob.link_features(np.r_[par, par], np.r_[par + n, par + 2 * n],
                               np.zeros((len(det), 2)))
    assert np.abs(feats[:, LINK_FEATURES.index("area")]).max() < 0.01
    # a division into two halves of the grown mother costs no area term either
    lp, lc = np.array([0, 0]), np.array([n, n + 1])
    det.area[[n, n + 1]] = np.rint(det.area[0] * 1.2 / 2)
    f = prob.link_features(lp, lc, np.zeros((len(det), 2)))
    cost = prob.link_cost(f)
    _, g = prob.division_features(lp, lc, f, cost, np.zeros((len(det), 2)),
                                  np.array([0]), np.array([1]))
    assert g[0, DIVISION_FEATURES.index("div_area")] < 0.01


def test_youth_of_a_mother():
    det = _growing_points(1.0, n_frames=3)
    prob = prepare(det, GlobalParams(motion="none"))
    nodes = np.arange(4)
    assert np.all(prob.youth(nodes) == 0)  # no first pass: no prior
    prob.age = np.array([0.0, 1.0, 3.0, np.inf] + [np.inf] * (len(det) - 4))
    prob.young = 2.0
    assert np.allclose(prob.youth(nodes), [1.0, 0.5, 0.0, 0.0])


@pytest.fixture(scope="module")
def fast_colony_half_rate():
    """A settled, fast-growing rod colony (a division every 5 frames) seen every 2nd frame:
    cells grow 1.3x, move up to a cell width and often divide between two frames."""
    m = make_colony(n_frames=30, shape=(192, 192), n_start_cells=3, cycle_frames=5.0,
                    cell_length=16.0, cell_width=6.0, jitter=0.8, relax_steps=40, seed=3)
    return every_nth_frame(m.labels, m.lineage, 2)


def test_growth_of_a_fast_colony(fast_colony_half_rate):
    labels, _ = fast_colony_half_rate
    growth = estimate_defaults(detect(labels))["growth"]
    assert growth == pytest.approx(2 ** (2 / 5), rel=0.08)  # two frames of a 5-frame cycle


def test_global_tracks_a_fast_colony_at_half_the_frame_rate(fast_colony_half_rate):
    labels, lineage = fast_colony_half_rate
    truth = lineage_edges(lineage)

    def tra(graph):
        return evaluate_tracking(labels, graph, labels, truth).tra

    glob = tra(track_global(labels))
    # measured 0.9986 (overlap 0.9645, LAP 0.9462)
    assert glob >= 0.99
    assert glob > tra(track_overlap(labels, OverlapParams())) + 0.02
