"""Tests of h4tracks.core.analysis.shape against regionprops on hand-made masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.measure import regionprops_table

from h4tracks.core.analysis import shape_metrics, track_metrics
from h4tracks.core.graph import TrackGraph
from h4tracks.core.project import Project
from h4tracks.errors import InputError


def rect_movie() -> tuple[np.ndarray, TrackGraph]:
    """Frame 0: a 4 x 10 rectangle (label 1) and a 6 x 6 square (label 2); frame 1: the
    rectangle moved (label 5) and the square gone; nodes from the masks, 1 -> 5 linked."""
    lab = np.zeros((2, 30, 40), np.uint16)
    lab[0, 2:6, 3:13] = 1
    lab[0, 15:21, 20:26] = 2
    lab[1, 3:7, 5:15] = 5
    g = TrackGraph()
    for (t, label) in [(0, 1), (0, 2), (1, 5)]:
        ys, xs = np.nonzero(lab[t] == label)
        g.add_node((t, label), y=ys.mean(), x=xs.mean(), area=ys.size)
    g.add_edge((0, 1), (1, 5))
    return lab, g


def test_rectangle_by_hand():
    lab, g = rect_movie()
    s = shape_metrics(lab, g)
    assert s.columns == ["t", "label", "track_id", "area [px²]", "perimeter [px]",
                         "eccentricity", "solidity", "major_axis_length [px]",
                         "minor_axis_length [px]"]
    np.testing.assert_array_equal(s["t"], [0, 0, 1])
    np.testing.assert_array_equal(s["label"], [1, 2, 5])
    assert s["area [px²]"][0] == 40
    # regionprops' perimeter of an h x w rectangle runs through the boundary pixel centres
    assert s["perimeter [px]"][0] == pytest.approx(2 * (4 - 1) + 2 * (10 - 1))
    # axis length = 4 sqrt(variance), variance of n consecutive pixels = (n² - 1) / 12
    assert s["major_axis_length [px]"][0] == pytest.approx(4 * math.sqrt((10**2 - 1) / 12))
    assert s["minor_axis_length [px]"][0] == pytest.approx(4 * math.sqrt((4**2 - 1) / 12))
    assert s["solidity"][0] == pytest.approx(1.0)
    assert s["eccentricity"][1] == pytest.approx(0.0, abs=1e-9)  # the square


def test_matches_regionprops_and_scales_with_pixel_size():
    lab, g = rect_movie()
    lab[0, 14, 20:23] = 2  # make the square non-convex-ish
    s = shape_metrics(lab, g, pixel_size=0.5)
    ref = regionprops_table(lab[0], properties=("label", "area", "perimeter", "eccentricity",
                                                "solidity", "axis_major_length",
                                                "axis_minor_length"))
    np.testing.assert_allclose(s["area [µm²]"][:2], ref["area"] * 0.25)
    np.testing.assert_allclose(s["perimeter [µm]"][:2], ref["perimeter"] * 0.5)
    np.testing.assert_allclose(s["major_axis_length [µm]"][:2], ref["axis_major_length"] * 0.5)
    np.testing.assert_allclose(s["minor_axis_length [µm]"][:2], ref["axis_minor_length"] * 0.5)
    np.testing.assert_allclose(s["eccentricity"][:2], ref["eccentricity"])
    np.testing.assert_allclose(s["solidity"][:2], ref["solidity"])


def test_per_track_mean_and_sd_in_track_table():
    lab, g = rect_movie()
    lab[1, 3:7, 5:15] = 0
    lab[1, 3:9, 5:15] = 5  # 6 x 10 in frame 1
    tab = track_metrics(g, shape=shape_metrics(lab, g))
    i = int(np.flatnonzero(tab["track_id"] == g.track_id((0, 1)))[0])
    assert tab["mean_area [px²]"][i] == pytest.approx(50.0)
    assert tab["sd_area [px²]"][i] == pytest.approx(np.std([40, 60], ddof=1))
    j = int(np.flatnonzero(tab["track_id"] == g.track_id((0, 2)))[0])
    assert tab["mean_area [px²]"][j] == 36 and math.isnan(tab["sd_area [px²]"][j])
    for c in ("mean_perimeter [px]", "sd_eccentricity", "mean_solidity",
              "mean_major_axis_length [px]", "sd_minor_axis_length [px]"):
        assert c in tab.columns


def test_project_frames_and_threads():
    lab, g = rect_movie()
    p = Project(np.zeros(lab.shape, np.uint16), lab, metadata={"pixel_size": 2.0})
    p.graph = g
    s = shape_metrics(p)
    assert s["area [µm²]"][0] == pytest.approx(160.0)
    s1 = shape_metrics(p, frames=[1])
    np.testing.assert_array_equal(s1["label"], [5])
    s2 = shape_metrics(p, cores=2)
    for c in s.columns:
        np.testing.assert_array_equal(s[c], s2[c])


def test_node_without_mask_is_nan():
    lab, g = rect_movie()
    g.add_node((1, 9), y=1.0, x=1.0, area=3)
    s = shape_metrics(lab, g)
    i = int(np.flatnonzero((s["t"] == 1) & (s["label"] == 9))[0])
    assert math.isnan(s["area [px²]"][i])


def test_errors():
    lab, g = rect_movie()
    with pytest.raises(InputError, match="graph"):
        shape_metrics(lab)
    with pytest.raises(InputError, match="frames"):
        shape_metrics(lab, g, frames=[5])
    with pytest.raises(InputError, match="no labels"):
        shape_metrics(Project(np.zeros((2, 5, 5), np.uint16)))
    with pytest.raises(InputError, match=r"\(T, Y, X\)"):
        shape_metrics(lab[0], g)


def test_empty_graph():
    lab, _ = rect_movie()
    s = shape_metrics(lab, TrackGraph())
    assert len(s) == 0 and "area [px²]" in s.columns
    tab = track_metrics(TrackGraph(), shape=s)
    assert len(tab) == 0 and "mean_area [px²]" in tab.columns
