"""The session: the one path by which anything changes a project, each change one undo step.

A :class:`Session` owns a :class:`~h4tracks.core.project.Project` and its undo/redo
:class:`~h4tracks.core.actions.History`. The napari plugin and the command line both call it:

* curation verbs build an :class:`~h4tracks.core.actions.Action` from the current state
  (:mod:`h4tracks.core.segmentation.curation`, :mod:`h4tracks.core.tracking.curation`) and
  :meth:`Session.do` applies it;
* painting in napari has already changed the labels when napari reports the stroke:
  :meth:`Session.paint_step` turns napari's report into an action and :meth:`Session.record`
  puts it into the history (with the links of cells the stroke erased);
* automatic runs compute without touching the project (``compute_segmentation``,
  ``compute_tracking``, ``compute_retracking``), safe in a worker thread, and return a
  :class:`~h4tracks.core.runs.RunStep` that :meth:`Session.apply` applies on the caller's
  thread: labels, lineage, per-frame automatic snapshot, provenance and curated frames in
  one step. :meth:`segment` / :meth:`track` / :meth:`retrack` do both for scripts and the CLI.

Label ids: :meth:`next_free_label` is larger than any id ever used in the project (kept in
the metadata and saved), so no undo/redo sequence can give two cells one id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from h4tracks.core.actions import Action, History
from h4tracks.core.painting import stroke_action
from h4tracks.core.project import Project
from h4tracks.core.runs import RunStep, frame_ranges
from h4tracks.errors import H4TracksError

__all__ = ["Session", "compute_retracking"]


class Session:
    """A project with its one undo history (see the module docstring).

    Parameters
    ----------
    project
        The project every step applies to.
    history
        An existing history (default: a new one).
    """

    def __init__(self, project: Project, history: History | None = None) -> None:
        self.project = project
        self.history = history or History()

    # ------------------------------------------------------------------ steps
    def do(self, action: Action, *, merge: bool = False) -> Action:
        """Apply ``action`` as one undoable step (the frames a user edit touches become
        curated in the same step)."""
        return self.history.do(action, self.project, merge=merge)

    def apply(self, step: Action) -> Action:
        """Apply a run's result (a :class:`RunStep`) as one undoable step."""
        return self.history.do(step, self.project)

    def record(self, action: Action) -> Action:
        """Put an edit that has already changed the project (a napari paint stroke) into the
        history as one undoable step; its frames become curated in the same step."""
        return self.history.record(action, self.project)

    def undo(self) -> Action:
        """Undo the last step (:class:`H4TracksError` if there is none)."""
        return self.history.undo(self.project)

    def redo(self) -> Action:
        """Redo the last undone step (:class:`H4TracksError` if there is none)."""
        return self.history.redo(self.project)

    # ------------------------------------------------------------------ labels
    def next_free_label(self) -> int:
        """A label id larger than any ever used in the project."""
        return self.project.next_free_label()

    def paint_step(self, atoms: Sequence[Any], description: str = "paint") -> Action | None:
        """The action a napari paint / fill / polygon stroke performs (None if nothing
        changed); see :func:`h4tracks.core.painting.stroke_action`. Put it in the history
        with :meth:`record` (napari has applied, or is about to apply, the pixels)."""
        return stroke_action(self.project, atoms, description)

    # ------------------------------------------------------------------ runs
    def segment(
        self, model: Any = None, *, frames: Any = None, checkpoint: Callable[[], None] | None
        = None, checkpoint_every: int = 50, progress: Callable[[int, int], None] | None = None,
        overwrite_curated: bool = False, **kwargs: Any,
    ) -> Any:
        """Segment frames (see :func:`~h4tracks.core.segmentation.engine.segment_project`)
        and apply the result; with ``checkpoint``, every block of ``checkpoint_every`` frames
        is its own step, applied and then checkpointed (saved). Returns the report."""
        from h4tracks.core.segmentation.engine import (
            SegmentReport,
            compute_segmentation,
            plan_frames,
        )

        chosen, skipped = plan_frames(self.project, frames, overwrite_curated)
        size = len(chosen) if checkpoint is None else max(1, int(checkpoint_every))
        blocks = [chosen[i:i + size] for i in range(0, len(chosen), size)]
        total = SegmentReport([], len(chosen), False, 0.0, 0, "", None)
        for block in blocks:
            offset = len(total.frames)
            run = compute_segmentation(
                self.project, model, frames=block, overwrite_curated=True,
                progress=None if progress is None else (
                    lambda d, _n, o=offset: progress(o + d, len(chosen))),
                **kwargs,
            )
            r = run.report
            run.provenance["kept_curated"] = frame_ranges(skipped)
            total.frames += r.frames
            total.cancelled, total.model, total.message = r.cancelled, r.model, r.message
            total.seconds += r.seconds
            total.n_cells += r.n_cells
            if r.frames:
                self.apply(run.step())
                if checkpoint is not None:
                    checkpoint()
            if r.cancelled:
                break
        total.skipped = skipped
        return total

    def track(self, method: str = "lap", params: Any = None, **kwargs: Any) -> Any:
        """Track all cells and apply the result as one step; returns the new lineage."""
        from h4tracks.core.tracking import compute_tracking

        self.apply(compute_tracking(self.project, method, params, **kwargs))
        return self.project.graph

    def retrack(self, frames: Sequence[int], params: Any = None) -> dict[str, float]:
        """Learn the global tracker's costs from curated ``frames`` and re-track the rest
        (one step); returns the fitted weights."""
        step, weights = compute_retracking(self.project, frames, params)
        self.apply(step)
        return weights

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path | None = None, **kwargs: Any) -> Path:
        """Save the project (see :func:`h4tracks.core.store.save_project`)."""
        from h4tracks.core.store import save_project

        return save_project(self.project, path, **kwargs)

    def __repr__(self) -> str:
        return f"Session({self.project!r}, steps={len(self.history)})"


def compute_retracking(project: Project, frames: Sequence[int],
                       params: Any = None) -> tuple[RunStep, dict[str, float]]:
    """Re-tracking from the user's corrections, computed without changing the project.

    Returns the run step (apply it with :meth:`Session.apply`) and the fitted weights.
    """
    from h4tracks.core.tracking import GlobalParams
    from h4tracks.core.tracking.learning import retrack_with_corrections

    params = params if params is not None else GlobalParams()
    frames = [int(t) for t in frames]
    if len(frames) < 2:
        raise H4TracksError("curate at least 2 consecutive frames before re-tracking")
    graph, weights = retrack_with_corrections(project, frames, params, return_weights=True)
    step = RunStep("retrack", {"learned_from": frames, **params.model_dump(),
                               "method": "global", "weights": weights}, graph=graph,
                   description="re-tracking with your corrections")
    return step, weights
