"""``h4tracks check``: verify everything a saved project holds, and rebuild what can be rebuilt.

The check reads every chunk of every array (crc32c checksums catch corrupted files; the
manifest tells missing files from empty frames), reads both graphs, compares each graph's
cells with its labels frame by frame, and checks the metadata (curated frames, label id
high-water mark). Each problem is one :class:`Finding` in plain words, with what
:func:`repair_project` would do about it.

Repairs go through the normal atomic save, so a repair that fails leaves the project as it
was:

* a lost or inconsistent graph is rebuilt from the labels (links between cells that still
  exist are kept; links of an unreadable graph are lost, and the report says so);
* lost label frames are restored from the automatic snapshot when the user had not curated
  them (there the snapshot *is* the labels), otherwise emptied so the project opens again;
* a lost or damaged automatic snapshot is rebuilt from the labels of the frames nobody
  curated; the automatic result of curated frames cannot be recovered and is recorded as
  lost (evaluation reports those frames);
* lost image frames are re-read from the source file when it is still there with the same
  shape; otherwise the image cannot be repaired (re-import the movie).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from h4tracks.core.frames import ranges_text
from h4tracks.core.geff_io import read_geff_graph
from h4tracks.core.graph import TrackGraph
from h4tracks.core.io.importing import import_project
from h4tracks.core.manifest import ARRAYS, missing_chunks
from h4tracks.core.measure import measure_frame
from h4tracks.core.project import AutoSnapshot, Project, measure_graph_nodes
from h4tracks.core.store import is_project, open_project, root_attrs, save_project
from h4tracks.errors import H4TracksError, ProjectFormatError

__all__ = ["CheckReport", "Finding", "check_project", "repair_project"]

Progress = Callable[[str, int, int], None]


@dataclass
class Finding:
    """One problem: where (``image``, ``labels``, ``tracks``, ``auto/labels``,
    ``auto/tracks``, ``metadata``), what is wrong, and what ``--repair`` does (None: it
    cannot)."""

    where: str
    text: str
    repair: str | None
    frames: list[int] = field(default_factory=list)


@dataclass
class CheckReport:
    """What :func:`check_project` found."""

    path: Path
    findings: list[Finding]
    checked: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.findings

    def lines(self) -> list[str]:
        """The report as lines of plain text (what ``h4tracks check`` prints)."""
        out = [f"{k}: {v}" for k, v in self.checked.items()]
        if self.ok:
            out.append(f"{self.path}: no problems found")
        for f in self.findings:
            fix = f"--repair: {f.repair}" if f.repair else "--repair cannot fix this"
            out.append(f"PROBLEM [{f.where}] {f.text} ({fix})")
        return out


def _bad_frames(path: Path, name: str, manifest: dict[str, Any] | None,
                progress: Progress | None) -> tuple[dict[int, str], list[np.ndarray] | None]:
    """Frames of array ``name`` that are missing or unreadable, and (for label arrays) the
    label ids of every readable frame."""
    arr = zarr.open_array(path / name, mode="r", zarr_format=3)
    bad: dict[int, str] = {}
    if manifest is not None and name in manifest:
        for c in missing_chunks(path / name):
            bad[c[0]] = "a chunk file is missing"
    ids: list[np.ndarray] | None = [] if name != "image" else None
    n = int(arr.shape[0])
    for t in range(n):
        try:
            frame = np.asarray(arr[t])
        except Exception as e:  # checksum mismatch, truncated or undecodable chunk
            bad.setdefault(t, f"unreadable ({type(e).__name__})")
            frame = None
        if ids is not None:
            if frame is None or t in bad:
                ids.append(np.empty((4, 0)))
            else:
                m = measure_frame(frame)
                ids.append(np.stack([m.labels.astype(np.float64), m.areas.astype(np.float64),
                                     m.centroids[:, 0], m.centroids[:, 1]])
                           if len(m) else np.empty((4, 0)))
        if progress is not None:
            progress(f"check {name}", t + 1, n)
    return bad, ids


def _node_keys(graph: TrackGraph) -> np.ndarray:
    tab = graph.node_table()
    return (tab["t"].astype(np.int64) << 32) | tab["label"].astype(np.int64)


def _graph_vs_labels(graph: TrackGraph, ids: list[np.ndarray], skip: set[int]) -> list[int]:
    """Frames (outside ``skip``) where the graph's cells (ids, areas, centroids) differ from
    the labels' cells (``ids``: per frame, rows label, area, y, x)."""
    tab = graph.node_table()
    nodes = _node_keys(graph)
    node_vals = np.stack([tab["area"], tab["y"], tab["x"]], 1).astype(np.float64)
    if ids:
        t = np.concatenate([np.full(a.shape[1], i, np.int64) for i, a in enumerate(ids)])
        every = np.concatenate(ids, axis=1)
        cells = (t << 32) | every[0].astype(np.int64)
        cell_vals = every[1:].T
    else:
        cells, cell_vals = np.empty(0, np.int64), np.empty((0, 3))
    diff = np.union1d(np.setdiff1d(nodes, cells), np.setdiff1d(cells, nodes))
    common, i, j = np.intersect1d(nodes, cells, return_indices=True)
    moved = np.abs(node_vals[i] - cell_vals[j]).max(axis=1, initial=0) > 0.01
    diff = np.union1d(diff, common[moved])
    frames = {int(t) for t in (diff >> 32)} - skip
    return sorted(frames)


