"""Validated parameters of the trackers, one pydantic model per method.

Distances are in pixels and gaps in frames; the models reject nonsense values with a readable
message (pydantic ``ValidationError``, a ``ValueError``) and are serialised into the project's
provenance with ``model_dump()``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LapParams", "OverlapParams"]


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
