"""The Data tab's *New project from a tracking* buttons, in a shown napari window with real
clicks (the file dialogs are answered by the test): a CTC folder and a GEFF (+ its labels)
become a project on disk, opened as Load opens one; a bad GEFF is one sentence and creates
nothing. The import is ``create_project``, the function behind ``h4tracks new``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from _events import Gui
from qtpy.QtWidgets import QFileDialog

from h4tracks.core.graph import TrackGraph
from h4tracks.core.io import importing
from h4tracks.core.io.ctc import write_ctc
from h4tracks.core.io.geff_export import export_geff
from h4tracks.core.project import Project
from h4tracks.core.store import open_project
from h4tracks.datasets.synthetic import make_movie
from h4tracks.ui.layers import layer_project
from h4tracks.ui.main_widget import H4TracksWidget

DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture(scope="module")
def movie():
    m = make_movie(n_frames=8, shape=(96, 96), n_cells=5, radius=7, division_rate=0.25, seed=4)
    assert (m.lineage[:, 3] > 0).any(), "the test movie must have a division"
    return m


@pytest.fixture
def gui(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    widget = H4TracksWidget(viewer)
    viewer.window.add_dock_widget(widget, name="h4tracks", area="right")
    widget.tabs.setCurrentWidget(widget.data_tab)
    g = Gui(viewer, widget, qtbot)
    yield g
    widget.ask_unsaved = lambda _project: "discard"
    g.stop()
    assert not g.unexpected, g.unexpected


class _Dialogs:
    """QFileDialog's static functions answered in order, each call recorded (with the
    dialog's title and suggested path); an answer None takes the suggested path, as pressing
    Save at once does."""

    def __init__(self, monkeypatch, *, folders=(), files=(), saves=()) -> None:
        self.asked: list[str] = []
        self.shown: list[tuple[str, str, str]] = []  # (function, title, suggested path)
        answers = {"getExistingDirectory": list(folders), "getOpenFileName": list(files),
                   "getSaveFileName": list(saves)}

        def make(name):
            def fake(parent=None, caption="", directory="", *args, **kwargs):
                self.asked.append(name)
                self.shown.append((name, caption, directory))
                answer = answers[name].pop(0)
                value = str(directory if answer is None else answer)
                return value if name == "getExistingDirectory" else (value, "")
            return fake

        for name in answers:
            monkeypatch.setattr(QFileDialog, name, make(name))


def _wait(g: Gui) -> None:
    g.qtbot.waitUntil(lambda: not g.widget.busy, timeout=120_000)


def _assert_shown(g: Gui, path: Path) -> Project:
    """The project at ``path`` is the widget's and its layers are in the viewer, as after
    Load."""
    project = g.widget.project
    assert project is not None and project.path == path.resolve()
    kinds = {type(layer).__name__ for layer in g.viewer.layers
             if layer_project(layer) is project}
    assert kinds == {"Image", "Labels", "Tracks"}, kinds
    assert g.widget.project_labels_layer() is not None
    return project


def test_import_ctc_folder_button_creates_and_opens_the_project(gui, movie, tmp_path,
                                                                monkeypatch):
    g = gui
    write_ctc(tmp_path / "data", movie.labels, movie.lineage, kind="gt", image=movie.image)
    out = tmp_path / "from_ctc"
    # the raw frames are beside the ground truth: no image is asked for
    dialogs = _Dialogs(monkeypatch, folders=[tmp_path / "data" / "01_GT"], saves=[out])
    g.press(g.widget.data_tab.import_ctc_btn)
    _wait(g)
    assert dialogs.asked == ["getExistingDirectory", "getSaveFileName"]
    assert "created" in g.widget.status.text() and "CTC" in g.widget.status.text()
    project = _assert_shown(g, out.with_suffix(".zarr"))
    on_disk = open_project(out.with_suffix(".zarr"))
    expected = TrackGraph.from_ctc(movie.labels, movie.lineage)
    assert np.array_equal(np.asarray(on_disk.image[:]), movie.image)
    assert np.array_equal(np.asarray(on_disk.labels[:]), movie.labels)
    assert on_disk.graph.n_divisions == expected.n_divisions > 0
    assert np.array_equal(on_disk.graph.edge_array(), expected.edge_array())
    assert project.graph.n_edges == expected.n_edges


def test_import_geff_button_creates_and_opens_the_project(gui, movie, tmp_path, monkeypatch):
    g = gui
    source = Project(movie.image, movie.labels.copy(),
                     graph=TrackGraph.from_ctc(movie.labels, movie.lineage),
                     metadata={"pixel_size": 0.5, "frame_interval": 3.0, "time_unit": "min"})
    export_geff(source, tmp_path / "tracks.zarr")
    tifffile.imwrite(tmp_path / "movie.tif", movie.image)
    out = tmp_path / "from_geff.zarr"
    dialogs = _Dialogs(monkeypatch, folders=[tmp_path / "tracks.zarr"],
                       files=[tmp_path / "movie.tif"], saves=[out])
    g.press(g.widget.data_tab.import_geff_btn)
    _wait(g)
    assert dialogs.asked == ["getExistingDirectory", "getOpenFileName", "getSaveFileName"]
    assert "created" in g.widget.status.text() and "GEFF" in g.widget.status.text()
    _assert_shown(g, out)
    on_disk = open_project(out)
    assert np.array_equal(on_disk.graph.edge_array(), source.graph.edge_array())
    assert on_disk.graph.n_divisions == source.graph.n_divisions > 0
    assert np.array_equal(np.asarray(on_disk.labels[:]), movie.labels)
    md = on_disk.metadata
    assert (md.pixel_size, md.frame_interval, md.time_unit) == (0.5, 3.0, "min")
    if os.environ.get("H4TRACKS_DOC_IMAGES") == "1":  # the documentation's picture
        g.viewer.screenshot(str(DOC_IMAGES / "data_tab_import.png"), canvas_only=False,
                            flash=False)


def test_bad_geff_is_one_sentence_and_creates_nothing(gui, movie, tmp_path, monkeypatch):
    import zarr

    g = gui
    source = Project(movie.image, movie.labels.copy(),
                     graph=TrackGraph.from_ctc(movie.labels, movie.lineage))
    export_geff(source, tmp_path / "tracks.zarr")
    edges = zarr.open_array(str(tmp_path / "tracks.zarr" / "tracks" / "edges" / "ids"),
                            mode="r+")
    e = edges[:]
    e[0, 1] = 987654321  # a link to a node the GEFF does not list
    edges[:] = e
    tifffile.imwrite(tmp_path / "movie.tif", movie.image)
    layers_before = list(g.viewer.layers)
    _Dialogs(monkeypatch, folders=[tmp_path / "tracks.zarr"], files=[tmp_path / "movie.tif"],
             saves=[tmp_path / "new.zarr"])
    g.press(g.widget.data_tab.import_geff_btn)
    _wait(g)
    text = g.widget.status.text()
    assert "lead to nodes it does not list" in text and "\n" not in text, text
    assert not (tmp_path / "new.zarr").exists()
    assert list(g.viewer.layers) == layers_before and g.widget.project is None


def _leftovers(folder: Path) -> list[str]:
    """What a failed import left in ``folder`` besides what was there (lock files aside: a
    project path keeps its empty lock file, as after any save)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def test_ctc_tra_folder_suggests_a_project_beside_the_sequence(gui, movie, tmp_path,
                                                               monkeypatch):
    """A biologist picks 01_GT/TRA: the raw frames 01/ fit, no image is asked for, and the
    suggested project is <dataset>/01_GT.zarr, outside the CTC folders."""
    g = gui
    data = tmp_path / "Fluo-N2DH-SIM+"
    write_ctc(data, movie.labels, movie.lineage, kind="gt", image=movie.image)
    dialogs = _Dialogs(monkeypatch, folders=[data / "01_GT" / "TRA"], saves=[None])
    g.press(g.widget.data_tab.import_ctc_btn)
    _wait(g)
    assert dialogs.asked == ["getExistingDirectory", "getSaveFileName"]
    assert dialogs.shown[1][2] == str((data / "01_GT.zarr").absolute())
    assert "created" in g.widget.status.text(), g.widget.status.text()
    _assert_shown(g, data / "01_GT.zarr")
    assert np.array_equal(np.asarray(open_project(data / "01_GT.zarr").image[:]), movie.image)


