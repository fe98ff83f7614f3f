"""Benchmark: ``h4tracks track`` end to end vs the predecessor mmv_h4tracks 1.3.0 in-process.

    python benchmarks/bench_track_e2e.py [--frames 200 --size 1024 --cells 400 --max-cells 700]
    #   [--repeat 3] [--skip-predecessor] [--baseline-src OLD/src] [--dir /scratch]

Builds the movie of issue 20 with the product's own simulator
(:func:`h4tracks.datasets.synthetic.make_movie`: 200 frames of 1024², 400 cells growing to 700
by division, ~135k cells in all) and saves it as a project (image + labels, as ``h4tracks new``
leaves it). Then, each on a fresh copy of that project:

1. ``h4tracks track PROJECT --method lap -q`` as a subprocess (the console script of this
   environment), timed from spawn to exit: process start-up, imports, opening the project
   (lock included), tracking, applying the run (undo step, automatic snapshot), the atomic
   save and interpreter exit. One untimed warm-up, then the median of ``--repeat`` runs.
   Compiled modules are cached as in an installed package (a temporary
   ``PYTHONPYCACHEPREFIX``, filled by the warm-up; ``--no-bytecode-cache``: the environment
   as it is, where PYTHONDONTWRITEBYTECODE makes every start compile h4tracks anew).
2. The same command once more, run through ``main()`` in a worker process whose timers wrap
   ``open_project``, ``compute_tracking`` (its progress splits detection from linking),
   ``Session.apply`` and ``save_project``: the breakdown. Start-up is spawn → the project
   opens; exit is the end of the save → the process has ended.
3. With ``--baseline-src``, the same two measurements with that source tree first on
   ``PYTHONPATH`` (e.g. ``git archive`` of an older commit), on the same project, and whether
   both saved the same lineage (nodes, track ids, links).
4. The predecessor on the same labels: its LAP tracking (``_calculate_centroids_parallel`` +
   ``_match_centroids_parallel`` + ``_process_matches``, in-process, import time excluded, its
   process pool at 80 % of the cores), run exactly as ``bench_predecessor.py`` does it: that
   script's throwaway venv with ``mmv_h4tracks==1.3.0`` from PyPI and its worker. Without
   PyPI access the predecessor's time is taken as 32 s (issue 20's measurement) and the
   output says so.

Prints a table and the ratio predecessor / ours (issue 20's target: at least 15×); asserts
nothing. The movie takes ~35 s to build, the whole run 3-4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ISSUE_PREDECESSOR_S = 32.0  # issue 20: mmv_h4tracks 1.3.0 in-process on this movie
TARGET_RATIO = 15.0
STAGES = ("start-up + imports", "open", "detection", "linking", "apply (undo step)", "save",
          "exit")


# ---------------------------------------------------------------------------------- worker
def worker(project: str, out: str, t_spawn: float) -> None:
    """Run ``h4tracks track`` through ``main()`` with timers around its stages."""
    from h4tracks.cli import main
    from h4tracks.core import session as session_mod
    from h4tracks.core import store

    stamps: dict[str, float] = {"spawn": t_spawn}
    open_project, save_project = store.open_project, store.save_project
    compute_tracking, apply = session_mod.compute_tracking, session_mod.Session.apply

    def timed_open(*a: Any, **k: Any) -> Any:
        stamps["open"] = time.time()
        try:
            return open_project(*a, **k)
        finally:
            stamps["opened"] = time.time()

    def timed_tracking(project: Any, method: Any, params: Any = None, progress: Any = None,
                       cancel: Any = None, **k: Any) -> Any:
        n = project.n_frames

        def split(done: int, total: int) -> None:  # LAP: detection is the first n of 2n
            if done >= n and "detected" not in stamps:
                stamps["detected"] = time.time()
            if progress is not None:
                progress(done, total)

        stamps["track"] = time.time()
        try:
            return compute_tracking(project, method, params, split, cancel, **k)
        finally:
            stamps["linked"] = time.time()

    def timed_apply(self: Any, step: Any) -> Any:
        try:
            return apply(self, step)
        finally:
            stamps["applied"] = time.time()

    def timed_save(*a: Any, **k: Any) -> Any:
        try:
            return save_project(*a, **k)
        finally:
            stamps["saved"] = time.time()

    store.open_project, store.save_project = timed_open, timed_save
    session_mod.compute_tracking = timed_tracking
    session_mod.Session.apply = timed_apply  # type: ignore[method-assign]
    code = main(["track", project, "--method", "lap", "-q"])
    Path(out).write_text(json.dumps({"code": code, **stamps}))


def stage_times(stamps: dict[str, float], t_end: float) -> dict[str, float]:
    """Seconds per stage from the worker's time stamps and the parent's end time."""
    s = stamps
    return dict(zip(STAGES, (s["open"] - s["spawn"], s["opened"] - s["open"],
                             s.get("detected", s["track"]) - s["track"],
                             s["linked"] - s.get("detected", s["track"]),
                             s["applied"] - s["linked"], s["saved"] - s["applied"],
                             t_end - s["saved"]), strict=True))


# ---------------------------------------------------------------------------------- driver
def _env(src: str | None, bytecode: Path | None) -> dict[str, str]:
    """The environment of a run: ``src`` first on the path; with ``bytecode``, compiled
    modules cached there (as an installed package has them: pip compiles at install time,
    while a development environment may set PYTHONDONTWRITEBYTECODE and compile every
    module of h4tracks at every start)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    if bytecode is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    return env


