"""LAP tracking after Jaqaman et al. 2008 (Nat. Methods 5:695), the model of TrackMate's LAP
tracker and of laptrack.

Two linear assignment problems are solved:

1. **Frame to frame.** Cells of frames t and t+1 closer than ``max_distance`` are candidate
   links with cost = squared distance. Every cell may also "end" (t side) or "start" (t+1
   side) at the alternative cost ``b = 1.05 × the largest candidate cost of the frame pair``,
   and the auxiliary lower-right block of Jaqaman's matrix costs the smallest candidate cost.
   Written out, the total cost of a solution is a constant minus, for every link, the gain
   ``2 b − min_cost − cost``; so the LAP is a maximum-weight bipartite matching with those
   gains. The candidate graph is built sparsely with ``cKDTree`` and each of its connected
   blocks is solved with ``scipy.optimize.linear_sum_assignment`` (a block with one candidate
   is taken directly, a 2 × 2 block by comparing its two diagonals).
2. **Segments.** The chains found in step 1 (segments) are joined by *gap closing* (the end of
   a segment to the start of a segment 1 … ``max_gap + 1`` frames later, within
   ``gap_distance``) and, if ``divisions``, by *splitting* (the start of a segment in frame f
   to any cell of frame f−1 within ``division_distance``: a division when that cell already
   has a successor, else a plain link). All alternative costs are ``1.05 ×`` the 90th
   percentile ("lower") of all candidate costs, which makes the gain of a link
   ``alternative − cost``: a candidate costing more than that is never taken.

The cost model, float32 rounding of the costs, strict ``<`` cut-offs and the +1e-6 offset are
those of laptrack 0.17 (``LapTrack(metric="sqeuclidean", cutoff=max_distance**2,
gap_closing_cutoff=gap_distance**2 or False, gap_closing_max_frame_count=max_gap + 1,
splitting_cutoff=division_distance**2 or False, merging_cutoff=False)``), so both give the same
edges up to exact ties of the objective. Intended differences: ``max_gap`` counts *skipped*
frames (laptrack's ``gap_closing_max_frame_count`` is the frame difference, i.e.
``max_gap + 1``; note that laptrack's gap closing also considers segment ends and starts in
consecutive frames, and so do we); ``area_weight > 0`` multiplies frame-linking and
gap-closing costs by ``1 + area_weight × |a1 − a2| / max(a1, a2)`` (no laptrack equivalent;
the distance cut-offs still apply to the plain distance); merging is not offered; a movie
without any cell gives an empty graph (laptrack raises an IndexError).

**Stage drift** (``drift``, on by default; off gives laptrack's links exactly): laptrack
measures a step as it is in the image, so
a stage move of the whole field adds to every cell's step and a cut-off above it lets every
cell reach its neighbours' places. With ``drift`` each frame's shift is measured from the
masks (:func:`~h4tracks.core.tracking.motion.movie_drift`, as the global tracker does) and
taken out of the positions before anything else: steps, cut-offs and costs are then a cell's
own. A frame pair without a clear shift keeps zero, so on a movie without drift the links are
laptrack's (measured on 18 movies, real and synthetic: never worse than laptrack, up to
+0.024 TRA where the stage moves). It needs label masks; detections alone (points) are
linked as they are. Only the frame pairs whose cells did not stay put are compared
(:func:`~h4tracks.core.tracking.motion.drift_suspects`): the comparison costs more than the
linking, and on a still stage it is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from h4tracks.core.graph import TrackGraph
from h4tracks.core.parameters import LapParams
from h4tracks.core.tracking.detections import Detections, detect
from h4tracks.core.tracking.motion import cumulative_drift, drift_suspects, movie_drift
from h4tracks.errors import H4TracksError, InputError

__all__ = ["lap_edges", "max_weight_matching", "track_lap"]

_EPS = 1e-6  # laptrack adds this to every cost so that zero costs stay in the sparse matrix
_ALT_FACTOR = 1.05
_ALT_PERCENTILE = 90
# frame pairs matched per call (cancel and progress stay per frame pair)
_PAIRS_PER_CALL = 25
# connected components with at least this many cells in their dense matrix go to threads
_BIG_BLOCK = 100 * 100

Progress = Callable[[int, int], Any]
Cancel = Callable[[], bool]


# ------------------------------------------------------------------------------ matching
def max_weight_matching(
    rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, *, workers: int = 1
) -> np.ndarray:
    """Maximum-weight bipartite matching of a sparse candidate list.

    Parameters
    ----------
    rows, cols
        (E,) integer ids of the two sides of each candidate (any values; no duplicate pair).
    weights
        (E,) positive gains.
    workers
        Threads solving the large connected components (the result does not depend on it).

    Returns
    -------
    np.ndarray
        Indices into the candidate list of the chosen pairs (each row and column used once).
    """
    rows, cols = np.asarray(rows), np.asarray(cols)
    w = np.asarray(weights, np.float64)
    n_e = rows.size
    if n_e == 0:
        return np.empty(0, np.intp)
    ur, ri = _unique_inverse(rows)
    uc, ci = _unique_inverse(cols)
    nr, nc = ur.size, uc.size
    adj = coo_matrix((np.ones(n_e), (ri, nr + ci)), shape=(nr + nc,) * 2)
    n_comp, comp = connected_components(adj, directed=False)
    # index of every row / column inside its component (rows sorted by (component, id))
    r_local = _rank_within(comp[:nr])
    c_local = _rank_within(comp[nr:])
    r_count = np.bincount(comp[:nr], minlength=n_comp)
    c_count = np.bincount(comp[nr:], minlength=n_comp)
    ecomp = comp[ri]
    # a component with a single row or a single column (a star) takes its best edge
    star = (r_count[ecomp] == 1) | (c_count[ecomp] == 1)
    e_star = np.flatnonzero(star)
    e_star = e_star[np.lexsort((-w[e_star], ecomp[e_star]))]
    first = np.ones(e_star.size, bool)
    first[1:] = ecomp[e_star[1:]] != ecomp[e_star[:-1]]
    chosen = [e_star[first]]
    # 2 x 2 blocks (common between two close cells): the better of the two diagonals
    two = ~star & (r_count[ecomp] == 2) & (c_count[ecomp] == 2)
    e_two = np.flatnonzero(two)
    if e_two.size:
        _, b_two = np.unique(ecomp[e_two], return_inverse=True)
        nb = int(b_two.max()) + 1
        wb = np.zeros((nb, 2, 2))
        eb = np.full((nb, 2, 2), -1, np.intp)
        lr, lc = r_local[ri[e_two]], c_local[ci[e_two]]
        wb[b_two, lr, lc] = w[e_two]
        eb[b_two, lr, lc] = e_two
        anti = wb[:, 0, 1] + wb[:, 1, 0] > wb[:, 0, 0] + wb[:, 1, 1]
        pick = np.where(anti[:, None], eb[:, [0, 1], [1, 0]], eb[:, [0, 1], [0, 1]]).ravel()
        chosen.append(pick[pick >= 0])
    multi = np.flatnonzero(~star & ~two)
    if multi.size:
        chosen.append(_solve_blocks(multi, ecomp[multi], r_local[ri[multi]],
                                    c_local[ci[multi]], r_count, c_count, w, workers))
    out = np.concatenate(chosen)
    return np.sort(out)


def _unique_inverse(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(ids, return_inverse=True)``; by counting instead of sorting for the
    LAP's ids (detection rows: small non-negative integers), ~3× faster."""
    if ids.dtype.kind in "iu" and int(ids.min()) >= 0 and int(ids.max()) < 8 * ids.size + 4096:
        present = np.zeros(int(ids.max()) + 1, bool)
        present[ids] = True
        return np.flatnonzero(present), (np.cumsum(present) - 1)[ids]
    return np.unique(ids, return_inverse=True)


