"""Tests of h4tracks.core.graph.TrackGraph (lineage graph, track ids, napari conversion)."""

from __future__ import annotations

import contextlib
import itertools
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from h4tracks.core.graph import GraphError, TrackGraph
from h4tracks.errors import H4TracksError

COLUMNS = ("t", "label", "y", "x", "area", "track_id")


# ---------------------------------------------------------------------------------- helpers
def add(g: TrackGraph, key, y: float = 0.0, x: float = 0.0, area: int = 1, **kw) -> None:
    g.add_node(key, y=y, x=x, area=area, **kw)


def chain_graph(keys) -> TrackGraph:
    """Graph with the given nodes linked one after the other."""
    g = TrackGraph()
    for i, k in enumerate(keys):
        add(g, k, y=float(i), x=2.0 * i, area=10 + i)
    for a, b in itertools.pairwise(keys):
        g.add_edge(a, b)
    return g


def division_graph() -> TrackGraph:
    """(0,1)->(1,1)->(2,1) dividing into (3,1)->(4,1) and (3,2)->(4,2)."""
    g = TrackGraph()
    for k in [(0, 1), (1, 1), (2, 1), (3, 1), (3, 2), (4, 1), (4, 2)]:
        add(g, k, y=float(k[0]), x=float(k[1]), area=k[0] + k[1])
    for a, b in [
        ((0, 1), (1, 1)),
        ((1, 1), (2, 1)),
        ((2, 1), (3, 1)),
        ((2, 1), (3, 2)),
        ((3, 1), (4, 1)),
        ((3, 2), (4, 2)),
    ]:
        g.add_edge(a, b)
    return g


def partition(g: TrackGraph) -> frozenset[frozenset[tuple[int, int]]]:
    """Grouping of node keys into tracks (ignores the id values)."""
    groups: dict[int, set[tuple[int, int]]] = {}
    for k in g:
        groups.setdefault(g.track_id(k), set()).add(k)
    return frozenset(frozenset(s) for s in groups.values())


def tracks_by_id(g: TrackGraph) -> dict[int, frozenset[tuple[int, int]]]:
    out: dict[int, set[tuple[int, int]]] = {}
    for k in g:
        out.setdefault(g.track_id(k), set()).add(k)
    return {tid: frozenset(s) for tid, s in out.items()}


def edges(g: TrackGraph) -> set[tuple[tuple[int, int], tuple[int, int]]]:
    return {((int(a), int(b)), (int(c), int(d))) for a, b, c, d in g.edge_array().tolist()}


def check_invariants(g: TrackGraph) -> None:
    """Structural invariants that must hold after every edit."""
    keys = list(g)
    assert len(keys) == len(g)
    n_cont = 0
    for u in keys:
        kids = g.successors(u)
        assert len(kids) <= 2
        for v in kids:
            assert v[0] > u[0]
            assert g.predecessor(v) == u
            assert g.has_edge(u, v)
            if len(kids) == 1:
                assert g.track_id(u) == g.track_id(v)
                n_cont += 1
            else:
                assert g.track_id(u) != g.track_id(v)
        if len(kids) == 2:
            assert g.track_id(kids[0]) != g.track_id(kids[1])
    assert g.n_edges == len(edges(g))
    # every track id is exactly one chain
    ids = g.track_ids()
    assert len(keys) - n_cont == ids.size
    for tid in ids.tolist():
        nodes = g.track_nodes(tid)
        times = [k[0] for k in nodes]
        assert times == sorted(set(times))
        for a, b in itertools.pairwise(nodes):
            assert g.successors(a) == [b]
    if keys:
        assert g.next_track_id > int(ids.max())
    # whole-graph rebuilds agree
    tab, ea = g.node_table(), g.edge_array()
    assert TrackGraph.from_arrays(tab, ea) == g
    recomputed = TrackGraph.from_arrays({c: tab[c] for c in COLUMNS[:-1]}, ea)
    assert partition(recomputed) == partition(g)


# ---------------------------------------------------------------------------------- basics
def test_graph_error_is_h4tracks_error():
    assert issubclass(GraphError, H4TracksError)


def test_empty_graph():
    g = TrackGraph()
    assert len(g) == 0
    assert g.n_edges == 0
    assert list(g) == []
    assert g.next_track_id == 1
    assert g.track_ids().size == 0
    assert g.edge_array().shape == (0, 4)
    assert g.edge_array().dtype == np.int64
    tab = g.node_table()
    assert set(tab) == set(COLUMNS)
    assert all(tab[c].size == 0 for c in COLUMNS)
    data, graph = g.to_napari()
    assert data.shape == (0, 4)
    assert graph == {}
    assert g == TrackGraph()
    assert g != "not a graph"


def test_add_and_query_node():
    g = TrackGraph()
    g.add_node((3, 7), y=1.5, x=2.5, area=12)
    assert len(g) == 1
    assert (3, 7) in g
    assert np.array([3, 7]) in g  # any (t, label) pair of ints
    assert (3, 8) not in g
    assert "junk" not in g
    assert g.node((3, 7)) == {"t": 3, "label": 7, "y": 1.5, "x": 2.5, "area": 12, "track_id": 1}
    assert g.track_id((3, 7)) == 1
    assert g.successors((3, 7)) == []
    assert g.predecessor((3, 7)) is None
    assert g.next_track_id == 2


def test_iteration_sorted_and_frame_nodes():
    g = TrackGraph()
    for k in [(2, 5), (0, 3), (2, 1), (1, 9), (0, 1)]:
        add(g, k)
    assert list(g) == [(0, 1), (0, 3), (1, 9), (2, 1), (2, 5)]
    assert g.frame_nodes(0) == [(0, 1), (0, 3)]
    assert g.frame_nodes(2) == [(2, 1), (2, 5)]
    assert g.frame_nodes(7) == []
    tab = g.node_table()
    assert tab["t"].tolist() == [0, 0, 1, 2, 2]
    assert tab["label"].tolist() == [1, 3, 9, 1, 5]


def test_each_new_node_starts_its_own_track():
    g = TrackGraph()
    for lab in range(1, 6):
        add(g, (0, lab))
    assert [g.track_id((0, lab)) for lab in range(1, 6)] == [1, 2, 3, 4, 5]
    assert g.next_track_id == 6


def test_add_node_with_explicit_track_id_advances_counter():
    g = TrackGraph()
    add(g, (0, 1), track_id=10)
    assert g.track_id((0, 1)) == 10
    assert g.next_track_id == 11
    add(g, (0, 2))
    assert g.track_id((0, 2)) == 11


