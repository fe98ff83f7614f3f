"""Import of 2D time-lapse movies as lazy ``(T, Y, X)`` arrays.

Files are opened with :class:`bioio.BioImage`, which picks the installed reader plugin
(bioio-ome-tiff for OME-TIFF, bioio-tifffile for other TIFFs, anything else that is
installed for other formats) and reports dimensions in its standard ``TCZYX`` order (plus
``S`` for RGB samples). This module resolves that to the project's data model:

* image: ``(T, Y, X)`` in the file's own dtype, never converted to float;
* labels: ``(T, Y, X)`` uint32 with 0 = background.

Reading is lazy: the returned dask arrays have one chunk per frame and nothing but the
first frame is read while opening (to surface damaged files early). bioio decides the
reader, dims, scenes, channel names and OME metadata; for TIFF files the pixel data is then
read through tifffile (memory map, single pages or its zarr store, see `_TiffFrames`),
because bioio's TIFF readers build one dask graph layer per plane, which makes computing a
single frame of a 2000-frame movie take ~0.5 s, or else read a whole Z stack per chunk.
Reading never writes to disk.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import warnings
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from h4tracks.errors import InputError

if TYPE_CHECKING:
    import dask.array as da
    from bioio import BioImage

__all__ = [
    "ImportedMovie",
    "as_label_frame",
    "read_image",
    "read_labels",
    "supported_suffixes",
    "validate_image_array",
    "validate_labels_array",
]

_UINT32_MAX = 2**32 - 1
_TIFF_SUFFIXES = (".tif", ".tiff", ".lsm")
# Standard dims that this module knows how to resolve; anything else must have size 1.
_KNOWN_DIMS = "TCZYXS"
# bioio names channels "Channel:<scene>:<index>" when the file has no channel names.
_GENERATED_CHANNEL = re.compile(r"Channel:\d+:\d+")
# tifffile log messages that mean the IFD chain runs past the end of the file (truncation).
_FATAL_TIFF_LOG = ("invalid page offset", "invalid offset to page", "corrupted tag list")
#: smallest frame side (px): a smaller "movie" is a 1-D signal or a file read on wrong axes
MIN_FRAME_SIDE = 8
_RGB_MESSAGE = "RGB images are not supported: convert to grayscale or save channels separately"


@dataclass
class ImportedMovie:
    """A movie opened for import, resolved to ``(T, Y, X)``.

    Attributes
    ----------
    data : dask.array.Array
        Lazy ``(T, Y, X)`` array in the file's original dtype, one chunk per frame.
    source : str
        Absolute path of the file.
    dims : str
        Dimensions as reported by bioio in standard order with sizes,
        e.g. ``"T=20,C=2,Z=1,Y=512,X=512"``.
    channel : str or int or None
        The channel that was picked: its name if the file names its channels, else its
        index; None when the file has a single channel.
    channel_names : list of str
        Names of all channels (bioio's generated ``"Channel:0:<i>"`` IDs when the file
        has no names).
    pixel_size : float or None
        Micrometres per pixel (X if X and Y differ, see `notes`), None when unknown.
    frame_interval : float or None
        Seconds between frames, None when unknown.
    notes : list of str
        Human-readable remarks about how the file was interpreted.
    """

    data: da.Array
    source: str
    dims: str
    channel: str | int | None
    channel_names: list[str]
    pixel_size: float | None
    frame_interval: float | None
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------


def supported_suffixes() -> list[str]:
    """Return the file suffixes the installed bioio reader plugins can open.

    Returns
    -------
    list of str
        Lower-case suffixes with leading dot, e.g. ``[".lsm", ".ome.tif", ".tif", ...]``.
    """
    return list(_plugin_suffixes())


def read_image(
    path: str | Path,
    *,
    channel: int | str | None = None,
    time_axis: str = "auto",
    scene: int | str | None = None,
) -> ImportedMovie:
    """Open a time-lapse movie lazily as ``(T, Y, X)``.

    Parameters
    ----------
    path : str or Path
        Movie file (any format an installed bioio plugin reads; TIFF and OME-TIFF
        out of the box).
    channel : int or str, optional
        Channel index or name; required when the file has more than one channel.
    time_axis : {"auto", "T", "Z"}
        Which file axis holds the frames. ``"auto"`` uses T, or Z when the file has
        several Z planes and a single time point (ImageJ and plain multi-page TIFFs often
        store frames as slices).
    scene : int or str, optional
        Scene index or ID for multi-scene files; the first scene by default.

    Returns
    -------
    ImportedMovie
        Lazy data plus the metadata found in the file.

    Raises
    ------
    InputError
        If the file is missing, unreadable, damaged, or not a single-channel 2D movie.
    """
    resolved = _open_movie(path, channel=channel, time_axis=time_axis, scene=scene)
    _check_frame_size(tuple(resolved.data.shape), resolved.name)
    _check_image_dtype(resolved.data.dtype, resolved.name)
    _read_first_frame(resolved.data, resolved.name)
    pixel_size, frame_interval = _read_calibration(resolved)
    return ImportedMovie(
        data=resolved.data,
        source=str(resolved.path),
        dims=resolved.dims,
        channel=resolved.channel,
        channel_names=resolved.channel_names,
        pixel_size=pixel_size,
        frame_interval=frame_interval,
        notes=resolved.notes,
    )


def read_labels(
    path: str | Path,
    *,
    time_axis: str = "auto",
    expected_shape: tuple[int, int, int] | None = None,
) -> da.Array:
    """Open a label movie lazily as ``(T, Y, X)`` uint32.

    The dtype is checked here; values (no negatives, fit in uint32) are checked frame by
    frame as the returned array is computed, so streaming a bad frame raises
    :class:`InputError` too.

    Parameters
    ----------
    path : str or Path
        Label movie file (0 = background).
    time_axis : {"auto", "T", "Z"}
        As for :func:`read_image`.
    expected_shape : tuple of int, optional
        ``(T, Y, X)`` the labels must have, usually the image's shape.

    Returns
    -------
    dask.array.Array
        Lazy uint32 ``(T, Y, X)`` array, one chunk per frame.

    Raises
    ------
    InputError
        If the file cannot be read, is not an integer (or boolean) single-channel movie,
        or its shape differs from `expected_shape`.
    """
    resolved = _open_movie(path, channel=None, time_axis=time_axis, scene=None, labels=True)
    name = resolved.name
    _check_label_dtype(resolved.data.dtype, name)
    data = resolved.data
    if expected_shape is not None:
        expected = _as_movie_shape(expected_shape)
        if tuple(data.shape) != expected:
            raise InputError(
                f"{name}: the label movie has shape (T, Y, X) = {tuple(data.shape)} but "
                f"{expected} was expected (labels must match the image frame for frame)"
            )
    labels = data.map_blocks(_labels_to_uint32, dtype=np.uint32, source=name)
    # Checks pixel data and frame-0 values now; the rest is checked while streaming.
    _read_first_frame(labels, name)
    return labels


def as_label_frame(frame: np.ndarray, *, source: str = "labels") -> np.ndarray:
    """Validate one ``(Y, X)`` label frame and return it as uint32.

    Parameters
    ----------
    frame : numpy.ndarray
        Integer or boolean label image, 0 = background.
    source : str
        Name used in error messages (usually the file name).

    Returns
    -------
    numpy.ndarray
        The frame as uint32 (the input itself when it already is uint32).

    Raises
    ------
    InputError
        If the frame is not 2D, not integer/boolean, has negative values or values
        above 2**32 - 1.
    """
    frame = np.asarray(frame)
    if frame.ndim != 2:
        raise InputError(f"{source}: a label frame must be 2D (Y, X), got shape {frame.shape}")
    return _labels_to_uint32(frame, source=source)


def validate_image_array(arr: Any, *, name: str = "image", rgb: bool | None = None) -> None:
    """Check that an in-memory array can be used as an image movie.

    Accepts ``(Y, X)`` (callers treat it as one frame) or ``(T, Y, X)`` with a real
    numeric dtype. Nothing is computed, so dask and zarr arrays are cheap to check.

    Parameters
    ----------
    arr : array-like
        Numpy, dask or zarr array (e.g. napari layer data).
    name : str
        Name used in error messages (e.g. the layer name).
    rgb : bool, optional
        The napari layer's ``rgb`` flag. When None, a uint8 array whose last axis has
        3 or 4 entries is taken to be RGB(A), as napari does.

    Raises
    ------
    InputError
        If the array is RGB(A), empty, not 2D/3D, or not real-valued numeric.
    """
    shape, dtype = _shape_and_dtype(arr)
    ndim = len(shape)
    looks_rgb = ndim in (3, 4) and shape[-1] in (3, 4) and dtype == np.uint8
    if rgb or (rgb is None and looks_rgb):
        raise InputError(f"{name}: {_RGB_MESSAGE}")
    if ndim not in (2, 3):
        raise InputError(
            f"{name}: image must be 2D (Y, X) or 3D (T, Y, X), got {ndim} dimensions "
            f"with shape {shape}"
        )
    if math.prod(shape) == 0:
        raise InputError(f"{name}: image is empty (shape {shape})")
    _check_image_dtype(dtype, name)


def validate_labels_array(
    arr: Any, *, shape: Sequence[int] | None = None, name: str = "labels"
) -> None:
    """Check dtype and shape of an in-memory label array (values are not scanned).

    Parameters
    ----------
    arr : array-like
        Numpy, dask or zarr array, ``(Y, X)`` or ``(T, Y, X)``.
    shape : sequence of int, optional
        Shape the labels must have; ``(Y, X)`` and ``(1, Y, X)`` are treated alike.
    name : str
        Name used in error messages.

    Raises
    ------
    InputError
        If the labels are not integer/boolean, not 2D/3D, empty or of the wrong shape.
    """
    arr_shape, dtype = _shape_and_dtype(arr)
    if len(arr_shape) not in (2, 3):
        raise InputError(
            f"{name}: labels must be 2D (Y, X) or 3D (T, Y, X), got {len(arr_shape)} "
            f"dimensions with shape {arr_shape}"
        )
    if math.prod(arr_shape) == 0:
        raise InputError(f"{name}: labels are empty (shape {arr_shape})")
    _check_label_dtype(dtype, name)
    if shape is not None:
        expected = _as_movie_shape(shape)
        if _as_movie_shape(arr_shape) != expected:
            raise InputError(
                f"{name}: labels have shape {arr_shape} but {tuple(shape)} was expected "
                "(labels must match the image frame for frame)"
            )


# --------------------------------------------------------------------------------------
# dtype / value checks
# --------------------------------------------------------------------------------------


def _shape_and_dtype(arr: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype without materialising lazy arrays."""
    if not (hasattr(arr, "shape") and hasattr(arr, "dtype")):
        arr = np.asarray(arr)
    return tuple(int(n) for n in arr.shape), np.dtype(arr.dtype)


