"""Track list of the tracking tab: show only the listed tracks, show all, delete tracks.

:class:`TrackListMixin` is a mixin of :class:`~h4tracks.ui.tracking_tab.TrackingTab`: it
builds the tab's "Tracks" box (the track-id field, Show / Show all, Delete listed /
displayed, the line saying what is shown). Showing is a filter of the
:class:`~h4tracks.ui.tracks_view.TracksView` (the project is unchanged); deleting unlinks the
tracks as one undoable action, after a confirmation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
)

from h4tracks.core.actions import ActionGroup
from h4tracks.core.tracking import delete_tracks
from h4tracks.errors import H4TracksError
from h4tracks.ui.tracks_view import parse_track_ids

if TYPE_CHECKING:
    from collections.abc import Callable

    from h4tracks.ui.main_widget import H4TracksWidget
    from h4tracks.ui.tracks_view import TracksView


class TrackListMixin:
    """Track filter and track deletion of the tracking tab (a mixin of its QWidget).

    Uses the tab's ``main``, ``view``, ``confirm`` and ``_labels_project``.
    """

    main: H4TracksWidget
    #: keeps the Tracks layer equal to the project's graph
    view: TracksView
    #: asks a yes/no question (replaced in tests); returns whether the answer is yes
    confirm: Callable[[str, str], bool]

    def _build_tracks_box(self) -> QGroupBox:
        """The "Tracks" box: the track-id field, show and delete buttons, what is shown."""
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("track ids, e.g. 3, 7, 12-15")
        self.filter_edit.setToolTip("Track numbers as shown in the Tracks layer, separated by "
                                    "commas; A-B is a range")
        self.show_btn = QPushButton("Show")
        self.show_btn.setToolTip("Show only these tracks in the Tracks layer (the project is "
                                 "not changed)")
        self.show_all_btn = QPushButton("Show all")
        self.show_all_btn.setToolTip("Show every track again")
        self.delete_listed_btn = QPushButton("Delete listed")
        self.delete_listed_btn.setToolTip("Remove all links of the tracks entered above (cells "
                                          "stay; undoable)")
        self.delete_displayed_btn = QPushButton("Delete displayed")
        self.delete_displayed_btn.setToolTip("Remove all links of the tracks the Tracks layer "
                                             "shows (cells stay; undoable)")
        self.filter_info = QLabel("showing all tracks")
        filter_box = QGroupBox("Tracks")
        fgrid = QGridLayout(filter_box)
        fgrid.addWidget(self.filter_edit, 0, 0, 1, 2)
        fgrid.addWidget(self.show_btn, 1, 0)
        fgrid.addWidget(self.show_all_btn, 1, 1)
        fgrid.addWidget(self.delete_listed_btn, 2, 0)
        fgrid.addWidget(self.delete_displayed_btn, 2, 1)
        fgrid.addWidget(self.filter_info, 3, 0, 1, 2)
        return filter_box

    # ------------------------------------------------------------------ filter / delete
    def _update_filter_info(self) -> None:
        if self.view.filter is None:
            self.filter_info.setText("showing all tracks")
        else:
            n = len(self.view.displayed_track_ids())
            self.filter_info.setText(f"showing {n} of the {len(self.view.filter)} listed "
                                     "track(s)")

    def _listed_ids(self) -> list[int] | None:
        try:
            return parse_track_ids(self.filter_edit.text())
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return None

    def show_listed(self) -> bool:
        """Show only the tracks entered in the filter field (a view; the graph is unchanged)."""
        ids = self._listed_ids()
        if ids is None or self.main.project is None:
            return False
        known = set(self.main.project.graph.track_ids().tolist())
        if not known.intersection(ids):
            self.main.notify("none of the listed tracks exists", error=True)
            return False
        self.view.set_filter(ids)
        self._update_filter_info()
        return True

    def show_all(self) -> None:
        """Show every track again."""
        self.view.set_filter(None)
        self._update_filter_info()

    def delete_listed(self) -> bool:
        """Delete (unlink) the tracks entered in the filter field, after confirmation."""
        ids = self._listed_ids()
        return ids is not None and self._delete(ids)

    def delete_displayed(self) -> bool:
        """Delete (unlink) the tracks the Tracks layer shows, after confirmation."""
        return self._delete(self.view.displayed_track_ids())

    def _delete(self, ids: list[int]) -> bool:
        project = self._labels_project()
        if project is None:
            return False
        try:
            action = delete_tracks(project, ids)
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return False
        shown = ", ".join(map(str, ids[:10])) + (" …" if len(ids) > 10 else "")
        n_links = len(action) if isinstance(action, ActionGroup) else 1
        if not self.confirm("Delete tracks", f"Remove the {n_links} link(s) of {len(ids)} "
                            f"track(s) ({shown})? The cells stay; Undo restores the links."):
            return False
        return self.main.apply_action(action)

    def _ask(self, title: str, text: str) -> bool:
        return QMessageBox.question(self, title, text) == QMessageBox.StandardButton.Yes
