"""Stateful property test of the session: runs, curation verbs, paint strokes, curated-frame
marks, undo/redo and save/reopen in random order, with the project's invariants checked after
every step and a full undo (then redo) checked at the end of every example."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from skimage.measure import label as connected_components

from h4tracks.core.actions import MarkCurated, RemoveEdge
from h4tracks.core.graph import TrackGraph
from h4tracks.core.measure import measure_frame
from h4tracks.core.project import Project
from h4tracks.core.runs import RunStep
from h4tracks.core.segmentation import label_edits as seg
from h4tracks.core.session import Session
from h4tracks.core.stash import FrameStash
from h4tracks.core.store import open_project, save_project
from h4tracks.core.tracking import compute_tracking
from h4tracks.core.tracking import link_edits as trk
from h4tracks.errors import H4TracksError

T, Y, X = 6, 40, 40
_NODE_COLS = ("t", "label", "y", "x", "area")


# ---------------------------------------------------------------------------------- helpers
def _graph_state(g: TrackGraph) -> tuple:
    """Nodes, edges and the grouping of nodes into tracks (not the track numbers, which an
    undo may change: see the restoration contract in h4tracks.core.actions)."""
    tab = g.node_table()
    _, first, inv = np.unique(tab["track_id"], return_index=True, return_inverse=True)
    partition = np.argsort(np.argsort(first))[inv.ravel()]
    return (*(tab[c].tobytes() for c in _NODE_COLS), g.edge_array().tobytes(),
            partition.tobytes())


def _state(p: Project) -> tuple:
    """Everything undo must restore (metadata.max_label excluded: it only grows)."""
    labels = None if p.labels is None else np.asarray(p.labels).tobytes()
    auto = None
    if p.auto is not None:
        auto = (None if p.auto.labels is None else np.asarray(p.auto.labels).tobytes(),
                _graph_state(p.auto.graph), repr(p.auto.info))
    md = p.metadata.model_dump(exclude={"max_label"})
    return labels, _graph_state(p.graph), auto, md


def _check_graph_matches(g: TrackGraph, labels: Any, what: str) -> None:
    """Nodes are exactly the cells of ``labels``, measured; edges join nodes, forward."""
    tab = g.node_table()
    if labels is None:
        assert len(g) == 0, f"{what}: nodes without labels"
        assert g.n_edges == 0
        return
    n = labels.shape[0]
    assert tab["t"].size == 0 or (tab["t"].min() >= 0 and tab["t"].max() < n)
    for t in range(n):
        m = measure_frame(labels.frame(t))
        on = tab["t"] == t
        order = np.argsort(tab["label"][on], kind="stable")
        assert tab["label"][on][order].tolist() == m.labels.tolist(), f"{what}: frame {t}"
        assert np.array_equal(tab["area"][on][order], m.areas), f"{what}: areas frame {t}"
        assert np.array_equal(tab["y"][on][order], m.centroids[:, 0]), f"{what}: y frame {t}"
        assert np.array_equal(tab["x"][on][order], m.centroids[:, 1]), f"{what}: x frame {t}"
    for pt, pl, ct, cl in g.edge_array().tolist():
        assert (pt, pl) in g and (ct, cl) in g, f"{what}: dangling edge {(pt, pl, ct, cl)}"
        assert ct > pt, f"{what}: edge back in time {(pt, pl, ct, cl)}"


def _cells(frame: np.ndarray) -> list[int]:
    ids = np.unique(frame)
    return ids[ids != 0].tolist()


def _fragmented(frame: np.ndarray) -> bool:
    """Whether some label of ``frame`` is in several 4-connected pieces."""
    return int(connected_components(frame, background=0, connectivity=1).max()) > len(
        _cells(frame))


def _pixel_of(data: st.DataObject, frame: np.ndarray, lab: int) -> tuple[int, int]:
    ys, xs = np.nonzero(frame == lab)
    i = data.draw(st.integers(0, ys.size - 1), label="pixel")
    return int(ys[i]), int(xs[i])


def _rect(data: st.DataObject, hmax: int = 8) -> tuple[slice, slice]:
    y0 = data.draw(st.integers(0, Y - 1), label="y0")
    x0 = data.draw(st.integers(0, X - 1), label="x0")
    h = data.draw(st.integers(1, hmax), label="h")
    w = data.draw(st.integers(1, hmax), label="w")
    return slice(y0, min(Y, y0 + h)), slice(x0, min(X, x0 + w))


# ---------------------------------------------------------------------------- the machine
class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        image = np.random.default_rng(0).integers(0, 255, (T, Y, X), dtype=np.uint8)
        self.session = Session(Project(image))
        self.p = self.session.project
        self.initial = _state(self.p)
        self.max_seen = 0
        self.tmp = Path(tempfile.mkdtemp(prefix="h4tracks-prop-"))
        self.saves = 0
        self.saved: tuple | None = None  # the state last saved
        # timeline[i]: the state with i steps in the undo stack (the redo states follow)
        self.timeline = [self.initial]
        self.top: Any = None  # the last step of the undo stack when last seen

    # ------------------------------------------------------------------ helpers
    def _try(self, name: str, build: Any) -> None:
        """Build an action and do it; a H4TracksError while building is a refusal."""
        try:
            action = build()
        except H4TracksError:
            event(f"{name}: refused")
            return
        auto = self._auto_labels()
        self.session.do(action)
        assert self._auto_labels() == auto, "a user edit changed the snapshot's labels"
        event(f"{name}: done")

    def _auto_labels(self) -> bytes | None:
        auto = self.p.auto
        return None if auto is None or auto.labels is None else np.asarray(auto.labels).tobytes()

    def _frame_with_cells(self, data: st.DataObject, at_least: int = 1) -> int | None:
        if self.p.labels is None:
            return None
        ok = [t for t in range(T) if len(_cells(self.p.labels.frame(t))) >= at_least]
        return data.draw(st.sampled_from(ok), label="t") if ok else None

    # ------------------------------------------------------------------ runs
    @initialize(data=st.data())
    def first_segmentation(self, data: st.DataObject) -> None:
        """Most examples start from a segmented movie (itself an undoable step)."""
        if data.draw(st.integers(0, 4), label="start empty") > 0:
            self.segmentation_run(data)

    @rule(data=st.data())
    def segmentation_run(self, data: st.DataObject) -> None:
        a = data.draw(st.integers(0, T - 1), label="first frame")
        b = data.draw(st.integers(a, T - 1), label="last frame")
        k = data.draw(st.integers(1, 5), label="k")
        masks = {}
        for t in range(a, b + 1):
            m = np.zeros((Y, X), np.uint32)
            for _ in range(data.draw(st.integers(0, 3), label="rectangles")):
                ys, xs = _rect(data, 14)
                m[ys, xs] = data.draw(st.integers(1, k), label="id")
            masks[t] = m
        event("segmentation")
        self.session.apply(RunStep("segment", {"model": "fake"},
                                   frames=FrameStash.of(masks, (Y, X)), description="seg"))
        p = self.p
        for t, m in masks.items():  # the run's frames: labels and snapshot, not curated
            assert np.array_equal(p.labels.frame(t), m)
            assert np.array_equal(p.auto.labels.frame(t), m)
            assert t not in p.curated_frames

    @rule(method=st.sampled_from(["overlap", "lap"]))
    def tracking_run(self, method: str) -> None:
        try:
            step = compute_tracking(self.p, method)
        except H4TracksError as e:
            event(f"tracking: refused ({'no labels' if self.p.labels is None else e})")
            return
        auto = self._auto_labels()
        self.session.apply(step)
        assert self._auto_labels() == auto, "a tracking run changed the snapshot's labels"
        event(f"tracking ({method}): done")

    # ------------------------------------------------------------------ curation verbs
    @rule(data=st.data())
    def remove_cell(self, data: st.DataObject) -> None:
        t = self._frame_with_cells(data)
        if t is None:
            return
        frame = self.p.labels.frame(t)
        lab = data.draw(st.sampled_from(_cells(frame)), label="cell")
        y, x = _pixel_of(data, frame, lab)
        self._try("remove_cell", lambda: seg.remove_cell(self.p, t, y, x))

    @rule(data=st.data())
    def merge_cells(self, data: st.DataObject) -> None:
        t = self._frame_with_cells(data, 2)
        if t is None:
            return
        frame = self.p.labels.frame(t)
        keep, drop = data.draw(st.permutations(_cells(frame)), label="cells")[:2]
        first, second = _pixel_of(data, frame, keep), _pixel_of(data, frame, drop)
        self._try("merge_cells", lambda: seg.merge_cells(self.p, t, first, second))

    @rule(data=st.data())
    def separate_region(self, data: st.DataObject) -> None:
        t = self._frame_with_cells(data)
        if t is None:
            return
        frame = self.p.labels.frame(t)
        lab = data.draw(st.sampled_from(_cells(frame)), label="cell")
        py, px = _pixel_of(data, frame, lab)  # a rectangle around a pixel of the cell
        y0, x0 = py - data.draw(st.integers(0, 4)), px - data.draw(st.integers(0, 4))
        ys = slice(max(0, y0), y0 + data.draw(st.integers(1, 8)))
        xs = slice(max(0, x0), x0 + data.draw(st.integers(1, 8)))
        mask = np.zeros((Y, X), bool)
        mask[ys, xs] = True
        if data.draw(st.booleans(), label="only that cell"):
            mask &= frame == lab
        choice = data.draw(st.sampled_from(["auto", "next", "far", "other"]), label="new id")
        new = {"auto": None, "next": self.session.next_free_label(),
               "far": self.session.next_free_label() + 7,
               "other": data.draw(st.integers(1, 6), label="id")}[choice]
        self._try("separate_region", lambda: seg.separate_region(self.p, t, mask, new))

    @rule(data=st.data())
    def relabel_unique(self, data: st.DataObject) -> None:
        if self.p.labels is None:
            return
        split = [t for t in range(T) if _fragmented(self.p.labels.frame(t))]
        t = data.draw(st.sampled_from(split), label="t") if split else (
            self._frame_with_cells(data))
        if t is not None:
            self._try(f"relabel_unique{'' if split else ' (nothing to split)'}",
                      lambda: seg.relabel_unique(self.p, t))

    @rule(data=st.data())
    def link(self, data: st.DataObject) -> None:
        nodes = list(self.p.graph) if self.p.labels is not None else []
        if len(nodes) < 2:
            return
        g = self.p.graph
        a = data.draw(st.sampled_from(nodes), label="parent")
        later = [n for n in nodes if n[0] > a[0]]
        orphans = [n for n in later if g.predecessor(n) is None]
        if orphans and data.draw(st.booleans(), label="orphan child"):
            later = orphans
        if not later or data.draw(st.booleans(), label="any second cell"):
            b = data.draw(st.sampled_from(nodes), label="child")
        else:
            b = data.draw(st.sampled_from(later), label="child")
        self._try("link", lambda: trk.link(self.p, a, b))

    @rule(data=st.data())
    def unlink(self, data: st.DataObject) -> None:
        g = self.p.graph
        nodes = list(g) if self.p.labels is not None else []
        if not nodes:
            return
        linked = [n for n in nodes if g.predecessor(n) is not None or g.successors(n)]
        pool = linked if linked and data.draw(st.booleans(), label="linked") else nodes
        first = data.draw(st.sampled_from(pool), label="first")
        last = first
        for _ in range(data.draw(st.integers(0, 3), label="walk")):
            kids = g.successors(last)
            if not kids:
                break
            last = data.draw(st.sampled_from(kids), label="step")
        if data.draw(st.booleans(), label="swap"):
            first, last = last, first
        self._try("unlink", lambda: trk.unlink(self.p, first, last))

    @rule(data=st.data())
    def delete_track(self, data: st.DataObject) -> None:
        g = self.p.graph
        ids = g.track_ids().tolist() if self.p.labels is not None else []
        linked = sorted({g.track_id(n) for n in g if g.predecessor(n) or g.successors(n)})
        if linked and data.draw(st.booleans(), label="linked"):
            ids = linked
        if ids:
            tid = data.draw(st.sampled_from(ids), label="track")
            self._try("delete_tracks", lambda: trk.delete_tracks(self.p, [tid]))

    # ------------------------------------------------------------------ napari-like paint
    @rule(data=st.data())
    def paint(self, data: st.DataObject) -> None:
        """A napari stroke: 1-2 dabs (brush rectangle or fill of a whole cell), written into
        the labels first, then reported as data_setitem atoms ``(indices, old, new)``."""
        labels = self.p.labels
        if labels is None:
            return
        existing = sorted({lab for t in range(T) for lab in _cells(labels.frame(t))})
        several_frames = data.draw(st.booleans(), label="several frames")
        edges = self.p.graph.edge_array().tolist()  # read before anything is painted
        if several_frames and edges and data.draw(st.booleans(), label="along a link"):
            # a 3D brush / fill through both cells of a link
            pt, pl, ct, cl = data.draw(st.sampled_from(edges), label="link")
            targets: list[tuple[int, Any]] = [(pt, pl), (ct, cl)]
        else:
            t0 = data.draw(st.integers(0, T - 1), label="t")
            targets = [
                # several frames: nearby ones, where cells are linked
                (min(T - 1, t0 + data.draw(st.integers(0, 2), label="dt"))
                 if several_frames else t0,
                 data.draw(st.sampled_from(["rect", "fill"]), label="shape"))
                for _ in range(data.draw(st.integers(1, 2), label="dabs"))
            ]
        plan = []
        for t, shape in targets:
            kind = data.draw(st.sampled_from(["new", "existing", "erase"]), label="value")
            if kind == "new":  # read before anything is painted (it reads the graph)
                value = self.session.next_free_label()
            elif kind == "existing" and existing:
                value = data.draw(st.sampled_from(existing), label="id")
            else:
                value = 0
            plan.append((t, value, shape))
        auto = self._auto_labels()
        atoms = []
        for t, value, shape in plan:
            cells = _cells(labels.frame(t))
            if shape == "fill" and cells:  # the fill bucket on a cell
                shape = data.draw(st.sampled_from(cells), label="filled cell")
            if isinstance(shape, int):
                ys, xs = np.nonzero(labels.frame(t) == shape)
            else:
                sy, sx = _rect(data)
                yy, xx = np.mgrid[sy, sx]
                ys, xs = yy.ravel(), xx.ravel()
            ts = np.full(ys.size, t)
            old = np.asarray(labels[ts, ys, xs]).copy()
            labels[ts, ys, xs] = value
            atoms.append(((ts, ys, xs), old, value))
        step = self.session.paint_step(atoms)
        if step is None:
            event("paint: no change")
            return
        lost = [(a.parent, a.child) for a in step.actions if isinstance(a, RemoveEdge)]
        assert len(lost) == len(set(lost)), "a lost link recorded twice"
        self.session.record(step)
        assert self._auto_labels() == auto, "painting changed the snapshot's labels"
        event(f"paint: recorded ({'several frames' if several_frames else 'one frame'})")

    # ------------------------------------------------------------------ marks, undo, redo
    @rule(frames=st.sets(st.integers(0, T - 1), min_size=1, max_size=3), on=st.booleans())
    def mark_curated(self, frames: set[int], on: bool) -> None:
        # frames already marked included on purpose: undo must leave their mark as it was
        self.session.do(MarkCurated(frames, on))

    @precondition(lambda self: self.session.history.can_undo)
    @rule()
    def undo(self) -> None:
        self.session.undo()
        self._at_timeline("undo")
        event("undo")

    def _at_timeline(self, what: str) -> None:
        """After an undo/redo: the state is the one the timeline had at that point."""
        steps = self.session.history.undo_stack
        assert _state(self.p) == self.timeline[len(steps)], f"{what} to step {len(steps)}"
        self.top = steps[-1] if steps else None

    @precondition(lambda self: self.session.history.can_redo)
    @rule()
    def redo(self) -> None:
        self.session.redo()
        self._at_timeline("redo")
        event("redo")

    # ------------------------------------------------------------------ save / reopen
    @precondition(lambda self: self.saves < 2)  # slow (zarr + GEFF): at most twice
    @rule()
    def save_and_reopen(self) -> None:
        path = self.tmp / "p.zarr"
        save_project(self.p, None if self.p.path is not None else path)
        event("save" if self.saves == 0 else "save again")
        self.saves += 1
        assert not self.p.has_unsaved_changes
        self.saved = _state(self.p)
        q = open_project(path)
        assert _state(q) == _state(self.p)
        assert q.metadata.model_dump() == self.p.metadata.model_dump()
        tab_p, tab_q = self.p.graph.node_table(), q.graph.node_table()
        assert np.array_equal(tab_p["track_id"], tab_q["track_id"])
        if q.labels is not None:
            assert np.asarray(q.labels).dtype == np.uint32

    # ------------------------------------------------------------------ invariants
    @invariant()
    def consistent(self) -> None:
        p = self.p
        steps = self.session.history.undo_stack
        if (steps[-1] if steps else None) is not self.top:  # a new step was done/recorded
            self.timeline = [*self.timeline[:len(steps)], _state(p)]
            self.top = steps[-1]
        labels = p.labels
        if labels is not None:
            assert labels.shape == p.shape
        _check_graph_matches(p.graph, labels, "project")
        if p.auto is not None:
            auto_labels = p.auto.labels
            if auto_labels is not None:
                assert auto_labels.shape == p.shape
            _check_graph_matches(p.auto.graph, auto_labels, "snapshot")
        cur = p.metadata.curated_frames
        assert cur == sorted(set(cur)) and all(0 <= t < T for t in cur)
        if self.saved is not None and not p.has_unsaved_changes:  # never a false "saved"
            assert _state(p) == self.saved, "has_unsaved_changes is False after a change"
        hi = 0 if labels is None else int(np.asarray(labels).max(initial=0))
        assert hi <= p.metadata.max_label
        self.max_seen = max(self.max_seen, hi)
        assert self.session.next_free_label() > self.max_seen

    def teardown(self) -> None:
        try:  # undo everything (back to the initial project), then redo everything
            before = _state(self.p)
            n = 0
            while self.session.history.can_undo:
                self.session.undo()
                self._at_timeline("undo")
                self.consistent()
                n += 1
            assert _state(self.p) == self.initial
            for _ in range(n):
                self.session.redo()
                self._at_timeline("redo")
                self.consistent()
            assert _state(self.p) == before
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


SessionMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=15, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestSession = pytest.mark.slow(SessionMachine.TestCase)


# ------------------------------------------------------------------ regressions found by it
@pytest.mark.parametrize("curated", [True, False])
def test_mark_curated_undo_restores_the_previous_marks(curated: bool) -> None:
    """Found by the machine: the inverse flipped every frame named, changed or not."""
    image = np.zeros((T, Y, X), np.uint8)
    session = Session(Project(image))
    session.project.set_curated([0], curated)  # frame 0 already has the mark set below
    session.do(MarkCurated([0], curated))
    session.undo()
    assert session.project.metadata.curated_frames == ([0] if curated else [])


def test_paint_erasing_both_ends_of_a_link_can_be_undone() -> None:
    """Found by the machine: the link was recorded once per frame and re-added twice."""
    masks = np.zeros((3, Y, X), np.uint32)
    masks[:, 2:6, 2:6] = 1  # one cell, linked 0 -> 1 -> 2 by tracking
    session = Session(Project(np.zeros(masks.shape, np.uint8)))
    session.apply(RunStep("segment", {}, frames=FrameStash.of(dict(enumerate(masks)), (Y, X))))
    session.apply(compute_tracking(session.project, "overlap"))
    p = session.project
    links = p.graph.edge_array().copy()
    atoms = []
    for t in (0, 1):  # one stroke (3D brush / data_setitem) erasing the cell in frames 0, 1
        ys, xs = np.nonzero(p.labels.frame(t) == 1)
        ts = np.full(ys.size, t)
        atoms.append(((ts, ys, xs), p.labels[ts, ys, xs].copy(), 0))
        p.labels[ts, ys, xs] = 0
    session.record(session.paint_step(atoms))
    session.undo()  # was: GraphError, cell (1, 1) already has a parent
    assert np.array_equal(p.graph.edge_array(), links)
