"""napari layers as views of a :class:`~h4tracks.core.project.Project`.

The project is the truth. Layers are built from it (image as a lazy dask array, labels as the
project's editable :class:`~h4tracks.core.project.LabelMovie`, so painting in napari edits
the project), and a project can be assembled from layers a user dropped into napari.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from h4tracks.core.analysis.tracks_display import TracksDisplay
from h4tracks.core.graph import TrackGraph
from h4tracks.core.project import LabelMovie, Project
from h4tracks.errors import InputError

#: key under which layers remember the project they show
PROJECT_KEY = "h4tracks_project"


def _lazy(array: Any) -> Any:
    """A dask view of a zarr array (napari slices dask lazily); other arrays unchanged."""
    import zarr

    if isinstance(array, zarr.Array):
        import dask.array as da

        return da.from_zarr(array)
    return array


def _scale(project: Project) -> tuple[float, float, float]:
    px = project.metadata.pixel_size or 1.0
    return (1.0, px, px)


def _layer_name(project: Project, name: str | None = None) -> str:
    return name or project.metadata.name or (project.path.stem if project.path else "project")


def tracks_layer_kwargs(project: Project, name: str | None = None) -> dict[str, Any]:
    """Keyword arguments of the project's Tracks layer other than its data, graph and
    features (name, scale, tail, the project it shows)."""
    return {"name": f"{_layer_name(project, name)} tracks", "metadata": {PROJECT_KEY: project},
            "scale": _scale(project), "tail_length": 30}


def project_layer_data(project: Project, name: str | None = None, *,
                       tracks: bool = True) -> list[tuple]:
    """napari layer-data tuples (image, labels, and with ``tracks`` the tracks) for a project.

    The Tracks layer carries per-cell and per-track metrics as ``features``
    (:class:`~h4tracks.core.analysis.tracks_display.TracksDisplay`), so napari's *color by*
    offers them.
    """
    name = _layer_name(project, name)
    meta = {PROJECT_KEY: project}
    scale = _scale(project)
    out: list[tuple] = [
        (_lazy(project.image), {"name": f"{name} image", "metadata": dict(meta),
                                "scale": scale}, "image")
    ]
    if project.labels is not None:
        out.append((project.labels, {"name": f"{name} labels", "metadata": dict(meta),
                                     "scale": scale}, "labels"))
        graph = project.graph
        if tracks and graph.n_edges:
            md = project.metadata
            display = TracksDisplay(pixel_size=md.pixel_size, frame_interval=md.frame_interval,
                                    time_unit=md.time_unit)
            display.rebuild(graph)
            out.append((display.data, {"graph": display.parents, "features": display.features,
                                       **tracks_layer_kwargs(project, name)}, "tracks"))
    return out


def layer_project(layer: Any) -> Project | None:
    """The project a layer was built from, if any."""
    return None if layer is None else layer.metadata.get(PROJECT_KEY)


def project_from_layers(
    image_layer: Any,
    labels_layer: Any | None = None,
    tracks_layer: Any | None = None,
    *,
    metadata: dict[str, Any] | None = None,
) -> Project:
    """Assemble a new project from napari layers chosen by the user.

    The labels layer's data is wrapped, not copied, so later painting edits the project.
    A tracks layer is converted with its lineage; node labels are read from the labels at
    each track point.
    """
    image = image_layer.data
    if getattr(image_layer, "rgb", False):
        raise InputError(
            f"layer {image_layer.name!r} is RGB: convert it to grayscale or split the channels"
        )
    if getattr(image_layer, "multiscale", False):
        image = image[0]
    labels = None
    if labels_layer is not None:
        labels = labels_layer.data
        if getattr(labels_layer, "multiscale", False):
            labels = labels[0]
        if getattr(labels, "ndim", 0) == 2:
            labels = np.asarray(labels)[np.newaxis]
        if not isinstance(labels, LabelMovie):
            labels = LabelMovie(labels)
    meta = dict(metadata or {})
    meta.setdefault("name", image_layer.name)
    project = Project(image, labels, metadata=meta)
    if tracks_layer is not None and labels is not None:
        project.graph = TrackGraph.from_napari(
            tracks_layer.data, tracks_layer.graph, labels=project.labels
        )
    return project
