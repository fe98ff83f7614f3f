"""Tests of the synthetic movie generator (h4tracks.datasets.synthetic)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from h4tracks.core.io.ctc import lineage_from_labels
from h4tracks.datasets.synthetic import SyntheticConfig, SyntheticMovie, make_movie
from h4tracks.errors import InputError

# Crowded and proliferating: touching cells and divisions are guaranteed to show up.
DENSE = {
    "n_frames": 20,
    "shape": (128, 128),
    "n_cells": 30,
    "radius": 7.0,
    "division_rate": 0.2,
    "seed": 1,
}


@pytest.fixture(scope="module")
def dense() -> SyntheticMovie:
    return make_movie(**DENSE)


def _centroids(labels: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """{(track id, frame): (y, x)} computed with bincount, no loops over pixels."""
    out = {}
    for t, frame in enumerate(labels):
        flat = frame.ravel().astype(np.intp)
        n = np.bincount(flat)
        yy, xx = np.indices(frame.shape)
        sy = np.bincount(flat, yy.ravel())
        sx = np.bincount(flat, xx.ravel())
        for tid in np.flatnonzero(n)[1:]:
            out[(int(tid), t)] = np.array([sy[tid], sx[tid]]) / n[tid]
    return out


def _areas(labels: np.ndarray, t: int) -> np.ndarray:
    return np.bincount(labels[t].ravel().astype(np.intp))


# --------------------------------------------------------------------------------------------


def test_default_movie_shapes_and_dtypes() -> None:
    movie = make_movie()
    cfg = SyntheticConfig()
    assert movie.config == cfg
    assert movie.image.shape == (cfg.n_frames, *cfg.shape)
    assert movie.labels.shape == movie.image.shape
    assert movie.image.dtype == np.uint16
    assert movie.labels.dtype == np.uint32
    assert movie.lineage.dtype == np.int64
    assert movie.lineage.ndim == 2 and movie.lineage.shape[1] == 4
    assert movie.n_tracks == len(movie.lineage) >= cfg.n_cells
    assert len(np.unique(movie.labels[0])) - 1 == cfg.n_cells


def test_uint8_output_uses_the_range_sensibly() -> None:
    movie = make_movie(n_frames=3, shape=(64, 64), n_cells=4, dtype="uint8")
    img = movie.image
    assert img.dtype == np.uint8
    assert img.min() > 0  # camera offset: no clipping at black
    assert np.mean(img == 255) < 0.01  # at most a few saturated pixels
    assert int(img.max()) - int(img.min()) > 60


def test_uint16_output_uses_the_range_sensibly(dense: SyntheticMovie) -> None:
    img = dense.image
    assert img.min() > 0
    assert img.max() < 65535
    assert int(img.max()) - int(img.min()) > 500


def test_same_seed_same_movie_other_seed_other_movie() -> None:
    cfg = {"n_frames": 6, "shape": (64, 64), "n_cells": 5, "division_rate": 0.3}
    a, b = make_movie(seed=7, **cfg), make_movie(seed=7, **cfg)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.lineage, b.lineage)
    c = make_movie(seed=8, **cfg)
    assert not np.array_equal(a.labels, c.labels)


def test_config_object_and_overrides_agree() -> None:
    cfg = SyntheticConfig(n_frames=4, shape=(48, 48), n_cells=3, seed=3)
    a = make_movie(cfg)
    b = make_movie(n_frames=4, shape=(48, 48), n_cells=3, seed=3)
    c = make_movie(cfg, seed=4)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert c.config == cfg.model_copy(update={"seed": 4})


def test_lineage_matches_labels_exactly(dense: SyntheticMovie) -> None:
    lin = dense.lineage
    np.testing.assert_array_equal(lin[:, 0], np.arange(1, len(lin) + 1))
    parents = {int(t): int(p) for t, _, _, p in lin if p}
    # Raises if a track has a gap; compares first/last frames and parents.
    np.testing.assert_array_equal(lineage_from_labels(dense.labels, parents), lin)


def test_divisions_follow_ctc_rules_and_happen_near_the_mother(dense: SyntheticMovie) -> None:
    lin = dense.lineage
    assert dense.n_divisions >= 3
    rows = {int(r[0]): r for r in lin}
    centre = _centroids(dense.labels)
    mothers, counts = np.unique(lin[lin[:, 3] > 0, 3], return_counts=True)
    assert np.all(counts <= 2)
    along = []  # |cos| between the daughters' offset and the mother's long axis
    for mother, n in zip(mothers.tolist(), counts.tolist(), strict=True):
        if n != 2:
            continue
        m_last = int(rows[mother][2])
        daughters = lin[lin[:, 3] == mother]
        np.testing.assert_array_equal(daughters[:, 1], m_last + 1)
        m_area = _areas(dense.labels, m_last)[mother]
        d_area = _areas(dense.labels, m_last + 1)[daughters[:, 0]]
        # Each daughter gets about half of the mother (squeezing by neighbours blurs this).
        assert np.all(d_area < 0.9 * m_area)
        assert d_area.sum() > 0.5 * m_area
        c_m = centre[(mother, m_last)]
        c_d = [centre[(int(d), m_last + 1)] for d in daughters[:, 0]]
        # Either side of the mother: close to her, and on opposite sides of her centre.
        for c in c_d:
            assert np.linalg.norm(c - c_m) < 2.0 * DENSE["radius"]
        assert np.dot(c_d[0] - c_m, c_d[1] - c_m) < 0
        # ... along her long axis (only measurable if she is clearly elongated).
        ys, xs = np.nonzero(dense.labels[m_last] == mother)
        evals, evecs = np.linalg.eigh(np.cov(np.stack([ys, xs])))
        if evals[1] > 1.5 * evals[0]:
            split = (c_d[0] - c_d[1]) / np.linalg.norm(c_d[0] - c_d[1])
            along.append(abs(float(split @ evecs[:, 1])))
    assert len(along) >= 2
    assert np.median(along) > 0.95


def test_crowded_cells_touch(dense: SyntheticMovie) -> None:
    lab = dense.labels
    touching = []
    for a, b in ((lab[:, :, :-1], lab[:, :, 1:]), (lab[:, :-1, :], lab[:, 1:, :])):
        touching.append(((a != b) & (a > 0) & (b > 0)).any(axis=(1, 2)))
    per_frame = touching[0] | touching[1]
    assert per_frame.all()


def test_cells_are_single_components_without_holes(dense: SyntheticMovie) -> None:
    for t in range(dense.labels.shape[0]):
        frame = dense.labels[t]
        objects = ndimage.find_objects(frame)
        for tid, sl in enumerate(objects, start=1):
            if sl is None:
                continue
            mask = frame[sl] == tid
            _, n = ndimage.label(mask)
            assert n == 1, f"track {tid} is split into {n} pieces in frame {t}"
            assert np.array_equal(ndimage.binary_fill_holes(mask), mask), f"hole in {tid}"


def test_cells_are_brighter_than_background_and_noisy(dense: SyntheticMovie) -> None:
    img = dense.image.astype(np.float64)
    fg, bg = dense.labels > 0, dense.labels == 0
    assert img[fg].mean() > img[bg].mean() + 50
    # Noise: a second difference cancels smooth illumination and leaves the pixel noise
    # (sd of f[x-1] - 2 f[x] + f[x+1] is sqrt(6) times the pixel noise sd).
    frame = img[0]
    far_bg = ndimage.binary_erosion(bg[0], iterations=3)
    inner = far_bg[:, 1:-1] & far_bg[:, :-2] & far_bg[:, 2:]
    second = (frame[:, :-2] - 2 * frame[:, 1:-1] + frame[:, 2:])[inner]
    noise_sd = second.std() / np.sqrt(6)
    assert noise_sd > 20  # shot + read noise of the background, ~60 ADU here
    # Not piecewise constant: neighbouring background pixels almost never agree exactly.
    assert np.mean((frame[:, 1:] - frame[:, :-1])[far_bg[:, 1:] & far_bg[:, :-1]] == 0) < 0.05
    # The requested contrast is roughly what we get (blur and squeezing shift it a little).
    eroded = ndimage.binary_erosion(fg[0], iterations=2)
    snr = (frame[eroded].mean() - frame[far_bg].mean()) / noise_sd
    assert 0.5 * 8.0 < snr < 2.0 * 8.0


def test_uneven_illumination_is_present() -> None:
    flat = make_movie(n_frames=1, shape=(96, 96), n_cells=1, illumination=0.0, seed=2)
    uneven = make_movie(n_frames=1, shape=(96, 96), n_cells=1, illumination=0.6, seed=2)

    def spread(m: SyntheticMovie) -> float:
        smooth = ndimage.uniform_filter(m.image[0].astype(float), 15)
        bg = ndimage.binary_erosion(m.labels[0] == 0, iterations=10)
        return float(np.ptp(smooth[bg]) / smooth[bg].mean())

    assert spread(uneven) > 3 * spread(flat)


def _mean_step_and_turn(movie: SyntheticMovie) -> tuple[float, float]:
    centre = _centroids(movie.labels)
    steps, cosines = [], []
    for tid, first, last, _ in movie.lineage.tolist():
        path = np.array([centre[(tid, t)] for t in range(first, last + 1)])
        d = np.diff(path, axis=0)
        steps.extend(np.linalg.norm(d, axis=1))
        n = np.linalg.norm(d, axis=1)
        ok = (n[1:] > 0.5) & (n[:-1] > 0.5)
        cosines.extend(((d[1:] * d[:-1]).sum(1) / (n[1:] * n[:-1] + 1e-9))[ok])
    return float(np.mean(steps)), float(np.mean(cosines)) if cosines else 0.0


def test_speed_and_persistence_drive_the_motion() -> None:
    base = {"n_frames": 12, "shape": (160, 160), "n_cells": 8, "division_rate": 0.0, "seed": 5}
    still, _ = _mean_step_and_turn(make_movie(speed=0.0, **base))
    step, straight = _mean_step_and_turn(make_movie(speed=3.0, persistence=0.95, **base))
    _, random = _mean_step_and_turn(make_movie(speed=3.0, persistence=0.0, **base))
    assert still < 1.0
    assert 2.0 < step < 4.0
    assert straight > 0.6
    assert abs(random) < 0.35


def test_cells_leaving_the_field_end_their_track() -> None:
    movie = make_movie(
        n_frames=25, shape=(64, 64), n_cells=6, speed=4.0, persistence=0.95, division_rate=0.0
    )
    lin, (h, w) = movie.lineage, movie.labels.shape[1:]
    ended = lin[lin[:, 2] < movie.labels.shape[0] - 1]
    assert len(ended) >= 1
    reach = 2 * movie.config.radius + 2 * movie.config.speed
    for tid, _, last, _ in ended.tolist():
        ys, xs = np.nonzero(movie.labels[last] == tid)
        near = min(ys.min(), xs.min(), h - 1 - ys.max(), w - 1 - xs.max())
        assert near < reach, f"track {tid} ended in the middle of the field"
    # Cells never come back: no label value is reused after its track ended.
    assert movie.labels.max() == len(lin)


def test_max_cells_caps_proliferation() -> None:
    movie = make_movie(n_frames=15, shape=(96, 96), n_cells=5, division_rate=1.0, max_cells=9)
    counts = [len(np.unique(f)) - 1 for f in movie.labels]
    assert max(counts) <= 9
    assert movie.n_divisions >= 2


@pytest.mark.parametrize(
    "bad",
    [
        {"n_frames": 0},
        {"shape": (8, 64)},
        {"shape": (64,)},
        {"radius": 1.0},
        {"radius": 40.0},
        {"n_cells": 0},
        {"n_cells": 400},
        {"n_cells": 200, "radius": 9.0, "shape": (64, 64)},
        {"speed": -1.0},
        {"persistence": 1.5},
        {"division_rate": -0.1},
        {"snr": 0.0},
        {"blur_sigma": float("nan")},
        {"illumination": 1.0},
        {"dtype": "float32"},
        {"seed": -1},
        {"n_frames": 2.5},
        {"no_such_option": 1},
    ],
)
def test_bad_config_raises_input_error(bad: dict) -> None:
    with pytest.raises(InputError) as info:
        make_movie(**bad)
    assert isinstance(info.value, ValueError)
    assert str(info.value).endswith(".")
