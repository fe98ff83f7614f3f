"""Tests of h4tracks.core.geff_io: the project's graph written without the geff library is
file for file what geff's own writer makes, valid GEFF, and read back exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from geff import GeffMetadata
from geff.core_io import read_to_memory, write_arrays
from geff.validate.structure import validate_structure
from geff_spec import Axis

from h4tracks.core.geff_io import read_geff_graph, write_geff_graph
from h4tracks.core.graph import TrackGraph


def lineage(n_frames: int = 5) -> TrackGraph:
    """A chain, a division and a gap link; large ids and fractional centroids."""
    g = TrackGraph()
    for t in range(n_frames):
        for lab in (3, 70000, 2**32 - 1):
            g.add_node((t, lab), y=t + lab / 7, x=0.1 * t, area=lab % 97 + 1)
    g.add_edge((0, 3), (1, 3))
    g.add_edge((1, 3), (2, 3))
    g.add_edge((1, 3), (2, 70000))  # division
    g.add_edge((0, 2**32 - 1), (2, 2**32 - 1))  # gap
    return g


def geff_write(graph: TrackGraph, path: Path, axes: list[Axis] | None = None,
               extra: dict[str, np.ndarray] | None = None,
               related: list[dict] | None = None) -> None:
    """What write_geff_graph did with the geff library (the reference)."""
    tab, edges = graph.node_table(), graph.edge_array()

    def ids(t: np.ndarray, lab: np.ndarray) -> np.ndarray:
        return (t.astype(np.int64) << 32) | lab.astype(np.int64)

    node_ids = ids(tab["t"], tab["label"])
    edge_ids = np.stack([ids(edges[:, 0], edges[:, 1]), ids(edges[:, 2], edges[:, 3])], 1) \
        if edges.size else np.empty((0, 2), np.int64)
    props = {k: {"values": v, "missing": None} for k, v in {**tab, **(extra or {})}.items()}
    meta = GeffMetadata(
        directed=True, node_props_metadata={}, edge_props_metadata={},
        axes=axes or [Axis(name="t", type="time", unit="frame"),
                      Axis(name="y", type="space", unit="pixel"),
                      Axis(name="x", type="space", unit="pixel")],
        track_node_props={"tracklet": "track_id"}, related_objects=related)
    write_arrays(str(path), node_ids, props, edge_ids, None, meta,  # type: ignore[arg-type]
                 zarr_format=3, structure_validation=False)


def files(root: Path) -> dict[str, bytes]:
    out = {}
    for d, _, names in os.walk(root):
        for f in names:
            p = Path(d) / f
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


@pytest.mark.parametrize("kind", ["lineage", "empty", "no_edges", "export"])
def test_same_files_as_geff_and_valid(tmp_path: Path, kind: str) -> None:
    graph = TrackGraph() if kind == "empty" else lineage()
    kwargs: dict = {}
    if kind == "no_edges":
        graph = TrackGraph.from_arrays({k: v for k, v in graph.node_table().items()
                                        if k != "track_id"})
    if kind == "export":  # what `h4tracks export --format geff` passes
        kwargs = {"axes": [Axis(name="t", type="time", unit="second", scale=2.5),
                           Axis(name="y", type="space", unit="micrometer", scale=0.325),
                           Axis(name="x", type="space", unit="micrometer", scale=0.325)],
                  "extra": {"seg_id": graph.node_table()["label"]},
                  "related": [{"type": "labels", "path": "../labels", "node_prop": "seg_id"}]}
    geff_write(graph, tmp_path / "ref", **kwargs)
    ours = {"axes": kwargs.get("axes"), "extra_props": kwargs.get("extra"),
            "related_objects": kwargs.get("related")}
    info = write_geff_graph(graph, tmp_path / "ours", **ours)
    assert files(tmp_path / "ours") == files(tmp_path / "ref")
    validate_structure(str(tmp_path / "ours"))
    mem = read_to_memory(str(tmp_path / "ours"))
    assert mem["node_ids"].size == len(graph)
    back = read_geff_graph(tmp_path / "ours", info)
    assert back == graph and back.next_track_id == graph.next_track_id
    assert read_geff_graph(tmp_path / "ref", info) == graph


def test_missing_graph_reads_empty(tmp_path: Path) -> None:
    assert len(read_geff_graph(tmp_path / "none", {})) == 0


def test_store_does_not_load_the_geff_library() -> None:
    # geff imports networkx (~0.15 s), a tenth of `h4tracks track` on a long movie
    code = ("import sys, h4tracks.core.store, h4tracks.core.session; "
            "print(sorted(m for m in ('geff', 'networkx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
