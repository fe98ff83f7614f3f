"""Tracking tab: run a tracker, follow single cells, and curate the lineage.

A thin controller over :mod:`h4tracks.core.tracking`: the tracker runs in the main widget's
background worker (progress, Cancel); the curation verbs (single-cell tracking, link, unlink,
delete tracks) build core actions that are applied through
:meth:`H4TracksWidget.apply_action`, so each is one undo step of the shared history. The
parameter widgets are generated from the pydantic models
(:class:`~h4tracks.core.tracking.LapParams`, :class:`~h4tracks.core.tracking.OverlapParams`),
so bounds, defaults and help texts are written once, in the core.

The napari Tracks layer is a view of the graph kept by
:class:`~h4tracks.ui.tracks_view.TracksView`; it is refreshed once after every edit, undo and
redo (the main widget's ``edited`` signal).
"""

from __future__ import annotations

import time
import types
import typing
from collections.abc import Callable
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from h4tracks.core.actions import Action, ActionGroup
from h4tracks.core.runs import RunStep
from h4tracks.core.segmentation.curation import label_at
from h4tracks.core.tracking import (
    GlobalParams,
    LapParams,
    OverlapParams,
    add_links,
    compute_retracking,
    compute_tracking,
    delete_tracks,
    link,
    track_single_cell,
    unlink,
)
from h4tracks.errors import H4TracksError, InputError
from h4tracks.ui.hotkeys import mode_buttons, tooltip
from h4tracks.ui.tracks_view import TracksView, parse_track_ids

if TYPE_CHECKING:
    from h4tracks.core.graph import NodeKey
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget

#: tracking methods: name given to track_project -> (label, parameter model)
METHODS: dict[str, tuple[str, type[BaseModel]]] = {
    "lap": ("LAP (distance, gaps, divisions)", LapParams),
    "overlap": ("Overlap (mask overlap between frames)", OverlapParams),
    "global": ("Global (division-aware, motion-compensated)", GlobalParams),
}
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


# ---------------------------------------------------------------------------------- params
class ParamsForm(QWidget):
    """Editors for the fields of a pydantic parameter model, built from the model itself.

    ``float`` -> spin box (bounds from ``gt``/``ge``/``le``), ``float | None`` -> spin box
    whose minimum means None (shown as "auto"), ``int`` -> spin box, ``bool`` -> check box,
    ``Literal`` -> combo box. Labels are the fields' ``title``, tooltips their
    ``description``, both written in the core for the user.
    """

    def __init__(self, model: type[BaseModel]) -> None:
        super().__init__()
        self.model = model
        #: field name -> editor widget
        self.editors: dict[str, QWidget] = {}
        self._optional: set[str] = set()
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        # a long label goes above its editor instead of widening the panel
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        for name, field in model.model_fields.items():
            editor = self._editor(name, field)
            if editor is None:
                continue  # e.g. the global method's learnt weights: not typed in by hand
            editor.setToolTip(field.description or "")
            self.editors[name] = editor
            text = field.title or name.replace("_", " ").capitalize()
            if isinstance(editor, QCheckBox):
                editor.setText(text)
                form.addRow(editor)
            else:
                label = QLabel(text)
                label.setToolTip(field.description or "")
                form.addRow(label, editor)
        self.set_params(model())

    def setVisible(self, visible: bool) -> None:  # a Qt override
        # in the method stack only the shown form counts for the height: a short form
        # (LAP) does not keep the empty space of the longest one (global)
        super().setVisible(visible)
        policy = QSizePolicy.Policy.Preferred if visible else QSizePolicy.Policy.Ignored
        self.setSizePolicy(QSizePolicy.Policy.Preferred, policy)
        self.updateGeometry()

    def _editor(self, name: str, field: Any) -> QWidget | None:
        ann = field.annotation
        args = typing.get_args(ann)
        if typing.get_origin(ann) in (typing.Union, types.UnionType) and type(None) in args:
            ann = next(a for a in args if a is not type(None))
            if typing.get_origin(ann) in (dict, list) or ann in (dict, list):
                return None
            self._optional.add(name)
        if typing.get_origin(ann) is Literal:
            combo = QComboBox()
            for v in typing.get_args(ann):
                combo.addItem(str(v), v)
            return combo
        if ann is bool:
            return QCheckBox()
        lo, hi, strict = 0.0, 1e6, False
        for m in field.metadata:  # annotated_types.Gt / Ge / Le / Lt
            if getattr(m, "gt", None) is not None:
                lo, strict = float(m.gt), True
            if getattr(m, "ge", None) is not None:
                lo = float(m.ge)
            for attr in ("le", "lt"):
                if getattr(m, attr, None) is not None:
                    hi = float(getattr(m, attr))
        if ann is int:
            box = QSpinBox()
            box.setRange(int(lo) + int(strict), int(min(hi, 1e6)))
            return box
        box = QDoubleSpinBox()
        box.setDecimals(2)
        step = 0.05 if hi <= 1 else (1.0 if (field.default or 0) >= 1 else 0.1)
        box.setSingleStep(step)
        # a strict lower bound (gt=0) is reachable only as "None" when the field is optional
        lowest = lo if name in self._optional or not strict else lo + 0.01
        box.setRange(lowest, hi)
        if name in self._optional:
            # the minimum means None: the tracker chooses (the tooltip says how)
            box.setSpecialValueText("auto")
        return box

    def values(self) -> dict[str, Any]:
        """The entered values (unvalidated), by field name."""
        out: dict[str, Any] = {}
        for name, w in self.editors.items():
            if isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, QComboBox):
                out[name] = w.currentData()
            elif name in self._optional and w.value() == w.minimum():
                out[name] = None
            else:
                out[name] = w.value()
        return out

    def params(self) -> BaseModel:
        """The entered parameters as a validated model (pydantic ``ValidationError`` if not)."""
        return self.model.model_validate(self.values())

    def set_params(self, params: BaseModel) -> None:
        """Show ``params`` in the editors."""
        for name, w in self.editors.items():
            v = getattr(params, name)
            if isinstance(w, QCheckBox):
                w.setChecked(bool(v))
            elif isinstance(w, QComboBox):
                w.setCurrentIndex(max(w.findData(v), 0))
            else:
                w.setValue(w.minimum() if v is None else v)


