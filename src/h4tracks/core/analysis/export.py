"""CSV export of metric tables that opens cleanly in pandas and in spreadsheets in any locale.

The separator and decimal mark are explicit (``sep=";", decimal=","`` for a German/French
Excel), the file is UTF-8 (with a byte-order mark by default, which Excel needs to show
``µm`` correctly and pandas / readr skip), the header row carries the units in the column
names and undefined values are empty cells.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from h4tracks.core.analysis.metrics import Table, detection_table, filter_tracks, summarize
from h4tracks.core.graph import TrackGraph
from h4tracks.core.outputs import atomic_file, check_output_path
from h4tracks.errors import InputError

__all__ = ["write_csv", "write_detections_csv", "write_track_report"]


def _check_format(sep: str, decimal: str) -> None:
    if not isinstance(sep, str) or len(sep) != 1 or sep in "\r\n\"":
        raise InputError(f"the CSV separator must be one character (not a quote), got {sep!r}")
    if decimal not in (".", ","):
        raise InputError(f"the decimal mark must be '.' or ',', got {decimal!r}")
    if sep == decimal:
        raise InputError(
            f"the separator and the decimal mark are both {sep!r}; use sep=';' with decimal=','"
        )


def _format_column(values: np.ndarray, decimal: str) -> list[str]:
    """Cells of one column as text (NaN -> empty cell, floats round-trip exactly)."""
    if values.dtype == bool:
        return ["True" if v else "False" for v in values.tolist()]
    if np.issubdtype(values.dtype, np.integer):
        return [str(v) for v in values.tolist()]
    if np.issubdtype(values.dtype, np.floating):
        # repr gives the shortest text that reads back to the same float
        cells = ["" if v != v else repr(v) for v in values.astype(np.float64).tolist()]
        if decimal != ".":
            cells = [c.replace(".", decimal) for c in cells]
        return cells
    return ["" if v is None else str(v) for v in values.tolist()]


def write_csv(
    table: Table, path: str | Path, *, sep: str = ",", decimal: str = ".", bom: bool = True
) -> Path:
    """Write a table as CSV, one row per table row, a header row with the column names.

    Parameters
    ----------
    table
        A :class:`~h4tracks.core.analysis.metrics.Table` (e.g. from ``track_metrics``).
    path
        Output file; its folder must exist and must not be inside a project. The file is
        written completely or not at all (a previous file stays on failure).
    sep
        Field separator (one character).
    decimal
        Decimal mark, ``"."`` or ``","``; must differ from ``sep``.
    bom
        Start the file with a UTF-8 byte-order mark so Excel detects UTF-8 (``µ``, ``²``);
        pandas, readr and LibreOffice ignore it.

    Returns
    -------
    Path
        The written file.

    Examples
    --------
    Read it back with ``pandas.read_csv(path, sep=";", decimal=",")``.
    """
    _check_format(sep, decimal)
    if not isinstance(table, Table):
        raise InputError(f"expected a Table, got {type(table).__name__}")
    path = Path(path)
    check_output_path(path)
    cols = [_format_column(table[c], decimal) for c in table.columns]
    with atomic_file(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        _write_rows(fh, table.columns, cols, sep)
    return path


def _write_rows(fh, header: list[str], cols: list[list[str]], sep: str) -> None:
    writer = csv.writer(fh, delimiter=sep, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(zip(*cols, strict=True))


def write_detections_csv(
    graph: TrackGraph,
    path: str | Path,
    *,
    pixel_size: float | None = None,
    frame_interval: float | None = None,
    time_unit: str = "s",
    shape: Table | None = None,
    sep: str = ",",
    decimal: str = ".",
    bom: bool = True,
) -> Path:
    """Write one row per detection (t, time, label, track_id, y, x, area, + shape columns).

    Parameters are those of :func:`~h4tracks.core.analysis.metrics.detection_table` and
    :func:`write_csv`.
    """
    _check_format(sep, decimal)
    table = detection_table(
        graph, pixel_size=pixel_size, frame_interval=frame_interval, time_unit=time_unit,
        shape=shape,
    )
    return write_csv(table, path, sep=sep, decimal=decimal, bom=bom)


def write_track_report(
    table: Table,
    path: str | Path,
    *,
    min_length: int | None = None,
    min_movement: float | None = None,
    sep: str = ",",
    decimal: str = ".",
    bom: bool = True,
) -> tuple[Path, Path]:
    """Write all tracks with a ``passes_filters`` column, and a summary of the passing ones.

    Parameters
    ----------
    table
        A ``track_metrics`` table.
    path
        The track file, e.g. ``tracks.csv``; the summary goes next to it as
        ``tracks_summary.csv``.
    min_length, min_movement
        Filters (see :func:`~h4tracks.core.analysis.metrics.filter_tracks`).
    sep, decimal, bom
        See :func:`write_csv`.

    Returns
    -------
    (tracks_path, summary_path)
        The track file has every track (one row each) plus ``passes_filters``. The summary
        has one row per metric over the passing tracks (``metric``, ``n``, ``mean``, ``sd``,
        ``median``, ``min``, ``max``), preceded by rows ``tracks (all)`` and ``tracks passing
        filters`` (counts in ``n``) and one row per filter (threshold in ``min``, number of
        tracks meeting it in ``n``; empty threshold = filter off).
    """
    _check_format(sep, decimal)
    path = Path(path)
    mask = filter_tracks(table, min_length=min_length, min_movement=min_movement)
    out = Table(table.to_dict(), meta=table.meta)
    out["passes_filters"] = mask
    summary = _with_filter_rows(summarize(table, mask), table, mask, min_length, min_movement)
    summary_path = path.with_name(f"{path.stem}_summary{path.suffix or '.csv'}")
    check_output_path(path)
    check_output_path(summary_path)
    encoding = "utf-8-sig" if bom else "utf-8"
    # both files or neither: the summary is committed only if the track file is complete
    with atomic_file(path, "w", encoding=encoding, newline="") as fh, \
            atomic_file(summary_path, "w", encoding=encoding, newline="") as fh_summary:
        for table_, handle in ((out, fh), (summary, fh_summary)):
            cols = [_format_column(table_[c], decimal) for c in table_.columns]
            _write_rows(handle, table_.columns, cols, sep)
    return path, summary_path


def _with_filter_rows(
    summary: Table,
    table: Table,
    mask: np.ndarray,
    min_length: int | None,
    min_movement: float | None,
) -> Table:
    """Prepend the track counts and the filter thresholds (in the ``min`` column) to a
    summary, so the numbers travel with the settings that produced them."""
    unit = table.meta.get("length_unit", "px")
    n_all = len(table)
    single = {
        "n_points": filter_tracks(table, min_length=min_length),
        f"path_length [{unit}]": filter_tracks(table, min_movement=min_movement),
    }
    head_metric = ["tracks (all)", "tracks passing filters",
                   *(f"filter: {k} >=" for k in single)]
    head_n = [n_all, int(mask.sum()), *(int(m.sum()) for m in single.values())]
    thresholds = [np.nan, np.nan,
                  *(np.nan if v is None else float(v) for v in (min_length, min_movement))]
    cols: dict[str, np.ndarray] = {
        "metric": np.asarray([*head_metric, *summary["metric"].tolist()], dtype=object),
        "n": np.asarray([*head_n, *summary["n"].tolist()], np.int64),
    }
    for c in ("mean", "sd", "median", "min", "max"):
        head = thresholds if c == "min" else [np.nan] * len(head_metric)
        cols[c] = np.concatenate([np.asarray(head, np.float64), summary[c]])
    return Table(cols, meta=summary.meta)
