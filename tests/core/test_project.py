"""Tests of the project model: LabelMovie, Project, Metadata, AutoSnapshot."""

from __future__ import annotations

import numpy as np
import pytest
from _lineage_data import lineage_labels
from pydantic import ValidationError

from h4tracks import __version__
from h4tracks.core.graph import TrackGraph
from h4tracks.core.measure import measure_frame
from h4tracks.core.project import (
    LabelMovie,
    Metadata,
    Project,
    measure_graph_nodes,
)
from h4tracks.errors import H4TracksError, InputError

COLUMNS = ("t", "label", "y", "x", "area", "track_id")


# ---------------------------------------------------------------------------------- helpers
def readonly(a: np.ndarray) -> np.ndarray:
    """A read-only copy: any write through it raises, proving the base is never written."""
    b = np.array(a, copy=True)
    b.flags.writeable = False
    return b


@pytest.fixture
def data() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 6, (5, 9, 11)).astype(np.uint32)


@pytest.fixture
def movie(data: np.ndarray) -> LabelMovie:
    return LabelMovie(readonly(data))


def lineage_project() -> Project:
    lab = lineage_labels()
    img = np.random.default_rng(1).integers(0, 4000, lab.shape).astype(np.uint16)
    p = Project(img, lab)
    g = p.graph
    g.add_edge((0, 1), (1, 1))
    g.add_edge((1, 1), (2, 1))
    g.add_edge((2, 1), (3, 4))  # division
    g.add_edge((2, 1), (3, 5))
    g.add_edge((0, 2), (2, 2))  # gap edge
    g.add_edge((1, 3), (2, 4))
    return p


def rows(g: TrackGraph, t: int) -> dict[str, np.ndarray]:
    tab = g.node_table()
    sel = tab["t"] == t
    return {c: tab[c][sel] for c in COLUMNS}


# ---------------------------------------------------------------------------------- LabelMovie
GET_KEYS = (
    pytest.param(2, id="int"),
    pytest.param(np.int64(3), id="np-int"),
    pytest.param(-1, id="negative-int"),
    pytest.param(-5, id="most-negative"),
    pytest.param(slice(1, 4), id="slice"),
    pytest.param(slice(None, None, -2), id="reversed-step-slice"),
    pytest.param(slice(-3, None), id="negative-slice"),
    pytest.param(slice(4, 2), id="empty-slice"),
    pytest.param((2, slice(1, 6), 3), id="int-slice-int"),
    pytest.param((-2, slice(None), slice(2, 9, 3)), id="negative-int-slices"),
    pytest.param((1, 4, 7), id="scalar"),
    pytest.param((slice(None), 2), id="all-frames-one-row"),
    pytest.param((slice(0, 5, 2), slice(1, 3), slice(4, 6)), id="three-slices"),
    pytest.param((1, Ellipsis), id="int-ellipsis"),
    pytest.param((Ellipsis, 2), id="ellipsis-x"),
    pytest.param((Ellipsis, 2, 3), id="ellipsis-y-x"),
    pytest.param([0, 2, 4], id="list-of-t"),
    pytest.param(np.array([4, 0, 0]), id="array-of-t-repeated"),
    pytest.param(np.array([-1, 1]), id="array-of-negative-t"),
    pytest.param(np.array([[0, 1], [2, 3]]), id="2d-array-of-t"),
    pytest.param(np.array([True, False, True, False, True]), id="bool-mask-of-t"),
    pytest.param((np.array([0, 2]), slice(None), slice(None)), id="array-t-full-slices"),
    pytest.param((np.array([0, 3, 3, 1]), np.array([1, 2, 8, 0]), np.array([0, 10, 3, 5])),
                 id="napari-points"),
    pytest.param((np.array([-1, 0]), np.array([1, 2]), np.array([0, 1])),
                 id="napari-points-negative-t"),
    pytest.param((np.array([[0], [4]]), np.array([[1, 2]]), np.array([[3], [4]])),
                 id="napari-points-broadcast"),
    pytest.param((2, np.array([1, 2, 8]), np.array([0, 10, 3])), id="int-t-point-arrays"),
)