def test_ctc_result_beside_frames_that_do_not_fit_asks_for_the_image(gui, movie, tmp_path,
                                                                     monkeypatch):
    """01_RES beside a folder 01 whose t*.tif are not its frames (another size): the image
    is asked for instead of the import ending with "give the image file as well"; picking
    one raw frame of a sequence that fits takes the whole folder."""
    g = gui
    data = tmp_path / "data"
    write_ctc(data / "01_RES", movie.labels, movie.lineage)
    (data / "01").mkdir()
    for t in range(movie.labels.shape[0]):
        tifffile.imwrite(data / "01" / f"t{t:03d}.tif", movie.image[t, :50, :50])
    raw = tmp_path / "raw frames"
    raw.mkdir()
    for t in range(movie.labels.shape[0]):
        tifffile.imwrite(raw / f"t{t:03d}.tif", movie.image[t])
    dialogs = _Dialogs(monkeypatch, folders=[data / "01_RES"], files=[raw / "t004.tif"],
                       saves=[None])
    g.press(g.widget.data_tab.import_ctc_btn)
    _wait(g)
    assert dialogs.asked == ["getExistingDirectory", "getOpenFileName", "getSaveFileName"]
    assert "raw frames" in dialogs.shown[1][1]  # the title says a frame may be picked
    out = data / "01_RES.zarr"
    assert dialogs.shown[2][2] == str(out.absolute())
    assert "created" in g.widget.status.text(), g.widget.status.text()
    _assert_shown(g, out)
    on_disk = open_project(out)
    assert np.array_equal(np.asarray(on_disk.image[:]), movie.image)
    assert on_disk.graph.n_divisions > 0
    if os.environ.get("H4TRACKS_SCREENSHOT"):  # a picture of the end of the flow
        g.viewer.screenshot(os.environ["H4TRACKS_SCREENSHOT"], canvas_only=False, flash=False)


