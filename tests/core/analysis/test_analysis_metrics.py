"""Tests of h4tracks.core.analysis.metrics: hand-computed metrics of small constructed tracks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from h4tracks.core.analysis import (
    Table,
    filter_tracks,
    msd_curves,
    project_track_metrics,
    summarize,
    track_metrics,
)
from h4tracks.core.analysis.metrics import detection_table
from h4tracks.core.graph import TrackGraph
from h4tracks.errors import InputError


# ---------------------------------------------------------------------------------- helpers
def graph_of(tracks: dict[int, list[tuple[int, float, float]]], divisions=()) -> TrackGraph:
    """Graph from ``{label: [(t, y, x), ...]}`` chains plus division links
    ``(mother_label, daughter_label)`` from the mother's last to the daughter's first node.

    Track id = label, except that divisions renumber daughters (look them up)."""
    g = TrackGraph()
    for lab, pts in tracks.items():
        for t, y, x in pts:
            g.add_node((t, lab), y=y, x=x, area=10, track_id=lab)
        for a, b in itertools.pairwise(pts):
            g.add_edge((a[0], lab), (b[0], lab))
    for mother, daughter in divisions:
        g.add_edge((tracks[mother][-1][0], mother), (tracks[daughter][0][0], daughter))
    return g


def row(table: Table, track_id: int) -> dict[str, float]:
    """One row as {base column name: value}."""
    i = int(np.flatnonzero(table["track_id"] == track_id)[0])
    return {c.split(" [")[0]: table[c][i].item() for c in table.columns}


def line(n=6, vx=3.0, vy=0.0, lab=1) -> dict[int, list[tuple[int, float, float]]]:
    return {lab: [(t, 10.0 + vy * t, 5.0 + vx * t) for t in range(n)]}


# ---------------------------------------------------------------------------------- motion
def test_straight_line_constant_speed():
    r = row(track_metrics(graph_of(line())), 1)
    assert r["n_points"] == 6 and r["first_frame"] == 0 and r["last_frame"] == 5
    assert r["duration"] == 5
    assert r["path_length"] == pytest.approx(15.0)
    assert r["displacement"] == pytest.approx(15.0)
    assert r["directness"] == pytest.approx(1.0)
    assert r["mean_speed"] == pytest.approx(3.0)
    assert r["sd_speed"] == pytest.approx(0.0, abs=1e-12)
    assert r["max_speed"] == pytest.approx(3.0)
    assert r["net_velocity"] == pytest.approx(3.0)
    assert r["mean_direction"] == pytest.approx(0.0)
    assert r["persistence"] == pytest.approx(1.0)
    # ballistic: MSD(τ) = v² τ² -> slope 2, D = MSD(1) / 4
    assert r["msd_alpha"] == pytest.approx(2.0)
    assert r["diffusion_coefficient"] == pytest.approx(9.0 / 4.0)
    assert (r["start_y"], r["start_x"], r["end_y"], r["end_x"]) == (10.0, 5.0, 10.0, 20.0)
    assert r["parent_id"] == 0 and r["generation"] == 0 and r["n_children"] == 0
    assert math.isnan(r["time_to_division"])


@pytest.mark.parametrize(
    ("vy", "vx", "angle"),
    [(0, 1, 0.0), (-1, 0, 90.0), (0, -1, 180.0), (1, 0, 270.0), (-1, 1, 45.0)],
)
def test_direction_is_counter_clockwise_on_screen(vy, vx, angle):
    """The image y axis points down, so moving to smaller y is 'up' = 90°."""
    r = row(track_metrics(graph_of(line(vx=vx, vy=vy))), 1)
    assert r["mean_direction"] == pytest.approx(angle)


def test_square_path_returns_to_start():
    pts = [(0, 0.0, 0.0), (1, 0.0, 2.0), (2, 2.0, 2.0), (3, 2.0, 0.0), (4, 0.0, 0.0)]
    r = row(track_metrics(graph_of({1: pts})), 1)
    assert r["path_length"] == pytest.approx(8.0)
    assert r["displacement"] == pytest.approx(0.0)
    assert r["directness"] == pytest.approx(0.0)
    assert r["net_velocity"] == pytest.approx(0.0)
    assert r["persistence"] == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(r["mean_direction"])  # no net direction
    assert r["mean_speed"] == pytest.approx(2.0)


def test_circle_path_length_and_persistence():
    n, radius = 12, 20.0
    ang = np.linspace(0, 2 * np.pi, n + 1)  # closed: the last point is the first
    pts = [(i, 50 + radius * np.sin(a), 50 + radius * np.cos(a)) for i, a in enumerate(ang)]
    r = row(track_metrics(graph_of({1: pts})), 1)
    chord = 2 * radius * np.sin(np.pi / n)
    assert r["path_length"] == pytest.approx(n * chord)
    assert r["displacement"] == pytest.approx(0.0, abs=1e-9)
    assert r["persistence"] == pytest.approx(0.0, abs=1e-9)
    assert r["sd_speed"] == pytest.approx(0.0, abs=1e-9)


def test_half_circle_persistence():
    """Steps turning uniformly through 180°: R = |mean unit vector| = sin(nθ/2)/(n sin(θ/2))."""
    n = 6
    theta = np.pi / n
    pts, y, x = [(0, 0.0, 0.0)], 0.0, 0.0
    for i in range(n):
        a = theta / 2 + i * theta
        x, y = x + np.cos(a), y - np.sin(a)  # counter-clockwise on screen
        pts.append((i + 1, y, x))
    r = row(track_metrics(graph_of({1: pts})), 1)
    assert r["persistence"] == pytest.approx(np.sin(n * theta / 2) / (n * np.sin(theta / 2)))
    assert r["mean_direction"] == pytest.approx(90.0)


def test_gap_uses_real_elapsed_time():
    # frames 0, 1, 3: the step over the gap covers 2 px in 2 frames -> speed 1, not 2
    pts = [(0, 0.0, 0.0), (1, 0.0, 1.0), (3, 0.0, 3.0)]
    r = row(track_metrics(graph_of({1: pts})), 1)
    assert r["n_points"] == 3 and r["n_missing_frames"] == 1
    assert r["duration"] == 3
    assert r["mean_speed"] == pytest.approx(1.0)
    assert r["max_speed"] == pytest.approx(1.0)
    assert r["sd_speed"] == pytest.approx(0.0)
    assert r["net_velocity"] == pytest.approx(1.0)
    c = msd_curves(graph_of({1: pts}))
    # lag 1: pair (0,1); lag 2: pair (1,3); lag 3 > n_points - 1 is left out
    np.testing.assert_allclose(c.msd[0, :3], [1.0, 4.0, np.nan])
    np.testing.assert_array_equal(c.counts[0, :3], [1, 1, 0])
    assert r["msd_alpha"] == pytest.approx(2.0)


def test_speed_statistics():
    xs = [0.0, 1.0, 3.0, 6.0]  # steps 1, 2, 3
    r = row(track_metrics(graph_of({1: [(t, 0.0, x) for t, x in enumerate(xs)]})), 1)
    assert r["mean_speed"] == pytest.approx(2.0)
    assert r["sd_speed"] == pytest.approx(1.0)  # sample SD of 1, 2, 3
    assert r["max_speed"] == pytest.approx(3.0)


def test_single_point_track_is_nan_not_error():
    r = row(track_metrics(graph_of({1: [(4, 1.0, 1.0)]})), 1)
    assert r["n_points"] == 1 and r["duration"] == 0 and r["path_length"] == 0
    for k in ("directness", "mean_speed", "sd_speed", "max_speed", "net_velocity",
              "mean_direction", "persistence", "msd_alpha", "diffusion_coefficient"):
        assert math.isnan(r[k]), k


def test_stationary_track():
    r = row(track_metrics(graph_of({1: [(t, 3.0, 3.0) for t in range(5)]})), 1)
    assert r["path_length"] == 0 and r["mean_speed"] == 0 and r["max_speed"] == 0
    assert math.isnan(r["directness"]) and math.isnan(r["persistence"])
    assert math.isnan(r["msd_alpha"]) and r["diffusion_coefficient"] == 0


# ---------------------------------------------------------------------------------- lineage
def test_division_lineage():
    tracks = {
        1: [(0, 0.0, 0.0), (1, 0.0, 1.0), (2, 0.0, 2.0)],
        2: [(3, 1.0, 3.0), (4, 2.0, 4.0), (5, 3.0, 5.0)],
        3: [(3, -1.0, 3.0), (4, -2.0, 4.0)],
        4: [(6, 4.0, 6.0)],
        5: [(6, 4.0, 4.0), (7, 4.0, 3.0)],
        6: [(0, 50.0, 50.0), (1, 50.0, 51.0)],
    }
    g = graph_of(tracks, divisions=[(1, 2), (1, 3), (2, 4), (2, 5)])
    tab = track_metrics(g)
    by_label = {lab: g.track_id((pts[0][0], lab)) for lab, pts in tracks.items()}
    r = {lab: row(tab, tid) for lab, tid in by_label.items()}
    assert r[1]["parent_id"] == 0 and r[1]["n_children"] == 2 and r[1]["generation"] == 0
    assert r[2]["parent_id"] == by_label[1] and r[2]["generation"] == 1
    assert r[3]["parent_id"] == by_label[1] and r[3]["n_children"] == 0
    assert r[4]["parent_id"] == by_label[2] and r[4]["generation"] == 2
    assert r[5]["generation"] == 2 and r[6]["generation"] == 0 and r[6]["parent_id"] == 0
    assert r[1]["time_to_division"] == 2  # frames 0..2
    assert r[2]["time_to_division"] == 2  # a full cell cycle: born at 3, last seen at 5
    assert math.isnan(r[3]["time_to_division"])
    # the division link is not a step of either track
    assert r[1]["path_length"] == pytest.approx(2.0)
    assert r[2]["n_points"] == 3


# ---------------------------------------------------------------------------------- units
def test_physical_units_scale_and_names():
    g = graph_of(line(vx=3.0))
    tab = track_metrics(g, pixel_size=0.5, frame_interval=2.0, time_unit="min")
    for name in ("path_length [µm]", "displacement [µm]", "duration [min]",
                 "mean_speed [µm/min]", "net_velocity [µm/min]",
                 "diffusion_coefficient [µm²/min]", "mean_direction [deg]", "directness",
                 "time_to_division [min]"):
        assert name in tab.columns, name
    assert tab.meta == {"length_unit": "µm", "time_unit": "min"}
    r = row(tab, 1)
    assert r["path_length"] == pytest.approx(7.5)
    assert r["duration"] == pytest.approx(10.0)
    assert r["mean_speed"] == pytest.approx(0.75)
    assert r["diffusion_coefficient"] == pytest.approx(1.5**2 / (4 * 2.0))
    assert r["directness"] == pytest.approx(1.0)
    assert r["msd_alpha"] == pytest.approx(2.0)
    c = msd_curves(g, pixel_size=0.5, frame_interval=2.0, time_unit="min", max_lag=3)
    np.testing.assert_allclose(c.lags, [2.0, 4.0, 6.0])
    np.testing.assert_allclose(c.msd[0], [1.5**2, 3.0**2, 4.5**2])
    assert (c.length_unit, c.time_unit) == ("µm", "min")


def test_pixel_units_names():
    tab = track_metrics(graph_of(line()))
    assert "path_length [px]" in tab.columns and "mean_speed [px/frame]" in tab.columns
    assert "duration [frame]" in tab.columns
    assert tab.find("mean_speed") == "mean_speed [px/frame]"


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_bad_calibration(bad):
    with pytest.raises(InputError, match="pixel_size"):
        track_metrics(graph_of(line()), pixel_size=bad)
    with pytest.raises(InputError, match="frame_interval"):
        track_metrics(graph_of(line()), frame_interval=bad)


# ---------------------------------------------------------------------------------- MSD
def test_msd_random_walk_slope_one():
    rng = np.random.default_rng(1)
    sigma = 1.5
    n_tracks, n = 20, 400
    steps = rng.normal(0, sigma, (n_tracks, n, 2))
    pos = np.cumsum(steps, axis=1)
    t = np.tile(np.arange(n), n_tracks)
    lab = np.repeat(np.arange(1, n_tracks + 1), n)
    same = lab[1:] == lab[:-1]
    edges = np.stack([t[:-1][same], lab[:-1][same], t[1:][same], lab[1:][same]], 1)
    g = TrackGraph.from_arrays(
        {"t": t, "label": lab, "y": pos[..., 0].ravel(), "x": pos[..., 1].ravel(),
         "area": np.ones(t.size)}, edges,
    )
    tab = track_metrics(g)
    alpha = tab["msd_alpha"]
    assert np.median(alpha) == pytest.approx(1.0, abs=0.1)
    # 2D Brownian motion: MSD(1) = 4 D Δt = 2 σ² -> D = σ²/2
    d = tab["diffusion_coefficient [px²/frame]"]
    assert np.mean(d) == pytest.approx(sigma**2 / 2, rel=0.05)
    c = msd_curves(g)
    slope = np.polyfit(np.log(c.lags), np.log(c.ensemble), 1)[0]
    assert slope == pytest.approx(1.0, abs=0.05)


def test_msd_lag_limit_follows_track_length():
    tab_curves = msd_curves(graph_of(line(n=4)), max_lag=10)
    assert tab_curves.msd.shape == (1, 10)
    assert np.isfinite(tab_curves.msd[0, :3]).all() and np.isnan(tab_curves.msd[0, 3:]).all()
    with pytest.raises(InputError, match="max_lag"):
        track_metrics(graph_of(line()), max_lag=0)


# ---------------------------------------------------------------------------------- reference
def reference_metrics(pts: list[tuple[int, float, float]]) -> dict[str, float]:
    """Straightforward per-track implementation to check the vectorised one against."""
    t = np.array([p[0] for p in pts], float)
    y = np.array([p[1] for p in pts])
    x = np.array([p[2] for p in pts])
    d = np.hypot(np.diff(y), np.diff(x))
    sp = d / np.diff(t)
    ang = np.arctan2(-np.diff(y), np.diff(x))[d > 0]
    out = {"path_length": d.sum(), "mean_speed": sp.mean(), "max_speed": sp.max(),
           "sd_speed": sp.std(ddof=1) if sp.size > 1 else np.nan,
           "persistence": np.hypot(np.cos(ang).sum(), np.sin(ang).sum()) / ang.size}
    lim = min(10, len(pts) - 1)
    msd = []
    for lag in range(1, lim + 1):
        sq = [(y[j] - y[i]) ** 2 + (x[j] - x[i]) ** 2
              for i in range(len(pts)) for j in range(i + 1, len(pts)) if t[j] - t[i] == lag]
        msd.append(np.mean(sq) if sq else np.nan)
    msd = np.array(msd)
    ok = np.isfinite(msd) & (msd > 0)
    lags = np.arange(1, lim + 1)
    out["msd_alpha"] = (
        np.polyfit(np.log(lags[ok]), np.log(msd[ok]), 1)[0] if ok.sum() >= 2 else np.nan
    )
    out["diffusion_coefficient"] = msd[0] / 4
    return out


def test_vectorised_matches_per_track_reference():
    rng = np.random.default_rng(7)
    tracks = {}
    for lab in range(1, 16):
        n = int(rng.integers(4, 25))
        t = np.sort(rng.choice(40, n, replace=False)) + int(rng.integers(0, 5))  # gaps
        pos = np.cumsum(rng.normal(0, 3, (n, 2)), 0)
        tracks[lab] = [(int(a), float(b), float(c)) for a, b, c in zip(t, *pos.T, strict=True)]
    tab = track_metrics(graph_of(tracks))
    for lab, pts in tracks.items():
        ref = reference_metrics(pts)
        got = row(tab, lab)
        for k, v in ref.items():
            assert got[k] == pytest.approx(v, rel=1e-9, nan_ok=True), (lab, k)


# ---------------------------------------------------------------------------------- empty
def test_empty_graph_gives_empty_table_with_all_columns():
    tab = track_metrics(TrackGraph(), pixel_size=1.0, frame_interval=1.0, time_unit="h")
    full = track_metrics(graph_of(line()), pixel_size=1.0, frame_interval=1.0, time_unit="h")
    assert len(tab) == 0 and tab.columns == full.columns
    assert all(tab[c].dtype == full[c].dtype for c in tab.columns)
    c = msd_curves(TrackGraph())
    assert c.msd.shape == (0, 10) and np.isnan(c.ensemble).all()
    assert len(summarize(tab)) == len(summarize(full))
    assert len(detection_table(TrackGraph())) == 0


def test_not_a_graph():
    with pytest.raises(InputError, match="TrackGraph"):
        track_metrics({"t": []})


# ---------------------------------------------------------------------------------- table
def test_table_basics():
    t = Table({"track_id": [1, 2, 3], "path_length [px]": [1.0, 2.0, np.nan]})
    assert len(t) == 3 and "track_id" in t and list(t) == t.columns
    assert t.find("path_length") == "path_length [px]"
    assert len(t.take(t["track_id"] > 1)) == 2
    with pytest.raises(KeyError, match="columns are"):
        t["nope"]
    with pytest.raises(InputError, match="rows"):
        t["x"] = [1, 2]
    df = t.to_pandas()
    assert list(df.columns) == t.columns


def test_filters_and_summary():
    tracks = {1: [(t, 0.0, 5.0 * t) for t in range(10)],  # long, moves 45
              2: [(t, 0.0, 0.0) for t in range(10)],  # long, still
              3: [(0, 9.0, 9.0), (1, 9.0, 19.0)]}  # short, moves 10
    tab = track_metrics(graph_of(tracks))
    np.testing.assert_array_equal(filter_tracks(tab), [True, True, True])
    np.testing.assert_array_equal(filter_tracks(tab, min_length=5), [True, True, False])
    np.testing.assert_array_equal(filter_tracks(tab, min_movement=10), [True, False, True])
    np.testing.assert_array_equal(
        filter_tracks(tab, min_length=5, min_movement=10), [True, False, False]
    )
    s = summarize(tab, filter_tracks(tab, min_length=5))
    i = list(s["metric"]).index("path_length [px]")
    assert s["n"][i] == 2 and s["mean"][i] == pytest.approx(22.5)
    assert s["min"][i] == 0 and s["max"][i] == 45 and s["median"][i] == pytest.approx(22.5)
    assert "track_id" not in list(s["metric"])
    j = list(s["metric"]).index("mean_speed [px/frame]")
    assert s["sd"][j] == pytest.approx(np.std([5.0, 0.0], ddof=1))
    with pytest.raises(InputError, match="mask"):
        summarize(tab, [True])


def test_project_track_metrics_uses_metadata():
    from h4tracks.core.project import Project

    p = Project(np.zeros((6, 8, 8), np.uint16),
                metadata={"pixel_size": 2.0, "frame_interval": 3.0, "time_unit": "min"})
    p.graph = graph_of(line(vx=1.0))
    tab = project_track_metrics(p)
    assert row(tab, 1)["mean_speed"] == pytest.approx(2.0 / 3.0)
    assert "mean_speed [µm/min]" in tab.columns


def test_detection_table_units():
    g = graph_of({1: [(0, 2.0, 4.0), (2, 4.0, 8.0)]})
    d = detection_table(g, pixel_size=0.5, frame_interval=10.0, time_unit="s")
    np.testing.assert_allclose(d["time [s]"], [0.0, 20.0])
    np.testing.assert_allclose(d["x [µm]"], [2.0, 4.0])
    np.testing.assert_allclose(d["area [µm²]"], [2.5, 2.5])
    np.testing.assert_array_equal(d["track_id"], [1, 1])


def test_synthetic_movie_end_to_end():
    """A small synthetic movie with divisions: lineage columns agree with the CTC table and
    the shape table merges in."""
    from h4tracks.core.analysis import shape_metrics
    from h4tracks.datasets.synthetic import make_movie

    mov = make_movie(n_frames=12, shape=(96, 96), n_cells=5, radius=6.0,
                     division_rate=0.15, seed=2)
    g = TrackGraph.from_ctc(mov.labels, mov.lineage)
    tab = track_metrics(g, shape=shape_metrics(mov.labels, g))
    assert len(tab) == g.track_ids().size
    assert g.n_divisions > 0 and int(tab["n_children"].sum()) == 2 * g.n_divisions
    parents = g.track_parents()
    for tid, pid, gen in zip(tab["track_id"], tab["parent_id"], tab["generation"],
                             strict=True):
        assert pid == (parents[tid][0] if tid in parents else 0)
        assert (gen == 0) == (pid == 0)
    ok = np.isfinite(tab["mean_area [px²]"])
    assert ok.all()
    np.testing.assert_array_equal(tab["n_points"].sum(), len(g))
