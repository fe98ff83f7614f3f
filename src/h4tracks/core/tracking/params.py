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

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False,
                              allow_inf_nan=False)

    max_distance: float = Field(
        45.0, gt=0, title="Max. step (px)",
        description="How far (in pixels) a cell's centre may move from one frame to the next "
        "and still be linked. Choose a little more than the largest real step of a cell.",
    )
    max_gap: int = Field(
        0, ge=0, title="Max. missing frames",
        description="How many frames in a row a cell may be missing (not segmented) and still "
        "be linked across the gap. 0 links consecutive frames only.",
    )
    gap_distance: float | None = Field(
        None, gt=0, title="Max. step across a gap (px)",
        description="How far (in pixels) a cell may move while it is missing. Leave at auto "
        "to use the max. step.",
    )
    divisions: bool = Field(
        False, title="Detect divisions",
        description="Look for dividing cells: a track that starts next to another cell "
        "becomes that cell's daughter.",
    )
    division_distance: float | None = Field(
        None, gt=0, title="Max. mother–daughter distance (px)",
        description="How far (in pixels) a daughter may be from its mother in the frame "
        "before. Leave at auto to use the max. step.",
    )
    area_weight: float = Field(
        0.0, ge=0, title="Size change penalty",
        description="How strongly a change of cell size between frames counts against a "
        "link. 0 links by distance only; higher values prefer partners of similar size.",
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

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    min_overlap: float = Field(
        0.3, gt=0, le=1, title="Min. overlap",
        description="How much two cells of consecutive frames must overlap to be linked, "
        "from 0 (barely touching) to 1 (fully overlapping); see the overlap measure.",
    )
    measure: Literal["fraction", "iou"] = Field(
        "fraction", title="Overlap measure",
        description="fraction: shared pixels divided by the area of the smaller cell (a "
        "daughter lying inside its mother counts as full overlap). iou: shared pixels "
        "divided by the pixels covered by either cell.",
    )
    divisions: bool = Field(
        True, title="Detect divisions",
        description="Give a cell a second daughter when a cell of the next frame that is "
        "not linked otherwise overlaps it enough.",
    )


class GlobalParams(BaseModel):
    """Parameters of the global, division-aware tracker, see
    :func:`~.global_link.track_global`. Costs are in log-odds units (see docs/tracking.md)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    max_distance: float | None = Field(
        None, gt=0, title="Max. step (px)",
        description="How far (in pixels) a cell may be from where it is expected, after the "
        "movement of the whole field is taken into account. Leave at auto to estimate it "
        "from the movie (3 times the typical step, at least one cell radius).",
    )
    max_gap: int = Field(
        1, ge=0, title="Max. missing frames",
        description="How many frames in a row a cell may be missing (not segmented) and "
        "still be linked across the gap.",
    )
    divisions: bool = Field(
        True, title="Detect divisions",
        description="Allow a cell to divide into two daughters.",
    )
    appear_cost: float | None = Field(
        None, ge=0, title="Penalty for a new track",
        description="How much starting a new track costs; higher values give fewer, longer "
        "tracks. Leave at auto to use half the cost of a typical link. New tracks are cheaper "
        "near the image border, where cells enter the field.",
    )
    disappear_cost: float | None = Field(
        None, ge=0, title="Penalty for an ending track",
        description="How much ending a track costs; higher values give fewer, longer tracks. "
        "Leave at auto to use the penalty for a new track.",
    )
    border_margin: float | None = Field(
        None, ge=0, title="Border width (px)",
        description="Width (in pixels) of the band along the image border where tracks may "
        "start and end more easily (cells entering or leaving the field). Leave at auto to "
        "use one typical cell diameter.",
    )
    # defaults measured on dense colonies (benchmarks/bench_global.py): 'drift' scored the
    # same TRA as 'local' at half the time, and 10-frame windows the same TRA as 50-frame
    # ones while keeping every HiGHS problem small (200 frames × 450 cells: 87 s vs no
    # solution within the time limit)
    motion: Literal["none", "drift", "local"] = Field(
        "drift", title="Motion correction",
        description="none: cells are expected where they were. drift: the whole field may "
        "shift between frames (stage drift). local: drift plus the local flow of crowded, "
        "collectively moving cells (slower: the movie is tracked twice).",
    )
    window: int = Field(
        10, ge=3, title="Frames solved together",
        description="Long movies are tracked in overlapping pieces of this many frames; "
        "longer pieces take more time and memory. Pieces are made long enough for the "
        "allowed missing frames.",
    )
    weights: dict[str, float] | None = Field(
        None, title="Feature weights",
        description="How much distance, mask overlap, size change and the shape of a division "
        "count when links are chosen. Learnt by re-tracking with your corrections; leave "
        "empty for the defaults (a feature left out keeps its default).",
    )
    time_limit: float = Field(
        60.0, gt=0, title="Time limit per piece (s)",
        description="Longest time (in seconds) spent on each piece of the movie; the best "
        "tracking found by then is kept. Raise it if tracking fails for lack of time.",
    )
