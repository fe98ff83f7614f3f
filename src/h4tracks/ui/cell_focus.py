"""Show one cell in the viewer: its frame, the camera on its centre, napari's selected label.

Shared by the places that select a cell for the user (the lineage tree, the Analysis tab's
metrics table), so a selection looks the same wherever it was made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from h4tracks.core.graph import NodeKey
    from h4tracks.core.project import Project


def show_cell(viewer: Any, labels_layer: Any | None, project: Project, node: NodeKey, *,
              select_label: Callable[[int], None] | None = None) -> None:
    """Go to cell ``node = (t, label)`` of ``project``: frame ``t``, the camera centred on the
    cell, and its label selected in ``labels_layer`` (by ``select_label`` when given, e.g.
    to set it without reacting to the change oneself).

    Parameters
    ----------
    viewer
        The napari viewer.
    labels_layer
        The project's Labels layer (None: only the frame changes).
    project
        The project the cell belongs to (its graph gives the centroid).
    node
        The cell.
    select_label
        Sets the selected label; default ``labels_layer.selected_label = label``.
    """
    t, label = node
    attrs = project.graph.node(node)
    viewer.dims.set_current_step(0, t)
    if labels_layer is None:
        return
    world = labels_layer.data_to_world([t, attrs["y"], attrs["x"]])
    # napari 0.9 moved the camera to viewer.scene (viewer.camera is deprecated)
    scene = getattr(viewer, "scene", None)
    camera = scene.camera if scene is not None else viewer.camera
    camera.center = tuple(float(c) for c in world[-2:])
    if select_label is None:
        labels_layer.selected_label = label
    else:
        select_label(label)
