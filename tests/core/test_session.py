"""The session layer without Qt: runs as one undoable step, per-frame snapshot, label ids."""

from __future__ import annotations

import numpy as np
import pytest

from h4tracks.core.actions import same_lineage
from h4tracks.core.evaluation import curated_vs_auto
from h4tracks.core.project import Project
from h4tracks.core.runs import RunStep
from h4tracks.core.segmentation import label_edits as curation
from h4tracks.core.session import Session
from h4tracks.core.stash import FrameStash
from h4tracks.core.store import open_project, save_project
from h4tracks.core.tracking import compute_tracking

T, Y, X = 8, 48, 48


def _movie(shift: int = 0) -> np.ndarray:
    """Three square cells moving 1 px per frame (ids 1..3 in every frame)."""
    lab = np.zeros((T, Y, X), np.uint32)
    for t in range(T):
        for i, (y, x) in enumerate([(6, 6), (6, 30), (28, 16)], start=1):
            lab[t, y + t + shift: y + t + shift + 8, x: x + 8] = i
    return lab


def _seg_step(frames: list[int], masks: np.ndarray, name: str = "fake") -> RunStep:
    """What a segmentation run returns (masks for ``frames``), without Cellpose."""
    stash = FrameStash.of({t: masks[t] for t in frames}, (Y, X))
    return RunStep("segment", {"model": name}, frames=stash, description="segmentation")


@pytest.fixture
def session() -> Session:
    image = np.random.default_rng(0).integers(0, 255, (T, Y, X), dtype=np.uint8)
    return Session(Project(image))


def _state(p: Project) -> tuple:
    labels = None if p.labels is None else np.asarray(p.labels).tobytes()
    auto = None if p.auto is None else (np.asarray(p.auto.labels).tobytes(),
                                       p.auto.graph.edge_array().tobytes())
    md = p.metadata.model_dump(exclude={"max_label"})
    return labels, p.graph.edge_array().tobytes(), auto, md


def test_segmentation_run_is_one_step_and_undo_restores_everything(session: Session) -> None:
    p = session.project
    before = _state(p)
    session.apply(_seg_step(list(range(T)), _movie()))
    assert p.labels is not None and len(p.graph) == 3 * T
    assert p.auto is not None and np.array_equal(np.asarray(p.auto.labels), _movie())
    assert [e["step"] for e in p.metadata.provenance] == ["segment"]
    session.undo()
    assert _state(p) == before and p.labels is None and p.auto is None
    session.redo()
    assert np.array_equal(np.asarray(p.labels), _movie()) and len(p.graph) == 3 * T


def test_partial_run_keeps_snapshot_of_curated_frames(session: Session) -> None:
    p = session.project
    session.apply(_seg_step(list(range(T)), _movie()))
    session.track("overlap")
    # the user curates frame 3: removes cell 2
    session.do(curation.remove_cell(p, 3, 7 + 3, 31))
    assert 3 in p.curated_frames
    auto_frame3 = np.asarray(p.auto.labels.frame(3)).copy()
    # a new run over frames 5:8 replaces the snapshot of those frames only
    session.apply(_seg_step([5, 6, 7], _movie(shift=1)))
    assert np.array_equal(p.auto.labels.frame(3), auto_frame3)
    assert np.array_equal(p.auto.labels.frame(6), _movie(shift=1)[6])
    assert 3 in p.curated_frames  # untouched frames stay curated
    # a tracking run does not re-take the snapshot's labels
    session.track("overlap")
    assert np.array_equal(p.auto.labels.frame(3), auto_frame3)
    report = curated_vs_auto(p, segmentation=True, tracking=False)
    assert report.segmentation.f1 < 1.0  # the curation of frame 3 is measured


