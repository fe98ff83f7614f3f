"""Tracking tab tests with a real napari viewer (run under Xvfb)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from _clicks import background, centre
from napari.layers import Tracks
from napari.utils.key_bindings import coerce_keybinding
from qtpy.QtCore import QPoint, Qt
from qtpy.QtWidgets import QMessageBox

from h4tracks.core.actions import same_lineage
from h4tracks.core.project import Project
from h4tracks.core.tracking import LapParams, OverlapParams, track_project
from h4tracks.datasets.synthetic import make_movie
from h4tracks.ui import tracking_tab as tracking_module
from h4tracks.ui.hotkeys import HOTKEYS, duplicate_keys, key_of
from h4tracks.ui.layers import layer_project
from h4tracks.ui.main_widget import H4TracksWidget
from h4tracks.ui.tracks_view import parse_track_ids


@pytest.fixture(scope="module")
def movie():
    # 6 cells moving through 6 frames; GT label = track id (CTC convention)
    return make_movie(n_frames=6, shape=(96, 96), n_cells=6, radius=7, seed=1)



def _show(widget: H4TracksWidget, movie, *, tracked: bool) -> Project:
    project = Project(movie.image, movie.labels.copy(), metadata={"name": "gt"})
    if tracked:
        track_project(project, "lap")
    widget.show_project(project)
    widget.viewer.dims.set_current_step(0, 0)  # napari opens on the middle frame
    widget.tracking_tab.confirm = lambda _title, _text: True  # no modal dialog in tests
    return project


@pytest.fixture
def untracked(widget, movie):
    return widget, _show(widget, movie, tracked=False)


@pytest.fixture
def tracked(widget, movie):
    return widget, _show(widget, movie, tracked=True)


def _wait(qtbot, w: H4TracksWidget) -> None:
    qtbot.waitUntil(lambda: not w.busy, timeout=180_000)  # generous: CI machines vary




def _tracks_layer(widget: H4TracksWidget) -> Tracks:
    layer = widget.tracking_tab.view.layer()
    assert layer is not None
    return layer


def _assert_layer_matches(widget: H4TracksWidget, project: Project) -> None:
    """The Tracks layer shows exactly the project's graph (no filter)."""
    data, parents = project.graph.to_napari()
    layer = _tracks_layer(widget)
    np.testing.assert_array_equal(layer.data, data)
    assert layer.graph == parents


def _click(widget: H4TracksWidget, project: Project, t: int, label: int) -> bool:
    widget.viewer.dims.set_current_step(0, t)  # the user steps to the frame, then clicks
    return widget.tracking_tab.handle_click(*centre(project.labels.frame(t), label))


# ---------------------------------------------------------------------------------- params
def test_parameter_forms_follow_the_models(widget):
    tab = widget.tracking_tab
    for key, model in (("lap", LapParams), ("overlap", OverlapParams)):
        form = tab.forms[key]
        assert list(form.editors) == list(model.model_fields)
        for name, field in model.model_fields.items():
            assert form.editors[name].toolTip() == field.description
        assert form.params() == model()  # defaults shown, None fields included
    lap = tab.forms["lap"]
    lap.editors["gap_distance"].setValue(12.0)
    lap.editors["max_gap"].setValue(2)
    assert tab.params("lap") == LapParams(gap_distance=12.0, max_gap=2)
    assert lap.editors["max_distance"].minimum() > 0  # gt=0
    assert tab.forms["overlap"].editors["min_overlap"].maximum() == 1.0  # le=1
    tab.forms["overlap"].editors["measure"].setCurrentIndex(1)
    assert tab.params("overlap").measure == "iou"
    tab.method_combo.setCurrentIndex(1)
    assert tab.params_stack.currentWidget() is tab.forms["overlap"]


def test_parse_track_ids():
    assert parse_track_ids("3, 7, 12-15") == [3, 7, 12, 13, 14, 15]
    assert parse_track_ids(" 4 2;2 - 3") == [2, 3, 4]
    for bad in ("", "x", "5-3", "1.5"):
        with pytest.raises(ValueError):
            parse_track_ids(bad)


