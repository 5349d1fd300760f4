"""Joint bilateral refinement of disparity, guided by the camera frame: public dispatcher and live mode.

The filter (../shared/DESIGN.md):
    out(p) = Σ_q ws(q−p)·wr(I(q)−I(p))·D(q) / Σ_q ws(q−p)·wr(I(q)−I(p))
over the (2r+1)² window, q outside the image skipped; ws(v) = exp(−|v|²/2σs²) in pixels, wr(c) =
exp(−|c|²/2σr²) with c the BGR difference scaled to [0, 1]. Since exp(−a−b−c) = exp(−a)·exp(−b)·exp(−c),
the range weight is a product of three lookups in one 256-entry table; both backends share these tables.

Importing this module compiles nothing: Numba and CUDA code are built on first use.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from kernels.backend import NOT_FINITE, array_module, is_cupy_array, kernel_array, number_argument, resolve_backend

MAX_RADIUS = 16  # the CUDA kernel's constant-memory table holds (2·16+1)² weights
# Table entries below this are set to 0. A product of four entries ≥ 1e-9 is ≥ 1e-36, a normal float32;
# without the floor, products fall into denormals and the CPU loop runs ~16x slower. The weight mass
# dropped is < (2r+1)²·1e-9 against a denominator ≥ 1 (q = p), far below the 1e-4 accuracy contract.
WEIGHT_FLOOR = 1e-9
# Sigmas are clamped into these limits: beyond them the floored float32 tables (and the CUDA exp2 weights) no
# longer change (σs ≤ 0.15 or σr ≤ 6e-4: only q = p or equal colours weigh; ≥ 1e5: every weight is 1.0f), while
# the table maths would divide by zero (1e-200 squared) or overflow (1e155 squared).
SIGMA_LIMITS = (1e-4, 1e6)
FLOAT32_MAX = float(np.finfo(np.float32).max)
# The filters' float32 sums reach up to (2·16+1)² = 1089 times the largest |D|: from |D| ≈ 3e35 on they overflowed,
# a finite disparity filtered to inf (and refused downstream as not finite). A disparity beyond this is filtered
# scaled by a power of two, exactly (every weight the same), and the result scaled back.
LARGE_DISPARITY = 2.0 ** 100
# The same at the other end: below this, the products weight·D fell into float32 denormals (2-5 of their units off the
# reference, not 0.5, and the filter 2-6x slower: at 640x480, r = 4, |D| ~ 1e-39 took 76-500 ms against 21-88).
TINY_DISPARITY = 2.0 ** -100

# Live mode defaults, chosen with bench/refine_quality.py (edge RMSE) and bench/bench_refine_cpu.py (time).
LIVE_WORK_WIDTH = 160
LIVE_RADIUS = 4
LIVE_SIGMA_SPATIAL = 3.0
LIVE_SIGMA_RANGE = 0.05
LIVE_UPSAMPLE_SIGMA = 0.75  # low-res pixels, for the 2x2 joint bilateral upsampling


@functools.lru_cache(maxsize=32)
def spatial_table(radius: int, sigma_spatial: float) -> np.ndarray:
    """ws over the (2r+1)² window, row-major float32, floored (read-only; cached)."""
    v = np.arange(-radius, radius + 1, dtype=np.float64)
    table = np.exp(-(v[:, None] ** 2 + v[None, :] ** 2) / (2.0 * sigma_spatial ** 2)).astype(np.float32)
    table[table < WEIGHT_FLOOR] = 0.0
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=32)
def range_lut(sigma_range: float) -> np.ndarray:
    """exp(−(Δ/255)²/2σr²) for one channel's absolute difference Δ = 0..255, float32, floored (cached)."""
    delta = np.arange(256, dtype=np.float64) / 255.0
    lut = np.exp(-delta ** 2 / (2.0 * sigma_range ** 2)).astype(np.float32)
    lut[lut < WEIGHT_FLOOR] = 0.0
    lut.flags.writeable = False
    return lut


