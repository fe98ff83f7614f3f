"""Training a registered model from a project: the curated frames become training data, the
recipe (or one plain run) trains, and the weights are registered only when training succeeded.
This sits above the training loop, the recipe, the model registry and the engine, and combines
them; none of those imports it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from h4tracks.core.compute import torch_threads
from h4tracks.core.frames import parse_frames
from h4tracks.core.segmentation.cellpose_compat import require_training_support
from h4tracks.core.segmentation.engine import resolve_model
from h4tracks.core.segmentation.models import (
    DEMO_MODEL,
    ModelRegistry,
    builtin_cache_file,
    config_dir,
    load_cellpose_model,
)
from h4tracks.core.segmentation.recipe import RecipeParams, StartModel, train_recipe
from h4tracks.core.segmentation.recipe_data import BRIGHT_FIELD, FLUORESCENCE, PHASE_CONTRAST
from h4tracks.core.segmentation.training import TrainParams, TrainResult, train_cellpose
from h4tracks.errors import InputError

__all__ = ["entry_modality", "registered_starts", "train_from_project"]

#: the image modality cellpose's built-in models were trained on (the generalists, cyto*,
#: CPx and the neurips models, have none: they are candidates for any data)
_BUILTIN_MODALITY = {
    "nuclei": FLUORESCENCE, "tissuenet_cp3": FLUORESCENCE, "bact_fluor_cp3": FLUORESCENCE,
    "livecell_cp3": PHASE_CONTRAST, "yeast_PhC_cp3": PHASE_CONTRAST,
    "bact_phase_cp3": PHASE_CONTRAST, "yeast_BF_cp3": BRIGHT_FIELD,
    "TN1": FLUORESCENCE, "TN2": FLUORESCENCE, "TN3": FLUORESCENCE,
    "LC1": PHASE_CONTRAST, "LC2": PHASE_CONTRAST, "LC3": PHASE_CONTRAST,
    "LC4": PHASE_CONTRAST,
}


def train_from_project(
    project: Any,
    frames: Sequence[int] | str | None,
    name: str,
    *,
    base: Any = None,
    registry: Any = None,
    params: Any = None,
    cores: int | None = None,
    gpu: bool = False,
    out_dir: str | Path | None = None,
    replace: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[Any, TrainResult]:
    """Train on curated frames of ``project`` and register the result as a trained model.

    Parameters
    ----------
    frames
        Frame indices (or ``"A:B"`` / ``"0,7,14"``) whose labels are the training masks;
        ``None`` = the project's curated frames.
    name
        Name of the new model in the registry (``replace`` to overwrite a trained one).
    base
        Model to fine-tune: registry name, weights path or entry; ``None`` = from scratch.
    params
        :class:`~h4tracks.core.segmentation.recipe.RecipeParams` or ``None``: the recipe
        (validation-chosen start, best checkpoint, early stopping; the default), or
        :class:`TrainParams` for one plain run with exactly those settings.
    progress
        ``progress(done, total, loss)``: epochs for a plain run; percent (loss NaN) for the
        recipe.
    out_dir
        Where the weights file goes (default: ``<config dir>/models``).

    Returns
    -------
    (ModelEntry, TrainResult)
        The registered entry (kind ``"trained"``, with provenance) and the run's details. A
        cancelled run raises :class:`TrainingCancelled`; its partial model is not registered.
    """
    require_training_support()  # before reading frames: training needs Cellpose 3
    registry = registry or ModelRegistry()
    if project.labels is None:
        raise InputError("The project has no segmentation to train from.")
    if frames is None:
        chosen = sorted(project.curated_frames)
        if not chosen:
            raise InputError(
                "The project has no curated frame to train from; curate a few frames (any "
                "edit marks its frame) or mark them as curated, or choose frames."
            )
    else:
        chosen = parse_frames(frames, project.n_frames)
    if name in registry.names() and not replace:
        raise InputError(f"A model named {name!r} already exists; choose another name.")
    images = [np.asarray(project.image[t]) for t in chosen]
    masks = [np.asarray(project.labels.frame(t)) for t in chosen]
    out = Path(out_dir) if out_dir is not None else config_dir() / "models"
    out.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    path = out / f"{safe}.pth"
    base_entry = None if base is None else resolve_model(base, registry)
    if not isinstance(params, TrainParams):
        return _train_recipe_from_project(
            project, chosen, name, images, masks, path, base_entry, registry, params,
            cores=cores, gpu=gpu, replace=replace, progress=progress, cancel=cancel)
    with torch_threads(cores):
        model = None if base_entry is None else load_cellpose_model(base_entry, gpu=gpu)[0]
        result = _into_place(path, lambda tmp: train_cellpose(
            images, masks, tmp, base=model, params=params, cores=cores, gpu=gpu,
            progress=progress, cancel=cancel))
    result.base = None if base_entry is None else base_entry.name
    entry = registry.add_custom(
        name, path, kind="trained", replace=replace, diameter=round(result.diameter, 2),
        description=f"Trained in h4tracks on {len(chosen)} frame(s) of "
        f"{project.metadata.name or project.path or 'a project'}.",
        provenance={
            "base": result.base, "frames": chosen, "project": str(project.path or ""),
            "epochs": result.epochs, "seconds": round(result.seconds, 1),
            "learning_rate": result.learning_rate, "weight_decay": result.weight_decay,
            "final_loss": result.losses[-1] if result.losses else None,
            "params": (params or TrainParams()).model_dump(),
        },
    )
    return entry, result


def entry_modality(entry: Any) -> str | None:
    """The image modality a registered model was trained on, None when unknown or mixed: a
    model trained by the recipe records the modality of its curated frames; the shipped
    demo model was trained on synthetic fluorescence movies; built-ins by their data."""
    recorded = (entry.provenance or {}).get("modality")
    if recorded:
        return str(recorded)
    if entry.name == DEMO_MODEL and entry.kind == "bundled":
        return FLUORESCENCE
    if entry.kind == "builtin":
        return _BUILTIN_MODALITY.get(entry.name)
    return None


def registered_starts(registry: Any, exclude: Any = None, *, gpu: bool = False
                      ) -> list[StartModel]:
    """Every registered model the recipe could fine-tune besides ``exclude`` (the base
    model's entry): weights files that exist, built-ins already in cellpose's cache (nothing
    is downloaded). The recipe keeps those whose modality matches the curated frames'."""
    starts = []
    for entry in registry.entries():
        if exclude is not None and (entry.name == exclude.name or (
                entry.path is not None and entry.path == exclude.path)):
            continue
        if entry.kind == "builtin":
            if not builtin_cache_file(entry.name).is_file():
                continue
        elif entry.path is None or not Path(entry.path).is_file():
            continue
        starts.append(StartModel(entry.name, _loader(entry, gpu), entry_modality(entry)))
    return starts


def _loader(entry: Any, gpu: bool) -> Callable[[], Any]:
    return lambda: load_cellpose_model(entry, gpu=gpu)[0]


def _into_place(path: Path, train: Callable[[Path], Any]) -> Any:
    """``train(tmp)`` writing its weights to a hidden file next to ``path``, moved to ``path``
    only when training succeeded.

    ``path`` may hold the weights of the model being replaced, or of the base model itself
    when a model is refined under its own name: a cancelled or failed run must leave them
    as they were (and the base must not be re-read from a half-trained file).
    """
    tmp = path.with_name(f".{path.stem}.training.pth")
    try:
        result = train(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    result.path = path
    return result


def _train_recipe_from_project(
    project: Any, chosen: list[int], name: str, images: list[np.ndarray],
    masks: list[np.ndarray], path: Path, base_entry: Any, registry: Any, params: Any, *,
    cores: int | None, gpu: bool, replace: bool,
    progress: Callable[[int, int, float], None] | None, cancel: Callable[[], bool] | None,
) -> tuple[Any, Any]:
    params = params or RecipeParams()
    factory = None if base_entry is None else _loader(base_entry, gpu)
    # other registered models are fine-tuning candidates too, unless training from scratch
    # was asked for (no base model)
    others = [] if base_entry is None or not params.other_starts else registered_starts(
        registry, base_entry, gpu=gpu)
    result = _into_place(path, lambda tmp: train_recipe(
        images, masks, tmp, base=factory, params=params, cores=cores, gpu=gpu, cancel=cancel,
        base_modality=None if base_entry is None else entry_modality(base_entry),
        others=others,
        progress=None if progress is None else (
            lambda frac, _msg: progress(round(100 * frac), 100, float("nan"))),
    ))
    entry = registry.add_custom(
        name, path, kind="trained", replace=replace, diameter=round(result.diameter, 2),
        description=f"Trained in h4tracks on {len(chosen)} curated frame(s) of "
        f"{project.metadata.name or project.path or 'a project'} (validation AP@0.5 "
        f"{result.val_score:.2f}).",
        provenance={
            "base": None if base_entry is None else base_entry.name, "frames": chosen,
            "project": str(project.path or ""), **result.as_provenance(),
            "params": params.model_dump(),
        },
    )
    return entry, result
