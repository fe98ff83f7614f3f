"""The Tracks layer as a patched view with features, in a shown napari window, real events.

* Edits made with the Tracking tab's buttons and clicks on the canvas (unlink, link, delete,
  Undo, Redo) reach the layer as a patch, and the layer then equals one built from scratch
  from the graph (rows, divisions, features, colours, what the mouse finds).
* The layer controls' *color by* offers the metrics, and an edit keeps the choice.
* A click on a row of the Analysis tab's metrics table selects that track in the viewer and
  the lineage tree and plots its speed and area.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _clicks import centre
from _events import LEFT, NO_MOD, Gui, dividing_movie, open_window
from napari.layers import Tracks
from qtpy.QtCore import Qt
from qtpy.QtTest import QTest
from qtpy.QtWidgets import QApplication

from h4tracks.core.analysis.tracks_display import TracksDisplay
from h4tracks.core.project import Project
from h4tracks.ui.plot_panel import TRACK_PLOT_DOCK

DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def _shot(g: Gui, name: str, tmp_path: Path) -> np.ndarray:
    """A screenshot of the whole window, saved under ``tmp_path`` (under ``docs/images``
    with H4TRACKS_DOC_IMAGES=1, to refresh the documentation's pictures)."""
    folder = DOC_IMAGES if os.environ.get("H4TRACKS_DOC_IMAGES") == "1" else tmp_path
    image = g.viewer.screenshot(str(folder / name), canvas_only=False, flash=False)
    assert image.shape[0] > 500 and image[..., :3].std() > 10  # not a black window
    return image


@pytest.fixture(scope="module")
def movie():
    return dividing_movie(16)


@pytest.fixture
def gui(make_napari_viewer, qtbot, movie):
    """A shown napari window with the h4tracks widget and a project with the movie's true
    lineage (label = track id) and a frame interval (speeds in px/min)."""
    g = open_window(make_napari_viewer, qtbot, movie, name="cells", frame_interval=5.0,
                    time_unit="min")
    g.widget.tracking_tab.confirm = lambda _title, _text: True  # the delete confirmation
    g.frame(0)
    g.fit((64, 64), 128)
    yield g
    g.widget.ask_unsaved = lambda _project: "discard"
    g.stop()
    assert not g.unexpected, g.unexpected


def _settle() -> None:
    for _ in range(3):
        QApplication.processEvents()


def _assert_layer_is_rebuilt(layer: Tracks, project: Project) -> None:
    """The layer holds what a Tracks layer built from scratch from the graph holds."""
    md = project.metadata
    ref = TracksDisplay(pixel_size=md.pixel_size, frame_interval=md.frame_interval,
                        time_unit=md.time_unit)
    ref.rebuild(project.graph)
    fresh = Tracks(ref.data, graph=ref.parents, features=ref.features,
                   color_by=layer.color_by, colormap=layer.colormap)
    np.testing.assert_array_equal(layer.data, fresh.data)
    assert layer.graph == fresh.graph
    pd.testing.assert_frame_equal(layer.features, fresh.features)
    np.testing.assert_array_equal(layer.track_colors, fresh.track_colors)
    np.testing.assert_array_equal(layer.track_connex, fresh.track_connex)
    np.testing.assert_array_equal(layer.track_times, fresh.track_times)
    for a, b in ((layer._manager.graph_vertices, fresh._manager.graph_vertices),
                 (layer.graph_connex, fresh.graph_connex)):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)
    # what the mouse finds: every cell of every frame gives its track id
    for t in np.unique(fresh.data[:, 1]):
        rows = fresh.data[fresh.data[:, 1] == t]
        found = [layer.get_value(tuple(r[1:])) for r in rows]
        assert found == rows[:, 0].astype(int).tolist()
        labels, _ = layer._manager.track_labels(int(t))
        assert sorted(labels) == sorted(fresh._manager.track_labels(int(t))[0])


def _middle_node(project: Project, t: int):
    g = project.graph
    for node in g.frame_nodes(t):
        p, kids = g.predecessor(node), g.successors(node)
        if p is not None and p[0] == t - 1 and len(kids) == 1:
            return node
    raise AssertionError(f"no cell of frame {t} has a parent and one child")


def _click_cell(g: Gui, project: Project, node) -> None:
    g.frame(node[0])
    g.click(*centre(project.labels.frame(node[0]), node[1]))


def test_tracking_tab_edits_patch_the_layer_like_a_rebuild(gui):
    g = gui
    w = g.widget
    tab, view, project = w.tracking_tab, w.tracks_view, w.project
    layer = view.layer()
    _assert_layer_is_rebuilt(layer, project)
    cells = len(project.graph)
    node = _middle_node(project, 7)
    parent = project.graph.predecessor(node)

    def edited(kind: str = "patch") -> None:
        _settle()
        assert view.last_refresh_kind == kind
        _assert_layer_is_rebuilt(layer, project)

    # Unlink: the button, one cell clicked on the canvas, Confirm
    g.press(tab.mode_buttons["unlink_cells"])
    _click_cell(g, project, node)
    g.press(tab.mode_buttons["unlink_cells"])
    assert project.graph.predecessor(node) is None
    edited()
    assert view.last_colouring == "per track"  # track_id: one colour per track
    # colour by a per-cell feature: while its colour scale stays (a one-cell track keeps
    # the minimum speed at 0), only the new rows are coloured
    layer.color_by = "speed"
    other = _middle_node(project, 10)
    g.press(tab.mode_buttons["unlink_cells"])
    _click_cell(g, project, other)
    g.press(tab.mode_buttons["unlink_cells"])
    edited()
    assert view.last_colouring == "spliced"
    # Link the first cell back: its parent, then the cell, Confirm
    g.press(tab.mode_buttons["link_cells"])
    _click_cell(g, project, parent)
    _click_cell(g, project, node)
    g.press(tab.mode_buttons["link_cells"])
    assert project.graph.has_edge(parent, node)
    edited()
    assert layer.color_by == "speed"  # a rebuild through layer.data would reset it
    # Delete a track typed in the list (its cells stay, each a track of its own)
    tid = project.graph.track_id(node)
    tab.filter_edit.clear()
    QTest.keyClicks(tab.filter_edit, str(tid))
    g.press(tab.delete_listed_btn)
    assert project.graph.predecessor(node) is None and len(project.graph) == cells
    edited()
    # Undo four times, Redo once: the main widget's buttons
    for button in (w.undo_btn, w.undo_btn, w.undo_btn, w.undo_btn, w.redo_btn):
        g.press(button)
        edited()
    assert project.graph.predecessor(node) is None  # the unlink redone
    # a filter shows a subset: installed whole (small), still what a rebuild shows of it
    view.set_filter([tid])
    assert set(np.unique(layer.data[:, 0]).astype(int)) <= {tid}
    view.set_filter(None)
    edited("install")


