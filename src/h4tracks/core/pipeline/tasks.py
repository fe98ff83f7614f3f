"""One movie through the pipeline's steps: the task a dask worker (or the sequential loop) runs.

Each step calls the library functions the matching command calls (``h4tracks new``:
:func:`~h4tracks.core.io.importing.import_project` + :func:`~h4tracks.core.store.save_project`;
``segment``: :func:`~h4tracks.core.segmentation.engine.segment_project` with checkpoints;
``track``: :meth:`~h4tracks.core.session.Session.track`; ``analyze``:
:func:`~h4tracks.core.analysis.project_track_metrics` + ``write_track_report``; ``export``:
``export_ctc`` / ``export_geff``), so a movie run in a batch is the same as one run by hand,
provenance included. The project's lock is held for the whole movie, and every step ends
with an atomic save: a worker killed at any point leaves the project as it was after its
last finished step (or block of segmented frames), and the next run resumes from there.

A failure of one movie is caught here and returned as one line; it never reaches the
scheduler (which would retry it on another worker).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from h4tracks.core.pipeline.motion import MOTION_FILE, write_motion
from h4tracks.core.pipeline.quality import project_flags
from h4tracks.core.pipeline.spec import Movie, Pipeline
from h4tracks.core.pipeline.state import (
    segment_signature,
    segmented_frames,
    stamp_matches,
    tracking_current,
    write_stamp,
)
from h4tracks.errors import H4TracksError

__all__ = ["MovieResult", "project_path", "results_dir", "run_movie", "run_movie_task"]

Emit = Callable[[dict[str, Any]], None]
#: the topic of the workers' progress events (``Client.subscribe_topic``)
TOPIC = "h4tracks-pipeline"


@dataclass
class MovieResult:
    """What one movie's task returns to the driver (small: numbers, one table)."""

    name: str
    ok: bool = True
    error: str | None = None
    #: step -> "ran" / "skipped" (steps not in the pipeline are absent)
    steps: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    #: per-track metrics (``Table.to_dict()``) when the pipeline analyses
    table: dict[str, np.ndarray] | None = None
    project: str | None = None


def project_path(pipeline: Pipeline, movie: Movie) -> Path:
    """Where a movie's project lives: ``OUTPUT/projects/NAME.zarr``."""
    return pipeline.output_dir / "projects" / f"{movie.name}.zarr"


def results_dir(pipeline: Pipeline, movie: Movie) -> Path:
    """Where a movie's outputs (metrics, export) live: ``OUTPUT/movies/NAME``."""
    return pipeline.output_dir / "movies" / movie.name


def one_line(err: BaseException) -> str:
    """An exception as one readable line (our own errors are already sentences)."""
    text = " ".join(str(err).split())
    if isinstance(err, H4TracksError):
        return text or type(err).__name__
    if isinstance(err, OSError):
        from h4tracks.core.outputs import describe_os_error

        where = f" ({err.filename})" if err.filename else ""
        return f"{describe_os_error(err)}{where}"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def run_movie_task(movie: Movie, pipeline: Pipeline, lock_wait: float,
                   split: bool = False) -> MovieResult:
    """:func:`run_movie` on a dask worker, its progress sent as worker events; ``split``:
    the cluster has idle workers, so segmentation goes out in blocks of frames
    (:mod:`h4tracks.core.pipeline.blocks`)."""
    from distributed import get_worker

    worker = get_worker()

    def emit(event: dict[str, Any]) -> None:
        # the worker's pid: lets a watcher (a test, a monitor) tell which process runs what
        worker.log_event(TOPIC, {**event, "pid": os.getpid()})

    return run_movie(movie, pipeline, lock_wait=lock_wait, emit=emit, split=split)


