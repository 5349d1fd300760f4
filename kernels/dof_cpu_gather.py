"""The CPU depth of field's second pass: the scatter-as-gather at reduced resolution (`_gather`): far field, near
field and how much of what lies behind it is seen (its even coverage)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

import kernels.numba_cache  # noqa: F401 (first: every cached kernel's stamp is the whole package's sources)
from kernels.dof import FOCUS_RADIUS
from kernels.dof_cpu_common import _HALF, _INV_PI, _ONE, _ZERO, _add_product, _add_weighted4, _coverage, _max


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


@njit(cache=True, fastmath=True, error_model="numpy")
def _cut_blocks(ws, row_share, takes_last_column, column_share):
    """Weights of a run of source blocks times the share of each block inside the frame: `row_share` for the
    source row, `column_share` for its last block where the run takes the frame's last column."""
    if row_share < _ONE:
        for j in range(ws.shape[0]):
            ws[j] *= row_share
    if takes_last_column:
        ws[ws.shape[0] - 1] *= column_share


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _gather(low_f, low_fr, ring_n, ring_nr, low_b, low_br, rows, dist, far_acc, near_acc, behind_acc, near_rows,
            last_row_share, last_column_share):
    """Scatter-as-gather at reduced resolution: far field with the min-radius rule, near field by coverage.
    `dist[K + dy, K + dx]` tabulates |(dy, dx)| (K >= every window). Far output is zero where the pixel
    itself holds no reduced far content, its fifth channel 1 where it does (the composite's support);
    `near_rows[py]`: whether row py has any near coverage. Behind the near field: how much of the near pixels' own
    (mean) radius the pixels not near cover (uniform weights, where the block holds near pixels): the even coverage
    that fades their backdrop in (`dof_reference._behind`); its colour is gathered per pixel once the far field is
    rendered (`dof_cpu_composite._behind_colour_at`).
    The blocks hold means; the last row and column of blocks may be cut by the frame (`last_row_share`,
    `last_column_share`: the share of s inside it). The far field and what lies behind the near field skip what
    is outside the frame, so a cut block weighs its pixels only (taken whole, a one-row block counted as s rows:
    a 31-row frame's far gradient at s = 6 was 14 levels off the reference in its last rows, 2 so); the near field
    continues the frame's edge beyond it: its blocks (`ring_n`, `ring_nr`: `low_n`, `low_nr` inside a ring of blocks
    made of the frame's edge pixels alone, `dof_cpu_reduce._near_ring`), the last row and column standing for their part
    outside too."""
    hl, wl = low_fr.shape
    kd = (dist.shape[0] - 1) // 2
    ia_far = _inverse_area(low_fr)
    ia_near = _inverse_area(ring_nr)
    max_fr = _row_max(low_fr)
    max_nr = _row_max(ring_nr)
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
        behind = np.zeros((1, wl), np.float32)
        rb = np.empty(wl, np.float32)
        for px in range(wl):
            rb[px] = max(low_br[py, px], _HALF) if low_br[py, px] >= 0.0 else np.float32(-1e30)
        w = np.empty(wl, np.float32)
        rp_max = max(max_fr[py], FOCUS_RADIUS)
        # rows outside the frame: the far field skips them, the near field takes the ring's edge row
        for qv in range(py - kd, py + kd + 1):
            qy = min(max(qv, 0), hl - 1)
            qe = min(max(qv, -1), hl) + 1  # the ring's row
            drow = dist[kd + qv - py]
            row_share = last_row_share if qy == hl - 1 else _ONE
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
                    _cut_blocks(ws, row_share, p1 + dx == wl, last_column_share)
                    _add_product(behind[0, p0:p1], ws, low_b[3, qy, p0 + dx:p1 + dx])
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
                    _cut_blocks(ws, row_share, p1 + dx == wl, last_column_share)
                    _add_weighted4(far, 0, p0, p1, ws, low_f, qy, p0 + dx)
            if max_nr[qe] >= 0.0:
                lim = max(max_nr[qe], FOCUS_RADIUS) + 0.5
                for dx in range(-kd, kd + 1):
                    d = drow[kd + dx]
                    if d >= lim:
                        continue
                    p0 = max(0, -dx)
                    p1 = min(wl, wl - dx)
                    n = p1 - p0  # <= 0: the offset is wider than the frame (a negative slice end would wrap)
                    edge = _HALF - d
                    if n > 0:
                        rq = ring_nr[qe, 1 + p0 + dx:1 + p1 + dx]
                        iaq = ia_near[qe, 1 + p0 + dx:1 + p1 + dx]
                        ws = w[:n]
                        for j in range(n):
                            ws[j] = _coverage(max(rq[j], _HALF) + edge) * iaq[j]
                        _add_weighted4(near, 0, p0, p1, ws, ring_n, qe, 1 + p0 + dx)
                        _add_product(near[4, p0:p1], ws, ring_n[4, qe, 1 + p0 + dx:1 + p1 + dx])
                    # the columns whose source lies beyond the frame's side take the ring's block on that side
                    side = wl + 1 if dx > 0 else 0
                    e0, e1 = (max(wl - dx, 0), wl) if dx > 0 else (0, min(-dx, wl))
                    if e1 > e0 and ring_nr[qe, side] >= 0.0:
                        we = _coverage(max(ring_nr[qe, side], _HALF) + edge) * ia_near[qe, side]
                        for ch in range(5):
                            value = we * ring_n[ch, qe, side]
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
        for px in range(wl):
            behind_acc[0, py, px] = behind[0, px]
        near_rows[py] = _max(near[4]) > 0.0
