"""Segmentation tab: segment the movie with a Cellpose model, preview, train, and curate.

A thin controller over :mod:`h4tracks.core.segmentation`: segmentation, preview and training
run in the main widget's background worker (with progress and Cancel); curation verbs build
core actions that are applied through :meth:`H4TracksWidget.apply_action`, so every edit is
undoable. Click modes (remove, merge, separate, select ID) listen to mouse presses on the
viewer and act on the project's labels layer at the clicked pixel of the current frame.

The tab is assembled from parts: the model choice (:mod:`h4tracks.ui.segmentation_models`),
the training panel (:mod:`h4tracks.ui.training_panel`) and the curation verbs
(:mod:`h4tracks.ui.segmentation_curation`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError
from qtpy.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from h4tracks.core.compute import bfloat16_likely
from h4tracks.core.project import LabelMovie
from h4tracks.core.segmentation.engine import (
    SegmentationRun,
    SegmentParams,
    SegmentReport,
    compute_segmentation,
    parse_frames,
    preview,
)
from h4tracks.core.segmentation.models import ModelEntry
from h4tracks.errors import H4TracksError
from h4tracks.ui.params_form import ParamsForm
from h4tracks.ui.segmentation_common import WrappedLabel as WrappedLabel
from h4tracks.ui.segmentation_common import _loading
from h4tracks.ui.segmentation_curation import CLICK_MODES, CurationPanelMixin
from h4tracks.ui.segmentation_models import ModelChoiceMixin
from h4tracks.ui.training_panel import TrainingPanelMixin

if TYPE_CHECKING:
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget

#: name of the layer showing preview masks (never the project's labels)
PREVIEW_LAYER = "preview"


#: the Cellpose parameters the tab shows (the others keep the model entry's values)
SEGMENT_FIELDS = ("diameter", "flow_threshold", "cellprob_threshold", "min_size", "engine",
                  "precision")


class SegmentationTab(ModelChoiceMixin, TrainingPanelMixin, CurationPanelMixin, QWidget):
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
        model_row = self._build_model_choice()

        # -- parameters ---------------------------------------------------------------------
        # editors, labels, bounds and tooltips come from the parameter model (as the CLI's
        # options do); the values shown are the chosen model entry's (refresh_models)
        self.params_form = ParamsForm(SegmentParams, fields=SEGMENT_FIELDS)
        self.diameter = self.params_form.editors["diameter"]
        self.flow_threshold = self.params_form.editors["flow_threshold"]
        self.cellprob_threshold = self.params_form.editors["cellprob_threshold"]
        self.min_size = self.params_form.editors["min_size"]
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
        form.addRow(self.params_form)
        # the hint makes the fast option findable; the CPU's flags are read, not OpenVINO
        # loaded (that would cost the widget's start-up 0.3 s), so it is a guess the run
        # itself checks
        self.precision_hint = WrappedLabel()
        form.addRow(self.precision_hint)
        self._show_precision_hint(bfloat16_likely())
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
        train_box = self._build_train_box()

        # -- curation -----------------------------------------------------------------------
        curate_box = self._build_curate_box()

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
    def _show_precision_hint(self, supported: bool) -> None:
        if supported:
            self.precision_hint.setText(
                "This processor computes in bfloat16: Precision → bfloat16 segments several "
                "times faster (masks agree with float32's at AP@0.5 ≥ 0.99, not pixel for "
                "pixel).")
        self.precision_hint.setVisible(supported)

    def hotkey_handlers(self) -> dict[str, Callable[[], Any]]:
        """Handlers of this tab's keys (bound by the main widget from the hotkey table)."""
        handlers: dict[str, Callable[[], Any]] = {
            "next_free_id": self.next_free_id,
            "relabel_frame": self.relabel_frame,
        }
        for mode in CLICK_MODES:
            handlers[mode] = lambda m=mode: self.toggle_mode(m)
        return handlers

    # ------------------------------------------------------------------ parameters
    def params(self) -> SegmentParams:
        """Cellpose parameters as entered (diameter "auto" = the model's own)."""
        return SegmentParams.for_model(self.current_entry(), **self.params_form.values())

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

