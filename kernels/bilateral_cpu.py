"""Fast exact CPU path of the joint bilateral filter (Numba, parallel over rows), and the live-mode upsampler.

Why it is fast: the range weight exp(−(Δb²+Δg²+Δr²)/2σr²) factors into three lookups in one table (one per
channel difference), the spatial weight is one entry of a precomputed (2r+1)² table, and the window is walked
one offset at a time across a whole output row (a row stencil): each inner loop runs over contiguous, 0-based
slices (no negative-index wrapping) and touches few arrays, so the sums vectorise. Per pixel the terms arrive
in the same order as a per-pixel window walk, which it replaced at 1.3-2.1x the speed (bench/RESULTS.md).
The weight loop itself stays scalar (LLVM declines the gathers), so it is kept short: each pixel's colour is
one packed word (`_pack`), one subtraction gives all three signed differences, and a 511-entry table indexed
by 255 + Δ (`_signed_lut`, the same values as lut[|Δ|]) needs no abs: 5 loads a weight, not 9 (1.4x).
The tables are floored (see `kernels.bilateral.WEIGHT_FLOOR`) so no product of weights is a float32
denormal: denormal arithmetic made this loop about 16x slower.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

import kernels.numba_cache  # noqa: F401 (first: every cached kernel's stamp is the whole package's sources)


def guide_planes(guide_bgr: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 → 3xHxW int32: contiguous planes; int32 differences index the table without widening."""
    return np.ascontiguousarray(np.moveaxis(guide_bgr, -1, 0), dtype=np.int32)


