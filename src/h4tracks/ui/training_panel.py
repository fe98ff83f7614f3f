"""Training panel of the segmentation tab: train a model from the curated frames.

:class:`TrainingPanelMixin` is a mixin of
:class:`~h4tracks.ui.segmentation_tab.SegmentationTab`: it builds the "Train a model" box
(frames, name, starting model, epochs, time limit, Train, Re-segment), keeps the training
frames following the curated frames (or the frame in view) until the user types some, and
trains in the main widget's background worker; the new model is then registered and chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QPushButton,
    QSpinBox,
)

from h4tracks.core.segmentation.recipe import RecipeParams
from h4tracks.core.segmentation.train_project import train_from_project
from h4tracks.core.segmentation.training import TrainingCancelled
from h4tracks.ui.segmentation_common import _compact, _loading

if TYPE_CHECKING:
    from h4tracks.ui.main_widget import H4TracksWidget


class TrainingPanelMixin:
    """Training of the segmentation tab (a mixin of its QWidget).

    Uses the tab's ``main``, ``gpu``, ``curated_btn``, ``_prepare`` and ``refresh_models``.
    """

    main: H4TracksWidget
    _train_frames_auto: bool

    def _build_train_box(self) -> QGroupBox:
        """The "Train a model" box."""
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
        return train_box

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
