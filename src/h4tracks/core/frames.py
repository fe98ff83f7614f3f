"""Frame selections: what the user types (``"0:10"``, ``"0,7,14"``), the compact runs kept
in the provenance (``[[0, 10]]``) and the short text shown to people (``"0-9"``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from h4tracks.errors import InputError

__all__ = ["frame_ranges", "parse_frames", "ranges_text"]


def parse_frames(spec: str | Sequence[int] | range | None, n_frames: int) -> list[int]:
    """Frame indices from ``None`` (all), ``"A:B"`` (B exclusive, either may be empty),
    ``"A"``, ``"0,7,14"`` or a sequence of ints; negative indices count from the end."""
    if spec is None:
        return list(range(n_frames))
    if isinstance(spec, str):
        text = spec.strip()
        try:
            if ":" in text:
                a, _, b = text.partition(":")
                start = int(a) if a.strip() else 0
                stop = int(b) if b.strip() else n_frames
                ranged = list(range(n_frames))[slice(start, stop)]
            else:
                frames = [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise InputError(
                f"Frames {spec!r} are not understood; use A:B, a number, or a list like 0,7,14."
            ) from None
        if ":" in text:
            return ranged or _empty(spec, n_frames)
    else:
        frames = [int(x) for x in spec]
    out = []
    for f in frames:
        g = f + n_frames if f < 0 else f
        if not 0 <= g < n_frames:
            raise InputError(f"Frame {f} is out of range: the movie has {n_frames} frames.")
        out.append(g)
    return list(dict.fromkeys(out)) or _empty(spec, n_frames)


def _empty(spec: Any, n_frames: int) -> list[int]:
    raise InputError(f"Frames {spec!r} select no frame of a {n_frames}-frame movie.")


def frame_ranges(frames: Any) -> list[list[int]]:
    """``[[start, stop), ...]`` runs of consecutive frames (compact provenance)."""
    f = np.sort(np.asarray(list(frames), np.int64))
    if f.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(f) != 1) + 1
    return [[int(r[0]), int(r[-1]) + 1] for r in np.split(f, breaks)]


def ranges_text(frames: list[int]) -> str | None:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"`` (None when empty)."""
    if not frames:
        return None
    runs, start, prev = [], frames[0], frames[0]
    for t in [*frames[1:], None]:
        if t is not None and t == prev + 1:
            prev = t
            continue
        runs.append(f"{start}-{prev}" if prev > start else f"{start}")
        if t is not None:
            start = prev = t
    return ", ".join(runs)
