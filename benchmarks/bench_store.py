"""Benchmark of the project store: lazy open, incremental save, full save.

Run from the repository root::

    python benchmarks/bench_store.py              # the 1 GB project
    python benchmarks/bench_store.py --sizes 1,8  # 1 GB and 8 GB projects

For each size a project is generated in a temporary directory (``--dir`` to choose where;
it needs roughly 0.55 x size of free disk space) and deleted afterwards:

* image: uint16, 1024 x 1024 frames, as many frames as make ``size`` GiB uncompressed;
* labels: uint32 movie of the same shape (required: labels match the image frame for frame;
  that is another 2 x size GiB uncompressed, but label chunks compress very well);
* graph: ~40 cells per frame, each linked to itself in the next frame.

Pixel data is *really written* (no hard-link tricks): 64 distinct frames of compressible but
not trivial data (illumination gradient, bright cells, gaussian noise; zstd makes ~2.2x of it)
are cycled over the movie, and every frame goes through zarr and its codec like a real save.

Measured:

* open: in a fresh subprocess, the time of ``open_project`` plus RSS growth, the process peak
  RSS (VmHWM / ``resource.getrusage``, including the interpreter and imports) and bytes read;
* open + read one frame (image and labels) in the same subprocess;
* saves of the opened project: after a one-frame label edit (incremental, hard-links every
  unchanged file) vs. Save as to a new path (hard links as well) vs. a full save to a new
  path (a project built on the same arrays, so everything is read and written again; only
  for sizes up to ``--full-save-max`` GiB, default 1).

The numbers are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FRAME = (1024, 1024)
N_DISTINCT = 64
CELLS = 40
GIB = 2**30


# ---------------------------------------------------------------------------------- data
class CycledMovie:
    """A lazy (T, Y, X) array that returns ``frames[t % len(frames)]`` for frame t."""

    def __init__(self, frames: np.ndarray, n_frames: int) -> None:
        self.frames = frames
        self.shape = (n_frames, *frames.shape[1:])
        self.dtype = frames.dtype
        self.ndim = 3

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if not isinstance(key, (int, np.integer)):
            raise TypeError("CycledMovie only supports an integer frame index")
        t = int(key)
        if not -self.shape[0] <= t < self.shape[0]:
            raise IndexError(t)
        return self.frames[t % len(self.frames)][rest]


def distinct_frames(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """N_DISTINCT image frames (uint16) and label frames (uint32) of moving square cells."""
    rng = np.random.default_rng(seed)
    ny, nx = FRAME
    yy, xx = np.mgrid[0:ny, 0:nx]
    background = 300.0 + 0.2 * yy + 0.1 * xx
    start = rng.uniform(40, min(ny, nx) - 80, (CELLS, 2))
    step = rng.normal(0, 2.0, (CELLS, 2))
    size = rng.integers(18, 34, CELLS)
    images = np.empty((N_DISTINCT, ny, nx), np.uint16)
    labels = np.zeros((N_DISTINCT, ny, nx), np.uint32)
    for t in range(N_DISTINCT):
        pos = np.clip(start + t * step, 0, min(ny, nx) - 40).astype(int)
        frame = background + rng.normal(0, 6.0, FRAME)
        for c in range(CELLS):
            (y, x), s = pos[c], size[c]
            labels[t, y : y + s, x : x + s] = c + 1  # later cells may cover earlier ones
            frame[y : y + s, x : x + s] += 500 + 20 * c
        images[t] = np.clip(frame, 0, 65535).astype(np.uint16)
    return images, labels


def cycled_graph(labels: np.ndarray, n_frames: int):
    """Nodes of every frame (measured on the distinct frames), each cell linked to itself in
    the next frame."""
    from h4tracks.core.graph import TrackGraph
    from h4tracks.core.measure import measure_frame

    per = [measure_frame(f) for f in labels]
    cols: dict[str, list[np.ndarray]] = {c: [] for c in ("t", "label", "y", "x", "area")}
    for t in range(n_frames):
        m = per[t % len(per)]
        cols["t"].append(np.full(len(m), t))
        cols["label"].append(m.labels.astype(np.int64))
        cols["y"].append(m.centroids[:, 0])
        cols["x"].append(m.centroids[:, 1])
        cols["area"].append(m.areas)
    nodes = {k: np.concatenate(v) for k, v in cols.items()}
    keys = set(zip(nodes["t"].tolist(), nodes["label"].tolist(), strict=True))
    edges = np.array(
        [(t, lab, t + 1, lab) for t, lab in keys if (t + 1, lab) in keys], np.int64
    ).reshape(-1, 4)
    return TrackGraph.from_arrays(nodes, edges)


def disk_usage(path: Path) -> int:
    seen, total = set(), 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            st = os.stat(os.path.join(dirpath, f))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_blocks * 512
    return total


# ---------------------------------------------------------------------------------- probe
def peak_rss() -> int:
    """Peak RSS of this process in bytes. VmHWM where there is /proc: ru_maxrss is inherited
    across exec on Linux, so it would include the parent's memory at fork time."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def probe(path: str) -> None:
    """Run in a fresh subprocess: open the project and report time and memory."""
    t0 = time.perf_counter()
    import geff.core_io  # noqa: F401  (imported lazily by the first open)
    import psutil

    import h4tracks.core.io.readers  # noqa: F401
    from h4tracks.core.store import open_project

    t_import = time.perf_counter() - t0
    proc = psutil.Process()
    rss0, read0 = proc.memory_info().rss, proc.io_counters().read_chars
    t0 = time.perf_counter()
    p = open_project(path)
    t_open = time.perf_counter() - t0
    rss1, read1 = proc.memory_info().rss, proc.io_counters().read_chars
    t0 = time.perf_counter()
    mid = p.n_frames // 2
    np.asarray(p.image[mid])
    p.labels[mid]
    t_frame = time.perf_counter() - t0
    print(json.dumps({
        "import_s": t_import,
        "open_s": t_open,
        "frame_s": t_frame,
        "rss_before": rss0,
        "rss_growth": rss1 - rss0,
        "peak_rss": peak_rss(),
        "read_bytes": read1 - read0,
        "nodes": len(p.graph),
        "edges": p.graph.n_edges,
        "lazy": type(p.image).__module__.startswith("zarr")
        and type(p.labels.base).__module__.startswith("zarr"),
    }))


