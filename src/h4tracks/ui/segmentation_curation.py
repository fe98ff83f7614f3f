"""Curation verbs of the segmentation tab: click modes, next free ID, relabel, curated.

:class:`CurationPanelMixin` is a mixin of
:class:`~h4tracks.ui.segmentation_tab.SegmentationTab`: it builds the "Curate" box and holds
the verbs. Click modes (remove, merge, separate, select ID) listen to mouse presses on the
viewer and act on the project's labels layer at the clicked pixel of the current frame; every
edit is a core action applied through :meth:`H4TracksWidget.apply_action`, so it is undoable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QGridLayout, QGroupBox, QPushButton

from h4tracks.core.segmentation import label_edits as curation
from h4tracks.errors import H4TracksError
from h4tracks.ui.click_modes import ClickModesMixin
from h4tracks.ui.hotkeys import mode_buttons, tooltip

if TYPE_CHECKING:
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget

#: click modes (names of :data:`h4tracks.ui.hotkeys.HOTKEYS` actions) and their buttons
CLICK_MODES = {
    "remove_cell": "Remove cell",
    "merge_cells": "Merge",
    "separate_region": "Separate",
    "select_id": "Select ID",
}


class CurationPanelMixin(ClickModesMixin):
    """Curation tools of the segmentation tab (a mixin of its QWidget).

    Uses the tab's ``main``, ``mode``, ``_merge_first`` and ``_on_frame_changed``.
    """

    main: H4TracksWidget
    #: active click mode (a key of CLICK_MODES) or None
    mode: str | None
    _merge_first: tuple[int, float, float] | None

    def _build_curate_box(self) -> QGroupBox:
        """The "Curate" box: click-mode buttons, Next free ID, Relabel frame, curated."""
        grid = QGridLayout()
        self.mode_buttons: dict[str, QPushButton] = mode_buttons(
            CLICK_MODES, self.toggle_mode, grid, columns=2)
        self.next_id_btn = QPushButton("Next free ID")
        self.next_id_btn.setToolTip(tooltip("next_free_id"))
        self.relabel_btn = QPushButton("Relabel frame")
        self.relabel_btn.setToolTip(tooltip("relabel_frame"))
        grid.addWidget(self.next_id_btn, 2, 0)
        grid.addWidget(self.relabel_btn, 2, 1)
        self.curated_btn = QPushButton("Frame is curated")
        self.curated_btn.setCheckable(True)
        self.curated_btn.setToolTip("Mark / unmark the current frame as curated (undoable). "
                                    "Any edit marks its frame; training uses curated frames "
                                    "and re-segmentation keeps them")
        grid.addWidget(self.curated_btn, 3, 0, 1, 2)
        curate_box = QGroupBox("Curate")
        curate_box.setLayout(grid)
        return curate_box

    # ------------------------------------------------------------------ curation
    def _labels_project(self) -> Project | None:
        """The current project if it has labels to curate, else None after saying why."""
        return self.main.labels_project("curate")

    def toggle_mode(self, mode: str) -> None:
        """Switch click mode ``mode`` on, or off when it is already on."""
        self.set_mode(None if self.mode == mode else mode)

    def set_mode(self, mode: str | None) -> None:
        """Activate a click mode (a key of :data:`CLICK_MODES`) or none.

        While a mode is on, the labels layer is put in pan/zoom mode so a click does not
        also paint.
        """
        self._merge_first = None
        self.mode = mode
        for m, btn in self.mode_buttons.items():
            btn.setChecked(m == mode)
        if mode is None:
            return
        layer = self.main.project_labels_layer()
        if layer is not None:
            layer.mode = "pan_zoom"
        hint = {"merge_cells": "click the cell to keep, then the cell to merge into it",
                "separate_region": "click a detached piece of a cell to give it a new ID",
                "remove_cell": "click a cell to remove it",
                "select_id": "click a cell to paint with its ID"}[mode]
        self.main.status.setText(hint)

    def _on_mouse_press(self, viewer: Any, event: Any) -> None:
        # napari calls this for every press on the canvas; only act in a click mode
        position = None if self.mode is None else self.main.click_position(event)
        if position is not None:
            self.handle_click(*position)

    def _click(self, project: Project, t: int, y: float, x: float) -> bool:
        if self.mode == "remove_cell":
            return self.main.apply_action(curation.remove_cell(project, t, y, x))
        if self.mode == "merge_cells":
            if self._merge_first is None or self._merge_first[0] != t:
                label = curation.label_at(project, t, y, x)
                self._merge_first = (t, y, x)
                self.main.status.setText(f"cell {label} chosen: click the cell to merge "
                                         "into it")
                return False
            _, y0, x0 = self._merge_first
            self._merge_first = None
            return self.main.apply_action(curation.merge_cells(project, t, (y0, x0), (y, x)))
        if self.mode == "separate_region":
            return self._separate(project, t, y, x)
        if self.mode == "select_id":
            label = curation.label_at(project, t, y, x)
            self.main.project_labels_layer().selected_label = label
            self.main.status.setText(f"painting with ID {label}")
            return True
        return False

    def _separate(self, project: Project, t: int, y: float, x: float) -> bool:
        from skimage.measure import label as connected

        label = curation.label_at(project, t, y, x)
        # the clicked piece of the cell (4-connected, as relabel_unique counts pieces)
        pieces = connected(project.labels.frame(t) == label, connectivity=1)
        piece = pieces == pieces[round(y), round(x)]
        if int(pieces.max()) < 2:
            raise H4TracksError(f"cell {label} is one piece: cut it first (erase a line "
                                "through it), then click the part to separate")
        return self.main.apply_action(curation.separate_region(project, t, piece))

    def next_free_id(self) -> int | None:
        """Select the next free label ID of the current frame and switch to painting, so
        that painting creates a new cell. Returns the ID."""
        project = self._labels_project()
        if project is None:
            return None
        try:
            label = curation.next_free_label(project, self.main.current_frame())
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return None
        self.set_mode(None)
        layer = self.main.project_labels_layer()
        layer.selected_label = label
        layer.mode = "paint"
        self.main.status.setText(f"painting a new cell with ID {label}")
        return label

    def relabel_frame(self) -> bool:
        """Give every detached piece of a label in the current frame its own ID (undoable)."""
        project = self._labels_project()
        if project is None:
            return False
        try:
            action = curation.relabel_unique(project, self.main.current_frame())
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return False
        return self.main.apply_action(action)

    def mark_curated(self, curated: bool = True) -> bool:
        """Mark (or unmark) the current frame as curated, as an undoable action."""
        from h4tracks.core.actions import MarkCurated

        project = self.main.project
        if project is None:
            self.main.notify("load or create a project first", error=True)
            self._on_frame_changed()
            return False
        ok = self.main.apply_action(MarkCurated([self.main.current_frame()], curated))
        self._on_frame_changed()
        return ok
