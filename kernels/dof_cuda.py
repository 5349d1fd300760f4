"""CUDA depth of field: the passes of `kernels/depth_of_field.cu` through a CuPy RawModule.

NumPy in -> NumPy out (copied to and from the device); CuPy in -> CuPy out (no host round trip).
The launch sequence (`run_passes`) takes the array module and a launcher, so the tests can run the
very same CUDA source and host code on a machine without a GPU (compiled for the host).
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable

import numpy as np

from kernels.backend import is_cupy_array
from kernels.cuda_module import load_module
from kernels.dof import BEHIND_EXACT, GAMMA, LOW_RES_RADIUS_CUDA, DofPlan, plan, reduction_scale

SOURCE = "depth_of_field.cu"
KERNELS = ("dof_reduce", "dof_gather", "dof_back", "dof_behind_blocks", "dof_composite")
BLOCK = (32, 8, 1)

# launch(kernel_name, grid, block, args)
Launcher = Callable[[str, tuple[int, int, int], tuple[int, int, int], tuple], None]


def _grid(width: int, height: int) -> tuple[int, int, int]:
    return (-(-width // BLOCK[0]), -(-height // BLOCK[1]), 1)


class DofBuffers:
    """Work arrays for one frame size, kept between frames (no per-frame allocation)."""

    def __init__(self, xp: Any, shape: tuple[int, int], low_shape: tuple[int, int]) -> None:
        hl, wl = low_shape
        self.coc = xp.empty(shape, xp.float32)  # signed CoC, full resolution
        self.hwt = xp.empty(shape, xp.float32)  # highlight weight, full resolution
        self.low_small = xp.empty((hl, wl), xp.float32)  # largest near CoC below 2 s, per block (-1: none)
        self.low_fsmall = xp.empty((hl, wl), xp.float32)  # the same for far radii
        self.low_f = xp.empty((hl, wl, 4), xp.float32)
        # the near field's blocks inside a ring of blocks made of the frame's edge pixels (dof_reduce): what its
        # gather takes beyond the frame
        self.low_n = xp.empty((hl + 2, wl + 2, 4), xp.float32)
        self.low_fr = xp.empty((hl, wl), xp.float32)
        self.low_nm = xp.empty((hl + 2, wl + 2), xp.float32)
        self.low_nr = xp.empty((hl + 2, wl + 2), xp.float32)
        self.far_acc = xp.empty((hl, wl, 4), xp.float32)
        self.near_acc = xp.empty((hl, wl, 4), xp.float32)
        self.near_a = xp.empty((hl, wl), xp.float32)
        self.low_b = xp.empty((hl, wl, 4), xp.float32)  # not near: B, G, R (linear light), share
        self.low_br = xp.empty((hl, wl), xp.float32)  # mean radius of all near pixels (-1: none)
        self.behind_n = xp.empty((hl, wl), xp.float32)  # the even coverage of what is not near (BEHIND_FADE's)
        self.rendered = xp.empty(shape + (4,), xp.float32)  # the far field rendered, the rest as it is (linear)
        # per block, its pixels not near: mean rendered colour and count, centroid (row, column, 0, 0)
        self.blk_col = xp.empty((hl, wl, 4), xp.float32)
        self.blk_pos = xp.empty((hl, wl, 4), xp.float32)


def run_passes(img: Any, disp: Any, p: DofPlan, buf: DofBuffers, out: Any, launch: Launcher) -> None:
    """Launch reduce, gather, the far field's render (back), the blocks of it behind the near field and the near
    field's composite on contiguous uint8 HxWx3 / float32 HxW arrays into `out`."""
    height, width = disp.shape
    hl, wl = p.low_shape
    s, focus, coc_scale = np.int32(p.scale), np.float32(p.focus), np.float32(p.coc_scale)
    i32 = np.int32
    launch("dof_reduce", _grid(wl, hl), BLOCK,
           (img, disp, i32(height), i32(width), s, i32(p.far_exact), focus, coc_scale, np.float32(p.coc_max),
            np.float32(p.highlight_boost), np.float32(GAMMA), i32(hl), i32(wl), buf.coc, buf.hwt, buf.low_f,
            buf.low_fr, buf.low_n, buf.low_nm, buf.low_nr, buf.low_small, buf.low_fsmall, buf.low_b, buf.low_br))
    launch("dof_gather", _grid(wl, hl), BLOCK,
           (buf.low_f, buf.low_fr, buf.low_n, buf.low_nm, buf.low_nr, buf.low_b, buf.low_br, i32(hl), i32(wl),
            i32(p.near_reach), buf.far_acc, buf.near_acc, buf.near_a, buf.behind_n))
    launch("dof_back", _grid(width, height), BLOCK,
           (img, buf.coc, buf.hwt, i32(height), i32(width), s, i32(p.far_exact), i32(hl), i32(wl), buf.far_acc,
            buf.low_fr, buf.low_fsmall, buf.rendered))
    # what lies behind the near field: the rendered pixels not near, per block for the farther ones
    launch("dof_behind_blocks", _grid(wl, hl), BLOCK,
           (buf.rendered, buf.coc, i32(height), i32(width), s, i32(hl), i32(wl), buf.blk_col, buf.blk_pos))
    launch("dof_composite", _grid(width, height), BLOCK,
           (buf.coc, buf.hwt, img, i32(height), i32(width), s, i32(hl), i32(wl), buf.near_acc, buf.near_a,
            buf.low_small, buf.behind_n, buf.blk_col, buf.blk_pos, i32(BEHIND_EXACT * p.scale), buf.rendered,
            out))


