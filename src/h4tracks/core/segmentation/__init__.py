"""Segmentation with Cellpose: the engine that segments a project (engine.py), the model registry
(models.py), training (training.py, recipe.py, train_project.py) and the label curation verbs
that build undoable actions (label_edits.py). Qt-free."""

from h4tracks.core.segmentation.label_edits import (
    merge_cells,
    next_free_label,
    relabel_unique,
    remove_cell,
    separate_region,
)

__all__ = ["merge_cells", "next_free_label", "relabel_unique", "remove_cell", "separate_region"]