def _command() -> list[str]:
    script = Path(sys.executable).with_name("h4tracks")
    return [str(script)] if script.exists() else [sys.executable, "-m", "h4tracks.cli"]


def fresh_copy(base: Path, work: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work)  # a real copy: runs never share files
    os.sync()  # its write-back must not run during the timed command
    return work


def time_cli(base: Path, work: Path, env: dict[str, str]) -> float:
    """Wall time of one ``h4tracks track`` subprocess on a fresh copy of ``base``."""
    fresh_copy(base, work)
    t0 = time.perf_counter()
    r = subprocess.run([*_command(), "track", str(work), "--method", "lap", "-q"],
                       env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"h4tracks track failed: {r.stderr.strip()[-500:]}")
    return dt


def breakdown(base: Path, work: Path, env: dict[str, str]) -> dict[str, float]:
    fresh_copy(base, work)
    out = work.with_suffix(".json")
    t_spawn = time.time()
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(work),
                    str(out), repr(t_spawn)], env=env, check=True, capture_output=True)
    t_end = time.time()
    return stage_times(json.loads(out.read_text()), t_end)


def lineage_of(path: Path) -> dict[str, np.ndarray]:
    from h4tracks.core.store import open_project

    g = open_project(path).graph
    return {**g.node_table(), "edges": g.edge_array()}


def build_project(args: argparse.Namespace, root: Path) -> tuple[Path, Path, int]:
    """The movie as a saved project and its labels as .npy (for the predecessor)."""
    from h4tracks.core.project import Project
    from h4tracks.core.store import save_project
    from h4tracks.datasets.synthetic import make_movie

    t0 = time.perf_counter()
    m = make_movie(n_frames=args.frames, shape=(args.size, args.size), n_cells=args.cells,
                   max_cells=args.max_cells, seed=0)
    labels = root / "labels.npy"
    np.save(labels, m.labels)
    base = save_project(Project(m.image, m.labels), root / "movie.zarr")
    n_cells = int(sum(np.unique(f).size - 1 for f in m.labels))
    print(f"movie: {args.frames} frames of {args.size}², {n_cells} cells "
          f"({n_cells / args.frames:.0f} per frame, {args.cells} → {args.max_cells}), "
          f"{m.n_divisions} divisions; built and saved in {time.perf_counter() - t0:.0f} s; "
          f"{os.cpu_count()} CPUs")
    return base, labels, n_cells


