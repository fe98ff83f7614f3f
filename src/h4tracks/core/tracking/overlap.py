"""Mask-overlap tracking: link cells of consecutive frames that share pixels.

For every frame pair all overlaps are computed at once from a joint label histogram
(``np.unique`` of the packed codes ``label_t << 32 | label_t+1`` of the pixels labelled in
both frames), turned into a score per pair (``measure``: shared pixels / area of the smaller
cell, or IoU), and thresholded at ``min_overlap``.

Conflicts are resolved globally per frame pair: the one-to-one links maximise the summed score
(``linear_sum_assignment`` per connected block of candidate pairs; shared pixels break ties).

Division rule (``divisions=True``): after the one-to-one step, every cell of frame t+1 that is
still without a parent but overlaps a linked cell of frame t above ``min_overlap`` is offered
to the parent it shares most pixels with; each parent accepts the offered cell sharing most
pixels with it as its second daughter (so a parent gets at most two children: its one-to-one
partner and the largest unlinked overlapping cell).

Stage drift (``drift``, on by default): a stage move of more than a cell's width leaves no
cell overlapping itself, so every track breaks (real E. coli, trpL: TRA 0.871). Frame pairs
whose cells did not stay put (:func:`~h4tracks.core.tracking.motion.pair_suspect`, from the
centroids measured anyway) get their whole-frame shift measured from the masks
(:func:`~h4tracks.core.tracking.motion.frame_drift`, as LAP and the global tracker do), and
the earlier frame t-1 is moved by it before the overlaps are counted. On a still stage no pair is
measured and the links are those without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from h4tracks.core.graph import NodeKey, TrackGraph
from h4tracks.core.parameters import OverlapParams
from h4tracks.core.tracking.detections import measure_frame_boxes, read_frame
from h4tracks.core.tracking.lap import max_weight_matching
from h4tracks.core.tracking.motion import frame_drift, outline_spectrum, pair_suspect, shift_frame
from h4tracks.errors import H4TracksError, InputError

__all__ = ["frame_overlaps", "overlap_links", "track_overlap", "track_single_cell"]

Progress = Callable[[int, int], Any]
Cancel = Callable[[], bool]
_LOW32 = np.uint64(0xFFFFFFFF)


def frame_overlaps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shared pixel counts of every pair of overlapping cells of two label frames.

    Returns
    -------
    (label_a, label_b, shared)
        (P,) int64 arrays, one entry per overlapping pair, sorted by (label_a, label_b).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise InputError(f"frames differ in shape: {a.shape} and {b.shape}")
    both = (a != 0) & (b != 0)
    codes = (a[both].astype(np.uint64) << np.uint64(32)) | b[both].astype(np.uint64)
    u, shared = np.unique(codes, return_counts=True)
    return (u >> np.uint64(32)).astype(np.int64), (u & _LOW32).astype(np.int64), shared


def _scores(
    shared: np.ndarray, area_a: np.ndarray, area_b: np.ndarray, measure: str
) -> np.ndarray:
    shared = shared.astype(np.float64)
    if measure == "iou":
        return shared / (area_a + area_b - shared)
    return shared / np.minimum(area_a, area_b)


def overlap_links(
    la: np.ndarray, lb: np.ndarray, shared: np.ndarray, area_a: np.ndarray,
    area_b: np.ndarray, params: OverlapParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Links (label_t, label_t+1) of one frame pair from its overlap table.

    ``area_a`` / ``area_b`` are the areas of the cells of each pair (same length as ``la``).
    """
    score = _scores(shared, area_a, area_b, params.measure)
    keep = score >= params.min_overlap
    la, lb, shared, score = la[keep], lb[keep], shared[keep], score[keep]
    if la.size == 0:
        return la, lb
    # shared pixels only break ties of the score (their term stays below 1e-6)
    weight = score + 1e-6 * shared / (shared.max() + 1.0)
    sel = max_weight_matching(la, lb, weight)
    pa, pb = la[sel], lb[sel]
    if params.divisions:
        linked_b = np.isin(lb, pb)
        linked_a = np.isin(la, pa)
        offer = np.flatnonzero(~linked_b & linked_a)
        if offer.size:
            # each unlinked child goes to the parent it shares most pixels with ...
            offer = offer[np.lexsort((-shared[offer], lb[offer]))]
            first = np.r_[True, lb[offer][1:] != lb[offer][:-1]]
            offer = offer[first]
            # ... and each parent keeps the offered child sharing most pixels with it
            offer = offer[np.lexsort((-shared[offer], la[offer]))]
            first = np.r_[True, la[offer][1:] != la[offer][:-1]]
            offer = offer[first]
            pa, pb = np.r_[pa, la[offer]], np.r_[pb, lb[offer]]
    return pa, pb


