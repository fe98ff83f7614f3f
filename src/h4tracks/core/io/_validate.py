"""Validation of movie arrays and dtypes, and conversion of label values to uint32.

Checks shared by the file readers (:mod:`h4tracks.core.io.readers`) and by code that brings
in-memory arrays (e.g. napari layer data) into a project: shape and dtype of image and label
arrays without computing lazy data, whether the project store can hold a pixel type, the
minimum frame size, label values (no negatives, fit in uint32), and :func:`_short`, which
turns library errors into bounded one-line text for the user messages of all the reader
modules. It imports no other reader module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from h4tracks.errors import InputError

_UINT32_MAX = 2**32 - 1
#: smallest frame side (px): a smaller "movie" is a 1-D signal or a file read on wrong axes
MIN_FRAME_SIDE = 8
_RGB_MESSAGE = "RGB images are not supported: convert to grayscale or save channels separately"


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
    try:  # local import: zarr is heavy and not needed by the other checks
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


def _short(exc: BaseException | str, limit: int = 160) -> str:
    """One-line, bounded description of a library error for user messages."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
