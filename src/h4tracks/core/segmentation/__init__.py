"""Segmentation editing: Qt-free curation verbs that build undoable actions."""

from h4tracks.core.segmentation.curation import (
    merge_cells,
    next_free_label,
    relabel_unique,
    remove_cell,
    separate_region,
)

__all__ = ["merge_cells", "next_free_label", "relabel_unique", "remove_cell", "separate_region"]
