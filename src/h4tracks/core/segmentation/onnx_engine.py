"""Cellpose's network under ONNX Runtime: the same outputs as torch, faster on the CPU.

Only the network moves: a Cellpose-3 ``CPnet`` is exported once per weights file to ONNX
(cached beside the weights as ``<weights file>.<sha256[:16]>.onnx``, or under the config
directory when that folder is read-only) and run by an :class:`OnnxNet`, which stands in for
``CellposeModel.net``. Cellpose's own pipeline around it (normalisation, tiling into 224²
tiles, averaging the tiles, flows → masks) is untouched, so the masks are Cellpose's; the
network's outputs agree with torch's to about 1e-5.

The export needs one change to the network: ``make_style`` pools with
``F.avg_pool2d(kernel_size=x.shape[2:])``, whose kernel size the exporter cannot take from a
dynamic shape; here it is the identical mean over the spatial axes.

This module imports torch (import it lazily); onnxruntime is imported on use, and
:func:`load_onnx_model` raises if it is missing or broken (the caller falls back to torch).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib
import io
import logging
import os
import re
import threading
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from h4tracks.core.segmentation.cellpose_compat import default_network

if TYPE_CHECKING:  # pragma: no cover
    from cellpose.models import CellposeModel

logger = logging.getLogger(__name__)

#: ONNX opset of the exported networks (part of the cache key)
OPSET = 17
#: cache file name: "<weights file name>.<16 hex digits>.onnx"
_CACHE_RE = r"\.[0-9a-f]{16}\.onnx"
#: open sessions kept for reuse (keyed by ONNX file and threads)
_SESSIONS: OrderedDict[tuple[str, int], Any] = OrderedDict()
_SESSIONS_MAX = 2
_LOCK = threading.Lock()
T = TypeVar("T")


def installed_version(module: str) -> str | None:
    """The version of the runtime ``module`` (``"onnxruntime"``, ``"openvino"``), or None
    when it cannot be imported."""
    try:
        mod = importlib.import_module(module)
    except Exception:  # ImportError, or a broken install raising anything on import
        return None
    return str(getattr(mod, "__version__", "unknown"))


def onnxruntime_version() -> str | None:
    """The installed onnxruntime's version, or None when it cannot be imported."""
    return installed_version("onnxruntime")


def weights_digest(weights: Path) -> str:
    """First 16 hex digits of the SHA-256 of the weights file and the export settings."""
    h = hashlib.sha256(f"cpnet-opset{OPSET}\n".encode())
    with open(weights, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _cache_dir() -> Path:
    from h4tracks.core.segmentation.models import config_dir

    return config_dir() / "onnx-cache"


def cache_file(weights: Path, digest: str | None = None, *, beside: bool = True) -> Path:
    """Where the ONNX export of ``weights`` is (or will be) cached.

    With ``beside``, next to the weights file when that copy exists or the folder is
    writable; otherwise (and for the shipped and built-in models, whose folders belong to the
    installation or to cellpose) under the config directory's ``onnx-cache``.
    """
    weights = Path(weights)
    name = f"{weights.name}.{digest or weights_digest(weights)}.onnx"
    near = weights.with_name(name)
    fallback = _cache_dir() / name
    if beside and (near.is_file()
                   or (not fallback.is_file() and os.access(weights.parent, os.W_OK))):
        return near
    return fallback


def _style_mean(self: Any, x0: torch.Tensor) -> torch.Tensor:
    """``make_style.forward`` with the global average pool as a mean (same values)."""

    style = x0.mean(dim=tuple(range(2, x0.ndim)))
    return style / torch.sum(style**2, dim=1, keepdim=True) ** 0.5


def _fresh_net(model: CellposeModel, weights: Path) -> torch.nn.Module:
    """A plain float32 CPU copy of ``model``'s network with the weights of ``weights``.

    Built anew rather than copied: cellpose converts ``model.net`` to MKL-DNN modules in place
    on its first CPU forward, and those do not export.
    """
    net = default_network(model)
    net.load_model(str(weights), device=torch.device("cpu"))
    net = net.float().eval()
    net.mkldnn = False
    net.make_style.forward = types.MethodType(_style_mean, net.make_style)
    return net


def export_onnx(model: CellposeModel, weights: Path, target: Path) -> Path:
    """Export the network of ``model`` (weights from ``weights``) to ``target``, atomically.

    Batch and tile axes are dynamic (Cellpose tiles with at most 224² tiles, smaller for
    small frames). Returns ``target``.
    """

    from h4tracks.core.outputs import atomic_file

    net = _fresh_net(model, weights)

    class _TwoOutputs(torch.nn.Module):  # CPnet also returns its downsampled features
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y, style = self.inner(x)[:2]
            return y, style

    nchan = int(model.nbase[0])
    example = torch.zeros((1, nchan, 64, 64), dtype=torch.float32)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
        torch.onnx.export(
            _TwoOutputs(net), (example,), buf,  # type: ignore[arg-type]  # legacy: file-like ok
            dynamo=False, opset_version=OPSET,
            input_names=["x"], output_names=["y", "style"],
            dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"},
                          "y": {0: "batch", 2: "height", 3: "width"},
                          "style": {0: "batch"}},
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target, "wb") as fh:
        fh.write(buf.getvalue())
    # stale exports of earlier weights of this file
    stale = re.compile(re.escape(Path(weights).name) + _CACHE_RE + r"$")
    for old in target.parent.iterdir():
        if old != target and stale.fullmatch(old.name):
            with contextlib.suppress(OSError):  # removed meanwhile, or read-only
                old.unlink()
    logger.info("exported the Cellpose network of %s to %s", weights, target)
    return target


