"""Benchmark: h4tracks vs its predecessor mmv_h4tracks 1.3.0, in the same run.

    xvfb-run -a python benchmarks/bench_predecessor.py [--frames 50 --size 512 --cells 80]

mmv_h4tracks 1.3.0 (BSD-3) is installed from PyPI at run time into a throwaway venv (created
with ``--system-site-packages`` plus a ``.pth`` that adds this interpreter's site-packages, so
napari, numpy, cellpose … are reused; the few import-time dependencies that are missing are
installed pinned and without their dependencies). Its functions run in subprocesses of that
venv's python, ours in this interpreter, on the same synthetic data
(:func:`h4tracks.datasets.synthetic.make_movie`, ground-truth labels, label == track id):

1. LAP tracking: their ``_calculate_centroids_parallel`` + ``_match_centroids_parallel`` +
   ``_process_matches`` (what the "coordinate-based tracking" button runs: per-frame
   centroids, frame-to-frame LAP, hard-coded 45 px cut-off, process pools with 80 % of the
   cores) vs our ``detect`` + ``track_lap(LapParams(max_distance=45))``; agreement of the links
   and TRA of both against the ground truth (our evaluation).
2. Overlap tracking: their ``TrackingWindow.worker_overlap_tracking`` (unwrapped from its
   thread worker; a process pool per start frame, the whole movie sent to every task) vs our
   ``track_overlap``; run under ``--overlap-timeout``.
3. Evaluation of an "automatic" result (ground truth shifted by 1 px, ~2 % of the cells
   dropped) against the curated ground truth: their ``evaluate_curated_segmentation``
   (IoU, Dice, AP50) on all frames and ``evaluate_curated_tracking`` (FP, FN, split cells,
   deleted/added edges, fault value) on the first ``--eval-track-frames`` frames (it is slow:
   pixel-wise IoU per pair of cells), vs our ``evaluate`` on the same frames.

Their widget methods get minimal stand-ins for ``self`` (plain objects with the attributes
they read: the process-limit radio button, the frame-limit fields, a results table that records
the values) and a ``napari.components.ViewerModel`` (no window) holding the labels layer. Times
are wall-clock, best of ``--repeat`` for ours and of ``--repeat-theirs`` for theirs (import
time of their package excluded). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import site
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

PREDECESSOR = "mmv_h4tracks==1.3.0"
# import-time dependencies of mmv_h4tracks (its __init__ imports the whole widget, whose
# writer imports ome_zarr) that the dev environment lacks; installed with --no-deps
EXTRA_DEPS = ["ome-zarr==0.18.0", "ome-zarr-models==1.7", "pydantic-zarr==0.9.2",
              "Deprecated==1.3.1"]


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Smallest wall time of ``repeat`` calls, and the last result."""
    times, out = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


# ---------------------------------------------------------------------------------------------
# predecessor side (runs in the throwaway venv: imports mmv_h4tracks, never h4tracks)


class _Check:
    """Stand-in for the "eco" radio button (unchecked: their default, 80 % of the cores)."""

    def isChecked(self) -> bool:
        return False


class _Text:
    """Stand-in for a QLineEdit / QComboBox (``text`` / ``currentText``)."""

    def __init__(self, value: str = "") -> None:
        self.value = value

    def text(self) -> str:
        return self.value

    def currentText(self) -> str:
        return self.value


class _Cell:
    def __init__(self, store: dict[str, str], key: str) -> None:
        self.store, self.key = store, key

    def setText(self, value: str) -> None:
        self.store[self.key] = value


class _Results:
    """Stand-in for a results box: ``layout().itemAt(1).widget()`` is a table whose
    ``item(r, c).setText(v)`` records ``v``."""

    def __init__(self) -> None:
        self.cells: dict[str, str] = {}

    def layout(self) -> _Results:
        return self

    def itemAt(self, _i: int) -> _Results:
        return self

    def widget(self) -> _Results:
        return self

    def item(self, r: int, c: int) -> _Cell:
        return _Cell(self.cells, f"{r},{c}")

    def setVerticalHeaderItem(self, *_: Any) -> None:
        pass


