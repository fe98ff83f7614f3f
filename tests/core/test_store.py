"""Tests of the project store: round trip, lazy open, incremental and atomic save, bad inputs."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from _lineage_data import lineage_labels as _lineage_labels

from h4tracks.core.graph import TrackGraph
from h4tracks.core.project import AutoSnapshot, LabelMovie, Metadata, Project
from h4tracks.core.store import is_project, is_saved, open_project, save_project
from h4tracks.errors import H4TracksError, ProjectFormatError

COLUMNS = ("t", "label", "y", "x", "area", "track_id")


# ---------------------------------------------------------------------------------- helpers
def lineage_labels(shape: tuple[int, int] = (32, 40)) -> np.ndarray:
    """The shared hand-made movie with one stray pixel of cell 7 (irregular centroid)."""
    return _lineage_labels(shape, stray_pixel=True)


def full_project(dtype=np.uint16) -> Project:
    """Image + labels + graph (chain, division, gap edge) + metadata + auto snapshot."""
    lab = lineage_labels()
    rng = np.random.default_rng(3)
    img = rng.integers(0, 4000, lab.shape).astype(dtype)
    p = Project(img, lab)
    p.take_auto_snapshot(method="cellpose", model="cyto3", diameter=17.5, channels=[0, 0])
    g = p.graph
    g.add_edge((0, 1), (1, 1))
    g.add_edge((1, 1), (2, 1))
    g.add_edge((2, 1), (3, 4))  # division
    g.add_edge((2, 1), (3, 5))
    g.add_edge((0, 2), (2, 2))  # gap edge (skips frame 1)
    g.add_edge((1, 3), (2, 4))
    g.add_edge((2, 4), (3, 6))
    g.remove_edge((1, 3), (2, 4))  # burns track ids ...
    g.add_edge((1, 3), (2, 4))
    p.labels[3, 0, 0] = 9  # a curated cell that is not in the snapshot
    p.sync_graph()
    g.add_node((0, 99), y=1.0, x=1.0, area=1)  # ... so that next_track_id > max id + 1
    g.remove_node((0, 99))
    p.metadata = Metadata(
        name="wound healing 3",
        pixel_size=0.325,
        frame_interval=2.5,
        time_unit="min",
        source="/data/movie 1.tif",
        channel=2,
    )
    p.add_provenance("segment", model="cyto3", diameter=17.5, flow_threshold=0.4)
    p.add_provenance("track", max_gap=2, weights={"area": 0.5, "distance": 1.0})
    return p


def assert_graph_identical(a: TrackGraph, b: TrackGraph) -> None:
    ta, tb = a.node_table(), b.node_table()
    for c in COLUMNS:
        assert ta[c].dtype == tb[c].dtype, c
        np.testing.assert_array_equal(ta[c], tb[c], err_msg=c)  # floats exactly
    np.testing.assert_array_equal(a.edge_array(), b.edge_array())
    assert a.next_track_id == b.next_track_id
    assert a.n_divisions == b.n_divisions
    assert a.track_parents() == b.track_parents()


def assert_projects_equal(a: Project, b: Project) -> None:
    assert a.shape == b.shape
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(np.asarray(a.image[:]), np.asarray(b.image[:]))
    assert (a.labels is None) == (b.labels is None)
    if a.labels is not None:
        np.testing.assert_array_equal(np.asarray(a.labels), np.asarray(b.labels))
    assert_graph_identical(a.graph, b.graph)
    assert a.metadata == b.metadata
    assert (a.auto is None) == (b.auto is None)
    if a.auto is not None:
        assert a.auto.info == b.auto.info
        assert (a.auto.labels is None) == (b.auto.labels is None)
        if a.auto.labels is not None:
            np.testing.assert_array_equal(np.asarray(a.auto.labels[:]),
                                          np.asarray(b.auto.labels[:]))
        assert_graph_identical(a.auto.graph, b.auto.graph)


def inodes(root: Path, *parts: str) -> dict[str, int]:
    """st_ino of every file under root/part, keyed by path relative to root."""
    out = {}
    for part in parts:
        for dirpath, _, files in os.walk(root / part):
            for f in files:
                p = Path(dirpath) / f
                out[p.relative_to(root).as_posix()] = p.stat().st_ino
    return out


def chunk_key(root: Path, part: str, t: int, y: int = 0, x: int = 0) -> str:
    """Path (relative to root) of the chunk file of frame t, tile (y, x), of array `part`,
    following the array's own chunk key encoding ("c/t/y/x" or "c.t.y.x")."""
    enc = json.loads((root / part / "zarr.json").read_text())["chunk_key_encoding"]
    assert enc["name"] == "default"
    sep = enc.get("configuration", {}).get("separator", "/")
    return f"{part}/" + sep.join(["c", str(t), str(y), str(x)])


def leftovers(path: Path) -> list[Path]:
    """Hidden siblings of a project: versions being built, or old ones being deleted (the
    lock file stays on purpose: deleting a lock file others may be waiting on is a race)."""
    return sorted(p for p in path.parent.glob(f".{path.name}.*")
                  if not p.name.endswith(".lock"))


def assert_no_leftovers(path: Path) -> None:
    """The previous version is deleted before save_project returns (no background thread)."""
    assert leftovers(path) == []


