"""Cell Tracking Challenge (CTC) layout: label movies + lineage tables on disk.

A tracking is a label movie whose values are track ids (0 = background) plus a lineage table
with one row ``(track_id, first_frame, last_frame, parent_track_id or 0)`` per track, the content
of a CTC ``res_track.txt`` / ``man_track.txt``. Two on-disk layouts are supported:

* result (``kind="res"``)::

      DIR/mask000.tif ... DIR/res_track.txt

* ground truth (``kind="gt"``)::

      DIR/<seq>_GT/TRA/man_track000.tif ... DIR/<seq>_GT/TRA/man_track.txt
      DIR/<seq>_GT/SEG/man_seg000.tif ...
      DIR/<seq>/t000.tif ...                 (only if an image is given)

Frame numbers have 3 digits, or 4 for movies longer than 1000 frames.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

# the checks of labels and lineage live in _ctc_checks (which never imports this module)
from h4tracks.core.io._ctc_checks import (
    _check_consistency,
    _check_labels,
    _check_lineage,
    _presence,
)
from h4tracks.core.outputs import atomic_folder
from h4tracks.errors import InputError

__all__ = ["ctc_mask_files", "export_ctc", "graph_to_ctc", "lineage_from_labels", "read_ctc",
           "write_ctc"]

_KINDS = ("res", "gt")
_RES_MASK = re.compile(r"^mask(\d+)\.tif$")
_TRA_MASK = re.compile(r"^man_track(\d+)\.tif$")
_SEG_MASK = re.compile(r"^man_seg(\d+)\.tif$")
_RAW = re.compile(r"^t(\d+)\.tif$")


def lineage_from_labels(labels: np.ndarray, parents: dict[int, int] | None = None) -> np.ndarray:
    """Build the CTC lineage table of a label movie whose values are track ids.

    Parameters
    ----------
    labels
        ``(T, Y, X)`` integer label movie; value = track id, 0 = background.
    parents
        Optional ``{child_track_id: parent_track_id}``. Parents must be tracks of the movie that
        end before the child starts.

    Returns
    -------
    numpy.ndarray
        ``(N, 4)`` int64 rows ``(track_id, first_frame, last_frame, parent_or_0)`` sorted by id.

    Raises
    ------
    InputError
        If ``labels`` is not a 3D non-negative integer array, a track is absent from a frame
        between its first and last frame (CTC tracks have no gaps), or ``parents`` names an
        unknown track or a parent that does not end before its child starts.
    """
    labels = _check_labels(labels)
    ids, first, last, n_frames = _presence(labels)
    gaps = n_frames != last - first + 1
    if gaps.any():
        k = int(np.flatnonzero(gaps)[0])
        tid = int(ids[k])
        present = [bool((labels[t] == tid).any()) for t in range(first[k], last[k] + 1)]
        missing = first[k] + present.index(False)
        raise InputError(
            f"Track {tid} is missing from frame {missing} although it appears in frames "
            f"{first[k]} and {last[k]}; CTC tracks must be continuous."
        )
    lineage = np.zeros((ids.size, 4), np.int64)
    lineage[:, 0], lineage[:, 1], lineage[:, 2] = ids, first, last
    if parents:
        index = {int(t): k for k, t in enumerate(ids.tolist())}
        for child, parent in sorted(parents.items()):
            child, parent = int(child), int(parent)
            if child not in index:
                raise InputError(f"parents names track {child}, which is not in the labels.")
            if parent == 0:
                continue
            if parent not in index:
                raise InputError(f"Track {child} has parent {parent}, which is not in the labels.")
            if lineage[index[parent], 2] >= lineage[index[child], 1]:
                raise InputError(
                    f"Track {child} starts in frame {lineage[index[child], 1]} but its parent "
                    f"{parent} only ends in frame {lineage[index[parent], 2]}."
                )
            lineage[index[child], 3] = parent
    return lineage


def write_ctc(
    directory: str | os.PathLike[str],
    labels: np.ndarray,
    lineage: np.ndarray,
    *,
    kind: str = "res",
    image: np.ndarray | None = None,
    sequence: str = "01",
) -> Path:
    """Write a tracking in the Cell Tracking Challenge layout.

    Parameters
    ----------
    directory
        Target folder, created if needed; refused inside an h4tracks project. The files are
        written to a hidden folder beside it that takes its place when complete, so a
        failure (full disk, Ctrl-C...) leaves the previous export as it was. Frame files of
        an earlier export are replaced, so that no stale frame survives; other files in the
        folder are kept.
    labels
        ``(T, Y, X)`` integer label movie, value = track id. Saved as uint16 if the largest id
        is below 65536, else uint32.
    lineage
        ``(N, 4)`` rows ``(track_id, first_frame, last_frame, parent_or_0)``; must match the
        labels exactly (each track present in every frame from first to last and nowhere else).
    kind
        ``"res"`` for a result folder (``mask000.tif``... + ``res_track.txt``) or ``"gt"`` for a
        ground-truth tree (``<seq>_GT/TRA``, ``<seq>_GT/SEG`` with every frame, and ``<seq>/``
        with the raw image if given).
    image
        Optional ``(T, Y, X)`` raw movie, written as ``<seq>/t000.tif``... (only for ``"gt"``).
    sequence
        Sequence name of the ground-truth tree, e.g. ``"01"``.

    Returns
    -------
    pathlib.Path
        The folder to hand to a CTC evaluator: ``directory`` for ``"res"``, ``directory /
        f"{sequence}_GT"`` for ``"gt"``.

    Raises
    ------
    InputError
        If an argument is invalid or the lineage does not match the labels (the message names
        the first bad track), or ``directory`` is inside a project.
    H4TracksError
        ``"cannot write PATH: REASON"`` if the files cannot be written.
    """
    if kind not in _KINDS:
        raise InputError(f"kind must be 'res' or 'gt', got {kind!r}.")
    labels = _check_labels(labels)
    lineage = _check_lineage(lineage, labels.shape[0])
    _check_consistency(labels, lineage)
    if image is not None:
        if kind != "gt":
            raise InputError("An image can only be written with kind='gt'.")
        image = np.asarray(image)
        if image.shape != labels.shape:
            raise InputError(
                f"image shape {image.shape} does not match labels shape {labels.shape}."
            )
    if not isinstance(sequence, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", sequence):
        raise InputError(f"sequence must be a simple name such as '01', got {sequence!r}.")

    root = Path(directory)
    n_t = labels.shape[0]
    digits = 3 if n_t <= 1000 else 4
    dtype = np.uint16 if labels.max(initial=0) < 65536 else np.uint32

    # Each folder is written beside its target and swapped in when complete (a failure
    # leaves the previous export); files that are not part of the export survive.
    if kind == "res":
        with atomic_folder(root, overwrite=True, parents=True,
                           keep=lambda n: not (_RES_MASK.match(n) or n == "res_track.txt")
                           ) as tmp:
            _write_frames(tmp, "mask", labels, dtype, digits)
            _write_track_file(tmp / "res_track.txt", lineage)
        return root
    gt = root / f"{sequence}_GT"
    with contextlib.ExitStack() as stack:
        tmp_gt = stack.enter_context(atomic_folder(
            gt, overwrite=True, parents=True, keep=lambda n: n not in ("TRA", "SEG")))
        _write_frames(tmp_gt / "TRA", "man_track", labels, dtype, digits)
        _write_track_file(tmp_gt / "TRA" / "man_track.txt", lineage)
        _write_frames(tmp_gt / "SEG", "man_seg", labels, dtype, digits)
        if image is not None:
            tmp_raw = stack.enter_context(atomic_folder(
                root / sequence, overwrite=True, parents=True,
                keep=lambda n: not _RAW.match(n)))
            _write_frames(tmp_raw, "t", image, image.dtype, digits)
    return gt


def read_ctc(directory: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a tracking stored in the Cell Tracking Challenge layout.

    Parameters
    ----------
    directory
        A result folder (``mask*.tif`` + ``res_track.txt``), a ``TRA`` folder
        (``man_track*.tif`` + ``man_track.txt``), a ``<seq>_GT`` folder, or a dataset root
        holding exactly one ``<seq>_GT`` folder.

    Returns
    -------
    labels : numpy.ndarray
        ``(T, Y, X)`` uint32 label movie.
    lineage : numpy.ndarray
        ``(N, 4)`` int64 rows ``(track_id, first_frame, last_frame, parent_or_0)``, sorted by id.

    Raises
    ------
    InputError
        If the folder holds no CTC tracking, a frame is missing or unreadable, the track file is
        malformed, or it does not match the masks.
    """
    folder, track_file, pattern = _locate(Path(directory))
    labels = _read_frames(folder, pattern)
    lineage = _read_track_file(track_file)
    try:
        lineage = _check_lineage(lineage, labels.shape[0])
        _check_consistency(labels, lineage)
    except InputError as err:
        raise InputError(f"{track_file}: {err}") from None
    return labels, lineage


