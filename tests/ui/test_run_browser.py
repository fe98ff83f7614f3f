"""Open a movie of a finished batch run from the widget (*Open run…*), curate it, run the
pipeline again (run under Xvfb).

The folder picker is a static QFileDialog function (patched); the movie list is a real dialog
driven by clicks and keys on its table and buttons. The runs are real (``run_pipeline`` in
this process) over tiny synthetic movies.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from qtpy.QtCore import Qt
from qtpy.QtTest import QTest

from h4tracks.core.actions import MarkCurated
from h4tracks.core.pipeline import parse_pipeline, run_pipeline
from h4tracks.core.segmentation.label_edits import remove_cell
from h4tracks.core.store import open_project
from h4tracks.datasets.synthetic import SyntheticConfig, make_movie
from h4tracks.testing.processes import lock_held_elsewhere
from h4tracks.ui import run_browser
from h4tracks.ui.run_browser import RunBrowserDialog

pytestmark = pytest.mark.slow

LEFT = Qt.MouseButton.LeftButton


def _write_movies(folder: Path, n: int, frames: int, labels: bool = True) -> Path:
    """``n`` tiny movies (with their labels) and a manifest (conditions control / drug)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        movie = make_movie(SyntheticConfig(n_frames=frames, shape=(64, 64), n_cells=3,
                                           seed=10 + i))
        tifffile.imwrite(folder / f"m{i}.tif", movie.image, photometric="minisblack",
                         metadata={"axes": "TYX"})
        tifffile.imwrite(folder / f"m{i}_labels.tif", movie.labels.astype(np.uint16),
                         photometric="minisblack", metadata={"axes": "TYX"})
        rows.append({"image": f"m{i}.tif", "labels": f"m{i}_labels.tif" if labels else "",
                     "condition": ("control", "drug")[i % 2], "replicate": str(i)})
    with open(folder / "movies.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder / "movies.csv"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished run of 3 movies (labels imported, LAP tracking, analysis)."""
    base = tmp_path_factory.mktemp("run")
    manifest = _write_movies(base / "movies", 3, frames=5)
    pipeline = parse_pipeline({"inputs": {"manifest": str(manifest)}, "output": str(base / "out"),
                               "steps": {"track": {"method": "lap", "max_distance": 12},
                                         "analyze": {}}})
    assert run_pipeline(pipeline, scheduler="sequential", progress=False).ok
    return base / "out"


@pytest.fixture
def shown(widget, qtbot):
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.ask_unsaved = lambda _project: "discard"  # teardown: never a modal prompt


def _pick_folder(monkeypatch, folder: Path) -> None:
    monkeypatch.setattr(run_browser.QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(folder)))


def _open_list(widget, qtbot) -> RunBrowserDialog:
    """Click *Open run…* and wait for the movie list."""
    QTest.mouseClick(widget.data_tab.open_run_btn, LEFT)
    qtbot.waitUntil(lambda: widget.findChild(RunBrowserDialog) is not None, timeout=5000)
    dialog = widget.findChild(RunBrowserDialog)
    qtbot.waitExposed(dialog)
    return dialog


def _click_row(dialog: RunBrowserDialog, row: int) -> None:
    table = dialog.table
    rect = table.visualItemRect(table.item(row, 0))
    QTest.mouseClick(table.viewport(), LEFT, Qt.KeyboardModifier.NoModifier, rect.center())


def test_open_a_movie_of_a_run_by_clicking_it(shown, run_dir, qtbot, monkeypatch):
    w = shown
    _pick_folder(monkeypatch, run_dir)
    dialog = _open_list(w, qtbot)
    table = dialog.table
    headers = [table.horizontalHeaderItem(i).text() for i in range(table.columnCount())]
    assert headers == ["movie", "condition", "replicate", "status", "flags"]
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == ["m0", "m1", "m2"]
    assert [table.item(r, 1).text() for r in range(3)] == ["control", "drug", "control"]
    assert {table.item(r, 3).text() for r in range(3)} == {"ok"}

    _click_row(dialog, 1)
    assert dialog.selected().name == "m1" and dialog.open_btn.isEnabled()
    QTest.mouseClick(dialog.open_btn, LEFT)
    project_path = run_dir / "projects" / "m1.zarr"
    qtbot.waitUntil(lambda: w.project is not None and w.project.path == project_path,
                    timeout=10000)
    project = w.project
    assert not getattr(project, "read_only", None)
    assert w.status.text() == f"opened {project_path}"
    on_disk = open_project(project_path)
    assert project.n_frames == on_disk.n_frames and len(project.graph) == len(on_disk.graph)
    assert w.image_combo.layer() is not None
    np.testing.assert_array_equal(np.asarray(w.labels_combo.layer().data[2]),
                                  np.asarray(on_disk.labels.frame(2)))