def _color_by_combo(g: Gui, layer: Tracks):
    controls = g.viewer.window._qt_viewer.controls.widgets[layer]
    return controls._color_properties_combobox_control.color_by_combobox


def test_color_by_offers_the_metrics_and_survives_edits(gui, tmp_path):
    g = gui
    w = g.widget
    project, layer = w.project, w.tracks_view.layer()
    g.viewer.layers.selection.active = layer  # its controls are shown
    _settle()
    combo = _color_by_combo(g, layer)
    offered = [combo.itemText(i) for i in range(combo.count())]
    for name in ("track_id", "speed", "area", "mean_speed", "directness", "generation",
                 "n_points", "path_length"):
        assert name in offered
    by_id = layer.track_colors.copy()
    # the user picks "directness" with the keyboard in napari's own combo box
    combo.setFocus()
    QTest.keyClicks(combo, "directness")
    _settle()
    assert layer.color_by == "directness"
    assert not np.array_equal(layer.track_colors, by_id)
    _assert_layer_is_rebuilt(layer, project)
    # an edit made with the Tracking tab keeps the choice
    node = _middle_node(project, 5)
    tab = w.tracking_tab
    g.press(tab.mode_buttons["unlink_cells"])
    _click_cell(g, project, node)
    g.press(tab.mode_buttons["unlink_cells"])
    _settle()
    assert layer.color_by == "directness" and combo.currentText() == "directness"
    _assert_layer_is_rebuilt(layer, project)
    g.frame(15)
    g.fit((64, 64), 128)
    _settle()
    _shot(g, "tracks_color_by.png", tmp_path)


def test_metrics_row_selects_the_track_everywhere_and_plots_it(gui, tmp_path):
    g = gui
    w = g.widget
    project = w.project
    g.press(w.tracking_tab.lineage_btn)  # the Tracking tab's "Lineage tree" button
    tree = w.lineage_view
    g.qtbot.waitUntil(lambda: tree.canvas.native.isVisible(), timeout=5000)
    tab = w.analysis_tab
    g.press(tab.compute_btn)
    g.qtbot.waitUntil(lambda: tab.table is not None and not w.busy, timeout=60_000)
    # the longest track not starting in frame 0 (so the frame visibly changes)
    table = tab.table
    starts_later = table["first_frame"] > 0
    tid = int(table["track_id"][starts_later][np.argmax(table["n_points"][starts_later])])
    first = project.graph.track_nodes(tid)[0]
    assert g.viewer.dims.current_step[0] != first[0]
    proxy = tab.proxy
    row = next(r for r in range(proxy.rowCount())
               if proxy.index(r, 0).data() == str(tid))
    index = proxy.index(row, 0)
    tab.view.scrollTo(index)
    _settle()
    QTest.mouseClick(tab.view.viewport(), LEFT, NO_MOD, tab.view.visualRect(index).center())
    _settle()
    # the viewer: frame, camera on the cell, selected label
    assert g.viewer.dims.current_step[0] == first[0]
    attrs = project.graph.node(first)
    np.testing.assert_allclose(g.viewer.scene.camera.center[-2:], (attrs["y"], attrs["x"]),
                               atol=1e-6)
    assert w.project_labels_layer().selected_label == first[1]
    # the lineage tree rings the cell
    assert tree.selected == first
    # the plot of its speed and area over time, the layer's own per-cell values
    plot = tab.plots.track_plot
    assert plot is not None and plot.figure is not None
    speed_ax, area_ax = plot.figure.axes
    rows = np.flatnonzero(w.tracks_view.layer().data[:, 0] == tid)
    features = w.tracks_view.layer().features
    np.testing.assert_allclose(area_ax.lines[0].get_ydata(), features["area"].to_numpy()[rows])
    np.testing.assert_allclose(speed_ax.lines[0].get_ydata()[1:],
                               features["speed"].to_numpy()[rows][1:])
    np.testing.assert_allclose(area_ax.lines[0].get_xdata(),
                               w.tracks_view.layer().data[rows, 1] * 5.0)  # min
    assert TRACK_PLOT_DOCK in g.viewer.window.dock_widgets
    # keyboard: the next row selects the next track
    QTest.keyClick(tab.view, Qt.Key.Key_Down)
    _settle()
    below = int(table["track_id"][tab.model.rows[proxy.mapToSource(
        tab.view.currentIndex()).row()]])
    assert below != tid and tree.selected == project.graph.track_nodes(below)[0]
    g.window.resize(1700, 1100)  # room for the table, the plot and the tree
    _settle()
    tab.view.scrollTo(tab.view.currentIndex())
    _settle()
    _shot(g, "track_selected.png", tmp_path)
