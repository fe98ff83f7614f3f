"""Learn the global tracker's link weights from curated frames, and re-track with them.

:func:`fit_weights` fits the link-cost weights of :mod:`~.global_link` by logistic regression
on candidate links of the curated frames: the curated links are the positives, the other
candidates of the same cells the negatives. The cost of a link is its negative log-odds
``w · f``, so ``P(link) = 1 / (1 + exp(w · f))``; the regularised log-loss

    L(w) = Σ_pos log(1 + e^{w·f}) + Σ_neg log(1 + e^{-w·f}) + λ ‖w − w₀‖²

(w₀ = the current weights, λ = 1) is minimised with L-BFGS-B under sign bounds (distance,
area change and gap can only cost, overlap can only help) so a handful of curated frames
cannot turn the model upside down. Division weights are kept.

:func:`retrack_with_corrections` then re-tracks the whole movie with the fitted weights,
keeping every curated link fixed and allowing no other link between curated frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import Any

import numpy as np
from scipy.optimize import minimize

from h4tracks.core.graph import TrackGraph
from h4tracks.core.tracking.detections import detect
from h4tracks.core.tracking.global_link import (
    DEFAULT_WEIGHTS,
    LINK_FEATURES,
    estimate_defaults,
    prepare,
    track_global,
)
from h4tracks.core.tracking.motion import local_motion
from h4tracks.core.tracking.params import GlobalParams
from h4tracks.errors import InputError

__all__ = ["curated_links", "fit_weights", "retrack_with_corrections"]

_LAMBDA = 1.0
# sign constraints of the link weights (cost = w · f; lower cost = more likely link)
_BOUNDS = {
    "bias": (None, None), "distance": (0.0, None), "iou": (None, 0.0),
    "cover": (None, 0.0), "area": (0.0, None), "gap": (0.0, None),
}


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
        All weights (``DEFAULT_WEIGHTS`` keys): fitted link weights, unchanged division
        weights.

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
    prob = prepare(labels, params, frames=range(fr[0], fr[-1] + 1))
    det = prob.det
    pp, pc = prob.index(links[:, 0], links[:, 1]), prob.index(links[:, 2], links[:, 3])
    ok = (pp >= 0) & (pc >= 0)
    pp, pc = pp[ok], pc[ok]
    vel = np.zeros((len(det), 2))
    if params.motion == "local":  # the curated links are the best first pass there is
        radius = max(3.0 * estimate_defaults(det)["diameter"], prob.max_distance)
        vel = local_motion(det.t, det.coords, pp, pc, prob.drift_cum, radius)
    cp, cc = prob.candidates(vel)
    n = len(det)
    code = np.unique(np.r_[cp * n + cc, pp * n + pc])
    cp, cc = code // n, code % n
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

    bounds = [_BOUNDS[k] for k in LINK_FEATURES]
    w_start = np.array([np.clip(v, lo if lo is not None else -np.inf,
                                hi if hi is not None else np.inf)
                        for v, (lo, hi) in zip(w0, bounds, strict=True)])
    res = minimize(loss, w_start, jac=True, method="L-BFGS-B", bounds=bounds)
    out = dict(DEFAULT_WEIGHTS)
    out.update(prob.weights)
    out.update({k: float(v) for k, v in zip(LINK_FEATURES, res.x, strict=True)})
    return out


def retrack_with_corrections(
    project: Any,
    frames: Iterable[int] | None = None,
    params: GlobalParams | None = None,
) -> TrackGraph:
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
        est = estimate_defaults(detect(labels))
        if params.max_distance is None:
            upd["max_distance"] = est["max_distance"]
        if params.border_margin is None:
            upd["border_margin"] = est["border_margin"]
    params = params.model_copy(update=upd)
    weights = fit_weights((labels, graph), fr, params)
    tuned = params.model_copy(update={"weights": weights})
    return track_global(labels, tuned, fixed_edges=links, forbidden_nodes_frames=fr)
