"""Track analysis: per-track migration and shape metrics, filters, CSV export and figures.

Qt-free; used by the analysis tab, the CLI and scripts::

    from h4tracks.core.analysis import shape_metrics, track_metrics, write_track_report

    md = project.metadata
    table = track_metrics(project.graph, pixel_size=md.pixel_size,
                          frame_interval=md.frame_interval, time_unit=md.time_unit,
                          shape=shape_metrics(project))
    write_track_report(table, "tracks.csv", min_length=10, sep=";", decimal=",")

Formulas and units: ``docs/metrics.md``. Figures live in
:mod:`h4tracks.core.analysis.figures` (imported on demand, it pulls in matplotlib).
"""

from h4tracks.core.analysis.export import write_csv, write_detections_csv, write_track_report
from h4tracks.core.analysis.metrics import (
    MSDCurves,
    Table,
    Units,
    detection_table,
    filter_tracks,
    msd_curves,
    summarize,
    track_metrics,
    units_for,
)
from h4tracks.core.analysis.project_metrics import project_track_metrics
from h4tracks.core.analysis.shape import SHAPE_MEASURES, shape_metrics

__all__ = [
    "SHAPE_MEASURES",
    "MSDCurves",
    "Table",
    "Units",
    "detection_table",
    "filter_tracks",
    "msd_curves",
    "project_track_metrics",
    "shape_metrics",
    "summarize",
    "track_metrics",
    "units_for",
    "write_csv",
    "write_detections_csv",
    "write_track_report",
]
