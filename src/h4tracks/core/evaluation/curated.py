"""How good was the automatic result on this movie? The automatic snapshot a project keeps
(what segmentation and tracking produced) scored against the project as the user curated it."""

from __future__ import annotations

from collections.abc import Iterable

from h4tracks.core.evaluation.references import TrackingData, _frame_range, from_project
from h4tracks.core.evaluation.report import EvaluationReport, evaluate
from h4tracks.core.project import Project
from h4tracks.errors import InputError

__all__ = ["curated_vs_auto"]


def curated_vs_auto(
    project: Project, frames: Iterable[int] | None = None, *,
    segmentation: bool = True, tracking: bool = True,
) -> EvaluationReport:
    """Compare the automatic result kept in ``project.auto`` against the curated project.

    The curated labels and lineage are the reference, the snapshot taken when segmentation
    or tracking ran is the result; scoring how much curation changed tells how good the
    automatic result was on this movie.

    Parameters
    ----------
    project
        A project with an automatic snapshot (:meth:`Project.take_auto_snapshot`).
    frames
        At least 2 consecutive frames (default: all).

    Raises
    ------
    InputError
        No snapshot, no labels, fewer than 2 frames, or snapshot and labels of different shape.
    """
    auto = getattr(project, "auto", None)
    if auto is None:
        raise InputError(
            "The project has no automatic result to compare with: run segmentation or "
            "tracking first (the result is kept as a snapshot before you curate it)."
        )
    if project.labels is None or auto.labels is None:
        raise InputError("Curated-vs-automatic needs labels in both the project and the "
                         "automatic snapshot.")
    cur_shape = tuple(project.labels.shape)
    auto_shape = tuple(auto.labels.shape)
    if cur_shape != auto_shape:
        raise InputError(
            f"The automatic snapshot has shape {auto_shape} but the curated labels have "
            f"{cur_shape}; they cannot be compared frame by frame."
        )
    ts = _frame_range(frames, cur_shape[0])
    if len(ts) < 2:
        raise InputError(
            f"Curated-vs-automatic needs at least 2 consecutive frames, got {len(ts)}."
        )
    reference = from_project(project)
    reference.name = "curated project"
    info = dict(auto.info)
    result = TrackingData.from_graph(
        auto.labels, auto.graph, name="automatic snapshot",
        provenance=[{"step": "auto snapshot", **info}, *project.metadata.provenance],
    )
    report = evaluate(result, reference, frames=ts, segmentation=segmentation,
                      tracking=tracking)
    report.curated_frames = sorted(set(ts) & project.curated_frames)
    lost = sorted(set(ts) & set(info.get("lost_frames", [])))
    if lost:
        report.notes.append(
            f"The automatic result of frames {lost} was lost and could not be rebuilt (see "
            "`h4tracks check`): there the automatic side is empty, so those frames count as "
            "misses.")
    if not report.curated_frames:
        report.notes.append("None of these frames is curated: the score compares the "
                            "automatic result with itself wherever nothing was edited.")
    return report
