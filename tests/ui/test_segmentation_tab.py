"""Segmentation tab tests with a real napari viewer and the real shipped Cellpose demo model
(run under Xvfb)."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from _clicks import background, centre
from napari.utils.key_bindings import coerce_keybinding

from h4tracks.core.project import Project
from h4tracks.core.segmentation.models import ModelRegistry, demo_model_file
from h4tracks.datasets.synthetic import make_movie
from h4tracks.ui.hotkeys import HOTKEYS, duplicate_keys, key_of
from h4tracks.ui.main_widget import H4TracksWidget
from h4tracks.ui.segmentation_tab import PREVIEW_LAYER


@pytest.fixture(autouse=True)
def cfg(tmp_path, monkeypatch):
    """An isolated model registry per test."""
    d = tmp_path / "config"
    monkeypatch.setenv("H4TRACKS_CONFIG_DIR", str(d))
    return d


@pytest.fixture(scope="module")
def movie():
    return make_movie(n_frames=3, shape=(64, 64), n_cells=4, radius=6, seed=5)



@pytest.fixture
def curated(widget, movie):
    """The widget showing a project with the ground-truth labels."""
    project = Project(movie.image, movie.labels.copy(), metadata={"name": "gt"})
    widget.show_project(project)
    widget.viewer.dims.set_current_step(0, 0)  # napari opens on the middle frame
    return widget, project


def _wait(qtbot, w: H4TracksWidget, timeout: int = 120_000) -> None:
    qtbot.waitUntil(lambda: not w.busy, timeout=timeout)




# ---------------------------------------------------------------------------------- runs
def test_run_segmentation_from_tab(widget, movie, qtbot):
    import torch

    project = Project(movie.image, metadata={"name": "raw"})
    widget.show_project(project)
    tab = widget.segmentation_tab
    assert tab.model_combo.currentData() == "h4tracks-demo"
    assert "(bundled)" in tab.model_combo.currentText()
    tab.gpu.setChecked(True)
    worker = tab.run_segmentation()
    assert worker is not None and widget.cancel_btn.isVisibleTo(widget)
    _wait(qtbot, widget)
    assert not widget.cancel_btn.isVisibleTo(widget)
    assert project.labels is not None
    layer = widget.project_labels_layer()
    assert layer is not None and layer.data is project.labels and layer.editable
    assert widget.labels_combo.layer() is layer
    assert coerce_keybinding("E") in layer.keymap  # the new layer got the hotkeys
    text = tab.report.text()
    assert "segmented 3 of 3 frame(s) with h4tracks-demo" in text, widget.status.text()
    if not torch.cuda.is_available():
        assert "CPU" in text  # the GPU fallback message is shown
    assert project.metadata.provenance[-1]["step"] == "segment"
    # the run is one undo step: undo removes the labels it created, redo brings them back
    assert widget.history.can_undo and widget.undo() and project.labels is None
    assert widget.project_labels_layer() is None  # the layer went with the labels
    assert widget.redo() and project.labels is not None
    layer = widget.project_labels_layer()
    assert layer is not None and layer.data is project.labels


def test_preview_leaves_project_untouched(curated, qtbot):
    widget, project = curated
    before = np.asarray(project.labels).copy()
    n_prov = len(project.metadata.provenance)
    tab = widget.segmentation_tab
    tab.frames_edit.setText("1")
    assert tab.run_preview() is not None
    _wait(qtbot, widget)
    assert "previewed 1 of 1 frame(s)" in tab.report.text(), widget.status.text()
    layer = widget.viewer.layers[PREVIEW_LAYER]
    assert layer.data.shape == project.shape and layer.data is not project.labels
    assert not np.asarray(layer.data)[[0, 2]].any()  # only the previewed frame is filled
    np.testing.assert_array_equal(np.asarray(project.labels), before)
    assert project.labels.dirty == set()
    assert len(project.metadata.provenance) == n_prov
    assert widget.labels_combo.layer() is widget.project_labels_layer()


def test_bad_frames_refused_before_running(curated):
    widget, _ = curated
    widget.segmentation_tab.frames_edit.setText("7:9")
    assert widget.segmentation_tab.run_segmentation() is None
    assert "select no frame" in widget.status.text()
    assert not widget.busy


def test_cancel_keeps_labels(curated, qtbot):
    widget, project = curated
    before = np.asarray(project.labels).copy()
    tab = widget.segmentation_tab
    tab.run_segmentation()
    widget.cancel_worker()  # before the first frame: nothing is segmented
    _wait(qtbot, widget)
    assert "segmented 0 of 3 frame(s) (cancelled)" in tab.report.text(), widget.status.text()
    np.testing.assert_array_equal(np.asarray(project.labels), before)
    assert widget.project_labels_layer().editable


def test_training_cancel_registers_nothing(curated, qtbot):
    widget, _ = curated
    tab = widget.segmentation_tab
    # prefilled with the current frame, following the slider until the user types
    widget.viewer.dims.set_current_step(0, 2)
    assert tab.train_frames.text() == "2"
    widget.viewer.dims.set_current_step(0, 0)
    assert tab.train_frames.text() == "0"
    tab.train_name.setText("mine")
    tab.base_combo.setCurrentIndex(0)  # from scratch
    tab.train_frames.setText("0")  # one tiny frame cannot be split for validation
    assert tab.train() is not None
    _wait(qtbot, widget)
    assert "curate a second frame" in widget.status.text()
    tab.train_frames.setText("0,1")
    assert tab.train() is not None
    widget.cancel_worker()
    _wait(qtbot, widget)
    assert "cancelled" in widget.status.text()
    assert "mine" not in ModelRegistry().names()


# ---------------------------------------------------------------------------------- curation
def test_remove_cell_undo_redo_and_background_click(curated):
    widget, project = curated
    tab = widget.segmentation_tab
    frame0 = project.labels.frame(0).copy()
    label = int(np.unique(frame0)[1])
    y, x = centre(frame0, label)
    tab.set_mode("remove_cell")
    assert tab.mode_buttons["remove_cell"].isChecked()
    assert widget.project_labels_layer().mode == "pan_zoom"  # a click must not paint

    # background click: error shown, nothing changes
    assert not tab.handle_click(*background(frame0))
    assert "no cell" in widget.status.text()
    assert not widget.history.can_undo

    # through the viewer's mouse callback, in world coordinates
    event = SimpleNamespace(type="mouse_press", button=1, position=(0.0, float(y), float(x)))
    tab._on_mouse_press(widget.viewer, event)
    assert label not in project.labels.frame(0)
    assert widget.undo_btn.isEnabled() and not widget.redo_btn.isEnabled()
    assert widget.undo()
    np.testing.assert_array_equal(project.labels.frame(0), frame0)
    assert widget.redo_btn.isEnabled()
    assert widget.redo()
    assert label not in project.labels.frame(0)
    tab.toggle_mode("remove_cell")
    assert tab.mode is None and not tab.mode_buttons["remove_cell"].isChecked()


def test_merge_separate_select(curated):
    widget, project = curated
    tab = widget.segmentation_tab
    edits = []
    widget.edited.connect(lambda: edits.append(1))
    frame0 = project.labels.frame(0).copy()
    a, b = (int(v) for v in np.unique(frame0)[1:3])

    tab.set_mode("merge_cells")
    assert not tab.handle_click(*centre(frame0, a))  # first click only chooses
    assert tab.handle_click(*centre(frame0, b))
    merged = project.labels.frame(0)
    assert b not in merged and np.count_nonzero(merged == a) == np.count_nonzero(
        (frame0 == a) | (frame0 == b))
    assert edits == [1]
    widget.undo()
    np.testing.assert_array_equal(project.labels.frame(0), frame0)

    # separate: a cell in one piece is refused; cut it, then click a piece
    tab.set_mode("separate_region")
    y, x = centre(frame0, a)
    assert not tab.handle_click(y, x)
    assert "one piece" in widget.status.text()
    project.labels[0, y, :] = np.where(project.labels.frame(0)[y] == a, 0,
                                       project.labels.frame(0)[y])  # erase a line
    cut = project.labels.frame(0).copy()
    top = np.argwhere(cut == a)[0]
    new_id = int(cut.max()) + 1
    assert tab.handle_click(float(top[0]), float(top[1]))
    after = project.labels.frame(0)
    assert after[top[0], top[1]] == new_id and a in after  # the other piece keeps the ID
    widget.undo()
    np.testing.assert_array_equal(project.labels.frame(0), cut)

    tab.set_mode("select_id")
    assert tab.handle_click(*centre(cut, b))
    assert widget.project_labels_layer().selected_label == b
    assert not tab.handle_click(*background(cut))


def test_next_free_id_and_relabel(curated):
    widget, project = curated
    tab = widget.segmentation_tab
    layer = widget.project_labels_layer()
    frame0 = project.labels.frame(0)
    assert tab.next_free_id() == int(frame0.max()) + 1
    assert layer.selected_label == int(frame0.max()) + 1 and layer.mode == "paint"

    # a detached fragment of cell a gets its own ID with Relabel frame
    a = int(np.unique(frame0)[1])
    ys, xs = np.nonzero(frame0 == 0)
    far = np.argmax((ys - np.nonzero(frame0 == a)[0].mean()) ** 2)
    project.labels[0, ys[far], xs[far]] = a
    before = project.labels.frame(0).copy()
    assert tab.relabel_frame()
    after = project.labels.frame(0)
    assert after[ys[far], xs[far]] == before.max() + 1
    widget.undo()
    np.testing.assert_array_equal(project.labels.frame(0), before)


def test_history_cleared_for_another_project(curated, movie):
    widget, project = curated
    tab = widget.segmentation_tab
    tab.set_mode("remove_cell")
    frame0 = project.labels.frame(0)
    tab.handle_click(*centre(frame0, int(np.unique(frame0)[1])))
    assert widget.history.can_undo
    widget.show_project(Project(movie.image, movie.labels.copy(), metadata={"name": "b"}))
    assert not widget.history.can_undo and not widget.undo_btn.isEnabled()


# ---------------------------------------------------------------------------------- models
def test_add_custom_model_dialog(widget, tmp_path):
    tab = widget.segmentation_tab
    bad = tmp_path / "notes.pth"
    bad.write_text("not weights")
    dialog = tab.make_add_model_dialog()
    dialog.path_edit.setText(str(bad))
    dialog.name_edit.setText("bad")
    assert not dialog.try_accept()
    assert "not a Cellpose model file" in dialog.error.text()
    assert ModelRegistry().custom_entries() == []

    good = tmp_path / "copy.pth"
    shutil.copy(demo_model_file(), good)
    dialog.path_edit.setText(str(good))
    dialog.name_edit.setText("mine")
    dialog.diameter.setValue(14.0)
    assert dialog.try_accept()
    tab.refresh_models(select=dialog.entry.name)
    assert tab.model_combo.currentData() == "mine"
    assert tab.diameter.value() == pytest.approx(14.0)  # prefilled from the entry
    assert tab.remove_model_btn.isEnabled()
    assert tab.base_combo.findData("mine") >= 0
    assert tab.remove_model(confirm=False)
    assert "mine" not in ModelRegistry().names()
    assert tab.model_combo.currentData() == "h4tracks-demo"
    assert not tab.remove_model_btn.isEnabled()


# ---------------------------------------------------------------------------------- hotkeys
def test_hotkey_table_and_bindings(curated):
    widget, project = curated
    tab = widget.segmentation_tab
    assert duplicate_keys() == {}
    assert key_of("next_free_id") == "E" and key_of("track_single_cell") == "S"
    assert key_of("undo") == "Control-Z" and key_of("redo") == "Control-Shift-Z"
    assert "[E]" in tab.next_id_btn.toolTip()
    assert f"[{key_of('remove_cell')}]" in tab.mode_buttons["remove_cell"].toolTip()
    assert "[Control-Z]" in widget.undo_btn.toolTip()
    layer = widget.project_labels_layer()
    e = coerce_keybinding("E")
    assert e in widget.viewer.keymap and e in layer.keymap  # layer: wins over napari's eraser
    for action in ("undo", "redo", "remove_cell", "relabel_frame"):
        assert coerce_keybinding(HOTKEYS[action].key) in layer.keymap

    layer.keymap[e](layer)  # napari calls bound keys with the provider
    assert layer.selected_label == int(project.labels.frame(0).max()) + 1
    layer.keymap[coerce_keybinding(key_of("remove_cell"))](layer)
    assert tab.mode == "remove_cell"
    frame0 = project.labels.frame(0).copy()
    tab.handle_click(*centre(frame0, int(np.unique(frame0)[1])))
    widget.viewer.keymap[coerce_keybinding("Control-Z")](widget.viewer)
    np.testing.assert_array_equal(project.labels.frame(0), frame0)


def test_curated_frames_marked_by_edits_and_button(curated, qtbot):
    widget, project = curated
    tab = widget.segmentation_tab
    assert not tab.curated_btn.isChecked() and tab.train_frames.text() == "0"
    frame0 = project.labels.frame(0)
    label = int(np.unique(frame0)[1])
    tab.set_mode("remove_cell")
    assert tab.handle_click(*centre(frame0, label))
    assert project.curated_frames == {0} and tab.curated_btn.isChecked()
    assert tab.train_frames.text() == "0"  # training defaults to the curated frames
    widget.undo()
    assert project.curated_frames == frozenset() and not tab.curated_btn.isChecked()
    widget.viewer.dims.set_current_step(0, 2)
    tab.curated_btn.click()  # mark frame 2 by hand
    assert project.curated_frames == {2} and tab.train_frames.text() == "2"
    # a run over all frames keeps the curated frame byte for byte
    before = project.labels.frame(2).copy()
    tab.set_mode(None)
    tab.frames_edit.setText("1:3")
    tab.run_segmentation()
    _wait(qtbot, widget)
    np.testing.assert_array_equal(project.labels.frame(2), before)
    assert "kept 1 curated frame" in tab.report.text()
    assert project.curated_frames == {2} and widget.history.can_undo  # the run: one step
    # "Re-segment uncurated frames" ignores the frame box and the overwrite box
    tab.overwrite_curated.setChecked(True)
    tab.frames_edit.setText("0")
    tab.resegment_btn.click()
    _wait(qtbot, widget)
    np.testing.assert_array_equal(project.labels.frame(2), before)
    assert "segmented 2 of 2 frame(s)" in tab.report.text()  # frames 0 and 1, not 2
    assert "kept 1 curated frame" in tab.report.text()
    tab.overwrite_curated.setChecked(False)
    tab.curated_btn.click()  # unmark
    assert project.curated_frames == frozenset()
