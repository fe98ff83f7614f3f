"""Per-track migration metrics, computed for all tracks at once.

The graph's nodes are sorted by (track id, t) so every track is one contiguous block; all
per-track quantities are then sums / maxima over blocks (``np.bincount`` with weights,
``np.maximum.reduceat``), so the cost is a handful of array passes over all nodes, without a
Python loop over tracks or points. The formulas are written out in ``docs/metrics.md``.

Results are a :class:`Table`: named numpy columns of equal length. pandas is not a dependency
of h4tracks, so the table does not require it; :meth:`Table.to_pandas` converts when pandas is
installed.
"""

from __future__ import annotations

import numpy as np

from h4tracks.core.analysis._tracks import (
    _check_graph,
    _div,
    _sample_sd,
    _sorted_tracks,
    _Tracks,
)
from h4tracks.core.analysis.msd import (
    DEFAULT_MAX_LAG,
    MSDCurves,
    _loglog_slope,
    _msd_matrix,
    msd_curves,
)
from h4tracks.core.analysis.summary import filter_tracks, summarize
from h4tracks.core.analysis.table import Table
from h4tracks.core.analysis.units import Units, _name, units_for
from h4tracks.core.graph import TrackGraph
from h4tracks.errors import InputError

# Table, units, MSD curves and the filters/summaries live in their own modules (table, units,
# msd, summary) and are re-exported here, where they were first defined
__all__ = [
    "DEFAULT_MAX_LAG",
    "MSDCurves",
    "Table",
    "Units",
    "detection_table",
    "filter_tracks",
    "msd_curves",
    "summarize",
    "track_metrics",
    "units_for",
]


def _track_columns(u: Units) -> list[str]:
    """All columns of :func:`track_metrics` (without shape), in order."""
    spec = [
        ("track_id", None), ("parent_id", None), ("n_children", None), ("generation", None),
        ("first_frame", None), ("last_frame", None), ("n_points", None),
        ("n_missing_frames", None), ("duration", u.time),
        ("start_y", u.length), ("start_x", u.length), ("end_y", u.length), ("end_x", u.length),
        ("path_length", u.length), ("displacement", u.length), ("directness", None),
        ("mean_speed", u.speed), ("sd_speed", u.speed), ("max_speed", u.speed),
        ("net_velocity", u.speed), ("mean_direction", "deg"), ("persistence", None),
        ("msd_alpha", None), ("diffusion_coefficient", u.diffusion),
        ("time_to_division", u.time),
    ]
    return [_name(b, unit) for b, unit in spec]


def _lineage(graph: TrackGraph, track_ids: np.ndarray) -> tuple[np.ndarray, ...]:
    """Parent track id, number of daughters and generation of every track."""
    k = track_ids.size
    parent_idx = np.full(k, -1, np.int64)
    pairs = graph.track_parents()
    if pairs and k:
        child = np.fromiter(pairs.keys(), np.int64, len(pairs))
        parent = np.fromiter((p[0] for p in pairs.values()), np.int64, len(pairs))
        parent_idx[np.searchsorted(track_ids, child)] = np.searchsorted(track_ids, parent)
    has_parent = parent_idx >= 0
    parent_id = np.where(has_parent, track_ids[np.maximum(parent_idx, 0)] if k else 0, 0)
    n_children = np.bincount(parent_idx[has_parent], minlength=k).astype(np.int64)
    # walk up one lineage level per iteration (loop over depth, not over tracks)
    generation = np.zeros(k, np.int64)
    cur = parent_idx.copy()
    while np.any(cur >= 0):
        up = cur >= 0
        generation += up
        cur[up] = parent_idx[cur[up]]
    return parent_id.astype(np.int64), n_children, generation


def _steps(tk: _Tracks) -> tuple[np.ndarray, ...]:
    """Consecutive detections of each track: track index, dy, dx, elapsed frames."""
    tr = tk.tr
    i0 = np.flatnonzero(tr[1:] == tr[:-1])
    i1 = i0 + 1
    return tr[i0], tk.y[i1] - tk.y[i0], tk.x[i1] - tk.x[i0], tk.t[i1] - tk.t[i0]


