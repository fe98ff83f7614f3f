"""The lineage tree dock: every lineage of the project as a tree, time going down.

A thin controller over :mod:`h4tracks.core.lineage_layout` (where each node goes), drawn with
vispy, napari's own renderer: one ``Line`` visual for all track and division segments, one
``Markers`` visual for the nodes, so a redraw after an edit is a few ``set_data`` calls. Above
:data:`MAX_MARKERS` nodes only track ends get markers (vispy's upload of 500k markers alone
takes ~100 ms); clicks still reach every node, since picking uses the layout, not the drawing.

Nodes take the colour the napari Tracks layer gives their track (its *color by* / colormap
carry over). A click on a node selects the cell: frame, camera centre and napari's selected
label follow (a Tracking-tab link / unlink mode picks it instead, like a viewer click);
selecting a cell in the viewer highlights it here. *Link*, *Cut* and *Delete track* (buttons,
right-click menu, keys L, U, Delete; Shift+click marks the second cell) build the core verbs
and go through :meth:`H4TracksWidget.apply_action`: one step of the shared undo history each.
The tree redraws on the main widget's ``edited`` signal (every edit, undo and redo).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QPoint
from qtpy.QtWidgets import QHBoxLayout, QLabel, QMenu, QPushButton, QVBoxLayout, QWidget
from vispy import scene

from h4tracks.core.lineage_layout import GAP, LineageLayout, layout_graph
from h4tracks.core.segmentation.label_edits import label_at
from h4tracks.core.tracking import delete_tracks, link, unlink
from h4tracks.errors import H4TracksError
from h4tracks.ui.cell_focus import show_cell

if TYPE_CHECKING:
    from h4tracks.core.actions import Action
    from h4tracks.core.graph import NodeKey
    from h4tracks.ui.main_widget import H4TracksWidget

log = logging.getLogger(__name__)

#: above this many nodes only track ends get markers (see the module docstring)
MAX_MARKERS = 100_000
#: keys of the tree canvas (vispy key names) -> verb
TREE_KEYS = {"L": "link", "U": "cut", "Delete": "delete", "Backspace": "delete", "F": "fit",
             "Escape": "clear"}
_WHITE = {"text_color": "white", "axis_color": "white", "tick_color": "white"}
_BUTTONS = {
    "link": ("Link", "Link the selected cell and the Shift+clicked cell (L)"),
    "cut": ("Cut", "Cut out the piece of track from the selected cell to the Shift+clicked "
                   "cell, or only the selected cell (U)"),
    "delete": ("Delete track", "Remove every link of the selected cell's track; its cells "
                               "stay (Delete)"),
    "fit": ("Fit", "Show every lineage (F)"),
}
_GREY = np.array([0.55, 0.55, 0.55, 1.0], np.float32)
_BACKGROUND = "#262930"  # napari's dark theme, so the dock looks part of the viewer
_CLICK_SLOP = 4  # px a press may move and still be a click (not a pan)


def track_colors(layer: Any | None, track_ids: np.ndarray) -> np.ndarray:
    """RGBA (K, 4) colour of each track as the napari Tracks ``layer`` draws it: the layer's
    colour of the track's first point (``track_colors`` follows ``data``, sorted by track id
    and time), so its *color by* / colormap carry over; grey for tracks it does not show.
    Without a layer, napari's default (turbo over the id range)."""
    ids = np.asarray(track_ids, np.int64)
    colors = getattr(layer, "track_colors", None)
    if layer is not None and colors is not None and len(colors) == len(layer.data):
        tid = np.asarray(layer.data[:, 0], np.int64)
        pos = np.minimum(np.searchsorted(tid, ids), max(tid.size - 1, 0))
        found = tid[pos] == ids if tid.size else np.zeros(ids.size, bool)
        out = np.tile(_GREY, (ids.size, 1))
        out[found] = np.asarray(colors, np.float32)[pos[found]]
        return out
    from napari.utils.colormaps import AVAILABLE_COLORMAPS

    if ids.size == 0:
        return np.zeros((0, 4), np.float32)
    norm = (ids - ids.min()) / max(1e-10, float(np.ptp(ids)))
    return np.asarray(AVAILABLE_COLORMAPS["turbo"].map(norm), np.float32)


