"""Cross-movie results of a run: one track table for all movies, a per-movie summary, figures
comparing the groups of the manifest (a condition), and an HTML page linking them.

The per-track numbers are those ``h4tracks analyze`` writes for each movie
(:func:`~h4tracks.core.analysis.project_track_metrics`); this module only stacks them and
attaches the manifest's columns, so a pooled value is never computed differently.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from h4tracks.core.analysis import Table, write_csv
from h4tracks.core.outputs import atomic_file
from h4tracks.core.pipeline.motion import MOTION_FILE, GroupMotion, pool_groups
from h4tracks.core.pipeline.spec import Movie, Pipeline
from h4tracks.core.pipeline.tasks import MovieResult, results_dir

__all__ = ["group_motion", "movie_table", "pooled_tracks", "write_report"]

_SUMMARY = ("frames", "cells", "tracks", "divisions", "mean_speed", "speed_unit",
            "curated_frames", "flags")


def _extra_columns(movies: Sequence[Movie]) -> list[str]:
    names: list[str] = []
    for m in movies:
        names += [k for k in m.columns if k not in names]
    return names


def pooled_tracks(movies: Sequence[Movie], results: dict[str, MovieResult]) -> Table:
    """Every analysed movie's per-track table, stacked, with ``movie`` and the manifest's
    columns first. Columns a movie lacks (another unit, no shape metrics) are NaN there."""
    extra = _extra_columns(movies)
    parts = [(m, results[m.name].table) for m in movies
             if m.name in results and results[m.name].table is not None]
    metric_names: list[str] = []
    for _m, table in parts:
        assert table is not None
        metric_names += [k for k in table if k not in metric_names]
    cols: dict[str, list[np.ndarray]] = {"movie": []}
    cols.update({k: [] for k in extra})
    cols.update({k: [] for k in metric_names if k not in cols})
    for m, table in parts:
        assert table is not None
        n = len(next(iter(table.values()))) if table else 0
        cols["movie"].append(np.full(n, m.name, dtype=object))
        for k in extra:
            cols[k].append(np.full(n, m.columns.get(k, ""), dtype=object))
        for k in metric_names:
            if k in table:
                cols[k].append(np.asarray(table[k]))
            else:
                cols[k].append(np.full(n, np.nan))
    out = Table()
    for k, chunks in cols.items():
        if chunks:
            values = np.concatenate(chunks)
            # a column padded with NaN is float; str columns stay str
            out[k] = values.astype(str) if values.dtype == object else values
        else:
            out[k] = np.zeros(0)
    return out


def movie_table(movies: Sequence[Movie], results: dict[str, MovieResult]) -> Table:
    """One row per movie: manifest columns, status, error, the steps run, and its counts."""
    extra = _extra_columns(movies)
    rows: dict[str, list[Any]] = {"movie": [], **{k: [] for k in extra}, "status": [],
                                  "error": [], "steps_run": [], "seconds": []}
    rows.update({k: [] for k in _SUMMARY})
    for m in movies:
        r = results.get(m.name) or MovieResult(m.name, ok=False, error="not run")
        rows["movie"].append(m.name)
        for k in extra:
            rows[k].append(m.columns.get(k, ""))
        rows["status"].append("ok" if r.ok else "failed")
        rows["error"].append(r.error or "")
        rows["steps_run"].append(" ".join(s for s, what in r.steps.items() if what == "ran"))
        rows["seconds"].append(round(r.seconds, 3))
        for k in _SUMMARY:
            default: Any = np.nan if k == "mean_speed" else ("" if k in ("flags", "speed_unit")
                                                             else -1)
            rows[k].append(r.summary.get(k, default))
    table = Table()
    for k, values in rows.items():
        arr = np.asarray(values)
        table[k] = arr.astype(str) if arr.dtype == object else arr
    return table


def _group_column(pipeline: Pipeline, movies: Sequence[Movie]) -> str:
    extra = _extra_columns(movies)
    group = pipeline.report.group_by
    if group is not None:
        if group not in extra and group != "movie":
            from h4tracks.core.pipeline.spec import PipelineError

            raise PipelineError(f"report.group_by {group!r} is not a manifest column (they "
                                f"are {', '.join(extra) or 'none'})")
        return group
    return "condition" if "condition" in extra else "movie"


def _write_parquet(table: Table, path: Path) -> Path | None:
    """The table as Parquet when pandas has an engine for it (pyarrow); else None."""
    try:
        import pyarrow  # noqa: F401  (the engine pandas needs)
    except ImportError:
        return None
    df = table.to_pandas()
    with atomic_file(path, "wb") as fh:
        df.to_parquet(fh, index=False)
    return path


def write_report(pipeline: Pipeline, movies: Sequence[Movie],
                 results: dict[str, MovieResult]) -> tuple[Table, Table, dict[str, Path]]:
    """Write the cross-movie files into the output folder.

    Returns
    -------
    (tracks, movies, files)
        The pooled per-track table, the per-movie table, and the written files by role
        (``tracks_csv``, ``tracks_parquet``, ``movies_csv``, ``figure:NAME`` (PNG) and
        ``svg:NAME`` for NAME a metric, ``rose`` or ``msd``, ``html``).
    """
    out = pipeline.output_dir
    tracks = pooled_tracks(movies, results)
    per_movie = movie_table(movies, results)
    files: dict[str, Path] = {"movies_csv": write_csv(per_movie, out / "movies.csv")}
    if pipeline.steps.analyze is not None:
        files["tracks_csv"] = write_csv(tracks, out / "tracks.csv")
        parquet = _write_parquet(tracks, out / "tracks.parquet")
        if parquet is not None:
            files["tracks_parquet"] = parquet
        if len(tracks):
            files.update(_write_figures(pipeline, movies, results, tracks))
    files["html"] = _write_html(out, per_movie, files)
    return tracks, per_movie, files


def _save_both(fig: Any, stem: Path, key: str) -> dict[str, Path]:
    """A figure as PNG (for the page) and SVG (editable, for a paper)."""
    from h4tracks.core.analysis.figures import save_figure

    return {f"figure:{key}": save_figure(fig, stem.with_suffix(".png")),
            f"svg:{key}": save_figure(fig, stem.with_suffix(".svg"))}


def group_motion(pipeline: Pipeline, movies: Sequence[Movie],
                 results: dict[str, MovieResult]) -> tuple[dict[str, GroupMotion], list[str]]:
    """The analysed movies' trajectories and MSD curves pooled by the report's group column
    (groups in sorted order, as in the box plots); see
    :func:`~h4tracks.core.pipeline.motion.pool_groups`."""
    by = _group_column(pipeline, movies)
    files: dict[str, list[tuple[str, Path]]] = {}
    for m in movies:
        r = results.get(m.name)
        path = results_dir(pipeline, m) / MOTION_FILE
        if r is None or not r.ok or r.table is None or not path.is_file():
            continue
        group = m.name if by == "movie" else m.columns.get(by, "")
        files.setdefault(group, []).append((m.name, path))
    return pool_groups({g: files[g] for g in sorted(files)})


def _write_figures(pipeline: Pipeline, movies: Sequence[Movie],
                   results: dict[str, MovieResult], tracks: Table) -> dict[str, Path]:
    from h4tracks.core.analysis.group_figures import box_strip, msd_by_group, rose_by_group

    by = _group_column(pipeline, movies)
    folder = pipeline.output_dir / "figures"
    folder.mkdir(exist_ok=True)
    files: dict[str, Path] = {}
    for metric in pipeline.report.metrics:
        try:
            fig = box_strip(tracks, metric, by)
        except KeyError:
            continue  # a metric this run has no column for (e.g. shape without shape)
        files.update(_save_both(fig, folder / f"{metric}_by_{by}", metric))
    groups, left_out = group_motion(pipeline, movies, results)
    if groups:
        # name the movies left out (a few; the log names all of them)
        shown = ", ".join(left_out[:3]) + (f" and {len(left_out) - 3} more"
                                           if len(left_out) > 3 else "")
        note = f" (left out, other units: {shown})" if left_out else ""
        files.update(_save_both(
            rose_by_group({g: m.trajectories for g, m in groups.items()}, by=by, note=note),
            folder / f"rose_by_{by}", "rose"))
        files.update(_save_both(
            msd_by_group({g: m.msd for g, m in groups.items()}, by=by, note=note),
            folder / f"msd_by_{by}", "msd"))
    return files


def _write_html(out: Path, per_movie: Table, files: dict[str, Path]) -> Path:
    def rel(p: Path) -> str:
        return html.escape(os.path.relpath(p, out))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in per_movie.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(per_movie[c][i]))}</td>"
                         for c in per_movie.columns) + "</tr>"
        for i in range(len(per_movie)))
    links = "".join(f'<li><a href="{rel(p)}">{html.escape(p.name)}</a></li>'
                    for k, p in files.items() if not k.startswith(("figure:", "svg:")))

    def figure(key: str, png: Path) -> str:
        name = html.escape(key)
        svg = files.get(f"svg:{key}")
        also = f', <a href="{rel(svg)}">SVG</a>' if svg is not None else ""
        return (f'<figure><img src="{rel(png)}" alt="{name}"><figcaption>{name} '
                f'(<a href="{rel(png)}">PNG</a>{also})</figcaption></figure>')

    figures = "".join(figure(k[7:], p) for k, p in files.items() if k.startswith("figure:"))
    n_failed = int((per_movie["status"] == "failed").sum()) if len(per_movie) else 0
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>h4tracks run</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}"
        "img{max-width:480px}figure{display:inline-block}</style></head><body>"
        f"<h1>h4tracks run</h1><p>{len(per_movie)} movies, {n_failed} failed.</p>"
        f"<h2>Files</h2><ul>{links}</ul><h2>Figures</h2>{figures or '<p>none</p>'}"
        f"<h2>Movies</h2><table><tr>{head}</tr>{body}</table></body></html>\n")
    path = out / "report.html"
    with atomic_file(path, "w", encoding="utf-8") as fh:
        fh.write(page)
    return path
