"""New rows in a napari Tracks layer without napari's whole-layer rebuild.

Setting ``Tracks.data`` makes napari rebuild everything from the rows, whatever changed:
a validation that loops in Python over every time value, a k-d tree of all points (~0.3 s
for 500k), a sparse track-id lookup, every row's colour, and ``graph=`` then looks each
division up in that sparse matrix (0.6 s in all for 1,000 frames x 500 cells). After an edit
:func:`install` gives the layer's track manager the arrays of a
:class:`~h4tracks.core.analysis.tracks_display.TracksDisplay` and derives the rest the cheap
way:

* the points in time order (what napari looks the track under the mouse up in) come from
  the display, the same array as before when an edit moved no cell (a filtered view sorts
  its few rows here); the track-id lookup is read straight off the rows (sorted by id);
* instead of the k-d tree, a per-frame nearest-point lookup (napari only asks for the
  track under the mouse *in the shown frame*: it discards the tree's answers from other
  frames), built on demand;
* divisions drawn from two ``searchsorted`` calls;
* colours: a per-track feature (``track_id``, ``mean_speed``, …) is mapped once per track;
  a per-cell one (``speed``, ``area``) only for the rows the edit inserted, when the
  colour scale (min, range, colormap) is unchanged.

The layer then holds what a layer built from scratch with the same ``data``, ``graph`` and
``features`` holds (vertices, connections, graph vertices, colours), which the tests check
after every kind of edit. This uses napari internals (``Tracks._manager``, napari 0.9):
:func:`can_patch` checks them, and the caller falls back to the public properties when
they are not there.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection
from functools import partial
from typing import Any

import numpy as np

from h4tracks.core.analysis.tracks_display import Splice

#: what the track manager must have for :func:`install` (napari 0.9's ``TrackManager``)
_MANAGER_ATTRS = ("_data", "_order", "_ordered_points_idx", "_points", "_kdtree",
                  "_points_lookup", "_id2idxs", "_points_id", "_track_vertices",
                  "_track_connex", "_graph", "_graph_vertices", "_graph_connex",
                  "_feature_table", "_track_end_times", "_fast_points_lookup")
#: what its feature table must have
_TABLE_ATTRS = ("_values", "_defaults", "set_defaults")
#: the layer's colours from the last install or napari recolouring, and their scale
_COLOURS: weakref.WeakKeyDictionary[Any, tuple[np.ndarray, tuple]] = (
    weakref.WeakKeyDictionary())


def can_patch(layer: Any) -> bool:
    """Whether :func:`install` knows the internals of this napari Tracks layer."""
    manager = getattr(layer, "_manager", None)
    return (manager is not None and all(hasattr(manager, a) for a in _MANAGER_ATTRS)
            and all(hasattr(manager._feature_table, a) for a in _TABLE_ATTRS)
            and hasattr(layer, "_track_colors") and hasattr(layer.events, "rebuild_tracks"))


class _FrameNearest:
    """What napari asks its k-d tree (``query(point, k)``: distances and indices of the
    points nearest to ``(t, y, x)``), answered from the points of frame ``t`` only."""

    def __init__(self, points: np.ndarray, lookup: dict[int, slice]) -> None:
        self._points, self._lookup = points, lookup

    def query(self, coords: Any, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        coords = np.asarray(coords, np.float64)
        span = self._lookup.get(round(float(coords[0])))
        none = (np.full(k, np.inf), np.full(k, self._points.shape[0]))  # napari drops these
        if span is None:
            return none
        dist = np.linalg.norm(self._points[span] - coords, axis=1)
        order = np.argsort(dist, kind="stable")[:k]
        d, i = np.full(k, np.inf), np.full(k, self._points.shape[0])
        d[:order.size], i[:order.size] = dist[order], order + span.start
        return d, i


def _colormap(layer: Any, color_by: str) -> tuple[Any, bool]:
    """The colormap napari colours ``color_by`` with, and whether it normalises first."""
    from napari.utils.colormaps import AVAILABLE_COLORMAPS

    if color_by in layer.colormaps_dict:
        return layer.colormaps_dict[color_by], False
    return AVAILABLE_COLORMAPS[layer.colormap], True


def _scale(layer: Any, values: np.ndarray) -> tuple[Any, Callable[[np.ndarray], np.ndarray]]:
    """The colour scale napari maps ``values`` of ``layer.color_by`` with (a comparable
    key), and the mapping itself, exactly as ``Tracks._recolor_tracks`` computes it."""
    cmap, normalise = _colormap(layer, layer.color_by)
    lo = den = None
    if normalise:
        # napari's expression, to the bit: (p - min(p)) / max(1e-10, ptp(p))
        lo, den = np.min(values), np.max([1e-10, np.ptp(values)])

    def mapped(v: np.ndarray) -> np.ndarray:
        return np.asarray(cmap.map((v - lo) / den if normalise else v))

    return (layer.color_by, id(cmap), normalise, lo, den), mapped


def _remember_colours(layer: Any, _event: Any = None) -> None:
    """After napari recoloured the layer itself (its *color by* or colormap changed), note
    the scale, so the next edit patches those colours instead of mapping every row."""
    values = layer.features.get(layer.color_by)
    if values is not None and layer.track_colors is not None:
        _COLOURS[layer] = (layer.track_colors, _scale(layer, values.to_numpy())[0])


def _colours(layer: Any, values: np.ndarray, connex: np.ndarray, per_track: bool,
             splice: Splice | None) -> tuple[np.ndarray, str]:
    """Row colours exactly as napari's ``Tracks._recolor_tracks`` computes them, mapping
    only what is needed. Returns the colours and how they were made ("per track",
    "spliced" or "all rows")."""
    scale, mapped = _scale(layer, values)
    old = _COLOURS.get(layer)
    if per_track:  # one value per track: map each track once
        starts = np.r_[0, np.flatnonzero(~connex[:-1]) + 1]
        counts = np.diff(np.r_[starts, connex.size])
        colours, how = np.repeat(mapped(values[starts]), counts, axis=0), "per track"
    elif (splice is not None and old is not None and old[0] is layer._track_colors
            and old[1] == scale and len(old[0]) == splice.n_old):
        colours, how = splice.apply(old[0], mapped(values[splice.inserted])), "spliced"
    else:
        colours, how = mapped(values), "all rows"
    _COLOURS[layer] = (colours, scale)
    return colours, how


def _graph_vertices(data: np.ndarray,
                    parents: dict[int, list[int]]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """napari's ``build_graph`` without a sparse lookup per division: each daughter's first
    point joined to its mother's last point, in the order of ``parents``."""
    pairs = [(d, p) for d, ps in parents.items() for p in ps]
    if not pairs:
        return None, None
    daughter, mother = np.asarray(pairs, np.float64).T
    first = np.searchsorted(data[:, 0], daughter, "left")
    last = np.searchsorted(data[:, 0], mother, "right") - 1
    vertices = np.empty((2 * len(pairs), data.shape[1] - 1))
    vertices[0::2], vertices[1::2] = data[first, 1:], data[last, 1:]
    return vertices, np.tile([True, False], len(pairs))


