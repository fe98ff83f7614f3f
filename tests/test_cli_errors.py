"""Every CLI failure is one sentence, outputs are atomic and never written into a project.

In-process ``main([...])`` for the messages, real subprocesses where the operating system is
part of the failure (file size limit, a closed pipe).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tifffile

from h4tracks.cli import main
from h4tracks.core.project import Project
from h4tracks.core.store import open_project, save_project
from h4tracks.core.tracking import LapParams, track_project
from h4tracks.datasets.synthetic import SyntheticConfig, make_movie

CLI = [sys.executable, "-m", "h4tracks.cli"]


def run(argv: list[str]) -> int:
    """``main(argv)``; an argparse exit counts as its exit code."""
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code or 0)


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "internal error" not in err and "Traceback" not in err, err
    return lines[0]


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """A small tracked project and its source image, built once."""
    d = tmp_path_factory.mktemp("built")
    movie = make_movie(SyntheticConfig(n_frames=5, shape=(64, 64), n_cells=6, seed=4))
    tifffile.imwrite(d / "img.tif", movie.image)
    project = Project(movie.image, movie.labels, metadata={"name": "errors"})
    track_project(project, "lap", LapParams(max_distance=20))
    return save_project(project, d / "P.zarr"), d / "img.tif"


@pytest.fixture
def work(tmp_path, built, monkeypatch) -> Path:
    """A fresh copy of the project as ``P.zarr`` in an empty working folder."""
    monkeypatch.setenv("H4TRACKS_CONFIG_DIR", str(tmp_path / "cfg"))
    shutil.copytree(built[0], tmp_path / "P.zarr")
    shutil.copy(built[1], tmp_path / "img.tif")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def outputs(folder: Path) -> list[str]:
    """What a command left in the working folder besides the inputs (hidden files too)."""
    ignore = {"P.zarr", "img.tif", "cfg"}
    return sorted(p.name for p in folder.iterdir()
                  if p.name not in ignore and not p.name.startswith(".P.zarr.lock"))


# ---------------------------------------------------------------------- numeric flags
@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["train", "P.zarr", "--name", "m", "--epochs", "0"], "--epochs"),
        (["segment", "P.zarr", "--diameter", "nan"], "--diameter"),
        (["new", "img.tif", "-o", "X.zarr", "--pixel-size", "nan"], "--pixel-size"),
        (["new", "img.tif", "-o", "X.zarr", "--pixel-size", "inf"], "--pixel-size"),
        (["new", "img.tif", "-o", "X.zarr", "--frame-interval=-inf"], "--frame-interval"),
        (["track", "P.zarr", "--max-distance", "inf"], "--max-distance"),
        (["track", "P.zarr", "--max-gap", "-1"], "--max-gap"),
        (["track", "P.zarr", "--method", "overlap", "--min-overlap", "nan"], "--min-overlap"),
        (["synth", "-o", "s", "--frames", "0"], "--frames"),
        (["analyze", "P.zarr", "-o", "t.csv", "--min-movement", "nan"], "--min-movement"),
    ],
)
def test_bad_numbers_are_one_line_naming_the_flag(work, capsys, argv, flag):
    before = listing(work / "P.zarr")
    assert run(argv) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("h4tracks") and f"{flag} must be" in line, line
    assert "pydantic" not in line and "Input should" not in line
    assert listing(work / "P.zarr") == before
    assert outputs(work) == []


def test_epochs_range_comes_from_the_model(work, capsys):
    assert run(["train", "P.zarr", "--name", "m", "--epochs", "0"]) == 2
    assert one_line(capsys.readouterr().err) == "h4tracks: error: --epochs must be >= 2 (got 0)"


# ---------------------------------------------------------------------- outputs in a project
@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "P.zarr", "--json", "P.zarr/zarr.json"],
        ["evaluate", "P.zarr", "--markdown", "P.zarr/report.md"],
        ["analyze", "P.zarr", "-o", "P.zarr/zarr.json"],
        ["analyze", "P.zarr", "-o", "t.csv", "--plot", "rose", "--figure", "P.zarr/f.png"],
        ["export", "P.zarr", "-o", "P.zarr/ctc"],
        ["export", "P.zarr", "-o", "P.zarr/labels", "--overwrite"],
        ["synth", "-o", "P.zarr/movie"],
    ],
)
def test_outputs_inside_the_project_are_refused(work, capsys, argv):
    before = listing(work / "P.zarr")
    assert run(argv) == 2
    line = one_line(capsys.readouterr().err)
    assert "inside the h4tracks project P.zarr" in line, line
    assert listing(work / "P.zarr") == before  # zarr.json unchanged byte for byte
    assert open_project(work / "P.zarr").n_frames == 5
    assert outputs(work) == []


def test_analyze_validates_everything_before_writing(work, capsys):
    argv = ["analyze", "P.zarr", "--plot", "scatter", "--x", "nosuch", "--y", "mean_speed",
            "--figure", "f.png", "-o", "out.csv", "--detections", "det.csv"]
    assert run(argv) == 2
    line = one_line(capsys.readouterr().err)
    assert "--x" in line and "nosuch" in line
    assert outputs(work) == []
    for bad, needle in (
        (["--figure", "f.jpg", "--plot", "rose"], ".png or .svg"),
        (["--figure", "missing/f.png", "--plot", "rose"], "does not exist"),
        (["--detections", "out.csv"], "same file"),
    ):
        assert run(["analyze", "P.zarr", "-o", "out.csv", *bad]) == 2
        assert needle in one_line(capsys.readouterr().err)
        assert outputs(work) == []
    argv[argv.index("nosuch")] = "directness"
    assert run(argv) == 0
    assert outputs(work) == ["det.csv", "f.png", "out.csv", "out_summary.csv"]


def test_export_overwrite_replaces_only_the_export(work, capsys):
    assert run(["export", "P.zarr", "-o", "ctc"]) == 0
    capsys.readouterr()  # its progress line
    (work / "ctc" / "notes.txt").write_text("mine")
    (work / "ctc" / "mask999.tif").write_bytes(b"stale")
    assert run(["export", "P.zarr", "-o", "ctc"]) == 2
    assert "--overwrite" in one_line(capsys.readouterr().err)
    assert run(["export", "P.zarr", "-o", "ctc", "--overwrite"]) == 0
    names = sorted(p.name for p in (work / "ctc").iterdir())
    assert names == [f"mask{t:03d}.tif" for t in range(5)] + ["notes.txt", "res_track.txt"]
    assert outputs(work) == ["ctc"]


# ---------------------------------------------------------------------- the operating system
def cli(args: list[str], cwd: Path, limit_kib: int | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1",
               H4TRACKS_CONFIG_DIR=str(cwd / "cfg"))
    cmd = [*CLI, "--quiet", *args]  # the error line alone (no per-stage progress lines)
    if limit_kib is not None:
        cmd = ["bash", "-c", f"ulimit -f {limit_kib}; exec \"$@\"", "bash", *cmd]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not shutil.which("bash") or sys.platform == "win32", reason="needs ulimit")
@pytest.mark.parametrize(
    ("args", "target"),
    [
        (["analyze", "P.zarr", "-o", "out.csv"], "out.csv"),
        (["export", "P.zarr", "-o", "ctc"], "ctc"),
        (["evaluate", "P.zarr", "--json", "r.json"], "r.json"),
    ],
)
def test_full_disk_leaves_no_partial_output(work, args, target):
    r = cli(args, work, limit_kib=1)
    assert r.returncode == 2, r.stderr
    line = one_line(r.stderr)
    assert f"cannot write {target}" in line and ("full" in line or "limit" in line), line
    assert outputs(work) == []  # no truncated file, no hidden temporary file
    if target == "out.csv":  # a previous output survives a failed rewrite
        (work / "out.csv").write_text("previous\n")
        assert cli(args, work, limit_kib=1).returncode == 2
        assert (work / "out.csv").read_text() == "previous\n"
        assert outputs(work) == ["out.csv"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root ignores folder permissions")
def test_permission_denied_is_one_line(work, capsys):
    (work / "ro").mkdir()
    (work / "ro").chmod(0o555)
    try:
        assert run(["analyze", "P.zarr", "-o", "ro/out.csv"]) == 2
        assert "permission denied" in one_line(capsys.readouterr().err)
        assert run(["export", "P.zarr", "-o", "ro/ctc"]) == 2
        assert "permission denied" in one_line(capsys.readouterr().err)
        assert list((work / "ro").iterdir()) == []
    finally:
        (work / "ro").chmod(0o755)


def test_closed_stdout_is_quiet(work):
    """``h4tracks info P | head -c 1``: the reader is gone before the output is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = subprocess.run([*CLI, "info", "P.zarr"], cwd=work, stdout=write_end,
                           stderr=subprocess.PIPE, text=True, timeout=60,
                           env=dict(os.environ, H4TRACKS_CONFIG_DIR=str(work / "cfg")))
    finally:
        os.close(write_end)
    assert r.returncode == 141, r.stderr
    assert r.stderr == ""


