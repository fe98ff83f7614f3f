"""The project lock between threads of one process (napari saves in a worker thread while
the close prompt may save on the main thread)."""

from __future__ import annotations

import threading

import pytest

from h4tracks.core.lock import ProjectLockedError, holds, path_lock


def test_another_thread_waits_then_gets_the_lock(tmp_path):
    target = tmp_path / "P.zarr"
    holding, release, results = threading.Event(), threading.Event(), []

    def worker() -> None:
        with path_lock(target, timeout=5), path_lock(target, timeout=0):  # re-entrant
            holding.set()
            release.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    assert holding.wait(10)
    with pytest.raises(ProjectLockedError, match="being saved by this program"), \
            path_lock(target, timeout=0.2):
        pass

    def second() -> None:
        with path_lock(target, timeout=10):
            results.append(holds(target))

    t2 = threading.Thread(target=second)
    t2.start()
    release.set()
    t.join(10)
    t2.join(10)
    assert results == [True] and not holds(target)


def test_a_killed_writers_holder_record_is_cleaned_up(tmp_path):
    # a writer killed while writing `.P.zarr.lock.json` left its temporary file behind
    target = tmp_path / "exp[1].zarr"
    stale = tmp_path / ".exp[1].zarr.lock.json.4711"
    stale.write_text("{")
    other = tmp_path / ".exp1.zarr.lock.json.4711"  # another project's: not touched
    other.write_text("{")
    with path_lock(target, timeout=1):
        assert not stale.exists() and other.exists()
        assert (tmp_path / ".exp[1].zarr.lock.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".exp1.zarr.lock.json.4711",
                                                        ".exp[1].zarr.lock"]
