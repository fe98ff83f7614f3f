"""The metrics table of a whole project, in the units of its metadata: migration metrics of
every track, and the shape of its masks when asked for. It combines ``metrics`` and ``shape``,
so it sits above both (neither imports it)."""

from __future__ import annotations

from typing import Any

from h4tracks.core.analysis.metrics import DEFAULT_MAX_LAG, Table, track_metrics
from h4tracks.core.analysis.shape import shape_metrics

__all__ = ["project_track_metrics"]


def project_track_metrics(
    project: Any, *, with_shape: bool = False, cores: int = 1, max_lag: int = DEFAULT_MAX_LAG
) -> Table:
    """:func:`track_metrics` of a project in the units of its metadata.

    ``with_shape`` measures the masks too (``shape_metrics``, needs labels; ``cores``
    threads).
    """
    md = project.metadata
    shape = None
    if with_shape:
        shape = shape_metrics(project, cores=cores)
    return track_metrics(
        project.graph, pixel_size=md.pixel_size, frame_interval=md.frame_interval,
        time_unit=md.time_unit, shape=shape, max_lag=max_lag,
    )
