"""The CPU depth of field's constants and the small Numba helpers its passes share: the reduced gather's share of
a CoC (`_share`), a tap's coverage, a row's largest value, and the row products the stencils add (`kernels.dof_cpu`
describes the passes)."""
from __future__ import annotations

import math

import numpy as np
from numba import njit

import kernels.numba_cache  # noqa: F401 (first: every cached kernel's stamp is the whole package's sources)
from kernels.dof_reference import BEHIND_NEAR_PX

_INV_PI = 1.0 / math.pi
# float32 constants: a float64 literal would widen the vector loops' arithmetic to float64
_ZERO = np.float32(0.0)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_TINY = np.float32(1e-30)
_NO_FAR = np.float32(-1e30)  # far radius of a pixel outside the far field: its every coverage clamps to 0
# The exact gathers' columns go by chunks of CHUNK, one 8-lane vector step each (`_reach_masks`)
CHUNK = 8
CHUNK_SHIFT = 3  # log2(CHUNK): a column's chunk is x >> CHUNK_SHIFT, also below 0
# The near field is gathered exactly below a CoC of NEAR_EXACT * s (cross-fading from NEAR_EXACT * s - 1). The
# blocks' own box and the bilinear tent spread a disc's light ~1.5 s px past its rim: from s to 2 s, where that is
# as wide as the disc, a blurred foreground's edge over black ran on 4-5 px as a grey band ending in a hard line
# (39-44 levels off the reference on a synthetic edge, 31.7 on the astronaut); its coverage summed to 0.89-0.95
# and let the blocks' backdrop, reaching ~1.5 s px too far, show through (35 levels). Below 2 s exact, both 0.
NEAR_EXACT = 2
# The far field hands over at s (`_share_shift`) unless asked for exact_far (`DofPlan.far_exact`), though its blocks
# spread a bright background as far (34-44 levels on a synthetic edge at radius 6-8.5, s = 5). Gathered exactly below
# FAR_EXACT * s that edge is rounding (0.5 levels) but a portrait costs more (kernels/dof.py: FAR_EXACT).
N_SUMS = 17  # per-column sums of the reduce pass (listed there)
# fastmath without reassociation: sums that must stay in their order (LLVM otherwise pairs them up)
_ORDERED = {"nnan", "ninf", "nsz", "arcp", "contract", "afn"}
# and without fusing a * b + c either: the exact gathers, whose taps at the frame's sides (one column at a time) must
# add what their 8-lane steps add, bit for bit. Numba gives every instruction of a function its flags, the 8-lane
# intrinsics' too; under fastmath LLVM fused and reassociated the two forms alike on one CPU (Skylake-X) and 1 ulp
# apart at times on others (Haswell, Zen 4 and 5, x86-64 without FMA). Unfused, each operation rounds alike in a lane
# and in a scalar, on every CPU (tests/test_dof_cpus24.py); 1-5 % slower (bench/RESULTS.md, 24th session)
_UNFUSED = {"nnan", "ninf", "nsz", "arcp", "afn"}
# and without reciprocal approximations (arcp, afn) either: the per-block divisions and square roots exact, as in
# the CUDA source (the block-by-block loop this replaced divided by s through a reciprocal: radii 1 ulp apart
# where s is no power of two; under both flags the vector loops' reciprocals moved the block means too)
_EXACT = {"nnan", "ninf", "nsz", "contract"}


@njit(cache=True, fastmath=True, error_model="numpy")
def _share_shift(s):
    """The `shift` of `_share` for reduction factor s (at s == 1 the reduced gather takes every CoC)."""
    return np.float32(s - 1.0) if s > 1 else np.float32(-1e30)


@njit(cache=True, fastmath=True, error_model="numpy")
def _far_shift(s, far_exact):
    """The far field's `shift` of `_share`: exact below far_exact * s (1, or FAR_EXACT where asked: `DofPlan`)."""
    return np.float32(far_exact * s - 1.0) if s > 1 else np.float32(-1e30)


