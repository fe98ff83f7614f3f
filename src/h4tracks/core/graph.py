"""TrackGraph: the lineage of every cell instance of a movie.

A node is one cell instance, keyed by ``(t, label)``, with its centroid ``(y, x)`` and area.
An edge links a node to its successor in a later frame (gaps are allowed, for gap closing);
a node with two successors is a division. A *track* is a maximal chain of nodes without
branching, and every node carries the id of its track. Track ids are stable: an edit only
renumbers the chains it touches, and an id is never reused for a different track.

Node attributes are stored column-wise in numpy arrays (rows never move; deleted rows are
masked), so exporting half a million nodes to napari is a vectorised operation, while a single
edit costs O(length of the affected chain).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

# the column storage, single-node lookups and whole-graph views are the base class in
# _graph_storage (which never imports this module)
from h4tracks.core._graph_storage import NodeKey, _GraphStorage, _key

# the array work of the bulk constructor and the napari / CTC conversions lives in
# graph_convert, which never imports this module; GraphError is defined there and re-exported
from h4tracks.core.graph_convert import (
    _COLUMNS,
    _DTYPES,
    GraphError,
    _TrackIdMismatch,
    bulk_build,
    chain_track_ids,
    check_track_ids,
    ctc_arrays,
    edge_rows,
    napari_arrays,
    napari_data,
)

__all__ = ["GraphError", "NodeKey", "TrackGraph"]


class TrackGraph(_GraphStorage):
    """Lineage graph of cell instances keyed by ``(t, label)``.

    Examples
    --------
    >>> g = TrackGraph()
    >>> g.add_node((0, 1), y=5.0, x=5.0, area=20)
    >>> g.add_node((1, 3), y=6.0, x=5.5, area=21)
    >>> g.add_edge((0, 1), (1, 3))
    >>> g.track_id((0, 1)) == g.track_id((1, 3))
    True
    """

    # ------------------------------------------------------------------ node edits
    def add_node(
        self, node: Iterable[int], *, y: float, x: float, area: int, track_id: int | None = None
    ) -> None:
        """Add one node; it starts a new track unless ``track_id`` is given."""
        key = _key(node)
        if key in self._index:
            raise GraphError(f"frame {key[0]} already has a cell with label {key[1]}")
        if key[1] <= 0:
            raise GraphError(f"label must be a positive integer, got {key[1]}")
        self._grow(1)
        row = self._n
        self._n += 1
        tid = self._new_track_id() if track_id is None else int(track_id)
        self._next_track = max(self._next_track, tid + 1)
        for c, v in zip(_COLUMNS, (key[0], key[1], y, x, area, tid), strict=True):
            self._cols[c][row] = v
        self._alive[row] = True
        self._index[key] = row
        self._changed()

    def add_nodes(
        self, t: int, labels: np.ndarray, centroids: np.ndarray, areas: np.ndarray
    ) -> None:
        """Add all cells of frame ``t`` at once, each starting its own track."""
        labels = np.asarray(labels, np.int64)
        n = labels.size
        if n == 0:
            return
        if np.any(labels <= 0):
            raise GraphError("labels must be positive integers")
        keys = [(int(t), int(lab)) for lab in labels.tolist()]
        clash = [k for k in keys if k in self._index]
        if clash or len(set(keys)) != n:
            raise GraphError(f"frame {t} already has cells with labels {[k[1] for k in clash]}")
        self._grow(n)
        rows = np.arange(self._n, self._n + n)
        centroids = np.asarray(centroids, np.float64).reshape(n, 2)
        self._cols["t"][rows] = t
        self._cols["label"][rows] = labels
        self._cols["y"][rows] = centroids[:, 0]
        self._cols["x"][rows] = centroids[:, 1]
        self._cols["area"][rows] = np.asarray(areas, np.int64)
        self._cols["track_id"][rows] = np.arange(self._next_track, self._next_track + n)
        self._next_track += n
        self._alive[rows] = True
        self._index.update(zip(keys, rows.tolist(), strict=True))
        self._n += n
        self._changed()

    def update_node(
        self, node: Iterable[int], *, y: float | None = None, x: float | None = None,
        area: int | None = None,
    ) -> None:
        """Change the measured attributes of a node (after its mask was edited)."""
        row = self._row(node)
        for c, v in (("y", y), ("x", x), ("area", area)):
            if v is not None:
                self._cols[c][row] = v
        self._changed()

    def remove_node(self, node: Iterable[int]) -> None:
        """Remove a node and its edges; the track it was on is cut there."""
        row = self._row(node)
        key = self._keyof(row)
        kids = self._succ.pop(row, [])
        for child in kids:
            del self._pred[child]
        if len(kids) == 1:
            # the continuation of this track becomes a track of its own; daughters of a
            # division already have their own ids and keep them
            self._set_track(kids[0], self._new_track_id())
        parent = self._pred.get(row)
        if parent is not None:
            self._remove_edge_rows(parent, row)
        self._alive[row] = False
        del self._index[key]
        self._changed()

    def relabel_node(self, node: Iterable[int], new_label: int) -> None:
        """Give a node a new label in the same frame, keeping its edges and track."""
        row = self._row(node)
        t = int(self._cols["t"][row])
        new_key = (t, int(new_label))
        if new_key[1] <= 0:
            raise GraphError(f"label must be a positive integer, got {new_label}")
        if new_key in self._index:
            raise GraphError(f"frame {t} already has a cell with label {new_label}")
        del self._index[self._keyof(row)]
        self._cols["label"][row] = new_label
        self._index[new_key] = row
        self._changed()

    # ------------------------------------------------------------------ edges and track ids
    def _chain(self, row: int) -> list[int]:
        """Rows of the track chain starting at ``row`` and following single successors."""
        out = [row]
        while True:
            kids = self._succ.get(row)
            if not kids or len(kids) != 1:
                return out
            row = kids[0]
            out.append(row)

    def _set_track(self, start: int, tid: int) -> None:
        self._cols["track_id"][self._chain(start)] = tid

    def add_edge(self, parent: Iterable[int], child: Iterable[int]) -> None:
        """Link ``parent`` to ``child`` (a later frame).

        A first successor continues the parent's track (the child's chain takes the parent's
        track id); a second successor makes a division, after which both daughters carry
        track ids of their own.
        """
        u, v = self._row(parent), self._row(child)
        tu, tv = int(self._cols["t"][u]), int(self._cols["t"][v])
        if tv <= tu:
            raise GraphError(
                f"a link must go forward in time: frame {tu} -> frame {tv} is not allowed"
            )
        if v in self._pred:
            raise GraphError(f"cell {self._keyof(v)} already has a parent")
        kids = self._succ.setdefault(u, [])
        if len(kids) >= 2:
            raise GraphError(f"cell {self._keyof(u)} already divides into two cells")
        kids.append(v)
        self._pred[v] = u
        if len(kids) == 1:
            self._set_track(v, int(self._cols["track_id"][u]))
        else:
            # Division: the former continuation becomes a daughter track with a fresh id;
            # the new child keeps the id of the track it started.
            self._set_track(kids[0], self._new_track_id())
        self._changed()

    def _remove_edge_rows(self, u: int, v: int) -> None:
        kids = self._succ[u]
        kids.remove(v)
        del self._pred[v]
        if kids:
            # The remaining daughter now continues the mother's track; the removed one keeps
            # the id of the daughter track it already was.
            self._set_track(kids[0], int(self._cols["track_id"][u]))
        else:
            del self._succ[u]
            self._set_track(v, self._new_track_id())

    def remove_edge(self, parent: Iterable[int], child: Iterable[int]) -> None:
        """Remove the link ``parent -> child``; the child's chain becomes a new track."""
        u, v = self._row(parent), self._row(child)
        if self._pred.get(v) != u:
            raise GraphError(f"cells {self._keyof(u)} and {self._keyof(v)} are not linked")
        self._remove_edge_rows(u, v)
        self._changed()

    def has_edge(self, parent: Iterable[int], child: Iterable[int]) -> bool:
        """Whether ``parent -> child`` is an edge."""
        try:
            u, v = self._row(parent), self._row(child)
        except GraphError:
            return False
        return self._pred.get(v) == u

    # ------------------------------------------------------------------ frame sync
    def sync_frame(
        self, t: int, labels: np.ndarray, centroids: np.ndarray, areas: np.ndarray
    ) -> tuple[list[NodeKey], list[NodeKey], list[NodeKey]]:
        """Make the nodes of frame ``t`` match a measurement of its label image.

        Labels that disappeared lose their node (and edges), new labels get a node, and the
        centroid/area of the others is updated where it changed. Only frame ``t`` is touched.

        Returns
        -------
        (added, removed, updated)
            Node keys in each category.
        """
        labels = np.asarray(labels, np.int64)
        centroids = np.asarray(centroids, np.float64).reshape(-1, 2)
        areas = np.asarray(areas, np.int64)
        old = {k[1] for k in self.frame_nodes(t)}
        new = dict(zip(labels.tolist(), range(labels.size), strict=True))
        removed = [(t, lab) for lab in sorted(old - new.keys())]
        for k in removed:
            self.remove_node(k)
        added, updated = [], []
        for lab, i in new.items():
            y, x, a = float(centroids[i, 0]), float(centroids[i, 1]), int(areas[i])
            if lab in old:
                row = self._index[(t, lab)]
                c = self._cols
                if c["y"][row] != y or c["x"][row] != x or c["area"][row] != a:
                    self.update_node((t, lab), y=y, x=x, area=a)
                    updated.append((t, lab))
            else:
                self.add_node((t, lab), y=y, x=x, area=a)
                added.append((t, lab))
        return added, removed, updated

    # ------------------------------------------------------------------ bulk constructors
    @classmethod
    def from_arrays(
        cls,
        nodes: dict[str, np.ndarray],
        edges: np.ndarray | None = None,
        *,
        next_track_id: int | None = None,
    ) -> TrackGraph:
        """Build a graph from node columns and an (E, 4) edge array in one vectorised pass.

        Parameters
        ----------
        nodes
            Columns ``t``, ``label``, ``y``, ``x``, ``area`` and optionally ``track_id``.
            Without track ids, tracks are computed as connected chains (see class docstring)
            and numbered in order of their first node's (t, label).
        edges
            (E, 4) array of (t_parent, label_parent, t_child, label_child).
        next_track_id
            Restores the id counter (defaults to max track id + 1).
        """
        g = cls()
        t = np.asarray(nodes["t"], np.int64)
        n = t.size
        g._grow(n)
        for c in ("t", "label", "y", "x", "area"):
            g._cols[c][:n] = np.asarray(nodes[c], _DTYPES[c])
        g._alive[:n] = True
        g._n = n
        labels = g._cols["label"][:n]
        par, chi, out_deg = edge_rows(t, labels, edges)
        g._set_links(par, chi)  # the lookup dicts are built when first needed
        if "track_id" in nodes:
            g._cols["track_id"][:n] = np.asarray(nodes["track_id"], np.int64)
            check_track_ids(g._cols["track_id"][:n], par, chi, out_deg)
        else:
            g._cols["track_id"][:n] = chain_track_ids(t, labels, par, chi, out_deg)
        max_tid = int(g._cols["track_id"][:n].max()) if n else 0
        g._next_track = max(max_tid + 1, int(next_track_id or 0))
        return g

    def copy(self) -> TrackGraph:
        """Deep copy (the storage copied as it is: no validation or track-id pass, which
        :meth:`from_arrays` needs and which costs ~10× more on a long movie)."""
        g = TrackGraph()
        g._cols = {c: col.copy() for c, col in self._cols.items()}
        g._alive = self._alive.copy()
        g._n = self._n
        if self._links is not None:  # not built here either: copy the row arrays
            g._set_links(*self._links)
        else:
            with bulk_build():
                g._index_d = dict(self._index_d)
                g._pred_d = dict(self._pred_d)
                g._succ_d = {u: list(kids) for u, kids in self._succ_d.items()}
        g._next_track = self._next_track
        g.revision = self.revision
        return g

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrackGraph):
            return NotImplemented
        if self._same_rows(other):
            return True
        a, b = self.node_table(), other.node_table()
        return all(np.array_equal(a[c], b[c]) for c in _COLUMNS) and np.array_equal(
            self.edge_array(), other.edge_array()
        )

    def _same_rows(self, other: TrackGraph) -> bool:
        """Whether both store the same rows and row links (a :meth:`copy` and its source,
        unless either was edited since): then they are equal without sorting anything."""
        n = self._n
        if n != other._n:
            return False
        if self._links is not None and other._links is not None:
            if not all(np.array_equal(a, b) for a, b in zip(self._links, other._links,
                                                             strict=True)):
                return False
        elif self._pred != other._pred:
            return False
        alive = self._alive[:n]
        return bool(np.array_equal(alive, other._alive[:n])) and all(
            np.array_equal(self._cols[c][:n][alive], other._cols[c][:n][alive])
            for c in _COLUMNS)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"TrackGraph({len(self)} nodes, {self.n_edges} edges, "
            f"{self.track_ids().size} tracks, {self.n_divisions} divisions)"
        )

    # ------------------------------------------------------------------ napari conversion
    def to_napari(self) -> tuple[np.ndarray, dict[int, list[int]]]:
        """napari Tracks ``data`` (N, 4: track_id, t, y, x) sorted by (track_id, t), and
        ``graph`` {daughter track: [mother track]}."""
        return napari_data(self.node_table()), self.track_parents()

    @classmethod
    def from_napari(
        cls,
        data: np.ndarray,
        graph: dict[int, Iterable[int]] | None = None,
        labels: Any | None = None,
        *,
        areas: bool = True,
    ) -> TrackGraph:
        """Build a graph from napari Tracks ``data`` + ``graph``.

        Parameters
        ----------
        data
            (N, 4) rows (track_id, t, y, x) as napari stores them.
        graph
            ``{track_id: [parent_track_id, ...]}`` (one parent per track).
        labels
            Optional (T, Y, X) label movie. When given, each node's label is read at its
            centroid (and its area counted); a centroid on background is an error. Without it
            the node label is the track id (the Cell Tracking Challenge convention).
        areas
            Count node areas from ``labels`` (ignored without labels).
        """
        arrays = napari_arrays(data, graph, labels, areas=areas)
        return cls() if arrays is None else cls._from_arrays_keeping_ids(*arrays)

    @classmethod
    def from_ctc(cls, labels: Any, lineage: np.ndarray) -> TrackGraph:
        """Build a graph from a Cell Tracking Challenge result: a label movie whose values are
        track ids and its track table rows ``(id, first, last, parent)``.

        Nodes are measured frame by frame; consecutive appearances of an id are linked (also
        across gaps), and each track's first node is linked to its parent's last node.
        Track ids are kept.
        """
        return cls._from_arrays_keeping_ids(*ctc_arrays(labels, lineage))

    @classmethod
    def _from_arrays_keeping_ids(
        cls, nodes: dict[str, np.ndarray], edges: np.ndarray
    ) -> TrackGraph:
        """``from_arrays`` keeping the given track ids where they fit the chain rule.

        napari and CTC allow a parent track with a single child track (not a division); in
        our model that is one chain, so then the ids are recomputed from the edges. Any other
        problem (missing node, second parent, ...) is raised as it is.
        """
        try:
            return cls.from_arrays(nodes, edges)
        except _TrackIdMismatch:
            return cls.from_arrays({k: v for k, v in nodes.items() if k != "track_id"}, edges)
