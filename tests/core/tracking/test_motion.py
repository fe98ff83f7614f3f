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


def colony() -> tuple[np.ndarray, set[tuple]]:
    """Four frames of 8 rods 12 px wide packed 2 px apart (6 upright in two rows, 2 lying);
    every rod splits across its long axis between frames 1 and 2; labels and true links."""
    movie = np.zeros((4, 240, 320), np.uint16)
    rods = [(30, 150, True), (30, 164, True), (30, 178, True),
            (90, 150, True), (90, 164, True), (90, 178, True),
            (160, 150, False), (174, 150, False)]  # (top, left, upright)
    pos = np.cumsum(SHIFTS, axis=0)
    for t in range(4):
        for k, (y, x, upright) in enumerate(rods):
            y, x = y + pos[t][0], x + pos[t][1]
            if t < 2:
                rod(movie[t], y, x, 44 + 2 * t, k + 1, upright)
                continue
            length = 22 + t  # each daughter: half the mother, growing
            for h in (0, 1):
                off = h * (length + 2)
                rod(movie[t], y + off * upright, x + off * (not upright), length,
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