class LineageView(QWidget):
    """The lineage tree of the main widget's current project (see the module docstring).

    Parameters
    ----------
    main
        The h4tracks main widget (project, ``apply_action``, viewer, ``edited`` signal).
    """

    def __init__(self, main: H4TracksWidget) -> None:
        super().__init__()
        self.main, self.viewer = main, main.viewer
        #: the layout drawn now (None without a project)
        self.layout_model: LineageLayout | None = None
        #: the selected cell (t, label) and a second, marked cell for link / cut
        self.selected: NodeKey | None = None
        self.marked: NodeKey | None = None
        #: seconds the last redraw took (layout + colours + upload), for profiling
        self.last_redraw_seconds = 0.0
        self._graph = self._labels_layer = self._tracks_layer = None  # type: Any
        #: the last right-click menu (None before the first)
        self.menu: QMenu | None = None
        self._press: tuple[float, float] | None = None
        self._selecting = False  # True while we set napari's selected label ourselves

        self.canvas = scene.SceneCanvas(keys=None, bgcolor=_BACKGROUND, size=(400, 300))
        grid = self.canvas.central_widget.add_grid(spacing=0)
        self.axis = scene.AxisWidget(orientation="left", axis_label="frame", axis_font_size=8,
                                     axis_label_margin=28, tick_label_margin=4, **_WHITE)
        self.axis.width_max = 48
        grid.add_widget(self.axis, row=0, col=0)
        self.view = grid.add_view(row=0, col=1)
        self.view.camera = scene.PanZoomCamera(aspect=None)
        self.view.camera.flip = (False, True, False)  # time goes down, like TrackScheme
        self.axis.link_view(self.view)
        self.lines = scene.visuals.Line(parent=self.view.scene, connect="segments",
                                        method="gl", width=2)
        self.markers = scene.visuals.Markers(parent=self.view.scene)
        self.frame_line = scene.visuals.Line(parent=self.view.scene, color=(1, 1, 1, 0.35),
                                             method="gl")
        self.highlight = scene.visuals.Markers(parent=self.view.scene)
        self.highlight.set_gl_state("translucent", depth_test=False)
        self.highlight.order = 10  # on top of the nodes

        self.info = QLabel("")
        self.info.setWordWrap(True)
        buttons = QHBoxLayout()
        #: the dock's buttons by verb (link, cut, delete, fit)
        self.buttons: dict[str, QPushButton] = {}
        for verb, (text, tip) in _BUTTONS.items():
            b = self.buttons[verb] = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(lambda _checked=False, v=verb: self.run_verb(v))
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.info)
        layout.addWidget(self.canvas.native, 1)

        self.canvas.events.mouse_press.connect(self._on_canvas_press)
        self.canvas.events.mouse_release.connect(self._on_canvas_release)
        self.canvas.events.key_press.connect(self._on_canvas_key)
        main.edited.connect(self.refresh)
        main.project_changed.connect(lambda _p: self.refresh(fit=True))
        self.viewer.dims.events.current_step.connect(self._draw_frame_line)
        self.viewer.mouse_drag_callbacks.append(self._on_viewer_press)
        self.refresh(fit=True)

    # ------------------------------------------------------------------ drawing
    def refresh(self, *, fit: bool = False) -> None:
        """Re-lay out the lineages if the graph changed and redraw (once per edit)."""
        t0 = time.perf_counter()
        project = self.main.project
        self._watch_layers()
        if project is None:
            self.layout_model, self._graph = None, None
            self.selected = self.marked = None
            self._draw()
            return
        graph = project.graph
        lay = self.layout_model
        # a new graph object (a run replaced it) may repeat an old revision number
        if lay is None or graph is not self._graph or lay.revision != graph.revision:
            self.layout_model, self._graph = layout_graph(graph), graph
        for attr in ("selected", "marked"):  # an edit may have removed the cell
            node = getattr(self, attr)
            if node is not None and node not in graph:
                setattr(self, attr, None)
        self._draw()
        if fit:
            self.fit()
        self.last_redraw_seconds = time.perf_counter() - t0
        log.info("lineage tree redrawn in %.3f s", self.last_redraw_seconds)

    def _draw(self, _event: Any = None) -> None:
        lay = self.layout_model
        if lay is None or lay.n_nodes == 0:
            for v in (self.lines, self.markers, self.highlight, self.frame_line):
                v.visible = False
            self._update_info()
            return
        colors = track_colors(self._tracks_layer, lay.track_ids)
        seg_colors = colors[lay.segment_track].copy()
        seg_colors[lay.segment_kind == GAP, 3] = 0.35  # a skipped frame is a faint line
        self.lines.visible = lay.segments.shape[0] > 0
        if self.lines.visible:
            self.lines.set_data(pos=lay.segments.reshape(-1, 2).astype(np.float32),
                                color=np.repeat(seg_colors, 2, axis=0))
        if lay.n_nodes <= MAX_MARKERS:
            pos = np.stack([lay.node_x, lay.node_t], axis=1)
            node_colors = colors[lay.node_track]
        else:
            pos, tracks = lay.key_points()
            node_colors = colors[tracks]
        self.markers.visible = True
        self.markers.set_data(pos.astype(np.float32), face_color=node_colors, size=7,
                              edge_width=0)
        self._draw_frame_line()
        self._show_selection()

    def _draw_frame_line(self, _event: Any = None) -> None:
        lay = self.layout_model
        if lay is None or lay.n_nodes == 0:
            return
        t = float(self.main.current_frame())
        x0, x1 = float(lay.track_x.min()) - 1, float(lay.track_x.max()) + 1
        self.frame_line.visible = True
        self.frame_line.set_data(pos=np.array([[x0, t], [x1, t]], np.float32))

    def _draw_highlight(self) -> None:
        lay = self.layout_model
        pos, edges = [], []
        for node, color in ((self.selected, (1, 1, 1, 1)), (self.marked, (1, 0.85, 0, 1))):
            p = None if lay is None or node is None else lay.position(node)
            if p is not None:
                pos.append(p)
                edges.append(color)
        self.highlight.visible = bool(pos)
        if pos:
            self.highlight.set_data(np.asarray(pos, np.float32), size=15, edge_width=2.5,
                                    edge_color=np.asarray(edges, np.float32),
                                    face_color=(0, 0, 0, 0))

    def _show_selection(self) -> None:
        self._draw_highlight()
        self._update_info()

    def _update_info(self) -> None:
        graph, lay = self._graph, self.layout_model
        if lay is None or graph is None:
            self.info.setText("no project: load one or choose layers")
        elif self.selected is None:
            self.info.setText(f"{lay.n_lineages} lineages, {lay.n_tracks} tracks. Click a cell "
                              "to select it, Shift+click a second one to link or cut; "
                              "right-click for actions")
        else:
            parts = [f"{what}: cell {n[1]} in frame {n[0]} (track {graph.track_id(n)})"
                     for what, n in (("selected", self.selected), ("marked", self.marked))
                     if n is not None]
            self.info.setText("; ".join(parts))

    def fit(self) -> None:
        """Zoom the tree out to show every lineage."""
        lay = self.layout_model
        if lay is None or lay.n_nodes == 0:
            return
        self.view.camera.set_range(
            x=(float(lay.track_x.min()) - 1, float(lay.track_x.max()) + 1),
            y=(float(lay.node_t.min()) - 1, float(lay.node_t.max()) + 1), z=(0, 1), margin=0)

    def _ensure_visible(self, node: NodeKey) -> None:
        """Pan the tree (same zoom) so that ``node`` is in view."""
        p = None if self.layout_model is None else self.layout_model.position(node)
        rect = self.view.camera.rect
        if p is not None and not (rect.left <= p[0] <= rect.right
                                  and rect.bottom <= p[1] <= rect.top):
            self.view.camera.center = (p[0], p[1])

    # ------------------------------------------------------------------ geometry
    def canvas_point(self, node: NodeKey) -> QPoint | None:
        """The canvas pixel (logical) where ``node`` is drawn, or None if it is not laid out."""
        lay = self.layout_model
        p = None if lay is None else lay.position(node)
        if p is None:
            return None
        tr = self.view.scene.node_transform(self.canvas.scene)
        x, y = tr.map([p[0], p[1]])[:2]
        return QPoint(round(float(x)), round(float(y)))

    def node_at(self, pos: tuple[float, float]) -> NodeKey | None:
        """The node drawn at canvas pixel ``pos``, if any (within about half a column or
        8 px, whichever is larger)."""
        lay = self.layout_model
        if lay is None or lay.n_nodes == 0:
            return None
        tr = self.view.scene.node_transform(self.canvas.scene)
        x, t = tr.imap([pos[0], pos[1]])[:2]
        x8 = tr.imap([pos[0] + 8, pos[1]])[0]
        return lay.pick(float(x), float(t), tolerance=max(0.5, abs(float(x8 - x))))

    # ------------------------------------------------------------------ tree input
    def _on_canvas_press(self, event: Any) -> None:
        self._press = (float(event.pos[0]), float(event.pos[1]))

    def _on_canvas_release(self, event: Any) -> None:
        press, self._press = self._press, None
        if press is None or np.hypot(event.pos[0] - press[0],
                                     event.pos[1] - press[1]) > _CLICK_SLOP:
            return  # the camera panned: not a click
        node = self.node_at(press)
        names = {getattr(m, "name", str(m)) for m in event.modifiers}
        if event.button == 2:
            if node is not None:
                self.show_menu(node, self.canvas.native.mapToGlobal(
                    QPoint(round(press[0]), round(press[1]))))
            return
        if node is None:
            return
        if "Shift" in names and self.selected is not None and node != self.selected:
            self.marked = node
            self._show_selection()
        else:
            self.select(node)

    def _on_canvas_key(self, event: Any) -> None:
        name = event.key.name if event.key is not None else ""
        mods = {getattr(m, "name", str(m)) for m in event.modifiers}
        # a key the tree handles must not also reach napari's key bindings (the main window
        # forwards unhandled keys to the viewer, where U, L, Ctrl+Z mean other things)
        if "Control" in mods and name == "Z":
            event.handled = True
            self.main.redo() if "Shift" in mods else self.main.undo()
        elif name in TREE_KEYS and not mods:
            event.handled = True
            self.run_verb(TREE_KEYS[name])

    def show_menu(self, node: NodeKey, global_pos: QPoint) -> QMenu:
        """The right-click menu of ``node``: link / cut with the selected cell, cut out this
        cell, delete its track (shown without blocking; returned for scripting)."""
        sel = self.selected
        if sel is None or sel == node:
            self.select(node)
            sel = node
        else:  # the right-clicked cell is the second cell of link / cut
            self.marked = node
            self._show_selection()
        menu, (first, last) = QMenu(self), sorted((sel, node))
        if sel != node:
            menu.addAction(f"Link cell {first[1]}@{first[0]} → {last[1]}@{last[0]}",
                           lambda: self.run_verb("link"))
            menu.addAction(f"Cut out {first[1]}@{first[0]} … {last[1]}@{last[0]}",
                           lambda: self.run_verb("cut"))
        menu.addAction(f"Cut out cell {node[1]}@{node[0]}",
                       lambda: self._apply(lambda p: unlink(p, node, node)))
        menu.addAction("Delete this track", lambda: self._apply(
            lambda p: delete_tracks(p, [p.graph.track_id(node)])))
        self.menu = menu
        menu.popup(global_pos)  # not exec(): no nested event loop
        return menu

    # ------------------------------------------------------------------ verbs
    def run_verb(self, verb: str) -> bool:
        """Apply ``"link"``, ``"cut"`` or ``"delete"`` to the selected (and marked) cell as
        one undo step (returns whether the project changed); ``"fit"`` shows every lineage,
        ``"clear"`` forgets the marked cell."""
        sel, other = self.selected, self.marked
        if verb in ("fit", "clear"):
            if verb == "fit":
                self.fit()
            self.marked = None if verb == "clear" else other
            self._show_selection()
            return False
        if sel is None:
            self.main.notify("select a cell in the lineage tree first", error=True)
            return False
        if verb == "link":
            if other is None:
                self.main.notify("Shift+click a second cell to link to", error=True)
                return False
            a, b = sorted((sel, other))
            return self._apply(lambda p: link(p, a, b))
        if verb == "cut":
            a, b = sorted((sel, other or sel))
            return self._apply(lambda p: unlink(p, a, b))
        if verb == "delete":
            return self._apply(lambda p: delete_tracks(p, [p.graph.track_id(sel)]))
        raise ValueError(f"unknown verb {verb!r}")

    def _apply(self, build: Any) -> bool:
        project = self.main.labels_project("curate", need_layer=False)
        if project is None:
            return False
        try:
            action: Action = build(project)
        except H4TracksError as e:  # nothing applied
            self.main.notify(str(e), error=True)
            return False
        if not self.main.apply_action(action):  # refreshes us through `edited`
            return False
        self.marked = None
        self._show_selection()
        return True

    # ------------------------------------------------------------------ selection
    def select(self, node: NodeKey, *, in_viewer: bool = True) -> None:
        """Select cell ``node`` in the tree and, with ``in_viewer``, in the viewer: its
        frame, the camera on its centre, napari's selected label (and a Tracking-tab
        link / unlink pick when that mode is on)."""
        self.selected = node
        if self.marked == node:
            self.marked = None
        self._show_selection()
        self._ensure_visible(node)
        project = self.main.project
        if not in_viewer or project is None or node not in project.graph:
            return
        t, label = node
        layer = self.main.project_labels_layer()
        show_cell(self.viewer, layer, project, node,
                  select_label=lambda lab: self._quiet_select(layer, lab))
        tab = self.main.tracking_tab
        if tab.mode in ("link_cells", "unlink_cells"):
            tab._pick(node)  # the tree is another place to click cells for the tab
        self.main.status.setText(f"selected cell {label} in frame {t} "
                                 f"(track {project.graph.track_id(node)})")

    def _quiet_select(self, layer: Any, label: int) -> None:
        self._selecting = True
        try:
            layer.selected_label = label
        finally:
            self._selecting = False

    def _watch_layers(self) -> None:
        """Follow the project's Labels layer (selection) and Tracks layer (colours)."""
        labels = self.main.project_labels_layer()
        if labels is not self._labels_layer:
            if self._labels_layer is not None:
                self._labels_layer.events.selected_label.disconnect(self._on_selected_label)
            if labels is not None:
                labels.events.selected_label.connect(self._on_selected_label)
            self._labels_layer = labels
        tracks = self.main.tracks_view.layer()
        if tracks is not self._tracks_layer:
            for old_new, method in ((self._tracks_layer, "disconnect"), (tracks, "connect")):
                if old_new is not None:
                    for ev in (old_new.events.color_by, old_new.events.colormap):
                        getattr(ev, method)(self._draw)
            self._tracks_layer = tracks

    def _on_selected_label(self, _event: Any = None) -> None:
        # the viewer selected a label (picker, Select ID, a click): highlight that cell
        if not self._selecting and self._labels_layer is not None:
            self._highlight_viewer_cell(self.main.current_frame(),
                                        int(self._labels_layer.selected_label))

    def _highlight_viewer_cell(self, t: int, label: int) -> None:
        project = self.main.project
        if project is not None and (t, label) in project.graph:
            self.select((t, label), in_viewer=False)

    def _on_viewer_press(self, viewer: Any, event: Any) -> Any:
        """A click (not a drag) on a cell in the viewer selects it, unless a tab's click
        mode or a paint tool owns the click."""
        try:
            shown = self.isVisible()
        except RuntimeError:  # the dock was closed and deleted: stop listening
            viewer.mouse_drag_callbacks.remove(self._on_viewer_press)
            return
        layer = self.main.project_labels_layer()
        if event.button != 1 or layer is None or not shown:
            return
        start = np.asarray(event.position)
        yield
        moved = False
        while event.type == "mouse_move":
            moved = moved or not np.allclose(np.asarray(event.position), start, atol=1.0)
            yield
        tab = self.main.tracking_tab
        if tab.mode in ("link_cells", "unlink_cells") and tab.picked:
            self.select(tab.picked[-1], in_viewer=False)  # mirror the tab's picks
            return
        if moved or tab.mode is not None or self.main.segmentation_tab.mode is not None \
                or getattr(layer, "mode", "pan_zoom") != "pan_zoom":
            return
        project = self.main.project
        data = layer.world_to_data(start)
        t = self.main.current_frame()
        try:
            label = label_at(project, t, float(data[-2]), float(data[-1]))
        except H4TracksError:
            return  # background: nothing to select
        self._quiet_select(layer, label)
        self._highlight_viewer_cell(t, label)


class LineageViewDock(LineageView):
    """The npe2 widget (Plugins › h4tracks › Lineage tree): the lineage tree of the h4tracks
    widget docked in the viewer, docking that widget first when it is not there."""

    def __init__(self, napari_viewer: Any) -> None:
        main = None
        for widget in napari_viewer.window.dock_widgets.values():
            # duck-typed: importing the main widget here would make an import cycle
            if hasattr(widget, "apply_action") and hasattr(widget, "tracks_view"):
                main = widget
        if main is None:
            _dock, main = napari_viewer.window.add_plugin_dock_widget("h4tracks", "h4tracks")
        # napari hands plugins proxies of its objects; the main widget is ours: unwrap it
        main = getattr(main, "__wrapped__", main)
        super().__init__(main)
        if getattr(main, "lineage_view", None) is None:
            main.lineage_view = self  # show_lineage_view() then finds this dock, no second