def run_movie(movie: Movie, pipeline: Pipeline, *, lock_wait: float = 10.0,
              emit: Emit | None = None, split: bool = False) -> MovieResult:
    """Run every step of ``pipeline`` that ``movie`` still needs.

    Parameters
    ----------
    movie
        The movie (from :func:`~h4tracks.core.pipeline.spec.discover_movies`).
    pipeline
        The validated pipeline.
    lock_wait
        Seconds to wait for a project another program is changing before this movie fails.
    emit
        Called with ``{"movie", "step", "phase": "start" | "ran" | "skipped", "seconds"}``.
    split
        Segment in blocks of ``save_every`` frames on other dask workers (only inside a
        dask task: :func:`run_movie_task`).

    Returns
    -------
    MovieResult
        ``ok=False`` with a one-line ``error`` if a step failed; the steps before it are
        saved.
    """
    from h4tracks.core import lock

    t0 = time.perf_counter()
    result = MovieResult(movie.name, project=str(project_path(pipeline, movie)))
    path = project_path(pipeline, movie)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        results_dir(pipeline, movie).mkdir(parents=True, exist_ok=True)
        with lock.path_lock(path, timeout=lock_wait, command=f"h4tracks run ({movie.name})"):
            _Steps(movie, pipeline, result, emit, split).run()
    except Exception as e:  # one movie's failure is its own line, never the run's
        result.ok = False
        result.error = one_line(e)
        if emit is not None:
            emit({"movie": movie.name, "step": None, "phase": "failed", "error": result.error})
    result.seconds = time.perf_counter() - t0
    return result