# ---------------------------------------------------------------------------------- round trip
@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        (np.uint8, [0, 1, 127, 255]),
        (np.uint16, [0, 1, 4095, 65535]),
        (np.int16, [-32768, -1, 0, 32767]),
        (np.float32, [-1.5e-7, 0.0, 3.4028235e38, np.nan, -np.inf, 0.1]),
    ],
    ids=["uint8", "uint16", "int16", "float32"],
)
def test_round_trip_image_dtype_and_values(tmp_path, dtype, values) -> None:
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        img = rng.integers(info.min, int(info.max) + 1, (3, 17, 23)).astype(dtype)
    else:
        img = rng.normal(0, 1000, (3, 17, 23)).astype(dtype)
    img[1, 0, : len(values)] = values
    img[2] = 0  # an all-zero frame (no chunk file is needed for it)
    path = save_project(Project(img), tmp_path / "p.zarr")
    assert path == tmp_path / "p.zarr"
    q = open_project(path)
    assert q.dtype == dtype
    assert q.image.dtype == dtype
    assert q.shape == (3, 17, 23)
    np.testing.assert_array_equal(q.image[:], img)  # NaN == NaN here
    assert q.labels is None
    assert len(q.graph) == 0 and q.auto is None


def test_round_trip_every_part(tmp_path) -> None:
    p = full_project()
    want_graph = p.graph.copy()
    assert want_graph.n_divisions == 1 and want_graph.n_edges == 7
    assert want_graph.next_track_id > want_graph.track_ids().max() + 1
    image, labels = np.array(p.image), np.asarray(p.labels)
    assert labels.dtype == np.uint32 and labels.max() == 9
    path = save_project(p, tmp_path / "full.zarr")
    q = open_project(path)

    assert q.image.dtype == np.uint16
    np.testing.assert_array_equal(q.image[:], image)
    assert q.labels is not None
    np.testing.assert_array_equal(np.asarray(q.labels), labels)
    assert_graph_identical(q.graph, want_graph)
    tri = q.graph.node((3, 7))
    assert (tri["y"], tri["x"], tri["area"]) == (27.75, 26.625, 16)
    assert q.graph.node((2, 2))["track_id"] == q.graph.node((0, 2))["track_id"]  # gap edge
    assert q.graph.has_edge((0, 2), (2, 2))
    assert q.graph.successors((2, 1)) == [(3, 4), (3, 5)]

    assert q.metadata == p.metadata
    m = q.metadata
    assert (m.name, m.pixel_size, m.frame_interval, m.time_unit, m.source, m.channel) == (
        "wound healing 3", 0.325, 2.5, "min", "/data/movie 1.tif", 2)
    assert [e["step"] for e in m.provenance] == ["segment", "track"]
    assert m.provenance[1]["params"] == {"max_gap": 2, "weights": {"area": 0.5, "distance": 1.0}}
    assert m.provenance == p.metadata.provenance

    assert q.auto is not None
    assert q.auto.info == {"method": "cellpose", "model": "cyto3", "diameter": 17.5,
                           "channels": [0, 0]}
    np.testing.assert_array_equal(q.auto.labels[:], lineage_labels())
    assert_graph_identical(q.auto.graph, p.auto.graph)
    assert q.auto.graph.n_edges == 0 and (3, 9) not in q.auto.graph

    assert q.path == path
    assert is_project(path)
    assert is_saved(q) and not q.has_unsaved_changes
    # the saved project reads back from the store too, and equals the reopened one
    assert p.path == path and is_saved(p)
    assert_projects_equal(p, q)


def test_save_writes_frames_in_blocks(tmp_path, monkeypatch) -> None:
    """Frames are written several at a time (store_write.write_frames), edits and lazy
    (dask) frames included, with progress after each block and the last call at the total."""
    import dask.array as da

    from h4tracks.core import store_write

    monkeypatch.setattr(store_write, "_BLOCK_BYTES", 3 * 16 * 16 * 4)  # 3 label frames a block
    rng = np.random.default_rng(3)
    img = rng.integers(0, 255, (8, 16, 16)).astype(np.uint8)
    lab = rng.integers(0, 4, (8, 16, 16)).astype(np.uint32)
    project = Project(da.from_array(img, chunks=(1, 16, 16)), lab)
    project.labels[5, 2, 3] = 9  # an edit in the middle of a block
    calls: list[tuple[str, int, int]] = []
    save_project(project, tmp_path / "p.zarr", progress=lambda *a: calls.append(a))
    back = open_project(tmp_path / "p.zarr")
    np.testing.assert_array_equal(np.asarray(back.image), img)
    want = lab.copy()
    want[5, 2, 3] = 9
    np.testing.assert_array_equal(np.asarray(back.labels), want)
    label_steps = [(done, total) for what, done, total in calls if "label" in what.lower()]
    assert label_steps[-1] == (8, 8) and (3, 8) in label_steps and (1, 8) not in label_steps


def test_first_save_links_the_snapshot_to_the_labels(tmp_path) -> None:
    """An imported project's snapshot shares the labels' frames: the first save writes
    them once and hard-links the snapshot's chunk files, except a frame edited since."""
    rng = np.random.default_rng(4)
    lab = rng.integers(0, 4, (5, 16, 16)).astype(np.uint32)
    zarr.save_array(str(tmp_path / "in.zarr"), lab, zarr_format=3)
    project = Project(np.zeros_like(lab, np.uint8), zarr.open_array(tmp_path / "in.zarr"))
    project.take_auto_snapshot(step="import")
    project.labels.set_frame(2, np.full((16, 16), 7, np.uint32))  # curated after the import
    save_project(project, tmp_path / "p.zarr")
    back = open_project(tmp_path / "p.zarr")
    want = lab.copy()
    want[2] = 7
    np.testing.assert_array_equal(np.asarray(back.labels), want)
    np.testing.assert_array_equal(np.asarray(back.auto.labels), lab)
    inode = {name: {f.name: f.stat().st_ino for f in (tmp_path / "p.zarr" / name).iterdir()
                    if f.name.startswith("c.")} for name in ("labels", "auto/labels")}
    shared = {f for f in inode["labels"] if inode["labels"][f] == inode["auto/labels"].get(f)}
    assert shared and not any(f.startswith("c.2.") for f in shared)


