"""Tests of undoable actions and the undo/redo history."""

from __future__ import annotations

import numpy as np
import pytest

from h4tracks.core.actions import (
    Action,
    ActionGroup,
    AddEdge,
    History,
    MarkCurated,
    RemoveEdge,
    SetLabelPixels,
    SetMetadata,
    same_lineage,
)
from h4tracks.core.graph import GraphError, TrackGraph
from h4tracks.core.measure import measure_frame
from h4tracks.core.project import Project
from h4tracks.errors import H4TracksError


def make_project() -> Project:
    """3 frames of 10 x 12 with cell 1 (left) and cell 2 (right) in every frame."""
    labels = np.zeros((3, 10, 12), np.uint32)
    labels[:, 2:5, 1:4] = 1
    labels[:, 5:9, 7:11] = 2
    return Project(np.zeros(labels.shape, np.uint16), labels)


def assert_consistent(project: Project) -> None:
    g = project.graph
    for t in range(project.n_frames):
        m = measure_frame(project.labels.frame(t))
        keys = g.frame_nodes(t)
        assert [k[1] for k in keys] == m.labels.tolist()
        for k, c, a in zip(keys, m.centroids, m.areas, strict=True):
            node = g.node(k)
            assert (node["y"], node["x"], node["area"]) == (c[0], c[1], a)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Action] = []

    def __call__(self, action: Action) -> None:
        self.seen.append(action)


# ------------------------------------------------------------------------ SetLabelPixels
def test_set_label_pixels_do_undo_redo_byte_identical() -> None:
    p = make_project()
    before = np.asarray(p.labels).copy()
    graph_before = p.graph.copy()
    idx = np.ravel_multi_index(([0, 0, 3], [0, 1, 2]), (10, 12))
    frame = p.labels.frame(1)
    a = SetLabelPixels(1, idx, frame.ravel()[idx], [5, 5, 5])
    h = History()
    h.do(a, p)
    after = np.asarray(p.labels).copy()
    assert after[1, 0, 0] == after[1, 0, 1] == after[1, 3, 2] == 5
    assert np.count_nonzero(after != before) == 3
    assert 1 in p.labels.dirty
    # cell 5 is new, cell 1 lost a pixel and was re-measured
    assert (1, 5) in p.graph
    assert p.graph.node((1, 1))["area"] == 8
    assert_consistent(p)

    h.undo(p)
    restored = np.asarray(p.labels)
    assert restored.tobytes() == before.tobytes()
    assert restored.dtype == np.uint32
    assert (1, 5) not in p.graph
    assert p.graph == graph_before  # no edges involved: exact equality
    assert_consistent(p)

    h.redo(p)
    assert np.asarray(p.labels).tobytes() == after.tobytes()
    assert_consistent(p)


def test_set_label_pixels_is_sparse_and_checks_stale_state() -> None:
    p = make_project()
    before = p.labels.frame(0).copy()
    after = before.copy()
    after[2:5, 1:4] = 7
    a = SetLabelPixels.from_frames(0, before, after)
    assert a.n_pixels == 9
    assert a.indices.dtype == np.intp
    assert a.old.dtype == a.new.dtype == np.uint32
    assert np.all(a.old == 1) and np.all(a.new == 7)
    a.apply(p)
    with pytest.raises(H4TracksError, match="changed"):
        a.apply(p)  # the pixels are no longer the recorded old values
    a.inverse().apply(p)
    assert np.array_equal(p.labels.frame(0), before)


def test_set_label_pixels_empty_and_mismatched() -> None:
    p = make_project()
    SetLabelPixels(0, [], [], []).apply(p)
    assert not p.labels.dirty
    with pytest.raises(ValueError, match="same length"):
        SetLabelPixels(0, [1, 2], [0], [1, 1])
    no_labels = Project(np.zeros((2, 4, 4), np.uint16))
    with pytest.raises(H4TracksError, match="no labels"):
        SetLabelPixels(0, [1], [0], [1]).apply(no_labels)


