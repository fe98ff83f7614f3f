"""Tests of what a save shares between a project's arrays and graphs: a first run's
automatic snapshot hard-links the labels' chunk files and the lineage's GEFF files instead of
writing them again, edited frames are still written, and ``nodes_measured`` round trips."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_store import assert_no_leftovers, assert_projects_equal, chunk_key, inodes

from h4tracks.core.check import check_project
from h4tracks.core.parameters import LapParams
from h4tracks.core.project import Project
from h4tracks.core.session import Session
from h4tracks.core.store import open_project, save_project
from h4tracks.datasets.synthetic import make_movie

N_FRAMES = 6
PARAMS = LapParams(max_distance=20)


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    """A project as ``h4tracks new`` leaves it: image + labels, nodes, no snapshot."""
    m = make_movie(n_frames=N_FRAMES, shape=(64, 64), n_cells=6, seed=2)
    return save_project(Project(m.image, m.labels), tmp_path / "p.zarr")


def same_file(path: Path, a: str, b: str) -> bool:
    return os.stat(path / a).st_ino == os.stat(path / b).st_ino


def test_first_tracking_links_snapshot_to_labels_and_lineage(saved: Path) -> None:
    p = open_project(saved)
    assert p.auto is None
    Session(p).track("lap", PARAMS)
    save_project(p)
    for t in range(N_FRAMES):
        assert same_file(saved, chunk_key(saved, "labels", t), chunk_key(saved, "auto/labels", t))
    tracks = {k.removeprefix("tracks/"): v for k, v in inodes(saved, "tracks").items()}
    auto = {k.removeprefix("auto/tracks/"): v for k, v in inodes(saved, "auto/tracks").items()}
    assert tracks == auto and len(tracks) > 5
    r = open_project(saved)
    assert_projects_equal(p, r)
    assert r.auto is not None and r.auto.labels is not None
    np.testing.assert_array_equal(np.asarray(r.auto.labels), np.asarray(r.labels))
    assert r.auto.graph == r.graph and r.graph.n_edges > 0
    assert check_project(saved).ok
    assert_no_leftovers(saved)


def test_edited_frame_is_written_in_both(saved: Path) -> None:
    p = open_project(saved)
    on_disk = np.asarray(p.labels.frame(2)).copy()
    p.labels[2, 0:3, 0:3] = 99  # edited before the first run: the snapshot shares the edit
    Session(p).track("lap", PARAMS)
    save_project(p)
    r = open_project(saved)
    assert r.labels[2, 1, 1] == 99 and r.auto.labels[2, 1, 1] == 99
    assert not same_file(saved, chunk_key(saved, "labels", 2), chunk_key(saved, "auto/labels", 2))
    assert same_file(saved, chunk_key(saved, "labels", 3), chunk_key(saved, "auto/labels", 3))
    assert (2, 99) in r.graph and (2, 99) in r.auto.graph
    # the rest of the frame as it was
    assert np.array_equal(np.asarray(r.labels.frame(2))[3:, 3:], on_disk[3:, 3:])
    assert check_project(saved).ok


def test_snapshot_of_another_version_is_written_in_full(saved: Path, tmp_path: Path) -> None:
    p = open_project(saved)
    Session(p).track("lap", PARAMS)
    other = save_project(p, tmp_path / "copy.zarr")  # save as: links from the source version
    r = open_project(other)
    assert_projects_equal(p, r)
    assert check_project(other).ok
    # a second run on the copy keeps the snapshot's labels (linked from its own version)
    Session(r).track("lap", PARAMS)
    before = inodes(other, "auto/labels")
    save_project(r)
    assert inodes(other, "auto/labels") == before
    assert check_project(other).ok


def test_nodes_measured_round_trips(saved: Path) -> None:
    p = open_project(saved)
    assert p.nodes_measured
    p.graph = p.graph.copy()  # a graph from elsewhere: its nodes are not trusted
    assert not p.nodes_measured
    save_project(p)
    assert not open_project(saved).nodes_measured
    session = Session(p)
    session.track("lap", PARAMS)
    assert p.nodes_measured  # a tracker's nodes are the labels' cells
    session.undo()
    assert not p.nodes_measured
    session.redo()
    assert p.nodes_measured
    save_project(p)
    assert open_project(saved).nodes_measured


def test_project_without_the_attribute_is_not_trusted(saved: Path) -> None:
    meta = saved / "zarr.json"
    doc = json.loads(meta.read_text())
    tracks = doc["attributes"]["h4tracks"]["tracks"]
    assert tracks.pop("nodes_measured") is True
    meta.write_text(json.dumps(doc))  # as written before the attribute existed
    p = open_project(saved)
    assert not p.nodes_measured
    Session(p).track("lap", PARAMS)
    assert p.nodes_measured
