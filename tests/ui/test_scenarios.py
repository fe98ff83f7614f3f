"""End-to-end scenarios: a user at a shown napari window, with real mouse, keys and menus.

Every input is a Qt event (see ``_events.Gui``): strokes are dragged on the vispy canvas,
cells are clicked, Ctrl+Z / E / D are pressed on the canvas, File › Close Window is the menu
bar's QAction, Ctrl+W / Ctrl+Q are pressed on the main window, and the Save / Discard /
Cancel prompt is answered by clicking its button. The data are small synthetic movies made
here, added as layers (like dropped TIFFs) and chosen in the widget's combos.
"""

from __future__ import annotations

import numpy as np
import pytest
from _clicks import centre
from _events import CTRL, SHIFT, Gui, components
from qtpy.QtCore import Qt

from h4tracks.core.actions import same_lineage
from h4tracks.core.evaluation import curated_vs_auto
from h4tracks.core.runs import RunStep
from h4tracks.core.stash import FrameStash
from h4tracks.core.store import open_project
from h4tracks.ui.main_widget import H4TracksWidget

T, Y, X = 12, 96, 96
W = 12  # cell width (px)
#: cell id -> top-left corner in frame 0; every cell moves 1 px right per frame
CELLS = {1: (10, 10), 2: (10, 50), 3: (50, 20), 4: (50, 60)}
CENTRE = (Y / 2, X / 2)


def make_labels(n_frames: int = T, *, shift: int = 0, empty_from: int | None = None,
                shape: tuple[int, int] = (Y, X)) -> np.ndarray:
    """Square cells moving 1 px per frame (``shift`` moves them down; frames from
    ``empty_from`` on are empty)."""
    lab = np.zeros((n_frames, *shape), np.uint32)
    for t in range(n_frames if empty_from is None else min(empty_from, n_frames)):
        for i, (y, x) in CELLS.items():
            lab[t, y + shift: y + shift + W, x + t: x + t + W] = i
    return lab


def make_image(labels: np.ndarray) -> np.ndarray:
    noise = np.random.default_rng(0).integers(0, 60, labels.shape)
    return (100 + 800 * (labels > 0) + noise).astype(np.uint16)


def seg_step(frames, masks: np.ndarray, name: str = "fake") -> RunStep:
    """What a segmentation run returns for ``frames`` (no Cellpose needed)."""
    stash = FrameStash.of({int(t): masks[t] for t in frames}, masks.shape[1:])
    return RunStep("segment", {"model": name}, frames=stash, description="segmentation")


@pytest.fixture
def gui(make_napari_viewer, qtbot):
    """napari shown, the h4tracks widget docked in it (so its close guard is installed)."""
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1400, 900)
    # a window the user closes is deleted by Qt; here it is only hidden, so that the viewer
    # fixture can still close the viewer at teardown (the closing itself is unchanged)
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
    widget = H4TracksWidget(viewer)
    viewer.window.add_dock_widget(widget, name="h4tracks", area="right")
    qtbot.waitUntil(widget.isVisible)
    g = Gui(viewer, widget, qtbot)
    yield g
    # teardown closes the window: never a modal prompt there
    widget.ask_unsaved = lambda _project: "discard"
    g.stop()
    assert not g.unexpected, g.unexpected


def open_layers(g: Gui, labels: np.ndarray | None, image: np.ndarray | None = None):
    """Add an image (and labels) layer as a dropped TIFF would, choose them in the combos,
    and show the whole frame. Returns the labels layer (None without labels)."""
    v, w = g.viewer, g.widget
    img = v.add_image(make_image(labels) if image is None else image, name="cells")
    w.image_combo.set_layer(img)
    layer = None
    if labels is not None:
        layer = v.add_labels(labels.copy(), name="masks")
        w.labels_combo.set_layer(layer)
        assert w.project is not None and layer.data is w.project.labels
    g.fit(CENTRE, max(labels.shape[1:]) if labels is not None else max(Y, X))
    return layer


