"""Real Qt input for end-to-end UI tests: mouse and keys on napari's canvas, menu actions,
and modal dialogs answered by clicking their buttons.

Everything goes through Qt events (``QTest``) on the vispy canvas's native widget, so napari's
own event path (vispy -> napari mouse/key callbacks -> layers and the plugin) is exercised,
not the plugin's handlers called directly. Data coordinates are mapped to canvas pixels from
the camera of a 2D view: ``screen = (world - camera.center) * camera.zoom + size / 2``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
from qtpy.QtCore import QPoint, Qt, QTimer
from qtpy.QtTest import QTest
from qtpy.QtWidgets import QApplication, QMessageBox

LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier

#: what a prompt is answered with -> the QMessageBox button clicked
ANSWERS = {
    "save": QMessageBox.StandardButton.Save,
    "discard": QMessageBox.StandardButton.Discard,
    "cancel": QMessageBox.StandardButton.Cancel,
}


class Gui:
    """A shown napari window with the h4tracks widget docked, driven by real Qt events.

    Parameters
    ----------
    viewer
        A napari viewer whose window is shown.
    widget
        The h4tracks widget docked in it.
    qtbot
        pytest-qt's bot (its ``waitUntil`` is the only waiting done here).
    """

    def __init__(self, viewer: Any, widget: Any, qtbot: Any) -> None:
        self.viewer = viewer
        self.widget = widget
        self.qtbot = qtbot
        #: texts of the h4tracks prompts answered by :meth:`answer`
        self.prompts: list[str] = []
        #: modal dialogs nobody expected (refused)
        self.unexpected: list[str] = []
        self._pending: list[QMessageBox.StandardButton] = []
        self._start_watch()

    # Qt objects are looked up each time, never kept: napari's viewer fixture fails a test
    # whose Qt viewer is still referenced when the viewer is closed
    @property
    def window(self) -> Any:
        """napari's main window (a QMainWindow)."""
        return self.viewer.window._qt_window

    @property
    def canvas(self) -> Any:
        """The vispy canvas's native Qt widget (receives the mouse and keys)."""
        return self.viewer.window._qt_viewer.canvas.native

    # ------------------------------------------------------------------ view
    def frame(self, t: int) -> None:
        """Step the viewer to frame ``t`` (what the user does with the slider)."""
        self.viewer.dims.set_current_step(0, t)

    def fit(self, center: tuple[float, float], extent: float) -> None:
        """A 2D view centred on ``center`` (data y, x) showing ``extent`` pixels."""
        size = self.canvas.size()
        self.viewer.camera.center = tuple(float(c) for c in center)
        self.viewer.camera.zoom = 0.9 * min(size.width(), size.height()) / extent

    def to_canvas(self, y: float, x: float) -> QPoint:
        """The canvas pixel showing data pixel ``(y, x)`` (scale 1, 2D view)."""
        cam = self.viewer.camera
        cy, cx = cam.center[-2:]
        size = self.canvas.size()
        return QPoint(round((x - cx) * cam.zoom + size.width() / 2),
                      round((y - cy) * cam.zoom + size.height() / 2))

    # ------------------------------------------------------------------ mouse
    def move(self, y: float, x: float) -> None:
        """Move the mouse to data pixel ``(y, x)`` and wait until napari saw it there.

        vispy drops moves less than 10 ms apart and napari throttles them, so the move is
        sent again until napari's cursor is on that pixel (during a drag a repeated move
        paints nothing new). Qt drops a move to where it believes the pointer already is,
        so a repeat alternates with the canvas pixel next to it (the same data pixel).
        """
        point = self.to_canvas(y, x)
        beside = QPoint(point.x() + 1, point.y())
        cursor = self.viewer.cursor
        tries = [0]

        def arrived() -> bool:
            if np.allclose(np.asarray(cursor.position[-2:]), (y, x), atol=0.75):
                return True
            QTest.mouseMove(self.canvas, point if tries[0] % 2 == 0 else beside)
            tries[0] += 1
            return False

        self.qtbot.waitUntil(arrived, timeout=5000)

    def click(self, y: float, x: float) -> None:
        """A left click on data pixel ``(y, x)`` of the current frame."""
        self.move(y, x)
        point = self.to_canvas(y, x)
        QTest.mousePress(self.canvas, LEFT, NO_MOD, point)
        QTest.mouseRelease(self.canvas, LEFT, NO_MOD, point)

    def drag(self, path: Sequence[tuple[float, float]], step: float = 3.0) -> None:
        """Press at the first point of ``path``, move through the others (in steps of about
        ``step`` pixels), release at the last: a brush stroke in paint mode."""
        points = _densify(path, step)
        self.move(*points[0])
        QTest.mousePress(self.canvas, LEFT, NO_MOD, self.to_canvas(*points[0]))
        for y, x in points[1:]:
            self.move(y, x)
        QTest.mouseRelease(self.canvas, LEFT, NO_MOD, self.to_canvas(*points[-1]))

    # ------------------------------------------------------------------ keys, buttons, menus
    def key(self, key: Qt.Key, modifiers: Qt.KeyboardModifier = NO_MOD,
            target: Any = None) -> None:
        """A key press and release on the canvas (napari's key bindings) or on ``target``."""
        QTest.keyClick(self.canvas if target is None else target, key, modifiers)

    def press(self, button: Any) -> None:
        """A left click on a Qt button (its tab brought to the front first)."""
        tabs = self.widget.tabs
        parent = button
        while parent is not None:
            if tabs.indexOf(parent) >= 0:
                tabs.setCurrentWidget(parent)
                break
            parent = parent.parentWidget()
        assert button.isEnabled(), f"button {button.text()!r} is disabled"
        QTest.mouseClick(button, LEFT)

    def activate(self) -> None:
        """Make the napari window the active one (menu shortcuts need an active window)."""
        self.window.activateWindow()
        self.window.raise_()
        self.qtbot.waitUntil(lambda: QApplication.activeWindow() is self.window, timeout=5000)

    def menu_action(self, menu: str, text: str) -> Any:
        """The QAction ``text`` of the menu bar's menu ``menu`` (``&`` ignored)."""
        for top in self.window.menuBar().actions():
            if top.text().replace("&", "") == menu and top.menu() is not None:
                for action in top.menu().actions():
                    if action.text().replace("&", "") == text:
                        return action
        raise LookupError(f"no menu action {menu} > {text}")

    # ------------------------------------------------------------------ dialogs
    def _start_watch(self) -> None:
        """Answer modal dialogs from a timer (it runs inside the dialogs' event loops)."""
        self._timer = QTimer()  # no parent: it outlives a window that closes
        self._timer.setInterval(20)
        self._timer.timeout.connect(self._on_tick)
        self._timer.start()

    def _on_tick(self) -> None:
        from napari._qt.dialogs.confirm_close_dialog import ConfirmCloseDialog

        box = QApplication.activeModalWidget()
        if box is None:
            return
        if isinstance(box, ConfirmCloseDialog):
            QTest.mouseClick(box.close_btn, LEFT)
        elif isinstance(box, QMessageBox) and self._pending:
            self.prompts.append(box.text())
            QTest.mouseClick(box.button(self._pending.pop(0)), LEFT)
        else:  # nobody expected it: refuse it rather than hang the test
            self.unexpected.append(f"{type(box).__name__}: {box.windowTitle()}")
            if hasattr(box, "reject"):
                box.reject()
            else:
                box.close()

    def answer(self, *answers: str) -> None:
        """Answer the next h4tracks Save / Discard / Cancel prompt(s) by clicking the button.

        napari's own "Close window?" confirmation, when it comes first, is confirmed with its
        Close button (a user closing the window confirms it). Any other modal dialog is
        refused and listed in :attr:`unexpected`. :meth:`answered` tells when all answers
        were used.
        """
        self._pending.extend(ANSWERS[a] for a in answers)

    def answered(self) -> bool:
        """Whether every answer given to :meth:`answer` was used."""
        return not self._pending

    def stop(self) -> None:
        """Stop answering dialogs (teardown)."""
        self._timer.stop()


