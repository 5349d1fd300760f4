"""Fast exact CPU path of the joint bilateral filter (Numba, parallel over rows), and the live-mode upsampler.

Why it is fast: the range weight exp(−(Δb²+Δg²+Δr²)/2σr²) factors into three lookups in one 256-entry
table (one per channel difference), the spatial weight is one entry of a precomputed (2r+1)² table, and
the window is walked one offset at a time across a whole output row (a row stencil): each inner loop runs
over contiguous, 0-based slices (no negative-index wrapping) and touches few arrays, so LLVM vectorises
it, the lookups as gathers. Per pixel the terms arrive in the same order as a per-pixel window walk,
which it replaced at 1.3-2.1x the speed (bench/RESULTS.md). The tables are floored (see
`kernels.bilateral.WEIGHT_FLOOR`) so no product of weights is a float32 denormal: denormal arithmetic
made this loop about 16x slower.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


def guide_planes(guide_bgr: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 → 3xHxW int32: contiguous planes; int32 differences index the table without widening."""
    return np.ascontiguousarray(np.moveaxis(guide_bgr, -1, 0), dtype=np.int32)


@njit(cache=True, nogil=True)
def _divide(num: np.ndarray, den: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover (compiled)
    """out = num / den, correctly rounded: under fastmath a vectorised division becomes an approximate
    reciprocal, 1 ulp off (d / 1 != d), so this loop is compiled without it."""
    for x in range(out.shape[0]):
        out[x] = num[x] / den[x]


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
        sums = np.zeros((3, w), np.float32)  # numerator, denominator, one offset's weights
        num = sums[0]
        den = sums[1]
        weight = sums[2]
        for qy in range(max(0, y - radius), min(h, y + radius + 1)):
            spatial_row = spatial[qy - y + radius]
            for dx in range(-radius, radius + 1):
                # output columns [p0, p1) read q = p + dx inside the image: q outside is skipped, no padding
                p0 = max(0, -dx)
                p1 = min(w, w - dx)
                n = p1 - p0
                if n <= 0:  # an offset wider than the image (a negative slice end would wrap)
                    continue
                ws = spatial_row[dx + radius]
                bq = b[qy, p0 + dx:p1 + dx]
                gq = g[qy, p0 + dx:p1 + dx]
                rq = r[qy, p0 + dx:p1 + dx]
                bp = b[y, p0:p1]
                gp = g[y, p0:p1]
                rp = r[y, p0:p1]
                wt = weight[:n]
                for t in range(n):  # uint32 indices: no wrap-around checks
                    wt[t] = (ws * lut[np.uint32(abs(bq[t] - bp[t]))] * lut[np.uint32(abs(gq[t] - gp[t]))]
                             * lut[np.uint32(abs(rq[t] - rp[t]))])
                dq = disparity[qy, p0 + dx:p1 + dx]
                num_p = num[p0:p1]
                for t in range(n):
                    num_p[t] += wt[t] * dq[t]
                den_p = den[p0:p1]
                for t in range(n):
                    den_p[t] += wt[t]
        _divide(num, den, out[y])  # den ≥ ws(0)·wr(0) = 1: q = p is always in the window
    return out


@njit(cache=True)
def _upsample_taps(full: int, low: int, taps: int, inv_two_sigma2: float) -> tuple[np.ndarray, np.ndarray]:
    """For each full-res coordinate: the `taps` nearest low-res indices (clipped into the image) and their
    Gaussian weights in low-res pixels; a tap that falls outside the image gets weight 0, i.e. is skipped."""
    index = np.empty((full, taps), np.int64)
    weight = np.zeros((full, taps), np.float32)
    for i in range(full):
        # pixel-centre alignment, as cv2.resize: centre = (i + 0.5) * low / full - 0.5. Its floor in integers:
        # where the centre is a whole number (every pixel at scale 1, every third at 3) float rounding,
        # which differs with FMA contraction, would pick either side's pair of taps.
        twice = (2 * i + 1) * low - full
        centre = twice / (2.0 * full)
        first = twice // (2 * full) - taps // 2 + 1
        for t in range(taps):
            q = first + t
            index[i, t] = min(max(q, 0), low - 1)
            value = np.exp(-inv_two_sigma2 * (q - centre) ** 2)
            # Zero below 1e-4: a product wy·wx·lut·lut·lut then stays a normal float32 (denormals are ~10x slower).
            if 0 <= q < low and value >= 1e-4:
                weight[i, t] = value
    return index, weight


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def joint_bilateral_upsample(low: np.ndarray, low_planes: np.ndarray, guide_bgr: np.ndarray, lut: np.ndarray,
                             sigma_low: float) -> np.ndarray:  # pragma: no cover (compiled)
    """Joint bilateral upsampling (Kopf et al. 2007) over the 2x2 low-res neighbours of each full-res pixel p:
    weights = Gaussian of the distance in low-res pixels x range weight between the full-res guide at p
    (uint8 HxWx3, read directly: no conversion pass) and the area-downsampled guide at q. Depth edges snap to
    the frame's edges instead of being smeared over the upsampling factor. 2x2 is written out by hand: a 4x4
    support measured no better on edges (bench/refine_quality.py) and the generic loop ran 4x slower."""
    h, w = low.shape
    H = guide_bgr.shape[0]
    W = guide_bgr.shape[1]
    inv = 0.5 / (sigma_low * sigma_low)
    iy, wy = _upsample_taps(H, h, 2, inv)
    ix, wx = _upsample_taps(W, w, 2, inv)
    lb = low_planes[0]
    lg = low_planes[1]
    lr = low_planes[2]
    out = np.empty((H, W), np.float32)
    for Y in prange(H):
        row = guide_bgr[Y]
        out_row = out[Y]
        wy0 = wy[Y, 0]
        wy1 = wy[Y, 1]
        b0, g0, r0, d0 = lb[iy[Y, 0]], lg[iy[Y, 0]], lr[iy[Y, 0]], low[iy[Y, 0]]
        b1, g1, r1, d1 = lb[iy[Y, 1]], lg[iy[Y, 1]], lr[iy[Y, 1]], low[iy[Y, 1]]
        X = 0
        while X < W:
            # a run of columns between the same two low-res columns (the upsampling factor wide): their four
            # neighbours' colours and depths are loaded once, not per pixel
            x0 = ix[X, 0]
            x1 = ix[X, 1]
            end = X + 1
            while end < W and ix[end, 0] == x0 and ix[end, 1] == x1:
                end += 1
            b00, g00, r00, e00 = np.int32(b0[x0]), np.int32(g0[x0]), np.int32(r0[x0]), d0[x0]
            b01, g01, r01, e01 = np.int32(b0[x1]), np.int32(g0[x1]), np.int32(r0[x1]), d0[x1]
            b10, g10, r10, e10 = np.int32(b1[x0]), np.int32(g1[x0]), np.int32(r1[x0]), d1[x0]
            b11, g11, r11, e11 = np.int32(b1[x1]), np.int32(g1[x1]), np.int32(r1[x1]), d1[x1]
            for x in range(X, end):
                bp = np.int32(row[x, 0])
                gp = np.int32(row[x, 1])
                rp = np.int32(row[x, 2])
                wx0 = wx[x, 0]
                wx1 = wx[x, 1]
                w00 = wy0 * wx0 * lut[abs(b00 - bp)] * lut[abs(g00 - gp)] * lut[abs(r00 - rp)]
                w01 = wy0 * wx1 * lut[abs(b01 - bp)] * lut[abs(g01 - gp)] * lut[abs(r01 - rp)]
                w10 = wy1 * wx0 * lut[abs(b10 - bp)] * lut[abs(g10 - gp)] * lut[abs(r10 - rp)]
                w11 = wy1 * wx1 * lut[abs(b11 - bp)] * lut[abs(g11 - gp)] * lut[abs(r11 - rp)]
                den = w00 + w01 + w10 + w11
                if den > 0:
                    out_row[x] = (w00 * e00 + w01 * e01 + w10 * e10 + w11 * e11) / den
                else:  # no neighbour's colour resembles p's (all range weights floored to 0): nearest sample
                    if wy0 >= wy1:
                        out_row[x] = e00 if wx0 >= wx1 else e01
                    else:
                        out_row[x] = e10 if wx0 >= wx1 else e11
            X = end
    return out
