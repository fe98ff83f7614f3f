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
    """QFileDialog's static functions answered in order, each call recorded."""

    def __init__(self, monkeypatch, *, folders=(), files=(), saves=()) -> None:
        self.asked: list[str] = []
        answers = {"getExistingDirectory": list(folders), "getOpenFileName": list(files),
                   "getSaveFileName": list(saves)}

        def make(name):
            def fake(*args, **kwargs):
                self.asked.append(name)
                value = str(answers[name].pop(0))
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