def test_add_nodes_bulk():
    g = TrackGraph()
    add(g, (0, 1))
    g.add_nodes(
        1,
        np.array([4, 2, 9], np.uint32),
        np.array([[1, 2], [3, 4], [5, 6]]),
        np.array([10, 20, 30]),
    )
    assert g.frame_nodes(1) == [(1, 2), (1, 4), (1, 9)]
    assert g.node((1, 2)) == {"t": 1, "label": 2, "y": 3.0, "x": 4.0, "area": 20, "track_id": 3}
    ids = [g.track_id(k) for k in [(1, 4), (1, 2), (1, 9)]]
    assert ids == [2, 3, 4]
    assert g.next_track_id == 5
    rev = g.revision
    g.add_nodes(2, np.empty(0, np.int64), np.empty((0, 2)), np.empty(0))
    assert len(g) == 4
    assert g.revision == rev
    check_invariants(g)


@pytest.mark.parametrize(
    "labels",
    [np.array([1, 0]), np.array([-3]), np.array([2, 2]), np.array([1, 5])],
    ids=["zero", "negative", "duplicate-in-batch", "clash-with-existing"],
)
def test_add_nodes_errors_leave_graph_unchanged(labels):
    g = TrackGraph()
    add(g, (1, 5))
    before, rev = g.copy(), g.revision
    with pytest.raises(GraphError):
        g.add_nodes(1, labels, np.zeros((labels.size, 2)), np.ones(labels.size))
    assert g == before
    assert g.revision == rev
    assert g.next_track_id == before.next_track_id


def test_update_node():
    g = chain_graph([(0, 1), (1, 1)])
    tid = g.track_id((1, 1))
    g.update_node((1, 1), y=7.0)
    assert g.node((1, 1))["y"] == 7.0
    assert g.node((1, 1))["x"] == 2.0
    assert g.node((1, 1))["area"] == 11
    g.update_node((1, 1), x=3.25, area=99)
    assert g.node((1, 1)) == {"t": 1, "label": 1, "y": 7.0, "x": 3.25, "area": 99, "track_id": tid}
    assert g.has_edge((0, 1), (1, 1))


def test_add_and_remove_edge():
    g = TrackGraph()
    add(g, (0, 1))
    add(g, (1, 2))
    g.add_edge((0, 1), (1, 2))
    assert g.n_edges == 1
    assert g.has_edge((0, 1), (1, 2))
    assert not g.has_edge((1, 2), (0, 1))
    assert not g.has_edge((0, 1), (5, 5))  # unknown node: False, not an error
    assert g.successors((0, 1)) == [(1, 2)]
    assert g.predecessor((1, 2)) == (0, 1)
    assert g.edge_array().tolist() == [[0, 1, 1, 2]]
    g.remove_edge((0, 1), (1, 2))
    assert g.n_edges == 0
    assert not g.has_edge((0, 1), (1, 2))
    assert g.successors((0, 1)) == []
    assert g.predecessor((1, 2)) is None
    assert g.edge_array().shape == (0, 4)


def test_remove_node_removes_its_edges():
    g = chain_graph([(0, 1), (1, 1), (2, 1)])
    g.remove_node((1, 1))
    assert (1, 1) not in g
    assert len(g) == 2
    assert g.n_edges == 0
    assert g.successors((0, 1)) == []
    assert g.predecessor((2, 1)) is None
    with pytest.raises(GraphError):
        g.node((1, 1))
    check_invariants(g)
    # the key can be used again
    add(g, (1, 1))
    assert g.successors((1, 1)) == []
    assert g.predecessor((1, 1)) is None


def test_relabel_node_keeps_edges_and_track():
    g = chain_graph([(0, 1), (1, 1), (2, 1)])
    tid = g.track_id((1, 1))
    g.relabel_node((1, 1), 8)
    assert (1, 1) not in g
    assert (1, 8) in g
    assert g.track_id((1, 8)) == tid
    assert g.successors((0, 1)) == [(1, 8)]
    assert g.successors((1, 8)) == [(2, 1)]
    assert g.predecessor((2, 1)) == (1, 8)
    assert g.node((1, 8))["label"] == 8
    assert g.frame_nodes(1) == [(1, 8)]
    check_invariants(g)


def test_edge_array_sorted():
    g = TrackGraph()
    for k in [(0, 2), (0, 1), (1, 5), (1, 3), (2, 1), (2, 4)]:
        add(g, k)
    g.add_edge((1, 5), (2, 1))
    g.add_edge((0, 2), (1, 3))
    g.add_edge((0, 1), (1, 5))
    g.add_edge((1, 3), (2, 4))
    ea = g.edge_array()
    assert ea.dtype == np.int64
    assert ea.tolist() == [[0, 1, 1, 5], [0, 2, 1, 3], [1, 3, 2, 4], [1, 5, 2, 1]]


def test_repr_counts():
    r = repr(division_graph())
    assert "7 nodes" in r
    assert "6 edges" in r
    assert "3 tracks" in r
    assert "1 divisions" in r


# ---------------------------------------------------------------------------------- errors
def test_unknown_node_errors():
    g = TrackGraph()
    add(g, (0, 1))
    for call in (
        lambda: g.node((0, 2)),
        lambda: g.track_id((1, 1)),
        lambda: g.successors((0, 2)),
        lambda: g.predecessor((0, 2)),
        lambda: g.remove_node((0, 2)),
        lambda: g.update_node((0, 2), y=1.0),
        lambda: g.relabel_node((0, 2), 3),
        lambda: g.add_edge((0, 1), (1, 1)),
        lambda: g.add_edge((5, 1), (0, 1)),
        lambda: g.remove_edge((0, 1), (1, 1)),
    ):
        with pytest.raises(GraphError):
            call()
    assert len(g) == 1


def test_duplicate_node_error():
    g = TrackGraph()
    add(g, (0, 1), y=1.0)
    rev = g.revision
    with pytest.raises(GraphError, match="already"):
        add(g, (0, 1), y=5.0)
    assert g.node((0, 1))["y"] == 1.0
    assert len(g) == 1
    assert g.revision == rev
    assert g.next_track_id == 2


@pytest.mark.parametrize("label", [0, -1, -100])
def test_nonpositive_label_error(label):
    g = TrackGraph()
    with pytest.raises(GraphError):
        add(g, (0, label))
    assert len(g) == 0
    assert g.revision == 0
    assert g.next_track_id == 1


@pytest.mark.parametrize(
    ("parent", "child"),
    [((1, 1), (1, 2)), ((1, 1), (0, 2)), ((1, 1), (1, 1))],
    ids=["same-frame", "backward", "self-loop"],
)
def test_edge_not_forward_in_time(parent, child):
    g = TrackGraph()
    for k in [(1, 1), (1, 2), (0, 2)]:
        add(g, k)
    g_before, rev = g.copy(), g.revision
    with pytest.raises(GraphError, match="forward"):
        g.add_edge(parent, child)
    assert g == g_before
    assert g.revision == rev