def check_project(path: str | Path, *, progress: Progress | None = None) -> CheckReport:
    """Verify every file of the project at ``path`` (reads all pixel data once).

    Raises
    ------
    ProjectFormatError
        If ``path`` is not an h4tracks project at all.
    """

    path = Path(path).expanduser().resolve()
    if not is_project(path):
        # the precise message (missing, a file, not h4tracks, ...)

        open_project(path, verify=False)
        raise ProjectFormatError(f"{path}: not an h4tracks project")
    attrs = root_attrs(path) or {}
    manifest = attrs.get("manifest") if isinstance(attrs.get("manifest"), dict) else None
    findings: list[Finding] = []
    checked: dict[str, str] = {}
    meta = attrs.get("metadata") or {}
    curated = set(meta.get("curated_frames") or [])
    if manifest is None:
        checked["format"] = ("saved by an older h4tracks (no checksums, no manifest): missing "
                             "chunk files cannot be told from empty frames; saving once "
                             "adds both")
    bad: dict[str, dict[int, str]] = {}
    ids: dict[str, list[np.ndarray] | None] = {}
    for name in ARRAYS:
        present = (path / name / "zarr.json").is_file()
        if not present:
            if manifest is not None and name in manifest:
                findings.append(Finding(name, f"the {name} array is missing",
                                        _array_repair(name, None), []))
                bad[name] = {}
            continue
        try:
            bad[name], ids[name] = _bad_frames(path, name, manifest, progress)
        except Exception as e:
            findings.append(Finding(name, f"the {name} array cannot be opened ({e})",
                                    _array_repair(name, None)))
            continue
        n = zarr.open_array(path / name, mode="r", zarr_format=3).shape[0]
        checked[name] = f"{n} frames read" + (f", {len(bad[name])} damaged" if bad[name]
                                               else ", all intact")
        if bad[name]:
            frames = sorted(bad[name])
            why = sorted(set(bad[name].values()))
            findings.append(Finding(
                name, f"frames {ranges_text(frames)} of the {name} are lost ({'; '.join(why)})",
                _array_repair(name, frames, curated, meta.get("source")), frames))
    graph_info = {"tracks": attrs.get("tracks", {}),
                  "auto/tracks": (attrs.get("auto") or {}).get("tracks", {})}
    for gname, lname in (("tracks", "labels"), ("auto/tracks", "auto/labels")):
        if lname not in ids:
            continue
        expected = manifest.get(gname) if manifest else None
        if not (path / gname).is_dir():
            if expected is not None or gname == "tracks":
                findings.append(Finding(gname, f"the {gname} graph is missing",
                                        "rebuild it from the labels (its links are lost)"))
            continue
        try:
            graph = read_geff_graph(path / gname, graph_info[gname])
        except Exception as e:
            findings.append(Finding(gname, f"the {gname} graph cannot be read "
                                    f"({type(e).__name__})",
                                    "rebuild it from the labels (its links are lost)"))
            continue
        counts = {"nodes": len(graph), "edges": int(graph.n_edges)}
        checked[gname] = f"{counts['nodes']} cells, {counts['edges']} links"
        if expected is not None and counts != expected:
            findings.append(Finding(
                gname, f"the {gname} graph holds {counts['nodes']} cells and "
                f"{counts['edges']} links where {expected['nodes']} and {expected['edges']} "
                "were saved", "rebuild it from the labels, keeping the links that remain"))
            continue
        frames = _graph_vs_labels(graph, ids[lname] or [], set(bad.get(lname, {})))
        if frames:
            findings.append(Finding(
                gname, f"the {gname} graph does not match the {lname} in frames "
                f"{ranges_text(frames)}",
                "re-measure its cells from the labels, keeping the links between cells that "
                "still exist", frames))
    if manifest is not None and "auto/tracks" in manifest and not (path / "auto").is_dir():
        findings.append(Finding("auto", "the automatic snapshot is missing",
                                _auto_repair(curated)))
    n_frames = int(zarr.open_array(path / "image", mode="r", zarr_format=3).shape[0]) \
        if (path / "image" / "zarr.json").is_file() else None
    out_of_range = sorted(t for t in curated if n_frames is not None and not 0 <= t < n_frames)
    if out_of_range:
        findings.append(Finding("metadata", f"curated frames {out_of_range} do not exist",
                                "forget those marks"))
    top = max((int(a[0].max()) for a in ids.get("labels") or [] if a.size), default=0)
    if top > int(meta.get("max_label", 0) or 0):
        findings.append(Finding("metadata", f"the largest label id ({top}) is above the "
                                "recorded high-water mark", "raise the mark"))
    return CheckReport(path, findings, checked)


