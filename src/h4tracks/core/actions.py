"""Undoable edits of a project: actions that know their inverse, and an undo/redo history.

An :class:`Action` is a small, self-describing change of a :class:`~h4tracks.core.project.Project`.
``action.apply(project)`` performs it and ``action.inverse()`` returns the action that undoes it.
Actions are *built* from the current state of the project (see
:mod:`h4tracks.core.segmentation.label_edits`) and then applied, normally through
:meth:`History.do`, which keeps the undo and redo stacks.

Label edits (:class:`SetLabelPixels`) are sparse: only the changed pixels of one frame are
stored, with their old and new values. They write through ``project.labels`` so the frame is
marked edited and its graph nodes are re-measured lazily (:meth:`Project.sync_graph`). A label
that disappears from a frame loses its node together with its edges, so verbs that remove a
label first record those edges as :class:`RemoveEdge` actions inside an :class:`ActionGroup`;
undoing the group restores the pixels (the node comes back on the next graph access) and then
re-adds the edges.

Restoration contract
--------------------
After ``history.do(a, project)`` followed by ``history.undo(project)`` the label movie is
byte-identical to before, and the graph has the same nodes (t, label, y, x, area), the same
edges and the same *partition of nodes into tracks* (:func:`same_lineage`). The numeric track
ids themselves may differ: :class:`~h4tracks.core.graph.TrackGraph` hands out a fresh id to a
re-created node or a re-split chain and never reuses ids, and its public API offers no way to
force an id back onto an existing chain. Compare graphs with :func:`same_lineage`, not ``==``,
after an undo.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from h4tracks.core.graph import NodeKey, TrackGraph
from h4tracks.errors import H4TracksError

if TYPE_CHECKING:
    from h4tracks.core.project import LabelMovie, Project

__all__ = [
    "Action",
    "ActionGroup",
    "AddEdge",
    "History",
    "RemoveEdge",
    "ReplaceGraph",
    "SetLabelPixels",
    "editable_labels",
    "same_lineage",
]


def editable_labels(project: Project) -> LabelMovie:
    """The project's label movie, or a clear error when it has none."""
    labels = project.labels
    if labels is None:
        raise H4TracksError("the project has no labels to edit")
    return labels


