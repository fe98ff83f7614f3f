"""Where the errors an evaluation found are, so a viewer can mark them.

An :class:`~h4tracks.core.evaluation.report.EvaluationReport` lists its errors as node keys
``(t, label)`` of the result or of the reference, or as links between them. This module turns
them into points ``(t, y, x)`` with the kind of error, placed on the cell's centroid, for a
napari Points layer (or any other marker).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from h4tracks.core.graph import TrackGraph

__all__ = ["ERROR_KINDS", "flagged_points"]

#: error kind -> (which side its keys refer to, plain-language label)
ERROR_KINDS: dict[str, tuple[str, str]] = {
    "seg_missed": ("reference", "cell missed by the segmentation"),
    "seg_false_positives": ("result", "segmented object that is not a cell"),
    "fn_nodes": ("reference", "cell missed by the tracking"),
    "fp_nodes": ("result", "extra object in the tracking"),
    "merged": ("result", "several cells merged into one"),
    "missing_edges": ("reference", "link missed"),
    "extra_edges": ("result", "wrong link"),
    "semantic_edges": ("result", "link of the wrong kind (division vs. continuation)"),
    "missed_divisions": ("reference", "division missed"),
    "false_divisions": ("result", "division that did not happen"),
}


def _node_of(item: Any) -> tuple[int, int]:
    """The cell an error entry points at: a node, or the child of a link."""
    flat = [int(v) for v in np.ravel(np.asarray(item, dtype=np.int64))]
    return (flat[-2], flat[-1])


def flagged_points(
    errors: dict[str, list[Any]], result: TrackGraph | None, reference: TrackGraph | None,
) -> tuple[np.ndarray, list[str]]:
    """Points ``(t, y, x)`` on the cells each error refers to, and each point's kind.

    Parameters
    ----------
    errors
        ``EvaluationReport.errors``.
    result, reference
        Lineages whose centroids place the points (a side that is None is skipped, e.g. an
        external reference that is not loaded).

    Returns
    -------
    (points, kinds)
        (N, 3) float array and N plain-language error labels.
    """
    pts: list[tuple[float, float, float]] = []
    kinds: list[str] = []
    for key, items in errors.items():
        side, text = ERROR_KINDS.get(key, ("result", key.replace("_", " ")))
        graph = result if side == "result" else reference
        if graph is None:
            continue
        for item in items:
            node = _node_of(item)
            if node not in graph:
                continue
            n = graph.node(node)
            pts.append((float(node[0]), float(n["y"]), float(n["x"])))
            kinds.append(text)
    return np.asarray(pts, np.float64).reshape(-1, 3), kinds
