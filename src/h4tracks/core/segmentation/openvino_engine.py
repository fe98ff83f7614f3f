"""Cellpose's network under OpenVINO: float32 (same masks) or bfloat16 (several times faster).

OpenVINO compiles the same ONNX export the ONNX Runtime engine uses (one file per weights
file, see :mod:`h4tracks.core.segmentation.onnx_engine`), so nothing is exported twice, and
an :class:`OpenVinoNet` stands in for ``CellposeModel.net`` exactly as
:class:`~h4tracks.core.segmentation.onnx_engine.OnnxNet` does: Cellpose's tiling and
flows → masks are untouched.

Why a second runtime: at float32 OpenVINO runs the network about as fast as ONNX Runtime
(both are near the CPU's float32 arithmetic rate), but on CPUs with bfloat16 units (Intel AMX
or AVX-512 BF16) its bfloat16 path runs the network 4–7× faster than float32. bfloat16 keeps
8 bits of mantissa, so the flows move by ~1e-2 and masks are not pixel-identical to
Cellpose's; they agree at AP@0.5 ≥ 0.99 (``benchmarks/bench_segment.py`` prints the
agreement). That is why bfloat16 is a choice the user makes (``SegmentParams.precision``),
never the default. The precision is pinned either way: OpenVINO's own default on such CPUs
is bfloat16.

openvino is imported on use; :func:`load_openvino_model` raises if it is missing or broken
(the caller falls back to ONNX Runtime or torch with one message).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from h4tracks.core.segmentation.onnx_engine import installed_version, open_export

if TYPE_CHECKING:  # pragma: no cover
    from cellpose.models import CellposeModel

logger = logging.getLogger(__name__)

#: OpenVINO's names of our precisions
_HINT = {"float32": "f32", "bfloat16": "bf16"}
#: compiled networks kept for reuse (keyed by ONNX file, threads, precision)
_COMPILED: OrderedDict[tuple[str, int, str], Any] = OrderedDict()
_COMPILED_MAX = 2
_LOCK = threading.Lock()
_LOCK_CORE = threading.Lock()


def openvino_version() -> str | None:
    """The installed OpenVINO's version, or None when it cannot be imported."""
    return installed_version("openvino")


_CORE: list[Any] = []  # the one OpenVINO Core of this process, made on first use


def _core() -> Any:
    import openvino

    with _LOCK_CORE:
        if not _CORE:
            _CORE.append(openvino.Core())
        return _CORE[0]


def bfloat16_supported() -> bool:
    """Whether this CPU has bfloat16 arithmetic OpenVINO uses (AMX or AVX-512 BF16)."""
    try:
        caps = _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # no openvino, or no CPU plugin
        return False
    return "BF16" in [str(c).upper() for c in caps]


def _compiled(path: Path, threads: int, precision: str) -> Any:
    key = (str(path), threads, precision)
    # one compile at a time (block tasks share a process): two threads compiling the same
    # network would take twice the seconds and the memory for one result
    with _LOCK:
        if key in _COMPILED:
            _COMPILED.move_to_end(key)
            return _COMPILED[key]
        compiled = _compile(path, threads, precision)
        _COMPILED[key] = compiled
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    return compiled


def _compile(path: Path, threads: int, precision: str) -> Any:
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": _HINT[precision],
        "PERFORMANCE_HINT": "LATENCY",
        # pinned threads would fight the frame reader and napari's own thread for the cores
        "ENABLE_CPU_PINNING": False,
    }
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = threads
    return _core().compile_model(str(path), "CPU", config)


def clear_compiled() -> None:
    """Forget the compiled networks (tests; after a cache file was replaced by hand)."""
    with _LOCK:
        _COMPILED.clear()


class OpenVinoNet(torch.nn.Module):
    """Stands in for ``CellposeModel.net`` (see :class:`~.onnx_engine.OnnxNet`)."""

    def __init__(self, compiled: Any, nout: int, path: Path, precision: str) -> None:
        super().__init__()
        self.compiled = compiled
        self.nout = nout
        self.mkldnn = False
        self.path = path
        self.precision = precision
        # an infer request holds its buffers: one per thread that runs the network
        self._local = threading.local()

    @property
    def device(self) -> Any:
        return torch.device("cpu")

    def forward(self, x: Any) -> tuple[Any, Any, list]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        out = request.infer({"x": np.ascontiguousarray(arr, np.float32)})  # outputs copied
        y = np.asarray(out[self.compiled.output("y")], np.float32)
        style = np.asarray(out[self.compiled.output("style")], np.float32)
        return torch.from_numpy(y), torch.from_numpy(style), []


def load_openvino_model(model: CellposeModel, weights: Path, threads: int | None,
                        precision: str = "float32", *, beside: bool = True) -> CellposeModel:
    """A shallow copy of ``model`` whose network runs under OpenVINO at ``precision``.

    ``threads``: OpenVINO's inference threads (the core budget; None = its default);
    ``precision``: ``"float32"`` or ``"bfloat16"`` (the caller checks
    :func:`bfloat16_supported` first); ``beside``: see
    :func:`~.onnx_engine.cache_file`. Raises whatever goes wrong (openvino missing or
    broken, export failing); the caller falls back.
    """
    if precision not in _HINT:
        raise ValueError(f"unknown precision {precision!r}")
    import openvino  # noqa: F401  - fail early and clearly when it is missing

    n = max(0, int(threads or 0))
    path, compiled = open_export(model, weights, lambda p: _compiled(p, n, precision),
                                 beside=beside)
    fast = copy.copy(model)
    fast.net = OpenVinoNet(compiled, int(model.net.nout), path, precision)
    return fast


__all__ = [
    "OpenVinoNet",
    "bfloat16_supported",
    "clear_compiled",
    "load_openvino_model",
    "openvino_version",
]