# --------------------------------------------------------------------------------------------
# writing


def _write_frames(
    folder: Path,
    prefix: str,
    movie: np.ndarray,
    dtype: np.dtype | type,
    digits: int,
) -> None:
    """Write ``movie`` frame by frame into the new (temporary) ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(movie.shape[0]):
        tifffile.imwrite(folder / f"{prefix}{t:0{digits}d}.tif", movie[t].astype(dtype))


def _write_track_file(path: Path, lineage: np.ndarray) -> None:
    text = "".join(f"{i} {b} {e} {p}\n" for i, b, e, p in lineage.tolist())
    path.write_text(text, encoding="ascii")


# --------------------------------------------------------------------------------------------
# reading


def _locate(directory: Path) -> tuple[Path, Path, re.Pattern[str]]:
    """Find the mask folder, the track file and the mask name pattern of a CTC layout."""
    if not directory.is_dir():
        raise InputError(f"CTC folder {directory} does not exist.")
    if (directory / "res_track.txt").is_file():
        return directory, directory / "res_track.txt", _RES_MASK
    if (directory / "man_track.txt").is_file():
        return directory, directory / "man_track.txt", _TRA_MASK
    if (directory / "TRA" / "man_track.txt").is_file():
        return directory / "TRA", directory / "TRA" / "man_track.txt", _TRA_MASK
    gts = sorted(p for p in directory.glob("*_GT") if (p / "TRA" / "man_track.txt").is_file())
    if len(gts) == 1:
        return gts[0] / "TRA", gts[0] / "TRA" / "man_track.txt", _TRA_MASK
    if len(gts) > 1:
        names = ", ".join(p.name for p in gts)
        raise InputError(f"{directory} holds several sequences ({names}); pass one of them.")
    raise InputError(
        f"{directory} is not a CTC folder: found no res_track.txt, man_track.txt, "
        "TRA/man_track.txt or <seq>_GT/TRA/man_track.txt."
    )


def ctc_mask_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The mask frame files of the CTC tracking in ``directory`` (any folder :func:`read_ctc`
    takes), frame 0 first, without reading any pixel: what an import checks the raw frames
    of the sequence against before reading the whole tracking.

    Raises
    ------
    InputError
        If the folder holds no CTC tracking or a mask frame is missing (as :func:`read_ctc`).
    """
    folder, _track_file, pattern = _locate(Path(directory))
    return _mask_files(folder, pattern)


