"""The ONNX Runtime engine: same masks and flows as torch, export cache, fallback to torch.

Real Cellpose inference on both engines (the shipped demo model and a random-weight CPnet),
no mocks of the network; only the runtime's absence/breakage is simulated.
"""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
import torch
from _engines import compare, cp_eval, custom

from h4tracks.core.parameters import SegmentParams
from h4tracks.core.project import Project
from h4tracks.core.segmentation import onnx_engine
from h4tracks.core.segmentation.engine import (
    compute_segmentation,
    load_segmenter,
    segment_frame,
)
from h4tracks.core.segmentation.models import ModelEntry, demo_entry
from h4tracks.datasets.synthetic import make_movie

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def movie():
    return make_movie(n_frames=2, shape=(128, 128), n_cells=10, radius=8.0, seed=77)


@pytest.fixture(autouse=True)
def _fresh_sessions():
    onnx_engine.clear_sessions()
    yield
    onnx_engine.clear_sessions()


def _compare(entry: ModelEntry, frames, **kw) -> tuple[list[float], float]:
    """AP@0.5 of ONNX masks against torch masks per frame, and the largest flow difference."""
    ref, _, _ = load_segmenter(entry, "torch", cores=2)
    fast, used, message = load_segmenter(entry, "onnx", cores=2)
    assert used == "onnx" and message is None
    assert isinstance(fast.net, onnx_engine.OnnxNet) and not isinstance(ref.net,
                                                                         onnx_engine.OnnxNet)
    return compare(ref, fast, frames, **kw)


def test_demo_model_onnx_matches_torch(cfg, demo_model, movie):
    aps, diff = _compare(demo_entry(), movie.image)
    assert min(aps) >= 0.99, aps
    assert diff < 1e-3, diff
    # the shipped model's folder belongs to the installation: cached under the config dir
    cached = list((cfg / "onnx-cache").glob(f"{demo_model.name}.*.onnx"))
    assert len(cached) == 1
    assert not list(demo_model.parent.glob("*.onnx"))


def test_random_weight_model_onnx_matches_torch(cfg, weights_file, tmp_path, movie):
    path = tmp_path / "random.pth"
    shutil.copy(weights_file, path)
    # a low threshold so the untrained network's noise produces some masks to compare
    aps, diff = _compare(custom(path), movie.image, diameter=30.0, cellprob_threshold=-1.0)
    assert min(aps) >= 0.99, aps
    assert diff < 1e-3, diff


def test_export_cache_reused_and_invalidated(cfg, weights_file, tmp_path, movie, monkeypatch):
    path = tmp_path / "model.pth"
    shutil.copy(weights_file, path)
    entry = custom(path)
    frame = movie.image[0]
    first, _, _ = load_segmenter(entry, "onnx", cores=1)
    cache = first.net.path
    assert cache.parent == tmp_path and cache.name.startswith("model.pth.")
    assert cache.name == f"model.pth.{onnx_engine.weights_digest(path)}.onnx"
    stamp = cache.stat().st_mtime_ns
    out_first = cp_eval(first, frame, diameter=30.0)[2]

    # a second load (new session, same weights) reuses the file: no export
    onnx_engine.clear_sessions()

    def no_export(*a, **k):
        raise AssertionError("exported again although the weights did not change")

    monkeypatch.setattr(onnx_engine, "export_onnx", no_export)
    again, used, _ = load_segmenter(entry, "onnx", cores=1)
    assert used == "onnx" and again.net.path == cache and cache.stat().st_mtime_ns == stamp
    monkeypatch.undo()

    # new weights under the same file name: a new export, the stale one removed
    from cellpose.resnet_torch import CPnet

    torch.manual_seed(1)
    net = CPnet([2, 32, 64, 128, 256], 3, sz=3, mkldnn=False, max_pool=True, diam_mean=30.0)
    torch.save(net.state_dict(), path)
    changed, used, _ = load_segmenter(entry, "onnx", cores=1)
    assert used == "onnx" and changed.net.path != cache
    assert changed.net.path.is_file() and not cache.exists()
    ref, _, _ = load_segmenter(entry, "torch", cores=1)
    out_new = cp_eval(changed, frame, diameter=30.0)[2]
    assert np.abs(out_new - cp_eval(ref, frame, diameter=30.0)[2]).max() < 1e-3
    assert np.abs(out_new - out_first).max() > 1e-2  # really the new weights


