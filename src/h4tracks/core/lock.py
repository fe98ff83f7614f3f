"""One writer at a time: an OS-level lock per project (and per model registry).

A project ``P.zarr`` is locked through the file ``.P.zarr.lock`` beside it (not inside: a save
swaps the whole directory). The lock is an ``flock`` (``LockFileEx`` on Windows) taken with the
:mod:`filelock` library, so the operating system releases it when its holder dies, even by
``kill -9``: a lock left by a dead process is never in the way. Who holds it (pid, host,
command, since when) is written to ``.P.zarr.lock.json`` so a second writer can say whom it is
waiting for.

The lock is re-entrant within one process: a command holds it for its whole
read-modify-write, and the :func:`~h4tracks.core.store.save_project` inside takes it again
without blocking. A second process waits up to ``timeout`` seconds (default
:func:`default_wait`, ``H4TRACKS_LOCK_WAIT`` in the environment, 10 s) and then fails with
:class:`ProjectLockedError`, one sentence naming the holder.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock

from h4tracks.errors import H4TracksError

__all__ = ["ProjectLockedError", "ReadOnlyError", "check_writable", "default_wait",
           "describe_holder", "holder", "holds", "lock_file", "locked", "path_lock"]

_WAIT_ENV = "H4TRACKS_LOCK_WAIT"
_DEFAULT_WAIT = 10.0


class ProjectLockedError(H4TracksError):
    """Another process holds the project (or registry) lock."""


class ReadOnlyError(H4TracksError):
    """The project (or its folder) cannot be written."""


#: the command this process runs, recorded as the lock holder (the CLI sets it)
command_name: str = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))[:200]

_held: dict[Path, tuple[filelock.BaseFileLock, int]] = {}
_guard = threading.RLock()
# one thread at a time per path inside this process (a napari save in a worker thread and a
# save from the close prompt on the main thread): re-entrant for the thread that holds it
_threads: dict[Path, threading.RLock] = {}


#: seconds to wait set by the program (the CLI's ``--wait``); None = the environment's
wait_seconds: float | None = None


def default_wait() -> float:
    """Seconds a writer waits for another's lock: :data:`wait_seconds` if set, else
    ``H4TRACKS_LOCK_WAIT``, else 10."""
    if wait_seconds is not None:
        return float(wait_seconds)
    try:
        value = float(os.environ.get(_WAIT_ENV, _DEFAULT_WAIT))
    except ValueError:
        return _DEFAULT_WAIT
    return value if value == value and value >= 0 else _DEFAULT_WAIT


def lock_file(path: str | Path) -> Path:
    """The lock file of ``path``: ``.NAME.lock`` in the same folder."""
    p = Path(path).expanduser().resolve()
    return p.parent / f".{p.name}.lock"


def _holder_file(path: Path) -> Path:
    return lock_file(path).with_name(lock_file(path).name + ".json")


def _process_alive(pid: int) -> bool:
    try:
        import psutil

        return psutil.pid_exists(pid)
    except Exception:  # psutil missing or refused: assume alive (the flock is the truth)
        return True


def holder(path: str | Path) -> dict[str, Any] | None:
    """Who holds (or last held) the lock of ``path``, as recorded; None if nobody recorded.

    A record left by a process that no longer runs on this host is reported as stale
    (``"stale": True``); the OS lock itself is already free in that case.
    """
    try:
        info = json.loads(_holder_file(Path(path)).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    pid = info.get("pid")
    info["stale"] = bool(
        info.get("host") == socket.gethostname() and isinstance(pid, int)
        and not _process_alive(pid)
    )
    return info


def describe_holder(path: str | Path) -> str:
    """``"h4tracks track P.zarr (pid 123 on host, since 12:03:04)"`` or ``"another program"``."""
    info = holder(path)
    if not info or info.get("stale"):
        return "another program"
    since = str(info.get("since", ""))[11:19]
    return (f"{info.get('command') or 'another program'} (pid {info.get('pid')} on "
            f"{info.get('host')}{', since ' + since if since else ''})")


def locked(path: str | Path) -> bool:
    """Whether another process holds the lock of ``path`` right now (a cheap probe)."""
    p = Path(path).expanduser().resolve()
    with _guard:
        if p in _held:
            return False
    if not lock_file(p).exists():
        return False
    probe = filelock.FileLock(str(lock_file(p)), thread_local=False, preserve_lock_file=True)
    try:
        probe.acquire(timeout=0)
    except filelock.Timeout:
        return True
    except OSError:
        return False
    probe.release()
    return False


def check_writable(path: str | Path) -> None:
    """Raise :class:`ReadOnlyError` if the project at ``path`` (or its folder) is read-only.

    A project whose directory has no write permission bit set is read-only even for root:
    ``chmod -R a-w P.zarr`` is how a lab protects a finished analysis, and swapping in a
    writable copy would both ignore that and leave the protected copy behind for good.
    """
    p = Path(path).expanduser().resolve()
    folder = p.parent
    if p.exists():
        mode = p.stat().st_mode
        if not mode & 0o222 or not os.access(p, os.W_OK):
            raise ReadOnlyError(
                f"{p} is read-only; it was left untouched (make it writable, or save a copy "
                "elsewhere)"
            )
    if not os.access(folder, os.W_OK) or not folder.stat().st_mode & 0o222:
        raise ReadOnlyError(f"the folder {folder} is read-only; {p.name} cannot be saved there")


@contextlib.contextmanager
def path_lock(path: str | Path, *, timeout: float | None = None,
              command: str | None = None) -> Iterator[Path]:
    """Hold the lock of ``path`` (a project or a registry file) for the ``with`` block.

    Re-entrant for the thread that holds it. Another thread of this process, or another
    process, waits up to ``timeout`` seconds (default :func:`default_wait`), then gets
    :class:`ProjectLockedError`.

    Yields
    ------
    Path
        The resolved ``path``.
    """
    p = Path(path).expanduser().resolve()
    wait = default_wait() if timeout is None else timeout
    with _guard:
        in_process = _threads.setdefault(p, threading.RLock())
    if not in_process.acquire(timeout=wait if wait >= 0 else -1):
        raise ProjectLockedError(
            f"{p.name} is being saved by this program; waited {wait:g} s — try again when it "
            "has finished"
        )
    try:
        with _locked_in_process(p, wait, command):
            yield p
    finally:
        in_process.release()


@contextlib.contextmanager
def _locked_in_process(p: Path, wait: float, command: str | None) -> Iterator[None]:
    """The OS lock of ``p``, taken once per process and counted for re-entry (the calling
    thread holds ``p``'s in-process lock, so only one thread is ever here per path)."""
    with _guard:
        entry = _held.get(p)
        if entry is not None:
            _held[p] = (entry[0], entry[1] + 1)
    if entry is None:
        lock = filelock.FileLock(str(lock_file(p)), thread_local=False,
                                 preserve_lock_file=True)
        try:
            lock.acquire(timeout=wait)
        except filelock.Timeout:
            raise ProjectLockedError(
                f"{p.name} is being changed by {describe_holder(p)}; waited {wait:g} s — try "
                "again when it has finished (or raise the wait with --wait SECONDS)"
            ) from None
        except OSError as e:
            if not p.parent.is_dir():
                raise H4TracksError(f"folder {p.parent} does not exist") from None
            raise ReadOnlyError(
                f"cannot lock {p.name} in {p.parent} ({e.strerror or e}); the folder must be "
                "writable"
            ) from None
        _write_holder(p, command)
        with _guard:
            _held[p] = (lock, 1)
    try:
        yield
    finally:
        with _guard:
            lock_obj, count = _held[p]
            if count > 1:
                _held[p] = (lock_obj, count - 1)
                release = None
            else:
                del _held[p]
                release = lock_obj
        if release is not None:
            with contextlib.suppress(OSError):
                _holder_file(p).unlink()
            release.release()


def _write_holder(path: Path, command: str | None) -> None:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command or command_name,
        "since": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    target = _holder_file(path)
    tmp = target.with_name(f"{target.name}.{os.getpid()}")
    # best effort: the record only improves the message another writer prints
    with contextlib.suppress(OSError):
        # a writer killed while writing its record left its temporary file; we hold the
        # lock, so no living writer owns one (matched literally: names may hold [ or *)
        with os.scandir(target.parent) as entries:
            stale = [e.path for e in entries if e.name.startswith(f"{target.name}.")]
        for name in stale:
            os.unlink(name)
    with contextlib.suppress(OSError):
        tmp.write_text(json.dumps(info))
        os.replace(tmp, target)


def holds(path: str | Path) -> bool:
    """Whether this process holds the lock of ``path``."""
    with _guard:
        return Path(path).expanduser().resolve() in _held