SET_CASES = (
    pytest.param(1, 9, id="int"),
    pytest.param(-1, 9, id="negative-int"),
    pytest.param((2, slice(1, 4), slice(2, 5)), np.arange(9).reshape(3, 3), id="int-slices"),
    pytest.param((-4, 3, 7), 11, id="negative-scalar"),
    pytest.param(slice(1, 3), 9, id="slice-scalar"),
    pytest.param(slice(3, 1, -1), "stack", id="reversed-slice-stack"),
    pytest.param((slice(None), 2), 4, id="all-frames-one-row"),
    pytest.param((np.array([0, 1, 3, 3]), np.array([1, 2, 5, 8]), np.array([0, 6, 2, 10])),
                 9, id="napari-points-scalar"),
    pytest.param((np.array([0, 1, 3, 3]), np.array([1, 2, 5, 8]), np.array([0, 6, 2, 10])),
                 np.array([7, 8, 9, 10]), id="napari-points-values"),
    pytest.param(np.array([0, 2]), 9, id="array-of-t-scalar"),
    pytest.param((Ellipsis, 2), 4, id="ellipsis-x"),
)


class TestLabelMovieIndexing:
    @pytest.mark.parametrize("key", GET_KEYS)
    def test_get_equals_numpy(self, movie: LabelMovie, data: np.ndarray, key) -> None:
        got = np.asarray(movie[key])
        want = data[key]
        assert got.shape == want.shape
        assert got.dtype == np.uint32
        np.testing.assert_array_equal(got, want)

    # regression: the index after an array of t applies to Y, not X
    @pytest.mark.parametrize("rest", [slice(1, 4), 3], ids=["slice", "int"])
    def test_get_array_of_t_then_one_index(
        self, movie: LabelMovie, data: np.ndarray, rest
    ) -> None:
        key = (np.array([0, 2]), rest)
        got = np.asarray(movie[key])
        assert got.shape == data[key].shape
        np.testing.assert_array_equal(got, data[key])

    # regression: point index with fewer arrays than axes
    def test_get_partial_point_index(self, movie: LabelMovie, data: np.ndarray) -> None:
        key = (np.array([0, 2]), np.array([1, 3]))
        np.testing.assert_array_equal(movie[key], data[key])

    def test_out_of_range_frame(self, movie: LabelMovie) -> None:
        for t in (5, -6):
            with pytest.raises(IndexError):
                movie[t]
            with pytest.raises(IndexError):
                movie[t] = 1
        with pytest.raises(IndexError):
            movie[np.array([1, 5])]

    @pytest.mark.parametrize(("key", "value"), SET_CASES)
    def test_set_equals_numpy_and_marks_touched_frames(
        self, data: np.ndarray, key, value
    ) -> None:
        base = readonly(data)
        movie = LabelMovie(base)
        want = data.copy()
        if isinstance(value, str):  # one distinct frame per selected t
            value = want[key] + 100
        want[key] = value
        movie[key] = value
        np.testing.assert_array_equal(np.asarray(movie), want)
        touched = {t for t in range(len(data)) if not np.array_equal(want[t], data[t])}
        assert movie.dirty == touched
        assert set(movie.edited_frames) == touched
        np.testing.assert_array_equal(base, data)  # the base is never written

    # regression: negative t in a point index marks frame T-1 dirty, not -1
    def test_set_napari_points_negative_t(self, data: np.ndarray) -> None:
        movie = LabelMovie(readonly(data))
        movie[np.array([-1, 0]), np.array([1, 2]), np.array([0, 1])] = 9
        want = data.copy()
        want[np.array([-1, 0]), np.array([1, 2]), np.array([0, 1])] = 9
        np.testing.assert_array_equal(np.asarray(movie), want)
        assert movie.dirty == {0, 4}

    # regression: movie[[0, 2], 1:4] = v
    def test_set_array_of_t_then_slice(self, data: np.ndarray) -> None:
        movie = LabelMovie(readonly(data))
        movie[np.array([0, 2]), 1:4] = 9
        want = data.copy()
        want[np.array([0, 2]), 1:4] = 9
        np.testing.assert_array_equal(np.asarray(movie), want)

    # regression: one (Y, X) frame per t of an array of t
    def test_set_array_of_t_with_frames(self, data: np.ndarray) -> None:
        movie = LabelMovie(readonly(data))
        frames = data[[0, 2]] + 1
        movie[np.array([0, 2])] = frames
        np.testing.assert_array_equal(movie[np.array([0, 2])], frames)

    # regression: a boolean mask of t when setting
    def test_set_bool_mask_of_t(self, data: np.ndarray) -> None:
        movie = LabelMovie(readonly(data))
        mask = np.array([True, False, True, False, False])
        movie[mask] = 9
        want = data.copy()
        want[mask] = 9
        np.testing.assert_array_equal(np.asarray(movie), want)
        assert movie.dirty == {0, 2}

    def test_edits_accumulate_and_reads_see_them(self, data: np.ndarray) -> None:
        base = readonly(data)
        movie = LabelMovie(base)
        movie[2, 0, 0] = 42
        movie[2, 1:3, 1:3] = 43
        movie[np.array([2, 2]), np.array([5, 6]), np.array([5, 6])] = 44
        want = data.copy()
        want[2, 0, 0] = 42
        want[2, 1:3, 1:3] = 43
        want[2, [5, 6], [5, 6]] = 44
        np.testing.assert_array_equal(movie[2], want[2])
        np.testing.assert_array_equal(movie[1:4], want[1:4])
        assert movie.dirty == {2}
        np.testing.assert_array_equal(base, data)

    def test_frames_block_equals_frame_by_frame_with_edits(self, data: np.ndarray) -> None:
        movie = LabelMovie(readonly(data))
        movie.set_frame(2, np.full(data.shape[1:], 7, np.uint32))
        movie[3, 0, 0] = 42
        block = movie.frames(1, 5)
        assert block.dtype == np.uint32 and block.shape == (4, *data.shape[1:])
        np.testing.assert_array_equal(block, np.stack([movie.frame(t) for t in range(1, 5)]))
        block[:] = 0  # a copy: writing it changes neither the movie nor its base
        assert movie.frame(2)[0, 0] == 7 and movie.frame(1).any()

    def test_reads_are_not_views_of_the_movie(self, movie: LabelMovie, data) -> None:
        """napari may write into the array it got (its slice cache): that is not an edit."""
        movie[2, 0, 0] = 50
        for t in (1, 2):
            got = movie[t]
            got[...] = 77
            assert movie[t, 1, 1] != 77
        assert movie.dirty == {2}
        assert movie[2, 0, 0] == 50 and movie[1, 0, 0] == data[1, 0, 0]

    def test_same_value_write_marks_frame_dirty(self, movie: LabelMovie, data) -> None:
        """Writing is what makes a frame dirty (napari paints with the existing value too)."""
        movie[3, 0, 0] = data[3, 0, 0]
        assert movie.dirty == {3}

    def test_listener_called_per_touched_frame(self, movie: LabelMovie) -> None:
        seen: list[int] = []
        movie.add_listener(seen.append)
        movie[1, 0, 0] = 3
        movie[np.array([0, 4, 4]), np.array([0, 1, 2]), np.array([0, 1, 2])] = 1
        movie.set_frame(2, np.zeros((9, 11)))
        assert sorted(seen) == [0, 1, 2, 4]

    def test_set_frame(self, data: np.ndarray) -> None:
        base = readonly(data)
        movie = LabelMovie(base)
        new = np.full((9, 11), 3, np.int64)
        movie.set_frame(-1, new)
        assert movie.dirty == {4}
        got = movie[4]
        assert got.dtype == np.uint32
        np.testing.assert_array_equal(got, new)
        new[0, 0] = 99  # a copy was stored
        assert movie[4, 0, 0] == 3
        np.testing.assert_array_equal(base, data)

    @pytest.mark.parametrize("shape", [(9, 10), (11, 9), (1, 9, 11), (9,)])
    def test_set_frame_shape_error(self, movie: LabelMovie, shape) -> None:
        with pytest.raises(InputError, match="shape"):
            movie.set_frame(0, np.zeros(shape, np.uint32))
        assert movie.dirty == set()

    def test_asarray(self, movie: LabelMovie, data: np.ndarray) -> None:
        movie[1, 2, 3] = 77
        want = data.copy()
        want[1, 2, 3] = 77
        arr = np.asarray(movie)
        assert arr.shape == (5, 9, 11)
        assert arr.dtype == np.uint32
        np.testing.assert_array_equal(arr, want)
        np.testing.assert_array_equal(np.asarray(movie, dtype=np.int64), want.astype(np.int64))
        arr[0, 0, 0] = 123  # np.asarray gives an independent array
        assert movie[0, 0, 0] == data[0, 0, 0]

    def test_array_protocol_attributes(self, movie: LabelMovie) -> None:
        assert movie.shape == (5, 9, 11)
        assert movie.ndim == 3
        assert movie.dtype == np.uint32
        assert movie.size == 5 * 9 * 11
        assert len(movie) == 5

    def test_other_dtypes_read_as_uint32(self) -> None:
        base = readonly(np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4))
        movie = LabelMovie(base)
        assert movie[1].dtype == np.uint32
        np.testing.assert_array_equal(movie[1], base[1])
        movie[1, 0, 0] = 70000  # beyond uint16: edits are uint32
        assert movie[1, 0, 0] == 70000

    @pytest.mark.parametrize("shape", [(4, 4), (2, 3, 4, 5)])
    def test_not_3d_is_an_input_error(self, shape) -> None:
        with pytest.raises(InputError, match=r"\(T, Y, X\)"):
            LabelMovie(np.zeros(shape, np.uint32))

    def test_mark_saved_forgets_edits(self, movie: LabelMovie, data: np.ndarray, tmp_path):
        movie[0, 0, 0] = 50
        new_base = readonly(np.asarray(movie))
        movie.mark_saved(new_base, tmp_path)
        assert movie.dirty == set()
        assert movie.edited_frames == {}
        assert movie.base is new_base
        assert movie.store_path == tmp_path
        assert movie[0, 0, 0] == 50


