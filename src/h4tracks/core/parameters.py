"""Every parameter set of h4tracks' algorithms, one pydantic model each, in one light module.

The models are the algorithms' entry points (the trackers, segmentation, the training recipe
take them), the command line generates its options from them (:mod:`h4tracks.cli.model_args`)
and the plugin its editors, so a name, a bound, a default or a help text is written once.
Importing this module loads pydantic only: ``h4tracks --help`` stays fast.

Distances are in pixels and gaps in frames; the models reject nonsense values (nan, inf, out of
range) with a readable message and are stored in the project's provenance with
``model_dump()``. :func:`validation_message` is that message: one line naming the field, the
rule and the value (the CLI names the flag instead). Models derived from :class:`InputParams`
(frozen, like the dataclasses they replaced) raise it as an :class:`~h4tracks.errors.InputError`.

A field's ``json_schema_extra`` may carry hints for the generated editors and options:
``ui_max`` and ``ui_step`` (the top and the step of the plugin's spin box where the model itself
has no upper bound), ``flag`` (the command-line option's name when it is not the field's, e.g.
``--frames`` for ``n_frames``) and ``square`` (a ``(Y, X)`` size given on the command line as
one number ``N`` for ``N × N``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from h4tracks.errors import InputError

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

    from h4tracks.core.segmentation.models import ModelEntry

__all__ = ["TRACKING_MODELS", "AssistantParams", "GlobalParams", "InputParams", "LapParams",
           "OverlapParams", "ParamsError", "RecipeParams", "SegmentParams",
           "validation_message"]


# ------------------------------------------------------------------------ bad values, one line
_RULES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "finite_number": "must be a finite number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
    "multiple_of": "must be a multiple of {multiple_of}",
    "string_too_short": "must have at least {min_length} characters",
    "string_too_long": "must have at most {max_length} characters",
    "extra_forbidden": "is not a parameter",
}


def validation_message(err: ValidationError, name: Callable[[str], str] = str) -> str:
    """One line for a pydantic ``ValidationError``: the field, the rule and the value.

    ``name`` spells the field (the CLI gives its flag, ``--max-distance``); a problem of the
    whole model (a ``model_validator``) is its own message. Further problems are counted.
    """
    problems = err.errors()
    first = problems[0]
    loc = [str(x) for x in first.get("loc", ()) if isinstance(x, str)]
    rule = _RULES.get(first.get("type", ""))
    if rule is not None:
        try:
            rule = rule.format(**first.get("ctx", {}))
        except (KeyError, IndexError):
            rule = None
    if rule is None:
        msg = str(first.get("msg", "is invalid"))
        msg = re.sub(r"^(Value|Assertion) error, ", "", msg)
        msg = re.sub(r"^Input should be ", "must be ", msg)
        rule = msg[:1].lower() + msg[1:]
    rule = rule.rstrip(".")
    value = first.get("input")
    got = ""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        got = f" (got {value})" if not isinstance(value, str) else f" (got {value!r})"
    more = f"; {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
    if not loc:
        return f"{rule}{got}{more}"
    return f"{name(loc[-1])} {rule}{got}{more}"


class ParamsError(InputError):
    """Bad values for an :class:`InputParams` model, in one sentence naming the field.

    Pydantic's ``ValidationError`` is the ``__cause__``: the CLI names the flag from it.
    """


class InputParams(BaseModel):
    """A frozen parameter set whose bad values raise :class:`ParamsError` (an
    :class:`~h4tracks.errors.InputError`) instead of pydantic's ``ValidationError``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise ParamsError(f"{validation_message(e)}.") from e

    def replace(self, **changes: Any) -> Self:
        """A validated copy with ``changes`` (``model_copy(update=...)`` does not validate)."""
        return type(self)(**{**dict(self), **changes})

    @classmethod
    def resolve(cls, config: Any, overrides: dict[str, Any], what: str) -> Self:
        """``config`` (None = the defaults) with ``overrides`` applied, all checked.

        ``what`` names the parameter set in the messages ("synthetic movie parameter").
        """
        if config is None:
            config = cls()
        elif not isinstance(config, cls):
            raise InputError(f"config must be a {cls.__name__}, got {type(config).__name__}.")
        if overrides:
            unknown = sorted(set(overrides) - set(cls.model_fields))
            if unknown:
                raise InputError(f"Unknown {what}(s): {', '.join(unknown)}.")
            config = config.replace(**overrides)
        return config


