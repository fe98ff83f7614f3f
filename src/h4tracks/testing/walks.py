"""Random-walk track graphs (no divisions, no gaps) for the analysis and batch-run tests."""

from __future__ import annotations

import numpy as np

from h4tracks.core.graph import TrackGraph


def random_walks(seed: int, n_tracks: int = 6, n: int = 8, step: float = 2.0) -> TrackGraph:
    """``n_tracks`` tracks of ``n`` frames each, Gaussian steps of ``step`` px from (50, 50).

    Parameters
    ----------
    seed
        Seed of the steps.
    n_tracks, n
        Number of tracks and frames per track.
    step
        Standard deviation of a step along each axis, in pixels.

    Returns
    -------
    TrackGraph
        Cell ``k`` of every frame is track ``k`` (k = 1 … n_tracks), area 1.
    """
    rng = np.random.default_rng(seed)
    pos = np.cumsum(rng.normal(0, step, (n_tracks, n, 2)), 1) + 50
    t = np.tile(np.arange(n), n_tracks)
    lab = np.repeat(np.arange(1, n_tracks + 1), n)
    same = lab[1:] == lab[:-1]
    edges = np.stack([t[:-1][same], lab[:-1][same], t[1:][same], lab[1:][same]], 1)
    return TrackGraph.from_arrays({"t": t, "label": lab, "y": pos[..., 0].ravel(),
                                   "x": pos[..., 1].ravel(), "area": np.ones(t.size)}, edges)
