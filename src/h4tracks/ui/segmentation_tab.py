"""Segmentation tab: segment the movie with a Cellpose model, preview, train, and curate.

A thin controller over :mod:`h4tracks.core.segmentation`: segmentation, preview and training
run in the main widget's background worker (with progress and Cancel); curation verbs build
core actions that are applied through :meth:`H4TracksWidget.apply_action`, so every edit is
undoable. Click modes (remove, merge, separate, select ID) listen to mouse presses on the
viewer and act on the project's labels layer at the clicked pixel of the current frame.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from h4tracks.core.segmentation import curation
from h4tracks.core.segmentation.engine import (
    SegmentationRun,
    SegmentParams,
    SegmentReport,
    compute_segmentation,
    parse_frames,
    preview,
)
from h4tracks.core.segmentation.models import ModelEntry, ModelRegistry
from h4tracks.core.segmentation.recipe import RecipeParams
from h4tracks.core.segmentation.training import TrainingCancelled, train_from_project
from h4tracks.errors import H4TracksError
from h4tracks.ui.hotkeys import mode_buttons, tooltip
from h4tracks.ui.model_dialog import AddModelDialog

if TYPE_CHECKING:
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget

#: name of the layer showing preview masks (never the project's labels)
PREVIEW_LAYER = "preview"
#: click modes (names of :data:`h4tracks.ui.hotkeys.HOTKEYS` actions) and their buttons
CLICK_MODES = {
    "remove_cell": "Remove cell",
    "merge_cells": "Merge",
    "separate_region": "Separate",
    "select_id": "Select ID",
}
_SCRATCH = "from scratch"


def _compact(combo: QComboBox, chars: int = 14) -> None:
    """Let a combo box with long entries be narrower than its longest entry (elided)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)



def _loading(text: str) -> str:
    """The status of a Cellpose job: the first one also loads torch and Cellpose (seconds),
    which the panel deliberately did not import when it opened."""
    return text if "cellpose.models" in sys.modules else f"loading Cellpose, then {text}"

class WrappedLabel(QLabel):
    """A word-wrapped label that keeps the height its text needs at its current width.

    In the scrolling tab panel a plain word-wrapped label can be squeezed to fewer lines
    than its text needs (its minimum height is guessed for a wider label); this one sets
    its minimum height from its width whenever either or the text changes.
    """

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.setWordWrap(True)

    def setText(self, text: str) -> None:  # a Qt override
        super().setText(text)
        self._fit()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        height = self.heightForWidth(self.width()) if self.text() else 0
        if height >= 0 and height != self.minimumHeight():
            self.setMinimumHeight(height)


