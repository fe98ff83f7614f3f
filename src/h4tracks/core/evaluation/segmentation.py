"""Instance segmentation scores: IoU matching, precision/recall/F1/AP and the CTC SEG score.

All overlaps of a frame are computed at once from the joint histogram of the two label
images (one ``bincount`` over the pixels, or ``np.unique`` when the label values are too
large for a dense table), giving a sparse list of overlapping (reference, predicted) pairs
with their intersection; IoU, Dice, the Hungarian matching and the CTC matching rule all
work on that list, never on the pixels again.

Definitions (``TP``/``FP``/``FN`` summed over the frames of the range):

* precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN);
* average precision at a threshold = TP / (TP + FP + FN) (as Cellpose and StarDist define it);
* a predicted and a reference object match at threshold ``τ`` when they are paired by the
  Hungarian assignment that first maximises the number of pairs with IoU ≥ τ, then their IoU;
* SEG (Cell Tracking Challenge): each reference object scores the IoU of the predicted object
  covering more than half of its pixels, or 0; SEG is the mean over all reference objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "THRESHOLDS",
    "FrameOverlap",
    "SegmentationMetrics",
    "evaluate_segmentation",
    "frame_overlap",
    "match_instances",
    "read_frame",
    "segmentation_from_overlaps",
]

#: IoU thresholds of the average-precision sweep: 0.50, 0.55, ..., 0.95
THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def read_frame(movie: Any, t: int) -> np.ndarray:
    """Frame ``t`` of a label movie (numpy, dask, zarr or :class:`LabelMovie`) as numpy."""
    frame_fn = getattr(movie, "frame", None)
    if callable(frame_fn):
        return np.asarray(frame_fn(t))
    frame = movie[t]
    compute = getattr(frame, "compute", None)  # dask: one chunk per frame
    return np.asarray(compute() if callable(compute) else frame)


@dataclass(frozen=True)
class FrameOverlap:
    """Sparse overlap table of one frame.

    Attributes
    ----------
    t
        Frame index.
    ref_labels, ref_areas
        Sorted labels of the reference objects and their pixel counts.
    pred_labels, pred_areas
        Sorted labels of the predicted objects and their pixel counts.
    ref_index, pred_index, intersection
        One entry per overlapping pair: indices into ``ref_labels`` / ``pred_labels`` and
        the number of shared pixels (> 0).
    """

    t: int
    ref_labels: np.ndarray
    ref_areas: np.ndarray
    pred_labels: np.ndarray
    pred_areas: np.ndarray
    ref_index: np.ndarray
    pred_index: np.ndarray
    intersection: np.ndarray

    @property
    def iou(self) -> np.ndarray:
        """IoU of every overlapping pair."""
        union = self.ref_areas[self.ref_index] + self.pred_areas[self.pred_index]
        return self.intersection / (union - self.intersection)

    def ctc_matches(self) -> np.ndarray:
        """Pairs obeying the CTC rule (the predicted object covers > 50 % of the reference
        object), as a boolean mask over the pair list. Integer test, no rounding."""
        return 2 * self.intersection > self.ref_areas[self.ref_index]


def _compact(values: np.ndarray, n_pix: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Present non-zero labels, their areas and each pixel's index into them (-1 = bg)."""
    top = int(values.max(initial=0))
    if top < 4 * n_pix + 1024:
        # bincount is O(pixels); a sort is only needed when label values are huge
        counts = np.bincount(values, minlength=top + 1)
        labels = np.flatnonzero(counts)
        labels = labels[labels > 0]
        lut = np.full(top + 1, -1, np.int64)
        lut[labels] = np.arange(labels.size)
        return labels.astype(np.int64), counts[labels].astype(np.int64), lut[values]
    labels, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    if labels.size and labels[0] == 0:
        return labels[1:].astype(np.int64), counts[1:].astype(np.int64), inverse - 1
    return labels.astype(np.int64), counts.astype(np.int64), inverse


