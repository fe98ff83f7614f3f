"""Concurrent writers on one project, as the store-integrity issue probed them.

Runs rounds of real ``h4tracks`` processes started at the same moment on one small project and
counts what was lost::

    curate+track   h4tracks curate P --mark 3  &  h4tracks track P
    track+track    h4tracks track P  &  h4tracks track P
    curate x3      three h4tracks curate P --mark N at once

After each round the project must open, pass ``h4tracks check``, keep its image byte for
byte, keep every curated mark, hold an automatic snapshot with cells, and every command must
have exited 0 (it waited for the lock) or stopped with one line naming the holder.

Usage: ``python benchmarks/stress_concurrency.py [--rounds 15]`` (prints one line per
scenario: rounds, lost images, lost marks, emptied snapshots, failed checks, refusals).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from h4tracks.core.check import check_project
from h4tracks.core.project import Project
from h4tracks.core.store import open_project, save_project
from h4tracks.datasets.synthetic import SyntheticConfig, make_movie

CLI = [sys.executable, "-m", "h4tracks.cli"]

SCENARIOS = {
    "curate+track": [["curate", "{P}", "--mark", "3"], ["track", "{P}"]],
    "track+track": [["track", "{P}"], ["track", "{P}"]],
    "curate x3": [["curate", "{P}", "--mark", "1"], ["curate", "{P}", "--mark", "3"],
                  ["curate", "{P}", "--mark", "5"]],
}


def fresh_project(folder: Path) -> tuple[Path, np.ndarray]:
    movie = make_movie(SyntheticConfig(n_frames=8, shape=(96, 96), n_cells=6, seed=1))
    p = Project(movie.image, movie.labels, metadata={"name": "stress"})
    p.take_auto_snapshot(step="import")
    return save_project(p, folder / "P.zarr", overwrite=True), movie.image


def one_round(folder: Path, commands: list[list[str]]) -> dict[str, int]:
    path, image = fresh_project(folder)
    env = dict(os.environ, H4TRACKS_CONFIG_DIR=str(folder / "cfg"), H4TRACKS_LOCK_WAIT="60")
    procs = [subprocess.Popen([*CLI, *(a.replace("{P}", str(path)) for a in c)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    out = {"refused": sum(code != 0 for code, _ in results),
           "unclear errors": sum(code != 0 and len(err.strip().splitlines()) != 1
                                 for code, err in results)}
    try:
        q = open_project(path)
    except Exception:
        return {**out, "unopenable": 1}
    done_marks = {int(c[c.index("--mark") + 1]) for c, (code, _) in zip(commands, results,
                                                                        strict=True)
                  if "--mark" in c and code == 0}
    out["lost image"] = int(not np.array_equal(np.asarray(q.image[:]), image))
    out["lost marks"] = len(done_marks - set(q.metadata.curated_frames))
    out["empty snapshot"] = int(q.auto is None or len(q.auto.graph) == 0)
    out["check failed"] = int(not check_project(path).ok)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for name, commands in SCENARIOS.items():
            total: dict[str, int] = {}
            t0 = time.perf_counter()
            for _ in range(args.rounds):
                for k, v in one_round(Path(d), commands).items():
                    total[k] = total.get(k, 0) + v
            print(f"{name:<14} rounds {args.rounds}: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(total.items()))
                  + f" ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