def _as_movie_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """Normalise ``(Y, X)`` to ``(1, Y, X)`` since callers treat 2D data as one frame."""
    shape = tuple(int(n) for n in shape)
    return (1, *shape) if len(shape) == 2 else shape


def _check_frame_size(shape: tuple[int, ...], name: str) -> None:
    """Refuse a file whose frames cannot hold cells (a 1-D signal read as a 1 x N movie)."""
    if min(shape[-2:]) < MIN_FRAME_SIDE:
        raise InputError(
            f"{name}: frames of {shape[-2]} x {shape[-1]} px are too small to hold cells (at "
            f"least {MIN_FRAME_SIDE} x {MIN_FRAME_SIDE} px); is it a 1-D signal, or were its "
            "axes read wrongly (see --time-axis)?"
        )


def _check_image_dtype(dtype: np.dtype, name: str) -> None:
    dtype = np.dtype(dtype)
    if dtype.kind in "iuf":
        if not _storable(dtype):
            # e.g. the 'long long' int64 tifffile returns on Linux, or float128
            raise InputError(
                f"{name}: the pixel type {dtype} of this data cannot be stored in a project; "
                "save the movie as 16/32-bit integers or float32 (e.g. Fiji: Image > Type > "
                "32-bit)"
            )
        return
    if dtype.kind == "b":
        hint = "convert it to uint8"
    elif dtype.kind == "c":
        hint = "save the magnitude or the real part instead"
    else:
        hint = "save the movie with an integer or float pixel type"
    raise InputError(f"{name}: image pixels must be real numbers, got {dtype} ({hint})")


