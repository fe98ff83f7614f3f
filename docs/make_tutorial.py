"""Regenerate the tutorial's pictures by doing the tutorial (run under a display or Xvfb).

    xvfb-run -a python docs/make_tutorial.py [--out docs/images/tutorial]

A raw movie (a synthetic one with ground truth, written as TIFF) is opened as a drop would
open it, then every step of docs/tutorial.md is done on the real widgets with real Qt events
(the mouse on napari's canvas and on the plot, keys, buttons): segment, curate (remove a
cell, E + a brush stroke for a new one), track, unlink and link, analyse, lasso, evaluate,
export. A screenshot is taken after each step and an animated GIF of the brush stroke. Each
step checks its effect on the project and stops with an error if it did not happen, so the
pictures cannot silently show a broken tutorial (the test suite runs this on a small movie).
File dialogs are answered with fixed paths (they are the operating system's, not ours).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "ui"))  # the real-event driver of the UI tests

from _clicks import centre  # noqa: E402
from _events import LEFT, NO_MOD, Gui  # noqa: E402


class _Bot:
    """The one thing ``Gui`` needs from pytest-qt: waiting while Qt runs."""

    def waitUntil(self, condition, timeout: int = 5000) -> None:
        from qtpy.QtWidgets import QApplication

        end = time.monotonic() + timeout / 1000
        while not condition():
            if time.monotonic() > end:
                raise TimeoutError(f"waited {timeout} ms for {condition}")
            QApplication.processEvents()
            time.sleep(0.01)


def _settle(gui: Gui, seconds: float = 0.3) -> None:
    gui.qtbot.waitUntil(lambda: not gui.widget.busy, timeout=600_000)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        from qtpy.QtWidgets import QApplication

        QApplication.processEvents()
        time.sleep(0.02)


def _check(ok: bool, what: str, gui: Gui) -> None:
    if not ok:
        raise RuntimeError(f"tutorial step failed: {what} (status: {gui.widget.status.text()})")


def run(out: Path, frames: int = 20, size: int = 256) -> list[Path]:
    """Do the tutorial, writing its pictures to ``out``; returns the files written."""
    import napari
    from qtpy.QtWidgets import QFileDialog

    from h4tracks.core.io.ctc import write_ctc
    from h4tracks.datasets.synthetic import SyntheticConfig, make_movie
    from h4tracks.ui.main_widget import H4TracksWidget

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="h4tracks-tutorial-"))
    movie = make_movie(SyntheticConfig(n_frames=frames, shape=(size, size), n_cells=12,
                                       seed=2))
    tifffile.imwrite(work / "movie.tif", movie.image, imagej=True, metadata={"axes": "TYX"})
    gt = write_ctc(work / "truth", movie.labels, movie.lineage, kind="gt")
    written: list[Path] = []

    viewer = napari.Viewer(show=True)  # screenshots are black unless the window is shown
    viewer.window._qt_window.resize(1400, 900)
    widget = H4TracksWidget(viewer)
    viewer.window.add_dock_widget(widget, name="h4tracks", area="right")
    gui = Gui(viewer, widget, _Bot())

    def shot(name: str) -> None:
        _settle(gui)
        path = out / f"{name}.png"
        viewer.screenshot(str(path), canvas_only=False, flash=False)
        written.append(path)

    # 1. open the raw movie (what dropping the file on napari does) and choose it
    viewer.open(str(work / "movie.tif"))
    widget.image_combo.set_layer(viewer.layers[0])
    _check(widget.project is not None, "the movie forms a project", gui)
    gui.fit((size / 2, size / 2), size)
    shot("01_open")

    # 2. segment every frame with the default model
    seg = widget.segmentation_tab
    gui.press(seg.run_btn)
    _settle(gui)
    project = widget.project
    _check(project.labels is not None and len(project.graph) > 0, "segmentation", gui)
    t = min(5, frames - 2)  # frames t-1 and t+1 are used in step 5
    gui.frame(t)
    shot("02_segment")

    # 3. curate frame t: remove a cell (D, then a click), paint a new one (E, brush stroke)
    frame = project.labels.frame(t)
    ids, counts = np.unique(frame[frame > 0], return_counts=True)
    victim = int(ids[np.argmin(counts)])
    labels_layer = widget.labels_combo.layer()
    viewer.layers.selection.active = labels_layer
    gui.key(_key("D"))
    gui.click(*centre(frame, victim))
    _check(victim not in np.unique(project.labels.frame(t)), "remove a cell", gui)
    empty = _empty_spot(project.labels.frame(t), radius=10)
    gui.key(_key("E"))
    new_id = int(labels_layer.selected_label)
    labels_layer.brush_size = 7
    labels_layer.mode = "paint"
    gui.fit(empty, 90)  # zoomed in for the animation of the stroke
    gif = _stroke_with_frames(gui, _circle(empty, 5))
    gui.fit((size / 2, size / 2), size)
    _check(new_id in np.unique(project.labels.frame(t)), "paint a new cell", gui)
    _check(t in project.curated_frames, "edited frame marked curated", gui)
    shot("03_curate")
    _save_gif(gif, out / "03_curate_stroke.gif")
    written.append(out / "03_curate_stroke.gif")

    # 4. track with the global, division-aware method
    tr = widget.tracking_tab
    tr.method_combo.setCurrentIndex(tr.method_combo.findData("global"))
    gui.press(tr.run_btn)
    _settle(gui)
    _check(project.graph.n_edges > 0, "tracking", gui)
    shot("04_track")

    # 5. unlink: cut the piece of a track in frames t..t+1 out of it (click its first and
    #    last cell, then Confirm); link: join the cell of frame t-1 back to it
    g = project.graph
    edges = g.edge_array()
    pairs = {(int(e[0]), int(e[1])): (int(e[2]), int(e[3])) for e in edges}
    piece = next(((p, a, pairs[a]) for p, a in pairs.items()
                  if p[0] == t - 1 and a[0] == t and a in pairs), None)
    _check(piece is not None, "a track through frames t-1..t+1", gui)
    before, a, b = piece
    for mode in ("unlink_cells", "link_cells"):
        gui.press(tr.mode_buttons[mode])
        for node in ((a, b) if mode == "unlink_cells" else (before, a)):
            gui.frame(node[0])
            gui.click(*centre(project.labels.frame(node[0]), node[1]))
        gui.press(tr.mode_buttons[mode])
        linked = project.graph.has_edge(before, a)
        _check(linked is (mode == "link_cells"), mode, gui)
        if mode == "unlink_cells":
            _check(project.graph.has_edge(a, b), "the piece keeps its own link", gui)
            shot("05_unlink")
    gui.frame(t)

    # 6. analyse: metrics, a scatter plot, and a lasso drawn on it with the mouse
    an = widget.analysis_tab
    gui.press(an.compute_btn)
    _settle(gui)
    _check(an.table is not None and len(an.table) > 0, "metrics", gui)
    plots = an.plots
    plots.kind_combo.setCurrentText("scatter")
    plots.x_combo.setCurrentText(an.table.find("mean_speed"))
    plots.y_combo.setCurrentText(an.table.find("directness"))
    gui.press(plots.plot_btn)
    _settle(gui)
    _lasso(plots.plot, gui)
    _check(plots.plot.selected is not None and len(plots.plot.selected) > 0, "lasso", gui)
    shot("06_analyse")

    # 7. evaluate against the ground truth the movie was made with
    ev = widget.evaluation_tab
    QFileDialog.getExistingDirectory = staticmethod(lambda *a, **k: str(gt))
    ev.ref_combo.setCurrentIndex(1)  # "external reference"
    gui.press(ev.folder_btn)
    gui.press(ev.eval_btn)
    _settle(gui)
    _check(ev.report is not None and ev.report.tracking is not None, "evaluation", gui)
    shot("07_evaluate")

    # 8. export the tracks for the Cell Tracking Challenge tools and the track table
    QFileDialog.getExistingDirectory = staticmethod(lambda *a, **k: str(work / "ctc"))
    gui.press(widget.data_tab.export_ctc_btn)
    _settle(gui)
    _check((work / "ctc" / "res_track.txt").is_file(), "CTC export", gui)
    QFileDialog.getSaveFileName = staticmethod(
        lambda *a, **k: (str(work / "tracks.csv"), "CSV (*.csv)"))
    gui.press(an.export_btn)
    _settle(gui)
    _check((work / "tracks.csv").is_file(), "CSV export", gui)
    shot("08_export")

    widget.ask_unsaved = lambda _project: "discard"
    gui.stop()
    viewer.close()
    return written


def _key(name: str):
    from qtpy.QtCore import Qt

    return getattr(Qt.Key, f"Key_{name}")


def _empty_spot(frame: np.ndarray, radius: int) -> tuple[int, int]:
    """The background pixel farthest from every cell and the border."""
    from scipy import ndimage

    free = np.pad(frame == 0, 1)  # the border counts as occupied
    dist = ndimage.distance_transform_edt(free)[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(dist), dist.shape)
    if dist[y, x] < radius:
        raise RuntimeError("no free space to paint a new cell")
    return int(y), int(x)


def _circle(c: tuple[int, int], r: float) -> list[tuple[float, float]]:
    angles = np.linspace(0, 2 * np.pi, 13)
    return [(c[0] + r * np.sin(a), c[1] + r * np.cos(a)) for a in angles] + [c]


def _stroke_with_frames(gui: Gui, path: list[tuple[float, float]]) -> list[np.ndarray]:
    """A brush stroke along ``path`` (real mouse events), capturing the canvas as it goes."""
    from qtpy.QtTest import QTest

    frames = [gui.viewer.screenshot(canvas_only=True, flash=False)]
    gui.move(*path[0])
    QTest.mousePress(gui.canvas, LEFT, NO_MOD, gui.to_canvas(*path[0]))
    for y, x in path[1:]:
        gui.move(y, x)
        _settle(gui, 0.05)
        frames.append(gui.viewer.screenshot(canvas_only=True, flash=False))
    QTest.mouseRelease(gui.canvas, LEFT, NO_MOD, gui.to_canvas(*path[-1]))
    _settle(gui)
    frames.append(gui.viewer.screenshot(canvas_only=True, flash=False))
    return frames


def _save_gif(frames: list[np.ndarray], path: Path) -> None:
    from PIL import Image

    images = [Image.fromarray(np.asarray(f)[..., :3]) for f in frames]
    images = [im.resize((im.width // 2, im.height // 2)) for im in images]
    images[0].save(path, save_all=True, append_images=images[1:], duration=120, loop=0,
                   optimize=True)


def _lasso(plot, gui: Gui) -> None:
    """Draw a lasso around the left half of the scatter plot with the mouse."""
    from qtpy.QtCore import QPoint
    from qtpy.QtTest import QTest

    canvas = plot._canvas  # the matplotlib canvas the user draws on
    ax = plot.figure.axes[0]
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    xm = x0 + 0.55 * (x1 - x0)
    corners = [(x0, y0), (xm, y0), (xm, y1), (x0, y1), (x0, y0)]
    height = canvas.height()
    ratio = canvas.devicePixelRatioF()

    def to_qt(x: float, y: float) -> QPoint:
        px, py = ax.transData.transform((x, y))  # display pixels, origin bottom left
        return QPoint(round(px / ratio), round(height - py / ratio))

    points = []
    for (xa, ya), (xb, yb) in itertools.pairwise(corners):
        points += [(xa + (xb - xa) * i / 8, ya + (yb - ya) * i / 8) for i in range(8)]
    QTest.mousePress(canvas, LEFT, NO_MOD, to_qt(*points[0]))
    for p in points[1:]:
        QTest.mouseMove(canvas, to_qt(*p))
        _settle(gui, 0.01)
    QTest.mouseRelease(canvas, LEFT, NO_MOD, to_qt(*points[-1]))
    _settle(gui)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "images" / "tutorial")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    for path in run(args.out, args.frames, args.size):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
