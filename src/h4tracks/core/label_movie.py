"""The editable label movie: a (T, Y, X) uint32 array-like that napari paints into directly.

Reads come from an edited in-memory frame when there is one, else from a base array (numpy,
or the lazy zarr array of a saved project, which is never written). Edits mark their frame
dirty and tell listeners (the project re-measures that frame's cells), so a save writes only
what changed. Frames can be shared copy-on-write between movies (the automatic snapshot and
the labels), so a snapshot of a long movie costs no pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from h4tracks.errors import InputError

__all__ = ["FrozenLabels", "LabelMovie", "as_frame_index"]


def as_frame_index(t: Any, n: int) -> int:
    t = int(t)
    if t < 0:
        t += n
    if not 0 <= t < n:
        raise IndexError(f"frame {t} is out of range for a movie of {n} frames")
    return t


class LabelMovie:
    """An editable (T, Y, X) uint32 label movie backed by a lazy or in-memory array.

    Reads come from the edited frame if there is one, else from the base array. Writes copy
    the frame into memory, apply the change and mark the frame dirty; the base array (e.g. the
    zarr array of a saved project) is never written. The object behaves like a numpy array
    for indexing (basic and fancy), so it can be handed to a napari Labels layer directly and
    painting in napari marks exactly the painted frames as edited.
    """

    def __init__(self, base: Any, *, store_path: str | Path | None = None) -> None:
        if len(base.shape) != 3:
            raise InputError(f"labels must be (T, Y, X), got shape {tuple(base.shape)}")
        self._base = base
        self._edits: dict[int, np.ndarray] = {}
        self.dirty: set[int] = set()
        #: the saved project this movie's base array belongs to (enables incremental save)
        self.store_path = None if store_path is None else Path(store_path)
        self._listeners: list[Callable[[int], None]] = []
        # edited frames also referenced by a snapshot: copied before the next write
        self._shared: set[int] = set()

    # array protocol -----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self._base.shape)  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint32)

    @property
    def ndim(self) -> int:
        return 3

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.stack([self.frame(t) for t in range(self.shape[0])]) if self.shape[0] else (
            np.zeros(self.shape, np.uint32)
        )
        return out if dtype is None else out.astype(dtype)

    def frame(self, t: int) -> np.ndarray:
        """Frame ``t`` as a uint32 array (a view of the edited copy when edited)."""
        t = as_frame_index(t, self.shape[0])
        edited = self._edits.get(t)
        if edited is not None:
            return edited
        return np.asarray(self._base[t]).astype(np.uint32, copy=False)

    def frames(self, t0: int, t1: int) -> np.ndarray:
        """Frames ``t0`` to ``t1 - 1`` as one (T, Y, X) uint32 array.

        The unedited frames come from one read of the base array (one zarr/dask call instead
        of one per frame); edited frames replace theirs in the result.

        Parameters
        ----------
        t0
            The first frame.
        t1
            One past the last frame (a slice's stop: like a slice, a range reaching past
            the movie's end stops at it).

        Returns
        -------
        numpy.ndarray
            A new uint32 array of shape ``(t1 - t0, Y, X)`` (fewer frames where the range
            runs past the end); writing into it changes neither the movie nor its base.

        Raises
        ------
        Exception
            Nothing of its own: an error reading the base array (e.g. an unreadable zarr
            chunk) propagates unchanged.
        """
        out = np.asarray(self._base[t0:t1]).astype(np.uint32, copy=True)
        for t, edited in self._edits.items():
            if t0 <= t < t1:
                out[t - t0] = edited
        return out

    def _split(self, key: Any) -> tuple[np.ndarray, Any, tuple]:
        """Split an index into (frames touched, index into a stack of them, rest of key).

        The stack holds the touched frames in the returned order, so ``stack[(tk, *rest)]``
        has exactly numpy's semantics for ``movie[key]`` (basic, fancy and mixed indexing).
        """
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key[:1]) or any(k is None for k in key):
            return self._split(self._expand(key))
        tkey, rest = key[0], key[1:]
        n = self.shape[0]
        ts = np.arange(n)[tkey]  # numpy resolves ints, negatives, slices, masks, arrays
        if isinstance(tkey, slice):
            return np.atleast_1d(ts), slice(None), rest
        frames, stack_index = np.unique(ts, return_inverse=True)
        stack_index = stack_index.reshape(np.shape(ts))
        if np.ndim(ts) == 0:
            stack_index = int(stack_index)
        return frames, stack_index, rest

    def _expand(self, key: tuple) -> tuple:
        """Replace a leading Ellipsis by full slices (``movie[..., y, x]``)."""
        if key and key[0] is Ellipsis:
            n_rest = len(key) - 1
            return (*([slice(None)] * (3 - n_rest)), *key[1:])
        raise IndexError("np.newaxis is not supported when indexing a LabelMovie")

    def __getitem__(self, key: Any) -> Any:
        frames, tk, rest = self._split(key)
        if frames.size == 1:
            # a fresh copy: callers (napari's slice cache) may write into what they get
            stack = np.array(self.frame(int(frames[0])), copy=True)[np.newaxis]
        elif frames.size == 0:
            stack = np.zeros((0, *self.shape[1:]), np.uint32)
        else:
            stack = np.stack([self.frame(int(t)) for t in frames])
        return stack[(tk, *rest)]

    def _editable(self, t: int) -> np.ndarray:
        t = as_frame_index(t, self.shape[0])
        if t not in self._edits:
            self._edits[t] = np.array(self._base[t], dtype=np.uint32, copy=True)
        elif t in self._shared:
            self._edits[t] = self._edits[t].copy()
            self._shared.discard(t)
        return self._edits[t]

    def _touched(self, ts: Iterable[int]) -> None:
        for t in ts:
            self.dirty.add(t)
            for fn in self._listeners:
                fn(t)

    def __setitem__(self, key: Any, value: Any) -> None:
        frames, tk, rest = self._split(key)
        if frames.size == 0:
            return
        if frames.size == 1:
            # write straight into the edited copy (a view with a leading axis)
            self._editable(int(frames[0]))[np.newaxis][(tk, *rest)] = value
        else:
            stack = np.stack([self._editable(int(t)) for t in frames])
            stack[(tk, *rest)] = value
            for i, t in enumerate(frames.tolist()):
                self._edits[t][...] = stack[i]
        self._touched(frames.tolist())

    def set_frame(self, t: int, frame: np.ndarray) -> None:
        """Replace frame ``t`` by a (Y, X) label image (copied)."""
        frame = np.asarray(frame)
        if frame.shape != self.shape[1:]:
            raise InputError(f"frame shape {frame.shape} does not match labels {self.shape[1:]}")
        t = as_frame_index(t, self.shape[0])
        self._edits[t] = frame.astype(np.uint32, copy=True)
        self._shared.discard(t)
        self._touched([t])

    def share_frame_from(self, other: LabelMovie, t: int) -> None:
        """Make frame ``t`` equal to ``other``'s frame ``t`` without copying pixels.

        The array is shared copy-on-write: whichever movie writes to it next copies it first.
        """
        t = as_frame_index(t, self.shape[0])
        arr = other._edits.get(t)
        if arr is None:  # a saved frame of the other movie: read it (it is not an edit there)
            self._edits[t] = np.array(other._base[t], dtype=np.uint32, copy=True)
            self._shared.discard(t)
        else:
            other._shared.add(t)
            self._edits[t] = arr
            self._shared.add(t)
        self._touched([t])

    def copy_shared(self) -> LabelMovie:
        """An independent editable copy, in O(edited frames) time and no pixels copied."""
        # no store path: the twin's unedited frames live in *this* movie's array, so a save
        # must write the twin in full rather than reuse chunk files from its own location
        twin = LabelMovie(self._base)
        twin._edits = dict(self._edits)
        twin.dirty = set(self.dirty)
        self._shared |= set(self._edits)
        twin._shared = set(self._edits)
        return twin

    def snapshot(self) -> FrozenLabels:
        """A read-only copy of the movie as it is now, in O(edited frames) time and no pixels.

        Frames are shared copy-on-write: the snapshot keeps the current frame arrays and this
        movie copies a shared frame before its next write.
        """
        frozen = FrozenLabels(self._base, store_path=self.store_path)
        frozen._edits = dict(self._edits)
        self._shared = set(self._edits)
        return frozen

    def add_listener(self, fn: Callable[[int], None]) -> None:
        """Call ``fn(t)`` whenever frame ``t`` is edited."""
        self._listeners.append(fn)

    @property
    def base(self) -> Any:
        """The underlying array (never written by this class)."""
        return self._base

    @property
    def edited_frames(self) -> dict[int, np.ndarray]:
        """Frames changed since the last save (read-only use)."""
        return self._edits

    def mark_saved(self, new_base: Any, store_path: str | Path) -> None:
        """After a save: read from the saved array and forget the in-memory edits."""
        self._base = new_base
        self._edits = {}  # a new dict: snapshots keep referencing the old one
        self._shared.clear()
        self.dirty.clear()
        self.store_path = Path(store_path)

    def __repr__(self) -> str:
        return f"LabelMovie(shape={self.shape}, edited frames={sorted(self.dirty)})"


class FrozenLabels(LabelMovie):
    """A read-only :class:`LabelMovie` (see :meth:`LabelMovie.snapshot`)."""

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError("a label snapshot is read-only")

    def set_frame(self, t: int, frame: np.ndarray) -> None:
        raise TypeError("a label snapshot is read-only")

    def __repr__(self) -> str:
        return f"FrozenLabels(shape={self.shape})"