def _storable(dtype: np.dtype) -> bool:
    """Whether the project format (zarr 3) can store pixels of exactly this numpy dtype."""
    try:
        from zarr.core.dtype import parse_dtype
    except ImportError:  # another zarr version: let the store decide
        return True
    try:
        parse_dtype(dtype, zarr_format=3)
    except (ValueError, TypeError):
        return False
    return True


def _check_label_dtype(dtype: np.dtype, name: str) -> None:
    dtype = np.dtype(dtype)
    if dtype.kind not in "iub":
        raise InputError(
            f"{name}: labels must be integers, got {dtype} "
            "(convert the label movie to an integer type)"
        )


def _labels_to_uint32(block: np.ndarray, source: str) -> np.ndarray:
    """Validate label values of any block shape and return them as uint32."""
    block = np.asarray(block)
    _check_label_dtype(block.dtype, source)
    if block.dtype.kind == "b" or block.size == 0:
        return block.astype(np.uint32)
    # Bounds only need checking when the dtype can hold out-of-range values.
    if block.dtype.kind == "i":
        low = int(block.min())
        if low < 0:
            raise InputError(
                f"{source}: labels must not be negative, found {low} "
                "(0 is background, objects are numbered 1, 2, ...)"
            )
    if np.iinfo(block.dtype).max > _UINT32_MAX:
        high = int(block.max())
        if high > _UINT32_MAX:
            raise InputError(
                f"{source}: label value {high} does not fit in 32 bits "
                f"(at most {_UINT32_MAX}; relabel the movie sequentially)"
            )
    return block.astype(np.uint32, copy=False)


