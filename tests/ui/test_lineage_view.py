"""The lineage tree dock in a shown napari window, driven by real mouse and key events.

Clicks on the tree are Qt events on its vispy canvas (pressed at the pixel where the node is
drawn); clicks in the viewer go through ``_events.Gui``. Edits made in the tree must be one
undo step of the shared history, reach the project on disk when saved, and redraw the tree.
"""

from __future__ import annotations

import numpy as np
import pytest
from _clicks import centre
from _events import CTRL, LEFT, NO_MOD, SHIFT, dividing_movie, open_window
from qtpy.QtCore import Qt
from qtpy.QtTest import QTest
from qtpy.QtWidgets import QApplication

from h4tracks.core.graph import TrackGraph
from h4tracks.core.project import Project
from h4tracks.core.store import open_project
from h4tracks.ui.lineage_view import LineageView, track_colors

RIGHT = Qt.MouseButton.RightButton


@pytest.fixture(scope="module")
def movie():
    return dividing_movie(16)


@pytest.fixture
def gui(make_napari_viewer, qtbot, movie):
    """A shown napari window: the h4tracks widget on the right, the lineage tree below,
    a project with the movie's true lineage (label = track id, as in the CTC format)."""
    g = open_window(make_napari_viewer, qtbot, movie, name="cells")
    tree = g.widget.show_lineage_view()
    qtbot.waitUntil(lambda: tree.canvas.native.isVisible() and tree.canvas.native.height() > 150,
                    timeout=5000)
    tree.fit()
    g.frame(0)
    g.fit((64, 64), 128)
    yield g, tree
    g.widget.ask_unsaved = lambda _project: "discard"
    g.stop()
    assert not g.unexpected, g.unexpected


def _settle() -> None:
    for _ in range(3):
        QApplication.processEvents()


def click_node(tree: LineageView, node, button=LEFT, modifiers=NO_MOD) -> None:
    """Press and release at the canvas pixel where ``node`` is drawn."""
    _settle()
    point = tree.canvas_point(node)
    assert point is not None
    assert tree.node_at((point.x(), point.y())) == node  # the pixel really shows that node
    QTest.mousePress(tree.canvas.native, button, modifiers, point)
    QTest.mouseRelease(tree.canvas.native, button, modifiers, point)
    _settle()


def tree_key(tree: LineageView, key: Qt.Key, modifiers=NO_MOD) -> None:
    QTest.keyClick(tree.canvas.native, key, modifiers)
    _settle()


def _highlighted(tree: LineageView) -> list[tuple[float, float]]:
    """Where the highlight rings are drawn (what the user sees as selected)."""
    if not tree.highlight.visible:
        return []
    return [tuple(map(float, p[:2])) for p in tree.highlight._data["a_position"]]


def _middle_node(project: Project, t: int):
    """A cell of frame ``t`` with a parent and a child in the neighbouring frames."""
    g = project.graph
    for node in g.frame_nodes(t):
        p, kids = g.predecessor(node), g.successors(node)
        if p is not None and p[0] == t - 1 and len(kids) == 1 and kids[0][0] == t + 1:
            return node
    raise AssertionError(f"no cell of frame {t} has a parent and one child")


# ------------------------------------------------------------------------------ tests
def test_click_node_selects_cell_sets_frame_and_centres(gui):
    g, tree = gui
    w = g.widget
    project = w.project
    node = _middle_node(project, 9)
    assert g.viewer.dims.current_step[0] == 0
    click_node(tree, node)
    assert tree.selected == node
    assert g.viewer.dims.current_step[0] == 9
    layer = w.project_labels_layer()
    assert layer.selected_label == node[1]
    attrs = project.graph.node(node)
    np.testing.assert_allclose(g.viewer.scene.camera.center[-2:], (attrs["y"], attrs["x"]),
                               atol=1e-6)
    assert _highlighted(tree) == [tree.layout_model.position(node)]
    assert f"frame {node[0]}" in tree.info.text()
    # a click on empty tree space selects nothing new
    QTest.mouseClick(tree.canvas.native, LEFT, NO_MOD, tree.canvas_point(node) + _px(0, -200))
    assert tree.selected == node


def _px(dx: int, dy: int):
    from qtpy.QtCore import QPoint

    return QPoint(dx, dy)


def test_viewer_click_highlights_the_node(gui):
    g, tree = gui
    project = g.widget.project
    node = _middle_node(project, 5)
    g.frame(5)
    assert tree.selected != node
    g.click(*centre(project.labels.frame(5), node[1]))  # pan / zoom mode: a plain click
    g.qtbot.waitUntil(lambda: tree.selected == node, timeout=5000)
    assert _highlighted(tree) == [tree.layout_model.position(node)]
    # napari's own selection (e.g. the label picker) is followed as well
    other = next(n for n in project.graph.frame_nodes(5) if n != node)
    g.widget.project_labels_layer().selected_label = other[1]
    assert tree.selected == other
    assert g.viewer.dims.current_step[0] == 5  # the viewer selection does not move the frame


