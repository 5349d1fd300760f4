"""CPU depth of field: three Numba passes (reduce, gather at reduced resolution, full-resolution composite).

The semantics are those of `kernels.dof` (and `dof_reference`, which this equals at scale 1).
Why a reduced-resolution gather: a full-resolution disc gather at a 16 px radius costs ~800
samples per pixel, about a second per VGA frame on two cores; at scale s the same disc is
(16/s)^2 * pi samples on 1/s^2 of the pixels. `kernels/depth_of_field.cu` mirrors these passes.
"""
from __future__ import annotations

import functools
import math
import threading

import cv2
import numpy as np
from numba import njit, prange

from kernels.cpu_threads import parallel_section
from kernels.dof import FOCUS_RADIUS, GAMMA, HIGHLIGHT_THRESHOLD, DofPlan, plan

_LINEAR_LUT = ((np.arange(256, dtype=np.float64) / 255.0) ** GAMMA).astype(np.float32)
_INV_PI = 1.0 / math.pi


@njit(inline="always", cache=True, error_model="numpy")
def _split(r: float, s: int) -> float:
    """Share of a CoC handled by the reduced gather; the rest is gathered exactly at full resolution.

    A CoC below s - 1 cannot be represented at 1/s resolution (the block alone blurs more), so it is
    gathered at full resolution, where its window is at most (2s + 1)^2; above s the reduced gather
    takes over; between the two the weights cross-fade linearly.
    """
    if s == 1:
        return 1.0
    return min(max(r - (s - 1.0), 0.0), 1.0)


@njit(inline="always", cache=True, error_model="numpy")
def _disc_weight(re: float, dy: int, dx: int) -> float:
    cov = re - math.sqrt(dy * dy + dx * dx) + 0.5
    if cov <= 0.0:
        return 0.0
    return min(cov, 1.0) * _INV_PI / (re * re + 1.0 / 12.0)


@njit(inline="always", cache=True, error_model="numpy")
def _bilerp(a, y0, y1, x0, x1, fy, fx):
    top = a[y0, x0] + fx * (a[y0, x1] - a[y0, x0])
    bottom = a[y1, x0] + fx * (a[y1, x1] - a[y1, x0])
    return top + fy * (bottom - top)