# ---------------------------------------------------------------------------------- Project
class TestProject:
    def test_2d_image_becomes_one_frame(self) -> None:
        img = np.arange(15, dtype=np.uint8).reshape(3, 5)
        p = Project(img, labels=np.ones((3, 5), np.uint32))
        assert p.shape == (1, 3, 5)
        assert p.n_frames == 1
        assert p.dtype == np.uint8
        np.testing.assert_array_equal(np.asarray(p.image)[0], img)
        assert p.labels is not None and p.labels.shape == (1, 3, 5)
        assert list(p.graph) == [(0, 1)]

    @pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
    def test_image_kept_in_original_dtype(self, dtype) -> None:
        img = np.zeros((2, 5, 6), dtype)
        p = Project(img)
        assert p.image is img
        assert p.dtype == dtype
        assert p.labels is None
        assert len(p.graph) == 0

    @pytest.mark.parametrize(
        "labels",
        [
            pytest.param(np.zeros((2, 5, 7), np.uint32), id="wrong-x"),
            pytest.param(np.zeros((3, 5, 6), np.uint32), id="wrong-t"),
            pytest.param(np.zeros((5, 6), np.uint32), id="2d-for-2-frames"),
            pytest.param(np.zeros((2, 5, 6), np.float32), id="float"),
            pytest.param(np.full((2, 5, 6), 0.5), id="float64-fractional"),
        ],
    )
    def test_bad_labels_are_h4tracks_errors(self, labels) -> None:
        img = np.zeros((2, 5, 6), np.uint16)
        with pytest.raises(H4TracksError):
            Project(img, labels)
        p = Project(img)
        with pytest.raises(H4TracksError):
            p.set_labels(labels)
        assert p.labels is None

    def test_graph_nodes_measured_per_frame(self) -> None:
        lab = lineage_labels()
        p = Project(np.zeros(lab.shape, np.uint8), lab)
        g = p.graph
        assert g.n_edges == 0
        assert len(g) == sum(len(measure_frame(f)) for f in lab)
        for t in range(lab.shape[0]):
            m = measure_frame(lab[t])
            r = rows(g, t)
            np.testing.assert_array_equal(r["label"], m.labels)
            np.testing.assert_array_equal(r["area"], m.areas)
            np.testing.assert_allclose(r["y"], m.centroids[:, 0], rtol=0, atol=1e-12)
            np.testing.assert_allclose(r["x"], m.centroids[:, 1], rtol=0, atol=1e-12)
        tri = g.node((3, 7))
        assert tri["area"] == 15
        ys, xs = np.nonzero(lab[3] == 7)
        assert tri["y"] == pytest.approx(ys.mean()) and tri["x"] == pytest.approx(xs.mean())
        assert g == measure_graph_nodes(lab)

    def test_label_edit_updates_only_that_frames_nodes(self) -> None:
        p = lineage_project()
        before = p.graph.copy()
        edges_before = {tuple(e) for e in before.edge_array().tolist()}
        want = lineage_labels()

        p.labels[1, 3:12, 3:9] = 1  # grow cell 1
        p.labels[1, 12:16, 12:19] = 0  # erase cell 3 (linked to (2, 4))
        p.labels[1, np.array([30, 30, 31]), np.array([1, 2, 1])] = 8  # new cell 8
        want[1, 3:12, 3:9] = 1
        want[1, 12:16, 12:19] = 0
        want[1, [30, 30, 31], [1, 2, 1]] = 8
        assert p.labels.dirty == {1}

        g = p.graph
        for t in (0, 2, 3):
            a, b = rows(g, t), rows(before, t)
            for c in ("t", "label", "y", "x", "area"):
                np.testing.assert_array_equal(a[c], b[c], err_msg=c)
        # (2, 4) lost its parent, so it starts a new track; every other id is kept
        for key in before:
            if key in g and key != (2, 4):
                assert g.track_id(key) == before.track_id(key), key
        assert g.track_id((2, 4)) not in before.track_ids()
        r = rows(g, 1)
        assert r["label"].tolist() == [1, 8]
        assert r["area"].tolist() == [54, 3]
        np.testing.assert_allclose(r["y"], [7.0, 91 / 3])
        np.testing.assert_allclose(r["x"], [5.5, 4 / 3])
        assert g.node((1, 1))["track_id"] == before.node((1, 1))["track_id"]
        edges = {tuple(e) for e in g.edge_array().tolist()}
        assert edges == edges_before - {(1, 3, 2, 4)}
        assert g.n_divisions == 1
        assert g.predecessor((2, 4)) is None
        np.testing.assert_array_equal(np.asarray(p.labels), want)

    def test_graph_resync_is_lazy_and_per_frame(self) -> None:
        p = lineage_project()
        p.graph  # noqa: B018 - sync
        rev = p.graph.revision
        p.labels[3, 0, 39] = 9
        assert p._graph.revision == rev  # nothing measured before the graph is read
        assert (3, 9) in p.graph
        assert p.graph.node((3, 9))["area"] == 1

    def test_napari_style_paint_updates_graph(self) -> None:
        p = lineage_project()
        ys, xs = np.mgrid[0:2, 0:3]
        t = np.full(ys.size, 2)
        p.labels[t, ys.ravel() + 28, xs.ravel() + 20] = 11
        assert p.labels.dirty == {2}
        node = p.graph.node((2, 11))
        assert (node["y"], node["x"], node["area"]) == (28.5, 21.0, 6)

    # regression: a negative-t paint used to add graph nodes at t=-1
    def test_negative_t_paint_updates_graph_of_last_frame(self) -> None:
        p = lineage_project()
        p.labels[np.array([-1]), np.array([30]), np.array([30])] = 12
        g = p.graph
        assert g.node_table()["t"].min() >= 0
        assert (3, 12) in g

    def test_set_labels_rebuilds_graph(self) -> None:
        p = lineage_project()
        assert p.graph.n_edges > 0
        new = np.zeros(p.shape, np.uint16)
        new[:, 5:10, 5:10] = 3
        new[2, 20:22, 20:23] = 4
        p.set_labels(new)
        g = p.graph
        assert g.n_edges == 0
        assert sorted(g) == [(0, 3), (1, 3), (2, 3), (2, 4), (3, 3)]
        assert g == measure_graph_nodes(new)
        assert p.labels.dirty == set()
        np.testing.assert_array_equal(np.asarray(p.labels), new)
        # edits of the new movie still reach the graph
        p.labels[0, 0, 0] = 5
        assert (0, 5) in p.graph

    def test_set_labels_without_rebuild_keeps_graph(self) -> None:
        p = lineage_project()
        g = p.graph
        p.set_labels(lineage_labels(), rebuild_graph=False)
        assert p.graph is g

    def test_ensure_labels(self) -> None:
        p = Project(np.ones((2, 3, 5), np.uint8))
        movie = p.ensure_labels()
        assert movie is p.labels
        assert movie.shape == (2, 3, 5)
        assert not np.asarray(movie).any()
        assert p.ensure_labels() is movie
        movie[1, 1, 1] = 4
        assert list(p.graph) == [(1, 4)]

    def test_graph_setter(self) -> None:
        p = lineage_project()
        g = TrackGraph()
        p.graph = g
        assert p.graph is g

    def test_summary(self) -> None:
        p = lineage_project()
        p.metadata.pixel_size = 0.65
        s = p.summary()
        assert s["shape (T, Y, X)"] == (4, 32, 40)
        assert s["cells"] == len(p.graph)
        assert s["links"] == 6
        assert s["divisions"] == 1
        assert s["pixel size"] == "0.65 µm"
        assert s["path"] is None
        assert p.has_unsaved_changes

    def test_metadata_as_dict(self) -> None:
        p = Project(np.zeros((1, 2, 2), np.uint8), metadata={"name": "x", "pixel_size": 2})
        assert isinstance(p.metadata, Metadata)
        assert p.metadata.name == "x" and p.metadata.pixel_size == 2.0


