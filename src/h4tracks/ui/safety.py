"""Nothing lost on the way out: the close guard and the recovery copy of the main widget.

A mixin of :class:`h4tracks.ui.main_widget.H4TracksWidget`, split off along its seam: every
way of leaving napari with unsaved work (window close button, File › Close Window / Ctrl+W,
File › Exit / Ctrl+Q, the dock's close button, loading another project) asks Save / Discard /
Cancel, and unsaved work of a saved project is copied aside every :data:`RECOVERY_SECONDS`
(:mod:`h4tracks.core.recovery`) and offered when the project is opened again after a crash.
It uses the widget's ``project``, ``session``, ``history``, ``busy``, ``notify``,
``apply_action`` and save helpers.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QDockWidget, QMessageBox, QPushButton

from h4tracks.core.project import Project
from h4tracks.core.recovery import (
    discard_recovery,
    read_recovery,
    recovery_path,
    write_recovery,
)
from h4tracks.core.store import save_project
from h4tracks.errors import H4TracksError

#: how often unsaved work of a saved project is copied aside (see write_recovery_copy)
RECOVERY_SECONDS = 60


class SafetyMixin:
    """Close guard and recovery copy (see the module docstring)."""

    def _init_safety(self) -> None:
        self._discarded = False
        self._close_guarded: set[int] = set()
        self._recovery_state: tuple | None = None
        # the recovery copy: unsaved curation survives a crash or kill of napari
        self._recovery_timer = QTimer(self)  # type: ignore[arg-type]
        self._recovery_timer.setInterval(int(RECOVERY_SECONDS * 1000))
        self._recovery_timer.timeout.connect(self.write_recovery_copy)
        self._recovery_timer.start()

    # ------------------------------------------------------------------ closing
    def has_unsaved_work(self) -> bool:
        """Whether closing now would lose work: a saved project with changes, or a project
        never saved that holds segmentation or tracks (a bare imported image is not work)."""
        project = self.project
        if project is None or self._discarded:
            return False
        if project.path is None:
            return project.labels is not None or project.graph.n_edges > 0
        return project.has_unsaved_changes

    def confirm_discard(self) -> bool:
        """Before unsaved work is lost: ask, and save if asked to. True = go on closing."""
        if not self.has_unsaved_work():
            return True
        project = self.project
        assert project is not None
        choice = self.ask_unsaved(project)
        if choice == "discard":
            self._drop_recovery(project)  # the user chose to lose these changes
            # one closing may send several close events (File › Exit closes, then quits):
            # ask once; the answer holds until control returns to the event loop
            self._discarded = True
            QTimer.singleShot(0, lambda: setattr(self, "_discarded", False))
            return True
        if choice != "save":
            return False
        path = project.path or self._ask_save_path()
        if path is None:
            return False
        try:  # on the UI thread on purpose: the window must not close before the data is safe
            self._take_metadata_edits(project)
            save_project(project, path, overwrite=True)
        except (H4TracksError, OSError) as e:
            self.notify(f"not saved: {e}", error=True)
            return False
        self._drop_recovery(project)
        return True

    def _ask_unsaved(self, project: Project) -> str:
        name = project.path.name if project.path is not None else "the new project"
        box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved changes",
                          f"Save the changes to {name} before closing?",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(
            QMessageBox.StandardButton(answer), "cancel")

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._guard_exits()

    def _guard_exits(self) -> None:
        """Ask before unsaved work is lost, whichever way napari is left.

        The window's close button, File › Close Window (Ctrl+W) and File › Exit (Ctrl+Q) all
        end in a close event of the top-level window this widget is docked in (found with
        Qt's ``QWidget.window()``, no private napari attribute); the dock's own close button
        is guarded by a filter on that button.
        """

        window = self.window()
        if window is not self and id(window) not in self._close_guarded:
            self._close_guarded.add(id(window))
            window.installEventFilter(self)
        dock = self.parent()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parent()
        if dock is not None:
            for btn in dock.findChildren(QPushButton, "QTitleBarCloseButton"):
                if id(btn) not in self._close_guarded:
                    self._close_guarded.add(id(btn))
                    btn.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        closing = kind == QEvent.Type.Close or (
            kind == QEvent.Type.MouseButtonRelease and isinstance(obj, QPushButton))
        # a hidden window is a script's (tests, batch use): nobody to ask
        visible = obj.isVisible() if hasattr(obj, "isVisible") else True
        if closing and (visible or event.spontaneous()) and not self.confirm_discard():
            event.ignore()
            return True
        return super().eventFilter(obj, event)


    # ------------------------------------------------------------------ recovery copy
    def write_recovery_copy(self) -> Path | None:
        """Keep unsaved work of a saved project in a recovery copy beside it (called every
        :data:`RECOVERY_SECONDS` by a timer); returns the copy written, if any.

        A crash or kill of napari then loses at most that long of curation: opening the
        project again offers the copy. Nothing is written while a job runs (it may be
        saving) or when nothing changed since the last copy.
        """
        project = self.project
        if project is None or project.path is None or self.busy or self.session is None:
            return None
        undo = self.history.undo_stack
        state = (id(self.session), len(undo), id(undo[-1]) if undo else None)
        if state == self._recovery_state:
            return None
        dest = recovery_path(project.path)
        try:
            if not project.has_unsaved_changes:
                discard_recovery(dest)
                out = None
            else:
                out = write_recovery(project, dest)
        except (H4TracksError, OSError) as e:
            self.notify(f"could not write the recovery copy: {e}", error=True)
            return None
        self._recovery_state = state
        return out

    def _drop_recovery(self, project: Project | None) -> None:
        if project is not None and project.path is not None:
            # a foreign folder under that name is left alone
            with contextlib.suppress(H4TracksError, OSError):
                discard_recovery(recovery_path(project.path))
        self._recovery_state = None

    def _offer_recovery(self, project: Project) -> bool:
        """After opening ``project``: offer unsaved work a crash left in its recovery copy
        (applied as one undoable step). Returns whether it was restored."""
        if project.path is None:
            return False
        dest = recovery_path(project.path)
        try:
            rec = read_recovery(dest)
        except H4TracksError as e:
            self.notify(str(e), error=True)
            return False
        if rec is None:
            return False
        if not rec.matches(project):
            self._drop_recovery(project)
            self.notify("an old recovery copy was removed: the project was saved after it")
            return False
        if not self.ask_restore(project, rec.written):
            self._drop_recovery(project)
            return False
        ok = self.apply_action(rec.step(project))
        if ok:
            self.notify(f"restored the unsaved changes of {rec.written:%Y-%m-%d %H:%M} "
                        "(Undo takes them back; Save keeps them)")
        return ok

    def _ask_restore(self, project: Project, written: Any) -> bool:
        box = QMessageBox(
            QMessageBox.Icon.Question, "Restore unsaved changes",
            f"napari closed without saving {project.path.name if project.path else ''}. "
            f"Restore the changes kept at {written:%Y-%m-%d %H:%M}?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.Yes)
        return QMessageBox.StandardButton(box.exec()) == QMessageBox.StandardButton.Yes

