"""Whole label frames kept aside for undo: in memory while small, on disk when large.

A run over a long movie replaces hundreds of frames; keeping the previous frames (for undo)
and the new ones (for redo) in RAM would double the movie's footprint. A
:class:`FrameStash` holds them in memory up to :data:`SPILL_BYTES` and moves them into a
compressed zarr array in a private temporary folder beyond that (labels compress 20-100x).
The folder is removed when the stash is garbage-collected or the process exits.

Frames are always *copies*: a stash never references a project's store, so it stays valid
after the project is saved (a save replaces the store's arrays).
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

#: frames beyond this many bytes in one stash go to a temporary zarr array on disk
SPILL_BYTES = 256 * 2**20


class FrameStash(Mapping[int, np.ndarray]):
    """A read-only mapping frame index -> (Y, X) uint32 label image.

    Parameters
    ----------
    shape
        (Y, X) of every frame.
    spill_bytes
        In-memory budget before frames are written to disk.
    """

    def __init__(self, shape: tuple[int, int], *, spill_bytes: int = SPILL_BYTES) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self._mem: dict[int, np.ndarray] = {}
        self._disk: dict[int, int] = {}  # frame -> row of the disk array
        self._array: Any = None
        self._spill_bytes = int(spill_bytes)

    @classmethod
    def of(cls, frames: Mapping[int, Any] | Iterable[tuple[int, Any]],
           shape: tuple[int, int], **kwargs: Any) -> FrameStash:
        """A stash holding copies of ``frames`` (a mapping or (t, frame) pairs)."""
        stash = cls(shape, **kwargs)
        items = frames.items() if isinstance(frames, Mapping) else frames
        for t, frame in items:
            stash.put(t, frame)
        return stash

    @property
    def nbytes_in_memory(self) -> int:
        return sum(f.nbytes for f in self._mem.values())

    @property
    def on_disk(self) -> bool:
        """Whether some frames were moved to disk."""
        return bool(self._disk)

    def put(self, t: int, frame: Any) -> None:
        """Keep a copy of ``frame`` as frame ``t``."""
        arr = np.array(frame, dtype=np.uint32, copy=True)
        if arr.shape != self.shape:
            raise ValueError(f"frame shape {arr.shape} differs from the stash's {self.shape}")
        t = int(t)
        self._disk.pop(t, None)
        if self.nbytes_in_memory + arr.nbytes <= self._spill_bytes:
            self._mem[t] = arr
            return
        self._mem.pop(t, None)
        self._write(t, arr)

    def _write(self, t: int, frame: np.ndarray) -> None:
        import zarr

        if self._array is None:
            folder = tempfile.mkdtemp(prefix="h4tracks-undo-")
            # removed with the stash (or at exit): undo data never outlives the session
            self._finalizer = weakref.finalize(self, shutil.rmtree, folder, True)
            self._array = zarr.create_array(
                folder, shape=(0, *self.shape), chunks=(1, *self.shape), dtype=np.uint32,
                fill_value=0, zarr_format=3)
        row = self._array.shape[0]
        self._array.resize((row + 1, *self.shape))
        self._array[row] = frame
        self._disk[t] = row

    def __getitem__(self, t: int) -> np.ndarray:
        t = int(t)
        if t in self._mem:
            return self._mem[t]
        if t in self._disk:
            return np.asarray(self._array[self._disk[t]])
        raise KeyError(t)

    def __iter__(self) -> Iterator[int]:
        return iter(sorted({*self._mem, *self._disk}))

    def __len__(self) -> int:
        return len(self._mem) + len(self._disk)

    def __repr__(self) -> str:
        return f"FrameStash(frames={len(self)}, on_disk={len(self._disk)})"
