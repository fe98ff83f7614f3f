"""Data tab: what the project is (shape, dtype, cells, tracks), its physical calibration
(pixel size, frame interval — editable), import of an image or a label movie, a new project
from a Cell Tracking Challenge or GEFF tracking (:mod:`h4tracks.ui.project_import`), and
export of the tracking as a Cell Tracking Challenge result or a GEFF."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from h4tracks.core.io.importing import project_from_movie
from h4tracks.core.project import Project
from h4tracks.errors import H4TracksError
from h4tracks.ui.project_import import IMAGE_FILTER, TrackingImport
from h4tracks.ui.run_browser import open_from_run

if TYPE_CHECKING:
    from h4tracks.ui.main_widget import H4TracksWidget

_FILTER = IMAGE_FILTER


class DataTab(QWidget):
    """Project information, editable calibration, and import buttons."""

    def __init__(self, main: H4TracksWidget) -> None:
        super().__init__()
        self.main = main

        self.info = QLabel("No project: load one, import an image, or choose layers above.")
        self.info.setWordWrap(True)

        self.name_edit = QLineEdit()
        self.name_edit.setToolTip("Name of the experiment, stored with the project")
        self.pixel_size = QDoubleSpinBox()
        self.pixel_size.setRange(0.0, 1e4)
        self.pixel_size.setDecimals(4)
        self.pixel_size.setSpecialValueText("not set (px)")
        self.pixel_size.setSuffix(" µm")
        self.pixel_size.setToolTip("Physical size of one pixel. Leave at 0 if unknown: "
                                   "distances are then given in pixels")
        self.frame_interval = QDoubleSpinBox()
        self.frame_interval.setRange(0.0, 1e7)
        self.frame_interval.setDecimals(3)
        self.frame_interval.setSpecialValueText("not set")
        self.frame_interval.setToolTip("Time between two frames. Leave at 0 if unknown: times "
                                       "are then given in frames")
        self.time_unit = QComboBox()
        self.time_unit.setToolTip("Unit of the frame interval")
        self.time_unit.addItems(["s", "min", "h", "ms"])
        interval = QHBoxLayout()
        interval.addWidget(self.frame_interval, 1)
        interval.addWidget(self.time_unit)

        calib = QGroupBox("Calibration")
        form = QFormLayout(calib)
        form.addRow("Name", self.name_edit)
        form.addRow("Pixel size", self.pixel_size)
        form.addRow("Frame interval", interval)

        self.import_image_btn = QPushButton("Import image…")
        self.import_image_btn.setToolTip("Open a movie (TIFF, OME-TIFF, CZI, ND2, LIF) as a "
                                         "new project")
        self.import_labels_btn = QPushButton("Import labels…")
        self.import_labels_btn.setToolTip("Open a segmentation (a movie of cell masks, one "
                                          "number per cell) matching the chosen image")
        imports = QHBoxLayout()
        imports.addWidget(self.import_image_btn)
        imports.addWidget(self.import_labels_btn)
        self.open_run_btn = QPushButton("Open a movie of a batch run…")
        self.open_run_btn.setToolTip("Choose the output folder of an `h4tracks run`, then the "
                                     "movie to curate (its project opens here)")
        #: *New project from a tracking*: CTC folder or GEFF, as ``h4tracks new`` does
        self.tracking_import = TrackingImport(main)
        self.import_ctc_btn = self.tracking_import.ctc_btn
        self.import_geff_btn = self.tracking_import.geff_btn

        self.export_ctc_btn = QPushButton("Export for Cell Tracking Challenge…")
        self.export_ctc_btn.setToolTip(
            "Write the segmentation and tracks in the Cell Tracking Challenge result format "
            "(one mask image per frame and a lineage text file) into a folder you choose, "
            "for the challenge's evaluation tools and other tracking software")

        self.export_geff_btn = QPushButton("Export as GEFF (graph + labels)…")
        self.export_geff_btn.setToolTip(
            "Write the tracks as a GEFF graph with the label movie beside it (a .zarr folder), "
            "the format motile-tracker, traccuracy, TrackMate and other tools read; "
            "calibrated axes, divisions and track ids included")

        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addWidget(calib)
        layout.addLayout(imports)
        layout.addWidget(self.open_run_btn)
        layout.addWidget(self.tracking_import)
        layout.addWidget(self.export_ctc_btn)
        layout.addWidget(self.export_geff_btn)
        layout.addStretch(1)

        self.import_image_btn.clicked.connect(self._on_import_image)
        self.import_labels_btn.clicked.connect(self._on_import_labels)
        self.open_run_btn.clicked.connect(lambda: open_from_run(main))
        self.export_ctc_btn.clicked.connect(self.ask_export_ctc)
        self.export_geff_btn.clicked.connect(self.ask_export_geff)
        for w in (self.pixel_size, self.frame_interval):
            w.valueChanged.connect(self._apply_calibration)
        self.time_unit.currentTextChanged.connect(self._apply_calibration)
        self.name_edit.editingFinished.connect(self._apply_calibration)
        main.project_changed.connect(self.show_project)
        main.edited.connect(self._on_edited)

    # ------------------------------------------------------------------ metadata
    def metadata(self) -> dict[str, Any]:
        """Metadata fields as entered (for a project assembled from layers)."""
        return {
            "name": self.name_edit.text().strip() or None,
            "pixel_size": self.pixel_size.value() or None,
            "frame_interval": self.frame_interval.value() or None,
            "time_unit": self.time_unit.currentText(),
        }

    def metadata_changes(self) -> dict[str, Any]:
        """Fields the user changed relative to the current project (empty name is kept)."""
        md = self.metadata()
        if md["name"] is None and self.main.project is not None:
            md["name"] = self.main.project.metadata.name
        return md

    def _apply_calibration(self, *_: Any) -> None:
        from h4tracks.core.actions import SetMetadata

        project = self.main.project
        if project is None or self._updating:
            return
        action = SetMetadata.from_project(project, self.metadata_changes())
        # an undoable edit; typing a number digit by digit stays one undo step
        if len(action) and not self.main.apply_action(action, merge=True):
            self.show_project(project)  # refused: show the values the project kept
        self._apply_scale(project)
        self._show_info(project)

    def _on_edited(self) -> None:
        """After any edit, undo or redo: show the project's (possibly restored) metadata."""
        project = self.main.project
        if project is not None and not self._updating:
            self.show_project(project)
            self._apply_scale(project)

    def _apply_scale(self, project: Project) -> None:
        """Show layers in physical units when the pixel size is known."""
        from h4tracks.ui.layers import layer_project

        px = project.metadata.pixel_size or 1.0
        scale = (1.0, px, px)
        for layer in self.main.viewer.layers:
            # only when it changes: setting a scale refreshes the layer (~45 ms for a large
            # Tracks layer), and this runs after every edit
            if layer_project(layer) is project and tuple(layer.scale) != scale:
                layer.scale = scale

    _updating = False

    def show_project(self, project: Project | None) -> None:
        """Fill the tab from a project (None: nothing chosen)."""
        if project is None:
            self.info.setText("The chosen layers are not saved as a project yet: "
                              "Save as creates one.")
            return
        self._updating = True
        try:
            md = project.metadata
            self.name_edit.setText(md.name or "")
            self.pixel_size.setValue(md.pixel_size or 0.0)
            self.frame_interval.setValue(md.frame_interval or 0.0)
            self.time_unit.setCurrentText(md.time_unit)
        finally:
            self._updating = False
        self._show_info(project)

    def _show_info(self, project: Project) -> None:
        rows = project.summary()
        keep = ("path", "shape (T, Y, X)", "dtype", "cells", "tracks", "divisions", "source",
                "channel")
        self.info.setText("\n".join(f"{k}: {'—' if rows[k] is None else rows[k]}"
                                    for k in keep))

    # ------------------------------------------------------------------ import
    def _on_import_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import image movie", "", _FILTER)
        if path:
            self.import_image(path)

    def import_image(self, path: str | Path, channel: int | str | None = None) -> Any:
        """Read a movie (asking for the channel when there are several) and add it as an
        image layer; it becomes a project on Save as."""
        from h4tracks.core.io.readers import read_image

        try:
            movie = read_image(path, channel=channel)
        except H4TracksError as e:
            names = getattr(e, "channel_names", None)
            if channel is None and names:
                choice, ok = QInputDialog.getItem(self, "Channel", "Channel to track:", names,
                                                  0, False)
                return self.import_image(path, choice) if ok else None
            self.main.notify(str(e), error=True)
            return None
        if not self.main.confirm_discard():
            return None
        project = project_from_movie(movie, name=Path(path).stem)
        self.main.show_project(project)
        for note in movie.notes:
            self.main.notify(note)
        return project

    def _on_import_labels(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import label movie", "", _FILTER)
        if path:
            self.import_labels(path)

    def import_labels(self, path: str | Path) -> Any:
        """Read a label movie matching the chosen image and add it as a labels layer."""
        from h4tracks.core.io.readers import as_label_frame, read_labels

        image = self.main.image_combo.layer()
        if image is None:
            self.main.notify("choose or import an image first", error=True)
            return None
        shape = tuple(image.data.shape) if image.data.ndim == 3 else (1, *image.data.shape)
        try:
            lazy = read_labels(path, expected_shape=shape)
            labels = np.stack([as_label_frame(np.asarray(lazy[t]), source=str(path))
                               for t in range(lazy.shape[0])])
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return None
        layer = self.main.viewer.add_labels(labels, name=f"{Path(path).stem}",
                                            scale=tuple(image.scale))
        self.main.labels_combo.set_layer(layer)
        return layer

    # ------------------------------------------------------------------ export
    def ask_export_ctc(self) -> None:
        """Ask for a folder and export there (the Data and Tracking tabs' buttons)."""
        path = QFileDialog.getExistingDirectory(self, "Folder for the Cell Tracking "
                                                "Challenge files")
        if path:
            self.export_ctc(path)

    def export_ctc(self, folder: str | Path) -> Any:
        """Write the project's segmentation and tracks as a Cell Tracking Challenge result
        (``mask000.tif``… and ``res_track.txt``) into ``folder``, in the background.

        The files are written to a temporary folder inside ``folder`` and moved into place
        when complete, the track file last; mask files of an earlier, longer export are
        removed. Returns the worker, or None if the export was refused.
        """
        from h4tracks.core.io.ctc import export_ctc

        folder = Path(folder)
        if any(part.lower().endswith(".zarr") for part in folder.resolve().parts):
            self.main.notify("Choose a folder outside the h4tracks project (.zarr), so the "
                             "export does not mix with the project's own files.", error=True)
            return None
        if folder.exists() and not folder.is_dir():
            self.main.notify(f"{folder} is a file, not a folder", error=True)
            return None
        project = self.main.labels_project("export", need_layer=False)
        if project is None:
            return None

        def work(report: Callable[[int, int], None]) -> tuple[Path, int]:
            folder.mkdir(parents=True, exist_ok=True)
            return _export_into(folder, lambda tmp: export_ctc(project, tmp, progress=report))

        def done(result: tuple[Path, int]) -> None:
            out, n_tracks = result
            self.main.notify(f"wrote {project.n_frames} mask images and {n_tracks} tracks "
                             f"(Cell Tracking Challenge format) to {out}")

        return self._export_in_worker(work, "exporting for the Cell Tracking Challenge…", done)

    def _export_in_worker(self, work: Callable[[Callable[[int, int], None]], Any], text: str,
                          done: Callable[[Any], None]) -> Any:
        """Run an export in the background with the labels layer locked: the worker reads
        the labels, so no painting meanwhile."""
        layer = self.main.project_labels_layer()
        if layer is not None:
            layer.editable = False

        def finish() -> None:
            if layer is not None:
                layer.editable = True

        return self.main.run_in_worker(work, text=text, done=done, finally_=finish)

    def ask_export_geff(self) -> None:
        """Ask for a ``.zarr`` path and export there (the Data and Tracking tabs' buttons)."""
        path, _ = QFileDialog.getSaveFileName(self, "GEFF to write (a .zarr folder)",
                                              filter="GEFF zarr (*.zarr)")
        if path:
            self.export_geff(path if path.endswith(".zarr") else f"{path}.zarr")

    def export_geff(self, path: str | Path) -> Any:
        """Write the project's tracks and labels as a standalone GEFF at ``path`` (replacing
        a previous export there, never a project), in the background. Returns the worker, or
        None if the export was refused."""
        from h4tracks.core.io.geff_export import export_geff

        project = self.main.labels_project("export", need_layer=False)
        if project is None:
            return None
        out = Path(path)

        def done(_result: Any) -> None:
            self.main.notify(f"wrote {len(project.graph)} cells and their links (GEFF) and "
                             f"{project.n_frames} label frames to {out}")

        return self._export_in_worker(
            lambda report: export_geff(project, out, overwrite=True, progress=report),
            "exporting as GEFF…", done)


_CTC_MASK = re.compile(r"^mask\d+\.tif$")
_CTC_TRACKS = "res_track.txt"


def _export_into(folder: Path, write: Callable[[Path], Path]) -> tuple[Path, int]:
    """``write(tmp)`` a CTC result into a temporary folder inside ``folder``, then move its
    files into ``folder`` (masks first, the track file last) and remove masks of an earlier
    export that the new one does not have. Returns ``folder`` and the number of tracks."""
    tmp = Path(tempfile.mkdtemp(prefix=".ctc-export-", dir=folder))
    try:
        write(tmp)
        new = {f.name for f in tmp.iterdir()}
        for old in folder.iterdir():
            if old.is_file() and _CTC_MASK.match(old.name) and old.name not in new:
                old.unlink()
        for name in [*sorted(new - {_CTC_TRACKS}), _CTC_TRACKS]:
            os.replace(tmp / name, folder / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n_tracks = sum(1 for line in (folder / _CTC_TRACKS).read_text().splitlines()
                   if line.strip())
    return folder, n_tracks
