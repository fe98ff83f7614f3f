"""Running a pipeline: the movies as dask.distributed tasks (or one after another), progress,
and the cross-movie report at the end.

By default a :class:`distributed.LocalCluster` of worker *processes* (one thread each: one
movie per worker at a time, no GIL contention; the number of workers is the user's core
budget, :func:`~h4tracks.core.compute.core_budget`). A scheduler address or a scheduler file
uses an existing cluster instead (dask-jobqueue on SLURM/PBS, dask-kubernetes, ...): nothing
here depends on where the workers are, only that they see the same file system.
``"sequential"`` runs the movies in this process, without dask (tests, debugging).

A worker that dies mid-movie (killed, out of memory) loses nothing saved: the scheduler gives
the movie to another worker, which resumes from the project's last atomic save.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from h4tracks.core.analysis import Table
from h4tracks.core.pipeline.spec import (
    Movie,
    Pipeline,
    PipelineError,
    discover_movies,
    load_pipeline,
    parse_pipeline,
)
from h4tracks.core.pipeline.tasks import (
    TOPIC,
    MovieResult,
    one_line,
    run_movie,
    run_movie_task,
)

__all__ = ["RunResult", "run_pipeline"]

#: seconds to wait for an existing scheduler before saying it cannot be reached
CONNECT_TIMEOUT = 5.0
_ADDRESS = re.compile(r"^([a-z]+://)?[\w.\-\[\]:]+:\d+$")


@dataclass
class RunResult:
    """What a run produced.

    Attributes
    ----------
    tracks
        Per-track metrics of every analysed movie (``movie`` + manifest columns first).
    movies
        One row per movie: status, error, steps run, cells, tracks, divisions, mean speed.
    failed
        ``{movie: one-line error}``.
    files
        Written files by role (``tracks_csv``, ``tracks_parquet``, ``movies_csv``,
        ``figure:METRIC``, ``html``).
    """

    tracks: Table
    movies: Table
    failed: dict[str, str]
    files: dict[str, Path]
    output: Path
    seconds: float
    steps_run: int = 0
    results: dict[str, MovieResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every movie finished."""
        return not self.failed


