"""Every export from the tab where the user is (issue 21, item 5), each by a real click on its
button in a shown napari window (file dialogs answered by the test):

* Tracking tab: CTC, GEFF and the per-cell CSV (the Data / Analysis tabs' own handlers);
* Analysis tab: the per-track and per-cell CSVs, the figure, the selected track's plot;
* Evaluation tab: the report.

The Data tab's CTC and GEFF buttons are tested in ``test_data_tab.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _events import LEFT, NO_MOD, Gui, open_window
from geff import read
from qtpy.QtTest import QTest
from qtpy.QtWidgets import QFileDialog

from h4tracks.core.io.ctc import graph_to_ctc, read_ctc
from h4tracks.datasets.synthetic import make_movie


@pytest.fixture(scope="module")
def movie():
    return make_movie(n_frames=8, shape=(96, 96), n_cells=5, radius=7, seed=4)


@pytest.fixture
def gui(make_napari_viewer, qtbot, movie):
    g = open_window(make_napari_viewer, qtbot, movie, name="syn")
    yield g
    g.widget.ask_unsaved = lambda _project: "discard"
    g.stop()
    assert not g.unexpected, g.unexpected


def _answer(monkeypatch, name: str, value) -> list:
    """QFileDialog.``name`` returns ``value`` (with a filter for the file dialogs)."""
    asked: list = []

    def fake(*args, **kwargs):
        asked.append(args)
        return str(value) if name == "getExistingDirectory" else (str(value), "")

    monkeypatch.setattr(QFileDialog, name, fake)
    return asked


def _wait(g: Gui) -> None:
    g.qtbot.waitUntil(lambda: not g.widget.busy, timeout=120_000)


def test_tracking_tab_exports_ctc_geff_and_cells(gui, tmp_path, monkeypatch):
    g, w = gui, gui.widget
    tab, project = w.tracking_tab, w.project
    asked = _answer(monkeypatch, "getExistingDirectory", tmp_path / "ctc")
    (tmp_path / "ctc").mkdir()
    g.press(tab.export_ctc_btn)
    _wait(g)
    assert asked, "the folder dialog was not opened"
    _labels, lineage = read_ctc(tmp_path / "ctc")
    assert np.array_equal(lineage, graph_to_ctc(project.graph)[1])

    _answer(monkeypatch, "getSaveFileName", tmp_path / "tracks.zarr")
    g.press(tab.export_geff_btn)
    _wait(g)
    graph, _meta = read(str(tmp_path / "tracks.zarr" / "tracks"))
    assert graph.number_of_nodes() == len(project.graph)

    _answer(monkeypatch, "getSaveFileName", tmp_path / "cells.csv")
    g.press(tab.export_cells_btn)
    _wait(g)
    cells = pd.read_csv(tmp_path / "cells.csv")
    assert len(cells) == len(project.graph) and "track_id" in cells.columns


def test_analysis_tab_exports_tables_figure_and_track_plot(gui, tmp_path, monkeypatch):
    g, w = gui, gui.widget
    tab = w.analysis_tab
    g.press(tab.compute_btn)
    g.qtbot.waitUntil(lambda: not w.busy and tab.table is not None, timeout=120_000)

    _answer(monkeypatch, "getSaveFileName", tmp_path / "tracks.csv")
    g.press(tab.export_btn)
    assert len(pd.read_csv(tmp_path / "tracks.csv")) == len(tab.table)
    assert (tmp_path / "tracks_summary.csv").exists()

    _answer(monkeypatch, "getSaveFileName", tmp_path / "cells.csv")
    g.press(tab.export_cells_btn)
    _wait(g)
    assert len(pd.read_csv(tmp_path / "cells.csv")) == len(w.project.graph)

    plots = tab.plots
    g.press(plots.plot_btn)
    assert plots.plot is not None and plots.plot.figure is not None
    _answer(monkeypatch, "getSaveFileName", tmp_path / "figure.svg")
    g.press(plots.save_fig_btn)
    assert b"<svg" in (tmp_path / "figure.svg").read_bytes()[:500]

    # the selected track's plot: refused before a track is chosen, saved after
    _answer(monkeypatch, "getSaveFileName", tmp_path / "track.png")
    g.press(plots.save_track_fig_btn)
    assert "select a track" in w.status.text() and not (tmp_path / "track.png").exists()
    # a click on a row of the metrics table: the track is plotted
    cell = tab.view.visualRect(tab.proxy.index(0, 0)).center()
    QTest.mouseClick(tab.view.viewport(), LEFT, NO_MOD, cell)
    assert plots.track_plot is not None and plots.track_plot.figure is not None
    g.press(plots.save_track_fig_btn)
    assert (tmp_path / "track.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluation_tab_exports_its_report(gui, tmp_path, monkeypatch):
    g, w = gui, gui.widget
    tab, project = w.evaluation_tab, w.project
    project.take_auto_snapshot(step="test")
    tab.frames_edit.setText("0:4")
    g.press(tab.eval_btn)
    g.qtbot.waitUntil(lambda: not w.busy and tab.report is not None, timeout=120_000)
    _answer(monkeypatch, "getSaveFileName", tmp_path / "report.json")
    g.press(tab.export_btn)
    assert {p.name for p in tmp_path.iterdir()} == {"report.json", "report.md",
                                                    "report.html"}