def ensure_export(model: CellposeModel, weights: Path, *, beside: bool = True) -> Path:
    """The cached ONNX file of ``weights``, exported first if missing (or for new weights)."""
    target = cache_file(Path(weights), beside=beside)
    if not target.is_file():
        try:
            export_onnx(model, Path(weights), target)
        except OSError:
            fallback = _cache_dir() / target.name
            if target == fallback:
                raise
            target = export_onnx(model, Path(weights), fallback)
    return target


def damaged_export(path: Path) -> bool:
    """Whether the cached export at ``path`` is unreadable as an ONNX model (truncated,
    foreign), as opposed to a runtime that fails on a sound file (then exporting again would
    not help, and would pull the file from under other threads loading it)."""
    try:
        import onnx

        onnx.checker.check_model(onnx.load(str(path)))
    except Exception:  # anything onnx cannot read or check
        return True
    return False


def open_export(model: CellposeModel, weights: Path, opener: Callable[[Path], T], *,
                beside: bool = True) -> tuple[Path, T]:
    """The cached export of ``weights`` (made first if missing) opened by ``opener`` (a
    runtime's session or compiled network), and its path.

    When ``opener`` fails on a damaged cache file (:func:`damaged_export`), the file is
    exported again and opened once more; on a sound file its error is raised as it is (the
    runtime's fault: exporting again would not help).
    """
    path = ensure_export(model, Path(weights), beside=beside)
    try:
        return path, opener(path)
    except Exception:
        if not damaged_export(path):
            raise
        # a truncated or foreign file in the cache: export again once
        path.unlink(missing_ok=True)
        path = ensure_export(model, Path(weights), beside=beside)
        return path, opener(path)


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    key = (str(path), threads)
    with _LOCK:
        if key in _SESSIONS:
            _SESSIONS.move_to_end(key)
            return _SESSIONS[key]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads  # 0: onnxruntime's default (all physical cores)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no busy-waiting between tiles: flows -> masks runs on the same cores right after
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    with _LOCK:
        _SESSIONS[key] = session
        while len(_SESSIONS) > _SESSIONS_MAX:
            _SESSIONS.popitem(last=False)
    return session


def clear_sessions() -> None:
    """Forget the open sessions (tests; after a cache file was replaced by hand)."""
    with _LOCK:
        _SESSIONS.clear()


class OnnxNet(torch.nn.Module):
    """Stands in for ``CellposeModel.net``: Cellpose's ``run_net`` calls it on batches of
    tiles and reads ``y, style = net(X)[:2]`` (torch tensors), ``net.nout``,
    ``net.device`` and ``net.mkldnn``."""

    def __init__(self, session: Any, nout: int, path: Path) -> None:
        super().__init__()
        self.session = session
        self.nout = nout
        self.mkldnn = False
        self.path = path

    @property
    def device(self) -> Any:

        return torch.device("cpu")

    def forward(self, x: Any) -> tuple[Any, Any, list]:

        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        y, style = self.session.run(None, {"x": np.ascontiguousarray(arr, np.float32)})
        return torch.from_numpy(y), torch.from_numpy(style), []


def load_onnx_model(model: CellposeModel, weights: Path, threads: int | None, *,
                    beside: bool = True) -> CellposeModel:
    """A shallow copy of ``model`` whose network runs under ONNX Runtime.

    ``threads``: onnxruntime's intra-op threads (the core budget; None = its default);
    ``beside``: see :func:`cache_file`.
    Raises whatever goes wrong (onnxruntime missing or broken, export failing); the caller
    falls back to torch.
    """
    import onnxruntime  # noqa: F401  - fail early and clearly when it is missing

    n = max(0, int(threads or 0))
    path, session = open_export(model, weights, lambda p: _session(p, n), beside=beside)
    fast = copy.copy(model)
    fast.net = OnnxNet(session, int(model.net.nout), path)
    return fast


__all__ = [
    "OPSET",
    "OnnxNet",
    "cache_file",
    "clear_sessions",
    "damaged_export",
    "ensure_export",
    "export_onnx",
    "installed_version",
    "load_onnx_model",
    "onnxruntime_version",
    "open_export",
    "weights_digest",
]
