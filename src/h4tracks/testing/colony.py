"""Synthetic 2D movies of dense, proliferating colonies (bacteria-like rods or round cells).

Unlike :mod:`h4tracks.datasets.synthetic` (sparse migrating cells), a colony starts from a few
cells that grow exponentially and divide every ~``cycle_frames`` frames, so tracks are short,
divisions frequent and after a few doublings hundreds of cells touch each other. Cells are
capsules (a segment of half-length ``h`` dilated by a radius ``rad``; round cells have
``h = 0``). Each frame:

1. cells age and grow (rods lengthen at constant width, round cells gain area);
2. cells older than their own cycle length divide: rods end to end along their long axis,
   round cells side by side along a random axis;
3. overlaps are relaxed by ``relax_steps`` soft-repulsion steps between capsules (translation
   + torque), so growing cells push their neighbours, plus a small random jitter and an optional
   collective drift;
4. the frame is rasterised by giving each pixel to the capsule with the smallest normalised
   distance (cells are drawn slightly inflated, so neighbours in contact share a border);
   an optional stage jump shifts the whole field of view for a few frames;
5. the image is the cells' thickness (fluorescence, or phase contrast with its halo), with
   optionally a pinch at the middle of rods about to divide (``constriction``; the mask stays
   whole) and unlabelled debris on the background (``debris``), through a noisy camera.

The ground truth has the CTC convention of :class:`~h4tracks.datasets.synthetic.SyntheticMovie`:
label value == track id and a lineage ``(id, first, last, parent)``. A cell that leaves the
field of view (or is squeezed below a visible size) ends its track; if it comes back it starts
a new track without parent. A division is recorded only when the mother was visible in the
frame before and both daughters are visible in their first frame.

This module holds the parameters (:class:`ColonyConfig`) and the entry point; the agent model
behind them is the private ``_colony_simulation``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from h4tracks.core.parameters import InputParams
from h4tracks.datasets.parameters import (
    BlurSigma,
    Dtype,
    FrameShape,
    Illumination,
    MaxCells,
    NFrames,
    Seed,
    Snr,
    check_fits,
    min_side,
)
from h4tracks.datasets.synthetic import SyntheticMovie
from h4tracks.testing._colony_simulation import _Colony

__all__ = ["ColonyConfig", "make_colony"]


class ColonyConfig(InputParams):
    """Parameters of a synthetic colony movie (the frames, frame size, camera and seed
    fields are those of :class:`~h4tracks.datasets.synthetic.SyntheticConfig`)."""

    n_frames: NFrames = 60
    shape: Annotated[FrameShape, min_side(32)] = (256, 256)
    n_start_cells: int = Field(
        4, ge=1, description="Cells in frame 0, scattered around the centre of the frame.")
    cell_shape: Literal["rod", "round", "mixed"] = Field(
        "rod", description="rod (capsules, bacteria-like), round (discs) or mixed (each "
        "founder cell is one or the other with equal probability; daughters keep the mother's "
        "shape).")
    cell_length: float = Field(
        14.0, ge=2, description="Tip-to-tip length of a newborn rod in pixels; rods double "
        "their length before dividing.")
    cell_width: float = Field(6.0, ge=2, description="Width of a rod in pixels (constant).")
    radius: float = Field(
        5.0, ge=1.5, description="Radius of a newborn round cell in pixels; round cells double "
        "their area before dividing.")
    cycle_frames: float = Field(
        9.0, ge=2, description="Mean number of frames between two divisions of a cell (its "
        "cell-cycle length).")
    cycle_spread: float = Field(
        0.2, ge=0, le=0.5, description="Coefficient of variation of the cell-cycle length "
        "(desynchronises the colony).")
    max_cells: MaxCells = 400
    jitter: float = Field(
        0.3, ge=0, description="Standard deviation (px) of each cell's random displacement "
        "per frame.")
    drift: float = Field(
        0.0, ge=0, description="Speed (px / frame) of a collective drift of the whole colony, "
        "in a slowly turning direction (0 = none).")
    jump_rate: float = Field(
        0.0, ge=0, le=1, description="Probability per frame that a stage jump starts: the "
        "field of view is shifted by jump_size pixels in a random direction for jump_frames "
        "frames.")
    jump_size: float = Field(30.0, ge=0, description="Length (px) of a stage-jump offset.")
    jump_frames: int = Field(2, ge=1, description="Duration of a stage jump in frames.")
    relax_steps: int = Field(
        6, ge=1, le=200, description="Soft-repulsion iterations per frame: how far the push "
        "of growing cells reaches within one frame. With 6, the centre of a big or fast-growing "
        "colony stays crowded with overlapping, squeezed cells that jump between frames (most "
        "tracking errors on such colonies happen there; real monolayers do not do this); about "
        "40 keeps a colony of several hundred cells a settled monolayer.")
    snr: Snr = 8.0
    blur_sigma: BlurSigma = 1.0
    illumination: Illumination = 0.2
    dtype: Dtype = "uint16"
    seed: Seed = 0
    constriction: float = Field(
        0.0, ge=0, le=1, description="How deep a rod pinches at its middle during the last "
        "quarter of its cycle (0: not at all, 1: down to the thickness of a seam between two "
        "cells), while its mask stays one cell until it divides, as real rods and their "
        "annotators do.")
    debris: float = Field(
        0.0, ge=0, description="Unlabelled specks of debris per 10,000 px² of background "
        "(a third to a half of a rod's width across), which a segmenter must not report.")
    modality: Literal["fluorescence", "phase contrast"] = Field(
        "fluorescence", description="How the cells are imaged: fluorescence (bright cells, "
        "dimmer seams between touching ones) or phase contrast (dark cells on a grey "
        "background with a bright halo around the colony and only faint bright seams between "
        "touching cells, as in the real E. coli movie of the benchmarks).")

    @model_validator(mode="after")
    def _cells_fit(self) -> ColonyConfig:
        if self.cell_shape != "round" and self.cell_length <= self.cell_width:
            raise ValueError(
                f"cell_length ({self.cell_length:g}) must exceed cell_width "
                f"({self.cell_width:g}): a rod is longer than wide.")
        if self.n_start_cells > self.max_cells:
            raise ValueError(f"n_start_cells ({self.n_start_cells}) must not exceed max_cells "
                             f"({self.max_cells}).")
        size = max(self.cell_length, 2 * self.radius)
        check_fits(f"cells of {size:g} px are", size, self.shape)
        if self.n_start_cells * size**2 > 0.25 * self.shape[0] * self.shape[1]:
            raise ValueError(
                f"{self.n_start_cells} starting cells of {size:g} px do not fit in a "
                f"{self.shape[0]}x{self.shape[1]} frame; use fewer start cells or a larger "
                "shape.")
        return self


def make_colony(config: ColonyConfig | None = None, **overrides: object) -> SyntheticMovie:
    """Simulate a dense, growing and dividing colony.

    Parameters
    ----------
    config
        Colony parameters; defaults to ``ColonyConfig()``.
    **overrides
        Fields of :class:`ColonyConfig` to replace, e.g. ``make_colony(n_frames=10)``.

    Returns
    -------
    SyntheticMovie
        Image, label movie (label == track id), lineage with a parent for every division;
        its ``config`` is the :class:`ColonyConfig`.

    Raises
    ------
    InputError
        If a parameter is invalid or an override names no config field.
    """
    config = ColonyConfig.resolve(config, overrides, "colony parameter")
    return _Colony(config).run()
