"""Figures of the track metrics (matplotlib, no pyplot).

Every function builds a standalone :class:`matplotlib.figure.Figure`, so nothing touches
pyplot's global figure list or backend: safe in a headless process, in worker threads and
inside napari (embed it with a Qt canvas, or save it with :func:`save_figure`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from h4tracks.core.analysis.metrics import Table, msd_curves
from h4tracks.core.analysis.tracks_display import track_series
from h4tracks.core.analysis.trajectories import Trajectories, origin_trajectories
from h4tracks.core.graph import TrackGraph
from h4tracks.core.outputs import atomic_file
from h4tracks.errors import InputError

__all__ = ["draw_rose", "histogram", "msd_plot", "rose_plot", "save_figure", "scatter",
           "track_plot"]

_FIGSIZE = (5.0, 4.0)


def _column(table: Table, name: str) -> tuple[str, np.ndarray]:
    try:
        full = table.find(name)
    except KeyError as exc:
        raise InputError(str(exc.args[0])) from None
    values = np.asarray(table[full])
    if not np.issubdtype(values.dtype, np.number):
        raise InputError(f"column {full!r} is not numeric")
    return full, values.astype(np.float64)


def _rows(table: Table, mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        return np.ones(len(table), bool)
    mask = np.asarray(mask, bool)
    if mask.size != len(table):
        raise InputError(f"mask has {mask.size} entries, the table has {len(table)} rows")
    return mask


def scatter(
    table: Table,
    x: str,
    y: str,
    *,
    mask: np.ndarray | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = _FIGSIZE,
) -> Figure:
    """Scatter plot of two columns (names with or without the unit), one point per track.

    ``mask`` selects rows (e.g. :func:`filter_tracks`); rows with NaN are left out.
    """
    xn, xv = _column(table, x)
    yn, yv = _column(table, y)
    rows = _rows(table, mask) & np.isfinite(xv) & np.isfinite(yv)
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(xv[rows], yv[rows], s=12, alpha=0.7, edgecolors="none")
    ax.set_xlabel(xn)
    ax.set_ylabel(yn)
    ax.set_title(title or f"{len(xv[rows])} tracks")
    return fig


def histogram(
    table: Table,
    column: str,
    bins: int | Sequence[float] = 20,
    *,
    mask: np.ndarray | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = _FIGSIZE,
) -> Figure:
    """Histogram of one column over the (selected) tracks; NaN values are left out."""
    name, v = _column(table, column)
    v = v[_rows(table, mask) & np.isfinite(v)]
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.hist(v, bins=bins, edgecolor="white")
    ax.set_xlabel(name)
    ax.set_ylabel("tracks")
    ax.set_title(title or f"{v.size} tracks")
    return fig


def rose_plot(
    graph: TrackGraph,
    *,
    pixel_size: float | None = None,
    track_ids: Sequence[int] | np.ndarray | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (5.0, 5.0),
) -> Figure:
    """All trajectories moved to a common origin (their first point), in image orientation.

    Drawn as one LineCollection of all steps, so thousands of tracks stay fast. The y axis
    points down as in the image.
    """
    if not isinstance(graph, TrackGraph):
        raise InputError(f"expected a TrackGraph, got {type(graph).__name__}")
    traj = origin_trajectories(graph, pixel_size=pixel_size, track_ids=track_ids)
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    draw_rose(ax, traj)
    ax.set_title(title or f"{traj.n_tracks} trajectories")
    return fig


def draw_rose(ax: Axes, traj: Trajectories, *, limit: float | None = None) -> None:
    """Draw trajectories from the origin on ``ax`` (the body of :func:`rose_plot`, shared
    with the pooled panels of :func:`~h4tracks.core.analysis.group_figures.rose_by_group`).

    ``limit``: half the width of the square shown (default: the farthest point).
    """
    tid, x, y = traj.track_ids, traj.dx, traj.dy
    first = traj.starts
    idx = np.repeat(np.arange(first.size), np.diff(np.r_[first, tid.size]))
    same = np.flatnonzero(tid[1:] == tid[:-1])
    segs = np.stack(
        [np.stack([x[same], y[same]], 1), np.stack([x[same + 1], y[same + 1]], 1)], 1
    ) if same.size else np.empty((0, 2, 2))
    lc = LineCollection(list(segs), cmap="tab20", linewidths=0.8, alpha=0.8)
    lc.set_array((idx[same] % 20).astype(float) if same.size else np.empty(0))
    lc.set_clim(0, 19)
    ax.add_collection(lc)
    last = np.r_[first[1:] - 1, tid.size - 1] if tid.size else np.empty(0, int)
    ax.scatter(x[last], y[last], s=6, c="k", zorder=3)
    ax.axhline(0, color="0.7", lw=0.5)
    ax.axvline(0, color="0.7", lw=0.5)
    if limit is None:
        limit = float(np.nanmax(np.abs(np.r_[x, y, 1e-9]))) * 1.05 if tid.size else 1.0
    ax.set_xlim(-limit, limit)
    ax.set_ylim(limit, -limit)  # image orientation: y grows downwards
    ax.set_aspect("equal")
    ax.set_xlabel(f"Δx [{traj.length_unit}]")
    ax.set_ylabel(f"Δy [{traj.length_unit}]")


def msd_plot(
    graph: TrackGraph,
    *,
    pixel_size: float | None = None,
    frame_interval: float | None = None,
    time_unit: str = "s",
    max_lag: int = 10,
    track_ids: Sequence[int] | np.ndarray | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = _FIGSIZE,
) -> Figure:
    """Log-log MSD curves: every track thin and grey, the ensemble mean bold, with slope-1
    (diffusive) and slope-2 (ballistic) guides through the mean's first point."""
    c = msd_curves(graph, pixel_size=pixel_size, frame_interval=frame_interval,
                   time_unit=time_unit, max_lag=max_lag)
    msd = c.msd
    if track_ids is not None:
        sel = np.isin(c.track_ids, np.asarray(track_ids, np.int64))
        msd = msd[sel]
        # mean over the selected tracks of their defined values (NaN where none is)
        n_def = np.isfinite(msd).sum(0)
        ensemble = np.full(c.lags.size, np.nan)
        np.divide(np.nansum(msd, 0), n_def, out=ensemble, where=n_def > 0)
    else:
        ensemble = c.ensemble
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_yscale("log")
    ok = np.isfinite(msd) & (msd > 0)
    # one LineCollection for all tracks; NaN/zero points split a curve's segments
    seg_ok = ok[:, 1:] & ok[:, :-1]
    r, j = np.nonzero(seg_ok)
    if r.size:
        segs = np.stack([np.stack([c.lags[j], msd[r, j]], 1),
                         np.stack([c.lags[j + 1], msd[r, j + 1]], 1)], 1)
        ax.add_collection(LineCollection(segs, colors="0.6", linewidths=0.5, alpha=0.4))
    good = np.isfinite(ensemble) & (ensemble > 0)
    if good.any():
        ax.plot(c.lags[good], ensemble[good], "o-", color="C3", lw=2, label="mean")
        l0, m0 = c.lags[good][0], ensemble[good][0]
        for slope, style in ((1, ":"), (2, "--")):
            ax.plot(c.lags, m0 * (c.lags / l0) ** slope, style, color="k", lw=0.8,
                    label=f"slope {slope}")
        ax.legend(frameon=False)
    if ok.any():
        ax.set_ylim(np.min(msd[ok]) / 1.5, np.max(msd[ok]) * 1.5)
    ax.set_xlim(c.lags[0] / 1.2, c.lags[-1] * 1.2)
    ax.set_xlabel(f"lag [{c.time_unit}]")
    ax.set_ylabel(f"MSD [{c.length_unit}²]")
    ax.set_title(title or f"MSD of {int(ok.any(1).sum())} tracks")
    return fig