def test_second_parent_error():
    g = TrackGraph()
    for k in [(0, 1), (0, 2), (1, 1)]:
        add(g, k)
    g.add_edge((0, 1), (1, 1))
    before, rev = g.copy(), g.revision
    with pytest.raises(GraphError, match="parent"):
        g.add_edge((0, 2), (1, 1))
    with pytest.raises(GraphError):
        g.add_edge((0, 1), (1, 1))  # the same edge again is a second parent too
    assert g == before
    assert g.revision == rev
    assert g.successors((0, 2)) == []
    assert g.n_divisions == 0


def test_third_child_error():
    g = TrackGraph()
    for k in [(0, 1), (1, 1), (1, 2), (1, 3)]:
        add(g, k)
    g.add_edge((0, 1), (1, 1))
    g.add_edge((0, 1), (1, 2))
    before, rev, nxt = g.copy(), g.revision, g.next_track_id
    with pytest.raises(GraphError, match="two"):
        g.add_edge((0, 1), (1, 3))
    assert g == before
    assert g.revision == rev
    assert g.next_track_id == nxt
    assert g.predecessor((1, 3)) is None
    assert g.successors((0, 1)) == [(1, 1), (1, 2)]
    check_invariants(g)


def test_remove_non_edge_error():
    g = TrackGraph()
    for k in [(0, 1), (1, 1), (1, 2), (2, 1)]:
        add(g, k)
    g.add_edge((0, 1), (1, 1))
    g.add_edge((1, 1), (2, 1))
    before, rev = g.copy(), g.revision
    with pytest.raises(GraphError, match="not linked"):
        g.remove_edge((0, 1), (1, 2))
    with pytest.raises(GraphError):
        g.remove_edge((1, 1), (0, 1))  # reversed edge
    with pytest.raises(GraphError):
        g.remove_edge((0, 1), (2, 1))  # grandchild, not a child
    assert g == before
    assert g.revision == rev


def test_relabel_to_existing_label_error():
    g = TrackGraph()
    add(g, (0, 1))
    add(g, (0, 2))
    rev = g.revision
    with pytest.raises(GraphError):
        g.relabel_node((0, 1), 2)
    assert list(g) == [(0, 1), (0, 2)]
    assert g.revision == rev


@pytest.mark.parametrize("label", [0, -4])
def test_relabel_to_nonpositive_label_error(label):
    # regression: relabel_node used to accept labels <= 0, which copy()/from_arrays refuse
    g = TrackGraph()
    add(g, (0, 1))
    rev = g.revision
    with pytest.raises(GraphError):
        g.relabel_node((0, 1), label)
    assert list(g) == [(0, 1)]
    assert g.revision == rev
    assert g.copy() == g


# ---------------------------------------------------------------------------------- track ids
def test_chain_continues_track():
    g = chain_graph([(0, 1), (1, 4), (2, 2), (3, 7)])
    tid = g.track_id((0, 1))
    assert {g.track_id(k) for k in g} == {tid}
    assert g.track_nodes(tid) == [(0, 1), (1, 4), (2, 2), (3, 7)]
    assert g.track_ids().tolist() == [tid]
    check_invariants(g)


def test_gap_edge_continues_track():
    g = TrackGraph()
    add(g, (0, 1))
    add(g, (3, 1))
    add(g, (4, 2))
    g.add_edge((0, 1), (3, 1))  # gap of two frames
    g.add_edge((3, 1), (4, 2))
    assert g.track_id((0, 1)) == g.track_id((3, 1)) == g.track_id((4, 2))
    assert g.track_nodes(g.track_id((0, 1))) == [(0, 1), (3, 1), (4, 2)]
    assert g.edge_array().tolist() == [[0, 1, 3, 1], [3, 1, 4, 2]]
    check_invariants(g)


def test_linking_chains_takes_parent_id_for_whole_child_chain():
    g = TrackGraph()
    for k in [(0, 1), (1, 1), (2, 1), (3, 1)]:
        add(g, k)
    g.add_edge((2, 1), (3, 1))  # child chain built first
    g.add_edge((0, 1), (1, 1))
    parent_id = g.track_id((0, 1))
    g.add_edge((1, 1), (2, 1))
    assert [g.track_id(k) for k in g] == [parent_id] * 4
    check_invariants(g)


def test_division_gives_both_daughters_new_ids():
    g = TrackGraph()
    for k in [(0, 1), (1, 1), (2, 1), (2, 2), (3, 2)]:
        add(g, k)
    g.add_edge((0, 1), (1, 1))
    g.add_edge((1, 1), (2, 1))
    g.add_edge((2, 2), (3, 2))
    mother = g.track_id((0, 1))
    second = g.track_id((2, 2))
    counter = g.next_track_id
    g.add_edge((1, 1), (2, 2))
    d1, d2 = g.track_id((2, 1)), g.track_id((2, 2))
    assert g.track_id((0, 1)) == g.track_id((1, 1)) == mother
    assert len({mother, d1, d2}) == 3
    assert d1 >= counter  # the former continuation got a never-used id
    assert d2 == second  # the linked chain keeps the id it had
    assert g.track_id((3, 2)) == d2
    assert g.next_track_id > max(d1, d2)
    assert g.n_divisions == 1
    assert g.track_parents() == {d1: [mother], d2: [mother]}
    check_invariants(g)


def test_division_daughter_chain_is_renumbered_entirely():
    g = chain_graph([(0, 1), (1, 1), (2, 1), (3, 1)])
    add(g, (1, 2))
    old = g.track_id((0, 1))
    g.add_edge((0, 1), (1, 2))
    d1 = g.track_id((1, 1))
    assert g.track_id((0, 1)) == old
    assert d1 != old
    assert g.track_id((2, 1)) == g.track_id((3, 1)) == d1
    check_invariants(g)


def test_removing_one_daughter_edge_merges_other_into_mother():
    g = division_graph()
    mother = g.track_id((2, 1))
    d1, d2 = g.track_id((3, 1)), g.track_id((3, 2))
    g.remove_edge((2, 1), (3, 1))
    assert g.track_id((3, 2)) == g.track_id((4, 2)) == mother
    assert g.track_id((3, 1)) == g.track_id((4, 1)) == d1  # the cut daughter keeps its id
    assert g.n_divisions == 0
    assert g.track_parents() == {}
    assert d2 not in g.track_ids().tolist()
    check_invariants(g)


def test_removing_other_daughter_edge_merges_first_into_mother():
    g = division_graph()
    mother = g.track_id((2, 1))
    d2 = g.track_id((3, 2))
    g.remove_edge((2, 1), (3, 2))
    assert g.track_id((3, 1)) == g.track_id((4, 1)) == mother
    assert g.track_id((3, 2)) == g.track_id((4, 2)) == d2
    check_invariants(g)


