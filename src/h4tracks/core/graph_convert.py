"""Conversions behind :class:`~h4tracks.core.graph.TrackGraph`, on plain numpy arrays.

What lives here: the vectorised pass that turns node columns and an (E, 4) edge array into a
graph's storage (validation, edge rows, track ids of the chains), the conversion of napari
Tracks ``data`` + ``graph`` and of a Cell Tracking Challenge result (label movie + lineage) into
node columns and edges, and the conversion of a node table into napari ``data``. The methods
``TrackGraph.from_arrays``, ``to_napari``, ``from_napari`` and ``from_ctc`` are thin wrappers
around these functions.

This module works on arrays only and never imports :mod:`h4tracks.core.graph` (which imports
it at module level), so there is no import cycle. For the same reason :class:`GraphError` is
defined here, where the array checks raise it; :mod:`h4tracks.core.graph` re-exports it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from h4tracks.core.measure import measure_movie
from h4tracks.errors import H4TracksError

__all__ = [
    "GraphError",
    "bulk_build",
    "chain_track_ids",
    "check_track_ids",
    "ctc_arrays",
    "edge_rows",
    "napari_arrays",
    "napari_data",
    "successor_lists",
]

_COLUMNS = ("t", "label", "y", "x", "area", "track_id")
_DTYPES = {
    "t": np.int64,
    "label": np.int64,
    "y": np.float64,
    "x": np.float64,
    "area": np.int64,
    "track_id": np.int64,
}

#: node columns (``t``, ``label``, ``y``, ``x``, ``area``, optionally ``track_id``) and an
#: (E, 4) edge array of (t_parent, label_parent, t_child, label_child)
NodesAndEdges = tuple[dict[str, np.ndarray], np.ndarray]


class GraphError(H4TracksError):
    """An edit that would make the lineage invalid (unknown node, second parent, ...)."""


class _TrackIdMismatch(GraphError):
    """Given track ids do not follow the chain rule of the edges."""


@contextlib.contextmanager
def bulk_build() -> Iterator[None]:
    """Pause the cyclic garbage collector while a graph's dicts and lists are built.

    A long movie's graph is ~100k small lists and tuples, which hold no reference cycles;
    every automatic collection during the build would traverse all objects of the process
    (hundreds of thousands once zarr, scipy and pydantic are loaded), which makes building
    2-3 times slower. Collection resumes afterwards (process-wide, so with a build in another
    thread it may resume early: that only costs time).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ---------------------------------------------------------------------- node and edge arrays
