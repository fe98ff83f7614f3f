"""The agent model behind :func:`h4tracks.datasets.synthetic.make_movie`: cells that walk,
grow, push each other and divide, one frame after the other (rendering is in ``_render``)."""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from h4tracks.datasets._render import (
    _N_WAVES,
    _Camera,
    _cell_signal,
    _enclosed,
    _fix_fragments,
    _rasterise,
)
from h4tracks.datasets.parameters import SyntheticConfig

# Shape / dynamics constants. They are not part of the config because they define what "looks
# like a cell" rather than what a user would want to vary.
_SIZE_SPREAD = 0.12  # sd of the per-cell size factor (clipped to ±25 %)
_MIN_DIVISION_AGE = 6  # frames a cell lives before it may divide
_GROWTH = 0.12  # fraction of the gap to the mature size closed per frame
_SHAPE_RELAX = 0.15  # same for the elongation
_ALIGN = 0.2  # how fast the long axis turns towards the direction of motion
_CONTACT = 0.75  # centres closer than this × (r_i + r_j) are pushed apart
_PUSH = 0.5  # fraction of the overlap resolved per repulsion step
_CONTACT_INHIBITION = 0.8  # cells showing less of their ellipse than this do not divide
_MIN_AREA_FRACTION = 0.15  # of pi * radius**2: smaller (cut by the border / squeezed) cells end

# simulation


