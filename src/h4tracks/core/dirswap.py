"""Directories replaced atomically: a new version is built beside the old one (hard links for
what did not change), then swapped in with one ``renameat2(RENAME_EXCHANGE)`` (Linux) or two
renames with recovery on open (elsewhere). Used by the project store and the recovery copy."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["ASIDE", "SAVING", "fsync_dir", "link_tree", "recover", "remove_stale", "same_dir",
           "siblings", "swap"]

#: infixes of the hidden siblings of ``NAME``: ``.NAME.saving-XXXX`` (a version being
#: built) and ``.NAME.previous-XXXX`` (the old version during a two-rename swap)
SAVING = ".saving-"
ASIDE = ".previous-"


def recover(path: Path) -> None:
    """Finish an interrupted two-rename swap (only used where RENAME_EXCHANGE is missing)."""
    if path.exists():
        return
    aside = sorted(siblings(path, ASIDE))
    if aside:
        os.replace(aside[-1], path)


def link_tree(src: Path, dst: Path, skip: Callable[[str], bool] | None = None) -> None:
    """Recreate ``src`` under ``dst`` with hard links (copies where links are impossible),
    leaving out files whose path relative to ``src`` satisfies ``skip``."""
    # plain strings, not Path objects: a movie's arrays are thousands of chunk files
    root = os.fspath(src)
    for dirpath, _dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == os.curdir else rel.replace(os.sep, "/") + "/"
        target = os.path.join(dst, rel)
        os.makedirs(target, exist_ok=True)
        for f in filenames:
            if skip is not None and skip(rel + f):
                continue
            s, d = os.path.join(dirpath, f), os.path.join(target, f)
            try:
                os.link(s, d)
            except OSError:  # other filesystem, or no hard links there (FAT, some shares)
                shutil.copy2(s, d)


def same_dir(a: Path | None, b: Path | None) -> bool:
    return a is not None and b is not None and Path(a).absolute() == Path(b).absolute()


def swap(new: Path, dest: Path) -> Path | None:
    """Put ``new`` at ``dest`` atomically; returns where the previous version went."""
    if not dest.exists():
        os.rename(new, dest)
        return None
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        fn = getattr(libc, "renameat2", None)
        if fn is not None:
            at_fdcwd, rename_exchange = -100, 2
            rc = fn(at_fdcwd, os.fsencode(new), at_fdcwd, os.fsencode(dest), rename_exchange)
            if rc == 0:
                return new  # `new` now holds the previous version
    aside = dest.parent / f".{dest.name}{ASIDE}{uuid.uuid4().hex[:8]}"
    os.rename(dest, aside)
    os.rename(new, dest)
    return aside


def siblings(path: Path, infix: str) -> list[Path]:
    """The hidden siblings ``.NAME{infix}…`` of ``path`` (matched literally: a project named
    ``exp[1].zarr`` must not take ``.exp1.zarr.saving-…`` for its own, as a glob would)."""
    prefix = f".{path.name}{infix}"
    try:
        with os.scandir(path.parent) as entries:
            return [path.parent / e.name for e in entries if e.name.startswith(prefix)]
    except OSError:
        return []


def remove_stale(dest: Path) -> None:
    """Remove what interrupted saves of ``dest`` left (call only while holding its lock)."""
    for p in siblings(dest, SAVING) + siblings(dest, ASIDE):
        shutil.rmtree(p, ignore_errors=True)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
