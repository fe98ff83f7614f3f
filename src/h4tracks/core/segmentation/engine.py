"""Segment a project's movie with Cellpose, frame by frame, into the project's labels.

Frames are read one at a time from the (possibly lazy) image, segmented and written with
``project.labels.set_frame``, so only the frame being segmented and the frames not yet saved
are in memory; ``checkpoint`` (e.g. an incremental save) every ``checkpoint_every`` frames
keeps memory bounded on long movies. Network inference sits behind one function,
:func:`segment_frame`; :func:`load_segmenter` picks what runs the network
(``SegmentParams.engine``, ``SegmentParams.precision``; the rules are in
:mod:`~h4tracks.core.segmentation.engine_choice`): torch as Cellpose does, or ONNX Runtime /
OpenVINO on the CPU (the network exported once per weights file, see
:mod:`h4tracks.core.segmentation.onnx_engine`), with the rest of Cellpose's pipeline
unchanged, so at float32 all give the same masks (bfloat16 under OpenVINO: several times
faster, masks agree at AP@0.5 >= 0.99). A missing or broken runtime falls back with one
message. With Cellpose 4 installed
(:mod:`~h4tracks.core.segmentation.cellpose_compat`) torch runs its transformer networks:
``auto`` means torch, and ``onnx`` falls back to torch with one message.

Cancelling (``cancel()`` is checked between frames) keeps the finished frames and leaves the
others untouched; the run's report says how far it got. Each run records its provenance
(model, parameters, versions, frames) and keeps the result as the project's automatic
snapshot (used later to score the curated result against it).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from h4tracks.core.compute import torch_threads
from h4tracks.core.frames import frame_ranges, parse_frames
from h4tracks.core.parameters import SegmentParams
from h4tracks.core.runs import RunStep
from h4tracks.core.segmentation import cellpose_compat as compat
from h4tracks.core.segmentation.engine_choice import (
    Segmenter,
    choose_segmenter,
    runtime_version,
    weights_file,
)
from h4tracks.core.segmentation.models import (
    ModelEntry,
    ModelRegistry,
    _check_weights_file,
)
from h4tracks.core.stash import FrameStash
from h4tracks.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from h4tracks.core.project import Project

logger = logging.getLogger(__name__)

#: frames segmented by a preview when no range is given
PREVIEW_FRAMES = 5


@dataclass
class SegmentReport:
    """What a segmentation run did."""

    frames: list[int]  # frames segmented (in order)
    requested: int  # frames asked for
    cancelled: bool
    seconds: float
    n_cells: int
    model: str
    message: str | None = None  # e.g. GPU fallback
    skipped: list[int] = dataclasses.field(default_factory=list)  # curated frames kept
    engine: str = "torch"  # what ran the network: "onnx", "openvino" or "torch"
    precision: str = "float32"  # its arithmetic: "float32" or "bfloat16"
    on_gpu: bool = False  # the network ran on a GPU

    @property
    def frames_per_second(self) -> float:
        return len(self.frames) / self.seconds if self.seconds > 0 else float("nan")


def resolve_model(model: str | Path | ModelEntry | None,
                  registry: ModelRegistry | None = None) -> ModelEntry:
    """A model entry from a registry name, a weights file path or an entry (None = default)."""
    if isinstance(model, ModelEntry):
        return model
    registry = registry or ModelRegistry()
    if model is None:
        return registry.default_entry()
    name = str(model)
    if name in registry.names():
        return registry.get(name)
    path = Path(name).expanduser()
    if path.suffix or path.exists() or "/" in name:

        _check_weights_file(path.resolve())
        return ModelEntry(name=path.name, kind="custom", path=str(path.resolve()))
    return registry.get(name)  # raises the "unknown model" error with the list


def load_segmenter(entry: ModelEntry, engine: str = "auto", *, gpu: bool = False,
                   cores: int | None = None,
                   precision: str = "float32") -> tuple[Any, str, str | None]:
    """Load ``entry`` for :func:`segment_frame` with the chosen engine.

    Parameters
    ----------
    engine
        ``"onnx"``: the network under ONNX Runtime on the CPU with ``cores`` threads (exported
        on first use and cached beside a custom model's weights, the shipped and built-in
        models' under the config directory); ``"openvino"``: the same export under
        OpenVINO; ``"torch"``: Cellpose as it is; ``"auto"``: onnx unless the model runs on
        a GPU (openvino when ``precision`` is bfloat16).
    precision
        ``"float32"`` (the same masks as Cellpose) or ``"bfloat16"`` (OpenVINO on CPUs with
        bfloat16 units; see :mod:`~h4tracks.core.segmentation.engine_choice`).

    Returns
    -------
    (model, engine_used, message)
        ``engine_used`` is ``"onnx"``, ``"openvino"`` or ``"torch"``; ``message`` is None or
        a sentence for the user (GPU unavailable, a runtime unavailable, no bfloat16).
    """
    chosen = choose_segmenter(entry, engine, precision, gpu=gpu, cores=cores)
    return chosen.model, chosen.engine, chosen.message


def segment_frame(model: Any, frame: np.ndarray, params: SegmentParams) -> np.ndarray:
    """Segment one 2D frame with a loaded Cellpose model; (Y, X) uint32 labels."""
    frame = np.asarray(frame)
    if frame.ndim != 2:
        raise InputError(f"A frame to segment must be 2D, got shape {frame.shape}.")
    if not np.any(frame != frame.flat[0]):
        return np.zeros(frame.shape, np.uint32)  # blank frame: nothing to find
    with warnings.catch_warnings():
        # torch warns on every frame about cellpose's use of sparse tensors; not actionable
        warnings.filterwarnings("ignore", message="Sparse invariant checks")
        masks = model.eval([frame], **compat.eval_kwargs(
            params.channels, diameter=params.diameter, flow_threshold=params.flow_threshold,
            cellprob_threshold=params.cellprob_threshold, min_size=params.min_size,
            batch_size=params.batch_size,
        ))[0][0]
    return np.asarray(masks, dtype=np.uint32)


def _read_frame(project: Project, t: int) -> np.ndarray:
    return np.asarray(project.image[t])


def _run(
    project: Project, model_spec: Any, frames: list[int], params: SegmentParams | None,
    *, cores: int | None, gpu: bool, registry: ModelRegistry | None,
    progress: Callable[[int, int], None] | None, cancel: Callable[[], bool] | None,
    sink: Callable[[int, np.ndarray], None], segmenter: Segmenter | None = None,
) -> tuple[SegmentReport, ModelEntry, SegmentParams, Segmenter]:
    entry = resolve_model(model_spec, registry)
    params = params or SegmentParams.for_model(entry)
    t0 = time.perf_counter()
    done: list[int] = []
    n_cells = 0
    cancelled = False
    with torch_threads(cores):
        chosen = segmenter or choose_segmenter(entry, params.engine, params.precision,
                                               gpu=gpu, cores=cores)
        model, engine, message = chosen.model, chosen.engine, chosen.message
        if progress is not None:
            progress(0, len(frames))
        # the next frame is read (from disk, a lazy reader or a remote store) while the
        # network runs on this one: both ONNX Runtime and torch release the GIL
        reader = ThreadPoolExecutor(1, thread_name_prefix="h4tracks-read")
        ahead = reader.submit(_read_frame, project, frames[0]) if frames else None
        try:
            for i, t in enumerate(frames):
                if cancel is not None and cancel():
                    cancelled = True
                    break
                assert ahead is not None
                frame = ahead.result()
                ahead = (reader.submit(_read_frame, project, frames[i + 1])
                         if i + 1 < len(frames) else None)
                masks = segment_frame(model, frame, params)
                n_cells += int(np.unique(masks).size - (masks.min() == 0))
                sink(t, masks)
                done.append(t)
                if progress is not None:
                    progress(i + 1, len(frames))
        finally:
            reader.shutdown(wait=True, cancel_futures=True)
    report = SegmentReport(done, len(frames), cancelled, time.perf_counter() - t0, n_cells,
                           entry.name, message, engine=engine, precision=chosen.precision,
                           on_gpu=chosen.on_gpu)
    return report, entry, params, chosen


@dataclass
class SegmentationRun:
    """The result of segmenting some frames, not yet applied to the project.

    ``step()`` turns it into one undoable :class:`~h4tracks.core.runs.RunStep` (labels of the
    segmented frames, their links dropped, the snapshot of those frames, provenance, those
    frames no longer curated).
    """

    masks: FrameStash
    report: SegmentReport
    provenance: dict[str, Any]
    # the loaded model, so that the next block of the same run does not load it again
    segmenter: Segmenter | None = field(default=None, repr=False, compare=False)

    def step(self) -> RunStep:
        r = self.report
        return RunStep("segment", self.provenance, frames=self.masks,
                       description=f"segmentation of {len(r.frames)} frame(s) ({r.model})")


def plan_frames(project: Project, frames: str | Sequence[int] | None,
                overwrite_curated: bool = False) -> tuple[list[int], list[int]]:
    """The frames a segmentation run will write and the curated ones it keeps.

    Raises
    ------
    InputError
        If every chosen frame is curated and kept.
    """
    chosen = parse_frames(frames, project.n_frames)
    curated = project.curated_frames
    skipped = [] if overwrite_curated else [t for t in chosen if t in curated]
    if skipped:
        chosen = [t for t in chosen if t not in curated]
        if not chosen:
            raise InputError(
                f"All {len(skipped)} chosen frame(s) are curated and are kept; choose other "
                "frames or allow overwriting curated frames (CLI: --overwrite-curated)."
            )
    return chosen, skipped


def compute_segmentation(
    project: Project,
    model: str | Path | ModelEntry | None = None,
    *,
    params: SegmentParams | None = None,
    frames: str | Sequence[int] | None = None,
    cores: int | None = None,
    gpu: bool = False,
    registry: ModelRegistry | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    overwrite_curated: bool = False,
    segmenter: Segmenter | None = None,
) -> SegmentationRun:
    """Segment ``frames`` of ``project`` without changing the project (safe in a worker).

    Parameters are those of :func:`segment_project`; ``segmenter`` is the model a previous
    block of the same run loaded (its ``SegmentationRun.segmenter``), None to load it.
    Cancelling keeps the finished frames in the result (its report says so); the frames are
    held in a :class:`~h4tracks.core.stash.FrameStash` (on disk beyond a few hundred MB).
    """
    chosen, skipped = plan_frames(project, frames, overwrite_curated)
    masks = FrameStash(project.shape[1:])
    report, entry, params, loaded = _run(
        project, model, chosen, params, cores=cores, gpu=gpu, registry=registry,
        progress=progress, cancel=cancel, sink=masks.put, segmenter=segmenter,
    )
    report.skipped = skipped
    prov = dict(
        model=entry.name, model_kind=entry.kind, model_path=entry.path,
        frames=frame_ranges(report.frames), requested=frame_ranges(chosen),
        cancelled=report.cancelled, cellpose=_cellpose_version(),
        gpu=report.on_gpu, cores=cores,
        kept_curated=frame_ranges(skipped),
        **{**params.model_dump(), "engine": report.engine, "engine_requested": params.engine,
           "precision": report.precision, "precision_requested": params.precision,
           "runtime": runtime_version(report.engine)},
    )
    return SegmentationRun(masks, report, prov, loaded)


def segment_project(
    project: Project,
    model: str | Path | ModelEntry | None = None,
    *,
    params: SegmentParams | None = None,
    frames: str | Sequence[int] | None = None,
    cores: int | None = None,
    gpu: bool = False,
    registry: ModelRegistry | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    checkpoint: Callable[[], None] | None = None,
    checkpoint_every: int = 50,
    overwrite_curated: bool = False,
) -> SegmentReport:
    """Segment ``frames`` of ``project`` and write the masks into ``project.labels``.

    The library entry point for scripts; the CLI and the plugin go through
    :class:`h4tracks.core.session.Session` (same behaviour, plus undo).

    Parameters
    ----------
    model
        Registry name, weights file path or :class:`ModelEntry`; ``None`` = the default model.
    params
        Cellpose parameters; default: the model entry's.
    frames
        See :func:`parse_frames`; default all frames.
    cores
        torch threads (the user's core budget, :func:`h4tracks.core.compute.core_budget`).
    gpu
        Use CUDA when torch sees it (otherwise the report's ``message`` says so).
    progress
        ``progress(frames_done, frames_total)``.
    cancel
        Checked between frames; finished frames are kept, the rest stay untouched.
    checkpoint
        Called after every ``checkpoint_every`` frames and at the end (e.g. an incremental
        save, which frees the frames written so far from memory). Each block of frames is
        applied as its own step with its own provenance entry, so a checkpoint on disk never
        holds frames that its provenance does not account for.
    overwrite_curated
        Re-segment curated frames too (they stop being curated); by default they are kept
        byte for byte and listed in the report's ``skipped``.

    Returns
    -------
    SegmentReport
        Frames done, whether it was cancelled, time, cells found, the model's name.
    """
    return segment_in_blocks(
        project, lambda step: step.apply(project), model, params=params, frames=frames,
        cores=cores, gpu=gpu, registry=registry, progress=progress, cancel=cancel,
        checkpoint=checkpoint, checkpoint_every=checkpoint_every,
        overwrite_curated=overwrite_curated)


def segment_in_blocks(
    project: Project, apply: Callable[[RunStep], Any], model: Any = None, *,
    frames: str | Sequence[int] | None = None, checkpoint: Callable[[], None] | None = None,
    checkpoint_every: int = 50, progress: Callable[[int, int], None] | None = None,
    overwrite_curated: bool = False, **kwargs: Any,
) -> SegmentReport:
    """Segment frames and hand each result to ``apply`` (e.g.
    :meth:`h4tracks.core.session.Session.apply`): one step for the whole run, or with
    ``checkpoint`` one step per block of ``checkpoint_every`` frames, each applied and then
    checkpointed (saved) with its own provenance entry. ``kwargs`` go to
    :func:`compute_segmentation`. Returns the report of all blocks together."""
    chosen, skipped = plan_frames(project, frames, overwrite_curated)
    size = len(chosen) if checkpoint is None else max(1, int(checkpoint_every))
    total = SegmentReport([], len(chosen), False, 0.0, 0, "", None)
    loaded = None  # loaded (and, for OpenVINO, compiled) once for all blocks
    for start in range(0, len(chosen), size):
        offset = len(total.frames)
        run = compute_segmentation(
            project, model, frames=chosen[start:start + size], overwrite_curated=True,
            progress=None if progress is None else functools.partial(
                _offset_progress, progress, offset, len(chosen)),
            segmenter=loaded, **kwargs,
        )
        loaded = run.segmenter
        r = run.report
        run.provenance["kept_curated"] = frame_ranges(skipped)
        total.frames += r.frames
        total.cancelled, total.model = r.cancelled, r.model
        total.engine, total.precision, total.on_gpu = r.engine, r.precision, r.on_gpu
        if r.message and r.message not in (total.message or ""):  # each cause said once
            total.message = f"{total.message} {r.message}" if total.message else r.message
        total.seconds += r.seconds
        total.n_cells += r.n_cells
        if r.frames:
            apply(run.step())
            if checkpoint is not None:
                checkpoint()
        if r.cancelled:
            break
    total.skipped = skipped
    return total


def _offset_progress(progress: Callable[[int, int], None], offset: int, total: int,
                     done: int, _n: int) -> None:
    """A block's progress as progress of the whole run (blocks after ``offset`` frames)."""
    progress(offset + done, total)


def preview(
    project: Project,
    model: str | Path | ModelEntry | None = None,
    *,
    params: SegmentParams | None = None,
    frames: str | Sequence[int] | None = None,
    cores: int | None = None,
    gpu: bool = False,
    registry: ModelRegistry | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[list[int], np.ndarray, SegmentReport]:
    """Segment a few frames (default the first 5) without touching the project.

    Returns ``(frames, masks, report)`` with ``masks`` of shape (len(frames), Y, X); on cancel
    only the finished frames are returned.
    """
    chosen = parse_frames(frames, project.n_frames) if frames is not None else list(
        range(min(PREVIEW_FRAMES, project.n_frames)))
    out: list[np.ndarray] = []
    report, _, _, _ = _run(
        project, model, chosen, params, cores=cores, gpu=gpu, registry=registry,
        progress=progress, cancel=cancel, sink=lambda t, m: out.append(m),
    )
    masks = np.stack(out) if out else np.zeros((0, *project.shape[1:]), np.uint32)
    return report.frames, masks, report


def _cellpose_version() -> str:
    from importlib.metadata import version

    try:
        return version("cellpose")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return "unknown"


__all__ = [
    "PREVIEW_FRAMES",
    "SegmentParams",
    "SegmentReport",
    "SegmentationRun",
    "compute_segmentation",
    "load_segmenter",
    "parse_frames",
    "plan_frames",
    "preview",
    "resolve_model",
    "segment_frame",
    "segment_in_blocks",
    "segment_project",
    "weights_file",
]
