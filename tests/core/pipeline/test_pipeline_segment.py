"""A pipeline with segmentation (the shipped demo model, one tiny movie, in-process): reruns
skip it, tracking changes do not re-segment, curated frames are kept, and a segmentation cut
short resumes at the frames it had not finished."""

from __future__ import annotations

import numpy as np
import pytest
from pipeline_movies import write_movies

from h4tracks.core.actions import MarkCurated
from h4tracks.core.pipeline import parse_pipeline, run_pipeline
from h4tracks.core.session import Session
from h4tracks.core.store import open_project, save_project

pytestmark = pytest.mark.slow


def _pipeline(folder, out, segment=None, track=None):
    return parse_pipeline({
        "inputs": {"glob": str(folder / "m0.tif")}, "output": str(out),
        "steps": {"segment": {"diameter": 12, "save_every": 2, **(segment or {})},
                  "track": {"method": "overlap", **(track or {})}},
    })


def _steps(result):
    return result.results["m0"].steps


def test_segmentation_reruns_resumes_and_keeps_curated(tmp_path):
    write_movies(tmp_path / "movies", n=1, frames=4, size=64, cells=3)
    out = tmp_path / "out"
    first = run_pipeline(_pipeline(tmp_path / "movies", out), scheduler="sequential",
                         progress=False)
    assert first.ok, first.failed
    assert _steps(first) == {"import": "ran", "segment": "ran", "track": "ran"}
    path = out / "projects" / "m0.zarr"
    # two blocks of 2 frames, each saved with its own provenance entry (as segment does)
    segs = [e for e in open_project(path).metadata.provenance if e["step"] == "segment"]
    assert [s["params"]["frames"] for s in segs] == [[[0, 2]], [[2, 4]]]

    again = run_pipeline(_pipeline(tmp_path / "movies", out), scheduler="sequential",
                         progress=False)
    assert again.steps_run == 0

    retrack = run_pipeline(_pipeline(tmp_path / "movies", out, track={"min_overlap": 0.5}),
                           scheduler="sequential", progress=False)
    assert _steps(retrack) == {"import": "skipped", "segment": "skipped", "track": "ran"}

    # curate frame 1 (the user edited it), then change the segmentation: frame 1 is kept
    project = open_project(path)
    Session(project).do(MarkCurated([1], True))
    save_project(project)
    curated = np.asarray(open_project(path).labels.frame(1)).copy()
    changed = run_pipeline(_pipeline(tmp_path / "movies", out, segment={"diameter": 16}),
                           scheduler="sequential", progress=False)
    assert _steps(changed)["segment"] == "ran" and _steps(changed)["track"] == "ran"
    project = open_project(path)
    np.testing.assert_array_equal(np.asarray(project.labels.frame(1)), curated)
    last = [e for e in project.metadata.provenance if e["step"] == "segment"][-2:]
    assert [s["params"]["frames"] for s in last] == [[[0, 1], [2, 3]], [[3, 4]]]
    assert all(s["params"]["diameter"] == 16 for s in last)


def test_interrupted_segmentation_resumes_after_the_saved_frames(tmp_path):
    """A run killed after its first saved block: the provenance lists frames 0-1 only, so
    the rerun segments frames 2-3 and nothing else."""
    write_movies(tmp_path / "movies", n=1, frames=4, size=64, cells=3)
    out = tmp_path / "out"
    pipeline = _pipeline(tmp_path / "movies", out, segment={"frames": "0:2"})
    assert run_pipeline(pipeline, scheduler="sequential", progress=False).ok
    # same parameters, all frames: what a killed run with frames 0:4 would have left
    rest = run_pipeline(_pipeline(tmp_path / "movies", out), scheduler="sequential",
                        progress=False)
    assert rest.ok
    segs = [e for e in open_project(out / "projects" / "m0.zarr").metadata.provenance
            if e["step"] == "segment"]
    assert [s["params"]["frames"] for s in segs] == [[[0, 2]], [[2, 4]]]
