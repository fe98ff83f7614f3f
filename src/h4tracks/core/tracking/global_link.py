"""Global, division-aware tracking: one integer program over all links of a movie.

Method
------
1. **Candidates.** For every cell of frame t and every frame gap g = 1 … ``max_gap + 1``,
   the cells of frame t + g within ``max_distance`` of the position the cell is *expected* at
   (:mod:`~h4tracks.core.tracking.motion`: stage drift by phase correlation and, for
   ``motion="local"``, in the first pass the masks' optical flow at the cell
   (:mod:`~h4tracks.core.tracking.optical_flow`), then the median motion of its 24 nearest
   linked neighbours in the previous pass; the movie is tracked up to ``passes`` times,
   until the links stop changing), at
   most the 6 nearest per cell and side; plus every pair of consecutive frames whose masks
   overlap.
2. **Link costs** are a weighted sum of features (log-odds units, ``DEFAULT_WEIGHTS``):
   ``bias``, ``distance`` = (distance to the expected position / max_distance)², the
   step along a cell's long axis shortened by what its change of length explains
   (:meth:`~.global_problem.GlobalProblem.shape_change_distance`; candidates are still
   found by plain distance, so a centre that jumps past ``max_distance`` is linked only
   where the masks overlap),
   ``iou`` and ``cover`` (shared pixels / child area; masks only, g = 1), ``area`` =
   \\|log(area ratio) − g log(growth)\\| (``growth``: the movie's median area ratio from one
   frame to the next), ``gap`` = frames skipped.
3. **Division candidates** are a mother and two of her (4 cheapest) one-frame candidates;
   cost = sum of the two daughter link costs (their area term comparing each daughter with
   half the grown mother, their distance term measured from where each daughter is expected
   and not shortened for a change of shape) + ``div_bias`` +
   ``div_area`` × \\|log((a1 + a2) / (growth × a_mother))\\| + ``div_angle`` × (1 + cos θ) / 2 (θ
   between the daughters seen from the mother: opposite sides cost 0) + ``div_balance`` ×
   \\|log(a1 / a2)\\| + ``div_size`` × max(0, log(median area / a_mother)) +
   ``div_elongation`` / elongation of the mother + ``div_young`` × youth of the mother (1
   just after her own birth by division, 0 from half the movie's median cell cycle on;
   read from the previous pass's lineage, so only with ``motion="local"``; see
   :mod:`~h4tracks.core.tracking.cell_cycle`).
4. **Appear / disappear** cost ``appear_cost`` / ``disappear_cost`` (default half the cost of
   a link at ``max_distance``), scaled down linearly inside ``border_margin`` of the image
   border, free in the first / last frame.
5. **Solve** with ``scipy.optimize.milp`` (HiGHS): binary link, division, appear and
   disappear variables; every cell has exactly one of (appear, incoming link, being a
   daughter) and exactly one of (disappear, outgoing link, dividing). Long movies are solved
   in windows of ``window`` frames (at least ``2 max_gap + 3``, and 4 without gaps); a
   window keeps the decisions of the overlap with the previous one fixed
   (:mod:`~h4tracks.core.tracking.global_solve`). Empty frames and windows without cells
   are fine: they simply hold no variables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from h4tracks.core.graph import TrackGraph
from h4tracks.core.parameters import GlobalParams
from h4tracks.core.tracking.cell_cycle import lineage_age
from h4tracks.core.tracking.detections import Detections
from h4tracks.core.tracking.global_problem import (
    DEFAULT_WEIGHTS,
    DIVISION_FEATURES,
    LINK_FEATURES,
    Cancel,
    GlobalProblem,
    Progress,
    _as_labels,
    estimate_defaults,
    median_diameter,
    prepare,
)
from h4tracks.core.tracking.global_solve import FixedBounds, solve_windows, window_plan
from h4tracks.core.tracking.motion import local_motion
from h4tracks.errors import H4TracksError, InputError

__all__ = [
    "DEFAULT_WEIGHTS",
    "DIVISION_FEATURES",
    "LINK_FEATURES",
    "GlobalProblem",
    "division_pairs",
    "estimate_defaults",
    "flow_from_links",
    "prepare",
    "track_global",
]


def track_global(
    labels_or_detections: Any,
    params: GlobalParams | None = None,
    *,
    labels: Any = None,
    fixed_edges: np.ndarray | None = None,
    forbidden_nodes_frames: Iterable[int] | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> TrackGraph:
    """Track all cells of a movie with one global integer program (see module docstring).

    Parameters
    ----------
    labels_or_detections
        A (T, Y, X) label movie (numpy or anything with ``.frame(t)`` and ``.shape``): cells
        are detected and mask overlaps used; or :class:`Detections` (distances only).
    params
        :class:`GlobalParams` (defaults if None).
    labels
        Label movie to use with given detections (then the detections are ignored and
        re-measured from the labels, so masks are used).
    fixed_edges
        (E, 4) links ``(t_p, l_p, t_c, l_c)`` that must be in the result (e.g. curated
        links); a parent with two fixed children in the next frame is a fixed division.
    forbidden_nodes_frames
        Frames (e.g. the curated ones) between whose cells only ``fixed_edges`` may link: a
        link or division joining two cells of these frames is allowed only if fixed.
    progress
        ``progress(done, total)``: frames read, then one step per solved window and pass.
    cancel
        ``cancel() -> bool``, polled between frames and windows; True raises
        ``H4TracksError("Tracking cancelled")``.

    Returns
    -------
    TrackGraph
        One node per cell, the chosen links, and two edges per division.
    """
    params = GlobalParams() if params is None else params
    if not isinstance(params, GlobalParams):
        raise InputError(f"params must be GlobalParams, got {type(params).__name__}")
    source = labels if labels is not None else labels_or_detections
    if not isinstance(source, Detections):
        source = _as_labels(source)
        if len(tuple(getattr(source, "shape", ()))) != 3:
            raise InputError(
                f"labels must be a (T, Y, X) movie, got shape {getattr(source, 'shape', None)}"
            )
    n_frames = int(source.n_frames if isinstance(source, Detections) else source.shape[0])
    n_windows = sum(1 for _ in window_plan(n_frames, params.window, params.max_gap))
    passes = params.passes if params.motion == "local" else 1
    total = (0 if isinstance(source, Detections) else n_frames) + passes * n_windows
    done = [0]

    def tick() -> None:
        if cancel is not None and cancel():
            raise H4TracksError("Tracking cancelled")
        if progress is not None:
            done[0] = min(done[0] + 1, total)
            progress(done[0], total)

    read_progress = None if progress is None else (lambda d, _n: (
        done.__setitem__(0, d), progress(d, total)))
    prob = prepare(source, params, progress=read_progress, cancel=cancel)
    det = prob.det
    if len(det) == 0:
        return TrackGraph.from_arrays(det.node_columns())
    fix_par, fix_chi = _fixed_nodes(prob, fixed_edges)
    forb = set(int(f) for f in forbidden_nodes_frames) if forbidden_nodes_frames else set()
    # the first pass expects each cell where the masks' optical flow moves it (zero
    # without masks or with motion "drift" / "none")
    vel = prob.seed if prob.seed is not None else np.zeros((len(det), 2))
    chosen: tuple[np.ndarray, ...] = ()
    for p in range(passes):
        if p >= 1:
            # each pass measures the local flow (and the cells' ages) from the links of
            # the one before: where a first pass mislinked a crowded, fast-moving patch,
            # the next one starts from a better flow and corrects most of it
            vel = flow_from_links(prob, *chosen)
        new = _one_pass(prob, vel, fix_par, fix_chi, forb, params, tick)
        converged = p >= 1 and all(np.array_equal(a, b) for a, b in zip(new, chosen,
                                                                          strict=True))
        chosen = new
        if converged:  # the same links again: another pass would repeat them
            break
    if progress is not None:  # passes skipped by convergence count as done
        progress(total, total)
    lp, lc = chosen
    edges = np.column_stack([det.t[lp], det.label[lp], det.t[lc], det.label[lc]])
    return TrackGraph.from_arrays(det.node_columns(), edges)


def flow_from_links(prob: GlobalProblem, par: np.ndarray, chi: np.ndarray) -> np.ndarray:
    """What a ``motion="local"`` pass takes from earlier links ``(par, chi)`` (node indices):
    the local motion at every node (returned; the median over linked neighbours within 3
    cell diameters or ``max_distance``, whichever is larger) and the cells' ages from the
    links' lineage (set on ``prob``). The tracker's later passes and learning from curated
    links both use it, so the curated links act exactly as a first pass would."""
    det = prob.det
    radius = max(3.0 * median_diameter(det), prob.max_distance)
    prob.age, prob.young = lineage_age(det.t, par, chi, len(det))
    return local_motion(det.t, det.coords, par, chi, prob.drift_cum, radius)


def _fixed_nodes(
    prob: GlobalProblem, fixed_edges: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if fixed_edges is None or len(fixed_edges) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    fe = np.asarray(fixed_edges, np.int64).reshape(-1, 4)
    fp, fc = prob.index(fe[:, 0], fe[:, 1]), prob.index(fe[:, 2], fe[:, 3])
    if np.any(fp < 0) or np.any(fc < 0):
        i = int(np.flatnonzero((fp < 0) | (fc < 0))[0])
        raise InputError(f"fixed link {tuple(fe[i].tolist())} refers to a missing cell")
    if np.any(fe[:, 2] <= fe[:, 0]):
        raise InputError("fixed links must go forward in time")
    if np.unique(fc).size != fc.size:
        raise InputError("fixed links give a cell two parents")
    up, cnt = np.unique(fp, return_counts=True)
    if np.any(cnt > 2):
        raise InputError("fixed links give a cell more than two children")
    two = np.isin(fp, up[cnt == 2])
    if np.any(two & (prob.det.t[fc] != prob.det.t[fp] + 1)):
        raise InputError("a fixed division must put both daughters in the next frame")
    return fp, fc


def division_pairs(
    lp: np.ndarray, lc: np.ndarray, par: np.ndarray, chi: np.ndarray
) -> np.ndarray | None:
    """Divisions among the links ``(par, chi)`` (node indices): a parent with two of them.

    Returns the (k, 2) indices of the two daughter links in the candidate list ``(lp, lc)``,
    which must contain every such link; None when there is no division.
    """
    up, cnt = np.unique(par, return_counts=True)
    two = np.isin(par, up[cnt == 2])
    if not two.any():
        return None
    n = int(max(lp.max(initial=0), lc.max(initial=0), par.max(), chi.max())) + 1
    code = lp * n + lc
    o = np.argsort(code)
    li = o[np.searchsorted(code[o], par[two] * n + chi[two])]
    return li[np.argsort(lp[li], kind="stable")].reshape(-1, 2)


def _one_pass(
    prob: GlobalProblem, vel: np.ndarray, fix_par: np.ndarray, fix_chi: np.ndarray,
    forb: set[int], params: GlobalParams, tick: Callable[[], None],
) -> tuple[np.ndarray, np.ndarray]:
    det = prob.det
    n = len(det)
    lp, lc = prob.candidates(vel)
    if fix_par.size:  # fixed links are always candidates, even beyond max_distance
        code = np.unique(np.r_[lp * n + lc, fix_par * n + fix_chi])
        lp, lc = code // n, code % n
    feats = prob.link_features(lp, lc, vel)
    lcost = prob.link_cost(feats)
    lcode = lp * n + lc
    fixed_l = np.isin(lcode, fix_par * n + fix_chi)
    extra = division_pairs(lp, lc, fix_par, fix_chi)  # fixed divisions
    d1, d2, dcost = prob.divisions_of(lp, lc, feats, lcost, vel, extra)
    fixed_d = np.zeros(d1.size, bool)
    if extra is not None:
        key = np.minimum(d1, d2) * (lp.size + 1) + np.maximum(d1, d2)
        ekey = np.minimum(extra[:, 0], extra[:, 1]) * (lp.size + 1) + np.maximum(
            extra[:, 0], extra[:, 1])
        fixed_d = np.isin(key, ekey)
        fixed_l[extra.ravel()] = False  # they are represented by the division variable
    link_hi = np.ones(lp.size, bool)
    div_hi = np.ones(d1.size, bool)
    if forb:
        f = np.zeros(det.n_frames, bool)
        f[[x for x in forb if 0 <= x < det.n_frames]] = True
        inside = f[det.t[lp]] & f[det.t[lc]]
        link_hi &= ~inside | fixed_l
        dinside = f[det.t[lp[d1]]] & f[det.t[lc[d1]]]
        div_hi &= ~dinside | fixed_d
    # Exact pruning: a link dearer than ending its parent's track and starting its child's,
    # or a division dearer than one of its links plus the other daughter appearing, is in
    # no optimal solution (swapping it for that alternative is feasible and cheaper). The
    # windows only lower appear/disappear costs, so this stays true there. It leaves HiGHS
    # a fraction of the division variables, which dominate the solve time.
    app, dis = prob.border_costs()
    c1, c2 = lc[d1], lc[d2]
    link_hi &= (lcost < dis[lp] + app[lc]) | fixed_l
    div_alt = np.minimum.reduce([lcost[d1] + app[c2], lcost[d2] + app[c1],
                                 dis[lp[d1]] + app[c1] + app[c2]])
    div_hi &= (dcost < div_alt) | fixed_d
    fixed = FixedBounds(fixed_l, link_hi, fixed_d, div_hi)
    return _windows_to_edges(prob, lp, lc, lcost, d1, d2, dcost, fixed, params, tick)


def _windows_to_edges(
    prob: GlobalProblem, lp: np.ndarray, lc: np.ndarray, lcost: np.ndarray,
    d1: np.ndarray, d2: np.ndarray, dcost: np.ndarray, fixed: FixedBounds,
    params: GlobalParams, tick: Callable[[], None],
) -> tuple[np.ndarray, np.ndarray]:
    app, dis = prob.border_costs()
    cl, cd = solve_windows(prob.det.t, prob.det.n_frames, prob.max_gap, app, dis, lp, lc,
                           lcost, d1, d2, dcost, fixed, params.window, params.time_limit, tick)
    par = np.concatenate([lp[cl], lp[d1[cd]], lp[d2[cd]]])
    chi = np.concatenate([lc[cl], lc[d1[cd]], lc[d2[cd]]])
    o = np.lexsort((chi, par))
    return par[o], chi[o]

