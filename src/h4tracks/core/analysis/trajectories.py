"""Trajectories moved to a common origin (each track's points minus its first point): what a
rose plot draws, for one movie (:func:`origin_trajectories`) or pooled over several
(:func:`concat_trajectories`), and a reproducible subset when there are too many to draw
(:func:`sample_tracks`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from h4tracks.core.analysis._tracks import _check_graph
from h4tracks.core.analysis.units import units_for
from h4tracks.core.graph import TrackGraph
from h4tracks.errors import InputError

__all__ = ["Trajectories", "concat_trajectories", "origin_trajectories", "sample_tracks"]


@dataclass(frozen=True)
class Trajectories:
    """Points of tracks relative to each track's first point, one block per track.

    Attributes
    ----------
    track_ids
        (N,) the track of each point; a track's points are contiguous and in time order.
    dx, dy
        (N,) displacement from the track's first point, in ``length_unit`` (y grows
        downwards, as in the image).
    length_unit
        "µm" or "px".
    """

    track_ids: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    length_unit: str

    @property
    def starts(self) -> np.ndarray:
        """(K,) index of each track's first point."""
        tid = self.track_ids
        if tid.size == 0:
            return np.empty(0, np.int64)
        return np.flatnonzero(np.r_[True, tid[1:] != tid[:-1]])

    @property
    def n_tracks(self) -> int:
        """Number of tracks."""
        return int(self.starts.size)


def origin_trajectories(
    graph: TrackGraph,
    *,
    pixel_size: float | None = None,
    track_ids: Sequence[int] | np.ndarray | None = None,
) -> Trajectories:
    """Every track (or those in ``track_ids``) moved to start at the origin.

    Parameters
    ----------
    graph
        The lineage graph.
    pixel_size
        µm per pixel; None gives pixels.
    track_ids
        Only these tracks (default: all).
    """
    graph = _check_graph(graph)
    u = units_for(pixel_size)
    nt = graph.node_table()
    keep = np.ones(nt["t"].size, bool) if track_ids is None else np.isin(
        nt["track_id"], np.asarray(track_ids, np.int64))
    order = np.lexsort((nt["t"][keep], nt["track_id"][keep]))
    tid = nt["track_id"][keep][order].astype(np.int64)
    y = nt["y"][keep][order] * u.pixel_size
    x = nt["x"][keep][order] * u.pixel_size
    traj = Trajectories(tid, x, y, u.length)
    first = traj.starts
    if tid.size:
        # each point minus its track's first point, without a loop over tracks
        idx = np.repeat(np.arange(first.size), np.diff(np.r_[first, tid.size]))
        traj = Trajectories(tid, x - x[first][idx], y - y[first][idx], u.length)
    return traj


def concat_trajectories(parts: Sequence[Trajectories]) -> Trajectories:
    """Trajectories of several movies as one set; track ids become 0..K-1 (ids of different
    movies collide, so each track gets a new one).

    Raises
    ------
    InputError
        If the parts have different length units (µm and px cannot be pooled).
    """
    units = {p.length_unit for p in parts}
    if len(units) > 1:
        raise InputError(f"trajectories in {' and '.join(sorted(units))} cannot be pooled")
    if not parts:
        return Trajectories(np.empty(0, np.int64), np.empty(0), np.empty(0), "px")
    new_ids, offset = [], 0
    for p in parts:
        starts = p.starts
        block = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, p.track_ids.size]))
        new_ids.append(block + offset)
        offset += starts.size
    return Trajectories(np.concatenate(new_ids).astype(np.int64),
                        np.concatenate([p.dx for p in parts]),
                        np.concatenate([p.dy for p in parts]), parts[0].length_unit)


def sample_tracks(traj: Trajectories, max_tracks: int, *, seed: int = 0) -> Trajectories:
    """At most ``max_tracks`` whole tracks, drawn at random with a fixed seed (the same subset
    on every run); all of them when there are no more."""
    if max_tracks < 1:
        raise InputError(f"max_tracks must be at least 1, got {max_tracks}")
    starts = traj.starts
    if starts.size <= max_tracks:
        return traj
    chosen = np.zeros(starts.size, bool)
    chosen[np.random.default_rng(seed).choice(starts.size, max_tracks, replace=False)] = True
    block = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, traj.track_ids.size]))
    keep = chosen[block]
    return Trajectories(traj.track_ids[keep], traj.dx[keep], traj.dy[keep], traj.length_unit)
