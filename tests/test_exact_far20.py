"""The CPU exact far gather's chunk steps (kernels/dof_cpu_exact.py: `_gather_exact_far`): each chunk of receivers takes
all the offsets of a source row in one step, its sums in registers (`_far_taps8_offsets`), and finds the chunks an
offset reaches from two mask words (`_source_bits`). Both must give the sums of the plain per-offset order, bit for
bit: every offset of the window, across every chunk of the row, one step each (`_far_taps8`, `_far_taps` at the
frame's sides), which adds exactly 0 where the masks leave a chunk out."""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from kernels import dof_cpu
from kernels.dof import plan
from kernels.dof_cpu_common import _UNFUSED, CHUNK, _HALF, _far_shift


@njit(cache=False, fastmath=_UNFUSED)  # the gather's flags
def every_offset_and_chunk(y, shift, pre, exact_w, far_r, dist, exact):
    """Row y's exact far sums in the per-offset order (source rows, then offsets, ascending), every offset of the
    window on every chunk of the row: no mask, no reach test."""
    kd = (dist.shape[0] - 1) // 2
    height, width = far_r.shape
    for qy in range(max(y - kd, 0), min(y + kd + 1, height)):
        for dx in range(-kd, kd + 1):
            edge = _HALF - dist[kd + qy - y, kd + dx]
            for p0 in range(0, width, CHUNK):
                q0 = p0 + dx
                if q0 >= 0 and q0 + CHUNK <= width and p0 + CHUNK <= width:
                    dof_cpu._far_taps8(exact, pre, far_r, exact_w, y, qy, p0, q0, edge, shift)
                else:
                    dof_cpu._far_taps(exact, pre, far_r, exact_w, y, qy, max(p0, -dx),
                                      min(p0 + CHUNK, width, width - dx), dx, edge, shift)


def far_rows(rng: np.random.Generator, height: int, width: int, s: int, far_exact: int) -> np.ndarray:
    """Far radii as a portrait's background has them around the hand-over (far_exact * s): smooth ramps, lone small
    pixels at the sides and at chunk and mask-word borders, random rows, pixels not far (`_NO_FAR`)."""
    x = np.arange(width)
    top = far_exact * s + 2.0
    rows = []
    for y in range(height):
        kind = y % 4
        if kind == 0:  # a ramp through the hand-over, not far around its middle
            c = rng.integers(0, width)
            row = np.where(np.abs(x - c) < 5, dof_cpu._NO_FAR, 0.6 + top * np.abs(x - c) / max(width, 1))
        elif kind == 1:  # lone small pixels in a large background
            marks = [0, width - 1, 7, 8, 511, 512, 513, 1023, 1024, int(rng.integers(0, width))]
            row = np.where(np.isin(x, marks), rng.uniform(0.6, far_exact * s - 0.1), top + 3.0)
        elif kind == 2:
            row = np.where(rng.random(width) < 0.2, dof_cpu._NO_FAR, rng.uniform(0.5, top, width))
        else:  # nothing small: only its neighbours' sources reach it
            row = np.full(width, top + 1.0)
        rows.append(row)
    return np.array(rows, np.float32)


