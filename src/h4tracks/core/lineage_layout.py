"""Where each cell of a lineage is drawn in a lineage tree: a Qt-free layout model.

One tree per lineage (a root track and every track descending from it through divisions),
time on one axis, lineages side by side on the other. The unit of the layout is the *track*
(a maximal chain without branching, see :class:`~h4tracks.core.graph.TrackGraph`): a track is
one column, its nodes sit at ``(x, t)`` on that column, a division joins the mother's last
node to each daughter's first node. Leaves of a tree get consecutive integer columns in
depth-first order (daughters by track id); a mother sits midway between its daughters;
lineages are ordered by their first frame, then root track id, with ``lineage_gap`` empty
columns between them. Gaps (frames a track skips) are separate segments, so a view can draw
them differently.

Everything is computed with numpy over whole arrays: the only Python loops run over tree
*generations* (depth of the deepest division chain), never over cells or frames, so 1,000
frames × 500 cells (500k nodes) lay out in a few tens of milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from h4tracks.core.graph import NodeKey, TrackGraph

__all__ = ["DIVISION", "GAP", "RUN", "LineageLayout", "layout_arrays", "layout_graph"]

#: segment kinds: consecutive frames of a track, a jump over missing frames, a division
RUN, GAP, DIVISION = 0, 1, 2


@dataclass(frozen=True)
class LineageLayout:
    """Positions of every node and the line segments of a lineage forest.

    Coordinates are ``(x, t)``: ``x`` the column (lineages side by side), ``t`` the frame.
    Node arrays are ordered by ``(t, label)``, track arrays by track id.

    Attributes
    ----------
    node_t, node_label, node_track, node_x
        Per node: frame, label, index of its track in the track arrays, column.
    track_ids, track_x, track_first, track_last
        Per track: id, column, first and last frame.
    track_parent
        Index of the mother track, -1 for a root.
    track_root
        Index of the root track of the lineage the track belongs to.
    track_generation
        0 for a root track, 1 for its daughters, ...
    lineage_roots
        Track indices of the lineage roots, in display order (left to right).
    lineage_span
        (L, 2) leftmost and rightmost column of each lineage, same order.
    segments
        (M, 2, 2) float: start and end ``(x, t)`` of each line segment.
    segment_track
        (M,) index of the track a segment belongs to (the daughter for a division).
    segment_kind
        (M,) :data:`RUN`, :data:`GAP` or :data:`DIVISION`.
    revision
        The graph revision the layout was built from (-1 when built from arrays).
    """

    node_t: np.ndarray
    node_label: np.ndarray
    node_track: np.ndarray
    node_x: np.ndarray
    track_ids: np.ndarray
    track_x: np.ndarray
    track_first: np.ndarray
    track_last: np.ndarray
    track_parent: np.ndarray
    track_root: np.ndarray
    track_generation: np.ndarray
    lineage_roots: np.ndarray
    lineage_span: np.ndarray
    segments: np.ndarray
    segment_track: np.ndarray
    segment_kind: np.ndarray
    revision: int = -1

    # ------------------------------------------------------------------ sizes
    @property
    def n_nodes(self) -> int:
        """Number of nodes (cells)."""
        return int(self.node_t.size)

    @property
    def n_tracks(self) -> int:
        """Number of tracks (columns)."""
        return int(self.track_ids.size)

    @property
    def n_lineages(self) -> int:
        """Number of lineages (trees)."""
        return int(self.lineage_roots.size)

    # ------------------------------------------------------------------ lookups
    def node_index(self, node: NodeKey) -> int | None:
        """Row of node ``(t, label)`` in the node arrays, or None if it is not laid out."""
        t, label = int(node[0]), int(node[1])
        # nodes are sorted by (t, label): a frame is a contiguous slice
        lo, hi = np.searchsorted(self.node_t, [t, t + 1])
        j = lo + int(np.searchsorted(self.node_label[lo:hi], label))
        if j < hi and self.node_label[j] == label:
            return int(j)
        return None

    def position(self, node: NodeKey) -> tuple[float, float] | None:
        """``(x, t)`` of node ``(t, label)``, or None if it is not laid out."""
        i = self.node_index(node)
        return None if i is None else (float(self.node_x[i]), float(self.node_t[i]))

    def track_index(self, track_id: int) -> int | None:
        """Index of ``track_id`` in the track arrays, or None."""
        k = int(np.searchsorted(self.track_ids, track_id))
        if k < self.track_ids.size and self.track_ids[k] == track_id:
            return k
        return None

    def lineage_extent(self, track_id: int) -> tuple[float, float, int, int] | None:
        """``(x_min, x_max, t_first, t_last)`` of the lineage containing ``track_id``."""
        k = self.track_index(track_id)
        if k is None:
            return None
        members = self.track_root == self.track_root[k]
        return (float(self.track_x[members].min()), float(self.track_x[members].max()),
                int(self.track_first[members].min()), int(self.track_last[members].max()))

    def pick(self, x: float, t: float, tolerance: float = 0.5) -> NodeKey | None:
        """The node nearest to ``(x, t)``, if one is within ``tolerance`` columns of ``x``
        in frame ``round(t)`` (what a click on the tree means)."""
        frame = round(t)
        lo, hi = np.searchsorted(self.node_t, [frame, frame + 1])
        if lo == hi:
            return None
        dx = np.abs(self.node_x[lo:hi] - x)
        j = int(np.argmin(dx))
        if dx[j] > tolerance:
            return None
        return frame, int(self.node_label[lo + j])

    def key_points(self) -> tuple[np.ndarray, np.ndarray]:
        """First and last node of every track, ``(P, 2)`` positions and ``(P,)`` track
        indices: what a view draws as markers when drawing every node would be too slow."""
        k = np.arange(self.n_tracks)
        long = self.track_last > self.track_first  # a one-frame track has one key point
        xs = np.concatenate([self.track_x, self.track_x[long]])
        ts = np.concatenate([self.track_first, self.track_last[long]])
        return np.stack([xs, ts.astype(np.float64)], axis=1), np.concatenate([k, k[long]])


def layout_graph(graph: TrackGraph, *, lineage_gap: float = 1.0) -> LineageLayout:
    """Lay out every lineage of ``graph`` (see the module docstring).

    Parameters
    ----------
    graph
        The lineage graph.
    lineage_gap
        Empty columns between neighbouring lineages.

    Returns
    -------
    LineageLayout
    """
    tab = graph.node_table()
    parents = graph.track_parents()
    daughters = np.fromiter(parents.keys(), np.int64, len(parents))
    mothers = np.fromiter((ps[0] for ps in parents.values()), np.int64, len(parents))
    out = layout_arrays(tab["t"], tab["label"], tab["track_id"], daughters, mothers,
                        lineage_gap=lineage_gap)
    return _with_revision(out, graph.revision)


def _with_revision(layout: LineageLayout, revision: int) -> LineageLayout:
    return LineageLayout(**{**layout.__dict__, "revision": int(revision)})


def layout_arrays(
    t: np.ndarray,
    label: np.ndarray,
    track_id: np.ndarray,
    daughters: np.ndarray,
    mothers: np.ndarray,
    *,
    lineage_gap: float = 1.0,
) -> LineageLayout:
    """Lay out lineages given as node columns and the mother track of each daughter track.

    Parameters
    ----------
    t, label, track_id
        Per node, sorted by ``(t, label)`` (as :meth:`TrackGraph.node_table` returns them).
        Consecutive nodes of one track (in time) are linked, gaps allowed.
    daughters, mothers
        Track ids: ``mothers[i]`` divides into ``daughters[i]`` (napari's Tracks ``graph``).
    lineage_gap
        Empty columns between neighbouring lineages.

    Returns
    -------
    LineageLayout
    """
    t = np.asarray(t, np.int64)
    label = np.asarray(label, np.int64)
    track_id = np.asarray(track_id, np.int64)
    if t.size == 0:
        return _empty()
    # dense track index through a lookup table: O(N), no sort of the nodes
    present = np.zeros(int(track_id.max()) + 1, bool)
    present[track_id] = True
    ids = np.flatnonzero(present)
    lut = np.cumsum(present) - 1
    k = lut[track_id]
    n_tracks = ids.size
    count = np.bincount(k, minlength=n_tracks)
    first = np.full(n_tracks, np.iinfo(np.int64).max)
    np.minimum.at(first, k, t)
    last = np.full(n_tracks, np.iinfo(np.int64).min)
    np.maximum.at(last, k, t)

    parent = np.full(n_tracks, -1, np.int64)
    d, m = np.asarray(daughters, np.int64), np.asarray(mothers, np.int64)
    # divisions naming tracks without nodes (a filtered view) are left out
    inside = (d >= 0) & (d < present.size) & (m >= 0) & (m < present.size)
    d, m = d[inside], m[inside]
    known = present[d] & present[m]
    parent[lut[d[known]]] = lut[m[known]]

    depth, root = _depth_and_root(parent)
    x = _columns(ids, first, parent, depth, root, lineage_gap)
    roots = _lineage_order(np.flatnonzero(parent < 0), first, ids)
    span = np.zeros((roots.size, 2))
    if roots.size:
        rank = np.empty(n_tracks, np.int64)
        rank[roots] = np.arange(roots.size)
        lin = rank[root]
        span[:, 0] = np.full(roots.size, np.inf)
        np.minimum.at(span[:, 0], lin, x)
        span[:, 1] = np.full(roots.size, -np.inf)
        np.maximum.at(span[:, 1], lin, x)
    seg, seg_track, seg_kind = _segments(t, k, x, first, last, count, parent)
    return LineageLayout(
        node_t=t, node_label=label, node_track=k, node_x=x[k],
        track_ids=ids, track_x=x, track_first=first, track_last=last, track_parent=parent,
        track_root=root, track_generation=depth, lineage_roots=roots, lineage_span=span,
        segments=seg, segment_track=seg_track, segment_kind=seg_kind,
    )


def _empty() -> LineageLayout:
    i, f = np.empty(0, np.int64), np.empty(0, np.float64)
    return LineageLayout(
        node_t=i, node_label=i, node_track=i, node_x=f, track_ids=i, track_x=f,
        track_first=i, track_last=i, track_parent=i, track_root=i, track_generation=i,
        lineage_roots=i, lineage_span=np.zeros((0, 2)), segments=np.zeros((0, 2, 2)),
        segment_track=i, segment_kind=i,
    )


def _depth_and_root(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Generation of every track and the root of its lineage (one pass per generation)."""
    n = parent.size
    depth = np.zeros(n, np.int64)
    root = np.arange(n)
    up = parent.copy()
    while True:
        has = up >= 0
        if not has.any():
            return depth, root
        if int(depth.max()) > n:  # a cycle cannot come from a TrackGraph; never hang on one
            raise ValueError("the division graph has a cycle")
        depth[has] += 1
        root[has] = up[has]
        up[has] = parent[up[has]]


def _lineage_order(roots: np.ndarray, first: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Roots sorted by their first frame, then track id (earliest lineages left)."""
    return roots[np.lexsort((ids[roots], first[roots]))]


def _columns(ids: np.ndarray, first: np.ndarray, parent: np.ndarray, depth: np.ndarray,
             root: np.ndarray, gap: float) -> np.ndarray:
    """Column of every track: leaves numbered depth-first, mothers midway between daughters."""
    n = ids.size
    max_depth = int(depth.max()) if n else 0
    n_kids = np.bincount(parent[parent >= 0], minlength=n)
    # leaves under each track, accumulated from the deepest generation up
    leaves = (n_kids == 0).astype(np.int64)
    for d in range(max_depth, 0, -1):
        sel = np.flatnonzero(depth == d)
        leaves += np.bincount(parent[sel], weights=leaves[sel], minlength=n).astype(np.int64)
    # first leaf column of each track, from the roots down: a lineage starts after the
    # leaves (and gaps) of the lineages left of it; a daughter after its elder sister
    start = np.zeros(n, np.float64)
    roots = _lineage_order(np.flatnonzero(parent < 0), first, ids)
    before = np.cumsum(leaves[roots]) - leaves[roots]
    start[roots] = before + gap * np.arange(roots.size)
    for d in range(1, max_depth + 1):
        sel = np.flatnonzero(depth == d)
        sel = sel[np.lexsort((ids[sel], parent[sel]))]  # sisters together, by track id
        p = parent[sel]
        excl = np.cumsum(leaves[sel]) - leaves[sel]
        new_group = np.r_[True, p[1:] != p[:-1]]
        # excl never decreases, so the running max of its value at group starts is the
        # offset of each sister group
        base = np.maximum.accumulate(np.where(new_group, excl, 0))
        start[sel] = start[p] + (excl - base)
    x = start.copy()
    for d in range(max_depth, 0, -1):
        sel = np.flatnonzero(depth == d)
        sums = np.bincount(parent[sel], weights=x[sel], minlength=n)
        kids = np.bincount(parent[sel], minlength=n)
        mothers = np.flatnonzero((kids > 0) & (depth == d - 1))
        x[mothers] = sums[mothers] / kids[mothers]
    return x


def _segments(t: np.ndarray, k: np.ndarray, x: np.ndarray, first: np.ndarray,
              last: np.ndarray, count: np.ndarray, parent: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Line segments: one per gap-free track, one per consecutive pair of a track with gaps
    (gaps marked), one per division."""
    n = x.size
    tracks = np.arange(n)
    gappy = count < (last - first + 1)
    whole = tracks[~gappy & (last > first)]
    parts = [(np.stack([x[whole], first[whole], x[whole], last[whole]], axis=1),
              whole, np.full(whole.size, RUN))]
    if gappy.any():
        # only tracks with gaps need their nodes in time order (few; a small sort)
        rows = np.flatnonzero(gappy[k])
        rows = rows[np.lexsort((t[rows], k[rows]))]
        kk, tt = k[rows], t[rows]
        same = kk[1:] == kk[:-1]
        a, b, kind = tt[:-1][same], tt[1:][same], np.where(tt[1:] - tt[:-1] > 1, GAP, RUN)
        ks = kk[:-1][same]
        parts.append((np.stack([x[ks], a, x[ks], b], axis=1), ks, kind[same]))
    kids = tracks[parent >= 0]
    mom = parent[kids]
    parts.append((np.stack([x[mom], last[mom], x[kids], first[kids]], axis=1), kids,
                  np.full(kids.size, DIVISION)))
    seg = np.concatenate([p[0] for p in parts]).astype(np.float64).reshape(-1, 2, 2)
    return (seg, np.concatenate([p[1] for p in parts]).astype(np.int64),
            np.concatenate([p[2] for p in parts]).astype(np.int64))
