"""Write docs/cli.md, the command-line reference, from the argument parser itself.

Run ``python docs/make_cli_reference.py`` after changing a command; the test suite fails when
docs/cli.md differs from what this prints, so the reference is never stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from h4tracks.cli import build_parser

HEADER = """# Command-line reference

Generated from the parser by `docs/make_cli_reference.py` (the tests check that it is up to
date). Every command accepts `--debug` (tracebacks), `-q/--quiet` (no progress) and
`--wait SECONDS` (how long to wait for another program changing the same project). Errors are
one line on stderr with exit code 2; 1 means an unexpected error, 130 Ctrl-C, 143 SIGTERM.
"""


def reference() -> str:
    """The reference as Markdown."""
    parser = build_parser()
    # a fixed width, so that the text does not depend on the terminal it is made in
    parts = [HEADER, "## h4tracks\n", "```text\n" + _help(parser) + "```\n"]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        parts += [f"## h4tracks {name}\n", "```text\n" + _help(command) + "```\n"]
    return "\n".join(parts)


def _help(parser: argparse.ArgumentParser) -> str:
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=96)
    return parser.format_help()


def main() -> None:
    out = Path(__file__).with_name("cli.md")
    out.write_text(reference(), encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
