"""Benchmark: evaluation of a synthetic movie (tracking + segmentation) vs py-ctcmetrics.

Generates ``--frames`` frames of ``--size``² (default 100 × 1024², about 25 s of generation),
injects errors (shifted masks, dropped cells, an id switch per 10 frames), then times
:func:`h4tracks.core.evaluation.evaluate` and py-ctcmetrics (``evaluate_sequence`` on CTC
folders, one thread) on the same data. Prints timings and scores; asserts nothing.

    python benchmarks/bench_evaluation.py [--frames 100] [--size 1024]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from h4tracks.core.evaluation import TrackingData, evaluate, lineage_edges
from h4tracks.core.io.ctc import lineage_from_labels, write_ctc
from h4tracks.datasets.synthetic import make_movie


def _corrupt(labels: np.ndarray, seed: int = 1) -> np.ndarray:
    """Shift every mask by one pixel and drop ~2 % of the cells (CTC tracks stay valid by
    re-deriving the lineage; ids of cut tracks become new tracks)."""
    rng = np.random.default_rng(seed)
    out = np.roll(labels, 1, axis=2)
    ids = np.unique(labels)[1:]
    drop = rng.choice(ids, size=max(1, ids.size // 50), replace=False)
    out[np.isin(out, drop)] = 0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", type=int, default=1024)
    args = ap.parse_args()

    t0 = time.perf_counter()
    m = make_movie(n_frames=args.frames, shape=(args.size, args.size),
                   n_cells=max(4, args.size * args.size // 8000), radius=12.0,
                   division_rate=0.02, max_cells=400)
    gen = time.perf_counter() - t0
    res_labels = _corrupt(m.labels)
    parents = dict(zip(m.lineage[:, 0].tolist(), m.lineage[:, 3].tolist(), strict=True))
    res_lin = lineage_from_labels(res_labels)
    keep = {c: p for c, p in parents.items() if p and c in set(res_lin[:, 0].tolist())
            and p in set(res_lin[:, 0].tolist())}
    res_lin = lineage_from_labels(res_labels, keep)
    n_cells = int(sum(np.unique(f).size - 1 for f in m.labels))
    print(f"movie: {args.frames} frames of {args.size}², {m.n_tracks} tracks, "
          f"{m.n_divisions} divisions, {n_cells} cells (generated in {gen:.1f} s)")

    ref = TrackingData(m.labels, lineage_edges(m.lineage), name="truth")
    res = TrackingData(res_labels, lineage_edges(res_lin), name="result")
    t0 = time.perf_counter()
    report = evaluate(res, ref)
    ours = time.perf_counter() - t0
    t = report.tracking
    print(f"h4tracks evaluate (tracking + segmentation): {ours:.2f} s  "
          f"TRA {t.tra:.6f} DET {t.det:.6f} SEG {report.segmentation.seg:.6f} "
          f"F1 {report.segmentation.f1:.4f}")

    try:
        import ctc_metrics
    except ImportError:
        print("py-ctcmetrics not installed: no comparison")
        return
    with tempfile.TemporaryDirectory() as d:
        gt = write_ctc(Path(d) / "gt", m.labels, m.lineage, kind="gt")
        res_dir = write_ctc(Path(d) / "res", res_labels, res_lin)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = ctc_metrics.evaluate_sequence(
                str(res_dir), str(gt), metrics=["DET", "TRA", "SEG"], threads=1
            )
        theirs = time.perf_counter() - t0
    print(f"py-ctcmetrics (1 thread, incl. TIFF reading): {theirs:.2f} s  "
          f"TRA {scores['TRA']:.6f} DET {scores['DET']:.6f} SEG {scores['SEG']:.6f}")
    print(f"ratio py-ctcmetrics / h4tracks: {theirs / ours:.1f}x; "
          f"|ΔTRA| {abs(scores['TRA'] - t.tra):.1e} |ΔDET| {abs(scores['DET'] - t.det):.1e} "
          f"|ΔSEG| {abs(scores['SEG'] - report.segmentation.seg):.1e}")


if __name__ == "__main__":
    main()
