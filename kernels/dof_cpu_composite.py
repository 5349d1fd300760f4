"""The CPU depth of field's full-resolution passes: the far field rendered (`_composite_back`: each pixel's far
field or its own colour, linear light), the blocks of it behind the near field (`_behind_block_means`), and what lies
behind each near pixel with the near field's colour over it (`_composite`)."""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

import kernels.numba_cache  # noqa: F401 (first: every cached kernel's stamp is the whole package's sources)
from kernels.dof import FOCUS_RADIUS
from kernels.dof_cpu_common import (_EXACT, _HALF, _ONE, _TINY, _ZERO, NEAR_EXACT, _coverage, _far_shift, _max,
                                    _near_shift, _proximity, _share)
from kernels.dof_cpu_exact import _add_small_near, _gather_exact_far
from kernels.dof_cpu_upsample import _upsample_rows


@njit(cache=True, fastmath=True, error_model="numpy")
def _behind_weights(c_row, count, fade, is_near, mean_k, own_k):
    """Per near pixel, what lies behind it = its backdrop's colour (`_behind_colour_at`) x mean_k + own_k x its own
    colour: faded in from its own colour while the even coverage of the pixels not near (`count`, the reduced sums'
    scale) is below `fade` c^2, BEHIND_FADE of the disc (`dof_reference._behind`). Taken whole wherever the bilinear
    weight of the reduced sums was above 0, a disc's rim and the blocks' coarser reach switched the colour in
    rectangles: notches in a blurred foreground."""
    for x in range(c_row.shape[0]):
        c = c_row[x]
        total = max(count[x], fade * c * c)
        inv = _ONE / max(total, _TINY)
        is_near[x] = c > FOCUS_RADIUS
        mean_k[x] = count[x] * inv
        own_k[x] = (total - count[x]) * inv


