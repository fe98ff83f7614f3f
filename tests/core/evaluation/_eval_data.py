"""Shared helpers of the evaluation tests: a small synthetic movie with divisions, error
injection in CTC form (labels = track ids + lineage) and the py-ctcmetrics oracle."""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from h4tracks.datasets.synthetic import SyntheticMovie, make_movie

Ctc = tuple[np.ndarray, np.ndarray]


@lru_cache(maxsize=1)
def movie() -> SyntheticMovie:
    """10 frames of 96², touching cells and several divisions."""
    return make_movie(n_frames=10, shape=(96, 96), n_cells=10, radius=7.0, division_rate=0.25)


def oracle(res: Path, gt: Path) -> dict:
    """py-ctcmetrics scores of a CTC result folder against a ``<seq>_GT`` folder."""
    import ctc_metrics  # the oracle is a test dependency: never skip silently

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ctc_metrics.validate_sequence(str(res), threads=1)["Valid"] == 1
        scores = ctc_metrics.evaluate_sequence(
            str(res), str(gt), metrics=["Valid", "DET", "TRA", "SEG"], threads=1
        )
    assert scores["Valid"] == 1
    return scores


def _new_id(lin: np.ndarray) -> int:
    return int(lin[:, 0].max()) + 1


def leaf(lin: np.ndarray, min_len: int, skip: set[int] = frozenset()) -> int:
    """A track without daughters, at least ``min_len`` frames long, not in ``skip``."""
    ok = ~np.isin(lin[:, 0], lin[:, 3]) & (lin[:, 2] - lin[:, 1] + 1 >= min_len)
    ok &= ~np.isin(lin[:, 0], list(skip))
    return int(lin[ok][0, 0])


def missed_cell(data: Ctc, skip: set[int] = frozenset()) -> tuple[Ctc, int]:
    """The last cell of a leaf track is not segmented (FN, missing edge)."""
    lab, lin = data[0].copy(), data[1].copy()
    tid = leaf(lin, 3, skip)
    row = lin[:, 0] == tid
    last = int(lin[row, 2][0])
    lab[last][lab[last] == tid] = 0
    lin[row, 2] = last - 1
    return (lab, lin), tid


def false_positive(data: Ctc, t: int = 4) -> tuple[Ctc, int]:
    """A 5x5 blob on background in frame ``t`` (a one-frame track)."""
    lab, lin = data[0].copy(), data[1].copy()
    free = lab[t] == 0
    ys, xs = np.nonzero(free[:-5, :-5])
    for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
        if free[y : y + 5, x : x + 5].all():
            break
    new = _new_id(lin)
    lab[t, y : y + 5, x : x + 5] = new
    return (lab, np.vstack([lin, [new, t, t, 0]])), new


def _touching_pairs(frame: np.ndarray) -> set[tuple[int, int]]:
    pairs = set()
    for a, b in ((frame[1:], frame[:-1]), (frame[:, 1:], frame[:, :-1])):
        m = (a > 0) & (b > 0) & (a != b)
        pairs |= {(int(u), int(v)) for u, v in zip(a[m], b[m], strict=True)}
    return pairs


def merged_cell(data: Ctc, skip: set[int] = frozenset()) -> tuple[Ctc, int]:
    """In the last frame, a cell takes over a touching neighbour whose track ends one frame
    earlier (one result object covering two reference objects)."""
    lab, lin = data[0].copy(), data[1].copy()
    t = lab.shape[0] - 1
    for a, b in sorted(_touching_pairs(lab[t])):
        row_b = lin[lin[:, 0] == b][0]
        if b not in skip and a not in skip and row_b[1] < t and b not in lin[:, 3]:
            break
    else:
        raise AssertionError("no touching cells in the last frame")
    lab[t][lab[t] == b] = a
    lin[lin[:, 0] == b, 2] = t - 1
    return (lab, lin), b


def split_cell(data: Ctc, skip: set[int] = frozenset(), t: int = 5) -> tuple[Ctc, int]:
    """One cell of frame ``t`` is cut into two objects (its upper 40 % is a new track)."""
    lab, lin = data[0].copy(), data[1].copy()
    rows = lin[(lin[:, 1] <= t) & (lin[:, 2] >= t) & ~np.isin(lin[:, 0], list(skip))]
    tid = int(rows[0, 0])
    ys, xs = np.nonzero(lab[t] == tid)
    cut = np.quantile(ys, 0.4)
    new = _new_id(lin)
    top = ys < cut
    lab[t, ys[top], xs[top]] = new
    return (lab, np.vstack([lin, [new, t, t, 0]])), tid


def id_switch(data: Ctc, skip: set[int] = frozenset()) -> tuple[Ctc, int]:
    """A leaf track changes id half-way (a missing link)."""
    lab, lin = data[0].copy(), data[1].copy()
    tid = leaf(lin, 4, skip)
    row = lin[lin[:, 0] == tid][0]
    mid = int(row[1] + row[2] + 1) // 2
    new = _new_id(lin)
    lab[mid:][lab[mid:] == tid] = new
    lin[lin[:, 0] == tid, 2] = mid - 1
    return (lab, np.vstack([lin, [new, mid, row[2], 0]])), tid


def missed_division(data: Ctc, skip: set[int] = frozenset()) -> tuple[Ctc, int]:
    """The first daughter continues the mother's track; the second starts a new track."""
    lab, lin = data[0].copy(), data[1].copy()
    parents, counts = np.unique(lin[lin[:, 3] > 0, 3], return_counts=True)
    mother = int(next(p for p in parents[counts == 2] if p not in skip))
    d1, d2 = (int(x) for x in lin[lin[:, 3] == mother, 0])
    if d1 in lin[:, 3]:
        d1, d2 = d2, d1
    row1 = lin[lin[:, 0] == d1][0]
    lab[lab == d1] = mother
    lin[lin[:, 0] == mother, 2] = row1[2]
    lin = lin[lin[:, 0] != d1]
    lin[lin[:, 0] == d2, 3] = 0
    lin[lin[:, 3] == d1, 3] = mother
    return (lab, lin), mother


def gap(data: Ctc, skip: set[int] = frozenset()) -> tuple[Ctc, int]:
    """A leaf track is missed in one middle frame; the rest is linked over the gap (CTC: a
    parent with a single child track)."""
    lab, lin = data[0].copy(), data[1].copy()
    tid = leaf(lin, 5, skip)
    row = lin[lin[:, 0] == tid][0]
    k = int(row[1] + 2)
    new = _new_id(lin)
    lab[k][lab[k] == tid] = 0
    lab[k + 1 :][lab[k + 1 :] == tid] = new
    lin[lin[:, 0] == tid, 2] = k - 1
    return (lab, np.vstack([lin, [new, k + 1, row[2], tid]])), tid
