"""The result type of the analysis functions.

Results are a :class:`Table`: named numpy columns of equal length. pandas is not a dependency
of h4tracks, so the table does not require it; :meth:`Table.to_pandas` converts when pandas is
installed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from h4tracks.errors import InputError

__all__ = ["Table"]


# ---------------------------------------------------------------------------------- table
class Table:
    """Named 1-D numpy columns of equal length, in insertion order.

    A deliberately small stand-in for a data frame (pandas is not a dependency): index it by
    column name to get the array, by a boolean mask / index array via :meth:`take`.

    Parameters
    ----------
    columns
        ``{name: values}``; every value becomes a 1-D numpy array of the same length.
    meta
        Free-form metadata, e.g. the length and time units (``{"length_unit": "µm"}``).

    Examples
    --------
    >>> t = Table({"track_id": [1, 2], "path_length [px]": [3.0, 4.5]})
    >>> len(t), t.find("path_length")
    (2, 'path_length [px]')
    """

    def __init__(
        self, columns: Mapping[str, Any] | None = None, *, meta: Mapping[str, Any] | None = None
    ) -> None:
        self._cols: dict[str, np.ndarray] = {}
        self._n: int | None = None
        for name, values in (columns or {}).items():
            self[name] = values
        self.meta: dict[str, Any] = dict(meta or {})

    @property
    def columns(self) -> list[str]:
        """Column names in order."""
        return list(self._cols)

    def __len__(self) -> int:
        return self._n or 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._cols)

    def __contains__(self, name: object) -> bool:
        return name in self._cols

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._cols[name]
        except KeyError:
            raise KeyError(
                f"no column {name!r}; columns are {', '.join(self._cols) or '(none)'}"
            ) from None

    def __setitem__(self, name: str, values: Any) -> None:
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise InputError(f"column {name!r} must be one-dimensional, got shape {arr.shape}")
        if self._n is not None and arr.size != self._n and self._cols:
            raise InputError(f"column {name!r} has {arr.size} rows, the table has {self._n}")
        self._cols[str(name)] = arr
        self._n = arr.size

    def __repr__(self) -> str:
        return f"Table({len(self)} rows: {', '.join(self._cols)})"

    def find(self, base: str) -> str:
        """Full name of a column given its name with or without the unit suffix.

        ``find("path_length")`` returns ``"path_length [µm]"`` (or ``[px]``), so callers need
        not know which units the table was computed in.
        """
        if base in self._cols:
            return base
        for name in self._cols:
            if name.split(" [", 1)[0] == base:
                return name
        raise KeyError(f"no column {base!r}; columns are {', '.join(self._cols) or '(none)'}")

    def take(self, rows: Any) -> Table:
        """A new table with the given rows (boolean mask or integer indices)."""
        rows = np.asarray(rows)
        return Table({k: v[rows] for k, v in self._cols.items()}, meta=self.meta)

    def to_dict(self) -> dict[str, np.ndarray]:
        """The columns as a plain dict (arrays are not copied)."""
        return dict(self._cols)

    def to_pandas(self) -> Any:
        """The table as a ``pandas.DataFrame`` (requires pandas)."""
        try:
            import pandas as pd  # optional and heavy: imported only when asked for
        except ImportError as exc:  # pragma: no cover - pandas ships with napari
            raise InputError("pandas is not installed; use the Table columns directly") from exc
        return pd.DataFrame(self._cols)
