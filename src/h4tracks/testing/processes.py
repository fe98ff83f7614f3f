"""Another program holding a project's lock, for tests of what a second writer sees."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["lock_held_elsewhere"]


@contextmanager
def lock_held_elsewhere(
    path: str | os.PathLike[str], command: str, seconds: float = 120.0
) -> Iterator[subprocess.Popen[str]]:
    """Hold the writer lock of ``path`` in a separate Python process for the ``with`` block.

    The process records ``command`` as the holder (what a refused writer is told), is started
    and confirmed to hold the lock before the block runs, and is killed after it (a killed
    holder's lock goes with it). Yields the process (``.pid`` is the holder's pid).
    """
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time; from h4tracks.core.lock import path_lock\n"
         f"with path_lock({os.fspath(path)!r}, command={command!r}):\n"
         f"    print('locked', flush=True); time.sleep({float(seconds)!r})"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        if holder.stdout.readline().strip() != "locked":
            raise RuntimeError(f"the lock holder for {path} did not start")
        yield holder
    finally:
        holder.kill()
        holder.wait()
