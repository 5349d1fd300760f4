"""CUDA depth of field: the three passes of `kernels/depth_of_field.cu` through a CuPy RawModule.

NumPy in -> NumPy out (copied to and from the device); CuPy in -> CuPy out (no host round trip).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from kernels.cuda_module import load_module
from kernels.dof import GAMMA, LOW_RES_RADIUS_CUDA, DofPlan, plan, reduction_scale

_SOURCE = "depth_of_field.cu"
_BLOCK = (32, 8, 1)


def _grid(width: int, height: int) -> tuple[int, int, int]:
    return (-(-width // _BLOCK[0]), -(-height // _BLOCK[1]), 1)


class DofBuffers:
    """Reduced-resolution work arrays, kept between frames of the same size (no per-frame allocation)."""

    def __init__(self, low_shape: tuple[int, int]) -> None:
        import cupy as cp

        hl, wl = low_shape
        self.low_shape = low_shape
        self.low_f = cp.empty((hl, wl, 4), cp.float32)
        self.low_n = cp.empty((hl, wl, 4), cp.float32)
        self.low_fr = cp.empty((hl, wl), cp.float32)
        self.low_nm = cp.empty((hl, wl), cp.float32)
        self.low_nr = cp.empty((hl, wl), cp.float32)
        self.far_acc = cp.empty((hl, wl, 4), cp.float32)
        self.near_acc = cp.empty((hl, wl, 4), cp.float32)
        self.near_a = cp.empty((hl, wl), cp.float32)


_buffers: dict[tuple[int, int], DofBuffers] = {}


def _get_buffers(low_shape: tuple[int, int]) -> DofBuffers:
    buf = _buffers.get(low_shape)
    if buf is None:
        _buffers.clear()  # one frame size at a time in a pipeline
        buf = _buffers[low_shape] = DofBuffers(low_shape)
    return buf


def render(image_bgr: Any, disparity: Any, p: DofPlan, out: Any = None) -> Any:
    """Run the three kernels on device arrays (uint8 HxWx3, float32 HxW) into `out` (allocated if None)."""
    import cupy as cp

    img = cp.ascontiguousarray(image_bgr)
    disp = cp.ascontiguousarray(disparity, dtype=cp.float32)
    height, width = disp.shape
    hl, wl = p.low_shape
    module = load_module(_SOURCE)
    buf = _get_buffers(p.low_shape)
    if out is None:
        out = cp.empty_like(img)
    s, focus, coc_scale = np.int32(p.scale), np.float32(p.focus), np.float32(p.coc_scale)
    module.get_function("dof_reduce")(
        _grid(wl, hl), _BLOCK,
        (img, disp, np.int32(height), np.int32(width), s, focus, coc_scale, np.float32(p.highlight_boost),
         np.float32(GAMMA), np.int32(hl), np.int32(wl), buf.low_f, buf.low_fr, buf.low_n, buf.low_nm, buf.low_nr))
    module.get_function("dof_gather")(
        _grid(wl, hl), _BLOCK,
        (buf.low_f, buf.low_fr, buf.low_n, buf.low_nm, buf.low_nr, np.int32(hl), np.int32(wl),
         np.int32(p.near_reach), buf.far_acc, buf.near_acc, buf.near_a))
    module.get_function("dof_composite")(
        _grid(width, height), _BLOCK,
        (img, disp, np.int32(height), np.int32(width), s, focus, coc_scale, np.int32(hl), np.int32(wl),
         buf.far_acc, buf.near_acc, buf.near_a, out))
    return out


def depth_of_field_cuda(image_bgr: Any, disparity: Any, focus: float, max_blur_px: float, *,
                        highlight_boost: float = 0.0, scale: int | None = None) -> Any:
    """The CUDA path; `scale` overrides the reduction factor (1 = the exact reference semantics)."""
    import cupy as cp

    host = isinstance(image_bgr, np.ndarray)
    if max_blur_px <= 0.0:
        return image_bgr.copy()
    img = cp.asarray(image_bgr)
    disp = cp.asarray(disparity, dtype=cp.float32)
    if scale is None:
        scale = reduction_scale(max_blur_px, LOW_RES_RADIUS_CUDA)
    p = plan(tuple(disp.shape), focus, max_blur_px, highlight_boost, scale)
    out = render(img, disp, p)
    return cp.asnumpy(out) if host else out
