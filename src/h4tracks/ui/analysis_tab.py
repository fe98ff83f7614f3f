"""Analysis tab: per-track metrics table, filters, CSV export, and the panels for docked
figures and the curation assistant.

A thin controller over :mod:`h4tracks.core.analysis`: metrics are computed in the main
widget's background worker and shown, filtered, in a sortable table. Clicking a row (or
moving to it with the arrow keys) selects that track: the viewer goes to its first cell
(frame, camera centre, selected label), the lineage tree rings that cell, and the track's
speed and area over time are plotted. The figures with lasso selection live in
:class:`~h4tracks.ui.plot_panel.PlotPanel` (:attr:`AnalysisTab.plots`), the list of
suspicious cells with Next / Previous in
:class:`~h4tracks.ui.assistant_panel.AssistantPanel` (:attr:`AnalysisTab.assistant`); this
tab lays them out and tells them when the table or the project changes.
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
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from h4tracks.core.analysis import Table, filter_tracks, project_track_metrics, write_track_report
from h4tracks.errors import H4TracksError
from h4tracks.ui.assistant_panel import AssistantPanel
from h4tracks.ui.cell_focus import show_cell
from h4tracks.ui.plot_panel import PlotPanel

if TYPE_CHECKING:
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget

#: CSV separators: combo text -> character
SEPARATORS = {", (comma)": ",", "; (semicolon)": ";", "tab": "\t"}
DECIMALS = {". (point)": ".", ", (comma)": ","}


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
    """Metrics table, filters and export, with the plots and assistant panels.

    Parameters
    ----------
    main
        The plugin's main widget: its project is measured, its worker runs the jobs.

    Attributes
    ----------
    plots : PlotPanel
        The *Plots* group (docked figures, lasso selection).
    assistant : AssistantPanel
        The *Assistant* group (suspicious cells, Next / Previous).
    """

    def __init__(self, main: H4TracksWidget) -> None:
        super().__init__()
        self.main = main
        self.viewer = main.viewer
        #: the last computed metrics (all tracks) and the project they belong to
        self.table: Table | None = None
        self._table_project: Project | None = None

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
        self.view.setToolTip("One row per track: click a row to go to the track (viewer, "
                             "lineage tree, speed and area plot); click a column title to "
                             "sort")
        self.view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QTableView.SelectionMode.SingleSelection)
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

        # -- plots and assistant: self-contained panels ----------------------------------
        self.plots = PlotPanel(main, self.filter_mask)
        self.assistant = AssistantPanel(main)

        layout = QVBoxLayout(self)
        layout.addWidget(metrics_box, 1)  # the table grows with the panel
        layout.addWidget(self.plots)
        layout.addWidget(self.assistant)

        self.compute_btn.clicked.connect(lambda: self.compute_metrics())
        self.min_length.valueChanged.connect(lambda _v: self.apply_filters())
        self.min_movement.valueChanged.connect(lambda _v: self.apply_filters())
        self.export_btn.clicked.connect(lambda: self.export_csv())
        self.export_cells_btn.clicked.connect(lambda: self.export_cells_csv())
        self.view.selectionModel().currentRowChanged.connect(self._on_current_row)
        main.project_changed.connect(self._on_project_changed)
        main.edited.connect(self._on_edited)
        self._update_buttons()

    # ------------------------------------------------------------------ state
    def _on_project_changed(self, project: Any) -> None:
        # the same condition as before the panels were split out: a project_changed for
        # the measured project (a save, a layer choice) keeps the plots and the flags
        if project is not self._table_project:
            self.plots.reset_selection()
            self._set_table(None, None)
            self.assistant.clear()

    def _on_edited(self) -> None:
        if self.table is not None:
            self.summary.setText(self.summary.text().split(" — ")[0]
                                 + " — the project changed: compute again")

    def _update_buttons(self) -> None:
        self.export_btn.setEnabled(self.table is not None)

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
        self.plots.set_table(table, project)
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

    # ------------------------------------------------------------------ track selection
    def _on_current_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid() or self.table is None:
            return  # the table was reset
        row = self.model.rows[self.proxy.mapToSource(current).row()]
        self.select_track(int(self.table["track_id"][row]))

    def select_track(self, track_id: int) -> bool:
        """Select track ``track_id``: the viewer shows its first cell (frame, camera centre,
        selected label), the lineage tree (when open) rings it, and with *Plot the selected
        track* its speed and area over time are plotted. Returns whether it was found."""
        project = self.main.project
        if project is None or project is not self._table_project:
            self.main.notify("the metrics belong to another project: compute them again",
                             error=True)
            return False
        nodes = project.graph.track_nodes(track_id)
        if not nodes:
            self.main.notify(f"track {track_id} no longer exists (the tracks were edited): "
                             "compute the metrics again", error=True)
            return False
        first = nodes[0]
        show_cell(self.viewer, self.main.project_labels_layer(), project, first)
        tree = getattr(self.main, "lineage_view", None)
        if tree is not None:
            tree.select(first, in_viewer=False)
        if self.plots.track_plot_check.isChecked():
            self.plots.show_track(track_id)
        self.main.status.setText(f"track {track_id}: {len(nodes)} cells from frame "
                                 f"{first[0]} to {nodes[-1][0]}")
        return True

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
