"""The project model: image + labels + TrackGraph + metadata (+ automatic-result snapshot).

The project is the single source of truth; napari layers are views of it. Image and labels may
be in memory (numpy) or lazy (a zarr array of a saved project). Label edits are held in memory
per frame (:class:`LabelMovie`) until the project is saved, so a saved project on disk only
changes when :func:`h4tracks.core.store.save_project` swaps in a complete new version.
"""

from __future__ import annotations

import datetime as _dt
import platform
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from h4tracks.core.graph import TrackGraph
from h4tracks.core.measure import measure_frame, measure_movie
from h4tracks.errors import InputError

TimeUnit = Literal["ms", "s", "min", "h"]


class Metadata(BaseModel):
    """Descriptive metadata of a project (stored in the project's group attributes)."""

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

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


def ranges_text(frames: list[int]) -> str | None:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"`` (None when empty)."""
    if not frames:
        return None
    runs, start, prev = [], frames[0], frames[0]
    for t in [*frames[1:], None]:
        if t is not None and t == prev + 1:
            prev = t
            continue
        runs.append(f"{start}-{prev}" if prev > start else f"{start}")
        if t is not None:
            start = prev = t
    return ", ".join(runs)


def provenance_entry(step: str, **params: Any) -> dict[str, Any]:
    """A provenance record: what ran, with which parameters, versions and when."""
    from h4tracks import __version__

    return {
        "step": step,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "h4tracks": __version__,
        "python": platform.python_version(),
        "params": jsonable(params),
    }


def _as_frame_index(t: Any, n: int) -> int:
    t = int(t)
    if t < 0:
        t += n
    if not 0 <= t < n:
        raise IndexError(f"frame {t} is out of range for a movie of {n} frames")
    return t