def _check_params(radius: int, sigma_spatial: float, sigma_range: float) -> tuple[int, float, float]:
    """Validate the parameters; the sigmas come back as floats clamped into SIGMA_LIMITS."""
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)):
        raise ValueError(f"radius must be an int, got {radius!r}")
    if not 0 <= radius <= MAX_RADIUS:
        raise ValueError(f"radius must be in 0..{MAX_RADIUS}, got {radius}")
    return int(radius), _positive_float("sigma_spatial", sigma_spatial), _positive_float("sigma_range", sigma_range)


def _positive_float(name: str, value: Any) -> float:
    v = number_argument(name, value, "a positive finite number")
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return min(max(v, SIGMA_LIMITS[0]), SIGMA_LIMITS[1])


def _check_images(disparity: Any, guide_bgr: Any, same_size: bool, function: str) -> tuple[Any, Any, float]:
    """Validate; return the disparity (finite; a NumPy one float32 and C-contiguous), the guide as HxWx3 uint8 and
    the disparity's largest magnitude."""
    if getattr(disparity, "dtype", None) == np.uint8 and getattr(getattr(guide_bgr, "dtype", None), "kind", "") == "f":
        raise ValueError(f"disparity is uint8 and guide_bgr {guide_bgr.dtype}: the arguments look swapped; {function} "
                         f"takes the disparity first: {function}(disparity, guide_bgr, ...) (depth_of_field takes "
                         "the image first)")
    if getattr(disparity, "ndim", None) != 2:
        raise ValueError(f"disparity must be a 2-D HxW array, got {_describe(disparity)}")
    if getattr(getattr(disparity, "dtype", None), "kind", None) != "f":
        raise ValueError("disparity must be a float array (float32 preferred), got "
                         f"{getattr(disparity, 'dtype', type(disparity).__name__)}")
    ndim = getattr(guide_bgr, "ndim", None)
    if not (ndim == 2 or (ndim == 3 and guide_bgr.shape[2] in (1, 3, 4))):
        raise ValueError("guide_bgr must be an HxWx3 BGR image (HxW or HxWx1 grey and HxWx4 BGRA are accepted), "
                         f"got {_describe(guide_bgr)}")
    if getattr(guide_bgr, "dtype", None) != np.uint8:
        raise ValueError(f"guide_bgr must be uint8, got {getattr(guide_bgr, 'dtype', type(guide_bgr).__name__)}")
    if same_size and disparity.shape != guide_bgr.shape[:2]:
        raise ValueError(f"disparity {disparity.shape} and guide {guide_bgr.shape[:2]} must have the same size "
                         "(refine_live takes a disparity of any size)")
    if min(disparity.shape) < 1 or min(guide_bgr.shape[:2]) < 1:
        raise ValueError("empty image")
    if is_cupy_array(disparity) != is_cupy_array(guide_bgr):
        raise ValueError("disparity and guide_bgr must both be NumPy arrays or both be CuPy arrays")
    if is_cupy_array(disparity):
        peak = _check_device_disparity(disparity)
    else:
        disparity, peak = _host_disparity(disparity)
    return disparity, _as_bgr(guide_bgr), peak


def _describe(array: Any) -> str:
    shape = getattr(array, "shape", None)
    return f"shape {tuple(shape)}" if shape is not None else type(array).__name__


def _host_disparity(disparity: np.ndarray) -> tuple[np.ndarray, float]:
    """The disparity as the CPU kernels take it, and its largest magnitude.

    A NaN or inf spreads over its whole (2r+1)^2 window (0·inf is NaN); checked after the cast, which turns a
    float64 beyond float32's range into inf (refused below, so no overflow warning first). By its min and max
    (NaN carries through both): faster than np.isfinite(d).all() (47 against 73 µs at 640x480)."""
    with np.errstate(over="ignore"):
        d = kernel_array(disparity, np.float32)  # no copy when already float32, C-contiguous and writable
    low, high = abs(float(d.min())), abs(float(d.max()))
    if not (low <= FLOAT32_MAX and high <= FLOAT32_MAX):
        raise ValueError(NOT_FINITE)
    return d, max(low, high)


def _check_device_disparity(disparity: Any) -> float:
    """A CuPy disparity's NaN or inf (or a float64 beyond float32), refused as a NumPy one is: one reduction on the
    GPU (estimated at tens of microseconds against the filter's milliseconds; no GPU was at hand to time it), and the
    call waits for the work queued before it (in the pipeline it already waits there: the depth stage's checks).
    NaN carries through max, and fails the comparison. Returns the largest magnitude."""
    peak = float(array_module(disparity).abs(disparity).max())
    if not peak <= FLOAT32_MAX:
        raise ValueError(NOT_FINITE)
    return peak


