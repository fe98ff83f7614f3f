"""Output files that are complete or absent, and never written inside a project.

Every file h4tracks writes for the user (CSV tables, figures, reports, Cell Tracking
Challenge folders) goes through :func:`atomic_file` or :func:`atomic_folder`: the data is
written to a hidden temporary sibling first and moved onto the target in one rename when it
is complete. A full disk, a permission problem, an exception or Ctrl-C half way leaves the
previous file (or no file) and no temporary file behind.

Outputs are refused inside an h4tracks project (:func:`check_output_path`): the project
folder belongs to the project format, and a file written there is either deleted by the next
save or, worse, replaces one of the project's own files.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from h4tracks.core.store import is_project
from h4tracks.errors import H4TracksError, InputError

__all__ = ["atomic_file", "atomic_folder", "check_output_path", "describe_os_error"]

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EFBIG: "the file is larger than allowed (file size limit)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ELOOP: "too many levels of symbolic links",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EIO: "input/output error (failing disk?)",
}
if hasattr(errno, "EDQUOT"):
    _REASONS[errno.EDQUOT] = "the disk quota is exceeded"


def describe_os_error(err: OSError) -> str:
    """A short, readable reason for an OS error (``"the disk is full"``, ...).

    Parameters
    ----------
    err
        Any :class:`OSError`.

    Returns
    -------
    str
        The reason, without the file name and without a final full stop.
    """
    if err.errno in _REASONS:
        return _REASONS[err.errno]
    text = err.strerror or str(err) or type(err).__name__
    if err.errno is None and re.search(r"requested and \d+ written", text):
        # a short write without an errno (numpy's tofile): the disk or a size limit is full
        return "the disk is full or a file size limit was reached"
    return text[:1].lower() + text[1:]


def describe_unexpected(err: BaseException) -> str:
    """A short reason for an error nobody foresaw, for a one-sentence message.

    Parameters
    ----------
    err
        Any exception that is not an ``H4TracksError`` (those are sentences already).

    Returns
    -------
    str
        ``"<file>: the disk is full"`` for OS errors, ``"not enough memory"``, otherwise
        ``"unexpected KeyError 'x'"`` (on one line, no final full stop).
    """
    if isinstance(err, OSError):
        where = f"{err.filename}: " if err.filename is not None else ""
        return f"{where}{describe_os_error(err)}"
    if isinstance(err, MemoryError):
        return "not enough memory"
    text = " ".join(str(err).split())
    return f"unexpected {type(err).__name__}{f' {text}' if text else ''}"


def _show(path: Path) -> str:
    """``path`` relative to the working folder when below it, else absolute."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _project_containing(path: Path) -> Path | None:
    """The h4tracks project that is ``path`` or one of its parents (None if none)."""
    candidates = [Path(os.path.abspath(path))]
    with contextlib.suppress(OSError, RuntimeError):  # symlink loop: checked elsewhere
        candidates.append(path.resolve())
    for full in candidates:
        for folder in (full, *full.parents):
            if is_project(folder):
                return folder
    return None


def check_output_path(path: str | os.PathLike[str], *, create_parents: bool = False) -> Path:
    """Check that an output file or folder may be written at ``path``.

    Parameters
    ----------
    path
        The file or folder the caller is about to write.
    create_parents
        The caller creates missing parent folders itself: do not refuse them.

    Returns
    -------
    pathlib.Path
        ``path`` made absolute (symbolic links in it resolved).

    Raises
    ------
    InputError
        If ``path`` is an h4tracks project or lies inside one, or if its folder does not
        exist (unless ``create_parents``); one sentence naming the path.
    """
    given = Path(path)
    _refuse_inside_project(given)
    try:
        full = given.resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop (RuntimeError before 3.13)
        raise InputError(f"cannot write {given}: too many levels of symbolic links") from err
    if not create_parents and not full.parent.is_dir():
        raise InputError(f"folder {given.parent} does not exist")
    return full


def _refuse_inside_project(given: Path) -> None:
    project = _project_containing(given)
    if project is not None:
        try:
            same = Path(os.path.abspath(given)) == project or given.resolve() == project
        except (OSError, RuntimeError):
            same = False
        if same:
            raise InputError(f"{given} is an h4tracks project; write outputs outside the "
                             "project")
        raise InputError(f"{given} is inside the h4tracks project {_show(project)}; write "
                         "outputs outside the project")


def _tmp_name(target: Path, kind: str = "tmp") -> Path:
    return target.with_name(f".{target.name}.{kind}-{uuid.uuid4().hex[:8]}")


