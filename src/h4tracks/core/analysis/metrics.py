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

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from h4tracks.core.graph import TrackGraph
from h4tracks.errors import InputError

__all__ = [
    "MSDCurves",
    "Table",
    "Units",
    "detection_table",
    "filter_tracks",
    "msd_curves",
    "project_track_metrics",
    "summarize",
    "track_metrics",
    "units_for",
]

DEFAULT_MAX_LAG = 10


# ---------------------------------------------------------------------------------- table
class Table:
    """Named 1-D numpy columns of equal length, in insertion order.

    A deliberately small stand-in for a data frame (pandas is not a dependency): index it by
    column name to get the array, by a boolean mask / index array via :meth:`take`.

    Parameters
    ----------
    columns
        ``{name: values}``; every value becomes a 1-D numpy array of the same length.
    meta
        Free-form metadata, e.g. the length and time units (``{"length_unit": "µm"}``).

    Examples
    --------
    >>> t = Table({"track_id": [1, 2], "path_length [px]": [3.0, 4.5]})
    >>> len(t), t.find("path_length")
    (2, 'path_length [px]')
    """

    def __init__(
        self, columns: Mapping[str, Any] | None = None, *, meta: Mapping[str, Any] | None = None
    ) -> None:
        self._cols: dict[str, np.ndarray] = {}
        self._n: int | None = None
        for name, values in (columns or {}).items():
            self[name] = values
        self.meta: dict[str, Any] = dict(meta or {})

    @property
    def columns(self) -> list[str]:
        """Column names in order."""
        return list(self._cols)

    def __len__(self) -> int:
        return self._n or 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._cols)

    def __contains__(self, name: object) -> bool:
        return name in self._cols

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._cols[name]
        except KeyError:
            raise KeyError(
                f"no column {name!r}; columns are {', '.join(self._cols) or '(none)'}"
            ) from None

    def __setitem__(self, name: str, values: Any) -> None:
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise InputError(f"column {name!r} must be one-dimensional, got shape {arr.shape}")
        if self._n is not None and arr.size != self._n and self._cols:
            raise InputError(f"column {name!r} has {arr.size} rows, the table has {self._n}")
        self._cols[str(name)] = arr
        self._n = arr.size

    def __repr__(self) -> str:
        return f"Table({len(self)} rows: {', '.join(self._cols)})"

    def find(self, base: str) -> str:
        """Full name of a column given its name with or without the unit suffix.

        ``find("path_length")`` returns ``"path_length [µm]"`` (or ``[px]``), so callers need
        not know which units the table was computed in.
        """
        if base in self._cols:
            return base
        for name in self._cols:
            if name.split(" [", 1)[0] == base:
                return name
        raise KeyError(f"no column {base!r}; columns are {', '.join(self._cols) or '(none)'}")

    def take(self, rows: Any) -> Table:
        """A new table with the given rows (boolean mask or integer indices)."""
        rows = np.asarray(rows)
        return Table({k: v[rows] for k, v in self._cols.items()}, meta=self.meta)

    def to_dict(self) -> dict[str, np.ndarray]:
        """The columns as a plain dict (arrays are not copied)."""
        return dict(self._cols)

    def to_pandas(self) -> Any:
        """The table as a ``pandas.DataFrame`` (requires pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas ships with napari
            raise InputError("pandas is not installed; use the Table columns directly") from exc
        return pd.DataFrame(self._cols)


# ---------------------------------------------------------------------------------- units
@dataclass(frozen=True)
class Units:
    """Scale factors and unit names for lengths and times."""

    length: str  # "µm" or "px"
    time: str  # the time unit, or "frame"
    pixel_size: float  # length units per pixel (1 for px)
    frame_interval: float  # time units per frame (1 for frames)

    @property
    def speed(self) -> str:
        return f"{self.length}/{self.time}"

    @property
    def area(self) -> str:
        return f"{self.length}²"

    @property
    def diffusion(self) -> str:
        return f"{self.length}²/{self.time}"


def units_for(
    pixel_size: float | None = None, frame_interval: float | None = None, time_unit: str = "s"
) -> Units:
    """Units of the metrics: physical where the calibration is known, else px and frames."""
    for name, v in (("pixel_size", pixel_size), ("frame_interval", frame_interval)):
        if v is not None and not (np.isfinite(v) and v > 0):
            raise InputError(f"{name} must be a positive number, got {v}")
    return Units(
        length="px" if pixel_size is None else "µm",
        time="frame" if frame_interval is None else str(time_unit),
        pixel_size=1.0 if pixel_size is None else float(pixel_size),
        frame_interval=1.0 if frame_interval is None else float(frame_interval),
    )


def _name(base: str, unit: str | None) -> str:
    return f"{base} [{unit}]" if unit else base


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


# ---------------------------------------------------------------------------------- helpers
@dataclass
class _Tracks:
    """Nodes sorted by (track id, t) plus the block structure of the tracks."""

    t: np.ndarray
    label: np.ndarray
    y: np.ndarray  # scaled to length units
    x: np.ndarray
    track_ids: np.ndarray  # (K,) sorted
    starts: np.ndarray  # (K,) first node of each track
    counts: np.ndarray  # (K,) nodes per track
    tr: np.ndarray  # (N,) track index of each node


def _sorted_tracks(graph: TrackGraph, u: Units) -> _Tracks:
    nt = graph.node_table()
    order = np.lexsort((nt["t"], nt["track_id"]))
    tid = nt["track_id"][order]
    n = tid.size
    starts = np.flatnonzero(np.r_[True, tid[1:] != tid[:-1]]) if n else np.empty(0, np.int64)
    counts = np.diff(np.r_[starts, n]).astype(np.int64)
    return _Tracks(
        t=nt["t"][order], label=nt["label"][order],
        y=nt["y"][order] * u.pixel_size, x=nt["x"][order] * u.pixel_size,
        track_ids=tid[starts], starts=starts, counts=counts,
        tr=np.repeat(np.arange(starts.size), counts),
    )


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b with NaN where b == 0 (an undefined ratio, not an error)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    out = np.full(np.broadcast(a, b).shape, np.nan)
    np.divide(a, b, out=out, where=b != 0)
    return out


def _sample_sd(sum_sq_dev: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Sample standard deviation (ddof 1) from summed squared deviations; NaN for n < 2."""
    n = np.asarray(n)
    return np.sqrt(_div(sum_sq_dev, np.where(n >= 2, n - 1, 0)))