# ---------------------------------------------------------------------------------- Metadata
class TestMetadata:
    def test_defaults(self) -> None:
        m = Metadata()
        assert m.name is None and m.pixel_size is None and m.frame_interval is None
        assert m.time_unit == "s"
        assert m.provenance == []

    @pytest.mark.parametrize("field", ["pixel_size", "frame_interval"])
    @pytest.mark.parametrize("value", [-0.5, 0, "-1"])
    def test_non_positive_is_an_error(self, field, value) -> None:
        with pytest.raises(ValidationError):
            Metadata(**{field: value})
        m = Metadata()
        with pytest.raises(ValidationError):  # validate_assignment
            setattr(m, field, value)
        assert getattr(m, field) is None

    @pytest.mark.parametrize("field", ["pixel_size", "frame_interval"])
    def test_empty_string_is_none(self, field) -> None:
        assert getattr(Metadata(**{field: ""}), field) is None
        m = Metadata(**{field: 3})
        setattr(m, field, "")
        assert getattr(m, field) is None

    def test_number_strings_are_parsed(self) -> None:
        assert Metadata(pixel_size="0.25").pixel_size == 0.25

    def test_time_unit_and_extra_fields(self) -> None:
        assert Metadata(time_unit="min").time_unit == "min"
        with pytest.raises(ValidationError):
            Metadata(time_unit="days")
        with pytest.raises(ValidationError):
            Metadata(pixelsize=1)  # typo: extra fields are forbidden

    def test_channel_int_or_str(self) -> None:
        assert Metadata(channel=2).channel == 2
        assert Metadata(channel="GFP").channel == "GFP"


