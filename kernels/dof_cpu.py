"""CPU depth of field: three Numba passes (reduce, gather at reduced resolution, full-resolution composite).

The semantics are those of `kernels.dof` (and `dof_reference`, which this equals at scale 1).
Why a reduced-resolution gather: a full-resolution disc gather at a 16 px radius costs ~800
samples per pixel, about a second per VGA frame on two cores; at scale s the same disc is
(16/s)^2 * pi samples on 1/s^2 of the pixels. `kernels/depth_of_field.cu` mirrors these passes.

Why row stencils: every gather here runs one window offset at a time across a whole row, on planar
(channel-first) arrays, with no branch inside, so the inner loops compile to SIMD (8 floats at a time).
Per-pixel gathers with early exits, the first version, did not vectorise and were 3-5x slower. A tap
that a pixel's own disc would skip adds exactly 0 (coverage 0, or a source with zero colour and weight),
so the sums are the same; whole rows and offsets beyond every disc around are skipped.
The exact full-resolution gathers (CoC below s, near CoC below 2 s) are the exception: where the depth varies,
their sources lie in short runs (~18 columns on a smooth random depth), too short for LLVM's vector loops (16
floats and more a step: shorter runs went scalar, ~4 ns a tap). They run over the 8-column chunks that hold a
source or receiver reaching each whole distance (`_reach_masks`), one explicit 8-lane step a chunk (`_near_taps8`,
`_far_taps8`), in the order the row stencils took: the same sums, bit for bit.
"""
from __future__ import annotations

import functools
import math
import threading
import time

import numpy as np
import numba
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

from kernels.cpu_threads import parallel_section
from kernels.dof import FOCUS_RADIUS, GAMMA, HIGHLIGHT_THRESHOLD, RAMP_SPREAD, DofPlan, plan
from kernels.dof_reference import BEHIND_FADE

