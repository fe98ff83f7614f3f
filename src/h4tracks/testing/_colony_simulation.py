"""The agent model behind :func:`h4tracks.testing.colony.make_colony`: capsules that grow,
divide, push each other and drift, rasterised frame by frame (the steps are listed in
:mod:`h4tracks.testing.colony`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import cKDTree

# the colony reuses the synthetic movies' camera and fragment clean-up
from h4tracks.datasets._render import _Camera, _fix_fragments
from h4tracks.datasets.synthetic import SyntheticMovie

if TYPE_CHECKING:  # annotations only: colony.py imports this module
    from h4tracks.testing.colony import ColonyConfig

# Mechanics / appearance constants (what "looks like a colony", not what users vary).
_INFLATE = 1.12  # drawn radius / mechanical radius: cells in contact share a border
_PUSH = 0.6  # fraction of a pair's overlap resolved per iteration
_TURN = 0.5  # rotational mobility (relative to translation)
_MIN_VISIBLE = 0.3  # of the newborn area: smaller (cut by the border / squeezed) = not visible
_DRIFT_TURN = 0.1  # sd (rad) of the per-frame turn of the collective drift direction


class _State:
    """Struct-of-arrays state of the simulated cells (one row per cell)."""

    FIELDS = ("y", "x", "theta", "rod", "age", "cycle", "tid", "pending", "bright")

    def __init__(self, **arrays: np.ndarray) -> None:
        for name in self.FIELDS:
            setattr(self, name, arrays[name])

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, keep: np.ndarray) -> _State:
        return _State(**{name: getattr(self, name)[keep] for name in self.FIELDS})

    @staticmethod
    def concat(parts: list[_State]) -> _State:
        return _State(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in _State.FIELDS})


class _Colony:
    def __init__(self, cfg: ColonyConfig) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.shape = cfg.shape
        # track id -> [first, last, parent]; ids are handed out when a cell first shows up.
        self.tracks: dict[int, list[int]] = {}
        self.camera = _Camera(cfg, self.rng)  # duck-typed: shape, snr, blur, illumination, dtype
        self.rod_r = 0.5 * cfg.cell_width
        rod_area = cfg.cell_width * (cfg.cell_length - cfg.cell_width) + math.pi * self.rod_r**2
        self.min_area_rod = _MIN_VISIBLE * rod_area
        self.min_area_round = _MIN_VISIBLE * math.pi * cfg.radius**2
        self.drift_dir = float(self.rng.uniform(-np.pi, np.pi))
        self.jump_left = 0
        self.jump = np.zeros(2)

    # -- geometry --------------------------------------------------------------------------

    def _growth(self, s: _State) -> np.ndarray:
        """Size factor 1 (newborn) .. 2 (ready to divide)."""
        return np.exp2(np.clip(s.age / s.cycle, 0.0, 1.0))

    def _capsules(self, s: _State) -> tuple[np.ndarray, np.ndarray]:
        """Half segment length and radius of each cell."""
        cfg, g = self.cfg, self._growth(s)
        rod_h = 0.5 * (cfg.cell_length * g - cfg.cell_width)
        h = np.where(s.rod, rod_h, 0.0)
        rad = np.where(s.rod, self.rod_r, cfg.radius * np.sqrt(g))
        return h, rad

    def _cycles(self, n: int) -> np.ndarray:
        cfg = self.cfg
        c = self.rng.normal(cfg.cycle_frames, cfg.cycle_spread * cfg.cycle_frames, n)
        return np.maximum(c, 0.5 * cfg.cycle_frames)

    # -- life cycle ------------------------------------------------------------------------

    def _founders(self) -> _State:
        cfg, rng, n = self.cfg, self.rng, self.cfg.n_start_cells
        h, w = self.shape
        # Founders scattered over a central disk: micro-colonies that merge as they grow.
        spread = 0.25 * min(h, w)
        rr = spread * np.sqrt(rng.uniform(0, 1, n))
        phi = rng.uniform(-np.pi, np.pi, n)
        if cfg.cell_shape == "mixed":
            rod = rng.random(n) < 0.5
        else:
            rod = np.full(n, cfg.cell_shape == "rod")
        cycle = self._cycles(n)
        s = _State(
            y=h / 2 + rr * np.sin(phi),
            x=w / 2 + rr * np.cos(phi),
            theta=rng.uniform(-np.pi, np.pi, n),
            rod=rod,
            # Asynchronous start: each founder is somewhere in its cycle.
            age=rng.uniform(0, 1, n) * cycle,
            cycle=cycle,
            tid=np.full(n, -1, np.int64),
            pending=np.zeros(n, np.int64),
            bright=rng.lognormal(0.0, 0.2, n),
        )
        for _ in range(20):
            self._relax(s)
        return s

    def _divide(self, s: _State) -> _State:
        cfg, rng = self.cfg, self.rng
        ready = s.age >= s.cycle
        capacity = max(cfg.max_cells - len(s), 0)
        if np.count_nonzero(ready) > capacity:
            ready[np.flatnonzero(ready)[capacity:]] = False
        if not ready.any():
            return s
        mo = s.subset(ready)
        m = len(mo)
        h, rad = self._capsules(mo)
        ux, uy = np.cos(mo.theta), np.sin(mo.theta)
        # Rods split end to end: daughter centres at ±(mother length / 4) along the axis.
        # Round cells split side by side along their (random) axis, slightly overlapping;
        # the relaxation pushes them apart within the frame.
        off = np.where(mo.rod, 0.5 * (h + rad), 0.8 * rad / math.sqrt(2))
        both = np.concatenate
        theta = both([mo.theta, mo.theta]) + rng.normal(0, 0.05, 2 * m)
        # A mother still visible in the previous frame becomes the parent of the daughters.
        parent = np.where(mo.tid >= 0, mo.tid, 0)
        daughters = _State(
            y=both([mo.y + uy * off, mo.y - uy * off]),
            x=both([mo.x + ux * off, mo.x - ux * off]),
            theta=np.where(both([mo.rod, mo.rod]), theta, rng.uniform(-np.pi, np.pi, 2 * m)),
            rod=both([mo.rod, mo.rod]),
            age=np.zeros(2 * m),
            cycle=self._cycles(2 * m),
            tid=np.full(2 * m, -1, np.int64),
            pending=both([parent, parent]),
            bright=both([mo.bright, mo.bright]) * rng.lognormal(0.0, 0.05, 2 * m),
        )
        return _State.concat([s.subset(~ready), daughters])

    def _relax(self, s: _State) -> None:
        """Soft repulsion between overlapping capsules: translation and torque."""
        n = len(s)
        if n < 2:
            return
        h, rad = self._capsules(s)
        reach = float((h + rad).max())
        pos = np.stack([s.y, s.x], axis=1)
        # Pairs are found once per call (cells move little within it).
        pairs = cKDTree(pos).query_pairs(2.0 * reach + 2.0, output_type="ndarray")
        if len(pairs) == 0:
            return
        i, j = pairs[:, 0], pairs[:, 1]
        inertia = h**2 / 3.0 + rad**2
        for _ in range(self.cfg.relax_steps):
            uy, ux = np.sin(s.theta), np.cos(s.theta)
            si, sj, dy, dx = _closest(s.y, s.x, uy, ux, h, i, j)
            dist = np.hypot(dy, dx)
            overlap = rad[i] + rad[j] - dist
            close = overlap > 0
            if not close.any():
                break
            ii, jj, ov = i[close], j[close], overlap[close]
            d = np.maximum(dist[close], 1e-6)
            # Coincident axes get an arbitrary but deterministic direction.
            ny = np.where(dist[close] > 1e-6, dy[close] / d, 1.0)
            nx = np.where(dist[close] > 1e-6, dx[close] / d, 0.0)
            f = 0.5 * _PUSH * ov
            fy, fx = f * ny, f * nx
            move_y, move_x, turn = np.zeros(n), np.zeros(n), np.zeros(n)
            np.add.at(move_y, ii, fy)
            np.add.at(move_x, ii, fx)
            np.add.at(move_y, jj, -fy)
            np.add.at(move_x, jj, -fx)
            # Torque of the contact force about each centre (2D cross product lever × force);
            # lever = s * u with u = (cos θ, sin θ) in (x, y).
            ti = si[close] * (ux[ii] * fy - uy[ii] * fx)
            tj = sj[close] * (ux[jj] * -fy - uy[jj] * -fx)
            np.add.at(turn, ii, ti)
            np.add.at(turn, jj, tj)
            s.y += move_y
            s.x += move_x
            s.theta += _TURN * turn / inertia

    def _move(self, s: _State, t: int) -> None:
        cfg, rng, n = self.cfg, self.rng, len(s)
        s.y += rng.normal(0, cfg.jitter, n) if cfg.jitter > 0 else 0.0
        s.x += rng.normal(0, cfg.jitter, n) if cfg.jitter > 0 else 0.0
        s.theta += rng.normal(0, 0.03, n)
        self._relax(s)
        if cfg.drift > 0:
            self.drift_dir += rng.normal(0, _DRIFT_TURN)
            s.y += cfg.drift * math.sin(self.drift_dir)
            s.x += cfg.drift * math.cos(self.drift_dir)
        # Stage jumps: the field of view (not the cells) moves for a few frames.
        draw = rng.random()
        ang = rng.uniform(-np.pi, np.pi)
        if self.jump_left > 0:
            self.jump_left -= 1
            if self.jump_left == 0:
                self.jump = np.zeros(2)
        elif t > 0 and draw < cfg.jump_rate:
            self.jump_left = cfg.jump_frames
            self.jump = cfg.jump_size * np.array([math.sin(ang), math.cos(ang)])
        # Cells far outside the field of view are dropped from the simulation for good.
        h, w = self.shape
        margin = 2 * (cfg.jump_size + max(cfg.cell_length, 2 * cfg.radius))
        keep = (s.y > -margin) & (s.y < h + margin) & (s.x > -margin) & (s.x < w + margin)
        if not keep.all():
            for name in _State.FIELDS:
                setattr(s, name, getattr(s, name)[keep])

    # -- main loop -------------------------------------------------------------------------

    def run(self) -> SyntheticMovie:
        cfg = self.cfg
        t_n, (hh, ww) = cfg.n_frames, self.shape
        labels = np.zeros((t_n, hh, ww), np.uint32)
        image = np.zeros((t_n, hh, ww), np.dtype(cfg.dtype))
        s = self._founders()
        for t in range(t_n):
            if t > 0:
                s.age += 1.0
                s = self._divide(s)
                self._move(s, t)
            owner, dist, axial = self._rasterise(s)
            self._assign_tracks(s, owner, t)
            lut = np.concatenate([[0], np.maximum(s.tid, 0)]).astype(np.uint32)
            labels[t] = lut[owner]
            image[t] = self.camera.expose(self._signal(s, owner, dist, axial, t))
        rows = [(tid, f, last, p) for tid, (f, last, p) in sorted(self.tracks.items())]
        lineage = np.array(rows, np.int64).reshape(-1, 4)
        return SyntheticMovie(image=image, labels=labels, lineage=lineage, config=cfg)  # type: ignore[arg-type]

    def _assign_tracks(self, s: _State, owner: np.ndarray, t: int) -> None:
        """Start / continue / end tracks from what is visible in frame t (owner 0 = hidden)."""
        area = np.bincount(owner.ravel(), minlength=len(s) + 1)[1:]
        min_area = np.where(s.rod, self.min_area_rod, self.min_area_round)
        visible = area >= min_area
        # Hidden cells end their track; their pixels become background.
        s.tid[~visible] = -1
        s.pending[~visible] = 0
        if (~visible).any():
            owner[~visible[np.maximum(owner - 1, 0)] & (owner > 0)] = 0
        new = visible & (s.tid < 0)
        idx = np.flatnonzero(new)
        start = len(self.tracks) + 1
        s.tid[idx] = np.arange(start, start + idx.size)
        # A division counts only if both daughters show up: otherwise no parent link.
        par = s.pending[idx]
        born = par[par > 0]
        ids, counts = np.unique(born, return_counts=True)
        lonely = ids[counts != 2]
        par = np.where(np.isin(par, lonely), 0, par)
        for tid, p in zip(s.tid[idx].tolist(), par.tolist(), strict=True):
            self.tracks[tid] = [t, t, p]
        s.pending[:] = 0
        for tid in s.tid[visible & ~new].tolist():
            self.tracks[tid][1] = t

    # -- rasterisation ---------------------------------------------------------------------

    def _rasterise(self, s: _State) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Index image (0 = background, i + 1 = cell i), normalised distance of each pixel to
        its cell's axis and its position along that axis (px from the cell's centre).

        All cells are evaluated at once on the pixels of their (clipped) bounding boxes as
        flat ragged arrays; each pixel goes to the capsule with the smallest distance / radius.
        """
        hh, ww = self.shape
        owner = np.zeros(hh * ww, np.int32)
        dist = np.ones(hh * ww, np.float32)
        axial = np.zeros(hh * ww, np.float32)
        if len(s) == 0:
            return owner.reshape(hh, ww), dist.reshape(hh, ww), axial.reshape(hh, ww)
        h, rad = self._capsules(s)
        rad = rad * _INFLATE
        cy, cx = s.y + self.jump[0], s.x + self.jump[1]
        uy, ux = np.sin(s.theta), np.cos(s.theta)
        ext_y = np.abs(uy) * h + rad
        ext_x = np.abs(ux) * h + rad
        y0 = np.clip(np.ceil(cy - ext_y), 0, hh).astype(np.int64)
        y1 = np.clip(np.floor(cy + ext_y) + 1, 0, hh).astype(np.int64)
        x0 = np.clip(np.ceil(cx - ext_x), 0, ww).astype(np.int64)
        x1 = np.clip(np.floor(cx + ext_x) + 1, 0, ww).astype(np.int64)
        bw = np.maximum(x1 - x0, 0)
        size = np.maximum(y1 - y0, 0) * bw
        start = np.concatenate([[0], np.cumsum(size)])
        cell = np.repeat(np.arange(len(s)), size)
        local = np.arange(start[-1]) - start[cell]
        ly = local // np.maximum(bw[cell], 1)
        py = y0[cell] + ly
        px = x0[cell] + (local - ly * bw[cell])
        f32 = np.float32
        dy = py.astype(f32) - cy.astype(f32)[cell]
        dx = px.astype(f32) - cx.astype(f32)[cell]
        cuy, cux = uy.astype(f32)[cell], ux.astype(f32)[cell]
        hc = h.astype(f32)[cell]
        along = np.clip(dx * cux + dy * cuy, -hc, hc)
        ry, rx = dy - along * cuy, dx - along * cux
        d = np.sqrt(ry * ry + rx * rx) * (1.0 / rad).astype(f32)[cell]
        inside = d < 1.0
        cell, d, along = cell[inside], d[inside], along[inside]
        flat = py[inside] * ww + px[inside]
        best = np.full(hh * ww, np.inf, f32)
        np.minimum.at(best, flat, d)
        win = d == best[flat]
        owner[flat[win]] = cell[win] + 1
        dist[flat[win]] = d[win]
        axial[flat[win]] = along[win]
        owner = _fix_fragments(owner.reshape(hh, ww))
        return owner, dist.reshape(hh, ww), axial.reshape(hh, ww)

    def _signal(self, s: _State, owner: np.ndarray, dist: np.ndarray, axial: np.ndarray,
                t: int) -> np.ndarray:
        """Noise-free fluorescence ∝ the cell's thickness along the optical axis.

        A rod (or sphere) seen from above is thickest on its axis and thin at its rim
        (``sqrt(1 - d²)``), so touching cells are separated by a dimmer seam, as in a real
        colony; a flatter profile would render neighbours as one blob that no segmenter, and
        no annotator, could split. With ``constriction``, a rod in the last quarter of its
        cycle pinches at its middle (its mask stays whole); with ``debris``, unlabelled specks
        lie on the background.
        """
        cfg = self.cfg
        bright = np.concatenate([[0.0], s.bright]).astype(np.float32)[owner]
        profile = 0.1 + 0.9 * np.sqrt(np.maximum(1.0 - dist * dist, 0.0))
        if cfg.constriction > 0:
            profile = profile * self._pinch(s, owner, axial)
        thick = np.where(owner > 0, bright * profile, 0.0).astype(np.float32)
        if cfg.debris > 0:
            thick = thick + self._specks(owner, t, float(np.mean(s.bright)) if len(s) else 1.0)
        if cfg.modality == "fluorescence":
            return thick
        return _phase_contrast(thick, owner > 0, cfg.cell_width)

    def _pinch(self, s: _State, owner: np.ndarray, axial: np.ndarray) -> np.ndarray:
        """Thickness factor of the constriction rods show before they divide: 1 - depth x a
        gaussian of the rod's radius around its middle, the depth growing from 0 at 3/4 of
        the cycle to ``constriction`` at division (a real E. coli pinches for the last part
        of its cycle, while annotators keep it one cell until the daughters separate)."""
        late = np.clip((s.age / s.cycle - 0.75) / 0.25, 0.0, 1.0) * s.rod
        depth = np.concatenate([[0.0], self.cfg.constriction * late]).astype(np.float32)[owner]
        return 1.0 - depth * np.exp(-((axial / self.rod_r) ** 2)).astype(np.float32)

    def _specks(self, owner: np.ndarray, t: int, bright: float) -> np.ndarray:
        """Unlabelled debris on the background: ``debris`` blobs per 10,000 px², a third to
        a half of a rod's width across, as thick as a cell (a generator of their own, so a
        movie without debris draws the same random numbers as before)."""
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, t, 7])
        hh, ww = self.shape
        n = rng.poisson(cfg.debris * hh * ww / 1e4)
        yy, xx = rng.uniform(0, hh, n), rng.uniform(0, ww, n)
        keep = owner[yy.astype(int), xx.astype(int)] == 0
        specks = np.zeros(self.shape, np.float32)
        sigma = rng.uniform(0.15, 0.25, n) * cfg.cell_width
        for y, x, sg in zip(yy[keep], xx[keep], sigma[keep], strict=True):
            # a few dozen small blobs per frame: each drawn on its own window
            r = int(np.ceil(3 * sg))
            y0, y1 = max(0, int(y) - r), min(hh, int(y) + r + 1)
            x0, x1 = max(0, int(x) - r), min(ww, int(x) + r + 1)
            gy, gx = np.ogrid[y0:y1, x0:x1]
            blob = np.exp(-((gy - y) ** 2 + (gx - x) ** 2) / (2 * sg * sg))
            specks[y0:y1, x0:x1] += (bright * blob).astype(np.float32)
        # overlapping specks are no thicker than one (nor than a cell)
        return np.where(owner == 0, np.minimum(specks, bright), 0.0).astype(np.float32)


