"""A training recipe that works from a few curated frames without knowing Cellpose's knobs.

Measured on a dense real culture (DESIGN.md §6), the right way to train from 3 frames depends
on the data: fine-tuning an unrelated model at the library's learning rate gave AP50 0.87,
at a "safe" small rate 0.59, from scratch 0.83. So the recipe does not guess; it lets
held-out curated data decide:

1. **Validation split** (:func:`split_validation`): a quarter strip of each curated frame (of
   up to 4 of them) is held out and the rest of every frame trains. The score is AP@0.5 of
   the model's masks on the strips, pooled over their cells.
2. **Trials**: short runs of each candidate start — by default fine-tune the base model at
   the library rate (5e-3) and at 1e-3, plus training from scratch (5e-3) when the budget is
   large enough for it (≥ 600 epochs or ≥ 10 minutes); fine-tuning at cellpose's small
   fine-tuning rate (1e-5, weight decay 0.1) can be asked for — share ``trial_fraction`` of
   the budget; the best validation score wins.
3. **Main run**: the winner continues for the rest of the budget with ``MAIN_VALIDATIONS``
   validations, the learning rate annealed over its last 10 %, the best checkpoint kept and
   early stopping (``patience``). If the result validates no better than the base model
   did before training, the base model's weights are saved instead (choice
   ``BASE_CHOICE``): a finished run never hands the user a model that validates worse on
   their own data than the one they started from. (A cancelled run keeps its best
   checkpoint so far, which the caller may discard.)

Budget: ``minutes`` (wall time, validations and the final save included; the main run's
epochs are estimated from the pace of its trial) or ``epochs`` (an epoch is one batch of 8
patches with few frames); by default the number of patches seen scales with the data
(``patches_per_frame`` per curated frame, at least ``min_patches``: 300 batches for 1-3
frames, fewer in proportion to the area of patches over 112² px for large cells) instead of a
fixed epoch count. Steps run in bfloat16 mixed precision where the CPU
does that faster (measured once; about 2x here). Before every validation and before saving,
the BatchNorm statistics are re-estimated on training patches (see
:mod:`~h4tracks.core.segmentation.training`): with cellpose's slow running averages a short
fine-tune is otherwise evaluated with its base model's statistics. Augmentation: cellpose's
random rotation, flips, scale jitter and crops, plus intensity jitter. The cell diameter is
measured from the curated masks. Everything runs within the core budget; cancel keeps the
best model so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from h4tracks.core.compute import torch_threads
from h4tracks.core.evaluation.segmentation import frame_overlap, match_instances
from h4tracks.core.parameters import RecipeParams
from h4tracks.core.segmentation.engine import SegmentParams, segment_frame
from h4tracks.core.segmentation.models import ModelEntry, load_cellpose_model
from h4tracks.core.segmentation.training import (
    FINETUNE_LR,
    FINETUNE_WEIGHT_DECAY,
    SCRATCH_LR,
    SCRATCH_WEIGHT_DECAY,
    TrainingCancelled,
    TrainParams,
    TrainResult,
    check_training_data,
    mask_diameters,
    ref_patch_share,
    train_cellpose,
)
from h4tracks.errors import InputError

#: candidate starts: (name, from the base model?, learning rate, weight decay)
CANDIDATES = {
    "finetune-small": (True, FINETUNE_LR, FINETUNE_WEIGHT_DECAY),
    "finetune-mid": (True, 1e-3, SCRATCH_WEIGHT_DECAY),
    "finetune-library": (True, SCRATCH_LR, SCRATCH_WEIGHT_DECAY),
    "scratch": (False, SCRATCH_LR, SCRATCH_WEIGHT_DECAY),
}
# Default candidates. Measured on synthetic rods with 30-60 steps (batches of 8): the small
# rate (1e-5, cellpose's fine-tuning advice) never beat the base model and a network from
# scratch learnt nothing, while 1e-3 and 5e-3 did (AP@0.5 0.29 -> 0.63-0.76). So by default
# the trials are the two larger rates; from scratch joins when the budget can teach it.
_DEFAULT_FINETUNE = ["finetune-library", "finetune-mid"]
_SCRATCH_MIN_EPOCHS = 600
#: ``RecipeResult.choice`` when no training beat the base model, whose weights are saved
BASE_CHOICE = "base model"
#: validations of the main run (the best one is kept; ``patience`` stops early)
MAIN_VALIDATIONS = 8
_SCRATCH_MIN_MINUTES = 10.0


@dataclass
class RecipeResult:
    """The outcome of :func:`train_recipe`."""

    path: Path
    choice: str  # the winning candidate
    val_score: float  # AP@0.5 of the saved model on the held-out data
    trials: dict[str, float] = field(default_factory=dict)  # candidate -> trial score
    base_score: float | None = None  # the base model's score before training
    epochs: int = 0
    seconds: float = 0.0
    diameter: float = 0.0
    train: TrainResult | None = None

    def summary(self) -> str:
        """One line for the user: what was chosen, the scores, epochs and time."""
        trials = ", ".join(f"{k} {v:.2f}" for k, v in self.trials.items())
        base = "" if self.base_score is None else f" (base model {self.base_score:.3f})"
        head = (f"no trial beat the base model ({trials}), its weights were kept"
                if self.choice == BASE_CHOICE else f"{self.choice} won the trials ({trials})")
        return (f"{head}; validation AP@0.5 {self.val_score:.3f}{base}; {self.epochs} epochs, "
                f"{self.seconds:.0f} s")

    def as_provenance(self) -> dict[str, Any]:
        return {
            "recipe": "h4tracks validation-chosen start", "choice": self.choice,
            "validation_ap50": round(self.val_score, 4),
            "trials": {k: round(v, 4) for k, v in self.trials.items()},
            "base_ap50": None if self.base_score is None else round(self.base_score, 4),
            "epochs": self.epochs, "seconds": round(self.seconds, 1),
            "precision": None if self.train is None else self.train.precision,
        }


def _match_counts(reference: np.ndarray, predicted: np.ndarray) -> tuple[int, int, int]:
    """(true positives at IoU 0.5, reference cells, predicted cells) of one frame."""
    ov = frame_overlap(np.asarray(reference), np.asarray(predicted))
    return match_instances(ov, 0.5)[0].size, ov.ref_labels.size, ov.pred_labels.size


def ap50(reference: np.ndarray, predicted: np.ndarray) -> float:
    """Average precision at IoU 0.5: TP / (TP + FP + FN) (1.0 when both are empty)."""
    return pooled_ap50([reference], [predicted])


def pooled_ap50(references: Sequence[np.ndarray], predictions: Sequence[np.ndarray]) -> float:
    """AP@0.5 over several frames or pieces: TP / (TP + FP + FN) of the summed counts, so a
    piece with few cells weighs little (1.0 when there are no cells at all)."""
    tp, n_ref, n_pred = np.sum([_match_counts(r, p) for r, p in
                                zip(references, predictions, strict=True)], axis=0)
    denom = n_ref + n_pred - tp
    return 1.0 if denom == 0 else float(tp / denom)


#: validation pieces are strips of this share of a frame, from at most MAX_VAL_FRAMES frames
VAL_SHARE = 0.25
MAX_VAL_FRAMES = 4
_MIN_VAL_SIDE = 32


def split_validation(
    images: Sequence[np.ndarray], masks: Sequence[np.ndarray], min_strip: float = _MIN_VAL_SIDE
) -> tuple:
    """(train_images, train_masks, val_images, val_masks) of a few curated frames.

    A strip of a quarter of the frame (right, bottom, left, top in turn) is held out of each
    of up to ``MAX_VAL_FRAMES`` evenly spread frames; the rest of every frame trains. So
    every curated frame teaches, and the validation score pools cells of several frames,
    which makes the choice between trials less noisy than one held-out frame (which, with
    3 curated frames, also left only 2 to train on). Frames too small for a strip of
    ``min_strip`` pixels (the recipe asks for 4 cell diameters, at least 32 px: a thinner
    strip holds mostly cells cut by its edges and scores noisily): the last frame is held
    out whole (a single such frame is an error).
    """
    n = len(images)
    if any(min(np.shape(im)) * VAL_SHARE < max(_MIN_VAL_SIDE, min_strip) for im in images):
        if n >= 2:
            return list(images[:-1]), list(masks[:-1]), [images[-1]], [masks[-1]]
        raise InputError("One curated frame this small cannot be split for validation; "
                         "curate a second frame.")
    picked = set(np.linspace(0, n - 1, min(n, MAX_VAL_FRAMES)).round().astype(int).tolist())
    tr_img: list[np.ndarray] = []
    tr_mask: list[np.ndarray] = []
    val_img: list[np.ndarray] = []
    val_mask: list[np.ndarray] = []
    for i, (img, m) in enumerate(zip(images, masks, strict=True)):
        img, m = np.asarray(img), np.asarray(m)
        if i not in picked:
            tr_img.append(img)
            tr_mask.append(m)
            continue
        side = len(val_img) % 4  # right, bottom, left, top: pieces from different places
        axis = 1 if side in (0, 2) else 0
        cut = round(img.shape[axis] * VAL_SHARE)
        at = img.shape[axis] - cut if side < 2 else cut
        (img_a, img_b), (m_a, m_b) = (np.split(x, [at], axis=axis) for x in (img, m))
        if side >= 2:  # the strip is the first part
            img_a, img_b, m_a, m_b = img_b, img_a, m_b, m_a
        tr_img.append(img_a)
        tr_mask.append(m_a)
        val_img.append(img_b)
        val_mask.append(m_b)
    return tr_img, tr_mask, val_img, val_mask


def train_recipe(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    save_to: str | Path,
    *,
    base: Callable[[], Any] | None = None,
    params: RecipeParams | None = None,
    cores: int | None = None,
    gpu: bool = False,
    progress: Callable[[float, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> RecipeResult:
    """Train a Cellpose model from a few curated frames, choosing the start by validation.

    Parameters
    ----------
    images, masks
        Curated frames and their label images.
    save_to
        Weights file of the result (the best validated checkpoint).
    base
        A function returning a fresh loaded ``CellposeModel`` to fine-tune (called once per
        fine-tuning candidate), or None (then only training from scratch is tried).
    progress
        ``progress(fraction_done, message)``.
    cancel
        Checked after every batch; a cancelled run raises
        :class:`~h4tracks.core.segmentation.training.TrainingCancelled` whose ``result``
        is the best model saved so far (or None if no trial finished).
    """
    params = params or RecipeParams()
    keep = check_training_data(images, masks)
    images = [np.asarray(images[i]) for i in keep]
    masks = [np.asarray(masks[i]) for i in keep]
    diameter = float(mask_diameters(masks).mean())
    tr_img, tr_mask, val_img, val_mask = split_validation(images, masks, 4 * diameter)
    save_to = Path(save_to)
    if not save_to.parent.is_dir():
        raise InputError(f"Folder {save_to.parent} does not exist.")
    patch = params.patch_size or int(min(224, max(64, 16 * round(6 * diameter / 16))))
    per_epoch = max(8, len(tr_img))
    if params.epochs is not None:
        total_epochs, deadline = params.epochs, None
    elif params.minutes is not None:
        total_epochs, deadline = 10_000, time.perf_counter() + 60 * params.minutes
    else:
        total_epochs, deadline = _default_epochs(params, len(images), patch, per_epoch), None
    names = params.candidates or _default_candidates(base is not None, params, total_epochs)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown or (base is None and any(CANDIDATES[n][0] for n in names)):
        raise InputError(f"Invalid candidates {names}: choose from {list(CANDIDATES)} "
                         "(fine-tuning needs a base model).")
    t0 = time.perf_counter()
    val_seconds = [0.0]  # the last validation's duration: reserved at the end of the budget

    def validate(model: Any) -> float:

        sp = SegmentParams(diameter=diameter)
        tv = time.perf_counter()
        score = pooled_ap50(val_mask, [segment_frame(model, img, sp) for img in val_img])
        val_seconds[0] = time.perf_counter() - tv
        return score

    def remaining_minutes(share: float = 1.0) -> float | None:
        """Minutes left times ``share``, less the final validation and save."""
        if deadline is None:
            return None
        left = deadline - time.perf_counter() - 2.0 * val_seconds[0]
        return max(0.05, share * left / 60)

    def report(frac: float, msg: str) -> None:
        if progress is not None:
            progress(min(1.0, frac), msg)

    result = RecipeResult(save_to, "", 0.0, diameter=diameter)
    base_params: dict[str, Any] = {
        "patch_size": patch, "batch_size": params.batch_size, "images_per_epoch": per_epoch,
        "intensity_jitter": params.intensity_jitter, "seed": params.seed,
        "precision": params.precision,
        "diam_mean": diameter if base is None else None,
    }
    # every trial's weights file, removed however the run ends (Ctrl-C and SIGTERM included:
    # an interrupted training must not leave tens of MB of hidden files behind)
    trial_paths = [save_to.with_name(f".{save_to.stem}.trial-{n}.pth") for n in names]
    with torch_threads(cores):
        try:
            base_state = None
            if base is not None:
                first = base()
                # the base weights as they are now (save_to may be the base's own file), taken
                # before validation (cellpose's CPU inference converts the network in place)
                base_state = {k: v.detach().cpu().clone()
                              for k, v in first.net.state_dict().items()}
                result.base_score = validate(first)
            # 1. trials: equal shares of trial_fraction of the budget
            trial_epochs = max(2, int(total_epochs * params.trial_fraction / len(names)))
            models: dict[str, Any] = {}
            trial_files: dict[str, Path] = {}
            for i, name in enumerate(names):
                fine, lr, wd = CANDIDATES[name]
                report(i / len(names) * params.trial_fraction, f"trial {name}")
                file = save_to.with_name(f".{save_to.stem}.trial-{name}.pth")
                # each trial gets its share of what is left (validations included)
                share = params.trial_fraction / len(names) / max(
                    1e-6, 1 - i * params.trial_fraction / len(names))
                tp = TrainParams(epochs=trial_epochs, minutes=remaining_minutes(share),
                                 learning_rate=lr,
                                 weight_decay=wd, validate_every=max(1, trial_epochs),
                                 **base_params)
                try:
                    start = base() if fine and base is not None else None
                    r = train_cellpose(tr_img, tr_mask, file, base=start, params=tp, gpu=gpu,
                                       cancel=cancel, validate=validate)
                except TrainingCancelled:
                    file.unlink(missing_ok=True)
                    best = _best_trial(result)
                    if best is not None:  # keep the best finished trial as the result
                        trial_files[best].replace(save_to)
                        models[best].path = save_to
                    _cleanup(trial_files.values())
                    raise TrainingCancelled(
                        "Training cancelled during the trials"
                        + (f"; the best trial ({best}) was saved to {save_to}." if best else "."),
                        None if best is None else models[best],
                    ) from None
                result.trials[name] = r.best_score or 0.0
                trial_files[name] = file
                models[name] = r
            choice = max(result.trials, key=result.trials.get)  # type: ignore[arg-type]
            result.choice = choice
            # 2. main run: continue the winner from its trial weights
            winner, _ = load_cellpose_model(ModelEntry(name=choice, kind="custom",
                                                       path=str(trial_files[choice])), gpu=gpu)
            fine, lr, wd = CANDIDATES[choice]
            rest_epochs = max(2, total_epochs - trial_epochs * len(names))
            if deadline is not None:
                # a time budget becomes epochs at the winner's measured pace, so that the
                # learning rate is annealed and the validations are spread over the time left
                rest_epochs = _epochs_that_fit(
                    models[choice], deadline - time.perf_counter() - 2.0 * val_seconds[0])
            main = TrainParams(epochs=rest_epochs, minutes=remaining_minutes(), learning_rate=lr,
                               weight_decay=wd,
                               validate_every=max(5, rest_epochs // MAIN_VALIDATIONS),
                               patience=params.patience,
                               **{**base_params, "diam_mean": None})
            report(params.trial_fraction, f"training {choice}")
            try:
                r = train_cellpose(
                    tr_img, tr_mask, save_to, base=winner, params=main, gpu=gpu, cancel=cancel,
                    validate=validate,
                    progress=lambda e, n, loss: report(
                        params.trial_fraction + (1 - params.trial_fraction) * e / n,
                        f"training {choice}: epoch {e}"))
            except TrainingCancelled:
                _cleanup(trial_files.values())
                raise
            trial_score = result.trials[choice]
            if (r.best_score or 0.0) < trial_score:
                # the continuation never beat the trial: keep the trial's weights
                trial_files[choice].replace(save_to)
                r.best_score = trial_score
            _cleanup(trial_files.values())
            if base_state is not None and (r.best_score or 0.0) <= (result.base_score or 0.0):
                # training did not beat the base model on the user's held-out data (a base
                # that already segments it well, or too small a budget): the saved model is
                # the base model's weights, so re-segmenting with it can only keep the quality;
                # its diameter is the curated cells', as for a trained model
                import torch

                base_state["diam_labels"] = torch.tensor([diameter], dtype=torch.float32)
                torch.save(base_state, save_to)
                result.choice = BASE_CHOICE
                r.best_score = result.base_score
        finally:
            _cleanup(trial_paths)

    result.train = r
    result.val_score = float(r.best_score or 0.0)
    result.epochs = sum(m.epochs for m in models.values()) + r.epochs  # epochs actually run
    result.seconds = time.perf_counter() - t0
    report(1.0, "done")
    return result


def _default_epochs(params: RecipeParams, n_frames: int, patch: int, per_epoch: int) -> int:
    """Epochs of the data-scaled default budget: ``patches_per_frame`` per curated frame (at
    least ``min_patches``), counted in patches of at most ``training.REF_PATCH``² pixels."""
    patches = max(params.min_patches, params.patches_per_frame * n_frames)
    # a bigger patch (large cells) holds more of the data per step and costs as much more,
    # so fewer of them see as much: 3 frames of 56 px cells (224 px patches) 75 batches, not
    # 300 (~4.5 instead of ~15 minutes on 2 CPU cores)
    patches = int(patches * ref_patch_share(patch))
    return max(4, patches // per_epoch)


def _epochs_that_fit(trial: TrainResult, seconds: float) -> int:
    """Epochs of the main run that fit in ``seconds`` with ``MAIN_VALIDATIONS`` validations,
    at the pace measured in its trial."""
    per_epoch = trial.step_seconds / max(1, trial.epochs)
    per_check = trial.check_seconds / max(1, len(trial.val_scores))
    return max(2, int((seconds - MAIN_VALIDATIONS * per_check) / max(per_epoch, 1e-6)))


def _default_candidates(has_base: bool, params: RecipeParams, total_epochs: int) -> list[str]:
    """The trials worth their share of the budget (see ``_DEFAULT_FINETUNE``)."""
    names = list(_DEFAULT_FINETUNE) if has_base else []
    big = (params.minutes >= _SCRATCH_MIN_MINUTES if params.minutes is not None
           else total_epochs >= _SCRATCH_MIN_EPOCHS)
    if big or not has_base:
        names.append("scratch")
    return names


def _best_trial(result: RecipeResult) -> str | None:
    return max(result.trials, key=result.trials.get) if result.trials else None  # type: ignore[arg-type]


def _cleanup(files: Any, *more: Path) -> None:
    for f in [*files, *more]:
        Path(f).unlink(missing_ok=True)
