"""CUDA path of the joint bilateral filter: a CuPy RawModule built from `joint_bilateral.cu` on first use.

The spatial table and the range LUT live in `__constant__` memory; they are copied from the host (the very
tables the CPU path uses) only when (radius, sigma_spatial) or sigma_range change, per device.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable

import numpy as np

from kernels.backend import is_cupy_array
from kernels.bilateral import LIVE_UPSAMPLE_SIGMA, MAX_RADIUS, range_lut, spatial_table, working_size
from kernels.cuda_module import load_module

SOURCE = "joint_bilateral.cu"
BLOCK = (32, 8)  # JB_BLOCK_X, JB_BLOCK_Y in the .cu
RANGE_VARIANTS = ("lut", "exp2", "exp2_rows4", "exp2_rows8")
# "exp2": one 16-byte shared load and one MUFU.EX2 per tap, no bank conflicts; "lut": three lookups at random
# indices into a 256-entry shared table, which conflict ~3-4 ways each. "exp2_rows4"/"exp2_rows8": R outputs
# of a column per thread, so a shared load serves R taps (the "exp2" kernel's 16 B/tap of shared-memory
# traffic bounds it near 0.7 ms at 1080p, r = 12, on an H100), 10 issue slots a tap instead of ~14. Measured
# on an H200 (bench/RESULTS.md): exp2_rows4 the fastest from r = 8 and within 0.002 ms at r = 4 (1080p, r = 12:
# 0.62 ms, exp2 0.84, lut 1.46), and its loops take whole windows (no clipping for a compiler to get wrong: see the .cu).
# All agree with the CPU path to ~2e-6 relative.
DEFAULT_RANGE_VARIANT = "exp2_rows4"
ROWS_BLOCKS = {"exp2_rows4": (32, 4), "exp2_rows8": (32, 2)}  # both 32 x 16 outputs (JR_BLOCK_X, JR_OUT_Y)
ROWS_OUT = (32, 16)
GLOBAL_BLOCK = (16, 16)  # joint_bilateral_global: one thread a pixel

# Held from a table refresh through the launch that reads it: another thread's refresh (other parameters)
# cannot land between them, and it waits for the kernels already queued (see ensure_constants).
_lock = threading.RLock()
_loaded: dict[int, tuple[Any, Any]] = {}  # device id → (spatial key, range key) now in constant memory


def _module():
    return load_module(SOURCE)


@functools.lru_cache(maxsize=None)
def _kernel(name: str, device_id: int):
    # RawModule.get_function builds a new RawKernel and looks the function up in the driver on every call:
    # a per-launch host cost that would show as GPU time for small frames. Cached per device.
    return _module().get_function(name)


def _upload(module, name: str, host: np.ndarray) -> None:
    import cupy

    host = np.ascontiguousarray(host, dtype=np.float32)
    # A view of the __constant__ symbol (the RawModule.get_global idiom). set() copies on the current stream
    # (asynchronously in CuPy 14): kernels on that stream see it in order, and ensure_constants synchronises
    # after its copies for kernels on other streams.
    view = cupy.ndarray(host.shape, cupy.float32, module.get_global(name))
    view.set(host)


def ensure_constants(radius: int, sigma_spatial: float, sigma_range: float) -> bool:
    """Refresh c_spatial / c_range_lut on this device only when the parameters changed; True if copied."""
    import cupy

    if not 0 <= radius <= MAX_RADIUS:
        raise ValueError(f"radius must be in 0..{MAX_RADIUS}, got {radius}")
    module = _module()
    device = cupy.cuda.Device().id
    spatial_key = (int(radius), float(sigma_spatial))
    range_key = float(sigma_range)
    copied = False
    with _lock:
        current = _loaded.get(device, (None, None))
        if current != (spatial_key, range_key) and current != (None, None):
            # Kernels queued on any stream may still read the old tables: let them finish first. Only when
            # the parameters change, which a pipeline does once.
            cupy.cuda.Device().synchronize()
        if current[0] != spatial_key:
            _upload(module, "c_spatial", spatial_table(radius, sigma_spatial).ravel())
            _upload(module, "c_spatial_log2", spatial_log2(radius, sigma_spatial))
            copied = True
        if current[1] != range_key:
            _upload(module, "c_range_lut", range_lut(sigma_range))
            copied = True
        _loaded[device] = (spatial_key, range_key)
        if copied:
            cupy.cuda.get_current_stream().synchronize()  # in place before a kernel on another stream reads it
    return copied


def spatial_log2(radius: int, sigma_spatial: float) -> np.ndarray:
    """log2 of the spatial weight along one axis, d = -r..r (the rows kernels' separable form), float32."""
    v = np.arange(-radius, radius + 1, dtype=np.float64)
    return (-(v * v) / (2.0 * sigma_spatial ** 2) * np.log2(np.e)).astype(np.float32)


def shared_bytes(radius: int, variant: str) -> int:
    if variant in ROWS_BLOCKS:
        return (ROWS_OUT[0] + 2 * radius) * (ROWS_OUT[1] + 2 * radius) * 16  # float4: 48 KiB at r = 16
    tile = (BLOCK[0] + 2 * radius) * (BLOCK[1] + 2 * radius)
    if variant == "exp2":
        return tile * 16  # float4 (b, g, r, d): 40 KiB at r = 16
    return 256 * 4 + tile * 8  # LUT + packed guide + disparity


def _grid(height: int, width: int, out: tuple[int, int] = BLOCK) -> tuple[int, int]:
    return ((width + out[0] - 1) // out[0], (height + out[1] - 1) // out[1])


def launch(disparity, guide, out, radius: int, sigma_spatial: float, sigma_range: float,
           variant: str = DEFAULT_RANGE_VARIANT) -> None:
    """Run the shared-memory kernel on device arrays (C-contiguous float32 HxW, uint8 HxWx3, float32 HxW)."""
    if variant not in RANGE_VARIANTS:
        raise ValueError(f"variant must be one of {RANGE_VARIANTS}, got {variant!r}")
    import cupy

    _check_device_arrays(disparity, guide, out)
    height, width = disparity.shape
    args = [disparity, guide, out, np.int32(height), np.int32(width), np.int32(radius)]
    scale = -np.log2(np.e) / (2.0 * sigma_range ** 2 * 255.0 ** 2)
    if variant != "lut":
        args.append(np.float32(scale))
    grid, block = _grid(height, width), BLOCK
    if variant in ROWS_BLOCKS:
        args.append(np.float32(1.0 / scale))
        grid, block = _grid(height, width, ROWS_OUT), ROWS_BLOCKS[variant]
    kernel = _kernel(f"joint_bilateral_{variant}", cupy.cuda.Device().id)
    with _lock:
        ensure_constants(radius, sigma_spatial, sigma_range)
        kernel(grid, block, tuple(args), shared_mem=shared_bytes(radius, variant))


def launch_global(disparity, guide, out, radius: int, sigma_spatial: float, sigma_range: float) -> None:
    """The plain global-memory baseline (no constant or shared memory), for the benchmark."""
    import cupy

    _check_device_arrays(disparity, guide, out)
    height, width = disparity.shape
    kernel = _kernel("joint_bilateral_global", cupy.cuda.Device().id)
    # the grid counts blocks of this kernel's own block shape (not the tiled kernels' 32 x 8): with BLOCK's
    # grid, 16-wide blocks covered only the left half of the frame
    kernel(_grid(height, width, GLOBAL_BLOCK), GLOBAL_BLOCK,
           (disparity, guide, out, np.int32(height), np.int32(width), np.int32(radius),
            np.float32(-1.0 / (2.0 * sigma_spatial ** 2)), np.float32(-1.0 / (2.0 * sigma_range ** 2 * 255.0 ** 2))))


def _check_device_arrays(disparity, guide, out) -> None:
    """The kernels index raw pointers: a view, another dtype or another size would be read as garbage."""
    shape = tuple(disparity.shape)
    if not (len(shape) == 2 and disparity.dtype == np.float32 and out.dtype == np.float32 and guide.dtype == np.uint8
            and tuple(out.shape) == shape and tuple(guide.shape) == shape + (3,)
            and all(a.flags.c_contiguous for a in (disparity, guide, out))):
        raise ValueError("launch takes C-contiguous float32 HxW disparity and out and a uint8 HxWx3 guide, got "
                         f"{disparity.dtype} {shape}, {guide.dtype} {tuple(guide.shape)}, "
                         f"{out.dtype} {tuple(out.shape)}")


def _to_device(array: Any, dtype) -> Any:
    import cupy

    return cupy.ascontiguousarray(cupy.asarray(array, dtype=dtype))


def joint_bilateral_cuda(disparity: Any, guide_bgr: Any, radius: int, sigma_spatial: float,
                         sigma_range: float) -> Any:
    """NumPy in → copied to the GPU and back; CuPy in → computed in place on its device, CuPy out."""
    import cupy

    on_host = not is_cupy_array(disparity)
    d = _to_device(disparity, cupy.float32)
    g = _to_device(guide_bgr, cupy.uint8)
    out = cupy.empty(d.shape, cupy.float32)
    launch(d, g, out, radius, sigma_spatial, sigma_range)
    return cupy.asnumpy(out) if on_host else out


# launch(kernel_name, grid, block, args): CuPy's on a GPU; the tests pass one that runs the same CUDA
# source compiled for the host, so the live-mode steps below are checked on machines without a GPU.
Launcher = Callable[[str, tuple[int, int], tuple[int, int], tuple], None]
EACH_PIXEL_BLOCK = (16, 16)  # the resize and upsampling kernels: one thread a pixel, no shared memory


def _cupy_launch(name: str, grid: tuple[int, int], block: tuple[int, int], args: tuple) -> None:
    import cupy

    _kernel(name, cupy.cuda.Device().id)(grid, block, args)


def _resized(kernel: str, src: Any, height: int, width: int, xp: Any, launch_kernel: Launcher) -> Any:
    if tuple(src.shape) == (height, width):
        return src
    dst = xp.empty((height, width), xp.float32)
    launch_kernel(kernel, _grid(height, width, EACH_PIXEL_BLOCK), EACH_PIXEL_BLOCK,
                  (src, np.int32(src.shape[0]), np.int32(src.shape[1]), dst, np.int32(height), np.int32(width)))
    return dst


def resize_map(src: Any, height: int, width: int, xp: Any, launch_kernel: Launcher) -> Any:
    """A float32 map to (height, width) as the CPU path's resize: area averaging where it shrinks both
    ways (cv2 INTER_AREA), else bilinear (cv2 INTER_LINEAR's pixel-centre alignment)."""
    shrink = width < src.shape[1] and height < src.shape[0]
    return _resized("resize_area_f32" if shrink else "resize_bilinear_f32", src, height, width, xp, launch_kernel)


def resize_bilinear_cuda(src: Any, height: int, width: int) -> Any:
    """float32 device map → (height, width), cv2 INTER_LINEAR alignment."""
    import cupy

    # the kernel reads a C-contiguous float32 map: a view or a float64 map would be read as garbage
    src = cupy.ascontiguousarray(cupy.asarray(src, dtype=cupy.float32))
    return _resized("resize_bilinear_f32", src, int(height), int(width), cupy, _cupy_launch)


def run_live(disparity: Any, guide: Any, out: Any, work_shape: tuple[int, int], xp: Any, launch_kernel: Launcher,
             exact_filter: Callable[[Any, Any, Any], None]) -> None:
    """Live mode's steps on contiguous arrays (float32 map of any size, uint8 HxWx3 frame, float32 HxW out),
    the CPU path's (`kernels.bilateral._refine_live_cpu`): area-downsample the frame to `work_shape`, bring
    the map there, `exact_filter(map, frame, out)` there, then joint bilateral upsampling to the frame's
    size. The upsampling reads c_range_lut, which the exact filter's launch has just made current."""
    height, width = guide.shape[:2]
    work_h, work_w = work_shape
    i32 = np.int32
    if (work_h, work_w) == (height, width):
        exact_filter(resize_map(disparity, height, width, xp, launch_kernel), guide, out)
        return
    guide_low = xp.empty((work_h, work_w, 3), xp.uint8)
    launch_kernel("resize_area_bgr", _grid(work_h, work_w, EACH_PIXEL_BLOCK), EACH_PIXEL_BLOCK,
                  (guide, i32(height), i32(width), guide_low, i32(work_h), i32(work_w)))
    refined = xp.empty((work_h, work_w), xp.float32)
    exact_filter(resize_map(disparity, work_h, work_w, xp, launch_kernel), guide_low, refined)
    launch_kernel("joint_bilateral_upsample", _grid(height, width, EACH_PIXEL_BLOCK), EACH_PIXEL_BLOCK,
                  (refined, guide_low, i32(work_h), i32(work_w), guide, out, i32(height), i32(width),
                   np.float32(0.5 / LIVE_UPSAMPLE_SIGMA ** 2)))


def refine_live_cuda(disparity: Any, guide_bgr: Any, work_width: int, radius: int, sigma_spatial: float,
                     sigma_range: float) -> Any:
    """Live mode on the GPU, the same steps as on the CPU (`run_live`). NumPy in → NumPy out; CuPy in →
    CuPy out, nothing copied to the host."""
    import cupy

    on_host = not is_cupy_array(disparity)
    d = _to_device(disparity, cupy.float32)
    g = _to_device(guide_bgr, cupy.uint8)
    height, width = g.shape[:2]
    out = cupy.empty((height, width), cupy.float32)

    def exact_filter(map_, frame, result) -> None:
        launch(map_, frame, result, radius, sigma_spatial, sigma_range)

    with _lock:  # held from the table refresh (in the filter's launch) through the upsampling that reads it
        run_live(d, g, out, working_size(height, width, work_width), cupy, _cupy_launch, exact_filter)
    return cupy.asnumpy(out) if on_host else out