def _solve_blocks(edges: np.ndarray, comp: np.ndarray, lr: np.ndarray, lc: np.ndarray,
                  r_count: np.ndarray, c_count: np.ndarray, w: np.ndarray, workers: int
                  ) -> np.ndarray:
    """The candidates ``edges`` (with their component ``comp`` and local row / column
    ``lr``, ``lc`` in it) chosen by one dense LAP per connected component, where
    non-candidates weigh 0 = "no link"."""
    # by component, then (row, column): one sort of a packed key (each is unique), several
    # times faster than a lexsort of the three
    n_c = int(c_count.max()) + 1
    order = np.argsort((comp * (int(r_count.max()) + 1) + lr) * n_c + lc)
    edges, comp, lr, lc = edges[order], comp[order], lr[order], lc[order]
    starts = np.flatnonzero(np.r_[True, comp[1:] != comp[:-1]])
    ends = np.r_[starts[1:], edges.size]
    n_rows, n_cols = r_count[comp[starts]], c_count[comp[starts]]
    # a cell's position in its block's matrix, ascending within each block
    code = lr * np.repeat(n_cols, ends - starts) + lc
    # the costs are the negated gains: what linear_sum_assignment(gains, maximize=True)
    # solves, without the copy it makes to negate them
    cost = -w[edges]
    jobs = list(zip(starts.tolist(), ends.tolist(), n_rows.tolist(), n_cols.tolist(),
                    strict=True))

    def solve(job: tuple[int, int, int, int]) -> np.ndarray:
        s, e, nr, nc = job
        mat = np.zeros(nr * nc)
        mat[code[s:e]] = cost[s:e]
        sr, sc = linear_sum_assignment(mat.reshape(nr, nc))
        want = sr * nc + sc  # the assigned cells that are candidates
        pos = np.minimum(np.searchsorted(code[s:e], want), e - s - 1)
        return pos[code[s:e][pos] == want] + s

    picked: list[np.ndarray] = []
    if workers > 1:
        # the solver releases the GIL, and these few blocks take most of its time; the
        # many small ones would only queue behind them, so they stay in this thread
        big = [j for j in jobs if j[2] * j[3] >= _BIG_BLOCK]
        if len(big) > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                picked += pool.map(solve, big)
            jobs = [j for j in jobs if j[2] * j[3] < _BIG_BLOCK]
    picked += [solve(j) for j in jobs]
    return edges[np.concatenate(picked)]


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """Position of each element among the elements of its group (in id order)."""
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    start = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    pos = np.arange(g.size) - np.repeat(start, np.diff(np.r_[start, g.size]))
    out = np.empty(g.size, np.intp)
    out[order] = pos
    return out


