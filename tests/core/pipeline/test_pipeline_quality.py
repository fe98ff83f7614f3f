"""The quality flags of movies.csv, each on a small synthetic node table, and read from a
project."""

from __future__ import annotations

import numpy as np

from h4tracks.core.pipeline.quality import project_flags, quality_flags
from h4tracks.core.project import Project

SHAPE = (100, 100)


def _nodes(counts, *, track_len: int | None = None, near_border: int = 0) -> dict:
    """``counts[t]`` cells in frame t, away from the border unless ``near_border`` of them
    (per frame) sit at x = 2 with area 20 (radius 2.5); tracks of ``track_len`` cells (None:
    one track per cell position, through all frames)."""
    t = np.repeat(np.arange(len(counts)), counts)
    k = np.concatenate([np.arange(c) for c in counts]).astype(np.int64)
    y = 20.0 + 5 * k
    x = np.where(k < near_border, 2.0, 50.0)
    if track_len is None:
        track = k + 1
    else:
        track = np.arange(t.size) // track_len + 1
    return {"t": t, "y": y, "x": x, "area": np.full(t.size, 20.0), "track_id": track}


def _flags(nodes, n_frames, *, n_edges=10, tracked=True):
    return quality_flags(nodes, n_frames=n_frames, frame_shape=SHAPE, n_edges=n_edges,
                         tracked=tracked)


def test_a_clean_movie_has_no_flag():
    assert _flags(_nodes([10] * 6), 6) == []


def test_no_cells():
    assert _flags(_nodes([0, 0, 0]), 3, n_edges=0) == ["no cells"]


def test_not_tracked_and_no_links():
    nodes = _nodes([10] * 4)
    assert _flags(nodes, 4, n_edges=0, tracked=False) == ["not tracked"]
    assert _flags(nodes, 4, n_edges=0, tracked=True) == ["no links"]


def test_empty_frames_count_frames_past_the_last_cell_too():
    assert _flags(_nodes([10, 0, 10, 10]), 6) == ["3 empty frames"]
    assert _flags(_nodes([10, 10, 0, 10]), 4) == ["1 empty frame"]


def test_count_jumps_above_half_and_three_cells():
    # 10 -> 4 (-60 %) and 4 -> 10 (+150 %): two jumps; 10 -> 6 (-40 %) is none
    assert _flags(_nodes([10, 4, 10, 6]), 4) == ["2 count jumps"]
    # 2 -> 4 is +100 % but two cells (a division or two): no alarm in a sparse movie
    assert _flags(_nodes([2, 4, 4]), 3) == []
    # an empty frame is its own flag, not two jumps around it
    assert _flags(_nodes([10, 0, 10]), 3) == ["1 empty frame"]


def test_one_frame_tracks_share():
    assert _flags(_nodes([10] * 4, track_len=1), 4) == ["100 % one-frame tracks"]
    # 4 frames x 10 cells = 40 cells in tracks of 3: 13 tracks of 3, one of 1 (7 %): fine
    assert _flags(_nodes([10] * 4, track_len=3), 4) == []
    # not tracked: every cell is its own track, which says nothing more
    assert _flags(_nodes([10] * 4, track_len=1), 4, n_edges=0, tracked=False) == \
        ["not tracked"]


def test_cells_at_the_border_share():
    assert _flags(_nodes([10] * 4, near_border=3), 4) == ["30 % cells at border"]
    assert _flags(_nodes([10] * 4, near_border=2), 4) == []  # 20 %: below 25 %
    # the far edges count too: a cell whose disc reaches x = 99
    nodes = _nodes([4] * 2)
    nodes["x"] = np.array([97.5, 50, 50, 50] * 2)
    assert _flags(nodes, 2) == []  # 25 % exactly is not above the threshold
    nodes["x"] = np.array([97.5, 97.5, 50, 50] * 2)
    assert _flags(nodes, 2) == ["50 % cells at border"]


def test_flags_of_a_project_read_its_graph_shape_and_provenance():
    labels = np.zeros((3, 40, 40), np.uint32)
    labels[0, 10:14, 10:14] = 1
    labels[2, 10:14, 10:14] = 1
    project = Project(labels.astype(np.uint16), labels)
    assert project_flags(project) == ["not tracked", "1 empty frame"]
    assert project_flags(Project(np.zeros((2, 8, 8), np.uint16))) == ["no cells"]
