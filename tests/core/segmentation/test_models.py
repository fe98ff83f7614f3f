"""Tests of the Cellpose model registry and offline model loading (real cellpose, no mocks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from h4tracks.core.segmentation.models import (
    ModelEntry,
    ModelRegistry,
    builtin_cache_file,
    config_dir,
    load_cellpose_model,
)
from h4tracks.errors import H4TracksError, InputError


# -- config dir / registry basics --------------------------------------------------------
def test_config_dir_env(cfg):
    assert config_dir() == cfg
    assert ModelRegistry().path == cfg / "models.json"


def test_config_dir_default_not_in_site_packages(monkeypatch):
    monkeypatch.delenv("H4TRACKS_CONFIG_DIR", raising=False)
    d = config_dir()
    assert "h4tracks" in str(d)
    assert "site-packages" not in str(d)


def test_builtins_listed(cfg):
    reg = ModelRegistry()
    names = reg.names()
    for n in ("cyto3", "nuclei", "cyto2"):
        assert n in names
    assert len(names) == len(set(names))
    e = reg.get("cyto3")
    assert e.kind == "builtin" and e.path is None
    assert not (cfg / "models.json").exists()  # listing does not write


# -- add / persist / get / remove ----------------------------------------------------------
def test_add_custom_persists(cfg, weights_file):
    reg = ModelRegistry()
    e = reg.add_custom("mine", weights_file, diameter=25.0, channels=(1, 2), description="d")
    assert e.kind == "custom" and e.path == str(weights_file.resolve())
    assert (cfg / "models.json").exists()
    assert not [p for p in cfg.iterdir() if p.name.endswith(".tmp")]

    again = ModelRegistry().get("mine")
    assert again == e
    assert again.diameter == 25.0 and again.channels == (1, 2)
    assert [x.name for x in ModelRegistry().entries()][-1] == "mine"

    reg.add_custom("trained1", weights_file, kind="trained", provenance={"epochs": 3})
    assert ModelRegistry().get("trained1").provenance == {"epochs": 3}


def test_persistence_across_process(cfg, weights_file):
    ModelRegistry().add_custom("mine", weights_file, min_size=7)
    code = (
        "import json, sys; from h4tracks.core.segmentation.models import ModelRegistry; "
        "(e,) = ModelRegistry().custom_entries(); print(json.dumps(e.model_dump(mode='json'))); "
        "print('cellpose' in sys.modules)"
    )
    env = dict(os.environ, H4TRACKS_CONFIG_DIR=str(cfg))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    data = json.loads(lines[-2])
    assert lines[-1] == "False"  # reading the registry file alone does not import cellpose
    assert data["name"] == "mine" and data["min_size"] == 7
    assert data["path"] == str(weights_file.resolve())


def test_remove(cfg, weights_file):
    reg = ModelRegistry()
    reg.add_custom("a", weights_file)
    reg.add_custom("b", weights_file)
    reg.remove("a")
    assert "a" not in ModelRegistry().names() and "b" in ModelRegistry().names()
    assert weights_file.exists()  # the weights file is left alone
    with pytest.raises(H4TracksError, match="Unknown model 'a'"):
        reg.remove("a")


def test_remove_builtin_refused(cfg):
    with pytest.raises(InputError, match="built in and cannot be removed"):
        ModelRegistry().remove("cyto3")


def test_unknown_name_lists_available(cfg, weights_file):
    reg = ModelRegistry()
    reg.add_custom("mine", weights_file)
    with pytest.raises(H4TracksError, match="Unknown model 'nope'") as ei:
        reg.get("nope")
    assert "cyto3" in str(ei.value) and "mine" in str(ei.value)


def test_name_clash(cfg, weights_file, tmp_path):
    reg = ModelRegistry()
    with pytest.raises(InputError, match="built-in"):
        reg.add_custom("cyto3", weights_file)
    with pytest.raises(InputError, match="built-in"):
        reg.add_custom("cyto3", weights_file, replace=True)
    reg.add_custom("mine", weights_file, diameter=10.0)
    with pytest.raises(InputError, match="already exists"):
        reg.add_custom("mine", weights_file, diameter=20.0)
    assert ModelRegistry().get("mine").diameter == 10.0
    reg.add_custom("mine", weights_file, diameter=20.0, replace=True)
    assert ModelRegistry().get("mine").diameter == 20.0
    assert ModelRegistry().names().count("mine") == 1


@pytest.mark.parametrize("bad", ["", " x", None])
def test_bad_names(cfg, weights_file, bad):
    with pytest.raises(InputError):
        ModelRegistry().add_custom(bad, weights_file)


def test_bad_params(cfg, weights_file):
    with pytest.raises(InputError, match="Invalid model parameters"):
        ModelRegistry().add_custom("m", weights_file, diamter=3.0)  # typo
    with pytest.raises(InputError, match="Invalid model parameters"):
        ModelRegistry().add_custom("m", weights_file, min_size="big")
    assert not (cfg / "models.json").exists()


# -- invalid model files -------------------------------------------------------------------
def test_missing_file(cfg, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        ModelRegistry().add_custom("m", tmp_path / "nope.pth")


def test_directory_not_file(cfg, tmp_path):
    with pytest.raises(InputError, match="not a file"):
        ModelRegistry().add_custom("m", tmp_path)


def test_text_file(cfg, tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("these are not weights\n")
    with pytest.raises(InputError, match="is not a Cellpose model file"):
        ModelRegistry().add_custom("m", p)


def test_random_bytes(cfg, tmp_path):
    p = tmp_path / "random.pth"
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="is not a Cellpose model file"):
        ModelRegistry().add_custom("m", p)


def test_torch_dict_of_other_tensors(cfg, tmp_path):
    p = tmp_path / "other.pth"
    torch.save({"layer.weight": torch.zeros(3, 3), "layer.bias": torch.zeros(3)}, p)
    with pytest.raises(InputError, match="missing network weights"):
        ModelRegistry().add_custom("m", p)


def test_torch_other_object(cfg, tmp_path):
    p = tmp_path / "tensor.pth"
    torch.save(torch.zeros(4), p)
    with pytest.raises(InputError, match="no state dict"):
        ModelRegistry().add_custom("m", p)


def test_cellpose4_file_refused(cfg, tmp_path, weights_file):
    state = torch.load(weights_file, weights_only=True)
    state["W2"] = torch.zeros(2)
    p = tmp_path / "cp4.pth"
    torch.save(state, p)
    with pytest.raises(InputError, match="Cellpose 4"):
        ModelRegistry().add_custom("m", p)


def test_failed_add_does_not_write(cfg, tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("x")
    with pytest.raises(InputError):
        ModelRegistry().add_custom("m", p)
    assert not (cfg / "models.json").exists()


# -- corrupt registry file -------------------------------------------------------------------
@pytest.mark.parametrize("content", ["{not json", '{"models": 3}', '{"models": [{"x": 1}]}'])
def test_corrupt_json(cfg, weights_file, content):
    cfg.mkdir(parents=True)
    f = cfg / "models.json"
    f.write_text(content)
    reg = ModelRegistry()
    with pytest.raises(H4TracksError, match=r"models\.json") as ei:
        reg.entries()
    assert str(f) in str(ei.value)
    with pytest.raises(H4TracksError, match=r"corrupt|invalid"):
        reg.add_custom("m", weights_file)
    with pytest.raises(H4TracksError):
        reg.remove("m")
    assert f.read_text() == content  # not overwritten


# -- loading -------------------------------------------------------------------------------
def test_load_custom_and_eval(cfg, weights_file, empty_cellpose_cache):
    entry = ModelRegistry().add_custom("mine", weights_file)
    model, msg = load_cellpose_model(entry)
    assert msg is None
    assert model.pretrained_model == str(weights_file.resolve())
    saved = torch.load(weights_file, weights_only=True)
    for k in ("output.2.weight", "downsample.down.res_down_0.conv.conv_0.2.weight"):
        if k in saved:
            assert torch.equal(model.net.state_dict()[k].cpu(), saved[k])
    img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    masks, _flows, _styles = model.eval(img, channels=list(entry.channels), diameter=30.0)
    assert masks.shape == (64, 64)
    assert np.issubdtype(masks.dtype, np.integer)
    assert list(empty_cellpose_cache.iterdir()) == []  # nothing downloaded


def test_load_gpu_without_cuda(cfg, weights_file, empty_cellpose_cache):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available on this machine")
    entry = ModelRegistry().add_custom("mine", weights_file)
    model, msg = load_cellpose_model(entry, gpu=True)
    assert msg is not None and "CPU" in msg
    assert model.device.type == "cpu"


def test_load_missing_after_registration(cfg, weights_file, tmp_path, empty_cellpose_cache):
    p = tmp_path / "copy.pth"
    p.write_bytes(weights_file.read_bytes())
    entry = ModelRegistry().add_custom("mine", p)
    p.unlink()
    with pytest.raises(H4TracksError, match="is gone") as ei:
        load_cellpose_model(ModelRegistry().get("mine"))
    assert "add_custom" in str(ei.value)
    assert entry.path == str(p.resolve())
    assert list(empty_cellpose_cache.iterdir()) == []  # no fallback download of cyto3


def test_load_replaced_by_non_model(cfg, weights_file, tmp_path, empty_cellpose_cache):
    p = tmp_path / "copy.pth"
    p.write_bytes(weights_file.read_bytes())
    entry = ModelRegistry().add_custom("mine", p)
    p.write_text("overwritten")
    with pytest.raises(InputError, match="not a Cellpose model file"):
        load_cellpose_model(entry)


@pytest.mark.parametrize("name", ["cyto3", "nuclei"])
def test_builtin_not_cached_offline_error(cfg, empty_cellpose_cache, name):
    entry = ModelRegistry().get(name)
    with pytest.raises(H4TracksError) as ei:
        load_cellpose_model(entry)
    msg = str(ei.value)
    assert "downloaded on first use" in msg and "internet" in msg
    assert "add_custom" in msg and "--model PATH" in msg
    assert list(empty_cellpose_cache.iterdir()) == []


def test_builtin_cached_loads(cfg, weights_file, empty_cellpose_cache):
    # Put (random) weights where cellpose caches cyto3: the cached branch must load them
    # without any download.
    cached = builtin_cache_file("cyto3")
    assert cached.parent == empty_cellpose_cache
    cached.write_bytes(weights_file.read_bytes())
    model, msg = load_cellpose_model(ModelRegistry().get("cyto3"))
    assert msg is None
    assert model.pretrained_model == str(cached)


def test_builtin_cache_names(empty_cellpose_cache):
    assert builtin_cache_file("nuclei").name == "nucleitorch_0"
    assert builtin_cache_file("cyto3").name == "cyto3"


def test_entry_model_roundtrip():
    e = ModelEntry(name="x", kind="custom", path="/a.pth", diameter=None)
    assert ModelEntry.model_validate_json(e.model_dump_json()) == e
    assert e.flow_threshold == 0.4 and e.cellprob_threshold == 0.0 and e.min_size == 15
    assert e.channels == (0, 0) and e.provenance == {}


def test_demo_model_is_default_and_loads_offline(cfg, demo_model, empty_cellpose_cache):
    reg = ModelRegistry()
    entry = reg.default_entry()
    assert entry.kind == "bundled" and reg.names()[0] == entry.name
    assert Path(entry.path) == demo_model
    model, message = load_cellpose_model(entry)
    assert message is None
    # stored in float16 to halve the package size, loaded into cellpose's float32 network
    assert next(model.net.parameters()).dtype == torch.float32
    with pytest.raises(InputError, match="built-in model name"):
        reg.add_custom(entry.name, demo_model)
    with pytest.raises(InputError, match="built in"):
        reg.remove(entry.name)
    assert entry.name not in [e.name for e in reg.custom_entries()]


def test_demo_model_missing_is_clear(cfg, tmp_path, empty_cellpose_cache):
    from h4tracks.core.segmentation.models import demo_entry

    entry = demo_entry().model_copy(update={"path": str(tmp_path / "gone.pth")})
    with pytest.raises(H4TracksError, match=r"demo model file .* is missing"):
        load_cellpose_model(entry)


def test_concurrent_adds_keep_every_entry(cfg, weights_file):
    """Six programs registering models at once (two terminals, a training in napari): the
    registry's lock makes each read-modify-write whole, so no entry is lost."""
    code = (
        "import sys; from h4tracks.core.segmentation.models import ModelRegistry; "
        "ModelRegistry().add_custom(sys.argv[1], sys.argv[2])"
    )
    env = dict(os.environ, H4TRACKS_CONFIG_DIR=str(cfg))
    names = [f"m{i}" for i in range(6)]  # each process imports torch: six are plenty here
    procs = [subprocess.Popen([sys.executable, "-c", code, n, str(weights_file)], env=env,
                              stderr=subprocess.PIPE, text=True) for n in names]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert {e.name for e in ModelRegistry().custom_entries()} == set(names)
    assert len(ModelRegistry().custom_entries()) == 6
    assert sorted(p.name for p in cfg.iterdir() if p.name.endswith(".tmp")) == []


