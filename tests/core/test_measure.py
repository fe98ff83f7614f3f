"""Tests of h4tracks.core.measure.measure_frame against skimage.measure.regionprops_table."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from skimage.measure import regionprops_table

from h4tracks.core import measure as measure_mod
from h4tracks.core.measure import FrameMeasurements, measure_frame

PROPS = ("label", "centroid", "area")


def oracle(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, centroids, areas) of a label image according to scikit-image.

    Label values are compacted to 1..K before calling regionprops (it allocates per label up
    to the maximum value, which is impossible for ids like 4e9) and mapped back afterwards.
    """
    frame = np.asarray(frame)
    fg = frame != 0
    uniq, inv = np.unique(frame[fg], return_inverse=True)
    compact = np.zeros(frame.shape, np.int32)
    compact[fg] = inv.ravel() + 1
    p = regionprops_table(compact, properties=PROPS)
    labels = uniq[p["label"] - 1].astype(np.int64)
    cents = np.stack([p["centroid-0"], p["centroid-1"]], axis=1).reshape(-1, 2)
    return labels, cents, p["area"].astype(np.int64)


def check_against_oracle(frame: np.ndarray) -> FrameMeasurements:
    m = measure_frame(frame)
    labels, cents, areas = oracle(frame)
    assert isinstance(m, FrameMeasurements)
    assert m.labels.dtype == np.uint32
    assert m.centroids.dtype == np.float64
    assert m.areas.dtype == np.int64
    assert m.labels.shape == (len(labels),)
    assert m.centroids.shape == (len(labels), 2)
    assert m.areas.shape == (len(labels),)
    assert len(m) == len(labels)
    assert np.all(np.diff(m.labels.astype(np.int64)) > 0)  # strictly ascending
    np.testing.assert_array_equal(m.labels.astype(np.int64), labels)
    np.testing.assert_array_equal(m.areas, areas)
    np.testing.assert_allclose(m.centroids, cents, rtol=1e-12, atol=1e-9)
    return m


# ---------------------------------------------------------------------------------- oracle
def test_oracle_matches_plain_regionprops_for_small_labels():
    # the compaction in `oracle` must not change what regionprops reports
    rng = np.random.default_rng(0)
    frame = rng.choice([0, 2, 5, 9], size=(20, 17)).astype(np.int32)
    labels, cents, areas = oracle(frame)
    p = regionprops_table(frame, properties=PROPS)
    np.testing.assert_array_equal(labels, p["label"])
    np.testing.assert_array_equal(areas, p["area"])
    np.testing.assert_allclose(cents[:, 0], p["centroid-0"])
    np.testing.assert_allclose(cents[:, 1], p["centroid-1"])


# ---------------------------------------------------------------------------------- fixed cases
def test_hand_computed_example():
    frame = np.array(
        [
            [0, 3, 3, 0],
            [0, 3, 0, 0],
            [7, 0, 0, 7],
        ],
        np.uint16,
    )
    m = measure_frame(frame)
    assert m.labels.tolist() == [3, 7]
    assert m.areas.tolist() == [3, 2]
    np.testing.assert_allclose(m.centroids, [[1 / 3, 4 / 3], [2.0, 1.5]])
    check_against_oracle(frame)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.uint32, np.int64])
def test_random_noncontiguous_labels(seed, dtype):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(5, 60, size=2).tolist())
    max_val = min(np.iinfo(dtype).max, 1000)
    values = np.r_[0, rng.choice(np.arange(1, max_val), size=12, replace=False)]
    frame = rng.choice(values, size=shape).astype(dtype)
    check_against_oracle(frame)


@pytest.mark.parametrize("seed", range(4))
def test_random_blobs(seed):
    """Realistic frames: rectangles with sparse ids, some overlapping, some split in two."""
    rng = np.random.default_rng(100 + seed)
    frame = np.zeros((64, 80), np.uint32)
    for lab in rng.choice(np.arange(1, 10_000), size=15, replace=False).tolist():
        for _ in range(int(rng.integers(1, 3))):  # some labels have two disjoint pieces
            y, x = rng.integers(0, 60), rng.integers(0, 76)
            h, w = rng.integers(1, 10, size=2)
            frame[y : y + h, x : x + w] = lab
    check_against_oracle(frame)


