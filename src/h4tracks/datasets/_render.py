"""Rasterising and imaging simulated cells: touching ellipses become a label frame, and the
label frame a widefield fluorescence image (PSF, shot and read noise, camera)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage
from skimage.measure import label as _label_components

if TYPE_CHECKING:  # annotations only: _simulation imports this module
    from h4tracks.datasets._simulation import _Cells
    from h4tracks.datasets.parameters import SyntheticConfig

# Photometry in photo-electrons; see _Camera.
_BACKGROUND_E = 300.0
_READ_NOISE_E = 6.0
_N_WAVES = 3  # sinusoids making the per-cell texture


@dataclass
class _Candidates:
    """The (cell, pixel) pairs of one frame that won their pixel, with cell-local coordinates."""

    cell: np.ndarray  # index into the cells
    flat: np.ndarray  # flat pixel index
    u: np.ndarray  # coordinate along the long axis, px
    v: np.ndarray  # coordinate along the short axis, px
    d2: np.ndarray  # squared normalised elliptical distance


def _rasterise(cells: _Cells, shape: tuple[int, int]) -> tuple[np.ndarray, _Candidates]:
    """Give each pixel to the cell with the smallest normalised elliptical distance.

    All cells are evaluated at once on the pixels of their (frame-clipped) bounding boxes,
    concatenated into flat ragged arrays, and the per-pixel winner is found with
    ``np.minimum.at`` on a flat 'best distance' map.
    """
    h, w = shape
    owner = np.zeros(h * w, np.int32)
    a, b = cells.axes()
    c, s = np.cos(cells.theta), np.sin(cells.theta)
    ext_y = np.sqrt((a * s) ** 2 + (b * c) ** 2)
    ext_x = np.sqrt((a * c) ** 2 + (b * s) ** 2)
    y0 = np.clip(np.ceil(cells.y - ext_y), 0, h).astype(np.int64)
    y1 = np.clip(np.floor(cells.y + ext_y) + 1, 0, h).astype(np.int64)
    x0 = np.clip(np.ceil(cells.x - ext_x), 0, w).astype(np.int64)
    x1 = np.clip(np.floor(cells.x + ext_x) + 1, 0, w).astype(np.int64)
    bw = np.maximum(x1 - x0, 0)
    size = np.maximum(y1 - y0, 0) * bw
    start = np.concatenate([[0], np.cumsum(size)])
    cell = np.repeat(np.arange(len(cells)), size)
    local = np.arange(start[-1]) - start[cell]
    ly = local // bw[cell]
    py = y0[cell] + ly
    px = x0[cell] + (local - ly * bw[cell])
    f32 = np.float32
    dy = py.astype(f32) - cells.y.astype(f32)[cell]
    dx = px.astype(f32) - cells.x.astype(f32)[cell]
    cc, ss = c.astype(f32)[cell], s.astype(f32)[cell]
    u = dx * cc + dy * ss  # along the long axis
    v = dy * cc - dx * ss
    d2 = u * u * (1.0 / a**2).astype(f32)[cell] + v * v * (1.0 / b**2).astype(f32)[cell]
    inside = d2 < 1.0
    cell, u, v, d2 = cell[inside], u[inside], v[inside], d2[inside]
    flat = py[inside] * w + px[inside]
    best = np.full(h * w, np.inf, f32)
    np.minimum.at(best, flat, d2)
    win = d2 == best[flat]
    # Exact ties are astronomically rare; the later cell wins them, deterministically.
    owner[flat[win]] = cell[win] + 1
    cand = _Candidates(cell[win], flat[win], u[win], v[win], d2[win])
    return owner.reshape(h, w), cand


def _fix_fragments(owner: np.ndarray) -> np.ndarray:
    """Keep each cell's largest 4-connected piece; stray pieces go to the neighbour they touch.

    The argmin partition of overlapping ellipses can, in crowded spots, cut a thin sliver off a
    cell; real cells are connected, so the sliver goes to whoever surrounds it.
    """
    comp, n_comp = _label_components(owner, background=0, connectivity=1, return_num=True)
    if n_comp == 0:
        return owner
    comp_owner = np.zeros(n_comp + 1, np.int64)
    comp_owner[comp.ravel()] = owner.ravel()
    per_owner = np.bincount(comp_owner[1:], minlength=int(owner.max()) + 1)
    if not (per_owner[1:] > 1).any():
        return owner
    size = np.bincount(comp.ravel(), minlength=n_comp + 1)
    slices = ndimage.find_objects(comp)
    owner = owner.copy()
    for cell in np.flatnonzero(per_owner > 1):  # rare: a handful of cells per movie
        comps = np.flatnonzero(comp_owner == cell)
        comps = comps[comps > 0]
        for k in comps[comps != comps[np.argmax(size[comps])]]:
            sl = slices[k - 1]
            sl = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
            piece = comp[sl] == k
            ring = ndimage.binary_dilation(piece) & ~piece
            around = owner[sl][ring]
            owner[sl][piece] = np.bincount(around).argmax() if around.size else 0
    return owner


def _enclosed(owner: np.ndarray, n: int) -> np.ndarray:
    """Cells whose only neighbour is one other cell (a cell inside a cell: a hole in it)."""
    m = n + 1
    touch = np.zeros(m * m, bool)
    for x, y in ((owner[:, :-1], owner[:, 1:]), (owner[:-1, :], owner[1:, :])):
        diff = x != y
        xs, ys = x[diff].astype(np.int64), y[diff].astype(np.int64)
        # Adjacency matrix via flat (a, b) codes: O(pixels), unlike sorting the pairs.
        touch[xs * m + ys] = True
        touch[ys * m + xs] = True
    touch = touch.reshape(m, m)
    n_nb = touch.sum(axis=1)
    only_cell = (n_nb == 1) & ~touch[:, 0]
    only_cell[0] = False
    # Touching the frame edge means not enclosed.
    edge = np.concatenate([owner[0], owner[-1], owner[:, 0], owner[:, -1]])
    only_cell[edge] = False
    return only_cell[1:]


def _cell_signal(
    cells: _Cells, owner: np.ndarray, cand: _Candidates, shape: tuple[int, int]
) -> np.ndarray:
    """Noise-free cell fluorescence (mean ≈ 1 inside a cell, 0 outside), before the PSF."""
    h, w = shape
    sig = np.zeros(h * w, np.float32)
    if len(cells) == 0:
        return sig.reshape(h, w)
    # Fragment fixing may have reassigned a few pixels; only paint pixels still owned.
    keep = owner.ravel()[cand.flat] == cand.cell + 1
    i, flat, u, v, d2 = cand.cell[keep], cand.flat[keep], cand.u[keep], cand.v[keep], cand.d2[keep]
    f32 = np.float32
    ax, bx = cells.axes()
    # Per-cell parameters in float32, gathered once per pixel.
    nuc_u0 = (cells.nuc_u * ax).astype(f32)[i]
    nuc_v0 = (cells.nuc_v * bx).astype(f32)[i]
    inv_a = (1.0 / (0.45 * ax)).astype(f32)[i]
    inv_b = (1.0 / (0.55 * bx)).astype(f32)[i]
    body = 0.7 + 0.3 * (1.0 - d2)  # thicker, hence brighter, in the middle
    nucleus = cells.nuc_amp.astype(f32)[i] * np.exp(
        -2.0 * (((u - nuc_u0) * inv_a) ** 2 + ((v - nuc_v0) * inv_b) ** 2)
    )
    rim = cells.rim.astype(f32)[i] * np.exp(-(((np.sqrt(d2) - 0.9) * 10.0) ** 2))
    # Texture in cell-local coordinates, so it moves and turns with the cell.
    k = cells.wave_k.astype(f32)[i]
    arg = k[..., 0] * u[:, None] + k[..., 1] * v[:, None] + cells.wave_phase.astype(f32)[i]
    texture = 1.0 + (cells.wave_amp.astype(f32)[i] * np.cos(arg)).sum(axis=1)
    sig[flat] = cells.bright.astype(f32)[i] * (body + nucleus + rim) * texture
    return sig.reshape(h, w)


class _Camera:
    """Turns the noise-free cell signal into a noisy camera frame.

    Everything is computed in photo-electrons: background ``B`` times an illumination map, cell
    signal scaled so that its mean is ``snr`` background noise sds, Poisson shot noise, gaussian
    read noise, then offset + gain to ADU in the output dtype.
    """

    def __init__(self, cfg: SyntheticConfig, rng: np.random.Generator) -> None:
        self.cfg, self.rng = cfg, rng
        h, w = cfg.shape
        noise_sd = math.sqrt(_BACKGROUND_E + _READ_NOISE_E**2)
        self.signal_e = cfg.snr * noise_sd
        yy = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
        xx = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
        # Vignetting around an off-centre optical axis plus a linear tilt in a random direction.
        oy, ox = rng.uniform(-0.4, 0.4, 2)
        ang = rng.uniform(0, 2 * np.pi)
        raw = 0.6 * ((yy - oy) ** 2 + (xx - ox) ** 2) + 0.4 * (np.cos(ang) * xx + np.sin(ang) * yy)
        raw = (raw - raw.min()) / max(float(raw.max() - raw.min()), 1e-6)
        self.illum = (1.0 - cfg.illumination * raw).astype(np.float32)
        if cfg.dtype == "uint16":
            self.offset, self.gain, self.top = 100.0, 4.0, 65535
        else:
            # Map background + twice the mean signal to ~190 so bright cells rarely saturate.
            self.offset, self.top = 10.0, 255
            self.gain = 180.0 / (_BACKGROUND_E + 2.0 * self.signal_e)

    def expose(self, signal: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        if cfg.blur_sigma > 0:
            signal = ndimage.gaussian_filter(signal, cfg.blur_sigma, mode="nearest", truncate=3.0)
        expected = self.illum * (_BACKGROUND_E + self.signal_e * signal)
        z = self.rng.standard_normal(expected.shape, dtype=np.float32)
        # Shot + read noise. Above ~30 e- the Poisson law is indistinguishable from a gaussian of
        # equal variance and sampling that is ~10x faster; dim pixels get the exact Poisson draw.
        electrons = expected + np.sqrt(expected + _READ_NOISE_E**2) * z
        dim = expected < 30.0
        if dim.any():
            electrons[dim] = self.rng.poisson(expected[dim]) + _READ_NOISE_E * z[dim]
        adu = np.rint(self.offset + self.gain * electrons)
        return np.clip(adu, 0, self.top).astype(cfg.dtype)

