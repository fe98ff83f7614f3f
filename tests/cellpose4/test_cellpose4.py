"""h4tracks with Cellpose 4 (Cellpose-SAM) installed instead of Cellpose 3.

Run by ``scripts/ci-cellpose4.sh`` in a venv of its own with ``cellpose>=4,<5``; skipped in
the main suite (Cellpose 3). The cpsam weights cannot be downloaded here (and h4tracks never
downloads them), so the network is a real Cellpose 4 ``CPSAM`` (ViT-L, the shape of cpsam)
with random weights, saved by Cellpose's own ``save_model`` and loaded from that file as any
Cellpose 4 model is: the loading, inference and mask code paths are the real ones, only the
masks are meaningless (a random network finds no cells), so the tests check shapes, dtypes,
provenance and messages, not segmentation quality.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cellpose")

from h4tracks.core.segmentation.cellpose_compat import cellpose_major

if cellpose_major() < 4:
    pytest.skip("Cellpose 4 is not installed (scripts/ci-cellpose4.sh runs these tests)",
                allow_module_level=True)

from h4tracks.cli import main
from h4tracks.core.parameters import SegmentParams
from h4tracks.core.project import Project
from h4tracks.core.segmentation.engine import segment_project
from h4tracks.core.segmentation.models import (
    DEMO_MODEL,
    ModelRegistry,
    demo_entry,
    demo_model_file,
    load_cellpose_model,
)
from h4tracks.core.store import open_project, save_project
from h4tracks.datasets.synthetic import SyntheticConfig, make_movie
from h4tracks.errors import H4TracksError, InputError

#: side of the test frames: one 256² tile of the network after Cellpose's padding
SIDE = 64


@pytest.fixture(scope="session")
def random_cpsam(tmp_path_factory):
    """A Cellpose 4 weights file: Cellpose's CPSAM network (cpsam's shape), random weights."""
    import torch
    from cellpose.vit import CPSAM

    torch.manual_seed(0)
    net = CPSAM(dtype=torch.float32)  # the constructor Cellpose 4 uses for cpsam files
    path = tmp_path_factory.mktemp("weights") / "random_cpsam.pth"
    net.save_model(str(path))
    return path


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("H4TRACKS_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


@pytest.fixture(scope="module")
def movie():
    return make_movie(SyntheticConfig(n_frames=2, shape=(SIDE, SIDE), n_cells=3, seed=1))


def test_registry_offers_cellpose4_builtins(cfg):
    registry = ModelRegistry()
    names = registry.names()
    assert "cpsam" in names and "cyto3" not in names and "nuclei" not in names
    assert registry.default_entry().name == "cpsam"  # Cellpose 4 cannot run the demo model


def test_missing_cpsam_weights_say_licence_and_where(cfg, empty_cellpose_cache):
    with pytest.raises(H4TracksError) as err:
        load_cellpose_model(ModelRegistry().get("cpsam"))
    msg = str(err.value)
    assert "CC-BY-NC 4.0" in msg and str(empty_cellpose_cache / "cpsam") in msg
    assert "cache_model_path('cpsam')" in msg and "\n" not in msg


def test_cellpose3_model_refused_in_one_sentence(cfg, tmp_path):
    with pytest.raises(InputError, match="is a Cellpose 3 model; Cellpose 4 is installed"):
        ModelRegistry().add_custom("demo3", demo_model_file())
    with pytest.raises(InputError, match=r"install cellpose<4") as err:
        load_cellpose_model(demo_entry())
    assert "\n" not in str(err.value)


def test_segments_a_frame_with_a_cellpose4_model(cfg, movie, random_cpsam):
    ModelRegistry().add_custom("random-cpsam", random_cpsam)
    project = Project(movie.image)
    # engine "onnx" asked for: Cellpose 4's network runs with torch, and the report says so
    report = segment_project(project, "random-cpsam", frames="0", cores=2,
                             params=SegmentParams(engine="onnx"))
    assert report.frames == [0] and report.engine == "torch"
    assert "Cellpose 3 networks only" in report.message and "\n" not in report.message
    labels = project.labels.frame(0)
    assert labels.shape == (SIDE, SIDE) and labels.dtype == np.uint32
    prov = project.metadata.provenance[-1]
    assert prov["step"] == "segment"
    info = prov.get("params", prov)
    assert str(info["cellpose"]).startswith("4.")
    assert info["engine"] == "torch" and info["engine_requested"] == "onnx"
    # Cellpose 4 runs its network at bfloat16 (its default): recorded as what ran
    assert info["precision"] == "bfloat16" and info["precision_requested"] == "float32"
    assert info["runtime"].startswith("torch ")


def test_cli_segments_with_a_cellpose4_file_and_refuses_the_demo_model(
        cfg, movie, random_cpsam, tmp_path, capsys):
    path = tmp_path / "p.zarr"
    save_project(Project(movie.image), path)
    assert main(["segment", str(path), "--model", str(random_cpsam), "--frames", "1",
                 "--cores", "2"]) == 0
    project = open_project(path)
    assert np.asarray(project.labels).shape == (2, SIDE, SIDE)
    prov = project.metadata.provenance[-1]
    info = prov.get("params", prov)
    assert str(info["cellpose"]).startswith("4.") and info["engine"] == "torch"
    assert info["engine_requested"] == "auto"
    capsys.readouterr()
    # bfloat16 asked for: Cellpose 4's torch already runs it, so nothing to say
    assert main(["segment", str(path), "--model", str(random_cpsam), "--frames", "0",
                 "--cores", "2", "--precision", "bfloat16"]) == 0
    prov = open_project(path).metadata.provenance[-1]
    info = prov.get("params", prov)
    assert info["precision"] == "bfloat16" and info["engine"] == "torch"
    assert "OpenVINO" not in capsys.readouterr().err
    assert main(["segment", str(path), "--model", DEMO_MODEL, "--frames", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a Cellpose 3 model; Cellpose 4 is installed" in err and "\n" not in err


def test_training_says_it_needs_cellpose3(cfg, movie, tmp_path, capsys):
    path = tmp_path / "p.zarr"
    save_project(Project(movie.image, labels=movie.labels), path)
    assert main(["train", str(path), "--frames", "0", "--name", "x", "--scratch"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Training runs with Cellpose 3 only" in err and "\n" not in err