# ---------------------------------------------------------------------------------- metrics
def track_metrics(
    graph: TrackGraph,
    *,
    pixel_size: float | None = None,
    frame_interval: float | None = None,
    time_unit: str = "s",
    shape: Table | None = None,
    max_lag: int = DEFAULT_MAX_LAG,
) -> Table:
    """Migration metrics of every track, one row per track (sorted by track id).

    Parameters
    ----------
    graph
        The lineage graph.
    pixel_size
        µm per pixel; without it lengths are in px.
    frame_interval
        Time between frames in ``time_unit``; without it times are in frames.
    time_unit
        Name of the time unit (used only with ``frame_interval``).
    shape
        Optional per-detection shape table from ``shape_metrics``; the mean and SD of each
        of its measures per track are appended
        (``mean_area [µm²]``, ``sd_area [µm²]``, ...).
    max_lag
        Largest MSD lag in frames (default 10).

    Returns
    -------
    Table
        Columns (unit in brackets; ``L`` = µm or px, ``T`` = time unit or frame):
        ``track_id``, ``parent_id`` (0 = none), ``n_children``, ``generation``,
        ``first_frame``, ``last_frame``, ``n_points``, ``n_missing_frames``, ``duration [T]``,
        ``start_y/start_x/end_y/end_x [L]``, ``path_length [L]``, ``displacement [L]``,
        ``directness``, ``mean_speed/sd_speed/max_speed [L/T]``, ``net_velocity [L/T]``,
        ``mean_direction [deg]``, ``persistence``, ``msd_alpha``,
        ``diffusion_coefficient [L²/T]``, ``time_to_division [T]``. Undefined values are
        NaN. ``meta`` holds ``length_unit`` and ``time_unit``. See ``docs/metrics.md``.
    """
    graph = _check_graph(graph)
    if int(max_lag) < 1:
        raise InputError(f"max_lag must be at least 1, got {max_lag}")
    max_lag = int(max_lag)
    u = units_for(pixel_size, frame_interval, time_unit)
    tk = _sorted_tracks(graph, u)
    k = tk.track_ids.size
    starts, counts = tk.starts, tk.counts
    ends = starts + counts - 1
    fi = u.frame_interval

    parent_id, n_children, generation = _lineage(graph, tk.track_ids)

    s_tr, dy, dx, dt = _steps(tk)
    step_len = np.hypot(dy, dx)
    speed = step_len / (dt * fi)
    n_steps = counts - 1
    path = np.bincount(s_tr, step_len, minlength=k)
    mean_speed = _div(np.bincount(s_tr, speed, minlength=k), n_steps)
    dev = speed - mean_speed[s_tr]
    sd_speed = _sample_sd(np.bincount(s_tr, dev * dev, minlength=k), n_steps)
    max_speed = np.full(k, np.nan)
    has = n_steps > 0
    if has.any():
        # steps of a track are contiguous; reduceat needs non-empty blocks, hence ``has``
        step_start = np.cumsum(n_steps) - n_steps
        max_speed[has] = np.maximum.reduceat(speed, step_start[has])

    # direction: screen convention (y axis of the image points down, angles counter-clockwise
    # from +x as seen on screen), unweighted mean of the unit step vectors
    moving = step_len > 0
    ux = _div(dx, step_len)[moving]
    uy = -_div(dy, step_len)[moving]
    n_mov = np.bincount(s_tr[moving], minlength=k)
    cx = np.bincount(s_tr[moving], ux, minlength=k)
    cy = np.bincount(s_tr[moving], uy, minlength=k)
    resultant = np.hypot(cx, cy)
    persistence = _div(resultant, n_mov)
    mean_direction = np.degrees(np.arctan2(cy, cx)) % 360.0
    mean_direction[~(resultant > 1e-9 * np.maximum(n_mov, 1))] = np.nan

    first_t, last_t = tk.t[starts], tk.t[ends]
    duration = (last_t - first_t) * fi
    displacement = np.hypot(tk.y[ends] - tk.y[starts], tk.x[ends] - tk.x[starts])

    msd, _ = _msd_matrix(tk, max_lag)
    lags = np.arange(1, max_lag + 1)
    alpha = _loglog_slope(lags, msd[:, 1:])
    diffusion = msd[:, 1] / (4.0 * fi) if k else np.empty(0)

    values = [
        tk.track_ids, parent_id, n_children, generation, first_t, last_t, counts,
        (last_t - first_t + 1) - counts, duration,
        tk.y[starts], tk.x[starts], tk.y[ends], tk.x[ends],
        path, displacement, _div(displacement, path),
        mean_speed, sd_speed, max_speed, _div(displacement, duration),
        mean_direction, persistence, alpha, diffusion,
        np.where(n_children > 0, duration, np.nan),
    ]
    names = _track_columns(u)
    table = Table(
        {n: np.asarray(v) for n, v in zip(names, values, strict=True)},
        meta={"length_unit": u.length, "time_unit": u.time},
    )
    # int columns stay int (ids, counts); everything measured is float
    for n in names[:8]:
        table[n] = table[n].astype(np.int64)
    for n in names[8:]:
        table[n] = table[n].astype(np.float64)
    if shape is not None:
        _merge_shape(table, tk, shape)
    return table


