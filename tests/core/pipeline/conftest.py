"""Fixtures of the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_movies import write_movies


@pytest.fixture(scope="session")
def manifest(tmp_path_factory) -> Path:
    """Four tiny movies with labels, two conditions (see pipeline_movies.write_movies)."""
    return write_movies(tmp_path_factory.mktemp("movies"))
