"""Output files are complete or absent, never inside a project (core/outputs.py)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from h4tracks.core.outputs import (
    atomic_file,
    atomic_folder,
    check_output_path,
    describe_os_error,
)
from h4tracks.core.project import Project
from h4tracks.core.store import save_project
from h4tracks.errors import H4TracksError, InputError


@pytest.fixture(scope="module")
def project_path(tmp_path_factory) -> Path:
    image = np.zeros((2, 16, 16), np.uint8)
    return save_project(Project(image), tmp_path_factory.mktemp("p") / "P.zarr")


def entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_file_writes_and_leaves_no_temporary(tmp_path):
    with atomic_file(tmp_path / "a.txt", encoding="utf-8") as fh:
        fh.write("µm\n")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "µm\n"
    assert entries(tmp_path) == ["a.txt"]
    with atomic_file(tmp_path / "b.bin", "wb") as fh:
        fh.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert entries(tmp_path) == ["a.txt", "b.bin"]


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_file_failure_leaves_no_partial_file(tmp_path, exc):
    target = tmp_path / "out.csv"
    with pytest.raises(type(exc)), atomic_file(target) as fh:
        fh.write("half a table" * 1000)
        fh.flush()
        # the data is on disk, but only in the hidden temporary file
        assert not target.exists()
        assert any(name.startswith(".out.csv.tmp-") for name in entries(tmp_path))
        raise exc
    assert entries(tmp_path) == []


def test_atomic_file_failure_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("previous\n")
    os.chmod(target, 0o640)
    with pytest.raises(ValueError), atomic_file(target) as fh:
        fh.write("new, incomplete")
        raise ValueError("stop")
    assert target.read_text() == "previous\n"
    assert entries(tmp_path) == ["out.csv"]
    with atomic_file(target) as fh:
        fh.write("new\n")
    assert target.read_text() == "new\n"
    assert (target.stat().st_mode & 0o777) == 0o640  # the replaced file's mode is kept


def test_atomic_file_os_error_is_one_sentence(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(H4TracksError) as info, atomic_file(target) as fh:
        fh.write("x")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(info.value) == f"cannot write {target}: the disk is full"
    assert entries(tmp_path) == []


def test_new_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "a.txt") as fh:
            fh.write("x")
    finally:
        os.umask(umask)
    assert ((tmp_path / "a.txt").stat().st_mode & 0o777) == 0o644  # not mkstemp's 0600


def test_outputs_inside_a_project_are_refused(project_path):
    before = (project_path / "zarr.json").read_bytes()
    for inside in (project_path / "zarr.json", project_path / "new.csv",
                   project_path / "image" / "x.csv", project_path / "sub" / "deeper"):
        with pytest.raises(InputError, match="inside the h4tracks project"):
            check_output_path(inside)
    with pytest.raises(InputError, match="is an h4tracks project"):
        check_output_path(project_path)
    with pytest.raises(InputError, match="inside the h4tracks project"), \
            atomic_file(project_path / "zarr.json") as fh:
        fh.write("{}")
    with pytest.raises(InputError, match="inside the h4tracks project"), \
            atomic_folder(project_path / "ctc", parents=True):
        pass
    assert (project_path / "zarr.json").read_bytes() == before
    assert not (project_path / "ctc").exists() and not (project_path / "sub").exists()
    assert [p.name for p in project_path.iterdir() if p.name.startswith(".")] == []


def test_a_symlink_into_a_project_is_refused(project_path, tmp_path):
    (tmp_path / "link").symlink_to(project_path)
    with pytest.raises(InputError, match="inside the h4tracks project"):
        check_output_path(tmp_path / "link" / "out.csv")


def test_missing_folder_is_refused_in_one_sentence(tmp_path):
    with pytest.raises(InputError, match=r"^folder .*nope does not exist$"):
        check_output_path(tmp_path / "nope" / "out.csv")
    assert check_output_path(tmp_path / "nope" / "x", create_parents=True).parent.name == "nope"
    with pytest.raises(InputError, match="is a folder"), atomic_file(tmp_path):
        pass


def test_atomic_folder_creates_and_replaces(tmp_path):
    out = tmp_path / "res"
    with atomic_folder(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".res.tmp-")
        (tmp / "a.tif").write_bytes(b"1")
        (tmp / "b.tif").write_bytes(b"1")
    assert entries(out) == ["a.tif", "b.tif"]
    with pytest.raises(InputError, match="not empty"), atomic_folder(out):
        pass
    (out / "notes.txt").write_text("mine")
    with atomic_folder(out, overwrite=True, keep=lambda n: not n.endswith(".tif")) as tmp:
        (tmp / "a.tif").write_bytes(b"2")
    assert entries(out) == ["a.tif", "notes.txt"]  # stale b.tif gone, notes kept
    assert (out / "a.tif").read_bytes() == b"2"
    assert entries(tmp_path) == ["res"]


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"),
                                 KeyboardInterrupt()])
def test_atomic_folder_failure_keeps_the_previous_folder(tmp_path, exc):
    out = tmp_path / "res"
    out.mkdir()
    (out / "a.tif").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    expected = H4TracksError if isinstance(exc, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as info, \
            atomic_folder(out, overwrite=True, keep=lambda n: n == "notes.txt") as tmp:
        (tmp / "a.tif").write_bytes(b"new, half")
        raise exc
    if expected is H4TracksError:
        assert str(info.value) == f"cannot write {out}: the disk is full"
    assert entries(out) == ["a.tif", "notes.txt"]
    assert (out / "a.tif").read_bytes() == b"old"
    assert entries(tmp_path) == ["res"]


def test_atomic_folder_in_the_working_folder(tmp_path, monkeypatch):
    out = tmp_path / "res"
    out.mkdir()
    (out / "mask000.tif").write_bytes(b"old")
    monkeypatch.chdir(out)
    with atomic_folder(".", overwrite=True) as tmp:
        (tmp / "mask000.tif").write_bytes(b"new")
    assert Path("mask000.tif").read_bytes() == b"new"  # still in the (new) folder
    assert Path.cwd() == out


def test_describe_os_error():
    assert describe_os_error(OSError(errno.EACCES, "Permission denied")) == "permission denied"
    assert describe_os_error(OSError(errno.EROFS, "x")) == "read-only file system"
    assert "disk is full" in describe_os_error(OSError("4096 requested and 384 written"))
    assert describe_os_error(OSError(errno.EBUSY, "Device or resource busy")) == \
        "device or resource busy"
