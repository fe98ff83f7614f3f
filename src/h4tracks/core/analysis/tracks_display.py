"""What a napari Tracks layer shows of a lineage graph, kept equal to it edit by edit.

napari's Tracks layer holds one row per cell instance, ``(track id, t, y, x)`` sorted by
(track id, t), so every track is one contiguous block of rows; a ``graph``
``{daughter track: [mother track]}``; and per-row ``features`` it can *color by*.
:class:`TracksDisplay` keeps those arrays for a :class:`~h4tracks.core.graph.TrackGraph`,
with these features:

* per cell (row): ``speed`` (the step from the previous cell of the track, the first cell
  taking the speed of the first step) and ``area``;
* per track, repeated on each of its rows: ``track_id`` (napari's own), ``generation``,
  ``n_points``, ``duration``, ``path_length``, ``displacement``, ``directness``,
  ``mean_speed``, ``max_speed``, ``mean_direction`` and ``persistence``, taken from
  :func:`~h4tracks.core.analysis.metrics.track_metrics` (same formulas, units and values as
  the Analysis tab's table, ``docs/metrics.md``).

napari cannot colour by a column holding NaN (its normalisation spreads NaN to every row), so
undefined values (a one-cell track's speed or directness) are 0 here.
:meth:`TracksDisplay.frame_features` gives the same values for the cells of one frame, keyed
by label value: the features of a Labels layer, whose values are per-frame ids.

After an edit :meth:`TracksDisplay.update` compares the graph's node table with the one it
showed, and recomputes only the *affected tracks*: those a changed, added or removed cell
belonged to before or belongs to now, plus the tracks whose generation changed. Every
feature of a row depends only on its own track (and the generation on the lineage), so the
rows of the other tracks stay as they are, and the result equals a rebuild from scratch
exactly. The edit is returned as a :class:`Splice`, with which a display can patch arrays of
its own that follow the rows (colours) in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from h4tracks.core.analysis.metrics import track_metrics
from h4tracks.core.analysis.table import Table
from h4tracks.core.analysis.units import Units, _name, units_for
from h4tracks.core.graph import TrackGraph
from h4tracks.errors import InputError

__all__ = ["NODE_FEATURES", "PER_TRACK", "TRACK_FEATURES", "Splice", "TracksDisplay",
           "node_speed", "track_series"]

#: per-cell features
NODE_FEATURES = ("speed", "area")
#: per-track features (columns of ``track_metrics`` without their unit, plus generation)
TRACK_FEATURES = ("generation", "n_points", "duration", "path_length", "displacement",
                  "directness", "mean_speed", "max_speed", "mean_direction", "persistence")
#: features constant over the rows of a track (napari's ``track_id`` included)
PER_TRACK = frozenset({"track_id", *TRACK_FEATURES})
#: above this share of rows changed, an update rebuilds everything (cheaper than splicing)
_REBUILD_SHARE = 0.5


@dataclass(frozen=True)
class Splice:
    """How the rows of a display changed: the ``removed`` rows of the previous arrays
    (sorted) are dropped, then new rows are inserted as ``np.insert(kept, insert_at, new)``
    (``insert_at`` sorted)."""

    removed: np.ndarray
    insert_at: np.ndarray
    n_old: int

    @property
    def inserted(self) -> np.ndarray:
        """Positions of the new rows in the new arrays."""
        return self.insert_at + np.arange(self.insert_at.size)

    @property
    def empty(self) -> bool:
        """Whether nothing changed."""
        return self.removed.size == 0 and self.insert_at.size == 0

    @cached_property
    def _pieces(self) -> tuple[np.ndarray, np.ndarray]:
        """(source row, destination row, length) of the runs of kept rows and of the inserted
        blocks.

        An edit keeps long runs of rows; copying them as slices (memcpy) instead of
        ``np.delete`` + ``np.insert`` (index arrays over every row) makes a splice of 500k
        rows cost ~1 ms per column instead of ~8.
        """
        rem, ins = self.removed, self.insert_at
        breaks = np.flatnonzero(np.diff(rem) != 1)
        r_start = rem[np.r_[0, breaks + 1]] if rem.size else np.empty(0, np.int64)
        r_end = rem[np.r_[breaks, rem.size - 1]] + 1 if rem.size else np.empty(0, np.int64)
        k_old = np.r_[0, r_end]  # kept runs in old rows: [k_old, k_end)
        k_end = np.r_[r_start, self.n_old]
        k_start = np.cumsum(np.r_[0, (k_end - k_old)[:-1]])  # where they start among kept
        n_kept = self.n_old - rem.size
        cuts = np.union1d(np.union1d(k_start, ins), [n_kept])  # kept rows split here
        b0, b1 = cuts[:-1], cuts[1:]
        run = np.searchsorted(k_start, b0, "right") - 1
        old_src = k_old[run] + (b0 - k_start[run])
        old_dst = b0 + np.searchsorted(ins, b0, "right")
        values, first, count = np.unique(ins, return_index=True, return_counts=True)
        kept = (old_src, old_dst, b1 - b0)
        new = (first, values + first, count)
        return (np.stack(kept), np.stack(new))

    def apply(self, old: np.ndarray, new_rows: np.ndarray) -> np.ndarray:
        """``old`` with the removed rows dropped and ``new_rows`` inserted (along axis 0)."""
        kept, new = self._pieces
        out = np.empty((self.n_old - self.removed.size + self.insert_at.size, *old.shape[1:]),
                       np.result_type(old, new_rows))
        # a Python loop over the runs (two per changed track), not over the rows
        for src, dst, n in kept.T.tolist():
            out[dst:dst + n] = old[src:src + n]
        for src, dst, n in new.T.tolist():
            out[dst:dst + n] = new_rows[src:src + n]
        return out


# ---------------------------------------------------------------------------------- features
def node_speed(t: np.ndarray, y: np.ndarray, x: np.ndarray, counts: np.ndarray,
               u: Units) -> np.ndarray:
    """Speed at each cell of tracks given as consecutive blocks of rows (sorted by time).

    The speed of a cell is the length of the step from the previous cell of its track over
    the time between them (gaps respected), as in ``track_metrics``; the first cell of a
    track takes the speed of the first step, a one-cell track 0.

    Parameters
    ----------
    t, y, x
        Frame and centroid (px) of every cell, tracks in consecutive blocks.
    counts
        Number of cells of each block.
    u
        Units: lengths are scaled by ``u.pixel_size``, times by ``u.frame_interval``.
    """
    n = t.size
    speed = np.zeros(n)
    if n < 2:
        return speed
    ys, xs = y * u.pixel_size, x * u.pixel_size  # scaled first, as track_metrics does
    starts = np.cumsum(counts) - counts
    inside = np.ones(n - 1, bool)  # step i -> i+1 stays inside a track
    inside[starts[starts > 0] - 1] = False
    i = np.flatnonzero(inside)
    speed[i + 1] = np.hypot(ys[i + 1] - ys[i], xs[i + 1] - xs[i]) / (
        (t[i + 1] - t[i]) * u.frame_interval)
    first = starts[counts >= 2]
    speed[first] = speed[first + 1]
    return speed


def track_series(graph: TrackGraph, track_id: int, *, pixel_size: float | None = None,
                 frame_interval: float | None = None, time_unit: str = "s") -> Table:
    """The cells of one track in time order: ``t``, ``time [T]``, ``speed [L/T]`` and
    ``area [L²]`` (the Tracks layer's per-cell features; here the first cell's speed is NaN:
    no step leads to it).

    Raises
    ------
    InputError
        If the graph has no track ``track_id``.
    """
    u = units_for(pixel_size, frame_interval, time_unit)
    nodes = graph.node_table()
    rows = np.flatnonzero(nodes["track_id"] == int(track_id))
    if rows.size == 0:
        raise InputError(f"there is no track with id {track_id}")
    rows = rows[np.argsort(nodes["t"][rows], kind="stable")]
    t = nodes["t"][rows]
    speed = node_speed(t, nodes["y"][rows], nodes["x"][rows], np.array([rows.size]), u)
    if rows.size > 1:
        speed[0] = np.nan
    return Table({"t": t, _name("time", u.time): t * u.frame_interval,
                  _name("speed", u.speed): speed,
                  _name("area", u.area): nodes["area"][rows] * u.pixel_size**2},
                 meta={"track_id": int(track_id), "length_unit": u.length,
                       "time_unit": u.time})


def _generation(ids: np.ndarray, parents: dict[int, list[int]]) -> np.ndarray:
    """Number of divisions between each track (sorted ``ids``) and the root of its lineage
    (the definition of ``track_metrics``' generation, from a parents dict)."""
    k = ids.size
    parent_idx = np.full(k, -1, np.int64)
    if parents and k:
        child = np.fromiter(parents.keys(), np.int64, len(parents))
        par = np.fromiter((p[0] for p in parents.values()), np.int64, len(parents))
        parent_idx[np.searchsorted(ids, child)] = np.searchsorted(ids, par)
    generation = np.zeros(k, np.int64)
    cur = parent_idx.copy()
    while np.any(cur >= 0):  # one lineage level per pass: a loop over depth, not tracks
        up = cur >= 0
        generation += up
        cur[up] = parent_idx[cur[up]]
    return generation


def _block_graph(cols: dict[str, np.ndarray], counts: np.ndarray) -> TrackGraph:
    """The tracks given as blocks of rows as a graph of their own (links inside each track
    only), so ``track_metrics`` measures just them."""
    same = np.repeat(np.arange(counts.size), counts)
    inside = np.flatnonzero(same[1:] == same[:-1])
    t, lab = cols["t"], cols["label"]
    edges = np.stack([t[inside], lab[inside], t[inside + 1], lab[inside + 1]], axis=1)
    return TrackGraph.from_arrays(cols, edges)


def _features(cols: dict[str, np.ndarray], counts: np.ndarray, generation: np.ndarray,
              metrics_graph: TrackGraph, calibration: dict[str, Any]) -> dict[str, np.ndarray]:
    """Feature columns of tracks given as blocks of rows (``cols`` sorted by track, t);
    ``metrics_graph`` holds (at least) these tracks, ``calibration`` the arguments of
    ``track_metrics``."""
    u = units_for(**calibration)
    # max_lag 1: the MSD columns are not shown, their longer lags would cost most of the time
    table = track_metrics(metrics_graph, **calibration, max_lag=1)
    if not np.array_equal(table["track_id"], cols["track_id"][np.cumsum(counts) - counts]):
        raise AssertionError("metrics and display disagree on the tracks")  # a bug, not input
    out = {
        "track_id": cols["track_id"].astype(np.uint32),  # napari's own column and dtype
        "speed": node_speed(cols["t"], cols["y"], cols["x"], counts, u),
        "area": cols["area"] * u.pixel_size**2,
        "generation": np.repeat(generation, counts),
    }
    for name in TRACK_FEATURES[1:]:
        values = table[table.find(name)]
        if values.dtype.kind == "f":
            values = np.where(np.isfinite(values), values, 0.0)  # napari cannot colour NaN
        out[name] = np.repeat(values, counts)
    return out


def _data(cols: dict[str, np.ndarray]) -> np.ndarray:
    """napari Tracks rows (track id, t, y, x), as ``TrackGraph.to_napari`` makes them."""
    return np.stack([cols["track_id"].astype(np.float64), cols["t"], cols["y"], cols["x"]],
                    axis=1)


def _blocks(nodes: dict[str, np.ndarray],
            rows: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The node table's ``rows`` sorted by (track id, t): columns, track ids, cells per
    track."""
    sub = {c: v[rows] for c, v in nodes.items()}
    order = np.lexsort((sub["t"], sub["track_id"]))
    sub = {c: v[order] for c, v in sub.items()}
    ids, starts = np.unique(sub["track_id"], return_index=True)
    return sub, ids, np.diff(np.r_[starts, rows.size]).astype(np.int64)


def _members(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Indices of ``values`` (non-negative ints) found in ``ids``: a lookup table, one pass
    whatever the number of ids (``np.isin`` sorts all values when there are many)."""
    if ids.size == 0 or values.size == 0:
        return np.empty(0, np.int64)
    table = np.zeros(int(max(values.max(), ids.max())) + 1, bool)
    table[ids] = True
    return np.flatnonzero(table[values])


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(lo[i], hi[i])`` without a Python loop."""
    n = hi - lo
    keep = n > 0
    lo, n = lo[keep], n[keep]
    if n.size == 0:
        return np.empty(0, np.int64)
    offsets = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    return np.repeat(lo, n) + offsets


# ---------------------------------------------------------------------------------- display
class TracksDisplay:
    """napari Tracks ``data``, ``graph`` and ``features`` of a graph, patched per edit.

    Parameters
    ----------
    pixel_size, frame_interval, time_unit
        Calibration of the metrics (as for ``track_metrics``; None: px and frames).

    Attributes
    ----------
    data : ndarray
        (N, 4) rows ``(track_id, t, y, x)`` sorted by (track id, t).
    parents : dict
        ``{daughter track: [mother track]}``, sorted by daughter.
    features : dict of str to ndarray
        One value per row for each name of ``PER_TRACK`` and ``NODE_FEATURES``.
    points, points_id : ndarray
        The cells in time order (by frame, then label): (N, 3) ``(t, y, x)`` and their track
        ids, what napari looks the track under the mouse up in.
    points_moved : bool
        Whether the last update added, removed or moved cells (else ``points`` is the same
        array as before: links and track ids changed only).
    version : int
        Incremented by every rebuild or update that changed something.
    """

    def __init__(self, *, pixel_size: float | None = None, frame_interval: float | None = None,
                 time_unit: str = "s") -> None:
        units_for(pixel_size, frame_interval, time_unit)  # refuses a bad calibration now
        self._calibration: dict[str, Any] = {"pixel_size": pixel_size,
                                             "frame_interval": frame_interval,
                                             "time_unit": time_unit}
        self.data = np.empty((0, 4))
        self.parents: dict[int, list[int]] = {}
        self.features: dict[str, np.ndarray] = {}
        self.version = 0
        self._nodes: dict[str, np.ndarray] | None = None  # node table last shown
        self._codes = np.empty(0, np.int64)  # its (t, label) packed, sorted
        self._label = np.empty(0, np.int64)  # label of each row of `data`
        self._row_tid = np.empty(0, np.int64)  # track id of each row of `data`
        self.points = np.empty((0, 3))
        self.points_id = np.empty(0)
        self.points_moved = True
        self._ids = np.empty(0, np.int64)  # track ids shown, sorted
        self._gen = np.empty(0, np.int64)  # their generation
        self._moved = True  # the last diff found cells added, removed or moved
        self._row_key = np.empty(0, np.int64)  # (track id, t) of the rows, for frame_features
        self._key_version = -1

    @property
    def calibration(self) -> dict[str, Any]:
        """The ``track_metrics`` calibration arguments the features are computed with."""
        return dict(self._calibration)

    @property
    def n_rows(self) -> int:
        """Number of rows (cells)."""
        return int(self.data.shape[0])

    # ------------------------------------------------------------------ rebuild
    def rebuild(self, graph: TrackGraph) -> None:
        """Recompute everything from ``graph``."""
        nodes = graph.node_table()
        parents = dict(sorted(graph.track_parents().items()))
        cols, ids, counts = _blocks(nodes, np.arange(nodes["t"].size))
        gen = _generation(ids, parents)
        self.features = _features(cols, counts, gen, graph, self._calibration)
        self.data, self._label, self._row_tid = _data(cols), cols["label"], cols["track_id"]
        self._remember(nodes, parents, ids, gen)

    def _remember(self, nodes: dict[str, np.ndarray], parents: dict[int, list[int]],
                  ids: np.ndarray, gen: np.ndarray, moved: bool = True) -> None:
        self._nodes, self.parents, self._ids, self._gen = nodes, parents, ids, gen
        if moved:
            self._codes = (nodes["t"] << 32) | nodes["label"]
            self.points = np.stack([nodes["t"], nodes["y"], nodes["x"]], axis=1).astype(float)
        self.points_id = nodes["track_id"].astype(np.float64)
        self.points_moved = moved
        self.version += 1

    # ------------------------------------------------------------------ update
    def update(self, graph: TrackGraph) -> Splice | None:
        """Bring the arrays up to date with ``graph`` after an edit.

        Returns
        -------
        Splice or None
            How the rows changed (``Splice.empty`` when nothing did), or None when everything
            was rebuilt (the first time, or when most rows changed).
        """
        if self._nodes is None:
            self.rebuild(graph)
            return None
        nodes = graph.node_table()
        affected = self._changed_tracks(nodes)
        if affected.size == 0:  # no cell changed track, place or size: nor did a division
            self._nodes = nodes
            return Splice(np.empty(0, np.int64), np.empty(0, np.int64), self.n_rows)
        tid = nodes["track_id"]
        cols, ids, counts = _blocks(nodes, _members(tid, affected))
        parents = self._parents(graph, affected, cols, counts)
        new_ids = np.union1d(np.setdiff1d(self._ids, affected, assume_unique=True), ids)
        gen = _generation(new_ids, parents)
        # a division made or undone upstream renumbers the generation of whole subtrees
        common, i_new, i_old = np.intersect1d(new_ids, self._ids, assume_unique=True,
                                              return_indices=True)
        regen = common[gen[i_new] != self._gen[i_old]]
        if regen.size:
            affected = np.union1d(affected, regen)
            cols, ids, counts = _blocks(nodes, _members(tid, affected))
        row_tid = self._row_tid
        removed = _ranges(np.searchsorted(row_tid, affected, "left"),
                          np.searchsorted(row_tid, affected, "right"))
        if removed.size + cols["t"].size > _REBUILD_SHARE * max(self.n_rows, 1):
            self.rebuild(graph)
            return None
        feats = _features(cols, counts, gen[np.searchsorted(new_ids, ids)],
                          _block_graph(cols, counts), self._calibration)
        splice = Splice(removed, np.repeat(np.searchsorted(np.delete(row_tid, removed), ids),
                                           counts), self.n_rows)
        self.data = splice.apply(self.data, _data(cols))
        self._label = splice.apply(self._label, cols["label"])
        self._row_tid = splice.apply(self._row_tid, cols["track_id"])
        self.features = {c: splice.apply(v, feats[c]) for c, v in self.features.items()}
        self._remember(nodes, parents, new_ids, gen, self._moved)
        return splice

    def _changed_tracks(self, nodes: dict[str, np.ndarray]) -> np.ndarray:
        """Sorted ids of the tracks a changed, added or removed cell belonged to before or
        belongs to now."""
        old = self._nodes
        assert old is not None
        codes = (nodes["t"] << 32) | nodes["label"]
        if codes.size == self._codes.size and np.array_equal(codes, self._codes):
            moved = (nodes["y"] != old["y"]) | (nodes["x"] != old["x"])
            changed = moved | (nodes["track_id"] != old["track_id"]) | (
                nodes["area"] != old["area"])
            self._moved = bool(moved.any())
            return np.union1d(old["track_id"][changed], nodes["track_id"][changed])
        self._moved = True
        # cells were added or removed: match the cells by (t, label)
        pos = np.minimum(np.searchsorted(self._codes, codes), max(self._codes.size - 1, 0))
        found = (self._codes[pos] == codes) if self._codes.size else np.zeros(codes.size, bool)
        changed = ~found
        f = np.flatnonzero(found)
        p = pos[f]
        changed[f] = ((nodes["track_id"][f] != old["track_id"][p])
                      | (nodes["y"][f] != old["y"][p]) | (nodes["x"][f] != old["x"][p])
                      | (nodes["area"][f] != old["area"][p]))
        gone = np.ones(self._codes.size, bool)
        gone[p] = False
        return np.unique(np.concatenate([
            nodes["track_id"][changed], old["track_id"][p[changed[f]]], old["track_id"][gone]]))

    def _parents(self, graph: TrackGraph, affected: np.ndarray, cols: dict[str, np.ndarray],
                 counts: np.ndarray) -> dict[int, list[int]]:
        """The divisions of ``graph`` after an edit, asking the graph only about the cells
        around the edited tracks (``track_parents`` loops over every cell: ~50 ms for 500k).

        A division is a mother cell (the last of its track) with two daughters (the first of
        theirs). An edit that makes, undoes or renumbers a division changes the track of the
        mother or of a daughter: a remaining daughter takes the mother's id, and when a
        second daughter is linked the first one gets a fresh id. So the divisions whose
        mother and daughters all kept their cells and ids are still there unchanged; every
        other one is found at an end of an affected track or at the mothers those
        divisions had. The tests check this against ``TrackGraph.track_parents``.
        """
        n = len(self.parents)
        daughter = np.fromiter(self.parents, np.int64, n)
        mother = np.fromiter((p[0] for p in self.parents.values()), np.int64, n)
        touched = np.unique(mother[np.isin(mother, affected) | np.isin(daughter, affected)])
        keep = ~np.isin(mother, touched)
        out = {int(d): [int(m)] for d, m in zip(daughter[keep], mother[keep], strict=True)}
        last = np.searchsorted(self._row_tid, touched, "right") - 1  # old rows: not spliced yet
        ends = np.cumsum(counts) - 1
        starts = ends - counts + 1
        probes = {*zip(self.data[last, 1].astype(np.int64).tolist(), self._label[last].tolist(),
                       strict=True),
                  *zip(cols["t"][ends].tolist(), cols["label"][ends].tolist(), strict=True)}
        heads = zip(cols["t"][starts].tolist(), cols["label"][starts].tolist(), strict=True)
        # a loop over the edited tracks and their divisions, not over the cells
        probes.update(p for p in map(graph.predecessor, heads) if p is not None)
        for node in probes:
            if node not in graph:
                continue  # an old mother cell the edit removed
            kids = graph.successors(node)
            if len(kids) == 2:
                m = graph.track_id(node)
                out.update((graph.track_id(k), [m]) for k in kids)
        return dict(sorted(out.items()))

    # ------------------------------------------------------------------ views
    def frame_features(self, t: int) -> dict[str, np.ndarray]:
        """The features of the cells of frame ``t``, for a napari Labels layer: ``index``
        (the label value, sorted), then the rows' columns of :attr:`features` for those
        cells (the same values). Costs one frame's cells: two binary searches."""
        if self._nodes is None:
            return {}
        if self._key_version != self.version:
            # rows are sorted by (track id, t): so is this key, searchable per cell
            self._row_key = (self._row_tid << 32) | self.data[:, 1].astype(np.int64)
            self._key_version = self.version
        lo, hi = np.searchsorted(self._codes, [int(t) << 32, (int(t) + 1) << 32])
        tid, label = self._nodes["track_id"][lo:hi], self._nodes["label"][lo:hi]
        rows = np.searchsorted(self._row_key, (tid << 32) | int(t))
        return {"index": label, **{c: v[rows] for c, v in self.features.items()}}

    def subset(self, track_ids: np.ndarray) -> tuple[np.ndarray, dict[int, list[int]],
                                                     dict[str, np.ndarray]]:
        """``data``, ``parents`` and ``features`` restricted to ``track_ids`` (divisions
        between two shown tracks are kept; napari refuses graph entries naming absent
        tracks)."""
        keep = np.isin(self._row_tid, np.asarray(track_ids, np.int64))
        shown = set(np.unique(self.data[keep, 0]).astype(np.int64).tolist())
        parents = {d: [p for p in ps if p in shown] for d, ps in self.parents.items()
                   if d in shown}
        return (self.data[keep], {d: ps for d, ps in parents.items() if ps},
                {c: v[keep] for c, v in self.features.items()})
