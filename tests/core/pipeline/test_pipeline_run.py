"""Real runs of the batch pipeline: a LocalCluster of 2 worker processes over 4 tiny movies
(labels imported, LAP tracking), compared with the same commands run one after another;
reruns, changed parameters, a locked project and a worker killed with SIGKILL."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from pipeline_movies import pipeline_dict

from h4tracks.cli import main
from h4tracks.core import lock
from h4tracks.core.io.ctc import export_ctc
from h4tracks.core.pipeline import parse_pipeline, run_pipeline
from h4tracks.core.store import open_project

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client():
    """One 2-process cluster for the module (starting one costs seconds)."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def first_run(client, manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    pipeline = parse_pipeline(pipeline_dict(manifest, out))
    return pipeline, run_pipeline(pipeline, scheduler=client, progress=False)


def _steps(result, step):
    return {name: r.steps.get(step) for name, r in result.results.items()}


def test_cluster_run_equals_the_commands_run_one_by_one(first_run, manifest, tmp_path):
    pipeline, result = first_run
    assert result.ok, result.failed
    assert set(_steps(result, "track").values()) == {"ran"}
    out = pipeline.output_dir
    for i in range(4):
        image, labels = manifest.parent / f"m{i}.tif", manifest.parent / f"m{i}_labels.tif"
        project = tmp_path / f"m{i}.zarr"
        assert main(["-q", "new", str(image), "--labels", str(labels), "-o", str(project)]) == 0
        assert main(["-q", "track", str(project), "--method", "lap", "--max-distance", "12",
                     "--max-gap", "1"]) == 0
        assert main(["-q", "analyze", str(project), "-o", str(tmp_path / f"m{i}.csv")]) == 0
        assert main(["-q", "export", str(project), "-o", str(tmp_path / f"m{i}_ctc")]) == 0
        ours = out / "movies" / f"m{i}"
        assert (ours / "tracks.csv").read_bytes() == (tmp_path / f"m{i}.csv").read_bytes()
        assert (ours / "ctc" / "res_track.txt").read_text() == \
            (tmp_path / f"m{i}_ctc" / "res_track.txt").read_text()
        # the same provenance steps as the commands wrote
        steps = [e["step"] for e in open_project(out / "projects" / f"m{i}.zarr")
                 .metadata.provenance]
        assert steps == [e["step"] for e in open_project(project).metadata.provenance]
    # the pooled table is every movie's table with the manifest's columns attached
    tracks = result.tracks
    assert tracks.columns[:3] == ["movie", "condition", "replicate"]
    assert len(tracks) == sum(result.movies["tracks"])
    assert sorted(set(tracks["condition"].tolist())) == ["fast", "slow"]
    for key in ("tracks_csv", "movies_csv", "html", "figure:mean_speed"):
        assert result.files[key].is_file(), key
    assert "mean_speed_by_condition.png" in result.files["html"].read_text()
    if "tracks_parquet" in result.files:  # with pyarrow (a dependency)
        import pandas as pd

        frame = pd.read_parquet(result.files["tracks_parquet"])
        assert list(frame.columns) == tracks.columns and len(frame) == len(tracks)


def test_rerun_with_unchanged_parameters_does_no_work(first_run, client):
    pipeline, before = first_run
    again = run_pipeline(pipeline, scheduler=client, progress=False)
    assert again.ok and again.steps_run == 0
    assert set(_steps(again, "track").values()) == {"skipped"}
    for name in before.tracks.columns:
        a, b = before.tracks[name], again.tracks[name]
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(a, b)
        else:
            assert a.tolist() == b.tolist()


def test_changed_tracking_re_tracks_only(first_run, client, manifest):
    pipeline, _ = first_run
    changed = parse_pipeline(pipeline_dict(manifest, pipeline.output_dir, max_distance=6))
    result = run_pipeline(changed, scheduler=client, progress=False)
    assert result.ok, result.failed
    assert set(_steps(result, "import").values()) == {"skipped"}
    assert set(_steps(result, "track").values()) == {"ran"}
    assert set(_steps(result, "analyze").values()) == {"ran"}  # its project changed
    project = open_project(pipeline.output_dir / "projects" / "m0.zarr")
    tracks = [e for e in project.metadata.provenance if e["step"] == "track"]
    assert tracks[-1]["params"]["max_distance"] == 6
    assert [e["step"] for e in project.metadata.provenance].count("import") == 1


def test_a_locked_project_fails_alone(first_run, client):
    pipeline, _ = first_run
    with lock.path_lock(pipeline.output_dir / "projects" / "m1.zarr"):
        result = run_pipeline(pipeline, scheduler=client, progress=False, lock_wait=0.2)
    assert list(result.failed) == ["m1"]
    assert "m1.zarr is being changed by" in result.failed["m1"]
    assert "\n" not in result.failed["m1"]
    assert list(result.movies["status"]) == ["ok", "failed", "ok", "ok"]


def test_sigkill_of_a_worker_mid_run(client, manifest, tmp_path):
    out = tmp_path / "out"
    pipeline = parse_pipeline(pipeline_dict(manifest, out))
    killed: list[int] = []

    def on_event(event):
        # kill the first worker process that starts tracking a movie
        if not killed and event.get("step") == "track" and event.get("phase") == "start":
            killed.append(event["pid"])
            os.kill(event["pid"], signal.SIGKILL)

    result = run_pipeline(pipeline, scheduler=client, progress=False, on_event=on_event)
    assert killed
    if not result.ok:  # the scheduler gave up on it: a rerun completes it
        result = run_pipeline(pipeline, scheduler=client, progress=False)
    assert result.ok, result.failed
    for i in range(4):
        project = open_project(out / "projects" / f"m{i}.zarr")
        assert project.graph.n_edges > 0
        export_ctc(project, tmp_path / f"ctc{i}")
    # everything is done now
    again = run_pipeline(pipeline, scheduler=client, progress=False)
    assert again.steps_run == 0


def test_python_entry_point_sequential(manifest, tmp_path):
    import h4tracks

    result = h4tracks.run(pipeline_dict(manifest, tmp_path / "out"), scheduler="sequential",
                          progress=False)
    assert result.ok and len(result.tracks) > 0
    assert (tmp_path / "out" / "movies.csv").is_file()
