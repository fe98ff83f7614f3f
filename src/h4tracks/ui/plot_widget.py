"""A matplotlib figure docked in napari, with lasso selection of the points of a scatter plot.

The figures themselves are built by :mod:`h4tracks.core.analysis.figures` (no pyplot); this
widget only embeds one in a Qt canvas. On a scatter plot a
:class:`matplotlib.widgets.LassoSelector` is active: the points inside the drawn polygon
are the selected tracks, announced with :attr:`PlotWidget.selection_changed`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.path import Path as MplPath
from matplotlib.widgets import LassoSelector
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from h4tracks.core.analysis.figures import save_figure
from h4tracks.errors import InputError


class PlotWidget(QWidget):
    """Shows one matplotlib figure; lasso on scatter plots selects tracks."""

    #: emitted with the selected track ids (int64 array) after a lasso; None after a reset
    selection_changed = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumSize(320, 260)
        self._canvas: FigureCanvasQTAgg | None = None
        self._lasso: LassoSelector | None = None
        self._track_ids = np.empty(0, np.int64)
        self._xy = np.empty((0, 2))
        self._highlight = None
        #: track ids selected by the last lasso (None: no selection)
        self.selected: np.ndarray | None = None
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self._layout = QVBoxLayout(self)
        self._layout.addWidget(self.hint)

    @property
    def figure(self) -> Figure | None:
        """The figure shown, or None."""
        return None if self._canvas is None else self._canvas.figure

    @property
    def has_lasso(self) -> bool:
        """Whether lasso selection is active (scatter plots only)."""
        return self._lasso is not None

    def show_figure(
        self, fig: Figure, *, track_ids: np.ndarray | None = None, xy: np.ndarray | None = None
    ) -> None:
        """Show ``fig``; with ``track_ids`` and their plotted ``xy`` (N, 2) enable the lasso.

        Parameters
        ----------
        fig
            The figure (from :mod:`h4tracks.core.analysis.figures`).
        track_ids, xy
            The track of every scatter point and the point's data coordinates.
        """
        if self._lasso is not None:
            self._lasso.disconnect_events()
            self._lasso = None
        if self._canvas is not None:
            self._layout.removeWidget(self._canvas)
            self._canvas.setParent(None)
            self._canvas.deleteLater()
        self._canvas = FigureCanvasQTAgg(fig)
        self._layout.addWidget(self._canvas, 1)
        self._highlight = None
        self.selected = None
        if track_ids is not None and xy is not None and fig.axes:
            self._track_ids = np.asarray(track_ids, np.int64)
            self._xy = np.asarray(xy, np.float64).reshape(-1, 2)
            self._lasso = LassoSelector(fig.axes[0], self.on_lasso)
            self.hint.setText("Draw around points to show only those tracks in the viewer.")
        else:
            self._track_ids = np.empty(0, np.int64)
            self._xy = np.empty((0, 2))
            self.hint.setText("")
        self._canvas.draw_idle()

    def on_lasso(self, vertices: list[tuple[float, float]] | np.ndarray) -> np.ndarray:
        """Lasso callback: select the points inside the polygon ``vertices`` (data units).

        Returns the selected track ids (also emitted with :attr:`selection_changed`).
        """
        verts = np.asarray(vertices, np.float64).reshape(-1, 2)
        if verts.shape[0] < 3 or self._xy.shape[0] == 0:
            inside = np.zeros(self._xy.shape[0], bool)
        else:
            inside = MplPath(verts).contains_points(self._xy)
        self.selected = np.unique(self._track_ids[inside])
        self._draw_highlight(inside)
        self.selection_changed.emit(self.selected)
        return self.selected

    def clear_selection(self) -> None:
        """Forget the selection (the plot stays) and announce it with None."""
        self.selected = None
        self._draw_highlight(np.zeros(self._xy.shape[0], bool))
        self.selection_changed.emit(None)

    def _draw_highlight(self, inside: np.ndarray) -> None:
        fig = self.figure
        if fig is None or not fig.axes:
            return
        if self._highlight is not None:
            self._highlight.remove()
            self._highlight = None
        if inside.any():
            ax = fig.axes[0]
            self._highlight = ax.scatter(self._xy[inside, 0], self._xy[inside, 1], s=30,
                                         facecolors="none", edgecolors="C3", linewidths=1.2)
        assert self._canvas is not None
        self._canvas.draw_idle()

    def save(self, path: str | Path) -> Path:
        """Save the shown figure as PNG or SVG (by the suffix)."""
        if self.figure is None:
            raise InputError("there is no figure to save: make a plot first")
        return save_figure(self.figure, path)