def masks_of(far_r: np.ndarray, s: int, far_exact: int) -> tuple[np.ndarray, np.ndarray, np.float32]:
    """The reduce pass's per-row marks of the small far pixels: largest radius and chunk masks."""
    height, width = far_r.shape
    shift = _far_shift(s, far_exact)
    masks = np.empty((height, far_exact * s + 1, -(-width // (64 * CHUNK))), np.uint64)
    far_rmax = np.empty(height, np.float32)
    span = np.empty(2, np.int64)
    for y in range(height):
        r = far_r[y]
        small = np.where((r > 0.5) & (np.clip(r - shift, 0.0, 1.0) < 1.0), r, -1.0).astype(np.float32)
        far_rmax[y] = dof_cpu._small_span(small, span)
        dof_cpu._reach_masks(small, span, np.empty(width // CHUNK + 1, np.float32), masks[y])
    return masks, far_rmax, np.float32(shift)


@pytest.mark.parametrize("height, width, s, far_exact", [
    (1, 1, 2, 2), (3, 5, 2, 1), (6, 8, 3, 2), (9, 9, 3, 1), (7, 63, 5, 2), (12, 517, 5, 2), (11, 1100, 4, 2),
    (8, 1030, 6, 1), (5, 24, 5, 2)])
def test_exact_far_gather_is_the_per_offset_sum(rng, height, width, s, far_exact):
    """Odd sizes (narrower than a chunk, than the window, one chunk past a mask word), reach 1 s and 2 s: the sums
    of every offset on every chunk, bit for bit."""
    far_r = far_rows(rng, height, width, s, far_exact)
    exact_w = np.where(far_r > 0, 1.0 / (np.pi * (far_r.astype(np.float64) ** 2 + 1.0 / 12.0)), 0.0).astype(np.float32)
    pre = rng.uniform(0.0, 255.0 ** 2, (4, height, width)).astype(np.float32)
    masks, far_rmax, shift = masks_of(far_r, s, far_exact)
    dist = dof_cpu._distance_table(2 * s + 1)  # the composite's window (NEAR_EXACT * s + 1)
    for y in range(height):
        got = np.zeros((4, width), np.float32)
        dof_cpu._gather_exact_far(y, shift, pre, exact_w, far_r, dist, far_rmax, masks, got)
        expected = np.zeros((4, width), np.float32)
        every_offset_and_chunk(y, shift, pre, exact_w, far_r, dist, expected)
        np.testing.assert_array_equal(got, expected, err_msg=f"row {y}")


@pytest.mark.parametrize("height, width", [(31, 47), (45, 1037)])
def test_render_exact_far_is_the_per_offset_sum(rng, height, width):
    """A render's own inputs (the reduce pass's radii, weights and masks at exact_far): every row's exact far sums
    those of the per-offset order, bit for bit."""
    disparity = rng.random((height, width)).astype(np.float32)
    disparity[:, : width // 3] = np.linspace(0.0, 0.5, height, dtype=np.float32)[:, None]  # a ramp through the band
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    p = plan(disparity.shape, 0.8, 14.0, 0.0, 3, True)
    dof_cpu.render(image, disparity, p)
    w = dof_cpu._local.workspace
    shift = _far_shift(p.scale, p.far_exact)
    dist = dof_cpu._distance_table(2 * p.scale + 1)
    assert (w.far_rmax >= 0.0).any()
    for y in range(height):
        got = np.zeros((4, width), np.float32)
        dof_cpu._gather_exact_far(y, shift, w.pre, w.exact_w, w.far_r, dist, w.far_rmax, w.far_mask, got)
        expected = np.zeros((4, width), np.float32)
        every_offset_and_chunk(y, shift, w.pre, w.exact_w, w.far_r, dist, expected)
        np.testing.assert_array_equal(got, expected, err_msg=f"row {y}")


@pytest.mark.parametrize("dx", list(range(-70, 71)))
def test_source_bits_moves_the_chunks(dx):
    """Word `word` of `_source_bits`: bit k set where source chunk k + floor(dx / CHUNK) or, unless dx is a multiple of
    CHUNK, the next one is set (0 beyond the row), across word borders and shifts of 0 and 63."""
    from kernels.dof_cpu_exact import _source_bits

    rng = np.random.default_rng(dx + 100)
    words = rng.integers(0, 2 ** 63, 3, dtype=np.uint64) | np.uint64(1 << 63) | np.uint64(1)
    chunks = [(int(words[k >> 6]) >> (k & 63)) & 1 for k in range(64 * len(words))]

    def chunk(k: int) -> int:
        return chunks[k] if 0 <= k < len(chunks) else 0

    j = dx // CHUNK
    for word in range(len(words)):
        expected = 0
        for k in range(64):
            c = 64 * word + k
            if chunk(c + j) or (dx % CHUNK and chunk(c + j + 1)):
                expected |= 1 << k
        assert int(_source_bits(words, word, dx)) == expected, word


@pytest.mark.parametrize("width, distances", [(1, 3), (9, 5), (517, 11), (1100, 13)])
def test_reach_masks_marks_the_chunks_reaching_each_distance(rng, width, distances):
    """Bit k of mask b: chunk k holds a small pixel (radius r >= 0, -1 elsewhere) with r + 1/2 > b, in float32 as
    the gathers test their taps; none beyond."""
    for _ in range(20):
        small = np.where(rng.random(width) < rng.uniform(0.0, 0.5), rng.uniform(0.0, distances + 1.0, width), -1.0)
        small = small.astype(np.float32)
        if rng.random() < 0.2:
            small[:] = -1.0
        masks = np.full((distances, -(-width // (64 * CHUNK))), 12345, np.uint64)
        span = np.empty(2, np.int64)
        dof_cpu._small_span(small, span)
        dof_cpu._reach_masks(small, span, np.empty(width // CHUNK + 1, np.float32), masks)
        padded = np.full(-(-width // CHUNK) * CHUNK, -1.0, np.float32)
        padded[:width] = small
        top = padded.reshape(-1, CHUNK).max(axis=1)
        for b in range(distances):
            reaches = top + (np.float32(0.5) - np.float32(b)) > np.float32(0.0)
            bits = [(int(masks[b, k >> 6]) >> (k & 63)) & 1 for k in range(64 * masks.shape[1])]
            assert bits == list(reaches.astype(int)) + [0] * (len(bits) - len(reaches)), b
