"""napari paint strokes as undoable actions (Qt-free: napari's atoms are plain arrays).

napari's Labels layer reports each committed edit with its ``paint`` event. The event's
``value`` is a list of *atoms*: mask atoms (``slice_key``, ``mask``, ``old_values``,
``new_value``: brush, fill, polygon) or ``(indices, old values, new value(s))`` tuples
(``data_setitem``). A brush *drag* is reported after all its pixels were written; a single
click or a fill is reported **before** napari writes the pixels. So nothing here reads the
new values from the labels: the first atom touching a pixel gives its value before the
stroke, the last one its value after.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from h4tracks.core.actions import Action, ActionGroup, RemoveEdge, SetLabelPixels
from h4tracks.core.project import Project

__all__ = ["stroke_action", "stroke_changes"]


def _atom_pixels(atom: Any, nx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(frame, flat index in the frame, value before, value after) of one atom's pixels."""
    if hasattr(atom, "slice_key"):  # napari's mask atom: bounding box + mask + old values
        grids = np.meshgrid(*[np.arange(s.start or 0, s.stop) for s in atom.slice_key],
                            indexing="ij")
        sel = np.ones(grids[0].shape, bool) if atom.mask is None else np.asarray(atom.mask)
        coords = [g[sel] for g in grids]
        old = np.asarray(atom.old_values).ravel()
        new = np.asarray(atom.new_value)
    else:  # (indices, old values, new value(s))
        coords = [np.asarray(c).ravel() for c in atom[0]]
        old = np.asarray(atom[1]).ravel()
        new = np.asarray(atom[2])
    n = coords[0].size
    old = np.broadcast_to(old, (n,)) if old.size != n else old
    new = np.broadcast_to(new.ravel() if new.size == n else new.ravel()[:1], (n,))
    if len(coords) == 2:  # a single-frame (2D) layer
        coords = [np.zeros_like(coords[0]), *coords]
    t, y, x = (np.asarray(c, np.int64) for c in coords[-3:])
    return t, y * nx + x, old.astype(np.uint32), new.astype(np.uint32)


def stroke_changes(
    atoms: Sequence[Any], shape: tuple[int, ...],
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per frame: (sorted flat indices, value before the stroke, value after it)."""
    nx = int(shape[-1])
    parts = [_atom_pixels(a, nx) for a in atoms]
    if not parts:
        return {}
    t = np.concatenate([p[0] for p in parts])
    flat = np.concatenate([p[1] for p in parts])
    old = np.concatenate([p[2] for p in parts])
    new = np.concatenate([p[3] for p in parts])
    order = np.arange(t.size)
    out = {}
    for tt in np.unique(t).tolist():
        on = t == tt
        f, o, nw, k = flat[on], old[on], new[on], order[on]
        # first touch gives the value before, last touch the value after
        srt = np.lexsort((k, f))
        fs = f[srt]
        first = np.r_[True, fs[1:] != fs[:-1]]
        last = np.r_[fs[1:] != fs[:-1], True]
        out[int(tt)] = (fs[first], o[srt][first], nw[srt][last])
    return out


def stroke_action(project: Project, atoms: Sequence[Any], description: str = "paint"
                  ) -> Action | None:
    """The action a napari stroke performs (None if it changes nothing).

    Cells the stroke erases entirely lose their links when the graph re-measures the frame;
    those links are read from the graph *before* it is synced and recorded in the action, so
    undoing the stroke brings them back. Call it from the paint event handler, before
    anything reads ``project.graph``.
    """
    labels = project.labels
    if labels is None:
        return None
    changes: list[SetLabelPixels] = []
    lost_links: list[Action] = []
    seen: set[tuple] = set()
    graph = project._graph  # not synced on purpose: erased cells still have their links
    for t, (idx, old, new) in sorted(stroke_changes(atoms, labels.shape).items()):
        diff = old != new
        if not diff.any():
            continue
        changes.append(SetLabelPixels(t, idx[diff], old[diff], new[diff], description))
        after = labels.frame(t).ravel().copy()
        after[idx] = new
        gone = np.setdiff1d(np.unique(old[diff]), np.unique(after))
        for lab in gone[gone > 0].tolist():
            node = (t, int(lab))
            if node not in graph:
                continue
            pred = graph.predecessor(node)
            links = ([(pred, node)] if pred is not None else []) + [
                (node, c) for c in graph.successors(node)]
            # a stroke over several frames can erase both cells of a link: record it once
            for link in links:
                if link not in seen:
                    seen.add(link)
                    lost_links.append(RemoveEdge(*link))
    if not changes:
        return None
    project.note_labels_used(max(int(c.new.max()) for c in changes))
    # undo order: pixels back first (the cell's node returns), then its links
    return ActionGroup([*lost_links, *changes], description)
