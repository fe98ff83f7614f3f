"""The TIFF path of movie import: tifffile inspection and lazy per-frame pixel access.

TIFF files are opened through bioio (see :mod:`h4tracks.core.io._bioio`), but their structure
and calibration are read here with tifffile (:class:`_TiffInfo`), truncated or damaged files
are detected from metadata and from tifffile's logged errors, and the pixel data is read
through :class:`_TiffFrames` as a dask array with one chunk per frame (memory map, single
pages or tifffile's zarr store). :func:`_read_first_frame` reads frame 0 at import so that
damaged pixel data fails early.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from h4tracks.core.io._validate import _short
from h4tracks.errors import InputError

if TYPE_CHECKING:
    import dask.array as da
    from bioio import BioImage

# tifffile log messages that mean the IFD chain runs past the end of the file (truncation).
_FATAL_TIFF_LOG = ("invalid page offset", "invalid offset to page", "corrupted tag list")


@dataclass
class _TiffInfo:
    """What tifffile reports about the selected series (structure and calibration)."""

    series_index: int
    shape: tuple[int, ...]
    axes: str
    dtype: np.dtype
    is_ome: bool
    is_rgb: bool
    imagej: dict[str, Any] | None
    resolution: tuple[tuple[int, int], tuple[int, int]] | None


# --------------------------------------------------------------------------------------
# TIFF inspection and lazy pixel access
# --------------------------------------------------------------------------------------


class _ThreadErrorCollector(logging.Handler):
    """Collects error records logged by tifffile in the current thread."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


@contextmanager
def _tifffile_errors() -> Iterator[list[str]]:
    """Collect tifffile's logged errors: it logs, rather than raises, broken IFD chains."""
    logger = logging.getLogger("tifffile")
    handler = _ThreadErrorCollector()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _check_tiff_log(messages: list[str], name: str, notes: list[str]) -> None:
    for msg in messages:
        if any(key in msg for key in _FATAL_TIFF_LOG):
            raise InputError(f"{name}: the file is truncated or damaged (tifffile: {_short(msg)})")
    for msg in dict.fromkeys(messages):
        notes.append(f"tifffile reported: {_short(msg)}")


def _inspect_tiff(p: Path, series_index: int, name: str) -> _TiffInfo:
    """Read structure and calibration of one TIFF series; reject truncated files."""
    import tifffile  # local import: heavy, and only TIFF files need it

    try:
        # is_mmstack=False: same series layout as the bioio TIFF readers use.
        with tifffile.TiffFile(p, is_mmstack=False) as tif:
            series = tif.series[series_index]
            keyframe = series.keyframe
            file_size = tif.filehandle.size
            shape = tuple(int(n) for n in series.shape)
            info = _TiffInfo(
                series_index=series_index,
                shape=shape,
                axes=str(series.axes),
                dtype=np.dtype(series.dtype),
                is_ome=bool(tif.is_ome),
                is_rgb=(
                    keyframe.photometric == tifffile.PHOTOMETRIC.RGB
                    and keyframe.samplesperpixel in (3, 4)
                ),
                imagej=dict(tif.imagej_metadata or {}) if tif.is_imagej else None,
                resolution=_resolution_tags(keyframe),
            )
            truncation = _tiff_truncation(tif, series, file_size)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"{name}: not a readable TIFF file, it may be damaged ({_short(exc)})"
        ) from exc
    if truncation:
        raise InputError(f"{name}: the file is truncated or damaged ({truncation})")
    return info


def _resolution_tags(page: Any) -> tuple[tuple[int, int], tuple[int, int]] | None:
    try:
        x = tuple(int(v) for v in page.tags["XResolution"].value)
        y = tuple(int(v) for v in page.tags["YResolution"].value)
    except (KeyError, TypeError, ValueError):
        return None
    if len(x) != 2 or len(y) != 2:
        return None
    return (x[0], x[1]), (y[0], y[1])