def test_undo_of_tracking_restores_provenance_and_snapshot(session: Session) -> None:
    p = session.project
    session.apply(_seg_step(list(range(T)), _movie()))
    prov = list(p.metadata.provenance)
    auto_edges = p.auto.graph.edge_array().copy()
    graph = p.graph.copy()
    session.apply(compute_tracking(p, "lap"))
    assert p.graph.n_edges == 3 * (T - 1)
    assert p.auto.graph.n_edges == 3 * (T - 1)
    session.undo()
    assert p.metadata.provenance == prov
    assert np.array_equal(p.auto.graph.edge_array(), auto_edges)
    assert same_lineage(p.graph, graph)


def test_next_free_label_never_reuses_a_removed_id(session: Session) -> None:
    p = session.project
    session.apply(_seg_step(list(range(T)), _movie()))
    session.do(curation.remove_cell(p, 2, 28 + 2, 17))  # cell 3, the largest id
    new = session.next_free_label()
    assert new == 4
    # paint a new cell with that id, then undo the removal: two cells, two ids
    frame = p.labels.frame(2).copy()
    frame[40:44, 40:44] = new
    from h4tracks.core.actions import SetLabelPixels

    session.do(SetLabelPixels.from_frames(2, p.labels.frame(2), frame))
    session.undo()
    session.undo()
    assert session.next_free_label() == 5
    assert set(np.unique(p.labels.frame(2)).tolist()) == {0, 1, 2, 3}


def test_max_label_is_saved(tmp_path, session: Session) -> None:
    p = session.project
    session.apply(_seg_step(list(range(T)), _movie()))
    session.do(curation.remove_cell(p, 0, 7, 9))
    session.do(curation.remove_cell(p, 0, 29, 17))
    save_project(p, tmp_path / "p.zarr")
    q = open_project(tmp_path / "p.zarr")
    assert Session(q).next_free_label() == 4


def test_per_frame_snapshot_survives_save_and_undo(tmp_path, session: Session) -> None:
    p = session.project
    session.apply(_seg_step(list(range(T)), _movie()))
    save_project(p, tmp_path / "p.zarr")
    session.apply(_seg_step([1, 2], _movie(shift=2)))
    save_project(p)  # the old version's arrays are gone now: undo must not need them
    session.undo()
    assert np.array_equal(np.asarray(p.labels), _movie())
    assert np.array_equal(np.asarray(p.auto.labels), _movie())
    save_project(p)
    q = open_project(tmp_path / "p.zarr")
    assert np.array_equal(np.asarray(q.auto.labels), _movie())
    assert np.array_equal(np.asarray(q.labels), _movie())


def test_large_runs_keep_undo_frames_on_disk(session: Session) -> None:
    stash = FrameStash.of({t: _movie()[t] for t in range(T)}, (Y, X), spill_bytes=Y * X * 4 * 2)
    assert stash.on_disk and len(stash) == T
    assert all(np.array_equal(stash[t], _movie()[t]) for t in range(T))


def test_paint_step_records_links_of_erased_cells(session: Session) -> None:
    p = session.project
    session.apply(_seg_step(list(range(T)), _movie()))
    session.track("overlap")
    links = p.graph.edge_array().copy()
    # erase cell 1 of frame 4 the way napari does: data_setitem-style atom
    frame = p.labels.frame(4)
    ys, xs = np.nonzero(frame == 1)
    atom = ((np.full(ys.size, 4), ys, xs), frame[ys, xs].copy(), 0)
    p.labels[4, ys, xs] = 0
    step = session.paint_step([atom])
    session.record(step)
    assert 4 in p.curated_frames
    assert p.graph.edge_array().shape[0] == links.shape[0] - 2
    session.undo()
    assert np.array_equal(p.graph.edge_array(), links)
    assert 4 not in p.curated_frames


def test_checkpointed_blocks_are_steps_with_provenance(session: Session) -> None:
    """Each checkpointed block of a CLI run is applied with its own provenance entry."""
    p = session.project
    for block in ([0, 1, 2], [3, 4, 5], [6, 7]):
        session.apply(_seg_step(block, _movie()))
    assert [e["params"]["model"] for e in p.metadata.provenance] == ["fake"] * 3
    assert len(session.history) == 3