def _densify(path: Sequence[tuple[float, float]], step: float) -> list[tuple[float, float]]:
    """Points along the polyline ``path`` at most ``step`` apart, on whole pixels."""
    out: list[tuple[float, float]] = [tuple(map(float, path[0]))]
    for (y0, x0), (y1, x1) in pairwise(path):
        n = max(1, int(np.ceil(np.hypot(y1 - y0, x1 - x0) / step)))
        for i in range(1, n + 1):
            out.append((float(round(y0 + (y1 - y0) * i / n)),
                        float(round(x0 + (x1 - x0) * i / n))))
    return out


def components(frame: np.ndarray, labels: Iterable[int] | None = None) -> dict[int, int]:
    """Number of 8-connected pieces of each label of ``frame``."""
    from scipy import ndimage

    frame = np.asarray(frame)
    ids = np.unique(frame) if labels is None else np.asarray(list(labels))
    return {int(i): int(ndimage.label(frame == i, structure=np.ones((3, 3)))[1])
            for i in ids if i != 0}


def dividing_movie(n_frames: int = 16) -> Any:
    """The small synthetic movie (128², 6 cells) the lineage and Tracks-layer tests click in;
    it has a division."""
    from h4tracks.datasets.synthetic import make_movie

    m = make_movie(n_frames=n_frames, shape=(128, 128), n_cells=6, radius=7, seed=3)
    assert (m.lineage[:, 3] > 0).any(), "the test movie must have a division"
    return m


def open_window(make_napari_viewer: Any, qtbot: Any, movie: Any, **metadata: Any) -> Gui:
    """A shown napari window (1400 × 900) with the h4tracks widget docked on the right,
    showing a project of ``movie``'s image, a copy of its labels and its true lineage
    (label = track id, as in the CTC format)."""
    from h4tracks.core.graph import TrackGraph
    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    widget = H4TracksWidget(viewer)
    viewer.window.add_dock_widget(widget, name="h4tracks", area="right")
    project = Project(movie.image, movie.labels.copy(), metadata=metadata,
                      graph=TrackGraph.from_ctc(movie.labels, movie.lineage))
    widget.show_project(project)
    return Gui(viewer, widget, qtbot)
