"""Analysis tab: per-track metrics table, filters, CSV export, docked figures with lasso
selection, and the curation assistant.

A thin controller over :mod:`h4tracks.core.analysis`: metrics are computed in the main
widget's background worker; figures come from :mod:`h4tracks.core.analysis.figures` and are
shown in a :class:`~h4tracks.ui.plot_widget.PlotWidget` docked in napari. A lasso on a
scatter plot shows only the selected tracks in the Tracks layer: the layer's ``data`` is
replaced by the selected tracks' rows (a view — the project's graph is not touched) and
*Reset selection* puts the full data back. The assistant
(:mod:`h4tracks.core.analysis.assistant`) lists suspicious cells; Next / Previous move the
viewer to each one (frame and camera centre).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from h4tracks.core.analysis import Table, filter_tracks, project_track_metrics, write_track_report
from h4tracks.core.analysis.assistant import (
    KINDS,
    AssistantParams,
    Flag,
    SuspiciousReport,
    project_suspicious,
)
from h4tracks.errors import H4TracksError
from h4tracks.ui.layers import layer_project

if TYPE_CHECKING:
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget
    from h4tracks.ui.plot_widget import PlotWidget

#: plot kinds: combo text -> key
PLOT_KINDS = {"Scatter": "scatter", "Histogram": "histogram", "Rose": "rose", "MSD": "msd"}
#: CSV separators: combo text -> character
SEPARATORS = {", (comma)": ",", "; (semicolon)": ";", "tab": "\t"}
DECIMALS = {". (point)": ".", ", (comma)": ","}
#: name of the dock widget holding the figure
PLOT_DOCK = "h4tracks plot"
_NOT_PLOTTED = ("track_id", "parent_id")


def _compact(combo: QComboBox, chars: int = 12) -> None:
    """Let a combo box with long entries be narrower than its longest entry (elided)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)


def _write_then_rename(path: Path, write: Any) -> Path:
    """``write(tmp)`` to a hidden file next to ``path``, then rename it to ``path``: a file
    under the final name is always complete (an interrupted export leaves no half file)."""
    import os

    tmp = path.with_name(f".{path.name}.part")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class _TableModel(QAbstractTableModel):
    """Read-only view of some rows of a :class:`Table` (display text + raw value for
    sorting)."""

    def __init__(self) -> None:
        super().__init__()
        self.table: Table | None = None
        self.rows = np.empty(0, np.int64)

    def set_rows(self, table: Table | None, rows: np.ndarray | None = None) -> None:
        self.beginResetModel()
        self.table = table
        n = 0 if table is None else len(table)
        self.rows = np.arange(n) if rows is None else np.asarray(rows, np.int64)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else int(self.rows.size)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() or self.table is None else len(self.table.columns)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self.table is None or not index.isValid():
            return None
        col = self.table.columns[index.column()]
        value = self.table[col][self.rows[index.row()]]
        if role == Qt.ItemDataRole.UserRole:
            return float(value) if np.issubdtype(type(value), np.number) else str(value)
        if role == Qt.ItemDataRole.DisplayRole:
            if isinstance(value, (float, np.floating)):
                return "" if np.isnan(value) else f"{value:.4g}"
            return str(value)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or self.table is None:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self.table.columns[section]
        return str(section + 1)