# ---------------------------------------------------------------------------------- snapshot
class TestAutoSnapshotAndProvenance:
    def test_take_auto_snapshot_is_an_independent_copy(self) -> None:
        p = lineage_project()
        labels_before = np.asarray(p.labels).copy()
        graph_before = p.graph.copy()
        snap = p.take_auto_snapshot(method="cellpose", diameter=30)
        assert p.auto is snap
        assert snap.info == {"method": "cellpose", "diameter": 30}
        # labels are shared copy-on-write: no pixels copied, and each side copies a frame
        # before writing to it (the session replaces snapshot frames run by run)
        assert isinstance(snap.labels, LabelMovie) and snap.labels is not p.labels
        np.testing.assert_array_equal(np.asarray(snap.labels), labels_before)
        assert snap.graph == graph_before
        assert snap.graph is not p.graph

        p.labels[0, 28:32, 0:4] = 9
        p.labels.set_frame(2, np.zeros(p.shape[1:]))
        p.graph.add_edge((0, 2), (1, 3))
        p.graph.remove_edge((0, 1), (1, 1))
        assert p.graph != graph_before

        np.testing.assert_array_equal(np.asarray(snap.labels), labels_before)
        assert snap.graph == graph_before
        assert snap.graph.n_edges == 6

    def test_snapshot_copy_on_write_across_saves(self, tmp_path) -> None:
        from h4tracks.core.store import open_project, save_project

        p = lineage_project()
        save_project(p, tmp_path / "p.zarr")
        p = open_project(tmp_path / "p.zarr")
        p.labels[1, 0:2, 0:2] = 5  # edited, unsaved frame shared with the snapshot
        snap = p.take_auto_snapshot()
        before = np.asarray(snap.labels).copy()
        p.labels[1, 0:2, 0:2] = 6  # copy-on-write: the snapshot keeps 5
        p.labels[0, 0:2, 0:2] = 7  # a frame read from disk
        np.testing.assert_array_equal(np.asarray(snap.labels), before)
        save_project(p)
        q = open_project(tmp_path / "p.zarr")
        np.testing.assert_array_equal(np.asarray(q.auto.labels), before)
        assert q.labels.frame(1)[0, 0] == 6 and q.labels.frame(0)[0, 0] == 7

    def test_snapshot_without_labels(self) -> None:
        p = Project(np.zeros((2, 3, 5), np.uint8))
        snap = p.take_auto_snapshot()
        assert snap.labels is None
        assert len(snap.graph) == 0
        assert snap.info == {}

    def test_snapshot_info_is_copied(self) -> None:
        p = lineage_project()
        info = {"a": 1}
        snap = p.take_auto_snapshot(**info)
        info["a"] = 2
        assert snap.info == {"a": 1}

    def test_add_provenance(self) -> None:
        p = lineage_project()
        p.add_provenance("segment", model="cyto3", diameter=25.0)
        p.add_provenance("track", max_gap=2)
        prov = p.metadata.provenance
        assert [e["step"] for e in prov] == ["segment", "track"]
        assert prov[0]["params"] == {"model": "cyto3", "diameter": 25.0}
        assert prov[1]["params"] == {"max_gap": 2}
        assert prov[0]["h4tracks"] == __version__
        assert set(prov[0]) >= {"step", "time", "h4tracks", "python", "params"}
        assert "T" in prov[0]["time"]
        assert p.summary()["automatic steps"] == ["segment", "track"]
