"""Vectorised per-frame measurements of label images.

All cells of a frame are measured in one pass with ``np.bincount`` over the flattened label
image (no Python loop over labels). Used by the project model to keep TrackGraph nodes in
sync with the labels and by the trackers to build detections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from h4tracks.errors import InputError

# Above this ratio of (max label / pixel count) a dense bincount would waste memory, so the
# labels are compacted with np.unique first.
_DENSE_LIMIT = 4
_MAX_LABEL = 2**32 - 1


@dataclass(frozen=True)
class FrameMeasurements:
    """Label ids, centroids (y, x) and areas (px) of every cell in one frame."""

    labels: np.ndarray  # (N,) uint32, ascending
    centroids: np.ndarray  # (N, 2) float64, (y, x) in pixels
    areas: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return int(self.labels.size)


@dataclass(frozen=True)
class LabelBins:
    """Foreground pixels of a label image grouped by label (the shared first step of the
    per-frame measurements): pixel ``i`` has coordinates ``ys[i], xs[i]`` and falls in bin
    ``bins[i]``; ``present`` are the labels and ``select`` picks their bins from an array of
    ``n_bins`` per-bin values (e.g. a ``np.bincount`` result)."""

    ys: np.ndarray
    xs: np.ndarray
    bins: np.ndarray
    n_bins: int
    present: np.ndarray
    select: Any  # index array or slice

    def sums(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Per-label sums of ``weights`` (pixel counts when None), in ``present`` order."""
        return np.bincount(self.bins, weights=weights, minlength=self.n_bins)[self.select]


def label_bins(frame: np.ndarray) -> LabelBins | None:
    """Group the labelled pixels of a 2D label image by label, or None if it has none.

    Raises
    ------
    InputError
        On labels below 0 or above 2**32 - 1.
    """
    flat = frame.ravel()
    idx = np.flatnonzero(flat)
    if idx.size == 0:
        return None
    lab = flat[idx].astype(np.int64, copy=False)
    lo, hi = int(lab.min()), int(lab.max())
    if lo < 0 or hi > _MAX_LABEL:
        raise InputError(
            f"labels must be integers from 0 to {_MAX_LABEL}, found {lo if lo < 0 else hi}"
        )
    ys, xs = np.divmod(idx, frame.shape[1])
    if hi <= _DENSE_LIMIT * flat.size:
        counts = np.bincount(lab)
        present = np.flatnonzero(counts)
        return LabelBins(ys, xs, lab, counts.size, present, present)
    present, bins = np.unique(lab, return_inverse=True)
    return LabelBins(ys, xs, bins.ravel(), present.size, present, slice(None))


def measure_frame(frame: np.ndarray) -> FrameMeasurements:
    """Measure every labelled cell of a 2D label image in one vectorised pass.

    Parameters
    ----------
    frame
        (Y, X) integer label image, 0 = background.

    Returns
    -------
    FrameMeasurements
        Labels in ascending order with their centroids (mean pixel coordinate) and areas.
    """
    frame = np.asarray(frame)
    if frame.ndim != 2:
        raise ValueError(f"measure_frame expects a 2D label image, got shape {frame.shape}")
    lb = label_bins(frame)
    if lb is None:
        return FrameMeasurements(
            np.empty(0, np.uint32), np.empty((0, 2), np.float64), np.empty(0, np.int64)
        )
    counts = lb.sums()
    centroids = np.stack([lb.sums(lb.ys) / counts, lb.sums(lb.xs) / counts], axis=1)
    return FrameMeasurements(lb.present.astype(np.uint32), centroids, counts.astype(np.int64))


def measure_movie(labels: Any) -> dict[str, np.ndarray]:
    """Measure every cell of every frame of a (T, Y, X) label movie, frame by frame.

    Returns
    -------
    dict
        Node columns ``t``, ``label``, ``y``, ``x``, ``area`` (as TrackGraph.from_arrays
        takes them), ordered by (t, label). Only one frame is in memory at a time.
    """
    cols: dict[str, list[np.ndarray]] = {c: [] for c in ("t", "label", "y", "x", "area")}
    for t in range(labels.shape[0]):
        m = measure_frame(np.asarray(labels[t]))
        cols["t"].append(np.full(len(m), t, np.int64))
        cols["label"].append(m.labels.astype(np.int64))
        cols["y"].append(m.centroids[:, 0])
        cols["x"].append(m.centroids[:, 1])
        cols["area"].append(m.areas)
    dtypes = {"t": np.int64, "label": np.int64, "y": np.float64, "x": np.float64,
              "area": np.int64}
    return {k: np.concatenate(v) if v else np.empty(0, dtypes[k]) for k, v in cols.items()}
