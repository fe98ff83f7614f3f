"""Open a movie of a finished batch run (``h4tracks run``) for curation: the run's output
folder is chosen, its movies are listed (name, manifest columns such as the condition, status,
quality flags), and the chosen movie's project opens the way *Load* opens a project
(:meth:`~h4tracks.ui.project_layers.ProjectLayersMixin.load`: unsaved work asked about first,
a project a running batch still holds opens read-only).

The folder is read by :func:`h4tracks.core.pipeline.run_folder.read_run` (Qt-free); this
module only shows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from h4tracks.core.pipeline.run_folder import RunFolder, RunMovie, read_run
from h4tracks.errors import H4TracksError

__all__ = ["RunBrowserDialog", "open_from_run"]


class RunBrowserDialog(QDialog):
    """The movies of a run in a table; *Open* (or Enter, or a double click) picks one.

    A movie without a project (it failed before its import) is listed, greyed out, and
    cannot be picked. After the dialog is accepted, :attr:`chosen` is the picked movie.
    """

    def __init__(self, run: RunFolder, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open from a batch run")
        self.run = run
        #: the movie picked when the dialog was accepted
        self.chosen: RunMovie | None = None
        n_failed = sum(m.status == "failed" for m in run.movies)
        intro = QLabel(f"{run.path.name}: {len(run.movies)} movies"
                       + (f", {n_failed} failed" if n_failed else "")
                       + ". Choose the movie to curate.")
        intro.setWordWrap(True)

        headers = ["movie", *run.columns, "status", "flags"]
        self.table = QTableWidget(len(run.movies), len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        rows_header = self.table.verticalHeader()
        assert rows_header is not None  # Qt's stubs allow None; a table always has one
        rows_header.setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._usable: list[bool] = []
        for row, movie in enumerate(run.movies):
            usable = movie.has_project
            self._usable.append(usable)
            values = [movie.name, *(movie.columns.get(c, "") for c in run.columns),
                      movie.status, movie.flags]
            tip = movie.error if movie.status == "failed" and movie.error else ""
            if not usable:
                tip = "no project: the movie failed before it was imported" + (
                    f" ({movie.error})" if movie.error else "")
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                if not usable:  # listed, so the run's movies are all there, but not pickable
                    item.setFlags(Qt.ItemFlag.NoItemFlags)
                if tip:
                    item.setToolTip(tip)
                self.table.setItem(row, col, item)
        header = self.table.horizontalHeader()
        assert header is not None
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open
                                        | QDialogButtonBox.StandardButton.Cancel)
        open_btn = self.buttons.button(QDialogButtonBox.StandardButton.Open)
        assert open_btn is not None
        self.open_btn = open_btn
        self.open_btn.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.table.itemSelectionChanged.connect(
            lambda: self.open_btn.setEnabled(self.selected() is not None))
        # Enter or a double click on a row: the item view reports it as "activated"
        self.table.activated.connect(lambda _index: self.accept())

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.buttons)
        first = next((i for i, ok in enumerate(self._usable) if ok), None)
        if first is not None:
            self.table.selectRow(first)
            self.table.setCurrentCell(first, 0)
        self.resize(min(900, 160 + 110 * len(headers)), min(600, 140 + 26 * len(run.movies)))

    def selected(self) -> RunMovie | None:
        """The movie of the selected row, if it can be opened."""
        rows = {i.row() for i in self.table.selectedIndexes()}
        if len(rows) != 1:
            return None
        row = rows.pop()
        return self.run.movies[row] if self._usable[row] else None

    def accept(self) -> None:
        # Enter reaches both the table (activated) and the dialog's default button: the
        # second accept must not open the project again
        if self.chosen is not None or not self.isVisible():
            return
        movie = self.selected()
        if movie is None:
            return
        self.chosen = movie
        super().accept()


def open_from_run(widget: Any, folder: str | Path | None = None) -> RunBrowserDialog | None:
    """Let the user open a movie of a finished batch run in ``widget`` (the h4tracks dock).

    Parameters
    ----------
    widget
        The :class:`~h4tracks.ui.main_widget.H4TracksWidget`.
    folder
        The run's output folder; None asks for it with a folder dialog.

    Returns
    -------
    The movie list dialog, shown window-modal (it returns at once; the project opens when
    the user picks a movie), or None if nothing was shown (cancelled, not a run: said in
    the widget).
    """
    # unsaved work is asked about by load() when a movie is picked: asking here too would
    # ask twice (the answer holds only until the event loop runs, and the list waits)
    if folder is None:
        folder = QFileDialog.getExistingDirectory(
            widget, "Open from a batch run: the run's output folder")
        if not folder:
            return None
    try:
        run = read_run(folder)
    except H4TracksError as e:
        widget.notify(str(e), error=True)
        return None
    if not run.movies:
        widget.notify(f"the run in {run.path} lists no movie", error=True)
        return None
    dialog = RunBrowserDialog(run, widget)

    def opened() -> None:
        assert dialog.chosen is not None
        widget.load(dialog.chosen.project)  # Load's own path: lock, read-only, recovery

    dialog.accepted.connect(opened)
    dialog.finished.connect(lambda _r: dialog.deleteLater())
    dialog.open()
    return dialog