def _merge_shape(table: Table, tk: _Tracks, shape: Table) -> None:
    """Append per-track mean and SD of every measure of a per-detection shape table."""
    for c in ("t", "label"):
        if c not in shape:
            raise InputError(f"the shape table needs a {c!r} column (from shape_metrics)")
    measures = [c for c in shape.columns if c not in ("t", "label", "track_id")]
    k = tk.track_ids.size
    # map detections to graph nodes by (t, label): both packed into one sortable int64
    node_code = (tk.t << 32) | tk.label
    order = np.argsort(node_code)
    code = (np.asarray(shape["t"], np.int64) << 32) | np.asarray(shape["label"], np.int64)
    pos = np.minimum(np.searchsorted(node_code[order], code), max(node_code.size - 1, 0))
    hit = node_code[order][pos] == code if node_code.size else np.zeros(code.size, bool)
    tr = tk.tr[order[pos[hit]]]
    for c in measures:
        v = np.asarray(shape[c], np.float64)[hit]
        ok = np.isfinite(v)
        n = np.bincount(tr[ok], minlength=k)
        mean = _div(np.bincount(tr[ok], v[ok], minlength=k), n)
        dev = v[ok] - mean[tr[ok]]
        sd = _sample_sd(np.bincount(tr[ok], dev * dev, minlength=k), n)
        table[f"mean_{c}"] = mean
        table[f"sd_{c}"] = sd


def detection_table(
    graph: TrackGraph,
    *,
    pixel_size: float | None = None,
    frame_interval: float | None = None,
    time_unit: str = "s",
    shape: Table | None = None,
) -> Table:
    """One row per detection: ``t``, ``time [T]``, ``label``, ``track_id``, ``y [L]``,
    ``x [L]``, ``area [L²]`` (+ the shape columns when ``shape`` is given), sorted by
    (track id, t)."""
    graph = _check_graph(graph)
    u = units_for(pixel_size, frame_interval, time_unit)
    nt = graph.node_table()
    order = np.lexsort((nt["t"], nt["track_id"]))
    cols = {
        "t": nt["t"][order],
        _name("time", u.time): nt["t"][order] * u.frame_interval,
        "label": nt["label"][order],
        "track_id": nt["track_id"][order],
        _name("y", u.length): nt["y"][order] * u.pixel_size,
        _name("x", u.length): nt["x"][order] * u.pixel_size,
        _name("area", u.area): nt["area"][order] * u.pixel_size**2,
    }
    table = Table(cols, meta={"length_unit": u.length, "time_unit": u.time})
    if shape is not None:
        code = (cols["t"] << 32) | cols["label"]
        s_code = (np.asarray(shape["t"], np.int64) << 32) | np.asarray(shape["label"], np.int64)
        s_order = np.argsort(s_code)
        pos = np.minimum(np.searchsorted(s_code[s_order], code), max(s_code.size - 1, 0))
        hit = s_code[s_order][pos] == code if s_code.size else np.zeros(code.size, bool)
        for c in shape.columns:
            if c in ("t", "label", "track_id"):
                continue
            col = np.full(code.size, np.nan)
            col[hit] = np.asarray(shape[c], np.float64)[s_order[pos[hit]]]
            # the graph's area (pixel count) is replaced by the shape table's one
            table[c] = col
    return table