def _f32(v: Any) -> np.ndarray:
    """A cost as laptrack stores it: float32, plus the 1e-6 offset in float32."""
    return (np.asarray(v, np.float32) + np.float32(_EPS)).astype(np.float64)


def _pairs(tree_a: cKDTree, tree_b: cKDTree, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i in a, j in b) closer than about ``r`` (callers filter exactly)."""
    sdm = tree_a.sparse_distance_matrix(tree_b, r * (1 + 1e-9) + 1e-9, output_type="ndarray")
    return sdm["i"].astype(np.intp), sdm["j"].astype(np.intp)


def _sqdist(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    # same arithmetic as scipy's cdist "sqeuclidean" (sum of squared coordinate differences)
    d = pa - pb
    return d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]


def _area_factor(area: np.ndarray, i: np.ndarray, j: np.ndarray, weight: float) -> np.ndarray:
    a, b = area[i].astype(np.float64), area[j].astype(np.float64)
    return 1.0 + weight * np.abs(a - b) / np.maximum(np.maximum(a, b), 1.0)


# ------------------------------------------------------------------------------ the tracker
def lap_edges(
    det: Detections,
    params: LapParams,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    *,
    cores: int = 1,
    drift: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Links found by the LAP tracker as (parent rows, child rows) into ``det``.

    See the module docstring for the model; :func:`track_lap` wraps this into a TrackGraph.
    ``cores`` threads solve the large assignment problems (the links do not depend on it).
    ``drift`` is the (T, 2) stage drift of frame t-1 → t (:func:`movie_drift`), taken out
    of the positions; None links the positions as they are.
    """
    n, n_frames = len(det), det.n_frames
    off = det.frame_offsets()
    pts = det.coords
    if drift is not None:
        pts = pts - cumulative_drift(drift)[det.t]
    area = det.area
    trees: list[cKDTree | None] = [
        cKDTree(pts[off[t]:off[t + 1]]) if off[t + 1] > off[t] else None
        for t in range(n_frames)
    ]
    cutoff = params.max_distance**2
    nxt = np.full(n, -1, np.intp)
    total = max(n_frames, 1)

    # -- 1. frame-to-frame linking: every frame pair is its own LAP (its own alternative
    # cost), but their candidates are matched together, a batch of frame pairs per call: a
    # row is a cell of frame t and a column a cell of t + 1, so no connected component
    # spans two pairs and each pair gets exactly the matching it would get alone, without
    # the fixed cost of a call per frame
    batch: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for t in range(n_frames - 1):
        if cancel is not None and cancel():
            raise H4TracksError("Tracking cancelled")
        ta, tb = trees[t], trees[t + 1]
        if ta is not None and tb is not None:
            i, j = _pairs(ta, tb, params.max_distance)
            i += off[t]
            j += off[t + 1]
            d2 = _sqdist(pts[i], pts[j])
            keep = d2 < cutoff
            i, j, cost = i[keep], j[keep], d2[keep]
            if params.area_weight > 0:
                cost = cost * _area_factor(area, i, j, params.area_weight)
            if cost.size:
                c32 = cost.astype(np.float32)
                cmax = c32.max()
                alt = cmax * _ALT_FACTOR if cmax > 0 else np.float32(_EPS)
                batch.append((i, j, 2 * _f32(alt) - _f32(c32.min()) - _f32(c32)))
        if batch and ((t + 1) % _PAIRS_PER_CALL == 0 or t == n_frames - 2):
            i, j, gain = (np.concatenate(c) for c in zip(*batch, strict=True))
            sel = max_weight_matching(i, j, gain, workers=cores)
            nxt[i[sel]] = j[sel]
            batch = []
        if progress is not None:
            progress(t + 1, total)

    parents = [np.flatnonzero(nxt >= 0)]
    children = [nxt[parents[0]]]

    # -- 2. gap closing and splitting between segments
    gap = params.max_gap > 0
    if gap or params.divisions:
        if cancel is not None and cancel():
            raise H4TracksError("Tracking cancelled")
        has_prev = np.zeros(n, bool)
        has_prev[children[0]] = True
        is_start = ~has_prev
        is_end = nxt < 0
        rows: list[np.ndarray] = []  # ids: end node k -> k, "middle" node k -> n + k
        cols: list[np.ndarray] = []
        costs: list[np.ndarray] = []
        start_trees = _subset_trees(pts, off, is_start)
        if gap:
            end_trees = _subset_trees(pts, off, is_end)
            r = params.effective_gap_distance
            for ts in range(1, n_frames):
                st = start_trees[ts]
                if st is None:
                    continue
                for te in range(max(0, ts - params.max_gap - 1), ts):
                    et = end_trees[te]
                    if et is None:
                        continue
                    i, j = _pairs(et[0], st[0], r)
                    i, j = et[1][i], st[1][j]
                    d2 = _sqdist(pts[i], pts[j])
                    keep = d2 < r * r
                    i, j, cost = i[keep], j[keep], d2[keep]
                    if params.area_weight > 0:
                        cost = cost * _area_factor(area, i, j, params.area_weight)
                    rows.append(i)
                    cols.append(j)
                    costs.append(cost)
        if params.divisions:
            r = params.effective_division_distance
            for ts in range(1, n_frames):
                st, mt = start_trees[ts], trees[ts - 1]
                if st is None or mt is None:
                    continue
                i, j = _pairs(mt, st[0], r)
                i, j = i + off[ts - 1], st[1][j]
                d2 = _sqdist(pts[i], pts[j])
                keep = d2 < r * r
                rows.append(i[keep] + n)
                cols.append(j[keep])
                costs.append(d2[keep])
        if rows:
            row = np.concatenate(rows)
            col = np.concatenate(cols)
            c32 = np.concatenate(costs).astype(np.float32)
            if c32.size:
                alt = np.percentile(c32, _ALT_PERCENTILE, method="lower") * _ALT_FACTOR
                if alt == 0:
                    alt = np.float32(_EPS)
                gain = _f32(alt) - _f32(c32)
                ok = gain > 0  # a link costing more than the alternatives is never taken
                row, col, gain = row[ok], col[ok], gain[ok]
                sel = max_weight_matching(row, col, gain, workers=cores)
                parents.append(row[sel] % n)
                children.append(col[sel])
        if progress is not None:
            progress(total, total)
    elif progress is not None:
        progress(total, total)
    return np.concatenate(parents), np.concatenate(children)


