"""Data tab tests with a real napari viewer (run under Xvfb): export of the project in the
Cell Tracking Challenge format from the button, with the folder dialog answered by the test."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtWidgets import QFileDialog

from h4tracks.core.graph import TrackGraph
from h4tracks.core.io.ctc import graph_to_ctc, read_ctc
from h4tracks.core.project import Project
from h4tracks.datasets.synthetic import make_movie


@pytest.fixture(scope="module")
def movie():
    # dividing cells: the CTC lineage has parents
    return make_movie(n_frames=8, shape=(96, 96), n_cells=5, radius=7, seed=4)


@pytest.fixture
def shown(widget, movie):
    project = Project(movie.image, movie.labels.copy(),
                      graph=TrackGraph.from_ctc(movie.labels, movie.lineage),
                      metadata={"name": "syn"})
    widget.show_project(project)
    widget.tabs.setCurrentWidget(widget.data_tab)
    return widget, project


def _answer_folder(monkeypatch, path) -> list:
    asked: list = []

    def fake(*args, **kwargs):
        asked.append(args)
        return str(path)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", fake)
    return asked


def test_export_ctc_button_writes_a_readable_result(shown, qtbot, tmp_path, monkeypatch):
    w, project = shown
    out = tmp_path / "ctc"
    out.mkdir()
    (out / "mask999.tif").write_bytes(b"stale")  # an earlier, longer export
    (out / "notes.txt").write_text("mine")  # the user's own file stays
    asked = _answer_folder(monkeypatch, out)
    w.data_tab.export_ctc_btn.click()
    assert asked, "the folder dialog was not opened"
    qtbot.waitUntil(lambda: not w.busy, timeout=120_000)
    assert "Cell Tracking Challenge" in w.status.text(), w.status.text()

    labels, lineage = read_ctc(out)
    _nodes, expected = graph_to_ctc(project.graph)
    assert len(lineage) == len(expected)  # same number of CTC tracks
    np.testing.assert_array_equal(lineage, expected)
    assert labels.shape == project.shape
    # every cell of the project is in the masks, relabelled by its track
    np.testing.assert_array_equal(labels > 0, np.asarray(project.labels) > 0)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"mask{t:03d}.tif" for t in range(project.n_frames)]
                           + ["notes.txt", "res_track.txt"])  # no stale mask, no temp folder
    assert project.labels is not None and w.project_labels_layer().editable


def test_export_ctc_refuses_a_folder_inside_a_project(shown, qtbot, tmp_path, monkeypatch):
    w, _project = shown
    inside = tmp_path / "exp.zarr" / "export"
    inside.mkdir(parents=True)
    _answer_folder(monkeypatch, inside)
    w.data_tab.export_ctc_btn.click()
    assert not w.busy
    assert ".zarr" in w.status.text() and "outside" in w.status.text()
    assert not any(inside.iterdir())


def test_export_ctc_without_segmentation_is_a_message(widget, movie, monkeypatch, tmp_path):
    widget.show_project(Project(movie.image, metadata={"name": "raw"}))
    _answer_folder(monkeypatch, tmp_path)
    widget.data_tab.export_ctc_btn.click()
    assert not widget.busy
    assert "no segmentation" in widget.status.text()
    assert not any(tmp_path.iterdir())


def test_export_geff_button_writes_what_the_geff_library_reads(shown, qtbot, tmp_path,
                                                               monkeypatch):
    from geff import read
    from geff.validate.structure import validate_structure

    w, project = shown
    out = tmp_path / "tracks.zarr"
    asked: list = []

    def fake(*args, **kwargs):
        asked.append(args)
        return str(tmp_path / "tracks"), ""  # the suffix is added

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake)
    w.data_tab.export_geff_btn.click()
    assert asked, "the save dialog was not opened"
    qtbot.waitUntil(lambda: not w.busy, timeout=120_000)
    assert "GEFF" in w.status.text(), w.status.text()
    validate_structure(str(out / "tracks"))
    g, _meta = read(str(out / "tracks"))
    assert g.number_of_nodes() == len(project.graph)
    assert g.number_of_edges() == project.graph.edge_array().shape[0]
    assert w.project_labels_layer().editable


def test_export_geff_refuses_a_path_inside_a_project(shown, qtbot, tmp_path, monkeypatch):
    from h4tracks.core.store import save_project

    w, project = shown
    saved = save_project(project, tmp_path / "p.zarr")
    before = sorted(p.name for p in saved.iterdir())
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(saved / "inside.zarr"), ""))
    w.data_tab.export_geff_btn.click()
    qtbot.waitUntil(lambda: not w.busy, timeout=120_000)
    assert "project" in w.status.text(), w.status.text()
    assert sorted(p.name for p in saved.iterdir()) == before