# --------------------------------------------------------------------------------------
# opening and resolving to (T, Y, X)
# --------------------------------------------------------------------------------------


@dataclass
class _Resolved:
    """Intermediate result shared by :func:`read_image` and :func:`read_labels`."""

    path: Path
    name: str
    img: BioImage
    tiff: _TiffInfo | None
    data: da.Array
    dims: str
    channel: str | int | None
    channel_names: list[str]
    notes: list[str]


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


def _open_movie(
    path: str | Path,
    *,
    channel: int | str | None,
    time_axis: str,
    scene: int | str | None,
    labels: bool = False,
) -> _Resolved:
    p = _check_path(path)
    name = p.name
    axis = _check_time_axis(time_axis, name)
    notes: list[str] = []
    with _tifffile_errors() as tiff_log:
        try:
            img, readers = _open_bioimage(p, name)
            _select_scene(img, scene, name, notes)
            # bioio parses the file lazily: dims and names are where damage surfaces.
            dims = img.dims
            order = "".join(dims.order)
            sizes = {d: int(getattr(dims, d)) for d in order}
            names = [str(c) for c in (img.channel_names or [])]
            tiff = _inspect_tiff(p, img.current_scene_index, name) if readers else None
        except InputError:
            raise
        except Exception as exc:
            _check_tiff_log(tiff_log, name, [])  # prefer tifffile's reason when it has one
            raise InputError(
                f"{name}: cannot be read, the file may be damaged ({_short(exc)})"
            ) from exc
    _check_tiff_log(tiff_log, name, notes)

    dims_text = ",".join(f"{d}={n}" for d, n in sizes.items())
    if any(n == 0 for n in sizes.values()):
        raise InputError(f"{name}: the movie is empty ({dims_text})")
    if sizes.get("S", 1) > 1 or (tiff is not None and tiff.is_rgb):
        raise InputError(f"{name}: {_RGB_MESSAGE}")
    for d, n in sizes.items():
        if d not in _KNOWN_DIMS and n > 1:
            raise InputError(
                f"{name}: axis {d!r} with {n} entries is not supported ({dims_text}); "
                "only time-lapse (T), channel (C) and single-plane Y/X data can be imported"
            )

    if len(names) != sizes.get("C", 1):
        names = [f"Channel:{img.current_scene_index}:{i}" for i in range(sizes.get("C", 1))]
    c_index, channel_out = _pick_channel(channel, names, name, labels)
    frames_axis = _pick_time_axis(axis, sizes, name, notes)

    # Per standard dim: an index to select, or None to keep (frames, Y, X).
    pick: dict[str, int | None] = {d: 0 for d in order}
    pick.update({"C": c_index, frames_axis: None, "Y": None, "X": None})
    try:
        data = _frames_dask(img, p, tiff, order, sizes, pick)
    except Exception as exc:
        raise InputError(
            f"{name}: cannot be read, the file may be damaged ({_short(exc)})"
        ) from exc
    return _Resolved(
        path=p.resolve(),
        name=name,
        img=img,
        tiff=tiff,
        data=data,
        dims=dims_text,
        channel=channel_out,
        channel_names=names,
        notes=notes,
    )


