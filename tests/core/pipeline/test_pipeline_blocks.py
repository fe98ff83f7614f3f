"""One movie on a 2-worker LocalCluster: its segmentation goes out in blocks of ``save_every``
frames over both workers, and the project is the one a sequential run makes (labels, the
provenance's blocks); a rerun has nothing to do. A block task reads the project while the
movie's task saves it: it must neither refuse a project it sees mid-save nor undo a save."""

from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import pytest
from pipeline_movies import write_movies

from h4tracks.core.parameters import SegmentParams
from h4tracks.core.pipeline import parse_pipeline, run_pipeline
from h4tracks.core.pipeline.blocks import BLOCK_STEP, segment_block
from h4tracks.core.project import Project
from h4tracks.core.segmentation.engine import compute_segmentation
from h4tracks.core.store import open_project, save_project
from h4tracks.datasets.synthetic import SyntheticConfig, make_movie
from h4tracks.errors import ProjectDamagedError

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


def _pipeline(folder, out):
    return parse_pipeline({
        "inputs": {"glob": str(folder / "m0.tif")}, "output": str(out),
        "steps": {"segment": {"diameter": 12, "save_every": 2},
                  "track": {"method": "overlap"}}})


def test_segmentation_split_in_blocks_over_idle_workers(tmp_path):
    write_movies(tmp_path / "movies", n=1, frames=6, size=64, cells=3)
    blocks: list[dict] = []

    def on_event(event):
        if event.get("step") == BLOCK_STEP:
            blocks.append(event)

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=40)
    client = distributed.Client(cluster)
    try:
        split = run_pipeline(_pipeline(tmp_path / "movies", tmp_path / "split"),
                             scheduler=client, progress=False, on_event=on_event)
        assert split.ok, split.failed
        again = run_pipeline(_pipeline(tmp_path / "movies", tmp_path / "split"),
                             scheduler=client, progress=False, on_event=on_event)
    finally:
        client.close()
        cluster.close()
    assert again.ok and again.steps_run == 0
    assert sorted(tuple(b["frames"]) for b in blocks) == [(0, 1), (2, 3), (4, 5)]
    assert len({b["pid"] for b in blocks}) == 2  # both workers segmented
    assert not (tmp_path / "split" / "movies" / "m0" / "blocks").exists()

    one_by_one = run_pipeline(_pipeline(tmp_path / "movies", tmp_path / "sequential"),
                              scheduler="sequential", progress=False)
    assert one_by_one.ok
    a = open_project(tmp_path / "split" / "projects" / "m0.zarr")
    b = open_project(tmp_path / "sequential" / "projects" / "m0.zarr")
    for t in range(6):
        np.testing.assert_array_equal(np.asarray(a.labels.frame(t)),
                                      np.asarray(b.labels.frame(t)))
    assert len(a.graph) == len(b.graph) and a.graph.n_edges == b.graph.n_edges

    def segments(project):
        return [e["params"] for e in project.metadata.provenance if e["step"] == "segment"]

    assert [s["frames"] for s in segments(a)] == [[[0, 2]], [[2, 4]], [[4, 6]]]
    ignore = {"time", "seconds", "engine"}  # the engine may differ only if ONNX is missing
    assert [{k: v for k, v in s.items() if k not in ignore} for s in segments(a)] == \
        [{k: v for k, v in s.items() if k not in ignore} for s in segments(b)]


# -- a block task while the movie's task saves ---------------------------------------------
PARAMS = SegmentParams(diameter=12)


def _movie():
    return make_movie(SyntheticConfig(n_frames=3, shape=(64, 64), n_cells=3, seed=0))


def _segment_block(path, out):
    return segment_block(str(path), None, PARAMS.model_dump(), [1, 2], str(out), "m", "topic")


def _expected(movie):
    run = compute_segmentation(Project(movie.image), None, params=PARAMS, frames=[1, 2],
                               cores=1, overwrite_curated=True)
    return np.stack([run.masks[1], run.masks[2]])


def test_a_block_reads_a_project_whose_save_it_straddles(tmp_path):
    movie = _movie()
    path = tmp_path / "m.zarr"
    first = movie.labels.copy()
    first[1:] = 0
    save_project(Project(movie.image, first), path)
    before = (path / "zarr.json").read_bytes()
    save_project(Project(movie.image, movie.labels), path, overwrite=True)
    # what a reader sees that read the root's attributes (the manifest) before the movie
    # task's save swapped the directories and the graph after it
    (path / "zarr.json").write_bytes(before)
    with pytest.raises(ProjectDamagedError):
        open_project(path)  # the premise: a verifying open refuses this view

    report, _provenance = _segment_block(path, tmp_path / "block.npy")
    assert report.frames == [1, 2]
    np.testing.assert_array_equal(np.load(tmp_path / "block.npy"), _expected(movie))


def test_a_block_leaves_a_two_rename_swap_to_its_writer(tmp_path):
    movie = _movie()
    path = tmp_path / "m.zarr"
    save_project(Project(movie.image, movie.labels), path)
    # a save where RENAME_EXCHANGE is missing: the new version is built, the current one
    # renamed aside, and the new one not yet renamed into place
    new = tmp_path / ".m.zarr.saving-0001"
    shutil.copytree(path, new)
    aside = tmp_path / ".m.zarr.previous-0001"
    os.rename(path, aside)
    result: dict = {}

    def block():
        try:
            result["report"] = _segment_block(path, tmp_path / "block.npy")[0]
        except BaseException as e:  # reported by the assertions below
            result["error"] = e

    reader = threading.Thread(target=block)
    reader.start()
    time.sleep(0.3)
    os.rename(new, path)  # the writer's second rename: the block task must not have undone
    reader.join(60)       # the first one (recovery moves the old version back)
    assert "error" not in result, result.get("error")
    assert result["report"].frames == [1, 2]
    assert aside.is_dir()  # still the writer's to remove
    np.testing.assert_array_equal(np.load(tmp_path / "block.npy"), _expected(movie))
