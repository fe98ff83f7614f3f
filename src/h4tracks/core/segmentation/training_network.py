"""What training does to a Cellpose network besides its steps: the arithmetic they run in
(a bfloat16 probe), BatchNorm statistics re-estimated for the current weights, and the memory
layout handed back (see :mod:`~h4tracks.core.segmentation.training`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from h4tracks.core.segmentation.cellpose_compat import default_network
from h4tracks.errors import InputError

logger = logging.getLogger("h4tracks.core.segmentation.training")  # one logger for training


def _recalibrate_batchnorm(net: Any, batches: Sequence[np.ndarray]) -> None:
    """Re-estimate the BatchNorm running statistics of ``net`` with its current weights.

    The statistics are reset and recomputed as a plain average over ``batches`` (network
    inputs, train mode, no gradients); the weights are unchanged.
    """
    import torch

    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms or not batches:
        return
    momenta = [m.momentum for m in norms]
    was_training = net.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    try:
        with torch.no_grad():
            for x in batches:
                net(torch.from_numpy(x).to(net.diam_mean.device))
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        net.train(was_training)


_BF16_FASTER: dict[tuple[int, ...], bool] = {}


def _use_bfloat16(net: Any, device: Any, precision: str, shape: tuple[int, ...]) -> bool:
    """Whether the training steps run in bfloat16 mixed precision (``torch.autocast``).

    ``"auto"`` measures it: a CPU with native bfloat16 (AVX512-BF16, AMX) trains cellpose's
    network about 2x faster in it (0.49 vs 0.95 s per batch of 8 patches of 96² on 2 cores
    here), one without emulates it and is slower. The probe (a forward and backward pass of
    two patches each way, eval mode so no BatchNorm statistic moves, gradients discarded) is
    timed once per process and input shape, on a CPU whose flags allow native bfloat16 (see
    :func:`_may_have_native_bfloat16`). GPUs keep float32.
    """
    import torch

    if precision != "auto":
        return precision == "bfloat16"
    if getattr(device, "type", str(device)) != "cpu":
        return False
    if not _may_have_native_bfloat16():
        return False
    key = (2, *shape[1:])
    if key not in _BF16_FASTER:
        # in the layout the training steps use (see train_cellpose)
        x = torch.zeros(key, device=device).contiguous(memory_format=torch.channels_last)
        was_training = net.training
        net.eval()
        times = {False: float("inf"), True: float("inf")}
        try:
            # the first of each is a warm-up; then the faster of two runs each, so that a
            # moment of load on a shared machine does not decide a whole training's precision
            for i, bf16 in enumerate((False, True) * 3):
                t = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = net(x)[0]
                out.float().sum().backward()
                if i >= 2:
                    times[bf16] = min(times[bf16], time.perf_counter() - t)
        except RuntimeError:  # no bfloat16 kernels on this CPU
            times = {False: 0.0, True: 1.0}
        finally:
            net.zero_grad(set_to_none=True)
            net.train(was_training)
        _BF16_FASTER[key] = times[True] < 0.8 * times[False]
        logger.info("bfloat16 training step %.3f s vs float32 %.3f s", times[True],
                    times[False])
    return _BF16_FASTER[key]


def _may_have_native_bfloat16() -> bool:
    """False when the CPU's flags (Linux) show no bfloat16 arithmetic (AVX512-BF16, AMX):
    such a CPU emulates it, 12x slower than float32 on an AVX2 EPYC here, and probing that
    cost ~10 s of a training budget per patch size. True where the flags cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = next((line for line in fh if line.startswith("flags")), None)
    except OSError:
        return True
    if flags is None:
        return True
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def _usual_layout(net: Any, mkldnn: bool) -> None:
    """Back to cellpose's memory layout and MKL-DNN flag (see :func:`train_cellpose`)."""
    import torch

    net.to(memory_format=torch.contiguous_format)
    net.mkldnn = mkldnn


def dense_network(model: Any) -> None:
    """Give ``model`` back a trainable network if Cellpose converted it to MKL-DNN modules.

    Cellpose's first CPU forward pass (``CellposeModel.eval`` with the torch engine) replaces
    the convolutions and BatchNorms of ``model.net`` by MKL-DNN ones in place, which hold no
    gradients and cannot change memory layout: a model that segmented a frame could not be
    fine-tuned afterwards ("'memory_format' argument is incompatible with mkldnn tensor").
    The network is rebuilt with the same architecture and weights (same outputs).
    """
    import torch

    net = model.net
    if not any(t.is_mkldnn for t in net.state_dict().values()):
        return
    fresh = default_network(model, mkldnn=net.mkldnn, diam_mean=float(net.diam_mean.detach()[0]))
    state = {k: (v.to_dense() if v.is_mkldnn else v) for k, v in net.state_dict().items()}
    # the MKL-DNN BatchNorms keep no step counters; the fresh network's zeros stand
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        raise InputError(f"This Cellpose network was converted for CPU inference and cannot "
                         f"be rebuilt for training ({len(unexpected or missing)} weights do "
                         "not fit); load the model again from its file to fine-tune it.")
    model.net = fresh.to(device=net.diam_mean.device, dtype=torch.float32)
