"""The project's Labels layer carries the measured features of the cells it shows.

napari shows a Labels layer's ``features`` in the status bar when the mouse is over a cell,
looked up by label value (the ``index`` column). Our label values are per-frame ids, so one
table cannot hold every frame: the layer gets the rows of the frame being shown — ``track_id``,
``speed``, ``area``, ``generation`` and the per-track metrics, the very values the Tracks layer
colours by (:meth:`~h4tracks.core.analysis.tracks_display.TracksDisplay.frame_features`, no
formula of its own) — and they are replaced when the frame changes and after every edit, undo
and redo (one frame's rows: about a millisecond, whatever the length of the movie).
"""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from h4tracks.core.analysis.tracks_display import TracksDisplay
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget


class LabelsFeatures:
    """Keeps the project's Labels layer's ``features`` equal to the shown frame's cells.

    Parameters
    ----------
    main
        The main widget (its project, viewer and project labels layer are used).

    Attributes
    ----------
    last_seconds : float
        Wall time of the last refresh that replaced the features.
    """

    def __init__(self, main: H4TracksWidget) -> None:
        self.main = main
        self.last_seconds = 0.0
        self._project: Project | None = None
        self._display: TracksDisplay | None = None
        #: (layer, display, its version, frame) the layer's features show
        self._shown: tuple[Any, Any, int, int] | None = None
        main.viewer.dims.events.current_step.connect(lambda _e: self.refresh())

    def show(self, project: Project, display: TracksDisplay) -> None:
        """Take ``display`` (just brought up to date with ``project``'s graph) and refresh."""
        self._project, self._display = project, display
        self.refresh()

    def refresh(self) -> bool:
        """Give the project's Labels layer the features of the frame shown, unless it already
        has them. Returns whether they were replaced."""
        project, display = self.main.project, self._display
        if display is None or project is None or project is not self._project:
            return False  # nothing measured for this project yet (no tracks)
        layer = self.main.project_labels_layer()
        if layer is None:
            return False
        t = self.main.current_frame()
        shown = self._shown
        if shown is not None and shown[0]() is layer and shown[1] is display \
                and shown[2:] == (display.version, t):
            return False
        t0 = time.perf_counter()
        layer.features = display.frame_features(t)
        self._shown = (weakref.ref(layer), display, display.version, t)
        self.last_seconds = time.perf_counter() - t0
        return True