def test_cut_and_link_in_the_tree_are_undoable_and_saved(gui, tmp_path):
    g, tree = gui
    w = g.widget
    project = w.project
    node = _middle_node(project, 6)
    parent = project.graph.predecessor(node)
    path = tmp_path / "p.zarr"

    def saved_graph() -> TrackGraph:
        w.save(path)
        g.qtbot.waitUntil(lambda: not w.busy, timeout=60_000)
        return open_project(path).graph

    # U: cut the selected cell out of its track (one undo step)
    click_node(tree, node)
    steps = len(w.history)
    tree_key(tree, Qt.Key.Key_U)
    assert project.graph.predecessor(node) is None and not project.graph.successors(node)
    assert len(w.history) == steps + 1
    assert tree.layout_model.revision == project.graph.revision  # the tree was redrawn
    x_cut = tree.layout_model.position(node)[0]
    assert x_cut != tree.layout_model.position(parent)[0]  # a column of its own now

    # link it back to its parent: click the parent, Shift+click the cell, L
    click_node(tree, parent)
    click_node(tree, node, modifiers=SHIFT)
    assert tree.marked == node
    tree_key(tree, Qt.Key.Key_L)
    assert project.graph.has_edge(parent, node)
    assert len(w.history) == steps + 2
    assert tree.marked is None
    assert tree.layout_model.position(node)[0] == tree.layout_model.position(parent)[0]
    assert saved_graph().has_edge(parent, node)

    # Ctrl+Z on the tree undoes the link, in the project, the tree and on disk
    tree_key(tree, Qt.Key.Key_Z, CTRL)
    assert not project.graph.has_edge(parent, node)
    assert len(w.history) == steps + 1
    assert tree.layout_model.position(node)[0] == x_cut
    assert not saved_graph().has_edge(parent, node)
    # and Ctrl+Shift+Z redoes it
    tree_key(tree, Qt.Key.Key_Z, CTRL | SHIFT)
    assert project.graph.has_edge(parent, node)


def test_context_menu_deletes_a_track_and_undo_restores_it(gui):
    g, tree = gui
    w = g.widget
    project = w.project
    before = project.graph.copy()
    node = _middle_node(project, 4)
    tid = project.graph.track_id(node)
    click_node(tree, node, button=RIGHT)
    menu = tree.menu
    g.qtbot.waitUntil(lambda: menu.isVisible(), timeout=5000)
    action = next(a for a in menu.actions() if a.text() == "Delete this track")
    QTest.mouseClick(menu, LEFT, NO_MOD, menu.actionGeometry(action).center())
    _settle()
    assert project.graph.predecessor(node) is None and not project.graph.successors(node)
    assert tid not in project.graph.track_ids() or len(project.graph.track_nodes(tid)) == 1
    assert tree.layout_model.revision == project.graph.revision
    g.press(w.undo_btn)  # the main widget's Undo: same history, the tree follows
    assert project.graph == before
    assert tree.layout_model.revision == project.graph.revision


def test_tree_clicks_feed_the_tracking_tab_link_mode(gui):
    g, tree = gui
    w = g.widget
    tab = w.tracking_tab
    a, b = _middle_node(w.project, 3), _middle_node(w.project, 7)
    g.press(tab.mode_buttons["link_cells"])
    assert tab.mode == "link_cells"
    click_node(tree, a)
    click_node(tree, b)
    assert tab.picked == [a, b]


def test_colours_follow_the_tracks_layer(gui):
    g, tree = gui
    layer = g.widget.tracks_view.layer()
    assert layer is not None
    lay = tree.layout_model
    colors = track_colors(layer, lay.track_ids)
    for tid, color in zip(lay.track_ids, colors, strict=True):
        rows = np.flatnonzero(layer.data[:, 0] == tid)
        np.testing.assert_allclose(color, layer.track_colors[rows[0]], atol=1e-6)
    drawn = tree.markers._data["a_bg_color"].copy()
    np.testing.assert_allclose(drawn, colors[lay.node_track], atol=1e-6)
    layer.colormap = "viridis"  # the user recolours the Tracks layer: the tree follows
    _settle()
    recoloured = tree.markers._data["a_bg_color"]
    assert not np.allclose(recoloured, drawn)
    np.testing.assert_allclose(recoloured,
                               track_colors(layer, lay.track_ids)[lay.node_track], atol=1e-6)


def test_plugin_menu_entry_reuses_the_docked_widget(gui):
    g, _tree = gui
    _dock, view = g.viewer.window.add_plugin_dock_widget("h4tracks", "Lineage tree")
    assert isinstance(view, LineageView)
    assert view.main is g.widget
    assert view.layout_model is not None
    assert view.layout_model.n_nodes == len(g.widget.project.graph)