def _array_repair(name: str, frames: list[int] | None, curated: set[int] | None = None,
                  source: str | None = None) -> str | None:
    if name == "image":
        return ("re-read those frames from the source file "
                f"{source}" if source and Path(source).exists() else None)
    if name == "labels":
        if frames is None:
            return None
        return ("restore frames nobody curated from the automatic snapshot, empty the others "
                "(segment them again)")
    return _auto_repair(curated or set())


def _auto_repair(curated: set[int]) -> str:
    text = "rebuild the automatic snapshot from the labels of frames nobody curated"
    if curated:
        text += (f"; the automatic result of curated frames {ranges_text(sorted(curated))} "
                 "is lost (evaluation says so)")
    return text


class _PatchedImage:
    """The saved image with some frames replaced (what a repair writes as the new image)."""

    def __init__(self, base: Any, frames: dict[int, np.ndarray]) -> None:
        self._base, self._frames = base, frames
        self.shape, self.dtype, self.ndim = base.shape, base.dtype, base.ndim

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)) and int(key) in self._frames:
            return self._frames[int(key)]
        if isinstance(key, slice):
            # a block of frames (the store writes in blocks): frame by frame, so a replaced
            # frame is never read from the damaged array (a missing chunk would read as
            # zeros, a corrupt one raise)
            frames = range(*key.indices(self.shape[0]))
            if frames and any(t in self._frames for t in frames):
                return np.stack([np.asarray(self[t]) for t in frames])
        return self._base[key]


def repair_project(path: str | Path, report: CheckReport | None = None, *,
                   progress: Progress | None = None) -> list[str]:
    """Rebuild what :func:`check_project` found repairable and save (atomically).

    Returns
    -------
    list of str
        One line per repair done. Problems that cannot be repaired are left as they are and
        listed by the report.
    """

    report = report or check_project(path, progress=progress)
    if report.ok:
        return []
    project = open_project(report.path, verify=False)
    by_where: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_where.setdefault(f.where, []).append(f)
    done: list[str] = []
    curated = set(project.metadata.curated_frames)
    lost_auto: set[int] = set()
    if "image" in by_where:
        done += _repair_image(project, by_where["image"])
    auto = project.auto
    readable_auto = auto is not None and auto.labels is not None and "auto/labels" not in \
        by_where
    for f in by_where.get("labels", []):
        if project.labels is None:
            continue
        restored, emptied = [], []
        for t in f.frames:
            if t not in curated and readable_auto and auto is not None and \
                    auto.labels is not None:
                project.labels.set_frame(t, np.asarray(auto.labels.frame(t)))
                restored.append(t)
            else:
                project.labels.set_frame(t, np.zeros(project.shape[1:], np.uint32))
                emptied.append(t)
        if restored:
            done.append(f"labels: restored frames {ranges_text(restored)} from the automatic "
                        "snapshot")
        if emptied:
            done.append(f"labels: emptied lost frames {ranges_text(emptied)} (segment them "
                        "again)")
    if "tracks" in by_where and project.labels is not None:
        done.append(_rebuild_graph(project))
    if {"auto", "auto/labels", "auto/tracks"} & set(by_where) and project.labels is not None:
        lost_auto = _rebuild_auto(project, curated, by_where)
        done.append("automatic snapshot rebuilt from the labels of frames nobody curated"
                    + (f"; its result for curated frames {ranges_text(sorted(lost_auto))} is "
                       "lost" if lost_auto else ""))
    for f in by_where.get("metadata", []):
        if "do not exist" in f.text:
            project.metadata.curated_frames = [t for t in project.metadata.curated_frames
                                               if 0 <= t < project.n_frames]
            done.append("metadata: forgot marks of frames that do not exist")
        elif "high-water" in f.text:
            project.next_free_label()
            done.append("metadata: raised the label id high-water mark")
    if not done:
        return []
    project.add_provenance("repair", findings=[f"[{f.where}] {f.text}" for f in
                                               report.findings], repairs=done)
    save_project(project)
    return done


