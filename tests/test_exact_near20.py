"""The CPU exact near gather (kernels/dof_cpu_exact.py: `_add_small_near`) takes each offset's taps from the source
chunks reaching its distance (`near_mask`), at the frame's sides one column at a time and from its edge pixel. Its
sums must be those of the plain per-offset order, bit for bit (any faster step must keep them): every offset of the
window (rows, then offsets, ascending), across every chunk of the row, one step each (`_near_taps8`, `_near_taps` at
the frame's sides, the edge pixel for sources beyond them), which adds exactly 0 where the masks leave a chunk out."""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from kernels import dof_cpu
from kernels.dof import plan
from kernels.dof_cpu_common import _UNFUSED, CHUNK, _HALF, _coverage, _near_shift


@njit(cache=False, fastmath=_UNFUSED)  # the gather's flags: its edge taps rounded as there
def every_offset_and_chunk(y, coc, pre, exact_w, dist, near):
    """Row y's exact near sums in the per-offset order, every offset of the window on every chunk of the row and
    every edge tap: no mask, no reach test."""
    kd = (dist.shape[0] - 1) // 2
    height, width = coc.shape
    for qv in range(y - kd, y + kd + 1):
        qy = min(max(qv, 0), height - 1)
        for dx in range(-kd, kd + 1):
            edge = _HALF - dist[kd + qv - y, kd + dx]
            for p0 in range(0, width, CHUNK):
                q0 = p0 + dx
                if q0 >= 0 and q0 + CHUNK <= width and p0 + CHUNK <= width:
                    dof_cpu._near_taps8(near, pre, coc, exact_w, qy, p0, q0, edge)
                else:
                    dof_cpu._near_taps(near, pre, coc, exact_w, qy, max(p0, -dx), min(p0 + CHUNK, width, width - dx),
                                       dx, edge)
            side = width - 1 if dx > 0 else 0
            e0, e1 = (max(width - dx, 0), width) if dx > 0 else (0, min(-dx, width))
            if e1 > e0:  # the sources beyond the frame's side: its edge pixel, colour times weight rounded first
                we = _coverage(coc[qy, side] + edge) * exact_w[qy, side]
                for ch in range(4):
                    value = we * pre[ch, qy, side]
                    for px in range(e0, e1):
                        near[ch, px] += value
                for px in range(e0, e1):
                    near[4, px] += we


def near_rows(rng: np.random.Generator, height: int, width: int, s: int) -> np.ndarray:
    """CoCs as a portrait's foreground has them around the hand-over (2 s): ramps through it, lone small near pixels
    at the sides and at chunk and mask-word borders amid in-focus, far and large near ones, random rows."""
    x = np.arange(width)
    top = 2.0 * s + 2.0
    rows = []
    for y in range(height):
        kind = y % 4
        if kind == 0:  # a ramp from far through focus to large near
            c = rng.integers(0, width)
            row = -3.0 + (top + 3.0) * np.abs(x - c) / max(width, 1)
        elif kind == 1:  # lone small pixels, the sides among them
            marks = [0, width - 1, 7, 8, 511, 512, 513, 1023, 1024, int(rng.integers(0, width))]
            row = np.where(np.isin(x, marks), rng.uniform(0.6, 2.0 * s - 0.1, width), rng.choice([0.2, -4.0, top]))
        elif kind == 2:
            row = rng.uniform(-3.0, top, width)
        else:  # nothing small: only its neighbours' sources reach it
            row = np.full(width, top + 1.0)
        rows.append(row)
    return np.array(rows, np.float32)


