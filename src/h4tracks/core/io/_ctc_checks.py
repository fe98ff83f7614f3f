"""Checks of a Cell Tracking Challenge tracking (label movie + lineage table) for
:mod:`h4tracks.core.io.ctc`: the label movie's type and values, the lineage table's structure
(ids, frame ranges, parents) and the agreement of the two (each track present in exactly the
frames of its row, without gaps), with the per-track presence they are computed from.

Private: :mod:`h4tracks.core.io.ctc` is the public module.
"""

from __future__ import annotations

import numpy as np

from h4tracks.errors import InputError


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise InputError(f"labels must be a (T, Y, X) movie, got an array of shape {labels.shape}.")
    if labels.dtype.kind not in "iu":
        raise InputError(f"labels must be an integer array, got dtype {labels.dtype}.")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise InputError("labels must not contain negative values.")
    if labels.size and labels.max() > np.iinfo(np.uint32).max:
        raise InputError("labels must fit into uint32.")
    return labels


def _check_lineage(lineage: np.ndarray, n_frames: int) -> np.ndarray:
    """Structural checks of a lineage table; returns it as int64 sorted by track id."""
    arr = np.asarray(lineage)
    if arr.size == 0:
        return np.zeros((0, 4), np.int64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InputError(f"lineage must have shape (N, 4), got {arr.shape}.")
    integral_floats = (
        arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
    )
    if arr.dtype.kind not in "iu" and not integral_floats:
        raise InputError(f"lineage must hold integers, got dtype {arr.dtype}.")
    arr = arr.astype(np.int64)
    arr = arr[np.argsort(arr[:, 0], kind="stable")]
    ids, first, last, parent = arr.T
    checks = (
        (ids <= 0, "has a non-positive track id"),
        (np.r_[False, ids[1:] == ids[:-1]], "is listed more than once"),
        (first < 0, "starts before frame 0"),
        (last < first, "ends before it starts"),
        (last >= n_frames, f"ends after the last frame ({n_frames - 1})"),
        (parent < 0, "has a negative parent id"),
        (parent == ids, "is its own parent"),
    )
    for bad, what in checks:
        if bad.any():
            row = arr[np.flatnonzero(bad)[0]]
            raise InputError(f"Track {row[0]} {what} (lineage row {row.tolist()}).")
    has_parent = parent > 0
    pos = np.searchsorted(ids, parent).clip(max=len(ids) - 1)
    unknown = has_parent & (ids[pos] != parent)
    if unknown.any():
        row = arr[np.flatnonzero(unknown)[0]]
        raise InputError(f"Track {row[0]} has parent {row[3]}, which is not in the lineage.")
    late = has_parent & (last[pos] >= first)
    if late.any():
        row = arr[np.flatnonzero(late)[0]]
        raise InputError(
            f"Track {row[0]} starts in frame {row[1]} but its parent {row[3]} only ends in "
            f"frame {last[pos][np.flatnonzero(late)[0]]}; a parent must end before its child."
        )
    return arr


def _check_consistency(labels: np.ndarray, lineage: np.ndarray) -> None:
    """Each track is present in exactly the frames first..last of its lineage row."""
    ids, first, last, n_frames = _presence(labels)
    tid, f, la = lineage[:, 0], lineage[:, 1], lineage[:, 2]
    if len(ids):
        pos = np.searchsorted(ids, tid).clip(max=len(ids) - 1)
        found = ids[pos] == tid
    else:
        pos, found = np.zeros(len(tid), np.int64), np.zeros(len(tid), bool)
    wrong = found & ((first[pos] != f) | (last[pos] != la) | (n_frames[pos] != la - f + 1))
    bad = np.flatnonzero(~found | wrong)
    if bad.size:
        k = bad[0]
        if not found[k]:
            raise InputError(f"Track {tid[k]} is in the lineage but never appears in the labels.")
        p = pos[k]
        raise InputError(
            f"Track {tid[k]} is listed for frames {f[k]}-{la[k]} but appears in {n_frames[p]} "
            f"frame(s) between {first[p]} and {last[p]}."
        )
    listed = np.isin(ids, tid)
    if not listed.all():
        raise InputError(
            f"Label {int(ids[~listed][0])} appears in the labels but not in the lineage."
        )


def _presence(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per track id: first frame, last frame and number of frames it occurs in.

    Collects the distinct (frame, label) pairs frame by frame (one pass over the pixels) and
    reduces them with vectorised grouping.
    """
    n_t = labels.shape[0]
    top = int(labels.max(initial=0))
    if top == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty
    frames, values = [], []
    for t in range(n_t):
        frame = labels[t].ravel().astype(np.intp, copy=False)
        # bincount is O(pixels) and beats a sort when ids are reasonably small.
        present = (
            np.flatnonzero(np.bincount(frame, minlength=top + 1))
            if top < 4 * frame.size + 1024
            else np.unique(frame)
        )
        present = present[present > 0]
        values.append(present.astype(np.int64))
        frames.append(np.full(present.size, t, np.int64))
    t_all, v_all = np.concatenate(frames), np.concatenate(values)
    order = np.lexsort((t_all, v_all))
    t_all, v_all = t_all[order], v_all[order]
    ids, start, count = np.unique(v_all, return_index=True, return_counts=True)
    return ids, t_all[start], t_all[start + count - 1], count
