"""Tests of h4tracks.core.analysis.figures: figures build headless, save by suffix."""

from __future__ import annotations

import pytest
from matplotlib._pylab_helpers import Gcf
from matplotlib.figure import Figure

from h4tracks.core.analysis import filter_tracks, track_metrics
from h4tracks.core.analysis.figures import histogram, msd_plot, rose_plot, save_figure, scatter
from h4tracks.core.graph import TrackGraph
from h4tracks.errors import InputError
from h4tracks.testing.walks import random_walks


@pytest.fixture(scope="module")
def graph() -> TrackGraph:
    return random_walks(3, n_tracks=12, n=15)


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