# ------------------------------------------------------------------------------ progress
class _Progress:
    """A bar per step and one for the whole run (with the time left) on a terminal; a line
    per finished movie in a log."""

    def __init__(self, steps: list[str], n: int, *, show: bool, log: Callable[[str], None]):
        self.n, self.show, self.log = n, show, log
        self.interactive = show and sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self.done = 0
        self._lock = threading.Lock()
        self.bars: dict[str, Any] = {}
        if self.interactive:
            from tqdm import tqdm

            self.bars["run"] = tqdm(total=n, desc="  movies", unit="movie", position=0,
                                    file=sys.stderr, dynamic_ncols=True)
            for i, s in enumerate(steps, start=1):
                self.bars[s] = tqdm(total=n, desc=f"  {s}", unit="movie", position=i,
                                    file=sys.stderr, dynamic_ncols=True, leave=True)

    def event(self, event: Any) -> None:
        """A worker's event (``(time, dict)`` from dask, or the dict itself)."""
        msg = event[1] if isinstance(event, tuple) and len(event) == 2 else event
        if not isinstance(msg, dict):
            return
        with self._lock:
            bar = self.bars.get(str(msg.get("step")))
            if bar is not None and msg.get("phase") in ("ran", "skipped"):
                bar.update(1)

    def finished(self, result: MovieResult) -> None:
        with self._lock:
            self.done += 1
            if "run" in self.bars:
                self.bars["run"].update(1)
                if not result.ok:
                    self.bars["run"].write(f"h4tracks: {result.name}: {result.error}",
                                           file=sys.stderr)
                return
            if not self.show:
                return
            elapsed = time.perf_counter() - self.t0
            left = elapsed / self.done * (self.n - self.done)
            ran = ", ".join(s for s, w in result.steps.items() if w == "ran") or "nothing to do"
            status = "ok" if result.ok else f"FAILED: {result.error}"
            print(f"  [{self.done}/{self.n}] {result.name}: {status} ({ran}; "
                  f"{result.seconds:.1f} s; about {left:.0f} s left)", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


# ------------------------------------------------------------------------------ scheduler
@contextlib.contextmanager
def _client(scheduler: Any, workers: int | None, cores: str | int,
            log: Callable[[str], None]) -> Iterator[Any]:
    """A dask client: the one given, one connected to ``scheduler``, or a local cluster."""
    from distributed import Client

    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler is None:
        from distributed import LocalCluster

        from h4tracks.core.compute import core_budget

        try:
            n = workers or core_budget(cores)
        except ValueError as e:
            raise PipelineError(f"cluster.cores: {e}") from None
        # processes with one thread each: a movie's numpy/zarr work never fights another's
        # for the GIL; ":0" picks a free port (two runs on one machine must not collide)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
        log(f"local dask cluster: {n} worker process(es){_dashboard(client, local=True)}")
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    text = str(scheduler)
    try:
        if Path(text).is_file():
            client = Client(scheduler_file=text, timeout=CONNECT_TIMEOUT)
        elif _ADDRESS.match(text):
            client = Client(text if "://" in text else f"tcp://{text}",
                            timeout=CONNECT_TIMEOUT)
        else:
            raise PipelineError(f"scheduler {text!r} is neither an address (tcp://host:8786) "
                                "nor an existing scheduler file")
    except PipelineError:
        raise
    except (OSError, TimeoutError, ValueError) as e:
        raise PipelineError(f"cannot reach the dask scheduler {text} within "
                            f"{CONNECT_TIMEOUT:g} s ({' '.join(str(e).split())[:120]})") from None
    n = len(client.scheduler_info().get("workers", {}))
    log(f"dask scheduler {client.scheduler.address}: {n} worker(s){_dashboard(client)}")
    try:
        yield client
    finally:
        client.close()


def _dashboard(client: Any, local: bool = False) -> str:
    if local:
        try:
            import bokeh  # noqa: F401  (the dashboard needs it)
        except ImportError:
            return " (no dashboard: pip install bokeh)"
    link = getattr(client, "dashboard_link", None)
    return f", dashboard {link}" if link else ""


# ------------------------------------------------------------------------------ run
def run_pipeline(
    pipeline: Pipeline | str | Path | dict[str, Any],
    *,
    scheduler: Any = None,
    workers: int | None = None,
    cores: str | int | None = None,
    lock_wait: float | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Run a pipeline over all its movies and write the cross-movie report.

    Parameters
    ----------
    pipeline
        A :class:`Pipeline`, a pipeline file, or its content as a dict.
    scheduler
        None: the pipeline's ``cluster.scheduler``, else a local cluster. An address
        (``tcp://host:8786``), a scheduler file, a :class:`distributed.Client`, or
        ``"sequential"`` (in this process, no dask).
    workers, cores
        Size of a local cluster: ``workers`` processes, default the core budget ``cores``
        (``"80%"``, ``"40%"``, N; default the pipeline's ``cluster.cores``).
    lock_wait
        Seconds a movie waits for a project another program is changing (default: the
        lock's default wait).
    progress
        Show progress on stderr (bars on a terminal, a line per movie in a log).
    log
        Where the run's own lines go (default: stderr when ``progress``).
    on_event
        Called in this process with every step event (``{"movie", "step", "phase"}``).

    Returns
    -------
    RunResult
        The pooled tables, the failed movies and the written files. Failing movies do not
        stop the others; the caller decides what a failure means (the CLI's exit code).
    """
    from h4tracks.core import lock
    from h4tracks.core.pipeline.report import write_report

    t0 = time.perf_counter()
    if isinstance(pipeline, (str, Path)):
        pipeline = load_pipeline(pipeline)
    elif isinstance(pipeline, dict):
        pipeline = parse_pipeline(pipeline)
    if log is None:
        log = (lambda line: print(line, file=sys.stderr, flush=True)) if progress else (
            lambda line: None)
    movies = discover_movies(pipeline)
    out = pipeline.output_dir
    from h4tracks.core.outputs import check_output_path

    check_output_path(out, create_parents=True)  # never inside a project
    out.mkdir(parents=True, exist_ok=True)
    wait = lock.default_wait() if lock_wait is None else float(lock_wait)
    scheduler = pipeline.cluster.scheduler if scheduler is None else scheduler
    steps = ["import", *(s for s in ("segment", "track", "analyze", "export")
                         if getattr(pipeline.steps, s) is not None)]
    bars = _Progress(steps, len(movies), show=progress, log=log)

    def event(msg: Any) -> None:
        bars.event(msg)
        if on_event is not None:
            body = msg[1] if isinstance(msg, tuple) and len(msg) == 2 else msg
            on_event(body)

    results: dict[str, MovieResult] = {}
    try:
        if isinstance(scheduler, str) and scheduler.strip().lower() == "sequential":
            log(f"running {len(movies)} movie(s) one after another in this process")
            for m in movies:
                results[m.name] = run_movie(m, pipeline, lock_wait=wait, emit=event)
                bars.finished(results[m.name])
        else:
            _run_distributed(movies, pipeline, scheduler, workers,
                             pipeline.cluster.cores if cores is None else cores,
                             wait, event, bars, results, log)
    finally:
        bars.close()
    tracks, per_movie, files = write_report(pipeline, movies, results)
    failed = {n: r.error or "failed" for n, r in results.items() if not r.ok}
    steps_run = sum(1 for r in results.values() for w in r.steps.values() if w == "ran")
    return RunResult(tracks, per_movie, failed, files, out, time.perf_counter() - t0,
                     steps_run, results)


def _run_distributed(movies: list[Movie], pipeline: Pipeline, scheduler: Any,
                     workers: int | None, cores: str | int, wait: float,
                     event: Callable[[Any], None], bars: _Progress,
                     results: dict[str, MovieResult], log: Callable[[str], None]) -> None:
    import uuid

    from distributed import as_completed

    with _client(scheduler, workers, cores, log) as client:
        client.subscribe_topic(TOPIC, event)
        run_id = uuid.uuid4().hex[:8]
        # more workers than movies: the movies' segmentation goes out in blocks of frames,
        # or the extra workers would idle (a cluster still scaling up counts what it has)
        split = len(client.scheduler_info().get("workers", {})) > len(movies)
        # pure=False and a fresh key per run: a rerun must run the tasks again (they decide
        # from the projects what is left to do), never reuse a result dask still holds
        futures = {
            client.submit(run_movie_task, m, pipeline, wait, split, pure=False,
                          key=f"h4tracks-{m.name}-{run_id}"): m
            for m in movies
        }
        try:
            for future in as_completed(futures):
                m = futures[future]
                if future.status == "error":
                    # the task itself never raises: this is the cluster giving up on it
                    # (its workers died too often, KilledWorker)
                    r = MovieResult(m.name, ok=False, error=one_line(future.exception()))
                else:
                    r = future.result()
                results[m.name] = r
                bars.finished(r)
        except BaseException:
            client.cancel(list(futures))
            raise
        finally:
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(TOPIC)
