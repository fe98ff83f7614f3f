"""A finished run's output folder read back: its movies (``movies.csv``) with their manifest
columns, status and project, so a user can pick one to curate (the napari widget's *Open from
a batch run…*) without knowing the folder's layout.

Only ``movies.csv`` is read; a project's path is ``OUTPUT/projects/NAME.zarr``, as the run
wrote it (:func:`~h4tracks.core.pipeline.tasks.project_path`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from h4tracks.errors import InputError

__all__ = ["RunFolder", "RunMovie", "read_run"]

#: the movie table's columns before the manifest's and after them (report.movie_table)
_FIRST, _AFTER = "movie", "status"


@dataclass(frozen=True)
class RunMovie:
    """One movie of a run, as ``movies.csv`` lists it.

    Attributes
    ----------
    name
        The movie's (and its project's) name.
    columns
        Its manifest columns (``condition``, ``replicate``, …), in the file's order.
    status, error, flags
        ``ok`` / ``failed``, the one-line error, the quality flags.
    project
        Its project folder (it may be missing: a movie that failed before its import).
    """

    name: str
    columns: dict[str, str] = field(default_factory=dict)
    status: str = ""
    error: str = ""
    flags: str = ""
    project: Path = Path()

    @property
    def has_project(self) -> bool:
        """Whether the project exists (cheap: one small file read)."""
        from h4tracks.core.store import is_project

        return is_project(self.project)


@dataclass(frozen=True)
class RunFolder:
    """A run's output folder: its manifest column names and its movies in the run's order."""

    path: Path
    columns: list[str]
    movies: list[RunMovie]

    def movie(self, name: str) -> RunMovie:
        """The movie named ``name``.

        Raises
        ------
        InputError
            If the run has no such movie.
        """
        for m in self.movies:
            if m.name == name:
                return m
        raise InputError(f"the run in {self.path} has no movie {name!r}")


def read_run(folder: str | Path) -> RunFolder:
    """Read the movie list of a finished ``h4tracks run``.

    Parameters
    ----------
    folder
        The run's output folder (the pipeline's ``output``).

    Returns
    -------
    RunFolder
        The folder, the manifest columns between ``movie`` and ``status``, and the movies
        in the order of ``movies.csv`` (rows without a movie name are skipped); a movie's
        ``project`` is ``projects/<movie>.zarr`` in ``folder``, whether or not it exists.

    Raises
    ------
    InputError
        One sentence if ``folder`` is not a run's output folder (no ``movies.csv``, or one
        without the run's ``movie`` and ``status`` columns) or cannot be read.
    """
    folder = Path(folder).expanduser()
    table = folder / "movies.csv"
    if not table.is_file():
        raise InputError(f"{folder} is not the output folder of an h4tracks run (it has no "
                         "movies.csv)")
    try:
        # utf-8-sig: write_csv starts its files with a byte-order mark for Excel
        with open(table, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"cannot read {table}: {e}") from None
    if _FIRST not in header or _AFTER not in header or header.index(_FIRST) > \
            header.index(_AFTER):
        raise InputError(f"{table} is not the movie table of an h4tracks run (it needs "
                         "movie and status columns)")
    columns = header[header.index(_FIRST) + 1: header.index(_AFTER)]
    projects = folder / "projects"
    movies = [
        RunMovie(name=row[_FIRST], columns={c: row.get(c) or "" for c in columns},
                 status=row.get(_AFTER) or "", error=row.get("error") or "",
                 flags=row.get("flags") or "", project=projects / f"{row[_FIRST]}.zarr")
        for row in rows if row.get(_FIRST)
    ]
    return RunFolder(folder, columns, movies)