@njit(cache=True, fastmath=True, error_model="numpy")
def _add_small_behind(y, coc, s, dist, near_span, behind_blocks, count):
    """The even coverage behind row y's near pixels too small for the reduced gather (CoC below 2 s), gathered
    exactly: the pixels not near within the pixel's own disc (outside the frame skipped), as `dof_reference`, their
    share 1 - t cross-faded into the reduced sums (t, in `count`), on the reduced sums' scale (1 / s^2). The blocks'
    mean radius and bilinear reach faded a one- or two-pixel disc's backdrop in from up to ~1.5 s px away.
    Per receiver, its window at most (4s + 1)^2, within the 5 x 5 blocks around its own; a block whose
    `behind_blocks` is False has none of those holding a pixel not near (the gather would add exactly 0: on the
    synthetic portrait at 1280x720, 93 % of its small near pixels): its window is skipped, the cross-fade kept."""
    kd = (dist.shape[0] - 1) // 2
    shift = _near_shift(s)
    inv_area = _ONE / np.float32(s * s)
    c_row = coc[y]
    flags = behind_blocks[y // s]
    lo = near_span[y, 0]
    hi = near_span[y, 1] + 1
    # first the reduced sums' share t (1 beyond the small near pixels: exact), one branch-free loop
    t_row = np.empty(hi - lo, np.float32)
    for x in range(lo, hi):
        c = c_row[x]
        t_row[x - lo] = _share(c, shift) if c > FOCUS_RADIUS else _ONE
    row = count[lo:hi]
    for j in range(hi - lo):
        row[j] *= t_row[j]
    for bx in range(lo // s, (hi - 1) // s + 1):
        if flags[bx]:
            for x in range(max(bx * s, lo), min(bx * s + s, hi)):
                if t_row[x - lo] < _ONE:
                    count[x] += (_ONE - t_row[x - lo]) * inv_area * _small_count_at(y, x, coc, c_row[x], kd, dist)


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _small_count_at(y, x, coc, c, kd, dist):
    """`_add_small_behind`'s exact even coverage of the pixel (y, x) of CoC c."""
    height, width = coc.shape
    k = min(int(math.ceil(c + _HALF)) - 1, kd)
    n = _ZERO
    for qy in range(max(y - k, 0), min(y + k + 1, height)):
        drow = dist[kd + qy - y]
        cq_row = coc[qy]
        for qx in range(max(x - k, 0), min(x + k + 1, width)):
            if cq_row[qx] <= FOCUS_RADIUS:
                n += _coverage(c - drow[kd + qx - x] + _HALF)
    return n


# in order, as the CUDA source sums them (its pixels by the block's centre decide which blocks are gathered exactly)
@njit(parallel=True, cache=True, fastmath=_EXACT, error_model="numpy")
def _behind_block_stats(rendered, coc, s, blocks):
    """Per s x s block (a block the frame cuts: its own pixels), over its pixels not near: their mean rendered colour
    (linear light, `blocks[:3]`; 0 where none), their count (`blocks[3]`) and centroid (`blocks[4]`, `blocks[5]`:
    row, column), what `_behind_colour_at` takes a block farther than its exact reach as. Each column's sums down
    the block first (across a row, they vectorise), then the columns' in turn, as the CUDA source adds them."""
    height, width = coc.shape
    hl, wl = blocks.shape[1], blocks.shape[2]
    for by in prange(hl):
        y0 = by * s
        y1 = min(y0 + s, height)
        sums = np.zeros((5, width), np.float32)  # B, G, R, count, sum of rows (from y0)
        for y in range(y0, y1):
            c_row = coc[y]
            row = np.float32(y - y0)
            for ch in range(3):
                src = rendered[ch, y]
                dst = sums[ch]
                for x in range(width):
                    dst[x] += src[x] if c_row[x] <= FOCUS_RADIUS else _ZERO
            count = sums[3]
            rows = sums[4]
            for x in range(width):
                seen = c_row[x] <= FOCUS_RADIUS
                count[x] += _ONE if seen else _ZERO
                rows[x] += row if seen else _ZERO
        for bx in range(wl):
            x0 = bx * s
            x1 = min(x0 + s, width)
            b0 = _ZERO
            b1 = _ZERO
            b2 = _ZERO
            n = _ZERO
            sy = _ZERO
            sx = _ZERO
            for x in range(x0, x1):
                b0 += sums[0, x]
                b1 += sums[1, x]
                b2 += sums[2, x]
                n += sums[3, x]
                sy += sums[4, x]
                sx += np.float32(x - x0) * sums[3, x]
            inv = _ONE / max(n, _ONE)
            blocks[0, by, bx] = b0 * inv
            blocks[1, by, bx] = b1 * inv
            blocks[2, by, bx] = b2 * inv
            blocks[3, by, bx] = n
            blocks[4, by, bx] = np.float32(y0) + sy * inv
            blocks[5, by, bx] = np.float32(x0) + sx * inv


@njit(cache=True, fastmath=True, error_model="numpy")
def _behind_tables(reach, s):
    """`_behind_colour_at`'s distances and proximities (`_proximity`) by offset (dy, dx), |dy|, |dx| <= T: an exact
    block's centre lies within `reach` px, its pixels within reach + s / 2 (T = reach + s)."""
    t = int(reach) + s
    dist = np.empty((2 * t + 1, 2 * t + 1), np.float32)
    prox = np.empty((2 * t + 1, 2 * t + 1), np.float32)
    for i in range(2 * t + 1):
        fy = np.float32(i - t)
        for j in range(2 * t + 1):
            fx = np.float32(j - t)
            d = np.sqrt(fy * fy + fx * fx)
            dist[i, j] = d
            prox[i, j] = _proximity(d)
    return dist, prox


@njit(cache=True, fastmath=True, error_model="numpy")
def _behind_colour_at(y, x, c, coc, rendered, blocks, s, reach4, dist, prox, colour):
    """The colour behind the near pixel (y, x) of CoC c (linear light, into `colour`; False where nothing weighs):
    the rendered pixels not near within its disc weighed by coverage x `_proximity` (`dof_reference._behind`). A
    d^-4 weight of 1.5 px cannot be resolved by s x s blocks (their distances off by up to s / sqrt 2 moved it by
    (1 +- s / 2d)^4), so the blocks whose centre lies within the exact reach (4 reach^2 = `reach4`, twice the
    offsets squared: whole numbers) are gathered pixel by pixel; farther ones, whose weight changes slowly across
    them, as one tap at the centroid of their pixels not near (`blocks`: `_behind_block_stats`). The exact blocks
    of a row of blocks are adjacent (a disc): their pixels go row by row as one span, branch-free, from the tables
    `dist` and `prox` (`_behind_tables`), which vectorises (block by block, with a sqrt and a division a pixel, a
    fence's near bars took 14-34x the old composite)."""
    height, width = coc.shape
    t = (dist.shape[0] - 1) // 2
    k = int(math.ceil(c + _HALF)) - 1
    ya, yb = max(y - k, 0), min(y + k, height - 1)
    xa, xb = max(x - k, 0), min(x + k, width - 1)
    b0 = _ZERO
    b1 = _ZERO
    b2 = _ZERO
    bw = _ZERO
    # the taps' sums apart (the CUDA source adds both in one; within float rounding)
    t0 = _ZERO
    t1 = _ZERO
    t2 = _ZERO
    tw = _ZERO
    rim2 = (c + _HALF) * (c + _HALF)
    in_focus = np.float32(FOCUS_RADIUS)  # float32: a float64 bound widened the vector loop
    for by in range(ya // s, yb // s + 1):
        y0 = by * s
        y1 = min(y0 + s, height)
        ey = y0 + y1 - 1 - 2 * y
        gap_y = np.float32(max(y0 - y, y - y1 + 1, 0))
        # the exact blocks of this row: ex^2 <= reach4 - ey^2, ex increasing with bx (by their centre, in whole
        # numbers: every path decides alike)
        lo = xb // s + 1
        hi = lo - 1
        for bx in range(xa // s, xb // s + 1):
            n = blocks[3, by, bx]
            if n == _ZERO:  # all near (an exact block so adds 0 too)
                continue
            x0 = bx * s
            x1 = min(x0 + s, width)
            ex = x0 + x1 - 1 - 2 * x
            if ey * ey + ex * ex <= reach4:
                lo = min(lo, bx)
                hi = bx
                continue
            gap_x = np.float32(max(x0 - x, x - x1 + 1, 0))
            # a block whose nearest pixel lies outside the disc has its centroid there too: coverage 0, skipped
            if gap_y * gap_y + gap_x * gap_x >= rim2:
                continue
            dy = blocks[4, by, bx] - np.float32(y)
            dx = blocks[5, by, bx] - np.float32(x)
            dc = np.sqrt(dy * dy + dx * dx)
            w = _coverage(c - dc + _HALF) * _proximity(dc) * n
            t0 += w * blocks[0, by, bx]
            t1 += w * blocks[1, by, bx]
            t2 += w * blocks[2, by, bx]
            tw += w
        if hi < lo:
            continue
        qx0 = max(lo * s, xa)
        qx1 = min(hi * s + s, width, xb + 1)
        # unsigned indices: no negative-index wrap-around in the loop (nor a view a row, which costs its refcount)
        j0 = np.uint64(t + qx0 - x)
        u0 = np.uint64(qx0)
        for qy in range(max(y0, ya), min(y1, yb + 1)):
            ty = np.uint64(t + qy - y)
            uy = np.uint64(qy)
            for j in range(np.uint64(qx1 - qx0)):
                if coc[uy, u0 + j] > in_focus:
                    continue
                w = _coverage(c - dist[ty, j0 + j] + _HALF) * prox[ty, j0 + j]
                b0 += w * rendered[0, uy, u0 + j]
                b1 += w * rendered[1, uy, u0 + j]
                b2 += w * rendered[2, uy, u0 + j]
                bw += w
    b0 += t0
    b1 += t1
    b2 += t2
    bw += tw
    inv = _ONE / max(bw, _TINY)
    colour[0] = b0 * inv
    colour[1] = b1 * inv
    colour[2] = b2 * inv
    return bw > _ZERO


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _block_row(y, s, hl):
    """The two rows of blocks that row y's bilinear weights take, and the lower one's weight."""
    # (y + 0.5) / s - 0.5 as one division, exact where it is whole: as (y + 0.5) * (1 / s) - 0.5 fastmath fused
    # it into an FMA, 2.8e-17 for 0 at s = 5, and a near pixel took the next row of blocks' background
    uy = min(max((2 * y + 1 - s) / (2.0 * s), 0.0), hl - 1.0)
    y0 = int(uy)
    return y0, min(y0 + 1, hl - 1), np.float32(uy - y0)


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _composite_back(img, coc, pre, exact_w, far_r, dist, s, far_exact, col_x0, col_x1, col_fx, phase_off,
                    phase_fx, rows, far_acc, far_rmax, far_mask, rendered):
    """Full resolution, everything but the near field: far pixels take the far field (the exact gather of the pairs
    with a radius below s plus the bilinear reduced one, its weights renormalised over the blocks with reduced far
    content: both sums on one scale), the others their own colour; into `rendered` (linear light, planar), what
    lies behind the near field is gathered from and the near field composites over (`_composite`).
    `dist[K + dy, K + dx]` tabulates |(dy, dx)| for the full-resolution windows (K >= 2 s); `col_x0`,
    `col_x1`, `col_fx`: each column's bilinear taps and weight, `phase_off`, `phase_fx`: the same per
    column phase x % s."""
    height, width = coc.shape
    hl = far_acc.shape[1]
    wl = far_acc.shape[2]
    shift = _far_shift(s, far_exact)
    kd = (dist.shape[0] - 1) // 2
    for i in prange(height):
        y = rows[i]
        y0, y1, fy = _block_row(y, s, hl)
        # one scratch block per row: far field 0-4, exact far 5-8, per-pixel factors 9-10
        scratch = np.empty((11, width), np.float32)
        low = np.empty((5, wl), np.float32)
        c_row = coc[y]
        far_field = scratch[0:5]  # B, G, R, weight, support
        row_has_far = _max(far_r[y]) > 0.0
        if row_has_far:
            _upsample_rows(far_acc, y0, y1, fy, s, phase_off, phase_fx, col_x0, col_x1, col_fx, low, far_field)
        else:
            far_field[:] = 0.0
        exact = scratch[5:9]
        exact[:] = 0.0
        if row_has_far and _max(far_rmax[max(y - kd, 0):min(y + kd + 1, height)]) >= 0.0:
            _gather_exact_far(y, shift, pre, exact_w, far_r, dist, far_rmax, far_mask, exact)
        is_far = np.empty(width, np.bool_)
        t = scratch[9]
        inv_far = scratch[10]
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
        # through a flat view the stride-3 byte loads vectorise (`_reduce`)
        img_flat = img[y].reshape(3 * width)
        for ch in range(3):
            ex = exact[ch]
            ff = far_field[ch]
            dst = rendered[ch, y]
            for x in range(width):
                v = np.float32(img_flat[3 * x + ch])
                g = (ex[x] + t[x] * ff[x]) * inv_far[x]
                dst[x] = g if is_far[x] else v * v


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _composite(coc, pre, exact_w, dist, s, exact_reach, col_x0, col_x1, col_fx, phase_off, phase_fx, rows, near_acc,
               behind_acc, near_rows, near_span, near_cmax, near_mask, fade, behind_blocks, blocks, rendered, out):
    """Full resolution: near pixels take what lies behind them (`_behind_colour_at`, faded in from themselves while
    the even coverage of the pixels not near, bilinear from the reduced sums and for a CoC below 2 s cross-faded into
    its exact gather, `_add_small_behind`, is less than `fade` c^2: `_behind_weights`), the others their render
    (`_composite_back`), then the near field's coverage composites its colour over. `blocks`: `_behind_block_stats`;
    `near_rows[q]`: whether reduced row q has any near coverage."""
    height, width = coc.shape
    hl = near_acc.shape[1]
    wl = near_acc.shape[2]
    reach4 = int(4.0 * exact_reach * exact_reach)
    b_dist, b_prox = _behind_tables(exact_reach, s)
    for i in prange(height):
        y = rows[i]
        y0, y1, fy = _block_row(y, s, hl)
        # one scratch block per row: near field 0-4, behind the near field 5-7, its even coverage 8, per-pixel
        # factors 10-14
        scratch = np.empty((15, width), np.float32)
        low = np.empty((5, wl), np.float32)
        c_row = coc[y]
        near = scratch[0:5]  # B, G, R, weight, coverage
        near[:] = 0.0
        if near_rows[y0] or near_rows[y1]:
            _upsample_rows(near_acc, y0, y1, fy, s, phase_off, phase_fx, col_x0, col_x1, col_fx, low, near)
        if _max(near_cmax[max(y - NEAR_EXACT * s, 0):min(y + NEAR_EXACT * s + 1, height)]) >= 0.0:
            _add_small_near(y, coc, pre, exact_w, dist, near_span, near_cmax, near_mask, near)
        behind = scratch[5:8]  # B, G, R
        count = scratch[8:9]
        row_has_near = _max(c_row) > FOCUS_RADIUS
        is_near = np.zeros(width, np.bool_)
        mean_k = scratch[10]
        own_k = scratch[11]
        if row_has_near:
            _upsample_rows(behind_acc, y0, y1, fy, s, phase_off, phase_fx, col_x0, col_x1, col_fx, low, count)
            if near_cmax[y] >= 0.0:  # the row's small near pixels: their even coverage, exactly
                _add_small_behind(y, coc, s, dist, near_span, behind_blocks, count[0])
            _behind_weights(c_row, count[0], fade, is_near, mean_k, own_k)
            colour = np.empty(3, np.float32)
            cover = near[4]
            near_h = near[3]
            for x in range(width):
                if is_near[x] and mean_k[x] > _ZERO and cover[x] >= _ONE and near_h[x] > np.float32(1e-20):
                    mean_k[x] = _ZERO  # the near field covers it whole (alpha 1): what lies behind cannot show
                    own_k[x] = _ONE
                if is_near[x] and mean_k[x] > _ZERO:
                    # the blocks' even coverage reaches up to ~2 s px past the disc: where it does, the colour of
                    # the nearest pixels not near there (as own colour instead, a 35-level step where it begins)
                    if _behind_colour_at(y, x, c_row[x], coc, rendered, blocks, s, reach4, b_dist, b_prox, colour) or \
                            _behind_colour_at(y, x, c_row[x] + NEAR_EXACT * s, coc, rendered, blocks, s, reach4,
                                              b_dist, b_prox, colour):
                        behind[0, x] = colour[0]
                        behind[1, x] = colour[1]
                        behind[2, x] = colour[2]
                    else:  # no pixel not near in reach after all: its own colour
                        mean_k[x] = _ZERO
                        own_k[x] = _ONE
        alpha = scratch[12]
        inv_near = scratch[13]
        cover = near[4]
        near_h = near[3]
        for x in range(width):
            has_near = (cover[x] > _ZERO) & (near_h[x] > np.float32(1e-20))
            # with the highlight boost's weight (`dof_reference.near_alpha`): exactly the coverage without a boost
            cv = cover[x]
            rest = _ONE - cv
            a = _ONE if cv >= _ONE else cv + (near_h[x] - cv) * rest / (near_h[x] + rest)
            alpha[x] = a if has_near else _ZERO
            inv_near[x] = _ONE / max(near_h[x], _TINY)
        out_flat = out[y].reshape(3 * width)
        own = scratch[14]
        result = np.empty((3, width), np.uint8)
        for ch in range(3):
            src = rendered[ch, y]
            for x in range(width):
                own[x] = src[x]
            nn = near[ch]
            if row_has_near:  # only here is `behind` filled
                bb = behind[ch]
                for x in range(width):
                    if is_near[x] and mean_k[x] > _ZERO:
                        own[x] = bb[x] * mean_k[x] + own_k[x] * own[x]
            res = result[ch]
            for x in range(width):
                o = own[x]
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
