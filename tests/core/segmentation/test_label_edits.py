"""Tests of the curation verbs (remove / merge / separate / relabel) with undo and redo."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from h4tracks.core.actions import ActionGroup, History, RemoveEdge, same_lineage
from h4tracks.core.measure import measure_frame
from h4tracks.core.project import Project
from h4tracks.core.segmentation import (
    merge_cells,
    next_free_label,
    relabel_unique,
    remove_cell,
    separate_region,
)
from h4tracks.errors import H4TracksError, InputError

T, H, W = 4, 16, 20


def make_labels() -> np.ndarray:
    """t0: 1, 2   t1: 1, 2   t2: 1, 3, 4   t3: 1, 3 — cell 2 divides into 3 and 4 at t2.

    Cell 1 sits top-left in every frame; at t1 it also has a detached fragment (bottom-left).
    """
    lab = np.zeros((T, H, W), np.uint32)
    lab[:, 1:5, 1:6] = 1
    lab[1, 12:15, 1:3] = 1  # fragment of cell 1
    lab[0:2, 8:13, 10:16] = 2
    lab[2, 7:10, 10:14] = 3
    lab[2, 11:14, 12:17] = 4
    lab[3, 7:11, 11:15] = 3
    return lab


EDGES = [
    ((0, 1), (1, 1)), ((1, 1), (2, 1)), ((2, 1), (3, 1)),
    ((0, 2), (1, 2)), ((1, 2), (2, 3)), ((1, 2), (2, 4)), ((2, 3), (3, 3)),
]


def make_project() -> Project:
    lab = make_labels()
    p = Project(np.zeros(lab.shape, np.uint16), lab)
    for u, v in EDGES:
        p.graph.add_edge(u, v)
    return p


def snapshot(p: Project) -> tuple[bytes, object]:
    return np.asarray(p.labels).tobytes(), p.graph.copy()


def assert_restored(p: Project, snap: tuple[bytes, object]) -> None:
    labels, graph = snap
    assert np.asarray(p.labels).tobytes() == labels
    assert same_lineage(p.graph, graph)


def assert_consistent(p: Project) -> None:
    """Graph nodes of every frame = the cells of the label frame, with centroid and area."""
    g = p.graph
    for t in range(p.n_frames):
        m = measure_frame(p.labels.frame(t))
        keys = g.frame_nodes(t)
        assert [k[1] for k in keys] == m.labels.tolist(), f"frame {t}"
        for k, c, a in zip(keys, m.centroids, m.areas, strict=True):
            node = g.node(k)
            assert (node["y"], node["x"], node["area"]) == (c[0], c[1], a), k
    assert len(g) == sum(len(measure_frame(p.labels.frame(t))) for t in range(p.n_frames))


def do_undo_redo(p: Project, action) -> History:
    """Apply with a history, check consistency, undo (exact restore), redo (same result)."""
    h = History()
    before = snapshot(p)
    h.do(action, p)
    assert_consistent(p)
    after = snapshot(p)
    h.undo(p)
    assert_consistent(p)
    assert_restored(p, before)
    h.redo(p)
    assert_consistent(p)
    assert_restored(p, after)
    return h


def other_frames_equal(p: Project, ref: np.ndarray, t: int) -> None:
    for u in range(T):
        if u != t:
            assert np.array_equal(p.labels.frame(u), ref[u])


# ------------------------------------------------------------------------ fixtures sanity
def test_fixture_is_consistent() -> None:
    p = make_project()
    assert_consistent(p)
    assert p.graph.n_edges == 7 and p.graph.n_divisions == 1


# ------------------------------------------------------------------------ remove_cell
def test_remove_cell_cuts_the_track_and_undo_restores() -> None:
    p = make_project()
    ref = make_labels()
    tid = p.graph.track_id((0, 1))
    a = remove_cell(p, 1, 2, 3)
    assert p.labels.frame(1)[2, 3] == 1  # built, not applied
    assert isinstance(a, ActionGroup)
    removed = {(e.parent, e.child) for e in a.actions if isinstance(e, RemoveEdge)}
    assert removed == {((0, 1), (1, 1)), ((1, 1), (2, 1))}
    h = History()
    h.do(a, p)
    assert not np.any(p.labels.frame(1) == 1)  # fragment too: the whole cell goes
    assert np.array_equal(p.labels.frame(1) == 2, ref[1] == 2)
    other_frames_equal(p, ref, 1)
    g = p.graph
    assert (1, 1) not in g
    assert g.track_id((0, 1)) == tid and g.successors((0, 1)) == []
    assert g.predecessor((2, 1)) is None and g.successors((2, 1)) == [(3, 1)]
    assert g.n_edges == 5
    assert_consistent(p)
    do_undo_redo(make_project(), remove_cell(make_project(), 1, 2, 3))
    h.undo(p)
    assert g.successors((0, 1)) == [(1, 1)] and g.successors((1, 1)) == [(2, 1)]


def test_remove_cell_on_division_and_at_track_start() -> None:
    for t, y, x in [(1, 10, 12), (0, 2, 2), (2, 12, 15), (3, 8, 12)]:
        p = make_project()
        do_undo_redo(p, remove_cell(p, t, y, x))
        p = make_project()
        lab = int(p.labels.frame(t)[y, x])
        History().do(remove_cell(p, t, y, x), p)
        assert (t, lab) not in p.graph
        assert_consistent(p)


def test_remove_cell_on_background_errors_and_changes_nothing() -> None:
    p = make_project()
    snap = snapshot(p)
    with pytest.raises(H4TracksError, match=r"no cell at \(0, 0\) in frame 2"):
        remove_cell(p, 2, 0, 0)
    with pytest.raises(H4TracksError, match="outside"):
        remove_cell(p, 2, 100, 0)
    with pytest.raises(H4TracksError, match="out of range"):
        remove_cell(p, 9, 2, 2)
    assert_restored(p, snap)
    assert p.graph == snap[1]
    assert not p.labels.dirty


def test_stale_action_refuses_to_apply() -> None:
    p = make_project()
    a = remove_cell(p, 0, 2, 2)
    History().do(merge_cells(p, 0, (10, 12), (2, 2)), p)
    snap = snapshot(p)
    with pytest.raises(H4TracksError):
        History().do(a, p)
    assert_restored(p, snap)  # the group rolled its edge removals back


# ------------------------------------------------------------------------ next_free_label
def test_next_free_label() -> None:
    p = make_project()
    # larger than any id used anywhere in the movie (not only in the frame): an id freed by
    # a removal is never handed out again
    assert next_free_label(p, 0) == 5
    assert next_free_label(p, 2) == 5
    assert next_free_label(p) == 5
    assert next_free_label(Project(np.zeros((2, 4, 4), np.uint16))) == 1
    empty = Project(np.zeros((2, 4, 4), np.uint16), np.zeros((2, 4, 4), np.uint32))
    assert next_free_label(empty, 1) == 1


# ------------------------------------------------------------------------ merge_cells
def test_merge_cells() -> None:
    p = make_project()
    ref = make_labels()
    a = merge_cells(p, 2, (8, 11), (12, 14))  # 4 becomes 3
    removed = {(e.parent, e.child) for e in a.actions if isinstance(e, RemoveEdge)}
    assert removed == {((1, 2), (2, 4))}
    History().do(a, p)
    f = p.labels.frame(2)
    assert np.array_equal(f == 3, (ref[2] == 3) | (ref[2] == 4))
    other_frames_equal(p, ref, 2)
    g = p.graph
    assert (2, 4) not in g
    assert g.node((2, 3))["area"] == 12 + 15
    # the division is gone: 2 -> 3 -> 3 is one chain again, edges kept
    assert g.successors((1, 2)) == [(2, 3)] and g.successors((2, 3)) == [(3, 3)]
    assert g.track_id((0, 2)) == g.track_id((3, 3))
    assert_consistent(p)
    do_undo_redo(make_project(), merge_cells(make_project(), 2, (8, 11), (12, 14)))


def test_merge_cells_errors() -> None:
    p = make_project()
    with pytest.raises(H4TracksError, match="both points"):
        merge_cells(p, 2, (8, 11), (8, 12))
    with pytest.raises(H4TracksError, match="no cell"):
        merge_cells(p, 2, (8, 11), (0, 0))
    assert not p.labels.dirty


# ------------------------------------------------------------------------ separate_region
def test_separate_region_mask_and_pixels() -> None:
    p = make_project()
    ref = make_labels()
    mask = np.zeros((H, W), bool)
    mask[0:3, 0:7] = True  # rows 1-2 of cell 1 plus some background
    a = separate_region(p, 0, mask)
    History().do(a, p)
    f = p.labels.frame(0)
    assert np.all(f[1:3, 1:6] == 5)  # a new id: larger than any id used in the movie
    assert np.all(f[3:5, 1:6] == 1)
    assert np.all(f[0] == 0) and np.all(f[:, 0] == 0)  # background stays background
    other_frames_equal(p, ref, 0)
    g = p.graph
    assert g.successors((0, 1)) == [(1, 1)]  # cell 1 keeps its link
    assert g.predecessor((0, 5)) is None and g.successors((0, 5)) == []
    assert_consistent(p)
    do_undo_redo(make_project(), separate_region(make_project(), 0, mask))

    p = make_project()
    pix = np.array([[3, 2], [3, 3], [4, 2]])
    do_undo_redo(p, separate_region(p, 3, pix, new_label=42))
    assert p.labels.frame(3)[3, 2] == 42 and (3, 42) in p.graph


def test_separate_whole_cell_drops_its_links() -> None:
    p = make_project()
    a = separate_region(p, 1, make_labels()[1] == 2, new_label=9)
    removed = {(e.parent, e.child) for e in a.actions if isinstance(e, RemoveEdge)}
    assert removed == {((0, 2), (1, 2)), ((1, 2), (2, 3)), ((1, 2), (2, 4))}
    do_undo_redo(p, a)
    assert (1, 9) in p.graph and (1, 2) not in p.graph


def test_separate_region_errors() -> None:
    p = make_project()
    mask = np.zeros((H, W), bool)
    with pytest.raises(H4TracksError, match="no cell"):
        separate_region(p, 0, mask)
    mask[:, :] = True
    with pytest.raises(H4TracksError, match="several"):
        separate_region(p, 0, mask)
    one = make_labels()[0] == 1
    with pytest.raises(H4TracksError, match="already used"):
        separate_region(p, 0, one, new_label=2)
    with pytest.raises(H4TracksError, match="label must"):
        separate_region(p, 0, one, new_label=0)
    with pytest.raises(InputError):
        separate_region(p, 0, np.ones((3, 3), bool))
    with pytest.raises(InputError):
        separate_region(p, 0, np.array([[100, 1]]))
    assert not p.labels.dirty


# ------------------------------------------------------------------------ relabel_unique
def test_relabel_unique_splits_fragments() -> None:
    p = make_project()
    ref = make_labels()
    a = relabel_unique(p, 1)
    History().do(a, p)
    f = p.labels.frame(1)
    assert np.all(f[1:5, 1:6] == 1)  # the largest fragment keeps the id
    assert np.all(f[12:15, 1:3] == 5)  # the small one gets an id never used in the movie
    assert np.array_equal(f == 2, ref[1] == 2)
    other_frames_equal(p, ref, 1)
    g = p.graph
    assert g.successors((0, 1)) == [(1, 1)] and g.successors((1, 1)) == [(2, 1)]
    assert g.predecessor((1, 5)) is None
    assert_consistent(p)
    do_undo_redo(make_project(), relabel_unique(make_project(), 1))


def test_relabel_unique_touching_ids_and_ties() -> None:
    lab = np.zeros((1, 6, 9), np.uint32)
    lab[0, 0:2, 0:2] = 5  # 4 px
    lab[0, 0:2, 2:4] = 6  # touches 5: must stay separate from it
    lab[0, 4:6, 0:2] = 5  # 4 px, same size as the first: first in scan order keeps 5
    lab[0, 4, 7] = 6  # 1 px
    lab[0, 0, 8] = 6  # 1 px
    p = Project(np.zeros(lab.shape, np.uint16), lab)
    do_undo_redo(p, relabel_unique(p, 0))
    f = p.labels.frame(0)
    assert np.all(f[0:2, 0:2] == 5) and np.all(f[0:2, 2:4] == 6)
    assert sorted(np.unique(f).tolist()) == [0, 5, 6, 7, 8, 9]
    assert f[4, 0] != 5 and f[4, 7] not in (5, 6) and f[0, 8] not in (5, 6)
    assert len({int(f[4, 0]), int(f[4, 7]), int(f[0, 8])}) == 3
    assert_consistent(p)


def test_relabel_unique_nothing_to_do() -> None:
    p = make_project()
    a = relabel_unique(p, 0)
    assert isinstance(a, ActionGroup) and a.actions[-1].n_pixels == 0
    snap = snapshot(p)
    History().do(a, p)
    assert_restored(p, snap)


# ------------------------------------------------------------------------ property test
@st.composite
def steps(draw):
    n = draw(st.integers(1, 10))
    out = []
    for _ in range(n):
        kind = draw(st.sampled_from(["remove", "merge", "separate", "relabel", "undo", "redo"]))
        t = draw(st.integers(0, T - 1))
        # mostly an index into the frame's cell pixels (at build time), sometimes any pixel
        pts = [draw(st.integers(-1, 10**6)) for _ in range(2)]
        rect = sorted(draw(st.integers(0, H)) for _ in range(2)) + sorted(
            draw(st.integers(0, W)) for _ in range(2)
        )
        out.append((kind, t, pts, rect))
    return out


def pick(frame: np.ndarray, i: int) -> tuple[int, int]:
    """The i-th cell pixel of the frame (-1: the top-left pixel, usually background)."""
    ys, xs = np.nonzero(frame)
    if i < 0 or ys.size == 0:
        return 0, 0
    return int(ys[i % ys.size]), int(xs[i % ys.size])


def build(p: Project, kind: str, t: int, idx, rect):
    frame = p.labels.frame(t)
    pts = [pick(frame, i) for i in idx]
    if kind == "remove":
        return remove_cell(p, t, *pts[0])
    if kind == "merge":
        return merge_cells(p, t, pts[0], pts[1])
    if kind == "relabel":
        return relabel_unique(p, t)
    lab = frame[pts[0]]
    mask = np.zeros((H, W), bool)
    y0, y1, x0, x1 = rect
    mask[y0:y1, x0:x1] = True
    return separate_region(p, t, mask & (frame == lab))  # errors if lab is background


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps())
def test_random_curation_sequences_keep_graph_and_labels_consistent(seq) -> None:
    p = make_project()
    start = snapshot(p)
    h = History()
    states = [start]  # state after each step on the undo stack
    redo_states = []
    for kind, t, pts, rect in seq:
        if kind == "undo":
            if not h.can_undo:
                continue
            h.undo(p)
            redo_states.append(states.pop())
            assert_restored(p, states[-1])
        elif kind == "redo":
            if not h.can_redo:
                continue
            h.redo(p)
            states.append(redo_states.pop())
            assert_restored(p, states[-1])
        else:
            try:
                action = build(p, kind, t, pts, rect)
            except H4TracksError:
                assert_restored(p, states[-1])  # a refused verb changes nothing
                continue
            h.do(action, p)
            states.append(snapshot(p))
            redo_states.clear()
        assert_consistent(p)
    while h.can_undo:
        h.undo(p)
        assert_consistent(p)
    assert_restored(p, start)
