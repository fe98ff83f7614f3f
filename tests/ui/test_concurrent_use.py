"""napari and another program on one project: the widget never overwrites what the other
program wrote, and never loses the user's edits either.

Real clicks on the shown window (``_events.Gui``), a real ``h4tracks`` process (or a process
holding the project's lock), and assertions on the project on disk.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

# the shown-window fixture and helpers of the curation scenarios
from test_scenarios import _saved_with_edit, gui, make_labels, wait_idle  # noqa: F401

from h4tracks.core.store import open_project, save_project
from h4tracks.testing.processes import lock_held_elsewhere
from h4tracks.ui import main_widget as main_module
from h4tracks.ui import project_layers as layers_module


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, H4TRACKS_CONFIG_DIR=str(cwd / "cfg"))
    return subprocess.run([sys.executable, "-m", "h4tracks.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_save_after_another_program_changed_the_project(gui, tmp_path, monkeypatch):  # noqa: F811
    """The user edits in napari while ``h4tracks curate`` marks a frame in a terminal: Save
    is refused (the terminal's change stays on disk), the edit stays in the viewer, and
    Save as keeps it in a new project."""
    w = gui.widget
    project, path, _labels = _saved_with_edit(gui, tmp_path)
    r = _cli("curate", str(path), "--mark", "9", cwd=tmp_path)
    assert r.returncode == 0, r.stderr

    gui.press(w.save_btn)
    wait_idle(gui)
    status = w.status.text()
    assert "after you opened it" in status and "new name" in status, status
    on_disk = open_project(path)
    assert on_disk.metadata.curated_frames == [9]  # the terminal's change is kept
    assert 2 in np.unique(on_disk.labels.frame(3))  # the user's edit was not written there
    assert w.has_unsaved_work() and 2 not in np.unique(project.labels.frame(3))

    copy = tmp_path / "mine.zarr"
    monkeypatch.setattr(main_module.QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(copy), "")))
    gui.press(w.save_as_btn)
    wait_idle(gui)
    assert not w.has_unsaved_work(), w.status.text()
    assert 2 not in np.unique(open_project(copy).labels.frame(3))
    assert open_project(path).metadata.curated_frames == [9]


def test_project_locked_by_a_batch_run_opens_read_only(gui, tmp_path, monkeypatch):  # noqa: F811
    """A project another process is writing opens for viewing; Save is refused with one
    sentence and writes nothing, Save as works."""
    from h4tracks.core.project import Project

    w = gui.widget
    labels = make_labels()
    path = save_project(Project(labels.astype(np.uint16) * 100, labels), tmp_path / "b.zarr")
    with lock_held_elsewhere(path, "h4tracks run plate.yaml"):
        before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
        monkeypatch.setattr(layers_module.QFileDialog, "getExistingDirectory",
                            staticmethod(lambda *a, **k: str(path)))
        gui.press(w.load_btn)
        assert w.project is not None and w.project.path == path
        status = w.status.text()
        assert "read-only" in status and "h4tracks run plate.yaml" in status, status

        gui.press(w.save_btn)
        wait_idle(gui)
        status = w.status.text()
        assert "read-only" in status and "new name" in status, status
        assert {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} == before

        copy = tmp_path / "view.zarr"
        monkeypatch.setattr(main_module.QFileDialog, "getSaveFileName",
                            staticmethod(lambda *a, **k: (str(copy), "")))
        gui.press(w.save_as_btn)
        wait_idle(gui)
        assert open_project(copy).n_frames == labels.shape[0], w.status.text()
