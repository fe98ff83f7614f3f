"""Tracking scores after Matula et al. 2015 (AOGM, TRA, DET), as the Cell Tracking Challenge
computes them, plus division precision/recall.

Both lineages are seen as acyclic oriented graphs whose vertices are the objects of each frame
(``(t, label)``) and whose edges carry a *semantic*: a **track link** continues a track into
the next frame, a **parent link** joins a parent track's last object to a child track's first
object (a division daughter, or the continuation after a gap). For a
:class:`~h4tracks.core.graph.TrackGraph` this is the cut of
:func:`h4tracks.core.io.ctc.graph_to_ctc`: an edge is a track link exactly when its parent has
one successor and the child is in the next frame; division edges and gap links are parent
links. For a CTC lineage table, consecutive frames of one id are track links and each
``parent`` entry is a parent link.

Matching (CTC rule): a result object matches a reference object of the same frame when it
covers more than half of the reference object's pixels, so each reference object matches at
most one result object. Then (Matula et al. 2015, as in the CTC evaluation software):

* FN: reference objects with no match; FP: result objects with no match;
* NS (splits): a result object matching ``k > 1`` reference objects needs ``k - 1`` splits;
* edges are compared on the result subgraph induced by the result objects that match exactly
  one reference object, each edge mapped onto the reference objects:
  ED (deletions) = mapped result edges that are no reference edge,
  EA (additions) = reference edges not among the mapped result edges,
  EC (semantic changes) = edges in both whose semantic differs;
* AOGM = 5 NS + 10 FN + 1 FP + 1 ED + 1.5 EA + 1 EC, AOGM₀ = 10 |V_ref| + 1.5 |E_ref|,
  TRA = 1 − min(AOGM, AOGM₀) / AOGM₀;
* AOGM_D = 5 NS + 10 FN + 1 FP, AOGM_D₀ = 10 |V_ref|, DET = 1 − min(AOGM_D, AOGM_D₀) / AOGM_D₀.

Divisions: a reference division (mother with two successors) is found when the mother and
both daughters are matched one-to-one and both of the result's mapped edges mother→daughter
exist (no frame tolerance). Division precision = found / result divisions, recall = found /
reference divisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from h4tracks.core.evaluation.segmentation import FrameOverlap, frame_overlap, read_frame

__all__ = [
    "W_EA",
    "W_EC",
    "W_ED",
    "W_FN",
    "W_FP",
    "W_NS",
    "TrackingMetrics",
    "evaluate_tracking",
    "graph_edges",
    "lineage_edges",
    "tracking_from_overlaps",
]

# AOGM weights of the Cell Tracking Challenge (Matula et al. 2015)
W_NS, W_FN, W_FP, W_ED, W_EA, W_EC = 5.0, 10.0, 1.0, 1.0, 1.5, 1.0

Edge = tuple[int, int, int, int]


def graph_edges(graph: Any) -> np.ndarray:
    """Edges of a TrackGraph with their CTC semantic.

    Returns
    -------
    numpy.ndarray
        ``(E, 5)`` int64 rows ``(t_parent, label_parent, t_child, label_child, parent_link)``
        where ``parent_link`` is 0 for a track link (the parent's only successor, next frame)
        and 1 for a division or gap link — the same cut as ``graph_to_ctc``.
    """
    e = graph.edge_array()
    if e.shape[0] == 0:
        return np.zeros((0, 5), np.int64)
    _, inv, deg = np.unique(e[:, :2], axis=0, return_inverse=True, return_counts=True)
    cont = (deg[inv.reshape(-1)] == 1) & (e[:, 2] == e[:, 0] + 1)
    return np.column_stack([e, (~cont).astype(np.int64)])


def lineage_edges(lineage: np.ndarray) -> np.ndarray:
    """Edges of a CTC lineage table ``(id, first, last, parent)`` (label == track id), with
    the semantic of :func:`graph_edges` (a parent with a single child stays a parent link,
    exactly as the CTC evaluation treats it)."""
    lin = np.asarray(lineage, np.int64).reshape(-1, 4)
    ids, first, last, parent = lin.T
    n = np.maximum(last - first, 0)
    rep = np.repeat(np.arange(ids.size), n)
    # frame of each track link: first + 0..n-1 within its track
    offs = np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n)
    t0 = first[rep] + offs
    track = np.column_stack([t0, ids[rep], t0 + 1, ids[rep], np.zeros(rep.size, np.int64)])
    order = np.argsort(ids)
    pos = np.searchsorted(ids[order], parent).clip(max=max(ids.size - 1, 0))
    has = (parent > 0) & (ids[order][pos] == parent) if ids.size else parent > 0
    p_last = last[order][pos][has]
    links = np.column_stack(
        [p_last, parent[has], first[has], ids[has], np.ones(int(has.sum()), np.int64)]
    )
    out = np.concatenate([track, links]).astype(np.int64)
    return out[np.lexsort(out[:, :4].T[::-1])]


@dataclass
class TrackingMetrics:
    """AOGM breakdown, TRA, DET and division scores over a frame range.

    Error lists hold ``(t, label)`` nodes and ``(t_parent, label_parent, t_child,
    label_child)`` edges; reference items use reference labels, result items result labels.
    """

    frames: list[int]
    n_reference_nodes: int
    n_reference_edges: int
    n_result_nodes: int
    n_result_edges: int
    true_positives: int
    false_negatives: int
    false_positives: int
    splits: int
    merged_nodes: int
    edge_deletions: int
    edge_additions: int
    semantic_changes: int
    aogm: float
    aogm0: float
    aogm_d: float
    aogm_d0: float
    tra: float
    det: float
    reference_divisions: int
    result_divisions: int
    divisions_found: int
    fn_nodes: list[tuple[int, int]] = field(default_factory=list)
    fp_nodes: list[tuple[int, int]] = field(default_factory=list)
    merged: list[tuple[int, int]] = field(default_factory=list)
    missing_edges: list[Edge] = field(default_factory=list)
    extra_edges: list[Edge] = field(default_factory=list)
    semantic_edges: list[Edge] = field(default_factory=list)
    missed_divisions: list[tuple[int, int]] = field(default_factory=list)
    false_divisions: list[tuple[int, int]] = field(default_factory=list)

    @property
    def division_precision(self) -> float:
        """Found divisions / result divisions."""
        return _ratio(self.divisions_found, self.result_divisions)

    @property
    def division_recall(self) -> float:
        """Found divisions / reference divisions."""
        return _ratio(self.divisions_found, self.reference_divisions)

    @property
    def division_f1(self) -> float:
        """Harmonic mean of division precision and recall."""
        return _ratio(2 * self.divisions_found, self.reference_divisions + self.result_divisions)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict."""
        out: dict[str, Any] = {
            "frames": [self.frames[0], self.frames[-1]] if self.frames else [],
            "n_frames": len(self.frames),
        }
        for k in (
            "tra", "det", "aogm", "aogm0", "aogm_d", "aogm_d0", "n_reference_nodes",
            "n_reference_edges", "n_result_nodes", "n_result_edges", "true_positives",
            "false_negatives", "false_positives", "splits", "merged_nodes", "edge_deletions",
            "edge_additions", "semantic_changes", "reference_divisions", "result_divisions",
            "divisions_found", "division_precision", "division_recall", "division_f1",
        ):
            out[k] = getattr(self, k)
        for k in ("fn_nodes", "fp_nodes", "merged", "missing_edges", "extra_edges",
                  "semantic_edges", "missed_divisions", "false_divisions"):
            out[k] = [list(x) for x in getattr(self, k)]
        return out


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def _codes(t: np.ndarray, label: np.ndarray) -> np.ndarray:
    # (t, label) packed into one sortable int64 (labels fit in uint32)
    return (np.asarray(t, np.int64) << 32) | np.asarray(label, np.int64)


def _locate(codes: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each query code in the sorted ``codes`` and whether it was found."""
    if codes.size == 0:
        return np.zeros(query.size, np.int64), np.zeros(query.size, bool)
    pos = np.searchsorted(codes, query).clip(max=codes.size - 1)
    return pos, codes[pos] == query


def _restrict(edges: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges whose two ends are objects present in the masks: (parent idx, child idx, sem)."""
    edges = np.asarray(edges, np.int64).reshape(-1, 5)
    p, okp = _locate(codes, _codes(edges[:, 0], edges[:, 1]))
    c, okc = _locate(codes, _codes(edges[:, 2], edges[:, 3]))
    ok = okp & okc
    return p[ok], c[ok], edges[ok, 4]


def _divisions(par: np.ndarray, chi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mothers with two successors among the edges, and a mask of their edges."""
    mothers, deg = np.unique(par, return_counts=True)
    mothers = mothers[deg == 2]
    return mothers, np.isin(par, mothers)


def tracking_from_overlaps(
    overlaps: Sequence[FrameOverlap], result_edges: np.ndarray, reference_edges: np.ndarray
) -> TrackingMetrics:
    """Tracking scores from per-frame overlaps (reference vs result objects) and the two edge
    lists of :func:`graph_edges` / :func:`lineage_edges` (see the module docstring).

    Objects are the labels present in the masks; edges with an end outside them (another
    frame range, or a node without pixels) are ignored.
    """
    frames = [ov.t for ov in overlaps]
    r_t = np.concatenate([np.full(ov.ref_labels.size, ov.t, np.int64) for ov in overlaps])
    r_l = np.concatenate([ov.ref_labels for ov in overlaps]).astype(np.int64)
    c_t = np.concatenate([np.full(ov.pred_labels.size, ov.t, np.int64) for ov in overlaps])
    c_l = np.concatenate([ov.pred_labels for ov in overlaps]).astype(np.int64)
    r_code, c_code = _codes(r_t, r_l), _codes(c_t, c_l)
    if np.any(np.diff(r_code) <= 0) or np.any(np.diff(c_code) <= 0):
        raise ValueError("overlaps must be in increasing frame order")
    n_r, n_c = r_code.size, c_code.size
    r_off = np.cumsum([0] + [ov.ref_labels.size for ov in overlaps])
    c_off = np.cumsum([0] + [ov.pred_labels.size for ov in overlaps])
    m_r, m_c = [], []
    for k, ov in enumerate(overlaps):
        ok = ov.ctc_matches()
        m_r.append(ov.ref_index[ok] + r_off[k])
        m_c.append(ov.pred_index[ok] + c_off[k])
    match_r = np.concatenate(m_r).astype(np.int64)
    match_c = np.concatenate(m_c).astype(np.int64)

    # vertex operations
    assign_r = np.bincount(match_r, minlength=n_r)
    assign_c = np.bincount(match_c, minlength=n_c)
    tp = int(np.count_nonzero(assign_r == 1))
    fn = n_r - tp
    fp = int(np.count_nonzero(assign_c == 0))
    vs = int(np.count_nonzero(assign_c > 1))
    ns = int(np.sum(assign_c[assign_c > 1] - 1))
    unique_c = assign_c == 1
    comp_to_ref = np.full(n_c, -1, np.int64)
    sel = unique_c[match_c]
    comp_to_ref[match_c[sel]] = match_r[sel]

    # edge operations on the subgraph induced by one-to-one matched result objects
    rp, rc, rs = _restrict(reference_edges, r_code)
    cp, cc, cs = _restrict(result_edges, c_code)
    keep = unique_c[cp] & unique_c[cc]
    mp, mc, ms = comp_to_ref[cp[keep]], comp_to_ref[cc[keep]], cs[keep]
    ref_pair = rp * n_r + rc
    res_pair = mp * n_r + mc
    in_ref = np.isin(res_pair, ref_pair)
    in_res = np.isin(ref_pair, res_pair)
    ed = int(np.count_nonzero(~in_ref))
    ea = int(np.count_nonzero(~in_res))
    o_ref = np.argsort(ref_pair)
    ref_sem = rs[o_ref][np.searchsorted(ref_pair[o_ref], res_pair[in_ref])]
    wrong_sem = np.flatnonzero(in_ref)[ref_sem != ms[in_ref]]
    ec = int(wrong_sem.size)

    n_edges = int(ref_pair.size)
    aogm_d = W_NS * ns + W_FN * fn + W_FP * fp
    aogm_d0 = W_FN * n_r
    aogm = aogm_d + W_ED * ed + W_EA * ea + W_EC * ec
    aogm0 = aogm_d0 + W_EA * n_edges

    # divisions
    r_moth, r_div_edge = _divisions(rp, rc)
    c_moth, _ = _divisions(cp, cc)
    div_edge_found = np.zeros(ref_pair.size, bool)
    div_edge_found[r_div_edge] = in_res[r_div_edge]
    found_edges = np.bincount(rp[div_edge_found], minlength=n_r)
    r_found = found_edges[r_moth] == 2
    # the result mothers of found divisions (one-to-one mapped, so invertible)
    ref_to_comp = np.full(n_r, -1, np.int64)
    ref_to_comp[comp_to_ref[unique_c]] = np.flatnonzero(unique_c)
    c_found = np.isin(c_moth, ref_to_comp[r_moth[r_found]])

    def nodes(t: np.ndarray, lab: np.ndarray, idx: np.ndarray) -> list[tuple[int, int]]:
        return list(zip(t[idx].tolist(), lab[idx].tolist(), strict=True))

    def edge_list(t: np.ndarray, lab: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[Edge]:
        return list(zip(t[a].tolist(), lab[a].tolist(), t[b].tolist(), lab[b].tolist(),
                        strict=True))

    kept_p, kept_c = cp[keep], cc[keep]
    return TrackingMetrics(
        frames=frames,
        n_reference_nodes=n_r, n_reference_edges=n_edges,
        n_result_nodes=n_c, n_result_edges=int(cp.size),
        true_positives=tp, false_negatives=fn, false_positives=fp, splits=ns,
        merged_nodes=vs, edge_deletions=ed, edge_additions=ea, semantic_changes=ec,
        aogm=float(aogm), aogm0=float(aogm0), aogm_d=float(aogm_d), aogm_d0=float(aogm_d0),
        tra=1.0 - min(aogm, aogm0) / aogm0 if aogm0 else float("nan"),
        det=1.0 - min(aogm_d, aogm_d0) / aogm_d0 if aogm_d0 else float("nan"),
        reference_divisions=int(r_moth.size), result_divisions=int(c_moth.size),
        divisions_found=int(r_found.sum()),
        fn_nodes=nodes(r_t, r_l, np.flatnonzero(assign_r == 0)),
        fp_nodes=nodes(c_t, c_l, np.flatnonzero(assign_c == 0)),
        merged=nodes(c_t, c_l, np.flatnonzero(assign_c > 1)),
        missing_edges=edge_list(r_t, r_l, rp[~in_res], rc[~in_res]),
        extra_edges=edge_list(c_t, c_l, kept_p[~in_ref], kept_c[~in_ref]),
        semantic_edges=edge_list(c_t, c_l, kept_p[wrong_sem], kept_c[wrong_sem]),
        missed_divisions=nodes(r_t, r_l, r_moth[~r_found]),
        false_divisions=nodes(c_t, c_l, c_moth[~c_found]),
    )


def _as_edges(edges: Any) -> np.ndarray:
    if hasattr(edges, "edge_array"):
        return graph_edges(edges)
    return np.asarray(edges, np.int64).reshape(-1, 5)


def evaluate_tracking(
    result_labels: Any, result_edges: Any, reference_labels: Any, reference_edges: Any,
    frames: Iterable[int] | None = None,
) -> TrackingMetrics:
    """Score a tracking result against a reference (see the module docstring).

    Parameters
    ----------
    result_labels, reference_labels
        ``(T, Y, X)`` label movies, read one frame at a time.
    result_edges, reference_edges
        A :class:`~h4tracks.core.graph.TrackGraph` or an ``(E, 5)`` edge array of
        :func:`graph_edges` / :func:`lineage_edges` whose labels are those of the movie.
    frames
        Consecutive frame indices (default: all frames).
    """
    ts = range(len(reference_labels)) if frames is None else [int(t) for t in frames]
    overlaps = [
        frame_overlap(read_frame(reference_labels, t), read_frame(result_labels, t), t)
        for t in ts
    ]
    return tracking_from_overlaps(overlaps, _as_edges(result_edges), _as_edges(reference_edges))
