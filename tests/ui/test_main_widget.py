"""Widget tests with a real napari viewer (run under Xvfb)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from h4tracks.core.graph import TrackGraph
from h4tracks.core.store import is_project, open_project
from h4tracks.datasets.synthetic import SyntheticConfig, make_movie
from h4tracks.ui.layers import layer_project
from h4tracks.ui.main_widget import H4TracksWidget


@pytest.fixture
def movie():
    return make_movie(SyntheticConfig(n_frames=6, shape=(64, 80), n_cells=4, seed=3))



def _wait(qtbot, w: H4TracksWidget) -> None:
    qtbot.waitUntil(lambda: not w.busy, timeout=180_000)


def _names(combo) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def test_combos_follow_layer_list(widget, movie):
    v = widget.viewer
    assert _names(widget.image_combo) == []
    img = v.add_image(movie.image, name="cells")
    lab = v.add_labels(movie.labels, name="masks")
    v.add_tracks(np.array([[1, 0, 5, 5], [1, 1, 6, 6]], float), name="trk")
    assert _names(widget.image_combo) == ["cells"]
    assert _names(widget.labels_combo)[1:] == ["masks"]
    assert _names(widget.tracks_combo)[1:] == ["trk"]
    img.name = "renamed"
    assert _names(widget.image_combo) == ["renamed"]
    widget.labels_combo.set_layer(lab)
    assert widget.labels_combo.layer() is lab
    v.layers.remove(lab)
    assert _names(widget.labels_combo) == ["—"]
    assert widget.labels_combo.layer() is None


def test_tiffs_to_project_save_as_load_roundtrip(widget, movie, tmp_path, qtbot,
                                                  make_napari_viewer):
    # a biologist drags an image TIFF and a label TIFF into napari
    tifffile.imwrite(tmp_path / "cells.tif", movie.image)
    tifffile.imwrite(tmp_path / "masks.tif", movie.labels)
    v = widget.viewer
    [img] = v.open(tmp_path / "cells.tif")
    [lab] = v.open(tmp_path / "masks.tif", layer_type="labels")
    graph = TrackGraph.from_ctc(movie.labels, movie.lineage)
    data, parents = graph.to_napari()
    trk = v.add_tracks(data, graph=parents, name="tracks")
    widget.image_combo.set_layer(img)
    widget.labels_combo.set_layer(lab)
    widget.tracks_combo.set_layer(trk)
    widget.data_tab.pixel_size.setValue(0.65)

    out = tmp_path / "exp.zarr"
    widget.save(out)
    _wait(qtbot, widget)
    assert is_project(out), widget.status.text()
    assert open_project(out).metadata.pixel_size == pytest.approx(0.65)

    # load in a fresh viewer: identical layers
    w2 = H4TracksWidget(make_napari_viewer())
    qtbot.addWidget(w2)
    project = w2.load(out)
    assert project is not None
    layers = {type(layer).__name__: layer for layer in w2.viewer.layers}
    np.testing.assert_array_equal(np.asarray(layers["Image"].data), movie.image)
    assert layers["Image"].data.dtype == movie.image.dtype
    np.testing.assert_array_equal(np.asarray(layers["Labels"].data), movie.labels)
    np.testing.assert_allclose(layers["Tracks"].data, data)
    assert layers["Tracks"].graph == parents
    assert w2.image_combo.layer() is layers["Image"]
    assert w2.labels_combo.layer() is layers["Labels"]
    assert w2.tracks_combo.layer() is layers["Tracks"]
    assert "0.65" in w2.data_tab.pixel_size.text()
    # calibration edits are undoable; a number typed in steps is one undo step
    w2.data_tab.pixel_size.setValue(0.7)
    w2.data_tab.pixel_size.setValue(0.75)
    assert project.metadata.pixel_size == pytest.approx(0.75) and len(w2.history) == 1
    assert w2.undo()
    assert project.metadata.pixel_size == pytest.approx(0.65)
    assert w2.data_tab.pixel_size.value() == pytest.approx(0.65)  # the field follows


def test_paint_then_save_writes_only_that_frame(widget, movie, tmp_path, qtbot):
    v = widget.viewer
    v.add_image(movie.image, name="cells")
    v.add_labels(movie.labels, name="masks")
    widget.labels_combo.set_layer(v.layers["masks"])
    out = tmp_path / "p.zarr"
    widget.save(out)
    _wait(qtbot, widget)
    project = widget.project
    lab_layer = v.layers["masks"]
    assert lab_layer.data is project.labels  # the layer is a view of the project

    lab_layer.paint((4, 5, 5), 99, refresh=False)
    assert project.labels.dirty == {4}
    assert (4, 99) in project.graph
    widget.save()
    _wait(qtbot, widget)
    again = open_project(out)
    expected = movie.labels.copy()
    expected[4] = np.asarray(project.labels[4])
    np.testing.assert_array_equal(np.asarray(again.labels), expected)
    assert (4, 99) in again.graph


def test_save_without_image_layer_is_a_clear_error(widget, tmp_path, qtbot):
    widget.save(tmp_path / "nothing.zarr")
    assert "image layer" in widget.status.text()
    assert not (tmp_path / "nothing.zarr").exists()


def test_save_over_non_project_folder_refused(widget, movie, tmp_path, qtbot):
    widget.viewer.add_image(movie.image, name="cells")
    target = tmp_path / "important.zarr"
    target.mkdir()
    (target / "keep.txt").write_text("data")
    widget.save(target)
    _wait(qtbot, widget)
    assert "not an h4tracks project" in widget.status.text()
    assert (target / "keep.txt").read_text() == "data"


def test_reader_and_sample(make_napari_viewer, tmp_path, qtbot, widget):
    v = widget.viewer
    layers = v.open_sample("h4tracks", "migrating_cells")
    kinds = sorted(type(layer).__name__ for layer in layers)
    assert kinds == ["Image", "Labels", "Tracks"]
    tracks = v.layers["synthetic tracks (ground truth)"]
    assert tracks.graph  # the sample divides
    widget.image_combo.set_layer(v.layers["synthetic image"])
    widget.labels_combo.set_layer(v.layers["synthetic labels (ground truth)"])
    widget.tracks_combo.set_layer(tracks)
    out = tmp_path / "sample.zarr"
    widget.save(out)
    _wait(qtbot, widget)

    v2 = make_napari_viewer()
    opened = v2.open(out, plugin="h4tracks")
    assert sorted(type(layer).__name__ for layer in opened) == ["Image", "Labels", "Tracks"]
    assert layer_project(opened[0]) is not None
    # a widget opened afterwards adopts the project the reader created
    w3 = H4TracksWidget(v2)
    qtbot.addWidget(w3)
    assert w3.project is layer_project(opened[0])
    assert w3.labels_combo.layer() is not None

    import zarr

    from h4tracks.ui.reader import get_reader

    zarr.open_group(tmp_path / "plain.zarr", mode="w")
    assert get_reader(str(tmp_path / "plain.zarr")) is None
    assert get_reader(str(tmp_path / "missing.zarr")) is None


def test_load_bad_path_reports_error(widget, tmp_path):
    assert widget.load(tmp_path / "nope.zarr") is None
    assert "no such project" in widget.status.text()
    assert len(widget.viewer.layers) == 0


def test_data_tab_import_and_calibration(widget, movie, tmp_path, qtbot):
    path = tmp_path / "movie.ome.tif"
    tifffile.imwrite(path, movie.image, metadata={
        "axes": "TYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,
        "TimeIncrement": 30.0, "TimeIncrementUnit": "s"})
    project = widget.data_tab.import_image(path)
    assert project is widget.project
    assert widget.data_tab.pixel_size.value() == pytest.approx(0.5)
    assert widget.data_tab.frame_interval.value() == pytest.approx(30.0)
    tifffile.imwrite(tmp_path / "masks.tif", movie.labels)
    layer = widget.data_tab.import_labels(tmp_path / "masks.tif")
    assert widget.labels_combo.layer() is layer
    # wrong shape is refused with a message
    tifffile.imwrite(tmp_path / "bad.tif", movie.labels[:, :10])
    assert widget.data_tab.import_labels(tmp_path / "bad.tif") is None
    assert "shape" in widget.status.text()
    # the labels layer is not yet the project's: save makes a new project with both
    widget.data_tab.pixel_size.setValue(0.7)
    widget.save(tmp_path / "imp.zarr")
    _wait(qtbot, widget)
    p = open_project(tmp_path / "imp.zarr")
    assert p.metadata.pixel_size == pytest.approx(0.7)
    assert p.labels is not None and len(p.graph) > 0
    assert Path(p.metadata.source).name == "movie.ome.tif"


def test_import_multichannel_asks_for_channel(widget, movie, tmp_path, monkeypatch):
    from qtpy.QtWidgets import QInputDialog

    two = np.stack([movie.image, movie.image // 2], axis=1)  # (T, C, Y, X)
    path = tmp_path / "two.ome.tif"
    tifffile.imwrite(path, two, metadata={"axes": "TCYX", "Channel": {"Name": ["DAPI", "GFP"]}})
    asked = {}

    def choose(parent, title, label, items, *args):
        asked["items"] = list(items)
        return "GFP", True

    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(choose))
    project = widget.data_tab.import_image(path)
    assert asked["items"] == ["DAPI", "GFP"]
    assert project.metadata.channel == "GFP"
    np.testing.assert_array_equal(np.asarray(project.image), movie.image // 2)


def _user_close():
    """A close event as the window system sends it (spontaneous) when the user closes."""
    from qtpy.QtGui import QCloseEvent

    class UserClose(QCloseEvent):
        def spontaneous(self) -> bool:  # read by our filter (Python), not by Qt
            return True

    return UserClose()


def test_closing_napari_with_unsaved_work_asks_first(widget, movie, tmp_path, qtbot):
    v = widget.viewer
    v.add_image(movie.image, name="cells")
    assert widget.current_project() is not None
    assert not widget.has_unsaved_work()  # a bare imported image is not work yet
    v.add_labels(movie.labels, name="masks")
    widget.labels_combo.set_layer(v.layers["masks"])
    widget.current_project()
    assert widget.has_unsaved_work()  # segmentation that was never saved
    answers: list[str] = []
    widget.ask_unsaved = lambda project: answers.pop(0)
    window = v.window._qt_window

    answers.append("cancel")
    assert widget.eventFilter(window, _user_close()) is True  # the close is stopped
    out = tmp_path / "p.zarr"
    widget.save(out)
    _wait(qtbot, widget)
    assert not widget.has_unsaved_work()
    assert widget.eventFilter(window, _user_close()) is False  # nothing to ask: no dialog

    v.layers["masks"].paint((2, 5, 5), 77, refresh=False)
    assert widget.has_unsaved_work()
    answers.append("discard")
    assert widget.confirm_discard() and not answers
    assert not widget.has_unsaved_work()  # the same closing does not ask twice
    qtbot.wait(10)  # back in the event loop: the answer no longer holds
    answers.append("save")
    assert widget.eventFilter(window, _user_close()) is False  # saved, then closes
    assert not widget.has_unsaved_work()
    assert int(np.asarray(open_project(out).labels[2])[5, 5]) == 77
    # a programmatic close (scripts, tests) never opens the dialog
    from qtpy.QtGui import QCloseEvent

    v.layers["masks"].paint((3, 5, 5), 78, refresh=False)
    assert widget.eventFilter(window, QCloseEvent()) is False


def test_recovery_copy_after_a_crash_is_offered_on_open(widget, movie, tmp_path, qtbot,
                                                       make_napari_viewer):
    """A kill of napari loses at most the last recovery interval: the copy is offered when
    the project is opened again, restored as one undoable step, and dropped on save."""
    from h4tracks.core.project import Project
    from h4tracks.core.recovery import recovery_path
    from h4tracks.core.store import save_project

    path = save_project(Project(movie.image, movie.labels.copy()), tmp_path / "p.zarr")
    project = widget.load(path)
    assert widget.write_recovery_copy() is None  # nothing unsaved: nothing written
    layer = widget.project_labels_layer()
    layer.paint((2, 20, 20), 500, refresh=False)  # napari painting, recorded as a step
    assert widget.history.can_undo
    assert widget.write_recovery_copy() == recovery_path(path)
    assert widget.write_recovery_copy() is None  # unchanged since the last copy
    painted = project.labels.frame(2).copy()
    # "crash": a new napari opens the project without the painting saved
    w2 = H4TracksWidget(make_napari_viewer())
    qtbot.addWidget(w2)
    offers = []
    w2.ask_restore = lambda p, written: offers.append(written) or True
    reopened = w2.load(path)
    assert len(offers) == 1
    np.testing.assert_array_equal(reopened.labels.frame(2), painted)
    assert 2 in reopened.curated_frames
    assert w2.undo()  # the restore is one step
    np.testing.assert_array_equal(reopened.labels.frame(2), movie.labels[2])
    assert w2.redo()
    w2.save()
    _wait(qtbot, w2)
    assert not recovery_path(path).exists()  # saved: the copy is gone
    np.testing.assert_array_equal(open_project(path).labels.frame(2), painted)
    widget.ask_unsaved = lambda p: "discard"
