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
source or receiver reaching each whole distance (`_reach_masks`), one explicit 8-lane step a chunk (`_near_taps8`;
the far field's takes all of a source row's offsets in one, its sums in registers: `_far_taps8_offsets`), in the
order the row stencils took: the same sums, bit for bit.

Modules, one a job: `dof_cpu_common` (constants, helpers shared by the passes), `dof_cpu_lanes` (LLVM intrinsics:
the 8-lane steps), `dof_cpu_reduce`, `dof_cpu_gather` and `dof_cpu_composite` (the three passes), `dof_cpu_exact`
(the exact full-resolution gathers), `dof_cpu_upsample` (the composite's bilinear rows); this one holds the host
side: the tables, the work arrays and the entry points (`render`, `depth_of_field_cpu`).
"""
from __future__ import annotations

import functools
import math
import threading
import time

import numpy as np
import numba

from kernels.cpu_threads import parallel_section
from kernels.dof import BEHIND_EXACT, GAMMA, DofPlan, plan
from kernels.dof_cpu_common import CHUNK, N_SUMS, NEAR_EXACT, _NO_FAR, _share_shift  # noqa: F401 (re-exported: tests)
from kernels.dof_cpu_composite import _behind_block_stats, _composite_back, _composite
from kernels.dof_cpu_exact import (_add_small_near, _far_taps, _gather_exact_far,  # noqa: F401 (re-exported: tests)
                                   _near_taps, _reach_masks, _small_span)
from kernels.dof_cpu_gather import _gather
from kernels.dof_cpu_lanes import _far_taps8, _near_taps8  # noqa: F401 (re-exported: tests)
from kernels.dof_cpu_reduce import _near_ring, _reduce
from kernels.dof_cpu_upsample import _phases_generic, _upsample_rows  # noqa: F401 (re-exported: tests)
from kernels.dof_reference import BEHIND_FADE

_LINEAR_LUT = ((np.arange(256, dtype=np.float64) / 255.0) ** GAMMA).astype(np.float32)


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


def _last_block_shares(shape: tuple[int, int], s: int, low_shape: tuple[int, int]) -> tuple[np.float32, np.float32]:
    """The share of s of the last row and the last column of blocks that lies inside the frame (1: whole)."""
    return tuple(np.float32((size - (low - 1) * s) / s) for size, low in zip(shape, low_shape))


class _Workspace:
    """Per-frame-size work arrays. Reused between frames: fresh multi-megabyte allocations cost page
    faults (~1 ms a VGA frame); one workspace per thread keeps concurrent callers apart."""

    def __init__(self, shape: tuple[int, int], low_shape: tuple[int, int], scale: int, far_exact: int) -> None:
        height = shape[0]
        self.key = (shape, low_shape, scale, far_exact)
        self.coc = np.empty(shape, np.float32)
        self.pre = np.empty((4,) + shape, np.float32)
        self.exact_w = np.empty(shape, np.float32)
        self.far_r = np.empty(shape, np.float32)
        self.low_f = np.empty((4,) + low_shape, np.float32)
        # the near field's blocks inside a ring of blocks made of the frame's edge pixels (`_near_ring`): what its
        # gather takes beyond the frame; `low_n`, `low_nr` view the blocks themselves
        self.ring_n = np.empty((5, low_shape[0] + 2, low_shape[1] + 2), np.float32)
        self.ring_nr = np.empty((low_shape[0] + 2, low_shape[1] + 2), np.float32)
        self.low_n = self.ring_n[:, 1:-1, 1:-1]
        self.low_nr = self.ring_nr[1:-1, 1:-1]
        self.low_fr = np.empty(low_shape, np.float32)
        self.near_span = np.empty((height, 2), np.int64)
        self.near_cmax = np.empty(height, np.float32)
        self.far_span = np.empty((height, 2), np.int64)
        self.far_rmax = np.empty(height, np.float32)
        # the exact gathers' distances stay below s + 1/2 (far CoCs below s): whole distances 0 to s (0 to 2 s with
        # exact_far: DofPlan.far_exact); the near field's below 2 s + 1/2 (NEAR_EXACT): 0 to 2 s
        self.far_mask = np.empty((height, far_exact * scale + 1, -(-shape[1] // (64 * CHUNK))), np.uint64)
        self.near_mask = np.empty((height, NEAR_EXACT * scale + 1, self.far_mask.shape[2]), np.uint64)
        self.far_acc = np.empty((5,) + low_shape, np.float32)  # B, G, R, weight, support
        self.near_acc = np.empty((5,) + low_shape, np.float32)
        self.low_b = np.empty((4,) + low_shape, np.float32)  # not near: B, G, R (linear light), share
        self.low_br = np.empty(low_shape, np.float32)  # mean radius of all near pixels, reduced px
        self.behind_acc = np.empty((1,) + low_shape, np.float32)  # the even coverage of what is not near
        self.rendered = np.empty((3,) + shape, np.float32)  # the far field rendered, the rest as it is (linear)
        self.behind_stats = np.empty((6,) + low_shape, np.float32)  # `_behind_block_stats`
        self.near_rows = np.empty(low_shape[0], np.bool_)


_local = threading.local()
# Frames up to 4K UHD keep their workspace for the next frame (386 MB a thread at 4K, measured in session 26). A
# larger one, a photo's 12-50 megapixels, gets its own and frees it with its result: kept, it held ~430 MB per thread
# (12 MP, before session 26's backdrop buffers) after a single render, and a 12 MP render with fresh arrays measured
# as fast as with kept ones (0.48-0.64 s both).
WORKSPACE_KEPT_PIXELS = 3840 * 2160


def _workspace(shape: tuple[int, int], low_shape: tuple[int, int], scale: int, far_exact: int) -> _Workspace:
    ws = getattr(_local, "workspace", None)
    if ws is None or ws.key != (shape, low_shape, scale, far_exact):
        _local.workspace = None  # the old size's arrays go before the new ones are made
        ws = _Workspace(shape, low_shape, scale, far_exact)
        if shape[0] * shape[1] <= WORKSPACE_KEPT_PIXELS:
            _local.workspace = ws
    return ws


def render(image_bgr: np.ndarray, disparity: np.ndarray, p: DofPlan,
           timings: dict[str, float] | None = None) -> np.ndarray:
    """The three passes (the composite's: the far field rendered, its blocks behind the near field, the near field
    over); `timings` (bench/bench_dof.py --passes) gets each one's wall ms."""
    img = np.ascontiguousarray(image_bgr)
    disp = np.ascontiguousarray(disparity, dtype=np.float32)
    hl, wl = p.low_shape
    w = _workspace(disp.shape, p.low_shape, p.scale, p.far_exact)
    focus, coc_scale = np.float32(p.focus), np.float32(p.coc_scale)
    out = np.empty_like(img)
    columns = _bilinear_columns(disp.shape[1], p.scale, wl)
    with parallel_section():
        t0 = time.perf_counter()
        # a run of block rows per thread (Numba's static schedule splits a prange so anyway)
        _reduce(numba.get_num_threads(), img, disp, p.scale, p.far_exact, focus, coc_scale, np.float32(p.coc_max),
                np.float32(p.highlight_boost), _LINEAR_LUT, w.coc, w.pre, w.exact_w, w.far_r, w.low_f,
                w.low_fr, w.ring_n, w.ring_nr, w.low_b, w.low_br, w.near_span, w.near_cmax, w.near_mask, w.far_span,
                w.far_rmax, w.far_mask)
        _near_ring(w.coc, w.pre, p.scale, w.ring_n, w.ring_nr)
        t1 = time.perf_counter()
        _gather(w.low_f, w.low_fr, w.ring_n, w.ring_nr, w.low_b, w.low_br, _row_order(hl),
                _distance_table(max(p.near_reach, 1)), w.far_acc, w.near_acc, w.behind_acc, w.near_rows,
                *_last_block_shares(disp.shape, p.scale, p.low_shape))
        t2 = time.perf_counter()
        # the full-resolution windows: the near field's reach below 2 s + 1/2 (NEAR_EXACT; FAR_EXACT too, <= it)
        dist = _distance_table(NEAR_EXACT * p.scale + 1)
        rows = _row_order(disp.shape[0])
        _composite_back(img, w.coc, w.pre, w.exact_w, w.far_r, dist, p.scale, p.far_exact, *columns, rows, w.far_acc,
                        w.far_rmax, w.far_mask, w.rendered)
        # what lies behind the near field: the rendered pixels not near, per block for the farther ones
        _behind_block_stats(w.rendered, w.coc, p.scale, w.behind_stats)
        _composite(w.coc, w.pre, w.exact_w, dist, p.scale, BEHIND_EXACT * p.scale, *columns, rows, w.near_acc,
                   w.behind_acc, w.near_rows, w.near_span, w.near_cmax, w.near_mask, _behind_fade(p.scale),
                   _behind_blocks(w.low_b[3]), w.behind_stats, w.rendered, out)
    if timings is not None:
        t3 = time.perf_counter()
        timings.update(reduce=(t1 - t0) * 1e3, gather=(t2 - t1) * 1e3, composite=(t3 - t2) * 1e3)
    return out


def depth_of_field_cpu(image_bgr: np.ndarray, disparity: np.ndarray, focus: float, max_blur_px: float, *,
                       highlight_boost: float = 0.0, scale: int | None = None, exact_far: bool = False) -> np.ndarray:
    """The CPU path; `scale` overrides the reduction factor (1 = the exact reference semantics), `exact_far`
    gathers the far field exactly below 2 s (kernels.dof: FAR_EXACT)."""
    if max_blur_px <= 0.0:
        return np.array(image_bgr)  # a plain ndarray, as every other call returns (a memmap's copy is one)
    p = plan(disparity.shape, focus, max_blur_px, highlight_boost, scale, exact_far)
    return render(image_bgr, disparity, p)
