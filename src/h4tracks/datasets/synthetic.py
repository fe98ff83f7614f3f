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

from h4tracks.datasets._simulation import Simulation
from h4tracks.errors import InputError

__all__ = ["SyntheticConfig", "SyntheticMovie", "make_movie"]

_DTYPES = ("uint8", "uint16")

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


def make_movie(config: SyntheticConfig | None = None, **overrides: Any) -> SyntheticMovie:
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
    image, labels, lineage = Simulation(config).run()
    return SyntheticMovie(image=image, labels=labels, lineage=lineage, config=config)


# --------------------------------------------------------------------------------------------
# validation helpers


def _check_shape(shape: Any, min_side: int) -> tuple[int, int]:
    """``shape`` as a tuple of two ints of at least ``min_side``, or a clear error."""
    try:
        out = tuple(int(s) for s in shape)
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

