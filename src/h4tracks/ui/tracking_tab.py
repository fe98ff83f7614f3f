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

The tab is assembled from parts: the parameter form (:mod:`h4tracks.ui.tracking_params`),
the curation clicks (:mod:`h4tracks.ui.tracking_clicks`) and the track list
(:mod:`h4tracks.ui.tracking_list`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from h4tracks.core.runs import RunStep
from h4tracks.core.tracking import (
    GlobalParams,
    LapParams,
    OverlapParams,
    compute_retracking,
    compute_tracking,
)
from h4tracks.ui.params_form import ParamsForm, _validation_message
from h4tracks.ui.tracking_clicks import CLICK_MODES as CLICK_MODES
from h4tracks.ui.tracking_clicks import TrackingClicksMixin
from h4tracks.ui.tracking_list import TrackListMixin
from h4tracks.ui.tracks_view import TracksView

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


# ---------------------------------------------------------------------------------- tab
class TrackingTab(TrackingClicksMixin, TrackListMixin, QWidget):
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
        curate_box = self._build_curate_box()

        # -- filter / delete ------------------------------------------------------------
        filter_box = self._build_tracks_box()
        self.lineage_btn = QPushButton("Lineage tree")
        self.lineage_btn.setToolTip("Show every lineage as a tree below the viewer: click a "
                                    "cell to go to it; link, cut and delete tracks there")

        layout = QVBoxLayout(self)
        layout.addWidget(method_box)
        layout.addWidget(curate_box)
        layout.addWidget(self.lineage_btn)
        layout.addWidget(filter_box)
        layout.addWidget(self._build_export_box())
        layout.addStretch(1)

        self.method_combo.currentIndexChanged.connect(self.params_stack.setCurrentIndex)
        self.retrack_btn.clicked.connect(lambda: self.retrack_with_corrections())
        self.run_btn.clicked.connect(lambda: self.run_tracking())
        self.lineage_btn.clicked.connect(lambda: self.main.show_lineage_view())
        self.cancel_click_btn.clicked.connect(lambda: self.set_mode(None))
        self.filter_edit.returnPressed.connect(lambda: self.show_listed())
        self.show_btn.clicked.connect(lambda: self.show_listed())
        self.show_all_btn.clicked.connect(lambda: self.show_all())
        self.delete_listed_btn.clicked.connect(lambda: self.delete_listed())
        self.delete_displayed_btn.clicked.connect(lambda: self.delete_displayed())
        self.viewer.mouse_drag_callbacks.append(self._on_mouse_press)
        main.edited.connect(self._on_edited)
        main.project_changed.connect(self._on_project_changed)

    def _build_export_box(self) -> QGroupBox:
        """*Export tracks*: where the tracks were made and curated, the exports of the
        Data tab (CTC, GEFF) and the Analysis tab (per-cell CSV), the very same handlers."""
        main = self.main
        self.export_ctc_btn = QPushButton("CTC…")
        self.export_ctc_btn.setToolTip(main.data_tab.export_ctc_btn.toolTip())
        self.export_geff_btn = QPushButton("GEFF…")
        self.export_geff_btn.setToolTip(main.data_tab.export_geff_btn.toolTip())
        self.export_cells_btn = QPushButton("Cells (CSV)…")
        self.export_cells_btn.setToolTip(
            "One row per cell per frame: frame, time, label, track, position and area (the "
            "Analysis tab's separator and decimal mark)")
        box = QGroupBox("Export tracks")
        row = QHBoxLayout(box)
        for b in (self.export_ctc_btn, self.export_geff_btn, self.export_cells_btn):
            row.addWidget(b)
        self.export_ctc_btn.clicked.connect(lambda: main.data_tab.ask_export_ctc())
        self.export_geff_btn.clicked.connect(lambda: main.data_tab.ask_export_geff())
        # the Analysis tab is built after this one: looked up at the click
        self.export_cells_btn.clicked.connect(lambda: main.analysis_tab.export_cells_csv())
        return box

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
