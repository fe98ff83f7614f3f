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
at any point leaves either the complete previous version or the complete new one. The
arrays of the new version are written by :mod:`h4tracks.core.store_write`.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zarr

from h4tracks import __version__
from h4tracks.core import lock as _lock
from h4tracks.core.dirswap import (
    SAVING,
    fsync_dir,
    link_tree,
    recover,
    remove_stale,
    same_dir,
    swap,
)
from h4tracks.core.geff_io import read_geff_graph, write_geff_graph
from h4tracks.core.graph import TrackGraph
from h4tracks.core.manifest import (
    ARRAYS,
    array_manifest,
    complete_array,
    damage_message,
    graph_manifest,
    missing_chunks,
    quick_verify,
)
from h4tracks.core.project import AutoSnapshot, LabelMovie, Metadata, Project
from h4tracks.core.store_write import Progress, _save_labels, _write_movie
from h4tracks.core.store_write import write_frames as write_frames  # re-exported
from h4tracks.errors import H4TracksError, ProjectDamagedError, ProjectFormatError


class StaleProjectError(H4TracksError):
    """The project on disk changed since this copy was opened (a save would lose that)."""

FORMAT_VERSION = 2  # 2: chunks carry crc32c checksums, the root keeps a manifest
_ATTR = "h4tracks"


# ---------------------------------------------------------------------- format checks
def root_attrs(path: Path) -> dict[str, Any] | None:
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
    return path.is_dir() and root_attrs(path) is not None


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
    recover(path)
    if not path.exists():
        raise ProjectFormatError(f"{path}: no such project")
    if not path.is_dir():
        raise ProjectFormatError(f"{path}: an h4tracks project is a .zarr directory, not a file")
    attrs = root_attrs(path)
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
            graphs[name] = read_geff_graph(path / name, info)
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
            auto_labels = root["auto/labels"] if "labels" in _group(root["auto"]) else None
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
    # only a graph saved by a writer that said so is taken for the labels' measurement
    # (before, a napari Tracks layer's points could become the nodes)
    project.nodes_measured = labels is None or ("tracks" in graphs and bool(
        (attrs.get("tracks") or {}).get("nodes_measured")))
    project.path = path
    project.image_store_path = path
    project.generation = int(attrs.get("generation", 0))  # type: ignore[attr-defined]
    project.remember_saved()
    return project


def project_generation(path: str | Path) -> int | None:
    """The generation number of the project saved at ``path`` (None if there is none)."""
    attrs = root_attrs(Path(path))
    return None if attrs is None else int(attrs.get("generation", 0))


