"""The recipe's final stretch (:mod:`~h4tracks.core.segmentation.recipe`, step 5): the
chosen model continues on the whole curated frames, validation strips included."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from h4tracks.core.segmentation.models import ModelEntry, load_cellpose_model
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
#: the final stretch runs, and the main run averages its weights (``main_average``), only
#: when the validation strips hold fewer whole cells than this.
#: With few cells they are both a real share of the training data and a noisy judge (real
#: trpL: 7 cells; with a stretch 0.82-0.86 held-out AP@0.5 in five runs of three variants,
#: without 0.79-0.83 in four). With many, holding them out costs little data while their
#: judgement is sound: the synthetic colony (293 cells) lost 0.017-0.019 with the stretch
#: (0.772, 0.774 vs 0.791), migrating cells (97) gained 0.013 and the culture (55) 0.003,
#: one run each. Averaging the main run's weights cost the colony more (0.727 in one run vs
#: 0.780-0.796: a run far from its plateau, whose average lags behind), where the strips
#: pick a sound checkpoint anyway
FEW_VAL_CELLS = 60


def _final_stretch(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], save_to: Path,
                   scratch_file: Path, main: TrainResult, tp: TrainParams,
                   seconds: float | None, reference: float | None, tolerance: float,
                   beat: float | None, validate: Callable[[Any], float], gpu: bool,
                   cancel: Callable[[], bool] | None, progress: Callable[[int, int], None]
                   ) -> tuple[int, bool]:
    """Continue the model saved at ``save_to`` on the whole curated frames (validation
    strips included) and save the result over it; returns (epochs run, kept).

    The start (and the checkpoint, after a main run) were chosen with the strips held out;
    the stretch then learns from the share of the curated cells that they held. Its score on
    the strips is no validation any more (it trained on them), so it only guards: a stretch
    scoring not above ``beat`` (the best untrained start's score), or more than ``tolerance``
    below ``reference`` (the main run's median validation score, or the trial's when its
    weights were kept; None: no such guard), is dropped. ``main``: the run whose model it
    continues (the winner's trial, or the main run). ``seconds``: the time left (a time
    budget), at ``main``'s pace; None: ``tp.epochs``. A cancelled stretch keeps the model it
    started from."""
    if seconds is not None:
        per_epoch = max(main.step_seconds / max(1, main.epochs), 1e-6)
        if seconds < 2 * per_epoch:  # (the final validation is the caller's reserve)
            logger.info("no time left for the final stretch")
            return 0, False
        tp = tp.model_copy(update={"epochs": int(seconds / per_epoch)})
    epochs = tp.epochs
    # the optimizer restarts on trained weights: a short warm-up; what is saved is the
    # average of the weights after it (see STRETCH_AVERAGE)
    warmup = max(2, epochs // 10)
    tp = tp.model_copy(update={"validate_every": epochs, "warmup_epochs": warmup,
                               "average_last": STRETCH_AVERAGE})
    model, _ = load_cellpose_model(ModelEntry(name="main", kind="custom", path=str(save_to)),
                                   gpu=gpu)
    try:
        r = train_cellpose(images, masks, scratch_file, base=model, params=tp, gpu=gpu,
                           cancel=cancel, progress=lambda e, n, loss: progress(e, n))
    except TrainingCancelled:
        scratch_file.unlink(missing_ok=True)
        raise TrainingCancelled(f"Training cancelled in its final stretch; the model it "
                                f"started from was saved to {save_to}.", main) from None
    score = validate(model)  # the network now holds the stretch's saved weights
    logger.info("final stretch: %.3f on the strips it trained on (reference %s)", score,
                "none" if reference is None else f"{reference:.3f}")
    if (reference is not None and score < reference - tolerance) or (
            beat is not None and score <= beat):
        logger.info("final stretch dropped: the model it started from is kept")
        scratch_file.unlink(missing_ok=True)
        return r.epochs, False
    scratch_file.replace(save_to)
    return r.epochs, True
