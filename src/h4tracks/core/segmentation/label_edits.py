"""Curation verbs for the segmentation: remove, merge, separate and relabel cells.

Style: every verb *builds* an undoable :class:`~h4tracks.core.actions.Action` from the current
state of the project and returns it **without applying it**; the caller applies it, normally
with ``history.do(action, project)`` so it can be undone::

    history = History()
    history.do(remove_cell(project, t, y, x), project)

An action must be applied to the state it was built from (build it right before applying it);
a label action refuses to apply if its frame changed in between. Invalid requests (a click on
background, two clicks on the same cell, ...) raise :class:`~h4tracks.errors.H4TracksError`
while building, so nothing changes.

Each verb touches only the pixels and graph nodes of frame ``t``. When a label disappears from
the frame, its edges are recorded as :class:`~h4tracks.core.actions.RemoveEdge` actions placed
before the pixel change in an :class:`~h4tracks.core.actions.ActionGroup`, so undo restores
the cell and then its links. Labels that persist keep their node and edges (their centroid and
area are re-measured).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from skimage.measure import label as _connected_components

from h4tracks.core.actions import (
    Action,
    ActionGroup,
    RemoveEdge,
    SetLabelPixels,
    editable_labels,
)
from h4tracks.errors import H4TracksError, InputError

if TYPE_CHECKING:
    from h4tracks.core.project import Project

__all__ = [
    "label_at",
    "merge_cells",
    "next_free_label",
    "relabel_unique",
    "remove_cell",
    "separate_region",
]

_MAX_LABEL = 2**32 - 1


def _frame(project: Project, t: int) -> tuple[int, np.ndarray]:
    labels = editable_labels(project)
    n = labels.shape[0]
    t = int(t)
    if not 0 <= t < n:
        raise H4TracksError(f"frame {t} is out of range (the movie has {n} frames)")
    return t, labels.frame(t)


def _label_at(frame: np.ndarray, t: int, y: Any, x: Any) -> int:
    iy, ix = round(float(y)), round(float(x))
    h, w = frame.shape
    if not (0 <= iy < h and 0 <= ix < w):
        raise H4TracksError(f"({y}, {x}) is outside frame {t} of size {h} x {w}")
    lab = int(frame[iy, ix])
    if lab == 0:
        raise H4TracksError(f"no cell at ({y}, {x}) in frame {t}")
    return lab


def label_at(project: Project, t: int, y: float, x: float) -> int:
    """The label under data pixel ``(y, x)`` of frame ``t`` (the cell a user clicked).

    Raises
    ------
    H4TracksError
        If the point is outside the frame or on background.
    """
    t, frame = _frame(project, t)
    return _label_at(frame, t, y, x)


def _edge_removals(project: Project, t: int, labels: list[int]) -> list[Action]:
    """RemoveEdge actions for every edge of the nodes ``(t, label)`` (parent edges first)."""
    g = project.graph
    out: list[Action] = []
    seen: set[tuple] = set()
    for lab in labels:
        key = (t, int(lab))
        if key not in g:
            continue
        edges = []
        parent = g.predecessor(key)
        if parent is not None:
            edges.append((parent, key))
        edges.extend((key, child) for child in g.successors(key))
        for e in edges:
            if e not in seen:
                seen.add(e)
                out.append(RemoveEdge(*e))
    return out


def _edit(
    project: Project, t: int, before: np.ndarray, after: np.ndarray, description: str
) -> Action:
    """Pixels change from ``before`` to ``after``; edges of labels that vanish go first."""
    pixels = SetLabelPixels.from_frames(t, before, after, description)
    old_ids = np.unique(pixels.old)
    gone = np.setdiff1d(old_ids[old_ids != 0], np.unique(after))
    removals = _edge_removals(project, t, gone.tolist())
    return ActionGroup([*removals, pixels], description)


def next_free_label(project: Project, t: int | None = None) -> int:
    """A label id larger than any ever used in the project (:meth:`Project.next_free_label`).

    ``t`` is checked (a frame of the movie) but does not matter: an id is free only if no
    frame ever held it, or undoing an edit could bring back a cell under an id that a new
    cell took meanwhile (one id, two pieces).
    """
    labels = project.labels
    if labels is None:
        return 1
    if t is not None:
        _frame(project, t)
    hi = project.next_free_label() - 1
    if hi >= _MAX_LABEL:
        raise H4TracksError("no free label left: the largest label is already 2**32 - 1")
    return hi + 1


def remove_cell(project: Project, t: int, y: float, x: float) -> Action:
    """The cell under ``(y, x)`` in frame ``t`` becomes background (its track is cut there).

    Raises
    ------
    H4TracksError
        If ``(y, x)`` is background or outside the frame.
    """
    t, frame = _frame(project, t)
    lab = _label_at(frame, t, y, x)
    after = np.where(frame == lab, np.uint32(0), frame)
    return _edit(project, t, frame, after, f"remove cell {lab} in frame {t}")


def merge_cells(
    project: Project, t: int, first: tuple[float, float], second: tuple[float, float]
) -> Action:
    """The cell under ``second`` takes the label of the cell under ``first`` in frame ``t``.

    The second cell's node and its edges go; the first keeps its node and edges.
    """
    t, frame = _frame(project, t)
    keep = _label_at(frame, t, *first)
    drop = _label_at(frame, t, *second)
    if keep == drop:
        raise H4TracksError(f"both points are on cell {keep} in frame {t}: nothing to merge")
    after = np.where(frame == drop, np.uint32(keep), frame)
    return _edit(project, t, frame, after, f"merge cell {drop} into {keep} in frame {t}")


def _as_mask(mask_or_pixels: Any, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(mask_or_pixels)
    if arr.dtype == bool:
        if arr.shape != shape:
            raise InputError(f"mask shape {arr.shape} does not match the frame {shape}")
        return arr
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise InputError("give a boolean (Y, X) mask or an (N, 2) integer array of (y, x)")
    ys, xs = arr[:, 0], arr[:, 1]
    if arr.size and (ys.min() < 0 or xs.min() < 0 or ys.max() >= shape[0]
                     or xs.max() >= shape[1]):
        raise InputError("pixel coordinates outside the frame")
    mask = np.zeros(shape, bool)
    mask[ys, xs] = True
    return mask


def separate_region(
    project: Project, t: int, mask_or_pixels: Any, new_label: int | None = None
) -> Action:
    """Give some pixels of one cell a new label (a new cell without links).

    Parameters
    ----------
    mask_or_pixels
        A boolean (Y, X) mask or an (N, 2) array of (y, x) pixels. Background pixels in it
        are ignored; the rest must all belong to one cell.
    new_label
        The label for the region; by default :func:`next_free_label` of frame ``t``. It must
        not be in use in frame ``t``.
    """
    t, frame = _frame(project, t)
    mask = _as_mask(mask_or_pixels, frame.shape)
    region = mask & (frame != 0)
    ids = np.unique(frame[region])
    if ids.size == 0:
        raise H4TracksError(f"the region contains no cell pixels in frame {t}")
    if ids.size > 1:
        raise H4TracksError(
            f"the region covers several cells in frame {t} ({', '.join(map(str, ids[:5]))})"
        )
    old = int(ids[0])
    if new_label is None:
        new_label = next_free_label(project, t)
    new_label = int(new_label)
    if not 0 < new_label <= _MAX_LABEL:
        raise H4TracksError(f"label must be from 1 to {_MAX_LABEL}, got {new_label}")
    if new_label != old and np.any(frame == new_label):
        raise H4TracksError(f"label {new_label} is already used in frame {t}")
    after = frame.copy()
    after[region] = new_label
    return _edit(project, t, frame, after, f"separate part of cell {old} as {new_label} "
                 f"in frame {t}")


def relabel_unique(project: Project, t: int) -> Action:
    """Split every label of frame ``t`` made of several disconnected fragments
    (4-connectivity): the largest fragment keeps the label, the others get new labels.

    Labels keep their nodes and edges (re-measured); the new fragments are new cells. The
    action is empty (changes nothing) when every label is already one fragment.
    """
    t, frame = _frame(project, t)
    comp = _connected_components(frame, background=0, connectivity=1)
    n = int(comp.max(initial=0))
    flat_comp = comp.ravel()
    orig = np.zeros(n + 1, np.int64)
    orig[flat_comp] = frame.ravel()
    sizes = np.bincount(flat_comp, minlength=n + 1)
    ids = np.arange(1, n + 1)
    # group components by original label, largest first (ties: lowest component index)
    order = ids[np.lexsort((ids, -sizes[1:], orig[1:]))]
    is_first = np.r_[True, orig[order][1:] != orig[order][:-1]] if n else np.zeros(0, bool)
    extra = order[~is_first]
    new_ids = orig.copy()
    if extra.size:
        start = max(int(frame.max()) + 1, next_free_label(project))
        if start + extra.size - 1 > _MAX_LABEL:
            raise H4TracksError("not enough free labels to split the fragments")
        new_ids[np.sort(extra)] = np.arange(start, start + extra.size)
    after = new_ids[comp].astype(np.uint32)
    return _edit(project, t, frame, after, f"relabel fragments in frame {t}")
