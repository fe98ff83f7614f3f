"""The lineage graph of a project as GEFF (the community tracking-graph format): nodes are
cells (``t``, ``label``, ``y``, ``x``, ``area``, ``track_id``), node ids pack ``(t, label)``
into one int64, axes ``t``/``y``/``x`` in frames and pixels, ``track_id`` declared as the
tracklet property. See docs/project-format.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from geff import GeffMetadata
from geff._typing import PropDictNpArray
from geff.core_io import read_to_memory, write_arrays
from geff_spec import Axis

from h4tracks.core.graph import TrackGraph

__all__ = ["read_geff_graph", "write_geff_graph"]


def _node_ids(t: np.ndarray, label: np.ndarray) -> np.ndarray:
    # (t, label) packed into one int64 GEFF node id: t in the high 32 bits
    return (np.asarray(t, np.int64) << 32) | np.asarray(label, np.int64)


def write_geff_graph(
    graph: TrackGraph, path: Path, *, axes: list[Axis] | None = None,
    extra_props: dict[str, np.ndarray] | None = None,
    related_objects: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write ``graph`` as a GEFF graph (zarr 3) at ``path``; returns the attributes the
    project keeps beside it (``next_track_id``, ``revision``).

    ``axes`` default to frames and pixels; ``extra_props`` are more node properties (in the
    order of ``graph.node_table()``); ``related_objects`` go into the GEFF metadata.
    """
    tab = graph.node_table()
    edges = graph.edge_array()
    ids = _node_ids(tab["t"], tab["label"])
    edge_ids = np.stack([_node_ids(edges[:, 0], edges[:, 1]), _node_ids(edges[:, 2], edges[:, 3])],
                        axis=1) if edges.size else np.empty((0, 2), np.int64)
    props = {k: PropDictNpArray(values=v, missing=None)
             for k, v in {**tab, **(extra_props or {})}.items()}
    meta = GeffMetadata(
        directed=True,
        node_props_metadata={},
        edge_props_metadata={},
        axes=axes or [
            Axis(name="t", type="time", unit="frame"),
            Axis(name="y", type="space", unit="pixel"),
            Axis(name="x", type="space", unit="pixel"),
        ],
        track_node_props={"tracklet": "track_id"},
        related_objects=related_objects,
    )
    write_arrays(str(path), ids, props, edge_ids, None, meta, zarr_format=3,
                 structure_validation=False)
    return {"next_track_id": graph.next_track_id, "revision": graph.revision}


def read_geff_graph(path: Path, info: dict[str, Any]) -> TrackGraph:
    """The graph written by :func:`write_geff_graph` at ``path`` (empty if absent);
    ``info`` holds the attributes it returned."""
    if not path.exists():
        return TrackGraph()
    mem = read_to_memory(str(path), structure_validation=False)
    props = mem["node_props"]
    nodes = {k: np.asarray(props[k]["values"]) for k in ("t", "label", "y", "x", "area",
                                                          "track_id")}
    ids = np.asarray(mem["edge_ids"], np.int64).reshape(-1, 2)
    mask = np.int64(0xFFFFFFFF)
    edges = np.stack([ids[:, 0] >> 32, ids[:, 0] & mask, ids[:, 1] >> 32, ids[:, 1] & mask], 1)
    graph = TrackGraph.from_arrays(nodes, edges, next_track_id=info.get("next_track_id"))
    graph.revision = 0
    return graph
