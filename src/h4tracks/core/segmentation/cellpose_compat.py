"""What differs between Cellpose 3 and Cellpose 4 (Cellpose-SAM), in one place.

h4tracks depends on Cellpose 3 (``cellpose>=3.1,<4``: the CNN ``CPnet`` models, the shipped
demo model and the models users trained with Cellpose 3). A user may install Cellpose 4 over
it (``pip install "cellpose>=4,<5"``, see docs/engines.md); then the same code runs
Cellpose 4's vision-transformer models (``cpsam`` and models fine-tuned with Cellpose 4).
The two generations cannot load each other's weights, and their APIs differ in a few places;
this module answers every such question so the rest of the package has no version checks of
its own:

* :func:`cellpose_major`: the installed major version (read from the package metadata,
  without importing cellpose and torch).
* :func:`check_state`: whether a weights file's state dict is a network the installed
  Cellpose can load, else one sentence saying which Cellpose it needs.
* :func:`new_model` / :func:`loaded_matches`: build the ``CellposeModel`` from a weights file
  and check that Cellpose loaded exactly those weights.
* :func:`eval_kwargs`: the arguments of ``CellposeModel.eval`` (Cellpose 4 dropped
  ``channels``).
* :func:`onnx_supported`, :func:`require_training_support`, :func:`offered_builtins`,
  :func:`missing_builtin_message`.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from h4tracks.errors import InputError

#: keys of every Cellpose 3 network (default ``CPnet`` backbone): these prefixes ...
CP3_PREFIXES = ("downsample.", "upsample.", "output.")
#: ... and these tensors, which are compared after loading (no silent fallback to cyto3)
CP3_KEYS = ("output.2.weight", "output.2.bias")
#: keys of every Cellpose 4 network (``CPSAM`` and ``CPDINO`` in ``cellpose.vit``): ``W2``
#: maps tokens back to pixels (Cellpose 4 itself refuses a file without it), ``out`` is the
#: readout, compared after loading like ``CP3_KEYS``
CP4_KEYS = ("W2", "out.weight", "out.bias")

#: the default model when Cellpose 4 is installed (Cellpose 4 cannot run h4tracks' demo model)
CP4_DEFAULT = "cpsam"
#: Cellpose 4 built-ins that need the ``dinov3`` package (installed from GitHub only)
_DINO_BUILTINS = ("cpdino", "cpdino-vitb")

#: what a user runs to have Cellpose 3 back
INSTALL_CP3 = 'pip install "cellpose>=3.1,<4"'
#: what a user runs to have Cellpose 4 (docs/engines.md, "Cellpose 4 / Cellpose-SAM")
INSTALL_CP4 = 'pip install "cellpose>=4,<5"'


@functools.lru_cache(maxsize=1)
def cellpose_major() -> int:
    """Major version of the installed cellpose (3 when it cannot be told).

    Read from the distribution's metadata, so asking costs no import of cellpose or torch.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = re.match(r"\s*(\d+)", version("cellpose"))
    except PackageNotFoundError:
        return 3
    return int(found.group(1)) if found else 3


def is_cellpose4() -> bool:
    """True when Cellpose 4 or newer (the vision-transformer generation) is installed."""
    return cellpose_major() >= 4


