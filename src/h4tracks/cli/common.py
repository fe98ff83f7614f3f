"""What the commands share: progress and tables on the terminal, output paths checked before
any work, and the project lock held for a whole read-modify-write."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from h4tracks.errors import H4TracksError


def print_table(rows: dict[str, object]) -> None:
    width = max(len(k) for k in rows)
    for k, v in rows.items():
        if isinstance(v, (list, tuple)) and not isinstance(v, tuple):
            v = ", ".join(map(str, v)) or "-"
        print(f"{k:<{width}}  {'-' if v is None else v}")


class StageProgress:
    """Progress of the stages of a command (``show(stage, done, total)``).

    On a terminal each stage is a tqdm bar with its rate and the time left; in a log (stderr
    not a terminal) each stage prints one line when it ends, with its count, time and rate,
    so long steps are visible in a batch log without a line per frame.
    """

    def __init__(self, *, interactive: bool) -> None:
        self.interactive = interactive
        self._stage: str | None = None
        self._bar: Any = None
        self._t0 = 0.0
        self._done = 0

    def __call__(self, stage: str, done: int, total: int, note: str | None = None) -> None:
        if stage != self._stage:
            self.close()
            self._stage, self._t0 = stage, time.perf_counter()
            if self.interactive:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=f"  {stage}", file=sys.stderr,
                                 leave=True, dynamic_ncols=True, unit="step")
        self._done = done
        if self._bar is not None:
            self._bar.total = total
            self._bar.update(done - self._bar.n)
            if note:
                self._bar.set_postfix_str(note, refresh=False)
        if done >= total > 0:
            self.close()

    def close(self) -> None:
        """End the current stage (its bar, or its line in a log)."""
        if self._stage is None:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        else:
            dt = time.perf_counter() - self._t0
            rate = f", {self._done / dt:.2f}/s" if dt > 0 and self._done else ""
            print(f"  {self._stage}: {self._done} done in {dt:.1f} s{rate}", file=sys.stderr,
                  flush=True)
        self._stage = None


def progress_printer(args: argparse.Namespace) -> StageProgress | None:
    """The progress display of a command: None with ``--quiet``."""
    if getattr(args, "quiet", False):
        return None
    return StageProgress(interactive=sys.stderr.isatty())


def check_outputs(paths: dict[str, str | None]) -> None:
    """Refuse output files inside a project, in a missing folder, or named twice, before
    anything is computed or written."""
    from h4tracks.core.outputs import check_output_path

    seen: dict[Path, str] = {}
    for flag, path in paths.items():
        if not path:
            continue
        full = check_output_path(path)
        if full.is_dir():
            raise H4TracksError(f"{flag} {path} is a folder; give a file name")
        if full in seen:
            raise H4TracksError(f"{seen[full]} and {flag} name the same file {path}")
        seen[full] = flag


def check_output_folder(out: Path, *, overwrite: bool | None) -> None:
    """Refuse an output folder inside a project, a file in its place, or (unless
    ``overwrite``; None: not asked) a folder that is not empty — before any work."""
    from h4tracks.core.outputs import check_output_path

    check_output_path(out, create_parents=True)  # never inside a project
    if out.exists() and not out.is_dir():
        raise H4TracksError(f"{out} exists and is not a folder")
    if overwrite is False and out.is_dir() and any(out.iterdir()):
        raise H4TracksError(f"{out} exists and is not empty (pass --overwrite)")


@contextlib.contextmanager
def writing(path: str | Path | None) -> Iterator[None]:
    """Hold the lock of project ``path`` for a whole command (open, change, save).

    A second writer (another terminal, a batch job, napari) waits for it (``--wait``) and
    then stops with one line naming the holder, so two commands never interleave their
    read-modify-write and lose each other's changes. A read-only project is refused before
    anything is computed. A path that is not a project is left to the command's own
    checks.
    """
    from h4tracks.core import lock
    from h4tracks.core.store import is_project

    if path is None or not is_project(path):
        yield
        return
    lock.check_writable(path)
    with lock.path_lock(path):
        yield