def test_removing_single_edge_gives_child_chain_new_id():
    g = chain_graph([(0, 1), (1, 1), (2, 1), (3, 1)])
    tid = g.track_id((0, 1))
    counter = g.next_track_id
    g.remove_edge((1, 1), (2, 1))
    new = g.track_id((2, 1))
    assert g.track_id((0, 1)) == g.track_id((1, 1)) == tid
    assert g.track_id((3, 1)) == new
    assert new >= counter
    assert g.next_track_id > new
    check_invariants(g)


def test_removing_node_cuts_track():
    g = chain_graph([(0, 1), (1, 1), (2, 1), (3, 1)])
    tid = g.track_id((0, 1))
    counter = g.next_track_id
    g.remove_node((1, 1))
    assert g.track_id((0, 1)) == tid
    new = g.track_id((2, 1))
    assert new != tid
    assert new >= counter
    assert g.track_id((3, 1)) == new
    assert g.track_nodes(tid) == [(0, 1)]
    assert g.track_nodes(new) == [(2, 1), (3, 1)]
    check_invariants(g)


def test_removing_daughter_node_merges_sister_into_mother():
    g = division_graph()
    mother = g.track_id((2, 1))
    g.remove_node((3, 1))
    assert g.track_id((3, 2)) == g.track_id((4, 2)) == mother
    assert g.successors((4, 1)) == []
    assert g.predecessor((4, 1)) is None
    assert g.track_id((4, 1)) != mother
    check_invariants(g)


def test_removing_mother_node_keeps_first_daughter_id():
    g = division_graph()
    d1 = g.track_id((3, 1))
    mother = g.track_id((0, 1))
    g.remove_node((2, 1))
    assert g.track_id((3, 1)) == g.track_id((4, 1)) == d1
    assert g.track_id((0, 1)) == g.track_id((1, 1)) == mother
    assert g.n_divisions == 0
    check_invariants(g)


def test_removing_mother_node_keeps_both_daughter_ids():
    # regression: the second daughter used to be merged into the mother's id and then
    # renumbered, although its chain is unchanged
    g = division_graph()
    d1, d2 = g.track_id((3, 1)), g.track_id((3, 2))
    mother = g.track_id((0, 1))
    g.remove_node((2, 1))
    assert g.track_id((3, 1)) == g.track_id((4, 1)) == d1
    assert g.track_id((3, 2)) == g.track_id((4, 2)) == d2
    assert g.track_id((1, 1)) == mother
    assert g.predecessor((3, 1)) is None
    assert g.predecessor((3, 2)) is None
    check_invariants(g)


def test_untouched_tracks_keep_their_ids():
    g = TrackGraph()
    # four independent chains, labels 1..4, over frames 0..4
    labs = (1, 2, 3, 4)
    for t in range(5):
        for lab in labs:
            add(g, (t, lab), y=float(lab), x=float(t))
    for t in range(4):
        for lab in labs:
            g.add_edge((t, lab), (t + 1, lab))

    def edit_keeps_other_chains(touched: set[int], edit) -> None:
        before = {k: g.track_id(k) for k in g if k[1] not in touched}
        assert before
        edit()
        assert {k: g.track_id(k) for k in before if k in g} == before

    edit_keeps_other_chains({1}, lambda: g.remove_edge((2, 1), (3, 1)))
    edit_keeps_other_chains({2}, lambda: g.remove_node((1, 2)))
    add(g, (5, 9))
    edit_keeps_other_chains({3, 9}, lambda: g.add_edge((4, 3), (5, 9)))
    add(g, (5, 8))
    tid3 = g.track_id((0, 3))
    edit_keeps_other_chains({3, 8, 9}, lambda: g.add_edge((4, 3), (5, 8)))  # division of track 3
    assert g.track_id((4, 3)) == tid3
    edit_keeps_other_chains({4, 42}, lambda: g.relabel_node((0, 4), 42))
    assert g.track_id((0, 42)) == g.track_id((4, 4))
    edit_keeps_other_chains({4, 42}, lambda: g.update_node((2, 4), y=3.0))
    check_invariants(g)


def test_track_ids_are_never_reused():
    g = TrackGraph()
    seen: set[int] = set()

    def record() -> None:
        now = set(g.track_ids().tolist())
        assert g.next_track_id > max(now | seen | {0})
        seen.update(now)

    add(g, (0, 1))
    add(g, (1, 1))
    record()
    g.add_edge((0, 1), (1, 1))  # id of (1, 1) disappears
    record()
    vanished = seen - set(g.track_ids().tolist())
    assert vanished
    for _ in range(6):
        g.remove_edge((0, 1), (1, 1))
        assert g.track_id((1, 1)) not in seen
        record()
        g.add_edge((0, 1), (1, 1))
        record()
    g.remove_node((1, 1))
    add(g, (1, 1))
    assert g.track_id((1, 1)) not in seen
    record()


def test_remove_then_readd_node_gets_fresh_id():
    g = TrackGraph()
    add(g, (0, 1))
    old = g.track_id((0, 1))
    g.remove_node((0, 1))
    add(g, (0, 1))
    assert g.track_id((0, 1)) != old
    assert g.track_id((0, 1)) > old


# ---------------------------------------------------------------------------------- revision
def test_revision_increments_on_every_edit():
    g = TrackGraph()
    revs = [g.revision]

    def step(fn) -> None:
        fn()
        assert g.revision > revs[-1]
        revs.append(g.revision)

    step(lambda: add(g, (0, 1)))
    step(lambda: add(g, (1, 1)))
    step(lambda: add(g, (1, 2)))
    step(lambda: g.add_nodes(2, np.array([1, 2]), np.zeros((2, 2)), np.ones(2)))
    step(lambda: g.add_edge((0, 1), (1, 1)))
    step(lambda: g.add_edge((0, 1), (1, 2)))
    step(lambda: g.update_node((1, 1), area=5))
    step(lambda: g.relabel_node((1, 1), 3))
    step(lambda: g.remove_edge((0, 1), (1, 2)))
    step(lambda: g.remove_node((1, 3)))
    step(lambda: g.sync_frame(2, np.array([1, 5]), np.zeros((2, 2)), np.array([1, 1])))
    # reading does not change it
    r = g.revision
    g.node_table()
    g.edge_array()
    g.to_napari()
    g.copy()
    list(g)
    assert g.revision == r


# ---------------------------------------------------------------------------------- copy / eq
def test_copy_is_equal_and_independent():
    g = division_graph()
    g.remove_edge((3, 1), (4, 1))  # make next_track_id larger than max id + 1 irrelevant
    c = g.copy()
    assert c == g
    assert c is not g
    assert c.revision == g.revision
    assert c.next_track_id == g.next_track_id
    snapshot = (g.node_table(), g.edge_array(), g.revision, g.next_track_id)

    c.add_edge((3, 1), (4, 1))
    c.update_node((0, 1), y=100.0)
    c.relabel_node((4, 2), 77)
    c.remove_node((1, 1))
    add(c, (9, 9))
    assert c != g
    assert c.revision > snapshot[2]
    tab = g.node_table()
    assert all(np.array_equal(tab[k], snapshot[0][k]) for k in COLUMNS)
    assert np.array_equal(g.edge_array(), snapshot[1])
    assert g.revision == snapshot[2]
    assert g.next_track_id == snapshot[3]
    assert g.node((0, 1))["y"] == 0.0

    # and the other way round
    c2 = g.copy()
    g.remove_node((0, 1))
    assert (0, 1) in c2
    assert c2.has_edge((0, 1), (1, 1))