@njit(inline="always", cache=True, error_model="numpy")
def _bilerp_ch(a, ch, y0, y1, x0, x1, fy, fx):
    top = a[y0, x0, ch] + fx * (a[y0, x1, ch] - a[y0, x0, ch])
    bottom = a[y1, x0, ch] + fx * (a[y1, x1, ch] - a[y1, x0, ch])
    return top + fy * (bottom - top)


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _reduce(img, disp, s, focus, coc_scale, coc_max, boost, lut, coc, pre, inv_area,
            low_f, low_fr, low_n, low_nm, low_nr, small_x, small_n, small_k):
    """Full resolution: CoC, premultiplied colour (h*B, h*G, h*R, h) and inverse disc area.
    Per s x s block: far and near premultiplied colour, weight, coverage and mean radius (reduced px).
    Per row: the columns of near pixels too small for the reduced gather (`small_x[y, :small_n[y]]`,
    ascending) and the largest half-width of their discs (`small_k[y]`, -1: none), which the composite
    scatters exactly."""
    height, width = disp.shape
    hl, wl = low_fr.shape
    inv_thr = 1.0 / (1.0 - HIGHLIGHT_THRESHOLD)
    for by in prange(hl):
        y0 = by * s
        y1 = min(y0 + s, height)
        for y in range(y0, y1):
            small_n[y] = 0
            small_k[y] = -1
        for bx in range(wl):
            x0 = bx * s
            x1 = min(x0 + s, width)
            f0 = f1 = f2 = fh = fr = 0.0
            n0 = n1 = n2 = nh = nm = nr = 0.0
            fcount = 0
            for y in range(y0, y1):
                for x in range(x0, x1):
                    # clamped: a disparity outside [0, 1] blurs like the nearest extreme, not beyond it
                    c = min(max((disp[y, x] - focus) * coc_scale, -coc_max), coc_max)
                    coc[y, x] = c
                    if -FOCUS_RADIUS <= c <= FOCUS_RADIUS:
                        continue  # in focus: the gathers never read its colour, weight or area
                    hw = 1.0
                    if boost > 0.0:
                        lum = 0.0722 * lut[img[y, x, 0]] + 0.7152 * lut[img[y, x, 1]] + 0.2126 * lut[img[y, x, 2]]
                        if lum > HIGHLIGHT_THRESHOLD:
                            hw += boost * (lum - HIGHLIGHT_THRESHOLD) * inv_thr
                    b = np.float32(img[y, x, 0])
                    g = np.float32(img[y, x, 1])
                    r = np.float32(img[y, x, 2])
                    pre[y, x, 0] = hw * b
                    pre[y, x, 1] = hw * g
                    pre[y, x, 2] = hw * r
                    pre[y, x, 3] = hw
                    ra = max(abs(c), FOCUS_RADIUS)
                    inv_area[y, x] = _INV_PI / (ra * ra + 1.0 / 12.0)
                    if c < 0.0:
                        f0 += hw * b
                        f1 += hw * g
                        f2 += hw * r
                        fh += hw
                        fr -= c
                        fcount += 1
                    else:
                        t = _split(c, s)
                        if t < 1.0:
                            small_x[y, small_n[y]] = x  # blocks run left to right: columns ascend
                            small_n[y] += 1
                            small_k[y] = max(small_k[y], int(math.ceil(c + 0.5)) - 1)
                        n0 += t * hw * b
                        n1 += t * hw * g
                        n2 += t * hw * r
                        nh += t * hw
                        nm += t
                        nr += t * c
            inv_n = 1.0 / ((y1 - y0) * (x1 - x0))
            low_f[by, bx, 0] = f0 * inv_n
            low_f[by, bx, 1] = f1 * inv_n
            low_f[by, bx, 2] = f2 * inv_n
            low_f[by, bx, 3] = fh * inv_n
            low_fr[by, bx] = fr / (fcount * s) if fcount > 0 else -1.0
            low_n[by, bx, 0] = n0 * inv_n
            low_n[by, bx, 1] = n1 * inv_n
            low_n[by, bx, 2] = n2 * inv_n
            low_n[by, bx, 3] = nh * inv_n
            low_nm[by, bx] = nm * inv_n
            low_nr[by, bx] = nr / (nm * s) if nm > 0.0 else -1.0  # mean radius of the reduced share


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _gather(low_f, low_fr, low_n, low_nm, low_nr, reach, rows, dist, far_acc, near_acc, near_a):
    """Scatter-as-gather at reduced resolution: far field with the min-radius rule, near field by coverage.
    `dist[K + dy, K + dx]` tabulates |(dy, dx)| (K >= every window); sqrt and division leave the loop."""
    hl, wl = low_fr.shape
    kd = (dist.shape[0] - 1) // 2
    # inverse disc areas of the reduced pixels (radius clamped to the pixel)
    ia_far = np.empty((hl, wl), np.float32)
    ia_near = np.empty((hl, wl), np.float32)
    for qy in range(hl):
        for qx in range(wl):
            rf = max(low_fr[qy, qx], FOCUS_RADIUS)
            rn = max(low_nr[qy, qx], FOCUS_RADIUS)
            ia_far[qy, qx] = _INV_PI / (rf * rf + 1.0 / 12.0)
            ia_near[qy, qx] = _INV_PI / (rn * rn + 1.0 / 12.0)
    for i in prange(hl):
        py = rows[i]
        for px in range(wl):
            rp = low_fr[py, px]
            a0 = a1 = a2 = a3 = 0.0
            if rp >= 0.0:
                rpc = max(rp, FOCUS_RADIUS)
                iap = ia_far[py, px]
                k = min(int(math.ceil(rpc + 0.5)) - 1, kd)  # largest offset with |o| < r + 0.5
                for qy in range(max(py - k, 0), min(py + k + 1, hl)):
                    drow = dist[kd + qy - py]
                    for qx in range(max(px - k, 0), min(px + k + 1, wl)):
                        rq = low_fr[qy, qx]
                        if rq < 0.0:
                            continue
                        # radius min(r_q, r_p) (>= 0.5); 1/area of the smaller disc is the larger inverse
                        cov = max(min(rq, rpc), FOCUS_RADIUS) - drow[kd + qx - px] + 0.5
                        if cov <= 0.0:
                            continue
                        w = min(cov, 1.0) * max(ia_far[qy, qx], iap)
                        a0 += w * low_f[qy, qx, 0]
                        a1 += w * low_f[qy, qx, 1]
                        a2 += w * low_f[qy, qx, 2]
                        a3 += w * low_f[qy, qx, 3]
            far_acc[py, px, 0] = a0
            far_acc[py, px, 1] = a1
            far_acc[py, px, 2] = a2
            far_acc[py, px, 3] = a3
            b0 = b1 = b2 = b3 = ba = 0.0
            kn = reach[py, px]
            for qy in range(max(py - kn, 0), min(py + kn + 1, hl)):
                drow = dist[kd + qy - py]
                for qx in range(max(px - kn, 0), min(px + kn + 1, wl)):
                    rq = low_nr[qy, qx]
                    if rq < 0.0:
                        continue
                    cov = max(rq, FOCUS_RADIUS) - drow[kd + qx - px] + 0.5
                    if cov <= 0.0:
                        continue
                    w = min(cov, 1.0) * ia_near[qy, qx]
                    b0 += w * low_n[qy, qx, 0]
                    b1 += w * low_n[qy, qx, 1]
                    b2 += w * low_n[qy, qx, 2]
                    b3 += w * low_n[qy, qx, 3]
                    ba += w * low_nm[qy, qx]
            near_acc[py, px, 0] = b0
            near_acc[py, px, 1] = b1
            near_acc[py, px, 2] = b2
            near_acc[py, px, 3] = b3
            near_a[py, px] = ba


