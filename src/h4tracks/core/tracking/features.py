"""Per-cell and per-candidate measurements of the global tracker, in one pass over a movie.

:func:`scan_movie` reads each label frame once and returns the detections, the elongation
of every cell (second moments), the mask overlaps of every consecutive frame pair
(:func:`~h4tracks.core.tracking.overlap.frame_overlaps`, measured after compensating the
stage drift) and the stage drift between them (:func:`~h4tracks.core.tracking.motion.frame_drift`);
on request the motion of every cell to the next frame read from the masks' optical flow
(:func:`~h4tracks.core.tracking.optical_flow.pair_motion`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from h4tracks.core.tracking.detections import (
    Detections,
    measure_frame_boxes,
    median_diameter_of,
    read_frame,
)
from h4tracks.core.tracking.motion import DriftChain, shift_frame
from h4tracks.core.tracking.optical_flow import MOVED_SHARE, cells_moved, pair_motion
from h4tracks.core.tracking.overlap import frame_overlaps
from h4tracks.errors import H4TracksError, InputError

__all__ = ["MovieScan", "elongation", "scan_movie", "shape_axes"]


@dataclass
class MovieScan:
    """What the global tracker needs from a label movie.

    ``overlaps[t]`` holds ``(label_t, label_t+1, shared)`` for the pair (t, t+1) (None when a
    frame of the pair was not read); ``drift[t]`` is the displacement (dy, dx) from frame
    t-1 to t (row 0 is zero).
    """

    detections: Detections
    elongation: np.ndarray  # (N,) >= 1, sqrt of the ratio of the inertia eigenvalues
    overlaps: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    drift: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    shape: tuple[int, int] | None = None
    #: (N, 2) unit vector (dy, dx) of the major axis and (N,) length along it (px)
    axis: np.ndarray | None = None
    length: np.ndarray | None = None
    #: (N, 2) displacement (dy, dx) of every cell to the next frame by optical flow, after
    #: the stage drift (0 where almost no cell left its own mask, see
    #: :data:`~.optical_flow.MOVED_SHARE`; NaN where the next frame was not read); None when
    #: not asked for
    flow: np.ndarray | None = None


def elongation(frame: np.ndarray, labels_sorted: np.ndarray) -> np.ndarray:
    """Elongation (sqrt of major / minor inertia eigenvalue, >= 1) of the listed labels."""
    return shape_axes(frame, labels_sorted)[0]


def shape_axes(
    frame: np.ndarray, labels_sorted: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Elongation, major axis and length of the listed labels (second moments of their pixels).

    Returns
    -------
    elongation : (N,) sqrt of major / minor inertia eigenvalue, >= 1
    axis : (N, 2) unit vector (dy, dx) along the major axis (sign arbitrary)
    length : (N,) extent along the major axis, ``sqrt(12 × major eigenvalue)`` (exact for a
        uniform bar; a rod's tip-to-tip length within a few percent)
    """
    flat = np.asarray(frame).ravel()
    idx = np.flatnonzero(flat)
    n = labels_sorted.size
    axis = np.tile([1.0, 0.0], (n, 1))
    if idx.size == 0 or n == 0:
        return np.ones(n), axis, np.ones(n)
    b = np.searchsorted(labels_sorted, flat[idx].astype(np.int64))
    ys, xs = np.divmod(idx, frame.shape[1])
    ys, xs = ys.astype(np.float64), xs.astype(np.float64)
    nb = labels_sorted.size
    cnt = np.bincount(b, minlength=nb).astype(np.float64)
    cnt[cnt == 0] = 1.0
    my = np.bincount(b, ys, nb) / cnt
    mx = np.bincount(b, xs, nb) / cnt
    dy, dx = ys - my[b], xs - mx[b]
    syy = np.bincount(b, dy * dy, nb) / cnt + 1 / 12  # + pixel's own inertia
    sxx = np.bincount(b, dx * dx, nb) / cnt + 1 / 12
    sxy = np.bincount(b, dx * dy, nb) / cnt
    half_tr, det = (syy + sxx) / 2, syy * sxx - sxy**2
    disc = np.sqrt(np.maximum(half_tr**2 - det, 0))
    l1, l2 = half_tr + disc, np.maximum(half_tr - disc, 1e-9)
    # eigenvector of l1 from either row of (S - l1 I) v = 0; the larger one is well defined
    va = np.column_stack([sxy, l1 - syy])
    vb = np.column_stack([l1 - sxx, sxy])
    v = np.where((np.hypot(*va.T) >= np.hypot(*vb.T))[:, None], va, vb)
    norm = np.hypot(*v.T)
    ok = norm > 1e-12
    axis[ok] = v[ok] / norm[ok, None]
    return np.sqrt(l1 / l2), axis, np.sqrt(12 * l1)


