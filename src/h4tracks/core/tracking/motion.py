"""Motion models of the trackers: stage drift (global, LAP and overlap) and a smooth local
motion field (global).

Distances between candidate links are measured to where a cell is *expected* to be, not to
where it was: ``expected = position + drift(t → t') + local(t)``.

* **Drift** (whole-frame motion, e.g. a stage jump) is measured by phase correlation of the
  cell outlines of consecutive label frames (as ``skimage.registration``, on real
  half-spectra, computed once per frame when frames are read in order) and by the shift that
  maximises the overlap of their foregrounds, whichever superimposes more; a shift is only
  accepted when it increases the foreground overlap and superimposes at least half of it, so
  a frame of independently moving cells keeps zero drift.
* **Local motion** is the median residual displacement (after drift) of the already linked
  neighbours of a cell, from a previous tracking pass (cells in a flowing colony move
  together).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from h4tracks.core.tracking.detections import Detections, read_frame
from h4tracks.errors import H4TracksError

__all__ = [
    "DriftChain",
    "cumulative_drift",
    "drift_suspects",
    "frame_drift",
    "local_motion",
    "movie_drift",
    "outline_spectrum",
    "pair_suspect",
    "shift_frame",
]


def _shifted_overlap(a: np.ndarray, b: np.ndarray, dy: int, dx: int) -> int:
    """Foreground pixels of ``a`` moved by (dy, dx) that land on foreground of ``b``."""
    h, w = a.shape
    if abs(dy) >= h or abs(dx) >= w:
        return 0
    ya, yb = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xa, xb = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    return int(np.count_nonzero(a[ya, xa] & b[yb, xb]))


def shift_frame(frame: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``frame`` moved by the integer (dy, dx) ``shift``; pixels moved in are 0 (no wrap)."""
    dy, dx = (round(float(v)) for v in shift)
    out = np.zeros_like(frame)
    h, w = frame.shape
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = frame[
        max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _outlines(frame: np.ndarray) -> np.ndarray:
    """Pixels whose label differs from the pixel below or to the right."""
    f = np.asarray(frame)
    out = np.zeros(f.shape, bool)
    out[:-1] |= f[:-1] != f[1:]
    out[:, :-1] |= f[:, :-1] != f[:, 1:]
    return out


def outline_spectrum(frame: np.ndarray) -> np.ndarray:
    """Fourier transform (``scipy.fft.rfft2``, float32) of a label frame's cell outlines,
    the input of :func:`frame_drift`'s phase correlation; compute it once per frame and pass
    it to the two pairs the frame belongs to."""
    from scipy import fft

    return fft.rfft2(_outlines(frame).astype(np.float32))


def _phase_shift(sa: np.ndarray, sb: np.ndarray, shape: tuple[int, int]) -> tuple[int, int]:
    """Displacement of the cells from frame a to frame b by phase correlation of their
    outline spectra (:func:`outline_spectrum`).

    The integer peak of skimage's ``phase_cross_correlation`` (its test oracle), on real
    half-spectra in float32: one inverse transform per pair and one forward transform per
    frame (:class:`DriftChain`), each of half size, where skimage makes three full complex
    ones per pair.
    """
    from scipy import fft

    prod = sa * sb.conj()
    prod /= np.maximum(np.abs(prod), 100 * np.finfo(np.float32).eps)
    cc = np.abs(fft.irfft2(prod, s=shape))
    peak = np.array(np.unravel_index(int(np.argmax(cc)), shape))
    size = np.array(shape)
    peak[peak > size // 2] -= size[peak > size // 2]  # beyond half the frame: wrapped
    # the peak is the shift that registers b onto a: the cells moved by its opposite
    return -int(peak[0]), -int(peak[1])


def _overlap_shift(fa: np.ndarray, fb: np.ndarray) -> tuple[int, int]:
    """The integer shift of foreground ``fa`` that lands most of it on foreground ``fb``.

    Cross-correlation of the two masks (FFT) at a resolution of at most ~256 px per side, then
    refined at full resolution within one coarse pixel.
    """
    from scipy.signal import fftconvolve

    h, w = fa.shape
    s = max(1, int(np.ceil(max(h, w) / 256)))
    hh, ww = -(-h // s) * s, -(-w // s) * s

    def pool(m: np.ndarray) -> np.ndarray:
        # share of foreground in each s x s block, as s strided sums per axis: 10x faster
        # than a mean over a 4-d reshape (whose inner loops are s long)
        p: np.ndarray = np.zeros((hh, ww), np.uint8 if s <= 255 else np.uint16)
        p[:h, :w] = m
        c: np.ndarray = p[:, 0::s].copy()  # s pixels per block row: the dtype holds the count
        for k in range(1, s):
            c += p[:, k::s]
        r = c[0::s].astype(np.float32)
        for k in range(1, s):
            r += c[k::s]
        return r / (s * s)

    a, b = pool(fa), pool(fb)
    cc = fftconvolve(b, a[::-1, ::-1], mode="full")
    iy, ix = np.unravel_index(int(np.argmax(cc)), cc.shape)
    cy, cx = int(iy - (a.shape[0] - 1)) * s, int(ix - (a.shape[1] - 1)) * s
    if s == 1:
        return int(cy), int(cx)
    # refine by halving steps around the coarse peak: ~8 log2(s) full-resolution overlaps
    best = (_shifted_overlap(fa, fb, cy, cx), -(cy * cy + cx * cx), cy, cx)
    step = s
    while step > 1:
        step = (step + 1) // 2
        y0, x0 = best[2], best[3]
        for dy in (-step, 0, step):
            for dx in (-step, 0, step):
                if dy or dx:
                    y, x = y0 + dy, x0 + dx
                    best = max(best, (_shifted_overlap(fa, fb, y, x), -(y * y + x * x), y, x))
    return best[2], best[3]


def _cells_carried(a: np.ndarray, fb: np.ndarray, dy: int, dx: int) -> int:
    """How many cells of label frame ``a``, moved by (dy, dx), land mostly (> 50 %) on the
    foreground ``fb``."""
    moved = shift_frame(a, np.array([dy, dx]))
    # judged on the pixels that stay in the frame (a cell may be shifted partly out)
    kept, n_kept = np.unique(moved[moved > 0], return_counts=True)
    landed, n_on = np.unique(moved[(moved > 0) & fb], return_counts=True)
    ok = 2 * n_on > n_kept[np.searchsorted(kept, landed)]
    return int(ok.sum())


def frame_drift(
    a: np.ndarray, b: np.ndarray, spectra: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """Whole-frame displacement (dy, dx) of the cells from label frame ``a`` to frame ``b``.

    Two estimates, the one that superimposes more foreground wins: phase correlation of the
    cell outlines (pins a confluent frame's shift to the pixel) and the shift maximising the
    overlap of the foregrounds (holds when the outlines change, e.g. when many cells divide
    at once: measured on a real E. coli colony, phase correlation alone missed 4 of 19
    shifts of 20-80 px). (0, 0) when either frame is empty or when the shift found does not
    overlap the foregrounds better than no shift (10 % margin) or superimposes less than half
    of the foreground (for the overlap estimate: 70 %, and at least two cells
    must land on foreground).

    ``spectra`` are the two frames' :func:`outline_spectrum` when they were computed already
    (a movie's frames each belong to two pairs).
    """
    fa, fb = np.asarray(a) != 0, np.asarray(b) != 0
    if not fa.any() or not fb.any():
        return np.zeros(2)
    sa, sb = spectra if spectra is not None else (outline_spectrum(a), outline_spectrum(b))
    phase = _phase_shift(sa, sb, fa.shape)
    over = _overlap_shift(fa, fb)
    zero, least = _shifted_overlap(fa, fb, 0, 0), min(fa.sum(), fb.sum())
    best: tuple[int, int, int, int] | None = None
    # a stage move carries every cell: the shift must superimpose most of the foreground,
    # not one fast cell's outline (and beat no shift at all). The overlap estimate must
    # superimpose more (70 %): among a few cells it can otherwise lay one cell on its
    # neighbour's daughter (measured: 65 % there, 74-98 % for the real colony's shifts),
    # and carry at least two cells: one cell laid on a newcomer is not a stage move
    for cand, share in ((phase, 0.5), (over, 0.7)):
        if cand == (0, 0):
            continue
        moved = _shifted_overlap(fa, fb, *cand)
        if moved <= 1.1 * zero or moved < share * least:
            continue
        if cand == over and cand != phase and _cells_carried(np.asarray(a), fb, *cand) < 2:
            continue
        key = (moved, -(cand[0] ** 2 + cand[1] ** 2), *cand)  # ties: the shorter shift
        best = key if best is None or key > best else best
    if best is None:
        return np.zeros(2)
    return np.array(best[2:], np.float64)


#: a frame pair is compared for a stage move unless at least this share of the later frame's
#: cells have a cell of the earlier frame within a quarter of their own diameter (measured on
#: 20 movies, real and synthetic: 0.00-0.29 across every stage move that the masks' shift
#: found, 0.66-1.00 on the still-stage movies of many cells; see :func:`drift_suspects`)
STILL_SHARE = 0.5


def drift_suspects(det: Detections) -> np.ndarray:
    """The frame pairs t-1 → t that may hold a stage move.

    A gate, not an estimate: on a still stage nearly every cell still covers the place it
    held a frame before, while a stage move leaves most cells away from where any cell was (a
    random shift of a confluent field brings about a quarter of the cells within a quarter
    diameter of some cell's old place). Pairs where at least :data:`STILL_SHARE` of the cells
    stayed put are left out of the masks' comparison; every other pair (few cells, fast
    cells, a jump) is measured by :func:`frame_drift` as before. This keeps the comparison,
    which costs more than linking, off movies that do not need it (issue 20's 200 frames of
    1024²: no pair measured) without voting a shift from centroids, which few cells fool.

    Parameters
    ----------
    det
        The movie's cells (centroids and areas).

    Returns
    -------
    np.ndarray
        (T,) bool, True where pair t-1 → t is to be measured (row 0 is False).
    """
    n = det.n_frames
    out = np.zeros(n, bool)
    if n < 2 or len(det) == 0:
        return out
    off = det.frame_offsets()
    pts = det.coords
    for t in range(1, n):
        a, b = slice(off[t - 1], off[t]), slice(off[t], off[t + 1])
        out[t] = pair_suspect(pts[a], pts[b], det.area[b])
    return out


def pair_suspect(before: np.ndarray, after: np.ndarray, area_after: np.ndarray) -> bool:
    """Whether one frame pair may hold a stage move (the test of :func:`drift_suspects`).

    Parameters
    ----------
    before
        (N, 2) centroids of the earlier frame's cells.
    after, area_after
        (M, 2) centroids and (M,) areas (px) of the later frame's cells.

    Returns
    -------
    bool
        True unless at least :data:`STILL_SHARE` of the later cells have an earlier cell
        within a quarter of their diameter; False when either frame is empty (an empty frame
        has no drift: :func:`frame_drift` gives zero).
    """
    if len(before) == 0 or len(after) == 0:
        return False
    reach = 0.25 * 2.0 * np.sqrt(np.asarray(area_after, np.float64) / np.pi)
    step, _ = cKDTree(np.asarray(before, np.float64)).query(np.asarray(after, np.float64))
    return bool(np.mean(step <= reach) < STILL_SHARE)


def movie_drift(
    labels: Any, cores: int = 1, progress: Callable[[int, int], Any] | None = None,
    cancel: Callable[[], bool] | None = None, pairs: np.ndarray | None = None,
) -> np.ndarray:
    """(T, 2) stage drift of a label movie: row t is :func:`frame_drift` of frames t-1 → t
    (row 0 is zero).

    Parameters
    ----------
    labels
        (T, Y, X) label movie (numpy, zarr, dask or LabelMovie), read one frame at a time.
    cores
        Threads measuring frame pairs in parallel (each then reads its two frames and
        computes both outline spectra; with one core every frame is read and transformed
        once).
    progress, cancel
        ``progress(done, total)`` per frame pair measured (total: T, or the number of
        ``pairs`` given; not called when that is 0); ``cancel()`` polled as often (True raises
        ``H4TracksError("Tracking cancelled")``).
    pairs
        (T,) bool, the frame pairs t-1 → t to measure (e.g. :func:`drift_suspects`); the
        others keep zero and their frames are not read. None measures every pair.
    """
    n = int(labels.shape[0])
    steps = np.zeros((n, 2))
    todo = list(range(1, n)) if pairs is None else [int(t) for t in np.flatnonzero(pairs)
                                                    if 0 < t < n]
    total = n if pairs is None else len(todo)

    def tick(done: int) -> None:
        if cancel is not None and cancel():
            raise H4TracksError("Tracking cancelled")
        if progress is not None and total:
            progress(done, total)

    if not todo:  # nothing to measure: no frame read, cancel still polled
        tick(total)
        return steps
    if cores > 1:
        with ThreadPoolExecutor(max_workers=cores) as pool:
            futures = [pool.submit(lambda t: frame_drift(read_frame(labels, t - 1),
                                                         read_frame(labels, t)), t)
                       for t in todo]
            try:
                for i, (t, f) in enumerate(zip(todo, futures, strict=True)):
                    steps[t] = f.result()
                    tick(i + 1 + total - len(todo))
            finally:
                for f in futures:
                    f.cancel()
        return steps
    # one core: read the frames in order, each once, so a frame shared by two measured
    # pairs is transformed once
    chain = DriftChain()
    needed = sorted({u for t in todo for u in (t - 1, t)})
    wanted = set(todo)
    done = 0
    for u in needed:
        # only a wanted pair is measured: its earlier frame is always the one read before
        step = chain.next(read_frame(labels, u), consecutive=u in wanted)
        if u in wanted:
            steps[u] = step
        if u in wanted or (pairs is None and u == 0):  # all pairs: one tick per frame
            done += 1
            tick(done)
    return steps


class DriftChain:
    """The drift of each frame of a movie read in order from the one before, computing every
    frame's outline spectrum once (:func:`frame_drift` on consecutive pairs)."""

    def __init__(self) -> None:
        self._prev: tuple[np.ndarray, np.ndarray] | None = None

    def next(self, frame: np.ndarray, consecutive: bool = True) -> np.ndarray:
        """Drift (dy, dx) from the previous frame to ``frame`` (zero for the first frame or
        when ``consecutive`` is False, i.e. frames were skipped)."""
        frame = np.asarray(frame)
        spec = outline_spectrum(frame)
        prev, self._prev = self._prev, (frame, spec)
        if prev is None or not consecutive:
            return np.zeros(2)
        return frame_drift(prev[0], frame, (prev[1], spec))


def cumulative_drift(steps: np.ndarray) -> np.ndarray:
    """(T, 2) position of every frame in stage coordinates from the (T, 2) drift of frame
    t-1 → t (row 0 ignored): the drift between frames s < t is ``cum[t] - cum[s]``."""
    steps = np.asarray(steps, np.float64).reshape(-1, 2).copy()
    if steps.size:
        steps[0] = 0.0
    return np.cumsum(steps, axis=0)


def local_motion(
    t: np.ndarray, yx: np.ndarray, link_parent: np.ndarray, link_child: np.ndarray,
    drift_cum: np.ndarray, radius: float, k: int = 24, min_neighbours: int = 3,
) -> np.ndarray:
    """Smooth local motion (dy, dx per frame, after drift) at every node.

    Parameters
    ----------
    t, yx
        (N,) frames and (N, 2) positions of the nodes.
    link_parent, link_child
        Node indices of the links of a first pass (any frame gap).
    drift_cum
        Output of :func:`cumulative_drift`.
    radius
        Neighbourhood radius (px).
    k, min_neighbours
        At most ``k`` nearest linked neighbours are used; with fewer than ``min_neighbours``
        the local motion is zero (drift only). 24 rather than a handful: the median then
        outvotes the wrong links of a first pass that crowd one spot (real dense colony,
        global tracking TRA 0.9932 with 8 vs 0.9953 with 24, four passes; 32-48 no better;
        a robust local affine fit instead of the median was worse, 0.9928).

    Returns
    -------
    (N, 2) residual velocity: expected position at frame t + g is
    ``yx + drift(t → t+g) + g × velocity``.
    """
    n = t.size
    vel = np.zeros((n, 2))
    if link_parent.size == 0 or n == 0:
        return vel
    gap = (t[link_child] - t[link_parent]).astype(np.float64)
    dt_drift = drift_cum[t[link_child]] - drift_cum[t[link_parent]]
    res = (yx[link_child] - yx[link_parent] - dt_drift) / gap[:, None]
    src_t = t[link_parent]
    # one KD-tree per frame over the linked parents; all queries of a frame at once
    order = np.argsort(src_t, kind="stable")
    src_sorted = src_t[order]
    bounds = np.searchsorted(src_sorted, np.arange(int(t.max()) + 2))
    node_order = np.argsort(t, kind="stable")
    node_bounds = np.searchsorted(t[node_order], np.arange(int(t.max()) + 2))
    for f in range(int(t.max()) + 1):
        lo, hi = bounds[f], bounds[f + 1]
        nodes = node_order[node_bounds[f]:node_bounds[f + 1]]
        if hi - lo < min_neighbours or nodes.size == 0:
            continue
        links = order[lo:hi]
        tree = cKDTree(yx[link_parent[links]])
        kk = min(k, links.size)
        d, j = tree.query(yx[nodes], k=kk, distance_upper_bound=radius)
        d, j = d.reshape(nodes.size, kk), j.reshape(nodes.size, kk)
        ok = np.isfinite(d)
        jj = np.where(ok, j, 0)
        vy = np.where(ok, res[links[jj], 0], np.nan)
        vx = np.where(ok, res[links[jj], 1], np.nan)
        enough = ok.sum(axis=1) >= min_neighbours
        if enough.any():
            vel[nodes[enough], 0] = np.nanmedian(vy[enough], axis=1)
            vel[nodes[enough], 1] = np.nanmedian(vx[enough], axis=1)
    return vel