class SegmentationTab(QWidget):
    """Model choice, Cellpose parameters, run/preview, training, and curation tools."""

    def __init__(self, main: H4TracksWidget) -> None:
        super().__init__()
        self.main = main
        self.viewer = main.viewer
        self._entries: dict[str, ModelEntry] = {}
        #: active click mode (a key of CLICK_MODES) or None
        self.mode: str | None = None
        self._merge_first: tuple[int, float, float] | None = None
        self._train_frames_auto = True

        # -- model ------------------------------------------------------------------------
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("Cellpose model to segment with")
        _compact(self.model_combo)
        self.add_model_btn = QPushButton("Add Cellpose model…")
        self.add_model_btn.setToolTip("Add a model trained elsewhere with Cellpose 3 (its "
                                      "weights file) to the list")
        self.remove_model_btn = QPushButton("Remove")
        self.remove_model_btn.setToolTip("Remove this added or trained model from the list "
                                         "(its file on disk is kept)")
        self.model_info = WrappedLabel()
        model_row = QHBoxLayout()
        model_row.addWidget(self.add_model_btn, 1)
        model_row.addWidget(self.remove_model_btn)

        # -- parameters ---------------------------------------------------------------------
        self.diameter = QDoubleSpinBox()
        self.diameter.setRange(0.0, 1000.0)
        self.diameter.setDecimals(1)
        self.diameter.setSpecialValueText("model's own")
        self.diameter.setToolTip("Typical cell diameter in pixels. Leave at 0 to use the "
                                 "diameter the model was trained for")
        self.flow_threshold = QDoubleSpinBox()
        self.flow_threshold.setRange(0.0, 10.0)
        self.flow_threshold.setSingleStep(0.1)
        self.flow_threshold.setToolTip("How far a mask may differ from the cell shapes the "
                                       "model predicts; higher keeps more (and rougher) "
                                       "masks, lower only clean ones")
        self.cellprob_threshold = QDoubleSpinBox()
        self.cellprob_threshold.setRange(-6.0, 6.0)
        self.cellprob_threshold.setSingleStep(0.5)
        self.cellprob_threshold.setToolTip("How sure the model must be that a pixel belongs "
                                           "to a cell; lower gives larger masks and more "
                                           "faint cells")
        self.min_size = QSpinBox()
        self.min_size.setRange(0, 1_000_000)
        self.min_size.setToolTip("Cells smaller than this many pixels are removed")
        self.frames_edit = QLineEdit()
        self.frames_edit.setPlaceholderText("all frames (or A:B, 0,7,14)")
        self.frames_edit.setToolTip("Frames to segment: leave empty for all frames; A:B for "
                                    "frames A to B-1; or a list such as 0,7,14. Preview "
                                    "uses the first 5 frames when left empty")
        self.gpu = QCheckBox("Use the graphics card (GPU) if available")
        self.gpu.setToolTip("Much faster on a computer with an NVIDIA graphics card; "
                            "otherwise the processor is used")
        self.overwrite_curated = QCheckBox("Re-segment curated frames too")
        self.overwrite_curated.setToolTip("Curated frames (any frame you edited or marked) are "
                                          "kept as they are unless this is checked")

        model_box = QGroupBox("Model")
        form = QFormLayout(model_box)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Model", self.model_combo)
        form.addRow(model_row)
        form.addRow(self.model_info)
        form.addRow("Diameter (px)", self.diameter)
        form.addRow("Flow threshold", self.flow_threshold)
        form.addRow("Cell prob. threshold", self.cellprob_threshold)
        form.addRow("Minimum size (px)", self.min_size)
        form.addRow("Frames", self.frames_edit)
        form.addRow(self.gpu)
        form.addRow(self.overwrite_curated)

        self.run_btn = QPushButton("Run segmentation")
        self.run_btn.setToolTip("Segment the frames into the project's labels (Cancel keeps "
                                "the finished frames)")
        self.preview_btn = QPushButton("Preview")
        self.preview_btn.setToolTip("Segment a few frames into a separate 'preview' layer; "
                                    "the project is not changed")
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_btn, 1)
        run_row.addWidget(self.preview_btn)
        self.report = WrappedLabel()

        # -- training -----------------------------------------------------------------------
        self.train_frames = QLineEdit()
        self.train_frames.setToolTip("Curated frames whose labels are the training masks")
        self.train_name = QLineEdit("my-model")
        self.train_name.setToolTip("Name of the new model in the model list")
        self.base_combo = QComboBox()
        self.base_combo.setToolTip("Model to start from (it is adapted to your cells), or "
                                   "train a new one from scratch")
        _compact(self.base_combo)
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 100_000)
        self.epochs.setValue(0)
        self.epochs.setSpecialValueText("auto")
        self.epochs.setToolTip("How many passes over the training frames. Leave at auto to "
                               "choose from the number of frames")
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.0, 10_000.0)
        self.minutes.setDecimals(1)
        self.minutes.setSpecialValueText("no limit")
        self.minutes.setToolTip("Stop training after this many minutes. Leave at 0 to run "
                                "all epochs")
        self.train_btn = QPushButton("Train from curated frames")
        self.train_btn.setToolTip("Train a model on the curated frames (in the background); "
                                  "it is then chosen as the model to segment with")
        self.resegment_btn = QPushButton("Re-segment uncurated frames")
        self.resegment_btn.setToolTip("Segment every frame that is not curated with the chosen "
                                      "model (after training: the new one); curated frames "
                                      "stay as they are")
        train_box = QGroupBox("Train a model")
        tform = QFormLayout(train_box)
        tform.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        tform.addRow("Frames", self.train_frames)
        tform.addRow("New model name", self.train_name)
        tform.addRow("Start from", self.base_combo)
        tform.addRow("Epochs", self.epochs)
        tform.addRow("Time limit (min)", self.minutes)
        tform.addRow(self.train_btn)
        tform.addRow(self.resegment_btn)

        # -- curation -----------------------------------------------------------------------
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

        layout = QVBoxLayout(self)
        layout.addWidget(model_box)
        layout.addLayout(run_row)
        layout.addWidget(self.report)
        layout.addWidget(curate_box)
        layout.addWidget(train_box)
        layout.addStretch(1)

        self.model_combo.currentIndexChanged.connect(self._on_model_chosen)
        self.add_model_btn.clicked.connect(lambda: self.add_custom_model())
        self.remove_model_btn.clicked.connect(lambda: self.remove_model())
        self.run_btn.clicked.connect(lambda: self.run_segmentation())
        self.preview_btn.clicked.connect(lambda: self.run_preview())
        self.train_btn.clicked.connect(lambda: self.train())
        self.resegment_btn.clicked.connect(lambda: self.run_segmentation(uncurated_only=True))
        self.next_id_btn.clicked.connect(lambda: self.next_free_id())
        self.relabel_btn.clicked.connect(lambda: self.relabel_frame())
        self.curated_btn.clicked.connect(lambda checked: self.mark_curated(checked))
        self.main.edited.connect(self._on_frame_changed)
        self.main.project_changed.connect(lambda _p: self._on_frame_changed())
        self.train_frames.textEdited.connect(self._on_train_frames_edited)
        self.viewer.dims.events.current_step.connect(self._on_frame_changed)
        self.viewer.mouse_drag_callbacks.append(self._on_mouse_press)
        self.refresh_models()
        self._on_frame_changed()

    # ------------------------------------------------------------------ hotkeys
    def hotkey_handlers(self) -> dict[str, Callable[[], Any]]:
        """Handlers of this tab's keys (bound by the main widget from the hotkey table)."""
        handlers: dict[str, Callable[[], Any]] = {
            "next_free_id": self.next_free_id,
            "relabel_frame": self.relabel_frame,
        }
        for mode in CLICK_MODES:
            handlers[mode] = lambda m=mode: self.toggle_mode(m)
        return handlers

    # ------------------------------------------------------------------ models
    def refresh_models(self, select: str | None = None) -> None:
        """Re-read the model registry into the combos, choosing ``select`` (else keep the
        current choice, else the default demo model)."""
        registry = ModelRegistry()
        try:
            entries = registry.entries()
        except H4TracksError as e:  # corrupt registry file: built-ins still work
            self.main.notify(str(e), error=True)
            entries = registry.builtin_entries()
        current = select or self.model_combo.currentData() or registry.default_entry().name
        base = self.base_combo.currentData() if self.base_combo.count() else current
        self._entries = {e.name: e for e in entries}
        for combo in (self.model_combo, self.base_combo):
            combo.blockSignals(True)
            combo.clear()
        self.base_combo.addItem(_SCRATCH, None)
        for e in entries:
            self.model_combo.addItem(f"{e.name} ({e.kind})", e.name)
            self.base_combo.addItem(e.name, e.name)
        for combo, name in ((self.model_combo, current), (self.base_combo, base)):
            i = combo.findData(name)
            combo.setCurrentIndex(max(i, 0))
            combo.blockSignals(False)
        self._on_model_chosen()

    def current_entry(self) -> ModelEntry:
        """The chosen model's registry entry."""
        return self._entries[self.model_combo.currentData()]

    def _on_model_chosen(self, _index: int = 0) -> None:
        if self.model_combo.currentData() not in self._entries:
            return
        e = self.current_entry()
        self.diameter.setValue(e.diameter or 0.0)
        self.flow_threshold.setValue(e.flow_threshold)
        self.cellprob_threshold.setValue(e.cellprob_threshold)
        self.min_size.setValue(e.min_size)
        self.remove_model_btn.setEnabled(e.kind in ("custom", "trained"))
        self.model_info.setText(e.description or (e.path or ""))

    def make_add_model_dialog(self) -> AddModelDialog:
        """The (not yet shown) dialog registering a custom model in the registry."""
        return AddModelDialog(lambda **v: ModelRegistry().add_custom(**v), self)

    def add_custom_model(self) -> ModelEntry | None:
        """Ask for a weights file and register it; select the new model on success."""
        dialog = self.make_add_model_dialog()
        if not dialog.exec() or dialog.entry is None:
            return None
        self.refresh_models(select=dialog.entry.name)
        self.main.notify(f"added model {dialog.entry.name}")
        return dialog.entry

    def remove_model(self, name: str | None = None, *, confirm: bool = True) -> bool:
        """Forget a custom/trained model (default: the chosen one); its file stays."""
        name = name or self.model_combo.currentData()
        if confirm and QMessageBox.question(
            self, "Remove model", f"Forget the model {name!r}? Its weights file is kept."
        ) != QMessageBox.StandardButton.Yes:
            return False
        try:
            ModelRegistry().remove(name)
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return False
        self.refresh_models(select=ModelRegistry().default_entry().name)
        self.main.notify(f"removed model {name}")
        return True

    # ------------------------------------------------------------------ parameters
    def params(self) -> SegmentParams:
        """Cellpose parameters as entered (diameter 0 = the model's own)."""
        return SegmentParams.for_model(
            self.current_entry(),
            diameter=self.diameter.value() or None,
            flow_threshold=self.flow_threshold.value(),
            cellprob_threshold=self.cellprob_threshold.value(),
            min_size=self.min_size.value(),
        )

    def _prepare(self, frames_text: str, *, required: bool = False) -> tuple | None:
        """(project, entry, params, frames spec) for a run, or None after showing why not."""
        try:
            project = self.main.current_project()
            spec = frames_text.strip() or None
            if spec is not None:
                parse_frames(spec, project.n_frames)  # a bad spec fails here, not in a thread
            elif required:
                raise H4TracksError("enter the frames to use")
            return project, self.current_entry(), self.params(), spec
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
        except ValidationError as e:
            self.main.notify(f"invalid parameters: {e.errors()[0]['msg']}", error=True)
        return None

    # ------------------------------------------------------------------ segmentation
    def run_segmentation(self, *, uncurated_only: bool = False) -> Any:
        """Segment the chosen frames into the project's labels in the background;
        ``uncurated_only``: every frame but the curated ones (whatever the frame box and the
        overwrite box say).

        Returns the worker (None if the input was refused).
        """
        prepared = self._prepare("" if uncurated_only else self.frames_edit.text())
        if prepared is None:
            return None
        project, entry, params, spec = prepared
        self.set_mode(None)
        cores, gpu = self.main.cores, self.gpu.isChecked()
        overwrite = self.overwrite_curated.isChecked() and not uncurated_only
        layer = self.main.project_labels_layer()
        if layer is not None:
            layer.editable = False  # the worker writes these frames: no painting meanwhile

        def work(report: Callable[[int, int], None], cancel: Callable[[], bool]) -> Any:
            # computed aside; the project changes only when the result is applied below
            return compute_segmentation(project, entry, params=params, frames=spec,
                                        cores=cores, gpu=gpu, progress=report, cancel=cancel,
                                        overwrite_curated=overwrite)

        def done(run: SegmentationRun) -> None:
            if run.report.frames:
                # one undo step: labels, links, snapshot of these frames, provenance
                self.main.apply_run(run.step(), project)
                self.main.project_changed.emit(project)
            self._report(run.report, "segmented")

        def finish() -> None:
            if layer is not None:
                layer.editable = True

        return self.main.run_in_worker(work, text=_loading(f"segmenting with {entry.name}…"),
                                       done=done, cancellable=True, finally_=finish)

    def _report(self, r: SegmentReport, verb: str) -> None:
        head = (f"{verb} {len(r.frames)} of {r.requested} frame(s)"
                + (" (cancelled)" if r.cancelled else ""))
        text = (f"{head} with {r.model} in {r.seconds:.1f} s: {r.n_cells} cells"
                + (f"; kept {len(r.skipped)} curated frame(s)" if r.skipped else "")
                + (f"\n{r.message}" if r.message else ""))
        self.report.setText(text)
        self.main.notify(text)

    def run_preview(self) -> Any:
        """Segment a few frames (the frames field, else the first 5) into the 'preview' layer
        without touching the project. Returns the worker (None if refused)."""
        prepared = self._prepare(self.frames_edit.text())
        if prepared is None:
            return None
        project, entry, params, spec = prepared
        cores, gpu = self.main.cores, self.gpu.isChecked()

        def work(report: Callable[[int, int], None], cancel: Callable[[], bool]) -> Any:
            return preview(project, entry, params=params, frames=spec, cores=cores, gpu=gpu,
                           progress=report, cancel=cancel)

        def done(result: tuple[list[int], np.ndarray, SegmentReport]) -> None:
            frames, masks, report = result
            self.show_preview(project, frames, masks)
            self._report(report, "previewed")

        return self.main.run_in_worker(work, text=_loading(f"previewing {entry.name}…"), done=done,
                                       cancellable=True)

    def show_preview(self, project: Project, frames: Sequence[int], masks: np.ndarray) -> Any:
        """Show preview masks in the 'preview' Labels layer, aligned with the movie."""
        import dask.array as da

        from h4tracks.core.project import LabelMovie

        # lazy zeros + the previewed frames: no full-movie array for a 5-frame preview
        movie = LabelMovie(da.zeros(project.shape, dtype=np.uint32,
                                    chunks=(1, *project.shape[1:])))
        for t, m in zip(frames, masks, strict=True):
            movie.set_frame(t, m)
        if PREVIEW_LAYER in self.viewer.layers:
            layer = self.viewer.layers[PREVIEW_LAYER]
            layer.data = movie
        else:
            px = project.metadata.pixel_size or 1.0
            layer = self.viewer.add_labels(movie, name=PREVIEW_LAYER, scale=(1.0, px, px),
                                           opacity=0.6)
        if frames and self.main.current_frame() not in frames:
            self.viewer.dims.set_current_step(0, frames[0])
        return layer

    # ------------------------------------------------------------------ training
    def _on_train_frames_edited(self, _text: str) -> None:
        self._train_frames_auto = False  # the user typed frames: stop following the slider

    def _on_frame_changed(self, _event: Any = None) -> None:
        project = self.main.project
        curated = sorted(project.curated_frames) if project is not None else []
        if self._train_frames_auto:
            # train on the curated frames by default, else on the frame in view
            self.train_frames.setText(",".join(map(str, curated)) if curated
                                      else str(self.main.current_frame()))
        self.curated_btn.setChecked(self.main.current_frame() in curated)

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

    def train(self) -> Any:
        """Train a model on the chosen curated frames in the background; on success it is
        registered and selected. Returns the worker (None if refused)."""
        prepared = self._prepare(self.train_frames.text(), required=True)
        if prepared is None:
            return None
        project, _entry, _params, spec = prepared
        if project.labels is None:
            self.main.notify("segment or import labels first: training needs curated masks",
                             error=True)
            return None
        name = self.train_name.text().strip()
        base = self.base_combo.currentData()
        # the recipe: start (fine-tune / scratch) and checkpoint chosen on a held-out frame
        minutes = self.minutes.value() or None
        params = RecipeParams(minutes=minutes,
                              epochs=None if minutes else (self.epochs.value() or None))
        cores, gpu = self.main.cores, self.gpu.isChecked()

        def work(report: Callable[[int, int], None], cancel: Callable[[], bool]) -> Any:
            try:
                return train_from_project(
                    project, spec, name, base=base, params=params, cores=cores, gpu=gpu,
                    progress=lambda epoch, n, _loss: report(epoch, n), cancel=cancel)
            except TrainingCancelled:
                return None  # nothing registered; reported in done()

        def done(result: Any) -> None:
            if result is None:
                self.main.notify("training cancelled: no model was registered")
                return
            entry, res = result
            self.refresh_models(select=entry.name)
            self.main.notify(f"trained {entry.name}: {res.summary()}")

        return self.main.run_in_worker(work, text=_loading(f"training {name}…"), done=done,
                                       cancellable=True)

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
        if self.mode is None or event.type != "mouse_press" or event.button != 1:
            return
        layer = self.main.project_labels_layer()
        if layer is None:
            return
        data = layer.world_to_data(event.position)
        self.handle_click(float(data[-2]), float(data[-1]))

    def handle_click(self, y: float, x: float, t: int | None = None) -> bool:
        """Apply the active click mode at data pixel ``(y, x)`` of frame ``t`` (default: the
        current frame). Returns whether something changed or was selected."""
        if self.mode is None:
            return False
        project = self._labels_project()
        if project is None:
            return False
        t = self.main.current_frame() if t is None else int(t)
        try:
            return self._click(project, t, y, x)
        except H4TracksError as e:  # e.g. a click on background: nothing changes
            self.main.notify(str(e), error=True)
            return False

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
