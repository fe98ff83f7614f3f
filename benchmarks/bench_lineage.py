"""Benchmark of the lineage tree: layout build time and redraw time after one edit.

Run from the repository root (needs a display, e.g. ``xvfb-run -a``)::

    xvfb-run -a python benchmarks/bench_lineage.py              # 200 x 400 and 1000 x 500
    xvfb-run -a python benchmarks/bench_lineage.py --sizes 50x100

For each size (frames x cells per frame) a synthetic lineage graph is built directly with
``TrackGraph.from_arrays`` (every cell linked to the next frame, 10 % of the lanes skip one
frame, one division per 2 lanes), then timed:

* ``layout``: :func:`~h4tracks.core.lineage_layout.layout_graph` of the whole graph (Qt-free);
* ``dock``: the first draw of :class:`~h4tracks.ui.lineage_view.LineageView` in a napari
  viewer with the project's Tracks layer (layout + colours + vispy upload);
* ``redraw``: after one edit (a link removed, then restored) the dock's refresh, i.e. what a
  user waits for after link / unlink / delete (target < 100 ms);
* ``tracks``: the napari Tracks layer refresh after the same edit, for comparison (patched
  since issue 21, item 6; ``bench_edit_refresh.py`` compares it with the whole-layer rebuild).

Numbers are printed (median of ``--repeat`` edits); nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from h4tracks.core.graph import TrackGraph
from h4tracks.core.lineage_layout import layout_graph


def synthetic_graph(n_frames: int, n_cells: int, seed: int = 0) -> TrackGraph:
    """``n_cells`` lanes over ``n_frames`` frames with gaps and divisions (see module doc)."""
    rng = np.random.default_rng(seed)
    keep = np.ones((n_frames, n_cells), bool)
    gap_frame = n_frames // 2
    keep[gap_frame, rng.choice(n_cells, n_cells // 10, replace=False)] = False
    t, lane = np.nonzero(keep)  # sorted by (t, lane)
    label = lane + 1
    order = np.lexsort((t, label))  # lanes in time order: consecutive nodes are linked
    ts, ls = t[order], label[order]
    same = ls[1:] == ls[:-1]
    edges = np.stack([ts[:-1][same], ls[:-1][same], ts[1:][same], ls[1:][same]], axis=1)
    # divisions: the daughter b(f) gets the mother a(f-1) as parent instead of b(f-1)
    n_div = n_cells // 2
    f = rng.integers(2, n_frames - 1, n_div)
    a, b = rng.integers(1, n_cells + 1, n_div), rng.integers(1, n_cells + 1, n_div)
    ok = (a != b) & (np.abs(f - gap_frame) > 1)
    f, a, b = f[ok], a[ok], b[ok]
    _, first_a = np.unique(f * (n_cells + 1) + a, return_index=True)
    _, first_b = np.unique(f * (n_cells + 1) + b, return_index=True)
    pick = np.intersect1d(first_a, first_b)
    f, a, b = f[pick], a[pick], b[pick]
    child_key = edges[:, 2] * (n_cells + 1) + edges[:, 3]
    rows = np.flatnonzero(np.isin(child_key, f * (n_cells + 1) + b))
    new_parent = dict(zip((f * (n_cells + 1) + b).tolist(), a.tolist(), strict=True))
    edges[rows, 1] = [new_parent[int(k)] for k in child_key[rows]]
    nodes = {"t": t, "label": label, "y": rng.uniform(0, 500, t.size),
             "x": rng.uniform(0, 500, t.size), "area": np.full(t.size, 50)}
    return TrackGraph.from_arrays(nodes, edges)


def bench_size(n_frames: int, n_cells: int, repeat: int) -> dict[str, float]:
    import napari
    from qtpy.QtWidgets import QApplication

    from h4tracks.core.project import Project
    from h4tracks.ui.main_widget import H4TracksWidget

    graph = synthetic_graph(n_frames, n_cells)
    t0 = time.perf_counter()
    lay = layout_graph(graph)
    build = time.perf_counter() - t0
    print(f"{n_frames} x {n_cells}: {lay.n_nodes} nodes, {lay.n_tracks} tracks, "
          f"{lay.n_lineages} lineages, {graph.n_divisions} divisions")

    # a small label movie: the dock draws the graph, it never reads pixels
    labels = np.zeros((n_frames, 8, 8), np.uint32)
    project = Project(np.zeros((n_frames, 8, 8), np.uint8), labels, graph=graph)
    viewer = napari.Viewer(show=False)
    main = H4TracksWidget(viewer)
    main.show_project(project)
    t0 = time.perf_counter()
    view = main.show_lineage_view()
    first = time.perf_counter() - t0
    QApplication.processEvents()
    edge = graph.edge_array()[len(graph.edge_array()) // 2]
    parent, child = tuple(edge[:2]), tuple(edge[2:])
    redraws, tracks = [], []
    for i in range(2 * repeat):
        if i % 2 == 0:
            graph.remove_edge(parent, child)
        else:
            graph.add_edge(parent, child)
        t0 = time.perf_counter()
        main.tracks_view.refresh()
        tracks.append(time.perf_counter() - t0)
        view.refresh()
        redraws.append(view.last_redraw_seconds)
        QApplication.processEvents()
    viewer.close()
    return {"layout": build, "dock": first, "redraw": statistics.median(redraws),
            "tracks": statistics.median(tracks)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="200x400,1000x500",
                    help="frames x cells, comma separated")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for size in args.sizes.split(","):
        n_frames, n_cells = (int(v) for v in size.split("x"))
        rows.append((size, bench_size(n_frames, n_cells, args.repeat)))
    print(f"\n{'size':>10} {'layout':>9} {'dock':>9} {'redraw':>9} {'tracks layer':>13}")
    for size, r in rows:
        print(f"{size:>10} {r['layout'] * 1e3:7.1f}ms {r['dock'] * 1e3:7.1f}ms "
              f"{r['redraw'] * 1e3:7.1f}ms {r['tracks'] * 1e3:11.1f}ms")
    print("redraw = lineage dock refresh after one edit (layout + colours + vispy upload); "
          "target < 100 ms")


if __name__ == "__main__":
    main()