def test_symlink_loop_is_one_line(work, capsys):
    (work / "a.zarr").symlink_to(work / "b.zarr")
    (work / "b.zarr").symlink_to(work / "a.zarr")
    assert run(["info", "a.zarr"]) == 2
    assert "symbolic links" in one_line(capsys.readouterr().err)
    assert run(["analyze", "P.zarr", "-o", "a.zarr/t.csv"]) == 2
    assert "symbolic links" in one_line(capsys.readouterr().err)


# ---------------------------------------------------------------------- damaged projects
def test_damaged_label_chunk_is_one_line(work, capsys):
    chunk = work / "P.zarr" / "labels" / "c.2.0.0"
    chunk.write_bytes(chunk.read_bytes()[:40])  # truncated
    assert run(["export", "P.zarr", "-o", "ctc"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "damaged" in line and "h4tracks check P.zarr" in line, line
    assert outputs(work) == []  # no half export


def test_garbage_tracks_graph_is_one_line(work, capsys):
    meta = next((work / "P.zarr" / "tracks").rglob("zarr.json"))
    meta.write_bytes(b"\x00garbage{")
    for argv in (["info", "P.zarr"], ["export", "P.zarr", "-o", "ctc"]):
        assert run(argv) == 2
        line = one_line(capsys.readouterr().err)
        assert "P.zarr" in line and "check" in line, line
    assert outputs(work) == []


def test_int64_tiff_is_refused_or_imported(work, capsys):
    import numpy as np

    tifffile.imwrite(work / "i64.tif", np.arange(2 * 32 * 32, dtype=np.int64).reshape(2, 32, 32))
    code = run(["new", "i64.tif", "-o", "I.zarr"])
    err = capsys.readouterr().err
    if code == 0:
        assert open_project(work / "I.zarr").n_frames == 2
    else:
        assert code == 2 and "pixel type" in one_line(err)
        assert not (work / "I.zarr").exists()
