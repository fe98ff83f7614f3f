"""The project model: image + labels + TrackGraph + metadata (+ automatic-result snapshot).

The project is the single source of truth; napari layers are views of it. Image and labels may
be in memory (numpy) or lazy (a zarr array of a saved project). Label edits are held in memory
per frame (:class:`LabelMovie`) until the project is saved, so a saved project on disk only
changes when :func:`h4tracks.core.store.save_project` swaps in a complete new version.
"""

from __future__ import annotations

import datetime as _dt
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from h4tracks import __version__
from h4tracks.core.dirswap import same_dir
from h4tracks.core.frames import ranges_text
from h4tracks.core.graph import TrackGraph
from h4tracks.core.io.readers import validate_image_array, validate_labels_array
from h4tracks.core.label_movie import LabelMovie, as_frame_index
from h4tracks.core.measure import measure_frame, measure_movie

TimeUnit = Literal["ms", "s", "min", "h"]


class Metadata(BaseModel):
    """Descriptive metadata of a project (stored in the project's group attributes)."""

    model_config = ConfigDict(validate_assignment=True, extra="forbid", allow_inf_nan=False)

    name: str | None = None
    pixel_size: float | None = Field(default=None, gt=0, description="µm per pixel")
    frame_interval: float | None = Field(default=None, gt=0, description="time between frames")
    time_unit: TimeUnit = "s"
    source: str | None = Field(default=None, description="file the image was imported from")
    channel: str | int | None = None
    provenance: list[dict[str, Any]] = Field(default_factory=list)
    curated_frames: list[int] = Field(
        default_factory=list, description="frames whose labels and links the user checked"
    )
    max_label: int = Field(
        default=0, ge=0,
        description="largest label id ever used in the project (new cells get a larger one, "
        "so undoing a removal can never meet a new cell under the same id)",
    )

    @field_validator("provenance", mode="after")
    @classmethod
    def _json_provenance(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # stored as JSON in the project: numpy values etc. are converted on the way in
        return jsonable(v)

    @field_validator("pixel_size", "frame_interval", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v == "" else v


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, paths and tuples turned into JSON types."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def provenance_entry(step: str, **params: Any) -> dict[str, Any]:
    """A provenance record: what ran, with which parameters, versions and when."""
    return {
        "step": step,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "h4tracks": __version__,
        "python": platform.python_version(),
        "params": jsonable(params),
    }


def measure_graph_nodes(labels: Any) -> TrackGraph:
    """A TrackGraph with one node per cell of every frame (no edges), measured frame by frame."""
    return TrackGraph.from_arrays(measure_movie(labels))


class AutoSnapshot:
    """The last automatic result (labels + graph), kept for evaluation against curation.

    It is kept per frame: a run over some frames replaces the snapshot of those frames only
    (see :mod:`h4tracks.core.session`), so a curated frame keeps what the automatic method
    produced before the user edited it. ``labels`` is a :class:`LabelMovie` (never shown in
    napari); ``labels.dirty`` tells which of its frames a save must write.
    """

    def __init__(
        self, labels: Any, graph: TrackGraph, info: dict[str, Any] | None = None,
        *, store_path: str | Path | None = None,
    ) -> None:
        if labels is not None and not isinstance(labels, LabelMovie):
            labels = LabelMovie(labels, store_path=store_path)
        self.labels: LabelMovie | None = labels
        self.graph = graph
        self.info = dict(info or {})
        #: set when ``labels`` is the array of a saved project (lets saving skip rewriting it)
        self.store_path = None if store_path is None else Path(store_path)


class Project:
    """A movie with its segmentation, lineage, metadata and automatic-result snapshot.

    Parameters
    ----------
    image
        (T, Y, X) array in its original dtype (numpy, zarr or dask); a 2D image is one frame.
    labels
        Optional (T, Y, X) integer label movie (0 = background), same shape as ``image``.
    graph
        Lineage; by default one node per labelled cell, no edges.
    metadata
        :class:`Metadata` or a dict of its fields.

    Attributes
    ----------
    nodes_measured
        Whether the lineage's nodes are exactly the cells of the labels as
        :mod:`h4tracks.core.measure` measures them (frames edited since aside: their nodes
        are re-measured on the next :attr:`graph` access). True for a graph the project
        measured itself, a tracker's result and a saved project that says so; False for a
        graph set from elsewhere (napari Tracks, a script), whose centroids may be the
        track points' and whose cells may lack nodes. When True, trackers take the cells
        from the nodes instead of reading every frame again.
    """

    def __init__(
        self,
        image: Any,
        labels: Any | None = None,
        graph: TrackGraph | None = None,
        metadata: Metadata | dict[str, Any] | None = None,
        auto: AutoSnapshot | None = None,
    ) -> None:
        if getattr(image, "ndim", None) == 2:
            image = image[np.newaxis]
        validate_image_array(image)
        self._image = image
        self.image_store_path: Path | None = None
        self.metadata = metadata if isinstance(metadata, Metadata) else Metadata(
            **(metadata or {})
        )
        self.path: Path | None = None
        self._labels: LabelMovie | None = None
        self._stale: set[int] = set()
        self._graph = TrackGraph()
        self.nodes_measured = graph is None
        if labels is not None:
            if getattr(labels, "ndim", None) == 2:
                labels = labels[np.newaxis]
            validate_labels_array(labels, shape=self.shape)
            self._attach_labels(labels if isinstance(labels, LabelMovie) else LabelMovie(labels))
            if graph is None:
                graph = measure_graph_nodes(self._labels)
        if graph is not None:
            self._graph = graph
        # the id high-water mark is at least the largest id the labels hold now
        table = self._graph.node_table()
        self.note_labels_used(int(table["label"].max()) if table["label"].size else 0)
        self.auto = auto

    # ------------------------------------------------------------------ shape
    @property
    def image(self) -> Any:
        """(T, Y, X) image in its original dtype (possibly lazy)."""
        return self._image

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self._image.shape)  # type: ignore[return-value]

    @property
    def n_frames(self) -> int:
        return self.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._image.dtype)

    # ------------------------------------------------------------------ labels
    def _attach_labels(self, movie: LabelMovie) -> None:
        self._labels = movie
        movie.add_listener(self._stale.add)

    @property
    def labels(self) -> LabelMovie | None:
        """The editable label movie, or None before segmentation/import."""
        return self._labels

    def set_labels(self, labels: Any, *, rebuild_graph: bool = True) -> None:
        """Replace the whole label movie (e.g. after segmentation or import).

        The graph is rebuilt as one node per cell without edges (old links refer to cells
        that no longer exist).
        """
        if getattr(labels, "ndim", None) == 2:
            labels = labels[np.newaxis]
        validate_labels_array(labels, shape=self.shape)
        movie = labels if isinstance(labels, LabelMovie) else LabelMovie(labels)
        self._stale.clear()
        self._attach_labels(movie)
        self.nodes_measured = rebuild_graph
        if rebuild_graph:
            self._graph = measure_graph_nodes(movie)
            table = self._graph.node_table()
            self.note_labels_used(int(table["label"].max()) if table["label"].size else 0)

    def ensure_labels(self) -> LabelMovie:
        """The label movie, creating an empty one (all background) if there is none."""
        if self._labels is None:
            self._attach_labels(LabelMovie(np.zeros(self.shape, np.uint32)))
        assert self._labels is not None
        return self._labels

    # ------------------------------------------------------------------ graph
    @property
    def graph(self) -> TrackGraph:
        """The lineage graph, with nodes of frames edited since the last access re-measured."""
        self.sync_graph()
        return self._graph

    @graph.setter
    def graph(self, graph: TrackGraph) -> None:
        self.sync_graph()
        self._graph = graph
        self.nodes_measured = False  # whatever built it: its nodes may not be the labels'
        # nodes mirror label ids: a graph set from outside may hold ids above the mark
        table = graph.node_table()
        self.note_labels_used(int(table["label"].max()) if table["label"].size else 0)

    def sync_graph(self) -> None:
        """Update the nodes of edited frames only (labels are the truth for centroids/areas)."""
        if not self._stale or self._labels is None:
            self._stale.clear()
            return
        hi = 0
        for t in sorted(self._stale):
            m = measure_frame(self._labels.frame(t))
            self._graph.sync_frame(t, m.labels, m.centroids, m.areas)
            hi = max(hi, int(m.labels.max(initial=0)))
        self._stale.clear()
        self.note_labels_used(hi)

    def unsynced_nodes(self) -> tuple[dict[str, np.ndarray], frozenset[int]]:
        """The lineage's node table as it is and the frames edited since their nodes were
        last measured, without re-measuring anything (reading :attr:`graph` re-measures in
        place, which a worker thread must not do, nor anything between a napari stroke and
        its paint step)."""
        return self._graph.node_table(), frozenset(self._stale)

    def note_labels_used(self, label: int) -> None:
        """Remember that ids up to ``label`` have been used (the high-water mark only grows)."""
        if label > self.metadata.max_label:
            self.metadata.max_label = int(label)

    def next_free_label(self) -> int:
        """An id larger than any ever used in this project (see ``Metadata.max_label``)."""
        table = self.graph.node_table()  # nodes mirror the labels of every frame
        now = int(table["label"].max()) if table["label"].size else 0
        self.note_labels_used(now)
        return self.metadata.max_label + 1

    def replace_graph(self, graph: TrackGraph, synced: Iterable[int] = ()) -> None:
        """Make ``graph`` the lineage as it is, without re-measuring frames ``synced`` (the
        caller guarantees its nodes of those frames match the labels)."""
        self._stale.difference_update(int(t) for t in synced)
        self._graph = graph
        self.sync_graph()

    def drop_labels(self) -> None:
        """Forget the label movie and the lineage (undo of a first segmentation)."""
        self._labels = None
        self._stale.clear()
        self._graph = TrackGraph()
        self.nodes_measured = True

    # ------------------------------------------------------------------ snapshot
    def take_auto_snapshot(self, **info: Any) -> AutoSnapshot:
        """Keep a copy of the current labels and graph as the automatic result.

        Cheap: labels are shared copy-on-write (:meth:`LabelMovie.snapshot`), so a long movie
        is not copied; only the graph is.
        """
        labels = None if self._labels is None else self._labels.copy_shared()
        self.auto = AutoSnapshot(labels, self.graph.copy(), info)
        return self.auto

    # ------------------------------------------------------------------ curation
    @property
    def curated_frames(self) -> frozenset[int]:
        """Frames the user curated (edited, or marked by hand)."""
        return frozenset(self.metadata.curated_frames)

    def set_curated(self, frames: Iterable[int], curated: bool = True) -> None:
        """Mark ``frames`` as curated (or not). For an undoable change use
        :class:`h4tracks.core.actions.MarkCurated` through the history."""
        frames = {as_frame_index(t, self.n_frames) for t in frames}
        now = set(self.metadata.curated_frames)
        now = now | frames if curated else now - frames
        self.metadata.curated_frames = sorted(now)

    # ------------------------------------------------------------------ misc
    def add_provenance(self, step: str, **params: Any) -> None:
        """Record an automatic step in the metadata."""
        prov = [*self.metadata.provenance, provenance_entry(step, **params)]
        self.metadata.provenance = prov

    @property
    def has_unsaved_changes(self) -> bool:
        """Whether anything differs from the saved project (conservative)."""
        return not self.is_saved()

    def _state_token(self) -> dict[str, Any]:
        """What identifies the in-memory graph, snapshot and metadata (compared on save)."""
        g = self._graph
        return {
            "graph": (id(g), g.revision),
            "auto": None if self.auto is None else (id(self.auto), id(self.auto.graph),
                                                     self.auto.graph.revision),
            "metadata": self.metadata.model_dump_json(),
        }

    def remember_saved(self) -> None:
        """Record that the project now equals its saved version (the store calls this)."""
        self._saved_state = self._state_token()

    def is_saved(self) -> bool:
        """Whether the project equals its saved version on disk."""
        if self.path is None or not same_dir(self.image_store_path, self.path):
            return False
        labels = self.labels
        if labels is not None and (labels.dirty or not same_dir(labels.store_path, self.path)):
            return False
        auto = self.auto
        if auto is not None and auto.labels is not None and (
            auto.labels.dirty or not same_dir(auto.labels.store_path, self.path)
        ):
            return False
        return getattr(self, "_saved_state", None) == self._state_token()

    def summary(self) -> dict[str, Any]:
        """Short description used by ``h4tracks info`` and the Data tab."""
        g = self.graph
        return {
            "path": str(self.path) if self.path else None,
            "shape (T, Y, X)": self.shape,
            "dtype": str(self.dtype),
            "labels": self._labels is not None,
            "cells": len(g),
            "tracks": int(g.track_ids().size),
            "links": g.n_edges,
            "divisions": g.n_divisions,
            "pixel size": None if self.metadata.pixel_size is None
            else f"{self.metadata.pixel_size:g} µm",
            "frame interval": None if self.metadata.frame_interval is None
            else f"{self.metadata.frame_interval:g} {self.metadata.time_unit}",
            "source": self.metadata.source,
            "channel": self.metadata.channel,
            "auto snapshot": self.auto is not None,
            "curated frames": ranges_text(self.metadata.curated_frames),
            "automatic steps": [p.get("step") for p in self.metadata.provenance],
        }

    def __repr__(self) -> str:
        return f"Project(shape={self.shape}, dtype={self.dtype}, graph={self._graph!r})"