class _Parent:
    """Stand-in for the main MMVH4TRACKS widget (what the sub-windows read from it)."""

    def __init__(self) -> None:
        from mmv_h4tracks._widget import MMVH4TRACKS

        self.rb_eco = _Check()
        self.combobox_segmentation = _Text("labels")
        self._limit = MMVH4TRACKS.get_process_limit

    def get_process_limit(self) -> int:
        return self._limit(self)


class _Window:
    """Stand-in for ``self`` of their TrackingWindow / EvaluationWindow: the attributes they
    read, other methods taken unbound from ``cls`` (their class) and bound to the stand-in."""

    def __init__(self, cls: type | None = None, viewer: Any = None, lower: str = "",
                 upper: str = "") -> None:
        self._cls = cls
        self.parent = _Parent()
        self.viewer = viewer
        self.evaluation_limit_lower = _Text(lower)
        self.evaluation_limit_upper = _Text(upper)
        self.segmentation_results = _Results()
        self.tracking_results = _Results()

    def reset_button_labels(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:  # only for names not found above
        cls = self.__dict__.get("_cls")
        if cls is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(cls, name).__get__(self)


def _theirs_lap(job: dict[str, Any]) -> dict[str, Any]:
    from mmv_h4tracks import _processing as proc

    labels = np.load(job["labels"])
    win = _Window()

    def run() -> tuple[Any, Any]:
        centroids = proc._calculate_centroids_parallel(win, labels)
        matches = proc._match_centroids_parallel(win, centroids)
        return proc._process_matches(matches), matches

    t, (tracks, matches) = best_of(run, job["repeat"])
    links = [(t0, int(m["parent"]["id"]), t0 + 1, int(m["child"]["id"]))
             for t0, ms in enumerate(matches) for m in ms]
    return {"time": t, "links": links, "n_track_rows": len(tracks),
            "n_tracks": int(np.unique(tracks[:, 0]).size),
            "processes": win.parent.get_process_limit()}


def _theirs_overlap(job: dict[str, Any]) -> dict[str, Any]:
    import napari
    from mmv_h4tracks._tracking import TrackingWindow
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])  # setOverrideCursor needs one
    viewer = napari.components.ViewerModel()  # model only, no window
    viewer.add_labels(np.load(job["labels"]), name="labels")
    win = _Window(TrackingWindow, viewer)
    fn = TrackingWindow.worker_overlap_tracking.__wrapped__  # undo @thread_worker
    t, tracks = best_of(lambda: fn(win), job["repeat"])
    del app
    return {"time": t, "n_track_rows": 0 if tracks is None else len(tracks),
            "n_tracks": 0 if tracks is None else int(np.unique(tracks[:, 0]).size),
            "processes": win.parent.get_process_limit()}


def _theirs_eval(job: dict[str, Any]) -> dict[str, Any]:
    import napari
    from mmv_h4tracks._evaluation import EvaluationWindow

    gt, ev = np.load(job["gt"]), np.load(job["ev"])
    gt_tracks, ev_tracks = np.load(job["gt_tracks"]), np.load(job["ev_tracks"])
    out: dict[str, Any] = {}

    win = _Window(EvaluationWindow)
    t, _ = best_of(lambda: EvaluationWindow.evaluate_curated_segmentation(win, gt, ev),
                   job["repeat"])
    c = win.segmentation_results.cells
    out["seg"] = {"time": t, "frames": int(gt.shape[0]), "iou": c.get("1,0"),
                  "dice": c.get("1,1"), "ap50": c.get("0,2")}

    n = job["track_frames"]
    times = []
    for _ in range(max(1, job["repeat"])):
        # the ground-truth tracks layer is modified in place (adjust_centroids): fresh copy
        layer = napari.layers.Tracks(gt_tracks.copy(), name="gt")
        win = _Window(EvaluationWindow, lower="0", upper=str(n - 1))
        t0 = time.perf_counter()
        EvaluationWindow.evaluate_curated_tracking(win, layer, gt, ev_tracks.copy(), ev)
        times.append(time.perf_counter() - t0)
    c = win.tracking_results.cells
    out["track"] = {"time": min(times), "frames": n, "fp": c.get("0,1"), "fn": c.get("1,1"),
                    "sc": c.get("2,1"), "de": c.get("1,4"), "ae": c.get("0,4"),
                    "fault_value": c.get("4,1"),
                    "processes": win.parent.get_process_limit()}
    return out


