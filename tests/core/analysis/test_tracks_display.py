"""TracksDisplay: the napari Tracks arrays of a graph, patched per edit, equal a rebuild.

No Qt here: the arrays themselves. The UI tests check that a napari layer patched with them
equals a layer built from scratch.
"""

from __future__ import annotations

import numpy as np
import pytest

from h4tracks.core.actions import ActionGroup, AddEdge, RemoveEdge
from h4tracks.core.analysis import detection_table, track_metrics
from h4tracks.core.analysis.tracks_display import (
    NODE_FEATURES,
    PER_TRACK,
    Splice,
    TracksDisplay,
    node_speed,
)
from h4tracks.core.analysis.units import units_for
from h4tracks.core.graph import TrackGraph
from h4tracks.core.project import Project
from h4tracks.core.session import Session
from h4tracks.core.tracking import delete_tracks, link, unlink
from h4tracks.datasets.synthetic import make_movie
from h4tracks.errors import H4TracksError

CAL = {"pixel_size": 0.5, "frame_interval": 2.0, "time_unit": "min"}


@pytest.fixture(scope="module")
def movie():
    m = make_movie(n_frames=24, shape=(128, 128), n_cells=8, radius=6, seed=5)
    assert (m.lineage[:, 3] > 0).sum() >= 2, "the movie must have divisions"
    return m


def _project(movie) -> Project:
    project = Project(movie.image, movie.labels.copy(), metadata={"name": "d", **CAL})
    project.graph = TrackGraph.from_ctc(movie.labels, movie.lineage)
    return project


def _assert_equal_to_rebuild(display: TracksDisplay, graph: TrackGraph) -> None:
    fresh = TracksDisplay(**CAL)
    fresh.rebuild(graph)
    assert np.array_equal(display.data, fresh.data)
    assert display.parents == fresh.parents
    assert list(display.parents) == list(fresh.parents)  # same order: same graph vertices
    assert display.parents == dict(sorted(graph.track_parents().items()))
    assert list(display.features) == list(fresh.features)
    for name, values in fresh.features.items():
        assert display.features[name].dtype == values.dtype, name
        assert np.array_equal(display.features[name], values), name
    assert np.array_equal(display.points, fresh.points)
    assert np.array_equal(display.points_id, fresh.points_id)
    # the Labels layer's features of a frame, after a patch as after a rebuild
    for t in np.unique(graph.node_table()["t"])[::5].tolist():
        a, b = display.frame_features(t), fresh.frame_features(t)
        assert list(a) == list(b)
        assert all(np.array_equal(a[k], b[k]) for k in a), t


# ------------------------------------------------------------------------------ build
def test_rebuild_shows_the_graph_and_its_metrics(movie):
    project = _project(movie)
    g = project.graph
    d = TracksDisplay(**CAL)
    d.rebuild(g)
    data, parents = g.to_napari()
    assert np.array_equal(d.data, data)
    assert d.parents == parents and d.parents
    assert set(d.features) == PER_TRACK | set(NODE_FEATURES)
    assert all(np.isfinite(v).all() for v in d.features.values())  # napari cannot colour NaN
    # per-track columns are the Analysis table's, repeated on the rows of each track
    table = track_metrics(g, **CAL)
    tid = d.data[:, 0].astype(np.int64)
    row = np.searchsorted(table["track_id"], tid)
    for name in ("generation", "n_points", "mean_speed", "directness", "path_length"):
        expected = table[table.find(name)][row]
        np.testing.assert_allclose(d.features[name], np.nan_to_num(expected), rtol=1e-12)
    assert d.features["generation"].max() >= 1
    assert d.features["track_id"].dtype == np.uint32  # napari's own column
    # per-cell: the area of the per-cell table, the speed whose mean is the track's mean
    cells = detection_table(g, **CAL)
    np.testing.assert_allclose(d.features["area"], cells[cells.find("area")])
    long = table["n_points"][row] >= 3
    sums = np.bincount(row[long], d.features["speed"][long])
    first = np.r_[True, tid[1:] != tid[:-1]]
    firsts = np.bincount(row[long & first], d.features["speed"][long & first],
                         minlength=sums.size)
    n = table["n_points"]
    has = (n >= 3) & (np.arange(n.size) < sums.size)
    idx = np.flatnonzero(has)
    np.testing.assert_allclose((sums[idx] - firsts[idx]) / (n[idx] - 1),
                               table[table.find("mean_speed")][idx], rtol=1e-9)


