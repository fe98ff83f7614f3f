"""Synthetic 2D time-lapse movies of migrating, dividing, touching cells with exact ground truth.

The simulation is an agent model: each cell is an ellipse that performs a persistent random walk,
grows, relaxes its shape, is pushed away from its neighbours by a soft repulsion and, after a
minimum age, divides into two daughters along its long axis. Each frame is rasterised by giving
every pixel to the cell with the smallest normalised elliptical distance, so touching cells share
a border. The intensity image is rendered like a widefield fluorescence acquisition: textured
cells with a nucleus-like blob and a faint rim, uneven illumination, a gaussian PSF, Poisson shot
noise, gaussian read noise and a camera offset/gain.

The ground truth follows the Cell Tracking Challenge (CTC) convention: label value == track id,
and a lineage table with rows ``(track_id, first_frame, last_frame, parent_track_id)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.measure import label as _label_components

from h4tracks.errors import InputError

__all__ = ["SyntheticConfig", "SyntheticMovie", "make_movie"]

_DTYPES = ("uint8", "uint16")

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

# Photometry in photo-electrons; see _Camera.
_BACKGROUND_E = 300.0
_READ_NOISE_E = 6.0
_N_WAVES = 3  # sinusoids making the per-cell texture


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of a synthetic movie.

    Parameters
    ----------
    n_frames
        Number of time points.
    shape
        ``(Y, X)`` size of a frame in pixels, at least 16 each.
    n_cells
        Number of cells placed in frame 0.
    radius
        Mean cell radius in pixels (radius of the circle of equal area). Individual cells vary by
        about ±25 % and are elongated by varying amounts.
    speed
        Mean displacement per frame in pixels.
    persistence
        Mean cosine of the turning angle between consecutive steps: 0 gives a new random
        direction each frame, 1 a straight line.
    division_rate
        Probability per cell and frame of dividing, once the cell is old enough.
    max_cells
        No division happens when it would bring the number of cells above this.
    snr
        Mean cell signal above background divided by the noise standard deviation of the
        background.
    blur_sigma
        Standard deviation of the gaussian point spread function in pixels (0 = none).
    illumination
        Strength of the uneven illumination in ``[0, 1)``: the darkest corner receives
        ``1 - illumination`` of the light of the brightest spot.
    dtype
        ``"uint8"`` or ``"uint16"``.
    seed
        Seed of the random generator; the same config always gives the same movie.
    """

    n_frames: int = 30
    shape: tuple[int, int] = (256, 256)
    n_cells: int = 12
    radius: float = 9.0
    speed: float = 2.0
    persistence: float = 0.8
    division_rate: float = 0.02
    max_cells: int = 300
    snr: float = 8.0
    blur_sigma: float = 1.0
    illumination: float = 0.3
    dtype: str = "uint16"
    seed: int = 0

    def __post_init__(self) -> None:
        shape = _check_shape(self.shape, 16)
        # Frozen dataclass: normalise lists / numpy ints to a plain tuple of ints.
        object.__setattr__(self, "shape", shape)

        _check_int("n_frames", self.n_frames, 1)
        _check_int("n_cells", self.n_cells, 1)
        _check_int("max_cells", self.max_cells, 1)
        _check_int("seed", self.seed, 0)
        _check_range("radius", self.radius, low=1.0, low_open=True)
        _check_range("speed", self.speed, low=0.0)
        _check_range("persistence", self.persistence, low=0.0, high=1.0)
        _check_range("division_rate", self.division_rate, low=0.0, high=1.0)
        _check_camera(self)
        if self.n_cells > self.max_cells:
            raise InputError(
                f"n_cells ({self.n_cells}) must not exceed max_cells ({self.max_cells})."
            )
        if self.radius > min(shape) / 4:
            raise InputError(
                f"radius {self.radius} is too large for a {shape[0]}x{shape[1]} frame "
                f"(at most a quarter of the smaller side, {min(shape) / 4:g})."
            )
        # Beyond ~70 % coverage the cells cannot be placed without burying each other.
        coverage = self.n_cells * math.pi * self.radius**2 / (shape[0] * shape[1])
        if coverage > 0.7:
            raise InputError(
                f"{self.n_cells} cells of radius {self.radius} would cover {coverage:.0%} of the "
                "frame; use fewer or smaller cells, or a larger shape."
            )