def scan_movie(
    labels: Any,
    frames: range | None = None,
    drift: bool = True,
    progress: Callable[[int, int], Any] | None = None,
    cancel: Callable[[], bool] | None = None,
    flow: bool = False,
) -> MovieScan:
    """Detections, elongations, consecutive-frame overlaps and drift of a label movie.

    Parameters
    ----------
    labels
        (T, Y, X) label movie (numpy, zarr, dask or LabelMovie), read one frame at a time.
    frames
        Consecutive frames to read (default all); the detections keep the movie's length.
    drift
        Estimate the stage drift by phase correlation (else zeros).
    progress, cancel
        ``progress(done, total)`` per frame; ``cancel()`` polled per frame.
    flow
        Also measure every cell's motion to the next frame by optical flow
        (:attr:`MovieScan.flow`).
    """
    shape = tuple(getattr(labels, "shape", ()))
    if len(shape) != 3:
        raise InputError(f"labels must be a (T, Y, X) movie, got shape {shape}")
    n_frames = int(shape[0])
    todo = range(n_frames) if frames is None else frames
    cols: dict[str, list[np.ndarray]] = {}
    elong: list[np.ndarray] = []
    axes: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    ts: list[np.ndarray] = []
    overlaps: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    steps = np.zeros((n_frames, 2))
    moves: list[np.ndarray] = []
    prev: np.ndarray | None = None
    prev_m: dict[str, np.ndarray] = {}
    prev_t = -2
    chain = DriftChain() if drift else None
    for done, t in enumerate(todo, 1):
        if cancel is not None and cancel():
            raise H4TracksError("Tracking cancelled")
        cur = read_frame(labels, t)
        m = measure_frame_boxes(cur)
        for k, v in m.items():
            cols.setdefault(k, []).append(v)
        e, ax, ln = shape_axes(cur, m["label"])
        elong.append(e)
        axes.append(ax)
        lengths.append(ln)
        ts.append(np.full(m["label"].size, t, np.int64))
        if chain is not None:
            steps[t] = chain.next(cur, consecutive=prev_t == t - 1)
        if prev is not None and prev_t == t - 1:
            # overlaps are measured after the stage shift: uncompensated, a stage jump
            # makes each cell overlap the neighbour that moved into its place
            moved = shift_frame(prev, steps[t]) if steps[t].any() else prev
            overlaps[t - 1] = frame_overlaps(moved, cur)
            if flow and cells_moved(prev_m["label"], prev_m["area"],
                                    overlaps[t - 1]) > MOVED_SHARE:
                diameter = median_diameter_of(np.r_[prev_m["area"], m["area"]], 1.0)
                # after the stage shift, as the overlaps: a jump of many cell widths is
                # beyond the flow's reach, and the tracker adds the drift itself
                shift = np.round(steps[t])
                yx = np.column_stack([prev_m["y"], prev_m["x"]]) + shift
                moves[-1] = pair_motion(moved, cur, yx, diameter) - (steps[t] - shift)
            elif flow:  # (almost) every cell stayed on its own mask: no motion to guess
                moves[-1] = np.zeros_like(moves[-1])
        if flow:
            moves.append(np.full((m["label"].size, 2), np.nan))
        prev, prev_m, prev_t = cur, m, t
        if progress is not None:
            progress(done, len(todo))
    if ts:
        c = {k: np.concatenate(v) for k, v in cols.items()}
        t_all = np.concatenate(ts)
        el = np.concatenate(elong)
        ax_all, len_all = np.concatenate(axes), np.concatenate(lengths)
    else:
        c = {k: np.empty(0, np.float64 if k in ("y", "x") else np.int64)
             for k in ("label", "y", "x", "area", "y0", "x0", "y1", "x1")}
        t_all, el = np.empty(0, np.int64), np.empty(0)
        ax_all, len_all = np.empty((0, 2)), np.empty(0)
    det = Detections(t=t_all, n_frames=n_frames, **c)
    moved_all = (np.concatenate(moves) if moves else np.empty((0, 2))) if flow else None
    return MovieScan(det, el, overlaps, steps, (int(shape[1]), int(shape[2])), ax_all, len_all,
                     moved_all)
