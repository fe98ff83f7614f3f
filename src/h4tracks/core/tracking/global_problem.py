"""The integer program of the global tracker, built but not solved: candidate links,
divisions, appear / disappear options and their costs for a whole movie (see
:mod:`~h4tracks.core.tracking.global_link` for the method and the solve)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from h4tracks.core.parameters import GlobalParams
from h4tracks.core.tracking.detections import Detections, median_diameter_of
from h4tracks.core.tracking.features import MovieScan, scan_movie
from h4tracks.core.tracking.motion import cumulative_drift
from h4tracks.errors import InputError

__all__ = [
    "DEFAULT_WEIGHTS",
    "DIVISION_FEATURES",
    "LINK_FEATURES",
    "GlobalProblem",
    "estimate_defaults",
    "prepare",
]


LINK_FEATURES = ("bias", "distance", "iou", "cover", "area", "gap")
DIVISION_FEATURES = (
    "div_bias", "div_area", "div_angle", "div_balance", "div_size", "div_elongation",
    "div_young",
)
DEFAULT_WEIGHTS: dict[str, float] = {
    "bias": -4.0,
    "distance": 9.0,  # (d / max_distance)²: a link at max_distance costs bias + 9
    "iou": -3.0,
    "cover": -4.0,
    "area": 2.0,
    "gap": 2.0,
    "div_bias": -1.0,
    "div_area": 3.0,
    "div_angle": 3.0,
    "div_balance": 1.0,
    "div_size": 1.0,
    "div_elongation": 0.5,
    # a mother born by division less than half a cell cycle ago (see cell_cycle): on the
    # real E. coli movie at a third of its frame rate it raised TRA by up to 0.006
    "div_young": 3.0,
}
_K_NEAREST = 6  # candidates kept per cell, side and gap (plus all mask overlaps)
_K_DAUGHTERS = 4  # cheapest one-frame candidates of a mother combined into divisions

Progress = Callable[[int, int], Any]
Cancel = Callable[[], bool]



# --------------------------------------------------------------------------- defaults
def median_diameter(detections: Detections) -> float:
    """Median equivalent diameter (px) of the detections, from their areas; 10 with none."""
    return median_diameter_of(detections.area, 10.0)


def estimate_defaults(
    detections: Detections, drift_cum: np.ndarray | None = None
) -> dict[str, float]:
    """Data-driven defaults of the global tracker.

    Returns
    -------
    dict
        ``displacement`` (median distance of a cell to the nearest cell of the next frame),
        ``displacement_p90``, ``diameter`` (median equivalent diameter from the areas),
        ``division_rate`` (mean relative growth of the cell count per frame, a guess),
        ``clear_step_p95`` (95th percentile of the steps of unambiguous pairs: mutual
        nearest cells of consecutive frames whose second nearest is at least twice as far),
        ``max_distance`` (the larger of 3 × max(displacement, diameter / 4) and
        2.5 × clear_step_p95, at least 2 px), ``border_margin`` (= diameter) and
        ``growth`` (median area ratio, next frame / this one, of the unambiguous pairs,
        within 0.8-1.5; 1 with fewer than 5 pairs).

        ``drift_cum`` (see :func:`~.motion.cumulative_drift`) is taken out of the steps.
        The unambiguous steps matter where cells are few and fast (a stem-cell movie with
        steps of 100-170 px and cells 300 px apart): there the median step to the nearest
        cell says little, and a max. distance from it alone cut 15 true links of 413.
    """
    det = detections
    diameter = median_diameter(det)
    off = det.frame_offsets()
    yx = det.coords
    nn: list[np.ndarray] = []
    clear: list[np.ndarray] = []
    ratio: list[np.ndarray] = []
    counts = np.diff(off)
    for t in range(det.n_frames - 1):
        a, b = yx[off[t]:off[t + 1]], yx[off[t + 1]:off[t + 2]]
        if drift_cum is not None and len(drift_cum) > t + 1:
            a = a + (drift_cum[t + 1] - drift_cum[t])
        if len(a) and len(b):
            da, ja = cKDTree(b).query(a, k=2)
            db, jb = cKDTree(a).query(b, k=2)
            da, ja = da.reshape(len(a), 2), ja.reshape(len(a), 2)
            db, jb = db.reshape(len(b), 2), jb.reshape(len(b), 2)
            nn.append(da[:, 0])
            ia = np.arange(len(a))
            mutual = jb[np.minimum(ja[:, 0], len(b) - 1), 0] == ia
            second = np.minimum(da[:, 1], db[np.minimum(ja[:, 0], len(b) - 1), 1])
            sure = mutual & (second >= 2 * da[:, 0])
            clear.append(da[sure, 0])
            ratio.append(det.area[off[t + 1] + ja[sure, 0]]
                         / np.maximum(det.area[off[t] + ia[sure]], 1))
    d = np.concatenate(nn) if nn else np.zeros(1)
    c = np.concatenate(clear) if clear else np.zeros(0)
    clear_p95 = float(np.percentile(c, 95)) if c.size >= 5 else 0.0
    disp, p90 = float(np.median(d)), float(np.percentile(d, 90))
    r = np.concatenate(ratio) if ratio else np.zeros(0)
    grow = np.maximum(np.diff(counts), 0) / np.maximum(counts[:-1], 1) if counts.size > 1 else (
        np.zeros(1))
    return {
        "displacement": disp,
        "displacement_p90": p90,
        "diameter": diameter,
        "division_rate": float(np.mean(grow)),
        "clear_step_p95": clear_p95,
        "max_distance": max(3.0 * max(disp, diameter / 4), 2.5 * clear_p95, 2.0),
        "border_margin": diameter,
        "growth": float(np.clip(np.median(r), 0.8, 1.5)) if r.size >= 5 else 1.0,
    }


# --------------------------------------------------------------------------- problem
@dataclass
class GlobalProblem:
    """Nodes, measurements and resolved parameters of one global tracking run."""

    det: Detections
    elong: np.ndarray
    axis: np.ndarray  # (N, 2) unit major axis (dy, dx)
    length: np.ndarray  # (N,) length along it (px)
    overlaps: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]
    drift_cum: np.ndarray
    shape: tuple[int, int]
    has_masks: bool
    max_distance: float
    max_gap: int
    margin: float
    appear: float
    disappear: float
    weights: dict[str, float]
    divisions: bool
    motion: str
    growth: float = 1.0  # a cell's area one frame later / its area now (median)
    age: np.ndarray | None = None  # (N,) frames since birth by division, see cell_cycle
    young: float = 0.0  # divisions of mothers younger than this are penalised (0: none)
    #: (N, 2) motion of every cell to the next frame after drift, by optical flow of the
    #: masks (motion "local" only; zeros where unknown): the first pass's local motion
    seed: np.ndarray | None = None

    @property
    def codes(self) -> np.ndarray:
        """(N,) sorted (t << 32 | label) codes of the nodes (detections are (t, label)
        ordered)."""
        return (self.det.t << 32) | self.det.label

    def index(self, t: np.ndarray, label: np.ndarray) -> np.ndarray:
        """Node indices of (t, label) pairs; -1 where there is no such node."""
        codes = self.codes
        c = (np.asarray(t, np.int64) << 32) | np.asarray(label, np.int64)
        if codes.size == 0:
            return np.full(c.size, -1)
        pos = np.minimum(np.searchsorted(codes, c), codes.size - 1)
        return np.where(codes[pos] == c, pos, -1)

    # ----------------------------------------------------------------- candidates
    def daughter_offset(self, nodes: np.ndarray) -> np.ndarray:
        """(n, 2) offset from a mother's centre to where a daughter's centre is expected.

        An elongated cell divides across its long axis, so each daughter lies a quarter of
        its length away along that axis (either way); round cells (elongation < 1.5) get a
        shorter offset, none at elongation 1.
        """
        size = self.length[nodes] / 4 * np.clip((self.elong[nodes] - 1) / 0.5, 0, 1)
        return self.axis[nodes] * size[:, None]

    def expected(self, nodes: np.ndarray, gap: int, vel: np.ndarray) -> np.ndarray:
        """Expected positions, ``gap`` frames later, of the given nodes."""
        t = self.det.t[nodes]
        tt = np.minimum(t + gap, self.det.n_frames - 1)
        return (self.det.coords[nodes] + self.drift_cum[tt] - self.drift_cum[t]
                + gap * vel[nodes])

    def candidates(self, vel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Candidate links (parent, child) node indices, unique, sorted by parent."""
        det, off = self.det, self.det.frame_offsets()
        n = len(det)
        pars: list[np.ndarray] = []
        chis: list[np.ndarray] = []
        for t in range(det.n_frames - 1):
            a = np.arange(off[t], off[t + 1])
            if a.size == 0:
                continue
            for g in range(1, self.max_gap + 2):
                if t + g >= det.n_frames or off[t + g] == off[t + g + 1]:
                    continue
                b0 = off[t + g]
                tb = cKDTree(det.coords[b0:off[t + g + 1]])
                ta = cKDTree(self.expected(a, g, vel))
                sp = ta.sparse_distance_matrix(tb, self.max_distance, output_type="ndarray")
                i, j, d = sp["i"].astype(np.int64), sp["j"].astype(np.int64), sp["v"]
                if i.size == 0:
                    continue
                keep = np.zeros(i.size, bool)
                for side in (i, j):  # the K nearest of every parent and of every child
                    o = np.lexsort((d, side))
                    s = side[o]
                    start = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]
                    rank = np.arange(s.size) - np.repeat(start, np.diff(np.r_[start, s.size]))
                    keep[o[rank < _K_NEAREST]] = True
                pars.append(a[i[keep]])
                chis.append(b0 + j[keep])
            if self.divisions:  # the 2 cells nearest to where each daughter would be
                exp, off_ = self.expected(a, 1, vel), self.daughter_offset(a)
                nb = off[t + 2] - off[t + 1]
                if nb and np.any(off_):
                    tb = cKDTree(det.coords[off[t + 1]:off[t + 2]])
                    for sign in (1.0, -1.0):
                        d, j = tb.query(exp + sign * off_, k=min(2, nb),
                                        distance_upper_bound=self.max_distance)
                        d, j = d.reshape(a.size, -1), j.reshape(a.size, -1)
                        ok = np.isfinite(d)
                        pars.append(np.broadcast_to(a[:, None], d.shape)[ok])
                        chis.append(off[t + 1] + j[ok])
        if self.has_masks:
            for t, (la, lb, _) in self.overlaps.items():
                pa = self.index(np.full(la.size, t), la)
                pb = self.index(np.full(lb.size, t + 1), lb)
                ok = (pa >= 0) & (pb >= 0)
                pars.append(pa[ok])
                chis.append(pb[ok])
        if not pars:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        code = np.unique(np.concatenate(pars) * n + np.concatenate(chis))
        return code // n, code % n

    # ----------------------------------------------------------------- features
    def link_features(
        self, par: np.ndarray, chi: np.ndarray, vel: np.ndarray
    ) -> np.ndarray:
        """(E, len(LINK_FEATURES)) feature matrix of candidate links."""
        det = self.det
        gap = det.t[chi] - det.t[par]
        exp = np.empty((par.size, 2))
        for g in np.unique(gap).tolist():
            m = gap == g
            exp[m] = self.expected(par[m], int(g), vel)
        dist = self.shape_change_distance(par, chi, det.coords[chi] - exp)
        ap, ac = det.area[par].astype(np.float64), det.area[chi].astype(np.float64)
        shared = self.shared(par, chi)
        f = np.zeros((par.size, len(LINK_FEATURES)))
        f[:, 0] = 1.0
        f[:, 1] = (dist / self.max_distance) ** 2
        f[:, 2] = shared / np.maximum(ap + ac - shared, 1.0)
        f[:, 3] = shared / np.maximum(ac, 1.0)
        # size change beyond the growth expected over the gap (real bacteria at a third
        # of their frame rate grow ~1.4x between frames)
        f[:, 4] = np.abs(np.log(np.maximum(ac, 1.0) / np.maximum(ap, 1.0))
                         - gap * np.log(self.growth))
        # a cell cut by the image border shows only part of its area, so a change of area
        # says nothing about the link (CTC SIM+: markers of 1-2 px leaving the field lost
        # their links, TRA 0.99970 -> 0.99982 without the term there). Only where the frame
        # is known: detections alone give no frame size (their extent is a guess)
        if self.has_masks:
            h, w = self.shape
            cut = (det.y0 <= 0) | (det.x0 <= 0) | (det.y1 >= h) | (det.x1 >= w)
            f[cut[par] | cut[chi], 4] = 0.0
        f[:, 5] = gap - 1
        return f

    def shape_change_distance(
        self, par: np.ndarray, chi: np.ndarray, step: np.ndarray
    ) -> np.ndarray:
        """Length of each ``step`` (child centre − expected centre) once what a change of
        shape explains is taken out.

        A cell that stretches out a long protrusion, or pulls it back, moves its centre
        along its long axis by up to half its change of length while the cell itself stays
        put: a real mesenchymal stem cell grew from 92 to 288 px and back to 55 px in two
        frames, its centre jumping 77 and 99 px. The part of the step along the longer
        cell's axis is shortened by the change of length beyond a halving,
        ``(|ΔL| − L_long / 2) / 2``: a division (the daughter half her mother's length and a
        quarter of it away) keeps the full distance, so divisions still compete with single
        links as before; cells of unknown shape (detections without masks) too.
        """
        lp, lc = self.length[par], self.length[chi]
        slack = np.maximum(0.0, (np.abs(lc - lp) - np.maximum(lp, lc) / 2) / 2)
        axis = np.where((lc > lp)[:, None], self.axis[chi], self.axis[par])
        along = np.sum(step * axis, axis=1)
        across = step - along[:, None] * axis
        along = np.maximum(np.abs(along) - slack, 0.0)
        return np.hypot(along, np.hypot(*across.T))

    def shared(self, par: np.ndarray, chi: np.ndarray) -> np.ndarray:
        """Shared pixels of candidate links (0 across gaps or without masks)."""
        out = np.zeros(par.size)
        if not self.has_masks or not self.overlaps or par.size == 0:
            return out
        n = len(self.det)
        tabs = [(self.index(np.full(la.size, t), la) * n
                 + self.index(np.full(lb.size, t + 1), lb), s)
                for t, (la, lb, s) in self.overlaps.items()]
        codes = np.concatenate([c for c, _ in tabs])
        vals = np.concatenate([s for _, s in tabs]).astype(np.float64)
        o = np.argsort(codes)
        codes, vals = codes[o], vals[o]
        q = par * n + chi
        pos = np.minimum(np.searchsorted(codes, q), max(codes.size - 1, 0))
        hit = codes[pos] == q if codes.size else np.zeros(q.size, bool)
        out[hit] = vals[pos[hit]]
        return out

    def link_cost(self, feats: np.ndarray) -> np.ndarray:
        w = np.array([self.weights[k] for k in LINK_FEATURES])
        return feats @ w

    def divisions_of(
        self, par: np.ndarray, chi: np.ndarray, feats: np.ndarray, cost: np.ndarray,
        vel: np.ndarray, extra: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Division candidates (indices into the link list of daughter 1 and 2) and costs.

        ``extra`` are (k, 2) link-index pairs that must be offered (fixed divisions).
        """
        det = self.det
        one = np.flatnonzero(det.t[chi] == det.t[par] + 1)
        e1: list[np.ndarray] = []
        e2: list[np.ndarray] = []
        if self.divisions and one.size:
            # rank a mother's candidates as daughters: distance term measured from the
            # nearer of the two places a daughter is expected (see daughter_offset)
            v = det.coords[chi[one]] - self.expected(par[one], 1, vel)
            u = self.daughter_offset(par[one])
            r2 = np.minimum(np.sum((v - u) ** 2, axis=1), np.sum((v + u) ** 2, axis=1))
            dcost = cost[one] + self.weights["distance"] * (
                r2 / self.max_distance**2 - feats[one, 1])
            o = one[np.lexsort((dcost, par[one]))]
            p = par[o]
            start = np.r_[0, np.flatnonzero(p[1:] != p[:-1]) + 1]
            rank = np.arange(p.size) - np.repeat(start, np.diff(np.r_[start, p.size]))
            o, p, rank = o[rank < _K_DAUGHTERS], p[rank < _K_DAUGHTERS], rank[rank < _K_DAUGHTERS]
            for dr in range(1, _K_DAUGHTERS):
                i = np.arange(o.size - dr)
                ok = p[i] == p[i + dr]
                e1.append(o[i[ok]])
                e2.append(o[i[ok] + dr])
        if extra is not None and len(extra):
            e1.append(np.asarray(extra)[:, 0])
            e2.append(np.asarray(extra)[:, 1])
        if not e1:
            z = np.empty(0, np.int64)
            return z, z, np.empty(0)
        d1, d2 = np.concatenate(e1).astype(np.int64), np.concatenate(e2).astype(np.int64)
        code = np.unique(np.minimum(d1, d2) * (par.size + 1) + np.maximum(d1, d2))
        d1, d2 = code // (par.size + 1), code % (par.size + 1)
        base, g = self.division_features(par, chi, feats, cost, vel, d1, d2)
        return d1, d2, base + g @ np.array([self.weights[k] for k in DIVISION_FEATURES])

    def division_features(
        self, par: np.ndarray, chi: np.ndarray, feats: np.ndarray, cost: np.ndarray,
        vel: np.ndarray, d1: np.ndarray, d2: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Division cost = ``base + g @ w`` (w = the ``DIVISION_FEATURES`` weights).

        ``base`` is the two daughter links' cost, their area term comparing each daughter
        with half her mother and their distance term measured from where each daughter is
        expected (in full: not shortened by :meth:`shape_change_distance`); ``g`` is the
        (D, len(DIVISION_FEATURES)) feature matrix.
        """
        det, w = self.det, self.weights
        m, c1, c2 = par[d1], chi[d1], chi[d2]
        am = det.area[m].astype(np.float64)
        a1, a2 = det.area[c1].astype(np.float64), det.area[c2].astype(np.float64)
        exp = self.expected(m, 1, vel)
        v1, v2 = det.coords[c1] - exp, det.coords[c2] - exp
        norm = np.hypot(*v1.T) * np.hypot(*v2.T)
        cos = np.where(norm > 0, np.sum(v1 * v2, axis=1) / np.where(norm > 0, norm, 1), 0.0)
        med = float(np.median(det.area)) if len(det) else 1.0
        grown = np.maximum(am, 1.0) * self.growth  # the mother's area a frame later
        half = grown / 2
        area_d = np.abs(np.log(a1 / half)) + np.abs(np.log(a2 / half))
        base = cost[d1] + cost[d2] + w["area"] * (area_d - feats[d1, 4] - feats[d2, 4])
        # Where the daughters should be: an elongated mother splits across its long axis,
        # so each daughter's centre lies a quarter of the (grown) length from hers along
        # that axis. Their distance term is measured from there, not from the mother's
        # centre: on a real E. coli colony the daughters of a 50 px rod sit 12 px either
        # side, as far as a neighbour's centre. Round mothers (elongation < 1.5) keep the
        # mother's centre.
        grow = np.clip((a1 + a2) / np.maximum(am, 1.0), 0.5, 2.0)
        u = self.daughter_offset(m) * grow[:, None]
        r_a = np.sum((v1 - u) ** 2, axis=1) + np.sum((v2 + u) ** 2, axis=1)
        r_b = np.sum((v1 + u) ** 2, axis=1) + np.sum((v2 - u) ** 2, axis=1)
        base += w["distance"] * (np.minimum(r_a, r_b) / self.max_distance**2
                                 - feats[d1, 1] - feats[d2, 1])
        g = np.column_stack([
            np.ones(d1.size),
            np.abs(np.log((a1 + a2) / grown)),
            (1 + cos) / 2,  # opposite sides of the mother cost 0
            np.abs(np.log(a1 / np.maximum(a2, 1.0))),
            np.maximum(0.0, np.log(med / np.maximum(am, 1.0))),
            1.0 / self.elong[m],
            self.youth(m),
        ])
        return base, g

    def youth(self, nodes: np.ndarray) -> np.ndarray:
        """1 for a cell in the first frame after its birth by division, falling linearly to
        0 at ``young`` frames of age; 0 where the age is unknown or there is no prior."""
        if self.age is None or self.young <= 0:
            return np.zeros(nodes.size)
        a = self.age[nodes]
        return np.where(np.isfinite(a), np.clip(1.0 - a / self.young, 0.0, 1.0), 0.0)

    def border_costs(self) -> tuple[np.ndarray, np.ndarray]:
        """(N,) appear and disappear costs (lowered near the border, free at the ends)."""
        det = self.det
        h, w = self.shape
        edge = np.minimum.reduce([det.y + 0.5, det.x + 0.5, h - 0.5 - det.y, w - 0.5 - det.x])
        scale = np.clip(edge / self.margin, 0.0, 1.0) if self.margin > 0 else np.ones(len(det))
        app = self.appear * scale
        dis = self.disappear * scale
        app[det.t == 0] = 0.0
        dis[det.t == det.n_frames - 1] = 0.0
        return app, dis


def prepare(
    source: Any, params: GlobalParams | None = None, *, frames: range | None = None,
    progress: Progress | None = None, cancel: Cancel | None = None, flow: bool = True,
) -> GlobalProblem:
    """Read a label movie (or take detections) and resolve the data-driven parameters.

    ``flow=False`` skips the optical flow of the first pass's guess (``seed`` stays None),
    for callers that take the motion from given links or only want the scales."""
    params = GlobalParams() if params is None else params
    if isinstance(source, Detections):
        det = source
        scan = MovieScan(det, np.ones(len(det)), {}, np.zeros((det.n_frames, 2)), None,
                         np.tile([1.0, 0.0], (len(det), 1)), np.zeros(len(det)))
        has_masks = False
        shape = (int(det.y1.max(initial=1)), int(det.x1.max(initial=1)))
    else:
        scan = scan_movie(source, frames, drift=params.motion != "none",
                          progress=progress, cancel=cancel,
                          flow=flow and params.motion == "local")
        det, has_masks = scan.detections, True
        shape = scan.shape or (1, 1)
    drift_cum = cumulative_drift(scan.drift)
    seed = None if scan.flow is None else np.nan_to_num(scan.flow)
    est = estimate_defaults(det, drift_cum)
    weights = dict(DEFAULT_WEIGHTS)
    if params.weights:
        unknown = set(params.weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise InputError(f"unknown feature weights: {sorted(unknown)}; "
                             f"known: {sorted(DEFAULT_WEIGHTS)}")
        weights.update({k: float(v) for k, v in params.weights.items()})
    max_distance = params.max_distance or est["max_distance"]
    # default appear/disappear: half the cost of a plain link at max_distance, so a link
    # is preferred to ending + starting a track up to about max_distance
    far = weights["bias"] + weights["distance"]
    appear = params.appear_cost if params.appear_cost is not None else float(
        np.clip(far / 2, 0.5, 10.0))
    disappear = params.disappear_cost if params.disappear_cost is not None else appear
    margin = params.border_margin if params.border_margin is not None else est["border_margin"]
    return GlobalProblem(
        det=det, elong=scan.elongation,
        axis=scan.axis if scan.axis is not None else np.tile([1.0, 0.0], (len(det), 1)),
        length=scan.length if scan.length is not None else np.zeros(len(det)),
        overlaps=scan.overlaps,
        drift_cum=drift_cum, shape=shape, has_masks=has_masks,
        max_distance=float(max_distance), max_gap=params.max_gap, margin=float(margin),
        appear=float(appear), disappear=float(disappear), weights=weights,
        divisions=params.divisions, motion=params.motion, growth=est["growth"], seed=seed,
    )


def _as_labels(source: Any) -> Any:
    if isinstance(source, Detections):
        return None
    if hasattr(source, "frame") or hasattr(source, "shape"):
        return source
    return np.asarray(source)


