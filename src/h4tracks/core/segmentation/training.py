"""Train or fine-tune a Cellpose network on (image, mask) pairs, with progress and cancel.

Cellpose 3's ``train_seg`` runs a fixed number of epochs with no progress callback, no way to
stop early and no time budget, so the loop lives here, built from cellpose's own pieces: flows
from masks (``dynamics.labels_to_flows``), cellpose's augmentation
(``transforms.random_rotate_and_resize``: random rotation, flips, scale jitter and crops of
``patch_size``), the cellpose network and its loss (MSE on 5 × the flows plus binary
cross-entropy on the cell probability, as in ``cellpose.train``).

Defaults are non-destructive: starting from a pretrained model the learning rate is small
(1e-5) with strong weight decay (0.1), which keeps what the model knows (the library defaults,
lr 0.005 / wd 1e-5, can wreck a good pretrained model on few images); from scratch the
library's own defaults are used. Everything runs inside ``torch.set_num_threads(cores)``.
Training steps run in bfloat16 mixed precision (``torch.autocast``) where the CPU is measured
to do them faster (:func:`~.training_network._use_bfloat16`; about 2x on a CPU with
AVX512-BF16); the weights and everything else stay float32.

Before a model is validated or saved its BatchNorm statistics are re-estimated on training
patches with the current weights (:func:`~.training_network._recalibrate_batchnorm`):
cellpose's BatchNorm layers track them with momentum 0.05, so after a short run (tens of
steps) the statistics used
at inference still largely describe the starting model, and a network that fits its training
patches well can find no cell at all in eval mode. The augmentation draws from a fixed seed
(``params.seed``), so a run is reproducible.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from h4tracks.core.compute import torch_threads
from h4tracks.core.segmentation.training_network import (
    _recalibrate_batchnorm,
    _use_bfloat16,
    _usual_layout,
    dense_network,
)
from h4tracks.errors import H4TracksError, InputError

logger = logging.getLogger(__name__)

#: fine-tuning defaults that keep a pretrained model's knowledge (see module docstring)
FINETUNE_LR = 1e-5
FINETUNE_WEIGHT_DECAY = 0.1
#: cellpose's own defaults, right when there is nothing to preserve
SCRATCH_LR = 0.005
SCRATCH_WEIGHT_DECAY = 1e-5
#: batches of training patches of up to REF_PATCH² used to re-estimate the BatchNorm
#: statistics (fewer batches of bigger patches: the same number of pixels)
BN_BATCHES = 4
#: patch side (px) in which pixel budgets are counted (BatchNorm batches, the recipe's
#: default number of patches)
REF_PATCH = 112


def ref_patch_share(patch_size: int) -> float:
    """How many patches of ``patch_size``² a pixel budget counted in ``REF_PATCH``² patches
    allows per reference patch: ``(REF_PATCH / patch_size)²``, at most 1 (smaller patches are
    not given more of them)."""
    return min(1.0, (REF_PATCH / patch_size) ** 2)


class TrainingCancelled(H4TracksError):
    """Training was cancelled; ``result`` holds the model saved so far (or None)."""

    def __init__(self, message: str, result: TrainResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class TrainParams(BaseModel):
    """Training settings; ``None`` means "choose from the data / the starting point"."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(100, ge=1, description="passes of `images_per_epoch` patches")
    minutes: float | None = Field(None, gt=0, description="stop after this wall time")
    learning_rate: float | None = Field(None, gt=0)
    weight_decay: float | None = Field(None, ge=0)
    batch_size: int = Field(8, ge=1)
    images_per_epoch: int | None = Field(
        None, ge=1, description="patches per epoch (default: number of images, at least 8)"
    )
    patch_size: int = Field(224, ge=64, description="square training crop, multiple of 16")
    scale_range: float = Field(0.5, ge=0, le=1, description="random rescale jitter")
    min_masks: int = Field(1, ge=0, description="images with fewer cells are skipped")
    diam_mean: float | None = Field(
        None, gt=0, description="from scratch: cell diameter the network works at (default 30)"
    )
    intensity_jitter: float = Field(
        0.0, ge=0, le=1, description="random contrast (×1±j) and offset (±j/2) per patch"
    )
    border_pad: float = Field(
        0.0, ge=0, le=1, description="each side of a frame that cuts a cell is padded by "
        "this share of a patch with the network's empty input (zeros), as Cellpose pads a "
        "frame it segments: 0.5 lets patch centres reach about the frame's edge, so cells "
        "cut by it are learnt next to the zeros that segmentation shows them with; 0: patch "
        "centres stay half a patch inside the frame (cellpose)")
    warmup_epochs: int = Field(
        10, ge=0, description="epochs of linear learning-rate warm-up (cellpose's 10; a run "
        "that continues trained weights needs none)")
    validate_every: int = Field(5, ge=1, description="epochs between validation rounds")
    average_last: float = Field(
        0.0, ge=0, lt=1, description="share of the last epochs whose weights are averaged "
        "(stochastic weight averaging, with no annealing of the learning rate), at most those "
        "after the warm-up: validations from then on and the saved model use their average, "
        "and only those validations choose the saved checkpoint; 0, or a run stopped before "
        "they begin: the weights of the last step")
    patience: int | None = Field(
        None, ge=1, description="stop after this many validation rounds scoring below the best "
        "by more than `tolerance` (a tie keeps the later weights and is not counted)"
    )
    tolerance: float = Field(
        0.0, ge=0, le=1, description="a validation score at most this much below the best so "
        "far keeps the later weights and is no stall (the noise of a small validation set)")
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="arithmetic of the training steps; 'auto': bfloat16 mixed "
        "precision on a CPU where it is measured faster, else float32"
    )
    seed: int = 0