def test_round_trip_without_labels(tmp_path) -> None:
    img = np.arange(2 * 5 * 7, dtype=np.uint16).reshape(2, 5, 7)
    p = Project(img, metadata={"name": "raw"})
    path = save_project(p, tmp_path / "raw.zarr")
    assert not (path / "labels").exists()
    q = open_project(path)
    assert q.labels is None
    assert len(q.graph) == 0
    assert q.metadata.name == "raw"
    np.testing.assert_array_equal(q.image[:], img)
    # labels added later are saved by the next save
    q.ensure_labels()[1, 2, 3] = 4
    save_project(q)
    r = open_project(path)
    assert r.labels is not None and r.labels[1, 2, 3] == 4
    assert list(r.graph) == [(1, 4)]


def test_round_trip_empty_graph(tmp_path) -> None:
    p = Project(np.ones((3, 8, 9), np.uint8), np.zeros((3, 8, 9), np.uint32))
    assert len(p.graph) == 0
    p.take_auto_snapshot()
    path = save_project(p, tmp_path / "empty.zarr")
    q = open_project(path)
    assert q.labels is not None and not np.asarray(q.labels).any()
    assert_graph_identical(q.graph, TrackGraph())
    assert_graph_identical(q.auto.graph, TrackGraph())
    assert q.auto.info == {}


def test_round_trip_snapshot_without_labels(tmp_path) -> None:
    p = Project(np.ones((2, 4, 5), np.uint8))
    p.take_auto_snapshot(note="nothing yet")
    q = open_project(save_project(p, tmp_path / "a.zarr"))
    assert q.auto is not None and q.auto.labels is None and q.auto.info == {"note": "nothing yet"}


@pytest.mark.parametrize("shape", [(2100, 50), (40, 2100)], ids=["tall", "wide"])
def test_frames_larger_than_a_tile(tmp_path, shape) -> None:
    t, (ny, nx) = 2, shape
    rng = np.random.default_rng(5)
    img = rng.integers(0, 65535, (t, ny, nx), dtype=np.uint16)
    lab = np.zeros((t, ny, nx), np.uint32)
    lab[:, -60:, -30:] = 3  # a cell across the tile border
    lab[:, :10, :10] = 1
    path = save_project(Project(img, lab), tmp_path / "big.zarr")
    q = open_project(path)
    tiles = {"tall": (1, 2048, 50), "wide": (1, 40, 2048)}["tall" if ny > nx else "wide"]
    assert q.image.chunks == tiles
    assert q.labels.base.chunks == tiles
    chunk_files = sorted(k for k in inodes(path, "image") if not k.endswith("zarr.json"))
    grid = ((0, 0), (1, 0)) if ny > nx else ((0, 0), (0, 1))
    assert chunk_files == sorted(chunk_key(path, "image", i, *g) for i in range(t) for g in grid)
    np.testing.assert_array_equal(q.image[:], img)
    np.testing.assert_array_equal(np.asarray(q.labels), lab)
    area = min(ny, 60) * 30
    assert q.graph.node((1, 3))["area"] == area

    before = inodes(path, "image", "labels")
    q.labels[1, -1, -1] = 0  # edit inside the second tile only
    save_project(q)
    after = inodes(path, "image", "labels")
    assert after.keys() == before.keys()
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {chunk_key(path, "labels", 1, *g) for g in grid}  # the whole frame
    r = open_project(path)
    lab[1, -1, -1] = 0
    np.testing.assert_array_equal(np.asarray(r.labels), lab)
    assert r.graph.node((1, 3))["area"] == area - 1


def test_round_trip_large_label_values(tmp_path) -> None:
    lab = np.zeros((2, 8, 9), np.uint32)
    lab[0, :2, :2] = 2**32 - 1
    lab[1, 3:5, 3:5] = 2**31 + 5
    lab[1, 0, 0] = 1
    p = Project(np.ones((2, 8, 9), np.uint16), lab)
    p.graph.add_edge((0, 2**32 - 1), (1, 2**31 + 5))
    q = open_project(save_project(p, tmp_path / "p.zarr"))
    np.testing.assert_array_equal(np.asarray(q.labels), lab)
    assert_graph_identical(q.graph, p.graph)
    assert q.graph.has_edge((0, 2**32 - 1), (1, 2**31 + 5))


# regression: numpy values in provenance params made saving raise
def test_provenance_with_numpy_values_round_trips(tmp_path) -> None:
    p = Project(np.ones((1, 4, 5), np.uint8))
    p.add_provenance("segment", diameter=np.float32(17.5), n=np.int64(3), gpu=np.bool_(False),
                     channels=np.array([0, 1]))
    assert not is_saved(p)
    q = open_project(save_project(p, tmp_path / "p.zarr"))
    assert q.metadata.provenance[0]["params"] == {"diameter": 17.5, "n": 3, "gpu": False,
                                                  "channels": [0, 1]}


# ---------------------------------------------------------------------------------- laziness
def test_open_is_lazy(tmp_path) -> None:
    path = save_project(full_project(), tmp_path / "p.zarr")
    q = open_project(path)
    assert isinstance(q.image, zarr.Array)
    assert isinstance(q.labels, LabelMovie)
    assert isinstance(q.labels.base, zarr.Array)
    assert not isinstance(q.labels.base, np.ndarray)
    assert isinstance(q.auto, AutoSnapshot) and isinstance(q.auto.labels.base, zarr.Array)
    assert q.labels.store_path == path and q.image_store_path == path
    q.labels[0, 0, 0] = 5  # editing keeps the base lazy and unwritten
    assert isinstance(q.labels.base, zarr.Array)
    assert q.labels.base[0, 0, 0] == 0


