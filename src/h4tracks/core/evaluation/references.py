"""Loading results and references for evaluation: projects, label movies and CTC folders
(the curated-versus-automatic comparison of one project is in ``curated.py``)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from h4tracks.core.evaluation.tracking import graph_edges, lineage_edges
from h4tracks.core.io.ctc import read_ctc
from h4tracks.core.io.readers import read_labels
from h4tracks.core.store import is_project, open_project
from h4tracks.errors import InputError

if TYPE_CHECKING:
    from h4tracks.core.graph import TrackGraph
    from h4tracks.core.project import Project

__all__ = [
    "TrackingData",
    "from_ctc",
    "from_label_movie",
    "from_project",
    "load",
]

_SEG_MASK = re.compile(r"^man_seg_?(\d+)\.tif$")


@dataclass
class TrackingData:
    """A segmentation (+ optional lineage) to evaluate or to evaluate against.

    Attributes
    ----------
    labels
        ``(T, Y, X)`` label movie (numpy, dask, zarr or LabelMovie), read frame by frame.
    edges
        ``(E, 5)`` edges ``(t_p, label_p, t_c, label_c, parent_link)`` in the labels' own
        label values (see :mod:`h4tracks.core.evaluation.tracking`), or None when there is no
        lineage (segmentation only).
    seg
        Optional sparse segmentation reference ``{t: (Y, X) labels}`` (a CTC ``SEG`` folder);
        when given, segmentation is scored on these frames only, against these masks.
    graph
        The TrackGraph the edges came from, if any.
    name
        Where the data came from (shown in reports).
    provenance
        Automatic steps that produced it (project provenance and snapshot info).
    """

    labels: Any
    edges: np.ndarray | None = None
    seg: Mapping[int, Any] | None = None
    graph: TrackGraph | None = None
    name: str = ""
    provenance: list[dict[str, Any]] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape ``(T, Y, X)`` of the label movie."""
        return tuple(int(s) for s in self.labels.shape)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return self.shape[0]

    @property
    def has_tracks(self) -> bool:
        """Whether a lineage is available (tracking can be scored)."""
        return self.edges is not None

    @classmethod
    def from_graph(
        cls, labels: Any, graph: TrackGraph | None, *, name: str = "",
        provenance: list[dict[str, Any]] | None = None,
    ) -> TrackingData:
        """Labels + TrackGraph (None: segmentation only)."""
        labels = _as_movie(labels, name or "labels")
        edges = None if graph is None else graph_edges(graph)
        return cls(labels, edges, graph=graph, name=name, provenance=list(provenance or []))


def _as_movie(labels: Any, name: str) -> Any:
    if labels is None:
        raise InputError(f"{name} has no segmentation (no label movie).")
    if not hasattr(labels, "shape") or not hasattr(labels, "__getitem__"):
        labels = np.asarray(labels)
    if len(labels.shape) == 2:
        labels = np.asarray(labels)[np.newaxis]
    if len(labels.shape) != 3:
        raise InputError(f"{name}: labels must be a (T, Y, X) movie, got shape {labels.shape}.")
    if np.dtype(labels.dtype).kind not in "iub":
        raise InputError(f"{name}: labels must be integers, got dtype {labels.dtype}.")
    return labels


def from_project(project: Project | str | os.PathLike[str]) -> TrackingData:
    """The curated labels and lineage of a project (object or saved ``.zarr`` path)."""
    if isinstance(project, (str, os.PathLike)):
        project = open_project(Path(project))
    name = str(project.path) if getattr(project, "path", None) else "project"
    return TrackingData.from_graph(
        project.labels, project.graph, name=name,
        provenance=list(project.metadata.provenance),
    )


def from_label_movie(source: Any, *, name: str | None = None) -> TrackingData:
    """A label movie without lineage (segmentation scores only): a TIFF path or an array."""
    if isinstance(source, (str, os.PathLike)):
        return TrackingData(read_labels(Path(source)), name=name or str(source))
    return TrackingData(_as_movie(source, name or "labels"), name=name or "label movie")


def from_ctc(directory: str | os.PathLike[str]) -> TrackingData:
    """A Cell Tracking Challenge result or ground-truth folder.

    Accepts a result folder (``mask*.tif`` + ``res_track.txt``), a ``<seq>_GT`` folder, its
    ``TRA`` folder or a dataset root with one ``<seq>_GT``. For ground truth, the ``TRA``
    masks and lineage are used for tracking and, when present, the (possibly sparse)
    ``SEG`` masks for segmentation: only the annotated frames are scored, against the
    annotated cells.
    """

    directory = Path(directory)
    labels, lineage = read_ctc(directory)
    seg = _read_seg(_seg_folder(directory), labels.shape[1:])
    data = TrackingData(labels, lineage_edges(lineage), seg=seg, name=str(directory))
    return data


def _seg_folder(directory: Path) -> Path | None:
    candidates = [directory / "SEG", directory.parent / "SEG" if directory.name == "TRA" else None]
    candidates += [p / "SEG" for p in sorted(directory.glob("*_GT"))]
    for c in candidates:
        if c is not None and c.is_dir():
            return c
    return None


def _read_seg(folder: Path | None, shape: tuple[int, ...]) -> dict[int, np.ndarray] | None:
    if folder is None:
        return None
    import tifffile

    out = {}
    for p in sorted(folder.iterdir()):
        m = _SEG_MASK.match(p.name)
        if not m:
            continue
        try:
            frame = np.squeeze(tifffile.imread(p))
        except Exception as err:  # tifffile raises many types for broken files
            raise InputError(f"Cannot read segmentation mask {p}: {err}.") from err
        if frame.shape != tuple(shape) or frame.dtype.kind not in "iu":
            raise InputError(
                f"Segmentation mask {p} must be a {tuple(shape)} integer image like the TRA "
                f"masks, got shape {frame.shape} and dtype {frame.dtype}."
            )
        out[int(m.group(1))] = frame
    return out or None


def load(source: Any, *, name: str | None = None) -> TrackingData:
    """Turn anything evaluable into :class:`TrackingData`.

    ``source`` may be TrackingData, a Project, a project path (``.zarr``), a CTC folder,
    a label movie file, or a ``(T, Y, X)`` array (segmentation only).
    """
    if isinstance(source, TrackingData):
        return source
    if hasattr(source, "graph") and hasattr(source, "labels"):
        return from_project(source)
    if isinstance(source, (str, os.PathLike)):

        path = Path(source)
        if is_project(path):
            return from_project(path)
        if path.is_dir():
            return from_ctc(path)
        if not path.exists():
            raise InputError(f"{path} does not exist.")
        return from_label_movie(path, name=name)
    return from_label_movie(source, name=name)


def _frame_range(frames: Iterable[int] | None, n_frames: int) -> list[int]:
    if frames is None:
        return list(range(n_frames))
    ts = [int(t) for t in frames]
    if not ts:
        raise InputError("The frame range is empty.")
    if any(b != a + 1 for a, b in pairwise(ts)):
        raise InputError(f"Frames must be consecutive and increasing, got {ts[0]}..{ts[-1]} "
                         "with holes or out of order.")
    if ts[0] < 0 or ts[-1] >= n_frames:
        raise InputError(
            f"Frames {ts[0]}-{ts[-1]} are outside the movie (frames 0-{n_frames - 1})."
        )
    return ts
