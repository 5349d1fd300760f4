"""Slow float64 NumPy reference of the joint bilateral filter exactly as ../shared/DESIGN.md defines it.

For tests only: every fast path (Numba CPU, CUDA) is checked against this.
"""
from __future__ import annotations

import numpy as np


def joint_bilateral_reference(disparity: np.ndarray, guide_bgr: np.ndarray, radius: int,
                              sigma_spatial: float, sigma_range: float) -> np.ndarray:
    """out(p) = Σ ws(q−p)·wr(I(q)−I(p))·D(q) / Σ ws·wr over the (2r+1)² window; q outside the image skipped.

    ws(v) = exp(−|v|²/(2σs²)) in pixels; wr(c) = exp(−|c|²/(2σr²)) with c the BGR difference / 255.
    Returns float64. Vectorised over pixels, looping over the window offsets.
    """
    d = np.asarray(disparity, dtype=np.float64)
    g = np.asarray(guide_bgr, dtype=np.float64) / 255.0
    h, w = d.shape
    num = np.zeros((h, w))
    den = np.zeros((h, w))
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            # p ranges over pixels whose neighbour q = p + (dy, dx) lies inside the image.
            py0, py1 = max(0, -dy), min(h, h - dy)
            px0, px1 = max(0, -dx), min(w, w - dx)
            if py0 >= py1 or px0 >= px1:
                continue
            gp = g[py0:py1, px0:px1]
            gq = g[py0 + dy:py1 + dy, px0 + dx:px1 + dx]
            dist2 = np.sum((gq - gp) ** 2, axis=-1)
            wgt = np.exp(-(dy * dy + dx * dx) / (2.0 * sigma_spatial ** 2)) * np.exp(-dist2 / (2.0 * sigma_range ** 2))
            num[py0:py1, px0:px1] += wgt * d[py0 + dy:py1 + dy, px0 + dx:px1 + dx]
            den[py0:py1, px0:px1] += wgt
    return num / den


def joint_bilateral_upsample_reference(low: np.ndarray, low_guide_bgr: np.ndarray, guide_bgr: np.ndarray,
                                       sigma_range: float, sigma_low: float, weight_floor: float = 1e-9,
                                       tap_floor: float = 1e-4) -> np.ndarray:
    """Joint bilateral upsampling (Kopf et al. 2007) over the 2x2 low-res neighbours of each full-res pixel.

    Neighbours of p along each axis: the two low-res samples around p's centre mapped into low-res pixels
    ((i + 0.5) · low / full − 0.5, as cv2.resize), weighted by exp(−Δ²/(2σ²)) in low-res pixels; a
    neighbour outside the image, or weighing under `tap_floor`, is skipped. Range weight: the product
    over B, G, R of exp(−(Δc/255)²/(2σr²)), each factor under `weight_floor` taken as 0 (the fast
    path's floored tables). Where every weight is 0 the nearest low-res sample is taken. float64.
    """
    low = np.asarray(low, dtype=np.float64)
    h, w = low.shape
    big_h, big_w = guide_bgr.shape[:2]

    def taps(full: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        twice = (2 * np.arange(full) + 1) * size - full
        centre = twice / (2.0 * full)
        first = twice // (2 * full)  # exact: a whole-number centre takes itself and the sample after it
        index = np.stack([first, first + 1], axis=1)
        weight = np.exp(-0.5 / sigma_low ** 2 * (index - centre[:, None]) ** 2)
        weight[(index < 0) | (index >= size) | (weight < tap_floor)] = 0.0
        return np.clip(index, 0, size - 1), weight

    iy, wy = taps(big_h, h)
    ix, wx = taps(big_w, w)
    g = np.asarray(guide_bgr, dtype=np.float64)
    gl = np.asarray(low_guide_bgr, dtype=np.float64)
    num = np.zeros((big_h, big_w))
    den = np.zeros((big_h, big_w))
    for a in range(2):
        for b in range(2):
            rows, cols = iy[:, a][:, None], ix[:, b][None, :]
            factors = np.exp(-((gl[rows, cols] - g) / 255.0) ** 2 / (2.0 * sigma_range ** 2))
            factors[factors < weight_floor] = 0.0
            weight = wy[:, a][:, None] * wx[:, b][None, :] * np.prod(factors, axis=-1)
            num += weight * low[rows, cols]
            den += weight
    nearest_row = np.where(wy[:, 0] >= wy[:, 1], iy[:, 0], iy[:, 1])[:, None]
    nearest_col = np.where(wx[:, 0] >= wx[:, 1], ix[:, 0], ix[:, 1])[None, :]
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), low[nearest_row, nearest_col])
