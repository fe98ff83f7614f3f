"""Scoring and the validation split of the training recipe (:mod:`.recipe`).

The recipe holds out strips of the curated frames (:func:`split_validation`) and judges
each candidate by AP@0.5 on them, not counting the cells its cut went through
(:func:`score_pieces`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from h4tracks.core.evaluation.segmentation import frame_overlap, match_instances
from h4tracks.errors import InputError


def _match_counts(reference: np.ndarray, predicted: np.ndarray) -> tuple[int, int, int]:
    """(true positives at IoU 0.5, reference cells, predicted cells) of one frame."""
    ov = frame_overlap(np.asarray(reference), np.asarray(predicted))
    return match_instances(ov, 0.5)[0].size, ov.ref_labels.size, ov.pred_labels.size


def ap50(reference: np.ndarray, predicted: np.ndarray) -> float:
    """Average precision at IoU 0.5: TP / (TP + FP + FN) (1.0 when both are empty)."""
    return pooled_ap50([reference], [predicted])


def pooled_ap50(references: Sequence[np.ndarray], predictions: Sequence[np.ndarray]) -> float:
    """AP@0.5 over several frames or pieces: TP / (TP + FP + FN) of the summed counts, so a
    piece with few cells weighs little (1.0 when there are no cells at all)."""
    tp, n_ref, n_pred = np.sum([_match_counts(r, p) for r, p in
                                zip(references, predictions, strict=True)], axis=0)
    denom = n_ref + n_pred - tp
    return 1.0 if denom == 0 else float(tp / denom)


#: validation pieces are strips of this share of a frame, from at most MAX_VAL_FRAMES frames
VAL_SHARE = 0.25
#: a validation strip must be this many cell diameters wide (else a whole frame is held out)
VAL_MIN_DIAMETERS = 2.0
MAX_VAL_FRAMES = 4
_MIN_VAL_SIDE = 32


def split_validation(
    images: Sequence[np.ndarray], masks: Sequence[np.ndarray], min_strip: float = _MIN_VAL_SIDE
) -> tuple:
    """(train_images, train_masks, val_images, val_masks) of a few curated frames.

    A strip of a quarter of the frame (right, bottom, left, top in turn) is held out of each
    of up to ``MAX_VAL_FRAMES`` evenly spread frames; the rest of every frame trains. So
    every curated frame teaches, and the validation score pools cells of several frames,
    which makes the choice between trials less noisy than one held-out frame (which, with
    3 curated frames, also left only 2 to train on: on a real phase-contrast movie, 3
    frames of 384² around a colony of 36 px cells, held-out AP@0.5 0.65 instead of 0.86).
    Frames too small for a strip of ``min_strip`` pixels (the recipe asks for
    ``VAL_MIN_DIAMETERS`` cell diameters, at least 32 px; the cells its cut goes through do
    not count, see :func:`score_pieces`): the last frame is held out whole (a single such
    frame is an error).
    """
    return _split(images, masks, min_strip)[:4]


def _split(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], min_strip: float
           ) -> tuple:
    """:func:`split_validation`, plus the side each validation piece was cut on (None for
    a whole frame), for :func:`score_pieces`."""
    n = len(images)
    if any(min(np.shape(im)) * VAL_SHARE < max(_MIN_VAL_SIDE, min_strip) for im in images):
        if n >= 2:
            return (list(images[:-1]), list(masks[:-1]), [images[-1]], [masks[-1]], [None])
        raise InputError("One curated frame this small cannot be split for validation; "
                         "curate a second frame.")
    picked = set(np.linspace(0, n - 1, min(n, MAX_VAL_FRAMES)).round().astype(int).tolist())
    tr_img: list[np.ndarray] = []
    tr_mask: list[np.ndarray] = []
    val_img: list[np.ndarray] = []
    val_mask: list[np.ndarray] = []
    sides: list[int | None] = []
    for i, (img, m) in enumerate(zip(images, masks, strict=True)):
        img, m = np.asarray(img), np.asarray(m)
        if i not in picked:
            tr_img.append(img)
            tr_mask.append(m)
            continue
        # right, bottom, left, top in turn: pieces from different places
        side, width = _strip_cut(m, len(val_img) % 4, max(_MIN_VAL_SIDE, min_strip))
        (img_a, img_b), (m_a, m_b) = (_cut_strip(x, side, width) for x in (img, m))
        tr_img.append(img_a)
        tr_mask.append(m_a)
        val_img.append(img_b)
        val_mask.append(m_b)
        sides.append(side)
    return tr_img, tr_mask, val_img, val_mask, sides


def _cut_edge(shape: tuple[int, ...], side: int | None) -> tuple[slice, slice] | None:
    """The row or column of a strip cut on ``side`` that touched the rest of its frame."""
    if side is None:
        return None
    at = {0: (slice(None), slice(0, 1)), 1: (slice(0, 1), slice(None)),
          2: (slice(None), slice(shape[1] - 1, shape[1])),
          3: (slice(shape[0] - 1, shape[0]), slice(None))}
    return at[side]


def scored_cells(references: Sequence[np.ndarray], sides: Sequence[int | None]) -> int:
    """How many reference cells :func:`score_pieces` counts (those off the cut edges)."""
    n = 0
    for ref, side in zip(references, sides, strict=True):
        ref = np.asarray(ref)
        ids = np.unique(ref[ref > 0])
        edge = _cut_edge(ref.shape, side)
        n += ids.size if edge is None else np.setdiff1d(ids, ref[edge]).size
    return int(n)


def score_pieces(references: Sequence[np.ndarray], predictions: Sequence[np.ndarray],
                 sides: Sequence[int | None]) -> float:
    """Pooled AP@0.5 of validation pieces, not counting the cells the cut went through:
    reference cells on a strip's cut edge are left out, and so are predicted cells on that
    edge or lying mostly on such a left-out cell. (A strip 2 cell diameters wide holds many
    cut cells, whose fragments scored as noise: a model that reached held-out AP@0.5 0.86
    validated between 0.0 and 0.2.)"""
    refs, preds = [], []
    for ref, pred, side in zip(references, predictions, sides, strict=True):
        edge = _cut_edge(np.shape(ref), side)
        ref, pred = np.asarray(ref), np.asarray(pred)
        if edge is not None:
            cut = np.isin(ref, np.unique(ref[edge][ref[edge] > 0]))
            size = np.bincount(pred.ravel())
            on_cut = np.bincount(pred[cut], minlength=size.size)
            drop = (on_cut > size / 2) & (np.arange(size.size) > 0)
            drop[np.unique(pred[edge])] = True
            drop[0] = False
            ref = np.where(cut, 0, ref)
            pred = np.where(drop[pred], 0, pred)
        refs.append(ref)
        preds.append(pred)
    return pooled_ap50(refs, preds)


#: strip widths tried, as shares of the frame's side (VAL_SHARE first)
_STRIP_SHARES = (VAL_SHARE, 0.2, 0.3, 0.15, 0.35, 0.4)
#: what cutting a cell costs in the choice of a strip, against a cell too many or too few
_CUT_COST = 0.5


def _cut_strip(x: np.ndarray, side: int, width: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(rest, strip) of ``x`` for a strip ``width`` px wide (default: ``VAL_SHARE`` of the
    frame) on ``side`` (0 right, 1 bottom, 2 left, 3 top)."""
    axis = 1 if side in (0, 2) else 0
    cut = round(x.shape[axis] * VAL_SHARE) if width is None else width
    at = x.shape[axis] - cut if side < 2 else cut
    a, b = np.split(x, [at], axis=axis)
    return (b, a) if side >= 2 else (a, b)  # sides 2, 3: the strip is the first part