class Action:
    """An undoable change of a project.

    Subclasses implement :meth:`apply` and :meth:`inverse` and set :attr:`description`
    (a short human-readable text, e.g. for an "Undo remove cell" menu entry).
    """

    description: str = "edit"
    #: whether doing it through :class:`History` marks the frames it touches as curated
    marks_curated: bool = True

    @property
    def frames(self) -> frozenset[int]:
        """The frames this action changes (labels or links)."""
        return frozenset()

    def apply(self, project: Project) -> None:
        """Perform the change on ``project``."""
        raise NotImplementedError

    def inverse(self) -> Action:
        """The action that undoes this one (applied to the state this one produced)."""
        raise NotImplementedError

    def merge(self, later: Action) -> Action | None:
        """One action doing this and then ``later``, if they can form one undo step."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class ActionGroup(Action):
    """Several actions applied in order as one undo step; the inverse undoes them in reverse.

    If one of the actions fails, the ones already applied are undone before the error is
    re-raised, so a failed group leaves the project as it was.
    """

    def __init__(self, actions: Iterable[Action], description: str = "edit") -> None:
        self.actions: list[Action] = list(actions)
        self.description = description

    def apply(self, project: Project) -> None:
        done: list[Action] = []
        try:
            for a in self.actions:
                a.apply(project)
                done.append(a)
        except Exception:
            for a in reversed(done):
                a.inverse().apply(project)
            raise

    def inverse(self) -> ActionGroup:
        return ActionGroup(
            [a.inverse() for a in reversed(self.actions)], f"undo {self.description}"
        )

    @property
    def frames(self) -> frozenset[int]:
        return frozenset().union(*(a.frames for a in self.actions))

    def __len__(self) -> int:
        return len(self.actions)


class MarkCurated(Action):
    """Mark frames as curated (``curated=True``) or not; undoable like any edit.

    Curated frames are those whose labels and links the user checked: training uses them by
    default and re-segmentation leaves them alone unless asked to overwrite them.
    """

    marks_curated = False

    def __init__(self, frames: Iterable[int], curated: bool = True) -> None:
        self._frames = frozenset(int(t) for t in frames)
        self.curated = bool(curated)
        self.description = (
            f"mark frame(s) {sorted(self._frames)} as {'curated' if curated else 'not curated'}"
        )

    @property
    def frames(self) -> frozenset[int]:
        return self._frames

    def apply(self, project: Project) -> None:
        before = project.curated_frames
        project.set_curated(self._frames, self.curated)
        # only frames whose mark changed are unmarked again by the inverse: marking a frame
        # that was already curated, then undoing, must leave it curated
        self._changed = (project.curated_frames - before) | (before - project.curated_frames)

    def inverse(self) -> MarkCurated:
        changed = getattr(self, "_changed", self._frames)
        return MarkCurated(changed, not self.curated)


class SetMetadata(Action):
    """Change descriptive metadata fields (name, pixel size, frame interval, time unit).

    Build it with :meth:`from_project` so ``old`` holds the current values; consecutive edits
    of the same fields (typing a number digit by digit) merge into one undo step when done
    with ``History.do(..., merge=True)``.
    """

    marks_curated = False
    EDITABLE = ("name", "pixel_size", "frame_interval", "time_unit")

    def __init__(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        unknown = set(new) - set(self.EDITABLE)
        if unknown:
            raise H4TracksError(f"metadata field(s) {sorted(unknown)} cannot be edited")
        self.new, self.old = dict(new), dict(old)
        self.description = "edit " + ", ".join(k.replace("_", " ") for k in self.new)

    @classmethod
    def from_project(cls, project: Project, changes: dict[str, Any]) -> SetMetadata:
        """The action setting ``changes`` (fields that already have the value are left out)."""
        md = project.metadata
        new = {k: v for k, v in changes.items() if getattr(md, k) != v}
        return cls(new, {k: getattr(md, k) for k in new})

    def __len__(self) -> int:
        return len(self.new)

    def apply(self, project: Project) -> None:
        md = project.metadata
        before = {k: getattr(md, k) for k in self.new}
        try:
            for k, v in self.new.items():
                setattr(md, k, v)  # validated by the pydantic model
        except ValueError:
            for k, v in before.items():
                setattr(md, k, v)
            raise

    def inverse(self) -> SetMetadata:
        return SetMetadata(self.old, self.new)

    def merge(self, later: Action) -> Action | None:
        if isinstance(later, SetMetadata) and set(later.new) == set(self.new):
            return SetMetadata(later.new, self.old)
        return None


class ReplaceGraph(Action):
    """Replace the whole track graph (a tracking run); undo puts the previous graph back.

    Both graphs are kept as they are (no copy): after a run nothing edits the old graph, and
    the edits made after the run are undone before this step is.
    """

    marks_curated = False  # an automatic result is not a curation

    def __init__(self, new: TrackGraph, old: TrackGraph, description: str = "tracking") -> None:
        self.new, self.old = new, old
        self.description = description

    def apply(self, project: Project) -> None:
        project.graph = self.new

    def inverse(self) -> ReplaceGraph:
        return ReplaceGraph(self.old, self.new, f"undo {self.description}")


class SetLabelPixels(Action):
    """Change some pixels of one frame of the label movie.

    Parameters
    ----------
    t
        Frame index.
    indices
        Flat (raveled) pixel indices into the (Y, X) frame.
    old, new
        The values before and after the change, one per index (uint32).
    """

    def __init__(
        self, t: int, indices: Any, old: Any, new: Any, description: str = "edit labels"
    ) -> None:
        self.t = int(t)
        self.indices = np.asarray(indices, np.intp).ravel()
        self.old = np.asarray(old, np.uint32).ravel()
        self.new = np.asarray(new, np.uint32).ravel()
        if not self.indices.size == self.old.size == self.new.size:
            raise ValueError("indices, old and new values must have the same length")
        self.description = description

    @classmethod
    def from_frames(
        cls, t: int, before: np.ndarray, after: np.ndarray, description: str = "edit labels"
    ) -> SetLabelPixels:
        """The action turning frame ``before`` into ``after`` (only differing pixels kept)."""
        b, a = np.asarray(before).ravel(), np.asarray(after).ravel()
        idx = np.flatnonzero(b != a)
        return cls(t, idx, b[idx], a[idx], description)

    @property
    def frames(self) -> frozenset[int]:
        return frozenset((self.t,))

    @property
    def n_pixels(self) -> int:
        return int(self.indices.size)

    def apply(self, project: Project) -> None:
        labels = editable_labels(project)
        if self.indices.size == 0:
            return
        # start from a graph that matches the labels: a stroke napari wrote (and nothing
        # read the graph since) must have cost its erased cells their links before this
        # edit brings the cells back and its group re-adds those links
        project.sync_graph()
        frame = labels.frame(self.t)
        current = frame.ravel()[self.indices]
        if not np.array_equal(current, self.old):
            raise H4TracksError(
                f"frame {self.t} changed since this edit was prepared; it cannot be applied"
            )
        ys, xs = np.unravel_index(self.indices, frame.shape)
        # through the LabelMovie so the frame is marked edited and its nodes re-measured
        labels[self.t, ys, xs] = self.new
        # an id once used is never handed out again, even after this edit is undone
        project.note_labels_used(int(self.new.max()))

    def inverse(self) -> SetLabelPixels:
        return SetLabelPixels(
            self.t, self.indices, self.new, self.old, f"undo {self.description}"
        )


class _EdgeAction(Action):
    def __init__(self, parent: Iterable[int], child: Iterable[int]) -> None:
        p, c = tuple(parent), tuple(child)
        self.parent: NodeKey = (int(p[0]), int(p[1]))
        self.child: NodeKey = (int(c[0]), int(c[1]))

    @property
    def frames(self) -> frozenset[int]:
        return frozenset((self.parent[0], self.child[0]))


class AddEdge(_EdgeAction):
    """Link ``parent -> child`` in the project's graph."""

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"link {self.parent} -> {self.child}"

    def apply(self, project: Project) -> None:
        project.graph.add_edge(self.parent, self.child)

    def inverse(self) -> RemoveEdge:
        return RemoveEdge(self.parent, self.child)


