"""The napari Tracks layer as a view of the project's :class:`~h4tracks.core.graph.TrackGraph`.

The graph is the truth; the layer shows what a
:class:`~h4tracks.core.analysis.tracks_display.TracksDisplay` makes of it: the rows
``(track id, t, y, x)``, the divisions, and per-row ``features`` (speed, area, mean speed,
directness, generation, …) that napari's own *color by* offers. After an edit (once per
action, never per node) only the tracks the edit touched are recomputed, and
:func:`~h4tracks.ui.tracks_patch.install` hands the patched arrays to the layer without
napari's whole-layer rebuild: an edit on 1,000 frames x 500 cells reaches the layer in tens of
milliseconds instead of ~0.6 s (``benchmarks/bench_edit_refresh.py``). :meth:`TracksView.rebuild`
is the full rebuild through napari's public setters, kept as the baseline and as the fallback
when napari's internals are not as expected. A track-id filter restricts what the layer shows
without touching the graph; it is re-applied at every refresh. The same display gives the
project's Labels layer the features of the frame shown (:mod:`h4tracks.ui.labels_features`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QTimer

from h4tracks.core.analysis.tracks_display import PER_TRACK, Splice, TracksDisplay
from h4tracks.errors import InputError
from h4tracks.ui.labels_features import LabelsFeatures
from h4tracks.ui.layers import layer_project, tracks_layer_kwargs
from h4tracks.ui.tracks_patch import can_patch, install

if TYPE_CHECKING:
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget

log = logging.getLogger(__name__)

#: the layer's thumbnail (a random sample of all points) is redrawn this long after an edit
THUMBNAIL_DELAY_MS = 400

_RANGE = re.compile(r"^(\d+)-(\d+)$")


def parse_track_ids(text: str) -> list[int]:
    """Track ids from text such as ``"3, 7, 12-15"`` (commas or spaces; ``A-B`` inclusive).

    Returns
    -------
    list of int
        Sorted unique ids.

    Raises
    ------
    InputError
        If the text is empty or a part is not an id or a range.
    """
    ids: set[int] = set()
    # "12 - 15" -> "12-15", then split at commas, semicolons and spaces
    for part in re.split(r"[,;\s]+", re.sub(r"\s*-\s*", "-", text.strip())):
        if not part:
            continue
        if part.isdigit():
            ids.add(int(part))
            continue
        m = _RANGE.match(part)
        if m is None:
            raise InputError(f"{part!r} is not a track id or a range such as 12-15")
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo:
            raise InputError(f"the range {part!r} goes backwards; write {hi}-{lo}")
        ids.update(range(lo, hi + 1))
    if not ids:
        raise InputError("enter track ids, e.g. 3, 7, 12-15")
    return sorted(ids)


class TracksView:
    """Keeps the project's napari Tracks layer equal to its graph (optionally filtered).

    Parameters
    ----------
    main
        The main widget (its ``project``, ``viewer`` and Tracks layer combo are used).
    """

    def __init__(self, main: H4TracksWidget) -> None:
        self.main = main
        #: track ids to show, or None for all tracks
        self.filter: frozenset[int] | None = None
        #: patch the layer after an edit (False: recompute the arrays and rebuild the layer
        #: whole through napari's public setters, the baseline of the benchmark)
        self.incremental = True
        #: wall time (s) of the last refresh (data + graph + features of the layer)
        self.last_refresh_seconds: float = 0.0
        #: how the last refresh reached the layer: "patch", "install", "rebuild" or ""
        self.last_refresh_kind = ""
        #: how the last patch or install coloured the rows (see ``tracks_patch.install``)
        self.last_colouring = ""
        self._display: TracksDisplay | None = None
        self._display_of: tuple[Any, ...] = ()  # (project, graph, calibration) it shows
        self._shown: tuple[Any, int] | None = None  # (layer, display version) it shows
        self._hidden_empty = False  # we hid the layer because its view is empty
        self._thumbnail = QTimer()
        self._thumbnail.setSingleShot(True)
        self._thumbnail.setInterval(THUMBNAIL_DELAY_MS)
        self._thumbnail.timeout.connect(self._update_thumbnail)
        #: the Labels layer's features (the shown frame's cells), from the same display
        self.labels_features = LabelsFeatures(main)

    # ------------------------------------------------------------------ layer lookup
    def layer(self) -> Any | None:
        """The Tracks layer showing the current project's graph, or None."""
        from napari.layers import Tracks

        project = self.main.project
        if project is None:
            return None
        chosen = self.main.tracks_combo.layer()
        if chosen is not None and layer_project(chosen) is project:
            return chosen
        for layer in self.main.viewer.layers:
            if isinstance(layer, Tracks) and layer_project(layer) is project:
                return layer
        return None

    # ------------------------------------------------------------------ view data
    def display(self, project: Project) -> tuple[TracksDisplay, Splice | None]:
        """The project's display arrays, brought up to date with its graph.

        Returns
        -------
        (display, splice)
            ``splice`` says how the rows changed since the last call, None when the arrays
            were rebuilt (another project, graph object or calibration).
        """
        md, graph = project.metadata, project.graph
        key = (project, graph, md.pixel_size, md.frame_interval, md.time_unit)
        old = self._display_of
        # the same project and graph objects (a run replaces the graph: rebuild) and units
        same = bool(old) and old[0] is project and old[1] is graph and old[2:] == key[2:]
        if self._display is not None and same:
            if self.incremental:
                return self._display, self._display.update(graph)
            self._display.rebuild(graph)  # the baseline recomputes everything
            return self._display, None
        self._display = TracksDisplay(pixel_size=md.pixel_size, frame_interval=md.frame_interval,
                                      time_unit=md.time_unit)
        self._display.rebuild(graph)
        self._display_of = key
        return self._display, None

    def view_data(self, project: Project) -> tuple[np.ndarray, dict[int, list[int]]]:
        """napari ``data`` and ``graph`` of the project's lineage with the filter applied."""
        data, parents, _ = self._view(self.display(project)[0])
        return data, parents

    def _view(self, display: TracksDisplay) -> tuple[np.ndarray, dict[int, list[int]],
                                                     dict[str, np.ndarray]]:
        if self.filter is None:
            return display.data, display.parents, display.features
        return display.subset(np.fromiter(self.filter, np.int64, len(self.filter)))

    def displayed_track_ids(self) -> list[int]:
        """Ids of the tracks the layer shows (all tracks of the graph without a filter)."""
        project = self.main.project
        if project is None:
            return []
        ids = project.graph.track_ids()
        if self.filter is not None:
            ids = ids[np.isin(ids, np.fromiter(self.filter, np.int64, len(self.filter)))]
        return [int(i) for i in ids]

    # ------------------------------------------------------------------ refresh
    def refresh(self) -> Any | None:
        """Bring the layer up to date with the graph once (creating it when the graph has
        links): patched when :attr:`incremental`, else rebuilt whole.

        Returns
        -------
        The Tracks layer, or None when there is nothing to show.
        """
        project = self.main.project
        if project is None or project.labels is None:
            return None
        t0 = time.perf_counter()
        layer = self.layer()
        if layer is None and project.graph.n_edges == 0:
            return None  # like project_layer_data: no links, no Tracks layer
        display, splice = self.display(project)
        self.labels_features.show(project, display)
        data, parents, features = self._view(display)
        if layer is None:
            layer = self._add_layer(project, data, parents, features)
            self.last_refresh_kind = "install"
        elif len(data) == 0:
            # napari's Tracks layer cannot hold zero points: hide it instead
            if layer.visible:
                layer.visible = False
                self._hidden_empty = True
        else:
            self._show(layer, display, data, parents, features, splice)
            if self._hidden_empty:
                layer.visible = True
                self._hidden_empty = False
        self._shown = (layer, display.version) if self.filter is None else None
        self.last_refresh_seconds = time.perf_counter() - t0
        log.info("tracks layer refreshed (%s, colours %s): %d points, %d divisions in %.3f s",
                 self.last_refresh_kind, self.last_colouring, len(data), len(parents),
                 self.last_refresh_seconds)
        return layer

    def _show(self, layer: Any, display: TracksDisplay, data: np.ndarray,
              parents: dict[int, list[int]], features: dict[str, np.ndarray],
              splice: Splice | None) -> None:
        if not (self.incremental and can_patch(layer)):
            self.rebuild(layer, data, parents, features)
            return
        # a splice patches what the layer shows only if it shows the version before it
        shown = self._shown[1] if self._shown is not None and self._shown[0] is layer else None
        if splice is not None and self.filter is None and splice.empty \
                and shown == display.version:
            self.last_refresh_kind = "patch"  # nothing changed
            return
        if splice is None or self.filter is not None or shown != display.version - 1:
            splice = None
        points = None if self.filter is not None else (
            display.points, display.points_id, display.points_moved or splice is None)
        self.last_colouring = install(layer, data, parents, features, per_track=PER_TRACK,
                                      splice=splice, points=points)
        self.last_refresh_kind = "patch" if splice is not None else "install"
        self._thumbnail.start()

    def rebuild(self, layer: Any, data: np.ndarray, parents: dict[int, list[int]],
                features: dict[str, np.ndarray]) -> None:
        """Show the arrays through napari's public setters (the whole-layer rebuild), keeping
        the layer's *color by*."""
        color_by = layer.color_by
        layer.data = data  # resets the features, the graph and the colouring
        layer.features = features
        layer.graph = parents
        if color_by != layer.color_by and color_by in layer.features.columns:
            layer.color_by = color_by
        self.last_refresh_kind = "rebuild"

    def _update_thumbnail(self) -> None:
        layer = self._shown[0] if self._shown is not None else self.layer()
        if layer is not None and layer in self.main.viewer.layers:
            layer.refresh(data_displayed=False, extent=False, highlight=False)

    def _add_layer(self, project: Project, data: np.ndarray, parents: dict[int, list[int]],
                   features: dict[str, np.ndarray]) -> Any:
        viewer = self.main.viewer
        active = viewer.layers.selection.active
        layer = viewer.add_tracks(data, graph=parents, features=features,
                                  **tracks_layer_kwargs(project))
        # keep the labels layer active: painting and the hotkeys bound on it go on working
        if active is not None and active in viewer.layers:
            viewer.layers.selection.active = active
        return layer

    # ------------------------------------------------------------------ filter
    def set_filter(self, track_ids: Iterable[int] | None) -> Any | None:
        """Show only ``track_ids`` (None: all tracks) and refresh the layer."""
        self.filter = None if track_ids is None else frozenset(int(i) for i in track_ids)
        return self.refresh()
