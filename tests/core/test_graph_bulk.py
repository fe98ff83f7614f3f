"""Tests of the bulk paths of TrackGraph: copy, successor lists, equality of copies."""

from __future__ import annotations

import numpy as np

from h4tracks.core.graph import TrackGraph
from h4tracks.core.graph_convert import successor_lists


def chain_graph() -> TrackGraph:
    """Three frames, a division, a gap link and a deleted node (a masked row)."""
    g = TrackGraph()
    for t in range(3):
        for lab in (1, 2, 3):
            g.add_node((t, lab), y=float(t + lab), x=0.5 * lab, area=10 + lab)
    g.add_edge((0, 1), (1, 1))
    g.add_edge((0, 1), (1, 2))  # division
    g.add_edge((1, 1), (2, 1))
    g.add_edge((0, 3), (2, 3))  # gap
    g.remove_node((1, 3))
    return g


def test_copy_is_equal_and_independent() -> None:
    g = chain_graph()
    c = g.copy()
    assert c == g and c.next_track_id == g.next_track_id and c.revision == g.revision
    assert c.track_parents() == g.track_parents() and c.n_divisions == 1
    assert list(c) == list(g)
    c.remove_edge((1, 1), (2, 1))
    c.update_node((0, 2), y=9.0)
    assert c != g
    assert g.has_edge((1, 1), (2, 1)) and g.node((0, 2))["y"] == 2.0
    assert g.successors((0, 1)) == [(1, 1), (1, 2)]
    g.add_edge((1, 2), (2, 2))
    assert not c.has_edge((1, 2), (2, 2))


def test_equality_of_differently_stored_graphs() -> None:
    g = chain_graph()
    rebuilt = TrackGraph.from_arrays(g.node_table(), g.edge_array(),
                                     next_track_id=g.next_track_id)
    assert rebuilt == g and g == rebuilt  # rows differ (no masked row): compared sorted
    moved = g.copy()
    moved.update_node((2, 2), x=7.0)
    assert moved != g


def test_successor_lists_keep_edge_order() -> None:
    rng = np.random.default_rng(1)
    par = rng.integers(0, 300, 1000)
    chi = rng.permutation(1000)
    expected: dict[int, list[int]] = {}
    for u, v in zip(par.tolist(), chi.tolist(), strict=True):
        expected.setdefault(u, []).append(v)
    got = successor_lists(par, chi)
    assert got == expected and list(got) == list(expected)  # parents in first-edge order
    assert successor_lists(np.empty(0, np.int64), np.empty(0, np.int64)) == {}
