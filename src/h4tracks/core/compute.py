"""The user's core budget: how many CPU cores heavy work may use."""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import re
from collections.abc import Iterator

MODES = {"40%": 0.4, "80%": 0.8}


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity / container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def core_budget(mode: str | int | float | None = "40%") -> int:
    """Number of cores for a compute mode.

    Parameters
    ----------
    mode
        ``"40%"`` / ``"80%"`` (share of the available cores, rounded to the nearest whole
        core, at least 1: on 2 cores 40 % is 1 core and 80 % is 2), a whole number of cores
        ``N`` (capped at the available cores), or None for the default 40 %.

    Examples
    --------
    >>> core_budget(1)
    1
    """
    n = available_cores()
    if mode is None:
        mode = "40%"
    if isinstance(mode, str):
        text = mode.strip().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?%", text):
            share = float(text[:-1]) / 100
            if not 0 < share <= 1:
                raise ValueError(f"core share must be between 0 % and 100 %, got {mode}")
            return _share(n, share)
        if text.isdigit():
            mode = int(text)
        else:
            raise ValueError(f"compute mode must be like 40%, 80% or a number of cores: {mode!r}")
    if isinstance(mode, float):
        return _share(n, mode)
    if mode < 1:
        raise ValueError(f"number of cores must be at least 1, got {mode}")
    return min(int(mode), n)


def _share(n: int, share: float) -> int:
    """``share`` of ``n`` cores, rounded half up, at least 1 and at most ``n``."""
    return min(n, max(1, math.floor(n * share + 0.5)))


@contextlib.contextmanager
def torch_threads(cores: int | None) -> Iterator[None]:
    """Limit torch's intra-op threads to ``cores`` for the duration of the block."""
    import torch  # heavy, optional until a network runs: imported on use

    if cores is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(cores)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def bfloat16_likely() -> bool:
    """Whether bfloat16 segmentation is likely to run here, without loading OpenVINO.

    A hint for the UI (the run asks OpenVINO itself:
    :func:`~h4tracks.core.segmentation.openvino_engine.bfloat16_supported`): openvino is
    installed and the CPU lists ``amx_bf16`` or ``avx512_bf16`` in ``/proc/cpuinfo``; False
    where there is no such file (Windows, macOS).
    """
    try:
        if importlib.util.find_spec("openvino") is None:
            return False
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except (OSError, ValueError, ImportError):
        pass
    return False
