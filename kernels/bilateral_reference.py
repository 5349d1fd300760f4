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
