"""Fixtures of the tracking tests: small synthetic movies."""

from __future__ import annotations

import pytest

from h4tracks.datasets.synthetic import make_movie


@pytest.fixture(scope="session")
def movie():
    return make_movie(n_frames=20, shape=(128, 128), n_cells=10, division_rate=0.1, seed=1)


@pytest.fixture(scope="session")
def dense_movie():
    return make_movie(
        n_frames=20, shape=(128, 128), n_cells=25, radius=7.0, speed=3.0,
        division_rate=0.08, seed=3,
    )