def track_plot(
    graph: TrackGraph,
    track_id: int,
    *,
    pixel_size: float | None = None,
    frame_interval: float | None = None,
    time_unit: str = "s",
    title: str | None = None,
    figsize: tuple[float, float] = (5.0, 4.0),
) -> Figure:
    """Speed and area of one track over time, one panel each (shared time axis).

    The values are those the Tracks layer colours by (:func:`track_series`); the line
    crosses a missing frame (gap) without a point there.
    """
    if not isinstance(graph, TrackGraph):
        raise InputError(f"expected a TrackGraph, got {type(graph).__name__}")
    s = track_series(graph, track_id, pixel_size=pixel_size, frame_interval=frame_interval,
                     time_unit=time_unit)
    time = s[s.find("time")]
    fig = Figure(figsize=figsize, layout="constrained")
    speed_ax, area_ax = fig.subplots(2, 1, sharex=True)
    for ax, name, color in ((speed_ax, "speed", "C0"), (area_ax, "area", "C2")):
        full = s.find(name)
        ax.plot(time, s[full], "o-", color=color, ms=3, lw=1.2)
        ax.set_ylabel(full.replace(" [", "\n["))  # the unit on a line of its own: short
        ax.grid(True, color="0.9")
    area_ax.set_xlabel(s.find("time"))
    t = s["t"]
    speed_ax.set_title(title or f"track {track_id}: frames {t[0]}–{t[-1]} ({t.size} cells)")
    return fig


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Save a figure as PNG or SVG, chosen by the file suffix.

    An SVG keeps its texts as text (not outlines), so titles and labels stay editable in a
    vector editor and searchable.

    Raises
    ------
    InputError
        For any other suffix, a missing folder or a path inside a project.
    H4TracksError
        If the file cannot be written (full disk, permission denied...); the file is then
        left as it was.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise InputError(
            f"figures can be saved as .png or .svg, not {path.suffix or 'without a suffix'!r}"
        )
    # rcParams are global: changed only for an SVG, and only while it is written
    texts = rc_context({"svg.fonttype": "none"}) if fmt == "svg" else nullcontext()
    with atomic_file(path, "wb") as fh, texts:
        fig.savefig(fh, format=fmt, dpi=dpi)
    return path
