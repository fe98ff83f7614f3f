"""Units and calibration of imported movies: pixel size (µm) and frame interval (s).

Length and time values with their unit text (SI prefixes and common spellings) are
converted to micrometres and seconds, and the calibration is read from wherever the file
format keeps it: OME metadata (including per-plane DeltaT timestamps), ImageJ TIFF metadata
and resolution tags, or bioio's physical pixel sizes for other formats.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from h4tracks.core.io._validate import _short

if TYPE_CHECKING:
    from bioio import BioImage

    from h4tracks.core.io._bioio import _Resolved
    from h4tracks.core.io._tiff import _TiffInfo


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