@dataclass
class SyntheticMovie:
    """A synthetic movie and its exact ground truth.

    Attributes
    ----------
    image
        ``(T, Y, X)`` intensity movie in ``config.dtype``.
    labels
        ``(T, Y, X)`` uint32 label movie; the label value is the track id, 0 is background.
    lineage
        ``(N, 4)`` int64 rows ``(track_id, first_frame, last_frame, parent_track_id or 0)``
        sorted by track id, as in a CTC ``man_track.txt``. Track ids are ``1..N``.
    config
        The configuration that produced the movie.
    """

    image: np.ndarray
    labels: np.ndarray
    lineage: np.ndarray
    config: SyntheticConfig

    @property
    def n_tracks(self) -> int:
        """Number of tracks."""
        return int(self.lineage.shape[0])

    @property
    def n_divisions(self) -> int:
        """Number of tracks with exactly two daughter tracks."""
        parents = self.lineage[:, 3]
        _, counts = np.unique(parents[parents > 0], return_counts=True)
        return int(np.count_nonzero(counts == 2))


def make_movie(config: SyntheticConfig | None = None, **overrides: object) -> SyntheticMovie:
    """Simulate a time-lapse movie of migrating, dividing and touching cells.

    Parameters
    ----------
    config
        Movie parameters; defaults to ``SyntheticConfig()``.
    **overrides
        Fields of :class:`SyntheticConfig` to replace, e.g. ``make_movie(n_frames=10)``.

    Returns
    -------
    SyntheticMovie
        Image, label movie (label == track id) and lineage table.

    Raises
    ------
    InputError
        If a parameter is invalid or an override names no config field.
    """
    if config is None:
        config = SyntheticConfig()
    elif not isinstance(config, SyntheticConfig):
        raise InputError(f"config must be a SyntheticConfig, got {type(config).__name__}.")
    if overrides:
        known = {f.name for f in dataclasses.fields(SyntheticConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InputError(f"Unknown synthetic movie parameter(s): {', '.join(unknown)}.")
        config = dataclasses.replace(config, **overrides)
    return _Simulation(config).run()


# --------------------------------------------------------------------------------------------
# validation helpers


def _check_shape(shape: object, min_side: int) -> tuple[int, int]:
    """``shape`` as a tuple of two ints of at least ``min_side``, or a clear error."""
    try:
        out = tuple(int(s) for s in shape)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise InputError(f"shape must be two integers (Y, X), got {shape!r}.") from None
    if len(out) != 2 or min(out) < min_side:
        raise InputError(f"shape must be two sizes of at least {min_side} pixels, got {shape!r}.")
    return out  # type: ignore[return-value]


def _check_camera(cfg: Any) -> None:
    """The camera settings shared by the synthetic configs (snr, blur, illumination, dtype)."""
    _check_range("snr", cfg.snr, low=0.0, low_open=True)
    _check_range("blur_sigma", cfg.blur_sigma, low=0.0)
    _check_range("illumination", cfg.illumination, low=0.0, high=1.0, high_open=True)
    if cfg.dtype not in _DTYPES:
        raise InputError(f"dtype must be one of {_DTYPES}, got {cfg.dtype!r}.")


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name} must be an integer, got {value!r}.")
    if value < low:
        raise InputError(f"{name} must be at least {low}, got {value}.")


def _check_range(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise InputError(f"{name} must be a number, got {value!r}.")
    v = float(value)
    bad = not math.isfinite(v)
    if low is not None:
        bad |= v <= low if low_open else v < low
    if high is not None:
        bad |= v >= high if high_open else v > high
    if bad:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = f"{'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}"
        raise InputError(f"{name} must lie in {interval}, got {value!r}.")


# --------------------------------------------------------------------------------------------
# simulation


class _Cells:
    """Struct-of-arrays state of the living cells (one row per cell)."""

    FIELDS = (
        "tid", "y", "x", "r", "r0", "e", "e0", "theta", "heading", "speed", "age",
        "bright", "nuc_amp", "nuc_u", "nuc_v", "rim", "wave_k", "wave_phase", "wave_amp", "room",
    )  # fmt: skip

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


class _Simulation:
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

    def run(self) -> SyntheticMovie:
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
        return SyntheticMovie(image=image, labels=labels, lineage=lineage, config=cfg)

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


@dataclass
class _Candidates:
    """The (cell, pixel) pairs of one frame that won their pixel, with cell-local coordinates."""

    cell: np.ndarray  # index into the cells
    flat: np.ndarray  # flat pixel index
    u: np.ndarray  # coordinate along the long axis, px
    v: np.ndarray  # coordinate along the short axis, px
    d2: np.ndarray  # squared normalised elliptical distance


def _rasterise(cells: _Cells, shape: tuple[int, int]) -> tuple[np.ndarray, _Candidates]:
    """Give each pixel to the cell with the smallest normalised elliptical distance.

    All cells are evaluated at once on the pixels of their (frame-clipped) bounding boxes,
    concatenated into flat ragged arrays, and the per-pixel winner is found with
    ``np.minimum.at`` on a flat 'best distance' map.
    """
    h, w = shape
    owner = np.zeros(h * w, np.int32)
    a, b = cells.axes()
    c, s = np.cos(cells.theta), np.sin(cells.theta)
    ext_y = np.sqrt((a * s) ** 2 + (b * c) ** 2)
    ext_x = np.sqrt((a * c) ** 2 + (b * s) ** 2)
    y0 = np.clip(np.ceil(cells.y - ext_y), 0, h).astype(np.int64)
    y1 = np.clip(np.floor(cells.y + ext_y) + 1, 0, h).astype(np.int64)
    x0 = np.clip(np.ceil(cells.x - ext_x), 0, w).astype(np.int64)
    x1 = np.clip(np.floor(cells.x + ext_x) + 1, 0, w).astype(np.int64)
    bw = np.maximum(x1 - x0, 0)
    size = np.maximum(y1 - y0, 0) * bw
    start = np.concatenate([[0], np.cumsum(size)])
    cell = np.repeat(np.arange(len(cells)), size)
    local = np.arange(start[-1]) - start[cell]
    ly = local // bw[cell]
    py = y0[cell] + ly
    px = x0[cell] + (local - ly * bw[cell])
    f32 = np.float32
    dy = py.astype(f32) - cells.y.astype(f32)[cell]
    dx = px.astype(f32) - cells.x.astype(f32)[cell]
    cc, ss = c.astype(f32)[cell], s.astype(f32)[cell]
    u = dx * cc + dy * ss  # along the long axis
    v = dy * cc - dx * ss
    d2 = u * u * (1.0 / a**2).astype(f32)[cell] + v * v * (1.0 / b**2).astype(f32)[cell]
    inside = d2 < 1.0
    cell, u, v, d2 = cell[inside], u[inside], v[inside], d2[inside]
    flat = py[inside] * w + px[inside]
    best = np.full(h * w, np.inf, f32)
    np.minimum.at(best, flat, d2)
    win = d2 == best[flat]
    # Exact ties are astronomically rare; the later cell wins them, deterministically.
    owner[flat[win]] = cell[win] + 1
    cand = _Candidates(cell[win], flat[win], u[win], v[win], d2[win])
    return owner.reshape(h, w), cand


def _fix_fragments(owner: np.ndarray) -> np.ndarray:
    """Keep each cell's largest 4-connected piece; stray pieces go to the neighbour they touch.

    The argmin partition of overlapping ellipses can, in crowded spots, cut a thin sliver off a
    cell; real cells are connected, so the sliver goes to whoever surrounds it.
    """
    comp, n_comp = _label_components(owner, background=0, connectivity=1, return_num=True)
    if n_comp == 0:
        return owner
    comp_owner = np.zeros(n_comp + 1, np.int64)
    comp_owner[comp.ravel()] = owner.ravel()
    per_owner = np.bincount(comp_owner[1:], minlength=int(owner.max()) + 1)
    if not (per_owner[1:] > 1).any():
        return owner
    size = np.bincount(comp.ravel(), minlength=n_comp + 1)
    slices = ndimage.find_objects(comp)
    owner = owner.copy()
    for cell in np.flatnonzero(per_owner > 1):  # rare: a handful of cells per movie
        comps = np.flatnonzero(comp_owner == cell)
        comps = comps[comps > 0]
        for k in comps[comps != comps[np.argmax(size[comps])]]:
            sl = slices[k - 1]
            sl = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
            piece = comp[sl] == k
            ring = ndimage.binary_dilation(piece) & ~piece
            around = owner[sl][ring]
            owner[sl][piece] = np.bincount(around).argmax() if around.size else 0
    return owner


def _enclosed(owner: np.ndarray, n: int) -> np.ndarray:
    """Cells whose only neighbour is one other cell (a cell inside a cell: a hole in it)."""
    m = n + 1
    touch = np.zeros(m * m, bool)
    for x, y in ((owner[:, :-1], owner[:, 1:]), (owner[:-1, :], owner[1:, :])):
        diff = x != y
        xs, ys = x[diff].astype(np.int64), y[diff].astype(np.int64)
        # Adjacency matrix via flat (a, b) codes: O(pixels), unlike sorting the pairs.
        touch[xs * m + ys] = True
        touch[ys * m + xs] = True
    touch = touch.reshape(m, m)
    n_nb = touch.sum(axis=1)
    only_cell = (n_nb == 1) & ~touch[:, 0]
    only_cell[0] = False
    # Touching the frame edge means not enclosed.
    edge = np.concatenate([owner[0], owner[-1], owner[:, 0], owner[:, -1]])
    only_cell[edge] = False
    return only_cell[1:]


def _cell_signal(
    cells: _Cells, owner: np.ndarray, cand: _Candidates, shape: tuple[int, int]
) -> np.ndarray:
    """Noise-free cell fluorescence (mean ≈ 1 inside a cell, 0 outside), before the PSF."""
    h, w = shape
    sig = np.zeros(h * w, np.float32)
    if len(cells) == 0:
        return sig.reshape(h, w)
    # Fragment fixing may have reassigned a few pixels; only paint pixels still owned.
    keep = owner.ravel()[cand.flat] == cand.cell + 1
    i, flat, u, v, d2 = cand.cell[keep], cand.flat[keep], cand.u[keep], cand.v[keep], cand.d2[keep]
    f32 = np.float32
    ax, bx = cells.axes()
    # Per-cell parameters in float32, gathered once per pixel.
    nuc_u0 = (cells.nuc_u * ax).astype(f32)[i]
    nuc_v0 = (cells.nuc_v * bx).astype(f32)[i]
    inv_a = (1.0 / (0.45 * ax)).astype(f32)[i]
    inv_b = (1.0 / (0.55 * bx)).astype(f32)[i]
    body = 0.7 + 0.3 * (1.0 - d2)  # thicker, hence brighter, in the middle
    nucleus = cells.nuc_amp.astype(f32)[i] * np.exp(
        -2.0 * (((u - nuc_u0) * inv_a) ** 2 + ((v - nuc_v0) * inv_b) ** 2)
    )
    rim = cells.rim.astype(f32)[i] * np.exp(-(((np.sqrt(d2) - 0.9) * 10.0) ** 2))
    # Texture in cell-local coordinates, so it moves and turns with the cell.
    k = cells.wave_k.astype(f32)[i]
    arg = k[..., 0] * u[:, None] + k[..., 1] * v[:, None] + cells.wave_phase.astype(f32)[i]
    texture = 1.0 + (cells.wave_amp.astype(f32)[i] * np.cos(arg)).sum(axis=1)
    sig[flat] = cells.bright.astype(f32)[i] * (body + nucleus + rim) * texture
    return sig.reshape(h, w)


class _Camera:
    """Turns the noise-free cell signal into a noisy camera frame.

    Everything is computed in photo-electrons: background ``B`` times an illumination map, cell
    signal scaled so that its mean is ``snr`` background noise sds, Poisson shot noise, gaussian
    read noise, then offset + gain to ADU in the output dtype.
    """

    def __init__(self, cfg: SyntheticConfig, rng: np.random.Generator) -> None:
        self.cfg, self.rng = cfg, rng
        h, w = cfg.shape
        noise_sd = math.sqrt(_BACKGROUND_E + _READ_NOISE_E**2)
        self.signal_e = cfg.snr * noise_sd
        yy = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
        xx = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
        # Vignetting around an off-centre optical axis plus a linear tilt in a random direction.
        oy, ox = rng.uniform(-0.4, 0.4, 2)
        ang = rng.uniform(0, 2 * np.pi)
        raw = 0.6 * ((yy - oy) ** 2 + (xx - ox) ** 2) + 0.4 * (np.cos(ang) * xx + np.sin(ang) * yy)
        raw = (raw - raw.min()) / max(float(raw.max() - raw.min()), 1e-6)
        self.illum = (1.0 - cfg.illumination * raw).astype(np.float32)
        if cfg.dtype == "uint16":
            self.offset, self.gain, self.top = 100.0, 4.0, 65535
        else:
            # Map background + twice the mean signal to ~190 so bright cells rarely saturate.
            self.offset, self.top = 10.0, 255
            self.gain = 180.0 / (_BACKGROUND_E + 2.0 * self.signal_e)

    def expose(self, signal: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        if cfg.blur_sigma > 0:
            signal = ndimage.gaussian_filter(signal, cfg.blur_sigma, mode="nearest", truncate=3.0)
        expected = self.illum * (_BACKGROUND_E + self.signal_e * signal)
        z = self.rng.standard_normal(expected.shape, dtype=np.float32)
        # Shot + read noise. Above ~30 e- the Poisson law is indistinguishable from a gaussian of
        # equal variance and sampling that is ~10x faster; dim pixels get the exact Poisson draw.
        electrons = expected + np.sqrt(expected + _READ_NOISE_E**2) * z
        dim = expected < 30.0
        if dim.any():
            electrons[dim] = self.rng.poisson(expected[dim]) + _READ_NOISE_E * z[dim]
        adu = np.rint(self.offset + self.gain * electrons)
        return np.clip(adu, 0, self.top).astype(cfg.dtype)