@njit(inline="always", cache=True, fastmath=True, error_model="numpy")
def _scatter_small_near(y, coc, pre, inv_area, dist, s, small_x, small_n, small_k):
    """Row y's share of the near pixels too small for the reduced gather: each scatters its exact disc
    (premultiplied B, G, R, h and coverage) into a row buffer. Scattering from the per-row lists visits
    only those pixels and only their own discs, where a gather visited the window of the largest disc
    around at every pixel near them; the terms arrive in a gather's order (source rows, then columns,
    ascending), summed apart from the reduced near field and added to it in the composite. `small_k[qy]`: the largest disc half-width in row qy (-1: none), so rows
    out of reach are skipped whole. Returns the buffer (5 x n) and the column of its first entry."""
    kd = (dist.shape[0] - 1) // 2
    height, width = coc.shape
    q0 = max(y - s, 0)
    q1 = min(y + s + 1, height)
    lo = width
    hi = -1
    for qy in range(q0, q1):
        kr = small_k[qy]
        if kr >= abs(qy - y):
            lo = min(lo, small_x[qy, 0] - kr)
            hi = max(hi, small_x[qy, small_n[qy] - 1] + kr)
    lo = max(lo, 0)
    hi = min(hi, width - 1)
    buf = np.zeros((5, max(hi - lo + 1, 0)), np.float64)
    for qy in range(q0, q1):
        dy = abs(qy - y)
        if small_k[qy] < dy:
            continue
        drow = dist[kd + qy - y]
        for j in range(small_n[qy]):
            qx = small_x[qy, j]
            cq = coc[qy, qx]
            k = min(int(math.ceil(cq + 0.5)) - 1, kd)
            if dy > k:
                continue
            wq = (1.0 - _split(cq, s)) * inv_area[qy, qx]
            p0 = pre[qy, qx, 0]
            p1 = pre[qy, qx, 1]
            p2 = pre[qy, qx, 2]
            p3 = pre[qy, qx, 3]
            base = kd - qx  # the table is symmetric: index |px - qx| ascending
            for px in range(max(qx - k, 0), min(qx + k + 1, width)):
                cov = cq - drow[base + px] + 0.5
                if cov <= 0.0:
                    continue
                a = min(cov, 1.0) * wq
                i = px - lo
                buf[0, i] += a * p0
                buf[1, i] += a * p1
                buf[2, i] += a * p2
                buf[3, i] += a * p3
                buf[4, i] += a
    return buf, lo


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _composite(img, coc, pre, inv_area, dist, s, col_x0, col_fx, rows, far_acc, near_acc, near_a,
               small_x, small_n, small_k, out):
    """Full resolution: far pixels take the far field (exact small-CoC gather cross-faded with the
    bilinear, support-weighted reduced one), then the near field's coverage composites its colour over.
    `dist[K + dy, K + dx]` tabulates |(dy, dx)| for the full-resolution windows (K >= s + 1); `col_x0`,
    `col_fx`: each column's left bilinear tap and weight (per-pixel integer division is not free)."""
    kd = (dist.shape[0] - 1) // 2
    height, width = coc.shape
    hl, wl = near_a.shape
    inv_s = 1.0 / s
    for i in prange(height):
        y = rows[i]
        uy = min(max((y + 0.5) * inv_s - 0.5, 0.0), hl - 1.0)
        y0 = int(uy)
        fy = uy - y0
        y1 = min(y0 + 1, hl - 1)
        small, small_lo = _scatter_small_near(y, coc, pre, inv_area, dist, s, small_x, small_n, small_k)
        small_hi = small_lo + small.shape[1]
        for x in range(width):
            x0 = col_x0[x]
            fx = col_fx[x]
            x1 = min(x0 + 1, wl - 1)
            o0 = np.float32(img[y, x, 0])
            o1 = np.float32(img[y, x, 1])
            o2 = np.float32(img[y, x, 2])
            c = coc[y, x]
            if c < -FOCUS_RADIUS:
                rp = -c
                t = _split(rp, s)
                g0 = g1 = g2 = 0.0
                if t < 1.0:
                    # exact far gather: the min-radius rule bounds its window by the pixel's own CoC (< s)
                    gh = 0.0
                    iap = inv_area[y, x]
                    k = min(int(math.ceil(rp + 0.5)) - 1, kd)
                    for qy in range(max(y - k, 0), min(y + k + 1, height)):
                        drow = dist[kd + qy - y]
                        for qx in range(max(x - k, 0), min(x + k + 1, width)):
                            cq = coc[qy, qx]
                            if cq >= -FOCUS_RADIUS:
                                continue
                            # radius min(r_q, r_p); 1/area of the smaller disc is the larger inverse
                            cov = min(-cq, rp) - drow[kd + qx - x] + 0.5
                            if cov <= 0.0:
                                continue
                            w = min(cov, 1.0) * max(inv_area[qy, qx], iap)
                            g0 += w * pre[qy, qx, 0]
                            g1 += w * pre[qy, qx, 1]
                            g2 += w * pre[qy, qx, 2]
                            gh += w * pre[qy, qx, 3]
                    g0 /= gh
                    g1 /= gh
                    g2 /= gh
                if t > 0.0:
                    den = _bilerp_ch(far_acc, 3, y0, y1, x0, x1, fy, fx)
                    f0 = _bilerp_ch(far_acc, 0, y0, y1, x0, x1, fy, fx)
                    f1 = _bilerp_ch(far_acc, 1, y0, y1, x0, x1, fy, fx)
                    f2 = _bilerp_ch(far_acc, 2, y0, y1, x0, x1, fy, fx)
                    # den > 0: p's own block holds a far pixel and weighs >= 1/4 in the bilinear
                    g0 += t * (f0 / den - g0)
                    g1 += t * (f1 / den - g1)
                    g2 += t * (f2 / den - g2)
                o0 = g0
                o1 = g1
                o2 = g2
            alpha = _bilerp(near_a, y0, y1, x0, x1, fy, fx)
            n0 = n1 = n2 = nh = 0.0
            if alpha > 0.0:
                nh = _bilerp_ch(near_acc, 3, y0, y1, x0, x1, fy, fx)
                n0 = _bilerp_ch(near_acc, 0, y0, y1, x0, x1, fy, fx)
                n1 = _bilerp_ch(near_acc, 1, y0, y1, x0, x1, fy, fx)
                n2 = _bilerp_ch(near_acc, 2, y0, y1, x0, x1, fy, fx)
            if small_lo <= x < small_hi:
                i = x - small_lo
                n0 += small[0, i]
                n1 += small[1, i]
                n2 += small[2, i]
                nh += small[3, i]
                alpha += small[4, i]
            if alpha > 0.0 and nh > 1e-20:
                alpha = min(alpha, 1.0)
                o0 += alpha * (n0 / nh - o0)
                o1 += alpha * (n1 / nh - o1)
                o2 += alpha * (n2 / nh - o2)
            out[y, x, 0] = np.uint8(min(max(o0 + 0.5, 0.0), 255.0))
            out[y, x, 1] = np.uint8(min(max(o1 + 0.5, 0.0), 255.0))
            out[y, x, 2] = np.uint8(min(max(o2 + 0.5, 0.0), 255.0))


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
def _bilinear_columns(width: int, s: int, wl: int) -> tuple[np.ndarray, np.ndarray]:
    ux = np.clip((np.arange(width) + 0.5) / s - 0.5, 0.0, wl - 1.0)
    x0 = np.floor(ux).astype(np.int64)
    return x0, (ux - x0).astype(np.float64)