def install(layer: Any, data: np.ndarray, parents: dict[int, list[int]],
            features: dict[str, np.ndarray], *, per_track: Collection[str] = (),
            splice: Splice | None = None,
            points: tuple[np.ndarray, np.ndarray, bool] | None = None) -> str:
    """Make a Tracks layer show ``data`` / ``parents`` / ``features`` (see module docstring).

    Parameters
    ----------
    layer
        A napari Tracks layer for which :func:`can_patch` is true.
    data
        (N, 4) rows ``(track_id, t, y, x)``, sorted by (track id, t); N > 0.
    parents
        ``{daughter track: [mother track]}`` naming shown tracks only.
    features
        One column per feature, N values each.
    per_track
        Features constant over the rows of each track (their colours are mapped per track).
    splice
        How ``data`` was made from the rows the layer shows now, if it was; lets the colours
        of a per-cell feature be patched too.
    points
        The rows in time order, ``(t, y, x)`` and track ids, and whether they moved since
        the layer got them (``TracksDisplay.points`` / ``points_id`` / ``points_moved``);
        without them they are sorted here.

    Returns
    -------
    str
        How the colours were made: "per track" (mapped once per track), "spliced" (only the
        new rows mapped) or "all rows".
    """
    import pandas as pd
    from scipy.sparse import csr_matrix

    m = layer._manager
    n = data.shape[0]
    columns_same = list(features) == list(m._feature_table.values.columns)
    tid = data[:, 0]
    m._data, m._order = data, np.arange(n)
    moved = points is None or points[2] or m._points is not points[0]
    if points is None:  # napari's way, with a stable radix sort of the integer frames
        time = np.round(data[:, 1]).astype(np.uint)
        order = np.argsort(time.astype(np.uint16) if time.max() < 2**16 else time,
                           kind="stable")
        m._ordered_points_idx, m._points, m._points_id = order, data[order, 1:], tid[order]
    else:
        # napari reads the time order of the rows only in its data setter, which sets it
        # first: the display's own time order (by frame, then label) serves instead
        m._ordered_points_idx = None
        m._points, m._points_id = points[0], points[1]
    if moved:
        m._points_lookup = m._fast_points_lookup(np.round(m._points[:, 0]).astype(np.uint))
    m._kdtree = _FrameNearest(m._points, m._points_lookup)
    last_id = int(tid[-1])
    m._id2idxs = csr_matrix(
        (np.ones(n, np.int64), np.arange(n), np.searchsorted(tid, np.arange(last_id + 2))),
        shape=(last_id + 1, n))
    m._track_end_times = None
    m._track_vertices = data[:, 1:]
    connex = np.empty(n, bool)  # a row links to the next one of its track
    np.equal(tid[:-1], tid[1:], out=connex[:-1])
    connex[-1] = False
    m._track_connex = connex
    # napari's set_values would copy every column into one block (16 ms for 500k rows);
    # the columns are fresh arrays of the display, which napari only reads
    table = m._feature_table
    table._values = pd.DataFrame(features, copy=False)
    table.set_defaults(None)  # None: each column's last value, as set_values makes them
    m._graph = {int(d): [int(p) for p in ps] for d, ps in parents.items()}
    m._graph_vertices, m._graph_connex = _graph_vertices(data, m._graph)
    if layer.color_by not in features:  # as napari does when the feature disappears
        layer._color_by = "track_id"
        layer.events.color_by()
    values = np.asarray(features[layer.color_by])
    if layer not in _COLOURS:  # the first install: follow napari's own recolouring
        layer.events.color_by.connect(partial(_remember_colours, layer))
        layer.events.colormap.connect(partial(_remember_colours, layer))
    layer._track_colors, colouring = _colours(layer, values, connex,
                                              layer.color_by in per_track, splice)
    if moved:
        _update_extent(layer, data)
    if not columns_same:
        layer.events.properties()  # the color-by choices of the layer controls
    layer.events.rebuild_tracks()
    layer.events.rebuild_graph()
    layer.events.data(value=data)
    return colouring


def _update_extent(layer: Any, data: np.ndarray) -> None:
    """Clear the layer's cached extent only when the rows' bounding box changed."""
    cached = layer.__dict__.get("extent")
    if cached is None:
        return
    lo = [data[:, i].min() for i in range(1, data.shape[1])]
    hi = [data[:, i].max() for i in range(1, data.shape[1])]
    if not np.array_equal(np.asarray(cached.data), np.asarray([lo, hi])):
        layer._clear_extent()