# ---------------------------------------------------------------------------------- runs
@pytest.mark.parametrize("method", ["lap", "overlap", "global"])
def test_run_tracking_from_tab(untracked, movie, qtbot, method):
    widget, project = untracked
    tab = widget.tracking_tab
    assert not any(isinstance(layer, Tracks) for layer in widget.viewer.layers)
    labels_layer = widget.project_labels_layer()
    tab.method_combo.setCurrentIndex(tab.method_combo.findData(method))
    worker = tab.run_tracking()
    assert worker is not None and widget.cancel_btn.isVisibleTo(widget)
    assert not labels_layer.editable  # no painting while the worker reads the labels
    _wait(qtbot, widget)
    g = project.graph
    assert g.n_edges == 6 * 5 and g.track_ids().size == 6, tab.report.text()
    assert f"6 tracks, 30 links, {g.n_divisions} divisions" in tab.report.text()
    assert labels_layer.editable
    # the Tracks layer was created as a view of the project, and the labels stay active
    layer = _tracks_layer(widget)
    assert layer_project(layer) is project and widget.tracks_combo.layer() is layer
    assert widget.viewer.layers.selection.active is labels_layer
    _assert_layer_matches(widget, project)
    assert project.metadata.provenance[-1]["params"]["method"] == method
    # the run is one undo step: undo brings back the (empty) tracks from before, redo the run
    assert len(widget.history) == 1 and widget.undo_btn.isEnabled()
    assert widget.undo() and project.graph.n_edges == 0
    _assert_layer_matches(widget, project)
    assert widget.redo() and project.graph is g
    _assert_layer_matches(widget, project)


def _jumping(movie) -> SimpleNamespace:
    """``movie`` seen by a stage that jumps by 57 px between frames 2 and 3."""
    n, h, w = movie.labels.shape
    labels = np.zeros((n, h + 40, w + 40), movie.labels.dtype)
    image = np.zeros(labels.shape, movie.image.dtype)
    for t in range(n):
        o = 40 if t >= 3 else 0
        labels[t, o:o + h, 40 - o:40 - o + w] = movie.labels[t]
        image[t, o:o + h, 40 - o:40 - o + w] = movie.image[t]
    return SimpleNamespace(image=image, labels=labels)


@pytest.mark.parametrize("method", ["lap", "overlap"])
def test_trackers_follow_cells_through_a_stage_jump(widget, movie, qtbot, method):
    """The stage jumps by 57 px (beyond LAP's 45 px max. step, and no cell overlaps itself)
    between frames 2 and 3: with the defaults (*Compensate stage drift* ticked) LAP and overlap
    keep the 6 tracks whole; the user unticks it with the mouse and runs again: the tracks
    break at the jump."""
    project = _show(widget, _jumping(movie), tracked=False)
    tab = widget.tracking_tab
    tab.method_combo.setCurrentIndex(tab.method_combo.findData(method))
    box = tab.forms[method].editors["drift"]
    assert box.isVisibleTo(tab) and box.isChecked() and box.text() == "Compensate stage drift"
    qtbot.mouseClick(tab.run_btn, Qt.MouseButton.LeftButton)
    _wait(qtbot, widget)
    assert project.metadata.provenance[-1]["params"]["drift"] is True
    assert project.graph.n_edges == 6 * 5 and project.graph.track_ids().size == 6
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(4, box.height() // 2))
    assert not box.isChecked()
    qtbot.mouseClick(tab.run_btn, Qt.MouseButton.LeftButton)
    _wait(qtbot, widget)
    assert project.metadata.provenance[-1]["params"]["drift"] is False
    assert project.graph.n_edges < 6 * 5 and project.graph.track_ids().size > 6
    # the two runs are two undo steps: undo brings back the whole tracks
    assert widget.undo() and project.graph.track_ids().size == 6


def test_cancel_leaves_tracks_unchanged(tracked, qtbot, monkeypatch):
    widget, project = tracked
    before = project.graph.copy()
    real = tracking_module.compute_tracking

    def wait_for_cancel(project, method, params, progress, cancel, **kw):
        qtbot.waitUntil(cancel, timeout=60_000)  # deterministic: Cancel comes first
        return real(project, method, params, progress, cancel, **kw)

    monkeypatch.setattr(tracking_module, "compute_tracking", wait_for_cancel)
    widget.tracking_tab.run_tracking()
    widget.cancel_worker()
    _wait(qtbot, widget)
    assert "cancelled" in widget.tracking_tab.report.text()
    assert "Tracking cancelled" in widget.status.text()
    assert project.graph is not before and project.graph == before
    _assert_layer_matches(widget, project)
    assert widget.project_labels_layer().editable


def test_a_bug_in_a_job_is_one_sentence_and_loses_nothing(tracked, qtbot, monkeypatch,
                                                          caplog):
    """An error nobody foresaw (here a KeyError in the tracker) ends the job with one sentence
    naming the job, not "KeyError: 'x'"; the traceback goes to the log; nothing changes."""
    widget, project = tracked
    before = project.graph.copy()

    def broken(*a, **k):
        raise KeyError("x")

    monkeypatch.setattr(tracking_module, "compute_tracking", broken)
    with caplog.at_level("ERROR"):
        qtbot.mouseClick(widget.tracking_tab.run_btn, Qt.MouseButton.LeftButton)
        _wait(qtbot, widget)
    text = widget.status.text()
    assert text.startswith("Tracking (") and "failed: unexpected KeyError 'x'" in text, text
    assert "\n" not in text
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)
    assert project.graph == before


