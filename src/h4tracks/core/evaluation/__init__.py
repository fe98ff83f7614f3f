"""Evaluation of segmentation and tracking results against a reference (no Qt).

* :func:`evaluate` — score a result against a reference, returning an
  :class:`EvaluationReport` (JSON / Markdown / HTML);
* :func:`curated_vs_auto` — score a project's automatic snapshot against its curated state;
* :func:`evaluate_segmentation`, :func:`evaluate_tracking` — the two halves on raw movies.

See ``docs/evaluation.md`` for the definitions.
"""

from h4tracks.core.evaluation.curated import curated_vs_auto
from h4tracks.core.evaluation.references import (
    TrackingData,
    from_ctc,
    from_label_movie,
    from_project,
    load,
)
from h4tracks.core.evaluation.report import EvaluationReport, evaluate
from h4tracks.core.evaluation.segmentation import (
    THRESHOLDS,
    SegmentationMetrics,
    evaluate_segmentation,
    frame_overlap,
    match_instances,
)
from h4tracks.core.evaluation.tracking import (
    TrackingMetrics,
    evaluate_tracking,
    graph_edges,
    lineage_edges,
)

__all__ = [
    "THRESHOLDS",
    "EvaluationReport",
    "SegmentationMetrics",
    "TrackingData",
    "TrackingMetrics",
    "curated_vs_auto",
    "evaluate",
    "evaluate_segmentation",
    "evaluate_tracking",
    "frame_overlap",
    "from_ctc",
    "from_label_movie",
    "from_project",
    "graph_edges",
    "lineage_edges",
    "load",
    "match_instances",
]
