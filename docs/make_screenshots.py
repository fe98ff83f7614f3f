"""Regenerate the documentation screenshots (run under a display or `xvfb-run -a`).

    xvfb-run -a python docs/make_screenshots.py
"""

from __future__ import annotations

from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from h4tracks.ui.main_widget import H4TracksWidget

OUT = Path(__file__).parent / "images"


def main() -> None:
    viewer = napari.Viewer(show=True)  # screenshots are black unless the window is shown
    viewer.window._qt_window.resize(1400, 850)
    viewer.open_sample("h4tracks", "migrating_cells")
    widget = H4TracksWidget(viewer)
    viewer.window.add_dock_widget(widget, name="h4tracks", area="right")
    widget.image_combo.set_layer(viewer.layers["synthetic image"])
    widget.labels_combo.set_layer(viewer.layers["synthetic labels (ground truth)"])
    widget.tracks_combo.set_layer(viewer.layers["synthetic tracks (ground truth)"])
    viewer.dims.set_current_step(0, 25)
    for _ in range(5):
        QApplication.processEvents()
    OUT.mkdir(exist_ok=True)
    viewer.screenshot(str(OUT / "data_tab.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main()
