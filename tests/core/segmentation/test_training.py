"""Training / fine-tuning Cellpose on curated frames (real cellpose, tiny frames, few steps)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from h4tracks.core.project import Project
from h4tracks.core.segmentation.models import ModelRegistry, load_cellpose_model
from h4tracks.core.segmentation.train_project import train_from_project
from h4tracks.core.segmentation.training import (
    FINETUNE_LR,
    FINETUNE_WEIGHT_DECAY,
    TrainingCancelled,
    TrainParams,
    check_training_data,
    train_cellpose,
)
from h4tracks.datasets.synthetic import make_movie
from h4tracks.errors import InputError

TINY = TrainParams(epochs=2, patch_size=64, batch_size=2, images_per_epoch=2)


@pytest.fixture(scope="module")
def movie():
    return make_movie(n_frames=4, shape=(64, 64), n_cells=5, radius=6.0, seed=7)


def test_finetune_registers_and_reloads_in_new_process(cfg, movie, demo_model, tmp_path):
    project = Project(movie.image, movie.labels)
    seen = []
    entry, result = train_from_project(
        project, "0,2", "my-cells", base="h4tracks-demo", params=TINY, cores=1,
        progress=lambda e, n, loss: seen.append((e, n, loss)),
    )
    assert [s[:2] for s in seen] == [(1, 2), (2, 2)] and np.isfinite(seen[-1][2])
    assert result.learning_rate == FINETUNE_LR and result.weight_decay == FINETUNE_WEIGHT_DECAY
    assert entry.kind == "trained" and entry.provenance["base"] == "h4tracks-demo"
    assert entry.provenance["frames"] == [0, 2] and entry.path.startswith(str(cfg))
    assert abs(entry.diameter - result.diameter) < 0.01 and 5 <= entry.diameter < 30
    # the weights changed, and a new process finds the model by name and segments with it
    base = torch.load(demo_model, weights_only=True)
    new = torch.load(entry.path, weights_only=True)
    assert not torch.equal(base["output.2.weight"].float(), new["output.2.weight"].float())
    code = (
        "import numpy as np;"
        "from h4tracks.core.segmentation.models import ModelRegistry, load_cellpose_model;"
        "m, _ = load_cellpose_model(ModelRegistry().get('my-cells'));"
        "out = m.eval([np.random.default_rng(0).random((64, 64))], channels=[0, 0])[0][0];"
        "print(m.pretrained_model, out.shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    assert entry.path in out.stdout and "(64, 64)" in out.stdout
    with pytest.raises(InputError, match="already exists"):
        train_from_project(project, "0", "my-cells", params=TINY)


def test_from_scratch_uses_library_rate_and_time_budget(movie, tmp_path):
    params = TrainParams(epochs=50, minutes=1e-4, patch_size=64, batch_size=2,
                         images_per_epoch=2, diam_mean=12.0)
    r = train_cellpose(list(movie.image[:2]), list(movie.labels[:2]), tmp_path / "s.pth",
                       params=params, cores=1)
    assert r.epochs == 1 and r.learning_rate == 0.005  # stopped by the time budget
    state = torch.load(r.path, weights_only=True)
    assert float(state["diam_mean"]) == 12.0
    assert abs(float(state["diam_labels"]) - r.diameter) < 1e-3


def test_best_checkpoint_ties_and_patience(movie, tmp_path):
    """The validation callback is the caller's (here a scripted score per round; the network
    really trains): a tie keeps the later weights without counting as a stall, and
    ``patience`` rounds below the best stop the run with the best weights saved."""
    scores = iter([0.5, 0.5, 0.6, 0.4, 0.6, 0.3, 0.2, 0.9, 0.9])
    seen = {}

    def validate(model) -> float:
        seen[len(seen) + 1] = {k: v.clone() for k, v in model.net.state_dict().items()}
        return next(scores)

    params = TINY.model_copy(update={"epochs": 9, "validate_every": 1, "patience": 2,
                                     "diam_mean": 12.0})
    r = train_cellpose(list(movie.image[:2]), list(movie.labels[:2]), tmp_path / "p.pth",
                       params=params, cores=1, validate=validate)
    # rounds: 0.5 best, 0.5 tie (later kept), 0.6 best, 0.4 stall 1, 0.6 tie (kept, still
    # 1 stall), 0.3 stall 2 -> stop after epoch 6; a tie-resets rule would run on to 0.9
    assert r.epochs == 6 and [e for e, _ in r.val_scores] == [1, 2, 3, 4, 5, 6]
    assert r.best_epoch == 5 and r.best_score == 0.6
    saved = torch.load(r.path, weights_only=True)
    assert not all(torch.equal(seen[5][k], seen[3][k]) for k in seen[3])  # it trained
    assert all(torch.equal(saved[k], seen[5][k]) for k in seen[5])


def test_cancel_keeps_model_so_far(movie, tmp_path, demo_model):
    from h4tracks.core.segmentation.models import demo_entry

    base, _ = load_cellpose_model(demo_entry())
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 1  # after one batch

    with pytest.raises(TrainingCancelled, match="cancelled after 0 epoch") as info:
        train_cellpose(list(movie.image), list(movie.labels), tmp_path / "c.pth", base=base,
                       params=TINY.model_copy(update={"images_per_epoch": 4}), cancel=cancel)
    assert info.value.result is not None and info.value.result.path.is_file()
    from h4tracks.core.segmentation.models import ModelEntry

    load_cellpose_model(ModelEntry(name="c", kind="custom", path=str(info.value.result.path)))


def test_cancelled_project_training_is_not_registered(cfg, movie):
    project = Project(movie.image, movie.labels)
    with pytest.raises(TrainingCancelled):
        train_from_project(project, "0:2", "never", params=TINY, cancel=lambda: True)
    assert "never" not in ModelRegistry().names()
    # replacing a model: a cancelled run leaves its weights file as it was
    entry, _ = train_from_project(project, "0:2", "kept", params=TINY, cores=1)
    before = Path(entry.path).read_bytes()
    for params in (TINY, None):  # a plain run and the recipe
        with pytest.raises(TrainingCancelled):
            train_from_project(project, "0:2", "kept", params=params, replace=True,
                               cancel=lambda: True, cores=1)
        assert Path(entry.path).read_bytes() == before
        assert sorted(p.name for p in Path(entry.path).parent.iterdir()) == ["kept.pth"]
    assert ModelRegistry().get("kept").path == entry.path


def test_bad_training_input(cfg, movie, tmp_path):
    img, lab = movie.image[0], movie.labels[0]
    with pytest.raises(InputError, match="No training frames"):
        check_training_data([], [])
    with pytest.raises(InputError, match="2 images but 1 masks"):
        check_training_data([img, img], [lab])
    with pytest.raises(InputError, match="must be 2D"):
        check_training_data([np.stack([img, img])], [lab])
    with pytest.raises(InputError, match="differ"):
        check_training_data([img[:32]], [lab])
    with pytest.raises(InputError, match="has at least 1 labelled cell"):
        check_training_data([img], [np.zeros_like(lab)])
    with pytest.raises(InputError, match="does not exist"):
        train_cellpose([img], [lab], tmp_path / "no" / "x.pth", params=TINY)
    project = Project(movie.image)
    with pytest.raises(InputError, match="no segmentation"):
        train_from_project(project, "0", "x", params=TINY)
    project = Project(movie.image, np.zeros_like(movie.labels))
    with pytest.raises(InputError, match="curate some cells"):
        train_from_project(project, "0,1", "x", params=TINY)
    bad = tmp_path / "notmodel.pth"
    bad.write_bytes(b"\x00" * 100)
    project = Project(movie.image, movie.labels)
    with pytest.raises(InputError, match="not a Cellpose model"):
        train_from_project(project, "0", "x", base=str(bad), params=TINY)
    assert "x" not in ModelRegistry().names()


def test_training_defaults_to_curated_frames(cfg, movie):
    project = Project(movie.image, movie.labels)
    with pytest.raises(InputError, match="no curated frame"):
        train_from_project(project, None, "x", params=TINY)
    project.set_curated([1, 3])
    entry, _ = train_from_project(project, None, "from-curated", params=TINY.model_copy(
        update={"epochs": 1}), cores=1)
    assert entry.provenance["frames"] == [1, 3]


def test_saved_batchnorm_statistics_describe_the_training_data(movie, tmp_path):
    """After a short run the saved BatchNorm statistics are re-estimated on the training
    patches: with cellpose's momentum (0.05) alone, 2 steps would leave a fresh network's
    input statistics ~90 % at their initial values (mean 0, variance 1) and the model would
    be evaluated with statistics of data it never saw (regression: fine-tuned models found
    no cell in eval mode although their training loss had dropped)."""
    path = tmp_path / "bn.pth"
    train_cellpose(list(movie.image), list(movie.labels), path, params=TINY, cores=1)
    state = torch.load(path, map_location="cpu", weights_only=True)
    # the first layer's BatchNorm sees the network input: channel 0 = the 1-99 % scaled
    # image, channel 1 = empty
    mean = state["downsample.down.res_down_0.proj.0.running_mean"]
    var = state["downsample.down.res_down_0.proj.0.running_var"]
    from cellpose import transforms

    image_mean = float(np.mean([transforms.normalize99(f.astype(np.float32)).mean()
                                for f in movie.image]))
    assert float(mean[0]) == pytest.approx(image_mean, rel=0.35)
    assert float(mean[1]) == pytest.approx(0.0, abs=1e-6)
    assert float(var[1]) < 1e-3


def test_a_failed_training_hands_the_model_back_in_its_layout(movie, tmp_path):
    """Training switches the caller's network to dense channels-last tensors; an error in
    the middle (here from the progress callback) must not leave it that way."""
    import torch

    from h4tracks.core.segmentation.models import demo_entry

    base, _ = load_cellpose_model(demo_entry())
    mkldnn = base.net.mkldnn
    conv = next(m for m in base.net.modules()
                if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1 and m.kernel_size[0] > 1)

    def boom(epoch, n, loss):
        # (training really switched it: dense channels-last tensors)
        assert not base.net.mkldnn and not conv.weight.is_contiguous()
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        train_cellpose(list(movie.image), list(movie.labels), tmp_path / "p.pth", base=base,
                       params=TINY, cores=1, progress=boom)
    assert base.net.mkldnn == mkldnn and conv.weight.is_contiguous()
    assert not (tmp_path / "p.pth").exists()


@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_precision_of_the_training_steps(movie, tmp_path, precision):
    """bfloat16 mixed precision (about 2x faster on a CPU with native bfloat16) trains the
    same float32 network: the saved weights stay float32 and loadable."""
    from h4tracks.core.segmentation.models import ModelEntry, demo_entry

    base, _ = load_cellpose_model(demo_entry())
    mkldnn = base.net.mkldnn
    r = train_cellpose(list(movie.image), list(movie.labels), tmp_path / "p.pth", base=base,
                       params=TINY.model_copy(update={"precision": precision}), cores=1)
    assert r.precision == precision and np.isfinite(r.losses).all()
    assert base.net.mkldnn == mkldnn  # trained with dense tensors, handed back as it was
    state = torch.load(r.path, weights_only=True)
    assert state["output.2.weight"].dtype == torch.float32
    model, _ = load_cellpose_model(ModelEntry(name="p", kind="custom", path=str(r.path)))
    assert model.eval([movie.image[0]], channels=[0, 0])[0][0].shape == movie.image[0].shape


def test_auto_precision_is_measured_once(movie, tmp_path, monkeypatch):
    from h4tracks.core.segmentation import training_network as training

    monkeypatch.setattr(training, "_BF16_FASTER", {})
    monkeypatch.setattr(training, "_may_have_native_bfloat16", lambda: True)
    r = train_cellpose(list(movie.image), list(movie.labels), tmp_path / "a.pth",
                       params=TINY, cores=1)
    assert r.precision in ("bfloat16", "float32")
    assert list(training._BF16_FASTER) == [(2, 2, 64, 64)]  # probe shape, cached
    assert training._BF16_FASTER[(2, 2, 64, 64)] == (r.precision == "bfloat16")


def test_no_bfloat16_probe_on_a_cpu_without_it(movie, tmp_path, monkeypatch):
    """A CPU whose flags show no bfloat16 arithmetic emulates it (12x slower than float32
    here): float32 without spending seconds of the budget on the probe."""
    from h4tracks.core.segmentation import training_network as training

    monkeypatch.setattr(training, "_BF16_FASTER", {})
    monkeypatch.setattr(training, "_may_have_native_bfloat16", lambda: False)
    r = train_cellpose(list(movie.image), list(movie.labels), tmp_path / "a.pth",
                       params=TINY, cores=1)
    assert r.precision == "float32" and training._BF16_FASTER == {}


@pytest.mark.parametrize("validated", [False, True])
def test_weight_averaging_saves_the_mean_of_the_last_epochs(movie, tmp_path, validated):
    """``average_last``: the saved weights are the mean of those after each of the last
    epochs (here 2 of 5), not the last step's — also when validations choose the saved
    checkpoint (the recipe's main run with few validation cells): they score the average,
    and a better score of the single weights before the averaging began does not count."""
    from h4tracks.core.segmentation.models import demo_entry

    base, _ = load_cellpose_model(demo_entry())
    snapshots = []

    def keep(epoch, n, loss):  # the network's weights after every epoch
        snapshots.append({k: v.detach().clone() for k, v in base.net.named_parameters()})

    scores = iter([0.9, 0.5, 0.5, 0.5, 0.5])  # epoch 1's single weights score best
    params = TINY.model_copy(update={"epochs": 5, "average_last": 0.4, "validate_every": 1,
                                     "learning_rate": 1e-3, "weight_decay": 0.0,
                                     "warmup_epochs": 1})
    r = train_cellpose(list(movie.image), list(movie.labels), tmp_path / "a.pth", base=base,
                       params=params, cores=1, progress=keep,
                       validate=(lambda model: next(scores)) if validated else None)
    saved = torch.load(r.path, weights_only=True)
    assert len(snapshots) == 5 and r.averaged_epochs == 2
    if validated:
        assert [e for e, _ in r.val_scores] == [1, 2, 3, 4, 5]
        assert (r.best_epoch, r.best_score) == (5, 0.5)
    for name in ("output.2.weight", "downsample.down.res_down_0.conv.conv_0.2.weight"):
        mean = (snapshots[3][name] + snapshots[4][name]) / 2
        assert torch.allclose(saved[name], mean, atol=1e-6), name
        assert not torch.allclose(saved[name], snapshots[4][name], atol=1e-6)  # not the last


def test_a_model_that_already_segmented_can_be_fine_tuned(movie, tmp_path):
    """Cellpose's first CPU forward converts the network to MKL-DNN modules in place; the
    same model object can then still be fine-tuned (it used to fail on a layout change of
    MKL-DNN tensors), its network rebuilt with the same weights."""
    from h4tracks.core.segmentation.models import demo_entry
    from h4tracks.core.segmentation.training_network import dense_network

    base, _ = load_cellpose_model(demo_entry())
    if not base.net.mkldnn:
        pytest.skip("this torch build has no MKL-DNN: nothing is converted")
    before = base.eval([movie.image[0]], channels=[0, 0], diameter=12)[0][0]
    assert any(t.is_mkldnn for t in base.net.state_dict().values())
    dense_network(base)
    assert not any(t.is_mkldnn for t in base.net.state_dict().values())
    assert np.array_equal(base.eval([movie.image[0]], channels=[0, 0], diameter=12)[0][0],
                          before)
    r = train_cellpose(list(movie.image), list(movie.labels), tmp_path / "f.pth", base=base,
                       params=TINY, cores=1)  # (the eval above converted it again)
    assert np.isfinite(r.losses).all() and r.path.exists()
    # a converted network of another architecture is not rebuilt: one sentence, no training
    base.eval([movie.image[0]], channels=[0, 0], diameter=12)
    base.net_type = "transformer"
    with pytest.raises(InputError, match="default 2D network"):
        train_cellpose(list(movie.image), list(movie.labels), tmp_path / "g.pth", base=base,
                       params=TINY, cores=1)
    assert not (tmp_path / "g.pth").exists()


def _discs(centres, shape=(64, 64), radius=7, seed=0):
    """A frame of bright discs (those centred on an edge cut by it) and its masks."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    labels = np.zeros(shape, np.int32)
    for i, (cy, cx) in enumerate(centres, 1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] = i
    noise = np.random.default_rng(seed).normal(0, 0.02, shape)
    return (np.where(labels > 0, 1.0, 0.1) + noise).astype(np.float32), labels


@pytest.mark.parametrize("border_pad", [0.0, 0.5])
def test_border_pad_shows_patches_the_frame_edge(tmp_path, monkeypatch, border_pad):
    """With ``border_pad`` the augmentation draws patches from frames padded with zeros (the
    network's empty input, as Cellpose pads a frame it segments) on the sides that cut a
    cell, masks' flows padded alike and aligned with the image; without it, from the frames
    as they are."""
    from cellpose import transforms

    from h4tracks.core.segmentation.training import _as_network_input

    left_img, left_lab = _discs([(32, 0), (16, 40), (48, 30)])  # a disc cut by the left edge
    frames = {"left": (left_img, left_lab),
              "right": (np.fliplr(left_img).copy(), np.fliplr(left_lab).copy())}
    seen = []
    real = transforms.random_rotate_and_resize

    def spy(X, Y=None, **kw):
        seen.append((X, Y, kw["rescale"]))
        return real(X, Y=Y, **kw)

    monkeypatch.setattr(transforms, "random_rotate_and_resize", spy)
    params = TINY.model_copy(update={"border_pad": border_pad, "diam_mean": 12.0})
    r = train_cellpose([f[0] for f in frames.values()], [f[1] for f in frames.values()],
                       tmp_path / "p.pth", params=params, cores=1)
    assert np.isfinite(r.losses).all() and seen
    sides = set()
    for images, flows, rescale in seen:
        for x, y, s in zip(images, flows, rescale, strict=True):
            pad = int(np.ceil(border_pad * params.patch_size * s))
            assert x.shape == (2, 64, 64 + pad) and y.shape[-2:] == x.shape[-2:]
            if pad == 0:
                continue
            side = "left" if not x[:, :, :pad].any() else "right"
            inner = slice(pad, None) if side == "left" else slice(0, 64)
            strip = slice(0, pad) if side == "left" else slice(64, None)
            assert not x[:, :, strip].any() and not y[:, :, strip].any()
            img, lab = frames[side]
            np.testing.assert_allclose(x[0][:, inner], _as_network_input(img)[0])
            assert np.array_equal(y[0][:, inner] > 0, lab > 0)  # flows under their cells
            sides.add(side)
    assert sides == (set() if border_pad == 0 else {"left", "right"})
