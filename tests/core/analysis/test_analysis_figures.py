"""Tests of h4tracks.core.analysis.figures: figures build headless, save by suffix."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib._pylab_helpers import Gcf
from matplotlib.figure import Figure

from h4tracks.core.analysis import filter_tracks, track_metrics
from h4tracks.core.analysis.figures import histogram, msd_plot, rose_plot, save_figure, scatter
from h4tracks.core.graph import TrackGraph
from h4tracks.errors import InputError


@pytest.fixture(scope="module")
def graph() -> TrackGraph:
    rng = np.random.default_rng(3)
    n_tracks, n = 12, 15
    pos = np.cumsum(rng.normal(0, 2, (n_tracks, n, 2)), 1) + 50
    t = np.tile(np.arange(n), n_tracks)
    lab = np.repeat(np.arange(1, n_tracks + 1), n)
    same = lab[1:] == lab[:-1]
    edges = np.stack([t[:-1][same], lab[:-1][same], t[1:][same], lab[1:][same]], 1)
    return TrackGraph.from_arrays({"t": t, "label": lab, "y": pos[..., 0].ravel(),
                                   "x": pos[..., 1].ravel(), "area": np.ones(t.size)}, edges)


def test_all_figures(graph, tmp_path):
    tab = track_metrics(graph, pixel_size=0.5)
    figs = [
        scatter(tab, "mean_speed", "directness", mask=filter_tracks(tab, min_length=3)),
        histogram(tab, "path_length [µm]", bins=5),
        rose_plot(graph, pixel_size=0.5),
        rose_plot(graph, track_ids=[1, 2]),
        msd_plot(graph, frame_interval=2.0, time_unit="min"),
        msd_plot(graph, track_ids=[3]),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    assert figs[0].axes[0].get_xlabel() == "mean_speed [µm/frame]"
    assert figs[2].axes[0].get_xlabel() == "Δx [µm]"
    assert save_figure(figs[2], tmp_path / "rose.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in save_figure(figs[4], tmp_path / "msd.SVG").read_bytes()[:500]
    assert Gcf.get_num_fig_managers() == 0  # pyplot's global state untouched


def test_empty_graph_figures():
    g = TrackGraph()
    tab = track_metrics(g)
    for f in (rose_plot(g), msd_plot(g), histogram(tab, "path_length"),
              scatter(tab, "path_length", "displacement")):
        assert isinstance(f, Figure)


def test_errors(graph, tmp_path):
    tab = track_metrics(graph)
    fig = histogram(tab, "n_points")
    with pytest.raises(InputError, match=r"\.png or \.svg"):
        save_figure(fig, tmp_path / "fig.jpg")
    with pytest.raises(InputError, match="without a suffix"):
        save_figure(fig, tmp_path / "fig")
    with pytest.raises(InputError, match="no column"):
        scatter(tab, "speed", "directness")
    with pytest.raises(InputError, match="mask"):
        histogram(tab, "n_points", mask=[True])