def _check_path(path: str | Path) -> Path:
    p = Path(path).expanduser()
    name = p.name or str(p)
    if not p.exists():
        raise InputError(f"{name}: file not found ({p.absolute()})")
    suffixes = _plugin_suffixes()
    lower = p.name.lower()
    matches = any(lower.endswith(s) for s in suffixes)
    if p.is_dir() and not matches:
        raise InputError(f"{name}: is a folder, not a movie file (pick the file inside it)")
    if not matches:
        kind = f"file type {p.suffix!r}" if p.suffix else "file without an extension"
        raise InputError(f"{name}: unsupported {kind} (supported: {', '.join(suffixes)})")
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(f"{name}: the file is empty (0 bytes)")
    return p


def _check_time_axis(time_axis: str, name: str) -> str:
    axis = str(time_axis).strip()
    if axis.lower() == "auto":
        return "auto"
    if axis.upper() in ("T", "Z"):
        return axis.upper()
    raise InputError(f"{name}: time_axis must be 'auto', 'T' or 'Z', got {time_axis!r}")


@lru_cache(maxsize=1)
def _plugin_suffixes() -> tuple[str, ...]:
    from bioio.plugins import get_plugins

    suffixes = {
        (ext if ext.startswith(".") else f".{ext}").lower() for ext in get_plugins(use_cache=True)
    }
    return tuple(sorted(suffixes))


def _tiff_reader_classes(p: Path, name: str) -> list[type] | None:
    """Reader try-order for a TIFF file, or None to let bioio choose (non-TIFF).

    Choosing here avoids bioio logging a warning for every plain TIFF (it tries the
    OME reader first) and reports damaged TIFFs with tifffile's own reason.
    """
    if not p.name.lower().endswith(_TIFF_SUFFIXES) or p.is_dir():
        return None
    import tifffile

    try:
        from bioio_ome_tiff import Reader as OmeTiffReader
        from bioio_tifffile import Reader as TiffReader
    except ImportError:  # plugins missing: let bioio's own discovery handle it
        return None
    try:
        with tifffile.TiffFile(p) as tif:
            is_ome = tif.is_ome
    except Exception as exc:
        raise InputError(
            f"{name}: not a readable TIFF file, it may be damaged ({_short(exc)})"
        ) from exc
    return [OmeTiffReader, TiffReader] if is_ome else [TiffReader]


def _open_bioimage(p: Path, name: str) -> tuple[BioImage, list[type] | None]:
    readers = _tiff_reader_classes(p, name)
    # Local import: bioio pulls in xarray & co., which the validators do not need.
    import bioio_base
    from bioio import BioImage

    kwargs: dict[str, Any] = {}
    if readers is not None:
        # One chunk for the whole scene keeps bioio's (unused) dask graph tiny; TIFF
        # pixel data is read through tifffile, see _tiff_frames.
        kwargs["chunk_dims"] = [*_KNOWN_DIMS, "M"]
    try:
        with warnings.catch_warnings():
            # ome-types deprecation chatter emitted on every OME-TIFF open.
            warnings.filterwarnings("ignore", message=".*parser argument is ignored.*")
            img = BioImage(str(p), reader=readers, **kwargs)
    except FileNotFoundError as exc:
        raise InputError(f"{name}: file not found ({p.absolute()})") from exc
    except bioio_base.exceptions.UnsupportedFileFormatError as exc:
        raise InputError(
            f"{name}: not a readable movie file; it may be damaged or in a format no "
            "installed reader supports"
        ) from exc
    except PermissionError as exc:
        raise InputError(f"{name}: permission denied while opening the file") from exc
    except Exception as exc:
        raise InputError(f"{name}: cannot be read ({_short(exc)})") from exc
    return img, readers


