"""``h4tracks run``: many movies through a pipeline file, on a local or an existing dask
cluster (see docs/batch.md).

The pipeline, dask and the steps are imported when the command runs (``h4tracks --help`` must
stay fast). Exit code: 0 when every movie finished, else the number of failed movies (at most
125); a bad pipeline file or an unreachable scheduler is one line and exit 2 before any movie
starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from h4tracks.errors import H4TracksError

__all__ = ["add_run_parser", "cmd_run"]

#: exit codes above this are the shell's (signals)
_MAX_EXIT = 125


def add_run_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``run`` on the sub-command parsers ``sub``."""
    from h4tracks.cli.types import positive_int

    run = sub.add_parser("run", parents=[common],
                         help="run a pipeline file over many movies (dask; resumable)")
    run.add_argument("pipeline", nargs="?", help="pipeline file (.yaml or .toml)")
    run.add_argument("--init", nargs="?", const="pipeline.yaml", metavar="PATH",
                     help="write a commented example pipeline (default pipeline.yaml)")
    run.add_argument("--scheduler", metavar="ADDRESS|FILE",
                     help="an existing dask cluster: tcp://host:8786 or a scheduler file; "
                     "'sequential' runs the movies one after another in this process "
                     "(default: the pipeline's, else a local cluster)")
    run.add_argument("--workers", type=positive_int,
                     help="worker processes of the local cluster (default: --cores)")
    run.add_argument("--cores", help="core budget of the local cluster: N, 40%% or 80%% "
                     "(default: the pipeline's, 80%%)")
    run.add_argument("--overwrite", action="store_true",
                     help="with --init: replace an existing file")
    run.set_defaults(func=cmd_run)
    return run


def cmd_run(args: argparse.Namespace) -> int:
    if args.init is not None:
        return _init(Path(args.init), overwrite=args.overwrite)
    if not args.pipeline:
        raise H4TracksError("give the pipeline file (h4tracks run --init writes an example)")
    from h4tracks.core import lock
    from h4tracks.core.pipeline import load_pipeline, run_pipeline

    pipeline = load_pipeline(args.pipeline)
    if args.cores is not None:
        from h4tracks.core.compute import core_budget

        try:
            core_budget(args.cores)
        except ValueError as e:
            raise H4TracksError(f"--cores: {e}") from None
    result = run_pipeline(
        pipeline, scheduler=args.scheduler, workers=args.workers, cores=args.cores,
        lock_wait=lock.default_wait(), progress=not args.quiet)
    n = len(result.movies)
    for name, error in result.failed.items():
        print(f"h4tracks: {name}: {error}", file=sys.stderr)
    files = result.files
    print(f"ran {n} movie(s) in {result.seconds:.1f} s: {n - len(result.failed)} ok, "
          f"{len(result.failed)} failed, {result.steps_run} step(s) run; "
          f"{len(result.tracks)} tracks")
    for key in ("tracks_csv", "tracks_parquet", "movies_csv", "html"):
        if key in files:
            print(f"  {files[key]}")
    return min(len(result.failed), _MAX_EXIT)


def _init(path: Path, *, overwrite: bool) -> int:
    from h4tracks.cli.common import check_outputs
    from h4tracks.core.outputs import atomic_file
    from h4tracks.core.pipeline import EXAMPLE

    check_outputs({"--init": str(path)})
    if path.exists() and not overwrite:
        raise H4TracksError(f"{path} exists (pass --overwrite to replace it)")
    with atomic_file(path, "w", encoding="utf-8") as fh:
        fh.write(EXAMPLE)
    print(f"wrote {path}: edit inputs, steps and output, then h4tracks run {path}")
    return 0
