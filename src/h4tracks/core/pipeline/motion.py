"""The motion of each movie's tracks, kept for the run's pooled figures: the trajectories
from the origin (rose plot) and the per-track MSD curves of every movie, pooled by condition.

A worker writes ``movies/NAME/motion.npz`` in the analyze step (:func:`write_motion`, beside
the per-track metrics and under the same stamp), so the driver never reopens a project: it
reads the small files of the movies of a group and pools them (:func:`pool_groups`). The
numbers are those of :func:`~h4tracks.core.analysis.msd_curves` and
:func:`~h4tracks.core.analysis.trajectories.origin_trajectories` on each project, in the
units of its metadata.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from h4tracks.core.analysis.msd import DEFAULT_MAX_LAG, MSDCurves, PooledMSD, msd_curves, pool_msd
from h4tracks.core.analysis.trajectories import (
    Trajectories,
    concat_trajectories,
    origin_trajectories,
)
from h4tracks.core.outputs import atomic_file

__all__ = ["MOTION_FILE", "GroupMotion", "common_units", "pool_groups", "read_motion",
           "write_motion"]

logger = logging.getLogger(__name__)

#: the file name in each movie's results folder
MOTION_FILE = "motion.npz"
#: the (length, time) units of a movie without calibration
UNCALIBRATED = ("px", "frame")


def write_motion(project: Any, path: Path, *, max_lag: int = DEFAULT_MAX_LAG) -> Path:
    """Write a project's trajectories from the origin and per-track MSD curves (atomic).

    ``max_lag`` is the one :func:`~h4tracks.core.analysis.project_track_metrics` uses for
    the MSD slope, so the curves and the table's slope come from the same pairs.
    """
    md = project.metadata
    graph = project.graph
    traj = origin_trajectories(graph, pixel_size=md.pixel_size)
    curves = msd_curves(graph, pixel_size=md.pixel_size, frame_interval=md.frame_interval,
                        time_unit=md.time_unit, max_lag=max_lag)
    with atomic_file(path, "wb") as fh:
        np.savez(fh, track_ids=traj.track_ids, dx=traj.dx, dy=traj.dy,
                 msd_track_ids=curves.track_ids, lags=curves.lags, msd=curves.msd,
                 counts=curves.counts, ensemble=curves.ensemble,
                 length_unit=np.array(curves.length_unit), time_unit=np.array(curves.time_unit))
    return path


def read_motion(path: Path) -> tuple[Trajectories, MSDCurves]:
    """The trajectories and MSD curves :func:`write_motion` wrote."""
    with np.load(path, allow_pickle=False) as d:
        length, time = str(d["length_unit"]), str(d["time_unit"])
        traj = Trajectories(d["track_ids"], d["dx"], d["dy"], length)
        curves = MSDCurves(track_ids=d["msd_track_ids"], lags=d["lags"], msd=d["msd"],
                           counts=d["counts"], ensemble=d["ensemble"], length_unit=length,
                           time_unit=time)
    return traj, curves


@dataclass
class GroupMotion:
    """One group's pooled motion: its movies' trajectories and MSD curves taken together."""

    trajectories: Trajectories
    msd: PooledMSD
    movies: list[str] = field(default_factory=list)


def _units(path: Path) -> tuple[str, str]:
    """The (length, time) units of a motion file (reads only those two small entries)."""
    with np.load(path, allow_pickle=False) as d:
        return str(d["length_unit"]), str(d["time_unit"])


def common_units(units: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """The (length, time) units the pooled figures are drawn in: those most movies have.

    Ties go to the more calibrated units (µm before px, a time unit before frames), then to
    the units that come first in ``units``. None when ``units`` is empty.
    """
    counts = Counter(units)

    def rank(pair: tuple[str, str]) -> tuple[int, int, int]:
        calibrated = int(pair[0] != UNCALIBRATED[0]) + int(pair[1] != UNCALIBRATED[1])
        return (-counts[pair], -calibrated, units.index(pair))

    return min(counts, key=rank) if counts else None


def pool_groups(files: Mapping[str, Sequence[tuple[str, Path]]]
                ) -> tuple[dict[str, GroupMotion], list[str]]:
    """Pool the motion files of each group.

    Parameters
    ----------
    files
        ``{group: [(movie, motion file), ...]}``; a group keeps this order.

    Returns
    -------
    (groups, left_out)
        The pooled motion per group (groups without a movie left are absent), and the
        movies left out (in the order of ``files``) because their units differ from the
        units most of the run's movies share (:func:`common_units`): µm next to px, or
        minutes next to frames cannot be averaged, and the figures draw every group on one
        scale; their movies need a calibration. A warning names them.
    """
    # the units of every movie of every group first: one movie (e.g. the first in sorted
    # order, uncalibrated) must not decide the units for all the others
    units = {(group, movie): _units(path) for group, movies in files.items()
             for movie, path in movies}
    chosen = common_units(list(units.values()))
    out: dict[str, GroupMotion] = {}
    left_out: list[str] = []
    for group, movies in files.items():
        trajs: list[Trajectories] = []
        curves: list[MSDCurves] = []
        names: list[str] = []
        for movie, path in movies:
            if units[group, movie] != chosen:
                left_out.append(movie)
                continue
            traj, c = read_motion(path)
            trajs.append(traj)
            curves.append(c)
            names.append(movie)
        if names:
            out[group] = GroupMotion(concat_trajectories(trajs), pool_msd(curves), names)
    if left_out and chosen is not None:
        others = {(g, m): u for (g, m), u in units.items() if u != chosen}
        logger.warning(
            "The pooled rose and MSD figures are in %s and %s; %d movie(s) in other units "
            "are left out (calibrate them to include them): %s",
            chosen[0], chosen[1], len(left_out),
            ", ".join(f"{m} ({u[0]}, {u[1]})" for (_g, m), u in others.items()))
    return out, left_out
