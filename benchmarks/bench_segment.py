"""Benchmark of segmentation: ``h4tracks segment`` vs a plain ``CellposeModel.eval`` loop.

Run from the repository root::

    python benchmarks/bench_segment.py                  # 12 frames of 256x256
    python benchmarks/bench_segment.py --frames 30 --size 512

    python benchmarks/bench_segment.py --threads 1 2 --engines torch onnx
    python benchmarks/bench_segment.py --size 1024 --engines onnx cuda   # CPU vs GPU
    python benchmarks/bench_segment.py --engines onnx openvino openvino-bf16

A synthetic movie is written as a project in a temporary directory. Each variant runs in a
fresh subprocess (so peak RSS is its own) with the same model (the shipped demo model), the
same Cellpose parameters and the same number of threads:

* ``plain``: load the model, ``model.eval([frame])`` for every frame, keep the masks in a list
  (the baseline a Cellpose user writes, torch on the CPU);
* ``h4tracks/ENGINE``: ``h4tracks.core.segmentation.engine.segment_project`` with that
  engine (``torch``, ``onnx``, ``openvino``; ``openvino-bf16`` is OpenVINO with
  ``--precision bfloat16``) on the opened project, saving every ``--save-every`` frames
  (what ``h4tracks segment --engine ENGINE`` does), including the final save, the
  provenance and the automatic snapshot. The ONNX export is made before the timing (it is
  made once per model and cached);
* ``h4tracks/cuda`` (``--engines ... cuda``, where torch sees CUDA): the same with torch on
  the GPU, as ``h4tracks segment --gpu`` runs it: frames/s CPU vs GPU on the same frames;
* for each number of threads (default: those of the compute modes, 40 %, 80 % of this
  machine's cores).

Printed: frames/s, speed-up (plain time / h4tracks time at the same threads; target for onnx
>= 2.5), peak RSS of each process, and the masks' agreement with the plain loop's (frames
with identical masks, and the lowest AP@0.5 against them). Nothing is asserted. On a shared
machine the timings are noisy: compare rows of one run only, and use ``--repeat 2`` or more
(rounds alternate the variants; the fastest round of each counts).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

PLAIN = textwrap.dedent("""
    import json, resource, sys, time, torch, numpy as np
    from h4tracks.core.store import open_project
    from h4tracks.core.segmentation.models import demo_entry, load_cellpose_model
    path, cores, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(cores)
    p = open_project(path)
    t0 = time.perf_counter()
    model, _ = load_cellpose_model(demo_entry())
    masks = [model.eval([p.image[t]], channels=[0, 0], diameter=None, flow_threshold=0.4,
                        cellprob_threshold=0.0, min_size=15, batch_size=8)[0][0]
             for t in range(p.n_frames)]
    dt = time.perf_counter() - t0
    np.save(out, np.stack(masks).astype(np.uint32))
    print(json.dumps({"seconds": dt, "cells": int(sum(m.max() for m in masks)),
                      "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")

OURS = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    from h4tracks.core.store import open_project, save_project
    from h4tracks.core.parameters import SegmentParams
    from h4tracks.core.segmentation.engine import segment_project
    from h4tracks.core.segmentation.models import demo_entry
    path, cores, every, engine = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    gpu = engine == "cuda"  # torch on the GPU, as `h4tracks segment --gpu` runs it
    precision = "bfloat16" if engine.endswith("-bf16") else "float32"
    engine = engine.removesuffix("-bf16")
    params = SegmentParams.for_model(demo_entry(), engine="torch" if gpu else engine,
                                     precision=precision)
    p = open_project(path)
    t0 = time.perf_counter()
    r = segment_project(p, params=params, cores=cores, gpu=gpu, checkpoint=lambda: save_project(p),
                        checkpoint_every=every)
    dt = time.perf_counter() - t0
    p = open_project(path)
    np.save(sys.argv[5], np.stack([np.asarray(p.labels[t]) for t in range(p.n_frames)]))
    print(json.dumps({"seconds": dt, "cells": r.n_cells,
                      "engine": r.engine + ("-bf16" if r.precision == "bfloat16" else ""),
                      "message": r.message,
                      "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")

WARM = textwrap.dedent("""
    from h4tracks.core.segmentation.engine import load_segmenter
    from h4tracks.core.segmentation.models import demo_entry
    load_segmenter(demo_entry(), "onnx", cores=1)  # the once-per-model export, not timed
""")


def run(code: str, *args: object) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                         text=True, check=True)
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def agreement(ref: np.ndarray, masks: np.ndarray) -> tuple[int, float]:
    """Frames with masks identical to ``ref``'s, and the lowest AP@0.5 against ``ref``."""
    from cellpose import metrics

    same = sum(bool(np.array_equal(a, b)) for a, b in zip(ref, masks, strict=True))
    aps = [1.0 if a.max() == 0 and b.max() == 0 else float(metrics.average_precision(
        [a.astype(np.int64)], [b.astype(np.int64)], threshold=[0.5])[0][0, 0])
        for a, b in zip(ref, masks, strict=True)]
    return same, min(aps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--cells", type=int, default=25)
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--threads", type=int, nargs="+",
                    help="thread counts to compare (default: those of the compute modes)")
    ap.add_argument("--engines", nargs="+", default=["torch", "onnx"],
                    choices=["torch", "onnx", "openvino", "openvino-bf16", "auto", "cuda"],
                    help="cuda: torch on the GPU (--gpu); left out where torch sees no CUDA; "
                    "openvino-bf16: OpenVINO at bfloat16 (--precision bfloat16)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of all variants, alternating; each variant's fastest counts")
    args = ap.parse_args()
    import torch

    if "cuda" in args.engines and not torch.cuda.is_available():
        print("no CUDA device here: the cuda row is left out")
        args.engines.remove("cuda")

    from h4tracks.core.compute import MODES, available_cores, core_budget
    from h4tracks.core.project import Project
    from h4tracks.core.store import save_project
    from h4tracks.datasets.synthetic import make_movie

    movie = make_movie(n_frames=args.frames, shape=(args.size, args.size), n_cells=args.cells,
                       seed=5)
    print(f"{args.frames} frames of {args.size}x{args.size}, ~{args.cells} cells, "
          f"{available_cores()} cores available")
    threads = args.threads or sorted({core_budget(mode) for mode in MODES})
    print(f"{'threads':>7} {'variant':<15} {'f/s':>7} {'speed-up':>8} {'RSS':>8} "
          f"{'cells':>6} {'same masks':>10} {'min AP50':>8}")
    with tempfile.TemporaryDirectory() as d:
        os.environ["H4TRACKS_CONFIG_DIR"] = str(Path(d) / "config")  # the export cache too
        run(WARM)
        path = Path(d) / "p.zarr"
        for cores in threads:
            # rounds alternate the variants; each keeps its fastest round, so a slow spell of
            # a shared machine does not land on one variant only
            best: dict[str, dict] = {}
            ref = None
            for round_ in range(args.repeat):
                for variant in ["plain", *args.engines]:
                    save_project(Project(movie.image), path, overwrite=True)
                    out_file = Path(d) / f"{variant}-{cores}-{round_}.npy"  # the round's own
                    out = (run(PLAIN, path, cores, out_file) if variant == "plain" else
                           run(OURS, path, cores, args.save_every, variant, out_file))
                    if variant == "plain" and ref is None:
                        ref = np.load(out_file)
                    if variant not in best or out["seconds"] < best[variant]["seconds"]:
                        best[variant] = {**out, "masks": out_file}
            assert ref is not None
            plain = best["plain"]
            print(f"{cores:>7} {'plain cellpose':<15} {args.frames / plain['seconds']:>7.2f} "
                  f"{1.0:>8.2f} {plain['rss']:>6.0f}MB {plain['cells']:>6}", flush=True)
            for engine in args.engines:
                ours = best[engine]
                same, ap50 = agreement(ref, np.load(ours["masks"]))
                label = "h4tracks/cuda" if engine == "cuda" else f"h4tracks/{ours['engine']}"
                print(f"{cores:>7} {label:<15} {args.frames / ours['seconds']:>7.2f} "
                      f"{plain['seconds'] / ours['seconds']:>8.2f} {ours['rss']:>6.0f}MB "
                      f"{ours['cells']:>6} {same:>4}/{args.frames:<5} {ap50:>8.3f}", flush=True)
                if ours.get("message"):
                    print(f"        ({ours['message']})")

if __name__ == "__main__":
    main()
