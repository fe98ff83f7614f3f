"""The ``h4tracks`` command line.

Every command prints one readable line and exits with a non-zero code on bad input; the
traceback is shown only with ``--debug``. Commands that change a project hold its lock from
opening to saving (:func:`h4tracks.cli.common.writing`).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
from collections.abc import Sequence

from h4tracks.cli.errors import describe, explain, ignore_sigxfsz, silence_stdout
from h4tracks.cli.parser import build_parser
from h4tracks.cli.stopping import Terminated, stopping
from h4tracks.errors import H4TracksError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``h4tracks`` console script.

    Returns 0 on success, 2 for a problem the user can act on (printed as one line), 130 on
    Ctrl-C, 143 on SIGTERM, 141 when stdout was closed early (``h4tracks info P | head``)
    and 1 for an unexpected error (one line; ``--debug`` shows the traceback).
    """
    from h4tracks.core import lock

    # At exit Python collects garbage once more over every object, which after a long movie
    # is millions (graphs, zarr, scipy): ~0.2 s of a command that takes 2. A process that
    # ends needs no collection; freezing the objects first skips it (registered once).
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    ignore_sigxfsz()
    parser = build_parser()
    args = parser.parse_args(argv)
    words = sys.argv[1:] if argv is None else list(argv)
    lock.command_name = " ".join(["h4tracks", *words])[:200]
    lock.wait_seconds = getattr(args, "wait", None)
    stopping.install()
    try:
        with _library_bars_off(args.quiet or not sys.stderr.isatty()):
            return _run(args)
    finally:
        stopping.uninstall()


@contextlib.contextmanager
def _library_bars_off(off: bool):
    """Silence the tqdm bars of the libraries we call (Cellpose) in logs and with --quiet: in
    a log file each redraw is a line of noise."""
    before = os.environ.get("TQDM_DISABLE")
    if off:
        os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = before


def _run(args) -> int:
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        silence_stdout()
        return 141
    except H4TracksError as e:
        if args.debug:
            raise
        print(f"h4tracks: error: {' '.join(describe(e, args).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        # what finished before is saved (segment keeps its finished blocks), nothing is left
        # half written (atomic saves and outputs)
        print(f"h4tracks: {'terminated (SIGTERM)' if terminated else 'interrupted'}",
              file=sys.stderr)
        return 143 if terminated else 130
    except Exception as e:  # unexpected: still one line unless --debug
        if args.debug:
            raise
        message = explain(e, args)
        if message is not None:
            print(f"h4tracks: error: {message}", file=sys.stderr)
            return 2
        text = " ".join(str(e).split())
        print(f"h4tracks: internal error: {type(e).__name__}: {text} (run with --debug for "
              "details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