@njit(cache=True, nogil=True)
def _divide(num: np.ndarray, den: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover (compiled)
    """out = num / den, correctly rounded: under fastmath a vectorised division becomes an approximate
    reciprocal, 1 ulp off (d / 1 != d), so this loop is compiled without it."""
    for x in range(out.shape[0]):
        out[x] = num[x] / den[x]


# The packed colour word: B, G, R in 10-bit fields. A neighbour's word carries 255 in every field on top
# (`_BIAS`), so Q − P holds 255 + Δ ∈ [0, 510] in each field: no field borrows from the next.
_SHIFT_B = np.uint32(20)
_SHIFT_G = np.uint32(10)
_FIELD = np.uint32(1023)
_BIAS = np.uint32((255 << 20) | (255 << 10) | 255)


@njit(cache=True, nogil=True)
def _signed_lut(lut: np.ndarray) -> np.ndarray:  # pragma: no cover (compiled)
    """table[255 + Δ] = lut[|Δ|] for Δ = −255..255: a signed difference indexes it without abs."""
    table = np.empty(511, np.float32)
    for i in range(511):
        table[i] = lut[abs(i - 255)]
    return table


@njit(cache=True, nogil=True)
def _pack(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover (compiled)
    """3xHxW channel values 0..255 → (P, Q) HxW uint32: P = B<<20 | G<<10 | R, Q = P + `_BIAS`. Serial: a
    parallel pass of its own adds a fork and join, which on a busy machine cost more than the pass (~0.1 %
    of the filter's time)."""
    h = planes.shape[1]
    w = planes.shape[2]
    p = np.empty((h, w), np.uint32)
    q = np.empty((h, w), np.uint32)
    for y in range(h):
        for x in range(w):
            v = ((np.uint32(planes[0, y, x]) << _SHIFT_B) | (np.uint32(planes[1, y, x]) << _SHIFT_G)
                 | np.uint32(planes[2, y, x]))
            p[y, x] = v
            q[y, x] = v + _BIAS
    return p, q


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def joint_bilateral_planes(disparity: np.ndarray, planes: np.ndarray, lut: np.ndarray,
                           spatial: np.ndarray, radius: int) -> np.ndarray:  # pragma: no cover (compiled)
    """The exact filter: `spatial` is the (2r+1)x(2r+1) table, `lut[|Δ|]` the per-channel range factor,
    `planes` the guide's 3xHxW channels (values 0..255, `guide_planes`)."""
    h, w = disparity.shape
    table = _signed_lut(lut)
    packed_p, packed_q = _pack(planes)
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
                cq = packed_q[qy, p0 + dx:p1 + dx]
                cp = packed_p[y, p0:p1]
                wt = weight[:n]
                for t in range(n):  # unsigned fields as indices: no wrap-around checks
                    c = cq[t] - cp[t]
                    wt[t] = (ws * table[c >> _SHIFT_B] * table[(c >> _SHIFT_G) & _FIELD]
                             * table[c & _FIELD])
                dq = disparity[qy, p0 + dx:p1 + dx]
                num_p = num[p0:p1]
                den_p = den[p0:p1]
                for t in range(n):
                    num_p[t] += wt[t] * dq[t]
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


@njit(cache=True, nogil=True)
def _column_runs(index: np.ndarray) -> np.ndarray:  # pragma: no cover (compiled)
    """Starts of the runs of columns sharing both low-res neighbours (the upsampling factor wide), then the
    width: the same for every row, so found once a call, not once a row."""
    full = index.shape[0]
    starts = np.empty(full + 1, np.int64)
    n = 0
    for x in range(full):
        if x == 0 or index[x, 0] != index[x - 1, 0] or index[x, 1] != index[x - 1, 1]:
            starts[n] = x
            n += 1
    starts[n] = full
    return starts[:n + 1]


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def joint_bilateral_upsample(low: np.ndarray, low_planes: np.ndarray, guide_bgr: np.ndarray, lut: np.ndarray,
                             sigma_low: float) -> np.ndarray:  # pragma: no cover (compiled)
    """Joint bilateral upsampling (Kopf et al. 2007) over the 2x2 low-res neighbours of each full-res pixel p:
    weights = Gaussian of the distance in low-res pixels x range weight between the full-res guide at p
    (uint8 HxWx3, read directly: no conversion pass) and the area-downsampled guide at q. Depth edges snap to
    the frame's edges instead of being smeared over the upsampling factor. 2x2 is written out by hand: a 4x4
    support measured no better on edges (bench/refine_quality.py) and the generic loop ran 4x slower.
    Scalar on purpose: the neighbours are constants of a run of columns, so a vectorised loop would gather
    them and the 12 table entries a pixel (measured no faster); the scalar loop is kept short instead (no abs
    through the signed table, unsigned column indices: no wrap-around checks)."""
    h, w = low.shape
    H = guide_bgr.shape[0]
    W = guide_bgr.shape[1]
    inv = 0.5 / (sigma_low * sigma_low)
    iy, wy = _upsample_taps(H, h, 2, inv)
    ix, wx = _upsample_taps(W, w, 2, inv)
    starts = _column_runs(ix)
    table = _signed_lut(lut)
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
        for run in range(starts.shape[0] - 1):
            # a run of columns between the same two low-res columns: their four neighbours' colours (+255, the
            # signed table's offset) and depths are loaded once, not per pixel
            x0 = np.uint64(ix[starts[run], 0])
            x1 = np.uint64(ix[starts[run], 1])
            b00, g00, r00, e00 = np.int32(b0[x0]) + 255, np.int32(g0[x0]) + 255, np.int32(r0[x0]) + 255, d0[x0]
            b01, g01, r01, e01 = np.int32(b0[x1]) + 255, np.int32(g0[x1]) + 255, np.int32(r0[x1]) + 255, d0[x1]
            b10, g10, r10, e10 = np.int32(b1[x0]) + 255, np.int32(g1[x0]) + 255, np.int32(r1[x0]) + 255, d1[x0]
            b11, g11, r11, e11 = np.int32(b1[x1]) + 255, np.int32(g1[x1]) + 255, np.int32(r1[x1]) + 255, d1[x1]
            for column in range(starts[run], starts[run + 1]):
                x = np.uint64(column)
                bp = np.int32(row[x, 0])
                gp = np.int32(row[x, 1])
                rp = np.int32(row[x, 2])
                wx0 = wx[x, 0]
                wx1 = wx[x, 1]
                w00 = (wy0 * wx0 * table[np.uint32(b00 - bp)] * table[np.uint32(g00 - gp)]
                       * table[np.uint32(r00 - rp)])
                w01 = (wy0 * wx1 * table[np.uint32(b01 - bp)] * table[np.uint32(g01 - gp)]
                       * table[np.uint32(r01 - rp)])
                w10 = (wy1 * wx0 * table[np.uint32(b10 - bp)] * table[np.uint32(g10 - gp)]
                       * table[np.uint32(r10 - rp)])
                w11 = (wy1 * wx1 * table[np.uint32(b11 - bp)] * table[np.uint32(g11 - gp)]
                       * table[np.uint32(r11 - rp)])
                den = w00 + w01 + w10 + w11
                if den > 0:
                    out_row[x] = (w00 * e00 + w01 * e01 + w10 * e10 + w11 * e11) / den
                else:  # no neighbour's colour resembles p's (all range weights floored to 0): nearest sample
                    if wy0 >= wy1:
                        out_row[x] = e00 if wx0 >= wx1 else e01
                    else:
                        out_row[x] = e10 if wx0 >= wx1 else e11
    return out
