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

This module holds the public API and the step that resolves a file to ``(T, Y, X)``; the
pieces live in private modules: validation of arrays and dtypes in `_validate`, opening
through bioio (scenes, channels, time axis) in `_bioio`, tifffile inspection and lazy
frames in `_tiff`, units and calibration in `_units`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from h4tracks.core.io._bioio import (
    _KNOWN_DIMS,
    ChannelChoiceError,  # noqa: F401  (re-exported: importable from here as before)
    _check_path,
    _check_time_axis,
    _open_bioimage,
    _pick_channel,
    _pick_time_axis,
    _plugin_suffixes,
    _Resolved,
    _select_scene,
)
from h4tracks.core.io._tiff import (
    _check_tiff_log,
    _inspect_tiff,
    _read_first_frame,
    _tiff_frames,
    _tifffile_errors,
    _TiffFrames,  # noqa: F401  (re-exported: the tests patch it through this module)
    _TiffInfo,
)
from h4tracks.core.io._units import _read_calibration
from h4tracks.core.io._validate import (
    _RGB_MESSAGE,
    MIN_FRAME_SIDE,  # noqa: F401  (re-exported: importable from here as before)
    _as_movie_shape,
    _check_frame_size,
    _check_image_dtype,
    _check_label_dtype,
    _labels_to_uint32,
    _short,
    validate_image_array,
    validate_labels_array,
)
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
    # dask's map_blocks is typed as its decorator form; the call form is the documented one
    labels = data.map_blocks(_labels_to_uint32, dtype=np.uint32, source=name)  # type: ignore[call-arg, arg-type]
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


# --------------------------------------------------------------------------------------
# opening and resolving to (T, Y, X)
# --------------------------------------------------------------------------------------


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


# _frames_dask lives here, not in _tiff, so that it calls this module's _tiff_frames
# (tests substitute it to exercise the bioio fallback).
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
        from bioio import BioImage  # local import: heavy (xarray & co.)

        img = BioImage(str(p), reader=type(img.reader), chunk_dims=["Y", "X", "S"])
        img.set_scene(tiff.series_index)
    std = img.dask_data
    return std[tuple(slice(None) if pick[d] is None else pick[d] for d in order)]
