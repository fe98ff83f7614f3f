"""Tracking accuracy on dense colonies: CTC TRA / DET and run time of the h4tracks trackers and
laptrack (run: python benchmarks/bench_global.py [--quick]).

Cases
-----
a. a dense dividing colony of rods (:func:`h4tracks.testing.colony.make_colony`) with perfect
   masks, collective drift and a few stage jumps;
b. the same movie with degraded masks (:func:`h4tracks.testing.degrade.degrade_labels`: missed,
   merged and split cells); the reference stays the perfect ground truth;
c. migrating, dividing cells (:func:`h4tracks.datasets.synthetic.make_movie`);
d. run time only, on a bigger colony (200 frames, ~400 cells per frame once grown), as a ratio
   to laptrack;
f. a fast-growing colony (a division every 5 frames, 3 -> ~490 rods) that stays a settled
   monolayer (``relax_steps=40``; with the default 6 the centre of a big colony fills with
   squeezed, jumping cells, where most errors of cases a and b are made), at its full frame
   rate and at a half and a third of it (:func:`h4tracks.testing.degrade.every_nth_frame`:
   cells grow 1.3-1.5x, move up to a cell width and divide between two frames).

Trackers: our ``lap`` (detection + LAP with divisions and gap closing), our ``overlap``,
laptrack 0.17 (LAP with splitting and gap closing, same cut-offs, on our detections) and our
``global`` when ``h4tracks.core.tracking.global_link`` is importable. TRA / DET come from
:func:`h4tracks.core.evaluation.evaluate`; one row is checked with py-ctcmetrics. Asserts
nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench_tracking import laptrack_for  # the same laptrack settings as there
from h4tracks.core.evaluation import TrackingData, evaluate, lineage_edges
from h4tracks.core.graph import TrackGraph
from h4tracks.core.io.ctc import graph_to_ctc, write_ctc
from h4tracks.core.tracking import (
    GlobalParams,
    LapParams,
    OverlapParams,
    detect,
    track_global,
    track_lap,
    track_overlap,
)
from h4tracks.datasets.synthetic import make_movie
from h4tracks.testing.colony import make_colony
from h4tracks.testing.degrade import degrade_labels, every_nth_frame

Tracker = Callable[[np.ndarray], TrackGraph]


def lap_params(max_distance: float) -> LapParams:
    """Our LAP's settings: these cut-offs, the stage drift compensated (the default), no area
    term. laptrack gets the same cut-offs."""
    return LapParams(max_distance=max_distance, max_gap=2, divisions=True,
                     division_distance=max(12.0, 0.6 * max_distance), drift=True)


def run_lap(labels: np.ndarray, p: LapParams) -> TrackGraph:
    return track_lap(labels, p)  # from the masks: the stage drift is measured on them


def run_laptrack(labels: np.ndarray, p: LapParams) -> TrackGraph:
    """laptrack on our detections with the cut-offs of ``p``; its (frame, index) nodes are
    mapped back to (t, label)."""
    det = detect(labels)
    off = det.frame_offsets()
    coords = det.coords
    tree = laptrack_for(p).predict([coords[off[t]:off[t + 1]] for t in range(det.n_frames)])
    e = np.array([(a[0], a[1], b[0], b[1]) for a, b in tree.edges()], np.int64).reshape(-1, 4)
    edges = np.column_stack([e[:, 0], det.label[off[e[:, 0]] + e[:, 1]],
                             e[:, 2], det.label[off[e[:, 2]] + e[:, 3]]])
    return TrackGraph.from_arrays(det.node_columns(), edges)


def trackers(max_distance: float) -> dict[str, Tracker]:
    p = lap_params(max_distance)
    out: dict[str, Tracker] = {
        "lap": lambda lab: run_lap(lab, p),
        "overlap": lambda lab: track_overlap(lab, OverlapParams()),
        "laptrack": lambda lab: run_laptrack(lab, p),
        "global": lambda lab: track_global(lab, GlobalParams()),
    }
    return out


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def ctc_relabel(labels: np.ndarray, graph: TrackGraph) -> tuple[np.ndarray, np.ndarray]:
    """Label movie with CTC track ids + lineage (like ``export_ctc``, from arrays)."""
    nodes, lineage = graph_to_ctc(graph)
    t_all, lab_all, ids = nodes["t"], nodes["label"], nodes["ctc_id"]
    bounds = np.searchsorted(t_all, np.arange(labels.shape[0] + 1))
    out = np.zeros(labels.shape, np.uint32)
    for t in range(labels.shape[0]):
        s, e = bounds[t], bounds[t + 1]
        if e > s:
            pos = np.searchsorted(lab_all[s:e], labels[t]).clip(max=e - s - 1)
            hit = (lab_all[s:e][pos] == labels[t]) & (labels[t] > 0)
            out[t] = np.where(hit, ids[s:e][pos], 0)
    return out, lineage


def ctcmetrics_check(gt_labels: np.ndarray, gt_lineage: np.ndarray, labels: np.ndarray,
                     graph: TrackGraph) -> str:
    try:
        import ctc_metrics
    except ImportError:
        return "py-ctcmetrics not installed: no check"
    res_labels, res_lineage = ctc_relabel(labels, graph)
    with tempfile.TemporaryDirectory() as d:
        gt = write_ctc(Path(d) / "gt", gt_labels, gt_lineage, kind="gt")
        res = write_ctc(Path(d) / "res", res_labels, res_lineage)
        # py-ctcmetrics prints its whole result dict; keep the table readable
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            s = ctc_metrics.evaluate_sequence(str(res), str(gt), metrics=["DET", "TRA"],
                                              threads=1)
    return f"py-ctcmetrics: TRA {s['TRA']:.4f}  DET {s['DET']:.4f}"


def bench_case(name: str, gt_labels: np.ndarray, gt_lineage: np.ndarray,
               labels: np.ndarray, max_distance: float, check: str | None = None) -> None:
    n_cells = [np.unique(f).size - 1 for f in gt_labels]
    n_div = int((np.unique(gt_lineage[gt_lineage[:, 3] > 0, 3], return_counts=True)[1] == 2)
                .sum())
    print(f"\n{name}: {gt_labels.shape[0]} frames of {gt_labels.shape[1]}x{gt_labels.shape[2]}, "
          f"{n_cells[0]} -> {n_cells[-1]} cells, {len(gt_lineage)} tracks, {n_div} divisions")
    print(f"  {'tracker':10s} {'TRA':>7s} {'DET':>7s} {'div rec':>8s} {'div prec':>9s} "
          f"{'time (s)':>9s}")
    ref = TrackingData(gt_labels, lineage_edges(gt_lineage), name="truth")
    for tname, fn in trackers(max_distance).items():
        try:
            dt, graph = timed(lambda fn=fn: fn(labels))
        except Exception as exc:  # a tracker giving up (e.g. solver time limit) is a result too
            print(f"  {tname:10s} failed: {exc}")
            continue
        rep = evaluate(TrackingData.from_graph(labels, graph, name=tname), ref,
                       segmentation=False)
        extra = ""
        if tname == check:
            extra = "   " + ctcmetrics_check(gt_labels, gt_lineage, labels, graph)
        tr = rep.tracking
        print(f"  {tname:10s} {tr.tra:7.4f} {tr.det:7.4f} {tr.division_recall:8.2f} "
              f"{tr.division_precision:9.2f} {dt:9.2f}{extra}")


def bench_big(frames: int, size: int) -> None:
    t0 = time.perf_counter()
    m = make_colony(n_frames=frames, shape=(size, size), n_start_cells=60, cycle_frames=40,
                    max_cells=450, drift=0.3, seed=4)
    gen = time.perf_counter() - t0
    n_cells = [np.unique(f).size - 1 for f in m.labels]
    print(f"\nbig colony (run time only): {frames} frames of {size}x{size}, "
          f"{n_cells[0]} -> {n_cells[-1]} cells (mean {np.mean(n_cells):.0f}), "
          f"{m.n_tracks} tracks, {m.n_divisions} divisions; generated in {gen:.1f} s")
    ref = None
    for tname, fn in sorted(trackers(20.0).items(), key=lambda kv: kv[0] != "laptrack"):
        t1 = time.perf_counter()
        try:
            dt, _ = timed(lambda fn=fn: fn(m.labels))
        except Exception as exc:
            print(f"  {tname:10s} failed after {time.perf_counter() - t1:.0f} s: {exc}")
            continue
        ref = ref or dt
        print(f"  {tname:10s} {dt:7.2f} s   = {dt / ref:5.2f} x laptrack")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller movies (smoke test)")
    ap.add_argument("--cases", default="abcdef",
                    help="which cases to run, e.g. 'ab' (default abcdef; e = learning from "
                    "5 curated frames)")
    args = ap.parse_args()
    n = 30 if args.quick else 60

    cases = set(args.cases)
    if cases & {"a", "b", "e"}:
        bench_colony(n, cases)
    if "c" in cases:
        movie = make_movie(n_frames=n, shape=(512, 512), n_cells=60, radius=9.0, speed=3.0,
                           division_rate=0.02, max_cells=200, seed=0)
        bench_case("c. migrating cells (make_movie)", movie.labels, movie.lineage, movie.labels,
                   max_distance=30.0)
    if "d" in cases:
        frames, size = (60, 384) if args.quick else (200, 512)
        bench_big(frames, size)
    if "f" in cases:
        bench_fast_colony(quick=args.quick)


def bench_fast_colony(quick: bool) -> None:
    frames, size = (30, 224) if quick else (40, 320)
    m = make_colony(n_frames=frames, shape=(size, size), n_start_cells=3, cycle_frames=5.0,
                    cell_length=16.0, cell_width=6.0, jitter=0.8, relax_steps=40, seed=3,
                    max_cells=600)
    for step in (1, 2, 3):
        labels, lineage = every_nth_frame(m.labels, m.lineage, step)
        rate = "full frame rate" if step == 1 else f"1/{step} of the frame rate"
        bench_case(f"f. fast-growing settled colony, {rate}", labels, lineage, labels,
                   max_distance=20.0)


def bench_colony(n: int, cases: set[str]) -> None:
    t0 = time.perf_counter()
    colony = make_colony(n_frames=n, shape=(256, 256), n_start_cells=4, drift=0.3,
                         jump_rate=0.03, jump_size=20.0, seed=1)
    print(f"colony generated in {time.perf_counter() - t0:.1f} s")
    if "a" in cases:
        bench_case("a. dense colony, perfect masks", colony.labels, colony.lineage,
                   colony.labels, max_distance=30.0, check="lap")
    if not cases & {"b", "e"}:
        return
    degraded = degrade_labels(colony.labels, colony.lineage, miss=0.02, merge=0.02, split=0.02,
                              seed=1)
    if "b" in cases:
        bench_case("b. dense colony, degraded masks (2 % missed / merged / split)",
                   colony.labels, colony.lineage, degraded, max_distance=30.0)
    if "e" in cases:
        bench_learning(colony, degraded, starts=[n // 6, n // 3, n // 2, 2 * n // 3],
                       n_curated=5)


def _majority(result: np.ndarray, truth: np.ndarray) -> dict[int, int]:
    """result label -> the true label covering more than half of its pixels."""
    fg = result > 0
    pairs, counts = np.unique(np.stack([result[fg], truth[fg]]), axis=1, return_counts=True)
    sizes = dict(zip(*np.unique(result[fg], return_counts=True), strict=True))
    return {int(r): int(t) for (r, t), c in zip(pairs.T, counts, strict=True)
            if t > 0 and 2 * c > sizes[r]}


def true_links(labels: np.ndarray, gt: np.ndarray, lineage: np.ndarray,
               frames: range) -> np.ndarray:
    """The links a user would curate between the (imperfect) cells of ``frames``: a -> b when
    the true cells they stand for are linked in the ground truth (one per true link)."""
    parent = {int(r[0]): int(r[3]) for r in lineage}
    first = {int(r[0]): int(r[1]) for r in lineage}
    out = []
    for t in list(frames)[:-1]:
        ma, mb = _majority(labels[t], gt[t]), _majority(labels[t + 1], gt[t + 1])
        seen, n_children = set(), {}
        for b, gb in sorted(mb.items()):
            for a, ga in sorted(ma.items()):
                linked = ga == gb or (parent.get(gb) == ga and first.get(gb) == t + 1)
                if linked and (ga, gb) not in seen and n_children.get(a, 0) < 2:
                    seen.add((ga, gb))
                    n_children[a] = n_children.get(a, 0) + 1
                    out.append((t, a, t + 1, b))
                    break
    return np.asarray(out, np.int64).reshape(-1, 4)


def bench_learning(colony: Any, labels: np.ndarray, starts: list[int], n_curated: int) -> None:
    """TRA of `global` before and after the user curates ``n_curated`` frames (starting at
    each of ``starts`` in turn) and re-tracks with :func:`retrack_with_corrections` (the rest
    of the movie is re-tracked); also with the learnt link weights only (division weights
    left at their defaults)."""
    from h4tracks.core.project import Project
    from h4tracks.core.tracking.global_link import (
        DEFAULT_WEIGHTS,
        DIVISION_FEATURES,
        estimate_defaults,
    )
    from h4tracks.core.tracking.learning import curated_links, retrack_with_corrections

    ref = TrackingData(colony.labels, lineage_edges(colony.lineage), name="truth")

    def tra(graph: TrackGraph) -> float:
        return evaluate(TrackingData.from_graph(labels, graph, name="r"), ref,
                        segmentation=False).tracking.tra

    dt0, auto = timed(lambda: track_global(labels, GlobalParams()))
    before = tra(auto)
    est = estimate_defaults(detect(labels))
    params = GlobalParams(max_distance=est["max_distance"], border_margin=est["border_margin"])
    print(f"\ne. learning from {n_curated} curated frames of the degraded colony "
          f"(global TRA before: {before:.4f}, {dt0:.1f} s)")
    print(f"  {'curated':>8} {'pasted':>7} {'re-tracked':>10} {'links only':>10} {'time':>6}")
    rows = []
    for first in starts:
        frames = range(first, first + n_curated)
        graph = auto.copy()
        # the user's corrections: the links inside the curated frames become the true ones
        for e in graph.edge_array().tolist():
            if e[0] in frames and e[2] in frames:
                graph.remove_edge(e[:2], e[2:])
        for e in true_links(labels, colony.labels, colony.lineage, frames).tolist():
            if graph.predecessor(e[2:]) is None and len(graph.successors(e[:2])) < 2:
                graph.add_edge(e[:2], e[2:])
        project = Project(colony.image, labels)
        project.graph = graph
        project.set_curated(frames)
        dt1, (after, weights) = timed(lambda p=project, f=frames: retrack_with_corrections(
            p, f, params, return_weights=True))
        links_only = {**weights, **{k: DEFAULT_WEIGHTS[k] for k in DIVISION_FEATURES}}
        lo = track_global(labels, params.model_copy(update={"weights": links_only}),
                          fixed_edges=curated_links(graph, frames),
                          forbidden_nodes_frames=list(frames))
        rows.append((tra(graph), tra(after), tra(lo)))
        print(f"  {first:>3}-{first + n_curated - 1:<4} {rows[-1][0]:7.4f} {rows[-1][1]:10.4f} "
              f"{rows[-1][2]:10.4f} {dt1:5.1f}s")
    m = np.mean(rows, axis=0)
    print(f"  {'mean':>8} {m[0]:7.4f} {m[1]:10.4f} {m[2]:10.4f}")


if __name__ == "__main__":
    main()
