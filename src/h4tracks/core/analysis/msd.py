"""Mean squared displacement: the per-track MSD matrix, its log-log slope, the MSD curves of
all tracks (:func:`msd_curves`, plotted by :func:`figures.msd_plot`), and the mean ± SEM over
the tracks of several movies (:func:`pool_msd`, plotted by
:func:`group_figures.msd_by_group`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from h4tracks.core.analysis._tracks import (
    _check_graph,
    _div,
    _sample_sd,
    _sorted_tracks,
    _Tracks,
)
from h4tracks.core.analysis.units import units_for
from h4tracks.core.graph import TrackGraph
from h4tracks.errors import InputError

__all__ = ["DEFAULT_MAX_LAG", "MSDCurves", "PooledMSD", "msd_curves", "pool_msd"]

DEFAULT_MAX_LAG = 10


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


# ---------------------------------------------------------------------------------- pooled
@dataclass(frozen=True)
class PooledMSD:
    """Mean ± SEM of the per-track MSD over the tracks of several movies (one condition).

    Attributes
    ----------
    lags
        (L,) lag times in ``time_unit``: the union of the movies' lags.
    mean
        (L,) mean over tracks of the per-track MSD (each track weighs the same, as in
        :attr:`MSDCurves.ensemble`); NaN where no track has a value.
    sem
        (L,) standard error of that mean (sample SD / sqrt(n)); NaN with fewer than 2 tracks.
    n_tracks
        (L,) tracks with a value at each lag.
    """

    lags: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    n_tracks: np.ndarray
    length_unit: str
    time_unit: str


def pool_msd(curves: Sequence[MSDCurves]) -> PooledMSD:
    """Pool the MSD curves of several movies: mean ± SEM over all their tracks at each lag.

    Movies with different frame intervals have different lag times; they are kept apart
    (pooled at equal lag times only, compared to 1e-9), never matched by frame lag.

    Raises
    ------
    InputError
        If the curves have different units (µm and px, or min and frames).
    """
    units = {(c.length_unit, c.time_unit) for c in curves}
    if len(units) > 1:
        raise InputError("MSD curves in different units cannot be pooled: "
                         + ", ".join(f"{a}²/{b}" for a, b in sorted(units)))
    length, time = next(iter(units)) if units else ("px", "frame")
    if not curves:
        e = np.empty(0)
        return PooledMSD(e, e, e, np.empty(0, np.int64), length, time)
    lags = np.concatenate([np.broadcast_to(c.lags, c.msd.shape).ravel() for c in curves])
    values = np.concatenate([c.msd.ravel() for c in curves])
    # rounded, so that 3 × 0.1 min and 0.3 min are one lag time
    unique, inv = np.unique(np.round(np.concatenate([lags, *(c.lags for c in curves)]), 9),
                            return_inverse=True)
    inv = inv[: lags.size]
    ok = np.isfinite(values)
    n = np.bincount(inv[ok], minlength=unique.size)
    mean = _div(np.bincount(inv[ok], values[ok], minlength=unique.size), n)
    dev = values[ok] - mean[inv[ok]]
    sd = _sample_sd(np.bincount(inv[ok], dev * dev, minlength=unique.size), n)
    sem = _div(sd, np.sqrt(n))
    return PooledMSD(unique, mean, sem, n.astype(np.int64), length, time)