def test_copy_keeps_counter_above_vanished_ids():
    g = TrackGraph()
    for lab in range(1, 6):
        add(g, (0, lab))
    for lab in range(2, 6):
        g.remove_node((0, lab))
    assert g.next_track_id == 6
    c = g.copy()
    assert c.next_track_id == 6
    add(c, (1, 1))
    assert c.track_id((1, 1)) == 6


def test_eq_compares_attributes_ids_and_edges():
    a = chain_graph([(0, 1), (1, 1)])
    b = chain_graph([(0, 1), (1, 1)])
    assert a == b
    b.update_node((1, 1), area=999)
    assert a != b
    b = chain_graph([(0, 1), (1, 1)])
    b.remove_edge((0, 1), (1, 1))
    assert a != b
    # same nodes/edges, different track ids
    c = TrackGraph.from_arrays(a.node_table(), a.edge_array())
    tab = a.node_table()
    tab["track_id"] = tab["track_id"] + 10
    d = TrackGraph.from_arrays(tab, a.edge_array())
    assert c == a
    assert d != a
    with pytest.raises(TypeError):
        hash(a)


# ---------------------------------------------------------------------------------- napari
def test_to_napari_order_dtype_and_graph():
    g = TrackGraph()
    # insert in scrambled order so that row order differs from the expected output
    add(g, (2, 5), y=2.0, x=20.0)
    add(g, (0, 3), y=0.5, x=0.25)
    add(g, (1, 4), y=1.0, x=10.0)
    add(g, (3, 6), y=3.0, x=30.0)
    add(g, (3, 7), y=3.5, x=31.0)
    add(g, (0, 9), y=9.0, x=9.0)
    g.add_edge((0, 3), (1, 4))
    g.add_edge((1, 4), (2, 5))
    g.add_edge((2, 5), (3, 6))
    g.add_edge((2, 5), (3, 7))
    data, graph = g.to_napari()
    assert data.dtype == np.float64
    assert data.shape == (6, 4)
    # sorted by (track_id, t)
    order = np.lexsort((data[:, 1], data[:, 0]))
    assert np.array_equal(order, np.arange(6))
    tab = g.node_table()
    rows = {(int(r[1]), float(r[2]), float(r[3])): int(r[0]) for r in data}
    for t, lab, y, x, tid in zip(
        tab["t"], tab["label"], tab["y"], tab["x"], tab["track_id"], strict=True
    ):
        assert rows[(int(t), float(y), float(x))] == g.track_id((int(t), int(lab)))
        assert tid == g.track_id((int(t), int(lab)))
    mother = g.track_id((2, 5))
    assert graph == {g.track_id((3, 6)): [mother], g.track_id((3, 7)): [mother]}
    assert all(
        isinstance(k, int) and all(isinstance(v, int) for v in vs) for k, vs in graph.items()
    )


def _napari_view(g: TrackGraph):
    """Nodes as {(t, track_id): (y, x)} and edges in (t, track_id) terms."""
    nodes = {(k[0], g.track_id(k)): (g.node(k)["y"], g.node(k)["x"]) for k in g}
    es = {((a[0], g.track_id(a)), (b[0], g.track_id(b))) for a, b in edges(g)}
    return nodes, es


def test_napari_round_trip_modulo_labels():
    g = division_graph()
    add(g, (6, 3), y=1.0, x=1.0)
    g.add_edge((4, 2), (6, 3))  # gap edge
    h = TrackGraph.from_napari(*g.to_napari())
    assert _napari_view(h) == _napari_view(g)
    # labels follow the Cell Tracking Challenge convention: label == track id
    for k in h:
        assert k[1] == h.track_id(k)
    assert np.all(h.node_table()["area"] == 0)
    assert h.to_napari()[1] == g.to_napari()[1]
    assert np.array_equal(h.to_napari()[0], g.to_napari()[0])
    check_invariants(h)


def test_napari_round_trip_exact_when_labels_are_track_ids():
    nodes = {
        "t": np.array([0, 1, 2, 3, 3, 4, 5, 0, 2]),
        "label": np.array([1, 1, 1, 4, 5, 4, 5, 2, 2]),
        "y": np.array([0.0, 1, 2, 3, 3.5, 4, 5, 10, 12]),
        "x": np.array([0.5, 1, 2, 3, 3.5, 4, 5, 10, 12]),
        "area": np.zeros(9, np.int64),
        "track_id": np.array([1, 1, 1, 4, 5, 4, 5, 2, 2]),
    }
    ea = np.array(
        [
            [0, 1, 1, 1],
            [1, 1, 2, 1],
            [2, 1, 3, 4],
            [2, 1, 3, 5],
            [3, 4, 4, 4],
            [3, 5, 5, 5],
            [0, 2, 2, 2],
        ]
    )
    g = TrackGraph.from_arrays(nodes, ea)
    check_invariants(g)
    data, graph = g.to_napari()
    assert graph == {4: [1], 5: [1]}
    h = TrackGraph.from_napari(data, graph)
    assert h == g