def _scale_exponent(peak: float) -> int:
    """0, or the power of two that brings a disparity beyond LARGE_DISPARITY, or below TINY_DISPARITY (all zeros
    excepted), into [0.5, 1)."""
    return math.frexp(peak)[1] if peak > LARGE_DISPARITY or 0.0 < peak < TINY_DISPARITY else 0


def _scaled(array: Any, exponent: int) -> Any:
    """array · 2^exponent (exact short of underflow); a result beyond float32's range (a weighted mean of values within
    it, rounded up) clipped into it."""
    if exponent == 0:
        return array
    xp = array_module(array)
    out = xp.ldexp(array, exponent)
    return xp.clip(out, -FLOAT32_MAX, FLOAT32_MAX, out=out) if exponent > 0 else out


def _as_bgr(guide: Any) -> Any:
    """HxWx3 view or copy: BGRA loses its alpha; grey becomes (grey, 0, 0), so the colour difference is the
    grey difference exactly (replicating it into three channels would scale it by √3)."""
    if guide.ndim == 3 and guide.shape[2] == 3:
        return guide
    if guide.ndim == 3 and guide.shape[2] == 4:
        return guide[..., :3]
    xp = array_module(guide)
    bgr = xp.zeros(guide.shape[:2] + (3,), xp.uint8)
    bgr[..., 0] = guide if guide.ndim == 2 else guide[..., 0]
    return bgr


def _backend_for(disparity: Any, backend: str) -> str:
    """Where the filter runs: as `backend` resolves, for CuPy inputs too. A CuPy input under "auto" stays on the GPU
    where CUDA can run; where it cannot (a GPU CuPy sees but NVRTC will not load) it is filtered on the host and
    given back as CuPy, as depth_of_field does."""
    return resolve_backend(backend)


def joint_bilateral(disparity: Any, guide_bgr: Any, radius: int = 12, sigma_spatial: float = 20.0,
                    sigma_range: float = 0.05, backend: str = "auto") -> Any:
    """Refine `disparity` (float HxW, float32 preferred) with the guide (uint8 HxWx3 BGR, same size; HxW or
    HxWx1 grey and HxWx4 BGRA are accepted, alpha ignored); float32 HxW result, a new array.

    NumPy in → NumPy out; CuPy in → CuPy out, computed on the GPU. backend "cpu" forces the Numba path
    (CuPy inputs are then copied to the host and the result copied back). A disparity holding NaN or inf is
    refused (ValueError; a CuPy one is scanned on the GPU). Unlike depth_of_field(image_bgr, disparity, ...), the
    disparity comes first. Any scale is filtered as it is (a weighted mean), [0, 1] or not.
    """
    radius, sigma_spatial, sigma_range = _check_params(radius, sigma_spatial, sigma_range)
    disparity, guide_bgr, peak = _check_images(disparity, guide_bgr, same_size=True, function="joint_bilateral")
    exponent = _scale_exponent(peak)
    disparity = _scaled(disparity, -exponent)
    if _backend_for(disparity, backend) == "cuda":
        from kernels.bilateral_cuda import joint_bilateral_cuda

        return _scaled(joint_bilateral_cuda(disparity, guide_bgr, radius, sigma_spatial, sigma_range), exponent)
    on_gpu = is_cupy_array(disparity)
    d = kernel_array(disparity.get(), np.float32) if on_gpu else disparity  # checked on the GPU
    g = guide_bgr.get() if on_gpu else guide_bgr
    from kernels.cpu_threads import parallel_section

    with parallel_section():
        out = _scaled(_joint_bilateral_cpu(d, g, radius, sigma_spatial, sigma_range), exponent)
    if on_gpu:
        import cupy

        return cupy.asarray(out)
    return out