@pytest.mark.parametrize("big", [4_000_000_000, 2**32 - 1, 10_000])
def test_large_label_values_unique_path(big):
    frame = np.zeros((6, 7), np.uint32)
    frame[1:3, 1:4] = big
    frame[4, 5] = 2
    frame[5, 0:2] = 123_456_789
    # max label > _DENSE_LIMIT * pixels: the labels are compacted with np.unique
    assert big > measure_mod._DENSE_LIMIT * frame.size
    m = measure_frame(frame)
    expected = sorted([(2, 1, (4.0, 5.0)), (123_456_789, 2, (5.0, 0.5)), (big, 6, (1.5, 2.0))])
    assert m.labels.tolist() == [e[0] for e in expected]
    assert m.areas.tolist() == [e[1] for e in expected]
    np.testing.assert_allclose(m.centroids, [e[2] for e in expected])
    check_against_oracle(frame)


def test_large_labels_int64_frame():
    frame = np.zeros((5, 5), np.int64)
    frame[0, 0] = 4_000_000_000
    frame[4, 4] = 1
    frame[2, 1:4] = 3_999_999_999
    check_against_oracle(frame)


@pytest.mark.parametrize("seed", range(3))
def test_dense_and_unique_paths_agree(seed):
    rng = np.random.default_rng(seed)
    frame = rng.choice([0, 1, 4, 6, 30], size=(9, 11)).astype(np.int64)
    assert int(frame.max()) <= measure_mod._DENSE_LIMIT * frame.size
    dense = measure_frame(frame)
    # same segmentation with ids shifted by a huge offset: forces the unique path
    offset = 3_000_000_000
    shifted = np.where(frame > 0, frame + offset, 0)
    sparse = measure_frame(shifted)
    np.testing.assert_array_equal(sparse.labels.astype(np.int64), dense.labels + offset)
    np.testing.assert_array_equal(sparse.areas, dense.areas)
    np.testing.assert_allclose(sparse.centroids, dense.centroids, rtol=1e-12)
    check_against_oracle(shifted)


def test_dense_limit_boundary():
    frame = np.zeros((2, 3), np.int32)  # 6 pixels, limit = 24
    for max_label in (23, 24, 25, 26):
        frame[0, 0] = 1
        frame[1, 2] = max_label
        m = check_against_oracle(frame)
        assert m.labels.tolist() == [1, max_label]


@pytest.mark.parametrize("shape", [(10, 12), (1, 1), (0, 0), (0, 5), (5, 0)])
def test_empty_frame(shape):
    m = measure_frame(np.zeros(shape, np.uint16))
    assert len(m) == 0
    assert m.labels.shape == (0,)
    assert m.labels.dtype == np.uint32
    assert m.centroids.shape == (0, 2)
    assert m.centroids.dtype == np.float64
    assert m.areas.shape == (0,)
    assert m.areas.dtype == np.int64
    if 0 not in shape:
        check_against_oracle(np.zeros(shape, np.uint16))


@pytest.mark.parametrize(("y", "x"), [(0, 0), (3, 4), (6, 0), (0, 8), (6, 8)])
def test_single_pixel_cell(y, x):
    frame = np.zeros((7, 9), np.uint8)
    frame[y, x] = 5
    m = check_against_oracle(frame)
    assert m.labels.tolist() == [5]
    assert m.areas.tolist() == [1]
    assert m.centroids.tolist() == [[float(y), float(x)]]


def test_single_pixel_image():
    m = check_against_oracle(np.array([[9]], np.int32))
    assert m.labels.tolist() == [9]
    assert m.centroids.tolist() == [[0.0, 0.0]]


@pytest.mark.parametrize("value", [1, 17, 4_000_000_000])
def test_all_foreground_single_label(value):
    frame = np.full((5, 8), value, np.uint32)
    m = check_against_oracle(frame)
    assert m.labels.tolist() == [value]
    assert m.areas.tolist() == [40]
    np.testing.assert_allclose(m.centroids, [[2.0, 3.5]])


