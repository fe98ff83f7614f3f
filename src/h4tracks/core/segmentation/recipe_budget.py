"""How long the training recipe (:mod:`.recipe`) trains and in what patches."""

from __future__ import annotations

from h4tracks.core.parameters import RecipeParams
from h4tracks.core.segmentation.training import TrainResult, ref_patch_share

#: validations of the main run (the best one is kept; ``patience`` stops early)
MAIN_VALIDATIONS = 8


def _patch_for(diameter: float) -> int:
    """Training patch side (network pixels): 6 diameters, a multiple of 16, 64-224."""
    return int(min(224, max(64, 16 * round(6 * diameter / 16))))


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
