"""What the training recipe (:mod:`.recipe`) reads from the curated frames themselves:
their image modality, the cell diameter a network from scratch works at, and the crop to
the cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: image modalities :func:`detect_modality` tells apart
FLUORESCENCE = "fluorescence"
PHASE_CONTRAST = "phase contrast"
BRIGHT_FIELD = "bright field"
MODALITIES = (FLUORESCENCE, PHASE_CONTRAST, BRIGHT_FIELD)
#: |contrast| and halo (in units of the frame's 1-99 % intensity range) that count
_MODALITY_LEVEL = 0.1


def modality_measures(images: Sequence[np.ndarray], masks: Sequence[np.ndarray]
                      ) -> tuple[float, float]:
    """(contrast, halo) of curated frames, in units of each frame's 1-99 % intensity range
    and pooled over the frames by their cell pixels.

    contrast: median intensity inside the cells less the background's (the median of pixels
    more than half a cell diameter away from every cell, or of all pixels outside the cells
    when they fill the frame); halo: the median of a ring of a quarter diameter around the
    cells less the background's.
    """
    from scipy import ndimage as ndi

    from h4tracks.core.segmentation.training import mask_diameters

    sums = np.zeros(2)
    weight = 0.0
    for img, m in zip(images, masks, strict=True):
        img = np.asarray(img, dtype=np.float32)
        cells = np.asarray(m) > 0
        n = np.count_nonzero(cells)
        if n == 0 or n == cells.size:
            continue
        lo, hi = np.percentile(img, [1, 99])
        spread = max(float(hi - lo), 1e-6)
        ring_width = max(2.0, 0.25 * float(mask_diameters([m])[0]))
        dist = ndi.distance_transform_edt(~cells)
        ring = (dist > 0) & (dist <= ring_width)
        far = dist > 2 * ring_width
        bg = float(np.median(img[far] if np.count_nonzero(far) >= 100 else img[~cells]))
        sums += n * np.array([float(np.median(img[cells])) - bg,
                              float(np.median(img[ring])) - bg]) / spread
        weight += n
    if weight == 0:
        return 0.0, 0.0
    contrast, halo = sums / weight
    return float(contrast), float(halo)


def detect_modality(images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> str:
    """The image modality of curated frames, from intensities inside and around the cells.

    Fluorescence: cells brighter than the background (contrast ≥ 0.1 of the 1-99 % range);
    phase contrast: not brighter, with a bright halo around them (halo ≥ 0.1: the dark rods
    of a phase-contrast movie on a mid-grey background measure contrast -0.3 to -0.5, halo
    0.26-0.28); bright field: neither (cells darker than or like the background, no halo).
    Measured on the benchmark data: synthetic fluorescence movies and colonies contrast
    0.41-0.51, halo 0.04-0.07; their inverted copy -0.41 and -0.04 (bright field).
    """
    contrast, halo = modality_measures(images, masks)
    if contrast >= _MODALITY_LEVEL:
        return FLUORESCENCE
    if halo >= _MODALITY_LEVEL:
        return PHASE_CONTRAST
    return BRIGHT_FIELD


#: from scratch, the network works at this cell diameter at most (cellpose's nuclei model
#: works at 17, the shipped demo model at 17): larger cells are scaled down for it
SCRATCH_DIAMETER = 18.0
#: ... but not so far that the cells' median width falls below this many pixels
MIN_CELL_WIDTH = 6.0
#: training frames are cropped to their cells plus this many cell diameters around them
CROP_MARGIN = 3.0


def cell_widths(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Width of every cell (px): twice the largest distance from its inside to its edge."""
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries

    out = []
    for m in masks:
        m = np.asarray(m)
        ids = np.unique(m[m > 0])
        if ids.size == 0:
            continue
        inner = (m > 0) & ~find_boundaries(m, mode="inner")
        dist = ndi.distance_transform_edt(np.pad(inner, 1))[1:-1, 1:-1]
        out.append(2 * np.asarray(ndi.maximum(dist, m, ids)) + 1)
    return np.concatenate(out) if out else np.zeros(0)


def scratch_diameter(masks: Sequence[np.ndarray], diameter: float,
                     fixed: float | None = None) -> float:
    """The cell diameter a network trained from scratch works at: ``fixed`` if given, else
    the cells' (mean) ``diameter`` down to ``SCRATCH_DIAMETER`` at most, as long as the
    scaled cells stay ``MIN_CELL_WIDTH`` px wide (measured on a phase-contrast movie of rods
    36 px in diameter, 15-20 px wide: at 18 px they learn as well in 40 steps, AP@0.5 0.89
    on held-out frames, at a quarter of the pixels per cell)."""
    if fixed is not None:
        return float(fixed)
    if diameter <= SCRATCH_DIAMETER:
        return diameter
    widths = cell_widths(masks)
    width = float(np.median(widths)) if widths.size else diameter
    return float(min(diameter, max(SCRATCH_DIAMETER,
                                   diameter * MIN_CELL_WIDTH / max(width, 1.0))))


def crop_to_cells(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], margin: float
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each frame cropped to the bounding box of its cells plus ``margin`` px (within the
    frame, at least 64 px a side when the frame is): training patches then hold cells
    instead of the empty field of view around a colony (a colony of a real movie filled 6 %
    of its 727x1026 frames), and validation strips hold cells."""
    out_img, out_mask = [], []
    for img, m in zip(images, masks, strict=True):
        img, m = np.asarray(img), np.asarray(m)
        box = []
        for axis in (0, 1):
            on = np.flatnonzero(np.any(m > 0, axis=1 - axis))
            n = m.shape[axis]
            lo, hi = max(0, int(on[0] - margin)), min(n, int(on[-1] + 1 + margin))
            short = min(n, 64) - (hi - lo)
            if short > 0:
                lo = max(0, lo - short // 2 - short % 2)
                hi = min(n, lo + min(n, 64))
            box.append(slice(lo, hi))
        out_img.append(img[tuple(box)])
        out_mask.append(m[tuple(box)])
    return out_img, out_mask