def test_from_napari_single_child_graph_becomes_one_chain():
    # napari allows a parent track with a single child track; that is one chain here
    data = np.array([[1, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [2, 3, 3, 3]], float)
    h = TrackGraph.from_napari(data, {2: [1]})
    assert len(h) == 4
    assert h.n_edges == 3
    assert len(set(h.track_ids().tolist())) == 1
    assert h.has_edge((1, 1), (2, 2))
    check_invariants(h)


def test_from_napari_scalar_parent_and_empty_parent_list():
    data = np.array([[1, 0, 0, 0], [2, 1, 1, 1], [3, 1, 2, 2]], float)
    h = TrackGraph.from_napari(data, {2: 1, 3: [1]})
    assert h.successors((0, 1)) == [(1, 2), (1, 3)]
    h2 = TrackGraph.from_napari(data, {2: []})
    assert h2.n_edges == 0


def test_from_napari_errors():
    data = np.array([[1, 0, 0, 0], [2, 1, 1, 1]], float)
    with pytest.raises(GraphError):
        TrackGraph.from_napari(np.zeros((3, 3)))
    with pytest.raises(GraphError):
        TrackGraph.from_napari(data, {2: [9]})  # unknown parent track
    with pytest.raises(GraphError):
        TrackGraph.from_napari(data, {2: [1, 3]})  # two parents
    assert len(TrackGraph.from_napari(np.empty((0, 4)))) == 0


def _rect_movie():
    """A (4, 20, 24) label movie of rectangles and the graph measured from it.

    Cell 1 moves right and divides into 4 and 5 at frame 2; cell 2 is static except it is
    missing in frame 2 (gap closed 1 -> 3); cell 3 is alone in frame 0.
    """
    movie = np.zeros((4, 20, 24), np.uint16)
    movie[0, 2:5, 2:6] = 1
    movie[1, 2:5, 4:8] = 1
    movie[2, 1:3, 6:10] = 4
    movie[2, 4:7, 6:9] = 5
    movie[3, 0:3, 8:12] = 4
    movie[3, 5:8, 8:11] = 5
    for t in (0, 1, 3):
        movie[t, 10:15, 10:13] = 2
    movie[0, 17:19, 20:23] = 3
    g = TrackGraph()
    for t in range(movie.shape[0]):
        labs = [lab for lab in np.unique(movie[t]).tolist() if lab]
        for lab in labs:
            yy, xx = np.nonzero(movie[t] == lab)
            add(g, (t, lab), y=float(yy.mean()), x=float(xx.mean()), area=int(yy.size))
    for a, b in [
        ((0, 1), (1, 1)),
        ((1, 1), (2, 4)),
        ((1, 1), (2, 5)),
        ((2, 4), (3, 4)),
        ((2, 5), (3, 5)),
        ((0, 2), (1, 2)),
        ((1, 2), (3, 2)),
    ]:
        g.add_edge(a, b)
    return movie, g


def test_from_napari_with_labels_movie_round_trip():
    movie, g = _rect_movie()
    check_invariants(g)
    data, graph = g.to_napari()
    h = TrackGraph.from_napari(data, graph, labels=movie)
    assert h == g
    h_no_area = TrackGraph.from_napari(data, graph, labels=movie, areas=False)
    assert list(h_no_area) == list(g)
    assert np.all(h_no_area.node_table()["area"] == 0)
    assert partition(h_no_area) == partition(g)
    # other integer dtypes of the movie give the same result
    assert TrackGraph.from_napari(data, graph, labels=movie.astype(np.int32)) == g
    assert TrackGraph.from_napari(data, graph, labels=movie.astype(np.uint32)) == g


def test_from_napari_labels_read_at_centroid_not_track_id():
    movie = np.zeros((2, 5, 5), np.int32)
    movie[0, 1, 1] = 7
    movie[1, 3, 3] = 9
    data = np.array([[1, 0, 1.2, 0.9], [1, 1, 3.0, 3.4]])
    h = TrackGraph.from_napari(data, {}, labels=movie)
    assert list(h) == [(0, 7), (1, 9)]
    assert h.has_edge((0, 7), (1, 9))
    assert h.node((0, 7))["area"] == 1
    assert h.node((0, 7))["y"] == 1.2  # centroid kept, only label is looked up


def test_from_napari_point_on_background_errors():
    movie, g = _rect_movie()
    data, graph = g.to_napari()
    data = data.copy()
    data[0, 2:] = [19.0, 0.0]  # background pixel
    with pytest.raises(GraphError, match="background"):
        TrackGraph.from_napari(data, graph, labels=movie)


def test_from_napari_two_points_on_one_cell_errors():
    movie = np.zeros((1, 6, 6), np.int32)
    movie[0, 1:5, 1:5] = 3
    data = np.array([[1, 0, 2.0, 2.0], [2, 0, 3.0, 3.0]])
    with pytest.raises(GraphError):
        TrackGraph.from_napari(data, {}, labels=movie)


# ---------------------------------------------------------------------------------- from_arrays
def _random_forest(rng: np.random.Generator, n_frames: int = 8, per_frame: int = 6):
    """Random valid lineage as (node columns, edge array, incrementally built graph)."""
    g = TrackGraph()
    for t in range(n_frames):
        labs = rng.choice(np.arange(1, 50), size=per_frame, replace=False)
        for lab in labs.tolist():
            add(
                g,
                (t, lab),
                y=float(rng.random()),
                x=float(rng.random()),
                area=int(rng.integers(1, 100)),
            )
    keys = list(g)
    for v in rng.permutation(len(keys)).tolist():
        child = keys[v]
        cands = [k for k in keys if child[0] - 3 <= k[0] < child[0]]
        if not cands:
            continue
        parent = cands[int(rng.integers(len(cands)))]
        with contextlib.suppress(GraphError):
            g.add_edge(parent, child)
    return g


@pytest.mark.parametrize("seed", range(8))
def test_from_arrays_recomputes_same_partition(seed):
    g = _random_forest(np.random.default_rng(seed))
    assert g.n_edges > 0
    tab, ea = g.node_table(), g.edge_array()
    h = TrackGraph.from_arrays({c: tab[c] for c in COLUMNS[:-1]}, ea)
    assert partition(h) == partition(g)
    assert list(h) == list(g)
    assert edges(h) == edges(g)
    # recomputed ids are 1..K numbered by first node in (t, label) order
    ids = h.track_ids().tolist()
    assert ids == list(range(1, len(ids) + 1))
    firsts = [h.track_nodes(tid)[0] for tid in ids]
    assert firsts == sorted(firsts)
    assert h.next_track_id == len(ids) + 1
    check_invariants(h)
    # with stored ids: identical
    same = TrackGraph.from_arrays(tab, ea)
    assert same == g
    assert same.next_track_id == int(tab["track_id"].max()) + 1
    assert TrackGraph.from_arrays(tab, ea, next_track_id=g.next_track_id).next_track_id == (
        g.next_track_id
    )


def test_from_arrays_division_and_gap():
    nodes = {
        "t": np.array([0, 1, 1, 4]),
        "label": np.array([1, 1, 2, 1]),
        "y": np.zeros(4),
        "x": np.zeros(4),
        "area": np.ones(4, np.int64),
    }
    ea = np.array([[0, 1, 1, 1], [0, 1, 1, 2], [1, 2, 4, 1]])
    g = TrackGraph.from_arrays(nodes, ea)
    assert g.track_id((0, 1)) == 1
    assert g.track_id((1, 1)) == 2
    assert g.track_id((1, 2)) == 3
    assert g.track_id((4, 1)) == 3  # gap edge continues
    assert g.track_parents() == {2: [1], 3: [1]}
    check_invariants(g)


def test_from_arrays_accepts_list_and_unsorted_input():
    nodes = {
        "t": [2, 0, 1],
        "label": [3, 1, 2],
        "y": [2.0, 0.0, 1.0],
        "x": [0, 0, 0],
        "area": [1, 1, 1],
    }
    g = TrackGraph.from_arrays(nodes, [[1, 2, 2, 3], [0, 1, 1, 2]])
    assert list(g) == [(0, 1), (1, 2), (2, 3)]
    assert len(set(g.track_ids().tolist())) == 1
    assert g.node((2, 3))["y"] == 2.0


def test_from_arrays_empty():
    g = TrackGraph.from_arrays({c: np.empty(0) for c in COLUMNS[:-1]})
    assert len(g) == 0
    assert g == TrackGraph()
    assert g.next_track_id == 1
    g2 = TrackGraph.from_arrays(
        {c: np.empty(0) for c in COLUMNS}, np.empty((0, 4)), next_track_id=17
    )
    assert g2.next_track_id == 17


def _base_nodes(**over):
    nodes = {
        "t": np.array([0, 1, 1, 2]),
        "label": np.array([1, 1, 2, 1]),
        "y": np.zeros(4),
        "x": np.zeros(4),
        "area": np.ones(4, np.int64),
    }
    nodes.update(over)
    return nodes


@pytest.mark.parametrize(
    ("nodes", "ea"),
    [
        (_base_nodes(label=np.array([1, 1, 1, 1])), None),  # duplicate node
        (_base_nodes(label=np.array([1, 0, 2, 1])), None),  # label 0
        (_base_nodes(), np.array([[0, 1, 5, 5]])),  # missing node
        (_base_nodes(), np.array([[1, 1, 0, 1]])),  # backward
        (_base_nodes(), np.array([[1, 1, 1, 2]])),  # same frame
        (_base_nodes(), np.array([[0, 1, 2, 1], [1, 1, 2, 1]])),  # two parents
        (
            _base_nodes(t=np.array([0, 1, 1, 1]), label=np.array([1, 1, 2, 3])),
            np.array([[0, 1, 1, 1], [0, 1, 1, 2], [0, 1, 1, 3]]),
        ),  # three children
    ],
    ids=["dup", "label0", "missing", "backward", "same-frame", "two-parents", "three-kids"],
)
def test_from_arrays_errors(nodes, ea):
    with pytest.raises(GraphError):
        TrackGraph.from_arrays(nodes, ea)


@pytest.mark.parametrize(
    ("track_id", "ea"),
    [
        ([1, 2, 3, 4], [[0, 1, 1, 1]]),  # a chain (0,1)->(1,1) with two ids
        ([1, 1, 3, 4], [[0, 1, 1, 1], [0, 1, 1, 2]]),  # a daughter keeps the mother's id
        ([1, 2, 3, 2], np.empty((0, 4))),  # one id spanning two separate chains
        ([1, 2, 2, 3], [[0, 1, 1, 1], [0, 1, 1, 2]]),  # both daughters share an id
    ],
    ids=["chain-two-ids", "daughter-keeps-mother-id", "id-two-chains", "sisters-same-id"],
)
def test_from_arrays_inconsistent_track_ids(track_id, ea):
    nodes = _base_nodes(track_id=np.array(track_id))
    with pytest.raises(GraphError, match="track ids"):
        TrackGraph.from_arrays(nodes, ea)


# ---------------------------------------------------------------------------------- sync_frame
def _sync_setup() -> TrackGraph:
    g = TrackGraph()
    for t in range(3):
        for lab in (1, 2, 3):
            add(g, (t, lab), y=float(lab), x=float(t), area=10 * lab)
    for lab in (1, 2, 3):
        g.add_edge((0, lab), (1, lab))
        g.add_edge((1, lab), (2, lab))
    return g


def test_sync_frame_adds_removes_updates():
    g = _sync_setup()
    others_before = {k: g.node(k) for k in g if k[0] != 1}
    labels = np.array([1, 3, 7], np.uint32)  # 2 disappears, 7 is new
    centroids = np.array(
        [
            [1.0, 1.0],  # unchanged (y=1, x=1, area=10)
            [3.5, 1.0],  # moved
            [0.0, 9.0],
        ]
    )
    areas = np.array([10, 30, 5])
    added, removed, updated = g.sync_frame(1, labels, centroids, areas)
    assert added == [(1, 7)]
    assert removed == [(1, 2)]
    assert updated == [(1, 3)]
    assert g.frame_nodes(1) == [(1, 1), (1, 3), (1, 7)]
    assert g.node((1, 3))["y"] == 3.5
    assert g.node((1, 7)) == {
        "t": 1,
        "label": 7,
        "y": 0.0,
        "x": 9.0,
        "area": 5,
        "track_id": g.track_id((1, 7)),
    }
    assert g.predecessor((1, 7)) is None
    assert g.successors((1, 7)) == []
    # other frames keep their nodes and attributes
    assert {k for k in g if k[0] != 1} == set(others_before)
    for k, attrs in others_before.items():
        now = g.node(k)
        assert {c: now[c] for c in ("y", "x", "area")} == {c: attrs[c] for c in ("y", "x", "area")}
    # edges: those through (1, 2) are gone, the others kept
    assert edges(g) == {((0, 1), (1, 1)), ((1, 1), (2, 1)), ((0, 3), (1, 3)), ((1, 3), (2, 3))}
    assert g.track_id((0, 1)) == g.track_id((2, 1))
    assert g.track_id((0, 2)) != g.track_id((2, 2))
    check_invariants(g)


def test_sync_frame_no_change_is_noop():
    g = _sync_setup()
    before, rev = g.copy(), g.revision
    labels = np.array([1, 2, 3])
    cents = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0]])
    areas = np.array([10, 20, 30])
    assert g.sync_frame(2, labels, cents, areas) == ([], [], [])
    assert g == before
    assert g.revision == rev


