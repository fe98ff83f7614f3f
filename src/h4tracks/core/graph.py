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

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from h4tracks.errors import H4TracksError

NodeKey = tuple[int, int]

_COLUMNS = ("t", "label", "y", "x", "area", "track_id")
_DTYPES = {
    "t": np.int64,
    "label": np.int64,
    "y": np.float64,
    "x": np.float64,
    "area": np.int64,
    "track_id": np.int64,
}


class GraphError(H4TracksError):
    """An edit that would make the lineage invalid (unknown node, second parent, ...)."""


class _TrackIdMismatch(GraphError):
    """Given track ids do not follow the chain rule of the edges."""


def _key(node: Iterable[int]) -> NodeKey:
    t, label = node
    return int(t), int(label)


class TrackGraph:
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

    def __init__(self) -> None:
        self._cols: dict[str, np.ndarray] = {c: np.empty(0, _DTYPES[c]) for c in _COLUMNS}
        self._alive = np.empty(0, bool)
        self._n = 0
        self._index: dict[NodeKey, int] = {}
        self._succ: dict[int, list[int]] = {}
        self._pred: dict[int, int] = {}
        self._next_track = 1
        #: incremented on every change; the store uses it to skip rewriting an unchanged graph
        self.revision = 0

    # ------------------------------------------------------------------ storage helpers
    def _grow(self, extra: int) -> None:
        need = self._n + extra
        cap = self._alive.size
        if need <= cap:
            return
        new_cap = max(need, 2 * cap, 64)
        for c in _COLUMNS:
            col = np.zeros(new_cap, _DTYPES[c])
            col[: self._n] = self._cols[c][: self._n]
            self._cols[c] = col
        alive = np.zeros(new_cap, bool)
        alive[: self._n] = self._alive[: self._n]
        self._alive = alive

    def _row(self, node: Iterable[int]) -> int:
        key = _key(node)
        try:
            return self._index[key]
        except KeyError:
            raise GraphError(f"no cell with label {key[1]} in frame {key[0]}") from None

    def _keyof(self, row: int) -> NodeKey:
        return int(self._cols["t"][row]), int(self._cols["label"][row])

    def _new_track_id(self) -> int:
        tid = self._next_track
        self._next_track += 1
        return tid

    def _changed(self) -> None:
        self.revision += 1

    # ------------------------------------------------------------------ size and lookup
    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, node: object) -> bool:
        try:
            return _key(node) in self._index  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False

    def __iter__(self) -> Iterator[NodeKey]:
        return iter(sorted(self._index))

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return len(self._pred)

    @property
    def next_track_id(self) -> int:
        """The id the next new track will get (ids are never reused)."""
        return self._next_track

    def node(self, node: Iterable[int]) -> dict[str, Any]:
        """Attributes of one node as a dict (t, label, y, x, area, track_id)."""
        row = self._row(node)
        return {c: self._cols[c][row].item() for c in _COLUMNS}

    def track_id(self, node: Iterable[int]) -> int:
        """Track id of a node."""
        return int(self._cols["track_id"][self._row(node)])

    def successors(self, node: Iterable[int]) -> list[NodeKey]:
        """Successor nodes (0, 1, or 2 for a division), sorted."""
        return sorted(self._keyof(r) for r in self._succ.get(self._row(node), ()))

    def predecessor(self, node: Iterable[int]) -> NodeKey | None:
        """The parent node, or None."""
        p = self._pred.get(self._row(node))
        return None if p is None else self._keyof(p)

    def frame_nodes(self, t: int) -> list[NodeKey]:
        """Keys of all nodes in frame ``t``, sorted by label."""
        rows = self._alive_rows()
        rows = rows[self._cols["t"][rows] == t]
        return sorted(self._keyof(r) for r in rows)

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

    # ------------------------------------------------------------------ whole-graph views
    def _alive_rows(self) -> np.ndarray:
        return np.flatnonzero(self._alive[: self._n])

    def node_table(self) -> dict[str, np.ndarray]:
        """All nodes as columns (t, label, y, x, area, track_id), sorted by (t, label)."""
        rows = self._alive_rows()
        order = np.lexsort((self._cols["label"][rows], self._cols["t"][rows]))
        rows = rows[order]
        return {c: self._cols[c][rows].copy() for c in _COLUMNS}

    def edge_array(self) -> np.ndarray:
        """All edges as an (E, 4) int64 array of (t_parent, label_parent, t_child, label_child),
        sorted."""
        if not self._pred:
            return np.empty((0, 4), np.int64)
        child = np.fromiter(self._pred.keys(), np.int64, len(self._pred))
        parent = np.fromiter(self._pred.values(), np.int64, len(self._pred))
        t, lab = self._cols["t"], self._cols["label"]
        arr = np.stack([t[parent], lab[parent], t[child], lab[child]], axis=1)
        return arr[np.lexsort(arr.T[::-1])]

    def track_ids(self) -> np.ndarray:
        """Sorted unique track ids."""
        return np.unique(self._cols["track_id"][self._alive_rows()])

    def track_nodes(self, track_id: int) -> list[NodeKey]:
        """Nodes of one track in time order."""
        rows = self._alive_rows()
        rows = rows[self._cols["track_id"][rows] == track_id]
        rows = rows[np.argsort(self._cols["t"][rows])]
        return [self._keyof(r) for r in rows]

    def track_parents(self) -> dict[int, list[int]]:
        """``{daughter track id: [mother track id]}`` for every division (napari ``graph``)."""
        tid = self._cols["track_id"]
        out: dict[int, list[int]] = {}
        for u, kids in self._succ.items():
            if len(kids) == 2:
                for k in kids:
                    out[int(tid[k])] = [int(tid[u])]
        return out

    @property
    def n_divisions(self) -> int:
        """Number of nodes with two successors."""
        return sum(1 for kids in self._succ.values() if len(kids) == 2)

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
        if np.any(labels <= 0):
            raise GraphError("labels must be positive integers")
        # (t, label) packed into one int64 code: duplicates and edge endpoints are found with
        # sorting / searchsorted instead of a Python dict lookup per edge
        codes = (t << 32) | labels
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        if n and np.any(sorted_codes[1:] == sorted_codes[:-1]):
            raise GraphError("duplicate (t, label) nodes")
        g._index = dict(zip(zip(t.tolist(), labels.tolist(), strict=True), range(n),
                            strict=True))
        edges = np.empty((0, 4), np.int64) if edges is None else np.asarray(edges, np.int64)
        if edges.size:
            def rows_of(et: np.ndarray, el: np.ndarray) -> np.ndarray:
                c = (et << 32) | el
                pos = np.minimum(np.searchsorted(sorted_codes, c), max(n - 1, 0))
                missing = np.flatnonzero(sorted_codes[pos] != c) if n else np.arange(c.size)
                if missing.size:
                    i = missing[0]
                    raise GraphError(
                        f"edge refers to a missing node {(int(et[i]), int(el[i]))}"
                    )
                return order[pos]

            par = rows_of(edges[:, 0], edges[:, 1])
            chi = rows_of(edges[:, 2], edges[:, 3])
            if np.any(g._cols["t"][chi] <= g._cols["t"][par]):
                raise GraphError("edges must go forward in time")
            if np.unique(chi).size != chi.size:
                raise GraphError("a cell has more than one parent")
            out_deg = np.bincount(par, minlength=n)
            if out_deg.max() > 2:
                raise GraphError("a cell has more than two successors")
            g._pred = dict(zip(chi.tolist(), par.tolist(), strict=True))
            succ = g._succ
            for u, v in zip(par.tolist(), chi.tolist(), strict=True):
                kids = succ.get(u)
                if kids is None:
                    succ[u] = [v]
                else:
                    kids.append(v)
        else:
            par = chi = np.empty(0, np.int64)
            out_deg = np.zeros(n, np.int64)
        if "track_id" in nodes:
            g._cols["track_id"][:n] = np.asarray(nodes["track_id"], np.int64)
            g._check_track_ids(par, chi, out_deg)
        else:
            cont = out_deg[par] == 1  # an edge continues a track iff the parent has one child
            adj = coo_matrix((np.ones(int(cont.sum())), (par[cont], chi[cont])), shape=(n, n))
            _, comp = connected_components(adj, directed=False)
            # number the chains in order of their earliest node in (t, label) order
            order = np.lexsort((g._cols["label"][:n], t))
            _, first_pos = np.unique(comp[order], return_index=True)
            rank = np.argsort(np.argsort(first_pos))
            g._cols["track_id"][:n] = rank[comp] + 1
        max_tid = int(g._cols["track_id"][:n].max()) if n else 0
        g._next_track = max(max_tid + 1, int(next_track_id or 0))
        return g

    def _check_track_ids(self, par: np.ndarray, chi: np.ndarray, out_deg: np.ndarray) -> None:
        tid = self._cols["track_id"]
        cont = out_deg[par] == 1
        if np.any(tid[par[cont]] != tid[chi[cont]]):
            raise _TrackIdMismatch(
                "stored track ids disagree with the edges (a chain has two ids)"
            )
        if np.any(tid[par[~cont]] == tid[chi[~cont]]):
            raise _TrackIdMismatch(
                "stored track ids disagree with the edges (daughter keeps mother id)"
            )
        n = self._n
        # each track id must be exactly one chain: #nodes - #continuation edges == #tracks
        n_tracks = np.unique(tid[:n]).size
        if n - int(cont.sum()) != n_tracks:
            raise _TrackIdMismatch(
                "stored track ids disagree with the edges (an id spans two chains)"
            )

    def copy(self) -> TrackGraph:
        """Deep copy."""
        g = TrackGraph.from_arrays(
            self.node_table(), self.edge_array(), next_track_id=self._next_track
        )
        g.revision = self.revision
        return g

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrackGraph):
            return NotImplemented
        a, b = self.node_table(), other.node_table()
        return all(np.array_equal(a[c], b[c]) for c in _COLUMNS) and np.array_equal(
            self.edge_array(), other.edge_array()
        )

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
        tab = self.node_table()
        data = np.stack(
            [tab["track_id"].astype(np.float64), tab["t"], tab["y"], tab["x"]], axis=1
        )
        data = data[np.lexsort((data[:, 1], data[:, 0]))]
        return data, self.track_parents()

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
        data = np.asarray(data, np.float64)
        if data.ndim != 2 or data.shape[1] != 4:
            raise GraphError(f"napari tracks data must have 4 columns (ID,T,Y,X), got {data.shape}")
        if data.shape[0] == 0:
            return cls()
        tid = data[:, 0].astype(np.int64)
        t = np.rint(data[:, 1]).astype(np.int64)
        y, x = data[:, 2], data[:, 3]
        if labels is None:
            lab = tid.copy()
            area = np.zeros(tid.size, np.int64)
        else:
            lab = np.empty(tid.size, np.int64)
            area = np.zeros(tid.size, np.int64)
            iy = np.clip(np.rint(y).astype(np.int64), 0, labels.shape[1] - 1)
            ix = np.clip(np.rint(x).astype(np.int64), 0, labels.shape[2] - 1)
            for frame_t in np.unique(t).tolist():
                sel = np.flatnonzero(t == frame_t)
                frame = np.asarray(labels[frame_t])
                lab[sel] = frame[iy[sel], ix[sel]]
                if areas:
                    # np.unique, not bincount: label values may be huge (up to 2**32-1)
                    values, counts = np.unique(frame, return_counts=True)
                    area[sel] = counts[np.searchsorted(values, lab[sel])]
            bad = np.flatnonzero(lab == 0)
            if bad.size:
                i = bad[0]
                raise GraphError(
                    f"track {tid[i]} at frame {t[i]} has its point on background "
                    f"(y={y[i]:.1f}, x={x[i]:.1f}): cannot tell which cell it is"
                )
        order = np.lexsort((t, tid))
        tid, t, y, x, lab, area = (a[order] for a in (tid, t, y, x, lab, area))
        same = tid[1:] == tid[:-1]
        edges = [np.stack([t[:-1][same], lab[:-1][same], t[1:][same], lab[1:][same]], 1)]
        if graph:
            last = {}  # last node of each track
            first = {}
            ends = np.flatnonzero(np.r_[~same, True])
            starts = np.flatnonzero(np.r_[True, ~same])
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                first[int(tid[s])] = (t[s], lab[s])
                last[int(tid[e])] = (t[e], lab[e])
            div = []
            for child, parents in graph.items():
                parents = list(parents) if isinstance(parents, Iterable) else [parents]
                if not parents:
                    continue
                if len(parents) > 1:
                    raise GraphError(f"track {child} has more than one parent track")
                p, c = int(parents[0]), int(child)
                if p not in last or c not in first:
                    raise GraphError(f"graph links track {c} to unknown track {p}")
                div.append([*last[p], *first[c]])
            if div:
                edges.append(np.asarray(div, np.int64))
        nodes = {"t": t, "label": lab, "y": y, "x": x, "area": area, "track_id": tid}
        if np.unique(np.stack([t, lab], 1), axis=0).shape[0] != t.size:
            raise GraphError(
                "two track points fall on the same cell in one frame; "
                "the tracks do not match the labels"
            )
        return cls._from_arrays_keeping_ids(nodes, np.concatenate(edges).astype(np.int64))

    @classmethod
    def from_ctc(cls, labels: Any, lineage: np.ndarray) -> TrackGraph:
        """Build a graph from a Cell Tracking Challenge result: a label movie whose values are
        track ids and its track table rows ``(id, first, last, parent)``.

        Nodes are measured frame by frame; consecutive appearances of an id are linked (also
        across gaps), and each track's first node is linked to its parent's last node.
        Track ids are kept.
        """
        from h4tracks.core.measure import measure_movie

        nodes = measure_movie(labels)
        t, lab = nodes["t"], nodes["label"]
        order = np.lexsort((t, lab))
        t_s, lab_s = t[order], lab[order]
        same = lab_s[1:] == lab_s[:-1]
        edges = [np.stack([t_s[:-1][same], lab_s[:-1][same], t_s[1:][same], lab_s[1:][same]], 1)]
        lineage = np.asarray(lineage, np.int64).reshape(-1, 4)
        present = set(lab.tolist())
        div = []
        for tid, first, _, parent in lineage.tolist():
            if parent and parent in present and tid in present:
                p_last = int(lineage[lineage[:, 0] == parent, 2][0])
                div.append([p_last, parent, first, tid])
        if div:
            edges.append(np.asarray(div, np.int64))
        nodes["track_id"] = lab.copy()
        return cls._from_arrays_keeping_ids(nodes, np.concatenate(edges))

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