def _joint_bilateral_cpu(disparity: np.ndarray, guide_bgr: np.ndarray, radius: int, sigma_spatial: float,
                         sigma_range: float) -> np.ndarray:
    from kernels.bilateral_cpu import guide_planes, joint_bilateral_planes

    return joint_bilateral_planes(disparity, guide_planes(guide_bgr), range_lut(sigma_range),
                                  spatial_table(radius, sigma_spatial), radius)


def refine_live(disparity: Any, guide_bgr: Any, *, work_width: int = LIVE_WORK_WIDTH, radius: int = LIVE_RADIUS,
                sigma_spatial: float = LIVE_SIGMA_SPATIAL, sigma_range: float = LIVE_SIGMA_RANGE,
                backend: str = "auto") -> Any:
    """Live refinement: disparity of ANY resolution → float32 refined disparity at the guide's resolution.

    Inputs as for `joint_bilateral`, except that the disparity's size is free.

    Resize the disparity and (area-)downsample the guide to `work_width` (aspect of the guide), run the
    exact filter there (`radius`, `sigma_spatial` in working pixels), then joint-bilateral-upsample to full
    resolution guided by the full frame, so depth edges land on the frame's edges (≤ 10 ms at 640x480 on
    2 CPU cores). CPU and CUDA run the same steps (the CUDA path: kernels in joint_bilateral.cu).
    """
    radius, sigma_spatial, sigma_range = _check_params(radius, sigma_spatial, sigma_range)
    disparity, guide_bgr, peak = _check_images(disparity, guide_bgr, same_size=False, function="refine_live")
    if isinstance(work_width, bool) or not isinstance(work_width, (int, np.integer)) or work_width < 2:
        raise ValueError(f"work_width must be an int ≥ 2, got {work_width!r}")
    exponent = _scale_exponent(peak)
    disparity = _scaled(disparity, -exponent)
    if _backend_for(disparity, backend) == "cuda":
        from kernels.bilateral_cuda import refine_live_cuda

        return _scaled(refine_live_cuda(disparity, guide_bgr, int(work_width), radius, sigma_spatial, sigma_range),
                       exponent)
    on_gpu = is_cupy_array(disparity)
    d = kernel_array(disparity.get(), np.float32) if on_gpu else disparity  # checked on the GPU
    g = guide_bgr.get() if on_gpu else guide_bgr
    from kernels.cpu_threads import parallel_section

    with parallel_section():
        out = _scaled(_refine_live_cpu(d, g, int(work_width), radius, sigma_spatial, sigma_range), exponent)
    if on_gpu:
        import cupy

        return cupy.asarray(out)
    return out


def working_size(height: int, width: int, work_width: int) -> tuple[int, int]:
    """Live mode's (height, width): `work_width` wide, never wider than the frame, the frame's aspect."""
    work_w = min(work_width, width)
    return max(1, round(height * work_w / width)), work_w


def _refine_live_cpu(disparity: np.ndarray, guide_bgr: np.ndarray, work_width: int, radius: int,
                     sigma_spatial: float, sigma_range: float) -> np.ndarray:
    import cv2

    from kernels.bilateral_cpu import guide_planes, joint_bilateral_planes, joint_bilateral_upsample

    full_h, full_w = guide_bgr.shape[:2]
    work_h, work_w = working_size(full_h, full_w, work_width)
    lut = range_lut(sigma_range)
    if (work_h, work_w) == (full_h, full_w):
        d_full = _resize(disparity, full_w, full_h)
        return joint_bilateral_planes(d_full, guide_planes(guide_bgr), lut, spatial_table(radius, sigma_spatial),
                                      radius)
    guide_low = cv2.resize(guide_bgr, (work_w, work_h), interpolation=cv2.INTER_AREA)
    d_low = _resize(disparity, work_w, work_h)
    low_planes = guide_planes(guide_low)
    refined = joint_bilateral_planes(d_low, low_planes, lut, spatial_table(radius, sigma_spatial), radius)
    return joint_bilateral_upsample(refined, low_planes, kernel_array(guide_bgr, np.uint8), lut, LIVE_UPSAMPLE_SIGMA)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    if image.shape == (height, width):
        return np.ascontiguousarray(image, dtype=np.float32)
    shrink = width < image.shape[1] and height < image.shape[0]
    return cv2.resize(np.ascontiguousarray(image, dtype=np.float32), (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
