"""Shape of every detection from its mask (``skimage.measure.regionprops_table``).

One ``regionprops_table`` call per frame measures all cells of that frame; the rows are then
matched to the graph's nodes by ``(t, label)``. Per-track means and SDs are computed by
:func:`~h4tracks.core.analysis.metrics.track_metrics` (``shape=`` argument).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from skimage.measure import regionprops_table

from h4tracks.core.analysis.table import Table
from h4tracks.core.analysis.units import units_for
from h4tracks.core.graph import TrackGraph
from h4tracks.errors import InputError

__all__ = ["SHAPE_MEASURES", "shape_metrics"]

#: regionprops property -> (output name, power of the length unit: 2 area, 1 length, 0 none)
SHAPE_MEASURES: dict[str, tuple[str, int]] = {
    "area": ("area", 2),
    "perimeter": ("perimeter", 1),
    "eccentricity": ("eccentricity", 0),
    "solidity": ("solidity", 0),
    "axis_major_length": ("major_axis_length", 1),
    "axis_minor_length": ("minor_axis_length", 1),
}


def _read_frame(labels: Any, t: int) -> np.ndarray:
    frame = labels.frame(t) if hasattr(labels, "frame") else labels[t]
    return np.asarray(frame)


def _measure(frame: np.ndarray) -> dict[str, np.ndarray]:
    if frame.ndim != 2:
        raise InputError(f"label frames must be 2D, got shape {frame.shape}")
    if not np.issubdtype(frame.dtype, np.integer):
        raise InputError(f"labels must be integers, got {frame.dtype}")
    return regionprops_table(frame, properties=("label", *SHAPE_MEASURES))


def shape_metrics(
    source: Any,
    graph: TrackGraph | None = None,
    *,
    frames: Iterable[int] | None = None,
    cores: int = 1,
    pixel_size: float | None = None,
) -> Table:
    """Area, perimeter, eccentricity, solidity and axis lengths of every detection.

    Parameters
    ----------
    source
        A :class:`~h4tracks.core.project.Project` (its labels, graph and pixel size are used)
        or a (T, Y, X) label movie (numpy/zarr/dask array or ``LabelMovie``).
    graph
        The graph whose nodes are measured; required with a label movie, overrides the
        project's graph otherwise.
    frames
        Frames to measure (default: every frame with a node).
    cores
        Threads measuring frames in parallel (reading lazy frames overlaps with measuring).
    pixel_size
        µm per pixel; defaults to the project's, else the results are in px.

    Returns
    -------
    Table
        One row per graph node of the measured frames, sorted by (t, label): ``t``,
        ``label``, ``track_id``, ``area [L²]``, ``perimeter [L]``, ``eccentricity``,
        ``solidity``, ``major_axis_length [L]``, ``minor_axis_length [L]`` with L = µm or
        px. Nodes without a mask in the labels get NaN.
    """
    if hasattr(source, "graph") and hasattr(source, "metadata"):
        labels = source.labels
        if labels is None:
            raise InputError("the project has no labels to measure shapes from")
        graph = source.graph if graph is None else graph
        if pixel_size is None:
            pixel_size = source.metadata.pixel_size
    else:
        labels = source
        if graph is None:
            raise InputError("shape_metrics needs the track graph when given a label movie")
    if not isinstance(graph, TrackGraph):
        raise InputError(f"expected a TrackGraph, got {type(graph).__name__}")
    shape = tuple(getattr(labels, "shape", ()))
    if len(shape) != 3:
        raise InputError(f"labels must be a (T, Y, X) movie, got shape {shape}")
    u = units_for(pixel_size)

    nodes = graph.node_table()  # sorted by (t, label)
    if frames is None:
        todo = np.unique(nodes["t"]).tolist()
    else:
        todo = sorted({int(f) for f in frames})
    if any(not 0 <= f < shape[0] for f in todo):
        raise InputError(f"frames must lie in 0..{shape[0] - 1}")
    sel = np.isin(nodes["t"], todo)
    t, lab = nodes["t"][sel], nodes["label"][sel]

    def work(f: int) -> dict[str, np.ndarray]:
        return _measure(_read_frame(labels, f))

    cores = max(1, int(cores))
    if cores == 1 or len(todo) < 2:
        results = [work(f) for f in todo]
    else:
        with ThreadPoolExecutor(cores) as pool:
            results = list(pool.map(work, todo))

    # stack the per-frame results and match them to the nodes by the packed (t, label) code
    m_t = np.concatenate(
        [np.full(r["label"].size, f, np.int64) for f, r in zip(todo, results, strict=True)]
        or [np.empty(0, np.int64)]
    )
    m_lab = np.concatenate([r["label"] for r in results] or [np.empty(0, np.int64)])
    m_code = (m_t << 32) | m_lab.astype(np.int64)  # frame-major, label-ascending: sorted
    code = (t << 32) | lab
    pos = np.minimum(np.searchsorted(m_code, code), max(m_code.size - 1, 0))
    hit = m_code[pos] == code if m_code.size else np.zeros(code.size, bool)

    out = Table(
        {"t": t, "label": lab, "track_id": nodes["track_id"][sel]},
        meta={"length_unit": u.length},
    )
    for prop, (name, power) in SHAPE_MEASURES.items():
        raw = np.concatenate([r[prop] for r in results] or [np.empty(0)]).astype(np.float64)
        col = np.full(code.size, np.nan)
        col[hit] = raw[pos[hit]] * u.pixel_size**power
        unit = {0: None, 1: u.length, 2: u.area}[power]
        out[f"{name} [{unit}]" if unit else name] = col
    return out
