"""Value types of the command line's flags: every number is checked (finite, in range) and
every problem is one line that names the flag."""

from __future__ import annotations

import argparse
import math
import re


def _float_above(low: float | None, *, strict: bool):
    """An argparse type: a finite number, ``> low`` (``strict``) or ``>= low``; any finite
    number when ``low`` is None."""
    rule = "" if low is None else f" {'>' if strict else '>='} {low:g}"

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number{rule} (got {text!r})") from None
        if not math.isfinite(v) or (low is not None and (v <= low if strict else v < low)):
            raise argparse.ArgumentTypeError(f"must be a finite number{rule} (got {text})")
        return v

    return parse


finite_float = _float_above(None, strict=False)
finite_float.__doc__ = "A finite number (``nan`` and ``inf`` are refused)."
positive_float = _float_above(0, strict=True)
non_negative_float = _float_above(0, strict=False)


def int_at_least(low: int | None):
    """An argparse type: a whole number, ``>= low`` unless ``low`` is None."""
    rule = "a whole number" if low is None else f"a whole number >= {low}"

    def parse(text: str) -> int:
        try:
            v = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {rule} (got {text!r})") from None
        if low is not None and v < low:
            raise argparse.ArgumentTypeError(f"must be {rule} (got {text})")
        return v

    return parse


whole_number = int_at_least(None)
positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def channel(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


def cores(text: str) -> int:
    from h4tracks.core.compute import core_budget

    try:
        return core_budget(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (``--epochs must be ...``) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        m = re.fullmatch(r"argument (\S+): (must .*)", message, flags=re.S)
        if m:  # "argument -o/--output: must ..." -> "--output must ..."
            message = f"{m.group(1).split('/')[-1]} {m.group(2)}"
        message = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