def wait_idle(g: Gui, timeout: int = 60_000) -> None:
    g.qtbot.waitUntil(lambda: not g.widget.busy, timeout=timeout)


def remove_by_click(g: Gui, t: int, label: int) -> None:
    """Remove mode (its button), then a click on cell ``label`` of frame ``t``."""
    seg = g.widget.segmentation_tab
    if seg.mode != "remove_cell":
        g.press(seg.mode_buttons["remove_cell"])
    g.frame(t)
    g.click(*centre(g.widget.project.labels.frame(t), label))
    assert label not in np.unique(g.widget.project.labels.frame(t)), g.widget.status.text()


def run_tracking(g: Gui, method: str) -> None:
    tab = g.widget.tracking_tab
    tab.method_combo.setCurrentIndex(tab.method_combo.findData(method))
    g.press(tab.run_btn)
    assert g.widget.busy
    wait_idle(g)
    assert g.widget.project.metadata.provenance[-1]["params"]["method"] == method, (
        g.widget.status.text())


# ------------------------------------------------------------------------------ 1
def test_brush_stroke_undo_redo_with_keys(gui):
    w = gui.widget
    labels = make_labels()
    layer = open_layers(gui, labels)
    project = w.project
    # an earlier edit: D (remove mode) and a click on cell 2 of frame 3
    gui.frame(3)
    gui.key(Qt.Key.Key_D)
    assert w.segmentation_tab.mode == "remove_cell"
    gui.click(*centre(labels[3], 2))
    assert 2 not in np.unique(project.labels.frame(3))
    gui.key(Qt.Key.Key_D)  # remove mode off
    assert w.segmentation_tab.mode is None

    # a brush stroke across background of frame 5
    gui.frame(5)
    before = np.asarray(project.labels.frame(5)).copy()
    n = w.session.next_free_label()
    layer.mode = "paint"
    layer.brush_size = 3
    layer.selected_label = n
    gui.drag([(80, 10), (80, 40)])
    stroke = np.asarray(project.labels.frame(5)) == n
    assert stroke[80, 10:41].all() and stroke[78:83].sum() == stroke.sum()
    assert (before[stroke] == 0).all()  # only background was painted
    assert project.curated_frames == {3, 5}
    assert len(w.history) == 2 and "paint" in w.status.text()

    gui.key(Qt.Key.Key_Z, CTRL)  # undo: the stroke only
    np.testing.assert_array_equal(project.labels.frame(5), before)
    assert 2 not in np.unique(project.labels.frame(3))  # the removal is not undone
    assert project.curated_frames == {3}
    np.testing.assert_array_equal(np.asarray(layer.data[5]), before)  # the layer shows it

    gui.key(Qt.Key.Key_Z, CTRL | SHIFT)  # redo
    assert (np.asarray(project.labels.frame(5)) == n).sum() == stroke.sum()
    assert project.curated_frames == {3, 5}


# ------------------------------------------------------------------------------ 2
def test_next_free_id_never_reuses_a_removed_id(gui):
    w = gui.widget
    labels = make_labels()
    layer = open_layers(gui, labels)
    project = w.project
    remove_by_click(gui, 6, 4)  # the largest id

    gui.key(Qt.Key.Key_E)
    new = int(layer.selected_label)
    assert layer.mode == "paint" and w.segmentation_tab.mode is None
    assert new > int(labels.max())  # larger than any id ever used, the removed 4 included
    gui.drag([(84, 30), (84, 70)])
    assert (np.asarray(project.labels.frame(6))[84, 30:71] == new).all()

    gui.key(Qt.Key.Key_Z, CTRL)
    gui.key(Qt.Key.Key_Z, CTRL)
    np.testing.assert_array_equal(project.labels.frame(6), labels[6])  # cell 4 is back
    for t in range(T):
        assert set(components(project.labels.frame(t)).values()) == {1}, t
    gui.key(Qt.Key.Key_E)
    assert int(layer.selected_label) > new  # an id once painted is not handed out again


