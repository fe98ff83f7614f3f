"""Batch processing: many movies through import → segment → track → analyze → export, on a
laptop or a dask cluster, resumable, with a cross-movie report (docs/batch.md).

::

    from h4tracks.core.pipeline import run_pipeline

    result = run_pipeline("pipeline.yaml")      # or h4tracks.run("pipeline.yaml")
    result.tracks.to_pandas().groupby("condition")["mean_speed [µm/min]"].median()

Modules: :mod:`.spec` (the pipeline file), :mod:`.state` (what a rerun skips, from the
projects' provenance), :mod:`.tasks` (one movie's steps, as the commands run them),
:mod:`.execute` (dask / sequential execution, progress), :mod:`.report` (pooled tables,
figures, HTML), :mod:`.motion` (each movie's trajectories and MSD curves, pooled by
condition), :mod:`.quality` (the per-movie quality flags), :mod:`.run_folder` (a finished
run's movies read back, for opening one to curate). dask.distributed is imported only when a
run starts.
"""

from h4tracks.core.pipeline.example import EXAMPLE
from h4tracks.core.pipeline.execute import RunResult, run_pipeline
from h4tracks.core.pipeline.run_folder import RunFolder, RunMovie, read_run
from h4tracks.core.pipeline.spec import (
    Movie,
    Pipeline,
    PipelineError,
    discover_movies,
    load_pipeline,
    parse_pipeline,
)
from h4tracks.core.pipeline.tasks import MovieResult

__all__ = ["EXAMPLE", "Movie", "MovieResult", "Pipeline", "PipelineError", "RunFolder",
           "RunMovie", "RunResult", "discover_movies", "load_pipeline", "parse_pipeline",
           "read_run", "run_pipeline"]
