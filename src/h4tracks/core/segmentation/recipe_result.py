"""What :func:`~h4tracks.core.segmentation.recipe.train_recipe` hands back: the choices it
made, their scores, and one line for the user."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from h4tracks.core.segmentation.training import TrainResult

#: ``RecipeResult.choice`` when no training beat the base model, whose weights are saved
BASE_CHOICE = "base model"


@dataclass
class RecipeResult:
    """The outcome of :func:`train_recipe`."""

    path: Path
    choice: str  # the winning candidate
    # AP@0.5 on the held-out strips of the saved model, or, after a final stretch that
    # trained on them, of the trial or main-run checkpoint it started from
    val_score: float
    trials: dict[str, float] = field(default_factory=dict)  # candidate -> trial score
    base_score: float | None = None  # the base model's score before training
    epochs: int = 0
    seconds: float = 0.0
    diameter: float = 0.0
    train: TrainResult | None = None
    modality: str = ""  # of the curated frames (detect_modality)
    screened: dict[str, float] = field(default_factory=dict)  # other start -> untrained score
    trial_epochs: dict[str, int] = field(default_factory=dict)  # candidate -> epochs run
    final_epochs: int = 0  # of ``epochs``: the final stretch on all curated pixels
    final_kept: bool = False  # whether the saved model is the final stretch's

    @property
    def main_averaged(self) -> bool:
        """Whether a main run averaged its weights (``main_average``): ``train`` is the main
        run's result, or the winning trial's (which never averages) when there was none."""
        return self.train is not None and self.train.averaged_epochs > 0

    def summary(self) -> str:
        """One line for the user: what was chosen, the scores, epochs and time."""
        trials = ", ".join(f"{k} {v:.2f}" for k, v in self.trials.items())
        base = "" if self.base_score is None else f" (base model {self.base_score:.3f})"
        if self.choice == BASE_CHOICE:
            head = f"no trial beat the base model ({trials}), its weights were kept"
        elif self.choice.endswith(" (untrained)"):
            head = (f"no trial beat the registered model {self.choice[:-12]} ({trials}), its "
                    "weights were kept")
        else:
            head = f"{self.choice} won the trials ({trials})"
        main = self.epochs - sum(self.trial_epochs.values())
        final = ("" if not self.final_epochs else
                 ", all on all curated pixels" if self.final_kept and self.final_epochs == main
                 else f", the last {self.final_epochs} on all curated pixels" if self.final_kept
                 else f"; a final stretch of {self.final_epochs} on all curated pixels was "
                 "dropped")
        return (f"{head}; validation AP@0.5 {self.val_score:.3f}{base}; {self.epochs} epochs "
                f"({main} after the trials{final}), {self.seconds:.0f} s; "
                f"{self.modality or 'unknown'} images")

    def as_provenance(self) -> dict[str, Any]:
        return {
            "recipe": "h4tracks validation-chosen start", "choice": self.choice,
            "validation_ap50": round(self.val_score, 4),
            "trials": {k: round(v, 4) for k, v in self.trials.items()},
            "base_ap50": None if self.base_score is None else round(self.base_score, 4),
            "epochs": self.epochs, "seconds": round(self.seconds, 1),
            "precision": None if self.train is None else self.train.precision,
            "modality": self.modality or None,
            "screened": {k: round(v, 4) for k, v in self.screened.items()},
            "trial_epochs": dict(self.trial_epochs),
            "final_epochs": self.final_epochs, "final_kept": self.final_kept,
            "main_averaged": self.main_averaged,
        }
