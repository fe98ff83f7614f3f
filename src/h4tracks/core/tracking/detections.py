"""Detections: centroid, area and bounding box of every cell of every frame.

One vectorised pass per frame (``np.bincount`` / ``ufunc.at`` over the foreground pixels, no
Python loop over labels), frames read one at a time, frames measured in parallel threads
(numpy releases the GIL in the heavy parts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from h4tracks.core.measure import label_bins
from h4tracks.errors import H4TracksError, InputError

__all__ = ["Detections", "detect", "measured_detections", "median_diameter_of", "read_frame"]

Progress = Callable[[int, int], Any]
Cancel = Callable[[], bool]


def median_diameter_of(area: np.ndarray, default: float) -> float:
    """Median equivalent diameter (px) of cells of the given ``area``; ``default`` with none."""
    area = np.asarray(area)
    return float(2 * np.sqrt(np.median(area) / np.pi)) if area.size else default


def read_frame(labels: Any, t: int) -> np.ndarray:
    """Frame ``t`` of a label movie: ``labels.frame(t)`` if it has one, else ``labels[t]``."""
    frame = labels.frame(t) if hasattr(labels, "frame") else labels[t]
    return np.asarray(frame)


@dataclass(frozen=True)
class Detections:
    """Flat columns describing every cell of a movie, ordered by (t, label).

    The bounding box is half-open like ``regionprops``: rows ``y0 <= y < y1`` and columns
    ``x0 <= x < x1``. ``n_frames`` counts empty frames too.
    """

    t: np.ndarray  # (N,) int64
    label: np.ndarray  # (N,) int64
    y: np.ndarray  # (N,) float64, centroid row (px)
    x: np.ndarray  # (N,) float64, centroid column (px)
    area: np.ndarray  # (N,) int64, pixels
    y0: np.ndarray  # (N,) int64
    x0: np.ndarray
    y1: np.ndarray
    x1: np.ndarray
    n_frames: int

    def __len__(self) -> int:
        return int(self.t.size)

    @property
    def coords(self) -> np.ndarray:
        """(N, 2) centroids (y, x)."""
        return np.stack([self.y, self.x], axis=1)

    def frame_offsets(self) -> np.ndarray:
        """(n_frames + 1,) row offsets: frame ``t`` is rows ``off[t]:off[t + 1]``."""
        return np.searchsorted(self.t, np.arange(self.n_frames + 1), side="left")

    def node_columns(self) -> dict[str, np.ndarray]:
        """Node columns as :meth:`TrackGraph.from_arrays` takes them."""
        return {"t": self.t, "label": self.label, "y": self.y, "x": self.x, "area": self.area}

    @classmethod
    def from_points(
        cls, points: Sequence[np.ndarray], areas: Sequence[np.ndarray] | None = None
    ) -> Detections:
        """Detections from a list of (N_t, 2) point arrays (labels 1..N_t, for tests and
        benchmarks); areas default to 1 and the box is the pixel around the point."""
        pts = [np.asarray(p, np.float64).reshape(-1, 2) for p in points]
        n = [p.shape[0] for p in pts]
        t = np.repeat(np.arange(len(pts), dtype=np.int64), n)
        label = np.concatenate([np.arange(1, k + 1, dtype=np.int64) for k in n]) if pts else (
            np.empty(0, np.int64))
        yx = np.concatenate(pts) if pts else np.empty((0, 2))
        area = (np.concatenate([np.asarray(a, np.int64) for a in areas]) if areas is not None
                else np.ones(t.size, np.int64))
        iy, ix = np.floor(yx[:, 0]).astype(np.int64), np.floor(yx[:, 1]).astype(np.int64)
        return cls(t, label, yx[:, 0].copy(), yx[:, 1].copy(), area, iy, ix, iy + 1, ix + 1,
                   len(pts))

    @classmethod
    def from_nodes(cls, nodes: dict[str, np.ndarray], n_frames: int) -> Detections:
        """Detections from node columns ``t``, ``label``, ``y``, ``x``, ``area`` sorted by
        (t, label), as :meth:`TrackGraph.node_table` gives them.

        For trackers that use centroids and areas only (LAP): the box is the pixel around
        the centroid, as in :meth:`from_points`.
        """
        t = np.asarray(nodes["t"], np.int64)
        y = np.asarray(nodes["y"], np.float64)
        x = np.asarray(nodes["x"], np.float64)
        iy, ix = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
        return cls(t, np.asarray(nodes["label"], np.int64), y, x,
                   np.asarray(nodes["area"], np.int64), iy, ix, iy + 1, ix + 1, int(n_frames))


def _empty_columns() -> dict[str, np.ndarray]:
    cols = {c: np.empty(0, np.int64) for c in ("label", "area", "y0", "x0", "y1", "x1")}
    cols.update(y=np.empty(0, np.float64), x=np.empty(0, np.float64))
    return cols


def measure_frame_boxes(frame: np.ndarray) -> dict[str, np.ndarray]:
    """Label, centroid, area and bounding box of every cell of one 2D label image.

    Centroids and areas are computed exactly like :func:`h4tracks.core.measure.measure_frame`
    (same floating-point results), the box with ``np.minimum.at`` / ``np.maximum.at``.
    """
    frame = np.asarray(frame)
    if frame.ndim != 2:
        raise InputError(f"a label frame must be 2D, got shape {frame.shape}")
    lb = label_bins(frame)
    if lb is None:
        return _empty_columns()
    counts = lb.sums()
    # the box from the extreme pixel coordinates of each label
    big = np.iinfo(np.int64).max
    box = {}
    extremes = (("y0", lb.ys, big, np.minimum), ("x0", lb.xs, big, np.minimum),
                ("y1", lb.ys, -1, np.maximum), ("x1", lb.xs, -1, np.maximum))
    for name, coord, fill, reduce in extremes:
        acc = np.full(lb.n_bins, fill, np.int64)
        reduce.at(acc, lb.bins, coord)
        box[name] = acc[lb.select] + (1 if fill == -1 else 0)  # half-open like regionprops
    return {
        "label": lb.present.astype(np.int64),
        "y": lb.sums(lb.ys) / counts,
        "x": lb.sums(lb.xs) / counts,
        "area": counts.astype(np.int64),
        **box,
    }


def detect(
    labels: Any,
    frames: Sequence[int] | None = None,
    cores: int = 1,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> Detections:
    """Detect every cell of a label movie.

    Parameters
    ----------
    labels
        (T, Y, X) label movie: a numpy array, a zarr/dask array or a
        :class:`~h4tracks.core.project.LabelMovie` (read with ``.frame(t)``). 0 = background.
    frames
        Frame indices to measure (default all). ``n_frames`` of the result is still the
        movie length.
    cores
        Number of threads measuring frames in parallel.
    progress
        ``progress(done, total)`` called (from the calling thread) after each frame.
    cancel
        ``cancel() -> bool`` polled between frames; True stops with
        ``H4TracksError("Tracking cancelled")``.

    Returns
    -------
    Detections
        Flat columns ordered by (t, label).
    """
    shape = tuple(getattr(labels, "shape", ()))
    if len(shape) != 3:
        raise InputError(f"labels must be a (T, Y, X) movie, got shape {shape}")
    n_frames = int(shape[0])
    todo = list(range(n_frames)) if frames is None else sorted({int(f) for f in frames})
    if any(not 0 <= f < n_frames for f in todo):
        raise InputError(f"frames must lie in 0..{n_frames - 1}")
    cores = max(1, int(cores))
    per_frame: list[dict[str, np.ndarray]] = []

    def work(t: int) -> dict[str, np.ndarray]:
        return measure_frame_boxes(read_frame(labels, t))

    def collect(results: Any) -> None:
        for done, res in enumerate(results, 1):
            per_frame.append(res)
            if progress is not None:
                progress(done, len(todo))
            if cancel is not None and cancel():
                raise H4TracksError("Tracking cancelled")

    if cores == 1 or len(todo) < 2:
        collect(work(t) for t in todo)
    else:
        with ThreadPoolExecutor(max_workers=cores) as pool:
            futures = [pool.submit(work, t) for t in todo]
            try:
                collect(f.result() for f in futures)
            finally:
                for f in futures:
                    f.cancel()
    cols = _empty_columns()
    if per_frame:
        cols = {k: np.concatenate([p[k] for p in per_frame]) for k in cols}
    t = np.repeat(np.asarray(todo, np.int64), [p["label"].size for p in per_frame])
    return Detections(t=t, n_frames=n_frames, **cols)


def measured_detections(
    labels: Any,
    nodes: dict[str, np.ndarray],
    stale: Iterable[int] = (),
    cores: int = 1,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> Detections:
    """Every cell of a label movie whose cells were measured already (a project's lineage).

    A project's nodes hold the centroid and area of every cell, measured from its labels with
    the same arithmetic as :func:`detect` (:func:`~h4tracks.core.measure.label_bins`), so
    reading and measuring all the pixels again would give the same numbers: only the
    ``stale`` frames (edited since the nodes were last measured) are read. Nothing is
    written, so this is safe in a worker thread. Boxes are exact in the stale frames only
    (see :meth:`Detections.from_nodes`): for trackers that use centroids and areas (LAP).

    Parameters
    ----------
    labels
        The (T, Y, X) label movie the nodes were measured from.
    nodes
        Node columns ``t``, ``label``, ``y``, ``x``, ``area`` sorted by (t, label).
    stale
        Frames whose nodes may be out of date.
    cores, progress, cancel
        As for :func:`detect` (``progress`` reaches ``(T, T)`` at the end).
    """
    n_frames = int(labels.shape[0])
    redo = sorted({int(t) for t in stale})
    keep = ~np.isin(nodes["t"], redo) if redo else slice(None)
    det = Detections.from_nodes({k: np.asarray(nodes[k])[keep]
                                 for k in ("t", "label", "y", "x", "area")}, n_frames)
    if redo:
        fresh = detect(labels, frames=redo, cores=cores, cancel=cancel)
        cols = {f.name: np.concatenate([getattr(det, f.name), getattr(fresh, f.name)])
                for f in fields(Detections) if f.name != "n_frames"}
        order = np.lexsort((cols["label"], cols["t"]))
        det = Detections(n_frames=n_frames, **{k: v[order] for k, v in cols.items()})
    if cancel is not None and cancel():
        raise H4TracksError("Tracking cancelled")
    if progress is not None:
        progress(n_frames, n_frames)
    return det
