"""Results of automatic runs (segmentation, tracking, import) applied as one undoable step.

A run computes in a worker without touching the project and returns its result; the caller
turns the result into a :class:`RunStep` and applies it through the session's history (on the
UI thread in napari). One step records everything the run changes:

* the label frames it wrote (previous and new frames kept in :class:`FrameStash` es, which
  move to disk for long movies),
* the lineage (the graph objects before and after),
* the automatic snapshot, **per frame**: a segmentation of frames A:B replaces the snapshot
  of those frames (and drops the snapshot's links into them) only; a tracking run replaces
  the snapshot's links among frames that are not curated and keeps, for curated frames,
  what the automatic method produced before the user edited them; a tracking run never
  touches the snapshot's labels,
* the provenance entry and the curated frames (re-segmented frames are automatic again).

Undo restores all of it; redo re-applies it. The step captures the "before" state when it is
first applied, so it must be applied to the project it was built for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from h4tracks.core.actions import Action
from h4tracks.core.graph import TrackGraph
from h4tracks.core.measure import measure_frame
from h4tracks.core.project import AutoSnapshot, LabelMovie, Project, provenance_entry
from h4tracks.core.stash import FrameStash

__all__ = ["RunStep", "without_frames_links"]

# below this many links to cut, the graph is edited in place (track ids of untouched tracks
# kept); above it, rebuilding it in one vectorised pass is much faster
_LOOP_EDGES = 2000


def without_frames_links(graph: TrackGraph, frames: Any) -> TrackGraph:
    """A copy of ``graph`` without the links into or out of ``frames``."""
    frames = np.asarray(sorted(frames), np.int64)
    edges = graph.edge_array()
    hit = np.isin(edges[:, 0], frames) | np.isin(edges[:, 2], frames) if edges.size else (
        np.zeros(0, bool))
    if int(hit.sum()) <= _LOOP_EDGES:
        g = graph.copy()
        for pt, pl, ct, cl in edges[hit].tolist():
            g.remove_edge((pt, pl), (ct, cl))
        return g
    nodes = {k: v for k, v in graph.node_table().items() if k != "track_id"}
    return TrackGraph.from_arrays(nodes, edges[~hit], next_track_id=graph.next_track_id)


def _resync(graph: TrackGraph, movie: LabelMovie, frames: Any) -> int:
    """Re-measure the nodes of ``frames`` from ``movie``; returns the largest label seen."""
    hi = 0
    for t in sorted(frames):
        m = measure_frame(movie.frame(t))
        graph.sync_frame(t, m.labels, m.centroids, m.areas)
        hi = max(hi, int(m.labels.max(initial=0)))
    return hi


def _codes(t: np.ndarray, label: np.ndarray) -> np.ndarray:
    return (np.asarray(t, np.int64) << 32) | np.asarray(label, np.int64)


def merge_snapshot_links(auto: TrackGraph, run: TrackGraph, curated: Any) -> TrackGraph:
    """The snapshot's lineage after a tracking run.

    Links between frames that are not curated come from ``run`` (the labels there are the
    automatic ones, so the run's links join the snapshot's cells); links touching a curated
    frame stay as the snapshot had them (the run tracked the user's cells there, not the
    automatic ones). A cell keeps at most one parent and two children, the snapshot's own
    links first.
    """
    cur = np.asarray(sorted(curated), np.int64)
    nodes = {k: v for k, v in auto.node_table().items() if k != "track_id"}
    old, new = auto.edge_array(), run.edge_array()
    kept = old[np.isin(old[:, 0], cur) | np.isin(old[:, 2], cur)] if old.size else old
    if new.size:
        new = new[~(np.isin(new[:, 0], cur) | np.isin(new[:, 2], cur))]
        known = _codes(nodes["t"], nodes["label"])
        ok = np.isin(_codes(new[:, 0], new[:, 1]), known) & np.isin(
            _codes(new[:, 2], new[:, 3]), known)
        new = new[ok]
    edges = np.concatenate([kept.reshape(-1, 4), new.reshape(-1, 4)]).astype(np.int64)
    if edges.size:
        # one parent per child (first wins), then at most two children per parent
        _, first = np.unique(_codes(edges[:, 2], edges[:, 3]), return_index=True)
        edges = edges[np.sort(first)]
        parent = _codes(edges[:, 0], edges[:, 1])
        order = np.argsort(parent, kind="stable")
        ps = parent[order]
        starts = np.r_[0, np.flatnonzero(ps[1:] != ps[:-1]) + 1]
        rank = np.arange(ps.size) - np.repeat(starts, np.diff(np.r_[starts, ps.size]))
        keep = np.zeros(edges.shape[0], bool)
        keep[order[rank < 2]] = True
        edges = edges[keep]
    return TrackGraph.from_arrays(nodes, edges, next_track_id=auto.next_track_id)


@dataclass
class _State:
    """What a run step sets, or what its undo restores."""

    graph: TrackGraph
    provenance: list[dict[str, Any]]
    curated: list[int]
    labels: FrameStash | None = None  # frames written into the project's labels
    no_labels: bool = False  # the project has no labels at all (before a first run)
    auto_present: bool = True
    auto_from_labels: bool = False  # (re)create the snapshot as a copy of the labels
    auto_frames: FrameStash | None = None  # frames written into the snapshot's labels
    auto_share: frozenset[int] = frozenset()  # snapshot frames taken from the labels
    auto_graph: TrackGraph | None = None
    auto_info: dict[str, Any] = field(default_factory=dict)
    nodes_measured: bool = False  # the lineage's nodes are the labels' cells (Project)


def _put(project: Project, s: _State) -> None:
    """Make the project match state ``s`` (labels, lineage, snapshot, provenance, curation)."""
    project.sync_graph()
    written: frozenset[int] = frozenset()
    if s.no_labels:
        project.drop_labels()
    elif s.labels is not None:
        movie = project.ensure_labels()
        for t in s.labels:
            movie.set_frame(t, s.labels[t])
        written = frozenset(s.labels)
    project.replace_graph(s.graph, synced=written)
    project.nodes_measured = s.nodes_measured
    if not s.auto_present:
        project.auto = None
    elif s.auto_from_labels or project.auto is None:
        labels = None if project.labels is None else project.labels.copy_shared()
        project.auto = AutoSnapshot(labels, s.auto_graph or TrackGraph(), s.auto_info)
    else:
        auto = project.auto
        if auto.labels is not None:
            if s.auto_frames is not None:
                for t in s.auto_frames:
                    auto.labels.set_frame(t, s.auto_frames[t])
            if project.labels is not None:
                for t in sorted(s.auto_share):
                    auto.labels.share_frame_from(project.labels, t)
        if s.auto_graph is not None:
            auto.graph = s.auto_graph
        auto.info = dict(s.auto_info)
    md = project.metadata
    md.provenance = s.provenance
    md.curated_frames = s.curated


class RunStep(Action):
    """One automatic run (segmentation, tracking, import) as one undoable step.

    Parameters
    ----------
    step
        Provenance step name (``"segment"``, ``"track"``, ``"retrack"``, ``"import"``, …).
    params
        Provenance parameters of the run.
    frames
        New label frames (segmentation, import); None for a run that only links.
    graph
        The new lineage (tracking); None for segmentation (links into re-segmented frames are
        dropped, the others kept).
    description
        Text of the undo step.
    nodes_measured
        ``graph``'s nodes are the cells of the project's labels as measured (every tracker
        builds them so); the project then takes its cells from the nodes next time
        (:attr:`Project.nodes_measured`). Ignored for label frames (those frames are
        re-measured, the others keep what they had).
    """

    marks_curated = False  # an automatic result is not a curation

    def __init__(
        self, step: str, params: dict[str, Any], *, frames: FrameStash | None = None,
        graph: TrackGraph | None = None, description: str | None = None,
        nodes_measured: bool = False,
    ) -> None:
        if (frames is None) == (graph is None):
            raise ValueError("a run step sets either label frames or a lineage")
        self.step, self.params = step, dict(params)
        self.new_frames, self.new_graph = frames, graph
        self.nodes_measured = nodes_measured
        self.description = description or step
        self._after: _State | None = None
        self._before: _State | None = None

    @property
    def frames(self) -> frozenset[int]:
        return frozenset(self.new_frames) if self.new_frames is not None else frozenset()

    def apply(self, project: Project) -> None:
        if self._after is None:
            self._first_apply(project)
        else:
            _put(project, self._after)

    def inverse(self) -> Action:
        if self._before is None or self._after is None:
            raise RuntimeError("a run step can only be undone after it was applied")
        return _Restore(self, f"undo {self.description}")

    # ------------------------------------------------------------------ first application
    def _first_apply(self, project: Project) -> None:
        project.sync_graph()
        md = project.metadata
        auto = project.auto
        written = sorted(self.frames)
        labels = project.labels
        before = _State(
            graph=project.graph, provenance=list(md.provenance), curated=list(md.curated_frames),
            no_labels=labels is None, auto_present=auto is not None,
            auto_graph=None if auto is None else auto.graph,
            auto_info={} if auto is None else dict(auto.info),
            nodes_measured=project.nodes_measured,
        )
        if labels is not None and written:
            before.labels = FrameStash.of(((t, labels.frame(t)) for t in written),
                                          labels.shape[1:])
        if auto is not None and auto.labels is not None and written:
            before.auto_frames = FrameStash.of(((t, auto.labels.frame(t)) for t in written),
                                               auto.labels.shape[1:])
        entry = provenance_entry(self.step, **self.params)
        curated = set(md.curated_frames)
        if self.new_frames is not None:
            graph = without_frames_links(before.graph, written)
            curated -= set(written)  # re-segmented frames are automatic again
        else:
            assert self.new_graph is not None
            graph = self.new_graph
        measured = before.nodes_measured if self.new_graph is None else self.nodes_measured
        after = _State(graph=graph, provenance=[*md.provenance, entry], curated=sorted(curated),
                       labels=self.new_frames, auto_info={"step": self.step, **self.params},
                       nodes_measured=measured)
        # write the labels first: the snapshot is derived from them
        _put(project, _State(graph=graph, provenance=after.provenance, curated=after.curated,
                             labels=self.new_frames, auto_present=auto is not None,
                             auto_graph=None if auto is None else auto.graph,
                             auto_info=before.auto_info, nodes_measured=measured))
        if self.new_frames is not None:
            movie = project.labels
            assert movie is not None
            project.note_labels_used(_resync(graph, movie, written))
        if auto is None or auto.labels is None:
            after.auto_from_labels = True
            after.auto_graph = project.graph.copy()
        elif self.new_frames is not None:
            after.auto_share = frozenset(written)
            after.auto_graph = without_frames_links(auto.graph, written)
        else:
            after.auto_graph = merge_snapshot_links(auto.graph, graph, curated)
        self._before, self._after = before, after
        _put(project, _State(**{**after.__dict__, "labels": None}))
        if not after.auto_from_labels and self.new_frames is not None:
            assert project.auto is not None and project.auto.labels is not None
            _resync(project.auto.graph, project.auto.labels, written)


class _Restore(Action):
    """Undo of a :class:`RunStep`: puts back everything the run changed."""

    marks_curated = False

    def __init__(self, step: RunStep, description: str) -> None:
        self._step = step
        self.description = description

    @property
    def frames(self) -> frozenset[int]:
        return self._step.frames

    def apply(self, project: Project) -> None:
        assert self._step._before is not None
        _put(project, self._step._before)

    def inverse(self) -> Action:
        return self._step