def _tiff_truncation(tif: Any, series: Any, file_size: int) -> str | None:
    """Why the series' pixel data is incomplete (from metadata only), or None if it is not."""
    if series.nbytes == 0:  # empty series: reported as an empty movie later
        return None
    ends_past = "the file ends before the end of its pixel data"
    offset = series.dataoffset
    if offset is not None:  # contiguous data (tifffile, ImageJ, most OME writers)
        if offset + series.nbytes > file_size:
            return ends_past
    else:
        pages = series.pages
        last = pages[len(pages) - 1] if len(pages) else None
        if last is not None:
            ends = [o + c for o, c in zip(last.dataoffsets, last.databytecounts, strict=False)]
            if ends and max(ends) > file_size:
                return ends_past
    if tif.is_imagej and series.axes.endswith("YX"):
        # tifffile quietly falls back to a shorter series when ImageJ data is missing.
        expected = int(tif.imagej_metadata.get("images", 0) or 0)
        planes = math.prod(
            n for n, ax in zip(series.shape, series.axes, strict=True) if ax not in "YX"
        )
        if expected > planes:
            return f"its ImageJ metadata lists {expected} images but only {planes} were found"
    return None


class _TiffFrames:
    """Array-like ``(T, Y, X)`` view of one TIFF series that reads only the frames needed.

    Used with :func:`dask.array.from_array`: a single graph layer with one task per
    frame. The file is opened on first access, by the cheapest route that works:

    * uncompressed contiguous data (tifffile, ImageJ, most OME writers): a read-only
      memory map, which needs no IFD per frame (ImageJ files > 4 GB have only one);
    * one (Y, X) plane per page: that page is decoded (zarr adds ~2 ms per chunk);
    * anything else: tifffile's zarr store.

    Parameters
    ----------
    path : Path
        TIFF file.
    series : int
        tifffile series index (= bioio scene index).
    template : list
        Index into the series with an int for every axis that is not kept and None for
        the kept axes, which appear in the order frames, Y, X (frames may be missing when
        the series has a single frame).
    shape, dtype
        Shape ``(T, Y, X)`` and dtype of the view.
    """

    def __init__(
        self,
        path: Path,
        series: int,
        template: list[int | None],
        shape: tuple[int, int, int],
        dtype: np.dtype,
    ):
        self.path = str(path)
        self.series = series
        self.template = template
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.ndim = 3
        self._has_frames = template.count(None) == 3
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._opened = False
        self._memmap: np.memmap | None = None
        self._pages: Any = None
        self._lead_shape: tuple[int, ...] = ()
        self._zarr: Any = None

    def _open(self) -> None:
        import tifffile  # local import: heavy, and only TIFF files need it

        tif = tifffile.TiffFile(self.path, is_mmstack=False)
        keep_open = False
        try:
            series = tif.series[self.series]
            shape = tuple(int(n) for n in series.shape)
            if series.dataoffset is not None:
                dtype = np.dtype(tif.byteorder + np.dtype(series.dtype).char)
                self._memmap = np.memmap(
                    self.path, dtype=dtype, mode="r", offset=series.dataoffset, shape=shape
                )
            elif (
                self.template[-2:] == [None, None]
                and tuple(series.keyframe.shape) == shape[-2:]
                and len(series.pages) == math.prod(shape[:-2])
            ):
                self._pages, self._lead_shape = series.pages, shape[:-2]
                # Lightweight TiffFrames (tags parsed once, from the keyframe) read ~3x
                # faster; pages of one series share the keyframe's layout.
                tif.pages.useframes = True
                tif.pages.set_keyframe(series.keyframe.index)
                keep_open = True
            else:
                import zarr  # local import: heavy, and only this fallback needs it

                store = series.aszarr(level=0, chunkmode="page")
                self._zarr = zarr.open_array(store, mode="r")
                keep_open = True
        finally:
            if keep_open:
                weakref.finalize(self, tif.close)
            else:
                tif.close()
        self._opened = True

    def _read_pages(self, key: tuple[slice, slice, slice]) -> np.ndarray:
        frames = range(self.shape[0])[key[0]] if self._has_frames else [0]
        planes = []
        for f in frames:
            lead = tuple(f if k is None else k for k in self.template[:-2])
            flat = int(np.ravel_multi_index(lead, self._lead_shape)) if lead else 0
            page = self._pages[flat]
            if page is None:
                raise InputError(
                    f"{Path(self.path).name}: frame {f} is missing from the file "
                    "(the file may be truncated or damaged)"
                )
            planes.append(page.asarray()[key[1], key[2]])
        out = np.stack(planes) if planes else np.empty((0, 0, 0), dtype=self.dtype)
        return out if self._has_frames else out[key[0]]

    def __getitem__(self, key: Any) -> np.ndarray:
        # dask passes slices, or ints once it fuses a getitem into the read; anything
        # else (lists, arrays) is applied after reading the full extent of that axis.
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (3 - len(key))
        base: list[slice] = []
        post: list[Any] = []
        for k, n in zip(key, self.shape, strict=True):
            if isinstance(k, (int, np.integer)):
                i = range(n)[k]
                base.append(slice(i, i + 1))
                post.append(0)
            elif isinstance(k, slice):
                base.append(k)
                post.append(slice(None))
            else:
                base.append(slice(None))
                post.append(k)
        out = self._read((base[0], base[1], base[2]))  # (T, Y, X): always three keys
        if any(not (isinstance(k, slice) and k == slice(None)) for k in post):
            out = out[tuple(post)]
        return out

    def _native_key(self, key: tuple[slice, slice, slice]) -> tuple[Any, ...]:
        kept = iter(key if self._has_frames else key[1:])
        return tuple(next(kept) if k is None else k for k in self.template)

    def _read(self, key: tuple[slice, slice, slice]) -> np.ndarray:
        with self._lock:  # the tifffile handle behind pages and zarr is shared
            if not self._opened:
                self._open()
            if self._pages is not None:
                return self._read_pages(key)
            if self._zarr is not None:
                out = np.asarray(self._zarr[self._native_key(key)])
        if self._memmap is not None:
            # Copy out of the map, in native byte order, so no result pins the file.
            out = np.array(self._memmap[self._native_key(key)], dtype=self.dtype)
        return out if self._has_frames else out[np.newaxis][key[0]]

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for other schedulers: the file is reopened on the other side.
        keep = ("path", "series", "template", "shape", "dtype", "ndim", "_has_frames")
        return {k: self.__dict__[k] for k in keep}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()


