"""Ctrl-C and SIGTERM stop a command at a safe point, never in the middle of something.

Python's own handler raises ``KeyboardInterrupt`` at whatever bytecode runs when the signal
arrives — inside a library's clean-up callback, say, where it is printed as "Exception ignored"
and lost, so the command went on as if nothing happened. While a command runs a step that can
stop between frames (segmentation, tracking, training), the first signal only asks it to stop:
the step finishes its current frame, keeps what is done (with its provenance), saves, and the
command exits 130 (Ctrl-C) or 143 (SIGTERM). A second signal, or one outside such a step,
stops at once as usual; saves and outputs are atomic, so nothing is left half written.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["Stopping", "Terminated", "stopping"]


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch system stopping the job), handled like Ctrl-C."""


class Stopping:
    """The signal state of one command; callable as the ``cancel`` callback of a step."""

    def __init__(self) -> None:
        self.requested: int | None = None
        self._depth = 0
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        """Whether a stop was asked for (the steps poll this between frames)."""
        return self.requested is not None

    def install(self) -> None:
        """Handle SIGINT and SIGTERM for this command (main thread only)."""
        self.requested, self._depth = None, 0
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, OSError):  # ValueError: not the main thread
                self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        """Give the signals back to whoever handled them before (pytest, an embedding app)."""
        for sig, handler in self._previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: object) -> None:
        if self._depth == 0 or self.requested is not None:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        self.requested = signum
        print("h4tracks: stopping at the next safe point (Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def cooperative(self) -> Iterator[Stopping]:
        """A step that polls :meth:`__call__` between frames runs in this block."""
        self._depth += 1
        try:
            yield self
        finally:
            self._depth -= 1

    def raise_if_requested(self) -> None:
        """Stop the command now (at a safe point) if a signal asked for it."""
        if self.requested is not None:
            raise Terminated if self.requested == signal.SIGTERM else KeyboardInterrupt


#: the running command's signal state
stopping = Stopping()
