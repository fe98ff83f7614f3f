"""The session: the one path by which anything changes a project, each change one undo step.

A :class:`Session` owns a :class:`~h4tracks.core.project.Project` and its undo/redo
:class:`~h4tracks.core.actions.History`. The napari plugin and the command line both call it:

* curation verbs build an :class:`~h4tracks.core.actions.Action` from the current state
  (:mod:`h4tracks.core.segmentation.label_edits`, :mod:`h4tracks.core.tracking.link_edits`) and
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

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from h4tracks.core.actions import Action, History
from h4tracks.core.painting import stroke_action
from h4tracks.core.project import Project
from h4tracks.core.store import save_project
from h4tracks.core.tracking import TrackMethod, compute_retracking, compute_tracking

if TYPE_CHECKING:
    from h4tracks.core.segmentation.engine import SegmentReport

__all__ = ["Session"]


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
    def segment(self, model: Any = None, **kwargs: Any) -> SegmentReport:
        """Segment frames and apply the result (one step; with ``checkpoint``, one step per
        block): see :func:`~h4tracks.core.segmentation.engine.segment_in_blocks`."""
        # imported here: the engine loads scipy.ndimage and the model registry (~0.1 s),
        # which `h4tracks track` and other commands that never segment need not pay for
        from h4tracks.core.segmentation.engine import segment_in_blocks

        return segment_in_blocks(self.project, self.apply, model, **kwargs)

    def track(self, method: TrackMethod = "lap", params: Any = None, **kwargs: Any) -> Any:
        """Track all cells and apply the result as one step; returns the new lineage."""
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
        return save_project(self.project, path, **kwargs)

    def __repr__(self) -> str:
        return f"Session({self.project!r}, steps={len(self.history)})"
