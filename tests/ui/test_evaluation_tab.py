"""Evaluation tab tests with a real napari viewer (run under Xvfb): curated vs automatic,
an external label-movie reference, errors, and report export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from h4tracks.core.actions import SetLabelPixels
from h4tracks.core.graph import TrackGraph
from h4tracks.core.project import Project
from h4tracks.datasets.synthetic import make_movie
from h4tracks.ui.evaluation_tab import EvaluationTab
from h4tracks.ui.main_widget import H4TracksWidget


@pytest.fixture(scope="module")
def movie():
    return make_movie(n_frames=8, shape=(96, 96), n_cells=6, radius=7, seed=4)


@pytest.fixture
def widget(make_napari_viewer, qtbot):
    w = H4TracksWidget(make_napari_viewer())
    qtbot.addWidget(w)
    w.evaluation_tab_under_test = tab = EvaluationTab(w)
    w.tabs.addTab(tab, "Evaluation")
    return w, tab


def _project(movie) -> Project:
    return Project(movie.image, movie.labels.copy(),
                   graph=TrackGraph.from_ctc(movie.labels, movie.lineage),
                   metadata={"name": "syn"})


def test_curated_vs_auto_scores_and_export(widget, movie, qtbot, tmp_path):
    w, tab = widget
    project = _project(movie)
    w.show_project(project)
    # no snapshot yet: a one-line error, no worker
    assert tab.evaluate_segmentation() is None
    assert "no automatic result" in w.status.text()

    project.take_auto_snapshot(step="test")
    # curation: delete one cell in frame 3
    frame = project.labels.frame(3).copy()
    gone = int(frame[frame > 0].min())
    frame[frame == gone] = 0
    project.labels.set_frame(3, frame)

    tab.frames_edit.setText("0:6")
    assert tab.evaluate_segmentation() is not None
    qtbot.waitUntil(lambda: not w.busy and tab.report is not None, timeout=180_000)
    rep = tab.report
    assert rep.frames == list(range(6)) and rep.segmentation is not None
    assert rep.segmentation.fp == 1 and rep.tracking is None
    values = tab.result_values()
    assert values["F1"] == f"{rep.segmentation.f1:.4f}"
    assert "F1" in tab.summary.text()

    tab.report = None
    tab.evaluate_tracking()
    qtbot.waitUntil(lambda: not w.busy and tab.report is not None, timeout=180_000)
    t = tab.report.tracking
    assert t is not None and t.tra < 1.0 and t.false_positives == 1
    assert tab.result_values()["TRA"] == f"{t.tra:.4f}"
    assert tab.export_btn.isEnabled()

    files = tab.export_report(tmp_path / "report.json")
    assert [f.name for f in files] == ["report.json", "report.md", "report.html"]
    data = json.loads(files[0].read_text())
    assert data["tracking"]["tra"] == pytest.approx(t.tra)
    assert "TRA" in files[1].read_text() and "<html>" in files[2].read_text()
    # a bad frame range is an error message
    tab.frames_edit.setText("5:99x")
    assert tab.evaluate_tracking() is None
    assert "not understood" in w.status.text()


def test_external_label_movie_reference(widget, movie, qtbot, tmp_path):
    w, tab = widget
    project = _project(movie)
    w.show_project(project)
    ref = movie.labels.copy()
    ref[2][ref[2] == int(ref[2].max())] = 0  # the reference lacks one cell: one FP
    tifffile.imwrite(tmp_path / "ref.tif", ref)
    tab.set_reference(tmp_path / "ref.tif")
    assert tab.ref_path.isEnabled()
    tab.evaluate_segmentation()
    qtbot.waitUntil(lambda: not w.busy and tab.report is not None, timeout=180_000)
    s = tab.report.segmentation
    assert s.fp == 1 and s.fn == 0
    # tracking against labels only: an error reported, the tab stays usable
    tab.report = None
    tab.evaluate_tracking()
    qtbot.waitUntil(lambda: not w.busy, timeout=180_000)
    assert tab.report is None and "lineage" in w.status.text()
    assert tab.eval_btn.isEnabled()
    # no reference chosen
    tab.ref_path.setText("")
    assert tab.evaluate_segmentation() is None
    assert "reference" in w.status.text()
    np.testing.assert_array_equal(np.asarray(project.labels), movie.labels)


def test_one_evaluate_scores_both_marks_errors_and_exports_everything(widget, movie, qtbot,
                                                                      tmp_path):
    """The Evaluate button scores segmentation and tracking together; the report says which
    frames are curated; the errors are marked in the viewer; the export holds both."""
    w, tab = widget
    project = _project(movie)
    w.show_project(project)
    project.take_auto_snapshot(step="test")
    frame = project.labels.frame(3).copy()
    gone = int(frame[frame > 0].min())
    frame[frame == gone] = 0
    w.apply_action(SetLabelPixels.from_frames(3, project.labels.frame(3), frame))
    tab.eval_btn.click()
    qtbot.waitUntil(lambda: not w.busy and tab.report is not None, timeout=180_000)
    rep = tab.report
    assert rep.segmentation is not None and rep.tracking is not None
    assert rep.curated_frames == [3]
    assert "Curated among them" in tab.result_values()
    markers = w.viewer.layers["evaluation errors"]
    assert len(markers.data) >= 1 and set(markers.data[:, 0].astype(int)) == {3}
    # the user deleted a cell: the automatic result had an object that is not a cell
    assert "segmented object that is not a cell" in list(markers.features["reason"])
    files = tab.export_report(tmp_path / "both.json")
    data = json.loads(files[0].read_text())
    assert data["segmentation"] is not None and data["tracking"] is not None
    assert data["curated_frames"] == [3]