def test_invalid_or_missing_input(widget, movie):
    tab = widget.tracking_tab
    assert tab.run_tracking() is None  # no layers at all
    assert "choose an image layer" in widget.status.text()
    project = Project(movie.image, metadata={"name": "raw"})
    widget.show_project(project)
    assert tab.run_tracking() is None
    assert "no segmentation to track" in widget.status.text()


# ---------------------------------------------------------------------------------- curation
def test_single_cell_tracking_click_and_key(untracked):
    widget, project = untracked
    tab = widget.tracking_tab
    before = project.graph.copy()
    frame0 = project.labels.frame(0)

    tab.on_mode_key("track_single_cell")  # the button
    assert tab.mode == "track_single_cell" and widget.project_labels_layer().mode == "pan_zoom"
    assert not tab.handle_click(*background(frame0))
    assert "no cell" in widget.status.text() and not widget.history.can_undo
    y, x = centre(frame0, 1)
    event = SimpleNamespace(type="mouse_press", button=1, position=(0.0, float(y), float(x)))
    tab._on_mouse_press(widget.viewer, event)
    assert project.graph.n_edges == 5
    assert project.graph.track_nodes(project.graph.track_id((0, 1)))[-1] == (5, 1)
    assert len(widget.history) == 1  # one undo step for the whole track
    _assert_layer_matches(widget, project)  # the Tracks layer appeared with the first link
    assert widget.undo() and same_lineage(project.graph, before)
    _assert_layer_matches(widget, project)

    # key S over a cell tracks it at once (the key bound on the labels layer)
    tab.set_mode(None)
    layer = widget.project_labels_layer()
    y, x = centre(frame0, 2)
    widget.viewer.cursor.position = (0.0, float(y), float(x))
    layer.keymap[coerce_keybinding(key_of("track_single_cell"))](layer)
    assert project.graph.track_nodes(project.graph.track_id((0, 2)))[-1] == (5, 2)
    assert project.graph.n_edges == 5
    # over background it switches the click mode on instead
    widget.viewer.cursor.position = (0.0, *map(float, background(frame0)))
    assert not tab.track_cell_under_mouse()
    assert tab.mode == "track_single_cell"
    # a tracked cell cannot be followed again
    assert not tab.track_cell(0, 2) and "cannot be followed" in widget.status.text()