def test_broken_cache_file_is_exported_again(cfg, weights_file, tmp_path, movie):
    path = tmp_path / "model.pth"
    shutil.copy(weights_file, path)
    target = onnx_engine.cache_file(path)
    target.write_bytes(b"not an onnx file")
    model, used, message = load_segmenter(custom(path), "onnx", cores=1)
    assert used == "onnx" and message is None and target.stat().st_size > 1000
    assert segment_frame(model, movie.image[0], SegmentParams(diameter=30.0)).shape == (128, 128)


def test_read_only_model_folder_caches_under_config(cfg, weights_file, tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    shutil.copy(weights_file, path)
    monkeypatch.setattr(onnx_engine.os, "access", lambda p, mode: False)
    model, used, _ = load_segmenter(custom(path), "onnx", cores=1)
    assert used == "onnx" and model.net.path.parent == cfg / "onnx-cache"
    assert not list(tmp_path.glob("*.onnx"))


def test_missing_runtime_falls_back_to_torch(cfg, weights_file, tmp_path, monkeypatch, caplog):
    path = tmp_path / "model.pth"
    shutil.copy(weights_file, path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    assert onnx_engine.onnxruntime_version() is None
    with caplog.at_level("WARNING"):
        model, used, message = load_segmenter(custom(path), "auto", cores=1)
    assert used == "torch" and not isinstance(model.net, onnx_engine.OnnxNet)
    assert message is not None and "ONNX Runtime" in message and "torch" in message
    assert sum("ONNX Runtime" in r.getMessage() for r in caplog.records) == 1


def test_other_architecture_falls_back_to_torch(cfg, weights_file, tmp_path, monkeypatch):
    """A network other than Cellpose's default 2D one does not export: torch runs it, and
    the message names the architecture in one sentence."""
    from h4tracks.core.segmentation import engine_choice

    path = tmp_path / "model.pth"
    shutil.copy(weights_file, path)
    real = engine_choice.load_cellpose_model

    def other(entry, gpu=False):
        model, message = real(entry, gpu=gpu)
        model.net_type = "transformer"
        return model, message

    monkeypatch.setattr(engine_choice, "load_cellpose_model", other)
    model, used, message = load_segmenter(custom(path), "auto", cores=1)
    assert used == "torch" and not isinstance(model.net, onnx_engine.OnnxNet)
    assert "default 2D network" in message and "'transformer'" in message


def test_broken_runtime_falls_back_once_per_run(cfg, weights_file, tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    shutil.copy(weights_file, path)

    def broken(*a, **k):
        raise RuntimeError("onnxruntime is broken here")

    monkeypatch.setattr(onnx_engine, "_session", broken)
    movie = make_movie(n_frames=3, shape=(64, 64), n_cells=3, radius=6.0, seed=1)
    run = compute_segmentation(Project(movie.image), custom(path), cores=1,
                               params=SegmentParams(diameter=30.0, engine="onnx"))
    assert run.report.engine == "torch" and len(run.report.frames) == 3
    assert run.report.message is not None and run.report.message.count("ONNX Runtime") == 1
    assert run.provenance["engine"] == "torch" and run.provenance["engine_requested"] == "onnx"


def test_provenance_and_report_record_the_engine(cfg, demo_model):
    movie = make_movie(n_frames=2, shape=(64, 64), n_cells=3, radius=6.0, seed=2)
    for requested, used in (("auto", "onnx"), ("torch", "torch"), ("onnx", "onnx")):
        run = compute_segmentation(Project(movie.image), cores=1,
                                   params=SegmentParams(engine=requested))
        assert run.report.engine == used and run.report.message is None
        assert run.provenance["engine"] == used
        assert run.provenance["engine_requested"] == requested


def test_cli_engine_option():
    from h4tracks.cli.parser import build_parser

    args = build_parser().parse_args(["segment", "p.zarr", "--engine", "torch"])
    assert args.engine == "torch"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["segment", "p.zarr", "--engine", "tensorflow"])
