"""The Data tab's *New project from a tracking* buttons: a Cell Tracking Challenge folder or a
GEFF tracking (graph + labels) becomes a new project on disk, then opens as Load opens one.

The work is :func:`h4tracks.core.io.importing.create_project`, the function behind
``h4tracks new --ctc DIR`` and ``h4tracks new IMAGE --tracks FILE.geff``: the same checks,
the same project, one code path. It runs in the main widget's worker thread (reading a long
movie and writing the project take seconds); a bad input (a GEFF without a time axis, links
to nodes it does not list, labels that disagree with the lineage, …) ends as the one sentence
the core raises, and nothing is written, since the project is saved only after every check
(and saved atomically: a failure while writing leaves no project folder behind). An
unexpected error is one sentence too, naming what failed on which files; its traceback goes
to the log.

A CTC tracking takes its image from the raw frames of its sequence when they fit its masks;
otherwise (a result folder, frames of another size…) the user is asked for the image (a movie
file, or any ``t000.tif`` of the raw frames), before the import or when the import finds it
needs one, and the import is tried again with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QPushButton, QWidget

from h4tracks.core.io.importing import (
    CTCImageNeeded,
    create_project,
    ctc_image_source,
    ctc_project_path,
    ctc_raw_frames_folder,
)
from h4tracks.core.outputs import describe_unexpected
from h4tracks.errors import H4TracksError

if TYPE_CHECKING:
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget

IMAGE_FILTER = "Images (*.tif *.tiff *.ome.tif *.ome.tiff *.czi *.nd2 *.lif);;All files (*)"
CTC_IMAGE_TITLE = ("Image movie of this tracking (a movie file, or any t000.tif… of its raw "
                   "frames for the whole folder)")

log = logging.getLogger(__name__)

#: what the import's worker returns when a CTC tracking turns out to need its image
_NEEDS_IMAGE = object()


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
        try:
            frames = ctc_raw_frames_folder(folder)
        except H4TracksError as e:  # not a CTC tracking: said now, not after three dialogs
            self.main.notify(str(e), error=True)
            return
        image: Path | None = None
        if frames is None:  # a result folder, or frames that do not fit the masks
            image = self._ask_ctc_image(folder)
            if image is None:
                return
        output = self._ask_output(ctc_project_path(folder))
        if output is not None:
            self.import_ctc(folder, output, image=image)

    def _ask_ctc_image(self, folder: str | Path) -> Path | None:
        """The image of the CTC tracking in ``folder``: a movie file, or the folder of raw
        frames when the user picks one of them."""
        picked = self._ask_image(CTC_IMAGE_TITLE)
        return None if picked is None else ctc_image_source(picked, folder)

    def _on_geff(self) -> None:
        geff = QFileDialog.getExistingDirectory(self, "GEFF tracking (a .zarr folder)")
        if not geff:
            return
        image = self._ask_image("Image movie of this tracking")
        if image is None:
            return
        near = Path(image)
        output = self._ask_output(near.with_name(f"{near.name.split('.')[0] or 'project'}.zarr"))
        if output is not None:
            self.import_geff(geff, image, output)

    def _ask_image(self, title: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, title, "", IMAGE_FILTER)
        return path or None

    def _ask_output(self, suggestion: Path) -> Path | None:
        path, _ = QFileDialog.getSaveFileName(self, "New h4tracks project to create",
                                              str(suggestion), "h4tracks project (*.zarr)")
        return Path(path) if path else None

    # ------------------------------------------------------------------ imports
    def import_ctc(self, folder: str | Path, output: str | Path, *,
                   image: str | Path | None = None) -> Any:
        """Create the project ``output`` from the CTC tracking in ``folder`` (and ``image``, a
        movie file or a folder of raw frames, else the raw frames beside it) in the
        background, then open it. If the import finds no image, the user is asked for one
        and it runs again. Returns the worker, or None if refused at once."""
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
        inputs = [Path(p) for p in (*tracking.values(), image) if p is not None]
        needs_image = {"ctc": None}

        def work(report: Callable[[int, int], None]) -> Path | object:
            writing = []

            def progress(_stage: str, done: int, total: int) -> None:
                writing.append(True)  # the inputs are read: the project is being written
                report(done, total)

            try:
                path, _project = create_project(out, image, progress=progress, **tracking)
            except CTCImageNeeded:
                return _NEEDS_IMAGE  # asked for on the main thread, then tried again
            except H4TracksError:
                raise  # one sentence already
            except Exception as e:
                log.error("importing %s (%s) into %s failed", source,
                          ", ".join(map(str, inputs)), out, exc_info=True)
                raise H4TracksError(_unexpected(e, source, inputs, out, bool(writing))
                                    ) from e
            return path

        def done(path: Path | object) -> None:
            if path is _NEEDS_IMAGE:
                needs_image["ctc"] = tracking["ctc"]
                main.notify(f"{source} has no raw frames beside it that fit its masks: "
                            "choose its image")
                return
            # shown as Load shows a project (asking first about unsaved work)
            project = main.load(path)
            if project is None:
                main.notify(f"created {path}; it is not open (Load it when you are ready)")
            elif not getattr(project, "read_only", None):
                main.notify(_created(path, source, project))

        def ended() -> None:
            if needs_image["ctc"] is not None:
                # after the job has ended (the widget is no longer busy), not inside it
                QTimer.singleShot(0, lambda: self._retry_ctc(needs_image["ctc"], out))

        return main.run_in_worker(work, text=f"importing {source}…", done=done,
                                  finally_=ended)

    def _retry_ctc(self, folder: str | Path, output: Path) -> None:
        """Ask for the image the CTC import found none of, and import again with it."""
        image = self._ask_ctc_image(folder)
        if image is None:
            self.main.notify(f"no image chosen for the CTC tracking in {Path(folder).name}: "
                             "nothing was created")
            return
        self.import_ctc(folder, output, image=image)


def _unexpected(e: BaseException, source: str, inputs: list[Path], output: Path,
                writing: bool) -> str:
    """One sentence for an error the import did not foresee: what failed, on which files,
    and that nothing was created (the project is written atomically)."""
    reason = describe_unexpected(e)
    step = f"writing {output}" if writing else \
        f"reading {' and '.join(str(p) for p in inputs)}"
    return (f"Could not import {source}: {reason} while {step}; nothing was created (the "
            "details are in the log).")


def _created(path: Path, source: str, project: Project) -> str:
    """The status line after an import."""
    g = project.graph
    return (f"created {path} from {source}: {project.n_frames} frames, {len(g)} cells, "
            f"{g.track_ids().size} tracks, {g.n_divisions} divisions")