def _repair_image(project: Project, findings: list[Finding]) -> list[str]:
    source = project.metadata.source
    frames = sorted({t for f in findings for t in f.frames})
    if not frames or not source or not Path(source).exists():
        return []

    try:
        fresh = import_project(source, channel=project.metadata.channel)
    except H4TracksError:
        return []
    if fresh.shape != project.shape or fresh.dtype != project.dtype:
        return []
    patched = _PatchedImage(project.image, {t: np.asarray(fresh.image[t]) for t in frames})
    project._image = patched
    project.image_store_path = None  # the whole image is written anew
    return [f"image: re-read frames {ranges_text(frames)} from {source}"]


def _rebuild_graph(project: Project) -> str:
    """Nodes re-measured from the labels; the links between surviving cells kept."""
    old = project._graph
    new = measure_graph_nodes(project.labels)
    edges = old.edge_array()
    if edges.size:
        keys = _node_keys(new)
        parent = (edges[:, 0].astype(np.int64) << 32) | edges[:, 1].astype(np.int64)
        child = (edges[:, 2].astype(np.int64) << 32) | edges[:, 3].astype(np.int64)
        keep = np.isin(parent, keys) & np.isin(child, keys)
        edges = edges[keep]
        nodes = {k: v for k, v in new.node_table().items() if k != "track_id"}
        new = TrackGraph.from_arrays(nodes, edges)
    project.replace_graph(new, synced=range(project.n_frames))
    project.nodes_measured = True
    return (f"tracks: graph rebuilt from the labels ({len(new)} cells, {new.n_edges} links "
            f"kept of {old.n_edges})")


def _rebuild_auto(project: Project, curated: set[int],
                  by_where: dict[str, list[Finding]]) -> set[int]:
    """A snapshot equal to the labels on frames nobody curated; curated frames are lost
    unless the old snapshot still holds them readably."""
    assert project.labels is not None
    old = project.auto
    damaged = {t for f in by_where.get("auto/labels", []) for t in f.frames}
    whole = "auto" in by_where or any("missing" in f.text and not f.frames
                                      for f in by_where.get("auto/labels", []))
    labels = project.labels.copy_shared()
    lost: set[int] = set()
    for t in sorted(curated):
        if old is not None and old.labels is not None and not whole and t not in damaged:
            labels.set_frame(t, np.asarray(old.labels.frame(t)))
        else:
            labels.set_frame(t, np.zeros(project.shape[1:], np.uint32))
            lost.add(t)
    graph = measure_graph_nodes(labels)
    edges = project.graph.edge_array()
    if edges.size:
        keep = ~np.isin(edges[:, 0], list(curated)) & ~np.isin(edges[:, 2], list(curated))
        keys = _node_keys(graph)
        e = edges[keep]
        ok = np.isin((e[:, 0].astype(np.int64) << 32) | e[:, 1].astype(np.int64), keys) & \
            np.isin((e[:, 2].astype(np.int64) << 32) | e[:, 3].astype(np.int64), keys)
        nodes = {k: v for k, v in graph.node_table().items() if k != "track_id"}
        graph = TrackGraph.from_arrays(nodes, e[ok])
    info = dict(old.info) if old is not None else {}
    info["lost_frames"] = sorted(set(info.get("lost_frames", [])) | lost)
    project.auto = AutoSnapshot(labels, graph, info)
    return lost
