"""Tests of the dense-colony generator (h4tracks.testing.colony) and degraded masks
(h4tracks.testing.degrade)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import regionprops

from h4tracks.core.io.ctc import lineage_from_labels
from h4tracks.datasets.synthetic import SyntheticMovie
from h4tracks.errors import InputError
from h4tracks.testing.colony import ColonyConfig, make_colony
from h4tracks.testing.degrade import degrade_labels, every_nth_frame

SMALL = {"n_frames": 40, "shape": (160, 160), "n_start_cells": 4, "max_cells": 200, "seed": 3}


@pytest.fixture(scope="module")
def rods() -> SyntheticMovie:
    return make_colony(**SMALL)


@pytest.fixture(scope="module")
def rounds() -> SyntheticMovie:
    return make_colony(**SMALL, cell_shape="round")


def _counts(labels: np.ndarray) -> np.ndarray:
    return np.array([np.unique(f).size - 1 for f in labels])


# --------------------------------------------------------------------------------------------
# colony


@pytest.mark.parametrize("name", ["rods", "rounds"])
def test_colony_grows(name: str, request: pytest.FixtureRequest) -> None:
    m = request.getfixturevalue(name)
    n = _counts(m.labels)
    assert m.image.shape == m.labels.shape == (40, 160, 160)
    assert m.labels.dtype == np.uint32 and m.image.dtype == np.uint16
    assert n[-1] >= 3 * n[0]
    assert m.n_divisions >= 20
    # short tracks: a cell cycle is ~9 frames
    lengths = m.lineage[:, 2] - m.lineage[:, 1] + 1
    assert np.median(lengths) < 15


@pytest.mark.parametrize("name", ["rods", "rounds"])
def test_divisions_have_a_present_parent_and_two_daughters(
    name: str, request: pytest.FixtureRequest
) -> None:
    m = request.getfixturevalue(name)
    lin = m.lineage
    row = {int(r[0]): r for r in lin}
    parents, counts = np.unique(lin[lin[:, 3] > 0, 3], return_counts=True)
    assert parents.size > 0
    assert (counts == 2).all()
    for child in lin[lin[:, 3] > 0]:
        mother = row[int(child[3])]
        first = int(child[1])
        assert mother[2] == first - 1  # the mother ends right before the daughters start
        assert (m.labels[first - 1] == mother[0]).any()
        assert (m.labels[first] == child[0]).any()


@pytest.mark.parametrize("name", ["rods", "rounds"])
def test_labels_are_track_ids_consistent_with_lineage(
    name: str, request: pytest.FixtureRequest
) -> None:
    m = request.getfixturevalue(name)
    parents = {int(a): int(d) for a, _, _, d in m.lineage}
    assert np.array_equal(lineage_from_labels(m.labels, parents), m.lineage)
    assert np.array_equal(m.lineage[:, 0], np.arange(1, m.n_tracks + 1))


def test_cells_touch(rods: SyntheticMovie) -> None:
    frame = rods.labels[-1].astype(np.int64)
    touching = set()
    for a, b in ((frame[:, :-1], frame[:, 1:]), (frame[:-1, :], frame[1:, :])):
        t = (a != b) & (a > 0) & (b > 0)
        touching.update(a[t].tolist())
        touching.update(b[t].tolist())
    assert len(touching) > 0.5 * (np.unique(frame).size - 1)


def test_rods_are_elongated_and_round_cells_are_not(
    rods: SyntheticMovie, rounds: SyntheticMovie
) -> None:
    ecc_rod = np.median([p.eccentricity for p in regionprops(rods.labels[-1].astype(int))])
    ecc_round = np.median([p.eccentricity for p in regionprops(rounds.labels[-1].astype(int))])
    assert ecc_rod > 0.85
    assert ecc_round < 0.75


def test_mixed_drift_and_jumps() -> None:
    m = make_colony(n_frames=25, shape=(128, 128), cell_shape="mixed", n_start_cells=6,
                    drift=1.0, jump_rate=0.2, jump_size=15.0, seed=2)
    parents = {int(a): int(d) for a, _, _, d in m.lineage}
    assert np.array_equal(lineage_from_labels(m.labels, parents), m.lineage)
    ecc = [p.eccentricity for p in regionprops(m.labels[-1].astype(int))]
    assert min(ecc) < 0.7 < max(ecc)  # both shapes present


def test_same_seed_same_movie() -> None:
    kw = {"n_frames": 12, "shape": (96, 96), "seed": 5, "jump_rate": 0.3, "drift": 0.5}
    a, b = make_colony(**kw), make_colony(ColonyConfig(**kw))
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.lineage, b.lineage)
    c = make_colony(**{**kw, "seed": 6})
    assert not np.array_equal(a.labels, c.labels)


def _disc_mean(image: np.ndarray, labels: np.ndarray, label: int, r: float) -> float:
    """Mean of ``image`` within ``r`` px of the centroid of cell ``label``, on the cell."""
    ys, xs = np.nonzero(labels == label)
    yy, xx = np.indices(labels.shape)
    near = ((yy - ys.mean()) ** 2 + (xx - xs.mean()) ** 2 <= r * r) & (labels == label)
    return float(image[near].mean())


def test_constriction_pinches_rods_before_they_divide_and_keeps_their_masks() -> None:
    kw = {"n_frames": 30, "shape": (160, 160), "n_start_cells": 3, "cell_length": 20.0,
          "cell_width": 8.0, "snr": 40.0, "illumination": 0.0, "seed": 4}
    plain, pinched = make_colony(**kw), make_colony(**kw, constriction=1.0)
    assert np.array_equal(plain.labels, pinched.labels)
    assert np.array_equal(plain.lineage, pinched.lineage)
    lin = plain.lineage
    mothers = set(lin[lin[:, 3] > 0, 3].tolist())
    before, born = [], []
    for tid, first, last, parent in lin.tolist():
        if tid in mothers and 0 < last < kw["n_frames"] - 1:  # its last frame: about to divide
            before.append((last, tid))
        if parent > 0 and first > 0:  # its first frame: just born
            born.append((first, tid))
    assert len(before) >= 5 and len(born) >= 5

    def ratio(movie, cells):
        return np.array([_disc_mean(movie.image[t].astype(float), movie.labels[t], c, 2.0)
                         for t, c in cells])

    # the middle of a rod about to divide is clearly darker (fluorescence: thinner) ...
    drop = ratio(pinched, before) / ratio(plain, before)
    assert np.median(drop) < 0.8
    # ... and a newborn rod has no pinch
    same = ratio(pinched, born) / ratio(plain, born)
    assert np.allclose(same, 1.0, atol=0.05)


def test_debris_lies_on_the_background_and_is_not_labelled() -> None:
    kw = {"n_frames": 8, "shape": (128, 128), "n_start_cells": 4, "illumination": 0.0,
          "blur_sigma": 0.0, "seed": 2, "modality": "phase contrast"}
    clean, dirty = make_colony(**kw), make_colony(**kw, debris=10.0)
    assert np.array_equal(clean.labels, dirty.labels)
    assert np.array_equal(clean.lineage, dirty.lineage)
    diff = np.abs(dirty.image.astype(float) - clean.image.astype(float))
    noise = np.abs(np.diff(clean.image.astype(float), axis=2)).mean()
    changed = diff > 3 * noise
    # specks (dark, with a halo in phase contrast) on the background in every frame, and
    # the cells' pixels almost untouched (only a speck's halo may reach a cell's rim)
    assert all(changed[t][clean.labels[t] == 0].sum() > 20 for t in range(kw["n_frames"]))
    assert changed[clean.labels > 0].mean() < 0.02


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"n_frames": 0}, "n_frames"),
        ({"shape": (16, 64)}, "shape"),
        ({"shape": "big"}, "shape"),
        ({"cell_shape": "square"}, "cell_shape"),
        ({"cell_length": 5.0, "cell_width": 6.0}, "longer than wide"),
        ({"cycle_frames": 1.0}, "cycle_frames"),
        ({"cycle_spread": 0.9}, "cycle_spread"),
        ({"n_start_cells": 10, "max_cells": 5}, "max_cells"),
        ({"jump_rate": 1.5}, "jump_rate"),
        ({"snr": 0}, "snr"),
        ({"dtype": "float32"}, "dtype"),
        ({"cell_length": 200.0}, "too large"),
        ({"n_start_cells": 400}, "do not fit"),
        ({"seed": 1.5}, "seed"),
        ({"constriction": 1.5}, "constriction"),
        ({"debris": -1.0}, "debris"),
    ],
)
def test_invalid_config(overrides: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        ColonyConfig(**overrides)


def test_unknown_override_and_wrong_config_type() -> None:
    with pytest.raises(InputError, match="Unknown colony parameter"):
        make_colony(n_cells=3)
    with pytest.raises(InputError, match="ColonyConfig"):
        make_colony(object())  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# degraded masks


def _frame_ids(frame: np.ndarray) -> np.ndarray:
    ids = np.unique(frame)
    return ids[ids > 0]


def test_degrade_rates_roughly_respected(rods: SyntheticMovie) -> None:
    gt = rods.labels[20:]
    n_gt = sum(_frame_ids(f).size for f in gt)
    missed = merged = split = 0
    for rate_kw in ({"miss": 0.1, "merge": 0, "split": 0}, {"miss": 0, "merge": 0.1, "split": 0},
                    {"miss": 0, "merge": 0, "split": 0.1}):
        deg = degrade_labels(gt, rods.lineage, seed=1, **rate_kw)
        assert deg.shape == gt.shape and deg.dtype == np.uint32
        for g, d in zip(gt, deg, strict=True):
            gi = g.astype(np.int64)
            di = d.astype(np.int64)
            if rate_kw["miss"]:
                missed += np.setdiff1d(_frame_ids(gi), np.unique(gi[di > 0])).size
            if rate_kw["merge"]:
                # a degraded label covering two GT cells is one merge
                pairs = np.unique(np.stack([di[di > 0], gi[di > 0]]), axis=1)
                merged += int((np.bincount(pairs[0]) == 2).sum())
            if rate_kw["split"]:
                pairs = np.unique(np.stack([gi[gi > 0], di[gi > 0]]), axis=1)
                split += int((np.bincount(pairs[0]) == 2).sum())
    assert 0.06 < missed / n_gt < 0.14
    assert 0.06 < merged / n_gt < 0.14
    assert 0.06 < split / n_gt < 0.14


def test_degrade_merge_covers_two_touching_cells_and_split_stays_inside(
    rounds: SyntheticMovie,
) -> None:
    g = rounds.labels[-1].astype(np.int64)
    d = degrade_labels(g, miss=0, merge=0.2, split=0, seed=2).astype(np.int64)
    pairs = np.unique(np.stack([d[d > 0], g[d > 0]]), axis=1)
    per_label = np.unique(pairs[0], return_counts=True)[1]
    assert (per_label <= 2).all() and (per_label == 2).any()
    assert ((d > 0) == (g > 0)).all()  # no pixel lost or added

    s = degrade_labels(g, miss=0, merge=0, split=0.3, seed=2).astype(np.int64)
    pairs = np.unique(np.stack([s[s > 0], g[s > 0]]), axis=1)
    # every degraded label lies within one GT cell
    assert (np.unique(pairs[0], return_counts=True)[1] == 1).all()
    halves = np.bincount(np.unique(np.stack([g[g > 0], s[g > 0]]), axis=1)[0])
    assert (halves <= 2).all() and (halves == 2).sum() > 0.15 * (np.unique(g).size - 1)
    # the two halves of a split cell are of similar size
    for cell in np.flatnonzero(halves == 2)[:10]:
        _, area = np.unique(s[g == cell], return_counts=True)
        assert area.min() > 0.25 * area.sum()


def test_degrade_is_reproducible_and_validates() -> None:
    lab = np.zeros((2, 20, 20), np.uint16)
    lab[:, 2:8, 2:10] = 1
    lab[:, 2:8, 10:18] = 2
    a = degrade_labels(lab, merge=1.0, seed=0)
    assert np.array_equal(a, degrade_labels(lab, merge=1.0, seed=0))
    assert all(np.unique(f).size == 2 for f in a)  # the two touching cells merged
    assert np.array_equal(degrade_labels(lab, miss=0, merge=0, split=0), lab)
    assert degrade_labels(lab[0], miss=1.0).max() == 0
    with pytest.raises(InputError, match="merge"):
        degrade_labels(lab, merge=2.0)
    with pytest.raises(InputError, match="integer"):
        degrade_labels(lab.astype(float))


def test_more_relaxation_keeps_a_fast_colony_a_monolayer() -> None:
    """With 6 repulsion steps the centre of a fast-growing colony stays crowded with
    squeezed, overlapping cells; 40 steps let the push reach across the colony."""
    late_p10 = {}
    for steps in (6, 40):
        m = make_colony(n_frames=30, shape=(160, 160), n_start_cells=3, cycle_frames=5.0,
                        jitter=0.8, relax_steps=steps, seed=3)
        early = np.concatenate([np.bincount(f.ravel())[1:] for f in m.labels[5:10]])
        late = np.bincount(m.labels[-1].ravel())[1:]
        late_p10[steps] = np.percentile(late[late > 0], 10) / np.median(early[early > 0])
    assert late_p10[40] > 0.6  # measured 0.68
    assert late_p10[40] > late_p10[6] + 0.1  # measured 0.47


def _every_nth_reference(labels, lineage, step, start):
    """Loop version of every_nth_frame (the oracle)."""
    kept = labels[start::step]
    frames: dict[int, list[int]] = {}
    for i, f in enumerate(kept):
        for lab in np.unique(f)[1:].tolist():
            frames.setdefault(lab, []).append(i)
    parent = {int(r[0]): int(r[3]) for r in lineage}
    rows = []
    for lab, fr in sorted(frames.items()):
        p = parent.get(lab, 0)
        while p and p not in frames:
            p = parent.get(p, 0)
        rows.append((lab, fr[0], fr[-1], p))
    return kept, np.array(rows, np.int64)


@pytest.mark.parametrize(("step", "start"), [(1, 0), (2, 1), (3, 0), (7, 2)])
def test_every_nth_frame(rods: SyntheticMovie, step: int, start: int) -> None:
    labels, lineage = every_nth_frame(rods.labels, rods.lineage, step, start)
    ref_labels, ref_lineage = _every_nth_reference(rods.labels, rods.lineage, step, start)
    assert np.array_equal(labels, ref_labels)
    assert np.array_equal(lineage, ref_lineage)
    if step == 1:
        assert np.array_equal(lineage, rods.lineage)
    if step == 7:  # some mothers are never seen: their daughters hang from the grandmother
        assert np.isin(lineage[lineage[:, 3] > 0, 3], lineage[:, 0]).all()
    with pytest.raises(InputError, match="step >= 1"):
        every_nth_frame(rods.labels, rods.lineage, 0)
