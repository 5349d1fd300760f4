"""The CPU depth of field's exact gathers at full resolution, of the CoCs too small for the reduced gather (far
below s, or 2 s with exact_far; near below 2 s: NEAR_EXACT): the chunks of small pixels reaching each distance
(`_reach_masks`, marked by the reduce pass) and each row's near (`_add_small_near`) and far (`_gather_exact_far`)
taps, for the composite."""
from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

import kernels.numba_cache  # noqa: F401 (first: every cached kernel's stamp is the whole package's sources)
from kernels.dof_cpu_common import CHUNK, CHUNK_SHIFT, _HALF, _ONE, _UNFUSED, _ZERO, _coverage, _max, _share
from kernels.dof_cpu_lanes import _far_taps8, _far_taps8_offsets, _near_taps8


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


@njit(cache=True, fastmath=_UNFUSED, error_model="numpy")
def _near_taps(near, pre, coc, exact_w, qy, p0, p1, dx, edge):
    """near[:, p] += the small near tap of source (qy, p + dx) at distance 0.5 - edge, for p in [p0, p1): the
    colours weighed by `_coverage(coc + edge) * exact_w`, and that weight (coverage). A far source's `exact_w` is
    its inverse area, but its coverage here is 0 (CoC < -1/2). Neither reassociated nor fused (`_UNFUSED`), as
    `_near_taps8` in its callers."""
    for p in range(p0, p1):
        q = p + dx
        w = _coverage(coc[qy, q] + edge) * exact_w[qy, q]
        for ch in range(4):
            near[ch, p] += w * pre[ch, qy, q]
        near[4, p] += w


