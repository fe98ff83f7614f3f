"""Every failure of a command as one readable line."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import signal
import sys

from h4tracks.cli.model_args import flag_for
from h4tracks.core.parameters import ParamsError, validation_message
from h4tracks.errors import H4TracksError


def ignore_sigxfsz() -> None:
    """Let a write past the file size limit (``ulimit -f``) fail with EFBIG, which is
    reported in one line, instead of killing the process with SIGXFSZ mid-write."""
    if hasattr(signal, "SIGXFSZ"):
        with contextlib.suppress(ValueError, OSError):  # ValueError: not the main thread
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def silence_stdout() -> None:
    """Point stdout at devnull so that the final flush at exit cannot fail again (see the
    Python docs, "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _validation_message(err, args: argparse.Namespace) -> str:
    """One line for a pydantic ``ValidationError``: the flag, the rule and the value."""
    return validation_message(err, name=lambda field: flag_for(args, field))


def describe(err: H4TracksError, args: argparse.Namespace) -> str:
    """The line for a problem the user can act on: bad values of a parameter model name the
    flag they came from (``--frames must be >= 1``), not the model's field."""
    from pydantic import ValidationError

    if isinstance(err, ParamsError) and isinstance(err.__cause__, ValidationError):
        return _validation_message(err.__cause__, args)
    return str(err)


def _os_error_message(err: OSError) -> str:
    from h4tracks.core.outputs import describe_os_error

    reason = describe_os_error(err)
    if err.filename is not None:
        where = os.fsdecode(err.filename)
        if err.filename2 is not None:
            where += f" -> {os.fsdecode(err.filename2)}"
        return f"{where}: {reason}"
    if err.errno in (errno.ENOSPC, errno.EFBIG):
        return f"cannot write: {reason}"
    return reason


_DAMAGE = re.compile(r"checksum do not match|decompress|decod|corrupt|truncated|"
                     r"unexpected end|buffer|invalid (block|frame|header)", re.IGNORECASE)


def _is_damaged_data(err: BaseException) -> bool:
    """Whether ``err`` comes from reading a damaged chunk (zarr / numcodecs / codecs)."""
    module = type(err).__module__ or ""
    text = str(err)
    if "checksum do not match" in text:
        return True
    if module.split(".")[0] in ("zarr", "numcodecs", "crc32c", "zstd", "blosc", "google_crc32c"):
        return True
    tb = err.__traceback__
    while tb is not None:
        origin = tb.tb_frame.f_globals.get("__name__", "")
        if origin.split(".")[0] in ("zarr", "numcodecs") and isinstance(
                err, (ValueError, RuntimeError, TypeError, EOFError)):
            return bool(_DAMAGE.search(text))
        tb = tb.tb_next
    return False


def _damaged_message(err: BaseException, args: argparse.Namespace) -> str:
    detail = " ".join(str(err).split()) or type(err).__name__
    if "checksum do not match" in detail:
        detail = "a stored chunk fails its checksum"
    if len(detail) > 80:
        detail = detail[:77] + "..."
    project = getattr(args, "project", None)
    if project:
        return (f"{project}: damaged data ({detail}); run `h4tracks check {project}` to see "
                "what is damaged")
    return f"damaged data in the project ({detail}); run `h4tracks check PROJECT`"


def explain(err: BaseException, args: argparse.Namespace) -> str | None:
    """One sentence for an exception the user can act on, or None if it is unexpected."""
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        return _validation_message(err, args)
    if _is_damaged_data(err):
        return _damaged_message(err, args)
    if isinstance(err, OSError):
        return _os_error_message(err)
    loop = re.fullmatch(r"Symlink loop from '(.*)'", str(err))
    if isinstance(err, RuntimeError) and loop:  # Path.resolve before Python 3.13
        return f"{loop.group(1)}: too many levels of symbolic links"
    if isinstance(err, MemoryError):
        return "not enough memory for this step (close other programs, or process fewer frames)"
    return None


