"""One movie on a 2-worker LocalCluster: its segmentation goes out in blocks of ``save_every``
frames over both workers, and the project is the one a sequential run makes (labels, the
provenance's blocks); a rerun has nothing to do."""

from __future__ import annotations

import numpy as np
import pytest
from pipeline_movies import write_movies

from h4tracks.core.pipeline import parse_pipeline, run_pipeline
from h4tracks.core.pipeline.blocks import BLOCK_STEP
from h4tracks.core.store import open_project

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
