"""Tiny synthetic movies (image + labels TIFFs) in a manifest with two conditions, and a
pipeline over them (helpers of the pipeline tests)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import tifffile

from h4tracks.datasets.synthetic import SyntheticConfig, make_movie


def write_movies(folder: Path, n: int = 4, *, frames: int = 8, size: int = 64,
                 cells: int = 4) -> Path:
    """``n`` movies with their labels and ``movies.csv`` (condition A/B, replicate)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        movie = make_movie(SyntheticConfig(n_frames=frames, shape=(size, size), n_cells=cells,
                                           seed=i, speed=2.0 + 2.0 * (i % 2)))
        tifffile.imwrite(folder / f"m{i}.tif", movie.image, imagej=True,
                         metadata={"axes": "TYX"})
        tifffile.imwrite(folder / f"m{i}_labels.tif", movie.labels.astype(np.uint16),
                         photometric="minisblack", metadata={"axes": "TYX"})
        rows.append({"image": f"m{i}.tif", "labels": f"m{i}_labels.tif",
                     "condition": "slow" if i % 2 == 0 else "fast", "replicate": str(i // 2)})
    with open(folder / "movies.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder / "movies.csv"


def pipeline_dict(manifest: Path, output: Path, **track: object) -> dict:
    return {
        "inputs": {"manifest": str(manifest)},
        "output": str(output),
        "steps": {"track": {"method": "lap", "max_distance": 12, "max_gap": 1, **track},
                  "analyze": {}, "export": {"format": "ctc"}},
    }
