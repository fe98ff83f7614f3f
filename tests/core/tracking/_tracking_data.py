"""Helpers of the tracking tests: ground-truth and laptrack edges, random walks."""

from __future__ import annotations

import numpy as np

from h4tracks.core.parameters import LapParams
from h4tracks.core.tracking.detections import Detections


def gt_edges(labels: np.ndarray, lineage: np.ndarray) -> set[tuple]:
    """Ground-truth links of a synthetic movie (label == track id, CTC lineage rows)."""
    out: set[tuple] = set()
    for tid, first, last, parent in lineage.tolist():
        out.update(((t, tid), (t + 1, tid)) for t in range(first, last))
        if parent:
            plast = int(lineage[lineage[:, 0] == parent, 2][0])
            out.add(((plast, parent), (first, tid)))
    present = {(t, int(v)) for t in range(labels.shape[0]) for v in np.unique(labels[t]) if v}
    return {e for e in out if e[0] in present and e[1] in present}


def graph_edges(g) -> set[tuple]:
    return {((a, b), (c, d)) for a, b, c, d in g.edge_array().tolist()}


def laptrack_edges(det: Detections, p: LapParams) -> set[tuple]:
    """The oracle: laptrack with the settings equivalent to ``p``, mapped to (t, label)."""
    from laptrack import LapTrack

    lt = LapTrack(
        metric="sqeuclidean",
        cutoff=p.max_distance**2,
        gap_closing_cutoff=p.effective_gap_distance**2 if p.max_gap else False,
        gap_closing_max_frame_count=p.max_gap + 1,
        splitting_cutoff=p.effective_division_distance**2 if p.divisions else False,
        merging_cutoff=False,
    )
    off = det.frame_offsets()
    coords = [det.coords[off[t]:off[t + 1]] for t in range(det.n_frames)]
    tree = lt.predict(coords)

    def key(n):
        t, i = int(n[0]), int(n[1])
        return t, int(det.label[off[t] + i])

    return {(key(a), key(b)) for a, b in tree.edges()}


def random_walk_points(
    n_frames: int, n: int, size: float, step: float, seed: int, drop: float = 0.0,
    split: float = 0.0,
) -> list[np.ndarray]:
    """Points doing a random walk; some vanish for a frame (``drop``), some split."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, size, (n, 2))
    out = []
    for _ in range(n_frames):
        p = p + rng.normal(0, step, p.shape)
        kids = p[rng.random(len(p)) < split] + rng.normal(0, step, (1, 2))
        p = np.concatenate([p, kids])
        out.append(p[rng.random(len(p)) >= drop].copy())
    return out


def on_moving_stage(labels: np.ndarray, jump: int = 30, every: int = 4) -> tuple[np.ndarray,
                                                                                  np.ndarray]:
    """The movie seen by a stage that jumps by (jump, -jump) px every ``every`` frames (the
    cells stay inside the bigger field); the movie and its (T, 2) per-frame shifts."""
    n, h, w = labels.shape
    steps = np.zeros((n, 2), int)
    steps[every::every] = (jump, -jump)
    pos = np.cumsum(steps, axis=0) - np.cumsum(steps, axis=0).min(axis=0)
    span = pos.max(axis=0)
    out = np.zeros((n, h + span[0], w + span[1]), labels.dtype)
    for t in range(n):
        out[t, pos[t, 0]:pos[t, 0] + h, pos[t, 1]:pos[t, 1] + w] = labels[t]
    return out, steps