_LINEAR_LUT = ((np.arange(256, dtype=np.float64) / 255.0) ** GAMMA).astype(np.float32)
_INV_PI = 1.0 / math.pi
# float32 constants: a float64 literal would widen the vector loops' arithmetic to float64
_ZERO = np.float32(0.0)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_TINY = np.float32(1e-30)
_NO_FAR = np.float32(-1e30)  # far radius of a pixel outside the far field: its every coverage clamps to 0
# The exact gathers' columns go by chunks of CHUNK, one 8-lane vector step each (`_reach_masks`)
CHUNK = 8
# The near field is gathered exactly below a CoC of NEAR_EXACT * s (cross-fading from NEAR_EXACT * s - 1). The
# blocks' own box and the bilinear tent spread a disc's light ~1.5 s px past its rim: from s to 2 s, where that is
# as wide as the disc, a blurred foreground's edge over black ran on 4-5 px as a grey band ending in a hard line
# (39-44 levels off the reference on a synthetic edge, 31.7 on the astronaut); its coverage summed to 0.89-0.95
# and let the blocks' backdrop, reaching ~1.5 s px too far, show through (35 levels). Below 2 s exact, both 0.
NEAR_EXACT = 2
# The far field still hands over at s (`_share_shift`), though its blocks spread a bright background as far (34-44
# levels on a synthetic edge at radius 6-8.5, s = 5): gathered exactly below 2 s, the synthetic portrait cost 41 %
# more at 1280x720 and 25 % at 640x480 (blur 10), for a whole-frame mean 1.01 -> 0.99 on a real frame
# (tests/test_dof_block_seam.py: expected failures; bench/RESULTS.md).
N_SUMS = 17  # per-column sums of the reduce pass (listed there)
# fastmath without reassociation: sums that must stay in their order (LLVM otherwise pairs them up)
_ORDERED = {"nnan", "ninf", "nsz", "arcp", "contract", "afn"}
# and without reciprocal approximations (arcp, afn) either: the per-block divisions and square roots exact, as in
# the CUDA source (the block-by-block loop this replaced divided by s through a reciprocal: radii 1 ulp apart
# where s is no power of two; under both flags the vector loops' reciprocals moved the block means too)
_EXACT = {"nnan", "ninf", "nsz", "contract"}


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (LLVM's fma), for loops whose `contract` fusion LLVM's vectoriser may lose: it
    multiplies before its shuffles and adds after them, then the two do not fuse, and the values differ."""
    def codegen(context, builder, signature, args):
        return builder.fma(*args)
    return a(a, b, c), codegen


_LANES = ir.VectorType(ir.FloatType(), CHUNK)
_CONTRACT = ("contract",)  # as fastmath lets LLVM fuse a * b + c; no reassociation: the order written is the order


def _lanes_at(context, builder, array_type, array, indices):
    """Pointer to CHUNK floats from array[indices] on (the last axis must be contiguous: rows of C arrays)."""
    arr = context.make_array(array_type)(context, builder, array)
    shape = cgutils.unpack_tuple(builder, arr.shape, array_type.ndim)
    strides = cgutils.unpack_tuple(builder, arr.strides, array_type.ndim)
    index = [context.cast(builder, v, t, types.int64) for v, t in indices]
    ptr = cgutils.get_item_pointer2(context, builder, arr.data, shape, strides, array_type.layout, index,
                                    wraparound=False, boundscheck=False)
    return builder.bitcast(ptr, _LANES.as_pointer())


def _splat(builder, value):
    lanes = builder.insert_element(ir.Constant(_LANES, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(lanes, ir.Constant(_LANES, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), CHUNK), [0] * CHUNK))


def _lane_min(builder, a, b):
    """min(a, b) as Numba lowers it (b where b < a), ties and zero signs alike."""
    return builder.select(builder.fcmp_ordered("<", b, a), b, a)


def _lane_max(builder, a, b):
    return builder.select(builder.fcmp_ordered(">", b, a), b, a)


def _lane_clamp01(builder, v):
    """`_coverage` and `_share`'s clamp: min(max(v, 0), 1)."""
    return _lane_min(builder, _lane_max(builder, v, ir.Constant(_LANES, [0.0] * CHUNK)),
                     ir.Constant(_LANES, [1.0] * CHUNK))


def _accumulate4(context, builder, acc_type, acc, pre_type, pre, qy, p0, q0, w):
    """acc[ch, p0:p0 + CHUNK] += w * pre[ch, qy, q0:q0 + CHUNK] for ch < 4, as `_add_weighted4` adds them."""
    for ch in range(4):
        channel = (ir.Constant(ir.IntType(64), ch), types.int64)
        src = builder.load(_lanes_at(context, builder, pre_type, pre, [channel, qy, q0]), align=4)
        dst = _lanes_at(context, builder, acc_type, acc, [channel, p0])
        total = builder.fadd(builder.load(dst, align=4), builder.fmul(w, src, flags=_CONTRACT), flags=_CONTRACT)
        builder.store(total, dst, align=4)


@intrinsic
def _near_taps8(typingctx, near, pre, coc, exact_w, qy, p0, q0, edge):
    """`_near_taps` of the CHUNK receivers p0.. from the sources q0.. (all in the frame) as one 8-lane step: weight
    `_coverage(coc + edge) * exact_w`, the colours and the coverage added as the row stencils added them."""
    def codegen(context, builder, signature, args):
        near_t, pre_t, coc_t, ew_t, qy_t, p0_t, q0_t, edge_t = signature.args
        near_v, pre_v, coc_v, ew_v, qy_v, p0_v, q0_v, edge_v = args
        qy_i, p0_i, q0_i = (qy_v, qy_t), (p0_v, p0_t), (q0_v, q0_t)
        c = builder.load(_lanes_at(context, builder, coc_t, coc_v, [qy_i, q0_i]), align=4)
        ew = builder.load(_lanes_at(context, builder, ew_t, ew_v, [qy_i, q0_i]), align=4)
        edge32 = _splat(builder, context.cast(builder, edge_v, edge_t, types.float32))
        w = builder.fmul(_lane_clamp01(builder, builder.fadd(c, edge32, flags=_CONTRACT)), ew, flags=_CONTRACT)
        _accumulate4(context, builder, near_t, near_v, pre_t, pre_v, qy_i, p0_i, q0_i, w)
        cover = _lanes_at(context, builder, near_t, near_v, [(ir.Constant(ir.IntType(64), 4), types.int64), p0_i])
        builder.store(builder.fadd(builder.load(cover, align=4), w, flags=_CONTRACT), cover, align=4)
        return context.get_dummy_value()
    return types.void(near, pre, coc, exact_w, qy, p0, q0, edge), codegen


@intrinsic
def _far_taps8(typingctx, exact, pre, far_r, exact_w, y, qy, p0, q0, edge, shift):
    """`_far_taps` of the CHUNK receivers p0.. of row y from the sources q0.. of row qy (all in the frame) as one
    8-lane step. The weight's factors in the order LLVM put `_far_taps`' (reassociated under fastmath): (exact
    share x larger inverse area) x coverage; another order rounds differently."""
    def codegen(context, builder, signature, args):
        ex_t, pre_t, fr_t, ew_t, y_t, qy_t, p0_t, q0_t, edge_t, shift_t = signature.args
        ex_v, pre_v, fr_v, ew_v, y_v, qy_v, p0_v, q0_v, edge_v, shift_v = args
        y_i, qy_i, p0_i, q0_i = (y_v, y_t), (qy_v, qy_t), (p0_v, p0_t), (q0_v, q0_t)
        rq = builder.load(_lanes_at(context, builder, fr_t, fr_v, [qy_i, q0_i]), align=4)
        iaq = builder.load(_lanes_at(context, builder, ew_t, ew_v, [qy_i, q0_i]), align=4)
        rp = builder.load(_lanes_at(context, builder, fr_t, fr_v, [y_i, p0_i]), align=4)
        iap = builder.load(_lanes_at(context, builder, ew_t, ew_v, [y_i, p0_i]), align=4)
        shift32 = _splat(builder, context.cast(builder, shift_v, shift_t, types.float32))
        edge32 = _splat(builder, context.cast(builder, edge_v, edge_t, types.float32))
        share_q = _lane_clamp01(builder, builder.fsub(rq, shift32, flags=_CONTRACT))
        share_p = _lane_clamp01(builder, builder.fsub(rp, shift32, flags=_CONTRACT))
        exact_share = builder.fsub(ir.Constant(_LANES, [1.0] * CHUNK), builder.fmul(share_q, share_p, flags=_CONTRACT),
                                   flags=_CONTRACT)
        cover = _lane_clamp01(builder, builder.fadd(_lane_min(builder, rq, rp), edge32, flags=_CONTRACT))
        w = builder.fmul(builder.fmul(exact_share, _lane_max(builder, iaq, iap), flags=_CONTRACT), cover,
                         flags=_CONTRACT)
        _accumulate4(context, builder, ex_t, ex_v, pre_t, pre_v, qy_i, p0_i, q0_i, w)
        return context.get_dummy_value()
    return types.void(exact, pre, far_r, exact_w, y, qy, p0, q0, edge, shift), codegen


@njit(cache=True, fastmath=True, error_model="numpy")
def _share_shift(s):
    """The `shift` of `_share` for reduction factor s (at s == 1 the reduced gather takes every CoC)."""
    return np.float32(s - 1.0) if s > 1 else np.float32(-1e30)


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


@njit(cache=True, fastmath=_EXACT, error_model="numpy")
def _reduced_radius(radius, s):
    """The reduced gather's disc radius, in reduced pixels, for a block of mean radius `radius` px: narrowed so
    that with the blur of the block and of the bilinear composite it spreads as wide as the disc (kernels.dof)."""
    if s == 1:
        return radius
    return np.sqrt(max(radius * radius - np.float32(s * s - 1), np.float32(0.25 * s * s))) / np.float32(s)


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
def _product(dst, a, b):
    for j in range(dst.shape[0]):
        dst[j] = a[j] * b[j]


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


@njit(cache=True, fastmath=True, error_model="numpy")
def _small_span(values, span):
    """The first and last column where `values` >= 0 (the row's small pixels) into `span`; returns their
    largest value (-1: none)."""
    width = values.shape[0]
    top = _max(values)
    span[0] = width
    span[1] = -1
    if top >= 0.0:
        lo = 0
        while values[lo] < 0.0:
            lo += 1
        hi = width - 1
        while values[hi] < 0.0:
            hi -= 1
        span[0] = lo
        span[1] = hi
    return top if top >= 0.0 else np.float32(-1.0)


@njit(cache=True, fastmath=_ORDERED, error_model="numpy")
def _block_sum(src, s, dst):
    """dst[b] = src[s b] + src[s b + 1] + ... + src[s b + s - 1], left to right, for every b of dst (whole blocks).
    For s <= 5 the stride is a constant: LLVM loads whole vectors and shuffles them apart (6x faster than the
    block's sums side by side). Not reassociated (`_ORDERED`): the same sums as one column after the other."""
    n = dst.shape[0]
    if s == 1:
        dst[:] = src[:n]
    elif s == 2:
        for b in range(n):
            dst[b] = src[2 * b] + src[2 * b + 1]
    elif s == 3:
        for b in range(n):
            dst[b] = src[3 * b] + src[3 * b + 1] + src[3 * b + 2]
    elif s == 4:
        for b in range(n):
            dst[b] = src[4 * b] + src[4 * b + 1] + src[4 * b + 2] + src[4 * b + 3]
    elif s == 5:
        for b in range(n):
            dst[b] = src[5 * b] + src[5 * b + 1] + src[5 * b + 2] + src[5 * b + 3] + src[5 * b + 4]
    else:
        for b in range(n):
            acc = src[s * b]
            for j in range(1, s):
                acc += src[s * b + j]
            dst[b] = acc


@njit(cache=True, fastmath=True, error_model="numpy")
def _block_extremes(lo, hi, s, dst_lo, dst_hi):
    """dst_lo[b] = min(lo[s b:s b + s]), dst_hi[b] = max(hi[s b:s b + s]) for every b of dst_lo (whole blocks)."""
    n = dst_lo.shape[0]
    if s == 4:
        for b in range(n):
            dst_lo[b] = min(min(lo[4 * b], lo[4 * b + 1]), min(lo[4 * b + 2], lo[4 * b + 3]))
            dst_hi[b] = max(max(hi[4 * b], hi[4 * b + 1]), max(hi[4 * b + 2], hi[4 * b + 3]))
    elif s == 5:
        for b in range(n):
            dst_lo[b] = min(min(min(lo[5 * b], lo[5 * b + 1]), min(lo[5 * b + 2], lo[5 * b + 3])), lo[5 * b + 4])
            dst_hi[b] = max(max(max(hi[5 * b], hi[5 * b + 1]), max(hi[5 * b + 2], hi[5 * b + 3])), hi[5 * b + 4])
    else:
        for b in range(n):
            a = lo[s * b]
            z = hi[s * b]
            for j in range(1, s):
                a = min(a, lo[s * b + j])
                z = max(z, hi[s * b + j])
            dst_lo[b] = a
            dst_hi[b] = z


@njit(cache=True, fastmath=_EXACT, error_model="numpy")
def _reduce_blocks(sums, colmin, colmax, s, rows, by, blocks, bmin, bmax, low_f, low_fr, low_n, low_nr, low_b,
                   low_br):
    """One row of blocks from its per-column sums (`_reduce`): each block's sums left to right, then the
    reduced fields, each a short loop across the row of blocks (SIMD)."""
    width = sums.shape[1]
    wl = blocks.shape[1]
    full = width // s  # the last block may be narrower: summed on its own, in the same order
    for k in range(N_SUMS):
        _block_sum(sums[k], s, blocks[k, :full])
    _block_extremes(colmin, colmax, s, bmin[:full], bmax[:full])
    if full < wl:
        x0 = full * s
        for k in range(N_SUMS):
            acc = sums[k, x0]
            for x in range(x0 + 1, width):
                acc += sums[k, x]
            blocks[k, full] = acc
        bmin[full] = colmin[x0]
        bmax[full] = colmax[x0]
        for x in range(x0 + 1, width):
            bmin[full] = min(bmin[full], colmin[x])
            bmax[full] = max(bmax[full], colmax[x])
    # pixels a block: small integers, exact in float32
    n_full = np.float32(rows * s)
    n_last = np.float32(rows * (width - (wl - 1) * s))
    inv_full = np.float32(1.0) / n_full
    inv_last = np.float32(1.0) / n_last
    count = np.empty(wl, np.float32)
    inv_n = np.empty(wl, np.float32)
    for bx in range(wl):
        count[bx] = n_full if bx < full else n_last
        inv_n[bx] = inv_full if bx < full else inv_last
    for ch in range(4):
        _product(low_f[ch, by], blocks[ch], inv_n)
        _product(low_n[ch, by], blocks[6 + ch], inv_n)
    _product(low_n[4, by], blocks[10], inv_n)
    for ch in range(3):
        _product(low_b[ch, by], blocks[12 + ch], inv_n)
    # every pixel is near or not: the block's count of pixels not near, exactly (small integers in float32)
    for bx in range(wl):
        low_b[3, by, bx] = (count[bx] - blocks[15, bx]) * inv_n[bx]
    # radii of the reduced shares, in reduced pixels: each field's mean, narrowed (`_reduced_radius`), or in
    # a depth ramp the far field's smallest (kernels.dof: RAMP_SPREAD), as it is: narrowed too, the ramp's
    # colours spread less far than in the reference
    fr_row = low_fr[by]
    for bx in range(wl):
        if bmax[bx] - bmin[bx] > RAMP_SPREAD * s:
            radius = bmin[bx] / s
        else:
            radius = _reduced_radius(blocks[4, bx] / max(blocks[5, bx], _TINY), s)
        fr_row[bx] = radius if blocks[5, bx] > 0.0 else np.float32(-1.0)
    nr_row = low_nr[by]
    for bx in range(wl):
        near_radius = _reduced_radius(blocks[11, bx] / max(blocks[10, bx], _TINY), s)
        nr_row[bx] = near_radius if blocks[10, bx] > 0.0 else np.float32(-1.0)
    br_row = low_br[by]
    for bx in range(wl):
        br_row[bx] = blocks[16, bx] / (blocks[15, bx] * s) if blocks[15, bx] > 0.0 else np.float32(-1.0)


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _reduce(tasks, img, disp, s, focus, coc_scale, coc_max, boost, lut, coc, pre, exact_w, far_r,
            low_f, low_fr, low_n, low_nr, low_b, low_br, near_span, near_cmax, near_mask, far_span, far_rmax,
            far_mask):
    """Full resolution: CoC, premultiplied colour planes in linear light (h*B^2, h*G^2, h*R^2, h), the exact
    gathers' weight (`exact_w`: a far pixel's inverse disc area, a near pixel's share left to the exact gather
    over its area, 0 in focus: one plane for both, as each gather's coverage is 0 on the other field's pixels;
    a plane less to write, where the pass spends about a third of its time) and the far radius (`far_r`,
    `_NO_FAR` outside the far field). In-focus pixels get zeros: the gathers multiply them by weight 0 and must
    not meet uninitialised memory.
    Per s x s block: far and near premultiplied colour and weight of the reduced share (`_share`), near
    coverage (`low_n[4]`) and the radius of each field's reduced share in reduced pixels (-1: none);
    what lies behind the near field: the colour (linear light) and share of the pixels that are not near
    (`low_b`), and the mean radius of all near pixels in reduced pixels (`low_br`, -1: none).
    Per row: the columns spanned by its small near pixels and their largest CoC (-1: none), the same
    for its small far pixels, which the composite gathers exactly, and the chunks of those pixels that reach each
    whole distance (`far_mask`, `_reach_masks`), found here while the row is in cache, and the same for its small
    near pixels (`near_mask`).
    One row at a time, branch-free across the row (SIMD), block sums taken from per-column sums. Each thread
    takes a run of block rows and allocates its scratch once, not a dozen times a block row."""
    height, width = disp.shape
    hl, wl = low_fr.shape
    inv_thr = np.float32(1.0 / (1.0 - HIGHLIGHT_THRESHOLD))
    threshold = np.float32(HIGHLIGHT_THRESHOLD)
    boost32 = np.float32(boost)
    shift = _share_shift(s)
    near_shift = _near_shift(s)
    twelfth = np.float32(1.0 / 12.0)
    inv_pi = np.float32(_INV_PI)
    tasks = min(tasks, hl)
    for task in prange(tasks):
        # per-column sums over the block's rows: far B, G, R, h, radius, share; near B, G, R, h, share, radius;
        # not near B, G, R; near count, CoC
        sums = np.empty((N_SUMS, width), np.float32)
        share = np.empty(width, np.float32)
        far_share = np.empty(width, np.float32)
        blocks = np.empty((N_SUMS, wl), np.float32)
        bmin = np.empty(wl, np.float32)
        bmax = np.empty(wl, np.float32)
        behind = np.empty(width, np.float32)
        near_all = np.empty(width, np.float32)
        # per column, the smallest and largest far radius of the reduced share (a depth ramp spreads them)
        colmin = np.empty(width, np.float32)
        colmax = np.empty(width, np.float32)
        colour = np.empty((3, width), np.float32)
        lum = np.empty(width, np.float32)
        small = np.empty(width, np.float32)
        chunk_max = np.empty(width // CHUNK + 1, np.float32)
        for by in range(task * hl // tasks, (task + 1) * hl // tasks):
            y0 = by * s
            y1 = min(y0 + s, height)
            sums[:] = 0.0
            colmin[:] = 1e30
            colmax[:] = -1e30
            for y in range(y0, y1):
                img_row = img[y]
                # through a flat view the stride-3 byte loads vectorise (2.5x faster than img_row[x, ch])
                flat = img_row.reshape(3 * width)
                for ch in range(3):
                    plane = colour[ch]
                    for x in range(width):
                        v = np.float32(flat[3 * x + ch])
                        plane[x] = v * v  # linear light, gamma 2 (kernels.dof)
                if boost > 0.0:
                    for x in range(width):
                        lum[x] = (np.float32(0.0722) * lut[img_row[x, 0]] + np.float32(0.7152) * lut[img_row[x, 1]]
                                  + np.float32(0.2126) * lut[img_row[x, 2]])
                else:
                    lum[:] = 0.0
                d_row = disp[y]
                c_row = coc[y]
                hw_row = pre[3, y]
                ew_row = exact_w[y]
                fr_row = far_r[y]
                # short loops of few arrays each: LLVM vectorises a loop only when it can check at run time
                # that its arrays do not overlap, and gives up beyond a handful of them
                for x in range(width):
                    # clamped: a disparity outside [0, 1] blurs like the nearest extreme, not beyond it
                    c_row[x] = min(max((d_row[x] - focus) * coc_scale, -coc_max), coc_max)
                for x in range(width):
                    c = c_row[x]
                    hw = _ONE + boost32 * max(lum[x] - threshold, _ZERO) * inv_thr
                    hw_row[x] = hw if abs(c) > FOCUS_RADIUS else _ZERO  # in focus: the gathers never weigh it
                for ch in range(3):
                    _product(pre[ch, y], hw_row, colour[ch])
                for x in range(width):
                    c = c_row[x]
                    ia = inv_pi / (c * c + twelfth)
                    t_near = _share(c, near_shift)
                    ew_row[x] = (_ONE - t_near) * ia if c > FOCUS_RADIUS else (ia if c < -FOCUS_RADIUS else _ZERO)
                    share[x] = t_near if c > FOCUS_RADIUS else _ZERO
                for x in range(width):
                    c = c_row[x]
                    fr_row[x] = -c if c < -FOCUS_RADIUS else _NO_FAR
                    far_share[x] = _share(-c, shift) if c < -FOCUS_RADIUS else _ZERO
                _add_weighted4(sums, 0, 0, width, far_share, pre, y, 0)
                _add_weighted4(sums, 6, 0, width, share, pre, y, 0)
                _add_product(sums[4], far_share, fr_row)
                _add_product(sums[11], share, c_row)
                for x in range(width):
                    sums[5, x] += far_share[x]
                for x in range(width):
                    if far_share[x] > 0.0:
                        colmin[x] = min(colmin[x], fr_row[x])
                        colmax[x] = max(colmax[x], fr_row[x])
                for x in range(width):
                    sums[10, x] += share[x]
                for x in range(width):
                    behind[x] = _ONE if c_row[x] <= FOCUS_RADIUS else _ZERO
                    near_all[x] = _ONE - behind[x]
                for ch in range(3):
                    _add_product(sums[12 + ch], behind, colour[ch])
                _add_product(sums[16], near_all, c_row)
                for x in range(width):
                    sums[15, x] += near_all[x]
                for x in range(width):
                    c = c_row[x]
                    small[x] = -c if (c < -FOCUS_RADIUS) & (_share(-c, shift) < _ONE) else np.float32(-1.0)
                far_rmax[y] = _small_span(small, far_span[y])
                _reach_masks(small, far_span[y], chunk_max, far_mask[y])
                for x in range(width):
                    c = c_row[x]
                    small[x] = c if (c > FOCUS_RADIUS) & (_share(c, near_shift) < _ONE) else np.float32(-1.0)
                near_cmax[y] = _small_span(small, near_span[y])
                _reach_masks(small, near_span[y], chunk_max, near_mask[y])
            _reduce_blocks(sums, colmin, colmax, s, y1 - y0, by, blocks, bmin, bmax, low_f, low_fr, low_n, low_nr,
                           low_b, low_br)


@njit(cache=True, fastmath=True, error_model="numpy")
def _row_max(a):
    m = np.empty(a.shape[0], np.float32)
    for y in range(a.shape[0]):
        m[y] = _max(a[y])
    return m


@njit(cache=True, fastmath=True, error_model="numpy")
def _inverse_area(radius):
    """pi (r^2 + 1/12) inverted, the radius clamped to the pixel (a field's -1 included)."""
    out = np.empty_like(radius)
    for y in range(radius.shape[0]):
        r_row = radius[y]
        o_row = out[y]
        for x in range(radius.shape[1]):
            r = max(r_row[x], _HALF)
            o_row[x] = np.float32(_INV_PI) / (r * r + np.float32(1.0 / 12.0))
    return out


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _gather(low_f, low_fr, low_n, low_nr, low_b, low_br, rows, dist, far_acc, near_acc, behind_acc, near_rows):
    """Scatter-as-gather at reduced resolution: far field with the min-radius rule, near field by coverage.
    `dist[K + dy, K + dx]` tabulates |(dy, dx)| (K >= every window). Far output is zero where the pixel
    itself holds no reduced far content, its fifth channel 1 where it does (the composite's support);
    `near_rows[py]`: whether row py has any near coverage. Behind the near field: the pixels not near
    within the near pixels' own (mean) radius, uniform weights, where the block holds near pixels."""
    hl, wl = low_fr.shape
    kd = (dist.shape[0] - 1) // 2
    ia_far = _inverse_area(low_fr)
    ia_near = _inverse_area(low_nr)
    max_fr = _row_max(low_fr)
    max_nr = _row_max(low_nr)
    max_br = _row_max(low_br)
    max_bm = _row_max(low_b[3])  # rows of blocks holding no pixel that is not near add nothing behind
    for i in prange(hl):
        py = rows[i]
        rp = np.empty(wl, np.float32)
        for px in range(wl):
            rp[px] = max(low_fr[py, px], _HALF)
        iap = ia_far[py]
        far = np.zeros((4, wl), np.float32)
        near = np.zeros((5, wl), np.float32)
        behind = np.zeros((4, wl), np.float32)
        rb = np.empty(wl, np.float32)
        for px in range(wl):
            rb[px] = max(low_br[py, px], _HALF) if low_br[py, px] >= 0.0 else np.float32(-1e30)
        w = np.empty(wl, np.float32)
        rp_max = max(max_fr[py], FOCUS_RADIUS)
        # rows outside the frame: the far field skips them, the near field takes the edge row's blocks again
        for qv in range(py - kd, py + kd + 1):
            qy = min(max(qv, 0), hl - 1)
            drow = dist[kd + qv - py]
            # behind the near field: rows outside the frame skipped, and rows holding only near pixels
            if qv == qy and max_br[py] >= 0.0 and max_bm[qy] > 0.0:
                lim = max(max_br[py], FOCUS_RADIUS) + 0.5
                for dx in range(-kd, kd + 1):
                    d = drow[kd + dx]
                    if d >= lim:
                        continue
                    p0 = max(0, -dx)
                    p1 = min(wl, wl - dx)
                    n = p1 - p0
                    if n <= 0:
                        continue
                    rbs = rb[p0:p1]
                    ws = w[:n]
                    edge = _HALF - d
                    for j in range(n):
                        ws[j] = _coverage(rbs[j] + edge)
                    _add_weighted4(behind, 0, p0, p1, ws, low_b, qy, p0 + dx)
            if qv == qy and max_fr[qy] >= 0.0 and max_fr[py] >= 0.0:
                # radius min(r_q, r_p) (>= 0.5); 1/area of the smaller disc is the larger inverse
                lim = max(min(max_fr[qy], rp_max), FOCUS_RADIUS) + 0.5
                for dx in range(-kd, kd + 1):
                    d = drow[kd + dx]
                    if d >= lim:
                        continue
                    p0 = max(0, -dx)
                    p1 = min(wl, wl - dx)
                    n = p1 - p0
                    if n <= 0:  # the offset is wider than the frame (a negative slice end would wrap)
                        continue
                    # slices indexed from 0: Numba vectorises a loop only without negative-index wrapping
                    rq = low_fr[qy, p0 + dx:p1 + dx]
                    iaq = ia_far[qy, p0 + dx:p1 + dx]
                    rps = rp[p0:p1]
                    iaps = iap[p0:p1]
                    ws = w[:n]
                    edge = _HALF - d
                    for j in range(n):
                        ws[j] = _coverage(max(min(rq[j], rps[j]), _HALF) + edge) * max(iaq[j], iaps[j])
                    _add_weighted4(far, 0, p0, p1, ws, low_f, qy, p0 + dx)
            if max_nr[qy] >= 0.0:
                lim = max(max_nr[qy], FOCUS_RADIUS) + 0.5
                for dx in range(-kd, kd + 1):
                    d = drow[kd + dx]
                    if d >= lim:
                        continue
                    p0 = max(0, -dx)
                    p1 = min(wl, wl - dx)
                    n = p1 - p0  # <= 0: the offset is wider than the frame (a negative slice end would wrap)
                    edge = _HALF - d
                    if n > 0:
                        rq = low_nr[qy, p0 + dx:p1 + dx]
                        iaq = ia_near[qy, p0 + dx:p1 + dx]
                        ws = w[:n]
                        for j in range(n):
                            ws[j] = _coverage(max(rq[j], _HALF) + edge) * iaq[j]
                        _add_weighted4(near, 0, p0, p1, ws, low_n, qy, p0 + dx)
                        _add_product(near[4, p0:p1], ws, low_n[4, qy, p0 + dx:p1 + dx])
                    # the columns whose source lies beyond the frame's side take its edge block
                    side = wl - 1 if dx > 0 else 0
                    e0, e1 = (max(wl - dx, 0), wl) if dx > 0 else (0, min(-dx, wl))
                    if e1 > e0 and low_nr[qy, side] >= 0.0:
                        we = _coverage(max(low_nr[qy, side], _HALF) + edge) * ia_near[qy, side]
                        for ch in range(5):
                            value = we * low_n[ch, qy, side]
                            for px in range(e0, e1):
                                near[ch, px] += value
        for ch in range(4):
            for px in range(wl):
                far_acc[ch, py, px] = far[ch, px] if low_fr[py, px] >= 0.0 else _ZERO
        for px in range(wl):  # support: the composite's bilinear weights are renormalised over these blocks
            far_acc[4, py, px] = _ONE if low_fr[py, px] >= 0.0 else _ZERO
        for ch in range(5):
            for px in range(wl):
                near_acc[ch, py, px] = near[ch, px]
        for ch in range(4):
            for px in range(wl):
                behind_acc[ch, py, px] = behind[ch, px]
        near_rows[py] = _max(near[4]) > 0.0


@njit(cache=True, fastmath=_ORDERED, error_model="numpy")
def _near_taps(near, pre, coc, exact_w, qy, p0, p1, dx, edge):
    """near[:, p] += the small near tap of source (qy, p + dx) at distance 0.5 - edge, for p in [p0, p1): the
    colours weighed by `_coverage(coc + edge) * exact_w`, and that weight (coverage). A far source's `exact_w` is
    its inverse area, but its coverage here is 0 (CoC < -1/2). Not reassociated (`_ORDERED`), as `_near_taps8`."""
    for p in range(p0, p1):
        q = p + dx
        w = _coverage(coc[qy, q] + edge) * exact_w[qy, q]
        for ch in range(4):
            near[ch, p] += w * pre[ch, qy, q]
        near[4, p] += w


@njit(cache=True, fastmath=True, error_model="numpy")
def _add_small_near(y, coc, pre, exact_w, dist, near_span, near_cmax, near_mask, near):
    """Row y's share of the near pixels too small for the reduced gather, gathered exactly at full resolution
    (their discs reach less than 2 s + 1/2 px: NEAR_EXACT) into `near` (B, G, R, weight, coverage). A tap's weight
    depends on its source alone: each offset runs across the chunks of row qy holding a source that reaches its
    distance (`near_mask`, `_reach_masks`), moved onto the receivers; the taps left out add exactly 0. Each
    receiver takes its taps in the order of the row stencils this replaced (rows, then offsets, ascending): the
    same sums."""
    kd = (dist.shape[0] - 1) // 2
    height, width = coc.shape
    for qv in range(y - kd, y + kd + 1):
        qy = min(max(qv, 0), height - 1)  # rows beyond the frame continue its edge row (`kernels.dof`: borders)
        cmax = near_cmax[qy]
        if cmax < 0.0:
            continue
        lim = cmax + 0.5
        drow = dist[kd + qv - y]
        lo = near_span[qy, 0]
        hi = near_span[qy, 1]
        for dx in range(-kd, kd + 1):
            d = drow[kd + dx]
            if d >= lim:
                continue
            edge = _HALF - d
            words = near_mask[qy, int(d)]
            for word in range(words.shape[0]):
                bits = words[word]
                while bits:
                    q0 = CHUNK * (64 * word + trailing_zeros(bits))
                    bits &= bits - np.uint64(1)
                    p0 = q0 - dx
                    if p0 >= 0 and p0 + CHUNK <= width and q0 + CHUNK <= width:
                        _near_taps8(near, pre, coc, exact_w, qy, p0, q0, edge)
                    else:  # at the frame's sides: the receivers and sources inside it
                        _near_taps(near, pre, coc, exact_w, qy, max(p0, 0), min(p0 + CHUNK, width, width - dx), dx,
                                   edge)
            # the columns whose source lies beyond the frame's side take its edge pixel, where that is small near
            side = width - 1 if dx > 0 else 0
            e0, e1 = (max(width - dx, 0), width) if dx > 0 else (0, min(-dx, width))
            if e1 > e0 and lo <= side <= hi:
                we = _coverage(coc[qy, side] + edge) * exact_w[qy, side]
                for ch in range(4):
                    value = we * pre[ch, qy, side]
                    for px in range(e0, e1):
                        near[ch, px] += value
                for px in range(e0, e1):
                    near[4, px] += we


@njit(cache=True, fastmath=True, error_model="numpy")
def _reach_masks(small, span, chunk_max, masks):
    """For each whole distance b = 0, 1, .. (as many as `masks` holds), a bit per CHUNK-column chunk of the row (64
    a word): set where the chunk holds a small pixel (`small` holds its radius, -1 elsewhere, as the reduce pass
    marks them; `span` their first and last column) whose disc reaches b (r + 1/2 > b): only those chunks can give
    (near field) or give or take (far field) a non-zero tap at a distance d with floor(d) = b. A chunk's tap costs
    about what a pixel's did in the row stencils, which on a smooth random depth ran over four taps adding 0 for
    every one that did not. Per whole distance rather than per distinct one (16 below 5.5 px): as fast on that
    depth, and s + 1 masks a row rather than ~s^2 / 3 (985 at a 512 px blur, s = 57)."""
    masks[:] = 0
    if span[0] > span[1]:
        return
    k0 = span[0] // CHUNK
    k1 = span[1] // CHUNK + 1
    width = small.shape[0]
    for k in range(k0, k1):  # a chunk reaches a distance when its largest small radius does
        chunk_max[k] = _max(small[k * CHUNK:min(k * CHUNK + CHUNK, width)])
    for b in range(masks.shape[0]):
        edge = _HALF - np.float32(b)
        row = masks[b]
        found = False
        for k in range(k0, k1):
            if chunk_max[k] + edge > _ZERO:  # -1 + edge <= -1/2: a chunk without small pixels never reaches
                row[k >> 6] |= np.uint64(1) << np.uint64(k & 63)
                found = True
        if not found:
            return  # nor farther


@njit(cache=True, fastmath=True, error_model="numpy")
def _mask_word(words, word, j):
    """Word `word` of the chunk bits `words` moved by j chunks: its bit k is bit 64 word + k + j (0 beyond)."""
    first = 64 * word + j
    w0 = first >> 6  # floor, also below 0
    shift = first & 63
    lo = words[w0] if 0 <= w0 < words.shape[0] else np.uint64(0)
    if shift == 0:
        return lo
    hi = words[w0 + 1] if 0 <= w0 + 1 < words.shape[0] else np.uint64(0)
    return (lo >> np.uint64(shift)) | (hi << np.uint64(64 - shift))


@njit(cache=True, fastmath=True, error_model="numpy")
def _far_taps(exact, pre, far_r, exact_w, y, qy, p0, p1, dx, edge, shift):
    """exact[:, p] += the exact far tap of source (qy, p + dx) at distance 0.5 - edge on receiver (y, p), for p in
    [p0, p1): radius min(r_q, r_p), 1/area of the smaller disc (the larger inverse), weighed by 1 - t_q t_p.
    Written as the row stencils wrote it, which LLVM reassociates to what `_far_taps8` computes; written in that
    order and not reassociated (`_ORDERED`), LLVM distributed (1 - a b) c into c - (a b) c: 1 ulp apart at times."""
    for p in range(p0, p1):
        q = p + dx
        rq = far_r[qy, q]
        rp = far_r[y, p]
        exact_share = _ONE - _share(rq, shift) * _share(rp, shift)
        w = _coverage(min(rq, rp) + edge) * max(exact_w[qy, q], exact_w[y, p]) * exact_share
        for ch in range(4):
            exact[ch, p] += w * pre[ch, qy, q]


@njit(cache=True, fastmath=True, error_model="numpy")
def _gather_exact_far(y, shift, pre, exact_w, far_r, dist, far_rmax, far_mask, exact):
    """Row y's exact share of the far field into `exact` (B, G, R, weight): every pair (q, p) whose radius
    min(r_q, r_p) falls below s, at full resolution with the min-radius rule, weighed by 1 - t_q t_p (the
    reduced gather carries t_q t_p: t_q in its block sums, t_p in the composite). Such a pair has a small
    receiver p or a small source q, so its distance is below that pixel's radius + 1/2 (< s + 1/2); each
    offset runs across the chunks of receivers in row y that hold a small one reaching it, or whose sources in
    row qy do (`far_mask`, `_reach_masks`): the taps left out add exactly 0. Each receiver takes its taps in the
    order of the row stencils this replaced (rows, then offsets, ascending): the same sums."""
    kd = (dist.shape[0] - 1) // 2
    height, width = far_r.shape
    for qy in range(max(y - kd, 0), min(y + kd + 1, height)):
        bound = max(far_rmax[y], far_rmax[qy])
        if bound < 0.0:
            continue
        lim = bound + 0.5
        drow = dist[kd + qy - y]
        for dx in range(-kd, kd + 1):
            d = drow[kd + dx]
            if d >= lim:
                continue
            edge = _HALF - d
            own = far_mask[y, int(d)]
            sources = far_mask[qy, int(d)]
            for word in range(own.shape[0]):
                # the receivers [p0, p0 + CHUNK) take the sources [p0 + dx, p0 + dx + CHUNK): two chunks unless
                # dx is a multiple of CHUNK
                bits = own[word]
                for j in range(dx // CHUNK, -(-dx // CHUNK) + 1):
                    bits |= _mask_word(sources, word, j)
                while bits:
                    p0 = CHUNK * (64 * word + trailing_zeros(bits))
                    bits &= bits - np.uint64(1)
                    q0 = p0 + dx
                    if q0 >= 0 and q0 + CHUNK <= width and p0 + CHUNK <= width:
                        _far_taps8(exact, pre, far_r, exact_w, y, qy, p0, q0, edge, shift)
                    else:  # at the frame's sides: the receivers and sources inside it
                        _far_taps(exact, pre, far_r, exact_w, y, qy, max(p0, -dx), min(p0 + CHUNK, width, width - dx),
                                  dx, edge, shift)


@njit(cache=True, fastmath=True, error_model="numpy")
def _phases_generic(low, s, phase_off, phase_fx, width, dst):
    """dst[s q + j] = the interpolation of low[q + off_j] and low[q + off_j + 1] at weight f_j, one phase j at a
    time (contiguous loads, fixed weight, strided stores), wherever both taps are in range and x < width."""
    wl = low.shape[0]
    for j in range(s):
        off = phase_off[j]
        f = phase_fx[j]
        q0 = -off  # the first q whose left tap q + off is in range
        q1 = min(wl - 1 - off, (width - 1 - j) // s + 1)  # the right tap q + off + 1 in range, x < width
        if q1 <= q0:
            continue
        left = low[q0 + off:q1 + off]
        right = low[q0 + off + 1:q1 + off + 1]
        out = dst[s * q0 + j:s * (q1 - 1) + j + 1:s]
        for q in range(q1 - q0):
            out[q] = left[q] + f * (right[q] - left[q])


@njit(cache=True, fastmath=_ORDERED, error_model="numpy")
def _phases_fixed(low, s, phase_fx, n, dst):
    """`_phases_generic` for s = 2 to 5 over the blocks q = 1 .. n - 1: all s phases of a block
    in one loop of constant stride, which LLVM vectorises with interleaved stores (the strided stores of one
    phase at a time do not). The phases left of the block's centre (2 j + 1 < s) take low[q - 1] and low[q],
    the others low[q] and low[q + 1] (`_bilinear_columns`); the same expression: the same values."""
    a = low[0:n - 1]
    b = low[1:n]
    c = low[2:n + 1]
    out = dst[s:s * n]
    f0 = phase_fx[0]
    f1 = phase_fx[1]
    if s == 2:
        for k in range(n - 1):
            out[2 * k] = _fma(f0, b[k] - a[k], a[k])
            out[2 * k + 1] = _fma(f1, c[k] - b[k], b[k])
    elif s == 3:
        f2 = phase_fx[2]
        for k in range(n - 1):
            out[3 * k] = _fma(f0, b[k] - a[k], a[k])
            out[3 * k + 1] = _fma(f1, c[k] - b[k], b[k])
            out[3 * k + 2] = _fma(f2, c[k] - b[k], b[k])
    elif s == 4:
        f2 = phase_fx[2]
        f3 = phase_fx[3]
        for k in range(n - 1):
            out[4 * k] = _fma(f0, b[k] - a[k], a[k])
            out[4 * k + 1] = _fma(f1, b[k] - a[k], a[k])
            out[4 * k + 2] = _fma(f2, c[k] - b[k], b[k])
            out[4 * k + 3] = _fma(f3, c[k] - b[k], b[k])
    else:
        f2 = phase_fx[2]
        f3 = phase_fx[3]
        f4 = phase_fx[4]
        for k in range(n - 1):
            out[5 * k] = _fma(f0, b[k] - a[k], a[k])
            out[5 * k + 1] = _fma(f1, b[k] - a[k], a[k])
            out[5 * k + 2] = _fma(f2, c[k] - b[k], b[k])
            out[5 * k + 3] = _fma(f3, c[k] - b[k], b[k])
            out[5 * k + 4] = _fma(f4, c[k] - b[k], b[k])


@njit(cache=True, fastmath=True, error_model="numpy")
def _upsample_rows(acc, y0, y1, fy, s, phase_off, phase_fx, col_x0, col_x1, col_fx, low, dst):
    """dst[ch] = the bilinear interpolation at full width of rows y0 and y1 of acc[ch] (weight fy on y1), for
    every channel: first vertically into `low`, then horizontally (`_phases_fixed`, or `_phases_generic` at
    other factors), the few border columns, where the
    taps clamp, from the per-column tables. One call for all channels: each call costs ~0.3 us to set up."""
    wl = acc.shape[2]
    width = dst.shape[1]
    for ch in range(acc.shape[0]):
        a = acc[ch, y0]
        b = acc[ch, y1]
        lo = low[ch]
        for q in range(wl):
            lo[q] = a[q] + fy * (b[q] - a[q])
    for ch in range(acc.shape[0]):
        # every column of blocks 1 .. wl - 2 from the phases (both taps in range, x < width), the rest borders
        if 2 <= s <= 5:
            if wl >= 3:
                _phases_fixed(low[ch], s, phase_fx, wl - 1, dst[ch])
        else:
            _phases_generic(low[ch], s, phase_off, phase_fx, width, dst[ch])
        row = dst[ch]
        lo = low[ch]
        for x in range(min(s, width)):
            row[x] = lo[col_x0[x]] + col_fx[x] * (lo[col_x1[x]] - lo[col_x0[x]])
        for x in range(max(s * (wl - 1), 0), width):
            row[x] = lo[col_x0[x]] + col_fx[x] * (lo[col_x1[x]] - lo[col_x0[x]])


@njit(cache=True, fastmath=True, error_model="numpy")
def _behind_weights(c_row, behind_h, fade, is_near, own_w, inv):
    """Per near pixel, what lies behind it = (behind sums + own_w x its own colour) x inv: the pixels not near
    within its disc, faded in from its own colour while they weigh less than `fade` c^2, BEHIND_FADE of the disc
    (`dof_reference`). Taken whole wherever the bilinear weight of the reduced sums was above 0, a disc's rim
    and the blocks' coarser reach switched the colour in rectangles: notches in a blurred foreground."""
    for x in range(c_row.shape[0]):
        c = c_row[x]
        total = max(behind_h[x], fade * c * c)
        is_near[x] = c > FOCUS_RADIUS
        own_w[x] = total - behind_h[x]
        inv[x] = _ONE / max(total, _TINY)


@njit(cache=True, fastmath=True, error_model="numpy")
def _add_small_behind(y, img, coc, s, dist, near_span, behind_blocks, behind):
    """What lies behind row y's near pixels too small for the reduced gather (CoC below 2 s), gathered exactly:
    the pixels not near within the pixel's own disc (uniform weights, outside the frame skipped), as
    `dof_reference`, their share 1 - t cross-faded into the reduced sums (t, in `behind`), on the reduced sums'
    scale (1 / s^2). The blocks' mean radius and bilinear reach took a one- or two-pixel disc's backdrop from
    up to ~1.5 s px away: at a noisy focus edge, colours that lay outside it (58 levels off on a photo).
    Per receiver, its window at most (4s + 1)^2, within the 5 x 5 blocks around its own; a block whose
    `behind_blocks` is False has none of those holding a pixel not near (the gather would add exactly 0: on the
    synthetic portrait at 1280x720, 93 % of its small near pixels): its window is skipped, the cross-fade kept."""
    height, width = coc.shape
    kd = (dist.shape[0] - 1) // 2
    shift = _near_shift(s)
    inv_area = _ONE / np.float32(s * s)
    c_row = coc[y]
    flags = behind_blocks[y // s]
    lo = near_span[y, 0]
    hi = near_span[y, 1] + 1
    # first the reduced sums' share t (1 beyond the small near pixels: exact), one branch-free loop a plane
    t_row = np.empty(hi - lo, np.float32)
    for x in range(lo, hi):
        c = c_row[x]
        t_row[x - lo] = _share(c, shift) if c > FOCUS_RADIUS else _ONE
    for ch in range(4):
        row = behind[ch, lo:hi]
        for j in range(hi - lo):
            row[j] *= t_row[j]
    for bx in range(lo // s, (hi - 1) // s + 1):
        if flags[bx]:
            for x in range(max(bx * s, lo), min(bx * s + s, hi)):
                if t_row[x - lo] < _ONE:
                    _small_behind_at(y, x, img, coc, c_row[x], t_row[x - lo], kd, inv_area, dist, behind)


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _small_behind_at(y, x, img, coc, c, t, kd, inv_area, dist, behind):
    """`_add_small_behind`'s exact share of the pixel (y, x) of CoC c, reduced share t, added to `behind`."""
    height, width = coc.shape
    k = min(int(math.ceil(c + _HALF)) - 1, kd)
    b0 = _ZERO
    b1 = _ZERO
    b2 = _ZERO
    bw = _ZERO
    for qy in range(max(y - k, 0), min(y + k + 1, height)):
        drow = dist[kd + qy - y]
        cq_row = coc[qy]
        img_row = img[qy]
        for qx in range(max(x - k, 0), min(x + k + 1, width)):
            if cq_row[qx] > FOCUS_RADIUS:
                continue
            w = _coverage(c - drow[kd + qx - x] + _HALF)
            v0 = np.float32(img_row[qx, 0])
            v1 = np.float32(img_row[qx, 1])
            v2 = np.float32(img_row[qx, 2])
            b0 += w * (v0 * v0)
            b1 += w * (v1 * v1)
            b2 += w * (v2 * v2)
            bw += w
    e = (_ONE - t) * inv_area
    behind[0, x] += e * b0
    behind[1, x] += e * b1
    behind[2, x] += e * b2
    behind[3, x] += e * bw


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _composite(img, coc, pre, exact_w, far_r, dist, s, col_x0, col_x1, col_fx, phase_off,
               phase_fx, rows, far_acc, near_acc, behind_acc, near_rows, near_span, near_cmax, near_mask, far_rmax,
               far_mask, fade, behind_blocks, out):
    """Full resolution: far pixels take the far field (the exact gather of the pairs with a radius below s
    plus the bilinear reduced one, its weights renormalised over the blocks with reduced far content: both
    sums on one scale), near pixels what lies behind them (bilinear, normalised, faded in from themselves while
    it weighs less than `fade` c^2: `_behind_weights`; a CoC below 2 s
    cross-faded into its exact gather, `_add_small_behind`), then the near field's coverage composites its colour over.
    `dist[K + dy, K + dx]` tabulates |(dy, dx)| for the full-resolution windows (K >= 2 s); `col_x0`,
    `col_x1`, `col_fx`: each column's bilinear taps and weight, `phase_off`, `phase_fx`: the same per
    column phase x % s; `near_rows[q]`: whether reduced row q has any near coverage."""
    height, width = coc.shape
    hl = far_acc.shape[1]
    wl = far_acc.shape[2]
    shift = _share_shift(s)
    for i in prange(height):
        y = rows[i]
        # (y + 0.5) / s - 0.5 as one division, exact where it is whole: as (y + 0.5) * (1 / s) - 0.5 fastmath fused
        # it into an FMA, 2.8e-17 for 0 at s = 5, and a near pixel took the next row of blocks' background
        uy = min(max((2 * y + 1 - s) / (2.0 * s), 0.0), hl - 1.0)
        y0 = int(uy)
        fy = np.float32(uy - y0)
        y1 = min(y0 + 1, hl - 1)
        # one scratch block per row: far field 0-4, near field 5-9, exact far 10-13, per-pixel factors 14-19,
        # behind the near field 20-23, the own colour's weight behind it 24 (a dozen small allocations per row
        # cost more than the row's arithmetic)
        scratch = np.empty((25, width), np.float32)
        low = np.empty((5, wl), np.float32)
        c_row = coc[y]
        far_field = scratch[0:5]  # B, G, R, weight, support
        row_has_far = _max(far_r[y]) > 0.0
        if row_has_far:
            _upsample_rows(far_acc, y0, y1, fy, s, phase_off, phase_fx, col_x0, col_x1, col_fx, low, far_field)
        else:
            far_field[:] = 0.0
        near = scratch[5:10]  # B, G, R, weight, coverage
        near[:] = 0.0
        if near_rows[y0] or near_rows[y1]:
            _upsample_rows(near_acc, y0, y1, fy, s, phase_off, phase_fx, col_x0, col_x1, col_fx, low, near)
        if _max(near_cmax[max(y - NEAR_EXACT * s, 0):min(y + NEAR_EXACT * s + 1, height)]) >= 0.0:
            _add_small_near(y, coc, pre, exact_w, dist, near_span, near_cmax, near_mask, near)
        behind = scratch[20:24]  # B, G, R, weight
        row_has_near = _max(c_row) > FOCUS_RADIUS
        if row_has_near:
            _upsample_rows(behind_acc, y0, y1, fy, s, phase_off, phase_fx, col_x0, col_x1, col_fx, low, behind)
            if near_cmax[y] >= 0.0:  # the row's small near pixels: what lies behind them, exactly
                _add_small_behind(y, img, coc, s, dist, near_span, behind_blocks, behind)
        exact = scratch[10:14]
        exact[:] = 0.0
        kd = (dist.shape[0] - 1) // 2
        if row_has_far and _max(far_rmax[max(y - kd, 0):min(y + kd + 1, height)]) >= 0.0:
            _gather_exact_far(y, shift, pre, exact_w, far_r, dist, far_rmax, far_mask, exact)
        # per pixel, what the three channels share; then one channel at a time (planar: SIMD)
        is_far = np.empty(width, np.bool_)
        is_near = np.zeros(width, np.bool_)
        inv_behind = scratch[19]
        own_behind = scratch[24]
        t = scratch[14]
        inv_far = scratch[15]
        alpha = scratch[16]
        inv_near = scratch[17]
        cover = near[4]
        near_h = near[3]
        exact_h = exact[3]
        far_h = far_field[3]
        support = far_field[4]
        for x in range(width):
            c = c_row[x]
            is_far[x] = c < -FOCUS_RADIUS
            # the reduced sums' share t_p, over their support; a far pixel with t_p > 0 has its own block
            # in the support (>= 1/4), and one with t_p < 1 its own exact tap: the sum of weights is > 0
            t[x] = _share(-c, shift) / max(support[x], _TINY)
            inv_far[x] = _ONE / max(exact_h[x] + t[x] * far_h[x], _TINY)
            has_near = (cover[x] > _ZERO) & (near_h[x] > np.float32(1e-20))
            alpha[x] = min(cover[x], _ONE) if has_near else _ZERO
            inv_near[x] = _ONE / max(near_h[x], _TINY)
        if row_has_near:
            _behind_weights(c_row, behind[3], fade, is_near, own_behind, inv_behind)
        # through flat views the stride-3 byte loads and stores vectorise (`_reduce`)
        img_flat = img[y].reshape(3 * width)
        out_flat = out[y].reshape(3 * width)
        own = scratch[18]
        result = np.empty((3, width), np.uint8)
        for ch in range(3):
            for x in range(width):
                v = np.float32(img_flat[3 * x + ch])
                own[x] = v * v
            ex = exact[ch]
            ff = far_field[ch]
            nn = near[ch]
            if row_has_near:  # only here is `behind` filled
                bb = behind[ch]
                for x in range(width):
                    if is_near[x]:
                        own[x] = (bb[x] + own_behind[x] * own[x]) * inv_behind[x]
            res = result[ch]
            for x in range(width):
                g = (ex[x] + t[x] * ff[x]) * inv_far[x]
                o = g if is_far[x] else own[x]
                o += alpha[x] * (nn[x] * inv_near[x] - o)
                # back from linear light: exact on an in-focus pixel's own square
                res[x] = np.uint8(min(np.sqrt(max(o, _ZERO)) + _HALF, np.float32(255.0)))
        r0 = result[0]
        r1 = result[1]
        r2 = result[2]
        for x in range(width):
            out_flat[3 * x] = r0[x]
            out_flat[3 * x + 1] = r1[x]
            out_flat[3 * x + 2] = r2[x]


def _behind_fade(scale: int) -> np.float32:
    """BEHIND_FADE of a disc's area pi c^2, per c^2, in reduced px (the behind sums' unit). An argument, not a
    global the kernel reads: Numba's cache would keep a changed constant of another module compiled in."""
    return np.float32(BEHIND_FADE * math.pi / (scale * scale))


def _behind_blocks(share: np.ndarray) -> np.ndarray:
    """Per block, whether it or a block within two (5 x 5) holds a pixel not near (`low_b[3]`, its share, is
    exactly 0 where none is): a CoC below 2 s (NEAR_EXACT) reaches at most two blocks from its own
    (`_add_small_behind`)."""
    any_b = np.pad(share > 0.0, 2)
    rows = any_b[:-4] | any_b[1:-3] | any_b[2:-2] | any_b[3:-1] | any_b[4:]
    return rows[:, :-4] | rows[:, 1:-3] | rows[:, 2:-2] | rows[:, 3:-1] | rows[:, 4:]


@functools.lru_cache(maxsize=8)
def _row_order(height: int) -> np.ndarray:
    """Rows in bit-reversed (van der Corput) order: Numba splits a prange into contiguous chunks, one
    per thread, and a portrait's cost is far from uniform down the frame (a face near the top); with
    this order every chunk samples the whole frame, so the threads finish together."""
    bits = max(1, (height - 1).bit_length())
    keys = [int(f"{i:0{bits}b}"[::-1], 2) for i in range(height)]
    return np.argsort(np.array(keys), kind="stable").astype(np.int64)


@functools.lru_cache(maxsize=8)
def _distance_table(k: int) -> np.ndarray:
    yy, xx = np.mgrid[-k:k + 1, -k:k + 1]
    return np.hypot(yy, xx).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _bilinear_columns(width: int, s: int, wl: int) -> tuple[np.ndarray, ...]:
    """Each full-resolution column's two reduced taps and the right one's weight; and per phase x % s,
    away from the borders, the left tap's offset from x // s and the right one's weight."""
    ux = np.clip((np.arange(width) + 0.5) / s - 0.5, 0.0, wl - 1.0)
    x0 = np.floor(ux).astype(np.int64)
    phase = (np.arange(s) + 0.5) / s - 0.5
    phase_off = np.floor(phase).astype(np.int64)
    return (x0, np.minimum(x0 + 1, wl - 1), (ux - x0).astype(np.float32), phase_off,
            (phase - phase_off).astype(np.float32))


class _Workspace:
    """Per-frame-size work arrays. Reused between frames: fresh multi-megabyte allocations cost page
    faults (~1 ms a VGA frame); one workspace per thread keeps concurrent callers apart."""

    def __init__(self, shape: tuple[int, int], low_shape: tuple[int, int], scale: int) -> None:
        height = shape[0]
        self.key = (shape, low_shape, scale)
        self.coc = np.empty(shape, np.float32)
        self.pre = np.empty((4,) + shape, np.float32)
        self.exact_w = np.empty(shape, np.float32)
        self.far_r = np.empty(shape, np.float32)
        self.low_f = np.empty((4,) + low_shape, np.float32)
        self.low_n = np.empty((5,) + low_shape, np.float32)
        self.low_fr = np.empty(low_shape, np.float32)
        self.low_nr = np.empty(low_shape, np.float32)
        self.near_span = np.empty((height, 2), np.int64)
        self.near_cmax = np.empty(height, np.float32)
        self.far_span = np.empty((height, 2), np.int64)
        self.far_rmax = np.empty(height, np.float32)
        # the exact gathers' distances stay below s + 1/2 (far CoCs below s): whole distances 0 to s; the near
        # field's below 2 s + 1/2 (NEAR_EXACT): 0 to 2 s
        self.far_mask = np.empty((height, scale + 1, -(-shape[1] // (64 * CHUNK))), np.uint64)
        self.near_mask = np.empty((height, NEAR_EXACT * scale + 1, self.far_mask.shape[2]), np.uint64)
        self.far_acc = np.empty((5,) + low_shape, np.float32)  # B, G, R, weight, support
        self.near_acc = np.empty((5,) + low_shape, np.float32)
        self.low_b = np.empty((4,) + low_shape, np.float32)  # not near: B, G, R (linear light), share
        self.low_br = np.empty(low_shape, np.float32)  # mean radius of all near pixels, reduced px
        self.behind_acc = np.empty((4,) + low_shape, np.float32)
        self.near_rows = np.empty(low_shape[0], np.bool_)


_local = threading.local()
# Frames up to 4K UHD keep their workspace for the next frame (~130 MB at 4K). A larger one, a photo's 12-50
# megapixels, gets its own and frees it with its result: kept, it held ~430 MB per thread (12 MP) after a
# single render, and a 12 MP render with fresh arrays measured as fast as with kept ones (0.48-0.64 s both).
WORKSPACE_KEPT_PIXELS = 3840 * 2160


def _workspace(shape: tuple[int, int], low_shape: tuple[int, int], scale: int) -> _Workspace:
    ws = getattr(_local, "workspace", None)
    if ws is None or ws.key != (shape, low_shape, scale):
        _local.workspace = None  # the old size's arrays go before the new ones are made
        ws = _Workspace(shape, low_shape, scale)
        if shape[0] * shape[1] <= WORKSPACE_KEPT_PIXELS:
            _local.workspace = ws
    return ws


def render(image_bgr: np.ndarray, disparity: np.ndarray, p: DofPlan,
           timings: dict[str, float] | None = None) -> np.ndarray:
    """The three passes; `timings` (bench/bench_dof.py --passes) gets each one's wall ms."""
    img = np.ascontiguousarray(image_bgr)
    disp = np.ascontiguousarray(disparity, dtype=np.float32)
    hl, wl = p.low_shape
    w = _workspace(disp.shape, p.low_shape, p.scale)
    focus, coc_scale = np.float32(p.focus), np.float32(p.coc_scale)
    out = np.empty_like(img)
    columns = _bilinear_columns(disp.shape[1], p.scale, wl)
    with parallel_section():
        t0 = time.perf_counter()
        # a run of block rows per thread (Numba's static schedule splits a prange so anyway)
        _reduce(numba.get_num_threads(), img, disp, p.scale, focus, coc_scale, np.float32(p.coc_max),
                np.float32(p.highlight_boost), _LINEAR_LUT, w.coc, w.pre, w.exact_w, w.far_r, w.low_f,
                w.low_fr, w.low_n, w.low_nr, w.low_b, w.low_br, w.near_span, w.near_cmax, w.near_mask, w.far_span,
                w.far_rmax, w.far_mask)
        t1 = time.perf_counter()
        _gather(w.low_f, w.low_fr, w.low_n, w.low_nr, w.low_b, w.low_br, _row_order(hl),
                _distance_table(max(p.near_reach, 1)), w.far_acc, w.near_acc, w.behind_acc, w.near_rows)
        t2 = time.perf_counter()
        # the full-resolution windows: the near field's reach below 2 s + 1/2 (NEAR_EXACT)
        _composite(img, w.coc, w.pre, w.exact_w, w.far_r, _distance_table(NEAR_EXACT * p.scale + 1), p.scale,
                   *columns, _row_order(disp.shape[0]), w.far_acc, w.near_acc, w.behind_acc, w.near_rows, w.near_span,
                   w.near_cmax, w.near_mask, w.far_rmax, w.far_mask, _behind_fade(p.scale),
                   _behind_blocks(w.low_b[3]), out)
    if timings is not None:
        t3 = time.perf_counter()
        timings.update(reduce=(t1 - t0) * 1e3, gather=(t2 - t1) * 1e3, composite=(t3 - t2) * 1e3)
    return out


def depth_of_field_cpu(image_bgr: np.ndarray, disparity: np.ndarray, focus: float, max_blur_px: float, *,
                       highlight_boost: float = 0.0, scale: int | None = None) -> np.ndarray:
    """The CPU path; `scale` overrides the reduction factor (1 = the exact reference semantics)."""
    if max_blur_px <= 0.0:
        return np.array(image_bgr)  # a plain ndarray, as every other call returns (a memmap's copy is one)
    p = plan(disparity.shape, focus, max_blur_px, highlight_boost, scale)
    return render(image_bgr, disparity, p)