@dataclass
class TrainResult:
    """What a training run produced."""

    path: Path
    diameter: float  # mean cell diameter of the training masks (px)
    epochs: int  # epochs completed
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    learning_rate: float = 0.0
    weight_decay: float = 0.0
    base: str | None = None
    val_scores: list[tuple[int, float]] = field(default_factory=list)  # (epoch, score)
    best_score: float | None = None  # the saved weights' validation score
    best_epoch: int | None = None
    precision: str = "float32"  # what the training steps ran in
    step_seconds: float = 0.0  # of ``seconds``: spent in training steps
    check_seconds: float = 0.0  # of ``seconds``: spent validating (with BatchNorm re-estimation)
    averaged_epochs: int = 0  # epochs whose weights went into the average (average_last)


def _as_network_input(image: np.ndarray) -> np.ndarray:
    """A 2D frame as the (2, Y, X) float32 cellpose input (channel 2 empty), 1-99 % scaled."""
    from cellpose import transforms

    img = np.asarray(image, dtype=np.float32)
    x = np.zeros((2, *img.shape), np.float32)
    x[0] = transforms.normalize99(img)
    return x


def _pad_frames(imgs: list[np.ndarray], lbls: list[np.ndarray], flows: list[np.ndarray],
                pads: np.ndarray) -> tuple[list, list]:
    """Network inputs and flows padded with zeros by ``pads[i]`` pixels on each side of
    frame ``i`` whose edge cuts a cell (``lbls``: the masks).

    Zero is the network's empty input: Cellpose pads a frame it segments with 8-15 zero
    pixels (after its 1-99 % scaling; ``core.run_net``), so a cell cut by the frame's edge
    meets the network beside zeros and then a tile's edge. Patches from the frames as they
    are keep their centres half a patch inside, so they rarely show a cut cell at the
    frame's edge (at most in a rotated patch's corner), while a cell cut by a patch's edge
    has its flows pointing to a centre outside the patch: the network learnt to expect that
    at the frame's edge too, and Cellpose's flow check then dropped those cells (real colony,
    384² windows, from scratch: 310-320 of 385 edge cells found without, 349-355 with). A
    side with no cell on it gets no padding: there it would only thin the patches out (a
    30-epoch fine-tune on 128² frames with a colony in their middle, all sides padded:
    held-out AP@0.5 0.22 against 0.56 unpadded and 0.31 untrained; cut sides only: 0.50).
    """
    out_imgs, out_flows = [], []
    for x, m, f, p in zip(imgs, lbls, flows, pads, strict=True):
        p = int(p)
        cut = [bool(m[0].any()), bool(m[-1].any()), bool(m[:, 0].any()), bool(m[:, -1].any())]
        width = [(p * cut[0], p * cut[1]), (p * cut[2], p * cut[3])]
        out_imgs.append(np.pad(x, [(0, 0), *width]))
        out_flows.append(np.pad(f, [(0, 0), *width]))
    return out_imgs, out_flows


