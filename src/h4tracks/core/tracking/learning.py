"""Learn the global tracker's link weights from curated frames, and re-track with them.

:func:`fit_weights` fits the link-cost weights of :mod:`~.global_link` by logistic regression
on candidate links of the curated frames: the curated links are the positives, the other
candidates of the same cells the negatives. The cost of a link is its negative log-odds
``w · f``, so ``P(link) = 1 / (1 + exp(w · f))``; the regularised log-loss

    L(w) = Σ_pos log(1 + e^{w·f}) + Σ_neg log(1 + e^{-w·f}) + λ ‖w − w₀‖²

(w₀ = the current weights, λ = 1) is minimised with L-BFGS-B under sign bounds (distance,
area change and gap can only cost, overlap can only help) so a handful of curated frames
cannot turn the model upside down.

The division weights are then fitted with the link weights fixed, as a choice per mother
(conditional logit): in the curated frames each cell either divides into one of her division
candidates or does not, and the user's graph says which. The cost of a candidate relative to
not dividing is ``r = dcost − min(l₁ + in₂, l₂ + in₁)`` (``lᵢ`` the mother→daughter link
cost, ``inᵢ`` the cheapest other explanation of daughter i: a link from another cell or
appearing), ``P(choice) = e^{−r} / (1 + Σ e^{−r})`` with "no division" at r = 0, and the
same prior and sign bounds (every division feature can only cost, ``div_bias`` is free).

:func:`retrack_with_corrections` then re-tracks the whole movie with the fitted weights,
keeping every curated link fixed and allowing no other link between curated frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from itertools import pairwise
from typing import Any

import numpy as np
from scipy.optimize import minimize

from h4tracks.core.graph import TrackGraph
from h4tracks.core.parameters import GlobalParams
from h4tracks.core.tracking.global_link import (
    DEFAULT_WEIGHTS,
    DIVISION_FEATURES,
    LINK_FEATURES,
    GlobalProblem,
    division_pairs,
    flow_from_links,
    prepare,
    track_global,
)
from h4tracks.errors import InputError

__all__ = ["curated_links", "fit_weights", "retrack_with_corrections"]

_LAMBDA = 1.0
# sign constraints of the link weights (cost = w · f; lower cost = more likely link)
_BOUNDS = {
    "bias": (None, None), "distance": (0.0, None), "iou": (None, 0.0),
    "cover": (None, 0.0), "area": (0.0, None), "gap": (0.0, None),
    "div_bias": (None, None), "div_area": (0.0, None), "div_angle": (0.0, None),
    "div_balance": (0.0, None), "div_size": (0.0, None), "div_elongation": (0.0, None),
    "div_young": (0.0, None),
}


def _minimize(loss: Any, keys: tuple[str, ...], w0: np.ndarray) -> np.ndarray:
    """L-BFGS-B of ``loss(w) -> (value, grad)`` under the sign bounds of ``keys``."""
    bounds = [_BOUNDS[k] for k in keys]
    lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
    hi = np.array([np.inf if b[1] is None else b[1] for b in bounds])
    return minimize(loss, np.clip(w0, lo, hi), jac=True, method="L-BFGS-B", bounds=bounds).x


def _labels_graph(source: Any) -> tuple[Any, TrackGraph]:
    if isinstance(source, tuple) and len(source) == 2:
        labels, graph = source
    else:
        labels, graph = getattr(source, "labels", None), getattr(source, "graph", None)
    if labels is None or graph is None:
        raise InputError("need a project with labels, or a (labels, graph) pair")
    return labels, graph


def _check_frames(frames: Iterable[int] | None) -> list[int]:
    fr = sorted({int(f) for f in (frames or ())})
    if not any(b == a + 1 for a, b in pairwise(fr)):
        raise InputError(
            "learning from corrections needs at least 2 consecutive curated frames "
            f"(got {fr or 'none'}); curate (and mark) two neighbouring frames first"
        )
    return fr


def curated_links(graph: TrackGraph, frames: Iterable[int]) -> np.ndarray:
    """(E, 4) links of ``graph`` whose both cells lie in ``frames``."""
    e = graph.edge_array()
    f = np.asarray(sorted({int(x) for x in frames}), np.int64)
    if e.shape[0] == 0 or f.size == 0:
        return np.zeros((0, 4), np.int64)
    keep = np.isin(e[:, 0], f) & np.isin(e[:, 2], f)
    return np.asarray(e[keep], np.int64)


def fit_weights(
    project_or_labels_graph: Any,
    frames: Iterable[int] | None = None,
    params: GlobalParams | None = None,
) -> dict[str, float]:
    """Fit the link-cost weights to the links of the curated frames.

    Parameters
    ----------
    project_or_labels_graph
        A :class:`~h4tracks.core.project.Project` or a ``(labels, graph)`` pair.
    frames
        The curated frames (default: the project's ``curated_frames``).
    params
        :class:`GlobalParams`; its ``weights`` are the starting point and prior, its
        ``max_distance`` sets the feature scale (pass the value used for tracking).

    Returns
    -------
    dict
        All weights (``DEFAULT_WEIGHTS`` keys): the fitted link weights and, when
        ``params.divisions``, the fitted division weights.

    Raises
    ------
    InputError
        Fewer than 2 consecutive curated frames, or no link between them.
    """
    labels, graph = _labels_graph(project_or_labels_graph)
    if frames is None:
        frames = getattr(project_or_labels_graph, "curated_frames", None)
    fr = _check_frames(frames)
    params = GlobalParams() if params is None else params
    links = curated_links(graph, fr)
    if links.shape[0] == 0:
        raise InputError(f"the curated frames {fr[0]}..{fr[-1]} contain no links to learn from")
    # (no optical flow: the curated links give the motion)
    prob = prepare(labels, params, frames=range(fr[0], fr[-1] + 1), flow=False)
    det = prob.det
    pp, pc = prob.index(links[:, 0], links[:, 1]), prob.index(links[:, 2], links[:, 3])
    ok = (pp >= 0) & (pc >= 0)
    pp, pc = pp[ok], pc[ok]
    vel = np.zeros((len(det), 2))
    if params.motion == "local":  # the curated links are the best first pass there is
        vel = flow_from_links(prob, pp, pc)
    cp, cc = prob.candidates(vel)
    n = len(det)
    code = np.unique(np.r_[cp * n + cc, pp * n + pc])
    cp_all, cc_all = cp, cc = code // n, code % n
    cur = np.zeros(det.n_frames, bool)
    cur[fr] = True
    # negatives: the other candidates of the cells the user linked, inside the curated frames
    touch = np.isin(cp, pp) | np.isin(cc, pc)
    sel = cur[det.t[cp]] & cur[det.t[cc]] & touch
    cp, cc = cp[sel], cc[sel]
    y = np.isin(cp * n + cc, pp * n + pc)
    x = prob.link_features(cp, cc, vel)
    w0 = np.array([prob.weights[k] for k in LINK_FEATURES])
    sign = np.where(y, 1.0, -1.0)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = sign * (x @ w)  # positives pay log(1+e^{c}), negatives log(1+e^{-c})
        val = float(np.sum(np.logaddexp(0.0, z)) + _LAMBDA * np.sum((w - w0) ** 2))
        s = 1.0 / (1.0 + np.exp(-z))
        grad = x.T @ (sign * s) + 2 * _LAMBDA * (w - w0)
        return val, grad

    out = dict(DEFAULT_WEIGHTS)
    out.update(prob.weights)
    out.update(zip(LINK_FEATURES, _minimize(loss, LINK_FEATURES, w0).tolist(), strict=True))
    if params.divisions:
        tuned = replace(prob, weights=out)
        sel = cur[det.t[cp_all]] & cur[det.t[cc_all]]
        out.update(_fit_divisions(tuned, cp_all[sel], cc_all[sel], pp, pc, vel))
    return out


def _fit_divisions(
    prob: GlobalProblem, lp: np.ndarray, lc: np.ndarray, pp: np.ndarray, pc: np.ndarray,
    vel: np.ndarray,
) -> dict[str, float]:
    """Division weights fitted to the curated divisions (see the module docstring).

    ``lp, lc``: candidate links inside the curated frames; ``pp, pc``: the curated links.
    """
    det, n = prob.det, len(prob.det)
    feats = prob.link_features(lp, lc, vel)
    cost = prob.link_cost(feats)
    one = det.t[pc] == det.t[pp] + 1  # the curated divisions: two children in the next frame
    extra = division_pairs(lp, lc, pp[one], pc[one])
    d1, d2, _ = prob.divisions_of(lp, lc, feats, cost, vel, extra)
    if d1.size == 0:
        return {}
    base, g = prob.division_features(lp, lc, feats, cost, vel, d1, d2)
    # cheapest other explanation of each daughter: a link from another cell, or appearing
    app = prob.border_costs()[0]
    by = np.lexsort((cost, lc))
    c_s, p_s, k_s = lc[by], lp[by], cost[by]
    start = np.r_[0, np.flatnonzero(c_s[1:] != c_s[:-1]) + 1]
    rank = np.arange(c_s.size) - np.repeat(start, np.diff(np.r_[start, c_s.size]))
    best_c, best_p, second = np.full(n, np.inf), np.full(n, -1), np.full(n, np.inf)
    best_c[c_s[rank == 0]], best_p[c_s[rank == 0]] = k_s[rank == 0], p_s[rank == 0]
    second[c_s[rank == 1]] = k_s[rank == 1]
    other = np.where(best_p[lc] == lp, second[lc], best_c[lc])
    alt_in = np.minimum(other, app[lc])  # per link: its child explained without this parent
    alt = np.minimum(cost[d1] + alt_in[d2], cost[d2] + alt_in[d1])
    off = base - alt
    chosen = np.zeros(d1.size, bool)
    if extra is not None:
        key = np.minimum(d1, d2) * (lp.size + 1) + np.maximum(d1, d2)
        chosen = np.isin(key, np.minimum(extra[:, 0], extra[:, 1]) * (lp.size + 1)
                         + np.maximum(extra[:, 0], extra[:, 1]))
    mom = lp[d1]
    _, grp = np.unique(mom, return_inverse=True)
    n_grp = int(grp.max()) + 1
    w0 = np.array([prob.weights[k] for k in DIVISION_FEATURES])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        neg_r = -(off + g @ w)
        mx = np.zeros(n_grp)  # "no division" (r = 0) is every mother's option too
        np.maximum.at(mx, grp, neg_r)
        e = np.exp(neg_r - mx[grp])
        z = np.exp(-mx) + np.bincount(grp, e, n_grp)
        lse = mx + np.log(z)
        p = e / z[grp]
        val = float(lse.sum() - neg_r[chosen].sum() + _LAMBDA * np.sum((w - w0) ** 2))
        grad = g[chosen].sum(0) - (p[:, None] * g).sum(0) + 2 * _LAMBDA * (w - w0)
        return val, grad

    return dict(zip(DIVISION_FEATURES, _minimize(loss, DIVISION_FEATURES, w0).tolist(),
                    strict=True))


def retrack_with_corrections(
    project: Any,
    frames: Iterable[int] | None = None,
    params: GlobalParams | None = None,
    *,
    return_weights: bool = False,
) -> TrackGraph | tuple[TrackGraph, dict[str, float]]:
    """Re-track the whole movie with weights learnt from the curated frames.

    The curated links (both cells in curated frames) are fixed, and no other link may join
    two cells of the curated frames. The project is not changed: the caller sets
    ``project.graph`` to the result (e.g. through an undoable action).

    Parameters
    ----------
    project
        A project with labels and a graph holding the user's corrections.
    frames
        Curated frames (default ``project.curated_frames``).
    params
        :class:`GlobalParams` (defaults if None); ``weights`` are replaced by the fitted ones.
    return_weights
        Also return the fitted weights (for the provenance).

    Returns
    -------
    TrackGraph or (TrackGraph, dict)
        The new graph (and the weights it was tracked with).

    Raises
    ------
    InputError
        Fewer than 2 consecutive curated frames, no link between them, or no labels.
    """
    labels, graph = _labels_graph(project)
    fr = _check_frames(project.curated_frames if frames is None else frames)
    params = GlobalParams() if params is None else params
    links = curated_links(graph, fr)
    if links.shape[0] == 0:
        raise InputError(f"the curated frames {fr[0]}..{fr[-1]} contain no links to learn from")
    # resolve the data-driven scales on the whole movie so fitting and tracking share them
    upd: dict[str, Any] = {}
    if params.max_distance is None or params.border_margin is None:
        # the same resolution as track_global (stage drift taken out of the steps)
        prob = prepare(labels, params, flow=False)  # the scales only
        if params.max_distance is None:
            upd["max_distance"] = prob.max_distance
        if params.border_margin is None:
            upd["border_margin"] = prob.margin
    params = params.model_copy(update=upd)
    weights = fit_weights((labels, graph), fr, params)
    tuned = params.model_copy(update={"weights": weights})
    out = track_global(labels, tuned, fixed_edges=links, forbidden_nodes_frames=fr)
    return (out, weights) if return_weights else out
