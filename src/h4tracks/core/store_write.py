"""The write path of the project store: frames streamed into new zarr arrays.

:func:`h4tracks.core.store.save_project` assembles a new version of a project in a hidden
folder; this module writes the arrays in it. A label movie whose unedited frames already lie
in the version being replaced gets those chunk files hard-linked and only its changed frames
written (:func:`_save_labels`); any other movie is streamed block by block
(:func:`_write_movie`, :func:`write_frames`), so memory stays bounded whatever the movie's
size.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from h4tracks.core.dirswap import link_tree, same_dir
from h4tracks.core.label_movie import LabelMovie
from h4tracks.core.manifest import chunk_codecs
from h4tracks.errors import H4TracksError

_TILE = 2048  # frames larger than this are chunked in tiles

Progress = Callable[[int, int], None]


def _chunks(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return (1, min(shape[1], _TILE), min(shape[2], _TILE))


def _frame_chunk_prefixes(frames: set[int]) -> Callable[[str], bool]:
    """Predicate matching the chunk files of the given frames (keys ``c.<t>.<ty>.<tx>``)."""
    prefixes = tuple(f"c.{t}." for t in frames)
    return lambda rel: rel.startswith(prefixes) if prefixes else False


#: the most frame bytes :func:`_write_movie` holds at once
_BLOCK_BYTES = 32 * 2**20


def _write_movie(
    src: Any, dst: Path, dtype: np.dtype, *, progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None, frames: Any = None, block: Any = None,
) -> None:
    """Stream a (T, Y, X) array frame by frame into a new zarr array at ``dst``."""
    shape = tuple(int(s) for s in src.shape)
    # "." separated chunk keys: one flat file per chunk, no directory per frame, which keeps
    # hard-linking and deleting a version cheap
    arr = zarr.create_array(dst, shape=shape, chunks=_chunks(shape), dtype=dtype,
                            fill_value=0, zarr_format=3,
                            chunk_key_encoding={"name": "default", "separator": "."},
                            **chunk_codecs())
    write_frames(arr, shape[0], frames if frames is not None else (lambda t: src[t]),
                 progress=progress, cancel=cancel,
                 block=block if block is not None or frames is not None
                 else (lambda t0, t1: src[t0:t1]))


def write_frames(
    arr: Any, n_frames: int, frame: Callable[[int], Any], *,
    progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
    block: Callable[[int, int], Any] | None = None,
) -> None:
    """Write frames ``0 .. n_frames - 1`` of a (T, Y, X) zarr array, read in blocks.

    Per frame, a dask compute (or a read of the source array) costs ~2-5 ms of overhead, so
    the source is read in blocks of up to 32 MiB (and at most 64 frames); the frames are
    then written one by one (see the comment below), and memory stays bounded.

    Parameters
    ----------
    arr
        The (T, Y, X) array written into (a zarr array, or anything taking
        ``arr[t] = frame`` and having ``shape`` and ``dtype``); frames are cast to its dtype.
    n_frames
        How many frames to write, from frame 0.
    frame
        ``frame(t)``: frame ``t`` as a (Y, X) array; used when ``block`` is None.
    progress
        ``progress(done, total)``, called after each block with the frames written so far
        and ``n_frames``.
    cancel
        Checked before each block; when it returns True the write stops.
    block
        ``block(t0, t1)``: frames ``t0`` to ``t1 - 1`` as one (T, Y, X) array (e.g. one
        dask compute); when given, it is used instead of ``frame``.

    Returns
    -------
    None
        The frames are in ``arr``.

    Raises
    ------
    H4TracksError
        If ``cancel()`` returns True; the frames of the blocks before stay written.
    """
    dtype = np.dtype(arr.dtype)
    frame_bytes = max(1, int(np.prod(arr.shape[1:])) * dtype.itemsize)
    step = max(1, min(64, _BLOCK_BYTES // frame_bytes))
    for t0 in range(0, n_frames, step):
        if cancel is not None and cancel():
            raise H4TracksError("save cancelled; the project on disk is unchanged")
        t1 = min(n_frames, t0 + step)
        if block is not None:
            data = np.asarray(block(t0, t1), dtype)
        else:
            data = np.stack([np.asarray(frame(t), dtype) for t in range(t0, t1)])
        # written frame by frame: a block written at once has many chunk writes in flight
        # in zarr's event loop, and when one fails (a full disk) the others go on after the
        # error, racing the removal of the unfinished save folder
        for i in range(t1 - t0):
            arr[t0 + i] = data[i]
        if progress is not None:
            progress(t1, n_frames)


def _saved_array_dir(movie: LabelMovie, src: Path | None) -> Path | None:
    """The directory of the chunk files behind ``movie``'s unedited frames, when they belong
    to ``src`` (the saved version being replaced), else None.

    That is the movie's own array (``labels``, ``auto/labels``) and also the array a
    copy-on-write twin shares with it: a first run's automatic snapshot reads its unedited
    frames from the project's ``labels``, so a save links those files instead of decoding
    and re-encoding every frame of the movie.
    """
    base = movie.base
    root = getattr(getattr(base, "store", None), "root", None)
    if src is None or root is None or not isinstance(base, zarr.Array) or \
            not same_dir(Path(root), src):
        return None
    array_dir = Path(root) / base.path
    return array_dir if (array_dir / "zarr.json").is_file() else None


def _save_labels(movie: LabelMovie, dst: Path, src: Path | None,
                 progress: Progress | None, twin: tuple[LabelMovie, Path] | None = None) -> None:
    """Write a label movie, hard-linking unchanged frames' chunk files from ``src``.

    ``twin``: a movie on the same base array and the folder it was just written to in this
    save (the project's labels for their automatic snapshot); frames neither of them changed
    are linked from there, when ``src`` has none to give (a first save of an import).
    """
    reuse = _saved_array_dir(movie, src)
    changed = set(movie.edited_frames) | movie.dirty
    if reuse is None and twin is not None and twin[0].base is movie.base and \
            (twin[1] / "zarr.json").is_file():
        reuse = twin[1]
        changed |= set(twin[0].edited_frames) | twin[0].dirty
    if reuse is not None:
        link_tree(reuse, dst, _frame_chunk_prefixes(changed))
        # an edited frame that became empty is written too: a missing chunk means damage
        # (the array takes the setting when it is opened)
        with zarr.config.set({"array.write_empty_chunks": True}):
            arr = zarr.open_array(dst, mode="r+", zarr_format=3)
            for i, t in enumerate(sorted(changed)):
                arr[t] = movie.frame(t)
                if progress is not None:
                    progress(i + 1, len(changed))
    else:
        _write_movie(movie, dst, np.dtype(np.uint32), progress=progress, frames=movie.frame,
                     block=movie.frames)