_local = threading.local()
MAX_WORKSPACES = 4  # per thread: a pipeline renders one frame size on one stream


def _cupy_buffers(shape: tuple[int, int], low_shape: tuple[int, int]) -> DofBuffers:
    """Work buffers for this thread and this stream: kernels queued on one stream run in order, so a
    buffer is reused safely there; two threads or two streams must not share one (their renders could
    overlap on the GPU)."""
    import cupy as cp

    key = (shape, low_shape, cp.cuda.Device().id, cp.cuda.get_current_stream().ptr)
    buffers: dict[tuple, DofBuffers] = _local.__dict__.setdefault("buffers", {})
    buf = buffers.get(key)
    if buf is None:
        if len(buffers) >= MAX_WORKSPACES:
            buffers.clear()
        buf = buffers[key] = DofBuffers(cp, shape, low_shape)
    return buf


@functools.lru_cache(maxsize=None)
def _kernel(name: str, device_id: int):
    return load_module(SOURCE).get_function(name)


def _cupy_launch(name: str, grid: tuple[int, int, int], block: tuple[int, int, int], args: tuple) -> None:
    import cupy as cp

    _kernel(name, cp.cuda.Device().id)(grid, block, args)


def render(image_bgr: Any, disparity: Any, p: DofPlan, out: Any = None) -> Any:
    """Run the kernels on device arrays (uint8 HxWx3, float32 HxW) into `out` (allocated if None)."""
    import cupy as cp

    img = cp.ascontiguousarray(image_bgr)
    disp = cp.ascontiguousarray(disparity, dtype=cp.float32)
    if out is None:
        out = cp.empty_like(img)
    run_passes(img, disp, p, _cupy_buffers(tuple(disp.shape), p.low_shape), out, _cupy_launch)
    return out


def default_scale(max_blur_px: float) -> int:
    return reduction_scale(max_blur_px, LOW_RES_RADIUS_CUDA)


def depth_of_field_cuda(image_bgr: Any, disparity: Any, focus: float, max_blur_px: float, *,
                        highlight_boost: float = 0.0, scale: int | None = None, exact_far: bool = False) -> Any:
    """The CUDA path; `scale` overrides the reduction factor (1 = the exact reference semantics), `exact_far`
    gathers the far field exactly below 2 s (kernels.dof: FAR_EXACT)."""
    import cupy as cp

    host = not is_cupy_array(image_bgr)
    if max_blur_px <= 0.0:
        return image_bgr.copy()
    img = cp.asarray(image_bgr)
    disp = cp.asarray(disparity, dtype=cp.float32)
    p = plan(tuple(disp.shape), focus, max_blur_px, highlight_boost,
             default_scale(max_blur_px) if scale is None else scale, exact_far)
    out = render(img, disp, p)
    return cp.asnumpy(out) if host else out