def _tiff_frames(
    img: BioImage,
    p: Path,
    tiff: _TiffInfo,
    order: str,
    sizes: dict[str, int],
    pick: dict[str, int | None],
) -> da.Array | None:
    """Frames read straight from tifffile, or None if its axes do not match bioio's."""
    # Local imports: dask is heavy and only needed once there is pixel data to wrap.
    import dask.array as da
    from dask.base import tokenize

    if type(img.reader).__module__.startswith("bioio_ome_tiff"):
        native = tiff.axes  # tifffile lays the series out by the OME DimensionOrder
    else:
        # bioio-tifffile renames tifffile's unknown axes (Q, I) by guessing; follow it
        # so that the frames match the dims bioio reports.
        native = "".join(img.reader.dims.order)
    if len(native) != len(tiff.shape) or len(set(native)) != len(native):
        return None
    native_sizes = dict(zip(native, tiff.shape, strict=True))
    if any(n != 1 for ax, n in native_sizes.items() if ax not in order):
        return None
    if any(native_sizes.get(d, 1) != sizes[d] for d in order):
        return None
    template = [pick.get(ax, 0) for ax in native]
    kept = [ax for ax in native if pick.get(ax, 0) is None]
    frames_axis = next(d for d, v in pick.items() if v is None and d not in "YX")
    if kept not in (["Y", "X"], [frames_axis, "Y", "X"]):
        return None

    shape = (sizes[frames_axis], sizes["Y"], sizes["X"])
    source = _TiffFrames(p, tiff.series_index, template, shape, tiff.dtype)
    stat = p.stat()
    name = "h4tracks-tiff-" + tokenize(
        str(p.resolve()), stat.st_mtime_ns, stat.st_size, tiff.series_index, template
    )
    return da.from_array(
        source,
        chunks=(1, shape[1], shape[2]),
        name=name,
        lock=False,
        meta=np.empty((0, 0, 0), dtype=tiff.dtype),
    )


def _read_first_frame(data: da.Array, name: str) -> None:
    """Read frame 0 now so damaged pixel data fails at import, not mid-stream."""
    if data.shape[0] == 0:
        raise InputError(f"{name}: the movie has no frames")
    try:
        with _tifffile_errors():
            data[0].compute(scheduler="synchronous")
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"{name}: pixel data cannot be read, the file may be truncated or damaged "
            f"({_short(exc)})"
        ) from exc