def _select_scene(img: BioImage, scene: int | str | None, name: str, notes: list[str]) -> None:
    scenes = [str(s) for s in img.scenes]
    listing = ", ".join(f"{i}: {s!r}" for i, s in enumerate(scenes))
    if scene is None:
        if len(scenes) > 1:
            notes.append(
                f"the file has {len(scenes)} scenes ({listing}); read the first one "
                "(pass scene=... to pick another)"
            )
        return
    if isinstance(scene, (int, np.integer)) and not isinstance(scene, bool):
        ok = 0 <= int(scene) < len(scenes)
        target: int | str = int(scene)
    else:
        ok = str(scene) in scenes
        target = str(scene)
    if not ok:
        raise InputError(f"{name}: scene {scene!r} does not exist (scenes: {listing})")
    try:
        img.set_scene(target)
    except Exception as exc:
        raise InputError(f"{name}: cannot open scene {scene!r} ({_short(exc)})") from exc


class ChannelChoiceError(InputError):
    """A multi-channel file was opened without choosing a channel.

    ``channel_names`` lists the choices (names, or indices as strings) so a UI can ask.
    """

    def __init__(self, message: str, channel_names: list[str]) -> None:
        super().__init__(message)
        self.channel_names = channel_names


def _pick_channel(
    channel: int | str | None, names: list[str], name: str, labels: bool
) -> tuple[int, str | int | None]:
    """Return the channel index and how to report it (name, index or None)."""
    n = len(names)
    has_names = not all(_GENERATED_CHANNEL.fullmatch(c) for c in names)
    listing = (
        ", ".join(f"{i}: {c!r}" for i, c in enumerate(names))
        if has_names
        else (", ".join(str(i) for i in range(n)))
    )
    if labels and n > 1:
        raise InputError(
            f"{name}: the label movie has {n} channels; labels must be a single-channel "
            "(T, Y, X) movie"
        )
    if channel is None:
        if n > 1:
            raise ChannelChoiceError(
                f"{name}: the file has {n} channels ({listing}); choose one "
                "(--channel INDEX|NAME on the command line, channel= in Python)",
                [str(i) if not has_names else c for i, c in enumerate(names)],
            )
        return 0, None
    index: int | None = None
    if isinstance(channel, (int, np.integer)) and not isinstance(channel, bool):
        if 0 <= int(channel) < n:
            index = int(channel)
    elif isinstance(channel, str):
        if channel in names:
            index = names.index(channel)
        else:
            folded = [i for i, c in enumerate(names) if c.casefold() == channel.casefold()]
            if len(folded) == 1:
                index = folded[0]
            elif channel.strip().isdigit() and int(channel) < n:
                index = int(channel)
    if index is None:
        raise InputError(
            f"{name}: channel {channel!r} does not exist; the file has {n} "
            f"channel{'s' if n > 1 else ''} ({listing})"
        )
    if n == 1:
        return 0, None
    return index, names[index] if has_names else index


def _pick_time_axis(axis: str, sizes: dict[str, int], name: str, notes: list[str]) -> str:
    """Decide whether frames come from the T or the Z axis of the file."""
    t, z = sizes.get("T", 1), sizes.get("Z", 1)
    if t > 1 and z > 1:
        raise InputError(
            f"{name}: the file has both time points (T={t}) and Z planes (Z={z}); 3D (Z) "
            "stacks are not supported (pick one plane or make a projection first)"
        )
    if axis == "T":
        if z > 1:
            raise InputError(
                f"{name}: 3D (Z) stacks are not supported, the file has Z={z} planes and "
                "time_axis='T' was requested (use time_axis='Z' if the planes are frames)"
            )
        return "T"
    if axis == "Z":
        if t > 1:
            raise InputError(
                f"{name}: time_axis='Z' was requested but the file has T={t} time points "
                f"and Z={z} (use time_axis='T' or 'auto')"
            )
        return "Z"
    if z > 1:
        notes.append(
            f"Z axis read as time: the file has {z} Z planes and no time axis (ImageJ "
            "stacks and plain multi-page TIFFs often store frames as slices)"
        )
        return "Z"
    return "T"


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
    import tifffile

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
                imagej=dict(tif.imagej_metadata) if tif.is_imagej else None,
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
        import tifffile

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
                import zarr

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
        out = self._read(tuple(base))
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


