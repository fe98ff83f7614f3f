"""Tests of the track curation verbs (link / unlink / delete_tracks) with undo and redo."""

from __future__ import annotations

import numpy as np
import pytest

from h4tracks.core.actions import ActionGroup, AddEdge, History, RemoveEdge, same_lineage
from h4tracks.core.project import Project
from h4tracks.core.tracking import add_links, delete_tracks, link, unlink
from h4tracks.errors import InputError

T = 6


def make_project() -> Project:
    """Cell 1 in every frame (one track); cell 2 in frames 0-2 dividing into 3 and 4 (frames
    3-5); cell 5 in every frame, unlinked; cell 6 only in frame 4."""
    lab = np.zeros((T, 20, 30), np.uint32)
    lab[:, 1:4, 1:4] = 1
    lab[:3, 8:12, 8:12] = 2
    lab[3:, 8:10, 8:12] = 3
    lab[3:, 11:13, 8:12] = 4
    lab[:, 15:18, 20:25] = 5
    lab[4, 1:3, 20:22] = 6
    p = Project(np.zeros(lab.shape, np.uint16), lab)
    edges = [((t, 1), (t + 1, 1)) for t in range(T - 1)]
    edges += [((0, 2), (1, 2)), ((1, 2), (2, 2)), ((2, 2), (3, 3)), ((2, 2), (3, 4))]
    edges += [((t, k), (t + 1, k)) for k in (3, 4) for t in range(3, T - 1)]
    for u, v in edges:
        p.graph.add_edge(u, v)
    return p


def do_undo_redo(p: Project, action) -> None:
    """Apply with a History, check undo restores the lineage and redo re-applies it."""
    before = p.graph.copy()
    h = History()
    h.do(action, p)
    after = p.graph.copy()
    assert not same_lineage(before, after)
    h.undo(p)
    assert same_lineage(p.graph, before)
    h.redo(p)
    assert same_lineage(p.graph, after)


def unchanged_tracks(before, after, nodes) -> None:
    """The given nodes keep their track ids (the edit did not touch them)."""
    for n in nodes:
        assert before.track_id(n) == after.track_id(n), n


def test_link_with_gap_and_as_division():
    p = make_project()
    g0 = p.graph.copy()
    a = link(p, (0, 5), (2, 5))
    assert isinstance(a, ActionGroup) and len(a) == 1 and isinstance(a.actions[0], AddEdge)
    assert p.graph.n_edges == g0.n_edges  # built, not applied
    do_undo_redo(p, a)
    assert p.graph.has_edge((0, 5), (2, 5))
    assert p.graph.track_id((0, 5)) == p.graph.track_id((2, 5))
    unchanged_tracks(g0, p.graph, [(t, 1) for t in range(T)] + [(0, 2), (3, 3), (5, 4)])
    # a second successor makes a division
    do_undo_redo(p, link(p, (3, 1), (4, 6)))
    assert p.graph.successors((3, 1)) == [(4, 1), (4, 6)]


@pytest.mark.parametrize(
    ("a", "b", "msg"),
    [
        ((1, 5), (1, 1), "both cells are in frame 1"),
        ((3, 5), (1, 5), "comes before"),
        ((0, 5), (1, 1), "already linked"),
        ((2, 2), (4, 6), "already divides"),
        ((0, 0), (1, 5), "background"),
        ((0, 6), (1, 5), "no cell with label 6 in frame 0"),
        ((0, 5), (9, 5), "no cell with label 5 in frame 9"),
    ],
)
def test_link_errors(a, b, msg):
    p = make_project()
    with pytest.raises(InputError, match=msg):
        link(p, a, b)


def test_unlink_middle_piece_splits_the_track():
    p = make_project()
    g0 = p.graph.copy()
    a = unlink(p, (3, 1), (2, 1))  # clicks in either order
    assert [type(x) for x in a.actions] == [RemoveEdge, RemoveEdge]
    do_undo_redo(p, a)
    g = p.graph
    assert not g.has_edge((1, 1), (2, 1)) and not g.has_edge((3, 1), (4, 1))
    ids = {g.track_id((t, 1)) for t in range(T)}
    assert len(ids) == 3  # before, the cut piece, after
    assert g.track_id((2, 1)) == g.track_id((3, 1))
    unchanged_tracks(g0, g, [(0, 1), (1, 1), (0, 2), (3, 3), (4, 4), (0, 5)])


def test_unlink_single_cell_and_division_end():
    p = make_project()
    do_undo_redo(p, unlink(p, (2, 2), (2, 2)))  # the mother's last cell: 3 edges go
    g = p.graph
    assert g.predecessor((2, 2)) is None and g.successors((2, 2)) == []
    assert g.predecessor((3, 3)) is None and g.predecessor((3, 4)) is None
    assert g.has_edge((0, 2), (1, 2))
    p = make_project()
    do_undo_redo(p, unlink(p, (1, 2), (4, 4)))  # mother piece + one daughter
    assert p.graph.predecessor((1, 2)) is None and p.graph.successors((4, 4)) == []
    assert p.graph.has_edge((2, 2), (3, 3))


def test_unlink_errors():
    p = make_project()
    with pytest.raises(InputError, match="not on the track"):
        unlink(p, (1, 1), (3, 5))
    with pytest.raises(InputError, match="not on the track"):
        unlink(p, (3, 3), (4, 4))
    with pytest.raises(InputError, match="no links to cut"):
        unlink(p, (4, 6), (4, 6))
    with pytest.raises(InputError, match="background"):
        unlink(p, (1, 0), (3, 1))


def test_delete_tracks_keeps_cells():
    p = make_project()
    g0 = p.graph.copy()
    mother = g0.track_id((0, 2))
    a = delete_tracks(p, [mother, g0.track_id((0, 1))])
    assert all(isinstance(x, RemoveEdge) for x in a.actions) and len(a) == 5 + 4
    do_undo_redo(p, a)
    g = p.graph
    assert len(g) == len(g0)  # cells stay, only links go
    assert np.array_equal(np.asarray(p.labels), np.asarray(make_project().labels))
    assert g.n_edges == g0.n_edges - 9
    assert g.successors((2, 2)) == [] and g.has_edge((3, 3), (4, 3))
    unchanged_tracks(g0, g, [(0, 5), (3, 5)])
    # the daughters lose their mother but stay whole tracks (TrackGraph may renumber them)
    for k in (3, 4):
        assert g.track_nodes(g.track_id((3, k))) == [(3, k), (4, k), (5, k)]
    # deleting a daughter removes the link from its mother; the other daughter continues it
    p = make_project()
    do_undo_redo(p, delete_tracks(p, [p.graph.track_id((4, 4))]))
    assert p.graph.successors((2, 2)) == [(3, 3)]
    assert p.graph.track_id((2, 2)) == p.graph.track_id((5, 3))


def test_delete_tracks_errors():
    p = make_project()
    with pytest.raises(InputError, match="no track with id 999"):
        delete_tracks(p, [999])
    with pytest.raises(InputError, match="no links"):
        delete_tracks(p, [p.graph.track_id((0, 5))])
    with pytest.raises(InputError, match="no track selected"):
        delete_tracks(p, [])


def test_add_links_is_one_undo_step():
    p = make_project()
    do_undo_redo(p, add_links(p, [((t, 5), (t + 1, 5)) for t in range(T - 1)]))
    assert len(p.graph.track_nodes(p.graph.track_id((0, 5)))) == T
    with pytest.raises(InputError):
        add_links(p, [])
