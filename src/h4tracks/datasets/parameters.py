"""The parameters of a synthetic movie, one pydantic model in a light module (pydantic only).

:class:`SyntheticConfig` is what :func:`h4tracks.datasets.synthetic.make_movie` takes; the
options of ``h4tracks synth`` and ``h4tracks demo`` are generated from it
(:mod:`h4tracks.cli.model_args`), so ``h4tracks --help`` does not load the simulation. The
field types a synthetic colony (:class:`h4tracks.testing.colony.ColonyConfig`) shares with it
(frames, frame size, camera, seed) are defined here once, with their bounds and help texts.

Bad values raise :class:`~h4tracks.errors.InputError` with one sentence naming the field
(:class:`~h4tracks.core.parameters.InputParams`).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from h4tracks.core.parameters import InputParams

__all__ = ["BlurSigma", "Dtype", "FrameShape", "Illumination", "MaxCells", "NFrames", "Seed",
           "Snr", "SyntheticConfig", "check_fits", "min_side"]


# --------------------------------------------------------------------------- shared fields
def min_side(low: int) -> AfterValidator:
    """Validator of a ``(Y, X)`` frame size: both sides at least ``low`` pixels."""

    def check(shape: tuple[int, int]) -> tuple[int, int]:
        if min(shape) < low:
            raise ValueError(f"must be at least {low} pixels on each side, not "
                             f"{shape[0]}x{shape[1]}")
        return shape

    return AfterValidator(check)


def check_fits(what: str, size: float, shape: tuple[int, int]) -> None:
    """Refuse cells larger than a quarter of the smaller side of the frame (``what`` names
    them, with its verb: ``"radius 40 is"``)."""
    if size > min(shape) / 4:
        raise ValueError(f"{what} too large for a {shape[0]}x{shape[1]} frame (at most a "
                         f"quarter of the smaller side, {min(shape) / 4:g}).")


def _pair(value: object) -> object:
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 2:
        shown = "" if isinstance(value, str) else f", not {value!r}"
        raise ValueError(f"must be two sizes in pixels (Y, X){shown}")
    return value


#: ``(Y, X)`` size of a frame in pixels (each model adds its :func:`min_side`)
FrameShape = Annotated[tuple[int, int], BeforeValidator(_pair), Field(
    title="Frame size (px)", description="Height and width of a frame in pixels (Y, X).")]
NFrames = Annotated[int, Field(
    ge=1, title="Frames", description="Number of frames of the movie.")]
MaxCells = Annotated[int, Field(
    ge=1, title="Max. cells",
    description="No division happens when it would bring the number of cells above this.")]
Snr = Annotated[float, Field(
    gt=0, title="Signal-to-noise ratio",
    description="Mean cell signal above background divided by the noise standard deviation "
    "of the background.")]
BlurSigma = Annotated[float, Field(
    ge=0, title="Blur (px)",
    description="Standard deviation of the gaussian point spread function in pixels (0: "
    "none).")]
Illumination = Annotated[float, Field(
    ge=0, lt=1, title="Uneven illumination",
    description="Strength of the uneven illumination in [0, 1): the darkest corner receives "
    "1 - illumination of the light of the brightest spot.")]
Dtype = Annotated[Literal["uint8", "uint16"], Field(
    title="Pixel type", description="Pixel type of the image.")]
Seed = Annotated[int, Field(
    ge=0, title="Seed",
    description="Seed of the random generator; the same parameters always give the same "
    "movie.")]


# --------------------------------------------------------------------------- synthetic movie
class SyntheticConfig(InputParams):
    """Parameters of a synthetic movie of migrating, dividing, touching cells."""

    n_frames: NFrames = Field(30, json_schema_extra={"flag": "frames"})
    shape: Annotated[FrameShape, min_side(16)] = Field(
        (256, 256), json_schema_extra={"flag": "size", "square": True})
    n_cells: int = Field(12, ge=1, title="Cells", description="Number of cells in the first "
                         "frame.", json_schema_extra={"flag": "cells"})
    radius: float = Field(
        9.0, gt=1, title="Radius (px)",
        description="Mean cell radius in pixels (of the circle of equal area). Cells vary by "
        "about ±25 % and are elongated by varying amounts.")
    speed: float = Field(2.0, ge=0, title="Speed (px/frame)",
                         description="Mean displacement per frame in pixels.")
    persistence: float = Field(
        0.8, ge=0, le=1, title="Persistence",
        description="Mean cosine of the turning angle between consecutive steps: 0 gives a "
        "new random direction each frame, 1 a straight line.")
    division_rate: float = Field(
        0.02, ge=0, le=1, title="Division rate",
        description="Probability per cell and frame of dividing, once the cell is old enough.")
    max_cells: MaxCells = 300
    snr: Snr = 8.0
    blur_sigma: BlurSigma = 1.0
    illumination: Illumination = 0.3
    dtype: Dtype = "uint16"
    seed: Seed = 0

    @model_validator(mode="after")
    def _cells_fit(self) -> SyntheticConfig:
        if self.n_cells > self.max_cells:
            raise ValueError(f"n_cells ({self.n_cells}) must not exceed max_cells "
                             f"({self.max_cells}).")
        check_fits(f"radius {self.radius:g} is", self.radius, self.shape)
        # Beyond ~70 % coverage the cells cannot be placed without burying each other.
        coverage = self.n_cells * math.pi * self.radius**2 / (self.shape[0] * self.shape[1])
        if coverage > 0.7:
            raise ValueError(
                f"{self.n_cells} cells of radius {self.radius:g} would cover {coverage:.0%} of "
                "the frame; use fewer or smaller cells, or a larger shape.")
        return self