class _Steps:
    """The steps of one movie, with the project lock held by the caller."""

    def __init__(self, movie: Movie, pipeline: Pipeline, result: MovieResult,
                 emit: Emit | None, split: bool = False) -> None:
        self.movie, self.pipeline, self.result, self.emit = movie, pipeline, result, emit
        self.split = split
        self.path = project_path(pipeline, movie)
        self.out = results_dir(pipeline, movie)
        self.project: Any = None

    def _event(self, step: str, phase: str, seconds: float = 0.0) -> None:
        if phase != "start":
            self.result.steps[step] = phase
        if self.emit is not None:
            self.emit({"movie": self.movie.name, "step": step, "phase": phase,
                       "seconds": seconds})

    def _step(self, name: str, body: Callable[[], bool]) -> None:
        """Run ``body`` (returns whether it did any work) with its events."""
        self._event(name, "start")
        t0 = time.perf_counter()
        did = body()
        self._event(name, "ran" if did else "skipped", time.perf_counter() - t0)

    def run(self) -> None:
        steps = self.pipeline.steps
        self._step("import", self._import)
        if steps.segment is not None:
            self._step("segment", self._segment)
        if steps.track is not None:
            self._step("track", self._track)
        if steps.analyze is not None:
            self._step("analyze", self._analyze)
        if steps.export is not None:
            self._step("export", self._export)
        self._summarize()

    # ------------------------------------------------------------------ steps
    def _import(self) -> bool:
        from h4tracks.core.store import is_project, open_project, save_project

        if is_project(self.path):
            self.project = open_project(self.path)
            self._check_source()
            return False
        if self.path.exists():
            raise H4TracksError(f"{self.path} exists and is not an h4tracks project; move it "
                                "away")
        from h4tracks.core.io.importing import import_project

        opts = self.pipeline.steps.import_
        project = import_project(
            self.movie.image, self.movie.labels, channel=opts.channel,
            time_axis=opts.time_axis, pixel_size=opts.pixel_size,
            frame_interval=opts.frame_interval, time_unit=opts.time_unit)
        save_project(project, self.path)
        self.project = open_project(self.path)
        return True

    def _check_source(self) -> None:
        """A project made from another file is never silently reused (or overwritten)."""
        imports = [e for e in self.project.metadata.provenance if e.get("step") == "import"]
        if not imports:
            return
        params = imports[-1].get("params") or {}
        for key, want in (("image", self.movie.image), ("labels", self.movie.labels)):
            had = params.get(key)
            if (had is None) != (want is None) or (
                    had is not None and want is not None
                    and Path(had).resolve() != Path(want).resolve()):
                raise H4TracksError(
                    f"{self.path.name} was made from {key} {had or 'none'}, the pipeline "
                    f"now gives {want or 'none'}; delete the project to import it again")

    def _segment(self) -> bool:
        from h4tracks.core.frames import parse_frames
        from h4tracks.core.parameters import SegmentParams
        from h4tracks.core.segmentation.engine import resolve_model, segment_project
        from h4tracks.core.store import save_project

        spec = self.pipeline.steps.segment
        assert spec is not None
        project = self.project
        entry = resolve_model(spec.model)
        params = SegmentParams.for_model(entry, **spec.params)
        wanted = parse_frames(spec.frames, project.n_frames)
        done = segmented_frames(project.metadata.provenance,
                                segment_signature(entry.name, params.model_dump()))
        if not spec.overwrite_curated:
            done |= set(project.curated_frames)  # kept as they are (segment --keep-curated)
        todo = [t for t in wanted if t not in done]
        if not todo:
            return False
        # the same call as `h4tracks segment`: a checkpoint (atomic save) after every block,
        # so a killed worker loses at most one block and the rerun resumes after it
        def checkpoint() -> None:
            save_project(project)

        if self.split and len(todo) > spec.save_every:
            from h4tracks.core.pipeline.blocks import segment_split

            segment_split(project, spec.model, params.model_dump(), todo,
                          block_size=spec.save_every, folder=self.out / "blocks",
                          movie=self.movie.name, save=checkpoint, topic=TOPIC)
            return True
        segment_project(
            project, entry, params=params, frames=todo, cores=1,
            checkpoint=checkpoint, checkpoint_every=spec.save_every,
            overwrite_curated=spec.overwrite_curated)
        save_project(project)
        return True

    def _track(self) -> bool:
        from h4tracks.core.session import Session
        from h4tracks.core.store import save_project

        spec = self.pipeline.steps.track
        assert spec is not None
        signature = {"method": spec.method, **spec.params.model_dump()}
        if tracking_current(self.project.metadata.provenance, signature):
            return False
        if self.project.labels is None:
            raise H4TracksError("no labels to track: add a segment step or a labels column")
        # `h4tracks track`: the session applies the run (lineage, snapshot, provenance)
        Session(self.project).track(spec.method, spec.params.model_copy(), cores=1)
        save_project(self.project)
        return True

    def _generation(self) -> int:
        from h4tracks.core.store import project_generation

        return int(project_generation(self.path) or 0)

    def _analyze(self) -> bool:
        spec = self.pipeline.steps.analyze
        assert spec is not None
        stamp = {"generation": self._generation(), "params": spec.model_dump()}
        cache = self.out / "tracks.npz"
        motion = self.out / MOTION_FILE
        # a results folder from before motion.npz existed is analysed again, not skipped
        if stamp_matches(self.out, "analyze", stamp) and cache.is_file() and motion.is_file():
            with np.load(cache, allow_pickle=False) as data:
                self.result.table = {k: data[k] for k in data.files}
            return False
        from h4tracks.core.analysis import project_track_metrics, write_track_report
        from h4tracks.core.outputs import atomic_file

        if len(self.project.graph) == 0:
            raise H4TracksError("no cells to analyze: segment and track it first")
        write_stamp(self.out, "analyze", None)  # outputs change below: forget the old stamp
        table = project_track_metrics(self.project, with_shape=spec.shape, cores=1)
        write_track_report(table, self.out / "tracks.csv", min_length=spec.min_length,
                           min_movement=spec.min_movement)
        columns = table.to_dict()
        with atomic_file(cache, "wb") as fh:
            np.savez(fh, **columns)
        write_motion(self.project, motion)  # for the run's pooled rose and MSD figures
        write_stamp(self.out, "analyze", stamp)
        self.result.table = columns
        return True

    def _export(self) -> bool:
        spec = self.pipeline.steps.export
        assert spec is not None
        stamp = {"generation": self._generation(), "format": spec.format}
        if stamp_matches(self.out, "export", stamp):
            return False
        write_stamp(self.out, "export", None)
        if spec.format == "geff":
            from h4tracks.core.io.geff_export import export_geff

            export_geff(self.project, self.out / "tracks.geff.zarr", overwrite=True)
        else:
            from h4tracks.core.io.ctc import export_ctc

            export_ctc(self.project, self.out / "ctc")
        write_stamp(self.out, "export", stamp)
        return True

    # ------------------------------------------------------------------ summary
    def _summarize(self) -> None:
        project = self.project
        graph = project.graph
        table = self.result.table
        speed = np.nan
        if table is not None:
            key = next((k for k in table if k.split(" [", 1)[0] == "mean_speed"), None)
            if key is not None:
                values = np.asarray(table[key], np.float64)
                values = values[np.isfinite(values)]
                speed = float(values.mean()) if values.size else np.nan
        n_tracks = int(graph.track_ids().size)
        flags = project_flags(project)
        self.result.summary = {
            "frames": int(project.n_frames),
            "cells": len(graph),
            "tracks": n_tracks,
            "divisions": int(graph.n_divisions),
            "mean_speed": speed,
            "speed_unit": _unit(table, "mean_speed"),
            "curated_frames": len(project.curated_frames),
            "flags": "; ".join(flags),
        }


def _unit(table: dict[str, np.ndarray] | None, base: str) -> str:
    for key in table or {}:
        name, _, unit = key.partition(" [")
        if name == base:
            return unit.rstrip("]")
    return ""
