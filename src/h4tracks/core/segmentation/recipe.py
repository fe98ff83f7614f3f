"""A training recipe that works from a few curated frames without knowing Cellpose's knobs.

Measured on a dense real culture (DESIGN.md §6), the right way to train from 3 frames depends
on the data: fine-tuning an unrelated model at the library's learning rate gave AP50 0.87,
at a "safe" small rate 0.59, from scratch 0.83; on a real phase-contrast movie the shipped
demo model (trained on synthetic fluorescence) fine-tuned for 40 steps found almost nothing
(held-out AP@0.5 0.03) where a network from scratch reached 0.89. So the recipe does not
guess; it lets held-out curated data decide, and the images tell it where to look first:

0. **The data**: the curated frames are cropped to their cells plus 3 cell diameters
   (:func:`crop_to_cells`: a colony in a large, empty field of view otherwise leaves most
   training patches without a cell) and their image modality is measured
   (:func:`detect_modality`: fluorescence, phase contrast or bright field, from the
   intensities inside, around and away from the cells).
1. **Validation split** (:func:`split_validation`): a quarter strip of each curated frame (of
   up to 4 of them) is held out and the rest of every frame trains; a strip is moved to the
   side where it holds about a quarter of the frame's cells when the usual one holds hardly
   any (or most). The score is AP@0.5 of the model's masks on the strips, pooled over their
   cells.
2. **Candidates** (:func:`~.recipe_candidates._default_candidates`): fine-tuning the base
   model at the library rate (5e-3) and at 1e-3, and training from scratch (5e-3) — always,
   whatever the budget. When the base model was trained on another modality than the curated
   frames' (the demo model, fluorescence, on phase contrast) from scratch comes first, so
   that a tie goes to it, and the base is tried at 5e-3 only — or not at all when,
   untrained, it finds almost none of the curated cells (validation AP@0.5 below
   ``HOPELESS_BASE``): then all the trials' time goes to the other starts. Other registered
   models (``others``) of the frames' modality, or of unknown modality, are scored untrained
   (one validation each, up to ``MAX_SCREENED``) and the best one is fine-tuned at 5e-3 too
   (first if it beat the base model untrained; it then replaces the base's 1e-3 trial).
   Fine-tuning at cellpose's small rate (1e-5, weight decay 0.1) can be asked for. A network
   from scratch works at a cell diameter of at most 18 px (:func:`scratch_diameter`: larger
   cells are scaled down, as long as they stay 6 px wide), which makes its steps about 4x
   cheaper on 36 px cells.
3. **Trials**: short runs of each candidate share ``trial_fraction`` of the budget equally
   and are judged by one validation at their end; the best score wins (a tie: the earlier
   candidate).
4. **Main run**: the winner continues up to the last ``final_fraction`` of the budget with
   ``MAIN_VALIDATIONS`` validations, a short learning-rate warm-up (its trial warmed the
   weights up), the learning rate annealed over its last 10 %, the best checkpoint kept and
   early stopping (``patience``). If the result validates no better than the best untrained
   start did (the base model, or a registered model screened above it), that start's weights
   are saved instead (choice ``BASE_CHOICE`` or "NAME (untrained)"): a finished run never
   hands the user a model that validates worse on their own data than one they already had.
   (A cancelled run keeps its best checkpoint so far, which the caller may discard.)
   When the strips hold fewer than ``FEW_VAL_CELLS`` cells they are a noisy judge and a
   real share of the training data, and (with ``final_fraction`` > 0) the main run only
   runs if the winner's trial did not beat the best untrained start (there is then still
   something for the strips to decide); it then averages the weights of its last
   ``main_average`` epochs (80 %, at most those after the warm-up) instead of annealing them,
   and only averages are validated and compete for the saved checkpoint: the few cells cannot
   pick a lucky checkpoint, the average has no luck to need.
5. **Final stretch** (:func:`_final_stretch`, when the strips hold fewer than
   ``FEW_VAL_CELLS`` cells): the winner continues on the whole curated frames, validation
   strips included, and the average of its weights is saved. The strips hold about a
   quarter of the curated cells; once they have chosen the start, holding them out any
   longer only costs training data. The stretch gets the whole budget after the trials, or
   ``final_fraction`` of it (25 %) after a main run. A stretch that does not beat the
   untrained start the model it continues beat is dropped, and so is one that scores clearly
   worse on the strips than the main run typically did (it trained on them). Straight after
   the trials there is no such reference: the trial's model learnt from pieces of frames cut
   beside the strips, the stretch's from whole frames, and on strips two cell diameters wide
   the latter is judged far worse than it is (real trpL: a stretch scoring 0.174 on strips it
   trained on, where its trial had scored 0.364, scored 0.948 on held-out frames).

Patches are 6 cell diameters as the network sees them (cells are scaled to the network's
diameter: the start's own when fine-tuning, e.g. 17 px for the demo model). Budget:
``minutes`` (wall time, validations and the final save included; the main run's
epochs are estimated from the pace of its trial) or ``epochs`` (an epoch is one batch of 8
patches with few frames); by default the number of patches seen scales with the data
(``patches_per_frame`` per curated frame, at least ``min_patches``: 300 batches for 1-3
frames, fewer in proportion to the area of patches over 112² px) instead of a
fixed epoch count. Steps run in bfloat16 mixed precision where the CPU
does that faster (measured once; about 2x on a CPU with AVX512-BF16). Before every validation
and before saving, the BatchNorm statistics are re-estimated on training patches (see
:mod:`~h4tracks.core.segmentation.training`): with cellpose's slow running averages a short
fine-tune is otherwise evaluated with its base model's statistics. Augmentation: cellpose's
random rotation, flips, scale jitter and crops, plus intensity jitter. The cell diameter is
measured from the curated masks. Everything runs within the core budget; cancel keeps the
best model so far.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from h4tracks.core.compute import torch_threads
from h4tracks.core.parameters import RecipeParams
from h4tracks.core.segmentation.engine import SegmentParams, segment_frame
from h4tracks.core.segmentation.models import ModelEntry, load_cellpose_model
from h4tracks.core.segmentation.recipe_budget import (
    MAIN_VALIDATIONS,
    _default_epochs,
    _epochs_that_fit,
    _patch_for,
)
from h4tracks.core.segmentation.recipe_candidates import (
    CANDIDATES,
    HOPELESS_BASE,
    StartModel,
    _best_trial,
    _default_candidates,
    _Run,
    _screen_starts,
    _state_of,
    _with_extra_start,
)
from h4tracks.core.segmentation.recipe_data import (
    CROP_MARGIN,
    crop_to_cells,
    detect_modality,
    scratch_diameter,
)
from h4tracks.core.segmentation.recipe_result import BASE_CHOICE, RecipeResult
from h4tracks.core.segmentation.recipe_stretch import FEW_VAL_CELLS, _final_stretch
from h4tracks.core.segmentation.recipe_validation import (
    VAL_MIN_DIAMETERS,
    _split,
    score_pieces,
    scored_cells,
)
from h4tracks.core.segmentation.training import (
    TrainingCancelled,
    TrainParams,
    check_training_data,
    mask_diameters,
    train_cellpose,
)
from h4tracks.errors import InputError

logger = logging.getLogger(__name__)

#: the main run keeps later weights that validate at most 2 / (validation cells) below its
#: best (two cells' worth), up to this much: on a real movie with 7 whole validation cells the
#: scores of one run jumped between 0.28 and 0.55 while held-out frames kept improving, and
#: early stopping on that noise kept a checkpoint of its first fifth
MAX_TOLERANCE = 0.25


def train_recipe(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    save_to: str | Path,
    *,
    base: Callable[[], Any] | None = None,
    base_modality: str | None = None,
    others: Sequence[StartModel] = (),
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
        Weights file of the result (the best validated checkpoint, or the final stretch
        continued from it or from the winning trial).
    base
        A function returning a fresh loaded ``CellposeModel`` to fine-tune (called once per
        fine-tuning candidate), or None (then only training from scratch is tried).
    base_modality
        The image modality the base model was trained on (one of ``MODALITIES``), None if
        unknown: a base of another modality than the curated frames' is tried after
        training from scratch (ties go to scratch) and at one learning rate only.
    others
        Further registered models to consider as fine-tuning starts (with a base model and
        automatic candidates only): those whose modality matches the curated frames' (or is
        unknown) are scored before training, and the best one is fine-tuned in the trials.
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
    modality = detect_modality(images, masks)
    images, masks = crop_to_cells(images, masks, CROP_MARGIN * diameter)
    tr_img, tr_mask, val_img, val_mask, val_sides = _split(images, masks,
                                                           VAL_MIN_DIAMETERS * diameter)
    save_to = Path(save_to)
    if not save_to.parent.is_dir():
        raise InputError(f"Folder {save_to.parent} does not exist.")
    scratch_diam = scratch_diameter(masks, diameter, params.scratch_diameter)
    per_epoch = max(8, len(tr_img))
    deadline = None if params.minutes is None or params.epochs is not None else (
        time.perf_counter() + 60 * params.minutes)
    base_matches = base_modality is None or base_modality == modality
    names = params.candidates or _default_candidates(base is not None, base_matches)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown or (base is None and any(CANDIDATES[n][0] for n in names)):
        raise InputError(f"Invalid candidates {names}: choose from {list(CANDIDATES)} "
                         "(fine-tuning needs a base model).")
    # two cells more or fewer found among few validation cells is noise, not a worse model
    val_cells = scored_cells(val_mask, val_sides)
    tolerance = min(MAX_TOLERANCE, 2.0 / max(1, val_cells))
    # where the strips hold few cells they are a noisy judge and a real share of the data:
    # once they have chosen the start, a final stretch trains on them too (and a main run
    # in between, where one is needed, averages its weights)
    few = val_cells < FEW_VAL_CELLS
    final_share = params.final_fraction if few else 0.0
    main_average = params.main_average if few else 0.0
    t0 = time.perf_counter()
    val_seconds = [0.0]  # the last validation's duration: reserved at the end of the budget

    def validate(model: Any) -> float:

        sp = SegmentParams(diameter=diameter)
        tv = time.perf_counter()
        score = score_pieces(val_mask, [segment_frame(model, img, sp) for img in val_img],
                             val_sides)
        val_seconds[0] = time.perf_counter() - tv
        return score

    # the last final_fraction of a time budget: the final stretch on all curated pixels
    stretch_s = 0.0 if deadline is None else 60 * (params.minutes or 0.0) * final_share

    def seconds_left(reserve: float = 0.0) -> float:
        """Seconds to the deadline less ``reserve``, the final validation and the save
        (a time budget only)."""
        assert deadline is not None
        return deadline - time.perf_counter() - 2.0 * val_seconds[0] - reserve

    def remaining_minutes(share: float = 1.0, reserve: float = 0.0) -> float | None:
        """Minutes left (:func:`seconds_left`) times ``share``; None with an epoch budget."""
        if deadline is None:
            return None
        return max(0.05, share * seconds_left(reserve) / 60)

    def report(frac: float, msg: str) -> None:
        if progress is not None:
            progress(min(1.0, frac), msg)

    def run_of(name: str, load: Callable[[], Any] | None = None,
               net_diameter: float = diameter) -> _Run:
        """A candidate; patches of 6 cell diameters as the network sees them (cells are
        scaled to its diameter: from scratch ``scratch_diam``, else the start's own)."""
        fine, lr, wd = CANDIDATES[name.split(":")[0]]
        if not fine:
            load, net_diameter = None, scratch_diam
        return _Run(name, load, lr, wd, params.patch_size or _patch_for(net_diameter),
                    None if fine else scratch_diam)

    result = RecipeResult(save_to, "", 0.0, diameter=diameter, modality=modality)
    common: dict[str, Any] = {
        "batch_size": params.batch_size, "images_per_epoch": per_epoch,
        "intensity_jitter": params.intensity_jitter, "border_pad": params.border_pad,
        "seed": params.seed,
        "precision": params.precision,
    }
    # every trial's weights file, removed however the run ends (Ctrl-C and SIGTERM included:
    # an interrupted training must not leave tens of MB of hidden files behind)
    trial_paths: list[Path] = []

    def trial_file(name: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        path = save_to.with_name(f".{save_to.stem}.trial-{safe}.pth")
        trial_paths.append(path)
        return path

    with torch_threads(cores):
        try:
            # the fallback: the start that validates best before any training (its weights
            # as they are now: save_to may be its own file; taken before validation, as
            # cellpose's CPU inference converts the network in place)
            fallback: tuple[str, float, dict] | None = None
            runs = [run_of(n) for n in names]
            if base is not None:
                first = base()
                state = _state_of(first)
                base_diameter = float(first.net.diam_mean.item())
                result.base_score = validate(first)
                fallback = (BASE_CHOICE, result.base_score, state)
                if (not params.candidates and not base_matches
                        and result.base_score < HOPELESS_BASE):
                    # a base of another modality that finds (almost) none of the user's
                    # cells is not worth a trial: the candidates are those without a base,
                    # so its time goes to training from scratch
                    names = _default_candidates(has_base=False)
                    logger.info("base model of another modality scored %.3f untrained: not "
                                "fine-tuned", result.base_score)
                runs = [run_of(n, base, base_diameter) for n in names]
                if not params.candidates and others:
                    extra = _screen_starts(others, modality, validate, result.screened)
                    if extra is not None:
                        other, score, state, other_diameter = extra
                        if score > result.base_score:
                            fallback = (f"{other.name} (untrained)", score, state)
                        runs = _with_extra_start(
                            runs, run_of(f"finetune-library:{other.name}", other.load,
                                         other_diameter),
                            score > result.base_score)
            if params.epochs is not None:
                total_epochs = params.epochs
            elif deadline is not None:
                total_epochs = 10_000
            else:  # scaled to the data, in the largest patches of the candidates
                total_epochs = _default_epochs(params, len(images),
                                               max(r.patch for r in runs), per_epoch)
            # 1. trials: equal shares of trial_fraction of the budget, each judged by one
            # validation at its end
            names = [r.name for r in runs]
            trial_epochs = max(2, int(total_epochs * params.trial_fraction / len(runs)))
            models: dict[str, Any] = {}
            trial_files: dict[str, Path] = {}
            for i, run in enumerate(runs):
                report(i / len(runs) * params.trial_fraction, f"trial {run.name}")
                file = trial_file(run.name)
                # each trial gets its share of what is left (validations included)
                share = params.trial_fraction / len(runs) / max(
                    1e-6, 1 - i * params.trial_fraction / len(runs))
                tp = TrainParams(epochs=trial_epochs, minutes=remaining_minutes(share),
                                 learning_rate=run.lr, weight_decay=run.wd,
                                 validate_every=max(1, trial_epochs), patch_size=run.patch,
                                 diam_mean=run.diam_mean, **common)
                try:
                    start = run.load() if run.load is not None else None
                    r = train_cellpose(tr_img, tr_mask, file, base=start, params=tp, gpu=gpu,
                                       cancel=cancel, validate=validate)
                except TrainingCancelled:
                    file.unlink(missing_ok=True)
                    best = _best_trial(result.trials, names)
                    if best is not None:  # keep the best finished trial as the result
                        trial_files[best].replace(save_to)
                        models[best].path = save_to
                    _cleanup(trial_files.values())
                    raise TrainingCancelled(
                        "Training cancelled during the trials"
                        + (f"; the best trial ({best}) was saved to {save_to}." if best else "."),
                        None if best is None else models[best],
                    ) from None
                result.trials[run.name] = r.best_score or 0.0
                result.trial_epochs[run.name] = r.epochs
                trial_files[run.name] = file
                models[run.name] = r
            choice = _best_trial(result.trials, names)
            assert choice is not None
            result.choice = choice
            run = next(r for r in runs if r.name == choice)
            trial_score = result.trials[choice]
            # with few validation cells, a winner that already beat every untrained start
            # in its trial has nothing left for the strips to decide: it goes straight on to
            # all curated pixels for the rest of the budget (step 5); a main run on the rest
            # of the frames only trains on less data (real nuclei: held-out AP@0.5 0.945 in
            # two runs vs 0.878-0.918 in four with a main run; real trpL level, 0.822 and
            # 0.847 vs 0.828-0.837)
            straight = few and final_share > 0 and (
                fallback is None or fallback[1] <= 0 or trial_score > fallback[1])
            reference: float | None  # of the final stretch's guard
            if straight:
                trial_files[choice].replace(save_to)
                r = models[choice]
                # (no reference for its guard: see step 5 of the module docstring)
                r.path, reference, main_epochs = save_to, None, 0
                main_end, final_share = params.trial_fraction, 1 - params.trial_fraction
                final_epochs = max(2, total_epochs - trial_epochs * len(runs))
                _cleanup(trial_files.values())
            else:
                # 2. main run: continue the winner from its trial weights
                winner, _ = load_cellpose_model(ModelEntry(name="trial", kind="custom",
                                                           path=str(trial_files[choice])), gpu=gpu)
                final_epochs = int(total_epochs * final_share)
                if deadline is None and final_epochs < 2:  # too few epochs to share
                    final_share, final_epochs = 0.0, 0
                rest_epochs = max(2, total_epochs - trial_epochs * len(runs) - final_epochs)
                if deadline is not None:
                    # a time budget becomes epochs at the winner's measured pace, so that the
                    # learning rate is annealed and the validations are spread over the time left
                    rest_epochs = _epochs_that_fit(models[choice], seconds_left(stretch_s))
                main_end = 1 - final_share  # of the progress bar
                main_warmup = min(10, max(2, 10 - models[choice].epochs))
                main = TrainParams(epochs=rest_epochs, minutes=remaining_minutes(reserve=stretch_s),
                                   learning_rate=run.lr, weight_decay=run.wd,
                                   validate_every=max(5, rest_epochs // MAIN_VALIDATIONS),
                                   patience=params.patience, patch_size=run.patch,
                                   tolerance=tolerance,
                                   # the trial warmed the weights up; the optimizer restarts
                                   warmup_epochs=main_warmup,
                                   average_last=main_average, **common)
                report(params.trial_fraction, f"training {choice}")
                try:
                    r = train_cellpose(
                        tr_img, tr_mask, save_to, base=winner, params=main, gpu=gpu, cancel=cancel,
                        validate=validate,
                        progress=lambda e, n, loss: report(
                            params.trial_fraction + (main_end - params.trial_fraction) * e / n,
                            f"training {choice}: epoch {e}"))
                except TrainingCancelled:
                    _cleanup(trial_files.values())
                    raise
                top = max((v for _, v in r.val_scores), default=0.0)
                # the typical score of the saved weights' run (the best of several validations
                # on a few cells is a lucky draw: a real movie scored 1.000 on its strips where
                # held-out frames scored 0.86); the final stretch is measured against it
                reference = float(np.median([v for _, v in r.val_scores] or [0.0]))
                if top < trial_score - tolerance:
                    # the continuation never came near the trial: keep the trial's weights
                    trial_files[choice].replace(save_to)
                    r.best_score = reference = trial_score
                _cleanup(trial_files.values())
                main_epochs = r.epochs
            # (a start that finds nothing on the validation strips is no fallback: a tie
            # at 0 says nothing, and the trained model at least saw the user's cells; on the
            # real phase-contrast movie the demo model scored 0 and its "kept" weights
            # found 226 specks for 87 cells)
            if fallback is not None and fallback[1] > 0 and (r.best_score or 0.0) <= fallback[1]:
                # training did not beat the best untrained start on the user's held-out data
                # (a model that already segments it well, or too small a budget): the saved
                # model is that start's weights, so re-segmenting with it can only keep the
                # quality; its diameter is the curated cells', as for a trained model
                import torch

                fallback[2]["diam_labels"] = torch.tensor([diameter], dtype=torch.float32)
                torch.save(fallback[2], save_to)
                result.choice = fallback[0]
                r.best_score = fallback[1]
            elif final_share > 0:
                # 3. final stretch (step 5 of the module docstring): the chosen weights learn
                # from the validation strips too; it must still beat the untrained start
                report(main_end, f"training {choice} on all curated pixels")
                result.final_epochs, result.final_kept = _final_stretch(
                    images, masks, save_to, trial_file("final"), r,
                    # (a time budget sets the epochs from the time left; a tiny
                    # final_fraction of its nominal epochs would round to 0 here)
                    TrainParams(epochs=max(2, final_epochs), minutes=remaining_minutes(),
                                learning_rate=run.lr, weight_decay=run.wd,
                                patch_size=run.patch, **common),
                    None if deadline is None else seconds_left(),
                    reference, tolerance,
                    fallback[1] if fallback is not None and fallback[1] > 0 else None,
                    validate, gpu, cancel,
                    lambda e, n: report(main_end + final_share * e / n,
                                        f"training {choice} on all curated pixels: epoch {e}"))
        finally:
            _cleanup(trial_paths)

    result.train = r
    result.val_score = float(r.best_score or 0.0)
    # epochs actually run
    result.epochs = sum(m.epochs for m in models.values()) + main_epochs + result.final_epochs
    result.seconds = time.perf_counter() - t0
    report(1.0, "done")
    return result


def _cleanup(files: Any, *more: Path) -> None:
    for f in [*files, *more]:
        Path(f).unlink(missing_ok=True)