def _write_error(path: str | os.PathLike[str], err: OSError) -> H4TracksError:
    return H4TracksError(f"cannot write {path}: {describe_os_error(err)}")


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "w",
                **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Write a file completely or not at all.

    Yields a file object open on a hidden temporary file in the target's folder
    (``.NAME.tmp-XXXXXXXX``). When the ``with`` block ends normally the data is flushed to
    disk and the temporary file replaces ``path`` in one rename; when it raises (including
    ``KeyboardInterrupt``) the temporary file is removed and a previous ``path`` is left as
    it was.

    Parameters
    ----------
    path
        The file to write; its folder must exist and must not be inside a project.
    mode
        ``"w"`` (text) or ``"wb"`` (binary).
    **open_kwargs
        Passed to :func:`open` (``encoding``, ``newline``, ...).

    Yields
    ------
    file object
        Write the content to it; do not close it.

    Raises
    ------
    InputError
        If the path is refused by :func:`check_output_path` or is a folder.
    H4TracksError
        ``"cannot write PATH: REASON"`` for an OS error (full disk, permission denied,
        read-only file system, file size limit...).

    Examples
    --------
    >>> with atomic_file("tracks.csv", newline="") as fh:  # doctest: +SKIP
    ...     fh.write("a,b\\n")
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file mode must be 'w' or 'wb', not {mode!r}")
    target = check_output_path(path)
    if target.is_dir():
        raise InputError(f"{path} is a folder; give a file name")
    try:
        while True:
            tmp = _tmp_name(target)
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                break
            except FileExistsError:
                continue
    except OSError as err:
        raise _write_error(path, err) from err
    try:
        os.close(fd)
        # opened by name, not fd: writers such as tifffile look at ``fh.name``
        fh = open(tmp, mode, **open_kwargs)  # noqa: SIM115 - closed below
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if target.exists():
            with contextlib.suppress(OSError):
                shutil.copymode(target, tmp)
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise _write_error(path, err) from err
        raise


def _is_empty_dir(path: Path) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str], *, overwrite: bool = False,
                  keep: Callable[[str], bool] | None = None,
                  parents: bool = False) -> Iterator[Path]:
    """Write a folder of files completely or not at all.

    Yields a new, empty hidden folder beside ``path`` (``.NAME.tmp-XXXXXXXX``) to write
    into. When the ``with`` block ends normally it takes the place of ``path``: a previous
    folder is renamed aside, the new one renamed in, and the old one deleted. When the block
    raises (including ``KeyboardInterrupt``) the temporary folder is deleted and a previous
    ``path`` is left as it was.

    Parameters
    ----------
    path
        The folder to write; must not be inside a project.
    overwrite
        Replace an existing, non-empty folder; without it such a folder is refused before
        anything is written. An empty folder is always replaced.
    keep
        For an existing folder: ``keep(name)`` is true for the entries that are not part of
        the output and must survive the replacement (they are moved into the new folder,
        unless the new folder has an entry of that name). Default: none survive.
    parents
        Create missing parent folders (otherwise a missing parent is refused).

    Yields
    ------
    pathlib.Path
        The temporary folder; write the output's files into it.

    Raises
    ------
    InputError
        If the path is refused by :func:`check_output_path`, is a file, or is a non-empty
        folder without ``overwrite``.
    H4TracksError
        ``"cannot write PATH: REASON"`` for an OS error.
    """
    given = Path(path)
    if parents:
        check_output_path(given, create_parents=True)  # before any mkdir
        try:
            Path(os.path.abspath(given)).parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _write_error(given.parent, err) from err
    target = check_output_path(given)
    if target.exists() and not target.is_dir():
        raise InputError(f"{path} exists and is not a folder")
    try:
        if target.is_dir() and not overwrite and not _is_empty_dir(target):
            raise InputError(f"{path} exists and is not empty")
        tmp = _tmp_name(target)
        os.mkdir(tmp)
    except OSError as err:
        raise _write_error(path, err) from err
    moved: list[str] = []
    try:
        yield tmp
        if target.is_dir():
            with contextlib.suppress(OSError):
                shutil.copymode(target, tmp)
            if keep is not None:
                for entry in sorted(os.listdir(target)):
                    if keep(entry) and not os.path.lexists(tmp / entry):
                        os.rename(target / entry, tmp / entry)
                        moved.append(entry)
            try:
                cwd = os.getcwd()
            except OSError:
                cwd = None
            aside = _tmp_name(target, "old")
            os.rename(target, aside)
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(aside, target)
                raise
            moved.clear()
            if cwd is not None and (cwd == str(target) or cwd.startswith(str(target) + os.sep)):
                # the working folder was the replaced one (or in it): move into the new one
                with contextlib.suppress(OSError):
                    os.chdir(cwd)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException as err:
        for entry in moved:  # give back what was carried over before the failure
            with contextlib.suppress(OSError):
                os.rename(tmp / entry, target / entry)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            raise _write_error(path, err) from err
        raise
