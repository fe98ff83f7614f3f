"""Figures comparing groups of tracks (conditions of a batch run): a box + strip plot of a
metric (:func:`box_strip`), pooled trajectories from the origin with one panel per group
(:func:`rose_by_group`), and the mean ± SEM MSD curve of each group (:func:`msd_by_group`).

Like :mod:`h4tracks.core.analysis.figures`, every function builds a standalone
:class:`~matplotlib.figure.Figure` (no pyplot). Each group's panel or curve carries the gid
``rose-GROUP`` / ``msd-GROUP``, written as the element id in an SVG, so a script (or a test)
can find a condition's drawing in the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from h4tracks.core.analysis.figures import draw_rose
from h4tracks.core.analysis.msd import PooledMSD
from h4tracks.core.analysis.table import Table
from h4tracks.core.analysis.trajectories import Trajectories, sample_tracks

__all__ = ["box_strip", "msd_by_group", "rose_by_group"]

#: trajectories drawn per panel at most: beyond that the panel is unreadable and its SVG
#: grows by megabytes; a fixed random subset keeps the figure honest and the same each run
MAX_ROSE_TRACKS = 500


def box_strip(table: Table, metric: str, by: str) -> Figure:
    """Box plot with every track as a point, one box per value of column ``by``.

    Raises
    ------
    KeyError
        If the table has no column ``metric`` (with or without its unit).
    """
    name = table.find(metric)
    values = np.asarray(table[name], np.float64)
    groups = np.asarray(table[by]).astype(str)
    labels = sorted(set(groups.tolist()))
    data = [values[(groups == g) & np.isfinite(values)] for g in labels]
    fig = Figure(figsize=(max(4.0, 1.2 * len(labels) + 2), 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(range(1, len(labels) + 1), labels)
    rng = np.random.default_rng(0)  # fixed jitter: the same figure on every run
    for i, d in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, d.size), d, s=8, alpha=0.5, edgecolors="none")
    ax.set_xlabel(by)
    ax.set_ylabel(name)
    ax.set_title(f"{name} by {by} ({sum(d.size for d in data)} tracks)")
    return fig


def rose_by_group(groups: Mapping[str, Trajectories], *, by: str = "condition",
                  max_tracks: int = MAX_ROSE_TRACKS, note: str = "") -> Figure:
    """One rose plot (:func:`~h4tracks.core.analysis.figures.rose_plot`'s drawing) per group,
    all on the same scale so the spread of the groups compares at a glance.

    Parameters
    ----------
    groups
        ``{group: pooled trajectories}`` (see
        :func:`~h4tracks.core.analysis.trajectories.concat_trajectories`), drawn in this
        order.
    by
        The grouping column's name (the figure's title).
    max_tracks
        A panel with more tracks draws a fixed random subset of this many (its title says
        so); the shared scale still comes from all of them.
    note
        Appended to the figure's title (e.g. movies left out).
    """
    names = list(groups)
    n = max(len(names), 1)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(3.2 * cols, 3.2 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    reach = [np.nanmax(np.abs(np.r_[t.dx, t.dy])) for t in groups.values() if t.dx.size]
    limit = float(max(reach)) * 1.05 if reach and max(reach) > 0 else 1.0
    for ax, name in zip(axes, names, strict=False):
        traj = groups[name]
        shown = sample_tracks(traj, max_tracks)
        draw_rose(ax, shown, limit=limit)
        ax.set_gid(f"rose-{name}")
        total = traj.n_tracks
        ax.set_title(f"{name}: {shown.n_tracks} of {total} tracks" if shown.n_tracks < total
                     else f"{name}: {total} tracks", fontsize=10)
    for ax in axes[len(names):]:
        ax.set_axis_off()  # the empty cells of the last row
    fig.suptitle(f"Trajectories from the origin by {by}{note}")
    return fig


def msd_by_group(groups: Mapping[str, PooledMSD], *, by: str = "condition",
                 note: str = "") -> Figure:
    """Log-log MSD of each group: the mean over its tracks with a ± SEM band, one curve per
    group, and a slope-1 (diffusive) guide.

    Parameters
    ----------
    groups
        ``{group: pooled MSD}`` (:func:`~h4tracks.core.analysis.msd.pool_msd`).
    by
        The grouping column's name (the title).
    note
        Appended to the title.
    """
    fig = Figure(figsize=(5.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_yscale("log")
    length, time = "px", "frame"
    first: tuple[float, float] | None = None
    for i, (name, p) in enumerate(groups.items()):
        length, time = p.length_unit, p.time_unit
        good = np.isfinite(p.mean) & (p.mean > 0) & (p.lags > 0)
        if not good.any():
            continue
        lags, mean, sem = p.lags[good], p.mean[good], p.sem[good]
        color = f"C{i % 10}"
        (line,) = ax.plot(lags, mean, "o-", color=color, ms=3, lw=1.5,
                          label=f"{name} ({int(p.n_tracks[good][0])} tracks)")
        line.set_gid(f"msd-{name}")
        low = mean - sem
        # the band's lower edge cannot go to 0 or below on a log axis: cut there
        band_ok = np.isfinite(sem) & (low > 0)
        ax.fill_between(lags, np.where(band_ok, low, np.nan), np.where(band_ok, mean + sem,
                        np.nan), color=color, alpha=0.2, lw=0)
        if first is None:
            first = (float(lags[0]), float(mean[0]))
    if first is not None:
        # the guide spans the lags some curve has, not lags no track reached
        lags_all = np.unique(np.concatenate(
            [p.lags[(p.lags > 0) & np.isfinite(p.mean)] for p in groups.values()]))
        ax.plot(lags_all, first[1] * lags_all / first[0], ":", color="k", lw=0.8,
                label="slope 1")
        ax.legend(frameon=False, fontsize=8)
    ax.set_xlabel(f"lag [{time}]")
    ax.set_ylabel(f"MSD [{length}²]")
    ax.set_title(f"MSD by {by} (mean ± SEM over tracks){note}", fontsize=10)
    return fig