def _frames_dask(
    img: BioImage,
    p: Path,
    tiff: _TiffInfo | None,
    order: str,
    sizes: dict[str, int],
    pick: dict[str, int | None],
) -> da.Array:
    """Lazy ``(T, Y, X)`` array with one chunk per frame."""
    if tiff is not None:
        data = _tiff_frames(img, p, tiff, order, sizes, pick)
        if data is not None:
            return data
        # A layout tifffile and bioio disagree on: use bioio's slower per-plane dask.
        from bioio import BioImage

        img = BioImage(str(p), reader=type(img.reader), chunk_dims=["Y", "X", "S"])
        img.set_scene(tiff.series_index)
    std = img.dask_data
    return std[tuple(slice(None) if pick[d] is None else pick[d] for d in order)]


def _tiff_frames(
    img: BioImage,
    p: Path,
    tiff: _TiffInfo,
    order: str,
    sizes: dict[str, int],
    pick: dict[str, int | None],
) -> da.Array | None:
    """Frames read straight from tifffile, or None if its axes do not match bioio's."""
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


# --------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------

_SI_PREFIX = {
    "Y": 1e24, "Z": 1e21, "E": 1e18, "P": 1e15, "T": 1e12, "G": 1e9, "M": 1e6, "k": 1e3,
    "h": 1e2, "da": 1e1, "": 1.0, "d": 1e-1, "c": 1e-2, "m": 1e-3, "µ": 1e-6, "μ": 1e-6,
    "u": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15, "a": 1e-18, "z": 1e-21, "y": 1e-24,
}  # fmt: skip
_LENGTH_ALIASES = {
    "micron": "µm", "microns": "µm", "micrometer": "µm", "micrometre": "µm",
    "\\u00b5m": "µm", "nanometer": "nm", "millimeter": "mm", "centimeter": "cm",
    "inch": "in", "inches": "in", "angstrom": "Å",
}  # fmt: skip
_LENGTH_SPECIAL_UM = {"Å": 1e-4, "in": 25400.0, "ft": 304800.0, "thou": 25.4}
_TIME_ALIASES = {
    "sec": "s", "second": "s", "seconds": "s", "msec": "ms", "millisecond": "ms",
    "milliseconds": "ms", "\\u00b5s": "µs", "minute": "min", "minutes": "min",
    "hr": "h", "hour": "h", "hours": "h", "day": "d", "days": "d",
}  # fmt: skip
_TIME_SPECIAL_S = {"min": 60.0, "h": 3600.0, "d": 86400.0}


def _length_to_um(value: float | None, unit: str | None) -> float | None:
    """Convert a length to micrometres; None for unknown units or non-positive values."""
    if value is None or not value > 0 or not math.isfinite(value):
        return None
    if unit is None:
        return float(value)
    unit = str(unit).strip()
    unit = _LENGTH_ALIASES.get(unit.lower(), unit)
    if unit in _LENGTH_SPECIAL_UM:
        return float(value) * _LENGTH_SPECIAL_UM[unit]
    if unit.endswith("m") and unit[:-1] in _SI_PREFIX:
        return float(value) * _SI_PREFIX[unit[:-1]] * 1e6
    return None


def _time_to_s(value: float | None, unit: str | None) -> float | None:
    """Convert a duration to seconds; None for unknown units or non-positive values."""
    if value is None or not value > 0 or not math.isfinite(value):
        return None
    if unit is None:
        return float(value)
    unit = str(unit).strip()
    unit = _TIME_ALIASES.get(unit.lower(), unit)
    if unit in _TIME_SPECIAL_S:
        return float(value) * _TIME_SPECIAL_S[unit]
    if unit.endswith("s") and unit[:-1] in _SI_PREFIX:
        return float(value) * _SI_PREFIX[unit[:-1]]
    return None