def test_frame_features_are_the_rows_of_that_frames_cells(movie):
    """A Labels layer's features: one row per cell of the frame, keyed by label value, with
    the values of that cell's row of the Tracks layer."""
    project = _project(movie)
    g = project.graph
    d = TracksDisplay(**CAL)
    d.rebuild(g)
    for t in (0, 7, 23):
        f = d.frame_features(t)
        labels = np.unique(movie.labels[t])
        labels = labels[labels > 0]
        assert list(f) == ["index", *d.features]
        assert np.array_equal(f["index"], labels)
        for k, lab in enumerate(labels.tolist()):
            row = np.flatnonzero((d.data[:, 0] == g.track_id((t, lab))) & (d.data[:, 1] == t))
            assert row.size == 1
            for name, values in d.features.items():
                assert f[name][k] == values[row[0]], (t, lab, name)
    assert d.frame_features(99)["index"].size == 0  # past the end: no cells
    assert TracksDisplay().frame_features(0) == {}  # nothing shown yet


def test_node_speed_respects_gaps_and_track_starts():
    u = units_for(2.0, 0.5, "s")
    t = np.array([0, 1, 3, 5, 6])  # two tracks: frames 0,1,3 and 5,6
    y = np.array([0.0, 3.0, 3.0, 10.0, 10.0])
    x = np.array([0.0, 4.0, 10.0, 0.0, 1.0])
    speed = node_speed(t, y, x, np.array([3, 2]), u)
    # 5 px = 10 µm in 1 frame = 0.5 s; 6 px = 12 µm over a gap of 2 frames = 1 s
    np.testing.assert_allclose(speed, [20.0, 20.0, 12.0, 4.0, 4.0])
    assert node_speed(t[:1], y[:1], x[:1], np.array([1]), u).tolist() == [0.0]


def test_splice_equals_delete_then_insert():
    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(0, 25))
        removed = np.unique(rng.integers(0, max(n, 1), int(rng.integers(0, n + 1))))
        removed = removed[removed < n].astype(np.int64)
        at = np.sort(rng.integers(0, n - removed.size + 1, int(rng.integers(0, 6))))
        old, new = rng.random((n, 3)), rng.random((at.size, 3))
        s = Splice(removed, at, n)
        out = s.apply(old, new)
        assert np.array_equal(out, np.insert(np.delete(old, removed, axis=0), at, new, axis=0))
        assert np.array_equal(out[s.inserted], new)


