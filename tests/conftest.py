"""Fixtures shared by the segmentation tests of both Cellpose generations
(tests/core/segmentation with Cellpose 3, tests/cellpose4 in its own venv)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def empty_cellpose_cache(tmp_path, monkeypatch) -> Path:
    """Point cellpose's model cache at an empty dir and make any download attempt fail loudly."""
    import cellpose.models as cpm
    import cellpose.utils as cpu

    cache = tmp_path / "cellpose_cache"
    cache.mkdir()
    monkeypatch.setattr(cpm, "MODEL_DIR", cache)

    def no_download(url, dst, progress=True):  # tripwire, not a behaviour stub
        raise AssertionError(f"cellpose attempted a download of {url}")

    monkeypatch.setattr(cpu, "download_url_to_file", no_download)
    return cache
