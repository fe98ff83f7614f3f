"""Benchmark of the h4tracks trackers against laptrack (run: python benchmarks/bench_tracking.py).

Prints wall times (best of a few runs) and ratios; asserts nothing about speed.

1. LAP linking of 100 frames × 500 random-walk points (1000 × 1000 px field, 3 px steps,
   15 px cut-off), without and with gap closing (max_gap = 2; once with every point present,
   once with 5 % of the points missed per frame, which makes many segments), ours vs
   laptrack with the equivalent settings, and whether the edges agree.
2. Detection + LAP and overlap tracking of a synthetic movie of 50 frames × 80 cells (512²),
   the size of the mmv_h4tracks reference numbers in DESIGN.md §7.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from laptrack import LapTrack

from h4tracks.core.tracking import Detections, LapParams, detect, track_lap, track_overlap
from h4tracks.datasets.synthetic import make_movie


def best_of(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Smallest wall time of ``repeat`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def random_walk(n_frames: int, n: int, size: float, step: float, drop: float, seed: int = 0
                ) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, size, (n, 2))
    out = []
    for _ in range(n_frames):
        p = p + rng.normal(0, step, p.shape)
        out.append(p[rng.random(n) >= drop].copy())
    return out


def laptrack_for(p: LapParams) -> LapTrack:
    return LapTrack(
        metric="sqeuclidean",
        cutoff=p.max_distance**2,
        gap_closing_cutoff=p.effective_gap_distance**2 if p.max_gap else False,
        gap_closing_max_frame_count=p.max_gap + 1,
        splitting_cutoff=p.effective_division_distance**2 if p.divisions else False,
        merging_cutoff=False,
    )


def edge_set_ours(det: Detections, p: LapParams) -> set[tuple]:
    g = track_lap(det, p)
    # labels of Detections.from_points are the row index + 1 within the frame
    return {((a, b - 1), (c, d - 1)) for a, b, c, d in g.edge_array().tolist()}


def bench_lap() -> None:
    print("LAP linking, 100 frames x 500 random-walk points (1000^2 px, step 3 px, cutoff 15 px)")
    cases = [("frame linking", 0.0, LapParams(max_distance=15)),
             ("gap closing", 0.0, LapParams(max_distance=15, max_gap=2)),
             ("gap, 5% missed", 0.05, LapParams(max_distance=15, max_gap=2))]
    for name, drop, p in cases:
        pts = random_walk(100, 500, 1000.0, 3.0, drop)
        det = Detections.from_points(pts)
        t_ours, _ = best_of(lambda det=det, p=p: track_lap(det, p))
        t_lt, tree = best_of(lambda pts=pts, p=p: laptrack_for(p).predict(pts), repeat=2)
        theirs = {(tuple(map(int, a)), tuple(map(int, b))) for a, b in tree.edges()}
        same = edge_set_ours(det, p) == theirs
        print(f"  {name:17s} h4tracks {t_ours:6.3f} s   laptrack {t_lt:6.3f} s   "
              f"laptrack/h4tracks = {t_lt / t_ours:5.1f}x   same edges: {same}")


def bench_movie() -> None:
    m = make_movie(n_frames=50, shape=(512, 512), n_cells=80, radius=9.0, speed=2.0,
                   division_rate=0.01, max_cells=200, seed=0)
    n_cells = np.mean([np.unique(f).size - 1 for f in m.labels])
    print(f"Synthetic movie 50 frames x {n_cells:.0f} cells (512^2)")
    t_det1, det = best_of(lambda: detect(m.labels))
    t_det2, _ = best_of(lambda: detect(m.labels, cores=2))
    p = LapParams(max_distance=45)
    t_lap, _ = best_of(lambda: track_lap(det, p))
    t_ovl, g = best_of(lambda: track_overlap(m.labels))
    t_lt, _ = best_of(lambda: laptrack_for(p).predict(
        [det.coords[a:b] for a, b in zip(det.frame_offsets()[:-1], det.frame_offsets()[1:],
                                         strict=True)]), repeat=2)
    print(f"  detection         {t_det1:6.3f} s (1 thread), {t_det2:6.3f} s (2 threads)")
    print(f"  LAP (45 px)       {t_lap:6.3f} s   laptrack {t_lt:6.3f} s   "
          f"detection + LAP {t_det1 + t_lap:6.3f} s (mmv_h4tracks 1.3 reference: 0.8 s)")
    print(f"  overlap tracking  {t_ovl:6.3f} s   ({g.n_edges} links, {g.n_divisions} divisions)")


if __name__ == "__main__":
    bench_lap()
    bench_movie()
