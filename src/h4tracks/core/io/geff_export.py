"""A project's tracks as a standalone GEFF (the community tracking-graph format) for other
tools: motile-tracker / napari-track-edit, traccuracy, TrackMate, trackastra, ..."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr
from geff_spec import Axis

from h4tracks.core.geff_io import write_geff_graph
from h4tracks.core.outputs import atomic_folder
from h4tracks.core.store_write import write_frames
from h4tracks.errors import InputError

__all__ = ["export_geff"]

#: the project's time units as GEFF (OME-Zarr) unit names
_TIME_UNITS = {"ms": "millisecond", "s": "second", "min": "minute", "h": "hour"}


def export_geff(project: Any, path: str | Path, *, overwrite: bool = False,
                progress: Any = None) -> Path:
    """Write a project's tracks as a standalone GEFF: a zarr group ``path`` holding the graph
    (``tracks``, GEFF) and the label movie (``labels``, uint32, one chunk per frame).

    Nodes keep their ``t`` (frame) and ``y``/``x`` (pixels); the axes carry the project's
    calibration as GEFF ``scale`` / ``scaled_unit`` (µm per pixel, time per frame) when it
    has one. ``seg_id`` is each cell's value in ``labels`` (declared as the related
    labels object's ``node_prop``), ``track_id`` the tracklet. Written completely or not at
    all; ``progress(done, total)`` per label frame.
    """
    if project.labels is None:
        raise InputError("The project has no segmentation to export.")
    md = project.metadata
    px, dt = md.pixel_size, md.frame_interval
    axes = [
        Axis(name="t", type="time", unit="frame",
             **({"scale": dt, "scaled_unit": _TIME_UNITS[md.time_unit]} if dt else {})),
        *(Axis(name=n, type="space", unit="pixel",
               **({"scale": px, "scaled_unit": "micrometer"} if px else {}))
          for n in ("y", "x")),
    ]
    graph = project.graph
    out = Path(path)
    with atomic_folder(out, overwrite=overwrite) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        root.attrs["h4tracks"] = {"source": str(getattr(project, "path", "") or "")}
        write_geff_graph(graph, tmp / "tracks", axes=axes,
                         extra_props={"seg_id": graph.node_table()["label"].astype(np.int64)},
                         related_objects=[{"type": "labels", "path": "../labels",
                                           "node_prop": "seg_id"}])
        t_n, h, w = project.shape
        labels = root.create_array("labels", shape=(t_n, h, w), chunks=(1, h, w),
                                   dtype="uint32")
        write_frames(labels, t_n, project.labels.frame, progress=progress,
                     block=getattr(project.labels, "frames", None))
    return out
