"""The tutorial's picture script does the whole tutorial on the real widgets (a small movie):
if a step stops working, this fails, so docs/tutorial.md never shows a broken workflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "make_tutorial.py"


@pytest.mark.slow
def test_tutorial_script_runs_every_step(tmp_path):
    env = dict(os.environ, H4TRACKS_CONFIG_DIR=str(tmp_path / "cfg"))
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "img"), "--frames", "6",
         "--size", "160"], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    names = sorted(p.name for p in (tmp_path / "img").iterdir())
    assert names == ["01_open.png", "02_segment.png", "03_curate.png",
                     "03_curate_stroke.gif", "04_track.png", "05_unlink.png",
                     "06_analyse.png", "07_evaluate.png", "08_export.png"]
    from PIL import Image

    for name in names:
        with Image.open(tmp_path / "img" / name) as im:
            rgb = im.convert("RGB")
            # a shown window, not a black (unshown) or empty canvas
            assert max(hi for _, hi in rgb.getextrema()) > 100, name