@njit(cache=True, fastmath=True, error_model="numpy")
def _near_shift(s):
    """The `shift` of `_share` for the near field (NEAR_EXACT)."""
    return np.float32(NEAR_EXACT * s - 1.0) if s > 1 else np.float32(-1e30)


@njit(cache=True, fastmath=True, error_model="numpy")
def _share(r, shift):
    """Share of a CoC r handled by the reduced gather; the rest is gathered exactly at full resolution.

    A CoC below s - 1 cannot be represented at 1/s resolution (the block alone blurs more), so it is
    gathered at full resolution, where its window is at most (2s + 1)^2; above s the reduced gather
    takes over; between the two the weights cross-fade linearly. The near field's shift is 2 s - 1
    (`_near_shift`, NEAR_EXACT): windows up to (4s + 1)^2.
    """
    return min(max(r - shift, _ZERO), _ONE)


@njit(cache=True, fastmath=True, error_model="numpy")
def _proximity(d):
    """`dof_reference.behind_proximity` in float32: a pixel not near's weight in a near pixel's backdrop."""
    u = d * np.float32(1.0 / BEHIND_NEAR_PX)
    u2 = u * u
    return _ONE / (_ONE + u2 * u2)


@njit(cache=True, fastmath=True, error_model="numpy")
def _coverage(cov):
    return min(max(cov, _ZERO), _ONE)


@njit(cache=True, fastmath=True, error_model="numpy")
def _max(values):
    """The largest of a non-empty float32 row. Eight running maxima: one is a chain of dependent steps
    that LLVM does not vectorise (nor does ndarray.max(), which keeps NaN semantics); 3.5x faster."""
    n = values.shape[0]
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = values[0]
    end = n - n % 8
    for i in range(0, end, 8):
        m0 = max(m0, values[i])
        m1 = max(m1, values[i + 1])
        m2 = max(m2, values[i + 2])
        m3 = max(m3, values[i + 3])
        m4 = max(m4, values[i + 4])
        m5 = max(m5, values[i + 5])
        m6 = max(m6, values[i + 6])
        m7 = max(m7, values[i + 7])
    top = max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))
    for i in range(end, n):
        top = max(top, values[i])
    return top


@njit(cache=True, fastmath=True, error_model="numpy")
def _add_product(dst, a, b):
    """dst += a * b over 0-based slices: Numba vectorises such a loop (an index that could be negative,
    as in `dst[x + dx]`, brings wrap-around handling that stops it). Callers skip empty ranges first:
    a slice whose end came out negative would wrap and not be empty."""
    for j in range(dst.shape[0]):
        dst[j] += a[j] * b[j]


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _add_weighted4(dst, c0, p0, p1, w, src, qy, q0):
    """dst[c0 + ch, p0:p1] += w * src[ch, qy, q0:q0 + p1 - p0] for the four channels ch in one loop. Four
    `_add_product` calls loaded the weights four times and paid each call's set-up: the exact far gather took
    15 % longer. Nine arrays are few enough for LLVM's run-time overlap checks: it still vectorises. The same
    products in the same order: the same sums, bit for bit."""
    n = p1 - p0
    d0 = dst[c0, p0:p1]
    d1 = dst[c0 + 1, p0:p1]
    d2 = dst[c0 + 2, p0:p1]
    d3 = dst[c0 + 3, p0:p1]
    s0 = src[0, qy, q0:q0 + n]
    s1 = src[1, qy, q0:q0 + n]
    s2 = src[2, qy, q0:q0 + n]
    s3 = src[3, qy, q0:q0 + n]
    for j in range(n):
        wj = w[j]
        d0[j] += wj * s0[j]
        d1[j] += wj * s1[j]
        d2[j] += wj * s2[j]
        d3[j] += wj * s3[j]
