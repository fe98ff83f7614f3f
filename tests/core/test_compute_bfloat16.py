"""The UI's quick guess whether bfloat16 segmentation runs here (CPU flags, no OpenVINO)."""

from __future__ import annotations

import builtins
import importlib.util
import io

import pytest

from h4tracks.core import compute


def _cpuinfo(monkeypatch, text: str | None) -> None:
    real = builtins.open

    def fake(path, *a, **k):
        if str(path) == "/proc/cpuinfo":
            if text is None:
                raise FileNotFoundError(path)
            return io.StringIO(text)
        return real(path, *a, **k)

    monkeypatch.setattr(builtins, "open", fake)


@pytest.mark.parametrize(("flags", "installed", "expected"), [
    ("fpu sse avx512f amx_bf16 amx_tile", True, True),
    ("fpu sse avx512f avx512_bf16", True, True),
    ("fpu sse avx2 avx512f", True, False),  # no bfloat16 units
    ("fpu avx512_bf16", False, False),  # openvino not installed
    (None, True, False),  # no /proc/cpuinfo (Windows, macOS)
])
def test_bfloat16_likely(monkeypatch, flags, installed, expected):
    _cpuinfo(monkeypatch, None if flags is None else
             f"processor\t: 0\nflags\t\t: {flags}\n")
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: object() if installed else None)
    assert compute.bfloat16_likely() is expected
