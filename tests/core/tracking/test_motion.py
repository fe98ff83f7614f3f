"""Stage drift and division geometry on a movie shaped like the real E. coli colony of the
real-data benchmark (benchmarks/bench_real.py): a tight colony of rods, all dividing in the
same frame while the stage moves by about a rod's width."""

from __future__ import annotations

import numpy as np
from _tracking_data import graph_edges

from h4tracks.core.tracking import GlobalParams, track_global
from h4tracks.core.tracking.features import shape_axes
from h4tracks.core.tracking.motion import frame_drift

SHIFTS = [(0, 0), (-3, -28), (-6, -24), (-2, -20)]  # stage position change per frame


def rod(frame: np.ndarray, y: int, x: int, length: int, value: int, vertical: bool) -> None:
    if vertical:
        frame[y:y + length, x:x + 12] = value
    else:
        frame[y:y + 12, x:x + length] = value


def colony(length: int = 44, shifts=SHIFTS) -> tuple[np.ndarray, set[tuple]]:
    """Four frames of 8 rods 12 px wide, ``length`` px long, packed 2 px apart (6 upright in
    two rows, 2 lying); every rod splits across its long axis between frames 1 and 2 while
    the stage moves by ``shifts``; labels and true links."""
    movie = np.zeros((4, 300, 400), np.uint16)
    row2, lying = 30 + length + 16, 2 * length + 72
    rods = [(30, 150, True), (30, 164, True), (30, 178, True),
            (row2, 150, True), (row2, 164, True), (row2, 178, True),
            (lying, 150, False), (lying + 14, 150, False)]  # (top, left, upright)
    pos = np.cumsum(shifts, axis=0)
    for t in range(4):
        for k, (y, x, upright) in enumerate(rods):
            y, x = y + pos[t][0], x + pos[t][1]
            if t < 2:
                rod(movie[t], y, x, length + 2 * t, k + 1, upright)
                continue
            half = length // 2 + t  # each daughter: half the mother, growing
            for h in (0, 1):
                off = h * (half + 2)
                rod(movie[t], y + off * upright, x + off * (not upright), half,
                    2 * k + h + 1, upright)
    truth: set[tuple] = set()
    for k in range(8):
        truth.add(((0, k + 1), (1, k + 1)))
        for h in (0, 1):
            truth.add(((1, k + 1), (2, 2 * k + h + 1)))
            truth.add(((2, 2 * k + h + 1), (3, 2 * k + h + 1)))
    return movie, truth


def test_drift_found_while_every_cell_divides():
    movie, _ = colony()
    for t in range(1, 4):
        assert np.allclose(frame_drift(movie[t - 1], movie[t]), SHIFTS[t], atol=1)


def test_drift_not_invented_between_few_cells():
    """One cell moving onto where a neighbour's daughter is must not pass for a stage move
    (a lone cell overlaps several cells equally well: the shorter shift, or none)."""
    a = np.zeros((64, 64), np.uint16)
    b = np.zeros((64, 64), np.uint16)
    a[10:16, 10:16] = 1
    b[10:16, 11:17] = 1
    b[30:36, 11:17] = 2
    b[50:56, 11:17] = 3
    assert np.allclose(frame_drift(a, b), [0, 1]) or np.allclose(frame_drift(a, b), 0)


def test_shape_axes_of_rods():
    f = np.zeros((60, 60), np.uint16)
    f[5:45, 10:20] = 1  # vertical 40 x 10
    f[50:56, 5:35] = 2  # horizontal 30 x 6
    elong, axis, length = shape_axes(f, np.array([1, 2]))
    assert np.allclose(np.abs(axis), [[1, 0], [0, 1]], atol=1e-6)
    assert np.allclose(length, [40, 30], rtol=0.02)
    assert elong[0] > 3.5 and elong[1] > 4.5


def test_synchronous_divisions_under_drift_all_found():
    movie, truth = colony()
    g = track_global(movie, GlobalParams())
    assert graph_edges(g) == truth
    assert g.n_divisions == 8