def test_single_cell_key_follows_a_cell_through_a_stage_jump(widget, movie, qtbot):
    """Key S over a cell of frame 0 follows it through the 57 px stage jump between frames 2
    and 3 to the last frame (the Overlap form's *Compensate stage drift*, ticked by default);
    with it unticked by a mouse click, S over another cell stops at the jump."""
    project = _show(widget, _jumping(movie), tracked=False)
    tab = widget.tracking_tab
    layer = widget.project_labels_layer()
    frame0, last = project.labels.frame(0), project.labels.shape[0] - 1
    press_s = layer.keymap[coerce_keybinding(key_of("track_single_cell"))]
    widget.viewer.cursor.position = (0.0, *map(float, centre(frame0, 1)))
    press_s(layer)
    assert project.graph.track_nodes(project.graph.track_id((0, 1)))[-1] == (last, 1)
    tab.method_combo.setCurrentIndex(tab.method_combo.findData("overlap"))
    box = tab.forms["overlap"].editors["drift"]
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(4, box.height() // 2))
    assert not box.isChecked()
    widget.viewer.cursor.position = (0.0, *map(float, centre(frame0, 2)))
    press_s(layer)
    nodes = project.graph.track_nodes(project.graph.track_id((0, 2)))
    assert (3, 2) in project.graph  # the cell is there after the jump ...
    assert nodes[:3] == [(0, 2), (1, 2), (2, 2)] and (3, 2) not in nodes  # ... and lost


def test_link_confirm_undo_redo(untracked):
    widget, project = untracked
    tab = widget.tracking_tab
    before = project.graph.copy()
    tab.on_mode_key("link_cells")
    button = tab.mode_buttons["link_cells"]
    assert button.text() == "Confirm link" and tab.cancel_click_btn.isVisibleTo(tab)
    assert not tab.confirm_pending()  # one cell is not enough
    assert _click(widget, project, 0, 3)
    assert _click(widget, project, 1, 4)
    assert _click(widget, project, 1, 3)  # a second click in a frame corrects the first
    widget.viewer.dims.set_current_step(0, 2)
    assert not tab.handle_click(*background(project.labels.frame(2)))  # nothing recorded
    assert _click(widget, project, 2, 3)
    assert tab.picked == [(0, 3), (1, 3), (2, 3)]
    tab.on_mode_key("link_cells")  # pressing K again confirms
    assert tab.mode is None and button.text() == "Link"
    g = project.graph
    assert g.edge_array().tolist() == [[0, 3, 1, 3], [1, 3, 2, 3]]
    assert len(widget.history) == 1
    after = g.copy()
    _assert_layer_matches(widget, project)
    assert widget.undo() and same_lineage(project.graph, before)
    assert widget.redo() and same_lineage(project.graph, after)
    _assert_layer_matches(widget, project)

    # an invalid link is refused, nothing changes and the clicks are kept
    tab.set_mode("link_cells")
    _click(widget, project, 1, 5)
    _click(widget, project, 2, 3)  # already linked to (1, 3)
    assert not tab.confirm_pending() and "already linked" in widget.status.text()
    assert tab.mode == "link_cells" and len(tab.picked) == 2
    # Escape (bound on the labels layer) cancels
    layer = widget.project_labels_layer()
    layer.keymap[coerce_keybinding(key_of("cancel_click"))](layer)
    assert tab.mode is None and tab.picked == []
    assert same_lineage(project.graph, after)


def test_unlink_confirm_undo_redo(tracked):
    widget, project = tracked
    tab = widget.tracking_tab
    before = project.graph.copy()
    n_tracks = before.track_ids().size
    tab.set_mode("unlink_cells")
    assert tab.mode_buttons["unlink_cells"].text() == "Confirm unlink"
    assert _click(widget, project, 2, 1)
    assert _click(widget, project, 3, 1)
    assert tab.confirm_pending()
    g = project.graph
    assert not g.has_edge((1, 1), (2, 1)) and not g.has_edge((3, 1), (4, 1))
    assert g.has_edge((2, 1), (3, 1))
    assert g.track_ids().size == n_tracks + 2  # before / the piece / after
    _assert_layer_matches(widget, project)
    assert widget.undo() and same_lineage(project.graph, before)
    _assert_layer_matches(widget, project)
    assert widget.redo() and not project.graph.has_edge((1, 1), (2, 1))
    # cells of two different tracks: refused
    tab.set_mode("unlink_cells")
    _click(widget, project, 0, 2)
    _click(widget, project, 3, 4)
    assert not tab.confirm_pending() and "not on the track" in widget.status.text()


# ---------------------------------------------------------------------------------- filter
def test_filter_changes_only_the_view(tracked):
    widget, project = tracked
    tab = widget.tracking_tab
    before = project.graph.copy()
    ids = project.graph.track_ids()
    keep = [int(ids[0]), int(ids[2]), int(ids[3])]
    tab.filter_edit.setText(f"{keep[0]}, {keep[1]}-{keep[2]}")
    assert tab.show_listed()
    layer = _tracks_layer(widget)
    assert sorted(np.unique(layer.data[:, 0]).astype(int).tolist()) == keep
    assert "showing 3 of the 3 listed" in tab.filter_info.text()
    assert project.graph == before and not widget.history.can_undo

    # the filter stays applied after an edit (and an undo)
    tab.set_mode("unlink_cells")
    t0_node = project.graph.track_nodes(keep[0])[0]
    _click(widget, project, 0, t0_node[1])
    _click(widget, project, 1, t0_node[1])
    assert tab.confirm_pending()
    layer = _tracks_layer(widget)
    data, _ = tab.view.view_data(project)
    np.testing.assert_array_equal(layer.data, data)
    assert set(np.unique(data[:, 0]).astype(int).tolist()) <= set(keep)
    assert len(data) < len(before.to_napari()[0])  # the cut-off part got a new id
    widget.undo()

    tab.filter_edit.setText("99999")
    assert not tab.show_listed() and "none of the listed" in widget.status.text()
    tab.filter_edit.setText("1;x")
    assert not tab.show_listed() and "'x'" in widget.status.text()
    tab.show_all()
    assert tab.view.filter is None and tab.filter_info.text() == "showing all tracks"
    _assert_layer_matches(widget, project)
    assert same_lineage(project.graph, before)


def test_delete_listed_and_displayed(tracked, monkeypatch):
    widget, project = tracked
    tab = widget.tracking_tab
    before = project.graph.copy()
    ids = [int(i) for i in project.graph.track_ids()]

    # the real dialog answering No: nothing happens
    tab.confirm = tab._ask
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.No)
    tab.filter_edit.setText(str(ids[0]))
    assert not tab.delete_listed() and project.graph == before
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert tab.delete_listed()
    assert project.graph.n_edges == before.n_edges - 5
    _assert_layer_matches(widget, project)
    assert widget.undo() and same_lineage(project.graph, before)

    # delete displayed: the filtered tracks only
    asked = []
    tab.confirm = lambda title, text: asked.append(text) or True
    tab.filter_edit.setText(f"{ids[1]}, {ids[2]}")
    assert tab.show_listed()
    assert tab.delete_displayed()
    assert "10 link(s) of 2 track(s)" in asked[-1]
    assert project.graph.n_edges == before.n_edges - 10
    # their cells stay, as one-cell tracks (the first cell keeps the id)
    layer = _tracks_layer(widget)
    assert len(layer.data) <= 2
    tab.show_all()
    _assert_layer_matches(widget, project)
    assert widget.undo() and same_lineage(project.graph, before)
    # a view without any point hides the layer (napari cannot show zero tracks)
    tab.view.set_filter([99999])
    assert not layer.visible
    tab.show_all()
    assert layer.visible
    _assert_layer_matches(widget, project)
    tab.filter_edit.setText("99999")
    assert not tab.delete_listed() and "no track with id 99999" in widget.status.text()