def test_sync_frame_empty_and_new_frame():
    g = _sync_setup()
    added, removed, updated = g.sync_frame(0, np.empty(0), np.empty((0, 2)), np.empty(0))
    assert added == []
    assert removed == [(0, 1), (0, 2), (0, 3)]
    assert updated == []
    assert g.frame_nodes(0) == []
    assert len(g) == 6
    added, removed, updated = g.sync_frame(
        5, np.array([4, 2]), np.array([[1, 1], [2, 2]]), np.array([1, 2])
    )
    assert sorted(added) == [(5, 2), (5, 4)]
    assert removed == []
    assert updated == []
    assert g.frame_nodes(5) == [(5, 2), (5, 4)]
    assert g.node((5, 4))["area"] == 1
    check_invariants(g)


def test_sync_frame_only_area_change_is_update():
    g = _sync_setup()
    _, _, updated = g.sync_frame(
        2,
        np.array([1, 2, 3]),
        np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0]]),
        np.array([10, 21, 30]),
    )
    assert updated == [(2, 2)]
    assert g.node((2, 2))["area"] == 21


# ---------------------------------------------------------------------------------- property
N_FRAMES = 5
N_LABELS = 5

_idx = st.integers(0, 10**6)
_op = st.one_of(
    st.tuples(st.just("add_node"), st.integers(0, N_FRAMES - 1), st.integers(1, N_LABELS)),
    st.tuples(st.just("add_node"), st.integers(0, N_FRAMES - 1), st.integers(1, N_LABELS)),
    st.tuples(st.just("add_edge"), _idx, _idx),
    st.tuples(st.just("add_edge"), _idx, _idx),
    st.tuples(st.just("add_edge"), _idx, _idx),
    st.tuples(st.just("remove_edge"), _idx, _idx),
    st.tuples(st.just("remove_edge"), _idx, _idx),
    st.tuples(st.just("remove_node"), _idx, st.just(0)),
    st.tuples(st.just("relabel_node"), _idx, st.integers(1, N_LABELS + 2)),
)


