"""The CPU depth of field's bilinear upsampling of rows of blocks to full resolution (`_upsample_rows`), for the
composite."""
from __future__ import annotations

from numba import njit

import kernels.numba_cache  # noqa: F401 (first: every cached kernel's stamp is the whole package's sources)
from kernels.dof_cpu_common import _ORDERED
from kernels.dof_cpu_lanes import _fma


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