class LabelMovie:
    """An editable (T, Y, X) uint32 label movie backed by a lazy or in-memory array.

    Reads come from the edited frame if there is one, else from the base array. Writes copy
    the frame into memory, apply the change and mark the frame dirty; the base array (e.g. the
    zarr array of a saved project) is never written. The object behaves like a numpy array
    for indexing (basic and fancy), so it can be handed to a napari Labels layer directly and
    painting in napari marks exactly the painted frames as edited.
    """

    def __init__(self, base: Any, *, store_path: str | Path | None = None) -> None:
        if len(base.shape) != 3:
            raise InputError(f"labels must be (T, Y, X), got shape {tuple(base.shape)}")
        self._base = base
        self._edits: dict[int, np.ndarray] = {}
        self.dirty: set[int] = set()
        #: the saved project this movie's base array belongs to (enables incremental save)
        self.store_path = None if store_path is None else Path(store_path)
        self._listeners: list[Callable[[int], None]] = []
        # edited frames also referenced by a snapshot: copied before the next write
        self._shared: set[int] = set()

    # array protocol -----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self._base.shape)  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint32)

    @property
    def ndim(self) -> int:
        return 3

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.stack([self.frame(t) for t in range(self.shape[0])]) if self.shape[0] else (
            np.zeros(self.shape, np.uint32)
        )
        return out if dtype is None else out.astype(dtype)

    def frame(self, t: int) -> np.ndarray:
        """Frame ``t`` as a uint32 array (a view of the edited copy when edited)."""
        t = _as_frame_index(t, self.shape[0])
        edited = self._edits.get(t)
        if edited is not None:
            return edited
        return np.asarray(self._base[t]).astype(np.uint32, copy=False)

    def _split(self, key: Any) -> tuple[np.ndarray, Any, tuple]:
        """Split an index into (frames touched, index into a stack of them, rest of key).

        The stack holds the touched frames in the returned order, so ``stack[(tk, *rest)]``
        has exactly numpy's semantics for ``movie[key]`` (basic, fancy and mixed indexing).
        """
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key[:1]) or any(k is None for k in key):
            return self._split(self._expand(key))
        tkey, rest = key[0], key[1:]
        n = self.shape[0]
        ts = np.arange(n)[tkey]  # numpy resolves ints, negatives, slices, masks, arrays
        if isinstance(tkey, slice):
            return np.atleast_1d(ts), slice(None), rest
        frames, stack_index = np.unique(ts, return_inverse=True)
        stack_index = stack_index.reshape(np.shape(ts))
        if np.ndim(ts) == 0:
            stack_index = int(stack_index)
        return frames, stack_index, rest

    def _expand(self, key: tuple) -> tuple:
        """Replace a leading Ellipsis by full slices (``movie[..., y, x]``)."""
        if key and key[0] is Ellipsis:
            n_rest = len(key) - 1
            return (*([slice(None)] * (3 - n_rest)), *key[1:])
        raise IndexError("np.newaxis is not supported when indexing a LabelMovie")

    def __getitem__(self, key: Any) -> Any:
        frames, tk, rest = self._split(key)
        if frames.size == 1:
            # a fresh copy: callers (napari's slice cache) may write into what they get
            stack = np.array(self.frame(int(frames[0])), copy=True)[np.newaxis]
        elif frames.size == 0:
            stack = np.zeros((0, *self.shape[1:]), np.uint32)
        else:
            stack = np.stack([self.frame(int(t)) for t in frames])
        return stack[(tk, *rest)]

    def _editable(self, t: int) -> np.ndarray:
        t = _as_frame_index(t, self.shape[0])
        if t not in self._edits:
            self._edits[t] = np.array(self._base[t], dtype=np.uint32, copy=True)
        elif t in self._shared:
            self._edits[t] = self._edits[t].copy()
            self._shared.discard(t)
        return self._edits[t]

    def _touched(self, ts: Iterable[int]) -> None:
        for t in ts:
            self.dirty.add(t)
            for fn in self._listeners:
                fn(t)

    def __setitem__(self, key: Any, value: Any) -> None:
        frames, tk, rest = self._split(key)
        if frames.size == 0:
            return
        if frames.size == 1:
            # write straight into the edited copy (a view with a leading axis)
            self._editable(int(frames[0]))[np.newaxis][(tk, *rest)] = value
        else:
            stack = np.stack([self._editable(int(t)) for t in frames])
            stack[(tk, *rest)] = value
            for i, t in enumerate(frames.tolist()):
                self._edits[t][...] = stack[i]
        self._touched(frames.tolist())

    def set_frame(self, t: int, frame: np.ndarray) -> None:
        """Replace frame ``t`` by a (Y, X) label image (copied)."""
        frame = np.asarray(frame)
        if frame.shape != self.shape[1:]:
            raise InputError(f"frame shape {frame.shape} does not match labels {self.shape[1:]}")
        t = _as_frame_index(t, self.shape[0])
        self._edits[t] = frame.astype(np.uint32, copy=True)
        self._shared.discard(t)
        self._touched([t])

    def share_frame_from(self, other: LabelMovie, t: int) -> None:
        """Make frame ``t`` equal to ``other``'s frame ``t`` without copying pixels.

        The array is shared copy-on-write: whichever movie writes to it next copies it first.
        """
        t = _as_frame_index(t, self.shape[0])
        arr = other._edits.get(t)
        if arr is None:  # a saved frame of the other movie: read it (it is not an edit there)
            self._edits[t] = np.array(other._base[t], dtype=np.uint32, copy=True)
            self._shared.discard(t)
        else:
            other._shared.add(t)
            self._edits[t] = arr
            self._shared.add(t)
        self._touched([t])

    def copy_shared(self) -> LabelMovie:
        """An independent editable copy, in O(edited frames) time and no pixels copied."""
        # no store path: the twin's unedited frames live in *this* movie's array, so a save
        # must write the twin in full rather than reuse chunk files from its own location
        twin = LabelMovie(self._base)
        twin._edits = dict(self._edits)
        twin.dirty = set(self.dirty)
        self._shared |= set(self._edits)
        twin._shared = set(self._edits)
        return twin

    def snapshot(self) -> FrozenLabels:
        """A read-only copy of the movie as it is now, in O(edited frames) time and no pixels.

        Frames are shared copy-on-write: the snapshot keeps the current frame arrays and this
        movie copies a shared frame before its next write.
        """
        frozen = FrozenLabels(self._base, store_path=self.store_path)
        frozen._edits = dict(self._edits)
        self._shared = set(self._edits)
        return frozen

    def add_listener(self, fn: Callable[[int], None]) -> None:
        """Call ``fn(t)`` whenever frame ``t`` is edited."""
        self._listeners.append(fn)

    @property
    def base(self) -> Any:
        """The underlying array (never written by this class)."""
        return self._base

    @property
    def edited_frames(self) -> dict[int, np.ndarray]:
        """Frames changed since the last save (read-only use)."""
        return self._edits

    def mark_saved(self, new_base: Any, store_path: str | Path) -> None:
        """After a save: read from the saved array and forget the in-memory edits."""
        self._base = new_base
        self._edits = {}  # a new dict: snapshots keep referencing the old one
        self._shared.clear()
        self.dirty.clear()
        self.store_path = Path(store_path)

    def __repr__(self) -> str:
        return f"LabelMovie(shape={self.shape}, edited frames={sorted(self.dirty)})"


class FrozenLabels(LabelMovie):
    """A read-only :class:`LabelMovie` (see :meth:`LabelMovie.snapshot`)."""

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError("a label snapshot is read-only")

    def set_frame(self, t: int, frame: np.ndarray) -> None:
        raise TypeError("a label snapshot is read-only")

    def __repr__(self) -> str:
        return f"FrozenLabels(shape={self.shape})"


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
    """

    def __init__(
        self,
        image: Any,
        labels: Any | None = None,
        graph: TrackGraph | None = None,
        metadata: Metadata | dict[str, Any] | None = None,
        auto: AutoSnapshot | None = None,
    ) -> None:
        from h4tracks.core.io.readers import validate_image_array, validate_labels_array

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
        if labels is not None:
            if getattr(labels, "ndim", None) == 2:
                labels = labels[np.newaxis]
            validate_labels_array(labels, shape=self.shape)
            self._attach_labels(labels if isinstance(labels, LabelMovie) else LabelMovie(labels))
            if graph is None:
                graph = measure_graph_nodes(self._labels)
        if graph is not None:
            self._graph = graph
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
        from h4tracks.core.io.readers import validate_labels_array

        validate_labels_array(labels, shape=self.shape)
        movie = labels if isinstance(labels, LabelMovie) else LabelMovie(labels)
        self._stale.clear()
        self._attach_labels(movie)
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
        frames = {_as_frame_index(t, self.n_frames) for t in frames}
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
        from h4tracks.core.store import is_saved

        return not is_saved(self)

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
