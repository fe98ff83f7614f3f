"""Plots panel of the Analysis tab: figures docked in napari, with lasso selection.

Figures of the metrics table come from :mod:`h4tracks.core.analysis.figures` and are shown
in a :class:`~h4tracks.ui.plot_widget.PlotWidget` docked in napari. A lasso on a scatter
plot shows only the selected tracks in the Tracks layer: the layer's ``data`` is replaced by
the selected tracks' rows (a view — the project's graph is not touched) and *Reset
selection* puts the full data back. When the main widget has a
:class:`~h4tracks.ui.tracks_view.TracksView`, the selection goes through its filter instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from h4tracks.errors import H4TracksError
from h4tracks.ui.layers import layer_project

if TYPE_CHECKING:
    from h4tracks.core.analysis import Table
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget
    from h4tracks.ui.plot_widget import PlotWidget

#: plot kinds: combo text -> key
PLOT_KINDS = {"Scatter": "scatter", "Histogram": "histogram", "Rose": "rose", "MSD": "msd"}
#: name of the dock widget holding the figure
PLOT_DOCK = "h4tracks plot"
#: name of the dock widget holding the selected track's speed and area over time
TRACK_PLOT_DOCK = "h4tracks track"
_NOT_PLOTTED = ("track_id", "parent_id")


def _compact(combo: QComboBox, chars: int = 12) -> None:
    """Let a combo box with long entries be narrower than its longest entry (elided)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)


