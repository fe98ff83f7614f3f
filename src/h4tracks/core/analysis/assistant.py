"""Curation assistant: find suspicious tracks and cells to look at (Qt-free).

:func:`find_suspicious` scans the lineage graph and returns, per kind of problem, a list of
:class:`Flag` items ``(t, label, y, x, reason)`` that a user steps through (the Analysis tab
centres the viewer on each). Everything is computed with numpy over the node table (nodes
sorted by (track, t) so tracks are contiguous blocks); only the flagged items become Python
objects.

Kinds and rules (thresholds are fields of :class:`AssistantParams`):

``late_start``
    A track that starts after the first frame, has no parent (it is not a division
    daughter) and whose first position is farther than ``border_margin`` px from the image
    border: a cell does not appear out of nothing mid-image, so a link is probably missing.
``early_end``
    A track that ends before the last frame, does not divide, and whose last position is
    farther than ``border_margin`` px from the border (a cell leaving the field of view
    ends at the border and is not flagged).
``speed_jump``
    A step (between consecutive detections of one track, divided by the elapsed frames)
    whose speed has a robust z-score ``(v - median) / (1.4826 MAD)`` above ``speed_z``
    *and* is at least ``speed_ratio`` times the median step speed (the ratio guard keeps a
    near-constant speed with a tiny MAD from flagging everything). Median and MAD are over
    all steps of all tracks. Usually an identity switch. The item is the step's later cell.
``area_jump``
    A step whose area changes by a factor of at least ``area_ratio`` (larger / smaller):
    typically a merge or split of masks. Division edges are not steps (daughters are new
    tracks), so the halving at a division is not flagged.
``short_track``
    A linked track (it has at least one edge: inside, to a parent or to a child) with fewer
    than ``min_track_length`` detections.
``small_cell``
    A cell whose area is below ``small_area_fraction`` times the median area of all cells:
    debris or a fragment of a neighbour's mask.
``unlinked``
    A cell with no edge at all (a single-node track without parent or child), reported only
    when at least ``linked_fraction`` of all cells are linked (i.e. the movie was tracked;
    before tracking every cell is unlinked and this flag would be noise).

Coordinates are pixels (row ``y``, column ``x``), as in the graph. :class:`AssistantParams`
lives with the other parameter models in :mod:`h4tracks.core.parameters` (its fields carry the
titles and help texts of the plugin's editors) and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from h4tracks.core.graph import TrackGraph
from h4tracks.core.parameters import AssistantParams
from h4tracks.errors import InputError

__all__ = ["KINDS", "AssistantParams", "Flag", "SuspiciousReport", "find_suspicious",
           "project_suspicious"]

#: flag kinds in display order, with a human-readable title
KINDS: dict[str, str] = {
    "late_start": "tracks starting late",
    "early_end": "tracks ending early",
    "speed_jump": "speed jumps",
    "area_jump": "area jumps",
    "short_track": "short tracks",
    "small_cell": "small cells",
    "unlinked": "cells without track",
}

_MAD_TO_SD = 1.4826  # MAD of a normal distribution times this is its SD


class Flag(NamedTuple):
    """One suspicious cell: frame, label, position (px) and why it was flagged."""

    t: int
    label: int
    y: float
    x: float
    reason: str


@dataclass
class SuspiciousReport:
    """Flags per kind (keys of :data:`KINDS`, each a list sorted by (t, label))."""

    flags: dict[str, list[Flag]] = field(default_factory=dict)
    params: AssistantParams = field(default_factory=AssistantParams)

    def __getitem__(self, kind: str) -> list[Flag]:
        return self.flags.get(kind, [])

    @property
    def total(self) -> int:
        """Number of flags of all kinds."""
        return sum(len(v) for v in self.flags.values())

    def counts(self) -> dict[str, int]:
        """``{kind: number of flags}`` for every kind."""
        return {k: len(self.flags.get(k, [])) for k in KINDS}

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {"params": self.params.model_dump(),
                "flags": {k: [list(f) for f in v] for k, v in self.flags.items()}}


def _flags(t: np.ndarray, lab: np.ndarray, y: np.ndarray, x: np.ndarray,
           reasons: list[str]) -> list[Flag]:
    order = np.lexsort((lab, t))
    return [
        Flag(int(t[i]), int(lab[i]), float(y[i]), float(x[i]), reasons[i]) for i in order
    ]


def _robust_z(v: np.ndarray) -> tuple[np.ndarray, float]:
    """Robust z-scores (median / scaled MAD) and the median; z is 0 when MAD is 0."""
    med = float(np.median(v))
    mad = float(np.median(np.abs(v - med))) * _MAD_TO_SD
    if mad == 0:
        # all (or most) values equal: anything above the median is infinitely far out;
        # the ratio guard in the caller decides
        return np.where(v > med, np.inf, 0.0), med
    return (v - med) / mad, med


def find_suspicious(
    graph: TrackGraph,
    image_shape: tuple[int, ...],
    params: AssistantParams | None = None,
    *,
    n_frames: int | None = None,
) -> SuspiciousReport:
    """Flag suspicious tracks and cells of a lineage graph.

    Parameters
    ----------
    graph
        The lineage graph (node positions in px).
    image_shape
        ``(Y, X)`` or ``(T, Y, X)`` shape of the movie (the border and the last frame).
    params
        Thresholds; defaults to :class:`AssistantParams()`.
    n_frames
        Number of frames; taken from a 3-D ``image_shape`` otherwise, else from the graph.

    Returns
    -------
    SuspiciousReport
        For every kind of :data:`KINDS` a list of :class:`Flag` sorted by (t, label).
    """
    if not isinstance(graph, TrackGraph):
        raise InputError(f"expected a TrackGraph, got {type(graph).__name__}")
    p = params or AssistantParams()
    shape = tuple(int(s) for s in image_shape)
    if len(shape) not in (2, 3):
        raise InputError(f"image_shape must be (Y, X) or (T, Y, X), got {image_shape}")
    if len(shape) == 3 and n_frames is None:
        n_frames = shape[0]
    height, width = shape[-2:]

    nt = graph.node_table()
    report = SuspiciousReport({k: [] for k in KINDS}, p)
    if nt["t"].size == 0:
        return report
    order = np.lexsort((nt["t"], nt["track_id"]))
    t, lab = nt["t"][order], nt["label"][order]
    y, x = nt["y"][order], nt["x"][order]
    area = nt["area"][order].astype(np.float64)
    tid = nt["track_id"][order]
    n = t.size
    last_frame = int(t.max()) if n_frames is None else int(n_frames) - 1

    # node membership in edges, by packed (t, label) code
    code = (t << 32) | lab
    edges = graph.edge_array()
    par_codes = (edges[:, 0] << 32) | edges[:, 1]
    chi_codes = (edges[:, 2] << 32) | edges[:, 3]
    has_pred = np.isin(code, chi_codes)
    n_succ = np.zeros(n, np.int64)
    if edges.size:
        srt = np.argsort(code)
        pos = np.searchsorted(code[srt], par_codes)
        np.add.at(n_succ, srt[pos], 1)

    starts = np.flatnonzero(np.r_[True, tid[1:] != tid[:-1]])
    ends = np.r_[starts[1:] - 1, n - 1]
    counts = ends - starts + 1
    border = np.minimum(np.minimum(y, x), np.minimum(height - 1 - y, width - 1 - x))
    far = border > p.border_margin

    # -- late starts / early ends --------------------------------------------------------
    late = starts[(t[starts] > 0) & ~has_pred[starts] & far[starts]]
    report.flags["late_start"] = _flags(
        t[late], lab[late], y[late], x[late],
        [f"track {tid[i]} starts at frame {t[i]}, {border[i]:.0f} px from the border"
         for i in late],
    )
    early = ends[(t[ends] < last_frame) & (n_succ[ends] == 0) & far[ends]]
    report.flags["early_end"] = _flags(
        t[early], lab[early], y[early], x[early],
        [f"track {tid[i]} ends at frame {t[i]}, {border[i]:.0f} px from the border"
         for i in early],
    )

    # -- steps inside tracks: speed and area jumps ---------------------------------------
    step = np.flatnonzero(tid[1:] == tid[:-1])  # step from node i to node i + 1
    if step.size:
        dt = (t[step + 1] - t[step]).astype(np.float64)
        speed = np.hypot(y[step + 1] - y[step], x[step + 1] - x[step]) / dt
        z, med = _robust_z(speed)
        jump = step[(z > p.speed_z) & (speed >= p.speed_ratio * med) & (speed > 0)]
        sp = dict(zip(step.tolist(), speed.tolist(), strict=True))
        j1 = jump + 1
        report.flags["speed_jump"] = _flags(
            t[j1], lab[j1], y[j1], x[j1],
            [f"track {tid[i + 1]}: {sp[i]:.1f} px/frame from frame {t[i]} to {t[i + 1]} "
             f"(median {med:.1f})" for i in jump],
        )
        a0, a1 = area[step], area[step + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.maximum(a0, a1) / np.minimum(a0, a1)
        # a mask that vanished (area 0) next to a real one counts as a jump too
        vanished = (np.minimum(a0, a1) == 0) & (np.maximum(a0, a1) > 0)
        ajump = step[(np.isfinite(ratio) & (ratio >= p.area_ratio)) | vanished]
        a1j = ajump + 1
        report.flags["area_jump"] = _flags(
            t[a1j], lab[a1j], y[a1j], x[a1j],
            [f"track {tid[i + 1]}: area {area[i]:.0f} -> {area[i + 1]:.0f} px from frame "
             f"{t[i]} to {t[i + 1]}" for i in ajump],
        )

    # -- short tracks and unlinked cells -------------------------------------------------
    # a track is linked if it has >1 node, a parent (first node) or children (last node)
    linked_track = (counts > 1) | has_pred[starts] | (n_succ[ends] > 0)
    short = starts[linked_track & (counts < p.min_track_length)]
    cnt = dict(zip(starts.tolist(), counts.tolist(), strict=True))
    report.flags["short_track"] = _flags(
        t[short], lab[short], y[short], x[short],
        [f"track {tid[i]} has only {cnt[i]} detection(s)" for i in short],
    )
    lone = starts[~linked_track]
    if n and (n - lone.size) / n >= p.linked_fraction:
        report.flags["unlinked"] = _flags(
            t[lone], lab[lone], y[lone], x[lone],
            [f"cell {lab[i]} in frame {t[i]} belongs to no track" for i in lone],
        )

    # -- small cells -----------------------------------------------------------------------
    med_area = float(np.median(area))
    small = np.flatnonzero(area < p.small_area_fraction * med_area)
    report.flags["small_cell"] = _flags(
        t[small], lab[small], y[small], x[small],
        [f"area {area[i]:.0f} px, median {med_area:.0f} px" for i in small],
    )
    return report


def project_suspicious(project: Any, params: AssistantParams | None = None) -> SuspiciousReport:
    """:func:`find_suspicious` of a project (its graph and movie shape)."""
    return find_suspicious(project.graph, project.shape, params)
