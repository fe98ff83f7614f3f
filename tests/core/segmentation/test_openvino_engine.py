"""The OpenVINO engine: float32 gives torch's masks, bfloat16 nearly so, and every way it
cannot run (no bfloat16 units, no openvino, another engine asked for) says so and falls back.

Real Cellpose inference (the shipped demo model, a random-weight CPnet); only the runtime's
absence or the CPU's lack of bfloat16 units is simulated.
"""

from __future__ import annotations

import shutil
import sys

import pytest
from _engines import compare, custom

from h4tracks.core.parameters import SegmentParams
from h4tracks.core.project import Project
from h4tracks.core.segmentation import onnx_engine
from h4tracks.core.segmentation import openvino_engine as ov
from h4tracks.core.segmentation.engine import compute_segmentation, load_segmenter
from h4tracks.core.segmentation.models import demo_entry
from h4tracks.datasets.synthetic import make_movie

pytest.importorskip("openvino")
needs_bf16 = pytest.mark.skipif(not ov.bfloat16_supported(),
                                reason="this CPU has no bfloat16 units OpenVINO uses")


@pytest.fixture(scope="module")
def movie():
    return make_movie(n_frames=2, shape=(128, 128), n_cells=10, radius=8.0, seed=77)


@pytest.fixture(autouse=True)
def _fresh():
    ov.clear_compiled()
    onnx_engine.clear_sessions()
    yield
    ov.clear_compiled()


def test_float32_matches_torch_and_shares_the_onnx_export(cfg, demo_model, movie):
    ref, _, _ = load_segmenter(demo_entry(), "torch", cores=2)
    fast, used, message = load_segmenter(demo_entry(), "openvino", cores=2)
    assert used == "openvino" and message is None
    assert isinstance(fast.net, ov.OpenVinoNet) and fast.net.precision == "float32"
    aps, diff = compare(ref, fast, movie.image)
    assert min(aps) >= 0.99, aps
    assert diff < 1e-3, diff
    # the same cached export as the ONNX Runtime engine: one file
    onnx_model, used, _ = load_segmenter(demo_entry(), "onnx", cores=2)
    assert onnx_model.net.path == fast.net.path
    assert len(list((cfg / "onnx-cache").glob("*.onnx"))) == 1


def test_random_weight_model_float32_matches_torch(cfg, weights_file, tmp_path, movie):
    path = tmp_path / "random.pth"
    shutil.copy(weights_file, path)
    entry = custom(path)
    ref, _, _ = load_segmenter(entry, "torch", cores=2)
    fast, used, _ = load_segmenter(entry, "openvino", cores=2)
    assert used == "openvino"
    aps, diff = compare(ref, fast, movie.image, diameter=30.0, cellprob_threshold=-1.0)
    assert min(aps) >= 0.99, aps
    assert diff < 1e-3, diff


@needs_bf16
def test_bfloat16_masks_agree_with_torch(cfg, demo_model):
    frames = make_movie(n_frames=2, shape=(256, 256), n_cells=25, seed=5).image
    ref, _, _ = load_segmenter(demo_entry(), "torch", cores=2)
    fast, used, message = load_segmenter(demo_entry(), "auto", cores=2, precision="bfloat16")
    assert used == "openvino" and message is None and fast.net.precision == "bfloat16"
    aps, diff = compare(ref, fast, frames)
    assert min(aps) >= 0.99, aps
    # not float32: the flows do move (if they did not, bfloat16 would not be running)
    assert 1e-4 < diff < 1.0, diff


@needs_bf16
def test_provenance_records_engine_and_precision(cfg, demo_model):
    frames = make_movie(n_frames=2, shape=(64, 64), n_cells=3, radius=6.0, seed=2).image
    run = compute_segmentation(Project(frames), cores=1,
                               params=SegmentParams(precision="bfloat16"))
    assert run.report.engine == "openvino" and run.report.precision == "bfloat16"
    assert run.report.message is None and len(run.report.frames) == 2
    assert run.provenance["engine"] == "openvino" and run.provenance["precision"] == "bfloat16"
    assert run.provenance["engine_requested"] == "auto"
    assert run.provenance["runtime"] == f"openvino {ov.openvino_version()}"