# ------------------------------------------------------------------------------ 3
def _saved_with_edit(gui, tmp_path):
    """A project saved to tmp_path, then an unsaved edit (cell 2 of frame 3 removed)."""
    w = gui.widget
    labels = make_labels()
    open_layers(gui, labels)
    path = tmp_path / "p.zarr"
    w.save(path)
    wait_idle(gui)
    assert not w.has_unsaved_work(), w.status.text()
    remove_by_click(gui, 3, 2)
    assert w.has_unsaved_work()
    return w.project, path, labels


def _edit_kept(project, labels) -> bool:
    return 2 not in np.unique(project.labels.frame(3)) and (
        np.array_equal(project.labels.frame(4), labels[4]))


def test_close_window_menu_cancel_then_save(gui, tmp_path):
    project, path, labels = _saved_with_edit(gui, tmp_path)
    close = gui.menu_action("File", "Close Window")

    gui.activate()
    gui.answer("cancel")
    close.trigger()
    gui.qtbot.waitUntil(gui.answered, timeout=10_000)
    assert gui.window.isVisible()
    assert _edit_kept(project, labels) and gui.widget.has_unsaved_work()
    assert "p.zarr" in gui.prompts[-1]
    assert 2 in np.unique(open_project(path).labels.frame(3))  # nothing written

    gui.activate()
    gui.answer("save")
    close.trigger()
    gui.qtbot.waitUntil(lambda: not gui.window.isVisible(), timeout=10_000)
    assert gui.answered()
    saved = open_project(path)
    assert 2 not in np.unique(saved.labels.frame(3))
    np.testing.assert_array_equal(saved.labels.frame(4), labels[4])
    assert 3 in saved.curated_frames


def test_close_keys_cancel_then_save(gui, tmp_path):
    project, path, labels = _saved_with_edit(gui, tmp_path)
    for key in (Qt.Key.Key_W, Qt.Key.Key_Q):  # Ctrl+W: Close Window, Ctrl+Q: Exit
        gui.activate()
        gui.answer("cancel")
        gui.key(key, CTRL, target=gui.window)
        gui.qtbot.waitUntil(gui.answered, timeout=10_000)
        assert gui.window.isVisible(), key
        assert _edit_kept(project, labels) and gui.widget.has_unsaved_work()
    assert len(gui.prompts) == 2

    gui.activate()
    gui.answer("save")
    gui.key(Qt.Key.Key_W, CTRL, target=gui.window)
    gui.qtbot.waitUntil(lambda: not gui.window.isVisible(), timeout=10_000)
    assert gui.answered()
    assert 2 not in np.unique(open_project(path).labels.frame(3))


def test_closing_the_dock_asks_first(gui, tmp_path):
    """The dock's own close button (its title bar's x) asks too: Cancel keeps the panel."""
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QDockWidget, QPushButton

    _saved_with_edit(gui, tmp_path)
    dock = gui.widget.parent()
    while not isinstance(dock, QDockWidget):
        dock = dock.parent()
    button = dock.findChildren(QPushButton, "QTitleBarCloseButton")[0]
    gui.answer("cancel")
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    gui.qtbot.waitUntil(gui.answered, timeout=10_000)
    assert dock.isVisible() and gui.widget.has_unsaved_work()


# ------------------------------------------------------------------------------ 4
def test_working_project_without_saving(gui):
    w = gui.widget
    labels = make_labels()
    open_layers(gui, labels)
    assert w.project is not None and w.project.path is None
    remove_by_click(gui, 2, 1)
    assert "no project" not in w.status.text()

    analysis = w.analysis_tab
    gui.press(analysis.compute_btn)
    wait_idle(gui)
    assert analysis.table is not None and len(analysis.table) > 0, w.status.text()
    assert "no project" not in w.status.text()
    gui.press(analysis.assistant.find_btn)
    assert analysis.assistant.suspicious is not None, w.status.text()
    assert "no project" not in w.status.text()
    assert w.project.path is None  # still the working project, never saved


