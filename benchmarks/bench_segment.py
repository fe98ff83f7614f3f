"""Benchmark of segmentation: ``h4tracks segment`` vs a plain ``CellposeModel.eval`` loop.

Run from the repository root::

    python benchmarks/bench_segment.py                  # 12 frames of 256x256
    python benchmarks/bench_segment.py --frames 30 --size 512

A synthetic movie is written as a project in a temporary directory. Each variant runs in a
fresh subprocess (so peak RSS is its own) with the same model (the shipped demo model), the
same Cellpose parameters and the same number of torch threads:

* ``plain``: load the model, ``model.eval([frame])`` for every frame, keep the masks in a list
  (the baseline a Cellpose user writes);
* ``h4tracks``: ``h4tracks.core.segmentation.engine.segment_project`` on the opened project,
  saving every ``--save-every`` frames (what ``h4tracks segment`` does), including the
  final save, the provenance and the automatic snapshot;
* the same for each compute mode (40 %, 80 % of this machine's cores).

Printed: frames/s, overhead ratio (h4tracks time / plain time at the same threads; target
<= 1.10) and peak RSS of each process. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

PLAIN = textwrap.dedent("""
    import json, resource, sys, time, torch
    from h4tracks.core.store import open_project
    from h4tracks.core.segmentation.models import demo_entry, load_cellpose_model
    path, cores = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(cores)
    p = open_project(path)
    t0 = time.perf_counter()
    model, _ = load_cellpose_model(demo_entry())
    masks = [model.eval([p.image[t]], channels=[0, 0], diameter=None, flow_threshold=0.4,
                        cellprob_threshold=0.0, min_size=15, batch_size=8)[0][0]
             for t in range(p.n_frames)]
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "cells": int(sum(m.max() for m in masks)),
                      "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")

OURS = textwrap.dedent("""
    import json, resource, sys, time
    from h4tracks.core.store import open_project, save_project
    from h4tracks.core.segmentation.engine import segment_project
    path, cores, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    p = open_project(path)
    t0 = time.perf_counter()
    r = segment_project(p, cores=cores, checkpoint=lambda: save_project(p),
                        checkpoint_every=every)
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "cells": r.n_cells,
                      "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


def run(code: str, *args: object) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--cells", type=int, default=25)
    ap.add_argument("--save-every", type=int, default=50)
    args = ap.parse_args()

    from h4tracks.core.compute import MODES, available_cores, core_budget
    from h4tracks.core.project import Project
    from h4tracks.core.store import save_project
    from h4tracks.datasets.synthetic import make_movie

    movie = make_movie(n_frames=args.frames, shape=(args.size, args.size), n_cells=args.cells,
                       seed=5)
    print(f"{args.frames} frames of {args.size}x{args.size}, ~{args.cells} cells, "
          f"{available_cores()} cores available")
    with tempfile.TemporaryDirectory() as d:
        rows = []
        for mode in MODES:
            cores = core_budget(mode)
            path = Path(d) / f"p{mode[:-1]}.zarr"
            save_project(Project(movie.image), path, overwrite=True)
            plain = run(PLAIN, path, cores)
            save_project(Project(movie.image), path, overwrite=True)
            ours = run(OURS, path, cores, args.save_every)
            rows.append((mode, cores, plain, ours))
        print(f"{'mode':<5} {'cores':>5} {'plain f/s':>10} {'h4tracks f/s':>13} "
              f"{'ratio':>6} {'plain RSS':>10} {'h4tracks RSS':>13} {'cells':>11}")
        for mode, cores, plain, ours in rows:
            print(f"{mode:<5} {cores:>5} {args.frames / plain['seconds']:>10.2f} "
                  f"{args.frames / ours['seconds']:>13.2f} "
                  f"{ours['seconds'] / plain['seconds']:>6.3f} {plain['rss']:>8.0f}MB "
                  f"{ours['rss']:>11.0f}MB {plain['cells']:>5}/{ours['cells']:<5}")


if __name__ == "__main__":
    main()