def _mask_files(folder: Path, pattern: re.Pattern[str]) -> list[Path]:
    found = {}
    for p in folder.iterdir():
        m = pattern.match(p.name)
        if m:
            found[int(m.group(1))] = p
    if not found:
        raise InputError(f"{folder} holds no mask frames.")
    n_t = max(found) + 1
    missing = sorted(set(range(n_t)) - set(found))
    if missing:
        raise InputError(
            f"{folder} is missing mask frame {missing[0]} ({len(missing)} of {n_t} missing)."
        )
    return [found[t] for t in range(n_t)]


def _read_frames(folder: Path, pattern: re.Pattern[str]) -> np.ndarray:
    found = _mask_files(folder, pattern)
    n_t = len(found)
    labels = None
    for t in range(n_t):
        try:
            frame = tifffile.imread(found[t])
        except Exception as err:  # tifffile raises many types for broken files
            raise InputError(f"Cannot read mask frame {found[t]}: {err}.") from err
        frame = np.squeeze(frame)
        if frame.ndim != 2 or frame.dtype.kind not in "iu":
            raise InputError(
                f"Mask frame {found[t]} is not a 2D integer image "
                f"(shape {frame.shape}, dtype {frame.dtype})."
            )
        if labels is None:
            labels = np.zeros((n_t, *frame.shape), np.uint32)
        elif frame.shape != labels.shape[1:]:
            raise InputError(
                f"Mask frame {found[t]} has shape {frame.shape} but the first frame has "
                f"{labels.shape[1:]}."
            )
        if frame.dtype.kind == "i" and frame.min() < 0:
            raise InputError(f"Mask frame {found[t]} contains negative labels.")
        labels[t] = frame
    assert labels is not None
    return labels


