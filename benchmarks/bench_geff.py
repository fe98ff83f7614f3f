"""GEFF export and import of a big tracking next to the project save itself (run:
``python benchmarks/bench_geff.py [--frames 1000] [--cells 500]``).

A synthetic movie of ``--frames`` frames with ``--cells`` cells each (4×4 px squares on a
grid, 10 % of them missing in the middle frame, a division every other cell somewhere: the
lanes of ``bench_lineage.synthetic_graph``) becomes a project; printed, each timed in the
same run on the same data:

* ``save``: :func:`h4tracks.core.store.save_project` of the new project (image, labels,
  graph, snapshot: what ``h4tracks new`` / *Save* write);
* ``export geff``: :func:`h4tracks.core.io.geff_export.export_geff` (graph + label movie, what
  ``h4tracks export --format geff`` writes);
* ``geff library write``: the geff library's own ``geff.core_io.write_arrays`` of the same node and
  edge arrays (graph only), as a reference for the graph part;
* ``import geff``: :func:`h4tracks.core.io.importing.import_geff` of the export (read, checks,
  graph build), then ``save`` of the imported project;
* ``validate``: the geff library's ``validate_structure`` of the export.

Asserts only that the import gives back the same graph. Prints seconds and ratios to the
project save.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from bench_lineage import synthetic_graph
from h4tracks.core.graph import TrackGraph
from h4tracks.core.io.geff_export import export_geff
from h4tracks.core.io.importing import import_geff
from h4tracks.core.project import Project
from h4tracks.core.store import save_project

SIDE = 4  # px of a cell's square
PITCH = 5  # px between square origins


def movie(n_frames: int, n_cells: int) -> tuple[np.ndarray, np.ndarray, TrackGraph]:
    """Image, labels and graph: each lane ``label`` is a square at a fixed grid place, drawn
    in the frames where the graph has that node."""
    graph = synthetic_graph(n_frames, n_cells)
    table = graph.node_table()
    per_row = int(np.ceil(np.sqrt(n_cells)))
    side = per_row * PITCH + PITCH
    t, lab = table["t"].astype(np.int64), table["label"].astype(np.int64)
    gy, gx = (lab - 1) // per_row * PITCH + 2, (lab - 1) % per_row * PITCH + 2
    labels = np.zeros((n_frames, side, side), np.uint32)
    dy, dx = np.mgrid[0:SIDE, 0:SIDE]
    labels[t[:, None, None], gy[:, None, None] + dy, gx[:, None, None] + dx] = \
        lab[:, None, None]
    image = np.where(labels > 0, 200, 20).astype(np.uint8)
    nodes = {"t": t, "label": lab, "y": gy + (SIDE - 1) / 2, "x": gx + (SIDE - 1) / 2,
             "area": np.full(t.size, SIDE * SIDE)}
    return image, labels, TrackGraph.from_arrays(nodes, graph.edge_array())


def timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--cells", type=int, default=500)
    args = ap.parse_args()
    image, labels, graph = movie(args.frames, args.cells)
    print(f"{args.frames} frames of {labels.shape[1]}², {len(graph):,} nodes, "
          f"{graph.n_edges:,} edges, {graph.n_divisions} divisions")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tifffile.imwrite(root / "image.tif", image)
        project = Project(image, labels)
        project.graph = graph
        rows: dict[str, float] = {}
        _, rows["save (project)"] = timed(lambda: save_project(project, root / "p.zarr"))
        _, rows["export geff (graph + labels)"] = timed(
            lambda: export_geff(project, root / "out.geff"))

        from geff.core_io import write_arrays
        from geff_spec import GeffMetadata

        table, edges = graph.node_table(), graph.edge_array()
        key = table["t"].astype(np.int64) * (args.cells + 2) + table["label"]
        order = np.argsort(key)
        row = order[np.searchsorted(key[order], edges[:, [0, 2]] * (args.cells + 2)
                                    + edges[:, [1, 3]])]
        meta = GeffMetadata.read(root / "out.geff" / "tracks")
        cols = {**table, "seg_id": table["label"]}
        props = {k: {"values": np.asarray(cols[k]), "missing": None}
                 for k in meta.node_props_metadata}
        _, rows["geff library write (graph only)"] = timed(lambda: write_arrays(
            root / "lib.geff", np.arange(key.size, dtype=np.int64), props,
            row.astype(np.int64), None, meta, zarr_format=3))

        from geff.validate.structure import validate_structure
        _, rows["validate (geff library)"] = timed(
            lambda: validate_structure(root / "out.geff" / "tracks"))
        # the image readers' first import (bioio, ome-types: ~3 s) is paid once per process
        # by any import; warmed up here so that the row is the GEFF import's own work
        from h4tracks.core.io.readers import read_image
        read_image(root / "image.tif")
        imported, rows["import geff"] = timed(
            lambda: import_geff(root / "out.geff", root / "image.tif"))
        _, rows["save (imported project)"] = timed(
            lambda: save_project(imported, root / "q.zarr"))
        back = imported.graph.edge_array()
        assert len(imported.graph) == len(graph) and np.array_equal(back, edges), \
            "the imported graph differs"
    base = rows["save (project)"]
    print(f"{'step':34s} {'s':>7s} {'× save':>7s}")
    for name, s in rows.items():
        print(f"{name:34s} {s:7.2f} {s / base:7.2f}")


if __name__ == "__main__":
    main()
