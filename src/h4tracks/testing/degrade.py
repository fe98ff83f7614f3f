"""Degraded segmentations of a ground-truth label movie (the "imperfect masks" benchmark case).

:func:`degrade_labels` injects the three classic instance-segmentation errors, independently
in every frame: missed cells (removed), merges (two touching cells given one label) and splits
(one cell cut in two halves across its long axis, like an unseen division).
:func:`every_nth_frame` keeps one frame in ``step``: the same movie at a lower frame rate,
where cells move, grow and divide more between two frames.
"""

from __future__ import annotations

import numpy as np

from h4tracks.errors import InputError

__all__ = ["degrade_labels", "every_nth_frame"]


def degrade_labels(
    labels: np.ndarray,
    lineage: np.ndarray | None = None,
    *,
    miss: float = 0.02,
    merge: float = 0.02,
    split: float = 0.02,
    seed: int = 0,
) -> np.ndarray:
    """Return a copy of a label movie with missed, merged and split cells.

    Parameters
    ----------
    labels
        ``(T, Y, X)`` (or ``(Y, X)``) non-negative integer label movie, 0 = background.
    lineage
        Optional CTC lineage ``(id, first, last, parent)`` of ``labels`` (label == track id).
        When given, a cell chosen for a merge that has just been born merges preferably with
        its touching sister: the typical under-segmentation of a fresh division.
    miss
        Probability that a cell is missing from a frame (its pixels become background).
    merge
        Probability that a cell is merged into one of its touching neighbours; each merge
        involves two cells, so about ``2 × merge`` of the cells end up in a merged label.
    split
        Probability that a cell is split into two labels across its long axis.
    seed
        Seed of the random generator.

    Returns
    -------
    numpy.ndarray
        uint32 label movie of the same shape. Untouched cells keep their value; a merged pair
        keeps one of its two values; the second half of a split cell gets a new value above
        the frame's maximum. Values are per frame and are not track ids.

    Raises
    ------
    InputError
        If ``labels`` is not a 2D/3D non-negative integer array or a rate is not in [0, 1].
    """
    arr = np.asarray(labels)
    if arr.ndim not in (2, 3) or arr.dtype.kind not in "iu":
        raise InputError(f"labels must be a (T, Y, X) integer movie, got {arr.dtype} {arr.shape}.")
    if arr.size and arr.min() < 0:
        raise InputError("labels must be non-negative.")
    for name, rate in (("miss", miss), ("merge", merge), ("split", split)):
        if not 0.0 <= float(rate) <= 1.0:
            raise InputError(f"{name} must lie in [0, 1], got {rate!r}.")
    movie = arr[np.newaxis] if arr.ndim == 2 else arr
    rng = np.random.default_rng(seed)
    born: dict[int, dict[int, int]] = {}
    if lineage is not None:
        lin = np.asarray(lineage, np.int64).reshape(-1, 4)
        for tid, first, _, parent in lin[lin[:, 3] > 0].tolist():
            born.setdefault(first, {})[tid] = parent
    out = np.empty(movie.shape, np.uint32)
    for t in range(movie.shape[0]):
        out[t] = _degrade_frame(movie[t], rng, miss, merge, split, born.get(t, {}))
    return out[0] if arr.ndim == 2 else out


def _degrade_frame(
    frame: np.ndarray, rng: np.random.Generator, miss: float, merge: float, split: float,
    sisters: dict[int, int],
) -> np.ndarray:
    frame = frame.astype(np.int64)
    ids = np.unique(frame)
    ids = ids[ids > 0]
    n = ids.size
    if n == 0:
        return frame.astype(np.uint32)
    # One draw per cell and error type, in a fixed order, so rates act independently.
    u_miss, u_merge, u_split = rng.random(n), rng.random(n), rng.random(n)
    lut = np.arange(int(ids[-1]) + 1, dtype=np.int64)

    # Merges first, on the intact frame: pick a random touching neighbour of each chosen cell
    # that is not already part of a merge.
    chosen = ids[u_merge < merge]
    if chosen.size:
        nb = _neighbours(frame)
        used: set[int] = set()
        for a in rng.permutation(chosen).tolist():
            if a in used:
                continue
            cand = [b for b in nb.get(a, ()) if b not in used]
            if not cand:
                continue
            sister = [b for b in cand if sisters.get(b, -1) == sisters.get(a, -2)]
            b = sister[0] if sister else cand[int(rng.integers(len(cand)))]
            lut[b] = a
            used.update((a, b))
    out = lut[frame]

    # Splits: cut across the long axis (principal axis of the pixel cloud) through the centroid.
    to_split = ids[(u_split < split) & (lut[ids] == ids)]
    to_split = to_split[~np.isin(to_split, lut[ids][lut[ids] != ids])]  # not a merged label
    if to_split.size:
        out = _split(out, to_split)

    # Misses last: a missed cell is simply absent, whatever else happened to it.
    gone = ids[u_miss < miss]
    if gone.size:
        out[np.isin(frame, gone)] = 0
    return out.astype(np.uint32)