def test_all_foreground_many_labels():
    rng = np.random.default_rng(7)
    frame = rng.integers(1, 6, size=(13, 21)).astype(np.uint16)
    m = check_against_oracle(frame)
    assert m.areas.sum() == frame.size


def test_one_row_and_one_column_images():
    check_against_oracle(np.array([[0, 2, 2, 0, 3, 2]], np.int32))
    check_against_oracle(np.array([[0], [2], [2], [0], [3], [2]], np.int32))


def test_noncontiguous_array_views():
    rng = np.random.default_rng(3)
    base = rng.choice([0, 1, 2, 8], size=(30, 40)).astype(np.uint16)
    for view in (base.T, base[::2, ::3], base[5:20, 10:], np.asfortranarray(base)):
        check_against_oracle(view)


def test_bool_frame_is_one_cell():
    frame = np.zeros((4, 4), bool)
    frame[1:3, 2:4] = True
    m = measure_frame(frame)
    assert m.labels.tolist() == [1]
    assert m.areas.tolist() == [4]
    np.testing.assert_allclose(m.centroids, [[1.5, 2.5]])


def test_list_input_is_accepted():
    m = measure_frame([[0, 1], [1, 2]])
    assert m.labels.tolist() == [1, 2]
    assert m.areas.tolist() == [2, 1]


def test_input_is_not_modified():
    frame = np.array([[0, 5], [5, 4_000_000_000]], np.int64)
    original = frame.copy()
    measure_frame(frame)
    np.testing.assert_array_equal(frame, original)


def test_measurements_are_frozen():
    m = measure_frame(np.array([[1]]))
    with pytest.raises(AttributeError):
        m.labels = np.array([2], np.uint32)  # type: ignore[misc]


@pytest.mark.parametrize("shape", [(), (5,), (0,), (2, 3, 4), (1, 4, 4), (1, 1, 1, 1)], ids=str)
def test_non_2d_input_raises(shape):
    with pytest.raises(ValueError, match="2D"):
        measure_frame(np.ones(shape, np.uint16))


# ---------------------------------------------------------------------------------- hypothesis
_label_images = st.one_of(
    # small dense ids
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.int32, np.uint32, np.int64]),
        shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.integers(0, 6),
    ),
    # sparse and huge ids (exercise the np.unique path), with plenty of background
    hnp.arrays(
        dtype=st.sampled_from([np.uint32, np.int64]),
        shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.sampled_from([0, 0, 0, 1, 37, 1000, 65_536, 3_999_999_999, 4_000_000_000]),
    ),
)


@settings(max_examples=200, deadline=None)
@given(_label_images)
def test_matches_regionprops_on_generated_images(frame):
    m = check_against_oracle(frame)
    assert m.areas.sum() == np.count_nonzero(frame)
    # centroids lie inside the bounding box of the image
    if len(m):
        assert np.all(m.centroids >= 0)
        assert np.all(m.centroids[:, 0] <= frame.shape[0] - 1)
        assert np.all(m.centroids[:, 1] <= frame.shape[1] - 1)


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(
        dtype=np.int32,
        shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=10),
        elements=st.integers(0, 4),
    ),
    st.integers(1, 5),
)
def test_relabelling_permutes_measurements(frame, shift):
    """Mapping label ids monotonically maps the measurement rows the same way."""
    a = measure_frame(frame)
    mapped = np.where(frame > 0, frame * 1000 + shift, 0)
    b = measure_frame(mapped)
    np.testing.assert_array_equal(
        b.labels.astype(np.int64), a.labels.astype(np.int64) * 1000 + shift
    )
    np.testing.assert_array_equal(b.areas, a.areas)
    np.testing.assert_allclose(b.centroids, a.centroids)


@pytest.mark.parametrize(
    "frame",
    [np.array([[5, 2**32 + 5]], np.int64), np.array([[1, -3]], np.int32)],
    ids=["above-uint32", "negative"],
)
def test_out_of_range_labels_are_a_clear_error(frame):
    from h4tracks.errors import InputError

    with pytest.raises(InputError, match="labels must be integers from 0"):
        measure_frame(frame)
