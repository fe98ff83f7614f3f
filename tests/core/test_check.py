"""``check_project`` finds each kind of damage, ``repair_project`` rebuilds what it can, and
opening a damaged project says to run the check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from h4tracks.core.check import check_project, repair_project
from h4tracks.core.project import Project
from h4tracks.core.store import open_project, save_project
from h4tracks.errors import ProjectDamagedError


def project(source: Path | None = None) -> Project:
    rng = np.random.default_rng(9)
    img = rng.integers(0, 1000, (6, 24, 30), dtype=np.uint16)
    lab = np.zeros((6, 24, 30), np.uint32)
    for t in range(6):
        lab[t, 2 + t: 8 + t, 3:9] = 1
        lab[t, 14:20, 10 + t: 16 + t] = 2
    if source is not None:
        tifffile.imwrite(source, img, metadata={"axes": "TYX"}, photometric="minisblack")
    p = Project(img, lab, metadata={"source": None if source is None else str(source)})
    for t in range(5):
        p.graph.add_edge((t, 1), (t + 1, 1))
        p.graph.add_edge((t, 2), (t + 1, 2))
    p.take_auto_snapshot(method="test")
    p.set_curated([4])
    return p


@pytest.fixture
def saved(tmp_path) -> Path:
    return save_project(project(), tmp_path / "p.zarr")


def chunk(path: Path, part: str, t: int) -> Path:
    return path / part / f"c.{t}.0.0"


def corrupt(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))


def test_healthy_project_has_no_findings(saved) -> None:
    report = check_project(saved)
    assert report.ok, report.lines()
    assert any("no problems" in line for line in report.lines())
    assert repair_project(saved) == []


def test_every_chunk_has_a_file_and_a_checksum(saved) -> None:
    # empty frames are written too: a missing file can never pass for an empty frame
    q = open_project(saved)
    q.labels.set_frame(2, np.zeros(q.shape[1:], np.uint32))
    save_project(q)
    assert chunk(saved, "labels", 2).exists()
    meta = json.loads((saved / "labels" / "zarr.json").read_text())
    assert any(c["name"] == "crc32c" for c in meta["codecs"])
    attrs = json.loads((saved / "zarr.json").read_text())["attributes"]["h4tracks"]
    assert attrs["manifest"]["labels"] == {"chunks": 6}
    # frame 2 emptied: its 2 cells and the 4 links touching them are gone
    assert attrs["manifest"]["tracks"] == {"nodes": 10, "edges": 6}


def test_deleted_labels_chunk_of_uncurated_frame_is_restored_from_snapshot(saved) -> None:
    before = np.asarray(open_project(saved).labels[:])
    chunk(saved, "labels", 2).unlink()
    with pytest.raises(ProjectDamagedError, match=r"h4tracks check .*--repair"):
        open_project(saved)
    report = check_project(saved)
    [f] = report.findings
    assert f.where == "labels" and f.frames == [2] and "missing" in f.text
    done = repair_project(saved, report)
    assert any("restored frames 2" in d for d in done)
    q = open_project(saved)
    np.testing.assert_array_equal(np.asarray(q.labels[:]), before)
    assert q.graph.n_edges == 10  # the links of the restored cells are kept
    assert check_project(saved).ok
    assert q.metadata.provenance[-1]["step"] == "repair"


def test_corrupted_labels_chunk_of_curated_frame_is_emptied(saved) -> None:
    corrupt(chunk(saved, "labels", 4))
    report = check_project(saved)
    lab = [f for f in report.findings if f.where == "labels"]
    assert lab and lab[0].frames == [4] and "unreadable" in lab[0].text
    done = repair_project(saved, report)
    assert any("emptied lost frames 4" in d for d in done)
    q = open_project(saved)
    assert not np.asarray(q.labels[4]).any() and not q.graph.frame_nodes(4)
    assert check_project(saved).ok


def test_deleted_tracks_are_detected_and_rebuilt(saved) -> None:
    shutil.rmtree(saved / "tracks")
    with pytest.raises(ProjectDamagedError, match="tracks"):
        open_project(saved)
    report = check_project(saved)
    assert [f.where for f in report.findings] == ["tracks"]
    repair_project(saved, report)
    q = open_project(saved)
    assert len(q.graph) == 12 and q.graph.n_edges == 0
    assert check_project(saved).ok


def test_garbage_graph_is_reported_not_raised(saved) -> None:
    target = next(p for p in sorted((saved / "tracks").rglob("*"))
                  if p.is_file() and p.name != "zarr.json")
    target.write_bytes(b"garbage")
    with pytest.raises(ProjectDamagedError):
        open_project(saved)
    assert any(f.where == "tracks" for f in check_project(saved).findings)


def test_graph_out_of_step_with_labels(saved) -> None:
    # a labels chunk replaced by another frame's (valid checksum, wrong content); replaced,
    # not written into: the snapshot's unchanged frames are hard links to the labels' files
    chunk(saved, "labels", 3).unlink()
    shutil.copy(chunk(saved, "labels", 0), chunk(saved, "labels", 3))
    report = check_project(saved)
    [f] = report.findings
    assert f.where == "tracks" and f.frames == [3]
    repair_project(saved, report)
    q = open_project(saved)
    assert check_project(saved).ok
    assert {lab for _, lab in q.graph.frame_nodes(3)} == {1, 2}


def test_missing_snapshot_is_rebuilt_and_curated_frames_recorded_lost(saved) -> None:
    shutil.rmtree(saved / "auto")
    report = check_project(saved)
    assert any(f.where == "auto" for f in report.findings)
    repair_project(saved, report)
    q = open_project(saved)
    assert q.auto is not None and q.auto.info["lost_frames"] == [4]
    np.testing.assert_array_equal(np.asarray(q.auto.labels[1]), np.asarray(q.labels[1]))
    assert not np.asarray(q.auto.labels[4]).any()
    assert check_project(saved).ok


def test_image_chunk_repaired_from_source_or_reported(tmp_path) -> None:
    src = tmp_path / "movie.tif"
    path = save_project(project(src), tmp_path / "p.zarr")
    before = np.asarray(open_project(path).image[:])
    corrupt(chunk(path, "image", 1))
    report = check_project(path)
    [f] = report.findings
    assert f.where == "image" and f.frames == [1] and f.repair
    repair_project(path, report)
    np.testing.assert_array_equal(np.asarray(open_project(path).image[:]), before)
    # without the source, the image cannot be repaired: the report says so
    src.unlink()
    chunk(path, "image", 2).unlink()
    report = check_project(path)
    assert report.findings[0].repair is None
    assert "cannot fix" in report.lines()[-1]
    assert repair_project(path, report) == []


def test_missing_image_chunk_repaired_from_source_not_zeros(tmp_path) -> None:
    # the repair saves the image in blocks of frames: the lost frame must come from the
    # source file, not read as the damaged array's fill value (zeros)
    src = tmp_path / "movie.tif"
    path = save_project(project(src), tmp_path / "p.zarr")
    before = np.asarray(open_project(path).image[:])
    assert before[1].any()
    chunk(path, "image", 1).unlink()
    report = check_project(path)
    [f] = report.findings
    assert f.where == "image" and f.frames == [1] and f.repair
    repair_project(path, report)
    np.testing.assert_array_equal(np.asarray(open_project(path).image[:]), before)
    assert check_project(path).ok


def test_project_saved_before_format_2_is_upgraded(saved) -> None:
    # an older project: no manifest, no chunk for empty frames
    q = open_project(saved)
    q.labels.set_frame(5, np.zeros(q.shape[1:], np.uint32))
    save_project(q)
    meta_file = saved / "zarr.json"
    doc = json.loads(meta_file.read_text())
    del doc["attributes"]["h4tracks"]["manifest"]
    doc["attributes"]["h4tracks"]["format_version"] = 1
    meta_file.write_text(json.dumps(doc))
    chunk(saved, "labels", 5).unlink()
    report = check_project(saved)
    assert report.ok and "older h4tracks" in report.checked["format"]
    q = open_project(saved)
    q.metadata.name = "upgraded"
    save_project(q)
    assert chunk(saved, "labels", 5).exists()  # the empty frame got its file
    assert check_project(saved).ok and "format" not in check_project(saved).checked
    assert zarr.open_array(saved / "labels")[5].max() == 0