def near_reach_map(low_nr: np.ndarray, near_reach: int) -> np.ndarray:
    """Per reduced pixel, the half-window that covers every near disc reaching it (-1: none does)."""
    size = 2 * near_reach + 1
    reach = cv2.dilate(low_nr, np.ones((size, size), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=-1.0)
    return np.where(reach >= 0.0, np.ceil(np.maximum(reach, FOCUS_RADIUS) + 0.5) - 1, -1).astype(np.int32)


class _Workspace:
    """Per-frame-size work arrays. Reused between frames: fresh multi-megabyte allocations cost page
    faults (~1 ms a VGA frame); one workspace per thread keeps concurrent callers apart."""

    def __init__(self, shape: tuple[int, int], low_shape: tuple[int, int]) -> None:
        hl, wl = low_shape
        self.key = (shape, low_shape)
        self.coc = np.empty(shape, np.float32)
        self.pre = np.empty(shape + (4,), np.float32)
        self.inv_area = np.empty(shape, np.float32)
        self.low_f = np.empty((hl, wl, 4), np.float32)
        self.low_n = np.empty((hl, wl, 4), np.float32)
        self.low_fr = np.empty((hl, wl), np.float32)
        self.low_nm = np.empty((hl, wl), np.float32)
        self.low_nr = np.empty((hl, wl), np.float32)
        self.small_x = np.empty(shape, np.int32)
        self.small_n = np.empty(shape[0], np.int32)
        self.small_k = np.empty(shape[0], np.int32)
        self.far_acc = np.empty((hl, wl, 4), np.float32)
        self.near_acc = np.empty((hl, wl, 4), np.float32)
        self.near_a = np.empty((hl, wl), np.float32)


_local = threading.local()


def _workspace(shape: tuple[int, int], low_shape: tuple[int, int]) -> _Workspace:
    ws = getattr(_local, "workspace", None)
    if ws is None or ws.key != (shape, low_shape):
        ws = _local.workspace = _Workspace(shape, low_shape)
    return ws


def render(image_bgr: np.ndarray, disparity: np.ndarray, p: DofPlan) -> np.ndarray:
    img = np.ascontiguousarray(image_bgr)
    disp = np.ascontiguousarray(disparity, dtype=np.float32)
    hl, wl = p.low_shape
    w = _workspace(disp.shape, p.low_shape)
    focus, coc_scale = np.float32(p.focus), np.float32(p.coc_scale)
    out = np.empty_like(img)
    col_x0, col_fx = _bilinear_columns(disp.shape[1], p.scale, wl)
    with parallel_section():
        _reduce(img, disp, p.scale, focus, coc_scale, np.float32(p.coc_max), np.float32(p.highlight_boost),
                _LINEAR_LUT, w.coc, w.pre, w.inv_area, w.low_f, w.low_fr, w.low_n, w.low_nm, w.low_nr, w.small_x,
                w.small_n, w.small_k)
        reach = near_reach_map(w.low_nr, p.near_reach)
        _gather(w.low_f, w.low_fr, w.low_n, w.low_nm, w.low_nr, reach, _row_order(hl),
                _distance_table(max(p.near_reach, 1)), w.far_acc, w.near_acc, w.near_a)
        _composite(img, w.coc, w.pre, w.inv_area, _distance_table(p.scale + 1), p.scale, col_x0, col_fx,
                   _row_order(disp.shape[0]), w.far_acc, w.near_acc, w.near_a, w.small_x, w.small_n, w.small_k, out)
    return out


def depth_of_field_cpu(image_bgr: np.ndarray, disparity: np.ndarray, focus: float, max_blur_px: float, *,
                       highlight_boost: float = 0.0, scale: int | None = None) -> np.ndarray:
    """The CPU path; `scale` overrides the reduction factor (1 = the exact reference semantics)."""
    if max_blur_px <= 0.0:
        return image_bgr.copy()
    p = plan(disparity.shape, focus, max_blur_px, highlight_boost, scale)
    return render(image_bgr, disparity, p)
