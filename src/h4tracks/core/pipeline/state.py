"""What a rerun may skip, read from the project's own provenance.

The provenance a run step writes (:class:`~h4tracks.core.runs.RunStep`: ``segment`` with its
model, parameters and frames; ``track`` with its method and parameters; ``import``) is the
record of what ran with which parameters, so the pipeline keeps no second book inside the
project that could disagree with it. The outputs (metrics, exports) live outside the
project; each carries a small stamp (the project's save generation and the step's
parameters) beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from h4tracks.core.project import jsonable

__all__ = ["segment_signature", "segmented_frames", "stamp_matches", "tracking_current",
           "write_stamp"]

#: provenance steps that replace labels (and so invalidate a tracking)
_LABEL_STEPS = ("import", "segment", "repair")
_TRACK_STEPS = ("track", "retrack")


def segment_signature(model: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parts of a segmentation's provenance that decide its masks.

    ``params`` is ``SegmentParams.model_dump()``; its ``engine`` and ``precision`` are
    recorded as ``engine_requested`` / ``precision_requested`` (``engine`` and ``precision``
    are what actually ran: a fallback must not make a rerun segment the frames again).
    """
    return jsonable({"model": model, **params})


#: parameters recorded twice, as asked for (``<key>_requested``) and as what ran (``<key>``)
_REQUESTED = ("engine", "precision")
#: what a provenance entry from before a parameter existed ran with
_BEFORE = {"precision": "float32"}


def _recorded(entry_params: dict[str, Any], signature: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key in signature:
        asked = f"{key}_requested"
        source = asked if key in _REQUESTED and asked in entry_params else key
        out[key] = entry_params.get(source, _BEFORE.get(key))
    return out


def segmented_frames(provenance: list[dict[str, Any]], signature: dict[str, Any]) -> set[int]:
    """Frames whose current labels come from a segmentation with ``signature``.

    Walks the provenance in order: an import resets every frame, a segmentation
    sets its frames to its own parameters (a run stopped midway lists the frames it
    finished, so a rerun resumes after them).
    """
    current: dict[int, bool] = {}
    for entry in provenance:
        step = entry.get("step")
        params = entry.get("params") or {}
        if step == "import":
            current.clear()
        elif step == "segment":
            same = _recorded(params, signature) == signature
            for start, stop in params.get("frames") or []:
                for t in range(int(start), int(stop)):
                    current[t] = same
    return {t for t, same in current.items() if same}


def tracking_current(provenance: list[dict[str, Any]], signature: dict[str, Any]) -> bool:
    """Whether the last tracking ran after the last label change, with ``signature``
    (``{"method": ..., **params.model_dump()}``)."""
    last_labels = max((i for i, e in enumerate(provenance) if e.get("step") in _LABEL_STEPS),
                      default=-1)
    last_track = max((i for i, e in enumerate(provenance) if e.get("step") in _TRACK_STEPS),
                     default=-1)
    if last_track < last_labels:
        return False
    entry = provenance[last_track]
    if entry.get("step") != "track":
        return False  # a re-tracking from corrections is not the pipeline's tracking
    signature = jsonable(signature)
    return _recorded(entry.get("params") or {}, signature) == signature


def _stamp_file(folder: Path) -> Path:
    return folder / "stamps.json"


def stamp_matches(folder: Path, step: str, stamp: dict[str, Any]) -> bool:
    """Whether ``folder`` holds the outputs of ``step`` made from exactly ``stamp``."""
    try:
        stamps = json.loads(_stamp_file(folder).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stamps, dict) and stamps.get(step) == jsonable(stamp)


def write_stamp(folder: Path, step: str, stamp: dict[str, Any] | None) -> None:
    """Record (or with None forget) the stamp of ``step``'s outputs in ``folder``.

    Written after the outputs, atomically: a kill between the two leaves an old stamp that
    does not match, so the step runs again rather than trusting half-written files.
    """
    from h4tracks.core.outputs import atomic_file

    try:
        stamps = json.loads(_stamp_file(folder).read_text())
        if not isinstance(stamps, dict):
            stamps = {}
    except (OSError, ValueError):
        stamps = {}
    if stamp is None:
        stamps.pop(step, None)
    else:
        stamps[step] = jsonable(stamp)
    with atomic_file(_stamp_file(folder), "w", encoding="utf-8") as fh:
        json.dump(stamps, fh, indent=1)