class PlotPanel(QWidget):
    """The *Plots* group: figure kind and axes, the docked figure, and the lasso view.

    Parameters
    ----------
    main
        The plugin's main widget: its viewer gets the dock and shows the selection, its
        status line shows the messages.
    filter_mask
        Which rows of the table (set with :meth:`set_table`) pass the tab's filters; asked
        at each plot, so the figure follows the filters without being told of each change.

    Attributes
    ----------
    table : Table or None
        The metrics of all tracks, as last set with :meth:`set_table`.
    project : Project or None
        The project :attr:`table` was computed from.
    plot : PlotWidget or None
        The docked figure widget, created by the first plot.
    track_plot : PlotWidget or None
        The docked figure of the selected track (speed and area over time), created by the
        first :meth:`show_track`.
    """

    def __init__(self, main: H4TracksWidget, filter_mask: Callable[[], np.ndarray]) -> None:
        super().__init__()
        self.main = main
        self.viewer = main.viewer
        self._filter_mask = filter_mask
        self.table: Table | None = None
        self.project: Project | None = None
        self.plot: PlotWidget | None = None
        self._dock: Any = None
        self.track_plot: PlotWidget | None = None
        self._track_dock: Any = None
        #: (layer, full data, full graph) of a Tracks layer showing a lasso selection
        self._full_tracks: tuple[Any, np.ndarray, dict] | None = None
        self._view_filtered = False  # a lasso filter is set on main.tracks_view

        self.kind_combo = QComboBox()
        for text, key in PLOT_KINDS.items():
            self.kind_combo.addItem(text, key)
        self.x_combo = QComboBox()
        self.y_combo = QComboBox()
        self.bins = QSpinBox()
        self.bins.setRange(2, 500)
        self.bins.setValue(20)
        self.plot_btn = QPushButton("Plot")
        self.plot_btn.setToolTip("Draw the figure in a panel next to the viewer (filtered "
                                 "tracks only); lasso points of a scatter plot to show only "
                                 "those tracks")
        self.reset_btn = QPushButton("Reset selection")
        self.reset_btn.setToolTip("Show all tracks again")
        self.save_fig_btn = QPushButton("Save figure…")
        self.save_fig_btn.setToolTip("Save the figure as PNG or SVG")
        self.track_plot_check = QCheckBox("Plot the selected track")
        self.track_plot_check.setChecked(True)
        self.track_plot_check.setToolTip("Clicking a row of the metrics table shows that "
                                         "track's speed and area over time in a panel")
        self.save_track_fig_btn = QPushButton("Save track plot…")
        self.save_track_fig_btn.setToolTip("Save the selected track's speed and area plot "
                                           "as PNG or SVG")
        plot_box = QGroupBox("Plots")
        self.kind_combo.setToolTip("Scatter: one metric against another. Histogram: how "
                                   "one metric is distributed. Rose: directions of movement. "
                                   "MSD: mean squared displacement against time")
        for combo in (self.x_combo, self.y_combo):
            _compact(combo)
        self.x_combo.setToolTip("Metric on the horizontal axis (the one shown by a "
                                "histogram)")
        self.y_combo.setToolTip("Metric on the vertical axis of a scatter plot")
        self.bins.setToolTip("Number of bars of a histogram")
        pform = QFormLayout(plot_box)
        pform.addRow("Kind", self.kind_combo)
        pform.addRow("X (or metric)", self.x_combo)
        pform.addRow("Y", self.y_combo)
        pform.addRow("Bins", self.bins)
        plot_row = QHBoxLayout()
        for b in (self.plot_btn, self.reset_btn, self.save_fig_btn):
            plot_row.addWidget(b)
        pform.addRow(plot_row)
        track_row = QHBoxLayout()
        track_row.addWidget(self.track_plot_check, 1)
        track_row.addWidget(self.save_track_fig_btn)
        pform.addRow(track_row)
        # no margins of its own: the group box sits in the tab exactly as when it was
        # laid out there directly
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(plot_box)

        self.kind_combo.currentIndexChanged.connect(lambda _i: self._update_axis_widgets())
        self.plot_btn.clicked.connect(lambda: self.make_plot())
        self.reset_btn.clicked.connect(lambda: self.reset_selection())
        self.save_fig_btn.clicked.connect(lambda: self.save_figure())
        self.save_track_fig_btn.clicked.connect(lambda: self.save_figure(which="track_plot"))
        self._update_axis_widgets()
        self.plot_btn.setEnabled(False)

    def set_table(self, table: Table | None, project: Project | None) -> None:
        """Plot ``table`` (computed from ``project``) from now on; None: nothing to plot.

        The axis combos list its numeric columns, keeping the chosen ones when they are
        still there.

        Parameters
        ----------
        table
            The metrics of all tracks, or None.
        project
            The project the table was computed from, or None.
        """
        self.table = table
        self.project = project
        numeric = [] if table is None else [
            c for c in table.columns
            if c not in _NOT_PLOTTED and np.issubdtype(table[c].dtype, np.number)
            and table[c].dtype != bool
        ]
        for combo, default in ((self.x_combo, "mean_speed"), (self.y_combo, "directness")):
            current = combo.currentText()
            combo.clear()
            combo.addItems(numeric)
            names = [c.split(" [", 1)[0] for c in numeric]
            if current in numeric:
                combo.setCurrentText(current)
            elif default in names:
                combo.setCurrentIndex(names.index(default))
        self.plot_btn.setEnabled(table is not None)

    def _update_axis_widgets(self) -> None:
        kind = self.kind_combo.currentData()
        self.x_combo.setEnabled(kind in ("scatter", "histogram"))
        self.y_combo.setEnabled(kind == "scatter")
        self.bins.setEnabled(kind == "histogram")

    def _docked(self, which: str) -> PlotWidget:
        """The docked figure widget ``which`` ("plot" or "track_plot"), (re)created and
        shown as needed."""
        from h4tracks.ui.plot_widget import PlotWidget  # matplotlib's Qt canvas: on first use

        dock_attr = "_dock" if which == "plot" else "_track_dock"
        widget, dock = getattr(self, which), getattr(self, dock_attr)
        alive = widget is not None
        if alive:
            try:
                dock.isVisible()
            except RuntimeError:  # the user closed the dock: napari deleted the widget
                alive = False
        if not alive:
            widget = PlotWidget()
            if which == "plot":
                widget.selection_changed.connect(self._on_selection)
            dock = self.viewer.window.add_dock_widget(
                widget, name=PLOT_DOCK if which == "plot" else TRACK_PLOT_DOCK, area="right")
            setattr(self, which, widget)
            setattr(self, dock_attr, dock)
        elif not dock.isVisible():
            dock.show()
        return widget

    def _ensure_plot(self) -> PlotWidget:
        return self._docked("plot")

    def show_track(self, track_id: int) -> Any:
        """Plot the speed and area over time of track ``track_id`` of the current project
        in its own docked panel; returns the figure (None when refused)."""
        from h4tracks.core.analysis import figures  # matplotlib: loaded on the first plot

        project = self.main.project
        if project is None:
            return None
        md = project.metadata
        try:
            fig = figures.track_plot(project.graph, track_id, pixel_size=md.pixel_size,
                                     frame_interval=md.frame_interval, time_unit=md.time_unit)
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return None
        self._docked("track_plot").show_figure(fig)
        return fig

    def make_plot(self, kind: str | None = None) -> Any:
        """Draw the chosen figure of the filtered tracks in the docked panel; returns it."""
        from h4tracks.core.analysis import figures  # matplotlib: loaded on the first plot

        if self.table is None or self.project is None:
            self.main.notify("compute the metrics first", error=True)
            return None
        kind = kind or self.kind_combo.currentData()
        table, project = self.table, self.project
        md = project.metadata
        mask = self._filter_mask()
        ids = table["track_id"][mask]
        x, y = self.x_combo.currentText(), self.y_combo.currentText()
        points: dict[str, Any] = {}
        try:
            if kind == "scatter":
                fig = figures.scatter(table, x, y, mask=mask)
                xv = table[table.find(x)].astype(np.float64)
                yv = table[table.find(y)].astype(np.float64)
                rows = mask & np.isfinite(xv) & np.isfinite(yv)
                # the lasso maps points back to tracks by these arrays
                points = {"track_ids": table["track_id"][rows],
                          "xy": np.stack([xv[rows], yv[rows]], 1)}
            elif kind == "histogram":
                fig = figures.histogram(table, x, self.bins.value(), mask=mask)
            elif kind == "rose":
                fig = figures.rose_plot(project.graph, pixel_size=md.pixel_size, track_ids=ids)
            elif kind == "msd":
                fig = figures.msd_plot(project.graph, pixel_size=md.pixel_size,
                                       frame_interval=md.frame_interval,
                                       time_unit=md.time_unit, track_ids=ids)
            else:
                raise H4TracksError(f"unknown plot kind {kind!r}")
        except (H4TracksError, KeyError) as e:
            self.main.notify(str(e.args[0] if isinstance(e, KeyError) else e), error=True)
            return None
        self.reset_selection()
        self._ensure_plot().show_figure(fig, **points)
        return fig

    def save_figure(self, path: str | Path | None = None, *,
                    which: str = "plot") -> Path | None:
        """Save the shown figure as PNG or SVG (file dialog without ``path``): the Plot
        button's (``which="plot"``) or the selected track's (``"track_plot"``)."""
        widget = self.plot if which == "plot" else self.track_plot
        if widget is None or widget.figure is None:
            self.main.notify("make a plot first" if which == "plot" else
                             "select a track first (a row of the metrics table)", error=True)
            return None
        if path is None:
            default = "figure.png" if which == "plot" else "track.png"
            path, chosen = QFileDialog.getSaveFileName(
                self, "Save figure", default, "PNG image (*.png);;SVG vector (*.svg)"
            )
            if not path:
                return None
            if not Path(path).suffix:
                path = f"{path}.{'svg' if 'svg' in chosen.lower() else 'png'}"
        try:
            out = widget.save(path)
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return None
        self.main.notify(f"saved {out}")
        return out

    # ------------------------------------------------------------------ lasso view
    def tracks_layer(self) -> Any | None:
        """The Tracks layer to filter: the chosen one, else one showing the project."""
        from napari.layers import Tracks

        if self._full_tracks is not None and self._full_tracks[0] in self.viewer.layers:
            return self._full_tracks[0]
        layer = self.main.tracks_combo.layer()
        if layer is not None:
            return layer
        for lyr in self.viewer.layers:
            if isinstance(lyr, Tracks) and layer_project(lyr) is self.main.project:
                return lyr
        return None

    def _on_selection(self, track_ids: np.ndarray | None) -> None:
        if track_ids is None:
            self._restore_tracks()
        else:
            self.show_only_tracks(track_ids)

    def _tracks_view(self) -> Any | None:
        # the main widget's TracksView (when present) owns the project's Tracks layer and
        # re-applies its filter on every refresh; use it instead of swapping data here
        view = getattr(self.main, "tracks_view", None)
        return view if callable(getattr(view, "set_filter", None)) else None

    def show_only_tracks(self, track_ids: np.ndarray) -> None:
        """Show only ``track_ids`` in the Tracks layer (a view; nothing is deleted)."""
        ids = np.asarray(track_ids, np.int64)
        view = self._tracks_view()
        if view is not None and view.layer() is not None:
            if ids.size == 0:
                self.main.notify("no track inside the lasso")
                return
            view.set_filter(ids.tolist())
            self._view_filtered = True
            self.main.status.setText(f"showing {ids.size} selected tracks (Reset selection "
                                     "shows all)")
            return
        layer = self.tracks_layer()
        if layer is None:
            self.main.notify("no Tracks layer to show the selection in", error=True)
            return
        if self._full_tracks is None or self._full_tracks[0] is not layer:
            self._restore_tracks()
            self._full_tracks = (layer, np.asarray(layer.data).copy(), dict(layer.graph))
        _, data, graph = self._full_tracks
        keep = np.isin(data[:, 0].astype(np.int64), ids)
        if not keep.any():
            self.main.notify("no track inside the lasso")
            return
        chosen = set(ids.tolist())
        # setting data clears the layer's graph; keep the divisions among the shown tracks
        layer.data = data[keep]
        layer.graph = {k: v for k, v in graph.items()
                       if k in chosen and all(p in chosen for p in v)}
        self.main.status.setText(f"showing {len(chosen)} selected tracks (Reset selection "
                                 "shows all)")

    def _restore_tracks(self) -> None:
        view = self._tracks_view()
        if self._view_filtered and view is not None:
            self._view_filtered = False
            view.set_filter(None)
        if self._full_tracks is None:
            return
        layer, data, graph = self._full_tracks
        self._full_tracks = None
        if layer in self.viewer.layers:
            layer.data = data
            layer.graph = graph

    def reset_selection(self) -> None:
        """Show all tracks again and clear the lasso selection."""
        self._restore_tracks()
        if self.plot is not None:
            try:
                if self.plot.selected is not None:
                    self.plot.clear_selection()
            except RuntimeError:  # the dock (and the plot) were closed
                self.plot = None