def test_corrupt_registry_is_one_sentence_and_kept(cfg, weights_file):
    cfg.mkdir(parents=True)
    (cfg / "models.json").write_text('{"models": [ {"name": ')
    with pytest.raises(H4TracksError, match="corrupt") as info:
        ModelRegistry().add_custom("mine", weights_file)
    assert "\n" not in str(info.value)
    assert (cfg / "models.json").read_text() == '{"models": [ {"name": '


def test_cellpose4_state_dict_gets_one_sentence(cfg, tmp_path):
    from h4tracks.core.segmentation.engine import resolve_model

    # the keys of a Cellpose 4 (CPSAM) file, shrunk: input data, not a network to run
    state = {"W2": torch.eye(4).reshape(4, 1, 2, 2), "out.weight": torch.zeros(4, 8, 1, 1),
             "out.bias": torch.zeros(4), "encoder.patch_embed.proj.weight": torch.zeros(8, 3, 2, 2),
             "encoder.blocks.0.attn.qkv.weight": torch.zeros(24, 8)}
    p = tmp_path / "cp4.pth"
    torch.save(state, p)
    for attempt in (lambda: ModelRegistry().add_custom("m", p),
                    lambda: resolve_model(str(p))):
        with pytest.raises(InputError) as err:
            attempt()
        msg = str(err.value)
        assert f"{p} is a Cellpose 4 model; Cellpose 3 is installed, which cannot load it" in msg
        assert 'pip install "cellpose>=4,<5"' in msg and "\n" not in msg
    assert not (cfg / "models.json").exists()


def test_torch_without_mmap_still_reads_custom_models(cfg, weights_file, monkeypatch):
    """torch < 2.1 has no ``mmap`` argument (TypeError): the weights are read without it."""
    real_load = torch.load
    calls: list[bool] = []

    def old_torch_load(*args, **kwargs):
        calls.append("mmap" in kwargs)
        if "mmap" in kwargs:
            raise TypeError("load() got an unexpected keyword argument 'mmap'")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", old_torch_load)
    entry = ModelRegistry().add_custom("old-torch", weights_file)
    assert entry.name == "old-torch" and ModelRegistry().get("old-torch") is not None
    assert calls[-1] is False  # the file was read without mmap in the end