def _validation_message(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "parameters"
    return f"invalid {where.replace('_', ' ')}: {err['msg']}"


# ---------------------------------------------------------------------------------- tab
class TrackingTab(QWidget):
    """Tracker choice and parameters, Run, single-cell tracking, link/unlink, track filter."""

    def __init__(self, main: H4TracksWidget) -> None:
        super().__init__()
        self.main = main
        self.viewer = main.viewer
        #: keeps the Tracks layer equal to the project's graph
        self.view = TracksView(main)
        #: active click mode (a key of CLICK_MODES) or None
        self.mode: str | None = None
        #: cells clicked in link/unlink mode, (t, label), one per frame
        self.picked: list[NodeKey] = []
        #: asks a yes/no question (replaced in tests); returns whether the answer is yes
        self.confirm: Callable[[str, str], bool] = self._ask
        self._project: Project | None = None

        # -- method and parameters ----------------------------------------------------------
        self.method_combo = QComboBox()
        self.forms: dict[str, ParamsForm] = {}
        self.params_stack = QStackedWidget()
        for key, (label, model) in METHODS.items():
            self.method_combo.addItem(label, key)
            self.forms[key] = ParamsForm(model)
            self.params_stack.addWidget(self.forms[key])
        self.method_combo.setToolTip("LAP links each cell to the nearest cell of the next "
                                     "frame (can bridge missing frames and find divisions). "
                                     "Overlap links cells whose masks overlap. Global chooses "
                                     "all links and divisions of the movie together (best for "
                                     "crowded, dividing cells; slower)")
        # long method names are elided rather than widening the panel
        self.method_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.method_combo.setMinimumContentsLength(16)
        self.run_btn = QPushButton("Run tracking")
        self.run_btn.setToolTip("Track every cell of the movie in the background; replaces the "
                                "project's tracks (one undo step)")
        self.retrack_btn = QPushButton("Re-track using my corrections")
        self.retrack_btn.setToolTip(
            "Learn from the links in your curated frames (at least 2 consecutive ones) and "
            "re-track the rest of the movie with the global method, keeping your links")
        self.report = QLabel("")
        self.report.setWordWrap(True)
        method_box = QGroupBox("Tracker")
        form = QFormLayout(method_box)
        form.addRow("Method", self.method_combo)
        form.addRow(self.params_stack)
        form.addRow(self.run_btn)
        form.addRow(self.retrack_btn)
        form.addRow(self.report)

        # -- curation -----------------------------------------------------------------------
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

        # -- filter / delete ------------------------------------------------------------
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("track ids, e.g. 3, 7, 12-15")
        self.filter_edit.setToolTip("Track numbers as shown in the Tracks layer, separated by "
                                    "commas; A-B is a range")
        self.show_btn = QPushButton("Show")
        self.show_btn.setToolTip("Show only these tracks in the Tracks layer (the project is "
                                 "not changed)")
        self.show_all_btn = QPushButton("Show all")
        self.show_all_btn.setToolTip("Show every track again")
        self.delete_listed_btn = QPushButton("Delete listed")
        self.delete_listed_btn.setToolTip("Remove all links of the tracks entered above (cells "
                                          "stay; undoable)")
        self.delete_displayed_btn = QPushButton("Delete displayed")
        self.delete_displayed_btn.setToolTip("Remove all links of the tracks the Tracks layer "
                                             "shows (cells stay; undoable)")
        self.filter_info = QLabel("showing all tracks")
        filter_box = QGroupBox("Tracks")
        fgrid = QGridLayout(filter_box)
        fgrid.addWidget(self.filter_edit, 0, 0, 1, 2)
        fgrid.addWidget(self.show_btn, 1, 0)
        fgrid.addWidget(self.show_all_btn, 1, 1)
        fgrid.addWidget(self.delete_listed_btn, 2, 0)
        fgrid.addWidget(self.delete_displayed_btn, 2, 1)
        fgrid.addWidget(self.filter_info, 3, 0, 1, 2)

        layout = QVBoxLayout(self)
        layout.addWidget(method_box)
        layout.addWidget(curate_box)
        layout.addWidget(filter_box)
        layout.addStretch(1)

        self.method_combo.currentIndexChanged.connect(self.params_stack.setCurrentIndex)
        self.retrack_btn.clicked.connect(lambda: self.retrack_with_corrections())
        self.run_btn.clicked.connect(lambda: self.run_tracking())
        self.cancel_click_btn.clicked.connect(lambda: self.set_mode(None))
        self.filter_edit.returnPressed.connect(lambda: self.show_listed())
        self.show_btn.clicked.connect(lambda: self.show_listed())
        self.show_all_btn.clicked.connect(lambda: self.show_all())
        self.delete_listed_btn.clicked.connect(lambda: self.delete_listed())
        self.delete_displayed_btn.clicked.connect(lambda: self.delete_displayed())
        self.viewer.mouse_drag_callbacks.append(self._on_mouse_press)
        main.edited.connect(self._on_edited)
        main.project_changed.connect(self._on_project_changed)

    # ------------------------------------------------------------------ hotkeys
    def hotkey_handlers(self) -> dict[str, Callable[[], Any]]:
        """Handlers of this tab's keys (bound by the main widget from the hotkey table)."""
        return {
            "track_single_cell": self.track_cell_under_mouse,
            "link_cells": lambda: self.on_mode_key("link_cells"),
            "unlink_cells": lambda: self.on_mode_key("unlink_cells"),
            "cancel_click": self.cancel_click,
        }

    # ------------------------------------------------------------------ state
    def _on_project_changed(self, project: Project | None) -> None:
        if project is not None and project is not self._project:
            # ids and clicks of another project mean nothing here
            self._project = project
            self.set_mode(None)
            self.view.filter = None
            self.filter_info.setText("showing all tracks")

    def _on_edited(self) -> None:
        # every edit, undo and redo (any tab) may change the graph: redraw the tracks once
        self.view.refresh()
        self._update_filter_info()

    def _update_filter_info(self) -> None:
        if self.view.filter is None:
            self.filter_info.setText("showing all tracks")
        else:
            n = len(self.view.displayed_track_ids())
            self.filter_info.setText(f"showing {n} of the {len(self.view.filter)} listed "
                                     "track(s)")

    def _labels_project(self) -> Project | None:
        """The current project if it has labels to track, else None after saying why."""
        return self.main.labels_project("track")

    # ------------------------------------------------------------------ run
    def params(self, method: str | None = None) -> BaseModel:
        """The entered parameters of ``method`` (default: the chosen one), validated."""
        return self.forms[method or self.method_combo.currentData()].params()

    def run_tracking(self) -> Any:
        """Track the whole movie with the chosen method in the background.

        The result is applied as one undo step (lineage, provenance, the automatic
        snapshot's links), see :class:`h4tracks.core.runs.RunStep`.

        Returns
        -------
        The worker, or None if the input was refused.
        """
        project = self._labels_project()
        if project is None:
            return None
        method = self.method_combo.currentData()
        try:
            params = self.params(method)
        except ValidationError as e:
            self.main.notify(_validation_message(e), error=True)
            return None
        self.set_mode(None)
        cores = self.main.cores
        layer = self.main.project_labels_layer()
        layer.editable = False  # the worker reads the labels: no painting meanwhile
        self.report.setText("")

        def work(report: Callable[[int, int], None], cancel: Callable[[], bool]) -> tuple:
            t0 = time.perf_counter()
            step = compute_tracking(project, method, params, report, cancel, cores=cores)
            return step, time.perf_counter() - t0

        def done(result: tuple[RunStep, float]) -> None:
            step, seconds = result
            graph = step.new_graph
            assert graph is not None
            self.report.setText(
                f"{METHODS[method][0].split(' (')[0]}: {graph.track_ids().size} tracks, "
                f"{graph.n_edges} links, {graph.n_divisions} divisions in {seconds:.1f} s")
            if self.main.apply_run(step, project):
                self.main.notify(f"tracked {len(graph)} cells ({method})")

        def failed(exc: BaseException) -> None:
            self.report.setText("tracking cancelled: the tracks are unchanged"
                                if "cancelled" in str(exc) else f"tracking failed: {exc}")

        return self.main.run_in_worker(work, text=f"tracking ({method})…", done=done,
                                       cancellable=True, failed=failed,
                                       finally_=lambda: setattr(layer, "editable", True))

    def retrack_with_corrections(self) -> Any:
        """Learn the global method's costs from the curated frames and re-track the rest
        (curated links stay). Returns the worker, or None if the input was refused."""
        project = self._labels_project()
        if project is None:
            return None
        try:
            params = self.params("global")
        except ValidationError as e:
            self.main.notify(_validation_message(e), error=True)
            return None
        curated = sorted(project.curated_frames)
        if len(curated) < 2:
            self.main.notify("curate at least 2 consecutive frames (edit them or mark them "
                             "curated) before re-tracking with your corrections", error=True)
            return None
        self.set_mode(None)

        def work(report: Callable[[int, int], None]) -> tuple:
            t0 = time.perf_counter()
            step, _weights = compute_retracking(project, curated, params)
            return step, time.perf_counter() - t0

        def done(result: tuple[RunStep, float]) -> None:
            step, seconds = result
            graph = step.new_graph
            assert graph is not None
            if self.main.apply_run(step, project):
                self.report.setText(
                    f"re-tracked with corrections from {len(curated)} curated frames: "
                    f"{graph.track_ids().size} tracks, {graph.n_edges} links, "
                    f"{graph.n_divisions} divisions in {seconds:.1f} s")

        return self.main.run_in_worker(work, text="re-tracking with your corrections…",
                                       done=done)

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
        if self.mode is None or event.type != "mouse_press" or event.button != 1:
            return
        if self.main.segmentation_tab.mode is not None:
            self.set_mode(None)  # a segmentation mode was switched on since: it owns clicks
            return
        layer = self.main.project_labels_layer()
        if layer is None:
            return
        data = layer.world_to_data(event.position)
        self.handle_click(float(data[-2]), float(data[-1]))

    def handle_click(self, y: float, x: float, t: int | None = None) -> bool:
        """Apply the active click mode at data pixel ``(y, x)`` of frame ``t`` (default: the
        current frame). Returns whether a cell was edited or recorded."""
        if self.mode is None:
            return False
        project = self._labels_project()
        if project is None:
            return False
        t = self.main.current_frame() if t is None else int(t)
        try:
            label = label_at(project, t, y, x)
        except H4TracksError as e:  # a click on background: nothing is recorded
            self.main.notify(str(e), error=True)
            return False
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

    # ------------------------------------------------------------------ filter / delete
    def _listed_ids(self) -> list[int] | None:
        try:
            return parse_track_ids(self.filter_edit.text())
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return None

    def show_listed(self) -> bool:
        """Show only the tracks entered in the filter field (a view; the graph is unchanged)."""
        ids = self._listed_ids()
        if ids is None or self.main.project is None:
            return False
        known = set(self.main.project.graph.track_ids().tolist())
        if not known.intersection(ids):
            self.main.notify("none of the listed tracks exists", error=True)
            return False
        self.view.set_filter(ids)
        self._update_filter_info()
        return True

    def show_all(self) -> None:
        """Show every track again."""
        self.view.set_filter(None)
        self._update_filter_info()

    def delete_listed(self) -> bool:
        """Delete (unlink) the tracks entered in the filter field, after confirmation."""
        ids = self._listed_ids()
        return ids is not None and self._delete(ids)

    def delete_displayed(self) -> bool:
        """Delete (unlink) the tracks the Tracks layer shows, after confirmation."""
        return self._delete(self.view.displayed_track_ids())

    def _delete(self, ids: list[int]) -> bool:
        project = self._labels_project()
        if project is None:
            return False
        try:
            action = delete_tracks(project, ids)
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return False
        shown = ", ".join(map(str, ids[:10])) + (" …" if len(ids) > 10 else "")
        n_links = len(action) if isinstance(action, ActionGroup) else 1
        if not self.confirm("Delete tracks", f"Remove the {n_links} link(s) of {len(ids)} "
                            f"track(s) ({shown})? The cells stay; Undo restores the links."):
            return False
        return self.main.apply_action(action)

    def _ask(self, title: str, text: str) -> bool:
        return QMessageBox.question(self, title, text) == QMessageBox.StandardButton.Yes
