"""Quality flags of one movie's automatic result, for the ``flags`` column of ``movies.csv``:
short warnings that tell which movies of a large run to look at first in napari.

Each flag is computed from the lineage graph's node table in a few vectorised passes (no
label pixels are read, so a flag costs milliseconds even on a long movie):

==========================  =================================================================
flag                        raised when
==========================  =================================================================
``no cells``                the project has no cell at all (nothing else is checked)
``not tracked``             no link and no tracking step in the provenance
``no links``                tracked, yet no cell is linked to another
``N empty frames``          N frames hold no cell (failed or skipped segmentation, focus loss)
``N count jumps``           N pairs of consecutive non-empty frames whose cell count changes by
                            more than 50 % of the earlier one and by at least 3 cells
                            (segmentation failing on some frames, stage moves, flashes)
``P % one-frame tracks``    tracked, and more than 30 % of the tracks are a single cell
                            (links missed: cells moving farther than the tracker allows)
``P % cells at border``     more than 25 % of the cells reach the outermost pixel row or
                            column, each cell taken as a disc of its area around its
                            centroid (cut cells: shape metrics and track lengths biased)
==========================  =================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from h4tracks.core.pipeline.state import _TRACK_STEPS

__all__ = ["BORDER_SHARE", "JUMP_CELLS", "JUMP_SHARE", "ONE_FRAME_SHARE", "project_flags",
           "quality_flags"]

#: a count change between consecutive frames above this share of the earlier count ...
JUMP_SHARE = 0.5
#: ... and of at least this many cells is a jump (1 → 2 cells is a division, not an alarm)
JUMP_CELLS = 3
#: share of one-cell tracks above which linking probably failed
ONE_FRAME_SHARE = 0.3
#: share of cells at the image border above which the field of view cuts too many
BORDER_SHARE = 0.25


def quality_flags(nodes: Mapping[str, np.ndarray], *, n_frames: int,
                  frame_shape: tuple[int, int], n_edges: int, tracked: bool) -> list[str]:
    """The flags of one movie (see the module docstring), in a fixed order.

    Parameters
    ----------
    nodes
        The graph's node table: ``t``, ``y``, ``x``, ``area`` and ``track_id`` per cell.
    n_frames
        Frames of the movie (frames past the last cell count as empty too).
    frame_shape
        (height, width) of a frame in pixels.
    n_edges
        Links in the graph.
    tracked
        Whether a tracking step ran (the provenance has one).
    """
    t = np.asarray(nodes["t"], np.int64)
    if t.size == 0:
        return ["no cells"]
    flags: list[str] = []
    if n_edges == 0:
        flags.append("no links" if tracked else "not tracked")
    counts = np.bincount(t, minlength=n_frames)
    empty = int(np.count_nonzero(counts == 0))
    if empty:
        flags.append(f"{empty} empty frame{'s' if empty > 1 else ''}")
    before, after = counts[:-1], counts[1:]
    change = np.abs(after - before)
    jumps = int(np.count_nonzero((before > 0) & (after > 0) & (change >= JUMP_CELLS)
                                 & (change > JUMP_SHARE * before)))
    if jumps:
        flags.append(f"{jumps} count jump{'s' if jumps > 1 else ''}")
    if n_edges > 0:
        _ids, per_track = np.unique(np.asarray(nodes["track_id"]), return_counts=True)
        single = float(np.mean(per_track == 1))
        if single > ONE_FRAME_SHARE:
            flags.append(f"{round(100 * single)} % one-frame tracks")
    h, w = frame_shape
    radius = np.sqrt(np.asarray(nodes["area"], np.float64) / np.pi)
    y, x = np.asarray(nodes["y"], np.float64), np.asarray(nodes["x"], np.float64)
    # pixel centres are at integers, so pixel row 0 spans -0.5..0.5: a disc of radius r
    # reaches into it when y - r < 0.5 (on 4 synthetic movies this share was within 6
    # points of the exact count of labels touching the edge; a 1-pixel margin overcounted)
    border = ((y - radius < 0.5) | (x - radius < 0.5) | (y + radius > h - 1.5)
              | (x + radius > w - 1.5))
    share = float(np.mean(border))
    if share > BORDER_SHARE:
        flags.append(f"{round(100 * share)} % cells at border")
    return flags


def _tracked(provenance: Iterable[Mapping[str, Any]]) -> bool:
    return any(e.get("step") in _TRACK_STEPS for e in provenance)


def project_flags(project: Any) -> list[str]:
    """:func:`quality_flags` of a project (its graph, shape and provenance)."""
    graph = project.graph
    _t, h, w = project.shape
    return quality_flags(graph.node_table(), n_frames=int(project.n_frames),
                         frame_shape=(int(h), int(w)), n_edges=int(graph.n_edges),
                         tracked=_tracked(project.metadata.provenance))