# ------------------------------------------------------------------------------ updates
def test_an_unlink_recomputes_only_its_track(movie):
    project = _project(movie)
    g = project.graph
    d = TracksDisplay(**CAL)
    d.rebuild(g)
    tid = int(d.data[np.argmax(d.features["n_points"]), 0])  # the longest track
    nodes = g.track_nodes(tid)
    middle = nodes[len(nodes) // 2]
    before = d.data.copy()
    Session(project).do(unlink(project, middle, middle))
    splice = d.update(g)
    assert splice is not None  # patched, not rebuilt
    assert splice.removed.size == len(nodes)  # exactly the rows of the cut track
    assert splice.insert_at.size == len(nodes)  # back as three tracks
    kept = np.delete(np.arange(before.shape[0]), splice.removed)
    assert np.array_equal(np.delete(d.data, splice.inserted, axis=0), before[kept])
    _assert_equal_to_rebuild(d, g)
    assert d.update(g).empty  # nothing changed since


def _random_step(project: Project, session: Session, rng: np.random.Generator) -> str:
    """One random edit, or undo / redo, through the session (as the widget does)."""
    g = project.graph
    kind = rng.choice(["unlink", "cut_cell", "link", "divide", "delete", "undo", "redo",
                       "swap_daughter"])
    nodes = list(g)
    node = nodes[rng.integers(len(nodes))]
    try:
        if kind == "undo":
            session.undo()
        elif kind == "redo":
            session.redo()
        elif kind == "unlink":
            track = g.track_nodes(g.track_id(node))
            session.do(unlink(project, node, track[-1]))
        elif kind == "cut_cell":
            session.do(unlink(project, node, node))
        elif kind in ("link", "divide"):
            later = [n for n in nodes if node[0] < n[0] <= node[0] + 2
                     and g.predecessor(n) is None]
            if kind == "link" and g.successors(node):
                return "skip"
            session.do(link(project, node, later[rng.integers(len(later))]))
        elif kind == "delete":
            session.do(delete_tracks(project, [g.track_id(node)]))
        else:  # one step that replaces a daughter by another cell (no verb does this)
            mother = next(n for n in nodes if len(g.successors(n)) == 2)
            old = g.successors(mother)[0]
            new = next(n for n in nodes if n[0] == old[0] and g.predecessor(n) is None)
            session.do(ActionGroup([RemoveEdge(mother, old), AddEdge(mother, new)], "swap"))
    except (H4TracksError, ValueError, StopIteration):
        return "skip"
    return str(kind)


def test_random_edits_undo_redo_equal_a_rebuild(movie):
    project = _project(movie)
    session = Session(project)
    g = project.graph
    d = TracksDisplay(**CAL)
    d.rebuild(g)
    rng = np.random.default_rng(21)
    done, patched = set(), 0
    for _ in range(160):
        kind = _random_step(project, session, rng)
        done.add(kind)
        patched += d.update(g) is not None  # None: most rows changed, rebuilt whole
        _assert_equal_to_rebuild(d, g)
    assert patched > 100
    assert {"unlink", "cut_cell", "link", "divide", "delete", "undo", "redo",
            "swap_daughter"} <= done


def test_cells_removed_added_moved_or_relabelled(movie):
    project = _project(movie)
    g = project.graph
    d = TracksDisplay(**CAL)
    d.rebuild(g)
    mother = next(n for n in g if len(g.successors(n)) == 2)
    g.remove_node(mother)  # a mother cell: both divisions go
    d.update(g)
    _assert_equal_to_rebuild(d, g)
    node = next(n for n in g if g.predecessor(n) is not None and g.successors(n))
    g.update_node(node, y=1.0, x=2.0, area=7)
    assert d.update(g) is not None and d.points_moved
    _assert_equal_to_rebuild(d, g)
    g.relabel_node(node, 999)
    d.update(g)
    _assert_equal_to_rebuild(d, g)
    g.add_node((3, 1000), y=5.0, x=5.0, area=30)
    g.add_node((4, 1001), y=6.0, x=5.0, area=31)
    g.add_edge((3, 1000), (4, 1001))
    d.update(g)
    _assert_equal_to_rebuild(d, g)
    e = g.edge_array()[0]
    g.remove_edge(tuple(e[:2]), tuple(e[2:]))
    assert d.update(g) is not None and not d.points_moved  # links only: same points array


def test_subset_and_calibration(movie):
    project = _project(movie)
    g = project.graph
    d = TracksDisplay()
    d.rebuild(g)
    daughter, (mother,) = next(iter(d.parents.items()))
    data, parents, features = d.subset(np.array([daughter, mother]))
    assert set(np.unique(data[:, 0]).astype(int)) == {daughter, mother}
    assert parents == {daughter: [mother]}
    assert all(v.size == data.shape[0] for v in features.values())
    # px and frames without a calibration: speed of the per-cell table in px / frame
    calibrated = TracksDisplay(**CAL)
    calibrated.rebuild(g)
    np.testing.assert_allclose(calibrated.features["speed"], d.features["speed"] * 0.5 / 2.0)
    np.testing.assert_allclose(calibrated.features["area"], d.features["area"] * 0.25)


def test_track_series_and_plot_show_the_layer_values(movie):
    from h4tracks.core.analysis.figures import track_plot
    from h4tracks.core.analysis.tracks_display import track_series
    from h4tracks.errors import InputError

    project = _project(movie)
    g = project.graph
    d = TracksDisplay(**CAL)
    d.rebuild(g)
    tid = int(d.data[np.argmax(d.features["n_points"]), 0])
    rows = np.flatnonzero(d.data[:, 0] == tid)
    s = track_series(g, tid, **CAL)
    assert s.columns == ["t", "time [min]", "speed [µm/min]", "area [µm²]"]
    np.testing.assert_array_equal(s["t"], d.data[rows, 1])
    assert np.isnan(s["speed [µm/min]"][0])  # no step leads to the first cell
    np.testing.assert_array_equal(s["speed [µm/min]"][1:], d.features["speed"][rows][1:])
    np.testing.assert_array_equal(s["area [µm²]"], d.features["area"][rows])
    fig = track_plot(g, tid, **CAL)
    speed_ax, area_ax = fig.axes
    np.testing.assert_array_equal(area_ax.lines[0].get_xdata(), s["time [min]"])
    assert speed_ax.get_ylabel() == "speed\n[µm/min]"
    with pytest.raises(InputError, match="no track with id 9999"):
        track_series(g, 9999)