# ------------------------------------------------------------------------ edges
def test_edge_actions_are_inverses() -> None:
    p = make_project()
    h = History()
    h.do(AddEdge((0, 1), (1, 1)), p)
    h.do(AddEdge((1, 1), (2, 1)), p)
    assert p.graph.track_id((0, 1)) == p.graph.track_id((2, 1))
    linked = p.graph.copy()
    assert isinstance(AddEdge((0, 1), (1, 1)).inverse(), RemoveEdge)
    assert isinstance(RemoveEdge((0, 1), (1, 1)).inverse(), AddEdge)

    h.do(RemoveEdge((0, 1), (1, 1)), p)
    assert not p.graph.has_edge((0, 1), (1, 1))
    assert p.graph.track_id((0, 1)) != p.graph.track_id((1, 1))
    h.undo(p)
    assert p.graph.has_edge((0, 1), (1, 1))
    assert same_lineage(p.graph, linked)
    h.undo(p)
    h.undo(p)
    assert p.graph.n_edges == 0
    h.redo(p)
    h.redo(p)
    assert same_lineage(p.graph, linked)


def test_failed_edge_action_changes_nothing() -> None:
    p = make_project()
    h = History()
    with pytest.raises(GraphError):
        h.do(RemoveEdge((0, 1), (1, 1)), p)  # not linked
    assert not h.can_undo


# ------------------------------------------------------------------------ groups
def test_group_inverse_is_reversed_and_rolls_back_on_failure() -> None:
    p = make_project()
    before = np.asarray(p.labels).copy()
    g = ActionGroup([AddEdge((0, 1), (1, 1)), AddEdge((1, 1), (2, 1))], "link")
    inv = g.inverse()
    assert [type(a) for a in inv.actions] == [RemoveEdge, RemoveEdge]
    assert inv.actions[0].parent == (1, 1)
    g.apply(p)
    assert p.graph.n_edges == 2
    inv.apply(p)
    assert p.graph.n_edges == 0

    idx = np.ravel_multi_index(([0], [0]), (10, 12))
    bad = ActionGroup(
        [SetLabelPixels(0, idx, [0], [9]), AddEdge((0, 1), (1, 1)), AddEdge((0, 1), (0, 2))]
    )
    with pytest.raises(GraphError):
        bad.apply(p)  # the third action goes backwards in time
    assert np.asarray(p.labels).tobytes() == before.tobytes()
    assert p.graph.n_edges == 0
    assert_consistent(p)


# ------------------------------------------------------------------------ history
def test_history_bounds_redo_clearing_and_callbacks() -> None:
    p = make_project()
    h = History(max_length=3)
    rec = Recorder()
    h.on_change.append(rec)
    assert not h.can_undo and not h.can_redo
    with pytest.raises(H4TracksError, match="undo"):
        h.undo(p)
    with pytest.raises(H4TracksError, match="redo"):
        h.redo(p)
    for v in range(1, 6):
        before = p.labels.frame(0)[0, :1].copy()
        h.do(SetLabelPixels(0, [0], before, [v]), p)
    assert len(h) == 3
    for _ in range(3):
        h.undo(p)
    assert not h.can_undo
    # the two oldest steps were forgotten: pixel stays at the value after step 2
    assert p.labels.frame(0)[0, 0] == 2
    assert h.can_redo and len(h.redo_stack) == 3
    h.redo(p)
    assert p.labels.frame(0)[0, 0] == 3
    h.do(SetLabelPixels(0, [0], [3], [9]), p)
    assert not h.can_redo
    assert len(rec.seen) == 5 + 3 + 1 + 1
    assert rec.seen[5].description.startswith("undo")
    h.clear()
    assert not h.can_undo and not h.can_redo
    with pytest.raises(ValueError):
        History(max_length=0)


def test_default_history_length() -> None:
    p = make_project()
    h = History()
    assert h.max_length == 200
    for i in range(205):
        v = p.labels.frame(0)[0, :1].copy()
        h.do(SetLabelPixels(0, [0], v, [i + 1]), p)
    assert len(h) == 200


def test_same_lineage() -> None:
    a = TrackGraph()
    for t in range(3):
        a.add_node((t, 1), y=1.0, x=1.0, area=1)
    a.add_edge((0, 1), (1, 1))
    b = a.copy()
    assert same_lineage(a, b)
    # same partition, different ids
    c = TrackGraph()
    for t in range(3):
        c.add_node((t, 1), y=1.0, x=1.0, area=1)
    c.add_node((5, 1), y=1.0, x=1.0, area=1)
    c.remove_node((5, 1))
    c.add_edge((1, 1), (2, 1))
    c.remove_edge((1, 1), (2, 1))
    c.add_edge((0, 1), (1, 1))
    assert c != a and same_lineage(a, c)
    b.remove_edge((0, 1), (1, 1))
    assert not same_lineage(a, b)
    b.add_edge((0, 1), (1, 1))
    b.update_node((2, 1), area=3)
    assert not same_lineage(a, b)