class AnalysisTab(QWidget):
    """Metrics table, filters, export, plots with lasso, and the curation assistant."""

    def __init__(self, main: H4TracksWidget) -> None:
        super().__init__()
        self.main = main
        self.viewer = main.viewer
        #: the last computed metrics (all tracks) and the project they belong to
        self.table: Table | None = None
        self._table_project: Project | None = None
        self.plot: PlotWidget | None = None
        self._dock: Any = None
        #: (layer, full data, full graph) of a Tracks layer showing a lasso selection
        self._full_tracks: tuple[Any, np.ndarray, dict] | None = None
        self._view_filtered = False  # a lasso filter is set on main.tracks_view
        self.suspicious: SuspiciousReport | None = None
        self.flag_index = -1

        # -- metrics ---------------------------------------------------------------------
        self.with_shape = QCheckBox("Also measure cell shape")
        self.with_shape.setToolTip("Add the shape of the cells (area, perimeter, solidity, …) "
                                   "to the table; slower on long movies")
        self.compute_btn = QPushButton("Compute metrics")
        self.compute_btn.setToolTip("Measure every track: duration, distance travelled, speed, "
                                    "directness, persistence, mean squared displacement and, "
                                    "for dividing cells, the time to division")
        self.min_length = QSpinBox()
        self.min_length.setRange(0, 1_000_000)
        self.min_length.setSpecialValueText("off")
        self.min_length.setToolTip("Keep tracks in which the cell was found in at least this "
                                   "many frames")
        self.min_movement = QDoubleSpinBox()
        self.min_movement.setRange(0.0, 1e9)
        self.min_movement.setDecimals(2)
        self.min_movement.setSpecialValueText("off")
        self.min_movement.setToolTip("Keep tracks that travelled at least this distance "
                                     "(µm when the pixel size is set, else pixels)")
        self.model = _TableModel()
        self.proxy = QSortFilterProxyModel()
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.setToolTip("One row per track; click a column title to sort")
        # the table takes the panel's spare height, and is small when the panel is small
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.view.setMinimumHeight(120)
        self.summary = QLabel("no metrics yet")
        self.summary.setWordWrap(True)
        metrics_box = QGroupBox("Track metrics")
        mform = QFormLayout(metrics_box)
        mform.addRow(self.with_shape)
        mform.addRow(self.compute_btn)
        mform.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        mform.addRow("Min. length (frames)", self.min_length)
        mform.addRow("Min. distance travelled", self.min_movement)
        mform.addRow(self.summary)
        mform.addRow(self.view)

        # -- export ----------------------------------------------------------------------
        self.sep_combo = QComboBox()
        self.sep_combo.addItems(list(SEPARATORS))
        self.sep_combo.setToolTip("Character between columns; for a spreadsheet set to a "
                                  "comma decimal mark (German, French, …) use semicolon")
        self.decimal_combo = QComboBox()
        self.decimal_combo.addItems(list(DECIMALS))
        self.decimal_combo.setToolTip("Decimal mark of the numbers, as your spreadsheet "
                                      "expects it")
        self.export_btn = QPushButton("Export track table (CSV)…")
        self.export_btn.setToolTip("Write one row per track (all tracks, with a column saying "
                                   "whether it passes the filters) and a second file "
                                   "summarising the passing tracks")
        self.export_cells_btn = QPushButton("Export per-cell table (CSV)…")
        self.export_cells_btn.setToolTip("Write one row per cell per frame: frame, time, "
                                         "label, track, position and area (no need to "
                                         "compute the metrics first)")
        mform.addRow("CSV separator", self.sep_combo)
        mform.addRow("Decimal mark", self.decimal_combo)
        mform.addRow(self.export_btn)
        mform.addRow(self.export_cells_btn)

        # -- plots -----------------------------------------------------------------------
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

        # -- assistant -------------------------------------------------------------------
        d = AssistantParams()
        self.margin = self._dspin(0, 10_000, d.border_margin, "Tracks may start or end this "
                                  "close (in pixels) to the image border without being "
                                  "flagged: cells enter and leave the field there")
        self.speed_z = self._dspin(0, 100, d.speed_z, "A step is a speed jump when it is this "
                                   "many standard deviations faster than the typical step "
                                   "(robust z-score; higher flags fewer steps)")
        self.area_ratio = self._dspin(1.01, 100, d.area_ratio, "A cell whose area changes by "
                                      "at least this factor from one frame to the next is an "
                                      "area jump")
        self.small_fraction = self._dspin(0, 1, d.small_area_fraction, "Cells smaller than "
                                          "this fraction of the median area are flagged")
        self.min_track = QSpinBox()
        self.min_track.setRange(1, 1000)
        self.min_track.setValue(d.min_track_length)
        self.min_track.setToolTip("Tracks found in fewer frames than this are flagged as "
                                  "short")
        self.find_btn = QPushButton("Find suspicious cells")
        self.find_btn.setToolTip("Scan the tracks for likely errors: tracks starting late or "
                                 "ending early away from the border, speed and area jumps, "
                                 "short tracks, very small cells and cells without a track")
        self.flag_combo = QComboBox()
        self.flag_combo.setToolTip("Kind of suspicious item to step through")
        self.prev_btn = QPushButton("Previous")
        self.prev_btn.setToolTip("Go to the previous suspicious item (frame and position)")
        self.next_btn = QPushButton("Next")
        self.next_btn.setToolTip("Go to the next suspicious item (frame and position)")
        self.flag_label = QLabel("")
        self.flag_label.setWordWrap(True)
        # the thresholds are folded away until asked for: the tab stays short
        self.thresholds_btn = QToolButton()
        self.thresholds_btn.setText("Thresholds")
        self.thresholds_btn.setCheckable(True)
        self.thresholds_btn.setArrowType(Qt.ArrowType.RightArrow)
        self.thresholds_btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.thresholds_btn.setToolTip("Show or hide what the assistant counts as suspicious")
        self.thresholds = QWidget()
        tform = QFormLayout(self.thresholds)
        tform.setContentsMargins(0, 0, 0, 0)
        tform.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        tform.addRow("Border margin (px)", self.margin)
        tform.addRow("Speed jump z-score", self.speed_z)
        tform.addRow("Area jump factor", self.area_ratio)
        tform.addRow("Short track (< frames)", self.min_track)
        tform.addRow("Small cell (× median area)", self.small_fraction)
        self.thresholds.setVisible(False)
        assist_box = QGroupBox("Assistant")
        aform = QFormLayout(assist_box)
        aform.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        aform.addRow(self.find_btn)
        aform.addRow(self.thresholds_btn)
        aform.addRow(self.thresholds)
        aform.addRow("Show", self.flag_combo)
        nav = QHBoxLayout()
        nav.addWidget(self.prev_btn)
        nav.addWidget(self.next_btn)
        aform.addRow(nav)
        aform.addRow(self.flag_label)

        layout = QVBoxLayout(self)
        layout.addWidget(metrics_box, 1)  # the table grows with the panel
        layout.addWidget(plot_box)
        layout.addWidget(assist_box)

        self.compute_btn.clicked.connect(lambda: self.compute_metrics())
        self.min_length.valueChanged.connect(lambda _v: self.apply_filters())
        self.min_movement.valueChanged.connect(lambda _v: self.apply_filters())
        self.export_btn.clicked.connect(lambda: self.export_csv())
        self.export_cells_btn.clicked.connect(lambda: self.export_cells_csv())
        self.kind_combo.currentIndexChanged.connect(lambda _i: self._update_axis_widgets())
        self.plot_btn.clicked.connect(lambda: self.make_plot())
        self.reset_btn.clicked.connect(lambda: self.reset_selection())
        self.save_fig_btn.clicked.connect(lambda: self.save_figure())
        self.find_btn.clicked.connect(lambda: self.find_suspicious())
        self.thresholds_btn.toggled.connect(self._show_thresholds)
        self.flag_combo.currentIndexChanged.connect(lambda _i: self._on_flag_kind())
        self.prev_btn.clicked.connect(lambda: self.previous_flag())
        self.next_btn.clicked.connect(lambda: self.next_flag())
        main.project_changed.connect(self._on_project_changed)
        main.edited.connect(self._on_edited)
        self._update_axis_widgets()
        self._update_buttons()

    @staticmethod
    def _dspin(lo: float, hi: float, value: float, tip: str) -> QDoubleSpinBox:
        w = QDoubleSpinBox()
        w.setRange(lo, hi)
        w.setDecimals(2)
        w.setSingleStep(0.5 if hi > 1 else 0.05)
        w.setValue(value)
        w.setToolTip(tip)
        return w

    def _show_thresholds(self, shown: bool) -> None:
        self.thresholds.setVisible(shown)
        self.thresholds_btn.setArrowType(Qt.ArrowType.DownArrow if shown
                                         else Qt.ArrowType.RightArrow)

    # ------------------------------------------------------------------ state
    def _on_project_changed(self, project: Any) -> None:
        if project is not self._table_project:
            self.reset_selection()
            self._set_table(None, None)
            self.suspicious = None
            self._fill_flag_combo()

    def _on_edited(self) -> None:
        if self.table is not None:
            self.summary.setText(self.summary.text().split(" — ")[0]
                                 + " — the project changed: compute again")

    def _update_buttons(self) -> None:
        has = self.table is not None
        for b in (self.export_btn, self.plot_btn):
            b.setEnabled(has)
        has_flags = self.suspicious is not None and self.suspicious.total > 0
        self.prev_btn.setEnabled(has_flags)
        self.next_btn.setEnabled(has_flags)

    # ------------------------------------------------------------------ metrics
    def compute_metrics(self) -> Any:
        """Compute the metrics of the current project in the background (returns the worker,
        or None when there is no project)."""
        project = self.main.project
        if project is None:
            self.main.notify("no project: load one or choose layers first", error=True)
            return None
        with_shape = self.with_shape.isChecked() and project.labels is not None
        cores = self.main.cores

        def work(_report: Any) -> Table:
            return project_track_metrics(project, with_shape=with_shape, cores=cores)

        self.compute_btn.setEnabled(False)
        return self.main.run_in_worker(
            work, text="measuring tracks…", done=lambda t: self._set_table(t, project),
            finally_=lambda: self.compute_btn.setEnabled(True),
        )

    def _set_table(self, table: Table | None, project: Project | None) -> None:
        self.table = table
        self._table_project = project
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
        self.apply_filters()
        if table is not None:
            self.main.notify(f"measured {len(table)} tracks")
        self._update_buttons()

    def filter_mask(self) -> np.ndarray:
        """Which tracks of :attr:`table` pass the filters (empty without a table)."""
        if self.table is None:
            return np.zeros(0, bool)
        return filter_tracks(self.table, **self._filters())

    def _filters(self) -> dict[str, Any]:
        # 0 means "off" (the spin boxes show it as such)
        return {"min_length": self.min_length.value() or None,
                "min_movement": self.min_movement.value() or None}

    def apply_filters(self) -> None:
        """Show the tracks passing the filters in the table."""
        if self.table is None:
            self.model.set_rows(None)
            self.summary.setText("no metrics yet: press Compute metrics")
            return
        mask = self.filter_mask()
        self.model.set_rows(self.table, np.flatnonzero(mask))
        unit = self.table.meta.get("length_unit", "px")
        self.summary.setText(f"{int(mask.sum())} of {len(self.table)} tracks pass the filters "
                             f"(lengths in {unit})")
        self.min_movement.setSuffix(f" {unit}")

    # ------------------------------------------------------------------ export
    def export_csv(self, path: str | Path | None = None) -> tuple[Path, Path] | None:
        """Write the track table and its summary (file dialog without ``path``)."""
        if self.table is None:
            self.main.notify("compute the metrics first", error=True)
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export track metrics", "tracks.csv",
                                                  "CSV (*.csv)")
            if not path:
                return None
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".csv")
        try:
            out = write_track_report(
                self.table, path, sep=SEPARATORS[self.sep_combo.currentText()],
                decimal=DECIMALS[self.decimal_combo.currentText()], **self._filters(),
            )
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return None
        self.main.notify(f"wrote {out[0]} and {out[1].name}")
        return out

    def export_cells_csv(self, path: str | Path | None = None) -> Any:
        """Write one row per cell per frame (frame, time, label, track, position, area) with
        the chosen separator and decimal mark, in the background (file dialog without
        ``path``). The file appears under its name only once it is complete.

        Returns
        -------
        The worker, or None if nothing was written.
        """
        from h4tracks.core.analysis import detection_table, write_csv

        project = self.main.project
        if project is None or len(project.graph) == 0:
            self.main.notify("no cells to export: segment the movie (and track it) first",
                             error=True)
            return None
        if self.main.busy:
            self.main.notify("wait for the running job to finish (or cancel it)", error=True)
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export per-cell table", "cells.csv",
                                                  "CSV (*.csv)")
            if not path:
                return None
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".csv")
        if not path.parent.is_dir():
            self.main.notify(f"folder {path.parent} does not exist", error=True)
            return None
        md = project.metadata
        # the table is taken here, on the main thread: painting cannot change it meanwhile
        table = detection_table(project.graph, pixel_size=md.pixel_size,
                                frame_interval=md.frame_interval, time_unit=md.time_unit)
        sep = SEPARATORS[self.sep_combo.currentText()]
        decimal = DECIMALS[self.decimal_combo.currentText()]

        def work(_report: Any) -> Path:
            return _write_then_rename(path, lambda tmp: write_csv(table, tmp, sep=sep,
                                                                  decimal=decimal))

        self.export_cells_btn.setEnabled(False)
        return self.main.run_in_worker(
            work, text="writing the per-cell table…",
            done=lambda out: self.main.notify(f"wrote {out} ({len(table)} rows)"),
            finally_=lambda: self.export_cells_btn.setEnabled(True),
        )

    # ------------------------------------------------------------------ plots
    def _update_axis_widgets(self) -> None:
        kind = self.kind_combo.currentData()
        self.x_combo.setEnabled(kind in ("scatter", "histogram"))
        self.y_combo.setEnabled(kind == "scatter")
        self.bins.setEnabled(kind == "histogram")

    def _ensure_plot(self) -> PlotWidget:
        from h4tracks.ui.plot_widget import PlotWidget

        alive = self.plot is not None
        if alive:
            try:
                self._dock.isVisible()
            except RuntimeError:  # the user closed the dock: napari deleted the widget
                alive = False
        if not alive:
            self.plot = PlotWidget()
            self.plot.selection_changed.connect(self._on_selection)
            self._dock = self.viewer.window.add_dock_widget(self.plot, name=PLOT_DOCK,
                                                            area="right")
        elif not self._dock.isVisible():
            self._dock.show()
        assert self.plot is not None
        return self.plot

    def make_plot(self, kind: str | None = None) -> Any:
        """Draw the chosen figure of the filtered tracks in the docked panel; returns it."""
        from h4tracks.core.analysis import figures

        if self.table is None or self._table_project is None:
            self.main.notify("compute the metrics first", error=True)
            return None
        kind = kind or self.kind_combo.currentData()
        table, project = self.table, self._table_project
        md = project.metadata
        mask = self.filter_mask()
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

    def save_figure(self, path: str | Path | None = None) -> Path | None:
        """Save the shown figure as PNG or SVG (file dialog without ``path``)."""
        if self.plot is None or self.plot.figure is None:
            self.main.notify("make a plot first", error=True)
            return None
        if path is None:
            path, chosen = QFileDialog.getSaveFileName(
                self, "Save figure", "figure.png", "PNG image (*.png);;SVG vector (*.svg)"
            )
            if not path:
                return None
            if not Path(path).suffix:
                path = f"{path}.{'svg' if 'svg' in chosen.lower() else 'png'}"
        try:
            out = self.plot.save(path)
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

    # ------------------------------------------------------------------ assistant
    def assistant_params(self) -> AssistantParams:
        """The thresholds set in the Assistant section."""
        return AssistantParams(
            border_margin=self.margin.value(), speed_z=self.speed_z.value(),
            area_ratio=self.area_ratio.value(), min_track_length=self.min_track.value(),
            small_area_fraction=self.small_fraction.value(),
        )

    def find_suspicious(self) -> SuspiciousReport | None:
        """Scan the current project for suspicious cells (fast: vectorised over nodes)."""
        project = self.main.project
        if project is None:
            self.main.notify("no project: load one or choose layers first", error=True)
            return None
        try:
            self.suspicious = project_suspicious(project, self.assistant_params())
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return None
        self._fill_flag_combo()
        self.main.notify(f"assistant: {self.suspicious.total} suspicious item(s)")
        return self.suspicious

    def _fill_flag_combo(self) -> None:
        self.flag_combo.blockSignals(True)
        self.flag_combo.clear()
        if self.suspicious is not None:
            counts = self.suspicious.counts()
            for kind, title in KINDS.items():
                self.flag_combo.addItem(f"{title} ({counts[kind]})", kind)
            # start on the first kind that has something to show
            first = next((i for i, k in enumerate(KINDS) if counts[k]), 0)
            self.flag_combo.setCurrentIndex(first)
        self.flag_combo.blockSignals(False)
        self._on_flag_kind()

    def _on_flag_kind(self) -> None:
        self.flag_index = -1
        items = self.current_flags()
        if self.suspicious is None:
            self.flag_label.setText("")
        else:
            self.flag_label.setText(f"{len(items)} item(s): press Next" if items
                                    else "nothing flagged of this kind")
        self._update_buttons()

    def current_flags(self) -> list[Flag]:
        """The flags of the kind chosen in the combo."""
        kind = self.flag_combo.currentData()
        return [] if self.suspicious is None or kind is None else self.suspicious[kind]

    def next_flag(self) -> Flag | None:
        """Go to the next flagged cell (wraps around)."""
        return self._step(+1)

    def previous_flag(self) -> Flag | None:
        """Go to the previous flagged cell (wraps around)."""
        return self._step(-1)

    def _step(self, delta: int) -> Flag | None:
        items = self.current_flags()
        if not items:
            return None
        if self.flag_index < 0:
            self.flag_index = 0 if delta > 0 else len(items) - 1
        else:
            self.flag_index = (self.flag_index + delta) % len(items)
        flag = items[self.flag_index]
        self.go_to(flag)
        self.flag_label.setText(f"{self.flag_index + 1}/{len(items)}: frame {flag.t}, label "
                                f"{flag.label} — {flag.reason}")
        return flag

    def go_to(self, flag: Flag) -> None:
        """Show frame ``flag.t`` and centre the camera on the cell (no layer is added)."""
        self.viewer.dims.set_current_step(0, flag.t)
        # world coordinates of the pixel through the project's layer (scale, translate)
        layer = self.main.project_labels_layer() or self.main.image_combo.layer()
        if layer is not None:
            world = layer.data_to_world([flag.t, flag.y, flag.x])
            centre = (float(world[-2]), float(world[-1]))
        else:
            centre = (flag.y, flag.x)
        # napari 0.9 moved the camera to viewer.scene.camera (viewer.camera is deprecated)
        scene = getattr(self.viewer, "scene", None)
        camera = scene.camera if scene is not None else self.viewer.camera
        camera.center = centre