def _read_track_file(path: Path) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"Cannot read track file {path}: {err}.") from err
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            row = [int(f) for f in fields]
        except ValueError:
            row = []
        if len(row) != 4:
            raise InputError(
                f"{path} line {n} is not four integers 'id first last parent': {line.strip()!r}."
            )
        rows.append(row)
    return np.array(rows, np.int64).reshape(-1, 4)


def graph_to_ctc(graph: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """CTC track ids for the nodes of a :class:`~h4tracks.core.graph.TrackGraph`.

    CTC tracks are continuous in time and never branch, so a chain of our graph is cut where
    it skips frames (a gap-closing link) and where it divides: each piece becomes a CTC track
    whose parent is the piece before it. A gap thus becomes a parent with a single child,
    which is how the CTC format (and its evaluators) represent a cell missed in some frames.

    Returns
    -------
    (nodes, lineage)
        ``nodes``: columns ``t``, ``label`` (sorted by t, label) and ``ctc_id`` (1..N);
        ``lineage``: (N, 4) rows ``(ctc_id, first, last, parent_ctc_id or 0)``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    table = graph.node_table()
    t, lab = table["t"].astype(np.int64), table["label"].astype(np.int64)
    n = t.size
    if n == 0:
        return {"t": t, "label": lab, "ctc_id": np.zeros(0, np.int64)}, np.zeros((0, 4), np.int64)
    edges = graph.edge_array()
    key = t * (int(lab.max()) + 1) + lab  # sorted like the table
    width = int(lab.max()) + 1
    parent = np.searchsorted(key, edges[:, 0] * width + edges[:, 1])
    child = np.searchsorted(key, edges[:, 2] * width + edges[:, 3])
    out_degree = np.bincount(parent, minlength=n)
    keep = (out_degree[parent] == 1) & (edges[:, 2] == edges[:, 0] + 1)
    adj = coo_matrix((np.ones(int(keep.sum())), (parent[keep], child[keep])), shape=(n, n))
    _, comp = connected_components(adj, directed=True, connection="weak")
    # number pieces by first appearance (time, label) so ids are stable and readable
    first_node = np.full(comp.max() + 1, n, np.int64)
    np.minimum.at(first_node, comp, np.arange(n))
    rank = np.empty_like(first_node)
    rank[np.argsort(first_node)] = np.arange(1, first_node.size + 1)
    ctc = rank[comp]
    first = np.full(ctc.max() + 1, np.iinfo(np.int64).max, np.int64)
    last = np.full(ctc.max() + 1, -1, np.int64)
    np.minimum.at(first, ctc, t)
    np.maximum.at(last, ctc, t)
    par = np.zeros(ctc.max() + 1, np.int64)
    cut = ~keep
    par[ctc[child[cut]]] = ctc[parent[cut]]
    ids = np.arange(1, ctc.max() + 1)
    lineage = np.stack([ids, first[1:], last[1:], par[1:]], axis=1)
    return {"t": t, "label": lab, "ctc_id": ctc}, lineage


def export_ctc(project: Any, directory: str | os.PathLike[str],
               progress: Any = None) -> Path:
    """Write a project's tracks as a CTC result folder (``mask000.tif``… + ``res_track.txt``).

    Label images are relabelled by CTC track id (see :func:`graph_to_ctc`), one frame at a
    time from the project's labels; cells without a node (none after a graph sync) stay 0.
    """
    if project.labels is None:
        raise InputError("The project has no segmentation to export.")
    nodes, lineage = graph_to_ctc(project.graph)
    t_all, lab_all, ids = nodes["t"], nodes["label"], nodes["ctc_id"]
    bounds = np.searchsorted(t_all, np.arange(project.n_frames + 1))
    movie = np.zeros(project.shape, np.uint32)
    for frame_t in range(project.n_frames):
        s, e = bounds[frame_t], bounds[frame_t + 1]
        frame = np.asarray(project.labels.frame(frame_t))
        if e > s:
            labels_here, ids_here = lab_all[s:e], ids[s:e]
            pos = np.searchsorted(labels_here, frame).clip(max=e - s - 1)
            hit = (labels_here[pos] == frame) & (frame > 0)
            movie[frame_t] = np.where(hit, ids_here[pos], 0)
        if progress is not None:
            progress(frame_t + 1, project.n_frames)
    return write_ctc(directory, movie, lineage, kind="res")