_OPEN_PROBE = textwrap.dedent(
    """
    import json, sys, time
    import psutil
    import numpy, zarr, geff.core_io  # noqa: F401  (imports are not what is measured)
    import h4tracks.core.io.readers  # noqa: F401
    from h4tracks.core.store import open_project

    proc = psutil.Process()
    rss0, read0 = proc.memory_info().rss, proc.io_counters().read_chars
    t0 = time.perf_counter()
    p = open_project(sys.argv[1])
    info = {"shape": p.shape, "labels": p.labels.shape, "cells": len(p.graph),
            "edges": p.graph.n_edges, "image_type": type(p.image).__name__,
            "labels_type": type(p.labels.base).__name__, "name": p.metadata.name}
    info["seconds"] = time.perf_counter() - t0
    info["rss_growth"] = proc.memory_info().rss - rss0
    info["read_bytes"] = proc.io_counters().read_chars - read0
    print(json.dumps(info))
    """
)


def _make_huge_project(tmp_path: Path, n_frames: int) -> Path:
    """A (n_frames, 2048, 2048) uint16 + uint32 project written as ONE real frame whose chunk
    files are hard-linked to every other t (a few MiB on disk, GiBs uncompressed)."""
    rng = np.random.default_rng(11)
    img = rng.integers(0, 65536, (1, 2048, 2048), dtype=np.uint16)  # 8 MiB, incompressible
    lab = np.zeros((1, 2048, 2048), np.uint32)
    for i in range(8):
        lab[0, 100 + 200 * i : 160 + 200 * i, 300:380] = i + 1
    p = Project(img, lab, metadata={"name": "huge"})
    p.graph.add_node((1, 1), y=130.0, x=339.5, area=4800)  # a node in frame 1 ...
    p.graph.add_edge((0, 1), (1, 1))  # ... and an edge, to have a graph to read
    path = save_project(p, tmp_path / "huge.zarr")
    for part in ("image", "labels"):
        meta = path / part / "zarr.json"
        doc = json.loads(meta.read_text())
        assert doc["shape"] == [1, 2048, 2048] and doc["chunk_grid"]["configuration"][
            "chunk_shape"] == [1, 2048, 2048]
        doc["shape"] = [n_frames, 2048, 2048]
        meta.write_text(json.dumps(doc))
        chunk = path / chunk_key(path, part, 0)
        assert chunk.is_file()
        for t in range(1, n_frames):
            other = path / chunk_key(path, part, t)
            other.parent.mkdir(parents=True, exist_ok=True)
            os.link(chunk, other)
    return path


