"""Validated parameters of the trackers, one pydantic model per method.

Distances are in pixels and gaps in frames; the models reject nonsense values with a readable
message (pydantic ``ValidationError``, a ``ValueError``) and are serialised into the project's
provenance with ``model_dump()``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["GlobalParams", "LapParams", "OverlapParams"]


class LapParams(BaseModel):
    """Parameters of the LAP tracker (Jaqaman et al. 2008), see :func:`~.lap.track_lap`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    max_distance: float = Field(
        45.0, gt=0,
        description="Largest centroid displacement (px) between consecutive frames for two "
        "cells to be linked.",
    )
    max_gap: int = Field(
        0, ge=0,
        description="Largest number of frames a cell may be missing and still be linked "
        "across the gap (gap closing); 0 = no gap closing.",
    )
    gap_distance: float | None = Field(
        None, gt=0,
        description="Largest displacement (px) across a gap; None = max_distance.",
    )
    divisions: bool = Field(
        False, description="Detect divisions (a track starting next to another cell's track "
        "becomes that cell's daughter)."
    )
    division_distance: float | None = Field(
        None, gt=0,
        description="Largest distance (px) between a mother in frame t and a daughter in "
        "frame t+1; None = max_distance.",
    )
    area_weight: float = Field(
        0.0, ge=0,
        description="Weight of the relative area change in the linking cost: "
        "cost = distance² × (1 + area_weight × |a1 − a2| / max(a1, a2)); 0 = distance only.",
    )

    @property
    def effective_gap_distance(self) -> float:
        """The gap-closing distance actually used (px)."""
        return self.max_distance if self.gap_distance is None else self.gap_distance

    @property
    def effective_division_distance(self) -> float:
        """The division distance actually used (px)."""
        return self.max_distance if self.division_distance is None else self.division_distance


class OverlapParams(BaseModel):
    """Parameters of the mask-overlap tracker, see :func:`~.overlap.track_overlap`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    min_overlap: float = Field(
        0.3, gt=0, le=1,
        description="Smallest overlap score for two cells of consecutive frames to be linked "
        "(see ``measure``).",
    )
    measure: Literal["fraction", "iou"] = Field(
        "fraction",
        description="Overlap score: 'fraction' = shared pixels / area of the smaller of the "
        "two cells (a daughter lying inside its mother scores 1), 'iou' = shared pixels / "
        "pixels of the union.",
    )
    divisions: bool = Field(
        True,
        description="Give a cell a second child when an otherwise unlinked cell of the next "
        "frame overlaps it above min_overlap.",
    )


class GlobalParams(BaseModel):
    """Parameters of the global, division-aware tracker, see
    :func:`~.global_link.track_global`. Costs are in log-odds units (see docs/tracking.md)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    max_distance: float | None = Field(
        None, gt=0,
        description="Largest distance (px) between a cell and the position its parent is "
        "expected at (after motion compensation); None = estimated from the data "
        "(3 × the typical displacement, at least one cell radius).",
    )
    max_gap: int = Field(
        1, ge=0, description="Largest number of frames a cell may be missing (gap closing)."
    )
    divisions: bool = Field(True, description="Offer divisions (one mother, two daughters).")
    appear_cost: float | None = Field(
        None, ge=0,
        description="Cost of a track starting; None = half the cost of a link at "
        "max_distance. Lowered linearly to 0 towards the image border.",
    )
    disappear_cost: float | None = Field(
        None, ge=0, description="Cost of a track ending; None = as appear_cost."
    )
    border_margin: float | None = Field(
        None, ge=0,
        description="Width (px) of the border band where appearing/disappearing is cheaper; "
        "None = one typical cell diameter.",
    )
    # defaults measured on dense colonies (benchmarks/bench_global.py): 'drift' scored the
    # same TRA as 'local' at half the time, and 10-frame windows the same TRA as 50-frame
    # ones while keeping every HiGHS problem small (200 frames × 450 cells: 87 s vs no
    # solution within the time limit)
    motion: Literal["none", "drift", "local"] = Field(
        "drift",
        description="Motion compensation: 'drift' = whole-frame shift by phase correlation, "
        "'local' = drift plus a local motion field from the links of a first pass (for "
        "collective motion of crowded cells; two solves).",
    )
    window: int = Field(
        10, ge=3,
        description="Frames per solve window for long movies (windows overlap by a few "
        "frames; the links of the overlap are fixed from the previous window). Windows "
        "shorter than 2 × max_gap + 3 frames (4 when max_gap is 0) are lengthened to that.",
    )
    weights: dict[str, float] | None = Field(
        None, description="Feature weights (see global_link.DEFAULT_WEIGHTS); None = defaults, "
        "missing keys take the default.",
    )
    time_limit: float = Field(60.0, gt=0, description="Solver time limit (s) per window.")
