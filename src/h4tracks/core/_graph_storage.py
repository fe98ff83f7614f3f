"""The storage of :class:`~h4tracks.core.graph.TrackGraph` and its read-only views.

Node attributes live column-wise in numpy arrays whose rows never move (deleted rows are masked);
``(t, label)`` keys map to rows, and edges are row -> row dicts. This base class holds that
storage, the lookups of single nodes and the vectorised views of the whole graph (node table,
edge array, tracks); :mod:`h4tracks.core.graph` adds the edits, which keep the track ids, and
the constructors. Private: import :class:`~h4tracks.core.graph.TrackGraph` and ``NodeKey`` from
there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from h4tracks.core.graph_convert import _COLUMNS, _DTYPES, GraphError, bulk_build, successor_lists

NodeKey = tuple[int, int]


def _key(node: Iterable[int]) -> NodeKey:
    t, label = node
    return int(t), int(label)


class _GraphStorage:
    """Column storage of a lineage graph, single-node lookups and whole-graph views.

    The lookups (``(t, label)`` → row, row → successors / parent) are dicts built on first
    use: a graph built in bulk (:meth:`TrackGraph.from_arrays`: read from a project, made
    by a tracker) keeps its links as two row arrays until then, because such a graph is
    often only exported, copied, compared or replaced, and a long movie's dicts take
    ~0.1 s to build (and a garbage-collector pass over 100k lists) for nothing.
    """

    def __init__(self) -> None:
        self._cols: dict[str, np.ndarray] = {c: np.empty(0, _DTYPES[c]) for c in _COLUMNS}
        self._alive = np.empty(0, bool)
        self._n = 0
        self._index_d: dict[NodeKey, int] = {}
        self._succ_d: dict[int, list[int]] = {}
        self._pred_d: dict[int, int] = {}
        #: (parent rows, child rows) of every link while the dicts are not built; then every
        #: row below ``_n`` is alive
        self._links: tuple[np.ndarray, np.ndarray] | None = None
        self._next_track = 1
        #: incremented on every change; the store uses it to skip rewriting an unchanged graph
        self.revision = 0

    # ------------------------------------------------------------------ lookups (lazy)
    def _set_links(self, par: np.ndarray, chi: np.ndarray) -> None:
        """Take the links as row arrays (all ``_n`` rows alive); dicts are built on use."""
        self._links = (np.asarray(par, np.int64), np.asarray(chi, np.int64))
        self._index_d, self._succ_d, self._pred_d = {}, {}, {}

    def _build(self) -> None:
        if self._links is None:
            return
        par, chi = self._links
        n = self._n
        with bulk_build():
            self._index_d = dict(zip(zip(self._cols["t"][:n].tolist(),
                                         self._cols["label"][:n].tolist(), strict=True),
                                     range(n), strict=True))
            self._pred_d = dict(zip(chi.tolist(), par.tolist(), strict=True))
            self._succ_d = successor_lists(par, chi)
        self._links = None

    @property
    def _index(self) -> dict[NodeKey, int]:
        self._build()
        return self._index_d

    @property
    def _succ(self) -> dict[int, list[int]]:
        self._build()
        return self._succ_d

    @property
    def _pred(self) -> dict[int, int]:
        self._build()
        return self._pred_d

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
        return self._n if self._links is not None else len(self._index_d)

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
        return int(self._links[0].size) if self._links is not None else len(self._pred_d)

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
        if self._links is not None:
            parent, child = self._links
        elif not self._pred_d:
            return np.empty((0, 4), np.int64)
        else:
            child = np.fromiter(self._pred_d.keys(), np.int64, len(self._pred_d))
            parent = np.fromiter(self._pred_d.values(), np.int64, len(self._pred_d))
        if parent.size == 0:
            return np.empty((0, 4), np.int64)
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
        if self._links is not None:
            return int(np.count_nonzero(np.bincount(self._links[0]) == 2))
        if not self._pred_d:
            return 0
        # counted in C: a Python loop over the successor lists took ~50 ms at 500k cells,
        # paid after every edit (the Data tab shows the count)
        parents = np.fromiter(self._pred_d.values(), np.int64, len(self._pred_d))
        return int(np.count_nonzero(np.bincount(parents) == 2))