def worker_main(task: str, job_file: str) -> None:
    """Entry point inside the throwaway venv: run one task, write its result as JSON."""
    job = json.loads(Path(job_file).read_text())
    import mmv_h4tracks

    assert mmv_h4tracks.__version__ == "1.3.0", mmv_h4tracks.__file__
    fn = {"lap": _theirs_lap, "overlap": _theirs_overlap, "eval": _theirs_eval}[task]
    out = fn(job)
    out["module"] = mmv_h4tracks.__file__
    Path(job["out"]).write_text(json.dumps(out))


# ---------------------------------------------------------------------------------------------
# driver (this interpreter)


def make_predecessor_venv(root: Path) -> Path:
    """Create the throwaway venv and install the predecessor; return its python."""
    env_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)],
                   check=True)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], check=True, capture_output=True,
                             text=True).stdout.strip()
    # --system-site-packages reaches the base interpreter only; add ours (with its .pth files)
    lines = [f"import site; site.addsitedir({p!r})" for p in site.getsitepackages()]
    Path(purelib, "_h4tracks_parent_env.pth").write_text("\n".join(lines) + "\n")
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--no-deps"]
    r = subprocess.run([*pip, PREDECESSOR, *EXTRA_DEPS], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"pip install failed: {r.stderr.strip()[-800:]}")
    return py


