"""Helpers shared by the engine tests: run Cellpose's eval, compare masks."""

from __future__ import annotations

import numpy as np

from h4tracks.core.segmentation.models import ModelEntry


def custom(path) -> ModelEntry:
    """A registry entry for a weights file."""
    return ModelEntry(name=path.name, kind="custom", path=str(path))


def cp_eval(model, frame, **kw):
    """Masks, flows dP (2, Y, X) and cell probability (Y, X) of one frame."""
    masks, flows, _ = model.eval([frame], channels=[0, 0], diameter=kw.pop("diameter", None),
                                 batch_size=8, **kw)
    return masks[0], flows[0][1], flows[0][2]


def ap50(ref: np.ndarray, pred: np.ndarray) -> float:
    """Cellpose's AP@0.5 of ``pred`` against ``ref`` (1 when both are empty)."""
    from cellpose import metrics

    if ref.max() == 0 and pred.max() == 0:
        return 1.0
    return float(metrics.average_precision([ref.astype(np.int64)], [pred.astype(np.int64)],
                                           threshold=[0.5])[0][0, 0])


def compare(ref_model, fast_model, frames, **kw) -> tuple[list[float], float]:
    """AP@0.5 of ``fast_model``'s masks against ``ref_model``'s per frame, largest flow gap."""
    aps, diff = [], 0.0
    for frame in frames:
        m0, dp0, p0 = cp_eval(ref_model, frame, **dict(kw))
        m1, dp1, p1 = cp_eval(fast_model, frame, **dict(kw))
        aps.append(ap50(m0, m1))
        diff = max(diff, float(np.abs(dp0 - dp1).max()), float(np.abs(p0 - p1).max()))
    return aps, diff
