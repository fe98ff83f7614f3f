"""Units of the metrics: scale factors and unit names for lengths and times, and the column
names with their unit suffix (``"path_length [µm]"``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from h4tracks.errors import InputError

__all__ = ["Units", "units_for"]


# ---------------------------------------------------------------------------------- units
@dataclass(frozen=True)
class Units:
    """Scale factors and unit names for lengths and times."""

    length: str  # "µm" or "px"
    time: str  # the time unit, or "frame"
    pixel_size: float  # length units per pixel (1 for px)
    frame_interval: float  # time units per frame (1 for frames)

    @property
    def speed(self) -> str:
        return f"{self.length}/{self.time}"

    @property
    def area(self) -> str:
        return f"{self.length}²"

    @property
    def diffusion(self) -> str:
        return f"{self.length}²/{self.time}"


def units_for(
    pixel_size: float | None = None, frame_interval: float | None = None, time_unit: str = "s"
) -> Units:
    """Units of the metrics: physical where the calibration is known, else px and frames."""
    for name, v in (("pixel_size", pixel_size), ("frame_interval", frame_interval)):
        if v is not None and not (np.isfinite(v) and v > 0):
            raise InputError(f"{name} must be a positive number, got {v}")
    return Units(
        length="px" if pixel_size is None else "µm",
        time="frame" if frame_interval is None else str(time_unit),
        pixel_size=1.0 if pixel_size is None else float(pixel_size),
        frame_interval=1.0 if frame_interval is None else float(frame_interval),
    )


def _name(base: str, unit: str | None) -> str:
    return f"{base} [{unit}]" if unit else base