@pytest.mark.slow
def test_open_huge_project_reads_no_pixels(tmp_path) -> None:
    n = 256  # image 2 GiB + labels 4 GiB uncompressed
    path = _make_huge_project(tmp_path, n)
    try:
        q = open_project(path)  # sanity: the fake really is a readable big project
        assert q.shape == (n, 2048, 2048)
        assert q.image.nbytes + q.labels.size * 4 >= 6 * 2**30
        np.testing.assert_array_equal(q.image[n - 1, :3, :3], q.image[0, :3, :3])
        assert q.labels[n - 1, 130, 339] == 1
        del q
        out = subprocess.run(
            [sys.executable, "-c", _OPEN_PROBE, str(path)],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert out.returncode == 0, out.stderr
        info = json.loads(out.stdout.strip().splitlines()[-1])
        print(info)
        assert info["shape"] == [n, 2048, 2048] and info["labels"] == [n, 2048, 2048]
        assert info["cells"] == 9 and info["edges"] == 1 and info["name"] == "huge"
        assert info["image_type"] == "Array" and info["labels_type"] == "Array"
        assert info["seconds"] < 2.0
        assert info["rss_growth"] < 150 * 2**20
        # one image chunk is 8 MiB: reading less than that means no image chunk was read
        assert info["read_bytes"] < 4 * 2**20
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------- incremental
def six_frame_project() -> Project:
    rng = np.random.default_rng(9)
    img = rng.integers(0, 1000, (6, 24, 30), dtype=np.uint16)
    lab = np.zeros((6, 24, 30), np.uint32)
    for t in range(6):
        lab[t, 2 + t : 8 + t, 3:9] = 1
        lab[t, 14:20, 10 + t : 16 + t] = 2
    p = Project(img, lab)
    for t in range(5):
        p.graph.add_edge((t, 1), (t + 1, 1))
        p.graph.add_edge((t, 2), (t + 1, 2))
    p.take_auto_snapshot(method="test")
    return p


def test_incremental_save_rewrites_only_the_edited_frame(tmp_path) -> None:
    path = save_project(six_frame_project(), tmp_path / "p.zarr")
    q = open_project(path)
    before = inodes(path, "image", "labels", "auto/labels", "auto/tracks")
    tracks_before = inodes(path, "tracks")
    q.labels[3, 0:2, 20:25] = 7
    assert not is_saved(q)
    stages = []
    save_project(q, progress=lambda s, d, n: stages.append((s, d, n)))
    after = inodes(path, "image", "labels", "auto/labels", "auto/tracks")
    assert after.keys() == before.keys()
    changed = sorted(k for k in before if before[k] != after[k])
    assert changed == [chunk_key(path, "labels", 3)]
    assert ("labels", 1, 1) in stages and not any(s == "image" for s, _, _ in stages)
    # the graph changed (new cell), so the tracks were written anew
    assert inodes(path, "tracks").keys() == tracks_before.keys()
    assert all(inodes(path, "tracks")[k] != v for k, v in tracks_before.items())
    assert is_saved(q) and q.labels.dirty == set() and q.labels.edited_frames == {}
    r = open_project(path)
    assert (3, 7) in r.graph and r.graph.node((3, 7))["area"] == 10
    assert_projects_equal(q, r)
    assert_no_leftovers(path)


def test_unchanged_graph_is_hard_linked(tmp_path) -> None:
    path = save_project(six_frame_project(), tmp_path / "p.zarr")
    q = open_project(path)
    before = inodes(path, "image", "labels", "tracks", "auto/labels", "auto/tracks")
    q.metadata.name = "renamed"
    q.metadata.pixel_size = 0.5
    q.labels[2, 5, 5] = q.labels[2, 5, 5]  # dirty frame, same content: graph unchanged
    assert q.labels.dirty == {2}
    save_project(q)
    after = inodes(path, "image", "labels", "tracks", "auto/labels", "auto/tracks")
    assert after.keys() == before.keys()
    changed = sorted(k for k in before if before[k] != after[k])
    assert changed == [chunk_key(path, "labels", 2)]
    r = open_project(path)
    assert r.metadata.name == "renamed" and r.metadata.pixel_size == 0.5
    assert_projects_equal(q, r)
    assert r.graph.next_track_id == six_frame_project().graph.next_track_id

    # nothing changed at all: everything but the root metadata is linked
    before = inodes(path, "image", "labels", "tracks", "auto/labels", "auto/tracks")
    save_project(r)
    assert inodes(path, "image", "labels", "tracks", "auto/labels", "auto/tracks") == before


def test_replaced_snapshot_and_graph_are_rewritten(tmp_path) -> None:
    path = save_project(six_frame_project(), tmp_path / "p.zarr")
    q = open_project(path)
    q.graph.remove_edge((2, 1), (3, 1))
    q.labels[0, 0, 0] = 4
    q.take_auto_snapshot(method="again")
    save_project(q)
    r = open_project(path)
    assert_projects_equal(q, r)
    assert r.auto.info == {"method": "again"}
    assert (0, 4) in r.auto.graph and r.auto.labels[0, 0, 0] == 4
    assert not r.graph.has_edge((2, 1), (3, 1))


def test_save_as_then_edit_and_save_there(tmp_path) -> None:
    a = save_project(six_frame_project(), tmp_path / "a.zarr")
    a_files = inodes(a, "image", "labels", "tracks", "auto/labels", "auto/tracks")
    original = open_project(a)
    q = open_project(a)
    b = save_project(q, tmp_path / "b.zarr")
    assert q.path == b and q.labels.store_path == b and q.image_store_path == b
    assert is_saved(q)
    b_files = inodes(b, "image", "labels", "tracks", "auto/labels", "auto/tracks")
    assert b_files == a_files  # Save as links, it does not copy

    q.labels[4, 0:3, 0:3] = 9
    q.labels.set_frame(5, np.zeros(q.shape[1:]))
    q.metadata.name = "copy"
    save_project(q)
    assert q.path == b
    # the original is untouched, file by file and by content
    assert inodes(a, "image", "labels", "tracks", "auto/labels", "auto/tracks") == a_files
    assert_projects_equal(open_project(a), original)
    r = open_project(b)
    assert r.metadata.name == "copy"
    assert r.labels[4, 1, 1] == 9 and not r.labels[5].any()
    assert (4, 9) in r.graph and not r.graph.frame_nodes(5)
    assert_projects_equal(q, r)
    assert_no_leftovers(a)
    assert_no_leftovers(b)


def test_save_in_memory_project_again_writes_only_changes(tmp_path) -> None:
    p = six_frame_project()
    path = save_project(p, tmp_path / "p.zarr")
    assert isinstance(p.image, zarr.Array) and isinstance(p.labels.base, zarr.Array)
    before = inodes(path, "image", "labels")
    p.labels[1, 0, 0] = 3
    save_project(p)
    after = inodes(path, "image", "labels")
    assert sorted(k for k in before if before[k] != after[k]) == [chunk_key(path, "labels", 1)]


# ---------------------------------------------------------------------------------- refusals
def test_save_refuses_a_directory_that_is_not_a_project(tmp_path) -> None:
    dest = tmp_path / "photos.zarr"
    dest.mkdir()
    (dest / "keep.txt").write_text("precious")
    (dest / "sub").mkdir()
    with pytest.raises(H4TracksError, match="not an h4tracks project"):
        save_project(six_frame_project(), dest)
    assert sorted(p.name for p in dest.iterdir()) == ["keep.txt", "sub"]
    assert (dest / "keep.txt").read_text() == "precious"
    assert_no_leftovers(dest)
    with pytest.raises(H4TracksError):  # overwrite does not change that
        save_project(six_frame_project(), dest, overwrite=True)
    assert (dest / "keep.txt").read_text() == "precious"


def test_save_refuses_a_file(tmp_path) -> None:
    dest = tmp_path / "notes.zarr"
    dest.write_bytes(b"data")
    with pytest.raises(H4TracksError, match=str(dest)):
        save_project(six_frame_project(), dest, overwrite=True)
    assert dest.read_bytes() == b"data"
    assert_no_leftovers(dest)


def test_save_refuses_a_plain_zarr_group(tmp_path) -> None:
    dest = tmp_path / "other.zarr"
    zarr.open_group(dest, mode="w").create_array("x", shape=(3,), dtype="i4")
    before = inodes(dest, ".")
    with pytest.raises(H4TracksError):
        save_project(six_frame_project(), dest, overwrite=True)
    assert inodes(dest, ".") == before


def test_save_to_other_project_needs_overwrite(tmp_path) -> None:
    other = save_project(Project(np.ones((1, 3, 5), np.uint8), metadata={"name": "other"}),
                         tmp_path / "other.zarr")
    files = inodes(other, ".")
    p = six_frame_project()
    with pytest.raises(H4TracksError, match="already exists"):
        save_project(p, other)
    assert inodes(other, ".") == files
    assert open_project(other).metadata.name == "other"
    assert p.path is None

    q = open_project(save_project(p, tmp_path / "mine.zarr"))
    with pytest.raises(H4TracksError, match="already exists"):
        save_project(q, other)
    assert open_project(other).metadata.name == "other"

    save_project(q, other, overwrite=True)
    r = open_project(other)
    assert r.shape == (6, 24, 30)
    assert_projects_equal(q, r)
    assert_no_leftovers(other)


def test_save_needs_a_path_and_an_existing_folder(tmp_path) -> None:
    p = six_frame_project()
    with pytest.raises(H4TracksError, match="never been saved"):
        save_project(p)
    with pytest.raises(H4TracksError, match="does not exist"):
        save_project(p, tmp_path / "missing" / "p.zarr")
    assert not (tmp_path / "missing").exists()


def test_stale_saving_dir_is_ignored_and_removed(tmp_path) -> None:
    path = save_project(six_frame_project(), tmp_path / "p.zarr")
    stale = tmp_path / ".p.zarr.saving-deadbeef"
    shutil.copytree(path / "image", stale / "image")  # half-written new version
    (stale / "zarr.json").write_text("{")
    other = tmp_path / ".q.zarr.saving-deadbeef"  # another project's: not ours to remove
    other.mkdir()
    q = open_project(path)
    assert_projects_equal(q, six_frame_project())
    q.metadata.name = "x"
    save_project(q)
    assert not stale.exists()
    assert other.exists()
    assert open_project(path).metadata.name == "x"


def test_is_saved_tracks_every_kind_of_change(tmp_path) -> None:
    p = six_frame_project()
    assert not is_saved(p)
    path = save_project(p, tmp_path / "p.zarr")
    q = open_project(path)
    assert is_saved(q)
    q.graph.remove_edge((0, 1), (1, 1))
    assert not is_saved(q)
    save_project(q)
    assert is_saved(q)
    q.metadata.frame_interval = 3
    assert not is_saved(q)
    save_project(q)
    q.labels[0, 0, 0] = 0
    assert not is_saved(q)
    save_project(q)
    q.take_auto_snapshot()
    assert not is_saved(q)
    save_project(q)
    assert is_saved(q) and is_saved(open_project(path))


# regression: saving through a symlink replaced the link by a directory and left the target stale
def test_save_through_a_symlink_updates_the_target(tmp_path) -> None:
    real = save_project(six_frame_project(), tmp_path / "real.zarr")
    link = tmp_path / "link.zarr"
    link.symlink_to(real, target_is_directory=True)
    q = open_project(link)
    q.metadata.name = "saved through the link"
    save_project(q)
    assert link.is_symlink()
    assert open_project(real).metadata.name == "saved through the link"
    assert_no_leftovers(link)


def test_two_rename_fallback_swap(tmp_path, monkeypatch) -> None:
    """Where RENAME_EXCHANGE is missing the swap is two renames, and open recovers a swap
    interrupted between them."""
    import h4tracks.core.dirswap as dirswap

    monkeypatch.setattr(dirswap.sys, "platform", "darwin")
    path = save_project(six_frame_project(), tmp_path / "p.zarr")
    q = open_project(path)
    q.labels[0, 0, 0] = 5
    save_project(q)
    assert_no_leftovers(path)
    assert open_project(path).labels[0, 0, 0] == 5
    # killed after the old version was moved aside, before the new one was moved in
    os.rename(path, tmp_path / ".p.zarr.previous-0123abcd")
    (tmp_path / ".p.zarr.saving-0123abcd").mkdir()
    r = open_project(path)
    assert r.labels[0, 0, 0] == 5
    assert_projects_equal(r, q)
    assert not (tmp_path / ".p.zarr.previous-0123abcd").exists()


# regression: saving after an interrupted two-rename swap deleted the moved-aside project
# and saved zeros
def test_save_after_interrupted_fallback_swap_keeps_data(tmp_path) -> None:
    p = six_frame_project()
    image = np.asarray(p.image).copy()
    labels = np.asarray(p.labels).copy()
    path = save_project(p, tmp_path / "p.zarr")
    q = open_project(path)
    q.metadata.name = "edited"
    os.rename(path, tmp_path / ".p.zarr.previous-0123abcd")
    with contextlib.suppress(H4TracksError):  # refusing is fine too, if nothing is lost
        save_project(q)
    r = open_project(path)
    np.testing.assert_array_equal(r.image[:], image)
    np.testing.assert_array_equal(np.asarray(r.labels), labels)


# ---------------------------------------------------------------------------------- bad inputs
def _plain_group(path: Path) -> None:
    zarr.open_group(path, mode="w")


def _plain_group_v2(path: Path) -> None:
    zarr.open_group(path, mode="w", zarr_format=2)


def _a_project(path: Path) -> None:
    save_project(six_frame_project(), path)


def _edit_root_attrs(path: Path, fn) -> None:
    _a_project(path)
    meta = path / "zarr.json"
    doc = json.loads(meta.read_text())
    fn(doc)
    meta.write_text(json.dumps(doc))


def _future_version(path: Path) -> None:
    def bump(doc):
        doc["attributes"]["h4tracks"]["format_version"] = 99

    _edit_root_attrs(path, bump)


def _string_version(path: Path) -> None:
    def bump(doc):
        doc["attributes"]["h4tracks"]["format_version"] = "1"

    _edit_root_attrs(path, bump)


def _no_image(path: Path) -> None:
    _a_project(path)
    shutil.rmtree(path / "image")


def _garbage_root(path: Path) -> None:
    _a_project(path)
    (path / "zarr.json").write_bytes(b"\x00\xff\xfe garbage {{{ \x80")


def _truncated_root(path: Path) -> None:
    _a_project(path)
    text = (path / "zarr.json").read_text()
    (path / "zarr.json").write_text(text[: len(text) // 2])


def _root_is_an_array(path: Path) -> None:
    zarr.create_array(path, shape=(2, 2), dtype="u1", attributes={"h4tracks": {
        "format_version": 1}})


def _labels_of_other_shape(path: Path) -> None:
    _a_project(path)
    shutil.rmtree(path / "labels")
    zarr.create_array(path / "labels", shape=(6, 24, 31), dtype="u4", zarr_format=3)


def _bad_metadata(path: Path) -> None:
    def bad(doc):
        doc["attributes"]["h4tracks"]["metadata"]["pixel_size"] = -1

    _edit_root_attrs(path, bad)


BAD_PROJECTS = {
    "missing": lambda p: None,
    "file": lambda p: p.write_bytes(b"not a zarr"),
    "empty-dir": lambda p: p.mkdir(),
    "plain-zarr-group": _plain_group,
    "plain-zarr-v2-group": _plain_group_v2,
    "future-format-version": _future_version,
    "string-format-version": _string_version,
    "image-deleted": _no_image,
    "garbage-root-zarr-json": _garbage_root,
    "truncated-root-zarr-json": _truncated_root,
    "root-is-an-array": _root_is_an_array,
    "labels-of-other-shape": _labels_of_other_shape,
    "invalid-metadata": _bad_metadata,
}


@pytest.mark.parametrize("kind", list(BAD_PROJECTS))
def test_open_bad_input_is_a_project_format_error(tmp_path, kind) -> None:
    path = tmp_path / "bad.zarr"
    BAD_PROJECTS[kind](path)
    with pytest.raises(ProjectFormatError) as exc:
        open_project(path)
    assert str(path) in str(exc.value)
    if kind == "future-format-version":
        assert "99" in str(exc.value) and "newer" in str(exc.value)
    if kind in ("missing", "file", "empty-dir", "plain-zarr-group", "garbage-root-zarr-json"):
        assert not is_project(path)


# regression: "attributes": [] in the root zarr.json raised AttributeError
def test_open_root_attributes_not_an_object(tmp_path) -> None:
    path = tmp_path / "bad.zarr"
    path.mkdir()
    (path / "zarr.json").write_text(json.dumps(
        {"zarr_format": 3, "node_type": "group", "attributes": []}))
    assert not is_project(path)
    with pytest.raises(ProjectFormatError, match=str(path)):
        open_project(path)


def test_open_accepts_str_and_relative_paths(tmp_path, monkeypatch) -> None:
    save_project(six_frame_project(), tmp_path / "p.zarr")
    monkeypatch.chdir(tmp_path)
    q = open_project("p.zarr")
    assert q.path == tmp_path / "p.zarr"
    assert is_project("p.zarr")


# ---------------------------------------------------------------------------------- atomic save
# Code shared by the test and the saving subprocess: version k of the project is a pure
# function of k, so any project found on disk can be checked to be one complete version.
_VERSIONS = textwrap.dedent(
    """
    import itertools
    import numpy as np
    from h4tracks.core.graph import TrackGraph
    from h4tracks.core.measure import measure_frame
    from h4tracks.core.project import Metadata

    T, Y, X = 40, 256, 256

    def base_labels():
        lab = np.zeros((T, Y, X), np.uint32)
        for t in range(T):
            for i in range(3):
                for j in range(3):
                    y0, x0 = 20 + 80 * i + t % 7, 20 + 80 * j + t % 11
                    lab[t, y0 : y0 + 24 + i, x0 : x0 + 20 + j] = 3 * i + j + 1
        return lab

    def frames_of(k):
        if k == 0:
            return set()
        return {k % T, (7 * k + 3) % T, (13 * k + 5) % T, (29 * k + 11) % T}

    def version_labels(base, k):
        lab = base.copy()
        for f in frames_of(k):
            lab[f, 5:15, 5 + k % 200 : 15 + k % 200] = 10
            lab[f][lab[f] == 1 + k % 9] = 0
        return lab

    def version_graph(lab, k):
        cols = {c: [] for c in ("t", "label", "y", "x", "area")}
        for t in range(T):
            m = measure_frame(lab[t])
            cols["t"] += [t] * len(m)
            cols["label"] += m.labels.tolist()
            cols["y"] += m.centroids[:, 0].tolist()
            cols["x"] += m.centroids[:, 1].tolist()
            cols["area"] += m.areas.tolist()
        keys = set(zip(cols["t"], cols["label"]))
        edges = [(t, lab_, t + 1, lab_) for t, lab_ in sorted(keys)
                 if lab_ < 10 and (t + 1, lab_) in keys]
        edges += [(a, 10, b, 10) for a, b in itertools.pairwise(sorted(frames_of(k)))]
        return TrackGraph.from_arrays({c: np.asarray(v) for c, v in cols.items()},
                                      np.asarray(edges, np.int64).reshape(-1, 4))

    def version_metadata(k):
        return Metadata(name=f"v{k}", pixel_size=0.5 + k / 1000, frame_interval=1.0 + k,
                        time_unit="min", provenance=[{"step": "edit", "params": {"k": k}}])

    def apply_version(project, base, k):
        lab = version_labels(base, k)
        for f in sorted(frames_of(k) | frames_of(k - 1)):
            project.labels.set_frame(f, lab[f])
        project.graph = version_graph(lab, k)
        project.metadata = version_metadata(k)
    """
)

# A fork server: it imports once, then for every "go" forks a child that opens the project
# and saves new versions in a loop until the test SIGKILLs it; the server reports its death.
_SAVER = _VERSIONS + textwrap.dedent(
    """
    import os, sys, time
    from h4tracks.core.store import open_project, save_project

    def save_forever(path, base):
        p = open_project(path)
        k = int(p.metadata.name[1:])
        t0 = time.perf_counter()
        print(f"ready {k}", flush=True)
        while True:
            k += 1
            apply_version(p, base, k)
            print(f"start {k} {time.perf_counter() - t0:.3f}", flush=True)
            save_project(p)
            print(f"saved {k} {time.perf_counter() - t0:.3f}", flush=True)

    base = base_labels()
    print("imported", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        pid = os.fork()
        if pid == 0:
            try:
                save_forever(sys.argv[1], base)
            finally:
                os._exit(1)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"dead {pid} {status}", flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_save_is_atomic_under_sigkill(tmp_path) -> None:
    """SIGKILL a process that saves in a loop at random points of a save; whatever is on disk
    afterwards must open and be one complete version (the last saved or the next one)."""
    ns: dict = {}
    exec(_VERSIONS, ns)
    base = ns["base_labels"]()
    image = np.random.default_rng(4).integers(0, 4096, base.shape, dtype=np.uint16)
    p = Project(image, base, graph=ns["version_graph"](base, 0),
                metadata=ns["version_metadata"](0))
    assert 300 <= len(p.graph) <= 400 and p.graph.n_edges > 300
    path = save_project(p, tmp_path / "movie.zarr")

    def check(allowed: set[int]) -> int:
        q = open_project(path)  # must always succeed
        k = int(q.metadata.name[1:])
        assert k in allowed, f"version {k} on disk, expected one of {sorted(allowed)}"
        lab = ns["version_labels"](base, k)
        np.testing.assert_array_equal(np.asarray(q.labels), lab, err_msg=f"labels of v{k}")
        assert_graph_identical(q.graph, ns["version_graph"](lab, k))
        # the id high-water mark follows the labels of the version (checked by its graph)
        assert (q.metadata.model_dump(exclude={"max_label"})
                == ns["version_metadata"](k).model_dump(exclude={"max_label"}))
        np.testing.assert_array_equal(q.image[:], image)
        return k

    log = tmp_path / "saver.log"
    server = subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(path)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln.split()) for ln in server.stdout],
                     daemon=True).start()

    def next_line() -> list[str]:
        try:
            return lines.get(timeout=60)
        except queue.Empty:
            raise AssertionError(f"saver silent for 60 s; log:\n{log.read_text()}") from None

    # Each kill lands `delay` after the child announced the start of its 1st or 2nd save.
    # A save here takes ~0.2-1 s depending on the disk, so delays of up to 1.2 s spread the
    # kills over a few saves and every phase of one: building the new version, the swap,
    # deleting the old version, and applying the next edit.
    rng = np.random.default_rng(20240611)
    plan = [(float(d), int(n)) for d, n in zip(rng.uniform(0.0, 1.2, 15),
                                               rng.choice([1, 1, 2], 15), strict=True)]
    on_disk, mid_save, saw_leftovers, report = 0, 0, 0, []
    t_start = time.perf_counter()
    try:
        assert next_line() == ["imported"]
        for delay, nth in plan:
            t0 = time.perf_counter()
            server.stdin.write("go\n")
            server.stdin.flush()
            out: list[list[str]] = []
            pid = None
            while pid is None or sum(ln[0] == "start" for ln in out) < nth:
                line = next_line()
                if line[0] == "pid":
                    pid = int(line[1])
                else:
                    out.append(line)
            assert out[0] == ["ready", str(on_disk)], out
            t1 = time.perf_counter()
            time.sleep(delay)
            os.kill(pid, signal.SIGKILL)
            while (line := next_line())[0] != "dead":
                out.append(line)
            assert line[1] == str(pid)
            saved = [int(ln[1]) for ln in out if ln[0] == "saved"]
            last_done = saved[-1] if saved else on_disk
            in_save = out[-1][0] == "start"
            mid_save += in_save
            left = leftovers(path)
            saw_leftovers += bool(left)
            on_disk = check({last_done, last_done + 1} if in_save else {last_done})
            t2 = time.perf_counter()
            report.append(
                f"save #{nth} +{delay * 1000:4.0f} ms: {len(saved)} saved, "
                f"{'mid-save    ' if in_save else 'between saves'} -> v{on_disk} on disk "
                f"({'new' if in_save and on_disk > last_done else 'old'}), "
                f"{len(left)} leftover; last line {' '.join(out[-1])}; "
                f"wait {t1 - t0:.2f} s, check {t2 - t1 - delay:.2f} s"
            )
    finally:
        print("\n".join(report))
        server.stdin.close()
        server.wait(timeout=60)
        server.stdout.close()
    print(f"kills mid-save: {mid_save}/{len(plan)}, {time.perf_counter() - t_start:.1f} s")
    assert on_disk >= 5, "too few saves completed to test anything"
    assert mid_save >= 5, "too few kills landed during a save"
    assert saw_leftovers >= 1

    # the next successful save removes what the killed saves left behind
    q = open_project(path)
    ns["apply_version"](q, base, on_disk + 1)
    stale = leftovers(path)
    save_project(q)
    assert not any(p.exists() for p in stale)
    check({on_disk + 1})
    assert_no_leftovers(path)  # and the version it replaced goes too


def test_save_as_refuses_a_source_saved_meanwhile(tmp_path, monkeypatch) -> None:
    """Save as does not lock its source (a batch run may hold it for hours); a source that
    another program saved while its files were being linked is detected, nothing is
    written, and a second Save as succeeds."""
    import h4tracks.core.store as store

    path = save_project(six_frame_project(), tmp_path / "p.zarr")
    mine = open_project(path)
    mine.labels[2, 0:2, 0:2] = 9
    real_fsync = store.fsync_dir
    fired = []

    def other_program_saves(folder):
        real_fsync(folder)
        if not fired and folder.name.startswith(".copy.zarr"):
            fired.append(folder)
            other = open_project(path)
            other.set_curated([5])
            save_project(other)

    monkeypatch.setattr(store, "fsync_dir", other_program_saves)
    with pytest.raises(H4TracksError, match="while it was being copied"):
        save_project(mine, tmp_path / "copy.zarr")
    assert fired and not (tmp_path / "copy.zarr").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".copy")] == \
        [".copy.zarr.lock"]
    out = save_project(mine, tmp_path / "copy.zarr")
    assert open_project(out).labels[2, 0, 0] == 9