def run_theirs(py: Path, task: str, job: dict[str, Any], root: Path, timeout: float
               ) -> dict[str, Any] | str:
    """Run one predecessor task in a subprocess; its result, or a note why there is none."""
    job = {**job, "out": str(root / f"out_{task}.json")}
    job_file = root / f"job_{task}.json"
    job_file.write_text(json.dumps(job))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONWARNINGS": "ignore"}
    # own session, so that on a timeout its process pool goes too (killpg of its group only)
    proc = subprocess.Popen([str(py), str(Path(__file__).resolve()), "--worker", task,
                             str(job_file)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=root, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return f"not finished within {timeout:g} s, stopped"
    if proc.returncode != 0:
        tail = "\n    ".join((stderr or stdout).strip().splitlines()[-6:])
        return f"failed (exit {proc.returncode}):\n    {tail}"
    return json.loads(Path(job["out"]).read_text())


def napari_tracks(labels: np.ndarray) -> np.ndarray:
    """napari tracks ``(id, t, y, x)`` of a label movie whose label is the track id, with
    rounded centroids, as mmv_h4tracks stores them."""
    from scipy import ndimage

    rows = []
    for t, frame in enumerate(labels):
        ids = np.unique(frame)[1:]
        c = np.rint(np.array(ndimage.center_of_mass(frame, frame, ids))).astype(np.int64)
        rows.append(np.column_stack([ids, np.full(ids.size, t), c.reshape(-1, 2)]))
    out = np.concatenate(rows).astype(np.int64)
    return out[np.lexsort((out[:, 1], out[:, 0]))]


def corrupt(labels: np.ndarray, seed: int = 1) -> np.ndarray:
    """An "automatic" result: every mask shifted by 1 px, ~2 % of the cells dropped."""
    rng = np.random.default_rng(seed)
    out = np.roll(labels, 1, axis=2)
    ids = np.unique(labels)[1:]
    out[np.isin(out, rng.choice(ids, size=max(1, ids.size // 50), replace=False))] = 0
    return out


def _row(name: str, ours: float, theirs: dict[str, Any] | str | None, extra: str = "") -> str:
    if isinstance(theirs, dict):
        t = theirs["time"]
        return f"{name:34s} {ours:9.3f} s {t:10.3f} s {t / ours:9.1f}x  {extra}"
    return f"{name:34s} {ours:9.3f} s {'n/a':>12s} {'':>10s}  {extra}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--cells", type=int, default=80)
    ap.add_argument("--eval-track-frames", type=int, default=10,
                    help="frames for their tracking evaluation (and ours, for the ratio)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of ours (best of)")
    ap.add_argument("--repeat-theirs", type=int, default=1, help="runs of theirs (best of)")
    ap.add_argument("--overlap-timeout", type=float, default=900.0)
    ap.add_argument("--skip-overlap", action="store_true")
    ap.add_argument("--worker", nargs=2, metavar=("TASK", "JOB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main(*args.worker)
        return

    from h4tracks.core.evaluation import TrackingData, evaluate, lineage_edges
    from h4tracks.core.io.ctc import lineage_from_labels
    from h4tracks.core.tracking import LapParams, detect, track_lap, track_overlap
    from h4tracks.datasets.synthetic import make_movie

    m = make_movie(n_frames=args.frames, shape=(args.size, args.size), n_cells=args.cells,
                   radius=9.0, speed=2.0, division_rate=0.01, max_cells=200, seed=0)
    labels = m.labels
    n_cells = float(np.mean([np.unique(f).size - 1 for f in labels]))
    truth = TrackingData(labels, lineage_edges(m.lineage), name="truth")
    print(f"movie: {args.frames} frames of {args.size}², {n_cells:.0f} cells/frame, "
          f"{m.n_tracks} tracks, {m.n_divisions} divisions; {os.cpu_count()} CPUs")

    ev = corrupt(labels)
    parents = dict(zip(m.lineage[:, 0].tolist(), m.lineage[:, 3].tolist(), strict=True))
    present = set(np.unique(ev).tolist())
    ev_lin = lineage_from_labels(ev, {c: p for c, p in parents.items()
                                      if p and c in present and p in present})
    result = TrackingData(ev, lineage_edges(ev_lin), name="result")
    nt = min(args.eval_track_frames, args.frames)

    with tempfile.TemporaryDirectory(prefix="bench_predecessor_") as tmp:
        root = Path(tmp)
        for name, arr in [("labels", labels), ("ev", ev), ("gt_tracks", napari_tracks(labels)),
                          ("ev_tracks", napari_tracks(ev))]:
            np.save(root / f"{name}.npy", arr)
        t0 = time.perf_counter()
        try:
            py: Path | None = make_predecessor_venv(root)
            print(f"throwaway venv with {PREDECESSOR} (+ {', '.join(EXTRA_DEPS)}, --no-deps) "
                  f"in {time.perf_counter() - t0:.0f} s")
        except (subprocess.CalledProcessError, RuntimeError) as exc:
            py = None
            print(f"NOTE: could not install {PREDECESSOR}: {exc}; their columns are n/a")

        def theirs(task: str, timeout: float = 1800.0, **job: Any) -> dict[str, Any] | str:
            if py is None:
                return "not installed"
            job = {"repeat": args.repeat_theirs, "labels": str(root / "labels.npy"), **job}
            r = run_theirs(py, task, job, root, timeout)
            if isinstance(r, str):
                print(f"NOTE: mmv_h4tracks {task}: {r}")
            return r

        # 1. LAP -----------------------------------------------------------------------------
        p = LapParams(max_distance=45)
        t_ours_lap, g = best_of(lambda: track_lap(detect(labels), p), args.repeat)
        their_lap = theirs("lap")
        ours_edges = {tuple(e) for e in g.edge_array().tolist()}
        lap_note = ""
        tra_ours = evaluate(TrackingData.from_graph(labels, g, name="ours"), truth,
                            segmentation=False).tracking
        tra_theirs = None
        if isinstance(their_lap, dict):
            their_edges = {tuple(e) for e in their_lap["links"]}
            same = len(ours_edges & their_edges)
            lap_note = (f"links: ours {len(ours_edges)}, theirs {len(their_edges)}, identical "
                        f"{same} ({same / max(1, len(ours_edges | their_edges)):.2%} of the "
                        f"union); their pool: {their_lap['processes']} process(es)")
            e = np.array(sorted(their_edges), np.int64).reshape(-1, 4)
            e5 = np.column_stack([e, np.zeros(len(e), np.int64)])
            tra_theirs = evaluate(TrackingData(labels, e5, name="theirs"), truth,
                                  segmentation=False).tracking

        # 2. overlap -------------------------------------------------------------------------
        t_ours_ovl, g_ovl = best_of(lambda: track_overlap(labels), args.repeat)
        their_ovl: dict[str, Any] | str = (
            "skipped (--skip-overlap)" if args.skip_overlap
            else theirs("overlap", timeout=args.overlap_timeout))

        # 3. evaluation ----------------------------------------------------------------------
        t_ours_seg, rep_seg = best_of(lambda: evaluate(result, truth, tracking=False),
                                      args.repeat)
        t_ours_trk, rep_trk = best_of(
            lambda: evaluate(result, truth, frames=range(nt), segmentation=False), args.repeat)
        t_ours_all, _ = best_of(lambda: evaluate(result, truth), args.repeat)
        their_ev = theirs("eval", gt=str(root / "labels.npy"), ev=str(root / "ev.npy"),
                          gt_tracks=str(root / "gt_tracks.npy"),
                          ev_tracks=str(root / "ev_tracks.npy"), track_frames=nt)
    # the temporary directory (venv included) is gone here

    their_seg = their_ev["seg"] if isinstance(their_ev, dict) else their_ev
    their_trk = their_ev["track"] if isinstance(their_ev, dict) else their_ev
    print()
    print(f"{'':34s} {'h4tracks':>11s} {'mmv_h4tracks':>12s} {'theirs/ours':>10s}")
    print(_row("LAP tracking (45 px), incl. centroids", t_ours_lap, their_lap))
    print(_row("overlap tracking", t_ours_ovl, their_ovl))
    print(_row(f"evaluation: segmentation, {args.frames} fr.", t_ours_seg, their_seg))
    print(_row(f"evaluation: tracking, {nt} fr.", t_ours_trk, their_trk))
    print(f"{'(ours: tracking + segmentation, all)':34s} {t_ours_all:9.3f} s")
    print()
    if lap_note:
        print(f"LAP agreement: {lap_note}")
    tt = f"{tra_theirs.tra:.4f}" if tra_theirs is not None else "n/a"
    print(f"LAP TRA vs ground truth (h4tracks evaluation): ours {tra_ours.tra:.4f}, "
          f"theirs {tt}")
    ovl = (f"{their_ovl['n_tracks']} tracks / {their_ovl['n_track_rows']} rows (tracks shorter "
           f"than 5 frames dropped), pool {their_ovl['processes']} process(es)"
           if isinstance(their_ovl, dict) else their_ovl)
    print(f"overlap: ours {g_ovl.n_edges} links, {g_ovl.n_divisions} divisions; theirs {ovl}")
    s = rep_seg.segmentation
    print(f"segmentation scores: ours IoU(mean, matched) {s.mean_iou:.3f} Dice {s.mean_dice:.3f} "
          f"AP50 {s.average_precision:.3f} SEG {s.seg:.3f} F1 {s.f1:.3f}")
    if isinstance(their_seg, dict):
        print(f"                     theirs IoU(pixels) {their_seg['iou']} Dice(pixels) "
              f"{their_seg['dice']} AP50 {their_seg['ap50']}")
    tr = rep_trk.tracking
    print(f"tracking scores ({nt} frames): ours TRA {tr.tra:.4f} DET {tr.det:.4f} "
          f"AOGM {tr.aogm:.0f}")
    if isinstance(their_trk, dict):
        print(f"                     theirs FP {their_trk['fp']} FN {their_trk['fn']} "
              f"split {their_trk['sc']} deleted edges {their_trk['de']} added edges "
              f"{their_trk['ae']} fault value {their_trk['fault_value']} "
              f"(pool {their_trk['processes']} process(es))")


if __name__ == "__main__":
    main()
