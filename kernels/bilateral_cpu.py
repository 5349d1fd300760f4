"""Fast exact CPU path of the joint bilateral filter (Numba, parallel over rows), and the live-mode upsampler.

Why it is fast: the range weight exp(−(Δb²+Δg²+Δr²)/2σr²) factors into three lookups in one 256-entry
table (one per channel difference), the spatial weight is one lookup in a precomputed (2r+1)² table, and
the inner loop over a window row is a float32 reduction that LLVM vectorises with gathers. The tables are
floored (see `kernels.bilateral.WEIGHT_FLOOR`) so no product of weights is a float32 denormal: denormal
arithmetic made this loop about 16x slower.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


def guide_planes(guide_bgr: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 → 3xHxW int32: contiguous planes; int32 differences index the table without widening."""
    return np.ascontiguousarray(np.moveaxis(guide_bgr, -1, 0), dtype=np.int32)


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def joint_bilateral_planes(disparity: np.ndarray, planes: np.ndarray, lut: np.ndarray,
                           spatial: np.ndarray, radius: int) -> np.ndarray:  # pragma: no cover (compiled)
    """The exact filter: `spatial` is the (2r+1)x(2r+1) table, `lut[|Δ|]` the per-channel range factor."""
    h, w = disparity.shape
    b = planes[0]
    g = planes[1]
    r = planes[2]
    out = np.empty((h, w), np.float32)
    for y in prange(h):
        y0 = max(0, y - radius)
        y1 = min(h, y + radius + 1)
        for x in range(w):
            bp = b[y, x]
            gp = g[y, x]
            rp = r[y, x]
            x0 = max(0, x - radius)  # q outside the image is skipped: clip the window, no padding
            x1 = min(w, x + radius + 1)
            s0 = x0 - x + radius
            num = np.float32(0.0)
            den = np.float32(0.0)
            for qy in range(y0, y1):
                # Row slices keep the inner loop a plain unit-stride reduction, which LLVM vectorises with
                # gathers (flat index arithmetic measured ~4x slower). uint32 indices: no wraparound checks.
                bq = b[qy, x0:x1]
                gq = g[qy, x0:x1]
                rq = r[qy, x0:x1]
                dq = disparity[qy, x0:x1]
                sq = spatial[qy - y + radius, s0:s0 + x1 - x0]
                for t in range(x1 - x0):
                    wt = (sq[t] * lut[np.uint32(abs(bq[t] - bp))] * lut[np.uint32(abs(gq[t] - gp))]
                          * lut[np.uint32(abs(rq[t] - rp))])
                    num += wt * dq[t]
                    den += wt
            out[y, x] = num / den  # den ≥ ws(0)·wr(0) = 1: q = p is always in the window
    return out


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def joint_bilateral_upsample_planes(low: np.ndarray, low_planes: np.ndarray, planes: np.ndarray,
                                    lut: np.ndarray, sigma_low: float, taps: int) -> np.ndarray:  # pragma: no cover
    """Joint bilateral upsampling (Kopf et al. 2007): full-res p gathers the taps×taps low-res samples around
    its position, weighted by the spatial distance in low-res pixels and by the range distance between the
    full-res guide at p and the (area-downsampled) guide at q; low-res samples outside the image are skipped."""
    h, w = low.shape
    H = planes.shape[1]
    W = planes.shape[2]
    sy = h / H
    sx = w / W
    half = taps // 2
    inv = -0.5 / (sigma_low * sigma_low)
    # Spatial weights are separable and depend only on the row (column): precompute them per row / column.
    wy = np.zeros((H, taps), np.float32)
    iy = np.empty(H, np.int64)
    for Y in range(H):
        v = (Y + 0.5) * sy - 0.5
        base = int(np.floor(v)) - half + 1
        iy[Y] = base
        for t in range(taps):
            qy = base + t
            if 0 <= qy < h:
                wy[Y, t] = max(np.exp(inv * (qy - v) ** 2), 1e-9)
    wx = np.zeros((W, taps), np.float32)
    ix = np.empty(W, np.int64)
    for X in range(W):
        u = (X + 0.5) * sx - 0.5
        base = int(np.floor(u)) - half + 1
        ix[X] = base
        for t in range(taps):
            qx = base + t
            if 0 <= qx < w:
                wx[X, t] = max(np.exp(inv * (qx - u) ** 2), 1e-9)
    out = np.empty((H, W), np.float32)
    for Y in prange(H):
        for X in range(W):
            bp = planes[0, Y, X]
            gp = planes[1, Y, X]
            rp = planes[2, Y, X]
            num = np.float32(0.0)
            den = np.float32(0.0)
            for ty in range(taps):
                qy = iy[Y] + ty
                if qy < 0 or qy >= h:
                    continue
                for tx in range(taps):
                    qx = ix[X] + tx
                    if qx < 0 or qx >= w:
                        continue
                    wt = (wy[Y, ty] * wx[X, tx] * lut[np.uint32(abs(low_planes[0, qy, qx] - bp))]
                          * lut[np.uint32(abs(low_planes[1, qy, qx] - gp))] * lut[np.uint32(abs(low_planes[2, qy, qx] - rp))])
                    num += wt * low[qy, qx]
                    den += wt
            if den > 0:
                out[Y, X] = num / den
            else:  # every nearby low-res colour is far from p's: keep the nearest sample
                out[Y, X] = low[min(max(int((Y + 0.5) * sy), 0), h - 1), min(max(int((X + 0.5) * sx), 0), w - 1)]
    return out
