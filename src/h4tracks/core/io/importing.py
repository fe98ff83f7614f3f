"""Create projects from files: an image (TIFF, OME-TIFF, anything an installed bioio reader
opens) with optional labels, a Cell Tracking Challenge tracking, or a GEFF tracking graph with
its labels. :func:`create_project` is the one way a new project reaches the disk, for
``h4tracks new`` and the Data tab's import buttons alike."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import zarr
from geff.core_io import read_to_memory

from h4tracks.core.graph import TrackGraph
from h4tracks.core.graph_convert import GraphError
from h4tracks.core.io.ctc import ctc_mask_files, read_ctc
from h4tracks.core.io.readers import read_image, read_labels
from h4tracks.core.measure import measure_movie
from h4tracks.core.project import Project
from h4tracks.core.store import save_project
from h4tracks.errors import InputError


def import_project(
    image_path: str | Path,
    labels_path: str | Path | None = None,
    *,
    channel: int | str | None = None,
    time_axis: str = "auto",
    pixel_size: float | None = None,
    frame_interval: float | None = None,
    time_unit: str | None = None,
) -> Project:
    """Build an (unsaved) project from an image file and an optional label movie.

    Pixel data stays lazy (dask) until the project is saved, when it is streamed frame by
    frame into the project store. Label frames are validated as they are read.

    Parameters
    ----------
    image_path, labels_path
        Movie files; the label movie must have the image's (T, Y, X) shape.
    channel, time_axis
        Passed to :func:`h4tracks.core.io.readers.read_image`.
    pixel_size, frame_interval, time_unit
        Override what the file's metadata says (µm; time between frames in ``time_unit``).

    Raises
    ------
    h4tracks.errors.InputError
        On any unreadable or unsuitable input; nothing is written.
    """
    movie = read_image(image_path, channel=channel, time_axis=time_axis)
    meta: dict[str, Any] = {
        "name": Path(image_path).stem,
        "source": movie.source,
        "channel": movie.channel,
        "pixel_size": pixel_size if pixel_size is not None else movie.pixel_size,
        "frame_interval": frame_interval if frame_interval is not None
        else movie.frame_interval,
        "time_unit": time_unit or "s",
    }
    labels = None
    if labels_path is not None:
        # validated lazily, frame by frame, as the project measures and saves them
        labels = read_labels(labels_path, time_axis=time_axis, expected_shape=movie.data.shape)
    project = project_from_movie(movie, labels, labels_path=labels_path, **meta)
    if labels is not None and labels_path is not None:
        # an imported result is an automatic result too: keep it to score curation against
        project.take_auto_snapshot(step="import", labels=str(Path(labels_path).absolute()))
    return project


def project_from_movie(movie: Any, labels: Any = None, *, labels_path: str | Path | None = None,
                       **metadata: Any) -> Project:
    """A new project from a movie read by :func:`h4tracks.core.io.readers.read_image`, with its
    ``import`` provenance (the one place that builds a project from a file, for the CLI and
    the plugin alike)."""
    meta: dict[str, Any] = {
        "source": movie.source, "channel": movie.channel, "pixel_size": movie.pixel_size,
        "frame_interval": movie.frame_interval,
    }
    meta.update({k: v for k, v in metadata.items() if v is not None})
    project = Project(movie.data, labels, metadata=meta)
    notes = list(getattr(movie, "notes", []) or [])
    project.add_provenance("import", image=str(movie.source), labels=None if labels_path is None
                           else str(Path(labels_path).absolute()), channel=movie.channel,
                           dims=movie.dims, notes=notes)
    return project


class CTCImageNeeded(InputError):
    """A CTC tracking has no raw frames beside it that fit its masks: the image has to be
    given (the Data tab asks for it and tries again)."""


def import_ctc(
    ctc_dir: str | Path,
    image_path: str | Path | None = None,
    *,
    channel: int | str | None = None,
    time_axis: str = "auto",
    pixel_size: float | None = None,
    frame_interval: float | None = None,
    time_unit: str | None = None,
) -> Project:
    """A project from a Cell Tracking Challenge tracking: labels and lineage from ``ctc_dir``
    (a result folder, a ``<seq>_GT`` / ``TRA`` folder or a dataset root), the image from
    ``image_path`` (a movie file, or a folder of CTC raw frames ``t000.tif``...) or else from
    the CTC raw frames of the sequence beside it (``<seq>/t000.tif``...).

    Raw frames are only taken when they fit the masks: the same frame numbers (t000 ... for
    mask000 / man_track000 ...) and the same frame size.

    The lineage becomes the project's graph (divisions included) and, like any imported
    result, its automatic snapshot (to score curation against).

    Raises
    ------
    CTCImageNeeded
        If no image is given and no raw frames that fit are found beside the tracking.
    h4tracks.errors.InputError
        If the tracking is unreadable or the image's shape differs from the labels'; nothing
        is written.
    """
    labels, lineage = read_ctc(ctc_dir)
    if image_path is not None and not Path(image_path).is_dir():
        movie = read_image(image_path, channel=channel, time_axis=time_axis)
        if tuple(movie.data.shape) != labels.shape:
            raise InputError(f"The image {image_path} is {tuple(movie.data.shape)} but the CTC "
                             f"labels in {ctc_dir} are {labels.shape}.")
        project = project_from_movie(
            movie, labels, labels_path=ctc_dir, name=Path(image_path).stem,
            pixel_size=pixel_size, frame_interval=frame_interval, time_unit=time_unit or "s")
    else:
        if image_path is None:
            frames = _ctc_raw_frames(Path(ctc_dir), labels.shape)
        else:
            found, reason = _raw_frames_in(Path(image_path), labels.shape)
            if found is None:
                raise InputError(f"{image_path} does not hold the raw frames of the CTC "
                                 f"tracking in {ctc_dir}: {reason}.")
            frames = found
        image = _read_raw_frames(frames, labels.shape)
        meta = {k: v for k, v in {"pixel_size": pixel_size, "frame_interval": frame_interval,
                                  "time_unit": time_unit}.items() if v is not None}
        folder = frames[0].parent
        # a CTC sequence folder is "01", "02": name the project after its dataset as well
        name = f"{folder.parent.name} {folder.name}" if folder.name.isdigit() else folder.name
        project = Project(image, labels, metadata={"name": name,
                                                   "source": str(frames[0].parent), **meta})
        project.add_provenance("import", image=str(frames[0].parent.absolute()),
                               labels=str(Path(ctc_dir).absolute()), channel=None,
                               dims="TYX", notes=["Cell Tracking Challenge layout"])
    project.graph = TrackGraph.from_ctc(labels, lineage)
    project.nodes_measured = True  # from_ctc measures every cell of the labels
    project.take_auto_snapshot(step="import", labels=str(Path(ctc_dir).absolute()))
    return project


_TIME_UNITS = {"millisecond": "ms", "second": "s", "minute": "min", "hour": "h"}


def import_geff(
    geff_path: str | Path,
    image_path: str | Path,
    *,
    channel: int | str | None = None,
    time_axis: str = "auto",
    pixel_size: float | None = None,
    frame_interval: float | None = None,
    time_unit: str | None = None,
) -> Project:
    """A project from an image and a GEFF tracking graph with its segmentation: the GEFF
    group (or a zarr holding it as ``tracks/``, as ``h4tracks export --format geff`` writes)
    must declare a related ``labels`` object and the node property that holds each node's
    value in it (``node_prop``, e.g. ``seg_id``); nodes are placed by their time axis.

    The calibration comes from the axes' ``scale`` (micrometer per pixel, time per frame)
    unless given. The graph becomes the project's graph and its automatic snapshot.

    Raises
    ------
    h4tracks.errors.InputError
        If the GEFF cannot be read, has no related labels, or does not match the image.
    """
    group = Path(geff_path)
    if (group / "tracks").is_dir() and not (group / "nodes").is_dir():
        group = group / "tracks"
    try:
        mem = read_to_memory(str(group))
    except Exception as e:  # the geff library raises many kinds; one sentence for the user
        raise InputError(f"{geff_path} is not a readable GEFF graph ({_first_line(e)})."
                         ) from None
    meta = mem["metadata"]
    time_axes = [a.name for a in meta.axes or [] if a.type == "time"]
    if not time_axes:
        raise InputError(f"{geff_path} declares no time axis (GEFF metadata 'axes' with a "
                         "'time' entry): h4tracks needs it to put each cell in its frame.")
    rel = [r for r in (meta.related_objects or []) if r.type == "labels"]
    prop = rel[0].node_prop or rel[0].label_prop if rel else None
    if not rel or not prop:
        raise InputError(f"{geff_path} declares no segmentation (a related 'labels' object "
                         "with the node property of each node's label value): h4tracks needs "
                         "the labels to place the cells.")
    time_name = time_axes[0]
    props = mem["node_props"]
    if time_name not in props or prop not in props:
        raise InputError(f"{geff_path} has no node property {time_name!r} or {prop!r}.")
    try:
        labels = np.asarray(zarr.open_array(str((group / rel[0].path).resolve()), mode="r")[:])
    except Exception as e:
        raise InputError(f"The labels of {geff_path} ({rel[0].path}) cannot be read ({e}).") \
            from None
    movie = read_image(image_path, channel=channel, time_axis=time_axis)
    if tuple(movie.data.shape) != labels.shape:
        raise InputError(f"The image {image_path} is {tuple(movie.data.shape)} but the labels "
                         f"of {geff_path} are {labels.shape}.")
    t = np.asarray(props[time_name]["values"], np.int64)
    seg = np.asarray(props[prop]["values"], np.int64)
    ids = np.asarray(mem["node_ids"], np.int64)
    order = np.argsort(ids)
    ends = np.asarray(mem["edge_ids"], np.int64).reshape(-1, 2)
    unknown = ~np.isin(ends, ids).all(axis=1)
    if unknown.any():  # searchsorted below would pair such an edge with a wrong node
        src, dst = (int(v) for v in ends[np.flatnonzero(unknown)[0]])
        raise InputError(f"{int(unknown.sum())} link(s) of {geff_path} lead to nodes it does "
                         f"not list, e.g. {src} -> {dst}.")
    a, b = (order[np.searchsorted(ids[order], ends[:, k])] for k in (0, 1))
    edges = np.column_stack([t[a], seg[a], t[b], seg[b]])
    axes = {ax.name: ax for ax in meta.axes or []}
    space = [axes[n] for n in axes if axes[n].type == "space"]
    if pixel_size is None and space and space[0].scale and space[0].scaled_unit == "micrometer":
        pixel_size = float(space[0].scale)
    tax = axes.get(time_name)
    if frame_interval is None and tax is not None and tax.scale and \
            tax.scaled_unit in _TIME_UNITS:
        frame_interval, time_unit = float(tax.scale), time_unit or _TIME_UNITS[tax.scaled_unit]
    project = project_from_movie(
        movie, labels, labels_path=geff_path, name=Path(image_path).stem,
        pixel_size=pixel_size, frame_interval=frame_interval, time_unit=time_unit or "s")
    nodes = measure_movie(labels)
    missing = ~np.isin((t << 32) | seg, (nodes["t"] << 32) | nodes["label"])
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise InputError(f"{int(missing.sum())} node(s) of {geff_path} have no cell in its "
                         f"labels, e.g. value {seg[i]} in frame {t[i]}.")
    try:
        project.graph = TrackGraph.from_arrays(nodes, edges)
    except GraphError as e:
        raise InputError(f"The links of {geff_path} do not form a lineage: {e}.") from None
    project.nodes_measured = True  # the nodes are measure_movie's cells
    project.take_auto_snapshot(step="import", labels=str(Path(geff_path).absolute()))
    return project


def create_project(
    output: str | Path,
    image: str | Path | None = None,
    *,
    labels: str | Path | None = None,
    ctc: str | Path | None = None,
    tracks: str | Path | None = None,
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    **options: Any,
) -> tuple[Path, Project]:
    """Make a new project from files and save it at ``output``: what ``h4tracks new`` does,
    and the Data tab's import buttons (so both check the same things and write the same
    project).

    Parameters
    ----------
    output
        The ``.zarr`` folder to create.
    image
        The movie; optional with ``ctc`` (then the raw frames beside the CTC folder), where
        it may also be a folder of CTC raw frames.
    labels, ctc, tracks
        At most one: a label movie, a Cell Tracking Challenge tracking folder
        (:func:`import_ctc`) or a GEFF tracking with its labels (:func:`import_geff`).
    overwrite
        Replace an existing h4tracks project at ``output``.
    progress
        ``progress(stage, done, total)`` while the frames are written.
    **options
        ``channel``, ``time_axis``, ``pixel_size``, ``frame_interval``, ``time_unit``.

    Returns
    -------
    (path, project)
        The saved project's folder and the project (reading from it).

    Raises
    ------
    h4tracks.errors.InputError
        On unsuitable inputs, before anything is written.
    """
    if sum(x is not None for x in (labels, ctc, tracks)) > 1:
        raise InputError("Give one of a label movie, a CTC folder and a GEFF tracking (a "
                         "tracking has its labels).")
    if ctc is not None:
        project = import_ctc(ctc, image, **options)
    elif tracks is not None:
        if image is None:
            raise InputError("A GEFF tracking needs the image to import as well.")
        project = import_geff(tracks, image, **options)
    elif image is None:
        raise InputError("Give the image to import (or a CTC folder).")
    else:
        project = import_project(image, labels, **options)
    return save_project(project, output, overwrite=overwrite, progress=progress), project


def _ctc_sequences(ctc_dir: Path) -> list[Path]:
    """Where the raw frames of the sequence a CTC folder belongs to would be."""
    d = ctc_dir.absolute()
    seqs: list[Path] = []
    for folder in (d, d.parent, d.parent.parent):
        for suffix in ("_GT", "_RES"):
            if folder.name.endswith(suffix):
                seqs.append(folder.parent / folder.name[: -len(suffix)])
    seqs += [p.parent / p.name[:-3] for p in sorted(d.glob("*_GT"))]
    return seqs


_RAW_FRAME = re.compile(r"^t(\d+)\.tif$")


def _frame_shape(path: Path) -> tuple[int, ...] | None:
    """The (squeezed) shape of a TIFF frame from its header, or None if it cannot be read."""
    try:
        with tifffile.TiffFile(path) as tif:
            shape = tif.series[0].shape
    except Exception:  # tifffile raises many kinds for what is not a TIFF
        return None
    return tuple(int(n) for n in shape if n != 1)


def _raw_frames_in(folder: Path, shape: tuple[int, ...]) -> tuple[list[Path] | None, str]:
    """The CTC raw frames ``t000.tif``... in ``folder`` if they fit masks of ``shape`` (T, Y,
    X): frames 0 to T-1 exactly, the first of the masks' frame size (read from its header).
    Else None and why not."""
    n = shape[0]
    found: dict[int, Path] = {}
    if folder.is_dir():
        for p in folder.iterdir():
            m = _RAW_FRAME.match(p.name)
            if m:
                found[int(m.group(1))] = p
    if not found:
        return None, "it has no raw frames t000.tif..."
    if sorted(found) != list(range(n)):
        return None, (f"it has {len(found)} frames numbered {min(found)} to {max(found)}, "
                      f"the tracking {n} frames numbered 0 to {n - 1}")
    first = _frame_shape(found[0])
    if first != tuple(shape[1:]):
        size = "unreadable" if first is None else f"{first} pixels"
        return None, f"its frame {found[0].name} is {size}, the masks {tuple(shape[1:])}"
    return [found[t] for t in range(n)], ""


def _read_raw_frames(frames: list[Path], shape: tuple[int, ...]) -> np.ndarray:
    """The raw frames as one (T, Y, X) movie, each frame checked."""
    image: np.ndarray | None = None
    for t, path in enumerate(frames):
        try:
            frame = np.squeeze(tifffile.imread(path))
        except Exception as e:  # tifffile raises many kinds for a damaged file
            raise InputError(f"Cannot read the raw frame {path} ({_first_line(e)}).") from None
        if frame.shape != tuple(shape[1:]):
            raise InputError(f"The raw frame {path} is {frame.shape} but the CTC masks are "
                             f"{tuple(shape[1:])}.")
        if image is None:
            image = np.empty(shape, frame.dtype)
        elif frame.dtype != image.dtype:
            raise InputError(f"The raw frame {path} is {frame.dtype} but {frames[0].name} is "
                             f"{image.dtype}.")
        image[t] = frame
    assert image is not None
    return image


def _mask_shape(ctc_dir: str | Path) -> tuple[int, ...] | None:
    """(T, Y, X) of a CTC tracking from its file names and first mask's header (no pixels
    read), or None if the first mask cannot be read (the import says why)."""
    masks = ctc_mask_files(ctc_dir)
    first = _frame_shape(masks[0])
    return None if first is None else (len(masks), *first)


def ctc_raw_frames_folder(ctc_dir: str | Path) -> Path | None:
    """The folder of raw frames (``t000.tif``...) that :func:`import_ctc` would take the image
    from when given none, or None: then the image has to be given (the Data tab asks for it).

    A folder counts only when its frames fit the masks: the same frame numbers and the same
    frame size (read from the file headers, not the pixels).

    Raises
    ------
    h4tracks.errors.InputError
        If ``ctc_dir`` holds no CTC tracking or a mask frame is missing.
    """
    shape = _mask_shape(ctc_dir)
    if shape is None:
        return None
    for seq in _ctc_sequences(Path(ctc_dir)):
        frames, _ = _raw_frames_in(seq, shape)
        if frames is not None:
            return seq
    return None


def ctc_image_source(picked: str | Path, ctc_dir: str | Path) -> Path:
    """What to import as the image of the CTC tracking in ``ctc_dir`` when the user picked
    the file ``picked``: the folder of raw frames when it is one of them (``t000.tif`` of a
    sequence whose frames fit the masks), else ``picked`` itself (a movie file)."""
    path = Path(picked)
    if not _RAW_FRAME.match(path.name):
        return path
    try:
        shape = _mask_shape(ctc_dir)
    except InputError:
        return path
    if shape is not None and _raw_frames_in(path.parent, shape)[0] is not None:
        return path.parent
    return path


def _ctc_raw_frames(ctc_dir: Path, shape: tuple[int, ...]) -> list[Path]:
    """The raw frames ``t000.tif``... of the sequence a CTC folder belongs to."""
    reasons = []
    for seq in _ctc_sequences(ctc_dir):
        frames, reason = _raw_frames_in(seq, shape)
        if frames is not None:
            return frames
        if seq.is_dir():
            reasons.append(f" ({seq.name}: {reason})")
    raise CTCImageNeeded(f"Found no image for the CTC tracking in {ctc_dir} (looked for "
                         f"{shape[0]} frames t000.tif... of {shape[1:]} in the sequence folder "
                         f"beside it{reasons[0] if reasons else ''}); give the image as well "
                         "(a movie file or the folder of its raw frames).")


def ctc_project_path(ctc_dir: str | Path) -> Path:
    """Where to suggest creating the project of the CTC tracking in ``ctc_dir``: beside the
    sequence, outside the CTC folders, named after the sequence and the tracking, e.g.
    ``<dataset>/01_GT.zarr`` for ``01_GT``, its ``TRA`` folder or a dataset root holding it,
    ``<dataset>/01_RES.zarr`` for a result folder ``01_RES`` (``<parent>/NAME.zarr`` for
    another result folder); ``NAME-2.zarr``... when that exists."""
    d = Path(ctc_dir).absolute()
    try:
        folder = ctc_mask_files(d)[0].parent
    except InputError:
        folder = d
    if folder.name == "TRA":
        gt = folder.parent
        if not gt.name.endswith("_GT"):  # a TRA folder outside the CTC layout
            gt = gt.with_name(f"{gt.name}_TRA")
        folder = gt
    name = folder.name or "project"
    path = folder.with_name(f"{name}.zarr")
    k = 2
    while path.exists():
        path = folder.with_name(f"{name}-{k}.zarr")
        k += 1
    return path


def _first_line(e: BaseException) -> str:
    """The first line of an exception's text (pydantic and the geff validators write
    several)."""
    text = str(e).strip()
    return text.splitlines()[0].rstrip(":") if text else type(e).__name__
