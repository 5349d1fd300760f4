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


@njit(cache=True)
def _upsample_taps(full: int, low: int, taps: int, inv_two_sigma2: float) -> tuple[np.ndarray, np.ndarray]:
    """For each full-res coordinate: the `taps` nearest low-res indices (clipped into the image) and their
    Gaussian weights in low-res pixels; a tap that falls outside the image gets weight 0, i.e. is skipped."""
    scale = low / full
    index = np.empty((full, taps), np.int64)
    weight = np.zeros((full, taps), np.float32)
    for i in range(full):
        centre = (i + 0.5) * scale - 0.5  # pixel-centre alignment, as cv2.resize
        first = int(np.floor(centre)) - taps // 2 + 1
        for t in range(taps):
            q = first + t
            index[i, t] = min(max(q, 0), low - 1)
            value = np.exp(-inv_two_sigma2 * (q - centre) ** 2)
            # Zero below 1e-4: a product wy·wx·lut·lut·lut then stays a normal float32 (denormals are ~10x slower).
            if 0 <= q < low and value >= 1e-4:
                weight[i, t] = value
    return index, weight


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def joint_bilateral_upsample_planes(low: np.ndarray, low_planes: np.ndarray, planes: np.ndarray,
                                    lut: np.ndarray, sigma_low: float, taps: int) -> np.ndarray:  # pragma: no cover
    """Joint bilateral upsampling (Kopf et al. 2007): full-res p gathers the taps x taps low-res samples
    around its position, weighted by the distance in low-res pixels and by the range distance between the
    full-res guide at p and the area-downsampled guide at q (so depth edges snap to the frame's edges)."""
    h, w = low.shape
    H = planes.shape[1]
    W = planes.shape[2]
    inv = 0.5 / (sigma_low * sigma_low)
    iy, wy = _upsample_taps(H, h, taps, inv)
    ix, wx = _upsample_taps(W, w, taps, inv)
    lb = low_planes[0]
    lg = low_planes[1]
    lr = low_planes[2]
    out = np.empty((H, W), np.float32)
    for Y in prange(H):
        fb = planes[0, Y]
        fg = planes[1, Y]
        fr = planes[2, Y]
        for X in range(W):
            bp = fb[X]
            gp = fg[X]
            rp = fr[X]
            num = np.float32(0.0)
            den = np.float32(0.0)
            nearest_w = np.float32(-1.0)
            nearest_d = np.float32(0.0)
            for ty in range(taps):
                qy = iy[Y, ty]
                sy = wy[Y, ty]
                for tx in range(taps):
                    qx = ix[X, tx]
                    s = sy * wx[X, tx]
                    wt = (s * lut[np.uint32(abs(lb[qy, qx] - bp))] * lut[np.uint32(abs(lg[qy, qx] - gp))]
                          * lut[np.uint32(abs(lr[qy, qx] - rp))])
                    num += wt * low[qy, qx]
                    den += wt
                    if s > nearest_w:
                        nearest_w = s
                        nearest_d = low[qy, qx]
            # No nearby low-res colour resembles p's (den = 0 after the table floor): take the nearest sample.
            out[Y, X] = num / den if den > 0 else nearest_d
    return out