class _Cells:
    """Struct-of-arrays state of the living cells (one row per cell)."""

    FIELDS = (
        "tid", "y", "x", "r", "r0", "e", "e0", "theta", "heading", "speed", "age",
        "bright", "nuc_amp", "nuc_u", "nuc_v", "rim", "wave_k", "wave_phase", "wave_amp", "room",
    )  # fmt: skip
    # one array per field, declared for the type checker
    tid: np.ndarray
    y: np.ndarray
    x: np.ndarray
    r: np.ndarray
    r0: np.ndarray
    e: np.ndarray
    e0: np.ndarray
    theta: np.ndarray
    heading: np.ndarray
    speed: np.ndarray
    age: np.ndarray
    bright: np.ndarray
    nuc_amp: np.ndarray
    nuc_u: np.ndarray
    nuc_v: np.ndarray
    rim: np.ndarray
    wave_k: np.ndarray
    wave_phase: np.ndarray
    wave_amp: np.ndarray
    room: np.ndarray

    def __init__(self, **arrays: np.ndarray) -> None:
        for name in self.FIELDS:
            setattr(self, name, arrays[name])

    def __len__(self) -> int:
        return int(self.tid.shape[0])

    def subset(self, keep: np.ndarray) -> _Cells:
        return _Cells(**{name: getattr(self, name)[keep] for name in self.FIELDS})

    @staticmethod
    def concat(parts: list[_Cells]) -> _Cells:
        return _Cells(
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in _Cells.FIELDS}
        )

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Semi-major and semi-minor axes; area is pi * r**2 whatever the elongation."""
        s = np.sqrt(self.e)
        return self.r * s, self.r / s


class Simulation:
    def __init__(self, config: SyntheticConfig) -> None:
        self.cfg = config
        self.rng = np.random.default_rng(config.seed)
        self.shape = config.shape
        self.min_area = max(4, int(_MIN_AREA_FRACTION * math.pi * config.radius**2))
        self.next_tid = 1
        # Provisional tracks: tid -> [first, last, parent]; rewritten to 1..N at the end.
        self.tracks: dict[int, list[int]] = {}
        self.camera = _Camera(config, self.rng)
        # Turning-angle sd of a wrapped normal whose mean cosine equals the persistence.
        p = config.persistence
        self.turn_sd = math.inf if p <= 0 else math.sqrt(-2.0 * math.log(p)) if p < 1 else 0.0

    # -- cell creation -------------------------------------------------------------------

    def _new_cells(
        self,
        y: np.ndarray,
        x: np.ndarray,
        r: np.ndarray,
        e: np.ndarray,
        theta: np.ndarray,
        heading: np.ndarray,
        age: np.ndarray,
        r0: np.ndarray | None = None,
    ) -> _Cells:
        rng, n, cfg = self.rng, len(y), self.cfg
        if r0 is None:
            r0 = cfg.radius * np.clip(rng.normal(1.0, _SIZE_SPREAD, n), 0.75, 1.25)
        # Wave vectors of the texture: wavelengths of ~1/3 to ~1 cell diameter.
        k_mag = rng.uniform(0.35, 1.0, (n, _N_WAVES)) * (4.0 / np.maximum(r0, 2.0))[:, None]
        k_dir = rng.uniform(0, np.pi, (n, _N_WAVES))
        tid = np.arange(self.next_tid, self.next_tid + n, dtype=np.int64)
        self.next_tid += n
        return _Cells(
            tid=tid,
            y=y.astype(float),
            x=x.astype(float),
            r=r.astype(float),
            r0=r0,
            e=e.astype(float),
            e0=1.0 + np.minimum(rng.gamma(2.0, 0.2, n), 1.4),
            theta=theta.astype(float),
            heading=heading.astype(float),
            speed=cfg.speed * rng.gamma(4.0, 0.25, n),
            age=age.astype(np.int64),
            bright=rng.lognormal(0.0, 0.2, n),
            nuc_amp=rng.uniform(0.2, 0.6, n),
            nuc_u=rng.uniform(-0.25, 0.25, n),
            nuc_v=rng.uniform(-0.2, 0.2, n),
            rim=rng.uniform(0.0, 0.35, n),
            wave_k=np.stack([k_mag * np.cos(k_dir), k_mag * np.sin(k_dir)], axis=-1),
            wave_phase=rng.uniform(0, 2 * np.pi, (n, _N_WAVES)),
            wave_amp=rng.uniform(0.04, 0.12, (n, _N_WAVES)),
            room=np.ones(n),
        )

    def _initial_cells(self) -> _Cells:
        cfg, rng = self.cfg, self.rng
        n = cfg.n_cells
        h, w = self.shape
        m = cfg.radius
        y = rng.uniform(m, h - m, n)
        x = rng.uniform(m, w - m, n)
        r0 = cfg.radius * np.clip(rng.normal(1.0, _SIZE_SPREAD, n), 0.75, 1.25)
        pos = np.stack([y, x], axis=1)
        # Many strong repulsion steps spread random positions into a non-overlapping layout.
        for _ in range(30):
            pos = _repel(pos, r0, 1.0)
            pos[:, 0] = np.clip(pos[:, 0], m, h - m)
            pos[:, 1] = np.clip(pos[:, 1], m, w - m)
        heading = rng.uniform(-np.pi, np.pi, n)
        e = 1.0 + np.minimum(rng.gamma(2.0, 0.2, n), 1.4)
        # Asynchronous population: some cells are old enough to divide right away.
        age = rng.integers(0, 3 * _MIN_DIVISION_AGE, n)
        return self._new_cells(
            pos[:, 0], pos[:, 1], r0.copy(), e, heading + rng.normal(0, 0.3, n), heading, age, r0
        )

    # -- dynamics ------------------------------------------------------------------------

    def _divide(self, cells: _Cells) -> tuple[_Cells, np.ndarray]:
        """Replace dividing mothers by two daughters each; returns (cells, newborn mask)."""
        cfg, rng = self.cfg, self.rng
        n = len(cells)
        draw = rng.random(n)
        if cfg.division_rate <= 0 or n == 0:
            return cells, np.zeros(n, bool)
        a, _ = cells.axes()
        h, w = self.shape
        # Mothers must sit well inside the frame so that both daughters are visible.
        inside = (cells.y > a) & (cells.y < h - 1 - a) & (cells.x > a) & (cells.x < w - 1 - a)
        # Contact inhibition: a cell squeezed by its neighbours does not divide.
        free = cells.room > _CONTACT_INHIBITION
        div = (draw < cfg.division_rate) & (cells.age >= _MIN_DIVISION_AGE) & inside & free
        capacity = max(cfg.max_cells - n, 0)
        if np.count_nonzero(div) > capacity:
            div[np.flatnonzero(div)[capacity:]] = False
        if not div.any():
            return cells, np.zeros(n, bool)

        mo = cells.subset(div)
        ma, mb = mo.axes()
        ux, uy = np.cos(mo.theta), np.sin(mo.theta)
        off = 0.5 * ma
        # Each daughter fills one half of the mother: semi-axes a/2 along the division axis and
        # b across it, i.e. half the mother's area.
        half_a = 0.5 * ma
        dr = np.sqrt(half_a * mb)
        de = np.maximum(half_a, mb) / np.minimum(half_a, mb)
        dtheta = np.where(mb > half_a, mo.theta + np.pi / 2, mo.theta)
        both = np.concatenate
        jitter = rng.lognormal(0.0, 0.06, 2 * len(mo))
        daughters = self._new_cells(
            y=both([mo.y + uy * off, mo.y - uy * off]),
            x=both([mo.x + ux * off, mo.x - ux * off]),
            r=both([dr, dr]),
            e=both([de, de]),
            theta=both([dtheta, dtheta]),
            # Daughters crawl away from each other along the division axis.
            heading=both([mo.theta, mo.theta + np.pi]),
            age=np.zeros(2 * len(mo), np.int64),
            r0=both([mo.r0, mo.r0]) * jitter,
        )
        parents = both([mo.tid, mo.tid])
        for tid, parent in zip(daughters.tid.tolist(), parents.tolist(), strict=True):
            self.tracks[tid] = [-1, -1, parent]
        cells = _Cells.concat([cells.subset(~div), daughters])
        newborn = np.zeros(len(cells), bool)
        newborn[-len(daughters) :] = True
        return cells, newborn

    def _move(self, cells: _Cells, newborn: np.ndarray) -> None:
        rng, n = self.rng, len(cells)
        turn = (
            rng.uniform(-np.pi, np.pi, n)
            if math.isinf(self.turn_sd)
            else rng.normal(0.0, self.turn_sd, n)
        )
        step = cells.speed * rng.gamma(8.0, 1 / 8.0, n)
        jitter_r = rng.normal(0.0, 0.02, n)
        jitter_e = rng.normal(0.0, 0.04, n)
        jitter_t = rng.normal(0.0, 0.05, n)
        phase = rng.normal(0.0, 0.15, cells.wave_phase.shape)
        old = ~newborn  # daughters are placed exactly beside the mother in their first frame
        cells.heading[old] += turn[old]
        cells.y[old] += step[old] * np.sin(cells.heading[old])
        cells.x[old] += step[old] * np.cos(cells.heading[old])
        # Growth back to the mature size after division plus a little shape flicker.
        cells.r[old] += _GROWTH * (cells.r0[old] - cells.r[old])
        cells.r[old] *= np.exp(jitter_r[old])
        cells.e[old] += _SHAPE_RELAX * (cells.e0[old] - cells.e[old]) + jitter_e[old]
        cells.e[old] = np.clip(cells.e[old], 1.0, 3.0)
        # Migrating cells elongate along their direction of motion (axis angle is mod pi).
        d = np.angle(np.exp(2j * (cells.heading[old] - cells.theta[old]))) / 2
        cells.theta[old] += _ALIGN * d + jitter_t[old]
        cells.wave_phase += phase

        pos = _repel(np.stack([cells.y, cells.x], axis=1), cells.r, _PUSH)
        cells.y, cells.x = pos[:, 0].copy(), pos[:, 1].copy()

    # -- main loop -----------------------------------------------------------------------

    def run(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Simulate and render every frame: ``(image, labels, lineage)``."""
        cfg = self.cfg
        t_n, (h, w) = cfg.n_frames, self.shape
        labels = np.zeros((t_n, h, w), np.uint32)
        image = np.zeros((t_n, h, w), np.dtype(cfg.dtype))

        cells = self._initial_cells()
        for tid in cells.tid.tolist():
            self.tracks[tid] = [-1, -1, 0]
        newborn = np.zeros(len(cells), bool)
        for t in range(t_n):
            if t > 0:
                cells, newborn = self._divide(cells)
                self._move(cells, newborn)
            cells, owner, signal = self._render_labels(cells)
            for tid in cells.tid.tolist():
                rec = self.tracks[tid]
                if rec[0] < 0:
                    rec[0] = t
                rec[1] = t
            lut = np.concatenate([[0], cells.tid]).astype(np.uint32)
            labels[t] = lut[owner]
            image[t] = self.camera.expose(signal)
            cells.age += 1

        lineage = self._lineage()
        labels = self._compact_ids(labels, lineage)
        return image, labels, lineage

    def _lineage(self) -> np.ndarray:
        rows = [(tid, f, last, p) for tid, (f, last, p) in self.tracks.items() if f >= 0]
        lin = np.array(rows, np.int64).reshape(-1, 4)
        return lin[np.argsort(lin[:, 0])]

    def _compact_ids(self, labels: np.ndarray, lineage: np.ndarray) -> np.ndarray:
        """Renumber tracks to 1..N (tracks that never showed up leave gaps in the ids)."""
        old = lineage[:, 0].copy()
        n = len(old)
        if n == 0 or old[-1] == n:
            return labels
        new_of_old = np.zeros(int(old.max()) + 1, np.int64)
        new_of_old[old] = np.arange(1, n + 1)
        lineage[:, 0] = new_of_old[old]
        has_parent = lineage[:, 3] > 0
        # A parent always showed up (it divided while visible), so it has a new id.
        lineage[has_parent, 3] = new_of_old[lineage[has_parent, 3]]
        lut = new_of_old.astype(np.uint32)
        for t in range(labels.shape[0]):  # per frame to avoid a full-movie temporary
            labels[t] = lut[labels[t]]
        return labels

    # -- rasterisation -------------------------------------------------------------------

    def _render_labels(self, cells: _Cells) -> tuple[_Cells, np.ndarray, np.ndarray]:
        """Rasterise the cells; drop those too small to keep (cut by the border / squeezed).

        Returns the surviving cells, an index image (0 = background, i + 1 = cell i) and the
        noise-free cell signal (unblurred, relative units).
        """
        while True:
            owner, cand = _rasterise(cells, self.shape)
            area = np.bincount(owner.ravel(), minlength=len(cells) + 1)[1:]
            small = area < self.min_area
            if not small.any():
                owner = _fix_fragments(owner)
                enclosed = _enclosed(owner, len(cells))
                if not enclosed.any():
                    break
                small = enclosed  # buried inside another cell: treat it as lost
            self._end(cells.tid[small])
            cells = cells.subset(~small)
        a, b = cells.axes()
        cells.room = np.bincount(owner.ravel(), minlength=len(cells) + 1)[1:] / (np.pi * a * b)
        return cells, owner, _cell_signal(cells, owner, cand, self.shape)

    def _end(self, tids: np.ndarray) -> None:
        for tid in tids.tolist():
            rec = self.tracks[tid]
            if rec[0] < 0:
                # Never rendered (a daughter lost in its first frame): no track at all.
                del self.tracks[tid]


def _repel(pos: np.ndarray, r: np.ndarray, strength: float) -> np.ndarray:
    """One soft-repulsion step between cell centres closer than ``_CONTACT * (r_i + r_j)``."""
    if pos.shape[0] < 2:
        return pos
    # A k-d tree keeps this O(N) in practice; only close pairs are ever looked at.
    pairs = cKDTree(pos).query_pairs(2.0 * _CONTACT * float(r.max()), output_type="ndarray")
    if len(pairs) == 0:
        return pos
    i, j = pairs[:, 0], pairs[:, 1]
    diff = pos[i] - pos[j]
    dist = np.sqrt((diff**2).sum(axis=1))
    overlap = _CONTACT * (r[i] + r[j]) - dist
    close = overlap > 0
    if not close.any():
        return pos
    i, j, diff, dist, overlap = i[close], j[close], diff[close], dist[close], overlap[close]
    # Coincident centres get an arbitrary but deterministic direction.
    unit = np.where((dist > 1e-6)[:, None], diff / np.maximum(dist, 1e-6)[:, None], [1.0, 0.0])
    push = 0.5 * strength * overlap[:, None] * unit
    out = pos.copy()
    np.add.at(out, i, push)
    np.add.at(out, j, -push)
    return out
