"""The CPU depth of field's last pass, at full resolution (`_composite`): each pixel's far field or what lies
behind it, and the near field's colour over it."""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

import kernels.numba_cache  # noqa: F401 (first: every cached kernel's stamp is the whole package's sources)
from kernels.dof import FOCUS_RADIUS
from kernels.dof_cpu_common import (NEAR_EXACT, _HALF, _ONE, _TINY, _ZERO, _coverage, _far_shift, _max, _near_shift,
                                    _share)
from kernels.dof_cpu_exact import _add_small_near, _gather_exact_far
from kernels.dof_cpu_upsample import _upsample_rows


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
def _composite(img, coc, pre, exact_w, far_r, dist, s, far_exact, col_x0, col_x1, col_fx, phase_off,
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
    shift = _far_shift(s, far_exact)
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
            # with the highlight boost's weight (`dof_reference.near_alpha`): exactly the coverage without a boost
            cv = cover[x]
            rest = _ONE - cv
            a = _ONE if cv >= _ONE else cv + (near_h[x] - cv) * rest / (near_h[x] + rest)
            alpha[x] = a if has_near else _ZERO
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