def disc(frame: np.ndarray, y: float, x: float, r: float, value: int) -> None:
    yy, xx = np.ogrid[: frame.shape[0], : frame.shape[1]]
    frame[(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = value


def test_a_newcomer_is_not_a_stage_move():
    """One cell moves a little while another enters far away: the overlap estimate could
    lay the cell on the newcomer (it overlaps it better than its own moved self)."""
    m = np.zeros((2, 200, 200), np.uint16)
    disc(m[0], 32.49, 42.11, 7, 1)
    disc(m[1], 32.50, 43.71, 7, 1)
    disc(m[1], 152.28, 148.14, 7, 2)
    assert np.allclose(frame_drift(m[0], m[1]), 0)
    for motion in ("drift", "local"):
        edges = track_global(m, GlobalParams(motion=motion)).edge_array().tolist()
        assert edges == [[0, 1, 1, 1]]


def test_daughters_of_long_rods_are_found_where_they_are_expected():
    """Without the daughter geometry (expected a quarter length either side along the
    mother's axis) these 80 px rods gave 8 missed links and no division."""
    movie, truth = colony(80, [(0, 0)] * 4)  # no stage move
    g = track_global(movie, GlobalParams())
    assert graph_edges(g) == truth
    assert g.n_divisions == 8


def test_max_distance_covers_few_fast_cells():
    """Three cells 300 px apart that mostly creep (5-15 px a frame) and now and then leap
    (70-90 px, as stem cells do): a max. distance from the median step (3 x ~10 px) would cut
    the leaps; the unambiguous steps set it."""
    from h4tracks.core.tracking import Detections, estimate_defaults

    rng = np.random.default_rng(0)
    pos = np.array([[100.0, 100.0], [100.0, 400.0], [400.0, 250.0]])
    frames = []
    for f in range(20):
        step = rng.uniform(70, 90, 3) if f % 4 == 0 else rng.uniform(5, 15, 3)
        ang = rng.uniform(0, 2 * np.pi, 3)
        pos = pos + np.column_stack([step * np.sin(ang), step * np.cos(ang)]) * (f > 0)
        frames.append(pos.copy())
    est = estimate_defaults(Detections.from_points(frames))
    assert est["displacement"] < 20
    assert est["max_distance"] >= 1.5 * 90


def test_movie_drift_threads_progress_and_cancel():
    from h4tracks.core.tracking.motion import movie_drift
    from h4tracks.errors import H4TracksError

    movie, _ = colony()
    seen: list[tuple[int, int]] = []
    one = movie_drift(movie, progress=lambda d, n: seen.append((d, n)))
    assert np.allclose(one[1:], SHIFTS[1:], atol=1) and not one[0].any()
    assert seen == [(t, 4) for t in range(1, 5)]
    assert np.array_equal(movie_drift(movie, cores=2), one)
    for cores in (1, 2):
        try:
            movie_drift(movie, cores=cores, cancel=lambda: True)
        except H4TracksError as exc:
            assert "cancelled" in str(exc)
        else:
            raise AssertionError("cancel was not honoured")
    assert not movie_drift(movie[:1]).any()


def test_phase_correlation_matches_skimage():
    """The phase correlation on real float32 half-spectra peaks where skimage's
    ``phase_cross_correlation`` (the oracle) does, on odd and even frame sizes, shifts
    past half the frame included (they wrap), and on frames with no stage move."""
    from skimage.registration import phase_cross_correlation

    from h4tracks.core.tracking.motion import _outlines, _phase_shift, outline_spectrum

    rng = np.random.default_rng(3)
    for shape in ((300, 400), (257, 311), (128, 128)):
        for _ in range(6):
            a = np.zeros(shape, np.uint16)
            for k in range(1, 25):  # random rectangles, later ones over earlier ones
                y, x = rng.integers(0, shape[0] - 20), rng.integers(0, shape[1] - 20)
                a[y:y + rng.integers(5, 20), x:x + rng.integers(5, 20)] = k
            shift = rng.integers(-0.6 * np.array(shape), 0.6 * np.array(shape))
            b = np.roll(a, tuple(shift), axis=(0, 1))
            b[rng.random(shape) < 0.3] = 0  # degrade b: not a pure copy
            want, _, _ = phase_cross_correlation(_outlines(a).astype(np.float32),
                                                 _outlines(b).astype(np.float32))
            got = _phase_shift(outline_spectrum(a), outline_spectrum(b), shape)
            assert got == (-round(float(want[0])), -round(float(want[1])))


def test_drift_chain_reads_each_frame_once_and_equals_pairwise():
    from h4tracks.core.tracking import motion

    movie, _ = colony()
    calls = []
    real = motion.outline_spectrum

    def counted(frame):
        calls.append(1)
        return real(frame)

    chain = motion.DriftChain()
    import unittest.mock as um

    with um.patch.object(motion, "outline_spectrum", counted):
        steps = [chain.next(f) for f in movie]
    assert len(calls) == len(movie)  # one spectrum per frame, not two per pair
    assert not steps[0].any()
    for t in range(1, 4):
        assert np.array_equal(steps[t], frame_drift(movie[t - 1], movie[t]))
    assert not chain.next(movie[0], consecutive=False).any()  # frames skipped: no drift


def test_scan_of_a_frame_range_measures_the_drift_of_its_pairs_only():
    from h4tracks.core.tracking.features import scan_movie
    from h4tracks.core.tracking.motion import movie_drift

    movie, _ = colony()
    full = movie_drift(movie)
    part = scan_movie(movie, frames=range(1, 4)).drift
    assert not part[:2].any()  # frame 1 is the first read: no pair before it
    np.testing.assert_array_equal(part[2:], full[2:])
    np.testing.assert_array_equal(scan_movie(movie).drift[1:], full[1:])
    assert np.array_equal(movie_drift(movie, cores=2), full)