# ------------------------------------------------------------------------------ 5
def test_partial_run_keeps_the_snapshot_of_a_curated_frame(gui):
    w = gui.widget
    first = make_labels()
    open_layers(gui, None, image=make_image(first))
    project = w.project
    assert project is not None and project.labels is None
    assert w.apply_run(seg_step(range(T), first), project)
    assert w.project_labels_layer() is not None

    remove_by_click(gui, 3, 3)  # curate frame 3 with a click
    assert 3 in project.curated_frames
    second = make_labels(shift=2)
    assert w.apply_run(seg_step([5, 6, 7, 8], second), project)

    np.testing.assert_array_equal(project.auto.labels.frame(3), first[3])
    np.testing.assert_array_equal(project.auto.labels.frame(6), second[6])
    np.testing.assert_array_equal(project.labels.frame(6), second[6])
    assert 3 in project.curated_frames
    report = curated_vs_auto(project, range(T), tracking=False)
    assert report.segmentation.f1 < 1.0


# ------------------------------------------------------------------------------ 6
def test_tracking_run_undo_button_and_lap_after_curation(gui):
    w = gui.widget
    labels = make_labels()
    open_layers(gui, None, image=make_image(labels))
    project = w.project
    assert w.apply_run(seg_step(range(T), labels), project)
    graph = project.graph.copy()
    provenance = [dict(e) for e in project.metadata.provenance]
    auto_edges = project.auto.graph.edge_array().copy()
    auto_labels = np.asarray(project.auto.labels).copy()

    run_tracking(gui, "overlap")
    assert project.graph.n_edges == len(CELLS) * (T - 1), w.tracking_tab.report.text()
    assert project.metadata.provenance[-1]["step"] == "track"

    gui.press(w.undo_btn)
    assert same_lineage(project.graph, graph)
    assert project.metadata.provenance == provenance
    np.testing.assert_array_equal(project.auto.graph.edge_array(), auto_edges)
    np.testing.assert_array_equal(np.asarray(project.auto.labels), auto_labels)

    remove_by_click(gui, 3, 1)
    run_tracking(gui, "lap")
    assert project.graph.n_edges > 0 and 3 in project.curated_frames
    report = curated_vs_auto(project, range(T), tracking=False)
    assert report.segmentation.f1 < 1.0


# ------------------------------------------------------------------------------ 7
def test_global_tracking_with_empty_last_frames(gui):
    w = gui.widget
    labels = make_labels(empty_from=T - 8)
    open_layers(gui, labels)
    run_tracking(gui, "global")
    status = (w.status.text() + " " + w.tracking_tab.report.text()).lower()
    assert "scipy" not in status, status
    assert w.project.graph.n_edges == len(CELLS) * (T - 8 - 1), status


# ------------------------------------------------------------------------------ 8
def test_evaluate_finishing_at_once_reenables_buttons(gui):
    w = gui.widget
    tiny = make_labels(3)
    open_layers(gui, None, image=make_image(tiny))
    assert w.apply_run(seg_step(range(3), tiny), w.project)
    ev = w.evaluation_tab
    reports = []
    for _ in range(10):
        gui.press(ev.eval_btn)  # asserts the button is enabled
        # the job ends, then its button comes back (the moment between the two is
        # test_not_busy_only_after_the_job_cleaned_up)
        gui.qtbot.waitUntil(lambda: not w.busy and ev.eval_btn.isEnabled(), timeout=10_000)
        assert ev.report is not None and all(ev.report is not r for r in reports)
        reports.append(ev.report)
        assert ev.eval_btn.isEnabled() and ev.isEnabled() and ev.export_btn.isEnabled()
        assert w.tracking_tab.run_btn.isEnabled() and w.save_btn.isEnabled()


