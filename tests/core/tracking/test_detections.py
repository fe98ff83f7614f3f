"""Tests of h4tracks.core.tracking.detections: detect, and detections from measured nodes."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import regionprops

from h4tracks.core.measure import measure_movie
from h4tracks.core.project import LabelMovie, Project
from h4tracks.core.tracking import Detections, detect
from h4tracks.core.tracking.detections import measured_detections
from h4tracks.errors import H4TracksError, InputError


def test_matches_measure_movie_and_regionprops(movie):
    det = detect(movie.labels)
    ref = measure_movie(movie.labels)
    for c in ("t", "label", "y", "x", "area"):
        assert np.array_equal(getattr(det, c), ref[c]), c  # bit-identical centroids
    off = det.frame_offsets()
    for t in (0, 7, 19):
        props = regionprops(movie.labels[t])
        rows = slice(off[t], off[t + 1])
        assert [p.label for p in props] == det.label[rows].tolist()
        boxes = np.array([p.bbox for p in props])
        got = np.stack([det.y0[rows], det.x0[rows], det.y1[rows], det.x1[rows]], 1)
        assert np.array_equal(got, boxes)


def test_label_movie_threads_and_progress(movie):
    calls = []
    a = detect(movie.labels)
    b = detect(LabelMovie(movie.labels), cores=3, progress=lambda d, n: calls.append((d, n)))
    for c in ("t", "label", "y", "x", "area", "y0", "x0", "y1", "x1"):
        assert np.array_equal(getattr(a, c), getattr(b, c))
    assert calls == [(i, 20) for i in range(1, 21)]
    assert b.n_frames == 20


def test_subset_empty_frames_and_huge_labels():
    lab = np.zeros((4, 10, 12), np.uint32)
    lab[1, 2:4, 3:6] = 7
    lab[1, 5, 5] = 2**32 - 1  # sparse label ids take the np.unique path
    lab[3, 0, 0] = 1
    det = detect(lab, frames=[1, 2])
    assert det.n_frames == 4 and det.t.tolist() == [1, 1]
    assert det.label.tolist() == [7, 2**32 - 1]
    assert det.area.tolist() == [6, 1]
    assert det.y.tolist() == [2.5, 5.0] and det.x.tolist() == [4.0, 5.0]
    assert (det.y0[0], det.x0[0], det.y1[0], det.x1[0]) == (2, 3, 4, 6)
    assert det.frame_offsets().tolist() == [0, 0, 2, 2, 2]
    assert len(detect(np.zeros((3, 5, 5), np.uint16))) == 0


def test_errors_and_cancel(movie):
    with pytest.raises(InputError):
        detect(np.zeros((5, 5)))
    with pytest.raises(InputError):
        detect(movie.labels, frames=[25])
    with pytest.raises(InputError):
        detect(-np.ones((1, 3, 3), np.int32))
    with pytest.raises(H4TracksError, match="cancelled"):
        detect(movie.labels, cores=2, cancel=lambda: True)


def test_from_points():
    det = Detections.from_points([np.array([[1.5, 2.0]]), np.empty((0, 2)), np.zeros((2, 2))])
    assert det.t.tolist() == [0, 2, 2] and det.label.tolist() == [1, 1, 2]
    assert det.n_frames == 3 and det.frame_offsets().tolist() == [0, 1, 1, 3]


def test_measured_detections_take_the_nodes_and_read_only_stale_frames(movie):
    project = Project(movie.image, movie.labels)
    nodes, stale = project.unsynced_nodes()
    assert stale == frozenset()
    calls = []
    det = measured_detections(project.labels, nodes, stale,
                              progress=lambda d, n: calls.append((d, n)))
    ref = detect(movie.labels)
    for c in ("t", "label", "y", "x", "area"):
        assert np.array_equal(getattr(det, c), getattr(ref, c)), c  # bit-identical
    assert det.n_frames == 20 and calls == [(20, 20)]

    # an edit not yet measured: that frame is read, the project is left as it is
    frame = project.labels.frame(3).copy()
    frame[frame == np.unique(frame)[1]] = 0  # a cell erased ...
    frame[0:4, 0:5] = 500  # ... and one painted
    project.labels.set_frame(3, frame)
    nodes, stale = project.unsynced_nodes()
    assert stale == {3}
    det = measured_detections(project.labels, nodes, stale, cores=2)
    ref = detect(project.labels)
    for c in ("t", "label", "y", "x", "area"):
        assert np.array_equal(getattr(det, c), getattr(ref, c)), c
    rows = slice(*ref.frame_offsets()[3:5])
    for c in ("y0", "x0", "y1", "x1"):  # boxes are exact where the frame was read
        assert np.array_equal(getattr(det, c)[rows], getattr(ref, c)[rows]), c
    assert project.unsynced_nodes()[1] == {3}  # nothing re-measured in the project
    with pytest.raises(H4TracksError, match="cancelled"):
        measured_detections(project.labels, nodes, stale, cancel=lambda: True)


def test_from_nodes():
    nodes = {"t": np.array([0, 2]), "label": np.array([4, 1]), "y": np.array([1.5, 3.0]),
             "x": np.array([2.25, 0.0]), "area": np.array([3, 1])}
    det = Detections.from_nodes(nodes, 3)
    assert det.n_frames == 3 and det.frame_offsets().tolist() == [0, 1, 1, 2]
    assert det.y0.tolist() == [1, 3] and det.x1.tolist() == [3, 1]
    assert det.coords.tolist() == [[1.5, 2.25], [3.0, 0.0]]
