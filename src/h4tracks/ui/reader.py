"""npe2 reader: open an h4tracks ``.zarr`` project as image, labels and tracks layers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from h4tracks.core.store import is_project, open_project
from h4tracks.ui.layers import project_layer_data


def get_reader(path: str | list[str]) -> Callable[[Any], list[tuple]] | None:
    """Return a reader for h4tracks projects, or None so napari tries other readers
    (any other ``.zarr``, e.g. OME-Zarr, is left to them)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    if not is_project(Path(path)):
        return None
    return read_project


def read_project(path: str | list[str]) -> list[tuple]:
    """Layer data of a project (lazy: no pixel data is read here)."""
    if isinstance(path, list):
        path = path[0]
    return project_layer_data(open_project(path))
