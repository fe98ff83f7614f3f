"""The first pass's motion guess from the masks' optical flow (optical_flow.py)."""

from __future__ import annotations

import numpy as np
import pytest
from _tracking_data import graph_edges

from h4tracks.core.tracking import GlobalParams, track_global
from h4tracks.core.tracking import global_problem as gp
from h4tracks.core.tracking.features import scan_movie
from h4tracks.core.tracking.optical_flow import pair_motion


def scattered_cells(n: int, shape: tuple[int, int], min_dist: float, seed: int
                    ) -> np.ndarray:
    """Centres of ``n`` cells at random, at least ``min_dist`` apart (an irregular crowd, so
    that the flow is not fooled by a periodic pattern)."""
    rng = np.random.default_rng(seed)
    pts: list[np.ndarray] = []
    while len(pts) < n:
        p = rng.uniform([0, 0], shape)
        if all(np.hypot(*(p - q)) >= min_dist for q in pts):
            pts.append(p)
    return np.array(pts)


def draw(shape: tuple[int, int], centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """A label frame with disc i + 1 at ``centres[i]``."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    out = np.zeros(shape, np.int32)
    for i, ((y, x), r) in enumerate(zip(centres, radii, strict=True)):
        out[(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = i + 1
    return out


def test_pair_motion_reads_a_shift_at_the_cells():
    shape = (200, 240)
    c = scattered_cells(60, (160, 200), 16, seed=1) + 20
    r = np.random.default_rng(2).uniform(4, 7, len(c))
    a = draw(shape, c, r)
    b = draw(shape, c + np.array([9, -6]), r)
    got = pair_motion(a, b, c, diameter=11)
    assert np.median(np.abs(got - [9, -6]), axis=0).max() < 1.0


def test_pair_motion_follows_an_expanding_colony():
    shape = (260, 260)
    centre = np.array([130.0, 130.0])
    c = scattered_cells(120, (170, 170), 13, seed=3) + 45
    r = np.full(len(c), 5.0)
    a = draw(shape, c, r)
    moved = centre + 1.12 * (c - centre)  # the rim moves ~10 px, the centre hardly
    b = draw(shape, moved, r)
    err = np.hypot(*(pair_motion(a, b, c, diameter=10) - (moved - c)).T)
    assert np.percentile(err, 90) < 3.0


def test_pair_motion_of_empty_frames_is_zero():
    a = np.zeros((50, 50), np.int32)
    b = draw((50, 50), np.array([[25.0, 25.0]]), np.array([5.0]))
    assert np.array_equal(pair_motion(a, b, np.array([[25.0, 25.0]]), 10), np.zeros((1, 2)))
    assert pair_motion(b, b, np.empty((0, 2)), 10).shape == (0, 2)


def test_scan_measures_flow_to_the_next_frame_only_when_asked():
    c = scattered_cells(20, (80, 80), 14, seed=4) + 10
    r = np.full(len(c), 5.0)
    movie = np.stack([draw((100, 100), c + k * np.array([3.0, 0.0]), r) for k in range(3)])
    assert scan_movie(movie).flow is None
    scan = scan_movie(movie, flow=True)
    t = scan.detections.t
    assert scan.flow.shape == (t.size, 2)
    assert np.isnan(scan.flow[t == 2]).all()  # no next frame
    # the whole field moves: the stage drift carries it, the flow is what remains
    assert np.allclose(scan.drift[1], [3, 0])
    assert np.allclose(scan.flow[t < 2], 0, atol=0.5)


def test_scan_flow_is_the_motion_after_a_stage_move():
    """A stage move of (20, -15) px with a shear on top (left fifth up, right fifth down
    by 8 px; the middle 60 % stays): the flow is measured after the drift, so it is the
    shear alone."""
    c = scattered_cells(60, (150, 150), 14, seed=9) + 45
    r = np.random.default_rng(10).uniform(5, 6, len(c))
    shear = (np.digitize(c[:, 1:2], [75, 165]) - 1.0) * 8.0 * np.array([1.0, 0.0])
    movie = np.stack([draw((240, 240), c, r), draw((240, 240), c + np.array([20, -15]) + shear, r)])
    scan = scan_movie(movie, flow=True)
    assert np.allclose(scan.drift[1], [20, -15])
    t = scan.detections.t
    err = np.hypot(*(scan.flow[t == 0] - shear).T)
    assert np.percentile(err, 90) < 2.0
    # a range of frames: the last one read has no next frame
    part = scan_movie(movie, frames=range(0, 1), flow=True)
    assert np.isnan(part.flow).all()


def test_no_flow_is_measured_where_the_cells_stay_on_their_masks(monkeypatch):
    """Slow cells (2 px a frame, 10-12 px across) each cover most of themselves in the next
    frame: expecting them where they were is as good, so the flow is skipped (zeros)."""
    c = scattered_cells(30, (100, 100), 16, seed=8) + 10
    r = np.full(len(c), 5.5)
    movie = np.stack([draw((120, 120), c + k * np.array([2.0, -1.0]) * (c[:, :1] > 60), r)
                      for k in range(3)])
    calls = []
    monkeypatch.setattr("h4tracks.core.tracking.features.pair_motion",
                        lambda a, b, yx, d: calls.append(1) or np.ones((len(yx), 2)))
    scan = scan_movie(movie, flow=True)
    assert not calls
    t = scan.detections.t
    assert np.array_equal(scan.flow[t < 2], np.zeros((int(np.sum(t < 2)), 2)))


def shear_movie(n_frames: int = 5) -> tuple[np.ndarray, set[tuple]]:
    """An irregular crowd whose left third moves up and right third down by 12 px a frame
    while the middle stays (no part carries most cells, so there is no stage drift): many
    cells land nearer to (or on the mask of) another cell than to where they were (cells
    10-12 px across, at least 14 px apart)."""
    shape = (300, 200)
    c = scattered_cells(90, (150, 180), 14, seed=5) + np.array([75, 10])
    r = np.random.default_rng(6).uniform(5, 6, len(c))
    step = (np.digitize(c[:, 1:2], [70, 130]) - 1.0) * 12.0 * [1, 0]
    frames, truth = [], set()
    for k in range(n_frames):
        frames.append(draw(shape, c + k * step, r))
        if k:
            truth |= {((k - 1, i + 1), (k, i + 1)) for i in range(len(c))}
    return np.stack(frames), truth


def test_global_tracks_a_shearing_crowd_from_its_first_pass(monkeypatch):
    # (a stage jump beyond the flow's reach is taken out before the flow is measured:
    # test_motion.py's synchronous divisions under drift)
    movie, truth = shear_movie()
    edges = graph_edges(track_global(movie, GlobalParams()))
    assert len(edges & truth) >= 0.97 * len(truth)
    # without the flow's guess the first pass links many cells to a neighbour that moved
    # near them, and the flow measured from those links keeps the error (241 of 360 right)
    monkeypatch.setattr("h4tracks.core.tracking.features.pair_motion",
                        lambda a, b, yx, d: np.zeros((len(yx), 2)))
    blind = graph_edges(track_global(movie, GlobalParams()))
    assert len(blind & truth) < 0.8 * len(truth)


@pytest.mark.parametrize("motion", ["drift", "none"])
def test_no_flow_is_measured_without_local_motion(motion, monkeypatch):
    movie, _ = shear_movie(3)

    def boom(*_a):
        raise AssertionError("optical flow measured")

    monkeypatch.setattr("h4tracks.core.tracking.features.pair_motion", boom)
    assert gp.prepare(movie, GlobalParams(motion=motion)).seed is None
