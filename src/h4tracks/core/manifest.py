"""What a saved project must contain, and a cheap test that it still does.

Every array of a project (format 2) is written with *all* its chunks, empty frames included
(``write_empty_chunks``), and every chunk carries a crc32c checksum. A missing chunk file can
then never pass for an empty frame, and a corrupted one fails to decode instead of reading as
wrong pixels. The root attributes keep a manifest — chunk counts per array, node and edge
counts per graph — which :func:`quick_verify` compares with the files at every open (a
directory listing, no pixel data read); :mod:`h4tracks.core.check` verifies everything.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from h4tracks.core.frames import ranges_text
from h4tracks.errors import ProjectDamagedError

__all__ = ["ARRAYS", "GRAPHS", "array_manifest", "chunk_codecs", "complete_array",
           "damage_message", "graph_manifest", "missing_chunks", "quick_verify"]

#: arrays and graphs a project may hold, by path inside the project
ARRAYS = ("image", "labels", "auto/labels")
GRAPHS = ("tracks", "auto/tracks")


def chunk_codecs() -> dict[str, Any]:
    """Compression of new arrays: zstd (zarr's default) followed by a crc32c checksum."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return {"compressors": [ZstdCodec(level=0, checksum=False), Crc32cCodec()],
            "config": {"write_empty_chunks": True}}


def _array_meta(array_dir: Path) -> dict[str, Any]:
    return json.loads((array_dir / "zarr.json").read_text())


def _expected_keys(meta: dict[str, Any]) -> list[tuple[str, tuple[int, ...]]]:
    """Chunk keys (relative paths) of an array with their grid coordinates, in order."""
    shape = meta["shape"]
    chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
    enc = meta.get("chunk_key_encoding", {})
    sep = enc.get("configuration", {}).get("separator", "/")
    grid = [range(math.ceil(s / c)) if c else range(0) for s, c in zip(shape, chunks,
                                                                        strict=True)]
    idx = np.stack(np.meshgrid(*[np.asarray(g) for g in grid], indexing="ij"), -1)
    coords = [tuple(int(v) for v in row) for row in idx.reshape(-1, len(shape))]
    return [("c" + sep + sep.join(map(str, c)), c) for c in coords]


def _present(array_dir: Path) -> set[str]:
    out = set()
    for dirpath, _dirs, files in os.walk(array_dir):
        rel = Path(dirpath).relative_to(array_dir).as_posix()
        for f in files:
            if f != "zarr.json":
                out.add(f if rel == "." else f"{rel}/{f}")
    return out


def missing_chunks(array_dir: str | Path) -> list[tuple[int, ...]]:
    """Grid coordinates of the chunks of the array at ``array_dir`` whose files are missing."""
    array_dir = Path(array_dir)
    meta = _array_meta(array_dir)
    present = _present(array_dir)
    return [c for key, c in _expected_keys(meta) if key not in present]


def complete_array(array_dir: str | Path) -> int:
    """Write the missing chunks of an array as zeros; returns how many were written.

    Used on arrays written by h4tracks before format 2, where an empty frame had no chunk
    file; from then on a missing file always means damage.
    """
    array_dir = Path(array_dir)
    missing = missing_chunks(array_dir)
    if not missing:
        return 0
    with zarr.config.set({"array.write_empty_chunks": True}):  # taken when opened
        arr = zarr.open_array(array_dir, mode="r+", zarr_format=3)
        chunks = arr.chunks
        for c in missing:
            region = tuple(slice(i * n, min((i + 1) * n, s))
                           for i, n, s in zip(c, chunks, arr.shape, strict=True))
            arr[region] = 0
    return len(missing)


def array_manifest(array_dir: str | Path) -> dict[str, int]:
    """``{"chunks": n}``: how many chunk files the array at ``array_dir`` holds."""
    array_dir = Path(array_dir)
    return {"chunks": len(_expected_keys(_array_meta(array_dir)))
            - len(missing_chunks(array_dir))}


def graph_manifest(graph: Any) -> dict[str, int]:
    """``{"nodes": n, "edges": m}`` of a :class:`~h4tracks.core.graph.TrackGraph`."""
    return {"nodes": len(graph), "edges": int(graph.n_edges)}


def _frames_text(coords: Iterable[tuple[int, ...]]) -> str:

    return ranges_text(sorted({c[0] for c in coords})) or "-"


def damage_message(path: Path, problems: list[str]) -> str:
    """One sentence for a damaged project, pointing at ``h4tracks check``."""
    shown = "; ".join(problems[:3]) + ("; …" if len(problems) > 3 else "")
    return (f"{path} is damaged ({shown}); run `h4tracks check {path}` to see everything and "
            f"`h4tracks check {path} --repair` to rebuild what can be rebuilt")


def quick_verify(path: Path, attrs: dict[str, Any], graphs: dict[str, Any]) -> list[str]:
    """Problems visible without reading pixels: missing chunk files, graphs that do not
    hold what the manifest says. ``graphs`` maps ``"tracks"``/``"auto/tracks"`` to the
    graphs as read (absent when there is none)."""
    manifest = attrs.get("manifest")
    if not isinstance(manifest, dict):
        return []  # written before format 2: nothing to compare with
    problems = []
    for name in ARRAYS:
        if name not in manifest:
            continue
        array_dir = path / name
        if not (array_dir / "zarr.json").is_file():
            problems.append(f"the {name} array is missing")
            continue
        missing = missing_chunks(array_dir)
        if missing:
            problems.append(f"{len(missing)} {name} chunk file(s) missing "
                            f"(frames {_frames_text(missing)})")
    for name in GRAPHS:
        want = manifest.get(name)
        if want is None:
            continue
        graph = graphs.get(name)
        if graph is None:
            problems.append(f"the {name} graph is missing")
        elif graph_manifest(graph) != want:
            got = graph_manifest(graph)
            problems.append(f"the {name} graph holds {got['nodes']} cells and {got['edges']} "
                            f"links where {want['nodes']} and {want['edges']} were saved")
    return problems


def raise_if_damaged(path: Path, attrs: dict[str, Any], graphs: dict[str, Any]) -> None:
    """Raise :class:`ProjectDamagedError` when :func:`quick_verify` finds a problem."""
    problems = quick_verify(path, attrs, graphs)
    if problems:
        raise ProjectDamagedError(damage_message(path, problems))
