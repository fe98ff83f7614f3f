"""The lineage tree layout, without Qt: positions, order, divisions and gaps."""

from __future__ import annotations

import numpy as np
import pytest

from h4tracks.core.graph import TrackGraph
from h4tracks.core.lineage_layout import (
    DIVISION,
    GAP,
    RUN,
    layout_arrays,
    layout_graph,
)
from h4tracks.datasets.synthetic import make_movie

#: (t, label, track id); lineage A: track 1 divides into 2 and 3, 2 divides into 4 and 5,
#: 3 skips frame 4 (a gap); lineage B: track 6; lineage C: track 7, one cell from frame 4
NODES = [
    (0, 1, 1), (1, 1, 1), (2, 1, 1),
    (3, 2, 2), (4, 2, 2), (5, 2, 2),
    (3, 3, 3), (5, 3, 3),
    (6, 4, 4), (7, 4, 4), (6, 5, 5),
    (0, 9, 6), (1, 9, 6),
    (4, 7, 7),
]
EDGES = [
    ((0, 1), (1, 1)), ((1, 1), (2, 1)), ((2, 1), (3, 2)), ((2, 1), (3, 3)),
    ((3, 2), (4, 2)), ((4, 2), (5, 2)), ((3, 3), (5, 3)), ((5, 2), (6, 4)),
    ((5, 2), (6, 5)), ((6, 4), (7, 4)), ((0, 9), (1, 9)),
]


@pytest.fixture
def graph() -> TrackGraph:
    t, lab, tid = (np.array(c) for c in zip(*NODES, strict=True))
    n = t.size
    nodes = {"t": t, "label": lab, "y": np.zeros(n), "x": np.zeros(n),
             "area": np.ones(n, np.int64), "track_id": tid}
    edges = np.array([[*a, *b] for a, b in EDGES])
    return TrackGraph.from_arrays(nodes, edges)


def _segments(lay) -> set[tuple]:
    return {(tuple(s.ravel().tolist()), int(lay.track_ids[k]), int(kind))
            for s, k, kind in zip(lay.segments, lay.segment_track, lay.segment_kind,
                                  strict=True)}


def test_divisions_gaps_and_positions(graph):
    lay = layout_graph(graph)
    assert lay.revision == graph.revision
    assert (lay.n_nodes, lay.n_tracks, lay.n_lineages) == (14, 7, 3)
    # leaves of lineage A depth first, sisters by track id: 4, 5, then 3; a mother midway
    # between its daughters; one empty column before lineage B, another before C
    x = dict(zip(lay.track_ids.tolist(), lay.track_x.tolist(), strict=True))
    assert x == {4: 0.0, 5: 1.0, 3: 2.0, 2: 0.5, 1: 1.25, 6: 4.0, 7: 6.0}
    assert lay.track_generation.tolist() == [0, 1, 1, 2, 2, 0, 0]
    assert lay.track_ids[lay.track_parent].tolist()[1:5] == [1, 1, 2, 2]
    assert lay.track_ids[lay.track_root].tolist() == [1, 1, 1, 1, 1, 6, 7]
    assert lay.track_first.tolist() == [0, 3, 3, 6, 6, 0, 4]
    assert lay.track_last.tolist() == [2, 5, 5, 7, 6, 1, 4]
    assert lay.lineage_span.tolist() == [[0, 2], [4, 4], [6, 6]]
    # every node sits on its track's column at its frame (time is the other axis)
    for t, label, tid in NODES:
        assert lay.position((t, label)) == (x[tid], float(t))
    assert lay.position((4, 3)) is None  # the gap: no node there
    assert _segments(lay) == {
        ((1.25, 0, 1.25, 2), 1, RUN), ((0.5, 3, 0.5, 5), 2, RUN), ((0, 6, 0, 7), 4, RUN),
        ((4, 0, 4, 1), 6, RUN),
        ((2, 3, 2, 5), 3, GAP),  # frame 4 skipped
        ((1.25, 2, 0.5, 3), 2, DIVISION), ((1.25, 2, 2, 3), 3, DIVISION),
        ((0.5, 5, 0, 6), 4, DIVISION), ((0.5, 5, 1, 6), 5, DIVISION),
    }


def test_lineage_order_first_frame_then_track_id():
    # lineage of track 2 starts at frame 0, tracks 5 and 3 at frame 1: order 2, 3, 5
    t = np.array([0, 1, 1, 2])
    label = np.array([1, 1, 2, 1])
    tid = np.array([2, 5, 3, 3])
    lay = layout_arrays(t, label, tid, np.empty(0, np.int64), np.empty(0, np.int64),
                        lineage_gap=0.5)
    assert lay.track_ids[lay.lineage_roots].tolist() == [2, 3, 5]
    x = dict(zip(lay.track_ids.tolist(), lay.track_x.tolist(), strict=True))
    assert x == {2: 0.0, 3: 1.5, 5: 3.0}