def _unit_text(unit: Any) -> str | None:
    """ome-types stores units as enums; plain strings elsewhere."""
    if unit is None:
        return None
    return str(getattr(unit, "value", unit))


def _read_calibration(res: _Resolved) -> tuple[float | None, float | None]:
    """Pixel size (µm) and frame interval (s) from wherever the file format keeps them."""
    notes = res.notes
    module = type(res.img.reader).__module__
    px = py = interval = None
    try:
        if module.startswith("bioio_ome_tiff"):
            px, py, interval = _ome_calibration(res.img, notes)
        elif res.tiff is not None:
            # bioio-tifffile reports 1.0 µm for every uncalibrated TIFF (it treats a
            # missing unit as microns), so TIFF calibration is read from ImageJ metadata.
            px, py, interval = _imagej_calibration(res.tiff, notes)
        else:
            sizes = res.img.physical_pixel_sizes
            px, py = _length_to_um(sizes.X, None), _length_to_um(sizes.Y, None)
            delta = res.img.time_interval
            interval = _time_to_s(delta.total_seconds(), "s") if delta is not None else None
    except Exception as exc:  # metadata is optional; never fail an import over it
        notes.append(f"calibration metadata could not be read ({_short(exc)})")
        return None, None

    if px is not None and py is not None and not math.isclose(px, py, rel_tol=1e-6):
        notes.append(f"pixel size differs between Y ({py:g} µm) and X ({px:g} µm); using X")
    return (px if px is not None else py), interval


def _ome_calibration(img: BioImage, notes: list[str]) -> tuple[float | None, ...]:
    pixels = img.reader.ome_metadata.images[img.current_scene_index].pixels
    px = _length_to_um(pixels.physical_size_x, _unit_text(pixels.physical_size_x_unit))
    py = _length_to_um(pixels.physical_size_y, _unit_text(pixels.physical_size_y_unit))
    interval = _time_to_s(pixels.time_increment, _unit_text(pixels.time_increment_unit))
    if interval is None:
        interval = _ome_plane_interval(pixels)
        if interval is not None:
            notes.append("frame interval estimated from the OME plane timestamps (DeltaT)")
    return px, py, interval


def _ome_plane_interval(pixels: Any) -> float | None:
    """Mean frame interval from per-plane DeltaT of the first channel and Z plane."""
    stamps: dict[int, float] = {}
    for plane in pixels.planes or []:
        if (plane.the_z or 0) != 0 or (plane.the_c or 0) != 0 or plane.delta_t is None:
            continue
        seconds = _time_to_s(1.0, _unit_text(plane.delta_t_unit))
        if seconds is not None:
            stamps.setdefault(int(plane.the_t or 0), float(plane.delta_t) * seconds)
    if len(stamps) < 2:
        return None
    first, last = min(stamps), max(stamps)
    return _time_to_s((stamps[last] - stamps[first]) / (last - first), "s")


def _imagej_calibration(tiff: _TiffInfo, notes: list[str]) -> tuple[float | None, ...]:
    meta = tiff.imagej
    if meta is None:
        return None, None, None
    px = py = None
    unit = meta.get("unit")
    if unit is not None and tiff.resolution is not None:
        unit_text = str(unit).strip()
        if unit_text.lower() not in ("pixel", "pixels", ""):
            (xn, xd), (yn, yd) = tiff.resolution
            # Resolution tags hold pixels per unit as a fraction; invert for the size.
            px = _length_to_um(xd / xn, unit_text) if xn else None
            py = _length_to_um(yd / yn, unit_text) if yn else None
            if px is None and py is None:
                notes.append(f"pixel size unit {unit_text!r} not understood; ignored")
    try:
        finterval = float(meta.get("finterval") or 0.0)
    except (TypeError, ValueError):
        finterval = 0.0
    tunit = str(meta.get("tunit", "s"))
    interval = _time_to_s(finterval, tunit)
    if interval is None and finterval > 0:
        notes.append(f"frame interval unit {tunit!r} not understood; ignored")
    return px, py, interval


def _short(exc: BaseException | str, limit: int = 160) -> str:
    """One-line, bounded description of a library error for user messages."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