def test_cpu_without_bfloat16_runs_float32_and_says_so(cfg, demo_model, monkeypatch, caplog):
    monkeypatch.setattr(ov, "bfloat16_supported", lambda: False)
    frames = make_movie(n_frames=1, shape=(64, 64), n_cells=3, radius=6.0, seed=3).image
    with caplog.at_level("WARNING"):
        run = compute_segmentation(Project(frames), cores=1,
                                   params=SegmentParams(precision="bfloat16"))
    assert run.report.engine == "openvino" and run.report.precision == "float32"
    assert "no bfloat16" in run.report.message and "float32" in run.report.message
    assert run.provenance["precision"] == "float32"
    assert run.provenance["precision_requested"] == "bfloat16"
    assert sum("bfloat16" in r.getMessage() for r in caplog.records) == 1


def test_missing_openvino_falls_back_to_onnx_runtime(cfg, weights_file, tmp_path,
                                                     monkeypatch):
    path = tmp_path / "model.pth"
    shutil.copy(weights_file, path)
    monkeypatch.setitem(sys.modules, "openvino", None)  # import fails as if not installed
    assert ov.openvino_version() is None
    for precision in ("float32", "bfloat16"):
        model, used, message = load_segmenter(custom(path), "auto" if precision ==
                                              "bfloat16" else "openvino", cores=1,
                                              precision=precision)
        assert used == "onnx" and isinstance(model.net, onnx_engine.OnnxNet)
        # one cause, one sentence (not "no bfloat16" and then "could not run" too)
        assert message == ("OpenVINO is not installed; ONNX Runtime runs the network at "
                           "float32."), message


def test_a_runtime_failing_on_a_sound_export_keeps_the_file(cfg, weights_file, tmp_path,
                                                            monkeypatch):
    """A compile error on a sound export is the runtime's: the cached file stays (other
    threads may be loading it) and ONNX Runtime runs instead, with one sentence."""
    path = tmp_path / "model.pth"
    shutil.copy(weights_file, path)

    def broken(*a, **k):
        raise RuntimeError("compile failed")

    monkeypatch.setattr(ov, "_compile", broken)
    model, used, message = load_segmenter(custom(path), "openvino", cores=1)
    assert used == "onnx" and "OpenVINO could not run the model (RuntimeError: compile " \
        "failed)" in message
    export = model.net.path
    assert export.is_file() and not onnx_engine.damaged_export(export)
    export.write_bytes(b"not an onnx file")  # a damaged export is made again
    assert onnx_engine.damaged_export(export)
    monkeypatch.undo()
    ov.clear_compiled()
    model, used, message = load_segmenter(custom(path), "openvino", cores=1)
    assert used == "openvino" and message is None and not onnx_engine.damaged_export(export)


@pytest.mark.parametrize("engine", ["onnx", "torch"])
def test_bfloat16_with_another_engine_runs_float32(cfg, demo_model, engine):
    _, used, message = load_segmenter(demo_entry(), engine, cores=1, precision="bfloat16")
    assert used == engine
    assert message is not None and "OpenVINO engine only" in message


def test_cli_precision_option():
    from h4tracks.cli.parser import build_parser

    args = build_parser().parse_args(["segment", "p.zarr", "--engine", "openvino",
                                      "--precision", "bfloat16"])
    assert args.engine == "openvino" and args.precision == "bfloat16"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["segment", "p.zarr", "--precision", "float16"])


def test_a_run_in_blocks_says_each_cause_once(cfg, demo_model, caplog):
    from h4tracks.core.segmentation.engine import segment_project

    frames = make_movie(n_frames=3, shape=(64, 64), n_cells=3, radius=6.0, seed=4).image
    project = Project(frames)
    report = segment_project(project, params=SegmentParams(engine="onnx",
                                                           precision="bfloat16"),
                             cores=1, checkpoint=lambda: None, checkpoint_every=1)
    assert report.frames == [0, 1, 2] and report.engine == "onnx"
    assert report.message is not None and report.message.count("OpenVINO engine only") == 1
    steps = [e for e in project.metadata.provenance if e["step"] == "segment"]
    assert len(steps) == 3 and all(e["params"]["precision"] == "float32" for e in steps)