# ---------------------------------------------------------------------- save
def is_saved(project: Project) -> bool:
    """Whether the project equals its saved version on disk (see :meth:`Project.is_saved`)."""
    return project.is_saved()


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
    if reason and same_dir(dest, project.path):
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
    attrs = root_attrs(dest)
    on_disk = int(attrs.get("generation", 0)) if attrs is not None else 0
    mine = getattr(project, "generation", None)
    if attrs is not None and same_dir(dest, project.path) and mine is not None \
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
    recover(dest)
    if dest.exists():
        if not is_project(dest):
            raise H4TracksError(
                f"{dest} exists and is not an h4tracks project; refusing to replace it"
            )
        if not overwrite and not same_dir(dest, project.path):
            raise H4TracksError(f"{dest} already exists (pass overwrite to replace it)")
    _lock.check_writable(dest)
    generation = _check_generation(project, dest)
    project.sync_graph()
    labels_now = project._graph.node_table()["label"]
    # keep the id high-water mark at least at the ids the labels hold (it only grows)
    project.note_labels_used(int(labels_now.max()) if labels_now.size else 0)
    src = project.path if project.path is not None and is_project(project.path) else None
    saved = getattr(project, "_saved_state", None) if src is not None else None
    src_attrs = root_attrs(src) if src is not None else None
    src_manifest = (src_attrs or {}).get("manifest")
    src_generation = (src_attrs or {}).get("generation")
    # we hold the lock, so leftovers of earlier saves belong to writers that are gone
    remove_stale(dest)
    tmp = dest.parent / f".{dest.name}{SAVING}{uuid.uuid4().hex[:8]}"

    def stage(name: str) -> Progress | None:
        return None if progress is None else (lambda d, n: progress(name, d, n))

    try:
        tmp.mkdir()
        # image: never edited, so reuse the saved one whenever it is this project's own
        if src is not None and same_dir(project.image_store_path, src):
            link_tree(src / "image", tmp / "image")
        else:
            _write_movie(project.image, tmp / "image", project.dtype, progress=stage("image"))
        labels = project.labels
        if labels is not None:
            _save_labels(labels, tmp / "labels", src, stage("labels"))
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
            if src is not None and saved is not None and saved["graph"] == (
                    id(graph), graph.revision) and (
                src / "tracks"
            ).is_dir():
                link_tree(src / "tracks", tmp / "tracks")
                attrs["tracks"] = {"next_track_id": graph.next_track_id}
            else:
                attrs["tracks"] = write_geff_graph(graph, tmp / "tracks")
            attrs["tracks"]["nodes_measured"] = bool(project.nodes_measured)
            manifest["tracks"] = graph_manifest(graph)
        auto = project.auto
        if auto is not None:
            (tmp / "auto").mkdir()
            zarr.open_group(tmp / "auto", mode="w", zarr_format=3)
            auto_state = (id(auto), id(auto.graph), auto.graph.revision)
            if auto.labels is not None:
                # per-frame snapshot: only the frames a run replaced are written
                _save_labels(auto.labels, tmp / "auto" / "labels", src, stage("snapshot"),
                             twin=None if labels is None else (labels, tmp / "labels"))
            if src is not None and saved is not None and saved["auto"] == auto_state and same_dir(
                auto.store_path, src
            ) and (src / "auto" / "tracks").is_dir():
                link_tree(src / "auto" / "tracks", tmp / "auto" / "tracks")
            if not (tmp / "auto" / "tracks").is_dir():
                if (tmp / "tracks").is_dir() and _same_lineage(auto.graph, graph):
                    # a first run's snapshot is the lineage itself: the same GEFF bytes
                    link_tree(tmp / "tracks", tmp / "auto" / "tracks")
                else:
                    write_geff_graph(auto.graph, tmp / "auto" / "tracks")
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
        fsync_dir(tmp)
        if src is not None and not same_dir(src, dest) and \
                (root_attrs(src) or {}).get("generation") != src_generation:
            raise H4TracksError(
                f"{src.name} was saved by another program while it was being copied to "
                f"{dest.name}; nothing was written — save again"
            )
        old = swap(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # the new version is in place: from here on this copy is its writer's, even if what
    # follows is interrupted (a later save must not be refused as stale)
    project.generation = generation  # type: ignore[attr-defined]
    project.read_only = None  # type: ignore[attr-defined]
    if old is not None:
        # removed before returning (no daemon thread a process exit could cut short); the
        # new version hard-links the unchanged files, so this only unlinks names
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(dest.parent)
    _reopen(project, dest)
    return dest


def _same_lineage(a: TrackGraph, b: TrackGraph) -> bool:
    """Whether two graphs hold the same nodes (with track ids) and edges, i.e. would be
    written as the same GEFF files (counts first: most differing graphs stop there)."""
    return a is b or (len(a) == len(b) and a.n_edges == b.n_edges and a == b)


def _group(node: Any) -> zarr.Group:
    """``node`` as a zarr group (a project's ``auto`` is always one)."""
    if not isinstance(node, zarr.Group):
        raise ProjectDamagedError(f"expected a zarr group, found {type(node).__name__}")
    return node


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

        missing = missing_chunks(array_dir)
        if missing:
            assert src is not None
            frames = sorted({c[0] for c in missing})
            raise ProjectDamagedError(damage_message(
                src, [f"{len(missing)} {name} chunk file(s) missing (frames {frames[:10]})"]))
    complete_array(array_dir)


def _reopen(project: Project, dest: Path) -> None:
    """Point the in-memory project at the freshly saved store (drops in-memory copies)."""
    root = zarr.open_group(dest, mode="r", zarr_format=3)
    project._image = root["image"]
    project.image_store_path = dest
    if project.labels is not None:
        project.labels.mark_saved(root["labels"], dest)
    if project.auto is not None:
        if "labels" in _group(root["auto"]) and project.auto.labels is not None:
            project.auto.labels.mark_saved(root["auto/labels"], dest)
        project.auto.store_path = dest
    project.path = dest
    project.remember_saved()
