"""Shared fixtures of the segmentation tests: real Cellpose weights, an isolated config dir."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory) -> Path:
    """A real, random-initialised Cellpose (v3 CPnet) weights file, built as cellpose does."""
    from cellpose.resnet_torch import CPnet

    torch.manual_seed(0)
    # Same arguments as cellpose.models.CellposeModel.__init__ (nchan=2, nclasses=3).
    net = CPnet([2, 32, 64, 128, 256], 3, sz=3, mkldnn=False, max_pool=True, diam_mean=30.0)
    path = tmp_path_factory.mktemp("weights") / "random_cp3.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture
def cfg(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "config"
    monkeypatch.setenv("H4TRACKS_CONFIG_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def demo_model() -> Path:
    """The shipped demo model (the tests' real Cellpose model)."""
    from h4tracks.core.segmentation.models import demo_model_file

    path = demo_model_file()
    assert path.is_file(), f"the shipped demo model {path} is missing"
    return path
