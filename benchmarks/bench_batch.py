"""Batch pipeline: ``h4tracks run`` on a 2-worker LocalCluster vs the same commands run one
after another, the rerun with nothing to do, and how the time grows with the movie count.

Each movie is synthetic (labels imported, so the numbers measure the batch machinery and
the import / LAP tracking / analysis / CTC export steps, not Cellpose). The sequential
baseline runs the commands a user would type (`h4tracks new --labels`, `track`, `analyze`,
`export`) as separate processes.

    python benchmarks/bench_batch.py                  # 16 movies x 40 frames of 256²
    python benchmarks/bench_batch.py --movies 4 --frames 10 --size 128 --scaling 2,4
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import yaml

from h4tracks.datasets.synthetic import SyntheticConfig, make_movie

TRACK = ["--method", "lap", "--max-distance", "15", "--max-gap", "1"]


def write_movies(folder: Path, n: int, frames: int, size: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        m = make_movie(SyntheticConfig(n_frames=frames, shape=(size, size), n_cells=15,
                                       seed=i))
        tifffile.imwrite(folder / f"m{i}.tif", m.image, imagej=True, metadata={"axes": "TYX"})
        tifffile.imwrite(folder / f"m{i}_labels.tif", m.labels.astype(np.uint16),
                         photometric="minisblack", metadata={"axes": "TYX"})
        rows.append({"image": f"m{i}.tif", "labels": f"m{i}_labels.tif",
                     "condition": "ab"[i % 2]})
    with open(folder / "movies.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return folder / "movies.csv"


def pipeline_file(folder: Path, manifest: Path, out: Path, n: int) -> Path:
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))[:n]
    sub = manifest.parent / f"movies_{n}.csv"  # its relative paths point beside it
    with open(sub, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    data = {"inputs": {"manifest": str(sub)}, "output": str(out),
            "steps": {"track": {"method": "lap", "max_distance": 15, "max_gap": 1},
                      "analyze": {}, "export": {"format": "ctc"}},
            "cluster": {"workers": 2}}
    path = folder / f"pipeline_{n}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def h4(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "h4tracks.cli", "-q", *args], check=True,
                   stdout=subprocess.DEVNULL)


def sequential(folder: Path, n: int, out: Path) -> float:
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    for i in range(n):
        p = str(out / f"m{i}.zarr")
        h4("new", str(folder / f"m{i}.tif"), "--labels", str(folder / f"m{i}_labels.tif"),
           "-o", p)
        h4("track", p, *TRACK)
        h4("analyze", p, "-o", str(out / f"m{i}.csv"))
        h4("export", p, "-o", str(out / f"m{i}_ctc"))
    return time.perf_counter() - t0


def run(pipeline: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "h4tracks.cli", "-q", "run", str(pipeline)],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--movies", type=int, default=16)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--scaling", default="4,8,16", help="movie counts for the scaling rows")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    try:
        print(f"{args.movies} synthetic movies of {args.frames} frames {args.size}², "
              f"{os.cpu_count()} CPU(s); LocalCluster of 2 worker processes")
        manifest = write_movies(tmp / "movies", args.movies, args.frames, args.size)
        n = args.movies
        t_seq = sequential(tmp / "movies", n, tmp / "seq")
        t_run = run(pipeline_file(tmp, manifest, tmp / f"out_{n}", n))
        t_rerun = run(pipeline_file(tmp, manifest, tmp / f"out_{n}", n))
        print(f"commands one after another: {t_seq:7.1f} s")
        print(f"h4tracks run (2 workers):   {t_run:7.1f} s  (ratio sequential/run "
              f"{t_seq / t_run:.2f}x)")
        print(f"rerun, nothing to do:       {t_rerun:7.1f} s")
        print("scaling (fresh output each):")
        for k in [int(x) for x in args.scaling.split(",") if x.strip()]:
            if k > n:
                continue
            t = run(pipeline_file(tmp, manifest, tmp / f"scale_{k}", k))
            print(f"  {k:3d} movies: {t:7.1f} s  ({t / k:.2f} s per movie)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
