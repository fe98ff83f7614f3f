"""Train the small Cellpose model h4tracks ships as its offline default ("h4tracks-demo").

Reproducible: the training data are h4tracks' own synthetic movies (fixed seeds, varied cell
size, density, brightness and noise), the network is trained from scratch with
``h4tracks.core.segmentation.training.train_cellpose`` and saved in float16 (half the size;
cellpose loads it into its float32 network). Run from the repository root::

    python scripts/train_demo_model.py            # ~20 min on 2 CPU cores
    python scripts/train_demo_model.py --minutes 5 --out /tmp/quick.pth

It prints the held-out AP@0.5 of the result (frames of movies not used for training).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from h4tracks.core.segmentation.training import TrainParams, train_cellpose
from h4tracks.datasets.synthetic import make_movie

OUT = Path(__file__).resolve().parents[1] / "src" / "h4tracks" / "models" / "h4tracks_demo.pth"

# (radius, n_cells, snr, illumination): small/large, sparse/dense, bright/dim cells
CONFIGS = [
    (7.0, 30, 6.0, 0.3), (9.0, 12, 8.0, 0.3), (9.0, 40, 4.0, 0.5), (11.0, 20, 12.0, 0.2),
    (8.0, 60, 8.0, 0.4), (12.0, 30, 5.0, 0.3), (10.0, 50, 16.0, 0.1), (7.5, 15, 3.0, 0.5),
]


def training_frames(seed0: int = 100) -> tuple[list[np.ndarray], list[np.ndarray]]:
    images, masks = [], []
    for i, (radius, n, snr, illum) in enumerate(CONFIGS):
        movie = make_movie(n_frames=25, shape=(256, 256), n_cells=n, radius=radius, snr=snr,
                           illumination=illum, division_rate=0.04, seed=seed0 + i)
        for t in range(0, 25, 6):  # frames 6 apart: cells have moved and divided
            images.append(movie.image[t])
            masks.append(movie.labels[t])
    return images, masks


def held_out_ap50(path: Path) -> float:
    from cellpose import metrics
    from skimage.segmentation import relabel_sequential

    from h4tracks.core.segmentation.models import ModelEntry, load_cellpose_model

    model, _ = load_cellpose_model(ModelEntry(name="candidate", kind="custom", path=str(path)))
    aps = []
    for seed, (radius, n) in enumerate([(9.0, 25), (8.0, 45), (11.0, 15)]):
        movie = make_movie(n_frames=6, shape=(256, 256), n_cells=n, radius=radius, seed=900 + seed)
        pred = model.eval([movie.image[5]], channels=[0, 0], diameter=None)[0][0]
        gt = relabel_sequential(movie.labels[5])[0]
        aps.append(metrics.average_precision([gt], [pred], threshold=[0.5])[0][0, 0])
    return float(np.mean(aps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    import torch

    images, masks = training_frames()
    print(f"{len(images)} training frames of 256x256")
    t0 = time.perf_counter()
    tmp = args.out.with_suffix(".float32.tmp")
    params = TrainParams(epochs=args.epochs, minutes=args.minutes, patch_size=128,
                         diam_mean=17.0, batch_size=8, images_per_epoch=16, seed=0)

    def show(done: int, total: int, loss: float) -> None:
        if done % 10 == 0:
            print(f"epoch {done}: loss {loss:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)

    result = train_cellpose(images, masks, tmp, params=params, cores=args.cores, progress=show)
    state = torch.load(tmp, map_location="cpu", weights_only=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, args.out)
    tmp.unlink()
    print(f"trained {result.epochs} epochs in {result.seconds:.0f} s; "
          f"mean diameter {result.diameter:.1f} px; saved {args.out} "
          f"({args.out.stat().st_size / 1e6:.1f} MB)")
    print(f"held-out AP@0.5: {held_out_ap50(args.out):.3f}")


if __name__ == "__main__":
    main()