def _strip_module(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """``state`` without the ``module.`` prefix that (Distributed)DataParallel saves with;
    Cellpose 4 strips it when loading, so the checks here must too."""
    keys = list(state)
    if keys and keys[0].startswith("module."):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def weights_generation(state: Mapping[str, Any]) -> int | None:
    """3 for a Cellpose 3 ``CPnet`` state dict, 4 for a Cellpose 4 one, None for neither."""
    state = _strip_module(state)
    if "W2" in state:  # the marker Cellpose 4 itself checks before loading a file
        return 4
    if all(any(k.startswith(p) for k in state) for p in CP3_PREFIXES):
        return 3
    return None


def check_state(path: Path, state: Mapping[str, Any]) -> None:
    """Raise :class:`InputError` unless ``state`` is a network the installed Cellpose loads.

    A file of the other generation gets one sentence naming the Cellpose it needs.
    """
    installed = cellpose_major()
    generation = weights_generation(state)
    if generation == 4 and installed < 4:
        raise InputError(
            f"{path} is a Cellpose 4 model; Cellpose {installed} is installed, which cannot "
            f"load it: install Cellpose 4 ({INSTALL_CP4}, see docs/engines.md) to use it.")
    if generation == 3 and installed >= 4:
        raise InputError(
            f"{path} is a Cellpose 3 model; Cellpose {installed} is installed, which cannot "
            f"load it: install cellpose<4 ({INSTALL_CP3}) to use it, or choose a Cellpose 4 "
            "model such as cpsam.")
    stripped = _strip_module(state)
    if installed >= 4:
        missing = [k for k in CP4_KEYS if k not in stripped]
    else:
        missing = [p for p in CP3_PREFIXES if not any(k.startswith(p) for k in stripped)]
        missing += [k for k in CP3_KEYS if k not in stripped]
    if missing:
        raise InputError(
            f"{path} is not a Cellpose model file (missing network weights: "
            f"{', '.join(missing)})."
        )


def new_model(cellpose_model: type, path: str, *, gpu: bool) -> Any:
    """``cellpose_model(...)`` (the ``CellposeModel`` class) loaded from the weights file.

    The same call for both generations, with Cellpose's own defaults: Cellpose 4 keeps the
    weights in bfloat16, also on the CPU, where it ran 2-2.5x faster than float32 on a CPU
    with native bfloat16 (AMX; docs/engines.md).
    """
    return cellpose_model(gpu=gpu, pretrained_model=path)


def loaded_matches(net: Any, state: Mapping[str, Any]) -> bool:
    """Whether ``net`` (``model.net``) holds the weights of ``state`` (the file's dict).

    Compared in the network's dtype: the demo model is stored in float16, and Cellpose 4 runs
    in bfloat16.
    """
    import torch

    keys = CP4_KEYS if is_cellpose4() else CP3_KEYS
    state = _strip_module(state)
    loaded = net.state_dict()
    return all(
        torch.equal(loaded[k].detach().cpu(), state[k].to(loaded[k].dtype)) for k in keys)


def default_network(model: Any, *, mkldnn: bool = False, diam_mean: float | None = None
                    ) -> Any:
    """A new, untrained Cellpose 3 network (``CPnet``) of ``model``'s shape.

    For the two places that rebuild a model's network rather than use ``model.net``, which
    Cellpose converts to MKL-DNN modules in place on its first CPU forward (they neither train
    nor export): the ONNX export and fine-tuning a model that already segmented.

    Raises
    ------
    InputError
        When ``model`` runs another architecture than Cellpose's default 2D network.
    """
    from cellpose.resnet_torch import CPnet

    net_type = getattr(model, "net_type", "cellpose_default")
    if net_type != "cellpose_default" or getattr(model.net, "conv_3D", False):
        raise InputError(f"Only Cellpose's default 2D network can be rebuilt (exported or "
                         f"trained again after it segmented); this model's is {net_type!r}.")
    kwargs = {} if diam_mean is None else {"diam_mean": float(diam_mean)}
    return CPnet(list(model.nbase), model.nclasses, sz=3, mkldnn=mkldnn, max_pool=True,
                 **kwargs)


def eval_kwargs(channels: Sequence[int], **params: Any) -> dict[str, Any]:
    """Keyword arguments of ``CellposeModel.eval`` for one grayscale frame.

    Cellpose 4 takes any channel order and warns on (then ignores) ``channels``, so it is
    passed to Cellpose 3 only.
    """
    if is_cellpose4():
        return dict(params)
    return {"channels": list(channels), **params}


def onnx_supported() -> bool:
    """Whether the ONNX engine can run the installed Cellpose's networks (Cellpose 3's CPnet
    only; Cellpose 4's transformers run with torch)."""
    return not is_cellpose4()


def require_training_support() -> None:
    """Raise :class:`InputError` when training is asked for under Cellpose 4.

    h4tracks' training loop (``training.py``) is built from Cellpose 3's pieces (its
    network, BatchNorm re-estimation, 2-channel input); training Cellpose 4's ViT-L network
    is a different job (GPU-bound, hours on a CPU) that h4tracks does not do.
    """
    if is_cellpose4():
        raise InputError(
            f"Training runs with Cellpose 3 only; Cellpose {cellpose_major()} is installed, "
            f"so fine-tune Cellpose 4 models with Cellpose's own training ({INSTALL_CP3} "
            "brings h4tracks' training back).")


def offered_builtins(names: Sequence[str]) -> list[str]:
    """The installed Cellpose's built-in model names that h4tracks offers.

    Cellpose 4's DINOv3 models need the ``dinov3`` package, which is not on PyPI; they are
    offered only where it is installed.
    """
    names = list(dict.fromkeys(names))
    if is_cellpose4() and importlib.util.find_spec("dinov3") is None:
        names = [n for n in names if n not in _DINO_BUILTINS]
    return names


def builtin_description() -> str:
    """Description of a built-in model in the registry listing."""
    if is_cellpose4():
        return ("Cellpose 4 built-in model (weights licensed CC-BY-NC 4.0, downloaded on "
                "first use: see docs/engines.md).")
    return "Cellpose built-in model (weights downloaded on first use)."


def missing_builtin_message(name: str, cached: Path) -> str:
    """The sentence shown when built-in ``name`` is not in Cellpose's cache ``cached``.

    h4tracks never lets Cellpose download: this says how to get the file, and under
    Cellpose 4 that its licence allows non-commercial use only.
    """
    if is_cellpose4():
        return (
            f"The Cellpose 4 built-in model {name!r} is not in Cellpose's cache ({cached}); "
            "Cellpose downloads its weights from the internet on first use, which h4tracks "
            "does not do for you because they are licensed CC-BY-NC 4.0 (non-commercial use "
            "only): to accept that and download them run python -c \"from cellpose.models "
            f"import cache_model_path; cache_model_path('{name}')\", or copy the file to "
            f"{cached}.")
    return (
        f"The built-in Cellpose model {name!r} is not in the local cache ({cached}); "
        "built-in models are downloaded on first use, but this machine cannot reach the "
        "internet, so add a model weights file instead with "
        "ModelRegistry.add_custom(name, path) (or the CLI's --model PATH).")