def _check_graph(graph: Any) -> TrackGraph:
    if not isinstance(graph, TrackGraph):
        raise InputError(f"expected a TrackGraph, got {type(graph).__name__}")
    return graph


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


def _msd_matrix(tk: _Tracks, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-track MSD and pair counts for frame lags 0..max_lag, shape (K, max_lag + 1).

    A pair (i, j) of the same track contributes to lag ``t_j - t_i`` (elapsed frames), so gaps
    count their real duration. Lags above ``min(max_lag, n_points - 1)`` are left out.
    """
    k, n = tk.track_ids.size, tk.t.size
    width = max_lag + 1
    sums = np.zeros(k * width)
    cnt = np.zeros(k * width, np.int64)
    lag_limit = np.minimum(max_lag, tk.counts - 1)[tk.tr]
    t, tr, y, x = tk.t, tk.tr, tk.y, tk.x
    # pairs with a frame lag <= max_lag are at most max_lag positions apart in a track, so a
    # loop over position offsets (not tracks) finds all of them; slices avoid gathers
    for off in range(1, min(max_lag, n - 1) + 1):
        lag = t[off:] - t[:-off]
        ok = (tr[off:] == tr[:-off]) & (lag <= lag_limit[:-off])
        if not ok.any():
            break  # no track has this many points left
        dy = y[off:][ok] - y[:-off][ok]
        dx = x[off:][ok] - x[:-off][ok]
        cell = tr[:-off][ok] * width + lag[ok]
        sums += np.bincount(cell, dy * dy + dx * dx, minlength=k * width)
        cnt += np.bincount(cell, minlength=k * width)
    msd = _div(sums, cnt).reshape(k, width)
    return msd, cnt.reshape(k, width)


def _loglog_slope(lags: np.ndarray, msd: np.ndarray) -> np.ndarray:
    """Least-squares slope of log(MSD) against log(lag) per row (NaN with < 2 points)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.log(msd)
    lx = np.broadcast_to(np.log(lags.astype(np.float64)), msd.shape)
    m = np.isfinite(ly)
    lyz = np.where(m, ly, 0.0)
    lxz = np.where(m, lx, 0.0)
    n = m.sum(1)
    sx, sy = lxz.sum(1), lyz.sum(1)
    sxx, sxy = (lxz * lxz).sum(1), (lxz * lyz).sum(1)
    slope = _div(n * sxy - sx * sy, n * sxx - sx * sx)
    slope[n < 2] = np.nan
    return slope


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


# ---------------------------------------------------------------------------------- MSD
@dataclass(frozen=True)
class MSDCurves:
    """Mean squared displacement curves of all tracks.

    Attributes
    ----------
    track_ids
        (K,) track ids.
    lags
        (L,) lag times in ``time_unit`` (frame lags 1..max_lag times the frame interval).
    msd
        (K, L) MSD per track in ``length_unit``²; NaN where a track has no pair at that lag.
    counts
        (K, L) number of point pairs behind each value.
    ensemble
        (L,) mean over tracks of the per-track MSD (each track weighs the same).
    """

    track_ids: np.ndarray
    lags: np.ndarray
    msd: np.ndarray
    counts: np.ndarray
    ensemble: np.ndarray
    length_unit: str
    time_unit: str


def msd_curves(
    graph: TrackGraph,
    *,
    pixel_size: float | None = None,
    frame_interval: float | None = None,
    time_unit: str = "s",
    max_lag: int = DEFAULT_MAX_LAG,
) -> MSDCurves:
    """Per-track MSD curves and their ensemble mean (for :func:`figures.msd_plot`).

    Parameters are those of :func:`track_metrics`.
    """
    graph = _check_graph(graph)
    if int(max_lag) < 1:
        raise InputError(f"max_lag must be at least 1, got {max_lag}")
    u = units_for(pixel_size, frame_interval, time_unit)
    tk = _sorted_tracks(graph, u)
    msd, cnt = _msd_matrix(tk, int(max_lag))
    msd, cnt = msd[:, 1:], cnt[:, 1:]
    n_def = np.isfinite(msd).sum(0)
    ensemble = _div(np.nansum(msd, 0), n_def)
    return MSDCurves(
        track_ids=tk.track_ids, lags=np.arange(1, int(max_lag) + 1) * u.frame_interval,
        msd=msd, counts=cnt, ensemble=ensemble, length_unit=u.length, time_unit=u.time,
    )


# ---------------------------------------------------------------------------------- filters
def filter_tracks(
    table: Table, min_length: int | None = None, min_movement: float | None = None
) -> np.ndarray:
    """Which tracks pass the filters of the predecessor mmv_h4tracks.

    Parameters
    ----------
    table
        A :func:`track_metrics` table.
    min_length
        Minimum number of detections (``n_points``) of a track.
    min_movement
        Minimum accumulated distance (``path_length``) in the table's length unit.

    Returns
    -------
    numpy.ndarray
        Boolean mask, one entry per row; all True without filters.
    """
    mask = np.ones(len(table), bool)
    if min_length is not None:
        mask &= table[table.find("n_points")] >= min_length
    if min_movement is not None:
        mask &= table[table.find("path_length")] >= min_movement
    return mask


_NOT_SUMMARISED = ("track_id", "parent_id", "passes_filters")


def summarize(table: Table, mask: np.ndarray | None = None) -> Table:
    """Statistics of every numeric column over the selected rows.

    Returns
    -------
    Table
        One row per metric: ``metric`` (column name with unit), ``n`` (finite values),
        ``mean``, ``sd`` (sample, ddof 1), ``median``, ``min``, ``max``. Ids are skipped.
    """
    rows = np.ones(len(table), bool) if mask is None else np.asarray(mask, bool)
    if rows.size != len(table):
        raise InputError(f"mask has {rows.size} entries, the table has {len(table)} rows")
    names = [
        c for c in table.columns
        if c not in _NOT_SUMMARISED and np.issubdtype(table[c].dtype, np.number)
        and table[c].dtype != bool
    ]
    if not names:
        data = np.empty((0, 0))
    else:
        data = np.stack([table[c][rows].astype(np.float64) for c in names], 0)
    finite = np.isfinite(data)
    n = finite.sum(1)
    z = np.where(finite, data, 0.0)
    mean = _div(z.sum(1), n)
    sd = _sample_sd((np.where(finite, data - mean[:, None], 0.0) ** 2).sum(1), n)
    hi = np.where(finite, data, -np.inf).max(1, initial=-np.inf)
    lo = np.where(finite, data, np.inf).min(1, initial=np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN metric has median NaN
        median = np.nanmedian(data, axis=1) if data.size else np.full(len(names), np.nan)
    return Table(
        {
            "metric": np.asarray(names, dtype=object),
            "n": n.astype(np.int64),
            "mean": mean,
            "sd": sd,
            "median": median,
            "min": np.where(n > 0, lo, np.nan),
            "max": np.where(n > 0, hi, np.nan),
        },
        meta=table.meta,
    )


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
        from h4tracks.core.analysis.shape import shape_metrics

        shape = shape_metrics(project, cores=cores)
    return track_metrics(
        project.graph, pixel_size=md.pixel_size, frame_interval=md.frame_interval,
        time_unit=md.time_unit, shape=shape, max_lag=max_lag,
    )
