"""Fault injection: concurrent writers, interrupted and killed runs, read-only projects and a
full disk, all through real ``h4tracks`` processes on one project.

Every outcome must be either one writer's complete result or a clear one-line refusal —
never a lost image, a lost curation mark or an "internal error".
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from h4tracks.core.check import check_project
from h4tracks.core.lock import ProjectLockedError, ReadOnlyError, path_lock
from h4tracks.core.project import Project
from h4tracks.core.store import StaleProjectError, open_project, save_project
from h4tracks.datasets.synthetic import SyntheticConfig, make_movie
from h4tracks.testing.processes import lock_held_elsewhere

CLI = [sys.executable, "-m", "h4tracks.cli"]


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    e = dict(os.environ, H4TRACKS_CONFIG_DIR=str(tmp_path / "cfg"), PYTHONUNBUFFERED="1")
    e.update(extra)
    return e


def start(args: list[str], tmp_path: Path, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env(tmp_path, **extra))


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def assert_one_line(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "internal error" not in err and "Traceback" not in err, err


@pytest.fixture(scope="module")
def movie():
    return make_movie(SyntheticConfig(n_frames=6, shape=(64, 64), n_cells=4, seed=3))


@pytest.fixture
def project_path(tmp_path, movie) -> Path:
    p = Project(movie.image, movie.labels, metadata={"name": "faults"})
    p.take_auto_snapshot(step="import")
    return save_project(p, tmp_path / "P.zarr")


def siblings(path: Path) -> list[str]:
    """Hidden leftovers beside a project (the lock file stays on purpose)."""
    return sorted(p.name for p in path.parent.glob(f".{path.name}.*")
                  if not p.name.endswith((".lock", ".lock.json")))


# ---------------------------------------------------------------------- concurrent writers
@pytest.mark.parametrize("round_", range(3))
def test_concurrent_curate_and_track_lose_nothing(project_path, tmp_path, movie, round_):
    image = np.asarray(open_project(project_path).image[:])
    procs = [start(["curate", str(project_path), "--mark", str(t)], tmp_path)
             for t in (0, 2, 4)]
    procs += [start(["track", str(project_path), "--method", "overlap"], tmp_path)
              for _ in range(2)]
    results = [finish(p) for p in procs]
    for code, _out, err in results:
        # with the lock every writer waits its turn (10 s is plenty here)
        assert code == 0, err
    p = open_project(project_path)
    assert sorted(p.metadata.curated_frames) == [0, 2, 4]  # no mark lost
    np.testing.assert_array_equal(np.asarray(p.image[:]), image)  # image intact
    assert p.graph.n_edges > 0 and p.auto is not None and len(p.auto.graph) > 0
    steps = [e["step"] for e in p.metadata.provenance]
    assert steps.count("track") == 2
    assert check_project(project_path).ok
    assert siblings(project_path) == []


def test_second_writer_waits_then_refuses_naming_the_holder(project_path, tmp_path):
    with lock_held_elsewhere(project_path, "h4tracks track P.zarr", 60) as holder:
        before = (project_path / "zarr.json").read_bytes()
        t0 = time.monotonic()
        code, _out, err = finish(start(["curate", str(project_path), "--mark", "1"], tmp_path,
                                       H4TRACKS_LOCK_WAIT="1"))
        assert code == 2 and time.monotonic() - t0 >= 1
        assert_one_line(err)
        assert "h4tracks track P.zarr" in err and f"pid {holder.pid}" in err
        assert (project_path / "zarr.json").read_bytes() == before
        # readers are never blocked
        code, _out, err = finish(start(["info", str(project_path)], tmp_path))
        assert code == 0, err
    # the holder died: its lock went with it
    code, _out, err = finish(start(["curate", str(project_path), "--mark", "1"], tmp_path,
                                   H4TRACKS_LOCK_WAIT="1"))
    assert code == 0, err


def test_python_api_save_from_an_older_generation_is_refused(project_path):
    a = open_project(project_path)
    b = open_project(project_path)
    a.set_curated([1])
    save_project(a)
    b.set_curated([3])
    with pytest.raises(StaleProjectError, match="after you opened it"):
        save_project(b)
    assert open_project(project_path).metadata.curated_frames == [1]
    # b keeps its work: it can go to a new file
    out = save_project(b, project_path.with_name("B.zarr"))
    assert open_project(out).metadata.curated_frames == [3]


def test_in_process_lock_is_reentrant_and_another_process_is_refused(project_path):
    with path_lock(project_path, command="test"), path_lock(project_path):
        p = open_project(project_path)
        p.set_curated([2])
        save_project(p)  # takes the lock again without blocking
        code = subprocess.run(
            [sys.executable, "-c",
             "from h4tracks.core.lock import path_lock\n"
             f"with path_lock({str(project_path)!r}, timeout=0.2): pass"],
            capture_output=True, text=True)
        assert code.returncode != 0 and ProjectLockedError.__name__ in code.stderr
    with path_lock(project_path, timeout=0):
        pass


# ---------------------------------------------------------------------- read-only projects
def _chmod_tree(path: Path, writable: bool) -> None:
    for p in [path, *path.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode | stat.S_IWUSR if writable else mode & ~0o222)


def test_read_only_project_is_left_untouched(project_path, tmp_path):
    _chmod_tree(project_path, writable=False)
    try:
        before = sorted((p.relative_to(project_path), p.stat().st_ino)
                        for p in project_path.rglob("*"))
        for args in (["curate", str(project_path), "--mark", "1"],
                     ["track", str(project_path), "--method", "overlap"]):
            code, _out, err = finish(start(args, tmp_path))
            assert code == 2, err
            assert_one_line(err)
            assert "read-only" in err
        after = sorted((p.relative_to(project_path), p.stat().st_ino)
                       for p in project_path.rglob("*"))
        assert after == before and siblings(project_path) == []
        with pytest.raises(ReadOnlyError):
            save_project(open_project(project_path))
    finally:
        _chmod_tree(project_path, writable=True)


# ---------------------------------------------------------------------- interrupted runs
def _provenance_frames(p: Project) -> set[int]:
    """Frames some segment step of the provenance says it wrote."""
    done: set[int] = set()
    for e in p.metadata.provenance:
        if e["step"] == "segment":
            for start, stop in e["params"].get("frames", []):
                done |= set(range(start, stop))
    return done


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL", "SIGTERM"])
def test_interrupted_segmentation_is_honest(tmp_path, movie, how):
    rng = random.Random(f"{how}")
    p = Project(movie.image)
    path = save_project(p, tmp_path / "S.zarr")
    proc = start(["segment", str(path), "--save-every", "1", "--cores", "1"], tmp_path)
    time.sleep(rng.uniform(4.0, 9.0))  # imports take a few seconds; land inside the run
    proc.send_signal(getattr(signal, how))
    code, _out, err = finish(proc)
    if how != "SIGKILL":
        assert "internal error" not in err and "Traceback" not in err, err
    q = open_project(path)  # whatever happened, the project opens
    assert check_project(path).ok
    segmented = set() if q.labels is None else {
        t for t in range(q.n_frames) if np.asarray(q.labels[t]).any()}
    # every frame holding cells is accounted for by a segment step in the provenance
    assert segmented <= _provenance_frames(q), (segmented, q.metadata.provenance)
    assert not q.curated_frames  # nothing the run did passes for the user's curation
    if q.auto is not None and q.auto.labels is not None:
        for t in segmented:
            np.testing.assert_array_equal(np.asarray(q.auto.labels[t]),
                                          np.asarray(q.labels[t]))
    # the next writer removes what a killed save may have left behind
    code, _out, err = finish(start(["curate", str(path), "--mark", "0"], tmp_path))
    assert code == 0, err
    assert siblings(path) == []


# ---------------------------------------------------------------------- full disk
def test_full_disk_during_new_leaves_nothing(tmp_path, movie):
    big = np.random.default_rng(0).integers(0, 65535, (6, 256, 256), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "big.tif", big, metadata={"axes": "TYX"})
    out = tmp_path / "big.zarr"
    r = subprocess.run(
        ["bash", "-c", f"ulimit -f 64; exec {' '.join(CLI)} new {tmp_path / 'big.tif'} "
                       f"-o {out}"],
        capture_output=True, text=True, env=env(tmp_path))
    assert r.returncode not in (0, 1), r.stderr
    assert_one_line(r.stderr)
    assert not out.exists() and siblings(out) == []


def test_check_command_reports_and_repairs(project_path, tmp_path):
    (project_path / "labels" / "c.2.0.0").unlink()
    code, _out, err = finish(start(["info", str(project_path)], tmp_path))
    assert code == 2 and "h4tracks check" in err
    assert_one_line(err)
    code, out, err = finish(start(["check", str(project_path)], tmp_path))
    assert code == 1 and "labels" in out and "frames 2" in out, out + err
    code, out, err = finish(start(["check", str(project_path), "--repair"], tmp_path))
    assert code == 0 and "restored frames 2" in out, out + err
    code, out, err = finish(start(["check", str(project_path)], tmp_path))
    assert code == 0 and "no problems" in out, out + err
    meta = json.loads((project_path / "zarr.json").read_text())
    assert meta["attributes"]["h4tracks"]["metadata"]["provenance"][-1]["step"] == "repair"


def test_interrupted_training_leaves_no_weights_behind(tmp_path, movie):
    p = Project(movie.image, movie.labels, metadata={"name": "train"})
    p.set_curated([0, 1, 2])
    path = save_project(p, tmp_path / "T.zarr")
    models = tmp_path / "cfg" / "models"
    proc = start(["train", str(path), "--name", "m", "--minutes", "2", "--cores", "1"],
                 tmp_path)
    deadline = time.monotonic() + 120
    while not list(models.glob(".*.pth")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    assert list(models.glob(".*.pth")), "training never wrote trial weights"
    proc.send_signal(signal.SIGINT)
    code, _out, err = finish(proc)
    assert code == 130, err
    # a notice when the signal arrives, then the exit line; no traceback
    assert err.strip().splitlines()[-1] == "h4tracks: interrupted", err
    assert "Traceback" not in err and "internal error" not in err
    assert sorted(q.name for q in models.iterdir()) == []  # no trial or partial weights
    registry = tmp_path / "cfg" / "models.json"
    assert not registry.exists() or "\"m\"" not in registry.read_text()


@pytest.mark.parametrize(("how", "after"), [("SIGINT", 3.5), ("SIGKILL", 4.5),
                                            ("SIGKILL", 6.0)])
def test_interrupted_tracking_leaves_old_or_new(project_path, tmp_path, how, after):
    """A signal at some point of ``track`` (imports, tracking, saving): the project is the
    version before or the tracked one, never a mixture."""
    before = open_project(project_path)
    n_steps = len(before.metadata.provenance)
    proc = start(["track", str(project_path), "--method", "global"], tmp_path)
    time.sleep(after)
    proc.send_signal(getattr(signal, how))
    code, _out, err = finish(proc)
    if how == "SIGINT" and code != 0:
        assert_one_line(err)
    q = open_project(project_path)
    assert check_project(project_path).ok
    steps = [e["step"] for e in q.metadata.provenance]
    if len(steps) == n_steps:  # stopped before its save
        assert q.graph.n_edges == before.graph.n_edges
    else:
        assert steps[-1] == "track" and len(steps) == n_steps + 1 and q.graph.n_edges > 0
    np.testing.assert_array_equal(np.asarray(q.image[:]), np.asarray(before.image[:]))
    # the next writer works, and leaves nothing behind
    code, _out, err = finish(start(["curate", str(project_path), "--mark", "0"], tmp_path))
    assert code == 0, err
    assert siblings(project_path) == []
