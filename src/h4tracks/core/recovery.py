"""Crash recovery: a copy of the unsaved work kept beside the project, offered on the next open.

The session writes a copy every minute or so while the project has unsaved changes
(:func:`write_recovery`) and removes it after a save (:func:`discard_recovery`). After a crash
the next open reads it (:func:`read_recovery`), checks it was made for this saved version
(:meth:`Recovery.matches`) and applies it as one undoable step (:meth:`Recovery.step`).
Only what differs from the saved project is written, so a copy costs about as much as the
edits, not the movie; it is assembled in a hidden sibling folder and swapped in atomically
(as a save is), so a crash while writing leaves the previous copy intact. Layout::

    .<name>.zarr.recovery/
      manifest.json     format, h4tracks version, time, project path, shape, saved identity
      metadata.json     the project's metadata (provenance, curated frames, max_label, ...)
      labels.npz        edited label frames: "t" + one zstd blob per frame ("f<t>")
      graph.npz         the whole lineage: node columns, "edges", "next_track_id"
      auto_labels.npz   the automatic snapshot's frames, likewise (when there is a snapshot)
      auto_graph.npz    the snapshot's lineage
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numcodecs import Zstd

from h4tracks import __version__
from h4tracks.core.actions import Action
from h4tracks.core.dirswap import ASIDE, fsync_dir, recover, same_dir, siblings, swap
from h4tracks.core.graph import TrackGraph
from h4tracks.core.project import AutoSnapshot, LabelMovie, Metadata, Project, jsonable
from h4tracks.core.runs import _put, _resync, _State
from h4tracks.core.stash import FrameStash
from h4tracks.errors import H4TracksError

__all__ = ["Recovery", "discard_recovery", "read_recovery", "recovery_path", "saved_identity",
           "unsaved_recovery_dir", "write_recovery"]

FORMAT = 1
_MANIFEST = "manifest.json"
_FILES = frozenset({_MANIFEST, "metadata.json", "labels.npz", "graph.npz",
                    "auto_labels.npz", "auto_graph.npz"})
_WRITING = ".writing-"
# level 1: label images compress ~100x at over 1 GB/s, so 20 edited 1024² frames take ~40 ms
# (deflate, as in np.savez_compressed, takes ~0.8 s for the same frames)
_ZSTD = Zstd(level=1)


def recovery_path(project_path: str | Path) -> Path:
    """The hidden recovery folder of a saved project: ``.<name>.zarr.recovery`` beside it."""
    p = Path(project_path).expanduser().resolve()  # as the store resolves it
    return p.parent / f".{p.name}.recovery"


def unsaved_recovery_dir() -> Path:
    """Folder for copies of projects never saved (one sub-folder each): a user cache folder,
    not the temporary one, as it must survive a crash and a reboot."""
    try:
        import platformdirs
    except ImportError:
        return Path.home() / ".cache" / "h4tracks" / "recovery"
    return Path(platformdirs.user_cache_dir("h4tracks")) / "recovery"


def saved_identity(project_path: str | Path | None) -> dict[str, int] | None:
    """What identifies one saved version of a project (None when never saved): every save
    writes a new root ``zarr.json`` (new inode and mtime), so a copy made before the project
    was saved again is recognised as stale."""
    if project_path is None:
        return None
    try:
        st = (Path(project_path) / "zarr.json").stat()
    except OSError:
        return None
    return {"mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "size": st.st_size}


# ---------------------------------------------------------------------- write
def _write(path: Path, data: bytes | Iterable[tuple[str, np.ndarray]]) -> None:
    """Write bytes, or an uncompressed .npz entry by entry (frames come compressed), so a long
    movie is never held in memory at once; fsynced so the copy survives a power cut."""
    with open(path, "wb") as fh:
        if isinstance(data, bytes):
            fh.write(data)
        else:
            with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for name, arr in data:
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                        np.lib.format.write_array(f, np.asarray(arr), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


def _frame_items(movie: LabelMovie, ts: list[int]) -> Iterator[tuple[str, np.ndarray]]:
    yield "t", np.asarray(ts, np.int64)
    for t in ts:
        raw = _ZSTD.encode(np.ascontiguousarray(movie.frame(t), np.uint32))
        yield f"f{t}", np.frombuffer(raw, np.uint8)


def _graph_items(g: TrackGraph) -> Iterator[tuple[str, np.ndarray]]:
    yield from g.node_table().items()
    yield "edges", g.edge_array()
    yield "next_track_id", np.asarray(g.next_track_id, np.int64)


def _synced_graph(project: Project) -> tuple[TrackGraph, int]:
    """The lineage with edited frames re-measured, without touching the project (reading
    ``project.graph`` re-measures in place: between a napari stroke and
    :meth:`Session.paint_step` that would lose the links of the cells the stroke erased)."""
    g, stale = project._graph, project._stale
    if not stale or project.labels is None:
        return g, 0
    g = g.copy()
    return g, _resync(g, project.labels, stale)


def _is_recovery(path: Path) -> bool:
    return path.is_dir() and all(p.name in _FILES for p in path.iterdir())


def write_recovery(project: Project, dest: str | Path) -> Path:
    """Write what differs from the saved project into the recovery folder ``dest``: label
    frames edited since the save, the whole lineage, the snapshot likewise, the metadata.

    The project is not changed (nothing saved or synced). Of a project never saved every
    label frame is written, not the image (re-import ``metadata.source``, then recover).

    Returns
    -------
    Path
        ``dest``, replaced atomically: a crash while writing leaves the previous copy.
    """
    dest = Path(dest).expanduser()
    dest.parent.mkdir(parents=True, exist_ok=True)
    recover(dest)
    if dest.exists() and not _is_recovery(dest):
        raise H4TracksError(f"{dest} exists and is not a recovery copy; refusing to replace it")
    for p in siblings(dest, _WRITING):  # left by a crash while writing
        shutil.rmtree(p, ignore_errors=True)
    labels, auto, n = project.labels, project.auto, project.n_frames
    graph, hi = _synced_graph(project)
    manifest: dict[str, Any] = {
        "format": FORMAT, "h4tracks": __version__,
        "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "project": None if project.path is None else str(project.path),
        "shape": list(project.shape), "saved": saved_identity(project.path),
        "labels": None, "auto": None,
    }
    tmp = dest.parent / f".{dest.name}{_WRITING}{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        if labels is not None:
            # frames not edited are those of the saved labels, unless the movie is not the
            # saved one (never saved, or replaced wholesale): then every frame differs
            saved = same_dir(labels.store_path, project.path)
            ts = sorted(labels.edited_frames) if saved else list(range(n))
            _write(tmp / "labels.npz", _frame_items(labels, ts))
            manifest["labels"] = ts
        _write(tmp / "graph.npz", _graph_items(graph))
        if auto is not None:
            kind, ts = "none", []
            if auto.labels is not None:
                if labels is not None and auto.labels.base is labels.base:
                    # a copy of the labels (a run since the save): restored as a copy of the
                    # recovered labels, then the frames where the two may differ
                    kind, ts = "labels", sorted({*auto.labels.edited_frames,
                                                 *labels.edited_frames})
                elif same_dir(auto.store_path, project.path) and same_dir(
                        auto.labels.store_path, project.path):
                    kind, ts = "saved", sorted(auto.labels.edited_frames)
                else:
                    kind, ts = "labels", list(range(n))
                _write(tmp / "auto_labels.npz", _frame_items(auto.labels, ts))
            _write(tmp / "auto_graph.npz", _graph_items(auto.graph))
            manifest["auto"] = {"kind": kind, "frames": ts, "info": jsonable(auto.info)}
        md = json.loads(project.metadata.model_dump_json())
        md["max_label"] = max(md["max_label"], hi)  # ids in edited frames not yet synced
        _write(tmp / "metadata.json", json.dumps(md).encode())
        _write(tmp / _MANIFEST, json.dumps(manifest, indent=1).encode())
        fsync_dir(tmp)
        old = swap(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(dest.parent)
    return dest


# ---------------------------------------------------------------------- read
def _read_frames(path: Path, shape: tuple[int, int], expected: list[int]) -> FrameStash:
    stash = FrameStash(shape)  # spills to disk beyond its budget (a never-saved long movie)
    with np.load(path) as z:
        ts = z["t"].tolist()
        if ts != expected:
            raise ValueError(f"{path.name} holds frames {ts}, the manifest {expected}")
        for t in ts:
            raw = _ZSTD.decode(z[f"f{t}"].tobytes())
            stash.put(t, np.frombuffer(raw, np.uint32).reshape(shape))
    return stash


def _read_graph(path: Path) -> TrackGraph:
    with np.load(path) as z:
        nodes = {k: z[k] for k in ("t", "label", "y", "x", "area", "track_id")}
        return TrackGraph.from_arrays(nodes, z["edges"].reshape(-1, 4),
                                      next_track_id=int(z["next_track_id"]))


@dataclass
class Recovery:
    """A recovery copy read back by :func:`read_recovery`.

    ``frames``: label frames to write into the opened project (None: no labels).
    ``auto_kind``: how the snapshot's labels are rebuilt: None (no snapshot), ``"saved"`` (the
    saved ones), ``"labels"`` (a copy of the recovered labels), each with ``auto_frames``
    written, or ``"none"`` (a snapshot without labels).
    """

    path: Path
    version: str
    written: _dt.datetime
    project_path: Path | None
    shape: tuple[int, int, int]
    saved: dict[str, int] | None
    frames: FrameStash | None
    graph: TrackGraph
    metadata: Metadata
    auto_kind: str | None = None
    auto_frames: FrameStash | None = None
    auto_graph: TrackGraph | None = None
    auto_info: dict[str, Any] = field(default_factory=dict)

    def matches(self, project: Project) -> bool:
        """Whether this copy was made for ``project`` as saved (same shape, same save)."""
        return project.shape == self.shape and saved_identity(project.path) == self.saved

    def step(self, project: Project) -> Action:
        """One undoable step turning ``project``, freshly opened, into the recovered state."""
        if not self.matches(project):
            raise H4TracksError("this recovery copy was made for another version of the project")
        if project.path is not None and project.has_unsaved_changes:
            raise H4TracksError("apply a recovery copy to the project as opened, before edits")
        return _RecoveryStep(self)


def read_recovery(dest: str | Path) -> Recovery | None:
    """The recovery copy in ``dest``, or None when there is none.

    Raises
    ------
    H4TracksError
        If the copy is damaged or from a newer h4tracks (one sentence; discard it).
    """
    dest = Path(dest).expanduser()
    recover(dest)
    if not dest.exists():
        return None
    try:
        m = json.loads((dest / _MANIFEST).read_text(encoding="utf-8"))
        if m.get("format") != FORMAT:
            raise ValueError(f"unknown recovery format {m.get('format')!r}")
        t_n, height, width = (int(s) for s in m["shape"])
        shape = (t_n, height, width)
        frames = None if m["labels"] is None else _read_frames(
            dest / "labels.npz", (height, width), m["labels"])
        rec = Recovery(
            path=dest, version=str(m["h4tracks"]),
            written=_dt.datetime.fromisoformat(m["written"]),
            project_path=None if m["project"] is None else Path(m["project"]),
            shape=shape, saved=m["saved"], frames=frames,  # type: ignore[arg-type]
            graph=_read_graph(dest / "graph.npz"),
            metadata=Metadata.model_validate_json((dest / "metadata.json").read_text("utf-8")),
        )
        auto = m["auto"]
        if auto is not None:
            rec.auto_kind, rec.auto_info = str(auto["kind"]), dict(auto["info"])
            if rec.auto_kind != "none":
                rec.auto_frames = _read_frames(dest / "auto_labels.npz", (height, width),
                                               auto["frames"])
            rec.auto_graph = _read_graph(dest / "auto_graph.npz")
    except Exception as e:  # any failure to read back means the copy cannot be trusted
        raise H4TracksError(
            f"the recovery copy {dest} is damaged and cannot be used ({type(e).__name__}: {e})"
        ) from e
    return rec


def discard_recovery(dest: str | Path) -> None:
    """Remove the recovery copy ``dest`` (nothing happens when there is none)."""
    dest = Path(dest).expanduser()
    for pattern in (_WRITING, ASIDE):  # half-written copies, asides of a two-rename swap
        for p in siblings(dest, pattern):
            shutil.rmtree(p, ignore_errors=True)
    if dest.exists() and not _is_recovery(dest):  # never delete a folder that is not ours
        raise H4TracksError(f"{dest} is not a recovery copy; refusing to remove it")
    shutil.rmtree(dest, ignore_errors=True)


# ---------------------------------------------------------------------- apply
def _set_metadata(project: Project, md: Metadata) -> None:
    # field by field: the UI and the store keep a reference to the metadata object
    new = md.model_copy(deep=True)
    for name in Metadata.model_fields:
        setattr(project.metadata, name, getattr(new, name))


class _RecoveryStep(Action):
    """The recovered state as one undoable step (``undo=True``: its inverse, the project as
    opened). Both directions share one record of the opened state, taken on first apply."""

    marks_curated = False  # the recovered curated frames are restored as they were

    def __init__(self, rec: Recovery, shared: dict[str, Any] | None = None,
                 undo: bool = False) -> None:
        self._rec, self._undo = rec, undo
        self.description = f"recover unsaved work of {rec.written.astimezone():%Y-%m-%d %H:%M}"
        if undo:
            self.description = f"undo {self.description}"
        if shared is None:
            md = rec.metadata
            # graph copies: applying one recovery to two projects must not share a graph
            shared = {"after": _State(
                graph=rec.graph.copy(), provenance=list(md.provenance),
                curated=list(md.curated_frames), labels=rec.frames,
                no_labels=rec.frames is None, auto_present=rec.auto_kind is not None,
                auto_from_labels=rec.auto_kind in ("labels", "none"),
                auto_frames=rec.auto_frames if rec.auto_kind == "saved" else None,
                auto_graph=None if rec.auto_graph is None else rec.auto_graph.copy(),
                auto_info=dict(rec.auto_info))}
        self._shared = shared

    @property
    def frames(self) -> frozenset[int]:
        return frozenset(self._rec.frames or ())

    def inverse(self) -> Action:
        if "before" not in self._shared:
            raise RuntimeError("a recovery step can only be undone after it was applied")
        return _RecoveryStep(self._rec, self._shared, not self._undo)

    def apply(self, project: Project) -> None:
        (self._restore if self._undo else self._recover)(project)

    def _recover(self, project: Project) -> None:
        rec, auto, shared = self._rec, project.auto, self._shared
        if rec.auto_kind == "saved" and (auto is None or auto.labels is None):
            raise H4TracksError("the opened project has no automatic snapshot to recover into")
        if "before" not in shared:
            project.sync_graph()
            labels, md, ts = project.labels, project.metadata, list(self.frames)
            stash = None if labels is None or not ts else FrameStash.of(
                ((t, labels.frame(t)) for t in ts), labels.shape[1:])
            # auto_present=False: undo drops the recovered snapshot, then puts the old back
            shared["before"] = _State(
                graph=project.graph, provenance=list(md.provenance),
                curated=list(md.curated_frames), labels=stash, no_labels=labels is None,
                auto_present=False)
            shared["old"] = (labels, auto, md.model_copy(deep=True))
        if rec.auto_kind == "saved":
            assert auto is not None and auto.labels is not None
            # a fork, so that undo puts the opened snapshot object back untouched
            project.auto = AutoSnapshot(auto.labels.copy_shared(), auto.graph, auto.info,
                                        store_path=auto.store_path)
        _put(project, shared["after"])
        auto = project.auto
        if auto is not None and rec.auto_kind == "none":
            auto.labels = None
        elif auto is not None and auto.labels is not None and rec.auto_kind == "labels":
            assert rec.auto_frames is not None
            for t in rec.auto_frames:
                auto.labels.set_frame(t, rec.auto_frames[t])
        _set_metadata(project, rec.metadata)

    def _restore(self, project: Project) -> None:
        labels, auto, md = self._shared["old"]
        if labels is not None and project.labels is not labels:  # the recovery dropped them
            project.set_labels(labels, rebuild_graph=False)
        _put(project, self._shared["before"])
        project.auto = auto
        _set_metadata(project, md)
