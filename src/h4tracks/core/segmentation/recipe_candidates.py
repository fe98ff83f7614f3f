"""The recipe's candidate starts: which trials run, in which order, and the registered
models screened as further starts (see :mod:`~h4tracks.core.segmentation.recipe`, step 2)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from h4tracks.core.segmentation.training import (
    FINETUNE_LR,
    FINETUNE_WEIGHT_DECAY,
    SCRATCH_LR,
    SCRATCH_WEIGHT_DECAY,
)
from h4tracks.errors import H4TracksError

#: candidate starts: (name, from the base model?, learning rate, weight decay)
CANDIDATES = {
    "finetune-small": (True, FINETUNE_LR, FINETUNE_WEIGHT_DECAY),
    "finetune-mid": (True, 1e-3, SCRATCH_WEIGHT_DECAY),
    "finetune-library": (True, SCRATCH_LR, SCRATCH_WEIGHT_DECAY),
    "scratch": (False, SCRATCH_LR, SCRATCH_WEIGHT_DECAY),
}
# Default candidates. Measured on synthetic rods with 30-60 steps (batches of 8): the small
# rate (1e-5, cellpose's fine-tuning advice) never beat the base model, while 1e-3 and 5e-3
# did (AP@0.5 0.29 -> 0.63-0.76). On a real phase-contrast movie the shipped demo model
# (synthetic fluorescence) fine-tuned at 5e-3 for 40 steps still found almost nothing
# (held-out AP@0.5 0.03) while a network from scratch reached 0.89: training from scratch is
# always a candidate, and the base model's modality decides which start a tie goes to.
_DEFAULT_FINETUNE = ["finetune-library", "finetune-mid"]
#: a base model of another modality than the curated frames' that validates below this
#: untrained is not fine-tuned (automatic candidates only). On the real phase-contrast movie
#: the demo model (synthetic fluorescence) scored 0.000, and fine-tuning it reached 0.000
#: after 5 minutes (trial 0.08 after 40 s) where training from scratch reached 0.79-0.90;
#: on the issue's real movie fine-tuning it gave 0.659 against 0.831 from scratch. Its trial
#: took half of the trials' 30 % of the budget.
HOPELESS_BASE = 0.1


@dataclass
class StartModel:
    """A registered model the recipe may fine-tune besides its base model."""

    name: str
    load: Callable[[], Any]  # a fresh loaded CellposeModel per call
    modality: str | None = None  # what it was trained on; None: unknown or mixed


@dataclass
class _Run:
    """One candidate: where it starts and how it trains."""

    name: str
    load: Callable[[], Any] | None  # None: from scratch
    lr: float
    wd: float
    patch: int
    diam_mean: float | None  # from scratch: the diameter the network works at


#: at most this many other registered models are scored before training (one validation
#: each), the most recently registered first
MAX_SCREENED = 3


def _state_of(model: Any) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.net.state_dict().items()}


def _screen_starts(others: Sequence[StartModel], modality: str,
                   validate: Callable[[Any], float], screened: dict[str, float]
                   ) -> tuple[StartModel, float, dict, float] | None:
    """The registered model (of the same modality as the curated frames, or of unknown
    modality) that validates best untrained, with its score, weights and network diameter;
    every score goes to ``screened`` (name -> AP@0.5)."""
    eligible = [o for o in others if o.modality in (None, modality)][::-1][:MAX_SCREENED]
    best = None
    for start in eligible:
        try:
            model = start.load()
        except H4TracksError:  # a registry entry whose file broke is skipped, not fatal
            continue
        state = _state_of(model)
        score = validate(model)
        screened[start.name] = score
        if best is None or score > best[1]:
            best = (start, score, state, float(model.net.diam_mean.item()))
    return best


def _with_extra_start(runs: list[_Run], extra: _Run, first: bool) -> list[_Run]:
    """The candidates with a fine-tune of another registered model: first if it validated
    better than the base model untrained, else just before training from scratch; the
    base's second learning rate makes room for it (three trials at most)."""
    runs = [r for r in runs if r.name != "finetune-mid"]
    if first:
        return [extra, *runs]
    at = next((i for i, r in enumerate(runs) if r.load is None), len(runs))
    return [*runs[:at], extra, *runs[at:]]


def _default_candidates(has_base: bool, base_matches: bool = True) -> list[str]:
    """The trials, in order of preference (a tie goes to the earlier): fine-tuning the base
    model at 5e-3 and 1e-3 and training from scratch when the base model was trained on the
    curated frames' modality (or its modality is unknown); from scratch first and the base
    at 5e-3 only when it was not (see ``_DEFAULT_FINETUNE``)."""
    if not has_base:
        return ["scratch"]
    if base_matches:
        return [*_DEFAULT_FINETUNE, "scratch"]
    return ["scratch", _DEFAULT_FINETUNE[0]]


def _best_trial(trials: dict[str, float], order: Sequence[str]) -> str | None:
    """The trial that validated best (``trials``: name -> score); a tie goes to the earlier
    one in ``order``."""
    done = [n for n in order if n in trials]
    return max(done, key=lambda n: trials[n]) if done else None