def _neighbours(frame: np.ndarray) -> dict[int, list[int]]:
    """Labels sharing a 4-connected border, ``{label: sorted neighbour labels}``."""
    pairs = []
    for a, b in ((frame[:, :-1], frame[:, 1:]), (frame[:-1, :], frame[1:, :])):
        touch = (a != b) & (a > 0) & (b > 0)
        pairs.append(np.stack([a[touch], b[touch]], axis=1))
    p = np.concatenate(pairs)
    p = np.unique(np.concatenate([p, p[:, ::-1]]), axis=0)
    out: dict[int, list[int]] = {}
    for a, b in p.tolist():
        out.setdefault(a, []).append(b)
    return out


def _split(out: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Give the pixels of each label in ``which`` beyond its centroid along the long axis a
    new label (vectorised with bincount moments)."""
    which = np.sort(which)
    flat = out.ravel()
    sel = np.isin(flat, which)
    pix = np.flatnonzero(sel)
    lab = flat[pix]
    k = np.searchsorted(which, lab)
    m = which.size
    y, x = np.divmod(pix, out.shape[1])
    y, x = y.astype(float), x.astype(float)
    cnt = np.bincount(k, minlength=m).astype(float)
    my = np.bincount(k, y, m) / cnt
    mx = np.bincount(k, x, m) / cnt
    dy, dx = y - my[k], x - mx[k]
    syy = np.bincount(k, dy * dy, m)
    sxx = np.bincount(k, dx * dx, m)
    sxy = np.bincount(k, dx * dy, m)
    # Orientation of the major axis of the 2x2 covariance.
    phi = 0.5 * np.arctan2(2 * sxy, sxx - syy)
    side = dx * np.cos(phi)[k] + dy * np.sin(phi)[k] > 0
    new = int(flat.max()) + 1 + np.arange(m)
    flat = flat.copy()
    flat[pix[side]] = new[k[side]]
    return flat.reshape(out.shape)


def every_nth_frame(
    labels: np.ndarray, lineage: np.ndarray, step: int, start: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A CTC tracking ground truth at a lower frame rate: frames ``start, start + step, …``.

    Parameters
    ----------
    labels
        ``(T, Y, X)`` label movie, label == track id.
    lineage
        Its CTC lineage ``(id, first, last, parent)``.
    step, start
        Keep every ``step``-th frame from ``start`` on.

    Returns
    -------
    labels, lineage
        The kept frames and their lineage: first / last frames renumbered, and the parent of a
        track the nearest ancestor that is still visible (a track seen in no kept frame is
        dropped, and its daughters hang from its own parent).
    """
    if step < 1 or not 0 <= start < max(len(labels), 1):
        raise InputError(f"every_nth_frame needs step >= 1 and 0 <= start < {len(labels)}, "
                         f"got step {step}, start {start}")
    kept = np.asarray(labels)[start::step]
    lin = np.asarray(lineage, np.int64).reshape(-1, 4)
    ids = [np.unique(f) for f in kept]
    t = np.concatenate([np.full(u.size, i) for i, u in enumerate(ids)])
    lab = np.concatenate(ids)
    t, lab = t[lab > 0], lab[lab > 0]
    seen = np.unique(lab)
    n = int(max(lin[:, [0, 3]].max(initial=0), seen.max(initial=0))) + 1
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, -1)
    np.minimum.at(first, lab, t)
    np.maximum.at(last, lab, t)
    parent = np.zeros(n, np.int64)
    parent[lin[:, 0]] = lin[:, 3]
    visible = np.zeros(n, bool)
    visible[seen] = True
    # climb to the nearest visible ancestor, one generation per round
    p = parent[seen]
    hidden = (p > 0) & ~visible[p]
    while hidden.any():
        p[hidden] = parent[p[hidden]]
        hidden = (p > 0) & ~visible[p]
    rows = np.column_stack([seen, first[seen], last[seen], p])
    return kept, rows.astype(np.int64)
