"""Curation clicks of the tracking tab: track one cell, link, unlink, pending clicks.

:class:`TrackingClicksMixin` is a mixin of :class:`~h4tracks.ui.tracking_tab.TrackingTab`:
it builds the tab's "Curate" box (the click-mode buttons, Cancel, the picked cells) and
holds the click modes and the verbs they lead to. Each verb builds a core action applied
through :meth:`H4TracksWidget.apply_action`, so it is one undo step of the shared history.
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from qtpy.QtWidgets import QGridLayout, QGroupBox, QLabel, QPushButton

from h4tracks.core.actions import Action, ActionGroup
from h4tracks.core.segmentation.label_edits import label_at
from h4tracks.core.tracking import add_links, link, track_single_cell, unlink
from h4tracks.errors import H4TracksError, InputError
from h4tracks.ui.click_modes import ClickModesMixin
from h4tracks.ui.hotkeys import mode_buttons, tooltip
from h4tracks.ui.params_form import _validation_message

if TYPE_CHECKING:
    from h4tracks.core.graph import NodeKey
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget

#: click modes (names of :data:`h4tracks.ui.hotkeys.HOTKEYS` actions) and their button text
CLICK_MODES = {
    "track_single_cell": "Track one cell",
    "link_cells": "Link",
    "unlink_cells": "Unlink",
}
_HINTS = {
    "track_single_cell": "click a cell: it is followed forward by mask overlap",
    "link_cells": "click the cell to link in each frame (step frames between clicks), then "
                  "Confirm",
    "unlink_cells": "click the first and the last cell of the piece of track to cut out, then "
                    "Confirm",
}


class TrackingClicksMixin(ClickModesMixin):
    """Click modes and curation verbs of the tracking tab (a mixin of its QWidget).

    Uses the tab's ``main``, ``viewer``, ``mode``, ``picked``, :meth:`params` (the Overlap
    parameters for single-cell tracking) and ``_labels_project``.
    """

    main: H4TracksWidget
    viewer: Any
    #: active click mode (a key of CLICK_MODES) or None
    mode: str | None
    #: cells clicked in link/unlink mode, (t, label), one per frame
    picked: list[NodeKey]

    def _build_curate_box(self) -> QGroupBox:
        """The "Curate" box: the click-mode buttons, Cancel and the picked cells."""
        grid = QGridLayout()
        self.mode_buttons: dict[str, QPushButton] = mode_buttons(
            CLICK_MODES, self.on_mode_key, grid, columns=len(CLICK_MODES))
        self.mode_buttons["track_single_cell"].setToolTip(tooltip(
            "track_single_cell", "Click a cell to follow it forward by mask overlap (Overlap "
            "parameters); S tracks the cell under the mouse at once"))
        self.cancel_click_btn = QPushButton("Cancel")
        self.cancel_click_btn.setToolTip(tooltip("cancel_click"))
        self.cancel_click_btn.setVisible(False)
        grid.addWidget(self.cancel_click_btn, 1, 2)
        self.picked_label = QLabel("")
        self.picked_label.setWordWrap(True)
        grid.addWidget(self.picked_label, 1, 0, 1, 2)
        curate_box = QGroupBox("Curate")
        curate_box.setLayout(grid)
        return curate_box

    # ------------------------------------------------------------------ click modes
    def on_mode_key(self, mode: str) -> None:
        """A mode button or key: start ``mode``; for an active link/unlink, confirm it;
        for active single-cell tracking, switch it off."""
        if self.mode == mode:
            if mode in ("link_cells", "unlink_cells"):
                self.confirm_pending()
            else:
                self.set_mode(None)
        else:
            self.set_mode(mode)

    def set_mode(self, mode: str | None) -> None:
        """Activate a click mode (a key of :data:`CLICK_MODES`) or none; pending clicks are
        dropped. Link/Unlink turn into Confirm while active."""
        self.mode = mode
        self.picked = []
        for m, btn in self.mode_buttons.items():
            btn.setChecked(m == mode)
            if m == mode and m != "track_single_cell":
                btn.setText(f"Confirm {CLICK_MODES[m].lower()}")
            else:
                btn.setText(CLICK_MODES[m])
        self.cancel_click_btn.setVisible(mode is not None)
        self.picked_label.setText("")
        if mode is None:
            return
        seg = self.main.segmentation_tab
        if seg.mode is not None:  # one click must not also remove/merge a cell
            seg.set_mode(None)
        layer = self.main.project_labels_layer()
        if layer is not None:
            layer.mode = "pan_zoom"  # a click must not paint
        self.main.status.setText(_HINTS[mode])

    def cancel_click(self) -> None:
        """Escape: drop a pending link/unlink; otherwise napari's own Escape (reset polygon)."""
        if self.mode is not None:
            self.set_mode(None)
            self.main.status.setText("cancelled")
            return
        layer = self.main.project_labels_layer()
        if layer is not None:
            try:  # the key binding replaced napari's on this layer; keep its behaviour
                from napari.layers.labels._labels_key_bindings import reset_polygon

                reset_polygon(layer)
            except Exception:  # napari internals may change; this fallback is optional
                pass

    def _on_mouse_press(self, viewer: Any, event: Any) -> None:
        # napari calls this for every press on the canvas; only act in a click mode
        position = None if self.mode is None else self.main.click_position(event)
        if position is None:
            return
        if self.main.segmentation_tab.mode is not None:
            self.set_mode(None)  # a segmentation mode was switched on since: it owns clicks
            return
        self.handle_click(*position)

    def _click(self, project: Project, t: int, y: float, x: float) -> bool:
        label = label_at(project, t, y, x)  # raises on background: nothing is recorded
        if self.mode == "track_single_cell":
            return self.track_cell(t, label)
        self._pick((t, label))
        return True

    def _pick(self, node: NodeKey) -> None:
        # one cell per frame: a second click in a frame corrects the first
        self.picked = sorted([p for p in self.picked if p[0] != node[0]] + [node])
        cells = ", ".join(f"{lab}@{t}" for t, lab in self.picked)
        verb = "link" if self.mode == "link_cells" else "cut"
        self.picked_label.setText(f"to {verb} (label@frame): {cells}")
        self.main.status.setText(f"cell {node[1]} in frame {node[0]} chosen; "
                                 + _HINTS[self.mode or "link_cells"])

    def confirm_pending(self) -> bool:
        """Apply the pending link (each consecutive pair of clicked cells) or unlink (first to
        last clicked cell) as one undo step. Returns whether the project changed."""
        mode, picked = self.mode, list(self.picked)
        if mode not in ("link_cells", "unlink_cells"):
            return False
        project = self._labels_project()
        if project is None:
            return False
        try:
            if mode == "link_cells":
                if len(picked) < 2:
                    raise InputError("click a cell in at least two frames to link them")
                parts = [link(project, a, b) for a, b in pairwise(picked)]
                action: Action = ActionGroup(parts, f"link {len(picked)} cells") \
                    if len(parts) > 1 else parts[0]
            else:
                if not picked:
                    raise InputError("click the first and the last cell of the piece to cut")
                action = unlink(project, picked[0], picked[-1])
        except H4TracksError as e:  # nothing applied; the clicks are kept to be corrected
            self.main.notify(str(e), error=True)
            return False
        if not self.main.apply_action(action):
            return False
        self.set_mode(None)
        return True

    # ------------------------------------------------------------------ single cell
    def track_cell(self, t: int, label: int) -> bool:
        """Follow cell ``label`` of frame ``t`` forward by mask overlap and add the links
        (one undo step). Uses the Overlap parameters of the tab."""
        project = self._labels_project()
        if project is None:
            return False
        try:
            params = self.params("overlap")
            edges = track_single_cell(project, project.graph, t, label, params)
            if not edges:
                raise InputError(f"cell {label} in frame {t} cannot be followed: it already "
                                 "has a successor, is in the last frame, or no cell of the "
                                 "next frame overlaps it enough")
            action = add_links(project, edges, f"track cell {label} from frame {t}")
        except ValidationError as e:
            self.main.notify(_validation_message(e), error=True)
            return False
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return False
        if not self.main.apply_action(action):
            return False
        self.main.status.setText(f"tracked cell {label} from frame {t}: {len(edges)} link(s) "
                                 f"to frame {edges[-1][1][0]}")
        return True

    def track_cell_under_mouse(self) -> bool:
        """Key S: track the cell under the mouse pointer; over background (or outside the
        canvas) switch the click mode on instead."""
        layer = self.main.project_labels_layer()
        project = self.main.project
        if layer is not None and project is not None and not self.main.busy:
            data = layer.world_to_data(self.viewer.cursor.position)
            t = self.main.current_frame()
            try:
                label = label_at(project, t, float(data[-2]), float(data[-1]))
            except H4TracksError:
                label = 0
            if label:
                return self.track_cell(t, label)
        self.on_mode_key("track_single_cell")
        return False
