"""Marks in the viewer for what evaluation and the curation assistant flag.

A flagged item is a point ``(t, y, x)`` in pixels with a plain-language reason; each source
gets its own Points layer (replaced when the source runs again), drawn as rings around the
cells so the cell itself stays visible, with the reason as a feature (shown by napari's
status bar when hovering, and usable to colour or filter the points).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def show_markers(viewer: Any, name: str, points: Any, reasons: Sequence[str],
                 pixel_size: float | None = None, *, color: str = "magenta") -> Any:
    """Replace the Points layer ``name`` with rings at ``points`` (None when there are none).

    Parameters
    ----------
    viewer
        The napari viewer.
    name
        Layer name ("evaluation errors", "suspicious cells").
    points
        (N, 3) frame, y, x in pixels.
    reasons
        N texts, one per point.
    pixel_size
        µm per pixel of the project (the layers' scale), None = 1.
    """
    if name in viewer.layers:
        viewer.layers.remove(name)
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    if not len(pts):
        return None
    px = pixel_size or 1.0
    active = viewer.layers.selection.active
    layer = viewer.add_points(
        pts, name=name, features={"reason": list(reasons)}, size=14, symbol="ring",
        face_color=color, border_width=0, scale=(1.0, px, px), out_of_slice_display=False,
    )
    # a click on the canvas should still reach the labels layer below
    layer.editable = False
    if active is not None and active in viewer.layers:
        viewer.layers.selection.active = active  # painting goes on in the labels layer
    return layer
