"""Pooled motion of several movies: trajectories from the origin, MSD mean ± SEM over tracks,
and the figures comparing groups (one rose panel / one MSD curve per group, PNG and SVG)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from h4tracks.core.analysis import msd_curves
from h4tracks.core.analysis.figures import rose_plot, save_figure
from h4tracks.core.analysis.group_figures import box_strip, msd_by_group, rose_by_group
from h4tracks.core.analysis.msd import pool_msd
from h4tracks.core.analysis.table import Table
from h4tracks.core.analysis.trajectories import (
    concat_trajectories,
    origin_trajectories,
    sample_tracks,
)
from h4tracks.errors import InputError
from h4tracks.testing.walks import random_walks


def test_origin_trajectories_start_at_zero_and_pool_with_new_ids():
    a, b = random_walks(1), random_walks(2, n_tracks=3)
    ta = origin_trajectories(a, pixel_size=0.5)
    assert ta.length_unit == "µm" and ta.n_tracks == 6
    np.testing.assert_array_equal(ta.dx[ta.starts], 0)
    np.testing.assert_array_equal(ta.dy[ta.starts], 0)
    nt = a.node_table()
    one = nt["track_id"] == nt["track_id"][0]
    np.testing.assert_allclose(ta.dx[: one.sum()], (nt["x"][one] - nt["x"][one][0]) * 0.5)

    pooled = concat_trajectories([ta, origin_trajectories(b, pixel_size=0.5)])
    assert pooled.n_tracks == 9  # both movies have tracks 1..k: renumbered, not merged
    np.testing.assert_array_equal(np.unique(pooled.track_ids), np.arange(9))
    with pytest.raises(InputError, match="cannot be pooled"):
        concat_trajectories([ta, origin_trajectories(b)])

    few = sample_tracks(pooled, 4)
    assert few.n_tracks == 4
    assert np.array_equal(few.track_ids, sample_tracks(pooled, 4).track_ids)  # reproducible
    assert sample_tracks(pooled, 100) is pooled


def test_pool_msd_is_the_mean_and_sem_over_all_tracks():
    ga, gb = random_walks(1), random_walks(2, n_tracks=4, step=5.0)
    ca, cb = msd_curves(ga, max_lag=4), msd_curves(gb, max_lag=4)
    p = pool_msd([ca, cb])
    rows = np.vstack([ca.msd, cb.msd])  # every track of both movies, each weighing the same
    np.testing.assert_allclose(p.lags, ca.lags)
    np.testing.assert_allclose(p.mean, np.nanmean(rows, 0))
    n = np.isfinite(rows).sum(0)
    np.testing.assert_allclose(p.sem, np.nanstd(rows, 0, ddof=1) / np.sqrt(n))
    np.testing.assert_array_equal(p.n_tracks, n)

    # another frame interval: lag times kept apart (2, 4, ... s next to 1, 2, ... frames
    # would be wrong), the shared ones pooled
    slow = msd_curves(gb, frame_interval=2.0, max_lag=2)
    fast = msd_curves(ga, frame_interval=1.0, max_lag=4)
    p2 = pool_msd([fast, slow])
    np.testing.assert_allclose(p2.lags, [1, 2, 3, 4])
    np.testing.assert_array_equal(p2.n_tracks, [6, 10, 6, 10])
    np.testing.assert_allclose(p2.mean[1], np.mean(np.r_[fast.msd[:, 1], slow.msd[:, 0]]))
    with pytest.raises(InputError, match="different units"):
        pool_msd([ca, msd_curves(gb, pixel_size=0.3)])
    assert pool_msd([]).lags.size == 0


def test_rose_by_group_has_one_panel_per_group_on_one_scale(tmp_path):
    groups = {name: concat_trajectories([origin_trajectories(random_walks(s)),
                                         origin_trajectories(random_walks(s + 10))])
              for s, name in ((1, "control"), (2, "drug A"), (3, "drug B"))}
    fig = rose_by_group(groups, max_tracks=5)
    panels = [ax for ax in fig.axes if ax.get_gid()]
    assert [ax.get_gid() for ax in panels] == ["rose-control", "rose-drug A", "rose-drug B"]
    assert panels[0].get_title() == "control: 5 of 12 tracks"
    assert len({ax.get_xlim() for ax in panels}) == 1  # the same scale everywhere
    # the single-movie rose plot draws the same way
    single = rose_plot(random_walks(1))
    assert isinstance(single, Figure) and single.axes[0].get_title() == "6 trajectories"

    svg = save_figure(fig, tmp_path / "rose.svg").read_text()
    for name in groups:
        assert svg.count(f'id="rose-{name}"') == 1
    assert "control: 5 of 12 tracks" in svg  # texts stay text in our SVGs
    assert save_figure(fig, tmp_path / "rose.png").read_bytes()[:4] == b"\x89PNG"


def test_msd_by_group_has_one_curve_per_group(tmp_path):
    pooled = {"slow": pool_msd([msd_curves(random_walks(1, step=1.0)),
                                msd_curves(random_walks(2))]),
              "fast": pool_msd([msd_curves(random_walks(3, step=6.0))])}
    fig = msd_by_group(pooled)
    ax = fig.axes[0]
    curves = {line.get_gid(): line for line in ax.get_lines() if line.get_gid()}
    assert sorted(curves) == ["msd-fast", "msd-slow"]
    slow = pooled["slow"]
    defined = np.isfinite(slow.mean)  # 8 points: lags 8-10 have no pair, and no point
    assert defined.sum() == 7
    np.testing.assert_allclose(curves["msd-slow"].get_xdata(), slow.lags[defined])
    np.testing.assert_allclose(curves["msd-slow"].get_ydata(), slow.mean[defined])
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "MSD [px²]"
    svg = save_figure(fig, tmp_path / "msd.svg").read_text()
    assert svg.count('id="msd-slow"') == 1 and svg.count('id="msd-fast"') == 1


def test_box_strip_one_box_per_group():
    table = Table({"condition": np.array(["a", "b", "a", "c"]),
                   "mean_speed [px/frame]": np.array([1.0, 2.0, np.nan, 4.0])})
    fig = box_strip(table, "mean_speed", "condition")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b", "c"]
    assert fig.axes[0].get_title() == "mean_speed [px/frame] by condition (3 tracks)"
    with pytest.raises(KeyError):
        box_strip(table, "directness", "condition")