def edge_rows(
    t: np.ndarray, labels: np.ndarray, edges: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the nodes and edges given to ``TrackGraph.from_arrays``.

    Returns the row of each edge's parent and child and the number of successors of every
    node; raises :class:`GraphError` for a non-positive label, a duplicate node, an edge to a
    missing node, an edge back in time, a second parent or a third successor.
    """
    n = t.size
    if np.any(labels <= 0):
        raise GraphError("labels must be positive integers")
    # (t, label) packed into one int64 code: duplicates and edge endpoints are found with
    # sorting / searchsorted instead of a Python dict lookup per edge
    codes = (t << 32) | labels
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    if n and np.any(sorted_codes[1:] == sorted_codes[:-1]):
        raise GraphError("duplicate (t, label) nodes")
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
        if np.any(t[chi] <= t[par]):
            raise GraphError("edges must go forward in time")
        if np.unique(chi).size != chi.size:
            raise GraphError("a cell has more than one parent")
        out_deg = np.bincount(par, minlength=n)
        if out_deg.max() > 2:
            raise GraphError("a cell has more than two successors")
    else:
        par = chi = np.empty(0, np.int64)
        out_deg = np.zeros(n, np.int64)
    return par, chi, out_deg


def successor_lists(par: np.ndarray, chi: np.ndarray) -> dict[int, list[int]]:
    """``{parent row: [child rows]}`` of the edges ``par[i] -> chi[i]``, in edge order.

    Parents come in the order of their first edge and children in edge order, as a loop over
    the edges would insert them; the grouping is done with one stable sort so that only the
    lists themselves are built in Python (a loop over 100k edges costs ~0.15 s).
    """
    par = np.asarray(par, np.int64)
    chi = np.asarray(chi, np.int64)
    if par.size == 0:
        return {}
    order = np.argsort(par, kind="stable")
    p, c = par[order], chi[order]
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    sizes = np.diff(np.r_[starts, p.size])
    by_first_edge = np.argsort(order[starts], kind="stable")
    starts, sizes = starts[by_first_edge], sizes[by_first_edge]
    kids = [[v] for v in c[starts].tolist()]
    for i in np.flatnonzero(sizes > 1).tolist():  # divisions: a few percent of the parents
        kids[i] = c[starts[i]:starts[i] + sizes[i]].tolist()
    return dict(zip(p[starts].tolist(), kids, strict=True))


def check_track_ids(
    tid: np.ndarray, par: np.ndarray, chi: np.ndarray, out_deg: np.ndarray
) -> None:
    """Raise :class:`_TrackIdMismatch` unless the given track ids (one per node row) follow
    the chain rule of the edges."""
    cont = out_deg[par] == 1
    if np.any(tid[par[cont]] != tid[chi[cont]]):
        raise _TrackIdMismatch(
            "stored track ids disagree with the edges (a chain has two ids)"
        )
    if np.any(tid[par[~cont]] == tid[chi[~cont]]):
        raise _TrackIdMismatch(
            "stored track ids disagree with the edges (daughter keeps mother id)"
        )
    n = tid.size
    # each track id must be exactly one chain: #nodes - #continuation edges == #tracks
    n_tracks = np.unique(tid).size
    if n - int(cont.sum()) != n_tracks:
        raise _TrackIdMismatch(
            "stored track ids disagree with the edges (an id spans two chains)"
        )


def chain_track_ids(
    t: np.ndarray, labels: np.ndarray, par: np.ndarray, chi: np.ndarray, out_deg: np.ndarray
) -> np.ndarray:
    """Track id of every node row: the chains of the edges, numbered from 1 in order of their
    first node's (t, label)."""
    n = t.size
    cont = out_deg[par] == 1  # an edge continues a track iff the parent has one child
    adj = coo_matrix((np.ones(int(cont.sum())), (par[cont], chi[cont])), shape=(n, n))
    _, comp = connected_components(adj, directed=False)
    # number the chains in order of their earliest node in (t, label) order
    order = np.lexsort((labels, t))
    _, first_pos = np.unique(comp[order], return_index=True)
    rank = np.argsort(np.argsort(first_pos))
    return rank[comp] + 1


# ---------------------------------------------------------------------- napari conversion
def napari_data(tab: dict[str, np.ndarray]) -> np.ndarray:
    """napari Tracks ``data`` (N, 4: track_id, t, y, x) sorted by (track_id, t) from a node
    table (``TrackGraph.node_table``)."""
    data = np.stack(
        [tab["track_id"].astype(np.float64), tab["t"], tab["y"], tab["x"]], axis=1
    )
    return data[np.lexsort((data[:, 1], data[:, 0]))]


def napari_arrays(
    data: np.ndarray,
    graph: dict[int, Iterable[int]] | None = None,
    labels: Any | None = None,
    *,
    areas: bool = True,
) -> NodesAndEdges | None:
    """Node columns (with track ids) and edges of napari Tracks ``data`` + ``graph``, or None
    when ``data`` has no rows. Parameters are those of ``TrackGraph.from_napari``."""
    data = np.asarray(data, np.float64)
    if data.ndim != 2 or data.shape[1] != 4:
        raise GraphError(f"napari tracks data must have 4 columns (ID,T,Y,X), got {data.shape}")
    if data.shape[0] == 0:
        return None
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
    return nodes, np.concatenate(edges).astype(np.int64)


# ---------------------------------------------------------------------- CTC conversion
def ctc_arrays(labels: Any, lineage: np.ndarray) -> NodesAndEdges:
    """Node columns (with track ids) and edges of a Cell Tracking Challenge result.
    Parameters are those of ``TrackGraph.from_ctc``."""
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
    return nodes, np.concatenate(edges)
