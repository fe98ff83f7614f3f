"""Benchmark of the track metrics: 10 000 random-walk tracks x 100 frames (1 M detections).

Run from the repository root::

    python benchmarks/bench_analysis.py                     # 10 000 tracks x 100 frames
    python benchmarks/bench_analysis.py --tracks 1000 --frames 50

Builds the graph with ``TrackGraph.from_arrays`` (not timed as analysis), then times
``track_metrics`` (target < 2 s for the default size), ``msd_curves`` and ``summarize``.
Every 10th track has a one-frame gap, so the gap path is exercised. The numbers are printed;
nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from h4tracks.core.analysis import msd_curves, summarize, track_metrics
from h4tracks.core.graph import TrackGraph


def random_walks(n_tracks: int, n_frames: int, seed: int = 0) -> TrackGraph:
    """``n_tracks`` random walks over ``n_frames`` frames (label = track index + 1)."""
    rng = np.random.default_rng(seed)
    t = np.tile(np.arange(n_frames), n_tracks)
    label = np.repeat(np.arange(1, n_tracks + 1), n_frames)
    steps = rng.normal(0, 2.0, (n_tracks, n_frames, 2))
    pos = np.cumsum(steps, axis=1) + rng.uniform(0, 2000, (n_tracks, 1, 2))
    keep = np.ones((n_tracks, n_frames), bool)
    keep[::10, n_frames // 2] = False  # a gap in every 10th track
    keep = keep.ravel()
    t, label = t[keep], label[keep]
    y, x = pos[..., 0].ravel()[keep], pos[..., 1].ravel()[keep]
    same = label[1:] == label[:-1]
    edges = np.stack([t[:-1][same], label[:-1][same], t[1:][same], label[1:][same]], 1)
    nodes = {"t": t, "label": label, "y": y, "x": x, "area": np.full(t.size, 50)}
    return TrackGraph.from_arrays(nodes, edges)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=10_000)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    graph = random_walks(args.tracks, args.frames)
    print(f"graph: {graph!r} built in {time.perf_counter() - t0:.2f} s")

    def best(fn) -> tuple[float, object]:
        times, out = [], None
        for _ in range(args.repeat):
            s = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - s)
        return min(times), out

    sec, table = best(lambda: track_metrics(graph, pixel_size=0.65, frame_interval=5.0,
                                            time_unit="min"))
    print(f"track_metrics: {sec:.3f} s for {len(table)} tracks (target < 2 s)")
    sec, _ = best(lambda: msd_curves(graph, pixel_size=0.65, frame_interval=5.0,
                                     time_unit="min"))
    print(f"msd_curves:    {sec:.3f} s")
    sec, _ = best(lambda: summarize(table))
    print(f"summarize:     {sec:.3f} s")
    alpha = table[table.find("msd_alpha")]
    print(f"median MSD alpha of the random walks: {np.nanmedian(alpha):.3f} (expect ~1)")


if __name__ == "__main__":
    main()