def test_not_busy_only_after_the_job_cleaned_up(gui):
    """When ``busy`` turns False the job's clean-up is done (what waiting for ``not busy``
    relies on). Found by this suite: clean-up and idle were two queued slots, so for a
    moment a finished job had disabled buttons (test_cancel_keeps_labels failed once)."""
    w = gui.widget
    tiny = make_labels(3)
    open_layers(gui, None, image=make_image(tiny))
    assert w.apply_run(seg_step(range(3), tiny), w.project)
    ev = w.evaluation_tab
    at_idle: list[bool] = []
    set_busy = w._set_busy

    def spy(worker, *args, **kwargs):
        set_busy(worker, *args, **kwargs)
        if worker is None:
            at_idle.append(ev.eval_btn.isEnabled())

    w._set_busy = spy
    gui.press(ev.eval_btn)
    wait_idle(gui)
    assert at_idle == [True]


# ------------------------------------------------------------------------------ 9
def test_full_loop(gui, tmp_path, monkeypatch):
    from h4tracks.ui import evaluation_tab as evaluation_module
    from h4tracks.ui import main_widget as main_module

    w = gui.widget
    labels = make_labels()
    open_layers(gui, labels)
    project = w.project
    run_tracking(gui, "overlap")
    assert project.graph.n_edges == len(CELLS) * (T - 1)

    tab = w.tracking_tab
    # unlink: cut cell 1's track out of frames 4..5 (clicks, then Confirm)
    gui.press(tab.mode_buttons["unlink_cells"])
    for t in (4, 5):
        gui.frame(t)
        gui.click(*centre(labels[t], 1))
    gui.press(tab.mode_buttons["unlink_cells"])
    g = project.graph
    assert not g.has_edge((3, 1), (4, 1)) and not g.has_edge((5, 1), (6, 1))
    assert g.has_edge((4, 1), (5, 1))
    # link it back to frame 3 (clicks in frames 3 and 4, then Confirm)
    gui.press(tab.mode_buttons["link_cells"])
    for t in (3, 4):
        gui.frame(t)
        gui.click(*centre(labels[t], 1))
    gui.press(tab.mode_buttons["link_cells"])
    assert project.graph.has_edge((3, 1), (4, 1))
    assert project.graph.n_edges == len(CELLS) * (T - 1) - 1

    ev = w.evaluation_tab
    gui.press(ev.eval_btn)
    wait_idle(gui)
    assert ev.report is not None and ev.report.tracking is not None, w.status.text()
    report = tmp_path / "report.json"
    monkeypatch.setattr(evaluation_module.QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(report), "JSON (*.json)")))
    gui.press(ev.export_btn)
    assert all((tmp_path / f"report{ext}").is_file() for ext in (".json", ".md", ".html"))

    saved = tmp_path / "loop.zarr"
    monkeypatch.setattr(main_module.QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(saved), "")))
    gui.press(w.save_as_btn)
    wait_idle(gui)
    assert project.path is not None and not w.has_unsaved_work(), w.status.text()

    remove_by_click(gui, 7, 3)  # an edit after saving, then discarded on closing
    gui.activate()
    gui.answer("discard")
    gui.menu_action("File", "Close Window").trigger()
    gui.qtbot.waitUntil(lambda: not gui.window.isVisible(), timeout=10_000)
    assert gui.answered()

    again = open_project(saved)
    assert again.graph.has_edge((3, 1), (4, 1)) and again.graph.has_edge((4, 1), (5, 1))
    assert not again.graph.has_edge((5, 1), (6, 1))
    assert again.graph.n_edges == len(CELLS) * (T - 1) - 1
    np.testing.assert_array_equal(again.labels.frame(7), labels[7])  # the discarded edit