# ----------------------------------------------------------------------------- curated frames

def test_user_edits_mark_their_frames_curated_in_the_same_undo_step() -> None:
    p = make_project()
    h = History()
    frame = p.labels.frame(1)
    after = np.where(frame == 2, 0, frame)
    h.do(SetLabelPixels.from_frames(1, frame, after), p)
    assert p.curated_frames == {1}
    h.do(AddEdge((0, 1), (2, 1)), p)  # a link marks both of its frames
    assert p.curated_frames == {0, 1, 2}
    h.undo(p)
    assert p.curated_frames == {1}
    h.undo(p)
    assert p.curated_frames == frozenset() and len(h.redo_stack) == 2
    h.redo(p)
    assert p.curated_frames == {1}
    # an edit of an already curated frame adds no marking step
    h.do(SetLabelPixels.from_frames(1, p.labels.frame(1), np.zeros((10, 12))), p)
    assert not isinstance(h.undo_stack[-1], ActionGroup)


def test_mark_curated_is_undoable_and_persisted(tmp_path) -> None:
    from h4tracks.core.store import open_project, save_project

    p = make_project()
    h = History()
    h.do(MarkCurated([0, 2]), p)
    assert p.curated_frames == {0, 2}
    h.do(MarkCurated([2], curated=False), p)
    assert p.curated_frames == {0}
    h.undo(p)
    assert p.curated_frames == {0, 2}
    assert p.summary()["curated frames"] == "0, 2"
    save_project(p, tmp_path / "p.zarr")
    assert open_project(tmp_path / "p.zarr").curated_frames == {0, 2}
    with pytest.raises(IndexError):
        p.set_curated([3])


def test_set_metadata_is_undoable_and_typing_merges_into_one_step() -> None:
    p = make_project()
    h = History()
    for v in (0.6, 0.65, 0.655):  # a number typed digit by digit
        h.do(SetMetadata.from_project(p, {"pixel_size": v}), p, merge=True)
    assert p.metadata.pixel_size == 0.655 and len(h) == 1
    h.do(SetMetadata.from_project(p, {"time_unit": "min"}), p, merge=True)
    assert len(h) == 2  # another field: a new step
    h.undo(p)
    h.undo(p)
    assert p.metadata.pixel_size is None and p.metadata.time_unit == "s"
    assert p.curated_frames == frozenset()  # metadata edits do not curate frames
    h.redo(p)
    assert p.metadata.pixel_size == 0.655
    assert len(SetMetadata.from_project(p, {"pixel_size": 0.655})) == 0  # nothing to change
    with pytest.raises(ValueError):
        h.do(SetMetadata.from_project(p, {"pixel_size": -1.0}), p)
    assert p.metadata.pixel_size == 0.655 and len(h) == 1
    with pytest.raises(H4TracksError, match="cannot be edited"):
        SetMetadata({"provenance": []}, {})


def test_replace_graph_is_one_undo_step_keeping_earlier_edits():
    from h4tracks.core.actions import ReplaceGraph

    labels = np.zeros((2, 8, 8), np.uint16)
    labels[0, 1:3, 1:3] = 1
    labels[1, 1:3, 2:4] = 1
    labels[1, 5:7, 5:7] = 2
    project = Project(labels.astype(np.float32), labels)
    history = History()
    history.do(AddEdge((0, 1), (1, 1)), project)
    old = project.graph
    new = old.copy()
    new.remove_edge((0, 1), (1, 1))
    new.add_edge((0, 1), (1, 2))
    history.do(ReplaceGraph(new, old, "tracking (lap)"), project)
    assert project.graph is new and project.curated_frames == {0, 1}  # from the AddEdge only
    history.undo(project)
    assert project.graph is old and old.successors((0, 1)) == [(1, 1)]
    history.undo(project)  # the edit before the run still undoes
    assert old.successors((0, 1)) == []
    history.redo(project)
    history.redo(project)
    assert project.graph is new