def frame_overlap(reference: np.ndarray, predicted: np.ndarray, t: int = 0) -> FrameOverlap:
    """All overlaps between the objects of two label images, from one joint histogram.

    Parameters
    ----------
    reference, predicted
        2D integer label images of the same shape (0 = background).
    t
        Frame index stored in the result.
    """
    ref = np.asarray(reference).ravel()
    pred = np.asarray(predicted).ravel()
    if ref.shape != pred.shape:
        raise ValueError(f"frame shapes differ: {np.shape(reference)} vs {np.shape(predicted)}")
    n = ref.size
    r_lab, r_area, r_idx = _compact(ref.astype(np.intp, copy=False), n)
    p_lab, p_area, p_idx = _compact(pred.astype(np.intp, copy=False), n)
    both = (r_idx >= 0) & (p_idx >= 0)
    n_p = max(p_lab.size, 1)
    codes = r_idx[both] * n_p + p_idx[both]
    if r_lab.size * n_p <= 4 * n + 1024:
        hist = np.bincount(codes, minlength=r_lab.size * n_p)
        pairs = np.flatnonzero(hist)
        inter = hist[pairs]
    else:
        pairs, inter = np.unique(codes, return_counts=True)
    return FrameOverlap(
        t=int(t),
        ref_labels=r_lab, ref_areas=r_area, pred_labels=p_lab, pred_areas=p_area,
        ref_index=(pairs // n_p).astype(np.int64), pred_index=(pairs % n_p).astype(np.int64),
        intersection=inter.astype(np.int64),
    )


def match_instances(ov: FrameOverlap, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of reference and predicted objects at an IoU threshold.

    Hungarian assignment maximising first the number of pairs with IoU ≥ ``threshold``,
    then their summed IoU (the Cellpose/StarDist cost). Only objects with a candidate pair
    enter the assignment; when no object has two candidates (always the case above
    IoU 0.5 except for ties) the candidates are the matching and no assignment is solved.

    Returns
    -------
    (pairs, iou)
        Indices into the pair list of ``ov`` that are matched, and their IoU.
    """
    iou = ov.iou
    cand = np.flatnonzero(iou >= threshold)
    if cand.size == 0:
        return cand, iou[cand]
    ri, pi = ov.ref_index[cand], ov.pred_index[cand]
    if np.unique(ri).size == ri.size and np.unique(pi).size == pi.size:
        return cand, iou[cand]
    rows, r_inv = np.unique(ri, return_inverse=True)
    cols, c_inv = np.unique(pi, return_inverse=True)
    n_min = min(rows.size, cols.size)
    cost = np.zeros((rows.size, cols.size))
    # one matched pair outweighs any sum of IoUs (each < 1/(2 n_min) after scaling)
    cost[r_inv, c_inv] = -1.0 - iou[cand] / (2 * n_min)
    a, b = linear_sum_assignment(cost)
    lookup = np.full((rows.size, cols.size), -1, np.int64)
    lookup[r_inv, c_inv] = cand
    chosen = lookup[a, b]
    chosen = np.sort(chosen[chosen >= 0])
    return chosen, iou[chosen]


@dataclass
class SegmentationMetrics:
    """Segmentation scores over a frame range (see the module docstring for definitions).

    ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``, ``average_precision``,
    ``mean_iou`` and ``mean_dice`` are at IoU 0.5; ``ap_sweep`` maps each threshold of
    :data:`THRESHOLDS` to the average precision there, ``counts_sweep`` to (TP, FP, FN).
    ``missed`` (reference objects) and ``false_positives`` (predicted objects) are the
    unmatched ``(t, label)`` at IoU 0.5.
    """

    frames: list[int]
    n_reference: int
    n_predicted: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    average_precision: float
    mean_iou: float
    mean_dice: float
    seg: float
    ap_sweep: dict[float, float] = field(default_factory=dict)
    counts_sweep: dict[float, tuple[int, int, int]] = field(default_factory=dict)
    missed: list[tuple[int, int]] = field(default_factory=list)
    false_positives: list[tuple[int, int]] = field(default_factory=list)

    @property
    def mean_ap(self) -> float:
        """Mean of the average precision over the 0.5–0.95 sweep."""
        return float(np.mean(list(self.ap_sweep.values()))) if self.ap_sweep else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict (thresholds as strings)."""
        return {
            "frames": [self.frames[0], self.frames[-1]] if self.frames else [],
            "n_frames": len(self.frames),
            "n_reference": self.n_reference, "n_predicted": self.n_predicted,
            "tp": self.tp, "fp": self.fp, "fn": self.fn,
            "precision": self.precision, "recall": self.recall, "f1": self.f1,
            "average_precision": self.average_precision, "mean_ap": self.mean_ap,
            "mean_iou": self.mean_iou, "mean_dice": self.mean_dice, "seg": self.seg,
            "ap_sweep": {f"{k:.2f}": v for k, v in self.ap_sweep.items()},
            "counts_sweep": {f"{k:.2f}": list(v) for k, v in self.counts_sweep.items()},
            "missed": [list(k) for k in self.missed],
            "false_positives": [list(k) for k in self.false_positives],
        }


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def segmentation_from_overlaps(
    overlaps: Sequence[FrameOverlap], thresholds: Iterable[float] = THRESHOLDS
) -> SegmentationMetrics:
    """Aggregate segmentation scores of precomputed frame overlaps (see module docstring)."""
    thresholds = sorted({round(float(x), 6) for x in (*thresholds, 0.5)})
    counts = {thr: [0, 0, 0] for thr in thresholds}
    n_ref = n_pred = 0
    seg_sum = 0.0
    ious, missed, false_pos = [], [], []
    for ov in overlaps:
        n_r, n_p = ov.ref_labels.size, ov.pred_labels.size
        n_ref += n_r
        n_pred += n_p
        # CTC SEG: the > 50 % coverage match is unique per reference object
        ctc = ov.ctc_matches()
        seg_sum += float(ov.iou[ctc].sum())
        for thr in thresholds:
            chosen, iou = match_instances(ov, thr)
            c = counts[thr]
            c[0] += chosen.size
            c[1] += n_p - chosen.size
            c[2] += n_r - chosen.size
            if thr == 0.5:
                ious.append(iou)
                ref_hit = np.zeros(n_r, bool)
                ref_hit[ov.ref_index[chosen]] = True
                pred_hit = np.zeros(n_p, bool)
                pred_hit[ov.pred_index[chosen]] = True
                missed += [(ov.t, int(x)) for x in ov.ref_labels[~ref_hit].tolist()]
                false_pos += [(ov.t, int(x)) for x in ov.pred_labels[~pred_hit].tolist()]
    tp, fp, fn = counts[0.5]
    iou_all = np.concatenate(ious) if ious else np.zeros(0)
    dice = 2 * iou_all / (1 + iou_all)  # Dice of a pair from its IoU
    return SegmentationMetrics(
        frames=[ov.t for ov in overlaps],
        n_reference=n_ref, n_predicted=n_pred, tp=tp, fp=fp, fn=fn,
        precision=_ratio(tp, tp + fp), recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn), average_precision=_ratio(tp, tp + fp + fn),
        mean_iou=float(iou_all.mean()) if iou_all.size else float("nan"),
        mean_dice=float(dice.mean()) if dice.size else float("nan"),
        seg=_ratio(seg_sum, n_ref),
        ap_sweep={thr: _ratio(c[0], sum(c)) for thr, c in counts.items()},
        counts_sweep={thr: (c[0], c[1], c[2]) for thr, c in counts.items()},
        missed=missed, false_positives=false_pos,
    )


def evaluate_segmentation(
    result: Any, reference: Any, frames: Iterable[int] | None = None,
    thresholds: Iterable[float] = THRESHOLDS,
) -> SegmentationMetrics:
    """Score a predicted label movie against a reference label movie, frame by frame.

    Parameters
    ----------
    result, reference
        ``(T, Y, X)`` label movies (numpy, dask, zarr or LabelMovie), read one frame at a time.
    frames
        Frame indices to score (default: all frames).
    thresholds
        IoU thresholds of the AP sweep (0.5 is always included).
    """
    ts = range(len(reference)) if frames is None else [int(t) for t in frames]
    overlaps = [frame_overlap(read_frame(reference, t), read_frame(result, t), t) for t in ts]
    return segmentation_from_overlaps(overlaps, thresholds)
