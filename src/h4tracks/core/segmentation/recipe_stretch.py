"""The recipe's final stretch (:mod:`~h4tracks.core.segmentation.recipe`, step 5): the
chosen model continues on the whole curated frames, validation strips included."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from h4tracks.core.segmentation.models import ModelEntry, load_cellpose_model
from h4tracks.core.segmentation.recipe_candidates import _Run
from h4tracks.core.segmentation.training import (
    TrainingCancelled,
    TrainParams,
    TrainResult,
    train_cellpose,
)

logger = logging.getLogger("h4tracks.core.segmentation.recipe")  # the recipe's log

#: the final stretch saves the average of its weights over its last 90 % (stochastic weight
#: averaging). On the real trpL movie the held-out AP@0.5 of a network from scratch jumped
#: between 0.74 and 0.92 from one checkpoint to the next (every 30 epochs, 60 to 450) with
#: no trend after epoch 60; the average of the weights from epoch 68 on held 0.856-0.874
STRETCH_AVERAGE = 0.9
#: the final stretch runs only when the validation strips hold fewer whole cells than this.
#: With few cells they are both a real share of the training data and a noisy judge (real
#: trpL: 7 cells; with the stretch 0.82-0.86 held-out AP@0.5 in five runs, without 0.79-0.83
#: in four). With many, holding them out costs little data while their judgement is sound:
#: the synthetic colony (293 cells) lost 0.017-0.019 with the stretch (0.772, 0.774 vs
#: 0.791), migrating cells (97) gained 0.013 and the culture (55) 0.003, one run each
STRETCH_BELOW_CELLS = 60


def _final_stretch(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], save_to: Path,
                   scratch_file: Path, run: _Run, main: TrainResult, tolerance: float,
                   tp: TrainParams, seconds: float | None, validate: Callable[[Any], float],
                   gpu: bool, cancel: Callable[[], bool] | None,
                   progress: Callable[[int, int], None]) -> int:
    """Continue the main run's saved weights on the whole curated frames (validation strips
    included) and save them over ``save_to``; returns the epochs run (0: kept the main run's).

    The start and the checkpoint were chosen with the strips held out; the stretch then
    learns from the quarter of the curated cells that they held. Its score on the strips is
    no validation any more (it trained on them), so it only guards against a stretch that
    went wrong: one scoring more than ``tolerance`` below the main run's median validation
    score is dropped. A cancelled stretch keeps the main run's model."""
    model, _ = load_cellpose_model(ModelEntry(name="main", kind="custom", path=str(save_to)),
                                   gpu=gpu)
    if seconds is not None:  # at the main run's pace, with one validation (the guard)
        per_check = main.check_seconds / max(1, len(main.val_scores))
        per_epoch = main.step_seconds / max(1, main.epochs)
        tp = tp.model_copy(update={"epochs": max(2, int((seconds - per_check) / per_epoch))})
    epochs = tp.epochs
    # the optimizer restarts on trained weights: a short warm-up; what is saved is the
    # average of the weights after it (see STRETCH_AVERAGE)
    warmup = max(2, epochs // 10)
    tp = tp.model_copy(update={"epochs": epochs, "validate_every": epochs,
                               "warmup_epochs": warmup,
                               "average_last": min(STRETCH_AVERAGE, 1 - warmup / epochs)})
    try:
        r = train_cellpose(images, masks, scratch_file, base=model, params=tp, gpu=gpu,
                           cancel=cancel, progress=lambda e, n, loss: progress(e, n))
    except TrainingCancelled:
        scratch_file.unlink(missing_ok=True)
        raise TrainingCancelled(f"Training cancelled in its final stretch; the model of the "
                                f"main run was saved to {save_to}.", main) from None
    score = validate(model)  # the network now holds the stretch's saved weights
    # against the main run's typical score, not its best: the best of several validations
    # on a few cells is a lucky draw (a real movie: 1.000 on its strips, where held-out
    # frames scored 0.86), which one more validation rarely matches
    typical = float(np.median([v for _, v in main.val_scores])) if main.val_scores else 0.0
    logger.info("final stretch: %.3f on the strips it trained on (main run %.3f typical, "
                "%.3f best)", score, typical, main.best_score or 0.0)
    if score < typical - tolerance:
        logger.info("final stretch dropped: the main run's model is kept")
        scratch_file.unlink(missing_ok=True)
        return 0
    scratch_file.replace(save_to)
    return r.epochs