def inputs_of(rng: np.random.Generator, coc: np.ndarray, s: int) -> tuple[np.ndarray, ...]:
    """The reduce pass's weights and per-row marks of the small near pixels for `coc`: `exact_w` (a near pixel's
    share left to the exact gather over its area, a far one's inverse area, 0 in focus), span, largest CoC, masks."""
    height, width = coc.shape
    shift = _near_shift(s)
    c = coc.astype(np.float32)
    area = np.float32(1.0 / np.pi) / (c * c + np.float32(1.0 / 12.0))
    t = np.clip(c - shift, 0.0, 1.0).astype(np.float32)
    exact_w = np.where(c > 0.5, (1.0 - t) * area, np.where(c < -0.5, area, 0.0)).astype(np.float32)
    pre = rng.uniform(0.0, 255.0 ** 2, (4, height, width)).astype(np.float32)
    masks = np.empty((height, 2 * s + 1, -(-width // (64 * CHUNK))), np.uint64)
    span = np.empty((height, 2), np.int64)
    cmax = np.empty(height, np.float32)
    for y in range(height):
        small = np.where((c[y] > 0.5) & (t[y] < 1.0), c[y], -1.0).astype(np.float32)
        cmax[y] = dof_cpu._small_span(small, span[y])
        dof_cpu._reach_masks(small, span[y], np.empty(width // CHUNK + 1, np.float32), masks[y])
    return pre, exact_w, span, cmax, masks


def assert_rows_match(coc, pre, exact_w, dist, span, cmax, masks) -> None:
    height, width = coc.shape
    for y in range(height):
        got = np.zeros((5, width), np.float32)
        dof_cpu._add_small_near(y, coc, pre, exact_w, dist, span, cmax, masks, got)
        expected = np.zeros((5, width), np.float32)
        every_offset_and_chunk(y, coc, pre, exact_w, dist, expected)
        np.testing.assert_array_equal(got.view(np.int32), expected.view(np.int32), err_msg=f"row {y}")


@pytest.mark.parametrize("height, width, s", [
    (1, 1, 2), (3, 5, 2), (6, 8, 3), (9, 9, 3), (7, 63, 5), (12, 517, 5), (11, 1100, 4), (8, 1030, 6), (5, 24, 5),
    (9, 41, 6), (6, 40, 2), (13, 250, 3)])
def test_exact_near_gather_is_the_per_offset_sum(rng, height, width, s):
    """Odd sizes (narrower than a chunk, than the window, one chunk past a mask word), s = 2..6: the sums of every
    offset on every chunk, bit for bit, the frame's sides and rows beyond it continuing its edge."""
    coc = near_rows(rng, height, width, s)
    pre, exact_w, span, cmax, masks = inputs_of(rng, coc, s)
    assert height == 1 or (cmax >= 0.0).any()
    assert_rows_match(coc, pre, exact_w, dof_cpu._distance_table(2 * s + 1), span, cmax, masks)


@pytest.mark.parametrize("width", [1, 5, 17, 40, 133])
def test_small_edge_pixels_reach_past_the_sides(rng, width):
    """Every pixel of the frame's first and last columns small near at its largest radius (their taps reach the
    columns whose sources lie beyond the frame), the rest far: the per-offset sums, bit for bit."""
    s = 3
    coc = np.full((7, width), -4.0, np.float32)
    coc[:, [0, -1]] = np.float32(2 * s - 0.2)
    coc[3, width // 2] = np.float32(2.0)
    pre, exact_w, span, cmax, masks = inputs_of(rng, coc, s)
    assert_rows_match(coc, pre, exact_w, dof_cpu._distance_table(2 * s + 1), span, cmax, masks)


@pytest.mark.parametrize("height, width, scale", [(31, 47, 2), (45, 1037, 3), (24, 530, 5), (20, 300, 6)])
def test_render_exact_near_is_the_per_offset_sum(rng, height, width, scale):
    """A render's own inputs (the reduce pass's CoCs, weights and masks): every row's exact near sums those of the
    per-offset order, bit for bit."""
    disparity = rng.random((height, width)).astype(np.float32)
    disparity[:, : width // 3] = np.linspace(0.5, 1.0, height, dtype=np.float32)[:, None]  # a ramp through the band
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    p = plan(disparity.shape, 0.5, 3.6 * scale, 1.0, scale, False)
    dof_cpu.render(image, disparity, p)
    w = dof_cpu._local.workspace
    assert (w.near_cmax >= 0.0).any()
    assert_rows_match(w.coc, w.pre, w.exact_w, dof_cpu._distance_table(2 * scale + 1), w.near_span, w.near_cmax,
                      w.near_mask)
