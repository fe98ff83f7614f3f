"""Helpers shared by the metric modules: the graph's nodes sorted into one contiguous block
per track (:class:`_Tracks`), the graph check, and NaN-safe division and sample SD."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from h4tracks.core.analysis.units import Units
from h4tracks.core.graph import TrackGraph
from h4tracks.errors import InputError


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
