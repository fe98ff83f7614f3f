"""Loading references/results, curated-vs-automatic, the report and the error paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from _eval_data import gap, movie, oracle

from h4tracks.core.evaluation import TrackingData, curated_vs_auto, evaluate, lineage_edges
from h4tracks.core.graph import TrackGraph
from h4tracks.core.io.ctc import write_ctc
from h4tracks.core.project import AutoSnapshot, Project
from h4tracks.errors import InputError


def _project() -> Project:
    m = movie()
    return Project(np.zeros(m.labels.shape, np.uint8), m.labels.copy(),
                   TrackGraph.from_ctc(m.labels, m.lineage))


def test_curated_vs_auto_sees_the_curation() -> None:
    project = _project()
    project.add_provenance("segment", model="toy")
    project.take_auto_snapshot(step="track", method="overlap")
    # curation: delete a cell in frame 3 and remove one link
    frame = project.labels.frame(3).copy()
    gone = int(frame[frame > 0].min())
    frame[frame == gone] = 0
    project.labels.set_frame(3, frame)
    child = next(iter(project.graph.frame_nodes(6)))
    parent = project.graph.predecessor(child)
    project.graph.remove_edge(parent, child)

    report = curated_vs_auto(project, range(0, 10))
    t = report.tracking
    assert report.errors["fp_nodes"] == [(3, gone)]
    assert t.false_positives == 1 and t.false_negatives == 0
    assert report.errors["extra_edges"] == [(*parent, *child)]
    assert t.tra < 1.0 and t.det < 1.0
    assert report.segmentation.fp == 1 and report.segmentation.recall == 1.0
    assert report.result_name == "automatic snapshot"
    assert report.provenance[0]["method"] == "overlap"
    assert any(p.get("step") == "segment" for p in report.provenance)
    # an untouched range is perfect
    clean = curated_vs_auto(project, [0, 1])
    assert clean.tracking.tra == 1.0 and clean.segmentation.f1 == 1.0


def test_curated_vs_auto_error_messages() -> None:
    project = _project()
    with pytest.raises(InputError, match="no automatic result"):
        curated_vs_auto(project, range(0, 3))
    project.take_auto_snapshot()
    with pytest.raises(InputError, match="at least 2 consecutive frames"):
        curated_vs_auto(project, [4])
    with pytest.raises(InputError, match="consecutive"):
        curated_vs_auto(project, [1, 3])
    with pytest.raises(InputError, match="outside the movie"):
        curated_vs_auto(project, range(8, 12))
    project.auto = AutoSnapshot(np.zeros((10, 50, 50), np.uint32), TrackGraph())
    with pytest.raises(InputError, match="shape"):
        curated_vs_auto(project, range(0, 3))
    project.auto = AutoSnapshot(np.zeros(project.shape, np.uint32), TrackGraph())
    with pytest.raises(InputError, match="no segmented cells"):
        curated_vs_auto(project, range(0, 3))


def test_evaluate_error_paths() -> None:
    m = movie()
    ref = TrackingData(m.labels, lineage_edges(m.lineage))
    with pytest.raises(InputError, match="at least 2 frames"):
        evaluate(ref, ref, frames=[3])
    assert evaluate(ref, ref, frames=[3], tracking=False).segmentation.f1 == 1.0
    with pytest.raises(InputError, match="must match frame for frame"):
        evaluate(m.labels[:, :50], ref)
    with pytest.raises(InputError, match="no cells"):
        evaluate(ref, np.zeros_like(m.labels))
    with pytest.raises(InputError, match="does not exist"):
        evaluate("/nonexistent/movie.tif", ref)
    with pytest.raises(InputError, match="no lineage"):
        evaluate(m.labels, ref, segmentation=False)


def test_external_label_movie_scores_segmentation_only(tmp_path: Path) -> None:
    m = movie()
    labels = m.labels.copy()
    labels[2][labels[2] == labels[2].max()] = 0
    path = tmp_path / "labels.tif"
    tifffile.imwrite(path, labels.astype(np.uint16))
    report = evaluate(path, TrackingData(m.labels, lineage_edges(m.lineage)))
    assert report.tracking is None and "no lineage" in report.notes[0]
    assert report.segmentation.fn == 1 and report.segmentation.precision == 1.0


def test_ctc_reference_with_sparse_seg_equals_py_ctcmetrics(tmp_path: Path) -> None:
    m = movie()
    gt = write_ctc(tmp_path / "gt", m.labels, m.lineage, kind="gt")
    # keep SEG of frames 2 and 6 only, and annotate only some cells of frame 6
    for p in (gt / "SEG").iterdir():
        if p.name not in ("man_seg002.tif", "man_seg006.tif"):
            p.unlink()
    seg6 = tifffile.imread(gt / "SEG" / "man_seg006.tif")
    seg6[seg6 > np.median(seg6[seg6 > 0])] = 0
    tifffile.imwrite(gt / "SEG" / "man_seg006.tif", seg6)
    lab, lin = gap((m.labels, m.lineage))[0]
    lab = lab.copy()
    lab[6, :, :30] = 0  # a poor segmentation of frame 6
    lin_ok = write_ctc(tmp_path / "res", lab, _relineage(lab, lin))
    scores = oracle(lin_ok, gt)
    report = evaluate(lin_ok, gt)
    assert report.segmentation.frames == [2, 6]
    assert report.segmentation.n_reference == np.unique(seg6).size - 1 + (
        np.unique(m.labels[2]).size - 1)
    assert report.segmentation.seg == pytest.approx(scores["SEG"], abs=1e-9)
    assert report.tracking.tra == pytest.approx(scores["TRA"], abs=1e-9)
    assert report.tracking.det == pytest.approx(scores["DET"], abs=1e-9)
    assert "SEG frame" in report.notes[0]


def _relineage(lab: np.ndarray, lin: np.ndarray) -> np.ndarray:
    """Lineage of labels after cells were erased (tracks may now be cut or gone)."""
    from h4tracks.core.io.ctc import lineage_from_labels

    ids = np.unique(lab)
    new = lab.copy()
    nxt = int(max(ids.max(), lin[:, 0].max())) + 1
    parents: dict[int, int] = {}
    for tid in ids[ids > 0].tolist():
        frames = np.flatnonzero((lab == tid).any(axis=(1, 2)))
        cuts = np.flatnonzero(np.diff(frames) > 1)
        for c in cuts.tolist():  # a track with a hole: the part after becomes a child
            new[frames[c + 1]:][new[frames[c + 1]:] == tid] = nxt
            parents[nxt] = tid
            tid = nxt
            nxt += 1
    present = set(np.unique(new).tolist())
    for c, _, _, p in lin.tolist():
        if p and c in present and p in present:
            parents.setdefault(c, p)
    lineage = lineage_from_labels(new, {})
    last = dict(zip(lineage[:, 0].tolist(), lineage[:, 2].tolist(), strict=True))
    first = dict(zip(lineage[:, 0].tolist(), lineage[:, 1].tolist(), strict=True))
    ok = {c: p for c, p in parents.items() if last[p] < first[c]}
    lab[:] = new
    return lineage_from_labels(new, ok)


def test_project_path_reference(tmp_path: Path) -> None:
    from h4tracks.core.store import save_project

    project = _project()
    path = save_project(project, tmp_path / "p.zarr")
    m = movie()
    report = evaluate(TrackingData(m.labels, lineage_edges(m.lineage)), path, frames=range(0, 4))
    assert report.tracking.tra == 1.0 and report.segmentation.seg == 1.0
    assert report.reference_name.endswith("p.zarr")


def test_report_serialisation(tmp_path: Path) -> None:
    m = movie()
    ref = TrackingData(m.labels, lineage_edges(m.lineage), name="truth <gt>")
    lab, lin = gap((m.labels, m.lineage))[0]
    report = evaluate(TrackingData(lab, lineage_edges(lin), name="mine"), ref)
    data = json.loads(report.to_json(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text()) == data
    assert data["tracking"]["tra"] == report.tracking.tra
    assert data["errors"]["fn_nodes"] == [list(x) for x in report.errors["fn_nodes"]]
    assert data["segmentation"]["ap_sweep"]["0.50"] == report.segmentation.ap_sweep[0.5]
    md = report.to_markdown()
    assert "| TRA |" in md and "| SEG (CTC) |" in md and "fn nodes" in md
    html = report.to_html()
    assert "truth &lt;gt&gt;" in html and "<h2>Tracking</h2>" in html
    # NaN (no division in a range without any) is written as null
    flat = evaluate(ref, ref, frames=range(0, 2), segmentation=False)
    if flat.tracking.reference_divisions == 0:
        assert json.loads(flat.to_json())["tracking"]["division_recall"] is None