def test_ctc_import_that_finds_no_image_asks_for_it_and_tries_again(gui, movie, tmp_path,
                                                                     monkeypatch):
    """Should the import itself find no image (the frames changed after the folder was
    picked), the image is asked for and the import runs again: a project, not an error."""
    from h4tracks.ui import project_import

    g = gui
    data = tmp_path / "data"
    write_ctc(data / "01_RES", movie.labels, movie.lineage)
    tifffile.imwrite(tmp_path / "movie.tif", movie.image)
    monkeypatch.setattr(project_import, "ctc_raw_frames_folder", lambda _d: data / "01")
    dialogs = _Dialogs(monkeypatch, folders=[data / "01_RES"], saves=[tmp_path / "p.zarr"],
                       files=[tmp_path / "movie.tif"])
    g.press(g.widget.data_tab.import_ctc_btn)
    g.qtbot.waitUntil(lambda: "created" in g.widget.status.text()
                      or g.widget.status.text().startswith(("Found", "Could")),
                      timeout=120_000)
    _wait(g)
    assert dialogs.asked == ["getExistingDirectory", "getSaveFileName", "getOpenFileName"]
    assert "created" in g.widget.status.text(), g.widget.status.text()
    _assert_shown(g, tmp_path / "p.zarr")
    assert np.array_equal(np.asarray(open_project(tmp_path / "p.zarr").image[:]),
                          movie.image)


def test_unexpected_import_error_is_one_sentence_logged_and_creates_nothing(
        gui, movie, tmp_path, monkeypatch, caplog):
    """A bug in the import (here a KeyError) is one sentence naming what failed on which
    files, not "KeyError: 'x'"; the traceback is logged; no project, no half-written
    folder is left, whether it fails while reading (GEFF) or while writing (CTC)."""
    g = gui
    source = Project(movie.image, movie.labels.copy(),
                     graph=TrackGraph.from_ctc(movie.labels, movie.lineage))
    export_geff(source, tmp_path / "tracks.zarr")
    tifffile.imwrite(tmp_path / "movie.tif", movie.image)
    write_ctc(tmp_path / "data", movie.labels, movie.lineage, kind="gt", image=movie.image)
    before = _leftovers(tmp_path)

    def broken(*_args, **_kwargs):
        raise KeyError("x")

    monkeypatch.setattr(importing, "measure_movie", broken)
    _Dialogs(monkeypatch, folders=[tmp_path / "tracks.zarr"], files=[tmp_path / "movie.tif"],
             saves=[tmp_path / "new.zarr"])
    with caplog.at_level("ERROR", logger="h4tracks.ui.project_import"):
        g.press(g.widget.data_tab.import_geff_btn)
        _wait(g)
    text = g.widget.status.text()
    assert text.startswith("Could not import the GEFF tracking tracks.zarr: unexpected "
                           "KeyError 'x' while reading "), text
    assert str(tmp_path / "tracks.zarr") in text and "nothing was created" in text
    assert "\n" not in text and not text.startswith("KeyError")
    assert any(r.exc_info and isinstance(r.exc_info[1], KeyError) for r in caplog.records)
    assert _leftovers(tmp_path) == before and g.widget.project is None

    # while the project is written (the first frame written fails): the half-written copy
    # is removed
    real_save = importing.save_project

    def failing_save(project, output, *, progress=None, **kwargs):
        def fail(stage, done, total):
            if progress is not None:
                progress(stage, done, total)
            raise KeyError("x")
        return real_save(project, output, progress=fail, **kwargs)

    monkeypatch.setattr(importing, "save_project", failing_save)
    _Dialogs(monkeypatch, folders=[tmp_path / "data" / "01_GT"], saves=[tmp_path / "ctc.zarr"])
    g.press(g.widget.data_tab.import_ctc_btn)
    _wait(g)
    text = g.widget.status.text()
    assert text.startswith("Could not import the CTC tracking in 01_GT: unexpected KeyError "
                           f"'x' while writing {tmp_path / 'ctc.zarr'}; nothing was created"), \
        text
    assert _leftovers(tmp_path) == before and g.widget.project is None
