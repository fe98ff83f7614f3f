"""Where UI tests click: a pixel well inside a cell, and a background pixel."""

from __future__ import annotations

import numpy as np


def centre(frame: np.ndarray, label: int) -> tuple[int, int]:
    """A pixel of ``label`` (its medoid-ish pixel, robustly inside the cell)."""
    ys, xs = np.nonzero(frame == label)
    i = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)
    return int(ys[i]), int(xs[i])


def background(frame: np.ndarray) -> tuple[int, int]:
    """The first background pixel in raster order."""
    ys, xs = np.nonzero(frame == 0)
    return int(ys[0]), int(xs[0])