def run_probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--probe", str(path)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------- bench
def bench_size(
    size_gib: float, workdir: Path, frames: tuple[np.ndarray, np.ndarray], full_save: bool
) -> dict:
    from h4tracks.core.project import Project
    from h4tracks.core.store import open_project, save_project

    images, labels = frames
    n = max(1, round(size_gib * GIB / (FRAME[0] * FRAME[1] * 2)))
    res: dict[str, Any] = {"size": size_gib, "frames": n}
    root = Path(tempfile.mkdtemp(prefix=f"bench_store_{size_gib:g}G_", dir=workdir))
    try:
        t0 = time.perf_counter()
        graph = cycled_graph(labels, n)
        res["graph_build_s"] = time.perf_counter() - t0
        project = Project(CycledMovie(images, n), CycledMovie(labels, n), graph=graph,
                          metadata={"name": f"bench {size_gib:g} GiB"})
        path = root / "bench.zarr"
        t0 = time.perf_counter()
        save_project(project, path)
        res["write_s"] = time.perf_counter() - t0
        del project
        res["disk"] = disk_usage(path)
        res["nodes"] = len(graph)
        res.update({f"open_{k}": v for k, v in run_probe(path).items()})

        # saves of the opened project
        q = open_project(path)
        t = n // 2
        q.labels[t, 10:60, 10:60] = 999  # a new cell in one frame
        t0 = time.perf_counter()
        save_project(q)
        res["save_incremental_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        save_project(q, root / "save_as.zarr")
        res["save_as_link_s"] = time.perf_counter() - t0
        if full_save:
            full = Project(q.image, q.labels.base, graph=q.graph.copy(), metadata=q.metadata)
            t0 = time.perf_counter()
            save_project(full, root / "full_copy.zarr")
            res["save_full_s"] = time.perf_counter() - t0
        return res
    finally:
        t0 = time.perf_counter()
        shutil.rmtree(root, ignore_errors=True)
        res["cleanup_s"] = time.perf_counter() - t0


def mib(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def report(rows: list[dict]) -> None:
    cols = [f"{r['size']:g} GiB image" for r in rows]
    lines = [
        ("frames (1024x1024)", lambda r: f"{r['frames']}"),
        ("uncompressed image + labels", lambda r: f"{r['frames'] * 6 / 1024:,.1f} GiB"),
        ("on disk", lambda r: mib(r["disk"])),
        ("graph nodes", lambda r: f"{r['nodes']:,}"),
        ("full write (generation incl.)", lambda r: f"{r['write_s']:.1f} s"),
        ("fresh process: imports", lambda r: f"{r['open_import_s']:.1f} s"),
        ("fresh process: RSS after imports", lambda r: mib(r["open_rss_before"])),
        ("open_project", lambda r: f"{r['open_open_s'] * 1000:.0f} ms"),
        ("open: RSS growth", lambda r: mib(r["open_rss_growth"])),
        ("open: peak RSS of the process", lambda r: mib(r["open_peak_rss"])),
        ("open: bytes read", lambda r: f"{r['open_read_bytes'] / 1024:,.0f} KiB"),
        ("read 1 image + 1 label frame", lambda r: f"{r['open_frame_s'] * 1000:.0f} ms"),
        ("save after 1-frame edit", lambda r: f"{r['save_incremental_s']:.2f} s"),
        ("Save as (hard links)", lambda r: f"{r['save_as_link_s']:.2f} s"),
        ("full save to a new path", lambda r: f"{r['save_full_s']:.1f} s"
         if "save_full_s" in r else "-"),
        ("full / incremental save", lambda r: f"{r['save_full_s'] / r['save_incremental_s']:.0f}x"
         if "save_full_s" in r else "-"),
        ("cleanup (rm -r)", lambda r: f"{r['cleanup_s']:.1f} s"),
    ]
    w0 = max(len(name) for name, _ in lines)
    w = max(14, *(len(c) for c in cols))
    print(f"{'':{w0}}  " + "  ".join(f"{c:>{w}}" for c in cols))
    for name, fn in lines:
        print(f"{name:{w0}}  " + "  ".join(f"{fn(r):>{w}}" for r in rows))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1", help="comma-separated image sizes in GiB (default 1)")
    ap.add_argument("--dir", default=None, help="where to create the temporary projects")
    ap.add_argument("--full-save-max", type=float, default=1.0,
                    help="measure the full save only for sizes up to this many GiB (default 1)")
    ap.add_argument("--probe", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe:
        probe(args.probe)
        return
    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    workdir = Path(args.dir) if args.dir else Path(tempfile.gettempdir())
    print(f"generating {N_DISTINCT} distinct 1024x1024 frames ...", flush=True)
    frames = distinct_frames()
    rows = []
    for size in sizes:
        print(f"benchmarking a {size:g} GiB project in {workdir} ...", flush=True)
        t0 = time.perf_counter()
        rows.append(bench_size(size, workdir, frames, size <= args.full_save_max))
        print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
    print()
    report(rows)


if __name__ == "__main__":
    main()
