"""The napari Tracks layer as a view of the project's :class:`~h4tracks.core.graph.TrackGraph`.

The graph is the truth; the layer is rebuilt from :meth:`TrackGraph.to_napari` once per edit
(napari's Tracks layer has no incremental update: setting ``data`` rebuilds its vertex
arrays, ~0.4 s for 500k points), never per node. A track-id filter restricts what the layer
shows without touching the graph; it is re-applied at every refresh.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from h4tracks.errors import InputError
from h4tracks.ui.layers import PROJECT_KEY, layer_project, project_layer_data

if TYPE_CHECKING:
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget

log = logging.getLogger(__name__)

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
        #: wall time (s) of the last refresh (data + graph of the layer), for profiling
        self.last_refresh_seconds: float = 0.0
        self._hidden_empty = False  # we hid the layer because its view is empty

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
    def view_data(self, project: Project) -> tuple[np.ndarray, dict[int, list[int]]]:
        """napari ``data`` and ``graph`` of the project's lineage with the filter applied."""
        data, parents = project.graph.to_napari()
        if self.filter is None:
            return data, parents
        keep = np.isin(data[:, 0], np.fromiter(self.filter, np.float64, len(self.filter)))
        data = data[keep]
        shown = set(np.unique(data[:, 0]).astype(int).tolist())
        # napari refuses graph entries naming tracks that are not in the data
        parents = {d: [p for p in ps if p in shown] for d, ps in parents.items() if d in shown}
        return data, {d: ps for d, ps in parents.items() if ps}

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
        """Rebuild the layer from the graph once (creating it when the graph has links).

        Returns
        -------
        The Tracks layer, or None when there is nothing to show.
        """
        project = self.main.project
        if project is None or project.labels is None:
            return None
        t0 = time.perf_counter()
        layer = self.layer()
        if layer is None:
            if project.graph.n_edges == 0:
                return None  # like project_layer_data: no links, no Tracks layer
            layer = self._add_layer(project)
        data, parents = self.view_data(project)
        if len(data) == 0:
            # napari's Tracks layer cannot hold zero points: hide it instead
            if layer.visible:
                layer.visible = False
                self._hidden_empty = True
        else:
            layer.data = data  # resets layer.graph; set it right after
            layer.graph = parents
            if self._hidden_empty:
                layer.visible = True
                self._hidden_empty = False
        self.last_refresh_seconds = time.perf_counter() - t0
        log.info("tracks layer refreshed: %d points, %d divisions in %.3f s",
                 len(data), len(parents), self.last_refresh_seconds)
        return layer

    def _add_layer(self, project: Project) -> Any:
        viewer = self.main.viewer
        active = viewer.layers.selection.active
        tracks = [t for t in project_layer_data(project) if t[2] == "tracks"]
        data, kwargs, _ = tracks[0]
        kwargs["metadata"] = {PROJECT_KEY: project}
        layer = viewer.add_tracks(data, **kwargs)
        # keep the labels layer active: painting and the hotkeys bound on it go on working
        if active is not None and active in viewer.layers:
            viewer.layers.selection.active = active
        return layer

    # ------------------------------------------------------------------ filter
    def set_filter(self, track_ids: Iterable[int] | None) -> Any | None:
        """Show only ``track_ids`` (None: all tracks) and refresh the layer."""
        self.filter = None if track_ids is None else frozenset(int(i) for i in track_ids)
        return self.refresh()
