"""The bioio path of movie import: opening a file, its scene, channel and time axis.

Files are opened with :class:`bioio.BioImage` (for TIFFs with the reader chosen here, so
plain TIFFs skip the OME reader); this module checks the path and its suffix against the
installed reader plugins, selects the scene, picks the channel (raising
:class:`ChannelChoiceError` when a multi-channel file needs a choice) and decides whether the
frames come from the T or the Z axis. :class:`_Resolved` holds what opening a movie yields.
bioio itself is imported inside the functions that need it because it pulls in xarray & co.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from h4tracks.core.io._validate import _short
from h4tracks.errors import InputError

if TYPE_CHECKING:
    import dask.array as da
    from bioio import BioImage

    from h4tracks.core.io._tiff import _TiffInfo

_TIFF_SUFFIXES = (".tif", ".tiff", ".lsm")
# Standard dims that this module knows how to resolve; anything else must have size 1.
_KNOWN_DIMS = "TCZYXS"
# bioio names channels "Channel:<scene>:<index>" when the file has no channel names.
_GENERATED_CHANNEL = re.compile(r"Channel:\d+:\d+")


# --------------------------------------------------------------------------------------
# opening through bioio: path, scene, channel and time axis
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
    # Local import: bioio is heavy (xarray & co.) and only needed once a file is opened.
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
    # Local imports: tifffile and the bioio plugins are heavy, needed for TIFFs only.
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
