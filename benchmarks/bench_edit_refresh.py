"""Benchmark: how long after one edit the napari Tracks layer shows it (issue 21, item 6).

Run from the repository root (needs a display, e.g. ``xvfb-run -a``)::

    xvfb-run -a python benchmarks/bench_edit_refresh.py               # 200x400 and 1000x500
    xvfb-run -a python benchmarks/bench_edit_refresh.py --sizes 50x40 --repeat 3

For each size (frames x cells per frame) the synthetic lineage of ``bench_lineage.py``
(gaps, one division per two lanes) is shown in a napari viewer with the h4tracks widget, and
three edits are applied through ``H4TracksWidget.apply_action`` (the path of every curation
click), each followed by Undo: *unlink* (cut one cell out of its track), *link* (join two
track pieces) and *delete track*. Three ways of bringing the Tracks layer up to date are timed
on the same viewer, one after the other:

* ``legacy``: what h4tracks did before (``TrackGraph.to_napari`` then ``layer.data =`` and
  ``layer.graph =``, no features), timed after the same edits;
* ``rebuild``: ``TracksView`` with ``incremental = False``: the arrays recomputed from the
  graph and the whole layer rebuilt through napari's public setters, with the features
  (speed, area, metrics per track);
* ``patch``: ``TracksView`` as shipped: only the edited tracks recomputed
  (``TracksDisplay.update``) and handed to the layer (``tracks_patch.install``).

Columns: median (and worst) milliseconds of the layer refresh, and the median of the whole
``apply_action`` / ``undo`` call, which also runs the other tabs' handlers (``data tab`` is
the Data tab's share, timed apart); then the patch's median per kind of edit. ``--draw``
also times one synchronous repaint of the shown canvas after the edit (Mesa llvmpipe under
Xvfb: a software renderer, the same for every mode). Nothing is asserted; the tests check
that the patched layer equals a rebuilt one.

Last, *frame change*: the viewer is stepped through frames and the time the Labels layer's
features (the shown frame's cells: ``LabelsFeatures``) take is reported, with the whole
``dims.set_current_step`` call (napari slicing every layer included) beside it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lineage import synthetic_graph  # the same synthetic lineage

MODES = ("legacy", "rebuild", "patch")


def _edits(project: Any, rng: np.random.Generator) -> list[tuple[str, Any, Any]]:
    """(name, untimed preparation or None, timed action) for an unlink, a link and a delete
    around a random link of the current graph."""
    from h4tracks.core.tracking import delete_tracks, link, unlink

    g = project.graph
    e = g.edge_array()
    parent, child = (tuple(int(v) for v in r) for r in np.split(e[rng.integers(len(e))], 2))
    return [
        ("unlink", None, lambda: unlink(project, child, child)),
        # link: the cell is cut out first (untimed), then linked back
        ("link", lambda: unlink(project, child, child), lambda: link(project, parent, child)),
        ("delete", None, lambda: delete_tracks(project, [g.track_id(parent)])),
    ]


def _time_mode(main: Any, mode: str, repeat: int, seed: int, draw: Any) -> dict[str, float]:
    view = main.tracks_view
    view.incremental = mode == "patch"
    layer = view.layer()
    refresh, total, data_tab, paint = [], [], [], []
    by_kind: dict[str, list[float]] = {}
    if mode == "legacy":

        def legacy() -> Any:  # the refresh of h4tracks before the patching
            t0 = time.perf_counter()
            data, parents = main.project.graph.to_napari()
            layer.data = data
            layer.graph = parents
            view.last_refresh_seconds = time.perf_counter() - t0
            return layer

        view.refresh = legacy  # type: ignore[method-assign]
    rng = np.random.default_rng(seed)
    try:
        for _ in range(repeat):
            for name, prepare, build in _edits(main.project, rng):
                if prepare is not None:
                    assert main.apply_action(prepare()), main.status.text()
                action = build()
                for step in ("do", "undo"):
                    t0 = time.perf_counter()
                    ok = main.apply_action(action) if step == "do" else main.undo()
                    total.append(time.perf_counter() - t0)
                    assert ok, main.status.text()
                    refresh.append(view.last_refresh_seconds)
                    by_kind.setdefault(name if step == "do" else f"undo {name}",
                                       []).append(view.last_refresh_seconds)
                    t0 = time.perf_counter()
                    main.data_tab._on_edited()
                    data_tab.append(time.perf_counter() - t0)
                    if draw is not None:
                        t0 = time.perf_counter()
                        draw()
                        paint.append(time.perf_counter() - t0)
                if prepare is not None:
                    assert main.undo()
    finally:
        view.__dict__.pop("refresh", None)
        view.incremental = True
    med = statistics.median
    return {"refresh": med(refresh), "worst": max(refresh), "total": med(total),
            "data tab": med(data_tab), "draw": med(paint) if paint else float("nan"),
            "kinds": {k: med(v) for k, v in by_kind.items()}}


def bench_size(n_frames: int, n_cells: int, repeat: int, draw: bool) -> dict[str, dict]:
    import napari
    from qtpy.QtWidgets import QApplication

    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget

    graph = synthetic_graph(n_frames, n_cells)
    # a small label movie: the edits touch the graph only, never pixels
    labels = np.zeros((n_frames, 8, 8), np.uint32)
    project = Project(np.zeros((n_frames, 8, 8), np.uint8), labels, graph=graph)
    viewer = napari.Viewer(show=draw)
    main = H4TracksWidget(viewer)
    t0 = time.perf_counter()
    main.show_project(project)
    shown = time.perf_counter() - t0
    QApplication.processEvents()
    repaint = None
    if draw:
        canvas = viewer.window._qt_viewer.canvas._scene_canvas.native

        def repaint() -> None:
            canvas.repaint()
            QApplication.processEvents()

    print(f"{n_frames} x {n_cells}: {len(graph)} cells, {graph.track_ids().size} tracks, "
          f"{graph.n_divisions} divisions; project shown in {shown:.2f} s")
    out = {mode: _time_mode(main, mode, repeat, seed=1, draw=repaint) for mode in MODES}
    out["frame change"] = _time_frame_change(main, n_frames)
    viewer.close()
    return out


def _time_frame_change(main: Any, n_frames: int, steps: int = 40) -> dict[str, float]:
    """Median ms of the Labels layer's features refresh and of the whole step, over
    ``steps`` frame changes spread over the movie."""
    features = main.tracks_view.labels_features
    dims = main.viewer.dims
    labels_s, step_s = [], []
    for t in np.linspace(1, n_frames - 1, steps).astype(int):
        before = features.last_seconds = -1.0
        t0 = time.perf_counter()
        dims.set_current_step(0, int(t))
        step_s.append(time.perf_counter() - t0)
        if features.last_seconds != before:
            labels_s.append(features.last_seconds)
    n_cells = len(main.project_labels_layer().features)
    med = statistics.median
    return {"labels": med(labels_s), "step": med(step_s), "cells": n_cells,
            "refreshed": len(labels_s)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="200x400,1000x500", help="frames x cells, comma separated")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of the three edits")
    ap.add_argument("--draw", action="store_true", help="show the viewer and time a repaint")
    args = ap.parse_args()
    rows = []
    for size in args.sizes.split(","):
        n_frames, n_cells = (int(v) for v in size.split("x"))
        rows.append((size, bench_size(n_frames, n_cells, args.repeat, args.draw)))
    head = (f"{'size':>9} {'mode':>8} {'layer refresh':>14} {'(worst)':>9} {'apply_action':>13} "
            f"{'data tab':>9}")
    print("\n" + head + (f" {'repaint':>8}" if args.draw else ""))
    for size, res in rows:
        for mode in MODES:
            r = res[mode]
            line = (f"{size:>9} {mode:>8} {r['refresh'] * 1e3:12.1f}ms {r['worst'] * 1e3:7.1f}ms "
                    f"{r['total'] * 1e3:11.1f}ms {r['data tab'] * 1e3:7.1f}ms")
            print(line + (f" {r['draw'] * 1e3:6.1f}ms" if args.draw else ""))
        kinds = ", ".join(f"{k} {v * 1e3:.0f}" for k, v in res["patch"]["kinds"].items())
        print(f"{size:>9} patch by edit (ms): {kinds}")
        ratio = res["rebuild"]["refresh"] / res["patch"]["refresh"]
        print(f"{size:>9} patch is {ratio:.1f}x faster than the rebuild "
              f"({res['legacy']['refresh'] / res['patch']['refresh']:.1f}x than legacy)")
        f = res["frame change"]
        print(f"{size:>9} frame change: Labels features {f['labels'] * 1e3:.2f} ms "
              f"({f['cells']} cells, {f['refreshed']} refreshes), whole step "
              f"{f['step'] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