def _apply(g: TrackGraph, op) -> tuple[str, tuple] | None:
    """Resolve an abstract op against the current graph and run it; None if not applicable.

    Indices pick existing nodes/edges; most picks are valid edits, some are deliberately
    arbitrary so that refused edits are exercised too.
    """
    name, a, b = op
    keys = list(g)
    if name == "add_node":
        args = ((a, b),)
        g.add_node((a, b), y=float(a), x=float(b), area=a + b)
        return name, args
    if not keys:
        return None
    parent = keys[a % len(keys)]
    if name == "add_edge":
        valid = [
            (u, v)
            for u in keys
            if len(g.successors(u)) < 2
            for v in keys
            if v[0] > u[0] and g.predecessor(v) is None
        ]
        if valid and b % 5 != 4:
            args = valid[a % len(valid)]
        else:
            args = (parent, keys[b % len(keys)])
        g.add_edge(*args)
    elif name == "remove_edge":
        ea = g.edge_array()
        if ea.size and b % 5 != 4:
            e = ea[a % len(ea)].tolist()
            args = ((e[0], e[1]), (e[2], e[3]))
        else:
            args = (parent, keys[b % len(keys)])
        g.remove_edge(*args)
    elif name == "remove_node":
        args = (parent,)
        g.remove_node(*args)
    else:
        args = (parent, b)
        g.relabel_node(*args)
    return name, args


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, N_FRAMES - 1), st.integers(1, N_LABELS)),
        min_size=3,
        max_size=12,
        unique=True,
    ),
    st.lists(_op, min_size=5, max_size=30),
)
def test_random_edit_sequences_keep_invariants(start_nodes, ops):
    g = TrackGraph()
    ops = [("add_node", t, lab) for t, lab in start_nodes] + ops
    seen_ids: set[int] = set()
    uid_of: dict[tuple[int, int], int] = {}  # stable node identity across relabels
    next_uid = 0
    for op in ops:
        tab_before, ea_before = g.node_table(), g.edge_array()
        rev, counter = g.revision, g.next_track_id
        old_tracks = {tid: frozenset(uid_of[k] for k in ks) for tid, ks in tracks_by_id(g).items()}
        try:
            done = _apply(g, op)
        except GraphError:
            # a refused edit changes nothing
            tab = g.node_table()
            assert all(np.array_equal(tab[c], tab_before[c]) for c in COLUMNS)
            assert np.array_equal(g.edge_array(), ea_before)
            assert g.revision == rev
            assert g.next_track_id == counter
            continue
        if done is None:
            continue
        name, args = done
        assert g.revision > rev
        # keep node identities in sync with the edit
        if name == "add_node":
            uid_of[args[0]] = next_uid
            next_uid += 1
        elif name == "remove_node":
            del uid_of[args[0]]
        elif name == "relabel_node":
            uid_of[(args[0][0], args[1])] = uid_of.pop(args[0])
        assert set(uid_of) == set(g)

        check_invariants(g)
        # (5) ids never reused: every id is below the counter; new ids are fresh
        ids_now = set(g.track_ids().tolist())
        assert all(i < g.next_track_id for i in ids_now | seen_ids)
        assert g.next_track_id >= counter
        new_tracks = {tid: frozenset(uid_of[k] for k in ks) for tid, ks in tracks_by_id(g).items()}
        for tid in ids_now - set(old_tracks):
            assert tid not in seen_ids
        seen_ids |= ids_now
        # stability: a track whose set of cells is unchanged keeps its id
        old_by_set = {s: tid for tid, s in old_tracks.items()}
        new_by_set = {s: tid for tid, s in new_tracks.items()}
        for s in old_by_set.keys() & new_by_set.keys():
            assert old_by_set[s] == new_by_set[s]
        # napari round trip preserves structure (labels become track ids)
        h = TrackGraph.from_napari(*g.to_napari())
        assert _napari_view(h) == _napari_view(g)


# ---------------------------------------------------------------------------------- size
@pytest.mark.slow
def test_large_graph_sanity():
    n_frames, per_frame = 1000, 500
    t0 = time.perf_counter()
    t = np.repeat(np.arange(n_frames), per_frame)
    lab = np.tile(np.arange(1, per_frame + 1), n_frames)
    n = t.size
    nodes = {
        "t": t,
        "label": lab,
        "y": lab.astype(float),
        "x": t.astype(float),
        "area": np.full(n, 10),
    }
    tp = np.repeat(np.arange(n_frames - 1), per_frame)
    lp = np.tile(np.arange(1, per_frame + 1), n_frames - 1)
    ea = np.stack([tp, lp, tp + 1, lp], axis=1)
    g = TrackGraph.from_arrays(nodes, ea)
    t1 = time.perf_counter()
    assert len(g) == n
    assert g.n_edges == ea.shape[0]
    assert g.track_ids().size == per_frame
    data, graph = g.to_napari()
    t2 = time.perf_counter()
    assert data.shape == (n, 4)
    assert graph == {}
    g.remove_edge((500, 7), (501, 7))
    t3 = time.perf_counter()
    assert g.track_ids().size == per_frame + 1
    assert g.track_id((0, 7)) == g.track_id((500, 7))
    assert g.track_id((501, 7)) == g.track_id((999, 7)) != g.track_id((0, 7))
    g.add_edge((500, 7), (501, 7))
    assert g.track_id((999, 7)) == g.track_id((0, 7))
    g.remove_edge((500, 8), (501, 8))
    g.add_edge((500, 7), (501, 8))  # division
    t4 = time.perf_counter()
    assert g.n_divisions == 1
    mother = g.track_id((0, 7))
    assert g.track_id((500, 7)) == mother
    assert len({mother, g.track_id((999, 7)), g.track_id((999, 8))}) == 3
    assert g.track_parents() == {g.track_id((999, 7)): [mother], g.track_id((999, 8)): [mother]}
    data, graph = g.to_napari()
    assert data.shape == (n, 4)
    assert len(graph) == 2
    print(
        f"\nTrackGraph {n} nodes: from_arrays {t1 - t0:.2f}s, to_napari {t2 - t1:.3f}s, "
        f"remove_edge {1e3 * (t3 - t2):.2f}ms, 3 more edge edits {1e3 * (t4 - t3):.2f}ms"
    )
