"""Which runtime runs a Cellpose network, at which precision, and what to tell the user.

``SegmentParams.engine`` and ``SegmentParams.precision`` are what the user asked for; what
runs can differ (no GPU, a runtime missing or broken, a CPU without bfloat16 units, Cellpose 4
installed), and then one sentence says so. The rules:

* ``auto``: on a GPU torch; on the CPU ONNX Runtime at float32 (same masks as Cellpose,
  fastest at float32), OpenVINO when bfloat16 is asked for;
* ``onnx`` / ``openvino`` / ``torch``: that runtime (ONNX Runtime and OpenVINO on the CPU);
* ``bfloat16`` runs under OpenVINO only, and only where the CPU has bfloat16 arithmetic;
  elsewhere float32 runs, with a message (Cellpose 4's torch networks run at bfloat16 by
  themselves: recorded as such, whatever was asked for);
* a runtime that cannot run the model falls back (OpenVINO → ONNX Runtime → torch), each
  step with its reason in the message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from h4tracks.core.segmentation import cellpose_compat as compat
from h4tracks.core.segmentation.models import ModelEntry, load_cellpose_model

logger = logging.getLogger(__name__)


@dataclass
class Segmenter:
    """A loaded model ready for ``segment_frame``, with what runs it."""

    model: Any
    engine: str  # "onnx", "openvino" or "torch"
    precision: str  # "float32" or "bfloat16"
    message: str | None  # a sentence for the user, or None
    on_gpu: bool = False  # torch runs the network on a GPU


def weights_file(entry: ModelEntry) -> Path | None:
    """The weights file of a model entry (a built-in's cached file), None if it has none."""
    if entry.kind == "builtin":
        from h4tracks.core.segmentation.models import builtin_cache_file

        return builtin_cache_file(entry.name)
    return Path(entry.path) if entry.path else None


def runtime_version(engine: str) -> str:
    """``"onnxruntime 1.x"`` / ``"openvino 2026.x"`` / ``"torch 2.x"``: what ran, for provenance."""
    if engine == "onnx":
        from h4tracks.core.segmentation.onnx_engine import onnxruntime_version

        return f"onnxruntime {onnxruntime_version()}"
    if engine == "openvino":
        from h4tracks.core.segmentation.openvino_engine import openvino_version

        return f"openvino {openvino_version()}"
    import torch

    return f"torch {torch.__version__}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else "no details"
    return f"{type(exc).__name__}: {text}"


def choose_segmenter(entry: ModelEntry, engine: str = "auto", precision: str = "float32", *,
                     gpu: bool = False, cores: int | None = None) -> Segmenter:
    """Load ``entry`` with the runtime and precision the rules above give.

    Parameters
    ----------
    entry
        The model.
    engine
        ``"auto"``, ``"onnx"``, ``"openvino"`` or ``"torch"``.
    precision
        ``"float32"`` or ``"bfloat16"``.
    gpu
        Run torch on the GPU when there is one.
    cores
        Threads of the CPU runtimes (None: the runtime's default).

    Returns
    -------
    Segmenter
        What was loaded; its ``message`` says why it differs from what was asked for.
    """
    model, gpu_message = load_cellpose_model(entry, gpu=gpu)
    notes = [gpu_message] if gpu_message else []
    on_gpu = getattr(getattr(model, "device", None), "type", "cpu") != "cpu"

    def done(net_model: Any, used: str, prec: str) -> Segmenter:
        for note in notes[1 if gpu_message else 0:]:
            logger.warning(note)
        return Segmenter(net_model, used, prec, " ".join(notes) or None,
                         on_gpu=on_gpu and used == "torch")

    file = weights_file(entry)
    asked = engine
    if engine == "auto":
        engine = "torch" if on_gpu else ("openvino" if precision == "bfloat16" else "onnx")
    if engine != "torch" and not compat.onnx_supported():
        if asked in ("onnx", "openvino"):  # asked for by name: say why it is not what runs
            notes.append(f"The {'ONNX' if asked == 'onnx' else 'OpenVINO'} engine runs "
                         f"Cellpose 3 networks only; Cellpose {compat.cellpose_major()} is "
                         "installed, so torch runs the network.")
        engine = "torch"
    if file is None:
        engine = "torch"
    torch_precision = _torch_precision(model)  # Cellpose 4 runs its network in bfloat16
    if precision == "bfloat16" and engine != "openvino" and not (
            engine == "torch" and torch_precision == "bfloat16"):
        notes.append("bfloat16 runs under the OpenVINO engine only; the network ran at "
                     "float32.")
    beside = entry.kind in ("custom", "trained")  # not inside the installation/cellpose
    if engine == "openvino":
        from h4tracks.core.segmentation import openvino_engine as ov

        if ov.openvino_version() is None:
            notes.append("OpenVINO is not installed; ONNX Runtime runs the network at "
                         "float32.")
        else:
            if precision == "bfloat16" and not ov.bfloat16_supported():
                notes.append("This CPU has no bfloat16 arithmetic, so the network ran at "
                             "float32 (the same masks as Cellpose).")
                precision = "float32"
            try:
                assert file is not None
                return done(ov.load_openvino_model(model, file, cores, precision,
                                                   beside=beside), "openvino", precision)
            except Exception as exc:  # broken runtime, failed compile: ONNX Runtime next
                notes.append(f"OpenVINO could not run the model ({_first_line(exc)}); "
                             "running the network with ONNX Runtime at float32.")
        engine = "onnx"
    if engine == "onnx":
        from h4tracks.core.segmentation.onnx_engine import load_onnx_model

        try:
            assert file is not None
            return done(load_onnx_model(model, file, cores, beside=beside), "onnx", "float32")
        except Exception as exc:  # missing/broken runtime, failed export: torch still works
            notes.append(f"ONNX Runtime could not run the model ({_first_line(exc)}); "
                         "running the network with torch.")
    return done(model, "torch", torch_precision)


def _torch_precision(model: Any) -> str:
    """The arithmetic of a Cellpose model's torch network (Cellpose 4: bfloat16 by default)."""
    try:
        import torch

        dtype = next(model.net.parameters()).dtype
    except Exception:  # no parameters to look at: Cellpose 3's float32
        return "float32"
    return "bfloat16" if dtype == torch.bfloat16 else "float32"


__all__ = ["Segmenter", "choose_segmenter", "runtime_version", "weights_file"]