def _lookup(labels_sorted: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    return values[np.searchsorted(labels_sorted, wanted)]


def track_overlap(
    labels: Any,
    params: OverlapParams | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> TrackGraph:
    """Track cells by mask overlap between consecutive frames.

    Parameters
    ----------
    labels
        (T, Y, X) label movie (numpy array or LabelMovie); frames are read one at a time.
    params
        :class:`OverlapParams` (defaults if None).
    progress
        ``progress(done, total)`` after every frame (total = number of frames).
    cancel
        ``cancel() -> bool`` polled between frames; True raises
        ``H4TracksError("Tracking cancelled")``.

    Returns
    -------
    TrackGraph
        One node per cell keyed by (t, label) and the overlap links (see module docstring).
    """
    if params is None:
        params = OverlapParams()
    elif not isinstance(params, OverlapParams):
        raise InputError(f"params must be OverlapParams, got {type(params).__name__}")
    shape = tuple(getattr(labels, "shape", ()))
    if len(shape) != 3:
        raise InputError(f"labels must be a (T, Y, X) movie, got shape {shape}")
    n_frames = int(shape[0])
    nodes: dict[str, list[np.ndarray]] = {c: [] for c in ("t", "label", "y", "x", "area")}
    edges: list[np.ndarray] = []
    prev: np.ndarray | None = None
    prev_m: dict[str, np.ndarray] | None = None
    prev_spec: np.ndarray | None = None  # the previous frame's outline spectrum, if computed
    for t in range(n_frames):
        if cancel is not None and cancel():
            raise H4TracksError("Tracking cancelled")
        cur = read_frame(labels, t)
        m = measure_frame_boxes(cur)
        nodes["t"].append(np.full(m["label"].size, t, np.int64))
        for c in ("label", "y", "x", "area"):
            nodes[c].append(m[c])
        spec = None
        if prev is not None and prev_m is not None:
            if params.drift and _stage_may_have_moved(prev_m, m):
                # each frame is in two pairs: its spectrum is kept for the next one
                spec = outline_spectrum(cur)
                sa = prev_spec if prev_spec is not None else outline_spectrum(prev)
                shift = frame_drift(prev, cur, (sa, spec))
                if shift.any():
                    prev = shift_frame(prev, shift)
            la, lb, shared = frame_overlaps(prev, cur)
            pa, pb = overlap_links(
                la, lb, shared,
                _lookup(prev_m["label"], prev_m["area"], la),
                _lookup(m["label"], m["area"], lb), params,
            )
            edges.append(np.stack([np.full(pa.size, t - 1), pa, np.full(pa.size, t), pb], 1))
        prev, prev_m, prev_spec = cur, m, spec
        if progress is not None:
            progress(t + 1, n_frames)
    cols = {c: np.concatenate(v) if v else np.empty(0) for c, v in nodes.items()}
    e = np.concatenate(edges) if edges else np.empty((0, 4), np.int64)
    return TrackGraph.from_arrays(cols, e)


def _stage_may_have_moved(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> bool:
    """:func:`~h4tracks.core.tracking.motion.pair_suspect` on two frames'
    :func:`measure_frame_boxes`."""
    return pair_suspect(np.column_stack([before["y"], before["x"]]),
                        np.column_stack([after["y"], after["x"]]), after["area"])


def _best_partner(
    nxt: np.ndarray, idx: np.ndarray, params: OverlapParams, area: int
) -> tuple[int, float] | None:
    """(label, score) of the cell of frame ``nxt`` that the pixels ``idx`` (flat indices of
    one cell of ``area`` pixels) overlap best (ties: most shared pixels), or None if they
    overlap no cell."""
    partners, shared = np.unique(nxt.ravel()[idx], return_counts=True)
    nz = partners != 0
    partners, shared = partners[nz].astype(np.int64), shared[nz]
    if partners.size == 0:
        return None
    # areas of the few partners only (a bincount over the frame would read every label)
    area_b = np.array([np.count_nonzero(nxt == p) for p in partners.tolist()])
    score = _scores(shared, np.full(partners.size, area), area_b, params.measure)
    best = int(np.lexsort((-shared, -score))[0])
    return int(partners[best]), float(score[best])


def track_single_cell(
    project_or_labels: Any,
    graph: TrackGraph,
    t: int,
    label: int,
    params: OverlapParams | None = None,
) -> list[tuple[NodeKey, NodeKey]]:
    """Follow one clicked cell forward by mask overlap and return the links to add.

    From ``(t, label)`` the cell of the next frame with the highest overlap score (ties: most
    shared pixels) is taken if it scores at least ``min_overlap``; then it is followed in turn.
    Following stops at the last frame, when no cell of the next frame overlaps enough, when
    that cell already has a predecessor in ``graph`` (another track owns it), or when the
    current cell already has a successor in ``graph`` (the track continues from there
    already). Divisions are not followed. With ``params.drift`` a frame pair whose cells did
    not stay put (the tracker's gate) gets the stage's shift measured from the masks, and the
    cell is looked for where it carried it. Nothing is changed: the caller turns the returned
    ``(parent, child)`` pairs into :class:`~h4tracks.core.actions.AddEdge` actions.

    Parameters
    ----------
    project_or_labels
        A :class:`~h4tracks.core.project.Project` (its labels are used) or a (T, Y, X) label
        movie.
    graph
        The lineage the links are meant for (used to check existing links).
    t, label
        The clicked cell.
    params
        :class:`OverlapParams` (``min_overlap``, ``measure`` and ``drift`` are used).

    Returns
    -------
    list of ((t, label), (t + 1, label)) pairs, in time order.
    """
    params = OverlapParams() if params is None else params
    labels = getattr(project_or_labels, "labels", project_or_labels)
    if labels is None:
        raise InputError("the project has no labels to track")
    n_frames = int(labels.shape[0])
    t, label = int(t), int(label)
    if not 0 <= t < n_frames:
        raise InputError(f"frame {t} is out of range (the movie has {n_frames} frames)")
    if label <= 0 or (t, label) not in graph:
        raise InputError(f"there is no cell with label {label} in frame {t}")
    out: list[tuple[NodeKey, NodeKey]] = []
    cur = read_frame(labels, t)
    cur_m = measure_frame_boxes(cur) if params.drift else None
    while t + 1 < n_frames:
        if graph.successors((t, label)):
            break
        idx = np.flatnonzero(cur.ravel() == label)
        area = idx.size  # the whole cell's, even where a shift moves part of it out
        nxt = read_frame(labels, t + 1)
        nxt_m = None
        if cur_m is not None:
            # the tracker's gate and shift: a stage move can lay another cell on the
            # clicked one's place, so waiting until the cell is lost is not enough
            nxt_m = measure_frame_boxes(nxt)
            if _stage_may_have_moved(cur_m, nxt_m):
                shift = frame_drift(cur, nxt)
                if shift.any():  # the cell's pixels where the stage carried them
                    idx = np.flatnonzero(shift_frame(cur, shift).ravel() == label)
        found = _best_partner(nxt, idx, params, area=area)
        if found is None:
            break
        child = (t + 1, found[0])
        if found[1] < params.min_overlap or child not in graph:
            break
        if graph.predecessor(child) is not None:
            break
        out.append(((t, label), child))
        t, label, cur, cur_m = child[0], child[1], nxt, nxt_m
    return out