def _subset_trees(
    pts: np.ndarray, off: np.ndarray, mask: np.ndarray
) -> list[tuple[cKDTree, np.ndarray] | None]:
    """Per frame: a KD-tree of the masked points and their global row indices."""
    out: list[tuple[cKDTree, np.ndarray] | None] = []
    for t in range(off.size - 1):
        rows = np.flatnonzero(mask[off[t]:off[t + 1]]) + off[t]
        out.append((cKDTree(pts[rows]), rows) if rows.size else None)
    return out


def track_lap(
    detections_or_labels: Detections | Any,
    params: LapParams | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    *,
    cores: int = 1,
    drift: np.ndarray | None = None,
) -> TrackGraph:
    """Track cells with the LAP tracker (frame linking, gap closing, divisions).

    Parameters
    ----------
    detections_or_labels
        :class:`Detections`, or a (T, Y, X) label movie to detect cells in first.
    params
        :class:`LapParams` (defaults if None).
    progress
        ``progress(done, total)`` after every frame pair (total = number of frames).
    cancel
        ``cancel() -> bool`` polled between frames; True raises
        ``H4TracksError("Tracking cancelled")``.
    cores
        Threads solving the large assignment problems (the links do not depend on it).
    drift
        (T, 2) stage drift of frame t-1 → t, when it was measured already. Used only with
        ``params.drift``; ignored when it is False (the links are then laptrack's). With
        ``params.drift`` and no ``drift`` given, it is measured from a label movie
        (:func:`movie_drift`, on the frame pairs :func:`drift_suspects` lets through);
        detections alone are then linked without it.

    Returns
    -------
    TrackGraph
        One node per detection keyed by (t, label), with the links found.
    """
    if params is None:
        params = LapParams()
    elif not isinstance(params, LapParams):
        raise InputError(f"params must be LapParams, got {type(params).__name__}")
    if isinstance(detections_or_labels, Detections):
        det = detections_or_labels
    else:
        det = detect(detections_or_labels, cancel=cancel)
        if params.drift and drift is None:
            drift = movie_drift(detections_or_labels, cores=cores, cancel=cancel,
                                pairs=drift_suspects(det))
    par, chi = lap_edges(det, params, progress, cancel, cores=cores,
                         drift=drift if params.drift else None)
    edges = np.stack([det.t[par], det.label[par], det.t[chi], det.label[chi]], axis=1)
    return TrackGraph.from_arrays(det.node_columns(), edges)
