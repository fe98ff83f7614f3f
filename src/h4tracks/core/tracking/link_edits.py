"""Curation verbs for tracks: link two cells, cut a piece out of a track, delete tracks.

Same style as :mod:`h4tracks.core.segmentation.label_edits`: every verb *builds* an undoable
:class:`~h4tracks.core.actions.ActionGroup` of :class:`~h4tracks.core.actions.AddEdge` /
:class:`~h4tracks.core.actions.RemoveEdge` actions from the current graph and returns it
without applying it; the caller applies it with ``history.do(action, project)``. Invalid
requests raise :class:`~h4tracks.errors.InputError` while building, so nothing changes.

Only edges are edited: nodes and the label image are never touched (deleting a track, as in
mmv_h4tracks, removes its links and leaves its cells in the segmentation, each becoming a
one-frame track), so an edit costs O(length of the affected tracks).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from h4tracks.core.actions import Action, ActionGroup, AddEdge, RemoveEdge
from h4tracks.core.graph import NodeKey, TrackGraph
from h4tracks.errors import InputError

if TYPE_CHECKING:
    from h4tracks.core.project import Project

__all__ = ["add_links", "delete_tracks", "link", "unlink"]


def _node(graph: TrackGraph, node: Iterable[int], what: str) -> NodeKey:
    try:
        t, label = (int(v) for v in node)
    except (TypeError, ValueError):
        raise InputError(f"the {what} cell must be a (frame, label) pair, got {node!r}") from None
    if label == 0:
        raise InputError(f"the {what} click in frame {t} is on the background, not on a cell")
    if (t, label) not in graph:
        raise InputError(f"there is no cell with label {label} in frame {t}")
    return t, label


def link(project: Project, a: Iterable[int], b: Iterable[int]) -> ActionGroup:
    """Link cell ``a = (t, label)`` to cell ``b`` of a later frame (gaps are allowed).

    If ``a`` already has a successor, ``b`` becomes its second daughter (a division).

    Raises
    ------
    InputError
        If a click is on background / no cell, both cells are in the same frame, ``b`` is
        before ``a``, ``b`` already has a parent or ``a`` already divides.
    """
    g = project.graph
    a, b = _node(g, a, "first"), _node(g, b, "second")
    if a[0] == b[0]:
        raise InputError(f"both cells are in frame {a[0]}; a link must join different frames")
    if b[0] < a[0]:
        raise InputError(
            f"the second cell (frame {b[0]}) comes before the first (frame {a[0]}); "
            "click the earlier cell first"
        )
    parent = g.predecessor(b)
    if parent is not None:
        raise InputError(
            f"cell {b[1]} in frame {b[0]} is already linked to cell {parent[1]} in frame "
            f"{parent[0]}; unlink it first"
        )
    if len(g.successors(a)) >= 2:
        raise InputError(f"cell {a[1]} in frame {a[0]} already divides into two cells")
    return ActionGroup([AddEdge(a, b)], f"link {a} -> {b}")


def add_links(
    project: Project, edges: Iterable[tuple[Iterable[int], Iterable[int]]],
    description: str = "track cell",
) -> ActionGroup:
    """One undo step adding several links, e.g. the result of
    :func:`~h4tracks.core.tracking.overlap.track_single_cell`."""
    g = project.graph
    acts: list[Action] = []
    for a, b in edges:
        acts.append(AddEdge(_node(g, a, "first"), _node(g, b, "second")))
    if not acts:
        raise InputError("there are no links to add")
    return ActionGroup(acts, description)


def unlink(project: Project, first: Iterable[int], last: Iterable[int]) -> ActionGroup:
    """Cut the piece of a track from ``first`` to ``last`` (both included) out of its lineage.

    Removes the edge into ``first`` and the edge(s) out of ``last``; the piece becomes a track
    of its own, and what came before and after it become separate tracks (a cut in the
    middle splits the track in two). ``first == last`` isolates one cell. The two clicks may
    come in either order.

    Raises
    ------
    InputError
        If a click is not on a cell, ``last`` does not descend from ``first``, or the piece
        has no link to cut.
    """
    g = project.graph
    first, last = _node(g, first, "first"), _node(g, last, "last")
    if last[0] < first[0]:
        first, last = last, first
    # walk back from `last` to the frame of `first`: the two must lie on one lineage path
    node: NodeKey | None = last
    while node is not None and node[0] > first[0]:
        node = g.predecessor(node)
    if node != first:
        raise InputError(
            f"cell {last[1]} in frame {last[0]} is not on the track of cell {first[1]} in "
            f"frame {first[0]}"
        )
    acts: list[Action] = []
    parent = g.predecessor(first)
    if parent is not None:
        acts.append(RemoveEdge(parent, first))
    acts.extend(RemoveEdge(last, child) for child in g.successors(last))
    if not acts:
        raise InputError("this piece of track has no links to cut")
    return ActionGroup(acts, f"unlink {first} .. {last}")


def delete_tracks(project: Project, track_ids: Iterable[int]) -> ActionGroup:
    """Remove every link of the given tracks (into, inside and out of them).

    Cells and labels stay: each cell of a deleted track becomes a one-frame track. A deleted
    mother track loses its links to its daughters; a deleted daughter loses the link from its
    mother.

    Raises
    ------
    InputError
        If a track id does not exist or the tracks have no links.
    """
    g = project.graph
    ids = sorted({int(i) for i in track_ids})
    if not ids:
        raise InputError("no track selected")
    known = g.track_ids()
    missing = np.setdiff1d(np.asarray(ids, np.int64), known)
    if missing.size:
        raise InputError(f"there is no track with id {int(missing[0])}")
    edges: set[tuple[NodeKey, NodeKey]] = set()
    for tid in ids:
        nodes = g.track_nodes(tid)
        head = g.predecessor(nodes[0])
        if head is not None:
            edges.add((head, nodes[0]))
        for n in nodes:
            edges.update((n, c) for c in g.successors(n))
    if not edges:
        raise InputError("the selected tracks have no links to delete")
    acts: list[Action] = [RemoveEdge(p, c) for p, c in sorted(edges)]
    return ActionGroup(acts, f"delete {len(ids)} track(s)")
