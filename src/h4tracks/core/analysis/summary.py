"""Filters and summaries of a :func:`~h4tracks.core.analysis.metrics.track_metrics` table:
which tracks pass the minimum length / movement filters, and statistics of every metric."""

from __future__ import annotations

import warnings

import numpy as np

from h4tracks.core.analysis._tracks import _div, _sample_sd
from h4tracks.core.analysis.table import Table
from h4tracks.errors import InputError

__all__ = ["filter_tracks", "summarize"]


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
