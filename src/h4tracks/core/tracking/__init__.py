"""Cell tracking: LAP (Jaqaman et al. 2008), mask-overlap and global (ILP) trackers, curation.

Qt-free. :func:`track_project` is the entry point used by the CLI and the plugin; the trackers
themselves (:func:`track_lap`, :func:`track_overlap`) take detections or label movies and
return a :class:`~h4tracks.core.graph.TrackGraph`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from h4tracks.core.graph import TrackGraph
from h4tracks.core.parameters import TRACKING_MODELS, GlobalParams, LapParams, OverlapParams
from h4tracks.core.runs import RunStep
from h4tracks.core.tracking.detections import Detections, detect, measured_detections
from h4tracks.core.tracking.global_link import estimate_defaults, track_global
from h4tracks.core.tracking.lap import track_lap
from h4tracks.core.tracking.learning import fit_weights, retrack_with_corrections
from h4tracks.core.tracking.link_edits import add_links, delete_tracks, link, unlink
from h4tracks.core.tracking.motion import drift_suspects, movie_drift
from h4tracks.core.tracking.overlap import track_overlap, track_single_cell
from h4tracks.errors import H4TracksError, InputError

if TYPE_CHECKING:
    from h4tracks.core.project import Project

__all__ = [
    "Detections",
    "GlobalParams",
    "LapParams",
    "OverlapParams",
    "add_links",
    "compute_retracking",
    "compute_tracking",
    "delete_tracks",
    "detect",
    "estimate_defaults",
    "fit_weights",
    "link",
    "retrack_with_corrections",
    "track_global",
    "track_lap",
    "track_overlap",
    "track_project",
    "track_single_cell",
    "unlink",
]

#: the tracking methods (their parameter models below)
TrackMethod = Literal["lap", "overlap", "global"]

_PARAMS = TRACKING_MODELS


def _track(
    project: Project, method: str, params: Any, progress: Callable[[int, int], Any] | None,
    cancel: Callable[[], bool] | None, *, cores: int,
) -> tuple[TrackGraph, Any]:
    """Run a tracker on the project's labels; (graph, validated params)."""
    if method not in _PARAMS:
        raise InputError(
            f"tracking method must be 'lap', 'overlap' or 'global', got {method!r}"
        )
    model = _PARAMS[method]
    if params is None:
        params = model()
    elif isinstance(params, dict):
        params = model.model_validate(params)
    elif not isinstance(params, model):
        raise InputError(
            f"{method} tracking needs {model.__name__}, got {type(params).__name__}"
        )
    labels = project.labels
    if labels is None:
        raise InputError("the project has no labels to track; segment the movie first")
    n = int(labels.shape[0])
    if method == "lap":
        # stages: detection, drift (when compensated), linking; n steps each
        k = 3 if params.drift else 2
        stage1 = None if progress is None else (lambda d, _t: progress(d, k * n))
        stage2 = None if progress is None else (lambda d, _t: progress((k - 1) * n + d, k * n))
        if project.nodes_measured:
            # the lineage's nodes are the cells measured from these labels: only frames
            # edited since are read again (reading the movie's pixels is the slow part)
            nodes, stale = project.unsynced_nodes()
            det = measured_detections(labels, nodes, stale, cores=cores, progress=stage1,
                                      cancel=cancel)
        else:
            det = detect(labels, cores=cores, progress=stage1, cancel=cancel)
        drift = None
        if params.drift:
            # read from the pixels even where the nodes are measured: a shift voted from
            # the centroids alone was fooled where few cells are in view (real E. coli:
            # up to 0.012 TRA below the masks' shift). The centroids only tell which frame
            # pairs need it: on a still stage none does, and no frame is read
            stage_d = None if progress is None else (
                lambda d, tot: progress(n + (d * n // tot if tot else n), k * n))
            drift = movie_drift(labels, cores=cores, cancel=cancel, pairs=drift_suspects(det),
                                progress=stage_d)
        graph = track_lap(det, params, progress=stage2, cancel=cancel,  # type: ignore[arg-type]
                          cores=cores, drift=drift)
    elif method == "global":
        graph = track_global(labels, params, progress=progress, cancel=cancel)  # type: ignore[arg-type]
    else:
        graph = track_overlap(labels, params, progress=progress, cancel=cancel)  # type: ignore[arg-type]
    if cancel is not None and cancel():
        raise H4TracksError("Tracking cancelled")
    return graph, params


def compute_tracking(
    project: Project,
    method: TrackMethod = "lap",
    params: LapParams | OverlapParams | GlobalParams | dict[str, Any] | None = None,
    progress: Callable[[int, int], Any] | None = None,
    cancel: Callable[[], bool] | None = None,
    *,
    cores: int = 1,
) -> RunStep:
    """Track all cells of a project without changing it (safe in a worker thread).

    Same parameters as :func:`track_project`. Returns the run as one undoable step
    (:class:`~h4tracks.core.runs.RunStep`: new lineage, provenance, the snapshot's links
    among uncurated frames) for the caller to apply, e.g. with
    :meth:`h4tracks.core.session.Session.apply`.
    """
    graph, validated = _track(project, method, params, progress, cancel, cores=cores)
    return RunStep("track", {"method": method, **validated.model_dump()}, graph=graph,
                   description=f"tracking ({method})", nodes_measured=True)


def compute_retracking(
    project: Project, frames: Sequence[int], params: GlobalParams | None = None,
) -> tuple[RunStep, dict[str, float]]:
    """Re-tracking from the user's corrections, computed without changing the project.

    Learns the global tracker's costs from the curated ``frames``
    (:func:`retrack_with_corrections`) and returns the run as one undoable step (apply it with
    :meth:`h4tracks.core.session.Session.apply`) and the fitted weights.
    """
    params = params if params is not None else GlobalParams()
    frames = [int(t) for t in frames]
    if len(frames) < 2:
        raise H4TracksError("curate at least 2 consecutive frames before re-tracking")
    graph, weights = retrack_with_corrections(project, frames, params, return_weights=True)
    assert isinstance(graph, TrackGraph) and isinstance(weights, dict)  # return_weights=True
    step = RunStep("retrack", {"learned_from": frames, **params.model_dump(),
                               "method": "global", "weights": weights}, graph=graph,
                   description="re-tracking with your corrections", nodes_measured=True)
    return step, weights


def track_project(
    project: Project,
    method: TrackMethod = "lap",
    params: LapParams | OverlapParams | GlobalParams | dict[str, Any] | None = None,
    progress: Callable[[int, int], Any] | None = None,
    cancel: Callable[[], bool] | None = None,
    *,
    cores: int = 1,
) -> TrackGraph:
    """Track all cells of a project and make the result its lineage.

    Detects cells in ``project.labels``, tracks them, replaces ``project.graph``, records the
    step in the provenance (``"track"`` with the method and every parameter) and updates the
    automatic snapshot's links (never its labels; links touching curated frames keep what
    the automatic method produced before the user edited them).

    Parameters
    ----------
    project
        The project; it must have labels.
    method
        ``"lap"`` (:func:`track_lap`), ``"overlap"`` (:func:`track_overlap`) or
        ``"global"`` (:func:`track_global`, division-aware integer program).
    params
        Parameters of the method (its pydantic model, a dict of its fields, or None for the
        defaults).
    progress
        ``progress(done, total)`` once per frame and stage (LAP: detection then linking,
        ``total = 2 × frames``; overlap: ``total = frames``; global: frames read, then one
        step per solved window and pass).
    cancel
        ``cancel() -> bool`` polled between frames; when it returns True,
        ``H4TracksError("Tracking cancelled")`` is raised and the project is left unchanged.
    cores
        Threads that detect cells and solve the large assignment problems (LAP; the result
        does not depend on it).

    Returns
    -------
    TrackGraph
        The new ``project.graph``.
    """
    step = compute_tracking(project, method, params, progress, cancel, cores=cores)
    step.apply(project)
    return project.graph