def test_pick_lookup_and_key_points(graph):
    lay = layout_graph(graph)
    assert lay.pick(0.9, 6.2) == (6, 5)
    assert lay.pick(1.3, 1.0) == (1, 1)
    assert lay.pick(2.0, 4.0) is None  # track 3 skips frame 4; no other cell near
    assert lay.pick(3.0, 0.0) is None  # between lineages
    assert lay.pick(3.0, 0.0, tolerance=1.0) in {(0, 1), (0, 9)}
    assert lay.pick(0.0, 99.0) is None
    assert lay.node_index((5, 3)) is not None and lay.node_index((5, 99)) is None
    assert lay.lineage_extent(4) == (0.0, 2.0, 0, 7)
    assert lay.lineage_extent(99) is None
    pos, tracks = lay.key_points()
    ends = {(float(p[0]), float(p[1])) for p in pos}
    assert (1.25, 0.0) in ends and (1.25, 2.0) in ends and (1.0, 6.0) in ends
    assert len(ends) == pos.shape[0] == 12  # 7 firsts + 5 lasts (tracks 5 and 7: one cell)
    assert tracks.size == pos.shape[0]


def test_edit_changes_the_layout(graph):
    before = layout_graph(graph)
    graph.remove_edge((2, 1), (3, 3))  # track 3 leaves lineage A: a lineage of its own
    after = layout_graph(graph)
    assert after.revision > before.revision
    assert (before.n_lineages, after.n_lineages) == (3, 4)
    x = dict(zip(after.track_ids.tolist(), after.track_x.tolist(), strict=True))
    # track 1 now continues into 2 (one child: the same track), 2's old ids are gone
    tid = graph.track_id((3, 3))
    assert x[graph.track_id((0, 1))] == x[graph.track_id((5, 2))] == 0.5
    assert x[tid] > x[graph.track_id((0, 9))]  # starts at frame 3: after lineage B


def test_divisions_to_unknown_tracks_are_ignored():
    lay = layout_arrays(np.array([0, 1]), np.array([1, 1]), np.array([1, 2]),
                        np.array([2, 9]), np.array([1, 8]))
    assert lay.track_parent.tolist() == [-1, 0]


def test_empty():
    lay = layout_graph(TrackGraph())
    assert (lay.n_nodes, lay.n_tracks, lay.n_lineages) == (0, 0, 0)
    assert lay.pick(0, 0) is None and lay.position((0, 1)) is None
    assert lay.segments.shape == (0, 2, 2)


def test_synthetic_movie_invariants():
    movie = make_movie(n_frames=25, shape=(128, 128), n_cells=8, radius=6, seed=3)
    g = TrackGraph.from_ctc(movie.labels, movie.lineage)
    assert g.n_divisions > 0
    lay = layout_graph(g)
    tab = g.node_table()
    np.testing.assert_array_equal(lay.node_t, tab["t"])
    np.testing.assert_array_equal(lay.track_ids[lay.node_track], tab["track_id"])
    # every edge is drawn: consecutive nodes of a track lie on one run or gap segment, each
    # division is one segment from the mother's last node to the daughter's first
    runs = lay.segments[lay.segment_kind != DIVISION]
    covered = np.zeros(lay.n_tracks, np.int64)
    np.add.at(covered, lay.segment_track[lay.segment_kind != DIVISION],
              (runs[:, 1, 1] - runs[:, 0, 1]).astype(np.int64))
    span = lay.track_last - lay.track_first
    np.testing.assert_array_equal(covered, span)
    assert int((lay.segment_kind == DIVISION).sum()) == 2 * g.n_divisions
    # leaves never share a column; tracks of one lineage alive at the same time neither
    for t in np.unique(lay.node_t):
        xs = lay.node_x[lay.node_t == t]
        assert np.unique(xs).size == xs.size
    leaves = np.setdiff1d(np.arange(lay.n_tracks), lay.track_parent)
    assert np.unique(lay.track_x[leaves]).size == leaves.size
    assert np.all(lay.track_x[leaves] == np.round(lay.track_x[leaves]))
    # lineages do not overlap and run left to right
    assert np.all(lay.lineage_span[1:, 0] > lay.lineage_span[:-1, 1])
