"""The CPU depth of field's first pass: per pixel its CoC and premultiplied colour, per s x s block the reduced
fields' sums and radii, per row the small pixels the exact gathers take (`_reduce`)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

import kernels.numba_cache  # noqa: F401 (first: every cached kernel's stamp is the whole package's sources)
from kernels.dof import FOCUS_RADIUS, HIGHLIGHT_GAIN, HIGHLIGHT_THRESHOLD, RAMP_SPREAD
from kernels.dof_cpu_common import (CHUNK, N_SUMS, _EXACT, _INV_PI, _NO_FAR, _ONE, _ORDERED, _TINY, _ZERO, _add_product,
                                    _add_weighted4, _far_shift, _near_shift, _share)
from kernels.dof_cpu_exact import _reach_masks, _small_span


@njit(cache=True, fastmath=_EXACT, error_model="numpy")
def _reduced_radius(radius, s):
    """The reduced gather's disc radius, in reduced pixels, for a block of mean radius `radius` px: narrowed so
    that with the blur of the block and of the bilinear composite it spreads as wide as the disc (kernels.dof)."""
    if s == 1:
        return radius
    return np.sqrt(max(radius * radius - np.float32(s * s - 1), np.float32(0.25 * s * s))) / np.float32(s)


@njit(cache=True, fastmath=True, error_model="numpy")
def _product(dst, a, b):
    for j in range(dst.shape[0]):
        dst[j] = a[j] * b[j]


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
def _reduce_blocks(sums, colmin, colmax, s, rows, by, blocks, bmin, bmax, low_f, low_fr, ring_n, ring_nr, low_b,
                   low_br):
    """One row of blocks from its per-column sums (`_reduce`): each block's sums left to right, then the
    reduced fields, each a short loop across the row of blocks (SIMD); the near field's inside its ring."""
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
        _product(ring_n[ch, by + 1, 1:wl + 1], blocks[6 + ch], inv_n)
    _product(ring_n[4, by + 1, 1:wl + 1], blocks[10], inv_n)
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
    nr_row = ring_nr[by + 1, 1:wl + 1]
    for bx in range(wl):
        near_radius = _reduced_radius(blocks[11, bx] / max(blocks[10, bx], _TINY), s)
        nr_row[bx] = near_radius if blocks[10, bx] > 0.0 else np.float32(-1.0)
    br_row = low_br[by]
    for bx in range(wl):
        br_row[bx] = blocks[16, bx] / (blocks[15, bx] * s) if blocks[15, bx] > 0.0 else np.float32(-1.0)


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _reduce(tasks, img, disp, s, far_exact, focus, coc_scale, coc_max, boost, lut, coc, pre, exact_w, far_r,
            low_f, low_fr, ring_n, ring_nr, low_b, low_br, near_span, near_cmax, near_mask, far_span, far_rmax,
            far_mask):
    """Full resolution: CoC, premultiplied colour planes in linear light (h*B^2, h*G^2, h*R^2, h), the exact
    gathers' weight (`exact_w`: a far pixel's inverse disc area, a near pixel's share left to the exact gather
    over its area, 0 in focus: one plane for both, as each gather's coverage is 0 on the other field's pixels;
    a plane less to write, where the pass spends about a third of its time) and the far radius (`far_r`,
    `_NO_FAR` outside the far field). In-focus pixels get zeros: the gathers multiply them by weight 0 and must
    not meet uninitialised memory.
    Per s x s block: far and near premultiplied colour and weight of the reduced share (`_share`), near
    coverage (`low_n[4]`) and the radius of each field's reduced share in reduced pixels (-1: none), the near
    field's (`low_n`, `low_nr`) inside the ring of blocks that `_near_ring` fills (`ring_n`, `ring_nr`);
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
    boost32 = np.float32(HIGHLIGHT_GAIN * boost)
    shift = _far_shift(s, far_exact)
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
        brightest = np.empty(width, np.float32)  # linear light of each pixel's brightest channel
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
                        # the brightest channel (dof_reference.highlight_weight): a sensor clips each one
                        brightest[x] = lut[max(img_row[x, 0], img_row[x, 1], img_row[x, 2])]
                else:
                    brightest[:] = 0.0
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
                    u = max(brightest[x] - threshold, _ZERO) * inv_thr
                    u4 = (u * u) * (u * u)
                    u16 = (u4 * u4) * (u4 * u4)
                    hw = _ONE + boost32 * u16  # 1 + gain * boost * u^16
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
            _reduce_blocks(sums, colmin, colmax, s, y1 - y0, by, blocks, bmin, bmax, low_f, low_fr, ring_n,
                           ring_nr, low_b, low_br)


@njit(cache=True, fastmath=_EXACT, error_model="numpy")
def _ring_block(coc, pre, y0, y1, x0, x1, s, ring_n, ring_nr, ry, rx):
    """One block of the near field's ring from the frame's edge pixels coc[y0:y1, x0:x1] (a run of s along one
    side, a corner's pixel alone), each standing for the pixels beyond it: `_reduce`'s near means and radius."""
    near_shift = _near_shift(s)
    b = g = r = h = t_sum = c_sum = _ZERO
    for y in range(y0, y1):
        for x in range(x0, x1):
            c = coc[y, x]
            t = _share(c, near_shift) if c > FOCUS_RADIUS else _ZERO
            b += t * pre[0, y, x]
            g += t * pre[1, y, x]
            r += t * pre[2, y, x]
            h += t * pre[3, y, x]
            t_sum += t
            c_sum += t * c
    inv_n = _ONE / np.float32((y1 - y0) * (x1 - x0))
    ring_n[0, ry, rx] = b * inv_n
    ring_n[1, ry, rx] = g * inv_n
    ring_n[2, ry, rx] = r * inv_n
    ring_n[3, ry, rx] = h * inv_n
    ring_n[4, ry, rx] = t_sum * inv_n
    ring_nr[ry, rx] = _reduced_radius(c_sum / max(t_sum, _TINY), s) if t_sum > 0.0 else np.float32(-1.0)


@njit(cache=True, fastmath=True, error_model="numpy")
def _near_ring(coc, pre, s, ring_n, ring_nr):
    """The ring of blocks around the near field's (`_reduce` wrote them inside it) made of the frame's edge pixels
    alone: what the near field gathers beyond the frame (`_gather`), as the reference repeats its edge pixels
    there. The edge blocks had stood for it, so a thin blurred foreground within s px of the side (a post, a cable)
    was repeated outside: a dark band down the side, 38 levels off the reference (240 px astronaut, s = 3, a dark
    post 1 px in)."""
    height, width = coc.shape
    hl, wl = ring_nr.shape[0] - 2, ring_nr.shape[1] - 2
    for bx in range(wl):
        x0, x1 = bx * s, min(bx * s + s, width)
        _ring_block(coc, pre, 0, 1, x0, x1, s, ring_n, ring_nr, 0, bx + 1)
        _ring_block(coc, pre, height - 1, height, x0, x1, s, ring_n, ring_nr, hl + 1, bx + 1)
    for by in range(hl):
        y0, y1 = by * s, min(by * s + s, height)
        _ring_block(coc, pre, y0, y1, 0, 1, s, ring_n, ring_nr, by + 1, 0)
        _ring_block(coc, pre, y0, y1, width - 1, width, s, ring_n, ring_nr, by + 1, wl + 1)
    for ry, y in ((0, 0), (hl + 1, height - 1)):  # the corners: the corner pixel alone
        for rx, x in ((0, 0), (wl + 1, width - 1)):
            _ring_block(coc, pre, y, y + 1, x, x + 1, s, ring_n, ring_nr, ry, rx)
