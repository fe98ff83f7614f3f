"""Analysis tab tests with a real napari viewer (run under Xvfb): metrics table and filters,
CSV export, plots, lasso selection in the Tracks layer, and the assistant's navigation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from napari.layers import Tracks
from qtpy.QtCore import Qt

from h4tracks.core.graph import TrackGraph
from h4tracks.core.parameters import AssistantParams
from h4tracks.core.project import Project
from h4tracks.datasets.synthetic import make_movie
from h4tracks.ui.analysis_tab import AnalysisTab
from h4tracks.ui.main_widget import H4TracksWidget
from h4tracks.ui.plot_panel import PLOT_DOCK


@pytest.fixture(scope="module")
def movie():
    return make_movie(n_frames=8, shape=(96, 96), n_cells=6, radius=7, seed=3)


@pytest.fixture
def setup(make_napari_viewer, qtbot, movie):
    """A widget showing a tracked project, with the Analysis tab added and metrics computed."""
    w = H4TracksWidget(make_napari_viewer())
    qtbot.addWidget(w)
    tab = AnalysisTab(w)
    w.tabs.addTab(tab, "Analysis")
    project = Project(movie.image, movie.labels.copy(),
                      graph=TrackGraph.from_ctc(movie.labels, movie.lineage),
                      metadata={"name": "syn"})
    w.show_project(project)
    tab.compute_metrics()
    qtbot.waitUntil(lambda: not w.busy and tab.table is not None, timeout=180_000)
    return w, tab, project


def test_metric_table_filtered_and_csv_export(setup, tmp_path):
    _w, tab, project = setup
    n = len(project.graph.track_ids())
    assert len(tab.table) == n and tab.model.rowCount() == n
    assert tab.model.columnCount() == len(tab.table.columns)
    assert tab.model.headerData(0, Qt.Orientation.Horizontal) == "track_id"
    npts = tab.table["n_points"]
    cut = int(np.median(npts)) + 1
    tab.min_length.setValue(cut)
    assert tab.model.rowCount() == int((npts >= cut).sum()) < n
    assert f"of {n} tracks" in tab.summary.text()
    tab.min_length.setValue(0)
    path_len = tab.table[tab.table.find("path_length")]
    tab.min_movement.setValue(float(np.nanmedian(path_len)))
    assert tab.model.rowCount() == int((path_len >= np.nanmedian(path_len)).sum())
    _csv_export_readable(setup, tmp_path)


def _csv_export_readable(setup, tmp_path):
    w, tab, _project = setup
    tab.min_movement.setValue(0)
    tab.min_length.setValue(3)
    tab.sep_combo.setCurrentText("; (semicolon)")
    tab.decimal_combo.setCurrentText(", (comma)")
    tracks, summary = tab.export_csv(tmp_path / "tracks")
    assert tracks.name == "tracks.csv" and summary.name == "tracks_summary.csv"
    df = pd.read_csv(tracks, sep=";", decimal=",", encoding="utf-8-sig")
    assert len(df) == len(tab.table)
    assert df["passes_filters"].sum() == int((tab.table["n_points"] >= 3).sum())
    np.testing.assert_allclose(df["path_length [px]"], tab.table["path_length [px]"])
    # a bad folder is an error message, not an exception
    assert tab.export_csv(tmp_path / "missing" / "x.csv") is None
    assert "does not exist" in w.status.text()


def test_per_cell_csv_from_the_button(setup, qtbot, tmp_path, monkeypatch):
    """Export per-cell table: one row per cell per frame, written in the background under a
    temporary name and renamed when complete."""
    from qtpy.QtWidgets import QFileDialog

    w, tab, project = setup
    out = tmp_path / "cells.csv"
    asked = []

    def fake(*args, **kwargs):
        asked.append(args)
        return str(out), "CSV (*.csv)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake)
    tab.sep_combo.setCurrentText("; (semicolon)")
    tab.decimal_combo.setCurrentText(", (comma)")
    assert tab.export_cells_btn.isEnabled()
    tab.export_cells_btn.click()
    assert asked, "the file dialog was not opened"
    qtbot.waitUntil(lambda: not w.busy and out.exists(), timeout=120_000)
    df = pd.read_csv(out, sep=";", decimal=",", encoding="utf-8-sig")
    assert len(df) == len(project.graph)  # one row per cell per frame
    assert {"t", "label", "track_id"} <= set(df.columns)
    assert len(df.groupby(["t", "label"])) == len(df)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.csv"]  # no temporary file
    assert str(out) in w.status.text()


def test_plot_kinds_save_and_lasso(setup, tmp_path):
    w, tab, _project = setup
    for kind in ("histogram", "rose", "msd", "scatter"):
        fig = tab.plots.make_plot(kind)
        assert fig is not None and fig.axes, kind
        assert tab.plots.plot.figure is fig
    assert tab.plots.plot.has_lasso  # scatter is the last one
    assert PLOT_DOCK in w.viewer.window.dock_widgets
    png = tab.plots.save_figure(tmp_path / "fig.png")
    svg = tab.plots.save_figure(tmp_path / "fig.svg")
    assert png.stat().st_size > 0 and svg.read_text().lstrip().startswith("<?xml")
    _lasso_shows_only_selected_tracks_and_reset(setup)


def _lasso_shows_only_selected_tracks_and_reset(setup):
    w, tab, project = setup
    layer = next(lyr for lyr in w.viewer.layers if isinstance(lyr, Tracks))
    full = np.asarray(layer.data).copy()
    n_nodes, n_edges = len(project.graph), project.graph.n_edges
    tab.plots.x_combo.setCurrentText(tab.table.find("start_x"))
    tab.plots.y_combo.setCurrentText(tab.table.find("start_y"))
    tab.plots.make_plot("scatter")
    # a polygon around the tracks that start in the left half of the image
    xs = tab.table[tab.table.find("start_x")]
    left = tab.table["track_id"][xs < 48]
    assert 0 < left.size < len(tab.table)
    verts = [(-1, -1), (48, -1), (48, 97), (-1, 97)]
    selected = tab.plots.plot.on_lasso(verts)
    np.testing.assert_array_equal(np.sort(selected), np.sort(left))
    shown = np.unique(np.asarray(layer.data)[:, 0]).astype(int)
    np.testing.assert_array_equal(shown, np.sort(left))
    # a view only: the project keeps every node and edge
    assert len(project.graph) == n_nodes and project.graph.n_edges == n_edges
    tab.plots.reset_btn.click()
    np.testing.assert_array_equal(np.asarray(layer.data), full)
    assert tab.plots.plot.selected is None

    # with the main widget's TracksView (owner of the project's Tracks layer) the lasso
    # goes through its filter, so later refreshes keep the selection
    from h4tracks.ui.tracks_view import TracksView

    w.tracks_view = view = getattr(w, "tracks_view", None) or TracksView(w)
    tab.plots.plot.on_lasso(verts)
    assert view.filter == frozenset(int(i) for i in left)
    shown = np.unique(np.asarray(view.layer().data)[:, 0]).astype(int)
    np.testing.assert_array_equal(shown, np.sort(left))
    tab.plots.reset_selection()
    assert view.filter is None
    assert len(np.asarray(view.layer().data)) == len(full)
    assert len(project.graph) == n_nodes and project.graph.n_edges == n_edges


def test_assistant_flags_and_navigation(make_napari_viewer, qtbot):
    """A track ending mid-image is flagged (one ending at the border is not); an area jump
    and a tiny cell are found; Next/Previous move frame and camera."""
    shape = (8, 96, 96)
    labels = np.zeros(shape, np.uint16)
    yy, xx = np.mgrid[:96, :96]

    def disk(t: int, lab: int, cy: float, cx: float, r: float) -> None:
        labels[t][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = lab

    for t in range(8):
        disk(t, 1, 20, 15 + t, 5)  # full-length track
        if t < 4:
            disk(t, 2, 50, 40 + t, 5)  # ends at frame 3 in the middle of the image
            disk(t, 3, 80, 86 + 3 * t, 5)  # ends at frame 3 at the right border
        disk(t, 4, 70, 20 + t, 5 if t < 5 else 9)  # area jumps at frame 5
        disk(t, 5, 35, 60 + t, 5 if t != 6 else 1)  # tiny at frame 6
    nodes, edges = [], []
    from h4tracks.core.project import measure_graph_nodes

    g0 = measure_graph_nodes(labels)
    nt = g0.node_table()
    for t, lab in zip(nt["t"], nt["label"], strict=True):
        if t > 0 and np.any((nt["t"] == t - 1) & (nt["label"] == lab)):
            edges.append((t - 1, lab, t, lab))
    nodes = {k: v for k, v in nt.items() if k != "track_id"}
    graph = TrackGraph.from_arrays(nodes, np.array(edges, np.int64))
    project = Project(np.zeros(shape, np.uint8), labels, graph=graph,
                      metadata={"name": "flags", "pixel_size": 0.5})

    w = H4TracksWidget(make_napari_viewer())
    qtbot.addWidget(w)
    tab = AnalysisTab(w)
    w.tabs.addTab(tab, "Analysis")
    panel = tab.assistant
    w.show_project(project)
    panel.margin.setValue(8)
    # the thresholds' editors are generated from the model (defaults, bounds, titles)
    assert panel.assistant_params() == AssistantParams(border_margin=8)
    assert panel.small_fraction.maximum() == 1 and panel.area_ratio.minimum() > 1
    rep = panel.find_suspicious()
    assert [(f.t, f.label) for f in rep["early_end"]] == [(3, 2)]
    assert (5, 4) in [(f.t, f.label) for f in rep["area_jump"]]
    assert [(f.t, f.label) for f in rep["small_cell"]] == [(6, 5)]
    assert panel.flag_combo.currentData() == "early_end"

    panel.flag_combo.setCurrentIndex(list(panel.flag_combo.itemData(i) for i in range(
        panel.flag_combo.count())).index("area_jump"))
    items = panel.current_flags()
    first = panel.next_btn.click() or items[panel.flag_index]
    assert w.viewer.dims.current_step[0] == first.t
    # camera centre in world units (pixel size 0.5)
    np.testing.assert_allclose(w.viewer.scene.camera.center[-2:], (first.y * 0.5, first.x * 0.5))
    assert f"frame {first.t}" in panel.flag_label.text()
    if len(items) > 1:
        second = panel.next_flag()
        assert w.viewer.dims.current_step[0] == second.t
        back = panel.previous_flag()
        assert back == first
    # every flag is marked on its cell, with its reason; painting stays in the labels layer
    marks = w.viewer.layers["suspicious cells"]
    assert len(marks.data) == rep.total and len(w.viewer.layers) == 4
    assert set(marks.features["reason"]) >= {f.reason for f in rep["small_cell"]}
    assert w.viewer.layers.selection.active is not marks
    panel.find_suspicious()  # run again: the layer is replaced, not added
    assert len(w.viewer.layers) == 4