def test_keys_pick_a_movie_a_running_batch_holds_read_only(shown, run_dir, qtbot, monkeypatch):
    w = shown
    _pick_folder(monkeypatch, run_dir)
    path = run_dir / "projects" / "m2.zarr"
    with lock_held_elsewhere(path, "h4tracks run plate.yaml"):
        dialog = _open_list(w, qtbot)
        assert dialog.selected().name == "m0"  # the first movie is preselected
        dialog.table.setFocus()
        QTest.keyClick(dialog.table, Qt.Key.Key_Down)
        QTest.keyClick(dialog.table, Qt.Key.Key_Down)
        assert dialog.selected().name == "m2"
        QTest.keyClick(dialog.table, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: w.project is not None and w.project.path == path,
                        timeout=10000)
        # Load's rules: a project another program is changing opens read-only, once
        assert "h4tracks run plate.yaml" in w.project.read_only
        assert "read-only" in w.status.text()
    assert not dialog.isVisible()


def test_failed_movies_cannot_be_picked_and_a_folder_that_is_no_run(shown, run_dir, qtbot,
                                                                    monkeypatch, tmp_path):
    w = shown
    _pick_folder(monkeypatch, tmp_path)
    QTest.mouseClick(w.data_tab.open_run_btn, LEFT)
    assert w.status.text() == (f"{tmp_path} is not the output folder of an h4tracks run (it "
                               "has no movies.csv)")
    assert w.findChild(RunBrowserDialog) is None

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    with open(copy / "movies.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows.append({**rows[0], "movie": "broken", "status": "failed",
                 "error": "cannot read broken.tif"})
    with open(copy / "movies.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _pick_folder(monkeypatch, copy)
    dialog = _open_list(w, qtbot)
    assert dialog.table.rowCount() == 4
    broken = dialog.table.item(3, 0)
    assert not broken.flags() & Qt.ItemFlag.ItemIsSelectable
    _click_row(dialog, 3)  # a greyed-out row: the click selects nothing
    assert dialog.selected().name == "m0"
    assert "failed before it was imported (cannot read broken.tif)" in \
        dialog.table.item(3, 0).toolTip()
    QTest.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Cancel), LEFT)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)
    assert w.project is None


def test_curate_a_run_movie_then_rerun_keeps_the_curated_frames(shown, qtbot, monkeypatch,
                                                                 tmp_path):
    """Segmented by the pipeline, opened from the run, one cell removed in frame 2 (its link
    from frame 1 cut: both frames become curated) and frame 1 marked curated in napari (a
    no-op if it already is), saved; the pipeline with other segmentation parameters
    re-segments frame 0 only and keeps frames 1 and 2 as curated."""
    w = shown
    manifest = _write_movies(tmp_path / "movies", 1, frames=3, labels=False)

    def pipeline(diameter: float):
        return parse_pipeline({
            "inputs": {"manifest": str(manifest)}, "output": str(tmp_path / "out"),
            "steps": {"segment": {"diameter": diameter}, "track": {"method": "overlap"}}})

    first = run_pipeline(pipeline(12), scheduler="sequential", progress=False)
    assert first.ok, first.failed
    _pick_folder(monkeypatch, tmp_path / "out")
    dialog = _open_list(w, qtbot)
    _click_row(dialog, 0)
    QTest.mouseClick(dialog.open_btn, LEFT)
    path = tmp_path / "out" / "projects" / "m0.zarr"
    qtbot.waitUntil(lambda: w.project is not None and w.project.path == path, timeout=10000)

    project = w.project
    frame2 = np.asarray(project.labels.frame(2))
    cells = np.unique(frame2[frame2 > 0])
    assert cells.size >= 1
    y, x = np.argwhere(frame2 == cells[0])[0]
    assert w.apply_action(remove_cell(project, 2, float(y), float(x)))
    assert w.apply_action(MarkCurated([1], True)) or 1 in project.curated_frames
    assert set(project.curated_frames) == {1, 2}
    w.save()
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
    saved = open_project(path)
    curated = {t: np.asarray(saved.labels.frame(t)).copy() for t in (1, 2)}
    assert cells[0] not in curated[2]

    again = run_pipeline(pipeline(16), scheduler="sequential", progress=False)
    assert again.ok, again.failed
    assert again.results["m0"].steps["segment"] == "ran"
    after = open_project(path)
    for t, labels in curated.items():
        np.testing.assert_array_equal(np.asarray(after.labels.frame(t)), labels)
    assert set(after.curated_frames) == {1, 2}
    last = [e for e in after.metadata.provenance if e["step"] == "segment"][-1]
    assert last["params"]["frames"] == [[0, 1]] and last["params"]["diameter"] == 16
