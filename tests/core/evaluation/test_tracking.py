"""TRA / DET / SEG and the AOGM breakdown must equal py-ctcmetrics on injected errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _eval_data import (
    Ctc,
    false_positive,
    gap,
    id_switch,
    merged_cell,
    missed_cell,
    missed_division,
    movie,
    oracle,
    split_cell,
)

from h4tracks.core.evaluation import TrackingData, evaluate, from_ctc, lineage_edges
from h4tracks.core.graph import TrackGraph
from h4tracks.core.io.ctc import export_ctc, lineage_from_labels, write_ctc
from h4tracks.core.project import Project


@pytest.fixture(scope="module")
def gt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    m = movie()
    return write_ctc(tmp_path_factory.mktemp("gt"), m.labels, m.lineage, kind="gt")


def _combo(data: Ctc) -> Ctc:
    used: set[int] = set()
    for inject in (missed_cell, id_switch, gap, merged_cell, missed_division):
        data, tid = inject(data, used)
        used.add(tid)
    data, _ = false_positive(data)
    data, _ = split_cell(data, used)
    return data


INJECTIONS: dict[str, Callable[[Ctc], Ctc]] = {
    "perfect": lambda d: d,
    "missed_cell": lambda d: missed_cell(d)[0],
    "false_positive": lambda d: false_positive(d)[0],
    "merged_cell": lambda d: merged_cell(d)[0],
    "split_cell": lambda d: split_cell(d)[0],
    "id_switch": lambda d: id_switch(d)[0],
    "missed_division": lambda d: missed_division(d)[0],
    "gap": lambda d: gap(d)[0],
    "combination": _combo,
}

_BREAKDOWN = {
    "AOGM_FN": "false_negatives", "AOGM_FP": "false_positives", "AOGM_NS": "splits",
    "AOGM_ED": "edge_deletions", "AOGM_EA": "edge_additions", "AOGM_EC": "semantic_changes",
    "AOGM": "aogm", "AOGM_0": "aogm0",
}


def _assert_same(ours, scores: dict) -> None:
    t, s = ours.tracking, ours.segmentation
    assert t.tra == pytest.approx(scores["TRA"], abs=1e-9)
    assert t.det == pytest.approx(scores["DET"], abs=1e-9)
    assert s.seg == pytest.approx(scores["SEG"], abs=1e-9)
    for key, attr in _BREAKDOWN.items():
        assert getattr(t, attr) == pytest.approx(float(scores[key]), abs=1e-9), key


@pytest.mark.parametrize("name", list(INJECTIONS))
def test_ctc_result_equals_py_ctcmetrics(name: str, tmp_path: Path, gt: Path) -> None:
    m = movie()
    lab, lin = INJECTIONS[name]((m.labels, m.lineage))
    res = write_ctc(tmp_path / "res", lab, lin)
    scores = oracle(res, gt)
    ours = evaluate(TrackingData(lab, lineage_edges(lin)), from_ctc(gt))
    _assert_same(ours, scores)
    # the loader reading the result folder gives the same
    _assert_same(evaluate(res, gt), scores)
    if name == "perfect":
        assert ours.tracking.tra == ours.tracking.det == ours.segmentation.seg == 1.0
        assert ours.tracking.division_recall == ours.tracking.division_precision == 1.0
    else:
        assert ours.tracking.tra < 1.0


@pytest.mark.parametrize("name", ["id_switch", "gap", "missed_division", "combination"])
def test_graph_result_equals_py_ctcmetrics(name: str, tmp_path: Path, gt: Path) -> None:
    """A project result (TrackGraph edges, gap links) against the oracle on its CTC export."""
    m = movie()
    lab, lin = INJECTIONS[name]((m.labels, m.lineage))
    graph = TrackGraph.from_ctc(lab, lin)
    project = Project(np.zeros(lab.shape, np.uint8), lab, graph)
    scores = oracle(export_ctc(project, tmp_path / "res"), gt)
    _assert_same(evaluate(project, gt), scores)


def test_expected_breakdown_of_single_errors(gt: Path) -> None:
    m = movie()
    ref = from_ctc(gt)

    def run(data: Ctc):
        return evaluate(TrackingData(data[0], lineage_edges(data[1])), ref).tracking

    (lab, lin), tid = missed_cell((m.labels, m.lineage))
    t = run((lab, lin))
    last = int(m.lineage[m.lineage[:, 0] == tid, 2][0])
    assert (t.false_negatives, t.edge_additions, t.fn_nodes) == (1, 1, [(last, tid)])
    t = run(false_positive((m.labels, m.lineage))[0])
    assert (t.false_positives, t.false_negatives, len(t.fp_nodes)) == (1, 0, 1)
    t = run(merged_cell((m.labels, m.lineage))[0])
    assert (t.splits, t.merged_nodes, t.false_negatives) == (1, 1, 0)
    t = run(gap((m.labels, m.lineage))[0])
    assert (t.false_negatives, t.edge_additions, t.edge_deletions) == (1, 2, 1)
    t = run(missed_division((m.labels, m.lineage))[0])
    assert (t.semantic_changes, t.edge_additions) == (1, 1)
    assert t.divisions_found == t.reference_divisions - 1
    assert t.result_divisions == t.reference_divisions - 1
    assert t.division_precision == 1.0 and len(t.missed_divisions) == 1
    assert t.division_recall == pytest.approx(1 - 1 / t.reference_divisions)


def test_frame_range_equals_py_ctcmetrics_on_the_cut_movie(tmp_path: Path) -> None:
    m = movie()
    lab, lin = _combo((m.labels, m.lineage))
    a, b = 2, 8

    def cut(labels: np.ndarray, lineage: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sub = labels[a:b]
        full = lineage_from_labels(sub)
        first = dict(zip(full[:, 0].tolist(), full[:, 1].tolist(), strict=True))
        last = dict(zip(full[:, 0].tolist(), full[:, 2].tolist(), strict=True))
        parents = {
            c: p for c, _, _, p in lineage.tolist()
            if p and c in first and p in last and last[p] < first[c]
        }
        return sub, lineage_from_labels(sub, parents)

    gt = write_ctc(tmp_path / "gt", *cut(m.labels, m.lineage), kind="gt")
    res = write_ctc(tmp_path / "res", *cut(lab, lin))
    scores = oracle(res, gt)
    ours = evaluate(
        TrackingData(lab, lineage_edges(lin)),
        TrackingData(m.labels, lineage_edges(m.lineage)),
        frames=range(a, b),
    )
    assert ours.frames == list(range(a, b))
    _assert_same(ours, scores)


def test_lineage_edges_semantics() -> None:
    lin = np.array([[1, 0, 2, 0], [2, 3, 4, 1], [3, 3, 3, 1], [4, 6, 6, 2]])
    np.testing.assert_array_equal(
        lineage_edges(lin),
        [[0, 1, 1, 1, 0], [1, 1, 2, 1, 0], [2, 1, 3, 2, 1], [2, 1, 3, 3, 1],
         [3, 2, 4, 2, 0], [4, 2, 6, 4, 1]],
    )
    assert lineage_edges(np.zeros((0, 4))).shape == (0, 5)
