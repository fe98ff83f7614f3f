"""The h4tracks project file: one zarr (format 3) directory, lazy to open, atomic to save.

Layout (see ``docs/project-format.md``)::

    project.zarr/            group; attributes["h4tracks"] = {format_version, metadata, ...}
      image/                 (T, Y, X) original dtype, one chunk per frame (tiles if large)
      labels/                (T, Y, X) uint32 (optional)
      tracks/                lineage graph in GEFF (nodes: t, label, y, x, area, track_id)
      auto/labels, auto/tracks   the automatic-result snapshot (optional)

Saving never writes into the existing project. A new version is assembled in a hidden sibling
directory: files that did not change are hard-linked from the current version (no data copied,
so the cost is proportional to what changed), changed frames and the small graph/metadata are
written fresh, and finally the two directories are swapped in one atomic ``renameat2
(RENAME_EXCHANGE)`` call (Linux; elsewhere two renames with recovery on open). A crash or kill
at any point leaves either the complete previous version or the complete new one.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from h4tracks.core import lock as _lock
from h4tracks.core.graph import TrackGraph
from h4tracks.core.manifest import (
    ARRAYS,
    array_manifest,
    chunk_codecs,
    complete_array,
    damage_message,
    graph_manifest,
    quick_verify,
)
from h4tracks.core.project import AutoSnapshot, LabelMovie, Metadata, Project
from h4tracks.errors import H4TracksError, ProjectDamagedError, ProjectFormatError


class StaleProjectError(H4TracksError):
    """The project on disk changed since this copy was opened (a save would lose that)."""

FORMAT_VERSION = 2  # 2: chunks carry crc32c checksums, the root keeps a manifest
_ATTR = "h4tracks"
_TILE = 2048  # frames larger than this are chunked in tiles
_SAVING = ".saving-"
_ASIDE = ".previous-"

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------- format checks
def _root_attrs(path: Path) -> dict[str, Any] | None:
    meta = path / "zarr.json"
    try:
        doc = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("node_type") != "group":
        return None
    attributes = doc.get("attributes", {})
    attrs = attributes.get(_ATTR) if isinstance(attributes, dict) else None
    return attrs if isinstance(attrs, dict) else None


def is_project(path: str | Path) -> bool:
    """Whether ``path`` is an h4tracks project directory (cheap: reads one small file)."""
    path = Path(path)
    return path.is_dir() and _root_attrs(path) is not None


def _recover(path: Path) -> None:
    """Finish an interrupted two-rename swap (only used where RENAME_EXCHANGE is missing)."""
    if path.exists():
        return
    aside = sorted(path.parent.glob(f".{path.name}{_ASIDE}*"))
    if aside:
        os.replace(aside[-1], path)


# ---------------------------------------------------------------------- open (lazy)
def open_project(path: str | Path, *, verify: bool = True) -> Project:
    """Open a saved project without reading pixel data.

    Image and labels stay zarr arrays on disk; only the lineage graph (small) and the metadata
    are read into memory.

    Parameters
    ----------
    path
        The ``.zarr`` project directory.
    verify
        Compare the files with the project's manifest (a directory listing, no pixels read)
        and refuse a damaged project. ``h4tracks check --repair`` opens with ``False``.

    Raises
    ------
    ProjectFormatError
        If the path is missing, not a zarr group, not an h4tracks project, or from a newer
        format version.
    ProjectDamagedError
        If files are missing or unreadable (the message says to run ``h4tracks check``).
    """
    path = Path(path).expanduser().resolve()
    _recover(path)
    if not path.exists():
        raise ProjectFormatError(f"{path}: no such project")
    if not path.is_dir():
        raise ProjectFormatError(f"{path}: an h4tracks project is a .zarr directory, not a file")
    attrs = _root_attrs(path)
    if attrs is None:
        kind = "a zarr group" if (path / "zarr.json").exists() or (path / ".zgroup").exists() \
            else "a zarr store"
        raise ProjectFormatError(
            f"{path}: not an h4tracks project ({kind} without h4tracks metadata); "
            "use `h4tracks new` to import images"
        )
    version = attrs.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ProjectFormatError(
            f"{path}: project format version {version!r} is newer than this h4tracks "
            f"understands ({FORMAT_VERSION}); update h4tracks"
        )
    problems: list[str] = []
    graphs: dict[str, TrackGraph] = {}

    def graph_at(name: str, info: dict[str, Any]) -> TrackGraph:
        try:
            graphs[name] = _read_graph(path / name, info)
        except Exception as e:  # any unreadable graph is damage, reported once
            problems.append(f"the {name} graph cannot be read ({type(e).__name__})")
            return TrackGraph()
        return graphs[name]

    try:
        root = zarr.open_group(path, mode="r", zarr_format=3)
        image = root["image"]
        labels = root.get("labels")
        if labels is not None and "tracks" in root:
            graph = graph_at("tracks", attrs.get("tracks", {}))
        else:
            graph = TrackGraph()
        metadata = Metadata(**attrs.get("metadata", {}))
        auto = None
        if "auto" in root:
            auto_attrs = attrs.get("auto") or {}
            auto_labels = root["auto/labels"] if "labels" in root["auto"] else None
            auto = AutoSnapshot(
                auto_labels, graph_at("auto/tracks", auto_attrs.get("tracks", {})),
                auto_attrs.get("info", {}), store_path=path,
            )
    except (KeyError, ValueError, OSError, TypeError) as e:
        raise ProjectDamagedError(damage_message(path, [f"{type(e).__name__}: {e}"])) from e
    if verify:
        problems += quick_verify(path, attrs, graphs)
        if problems:
            raise ProjectDamagedError(damage_message(path, problems))
    movie = None if labels is None else LabelMovie(labels, store_path=path)
    try:
        project = Project(image, movie, graph=graph, metadata=metadata, auto=auto)
    except H4TracksError as e:
        raise ProjectDamagedError(damage_message(path, [str(e)])) from e
    project.path = path
    project.image_store_path = path
    project.generation = int(attrs.get("generation", 0))  # type: ignore[attr-defined]
    _remember_saved(project)
    return project


def project_generation(path: str | Path) -> int | None:
    """The generation number of the project saved at ``path`` (None if there is none)."""
    attrs = _root_attrs(Path(path))
    return None if attrs is None else int(attrs.get("generation", 0))


# ---------------------------------------------------------------------- graph <-> GEFF
def _node_ids(t: np.ndarray, label: np.ndarray) -> np.ndarray:
    # (t, label) packed into one int64 GEFF node id: t in the high 32 bits
    return (np.asarray(t, np.int64) << 32) | np.asarray(label, np.int64)


def _write_graph(graph: TrackGraph, path: Path) -> dict[str, Any]:
    from geff import GeffMetadata
    from geff._typing import PropDictNpArray
    from geff.core_io import write_arrays
    from geff_spec import Axis

    tab = graph.node_table()
    edges = graph.edge_array()
    ids = _node_ids(tab["t"], tab["label"])
    edge_ids = np.stack([_node_ids(edges[:, 0], edges[:, 1]), _node_ids(edges[:, 2], edges[:, 3])],
                        axis=1) if edges.size else np.empty((0, 2), np.int64)
    props = {k: PropDictNpArray(values=v, missing=None) for k, v in tab.items()}
    meta = GeffMetadata(
        directed=True,
        node_props_metadata={},
        edge_props_metadata={},
        axes=[
            Axis(name="t", type="time", unit="frame"),
            Axis(name="y", type="space", unit="pixel"),
            Axis(name="x", type="space", unit="pixel"),
        ],
        track_node_props={"tracklet": "track_id"},
    )
    write_arrays(str(path), ids, props, edge_ids, None, meta, zarr_format=3,
                 structure_validation=False)
    return {"next_track_id": graph.next_track_id, "revision": graph.revision}


def _read_graph(path: Path, info: dict[str, Any]) -> TrackGraph:
    from geff.core_io import read_to_memory

    if not path.exists():
        return TrackGraph()
    mem = read_to_memory(str(path), structure_validation=False)
    props = mem["node_props"]
    nodes = {k: np.asarray(props[k]["values"]) for k in ("t", "label", "y", "x", "area",
                                                          "track_id")}
    ids = np.asarray(mem["edge_ids"], np.int64).reshape(-1, 2)
    mask = np.int64(0xFFFFFFFF)
    edges = np.stack([ids[:, 0] >> 32, ids[:, 0] & mask, ids[:, 1] >> 32, ids[:, 1] & mask], 1)
    graph = TrackGraph.from_arrays(nodes, edges, next_track_id=info.get("next_track_id"))
    graph.revision = 0
    return graph


# ---------------------------------------------------------------------- save
def _chunks(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return (1, min(shape[1], _TILE), min(shape[2], _TILE))


def _link_tree(src: Path, dst: Path, skip: Callable[[str], bool] | None = None) -> None:
    """Recreate ``src`` under ``dst`` with hard links (copies where links are impossible),
    leaving out files whose path relative to ``src`` satisfies ``skip``."""
    for dirpath, _dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for f in filenames:
            if skip is not None and skip((rel / f).as_posix()):
                continue
            s, d = Path(dirpath) / f, dst / rel / f
            try:
                os.link(s, d)
            except OSError:  # other filesystem, or no hard links there (FAT, some shares)
                shutil.copy2(s, d)


def _frame_chunk_prefixes(frames: set[int]) -> Callable[[str], bool]:
    """Predicate matching the chunk files of the given frames (keys ``c.<t>.<ty>.<tx>``)."""
    prefixes = tuple(f"c.{t}." for t in frames)
    return lambda rel: rel.startswith(prefixes) if prefixes else False


def _write_movie(
    src: Any, dst: Path, dtype: np.dtype, *, progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None, frames: Any = None,
) -> None:
    """Stream a (T, Y, X) array frame by frame into a new zarr array at ``dst``."""
    shape = tuple(int(s) for s in src.shape)
    # "." separated chunk keys: one flat file per chunk, no directory per frame, which keeps
    # hard-linking and deleting a version cheap
    arr = zarr.create_array(dst, shape=shape, chunks=_chunks(shape), dtype=dtype,
                            fill_value=0, zarr_format=3,
                            chunk_key_encoding={"name": "default", "separator": "."},
                            **chunk_codecs())
    for t in range(shape[0]):
        if cancel is not None and cancel():
            raise H4TracksError("save cancelled; the project on disk is unchanged")
        frame = frames(t) if frames is not None else np.asarray(src[t])
        arr[t] = frame
        if progress is not None:
            progress(t + 1, shape[0])


def _save_labels(movie: LabelMovie, dst: Path, reuse: Path | None,
                 progress: Progress | None) -> None:
    """Write a label movie, reusing unchanged frames' chunk files from ``reuse``."""
    if reuse is not None and (reuse / "labels").is_dir():
        _link_tree(reuse / "labels", dst, _frame_chunk_prefixes(movie.dirty))
        # an edited frame that became empty is written too: a missing chunk means damage
        # (the array takes the setting when it is opened)
        with zarr.config.set({"array.write_empty_chunks": True}):
            arr = zarr.open_array(dst, mode="r+", zarr_format=3)
            for i, (t, frame) in enumerate(sorted(movie.edited_frames.items())):
                arr[t] = frame
                if progress is not None:
                    progress(i + 1, len(movie.edited_frames))
    else:
        _write_movie(movie, dst, np.dtype(np.uint32), progress=progress, frames=movie.frame)