def _phase_contrast(thick: np.ndarray, inside: np.ndarray, width: float) -> np.ndarray:
    """Phase-contrast signal of cells of thickness ``thick``: darker the thicker, plus the
    halo of a phase ring (what a blur of the thickness has more of than the pixel itself).

    Outside the cells the halo is a bright rim around the colony (as in the real E. coli
    movie, where it measures 0.26-0.28 of the intensity range, see
    :func:`h4tracks.core.segmentation.recipe_data.detect_modality`); between touching cells
    it is damped to a faint bright seam, which is what makes squeezed rods hard to split.
    """
    from scipy import ndimage

    halo = np.maximum(ndimage.gaussian_filter(thick, max(1.0, 0.4 * width)) - thick, 0.0)
    halo = np.where(inside, 0.35 * halo, halo)
    return (-0.8 * thick + 1.5 * halo).astype(np.float32)


def _closest(
    y: np.ndarray, x: np.ndarray, uy: np.ndarray, ux: np.ndarray, h: np.ndarray,
    i: np.ndarray, j: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Closest points of the axis segments of cell pairs (i, j).

    Returns the positions ``s_i``, ``s_j`` along each axis and the vector ``(dy, dx)`` from the
    closest point of j to that of i (vectorised segment-segment distance, Ericson 2005).
    """
    ry, rx = y[i] - y[j], x[i] - x[j]
    b = uy[i] * uy[j] + ux[i] * ux[j]
    d = uy[i] * ry + ux[i] * rx
    e = uy[j] * ry + ux[j] * rx
    denom = 1.0 - b * b
    hi, hj = h[i], h[j]
    par = denom < 1e-6
    si = np.where(par, 0.0, np.clip((b * e - d) / np.where(par, 1.0, denom), -hi, hi))
    sj = np.clip(b * si + e, -hj, hj)
    si = np.clip(b * sj - d, -hi, hi)
    dy = ry + si * uy[i] - sj * uy[j]
    dx = rx + si * ux[i] - sj * ux[j]
    return si, sj, dy, dx
