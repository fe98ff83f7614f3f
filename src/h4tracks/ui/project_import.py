"""The Data tab's *New project from a tracking* buttons: a Cell Tracking Challenge folder or a
GEFF tracking (graph + labels) becomes a new project on disk, then opens as Load opens one.

The work is :func:`h4tracks.core.io.importing.create_project`, the function behind
``h4tracks new --ctc DIR`` and ``h4tracks new IMAGE --tracks FILE.geff``: the same checks,
the same project, one code path. It runs in the main widget's worker thread (reading a long
movie and writing the project take seconds); a bad input (a GEFF without a time axis, links
to nodes it does not list, labels that disagree with the lineage, …) ends as the one sentence
the core raises, and nothing is written, since the project is saved only after every check.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QPushButton, QWidget

from h4tracks.core.io.importing import create_project, ctc_raw_frames_folder

if TYPE_CHECKING:
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget

IMAGE_FILTER = "Images (*.tif *.tiff *.ome.tif *.ome.tiff *.czi *.nd2 *.lif);;All files (*)"


class TrackingImport(QGroupBox):
    """Two buttons: *Import CTC folder…* and *Import GEFF…*, each asking for what the import
    needs (the image only when it cannot be found) and where to create the project."""

    def __init__(self, main: H4TracksWidget, parent: QWidget | None = None) -> None:
        super().__init__("New project from a tracking", parent)
        self.main = main
        self.ctc_btn = QPushButton("Import CTC folder…")
        self.ctc_btn.setToolTip(
            "Make a new project from a Cell Tracking Challenge tracking: a result folder "
            "(mask000.tif… + res_track.txt) or a ground truth (<seq>_GT or its TRA folder), "
            "lineage included. The image is taken from the raw frames beside it, or asked for")
        self.geff_btn = QPushButton("Import GEFF…")
        self.geff_btn.setToolTip(
            "Make a new project from a GEFF tracking graph (a .zarr folder, as motile-tracker "
            "or h4tracks' Export as GEFF write it) with its labels, and the image movie")
        row = QHBoxLayout(self)
        row.addWidget(self.ctc_btn)
        row.addWidget(self.geff_btn)
        self.ctc_btn.clicked.connect(self._on_ctc)
        self.geff_btn.clicked.connect(self._on_geff)

    # ------------------------------------------------------------------ dialogs
    def _on_ctc(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Cell Tracking Challenge folder (result, <seq>_GT or TRA)")
        if not folder:
            return
        image: str | None = None
        if ctc_raw_frames_folder(folder) is None:  # a result folder has no frames beside it
            image = self._ask_image("Image movie of this tracking")
            if image is None:
                return
        output = self._ask_output(Path(folder))
        if output is not None:
            self.import_ctc(folder, output, image=image)

    def _on_geff(self) -> None:
        geff = QFileDialog.getExistingDirectory(self, "GEFF tracking (a .zarr folder)")
        if not geff:
            return
        image = self._ask_image("Image movie of this tracking")
        if image is None:
            return
        output = self._ask_output(Path(image))
        if output is not None:
            self.import_geff(geff, image, output)

    def _ask_image(self, title: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, title, "", IMAGE_FILTER)
        return path or None

    def _ask_output(self, near: Path) -> Path | None:
        suggestion = near.with_name(f"{near.name.split('.')[0] or 'project'}.zarr")
        path, _ = QFileDialog.getSaveFileName(self, "New h4tracks project to create",
                                              str(suggestion), "h4tracks project (*.zarr)")
        return Path(path) if path else None

    # ------------------------------------------------------------------ imports
    def import_ctc(self, folder: str | Path, output: str | Path, *,
                   image: str | Path | None = None) -> Any:
        """Create the project ``output`` from the CTC tracking in ``folder`` (and ``image``,
        else the raw frames beside it) in the background, then open it. Returns the worker,
        or None if refused at once."""
        return self._create(output, image, f"the CTC tracking in {Path(folder).name}",
                            ctc=folder)

    def import_geff(self, geff: str | Path, image: str | Path, output: str | Path) -> Any:
        """Create the project ``output`` from the GEFF tracking ``geff`` (with its labels)
        and ``image`` in the background, then open it. Returns the worker, or None if
        refused at once."""
        return self._create(output, image, f"the GEFF tracking {Path(geff).name}",
                            tracks=geff)

    def _create(self, output: str | Path, image: str | Path | None, source: str,
                **tracking: Any) -> Any:
        main = self.main
        if main.busy:
            main.notify("wait for the running job to finish (or cancel it)", error=True)
            return None
        out = Path(output)
        if out.suffix != ".zarr":
            out = out.with_name(f"{out.name}.zarr")
        if out.exists():
            # a new project never replaces anything (the open project least of all)
            main.notify(f"{out} already exists: choose a new name for the project",
                        error=True)
            return None

        def work(report: Callable[[int, int], None]) -> Path:
            path, _project = create_project(out, image, progress=lambda _s, d, n: report(d, n),
                                            **tracking)
            return path

        def done(path: Path) -> None:
            # shown as Load shows a project (asking first about unsaved work)
            project = main.load(path)
            if project is None:
                main.notify(f"created {path}; it is not open (Load it when you are ready)")
            elif not getattr(project, "read_only", None):
                main.notify(_created(path, source, project))

        return main.run_in_worker(work, text=f"importing {source}…", done=done)


def _created(path: Path, source: str, project: Project) -> str:
    """The status line after an import."""
    g = project.graph
    return (f"created {path} from {source}: {project.n_frames} frames, {len(g)} cells, "
            f"{g.track_ids().size} tracks, {g.n_divisions} divisions")