def _same_dir(a: Path | None, b: Path | None) -> bool:
    return a is not None and b is not None and Path(a).absolute() == Path(b).absolute()


def _swap(new: Path, dest: Path) -> Path | None:
    """Put ``new`` at ``dest`` atomically; returns where the previous version went."""
    if not dest.exists():
        os.rename(new, dest)
        return None
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        fn = getattr(libc, "renameat2", None)
        if fn is not None:
            at_fdcwd, rename_exchange = -100, 2
            rc = fn(at_fdcwd, os.fsencode(new), at_fdcwd, os.fsencode(dest), rename_exchange)
            if rc == 0:
                return new  # `new` now holds the previous version
    aside = dest.parent / f".{dest.name}{_ASIDE}{uuid.uuid4().hex[:8]}"
    os.rename(dest, aside)
    os.rename(new, dest)
    return aside


def _remove_stale(dest: Path) -> None:
    for pattern in (f".{dest.name}{_SAVING}*", f".{dest.name}{_ASIDE}*"):
        for p in dest.parent.glob(pattern):
            shutil.rmtree(p, ignore_errors=True)


def _saved_state(project: Project) -> dict[str, Any]:
    g = project._graph
    return {
        "graph": (id(g), g.revision),
        "auto": None if project.auto is None else (id(project.auto), id(project.auto.graph),
                                                    project.auto.graph.revision),
        "metadata": project.metadata.model_dump_json(),
    }


