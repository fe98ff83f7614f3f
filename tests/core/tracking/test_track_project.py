"""Tests of track_project: the entry point that tracks a whole project."""

from __future__ import annotations

import numpy as np
import pytest
from _tracking_data import graph_edges

from h4tracks.core.graph import TrackGraph
from h4tracks.core.project import Project
from h4tracks.core.tracking import (
    LapParams,
    OverlapParams,
    track_lap,
    track_overlap,
    track_project,
)
from h4tracks.errors import H4TracksError, InputError


@pytest.fixture()
def project(movie):
    return Project(movie.image, movie.labels)


def test_lap_sets_graph_provenance_and_snapshot(project, movie):
    calls = []
    p = LapParams(max_distance=20, divisions=True)
    g = track_project(project, "lap", p, progress=lambda d, n: calls.append((d, n)), cores=2)
    assert project.graph is g
    assert graph_edges(g) == graph_edges(track_lap(movie.labels, p))
    assert g.n_edges > 250
    prov = project.metadata.provenance[-1]
    assert prov["step"] == "track" and prov["params"]["method"] == "lap"
    assert prov["params"]["max_distance"] == 20 and prov["params"]["divisions"] is True
    assert project.auto is not None and project.auto.graph == g
    # detection, stage drift (on by default; no frame pair of this still stage compared),
    # linking: one step per frame each, never backwards
    assert calls[-1] == (60, 60) and prov["params"]["drift"] is True
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_lap_without_stage_drift_reports_two_stages(project, movie):
    calls = []
    p = LapParams(max_distance=20, divisions=True, drift=False)
    g = track_project(project, "lap", p, progress=lambda d, n: calls.append((d, n)))
    # detection, linking: one step per frame each, never backwards
    assert calls[-1] == (40, 40) and project.metadata.provenance[-1]["params"]["drift"] is False
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert graph_edges(g) == graph_edges(track_lap(movie.labels, p))


def test_overlap_with_dict_params(project, movie):
    g = track_project(project, "overlap", {"min_overlap": 0.5})
    assert graph_edges(g) == graph_edges(track_overlap(movie.labels, OverlapParams(
        min_overlap=0.5)))
    assert project.metadata.provenance[-1]["params"]["min_overlap"] == 0.5


@pytest.mark.parametrize("method", ["lap", "overlap"])
def test_cancel_leaves_project_unchanged(project, method):
    before = project.graph.copy()
    n_prov = len(project.metadata.provenance)
    state = {"n": 0}

    def cancel() -> bool:
        state["n"] += 1
        return state["n"] > 5

    with pytest.raises(H4TracksError, match="Tracking cancelled"):
        track_project(project, method, cancel=cancel)
    assert project.graph == before
    assert len(project.metadata.provenance) == n_prov and project.auto is None


def test_errors(project):
    with pytest.raises(InputError, match="method"):
        track_project(project, "nearest")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="OverlapParams"):
        track_project(project, "overlap", LapParams())
    with pytest.raises(ValueError):
        track_project(project, "lap", {"max_distance": -1})
    with pytest.raises(InputError, match="no labels"):
        track_project(Project(np.zeros((2, 8, 8), np.uint8)), "lap")


def test_lap_takes_cells_from_nodes_only_when_they_are_measured(movie):
    ref = track_lap(movie.labels, LapParams(max_distance=20))
    measured = Project(movie.image, movie.labels)
    assert measured.nodes_measured
    assert track_project(measured, "lap", LapParams(max_distance=20)) == ref

    # nodes from elsewhere (napari Tracks points: shifted, some cells without a node): the
    # labels are read, and the result is the same
    other = Project(movie.image, movie.labels)
    tab = other.graph.node_table()
    keep = np.arange(tab["t"].size) % 7 != 0
    other.graph = TrackGraph.from_arrays(
        {**{k: v[keep] for k, v in tab.items() if k != "track_id"}, "y": tab["y"][keep] + 3})
    assert not other.nodes_measured
    assert track_project(other, "lap", LapParams(max_distance=20)) == ref
    assert other.nodes_measured  # the tracker's nodes are the labels' cells

    # an edit not measured yet is measured for the run
    edited = Project(movie.image, movie.labels)
    frame = edited.labels.frame(5).copy()
    frame[frame == np.unique(frame)[1]] = 0
    edited.labels.set_frame(5, frame)
    assert track_project(edited, "lap", LapParams(max_distance=20)) == track_lap(
        np.asarray(edited.labels), LapParams(max_distance=20))
