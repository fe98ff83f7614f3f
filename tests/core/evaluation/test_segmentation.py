"""Segmentation scores on hand-made masks with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from h4tracks.core.evaluation import evaluate_segmentation, frame_overlap, match_instances
from h4tracks.core.evaluation.segmentation import FrameOverlap


def _two_squares(shift: int = 0, drop_second: bool = False) -> np.ndarray:
    frame = np.zeros((40, 40), np.uint16)
    frame[5:15, 5 + shift : 15 + shift] = 1
    if not drop_second:
        frame[25:35, 20 + shift : 30 + shift] = 7
    return frame


def test_perfect_segmentation_scores_one() -> None:
    ref = _two_squares()[None]
    s = evaluate_segmentation(ref, ref)
    assert (s.tp, s.fp, s.fn) == (2, 0, 0)
    assert s.precision == s.recall == s.f1 == s.average_precision == s.seg == 1.0
    assert s.mean_iou == s.mean_dice == s.mean_ap == 1.0


def test_shifted_squares_have_known_iou_and_dice() -> None:
    # a 10x10 square shifted by 2 px: intersection 80, union 120
    s = evaluate_segmentation(_two_squares(2)[None], _two_squares()[None])
    assert s.mean_iou == pytest.approx(2 / 3)
    assert s.mean_dice == pytest.approx(0.8)
    assert s.seg == pytest.approx(2 / 3)  # 80 % of each reference square is covered
    assert s.ap_sweep[0.65] == 1.0 and s.ap_sweep[0.7] == 0.0
    assert s.counts_sweep[0.7] == (0, 2, 2)
    assert s.mean_ap == pytest.approx(0.4)
    # shifted by 6 px: intersection 40 < half of the reference -> SEG 0, IoU 0.25
    s = evaluate_segmentation(_two_squares(6)[None], _two_squares()[None])
    assert s.seg == 0.0 and s.tp == 0 and s.fn == 2 and s.fp == 2
    assert s.average_precision == 0.0 and np.isnan(s.mean_iou)


def test_missed_cell_halves_recall() -> None:
    s = evaluate_segmentation(_two_squares(drop_second=True)[None], _two_squares()[None])
    assert s.recall == 0.5 and s.precision == 1.0
    assert s.f1 == pytest.approx(2 / 3) and s.average_precision == 0.5
    assert s.seg == 0.5
    assert s.missed == [(0, 7)] and s.false_positives == []
    # over two frames counts are summed and SEG averages all reference objects
    ref = np.stack([_two_squares(), _two_squares()])
    pred = np.stack([_two_squares(), _two_squares(drop_second=True)])
    s = evaluate_segmentation(pred, ref)
    assert (s.tp, s.fn, s.n_reference) == (3, 1, 4) and s.seg == 0.75
    assert s.frames == [0, 1]
    assert evaluate_segmentation(pred, ref, frames=[1]).recall == 0.5


def test_false_positive_lowers_precision() -> None:
    pred = _two_squares()
    pred[30:38, 2:10] = 9
    s = evaluate_segmentation(pred[None], _two_squares()[None])
    assert (s.tp, s.fp, s.fn) == (2, 1, 0)
    assert s.precision == pytest.approx(2 / 3) and s.average_precision == pytest.approx(2 / 3)
    assert s.false_positives == [(0, 9)]


def test_overlap_table_from_joint_histogram() -> None:
    ref = np.array([[1, 1, 2, 2], [1, 1, 2, 0]])
    pred = np.array([[5, 5, 5, 0], [3, 3, 3, 3]])
    ov = frame_overlap(ref, pred, t=4)
    assert ov.t == 4
    np.testing.assert_array_equal(ov.ref_labels, [1, 2])
    np.testing.assert_array_equal(ov.ref_areas, [4, 3])
    np.testing.assert_array_equal(ov.pred_labels, [3, 5])
    np.testing.assert_array_equal(ov.pred_areas, [4, 3])
    got = {(int(ov.ref_labels[r]), int(ov.pred_labels[p])): int(i)
           for r, p, i in zip(ov.ref_index, ov.pred_index, ov.intersection, strict=True)}
    assert got == {(1, 3): 2, (1, 5): 2, (2, 3): 1, (2, 5): 1}
    # huge label values take the sorting path and give the same table
    big = frame_overlap(ref.astype(np.uint32) * 1_000_000_000, pred, t=4)
    np.testing.assert_array_equal(big.intersection, ov.intersection)
    np.testing.assert_array_equal(big.ref_labels, ov.ref_labels * 1_000_000_000)


def test_hungarian_maximises_matches_below_half() -> None:
    # A overlaps X (0.45) and Y (0.35), B only X (0.4): greedy would give 1 match, the
    # assignment gives A-Y and B-X
    iou = {(0, 0): 0.45, (0, 1): 0.35, (1, 0): 0.4}
    ri = np.array([k[0] for k in iou])
    pi = np.array([k[1] for k in iou])
    # areas 100 each: intersection = 200 iou / (1 + iou)
    inter = np.array([200 * v / (1 + v) for v in iou.values()])
    ov = FrameOverlap(0, np.array([1, 2]), np.array([100, 100]), np.array([1, 2]),
                      np.array([100, 100]), ri, pi, inter)
    chosen, vals = match_instances(ov, 0.3)
    assert sorted(zip(ri[chosen].tolist(), pi[chosen].tolist(), strict=True)) == [(0, 1), (1, 0)]
    np.testing.assert_allclose(sorted(vals), [0.35, 0.4])
    assert match_instances(ov, 0.42)[0].tolist() == [0]


def test_frames_are_read_one_at_a_time() -> None:
    da = pytest.importorskip("dask.array")
    ref = np.stack([_two_squares()] * 3)
    lazy = da.from_array(ref, chunks=(1, 40, 40))
    s = evaluate_segmentation(lazy, lazy, frames=range(1, 3))
    assert s.frames == [1, 2] and s.tp == 4
