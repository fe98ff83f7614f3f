"""The h4tracks dock widget: project header (load/save, layer choice, compute mode) + tabs.

This is a thin controller: every computation and all file handling is in ``h4tracks.core``.
Long work (saving, importing, segmenting) runs in a napari ``thread_worker``; Qt is only
touched from the worker's signals, which napari delivers on the main thread. Work started with
``cancellable=True`` gets a ``cancel()`` callable (a ``threading.Event``'s ``is_set``) that the
header's Cancel button sets.

Every change of the project goes through the one :class:`~h4tracks.core.session.Session` the
widget holds for the current project: curation verbs through :meth:`H4TracksWidget.apply_action`,
run results through :meth:`H4TracksWidget.apply_run` (computed in a worker, applied here on the
main thread), and brush / fill / polygon strokes painted in the labels layer, which napari
reports with its ``paint`` event and the session records. Ctrl+Z / Ctrl+Shift+Z, napari's undo
keys on the labels layer and the Undo / Redo buttons all drive that one history.

Split along its seams: :mod:`h4tracks.ui.project_layers` keeps combos, project and layers in
step (and records paint strokes), :mod:`h4tracks.ui.safety` makes sure no way out loses work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import napari
from napari.qt.threading import thread_worker
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from h4tracks.core.actions import Action, History
from h4tracks.core.compute import MODES, available_cores, core_budget
from h4tracks.core.outputs import describe_unexpected
from h4tracks.core.project import Project
from h4tracks.core.session import Session
from h4tracks.core.store import save_project
from h4tracks.errors import H4TracksError
from h4tracks.ui.analysis_tab import AnalysisTab
from h4tracks.ui.data_tab import DataTab
from h4tracks.ui.evaluation_tab import EvaluationTab
from h4tracks.ui.hotkeys import bind_hotkeys, tooltip
from h4tracks.ui.lineage_view import LineageView
from h4tracks.ui.project_layers import ProjectLayersMixin
from h4tracks.ui.safety import SafetyMixin
from h4tracks.ui.segmentation_tab import SegmentationTab
from h4tracks.ui.tracking_tab import TrackingTab
from h4tracks.ui.widgets import LayerCombo, worker_generator

logger = logging.getLogger(__name__)


class H4TracksWidget(ProjectLayersMixin, SafetyMixin, QWidget):
    """Main h4tracks dock widget."""

    #: emitted with the current project whenever it changes (load, save, import, new)
    project_changed = Signal(object)
    #: emitted after every edit of the project's labels/graph (do, undo, redo, segmentation)
    edited = Signal()

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        from napari.layers import Image, Labels, Tracks

        self.viewer = napari_viewer
        #: the session of the current project (its one undo history); None without a project
        self.session: Session | None = None
        self._no_history = History()
        self._painted_layers: set[int] = set()
        self._quiet = 0  # > 0 while the widget itself changes layers and combos
        self._worker: Any = None
        self._cancel_event: threading.Event | None = None
        self._hotkey_handlers: dict[str, Callable[[], Any]] = {}

        self.load_btn = QPushButton("Load")
        self.load_btn.setToolTip("Open an h4tracks project (.zarr)")
        self.save_btn = QPushButton("Save")
        self.save_btn.setToolTip("Save the project (only what changed is written)")
        self.save_as_btn = QPushButton("Save as")
        self.save_as_btn.setToolTip("Save the chosen layers as a new h4tracks project")
        self.undo_btn = QPushButton("Undo")
        self.undo_btn.setToolTip(tooltip("undo"))
        self.redo_btn = QPushButton("Redo")
        self.redo_btn.setToolTip(tooltip("redo"))
        buttons = QHBoxLayout()
        for b in (self.load_btn, self.save_btn, self.save_as_btn, self.undo_btn, self.redo_btn):
            buttons.addWidget(b)

        self.image_combo = LayerCombo(napari_viewer, Image, optional=False)
        self.labels_combo = LayerCombo(napari_viewer, Labels)
        self.tracks_combo = LayerCombo(napari_viewer, Tracks)
        self.compute_combo = QComboBox()
        n = available_cores()
        for mode in MODES:
            self.compute_combo.addItem(f"{mode[:-1]} % of cores ({core_budget(mode)} of {n})",
                                       mode)
        self.compute_combo.setToolTip("How many CPU cores heavy work (segmentation, tracking) "
                                      "may use")
        form = QFormLayout()
        form.addRow("Image", self.image_combo)
        form.addRow("Segmentation", self.labels_combo)
        form.addRow("Tracks", self.tracks_combo)
        form.addRow("Compute", self.compute_combo)

        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop the running job (finished frames are kept)")
        self.cancel_btn.setVisible(False)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_btn)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        self.tabs = QTabWidget()
        self.data_tab = DataTab(self)
        self.tabs.addTab(self.data_tab, "Data")
        self.segmentation_tab = SegmentationTab(self)
        self.tabs.addTab(self.segmentation_tab, "Segmentation")
        self.tracking_tab = TrackingTab(self)
        self.tabs.addTab(self.tracking_tab, "Tracking")
        #: the Tracks layer view shared by the tabs (filter, lasso selection)
        self.tracks_view = self.tracking_tab.view
        self.analysis_tab = AnalysisTab(self)
        self.tabs.addTab(self.analysis_tab, "Analysis")
        self.evaluation_tab = EvaluationTab(self)
        self.tabs.addTab(self.evaluation_tab, "Evaluation")

        # the tabs scroll: the widget fits a 1366x768 laptop screen whatever the tab
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.tabs)
        self.scroll.setMinimumHeight(200)
        # wrapped labels in a narrow dock need height-for-width, or Qt clips them
        policy = self.tabs.sizePolicy()
        policy.setHeightForWidth(True)
        self.tabs.setSizePolicy(policy)
        # a short tab must not scroll as far as the tallest one: only the shown page counts
        self.tabs.currentChanged.connect(self._fit_tab)
        self._fit_tab(self.tabs.currentIndex())
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addLayout(form)
        layout.addLayout(progress_row)
        layout.addWidget(self.status)
        layout.addWidget(self.scroll, 1)

        self.load_btn.clicked.connect(self._on_load_clicked)
        self.save_btn.clicked.connect(lambda: self.save())
        self.save_as_btn.clicked.connect(self._on_save_as_clicked)
        self.undo_btn.clicked.connect(lambda: self.undo())
        self.redo_btn.clicked.connect(lambda: self.redo())
        self.cancel_btn.clicked.connect(self.cancel_worker)
        self.labels_combo.currentTextChanged.connect(lambda _t: self._bind_layer_hotkeys())
        self.project_changed.connect(lambda _p: self._bind_layer_hotkeys())
        self.register_hotkeys({"undo": self.undo, "redo": self.redo})
        self.register_hotkeys(self.segmentation_tab.hotkey_handlers())
        self.register_hotkeys(self.tracking_tab.hotkey_handlers())
        for combo in (self.image_combo, self.labels_combo, self.tracks_combo):
            combo.currentTextChanged.connect(self._on_layer_choice)
        layers_events = napari_viewer.layers.events
        layers_events.inserted.connect(self._on_layer_inserted)
        layers_events.removed.connect(self._refresh_combos)
        layers_events.moved.connect(self._refresh_combos)
        for layer in napari_viewer.layers:
            layer.events.name.connect(self._refresh_combos)
        self._adopt_existing_layers()
        self._update_undo_buttons()
        #: asks what to do with unsaved work: returns "save", "discard" or "cancel"
        self.ask_unsaved: Callable[[Project], str] = self._ask_unsaved
        #: asks whether to restore a recovery copy (project, time written) -> bool
        self.ask_restore: Callable[[Project, Any], bool] = self._ask_restore
        self._init_safety()

    def _fit_tab(self, index: int) -> None:
        from qtpy.QtWidgets import QSizePolicy

        for i in range(self.tabs.count()):
            page = self.tabs.widget(i)
            vertical = (QSizePolicy.Policy.Preferred if i == index
                        else QSizePolicy.Policy.Ignored)
            page.setSizePolicy(QSizePolicy.Policy.Preferred, vertical)
        self.tabs.updateGeometry()

    # ------------------------------------------------------------------ properties
    @property
    def project(self) -> Project | None:
        """The current project (the one the chosen layers show, or were last built into)."""
        return None if self.session is None else self.session.project

    @project.setter
    def project(self, project: Project | None) -> None:
        if project is not self.project:
            # each project has its own session: steps built on one never touch another
            self.session = None if project is None else Session(project)
            self._discarded = False
            self._update_undo_buttons()

    @property
    def history(self) -> History:
        """The current session's undo/redo history (an empty one without a project)."""
        return self._no_history if self.session is None else self.session.history

    @property
    def cores(self) -> int:
        """The core budget chosen in the header."""
        return core_budget(self.compute_combo.currentData())

    def current_frame(self) -> int:
        """The frame shown in the viewer (what a click or a frame button acts on)."""
        step = self.viewer.dims.current_step
        return int(step[0]) if len(step) else 0

    @property
    def busy(self) -> bool:
        """Whether background work (save/import) is running."""
        return self._worker is not None

    # ------------------------------------------------------------------ feedback
    def notify(self, message: str, *, error: bool = False) -> None:
        """Show a message in the widget and in napari's notification area."""
        self.status.setText(message)
        if error:
            napari.utils.notifications.show_error(message)
        else:
            napari.utils.notifications.show_info(message)

    def _set_busy(self, worker: Any | None, text: str = "", cancellable: bool = False) -> None:
        self._worker = worker
        for w in (self.load_btn, self.save_btn, self.save_as_btn, self.data_tab,
                  self.segmentation_tab, self.tracking_tab, self.analysis_tab,
                  self.evaluation_tab):
            w.setEnabled(worker is None)
        self.progress.setVisible(worker is not None)
        self.progress.setRange(0, 0)
        self.cancel_btn.setVisible(worker is not None and cancellable)
        self.cancel_btn.setEnabled(True)
        if worker is None:
            self._cancel_event = None
        self._update_undo_buttons()
        if text:
            self.status.setText(text)

    def run_in_worker(
        self, fn: Callable[..., Any], *, text: str, done: Callable[[Any], None],
        progress_total: int | None = None, cancellable: bool = False,
        failed: Callable[[BaseException], None] | None = None,
        finally_: Callable[[], None] | None = None,
    ) -> Any:
        """Run ``fn`` in a background thread.

        Parameters
        ----------
        fn
            ``fn(report)``, or ``fn(report, cancel)`` when ``cancellable``: ``report(done,
            total)`` updates the progress bar, ``cancel()`` tells whether the user pressed
            Cancel (check it between steps). Must not touch Qt.
        text
            Status text while it runs.
        done
            ``done(result)``, called on the main thread when ``fn`` returns.
        cancellable
            Show the Cancel button while it runs.
        failed
            ``failed(exc)``, called on the main thread after the error was shown.
        finally_
            Called on the main thread when the job ends, whatever the outcome (clean-up such
            as re-enabling buttons). Connected before the job starts: a job that finishes
            at once cannot outrun it.

        Returns
        -------
        The started napari worker.
        """
        args: tuple = ()
        if cancellable:
            self._cancel_event = threading.Event()
            args = (self._cancel_event.is_set,)

        # errors are reported by _on_error (connected below), not re-raised in the event loop
        @thread_worker(ignore_errors=True)
        def job():
            result = yield from worker_generator(fn, *args)
            return result

        worker = job()
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(done)
        worker.errored.connect(lambda exc: self._on_error(exc, text))
        if failed is not None:
            worker.errored.connect(failed)
        def ended() -> None:
            # one slot, clean-up first: two slots would be two queued events, and between
            # them the widget would look idle while the job's clean-up had not run yet
            try:
                if finally_ is not None:
                    finally_()
            finally:
                self._set_busy(None)

        worker.finished.connect(ended)
        self._set_busy(worker, text, cancellable)
        worker.start()
        return worker

    def cancel_worker(self) -> None:
        """Ask the running job to stop (it stops at its next check)."""
        if self._cancel_event is not None:
            self._cancel_event.set()
            self.cancel_btn.setEnabled(False)
            self.status.setText("cancelling…")

    def _on_progress(self, value: tuple[int, int]) -> None:
        done, total = value
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _on_error(self, exc: BaseException, what: str = "") -> None:
        msg = str(exc)
        if not isinstance(exc, H4TracksError):  # a bug or the machine: traceback to the log
            logger.error("%s failed", what or "a job", exc_info=exc)
            job = what.rstrip("….") or "the job"
            msg = f"{job[:1].upper()}{job[1:]} failed: {describe_unexpected(exc)} (see the log)."
        self.notify(msg, error=True)

    # ------------------------------------------------------------------ edits, undo/redo
    def _after_edit(self) -> None:
        self._discarded = False
        if self.project is not None:
            self._ensure_labels_layer(self.project)
        self.refresh_labels()
        self._update_undo_buttons()
        self.edited.emit()

    def _update_undo_buttons(self) -> None:
        idle = self._worker is None
        self.undo_btn.setEnabled(idle and self.history.can_undo)
        self.redo_btn.setEnabled(idle and self.history.can_redo)

    def _editable_project(self) -> Project | None:
        if self.busy:
            self.notify("wait for the running job to finish (or cancel it)", error=True)
            return None
        if self.project is None:
            self.notify("no project: load one or choose layers first", error=True)
            return None
        return self.project

    def labels_project(self, purpose: str, *, need_layer: bool = True) -> Project | None:
        """The current project if it has labels for ``purpose`` ("track", "curate", …),
        else None after saying why in one sentence (also while a job runs: it may be
        writing the labels)."""
        if self.busy:
            self.notify("wait for the running job to finish (or cancel it)", error=True)
            return None
        try:
            project = self.current_project()
        except H4TracksError as e:
            self.notify(str(e), error=True)
            return None
        if project.labels is None or (need_layer and self.project_labels_layer() is None):
            self.notify(f"no segmentation to {purpose}: run one or import labels", error=True)
            return None
        return project

    def apply_action(self, action: Action, *, merge: bool = False,
                     job_result: bool = False) -> bool:
        """Apply an edit to the current project through the shared undo history.

        ``merge``: extend the last undo step when the action can merge with it (e.g. a
        number typed digit by digit). ``job_result``: the action records the result of the
        background job that is finishing (its ``done`` callback), the one edit allowed while
        the widget is still busy. Returns whether it was applied; a failure is shown and
        changes nothing.
        """
        project = self.project if job_result else self._editable_project()
        if project is None or self.session is None:
            return False
        try:
            self.session.do(action, merge=merge)
        except (H4TracksError, ValueError) as e:
            self.notify(str(e), error=True)
            return False
        self.status.setText(action.description)
        self._after_edit()
        return True

    def apply_run(self, step: Action, project: Project) -> bool:
        """Apply the result of a run computed in a worker (a
        :class:`~h4tracks.core.runs.RunStep`) to ``project``, the project it was computed
        for, as one undo step. Called from the job's ``done`` callback on the main thread."""
        if project is not self.project:
            self.notify("the project changed while the job ran; its result was not applied",
                        error=True)
            return False
        ok = self.apply_action(step, job_result=True)
        if ok:
            self._ensure_labels_layer(project)
        return ok

    def undo(self) -> bool:
        """Undo the last edit (returns whether something was undone)."""
        return self._step(self.history.undo, "undid")

    def redo(self) -> bool:
        """Redo the last undone edit (returns whether something was redone)."""
        return self._step(self.history.redo, "redid")

    def _step(self, fn: Callable[[Project], Action], verb: str) -> bool:
        project = self._editable_project()
        if project is None:
            return False
        try:
            action = fn(project)
        except H4TracksError as e:
            self.notify(str(e), error=True)
            return False
        self.status.setText(f"{verb} {action.description}")
        self._after_edit()
        return True

    def show_lineage_view(self) -> LineageView:
        """Dock the lineage tree of the current project below the viewer (once)."""
        view = getattr(self, "lineage_view", None)
        if view is None:
            view = self.lineage_view = LineageView(self)
            self.viewer.window.add_dock_widget(view, name="Lineage tree", area="bottom")
        return view

    # ------------------------------------------------------------------ hotkeys
    def register_hotkeys(self, handlers: dict[str, Callable[[], Any]]) -> None:
        """Bind ``handlers`` (action name in :data:`h4tracks.ui.hotkeys.HOTKEYS` -> callable)
        on the viewer and on the project's labels layer."""
        self._hotkey_handlers.update(handlers)
        bind_hotkeys(self.viewer, handlers)
        self._bind_layer_hotkeys()

    def _bind_layer_hotkeys(self) -> None:
        # the active layer's keymap (napari's Labels keys: E = eraser, Ctrl+Z = paint undo)
        # wins over the viewer's, so the project's labels layer gets the bindings too
        layer = self.project_labels_layer() or self.labels_combo.layer()
        if layer is not None and self._hotkey_handlers:
            bind_hotkeys(layer, self._hotkey_handlers)

    # ------------------------------------------------------------------ save
    def _ask_save_path(self) -> Path | None:
        """Ask where to save the project (a ``.zarr`` folder); None if the user cancels."""
        path, _ = QFileDialog.getSaveFileName(self, "Save h4tracks project", "",
                                              "h4tracks project (*.zarr)")
        return Path(path).with_suffix(".zarr") if path else None

    def _take_metadata_edits(self, project: Project) -> None:
        """Copy the Data tab's pending calibration edits into ``project`` before a save."""
        project.metadata = project.metadata.model_copy(update=self.data_tab.metadata_changes())

    def _on_save_as_clicked(self) -> None:
        path = self._ask_save_path()
        if path is not None:
            self.save(path)

    def save(self, path: str | Path | None = None, *, overwrite: bool = True) -> Any:
        """Save the current project (to ``path`` for Save as) in the background."""
        try:
            project = self.current_project()
        except H4TracksError as e:
            self.notify(str(e), error=True)
            return None
        if path is None and project.path is None:
            self._on_save_as_clicked()
            return None
        if path is not None and Path(path).suffix != ".zarr":
            path = Path(path).with_suffix(".zarr")
        self._take_metadata_edits(project)
        labels_layer = self.labels_combo.layer()
        if labels_layer is not None:
            labels_layer.editable = False  # no painting while frames are being written

        def work(report: Callable[[int, int], None]) -> Path:
            return save_project(project, path, overwrite=overwrite,
                                progress=lambda _stage, d, n: report(d, n))

        def done(out: Path) -> None:
            self.notify(f"saved {out}")
            self._drop_recovery(project)
            self.project_changed.emit(project)

        def finish() -> None:
            if labels_layer is not None:
                labels_layer.editable = True

        return self.run_in_worker(work, text="saving…", done=done, finally_=finish)