# ---------------------------------------------------------------------------------- hotkeys
def test_hotkeys_bound(tracked):
    widget, _ = tracked
    tab = widget.tracking_tab
    assert duplicate_keys() == {}
    layer = widget.project_labels_layer()
    for action in ("track_single_cell", "link_cells", "unlink_cells", "cancel_click"):
        key = coerce_keybinding(HOTKEYS[action].key)
        assert key in layer.keymap and key in widget.viewer.keymap
    assert f"[{key_of('link_cells')}]" in tab.mode_buttons["link_cells"].toolTip()
    layer.keymap[coerce_keybinding(key_of("unlink_cells"))](layer)
    assert tab.mode == "unlink_cells"
    # a segmentation click mode takes the clicks over
    widget.segmentation_tab.set_mode("remove_cell")
    event = SimpleNamespace(type="mouse_press", button=1, position=(0.0, 1.0, 1.0))
    tab._on_mouse_press(widget.viewer, event)
    assert tab.mode is None
    tab.set_mode("link_cells")
    assert widget.segmentation_tab.mode is None  # and the other way round


def test_retrack_with_corrections(tracked, qtbot):
    widget, project = tracked
    tab = widget.tracking_tab
    assert tab.retrack_with_corrections() is None  # no curated frames yet
    assert "curate at least 2" in widget.status.text()
    project.set_curated([0, 1, 2])
    curated_links = {tuple(e) for e in project.graph.edge_array().tolist() if e[2] <= 2}
    before_edges = {tuple(e) for e in project.graph.edge_array().tolist()}
    assert tab.retrack_with_corrections() is not None
    _wait(qtbot, widget)
    assert "re-tracked with corrections from 3 curated frames" in tab.report.text()
    after = {tuple(e) for e in project.graph.edge_array().tolist()}
    assert curated_links <= after  # the user's links in curated frames are kept
    assert project.metadata.provenance[-1]["step"] == "retrack"
    assert "div_balance" in project.metadata.provenance[-1]["params"]["weights"]
    _assert_layer_matches(widget, project)
    widget.undo()  # the re-track is one undo step
    assert project.graph.n_edges == len(before_edges)
    assert {tuple(e) for e in project.graph.edge_array().tolist()} == before_edges