@njit(cache=True, fastmath=_UNFUSED, error_model="numpy")
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
    depth, and s + 1 masks a row rather than ~s^2 / 3 (985 at a 512 px blur, s = 57). Chunk by chunk, each up to
    the first distance it does not reach: a chunk without small pixels costs one test rather than one a distance
    (the far masks of a 1080p frame of real depth at exact_far: 2.4 -> 1.7 ms)."""
    masks[:] = 0
    if span[0] > span[1]:
        return
    k0 = span[0] // CHUNK
    k1 = span[1] // CHUNK + 1
    width = small.shape[0]
    for k in range(k0, k1):  # a chunk reaches a distance when its largest small radius does
        chunk_max[k] = _max(small[k * CHUNK:min(k * CHUNK + CHUNK, width)])
    for k in range(k0, k1):
        bit = np.uint64(1) << np.uint64(k & 63)
        b = 0
        # -1 + 1/2 <= 0: a chunk without small pixels reaches none; r + 1/2 - b falls with b: none farther
        while b < masks.shape[0] and chunk_max[k] + (_HALF - np.float32(b)) > _ZERO:
            masks[b, k >> 6] |= bit
            b += 1


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _word(words, w):
    """Word w of the chunk bits `words` (0 beyond them)."""
    return words[w] if (w >= 0) & (w < words.shape[0]) else np.uint64(0)


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _source_bits(sources, word, dx):
    """Word `word` of the receivers whose sources, dx columns on, lie in a chunk set in `sources`: receiver chunk k
    reads the source chunks k + j and, unless dx is a multiple of CHUNK, k + j + 1 (j = floor(dx / CHUNK)). Both from
    the same two words, with no branch on the shift: a general word shift for each of the two (a Python floor
    division, a branch at shift 0) took the exact far gather 15-20 % longer on real depth."""
    j = dx >> CHUNK_SHIFT  # floor, also below 0
    first = word + (j >> 6)
    lo = _word(sources, first)
    hi = _word(sources, first + 1)
    shift = np.uint64(j & 63)
    bits = (lo >> shift) | ((hi << np.uint64(1)) << (np.uint64(63) - shift))  # hi << (64 - shift), 0 at shift 0
    if dx & (CHUNK - 1):
        bits |= ((lo >> shift) >> np.uint64(1)) | (hi << (np.uint64(63) - shift))  # one chunk farther
    return bits


@njit(cache=True, fastmath=_UNFUSED, error_model="numpy")
def _far_taps(exact, pre, far_r, exact_w, y, qy, p0, p1, dx, edge, shift):
    """exact[:, p] += the exact far tap of source (qy, p + dx) at distance 0.5 - edge on receiver (y, p), for p in
    [p0, p1): radius min(r_q, r_p), 1/area of the smaller disc (the larger inverse), weighed by 1 - t_q t_p.
    The weight's factors in `_far_taps8`'s order, neither reassociated nor fused (`_UNFUSED`, as its callers): the
    same sums on every CPU."""
    for p in range(p0, p1):
        q = p + dx
        rq = far_r[qy, q]
        rp = far_r[y, p]
        exact_share = _ONE - _share(rq, shift) * _share(rp, shift)
        w = (exact_share * max(exact_w[qy, q], exact_w[y, p])) * _coverage(min(rq, rp) + edge)
        for ch in range(4):
            exact[ch, p] += w * pre[ch, qy, q]


@njit(cache=True, fastmath=_UNFUSED, error_model="numpy")
def _far_taps_side(exact, pre, far_r, exact_w, y, qy, p0, dxs, edges, bits, n, k, shift):
    """`_far_taps8_offsets` of a chunk at the frame's sides: each offset whose bit k is set, one step at a time, its
    receivers and sources inside the frame."""
    width = far_r.shape[1]
    for i in range(n):
        if (bits[i] >> np.uint64(k)) & np.uint64(1):
            dx = dxs[i]
            q0 = p0 + dx
            if q0 >= 0 and q0 + CHUNK <= width and p0 + CHUNK <= width:
                _far_taps8(exact, pre, far_r, exact_w, y, qy, p0, q0, edges[i], shift)
            else:
                _far_taps(exact, pre, far_r, exact_w, y, qy, max(p0, -dx), min(p0 + CHUNK, width, width - dx), dx,
                          edges[i], shift)


@njit(cache=True, fastmath=_UNFUSED, error_model="numpy")
def _gather_exact_far(y, shift, pre, exact_w, far_r, dist, far_rmax, far_mask, exact):
    """Row y's exact share of the far field into `exact` (B, G, R, weight): every pair (q, p) whose radius
    min(r_q, r_p) falls below s (2 s with exact_far: `shift`), at full resolution with the min-radius rule, weighed
    by 1 - t_q t_p (the reduced gather carries t_q t_p: t_q in its block sums, t_p in the composite). Such a pair has
    a small receiver p or a small source q, so its distance is below that pixel's radius + 1/2 (< s + 1/2); an
    offset's taps go to the chunks of receivers in row y that hold a small one reaching it, or whose sources in
    row qy do (`far_mask`, `_reach_masks`): the taps left out add exactly 0. Per source row, each such chunk takes
    all its offsets in one step (`_far_taps8_offsets`), its sums in registers: a chunk step per offset loaded and
    stored the four sums each time, most of the gather's time (on real 1080p depth a source row holds ~7 offsets,
    ~15 chunks each). Each receiver takes its taps in the order of the row stencils this replaced (rows, then
    offsets, ascending): the same sums."""
    kd = (dist.shape[0] - 1) // 2
    height, width = far_r.shape
    words = far_mask.shape[2]
    # the source row's offsets within reach, ascending: dx, 1/2 - distance, whole distance, and per mask word the
    # chunks of receivers each one reaches
    dxs = np.empty(2 * kd + 1, np.int64)
    edges = np.empty(2 * kd + 1, np.float32)
    whole = np.empty(2 * kd + 1, np.int64)
    bits = np.empty(2 * kd + 1, np.uint64)
    for qy in range(max(y - kd, 0), min(y + kd + 1, height)):
        bound = max(far_rmax[y], far_rmax[qy])
        if bound < 0.0:
            continue
        lim = bound + 0.5
        drow = dist[kd + qy - y]
        n = 0
        for dx in range(-kd, kd + 1):
            d = drow[kd + dx]
            if d < lim:
                dxs[n] = dx
                edges[n] = _HALF - d
                whole[n] = int(d)
                n += 1
        for word in range(words):
            chunks = np.uint64(0)
            for i in range(n):
                # the receivers [p0, p0 + CHUNK) take the sources [p0 + dx, p0 + dx + CHUNK)
                b = whole[i]
                bits[i] = far_mask[y, b, word] | _source_bits(far_mask[qy, b], word, dxs[i])
                chunks |= bits[i]
            while chunks:
                k = trailing_zeros(chunks)
                chunks &= chunks - np.uint64(1)
                p0 = CHUNK * (64 * word + k)
                if p0 >= kd and p0 + CHUNK + kd <= width:  # every offset's sources inside the frame
                    _far_taps8_offsets(exact, pre, far_r, exact_w, y, qy, p0, dxs, edges, bits, n, k, shift)
                else:
                    _far_taps_side(exact, pre, far_r, exact_w, y, qy, p0, dxs, edges, bits, n, k, shift)
