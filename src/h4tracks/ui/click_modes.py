"""One way a click on the canvas reaches a tab: :class:`ClickModesMixin`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from h4tracks.errors import H4TracksError

if TYPE_CHECKING:
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget


class ClickModesMixin:
    """``handle_click`` of a tab with click modes (segmentation curation, tracking).

    The tab provides ``main``, ``mode`` (the active click mode or None), ``_labels_project()``
    (the project whose labels are shown, or None after telling the user why) and
    ``_click(project, t, y, x)`` (what the active mode does).
    """

    main: H4TracksWidget
    mode: str | None

    def _labels_project(self) -> Project | None:
        raise NotImplementedError

    def _click(self, project: Project, t: int, y: float, x: float) -> bool:
        raise NotImplementedError

    def handle_click(self, y: float, x: float, t: int | None = None) -> bool:
        """Apply the active click mode at data pixel ``(y, x)`` of frame ``t`` (default: the
        current frame). Returns whether something changed or was selected."""
        if self.mode is None:
            return False
        project = self._labels_project()
        if project is None:
            return False
        t = self.main.current_frame() if t is None else int(t)
        try:
            return self._click(project, t, y, x)
        except H4TracksError as e:  # e.g. a click on background: nothing changes
            self.main.notify(str(e), error=True)
            return False