@contextlib.contextmanager
def _numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator (cellpose's augmentation draws from it) for the block,
    restoring the caller's state afterwards."""
    state = np.random.get_state()  # noqa: NPY002 (cellpose uses the global one)
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def check_training_data(
    images: Sequence[np.ndarray], masks: Sequence[np.ndarray], min_masks: int = 1
) -> list[int]:
    """Validate training pairs; return the indices with at least ``min_masks`` cells."""
    if len(images) == 0:
        raise InputError("No training frames were given.")
    if len(images) != len(masks):
        raise InputError(f"{len(images)} images but {len(masks)} masks were given.")
    keep = []
    for i, (img, m) in enumerate(zip(images, masks, strict=True)):
        img = np.asarray(img)
        m = np.asarray(m)
        if img.ndim != 2 or m.ndim != 2:
            raise InputError(
                f"Training frame {i} must be 2D; got image {img.shape} and mask {m.shape}."
            )
        if img.shape != m.shape:
            raise InputError(f"Training frame {i}: image {img.shape} and mask {m.shape} differ.")
        if min(img.shape) < 16:
            raise InputError(f"Training frame {i} ({img.shape}) is too small.")
        if np.unique(m[m > 0]).size >= max(min_masks, 1):
            keep.append(i)
    if not keep:
        raise InputError(
            f"None of the {len(images)} training frames has at least {max(min_masks, 1)} "
            "labelled cell(s); curate some cells first."
        )
    return keep


def mask_diameters(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Cellpose's cell diameter (equal-area circle, median over cells) of each mask, >= 5."""
    from cellpose import utils

    return np.maximum(5.0, [utils.diameters(np.asarray(m))[0] for m in masks])


def _loss(lbl: np.ndarray, y: Any, device: Any) -> Any:
    """Cellpose's segmentation loss: flows (×5, MSE / 2) + cell probability (BCE)."""
    import torch
    from torch import nn

    flows = 5.0 * torch.from_numpy(lbl[:, 1:]).to(device)
    cellprob = torch.from_numpy(lbl[:, 0] > 0.5).to(device).float()
    return nn.functional.mse_loss(y[:, :2], flows) / 2.0 + \
        nn.functional.binary_cross_entropy_with_logits(y[:, -1], cellprob)


def train_cellpose(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    save_to: str | Path,
    *,
    base: Any = None,
    params: TrainParams | None = None,
    cores: int | None = None,
    gpu: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    validate: Callable[[Any], float] | None = None,
) -> TrainResult:
    """Train a Cellpose network on 2D frames and save its weights to ``save_to``.

    Parameters
    ----------
    images, masks
        Lists of 2D frames and their label images (0 = background).
    save_to
        Weights file to write (its folder must exist). Written at the end, and also on
        cancel so the work so far is kept.
    base
        ``None`` to train from scratch, or a loaded ``cellpose.models.CellposeModel`` to
        fine-tune (its network is trained in place).
    params
        :class:`TrainParams`; learning rate / weight decay default to the fine-tuning values
        with a base model and to cellpose's defaults from scratch.
    cores
        torch threads to use (the user's core budget).
    progress
        ``progress(epoch_done, n_epochs, loss)`` after every epoch.
    cancel
        Checked after every batch; when it returns True the model so far (the best one when
        validating) is saved and :class:`TrainingCancelled` is raised carrying the
        :class:`TrainResult`.
    validate
        ``validate(model) -> score`` (higher is better, e.g. AP@0.5 on a held-out curated
        frame), called every ``params.validate_every`` epochs and at the end; the weights with
        the best score are the ones saved, and ``params.patience`` stops training early.
    """
    from h4tracks.core.segmentation.cellpose_compat import require_training_support

    require_training_support()  # this loop is built from Cellpose 3's pieces
    import torch
    from cellpose import dynamics, transforms
    from cellpose.models import CellposeModel

    params = params or TrainParams()
    keep = check_training_data(images, masks, params.min_masks)
    imgs = [_as_network_input(images[i]) for i in keep]
    lbls = [np.asarray(masks[i]).astype(np.int32) for i in keep]
    save_to = Path(save_to)
    if not save_to.parent.is_dir():
        raise InputError(f"Folder {save_to.parent} does not exist.")
    if params.patch_size % 16:
        raise InputError(f"patch_size must be a multiple of 16, got {params.patch_size}.")

    finetune = base is not None
    lr = params.learning_rate or (FINETUNE_LR if finetune else SCRATCH_LR)
    wd = params.weight_decay
    if wd is None:
        wd = FINETUNE_WEIGHT_DECAY if finetune else SCRATCH_WEIGHT_DECAY
    t0 = time.perf_counter()
    rng = np.random.default_rng(params.seed)
    with torch_threads(cores), _numpy_seed(params.seed), contextlib.ExitStack() as undo:
        torch.manual_seed(params.seed)
        model = base if finetune else CellposeModel(
            gpu=gpu, pretrained_model=False, diam_mean=params.diam_mean or 30.0)
        dense_network(model)  # a base that already segmented on the CPU holds MKL-DNN modules
        net, device = model.net, model.device
        # cellpose's CPU networks run MKL-DNN tensors, which autocast cannot handle; dense
        # tensors train as fast (the flag is restored on the saved / validated model)
        mkldnn = net.mkldnn
        net.mkldnn = False
        # channels-last convolutions: ~10 % faster steps on a 2-core CPU (0.45 vs 0.51 s for
        # 8 patches of 96² in bfloat16, 0.85 vs 0.97 s in float32); measured on CPUs only,
        # so GPUs keep their layout. The saved and validated weights go back to the usual one
        layout = (torch.channels_last if getattr(device, "type", str(device)) == "cpu"
                  else torch.contiguous_format)
        net.to(memory_format=layout)
        # however training ends (an error too), the caller's model gets its layout back
        undo.callback(_usual_layout, net, mkldnn)
        # flows are computed once, not per epoch (cellpose does the same)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse invariant checks")
            flows = dynamics.labels_to_flows(lbls, device=device)
        diams = mask_diameters(lbls)
        diameter = float(diams.mean())
        diam_mean = float(net.diam_mean.item())
        if params.border_pad:
            imgs, flows = _pad_frames(imgs, lbls, flows, np.ceil(
                params.border_pad * params.patch_size * diams / diam_mean).astype(int))
        net.diam_labels.data = torch.tensor([diameter], dtype=torch.float32, device=device)
        per_epoch = params.images_per_epoch or max(8, len(imgs))
        optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=wd)
        # like cellpose: a 10-epoch linear warm-up, then constant, lower for the last 10 %
        warmup = min(params.warmup_epochs, params.epochs)
        losses: list[float] = []
        result = TrainResult(save_to, diameter, 0, losses, 0.0, lr, wd,
                             None if base is None else str(getattr(base, "pretrained_model", "")))
        deadline = None if params.minutes is None else t0 + 60.0 * params.minutes

        best: dict[str, Any] | None = None
        averaged: Any = None  # torch AveragedModel of the last epochs (average_last)
        top: float | None = None  # the best validation score so far
        stale = 0
        steps = 0

        def augment(inds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # rescale so that cells are diam_mean wide, as at inference
            rsc = (diams[inds] / diam_mean).astype(np.float32)
            return transforms.random_rotate_and_resize(
                [imgs[i] for i in inds], Y=[flows[i][1:] for i in inds], rescale=rsc,
                scale_range=params.scale_range,
                xy=(params.patch_size, params.patch_size))[:2]

        # fixed patches on which the BatchNorm statistics are re-estimated (own seed, so the
        # training's augmentation does not depend on how often the model is validated)
        n_calib = math.ceil(BN_BATCHES * ref_patch_share(params.patch_size))
        with _numpy_seed(params.seed + 1):
            calib = [augment(np.arange(k, k + params.batch_size) % len(imgs))[0]
                     for k in range(0, n_calib * params.batch_size, params.batch_size)]
        bf16 = _use_bfloat16(net, device, params.precision, calib[0].shape)
        autocast_device = getattr(device, "type", "cpu")
        result.precision = "bfloat16" if bf16 else "float32"

        def check(epoch_done: int) -> bool:
            """Validate; keep the best weights; True when patience is exhausted."""
            nonlocal best, stale, top
            if validate is None or (result.val_scores and result.val_scores[-1][0] == epoch_done):
                return False
            tc = time.perf_counter()
            # cellpose's CPU inference converts the network to MKL-DNN in place, which would
            # break training and saving: validate a copy, with its BatchNorm statistics
            # re-estimated for the current weights
            candidate = copy.deepcopy(model)
            if averaged is not None:
                candidate.net.load_state_dict(averaged.module.state_dict())
            candidate.net.to(memory_format=torch.contiguous_format)
            _recalibrate_batchnorm(candidate.net, calib)
            candidate.net.mkldnn = mkldnn
            state = {k: v.detach().clone() for k, v in candidate.net.state_dict().items()}
            score = float(validate(candidate))
            result.val_scores.append((epoch_done, score))
            # a tie (or, with a tolerance, a score within it of the best so far) keeps the
            # later weights, trained on more patches, and is not a stall: a small validation
            # set (few large cells) saturates early, and stopping on ties stopped the
            # recipe's main run on the dense culture benchmark after 36 of 53 epochs, keeping
            # the weights of epoch 12 or earlier (held-out AP@0.5 0.896; all 53 epochs: 0.997)
            if top is None or score >= top - params.tolerance:
                result.best_score, result.best_epoch = score, epoch_done
                best = state
                stale = 0 if top is None or score > top else stale
                top = score if top is None else max(top, score)
            else:
                stale += 1
            result.check_seconds += time.perf_counter() - tc
            return params.patience is not None and stale >= params.patience

        def finish(epochs_done: int) -> TrainResult:
            if validate is not None and epochs_done > 0:
                check(epochs_done)
            if best is not None:
                net.load_state_dict(best)  # the model is left holding the saved weights
            elif steps:
                if averaged is not None:
                    net.load_state_dict(averaged.module.state_dict())
                _recalibrate_batchnorm(net, calib)
            _usual_layout(net, mkldnn)
            net.save_model(str(save_to))
            result.epochs = epochs_done
            result.seconds = time.perf_counter() - t0
            return result

        # weight averaging: a running mean of the weights after each epoch of the last
        # ``average_last`` (torch's AveragedModel; BatchNorm is re-estimated anyway), never
        # of the warm-up's, whose weights are still far from where the run goes (a share
        # that rounds to no epoch after the warm-up averages nothing, and anneals as usual)
        n_averaged = min(round(params.epochs * params.average_last), params.epochs - warmup)
        average_from = params.epochs - n_averaged if n_averaged > 0 else None
        for epoch in range(params.epochs):
            frac = (epoch + 1) / warmup if epoch < warmup else 1.0
            if average_from is None and params.epochs >= 50 and epoch >= 0.9 * params.epochs:
                frac *= 0.1  # anneal over the last 10 %
            for group in optimizer.param_groups:
                group["lr"] = lr * frac
            net.train()
            order = rng.choice(len(imgs), size=per_epoch, replace=per_epoch > len(imgs))
            epoch_loss = 0.0
            ts = time.perf_counter()
            for k in range(0, per_epoch, params.batch_size):
                if cancel is not None and cancel():
                    raise TrainingCancelled(
                        f"Training cancelled after {epoch} epoch(s); the model so far was "
                        f"saved to {save_to}.", finish(epoch))
                inds = order[k:k + params.batch_size]
                x, y = augment(inds)
                if params.intensity_jitter:
                    j = params.intensity_jitter
                    gain = 1.0 + rng.uniform(-j, j, (len(x), 1, 1))
                    x[:, 0] = x[:, 0] * gain + rng.uniform(-j / 2, j / 2, (len(x), 1, 1))
                with torch.autocast(autocast_device, dtype=torch.bfloat16, enabled=bf16):
                    pred = net(torch.from_numpy(x).to(device).contiguous(
                        memory_format=layout))[0]
                loss = _loss(y, pred.float(), device)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps += 1
                epoch_loss += float(loss.item()) * len(inds)
            result.step_seconds += time.perf_counter() - ts
            losses.append(epoch_loss / per_epoch)
            if average_from is not None and epoch + 1 > average_from:
                if averaged is None:
                    averaged = torch.optim.swa_utils.AveragedModel(net)
                    # from now on only averages compete: a lucky checkpoint of the single
                    # weights before would otherwise stay the best and run out the patience
                    # of the averages, which is the luck the averaging is there to avoid
                    best, top, stale = None, None, 0
                averaged.update_parameters(net)
                result.averaged_epochs += 1
            if progress is not None:
                progress(epoch + 1, params.epochs, losses[-1])
            if (epoch + 1) % params.validate_every == 0 and check(epoch + 1):
                logger.info("validation stopped improving after %d epochs", epoch + 1)
                return finish(epoch + 1)
            if deadline is not None and time.perf_counter() > deadline:
                logger.info("training time budget reached after %d epochs", epoch + 1)
                return finish(epoch + 1)
        return finish(params.epochs)