def predecessor(labels: Path, root: Path, repeat: int) -> tuple[float, str]:
    """Their LAP time (best of ``repeat``) and where the number comes from."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_predecessor as bp

    try:
        py = bp.make_predecessor_venv(root)
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        note = f"{bp.PREDECESSOR} could not be installed ({str(exc)[:200]})"
        return ISSUE_PREDECESSOR_S, f"{note}: issue 20's measurement taken instead"
    r = bp.run_theirs(py, "lap", {"repeat": repeat, "labels": str(labels)}, root, 3600.0)
    if isinstance(r, str):
        return ISSUE_PREDECESSOR_S, f"{bp.PREDECESSOR} {r}: issue 20's measurement taken"
    return float(r["time"]), (f"{bp.PREDECESSOR}, measured now (pool of {r['processes']} "
                              f"process(es), {len(r['links'])} links)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--cells", type=int, default=400, help="cells in the first frame")
    ap.add_argument("--max-cells", type=int, default=700, help="no division beyond this")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs (median)")
    ap.add_argument("--predecessor-repeat", type=int, default=1, help="their runs (best of)")
    ap.add_argument("--skip-predecessor", action="store_true")
    ap.add_argument("--baseline-src", help="an older h4tracks src/ tree to time the same way")
    ap.add_argument("--dir", help="where the temporary project goes (default: system temp)")
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="run in this environment as it is (with PYTHONDONTWRITEBYTECODE set, "
                    "every module of h4tracks is compiled at every start)")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], float(args.worker[2]))
        return

    with tempfile.TemporaryDirectory(prefix="bench_track_e2e_", dir=args.dir) as tmp:
        root = Path(tmp)
        base, labels, _ = build_project(args, root)
        work = root / "work.zarr"
        sides = [("h4tracks (this tree)", None)]
        if args.baseline_src:
            sides.insert(0, ("h4tracks (--baseline-src)", str(Path(args.baseline_src).resolve())))
        results: dict[str, dict[str, Any]] = {}
        for k, (name, src) in enumerate(sides):
            env = _env(src, None if args.no_bytecode_cache else root / f"pycache{k}")
            time_cli(base, work, env)  # warm-up: page cache, bytecode cache
            runs = [time_cli(base, work, env) for _ in range(args.repeat)]
            results[name] = {"runs": runs, "median": statistics.median(runs),
                             "stages": breakdown(base, work, env),
                             "lineage": lineage_of(work)}
        their, source = ((ISSUE_PREDECESSOR_S, "skipped (--skip-predecessor): issue 20's "
                          "measurement taken") if args.skip_predecessor
                         else predecessor(labels, root, args.predecessor_repeat))

    print(f"\n{'h4tracks track --method lap, end to end':42s}" + "".join(
        f"{n:>27s}" for n in results))
    print(f"{'  runs (s)':42s}" + "".join(
        f"{' '.join(f'{t:.2f}' for t in r['runs']):>27s}" for r in results.values()))
    print(f"{'  median (s)':42s}" + "".join(f"{r['median']:27.2f}" for r in results.values()))
    print("  breakdown of one more run (s):")
    for stage in STAGES:
        print(f"{'    ' + stage:42s}" + "".join(f"{r['stages'][stage]:27.3f}"
                                               for r in results.values()))
    print(f"{'    (sum)':42s}" + "".join(f"{sum(r['stages'].values()):27.3f}"
                                          for r in results.values()))
    if len(results) == 2:
        a, b = (r["lineage"] for r in results.values())
        same = a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        print(f"same lineage saved by both (nodes, track ids, links): {same}")
    print(f"\npredecessor LAP on the same labels, in-process: {their:.1f} s — {source}")
    for name, r in results.items():
        ratio = their / r["median"]
        print(f"{name}: {r['median']:.2f} s end to end → {ratio:.1f}× the predecessor "
              f"(target ≥ {TARGET_RATIO:g}×, i.e. ≤ {their / TARGET_RATIO:.2f} s)")


if __name__ == "__main__":
    main()