class RemoveEdge(_EdgeAction):
    """Remove the link ``parent -> child`` from the project's graph."""

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"unlink {self.parent} -> {self.child}"

    def apply(self, project: Project) -> None:
        project.graph.remove_edge(self.parent, self.child)

    def inverse(self) -> AddEdge:
        return AddEdge(self.parent, self.child)


class History:
    """Undo/redo stacks of applied actions.

    Parameters
    ----------
    max_length
        At most this many steps can be undone; older ones are forgotten.

    Attributes
    ----------
    on_change
        Callables ``fn(action)`` called after every do/undo/redo with the action that was
        just applied to the project (for undo: the inverse), e.g. to refresh napari layers.
    """

    def __init__(self, max_length: int = 200) -> None:
        if max_length < 1:
            raise ValueError("max_length must be at least 1")
        self.max_length = int(max_length)
        self._undo: deque[Action] = deque(maxlen=self.max_length)
        self._redo: list[Action] = []
        self.on_change: list[Callable[[Action], Any]] = []

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_stack(self) -> Sequence[Action]:
        """Applied actions, oldest first (read-only use)."""
        return tuple(self._undo)

    @property
    def redo_stack(self) -> Sequence[Action]:
        """Undone actions, the next one to redo last (read-only use)."""
        return tuple(self._redo)

    def _notify(self, action: Action) -> None:
        for fn in list(self.on_change):
            fn(action)

    def do(self, action: Action, project: Project, *, merge: bool = False) -> Action:
        """Apply ``action`` and make it undoable; the redo stack is cleared.

        The frames a user edit touches become curated in the same undo step (undo unmarks
        them again). With ``merge``, an action that can merge with the last step (see
        :meth:`Action.merge`) extends it instead of adding a step. If applying fails, the
        error propagates and the stacks are unchanged.
        """
        new = sorted(action.frames - project.curated_frames) if action.marks_curated else []
        if new:
            action = ActionGroup([action, MarkCurated(new)], action.description)
        action.apply(project)
        combined = self._undo[-1].merge(action) if merge and self._undo else None
        if combined is not None:
            self._undo.pop()
            self._undo.append(combined)
            self._redo.clear()
            self._notify(action)
            return action
        self._undo.append(action)
        self._redo.clear()
        self._notify(action)
        return action

    def record(self, action: Action, project: Project) -> Action:
        """Make an edit that has *already been applied* undoable (e.g. a napari paint stroke,
        which napari performs before reporting it). Its frames become curated in the same
        undo step, as with :meth:`do`; the redo stack is cleared."""
        new = sorted(action.frames - project.curated_frames) if action.marks_curated else []
        if new:
            mark = MarkCurated(new)
            mark.apply(project)
            action = ActionGroup([action, mark], action.description)
        self._undo.append(action)
        self._redo.clear()
        self._notify(action)
        return action

    def undo(self, project: Project) -> Action:
        """Undo the last action (returns it); :class:`H4TracksError` if there is none."""
        if not self._undo:
            raise H4TracksError("nothing to undo")
        action = self._undo[-1]
        inv = action.inverse()
        inv.apply(project)
        self._undo.pop()
        self._redo.append(action)
        self._notify(inv)
        return action

    def redo(self, project: Project) -> Action:
        """Re-apply the last undone action (returns it); :class:`H4TracksError` if none."""
        if not self._redo:
            raise H4TracksError("nothing to redo")
        action = self._redo[-1]
        action.apply(project)
        self._redo.pop()
        self._undo.append(action)
        self._notify(action)
        return action

    def clear(self) -> None:
        """Forget all steps (e.g. after the labels were replaced wholesale)."""
        self._undo.clear()
        self._redo.clear()

    def __len__(self) -> int:
        return len(self._undo)


def _track_partition(g: TrackGraph) -> np.ndarray:
    """Track ids renumbered by first appearance in (t, label) order (a canonical partition)."""
    tid = g.node_table()["track_id"]
    _, first, inv = np.unique(tid, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return rank[inv.ravel()]


def same_lineage(a: TrackGraph, b: TrackGraph) -> bool:
    """Whether two graphs have the same nodes (t, label, y, x, area), the same edges and the
    same grouping of nodes into tracks, regardless of the numbers the tracks carry."""
    ta, tb = a.node_table(), b.node_table()
    if any(not np.array_equal(ta[c], tb[c]) for c in ("t", "label", "y", "x", "area")):
        return False
    if not np.array_equal(a.edge_array(), b.edge_array()):
        return False
    return bool(np.array_equal(_track_partition(a), _track_partition(b)))