def _remember_saved(project: Project) -> None:
    project._saved_state = _saved_state(project)  # type: ignore[attr-defined]


def is_saved(project: Project) -> bool:
    """Whether the project equals its saved version on disk."""
    if project.path is None or not _same_dir(project.image_store_path, project.path):
        return False
    labels = project.labels
    if labels is not None and (labels.dirty or not _same_dir(labels.store_path, project.path)):
        return False
    auto = project.auto
    if auto is not None and auto.labels is not None and (
        auto.labels.dirty or not _same_dir(auto.labels.store_path, project.path)
    ):
        return False
    return getattr(project, "_saved_state", None) == _saved_state(project)


def save_project(
    project: Project,
    path: str | Path | None = None,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a project atomically and incrementally.

    Parameters
    ----------
    project
        The project; afterwards it reads from the saved store and ``project.path`` is set.
    path
        Target ``.zarr`` directory (default: where the project was loaded from / last saved).
    progress
        ``progress(stage, done, total)`` called while frames are written.
    overwrite
        Allow replacing an existing *h4tracks project* that is not this project's own file.
        A path holding anything else is never replaced.

    Returns
    -------
    Path
        The saved project directory.
    """
    if path is None:
        if project.path is None:
            raise H4TracksError("this project has never been saved: choose a file name")
        path = project.path
    # resolve(): saving through a symlink must replace the target, not the link
    dest = Path(path).expanduser().resolve()
    if not dest.parent.is_dir():
        raise H4TracksError(f"folder {dest.parent} does not exist")
    reason = getattr(project, "read_only", None)
    if reason and _same_dir(dest, project.path):
        # refused before waiting for the lock: the other program may hold it for hours
        raise _lock.ReadOnlyError(
            f"{dest.name} was opened read-only ({reason}); save it under a new name to keep "
            "your changes"
        )
    # one writer at a time: the destination is locked for the whole save. The source of a
    # "save as" is not locked (another program may be writing it for hours, and the user
    # must still be able to keep their edits elsewhere): its generation is compared before
    # and after its files are linked instead, so a copy never mixes two of its versions.
    with _lock.path_lock(dest):
        return _save_locked(project, dest, progress=progress, overwrite=overwrite)


def _check_generation(project: Project, dest: Path) -> int:
    """The generation the new version gets; refuses to overwrite a newer version on disk."""
    attrs = _root_attrs(dest)
    on_disk = int(attrs.get("generation", 0)) if attrs is not None else 0
    mine = getattr(project, "generation", None)
    if attrs is not None and _same_dir(dest, project.path) and mine is not None \
            and on_disk != mine:
        by = attrs.get("saved_by") or {}
        who = f" by {by.get('command')} at {str(by.get('time', ''))[11:19]}" \
            if by.get("command") else ""
        raise StaleProjectError(
            f"{dest.name} was saved{who} after you opened it; your changes were not written "
            "(so that neither version is lost): save them under a new name, or reopen the "
            "project and redo them"
        )
    return max(on_disk, mine or 0) + 1


def _save_locked(
    project: Project, dest: Path, *, progress: Callable[[str, int, int], None] | None,
    overwrite: bool,
) -> Path:
    _recover(dest)
    if dest.exists():
        if not is_project(dest):
            raise H4TracksError(
                f"{dest} exists and is not an h4tracks project; refusing to replace it"
            )
        if not overwrite and not _same_dir(dest, project.path):
            raise H4TracksError(f"{dest} already exists (pass overwrite to replace it)")
    _lock.check_writable(dest)
    generation = _check_generation(project, dest)
    project.sync_graph()
    labels_now = project._graph.node_table()["label"]
    # keep the id high-water mark at least at the ids the labels hold (it only grows)
    project.note_labels_used(int(labels_now.max()) if labels_now.size else 0)
    src = project.path if project.path is not None and is_project(project.path) else None
    saved = getattr(project, "_saved_state", None) if src is not None else None
    src_attrs = _root_attrs(src) if src is not None else None
    src_manifest = (src_attrs or {}).get("manifest")
    src_generation = (src_attrs or {}).get("generation")
    # we hold the lock, so leftovers of earlier saves belong to writers that are gone
    _remove_stale(dest)
    tmp = dest.parent / f".{dest.name}{_SAVING}{uuid.uuid4().hex[:8]}"

    def stage(name: str) -> Progress | None:
        return None if progress is None else (lambda d, n: progress(name, d, n))

    try:
        tmp.mkdir()
        # image: never edited, so reuse the saved one whenever it is this project's own
        if src is not None and _same_dir(project.image_store_path, src):
            _link_tree(src / "image", tmp / "image")
        else:
            _write_movie(project.image, tmp / "image", project.dtype, progress=stage("image"))
        labels = project.labels
        if labels is not None:
            reuse = src if _same_dir(labels.store_path, src) else None
            _save_labels(labels, tmp / "labels", reuse, stage("labels"))
        from h4tracks import __version__

        attrs: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "kind": "h4tracks project",
            "metadata": json.loads(project.metadata.model_dump_json()),
            "written_by": f"h4tracks {__version__}",
            "generation": generation,
            "saved_by": {"command": _lock.command_name, "pid": os.getpid(),
                         "time": _now()},
        }
        manifest: dict[str, Any] = {}
        graph = project._graph
        if labels is not None:
            if saved is not None and saved["graph"] == (id(graph), graph.revision) and (
                src / "tracks"
            ).is_dir():
                _link_tree(src / "tracks", tmp / "tracks")
                attrs["tracks"] = {"next_track_id": graph.next_track_id}
            else:
                attrs["tracks"] = _write_graph(graph, tmp / "tracks")
            manifest["tracks"] = graph_manifest(graph)
        auto = project.auto
        if auto is not None:
            (tmp / "auto").mkdir()
            zarr.open_group(tmp / "auto", mode="w", zarr_format=3)
            auto_state = (id(auto), id(auto.graph), auto.graph.revision)
            if auto.labels is not None:
                # per-frame snapshot: only the frames a run replaced are written
                reuse = src / "auto" if src is not None and _same_dir(
                    auto.labels.store_path, src) else None
                _save_labels(auto.labels, tmp / "auto" / "labels", reuse, stage("snapshot"))
            if saved is not None and saved["auto"] == auto_state and _same_dir(
                auto.store_path, src
            ) and (src / "auto" / "tracks").is_dir():
                _link_tree(src / "auto" / "tracks", tmp / "auto" / "tracks")
            if not (tmp / "auto" / "tracks").is_dir():
                _write_graph(auto.graph, tmp / "auto" / "tracks")
            attrs["auto"] = {"info": auto.info,
                             "tracks": {"next_track_id": auto.graph.next_track_id}}
            manifest["auto/tracks"] = graph_manifest(auto.graph)
        for name in ARRAYS:
            if (tmp / name / "zarr.json").is_file():
                _complete(tmp / name, name, src, src_manifest)
                manifest[name] = array_manifest(tmp / name)
        attrs["manifest"] = manifest
        # the root metadata is written last: a directory without it is not a project
        root = zarr.open_group(tmp, mode="a", zarr_format=3)
        root.attrs[_ATTR] = attrs
        _fsync_dir(tmp)
        if src is not None and not _same_dir(src, dest) and \
                (_root_attrs(src) or {}).get("generation") != src_generation:
            raise H4TracksError(
                f"{src.name} was saved by another program while it was being copied to "
                f"{dest.name}; nothing was written — save again"
            )
        old = _swap(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        # removed before returning (no daemon thread a process exit could cut short); the
        # new version hard-links the unchanged files, so this only unlinks names
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(dest.parent)
    _reopen(project, dest)
    project.generation = generation  # type: ignore[attr-defined]
    project.read_only = None  # type: ignore[attr-defined]  # this copy is now the writer's
    return dest


def _now() -> str:
    import datetime as _dt

    return _dt.datetime.now().isoformat(timespec="seconds")


def _complete(array_dir: Path, name: str, src: Path | None, src_manifest: Any) -> None:
    """Make sure every chunk file of a new version's array exists.

    An array taken over from a version that had a manifest must be complete already: a gap
    means the saved project lost files, and saving over it would make the loss permanent.
    Arrays from projects saved before format 2 get their empty chunks written.
    """
    if isinstance(src_manifest, dict) and name in src_manifest:
        from h4tracks.core.manifest import missing_chunks

        missing = missing_chunks(array_dir)
        if missing:
            assert src is not None
            frames = sorted({c[0] for c in missing})
            raise ProjectDamagedError(damage_message(
                src, [f"{len(missing)} {name} chunk file(s) missing (frames {frames[:10]})"]))
    complete_array(array_dir)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _reopen(project: Project, dest: Path) -> None:
    """Point the in-memory project at the freshly saved store (drops in-memory copies)."""
    root = zarr.open_group(dest, mode="r", zarr_format=3)
    project._image = root["image"]
    project.image_store_path = dest
    if project.labels is not None:
        project.labels.mark_saved(root["labels"], dest)
    if project.auto is not None:
        if "labels" in root["auto"] and project.auto.labels is not None:
            project.auto.labels.mark_saved(root["auto/labels"], dest)
        project.auto.store_path = dest
    project.path = dest
    _remember_saved(project)