def _strip_cut(mask: np.ndarray, side: int, min_width: float) -> tuple[int, int]:
    """(side, width) of the validation strip of a frame: the one that holds closest to
    ``VAL_SHARE`` of the frame's cells whole while cutting the fewest (both counted in
    cells: |whole cells in the strip / cells - 0.25| + cut cells / cells / 2: a cut cell
    is not scored, see :func:`score_pieces`, but half of it is lost to training), over the 4 sides
    and widths of 15-40 % of the frame (at least ``min_width`` px); ties go to ``side`` at
    ``VAL_SHARE``, so cells spread evenly keep the usual strips. A colony in one part of
    the frame otherwise left strips without a whole cell (rods 60 px long in strips 73 px
    wide), whose score said nothing."""
    ids = np.unique(mask[mask > 0])
    default = (side, round(mask.shape[1 if side in (0, 2) else 0] * VAL_SHARE))
    if ids.size == 0:
        return default
    best, best_cost = default, np.inf
    for s in [(side + k) % 4 for k in range(4)]:
        axis = 1 if s in (0, 2) else 0
        n = mask.shape[axis]
        for share in _STRIP_SHARES:
            width = round(n * share)
            if width < min_width and share != VAL_SHARE:
                continue
            at = n - width if s < 2 else width
            before = np.take(mask, at - 1, axis=axis)
            after = np.take(mask, at, axis=axis)
            cut = np.intersect1d(before[before > 0], after[after > 0])
            strip = _cut_strip(mask, s, width)[1]
            whole = np.setdiff1d(np.unique(strip[strip > 0]), cut).size
            cost = abs(whole / ids.size - VAL_SHARE) + _CUT_COST * cut.size / ids.size
            if cost < best_cost - 1e-9:
                best, best_cost = (s, width), cost
    return best