# ------------------------------------------------------------------------------- tracking
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
    # on by default: >= laptrack on all 18 real and synthetic movies of bench_real.py and
    # bench_global.py, up to +0.024 TRA where the stage moves (real trpL 0.9724 vs 0.9660),
    # and drift_suspects keeps its cost off still-stage movies (no frame pair of issue 20's
    # 200 frames of 1024² is compared)
    drift: bool = Field(
        True, title="Compensate stage drift",
        description="Where the cells of a frame did not stay put, measure how far the whole "
        "field of view moved (from the masks, as the global tracker does) and take the "
        "stage's move out before linking: a step (LAP's max. step) or an overlap is then the "
        "cell's own. Off: positions as they are in the image (for LAP: laptrack's model and "
        "links).",
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

    # 0.2 (was 0.3): on the 12 real movies of bench_real.py never lower and up to +0.009 TRA
    # (trpL at a third of its frame rate, MSC 02), the degraded synthetic colony unchanged.
    # Lower thresholds score higher still on real perfect masks (0.1: up to +0.013; 0.02:
    # +0.018) but cost the degraded masks 0.001-0.003, the case of a real segmentation
    min_overlap: float = Field(
        0.2, gt=0, le=1, title="Min. overlap",
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
    # on by default: real trpL 0.871 -> 1.000 TRA (stage moves of 20-80 px), never lower on
    # the 18 real and synthetic movies of bench_real.py / bench_global.py
    drift: bool = Field(
        True, title="Compensate stage drift",
        description="Where the cells of a frame did not stay put, measure how far the whole "
        "field of view moved (from the masks, as LAP and the global tracker do) and count "
        "overlaps with the stage's move taken out. Off: overlaps as they are in the image.",
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
    # 0 by default (as LAP): a link that skips a frame is a wrong edge for CTC TRA whether
    # the cell was missed there or is a different cell (the reference keeps them apart):
    # max_gap 0 scored >= 1 on all 18 movies of bench_real.py / bench_global.py (MSC 01
    # 1.0000 vs 0.9998, SIM+ 0.9997 vs 0.9996, degraded colony 0.9470 vs 0.9456). Set 1 to
    # keep a cell's identity across frames where the segmentation missed it.
    max_gap: int = Field(
        0, ge=0, title="Max. missing frames",
        description="How many frames in a row a cell may be missing (not segmented) and "
        "still be linked across the gap. 0: no gap closing; 1-2 when the segmentation "
        "misses cells in single frames.",
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
    # 'local' by default: on a real dense E. coli colony (53 frames, 356 divisions, perfect
    # masks) it scored TRA 0.979 where 'drift' scored 0.971; on every other movie we have
    # (benchmarks/bench_real.py: 7 real / CTC movies; bench_global.py: our colonies) the
    # two are equal within 0.0001, so the only cost is time (1.3x on 100 frames x 450
    # cells). 10-frame windows scored the same TRA as 50-frame ones while keeping every
    # HiGHS problem small (200 frames × 450 cells: 87 s vs no solution within the limit)
    motion: Literal["none", "drift", "local"] = Field(
        "local", title="Motion correction",
        description="none: cells are expected where they were. drift: the whole field may "
        "shift between frames (stage drift). local: drift plus the local flow of crowded, "
        "collectively moving cells (slower: the movie is tracked up to 'passes' times).",
    )
    # 4 passes: on the real dense E. coli colony above, re-estimating the local flow from the
    # previous pass's links took TRA 0.9873 (2 passes) -> 0.9953 (4; with the median over 24
    # neighbours), our fast colonies +0.004 to +0.008; most movies stop after 2 or 3 passes
    # (benchmarks/bench_real.py, bench_global.py)
    passes: int = Field(
        4, ge=2, le=10, title="Motion passes",
        description="With local motion: at most this many tracking passes, each measuring "
        "the local flow from the links of the one before; stops as soon as the links no "
        "longer change.",
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


#: the trackers' parameter models by method name (``--method`` of ``h4tracks track``)
TRACKING_MODELS: dict[str, type[LapParams | OverlapParams | GlobalParams]] = {
    "lap": LapParams, "overlap": OverlapParams, "global": GlobalParams}


# --------------------------------------------------------------------------- segmentation
class SegmentParams(BaseModel):
    """Cellpose parameters of a segmentation run (defaults from the model entry)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    diameter: float | None = Field(
        None, gt=0, title="Diameter (px)",
        description="typical cell diameter in pixels; auto uses the diameter the model was "
        "trained for"
    )
    flow_threshold: float = Field(
        0.4, ge=0, title="Flow threshold",
        description="how far a mask may differ from the cell shapes the model predicts: "
        "higher keeps more (and rougher) masks, lower only clean ones")
    cellprob_threshold: float = Field(
        0.0, ge=-6, le=6, title="Cell prob. threshold",
        description="how sure the model must be that a pixel belongs to a cell (-6 to 6): "
        "lower gives larger masks and more faint cells")
    min_size: int = Field(15, ge=0, title="Minimum size (px)",
                          description="cells smaller than this many pixels are removed")
    channels: tuple[int, int] = (0, 0)
    batch_size: int = Field(8, ge=1, description="224² tiles per network batch")
    engine: Literal["auto", "onnx", "openvino", "torch"] = Field(
        "auto", title="Engine",
        description="what runs the network: onnx (ONNX Runtime, fastest at float32 on the "
        "CPU, same masks), openvino (OpenVINO on the CPU; needed for bfloat16), torch, or "
        "auto (onnx on the CPU, openvino for bfloat16, torch on a GPU or when the others are "
        "missing)")
    precision: Literal["float32", "bfloat16"] = Field(
        "float32", title="Precision",
        description="float32 gives the same masks as Cellpose; bfloat16 (OpenVINO, CPUs with "
        "bfloat16 units such as Intel AMX) runs the network several times faster, masks "
        "agree with float32's at AP@0.5 >= 0.99 but not pixel for pixel; elsewhere float32 "
        "runs")

    @classmethod
    def for_model(cls, entry: ModelEntry, **overrides: Any) -> SegmentParams:
        """The model's default parameters, with ``overrides`` (``None`` values ignored)."""
        values = {
            "diameter": entry.diameter,
            "flow_threshold": entry.flow_threshold,
            "cellprob_threshold": entry.cellprob_threshold,
            "min_size": entry.min_size,
            "channels": entry.channels,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# ------------------------------------------------------------------------------- training
class RecipeParams(BaseModel):
    """Settings of :func:`train_recipe`; the defaults are meant to be left alone."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    minutes: float | None = Field(
        None, gt=0, description="time budget in minutes for the whole training (instead of "
        "epochs)")
    epochs: int | None = Field(
        None, ge=2, description="total epochs (instead of minutes); auto scales them to the "
        "number of curated frames and the patch size")
    # 3 curated frames -> 2400 patches = 300 batches of 8: 3-4.2 min on 2 CPU cores at 384²
    # (bfloat16 steps; see training_network._use_bfloat16)
    patches_per_frame: int = Field(800, ge=1, description="data-scaled budget per frame")
    min_patches: int = Field(2400, ge=8)
    trial_fraction: float = Field(0.3, gt=0, lt=1, description="budget share of the trials")
    final_fraction: float = Field(
        0.25, ge=0, lt=1, description="when the validation strips hold few cells "
        "(recipe.FEW_VAL_CELLS), a final stretch trains the chosen model on all curated "
        "pixels (the strips too): all the budget after the trials when the winner's trial "
        "beat every untrained start, else this share after a main run; 0: never")
    main_average: float = Field(
        0.8, ge=0, lt=1, description="share of the main run's last epochs (at most those "
        "after its warm-up) whose weights are averaged when the validation strips hold few "
        "cells (recipe.FEW_VAL_CELLS; a main run then only runs when the winner's trial did "
        "not beat an untrained start): only averages then compete for the saved checkpoint "
        "(see TrainParams.average_last); 0: never")
    patch_size: int | None = Field(None, ge=64, description="None: from the cell diameter")
    batch_size: int = Field(8, ge=1)
    intensity_jitter: float = Field(0.2, ge=0, le=1)
    border_pad: float = Field(
        0.5, ge=0, le=1, description="sides of curated frames that cut a cell are padded "
        "by this share of a patch with zeros, as Cellpose pads a frame it segments (see "
        "TrainParams.border_pad): cells cut by the frame's edge are learnt next to them")
    patience: int = Field(4, ge=1, description="validation rounds below the best (ties "
                          "do not count) before the main run stops")
    candidates: list[str] | None = Field(
        None, description="subset of 'finetune-small', 'finetune-mid', 'finetune-library', "
        "'scratch'; None = chosen from the base model and the images' modality (see "
        "recipe_candidates._default_candidates), plus the best other registered model"
    )
    other_starts: bool = Field(
        True, description="also consider fine-tuning other registered models of the curated "
        "frames' image modality (automatic candidates only)")
    scratch_diameter: float | None = Field(
        None, gt=0, description="cell diameter a network from scratch works at; None: the "
        "cells', down to 18 px (see recipe.scratch_diameter)")
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="of the training steps (see TrainParams.precision)")
    seed: int = 0

    @model_validator(mode="after")
    def _main_run_left(self) -> RecipeParams:
        if self.trial_fraction + self.final_fraction > 0.9:
            raise ValueError("trial_fraction + final_fraction must leave at least 10 % of the "
                             "budget to the main run")
        return self


# ------------------------------------------------------------------------------- analysis
class AssistantParams(InputParams):
    """Thresholds of the curation assistant, see
    :func:`~h4tracks.core.analysis.assistant.find_suspicious` (its module docstring has the
    rules)."""

    border_margin: float = Field(
        10.0, ge=0, title="Border margin (px)",
        description="Tracks may start or end this close (in pixels) to the image border "
        "without being flagged: cells enter and leave the field there.",
        json_schema_extra={"ui_max": 10_000, "ui_step": 0.5},
    )
    speed_z: float = Field(
        4.0, ge=0, title="Speed jump z-score",
        description="A step is a speed jump when it is this many standard deviations faster "
        "than the typical step (robust z-score; higher flags fewer steps).",
        json_schema_extra={"ui_max": 100, "ui_step": 0.5},
    )
    speed_ratio: float = Field(
        3.0, ge=0, title="Speed jump factor",
        description="A speed jump must also be at least this many times the median step "
        "speed (so that a nearly constant speed does not flag every step).",
        json_schema_extra={"ui_max": 100, "ui_step": 0.5},
    )
    area_ratio: float = Field(
        2.0, gt=1, title="Area jump factor",
        description="A cell whose area changes by at least this factor (larger / smaller) "
        "from one frame to the next is an area jump.",
        json_schema_extra={"ui_max": 100, "ui_step": 0.5},
    )
    min_track_length: int = Field(
        3, ge=1, title="Short track (< frames)",
        description="Linked tracks found in fewer frames than this are flagged as short.",
        json_schema_extra={"ui_max": 1000},
    )
    small_area_fraction: float = Field(
        0.3, ge=0, title="Small cell (× median area)",
        description="Cells smaller than this fraction of the median area are flagged.",
        json_schema_extra={"ui_max": 1},
    )
    linked_fraction: float = Field(
        0.5, ge=0, title="Linked fraction",
        description="Cells without a track are reported only when at least this fraction of "
        "all cells is linked (before tracking every cell is unlinked).",
        json_schema_extra={"ui_max": 1},
    )
