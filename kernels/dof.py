"""Synthetic depth of field: the public dispatcher, input validation and the plan every path shares.

Semantics (exact in `dof_reference`, approximated at a reduced resolution by the fast paths):

* thin lens: signed circle of confusion ``c = max_blur_px * (d - focus) / span`` with
  ``span = max(focus, 1 - focus)``, so whichever disparity extreme (0 or 1) lies farther from the
  focus reaches ``max_blur_px`` (the kernels clamp a disparity outside [0, 1] to that blur; the dispatcher
  refuses one more than RANGE_SLACK outside, a map on another scale); ``c < 0`` is
  the far field (behind the focus plane), ``c > 0`` the near field. Pixels with ``|c| <= 0.5`` (a
  disc no larger than the pixel) are in focus.
* far field: a far pixel p gathers far pixels q whose disc reaches it, with the radius
  ``min(r_q, r_p)`` (a farther pixel cannot spread over a nearer one beyond the nearer one's own
  blur), weight = anti-aliased disc coverage / disc area x highlight weight, normalised. In-focus
  and near pixels never enter it: the background cannot gather the subject (no halo).
* near field: near pixels scatter their disc over everything behind them; coverage (sum of
  coverage / area) is the alpha that composites the normalised near colour over what lies behind.
  Behind a near pixel p lies, as far as one picture can tell, what is not near around it, as rendered without
  the near field (the far field's blur, the focus sharp): the mean of the in-focus and far pixels within p's own
  disc (anti-aliased), the nearer weighing more (``1 / (1 + (d / 1.5)^4)``, `dof_reference.BEHIND_NEAR_PX`: evenly
  weighed, a thin wire crossing a sharp outline drew the outline's disc-wide blur along its path), faded in from
  p itself while they cover less than BEHIND_FADE (a tenth) of the disc's area, so that its colour does not
  switch where the rim of its disc first reaches such a pixel (hard rectangular notches in a blurred foreground).
  So a blurred foreground is soft on both sides of its outline, as a lens shows it (over its own colour, its
  inside stayed opaque to the outline: a sharp object with a glow around it).
* in focus: out = image exactly, unless a blurred foreground spills over it.
* disc: hard edge, anti-aliased over one pixel: ``k = clamp(r - dist + 0.5, 0, 1)``, area
  ``pi (r^2 + 1/12)``, radius clamped to >= 0.5.
* highlight boost: weight ``1 + 4 boost u^16``, ``u = max(0, M - 0.6) / 0.4`` with M the linear (gamma 2.2)
  light of the pixel's brightest channel, so clipped lights, whose true light is far above their stored 255,
  dominate their disc and bloom into visible bokeh balls (a 2 px light on grey 40 at 12 px and boost 4: a disc of
  151, 58 without) while mid-bright surfaces barely change (at boost 4, 255 weighs 17, 250 3.6, 245 1.4, 240 1.04,
  235 1.003; the power 16 keeps a sunlit white shirt or wall from blooming, 8 let 245 weigh 3.4). By the brightest
  channel, as a sensor clips each channel: by the luminance, a warm or coloured light (255, 200, 120) stayed below
  a threshold that steep. In the near field it weighs into the alpha too
  (`dof_reference.near_alpha`: the near colour's share of a normalised mix in which what lies behind weighs
  1 - coverage, as a far highlight's share of its gather): by coverage alone a light in front of the focus plane
  came out as unboosted (half the light of one behind it at boost 1, a quarter at 4).
* light: colours are averaged in linear light, as a lens spreads it, approximated by gamma 2: the
  stored values squared, and the square root of the result. Averaged as stored (sRGB), small lights
  vanished into their discs (7 pixels at 255 on a background of 20, over a 12 px disc: +3.6 levels; in
  linear light +17, a visible bokeh ball) and bright edges blurred dim, a smudge rather than a lens.
  Squares and square roots are cheap and exact on 8-bit values: in-focus pixels still come out bit for
  bit. (The highlight boost's light uses the sRGB curve's gamma 2.2.)
* borders: the far field skips pixels outside the image (its gather is normalised); the near field
  continues the frame's edge pixels beyond it, so a blurred foreground that runs out of the frame
  covers up to the border (skipped, its coverage fell to ~1/2 there and the sharp picture showed through
  in a strip as wide as its blur).

The fast paths (CPU Numba, CUDA) run the same three passes: reduce the frame by a factor ``s``
(`reduction_scale`: the largest blur at most ``LOW_RES_RADIUS`` reduced pixels up to s = 5, then at
most ``MAX_LOW_RES_RADIUS``), gather at that resolution,
and composite at full resolution (bilinear, weighted by field support). CoCs below ``s - 1`` cannot be
represented at 1/s resolution, so the composite gathers them exactly at full resolution (their window
is at most (2s + 1)^2 pixels; the CPU computes the same sums as row stencils, one offset at a time
across a row, which vectorise), cross-fading into the reduced gather between
``s - 1`` and ``s``; so does how much of what lies behind a small near pixel is seen (from the blocks, a one-pixel
disc's backdrop faded in from up to ~1.5 s px away); the colour behind every near pixel is gathered per pixel
(``BEHIND_EXACT``). The near field does so below ``2 s`` (between ``2 s - 1`` and ``2 s``;
``dof_cpu.NEAR_EXACT``): from s to 2 s the blocks' box and bilinear tent spread a disc's light ~1.5 s px past its
rim, a grey band ending in a hard line where a blurred foreground meets black (31.7 levels off on the astronaut),
and their coverage fell short of 1, letting through a backdrop the blocks took from too far away. The far field
hands over at ``s`` unless the call asks for ``exact_far`` (``FAR_EXACT``: at ``2 s``, as the near field): its blocks
spread a bright background as far past its disc (25-44 levels on a synthetic edge, 0.5 exactly), but gathered
exactly below ``2 s`` a portrait costs 30-50 % more for a whole-frame mean of 1.01 -> 0.99 on a real frame: for
photos and files, not live. In the far field the exact gather goes by pairs: the min-radius rule gives a pair (q, p) the
smaller radius of the two, so every pair with a small source or a small receiver is gathered exactly
(share ``1 - t_q t_p``, ``t`` the reduced share) and the reduced gather carries ``t_q`` in its block sums
times ``t_p`` at the receiver, both sums on one scale. Where a subject's depth ramps down to the
background (a network's refined depth does, over ~10 px), a block mixes small and large radii; by the
receiver alone, the ramp's colours spread with the block's mean radius: a dark fringe and outlines
stair-stepped by s (on the astronaut's hair, 7.4 levels mean error within 12 px against 0.9 by pairs,
measured in sRGB before the blur went to linear light).
The block average (a box of s px) and the bilinear composite (a tent of 2s px) blur by themselves, with a
variance of (s^2 - 1) / 4 px^2 along each axis; a disc of radius r has r^2 / 4. So the reduced gather's disc
is narrowed to ``sqrt(r^2 - (s^2 - 1))`` (at least s / 2) and the whole spreads as wide as the disc it stands
for; at its full radius it spread a disc of 5-10 px at s = 5 a fifth wider, and a bright edge's light with
it (error against the reference over recorded real frames, whole frame: mean 0.36-1.22 -> 0.36-0.81 levels,
p99 5.5-15.9 -> 3.7-9.7; bench/RESULTS.md). A depth ramp's smallest radius (above) is taken as it is.
At ``s == 1`` the fast paths compute the reference semantics exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from kernels.backend import NOT_FINITE, array_module, is_cupy_array, kernel_array, number_argument, resolve_backend

FOCUS_RADIUS = 0.5  # |CoC| at or below this is in focus: the disc fits inside the pixel
LOW_RES_RADIUS = 4.0  # largest blur radius, in reduced pixels, while s grows with the blur (VGA's 16 px: s = 4)
# s grows no further than this: the exact full-resolution gather of CoCs below s costs ~s^2 a pixel, and on real
# rendered frames a coarser reduced grid was also less accurate. Measured on rendered 4K depth, a 54 px blur:
# s = 14 (the blur / 4 rule) 398 ms a frame, 0.96 levels from the float64 reference; s = 6 287 ms; s = 5 0.62
# levels (bench/RESULTS.md).
MAX_EXACT_SCALE = 5
# Then s grows again, so the reduced gather's windows stay bounded. That gather costs ~(blur / s)^2 taps on 1 / s^2
# of the pixels, the exact full-resolution gathers (CoCs below s and 2 s) ~s^2 a pixel where the CoCs are small
# (the subject, its outline). At 9 a photo's blur (scaled with its height: a 48 MP portrait's 201.6 px, s = 23) went
# ~99 % into the exact gathers (the near one first) and ~0.1 % into the reduced one. A larger bound is faster; it
# gathers more of a focused subject's small CoCs through the blocks (less accurate there), a blurred foreground's
# through a finer grid (more accurate). A real run's depth of a 12 MP portrait (100.8 px), 2 cores, error against the
# float64 reference (mean / p99 levels) focused on the subject, then on the background (focus 0.2):
#   9 (s = 12) 2.2 s, 0.50 / 4.1, 0.92 / 7.9;   12 (s = 9) 1.2 s, 0.65 / 7.9, 0.63 / 4.1;
#   16 (s = 7) 1.0 s, 0.85 / 11.3, 0.52 / 3.2;  24 (s = 5) 0.7 s, 0.98 / 14.8, 0.41 / 2.2.
# 12 is the largest whose worst p99 stays as it was, its mean error over both a little lower; it halves a 12 MP
# render, and at 48 MP (201.6 px) s = 23 -> 17, 33.6 -> 17.3 s (16: s = 13, 7.4 s). Blurs up to 45 px (video to
# 1440p) keep their s; 4K's 54 px goes from 6 to 5.
MAX_LOW_RES_RADIUS = 12.0
# The GPU could afford 8 (crisper bokeh rims: they soften over ~1.5 s px), but the same factor on both
# devices makes --device cpu and --device cuda render the same picture (to 1 level), which users expect.
LOW_RES_RADIUS_CUDA = LOW_RES_RADIUS
# A block's far radius is the mean of its reduced share, or its smallest where those radii spread over more
# than RAMP_SPREAD * s px: a subject's depth ramping down to the background, where the mean spread the ramp's
# colours too far (within 12 px of the astronaut's hair, mean error 1.10 -> 0.87 levels; on a smooth
# random depth at 40 px, where blocks spread less, 1.58 -> 1.70; bench/RESULTS.md).
RAMP_SPREAD = 1.0
HIGHLIGHT_THRESHOLD = 0.6  # linear light of a pixel's brightest channel above which the highlight boost starts
HIGHLIGHT_GAIN = 4.0  # a clipped pixel weighs 1 + HIGHLIGHT_GAIN * boost (the docstring's highlight boost)
# With exact_far the far field too is gathered exactly below FAR_EXACT * s (as the near field: dof_cpu.NEAR_EXACT),
# else below s: a bright/black far edge at CoC s..2 s was 25-44 levels off the reference through the blocks, 0.5
# exactly. It costs the synthetic portrait's background 29 % more CPU time at 640x480 (blur 10) and 45-51 % at
# 1280x720 (blur 18) (bench/RESULTS.md), so it is for renders that are not time-bound (photos, files into files:
# render.exact_far's auto).
FAR_EXACT = 2
# What lies behind a near pixel weighs the pixels not near by a d^-4 proximity of 1.5 px (dof_reference:
# BEHIND_NEAR_PX), which s x s blocks cannot resolve: their distances, off by up to s / sqrt 2, moved a weight by
# (1 +- s / 2d)^4 (a near disc over a far gradient at s = 5: 3.6 levels off the reference on average, 18 at most,
# gathered block to block). So the fast paths gather that colour per full-resolution pixel, from the far field as
# rendered: the blocks within BEHIND_EXACT * s px (by their centre) pixel by pixel, the farther ones as one tap at the
# centroid of their pixels not near (that disc: 0.3-1.0 and 4 at most at s = 3-6; tests/test_dof26_backdrop.py).
BEHIND_EXACT = 2
MAX_BLUR_LIMIT = 512.0
# Values this far outside [0, 1] still pass (clamped to the extremes' blur): float32 rounding of a [0, 1] map
# through the filters' weighted means. A disparity on another scale (0..255, metres) is far outside.
RANGE_SLACK = 1e-3
FLOAT32_MAX = float(np.finfo(np.float32).max)
GAMMA = 2.2


@dataclass(frozen=True)
class DofPlan:
    """Scalars every path derives the same way from the call's arguments."""

    focus: float
    coc_scale: float  # c = (d - focus) * coc_scale, clamped to +-coc_max
    coc_max: float  # = max_blur_px (reached by d = 0 or 1; a disparity outside [0, 1] goes no further)
    scale: int  # reduction factor s of the fast paths
    low_shape: tuple[int, int]
    near_reach: int  # gather half-window for the near field, in reduced pixels
    highlight_boost: float
    far_exact: int = 1  # the far field is gathered exactly below far_exact * s: 1, or FAR_EXACT (exact_far)


def reduction_scale(max_blur_px: float, low_res_radius: float = LOW_RES_RADIUS) -> int:
    """The reduction factor s: the smallest that brings the largest CoC to at most `low_res_radius` reduced
    pixels, but no more than MAX_EXACT_SCALE unless the CoC would then exceed MAX_LOW_RES_RADIUS of them."""
    s = min(math.ceil(max_blur_px / low_res_radius - 1e-9), MAX_EXACT_SCALE)
    return max(1, s, math.ceil(max_blur_px / MAX_LOW_RES_RADIUS - 1e-9))


def plan(shape: tuple[int, int], focus: float, max_blur_px: float, highlight_boost: float,
         scale: int | None = None, exact_far: bool = False) -> DofPlan:
    span = max(focus, 1.0 - focus)
    if scale is None:
        scale = reduction_scale(max_blur_px)
    h, w = shape
    low = (-(-h // scale), -(-w // scale))
    rho_max = max(max_blur_px / scale, FOCUS_RADIUS)
    return DofPlan(focus=float(focus), coc_scale=float(max_blur_px / span), coc_max=float(max_blur_px),
                   scale=int(scale), low_shape=low,
                   near_reach=int(math.ceil(rho_max + 0.5)) - 1, highlight_boost=float(highlight_boost),
                   far_exact=FAR_EXACT if exact_far else 1)


def _check_scalar(name: str, value: Any, low: float, high: float) -> float:
    v = number_argument(name, value, "a number")
    if not math.isfinite(v) or not low <= v <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
    return v


def depth_of_field(image_bgr, disparity, focus: float, max_blur_px: float, *, highlight_boost: float = 0.0,
                   exact_far: bool = False, backend: str = "auto"):
    """Render a synthetic shallow depth of field: the image first, then its disparity.

    image_bgr: uint8 HxWx3 BGR (NumPy or CuPy); HxW or HxWx1 grey (rendered as grey) and HxWx4 BGRA (alpha
    passed through unchanged) are accepted. disparity: float HxW in [0, 1], larger = nearer; one holding NaN
    or inf, or values outside [0, 1] (a 0..255 map: divide it by its maximum), is refused with a ValueError
    (a CuPy one is scanned on the GPU: its min and max). focus: the in-focus disparity; max_blur_px:
    the largest CoC radius in pixels. exact_far: gather the far field exactly up to twice the reduced grid's
    step (FAR_EXACT), not once: a bright background beside a dark one ends at its disc's rim instead of a hard
    line ~1.5 s px past it, for more time on a blurred background (for renders that are not time-bound).
    Returns a new uint8 image of the input's shape and array type (NumPy in, NumPy out; CuPy in, CuPy out).
    """
    _check_arrays(image_bgr, disparity)
    focus = _check_scalar("focus", focus, 0.0, 1.0)
    max_blur_px = _check_scalar("max_blur_px", max_blur_px, 0.0, MAX_BLUR_LIMIT)
    highlight_boost = _check_scalar("highlight_boost", highlight_boost, 0.0, 1e3)
    if not isinstance(exact_far, (bool, np.bool_)):
        raise ValueError(f"exact_far must be True or False, got {exact_far!r}")
    _check_disparity_values(disparity)  # before the backend: a NumPy frame sent to CUDA is checked too
    chosen = resolve_backend(backend)  # ValueError for an unknown name, BackendUnavailable for missing CUDA
    if max_blur_px == 0.0:
        # nothing to blur: a copy, a plain C-contiguous array as every render is (np.array kept a Fortran or
        # transposed layout, which cv2's drawing functions refuse)
        return array_module(image_bgr).array(image_bgr, order="C")
    out = _render(_as_bgr(image_bgr), disparity, focus, max_blur_px, highlight_boost, bool(exact_far), chosen)
    return _restore_channels(out, image_bgr)


def _check_arrays(image_bgr: Any, disparity: Any) -> None:
    """Array types, dtypes and shapes; the message says which argument comes first where they look swapped."""
    on_gpu = is_cupy_array(image_bgr)
    if on_gpu != is_cupy_array(disparity):
        raise ValueError("image_bgr and disparity must both be NumPy or both be CuPy arrays")
    if not on_gpu and not (isinstance(image_bgr, np.ndarray) and isinstance(disparity, np.ndarray)):
        raise ValueError("image_bgr and disparity must be NumPy (or CuPy) arrays")
    if image_bgr.dtype.kind == "f" and disparity.dtype == np.uint8:
        raise ValueError(f"image_bgr is {image_bgr.dtype} and disparity {disparity.dtype}: the arguments look "
                         "swapped; depth_of_field takes the image first: depth_of_field(image_bgr, disparity, focus, "
                         "max_blur_px) (joint_bilateral and refine_live take the disparity first)")
    if image_bgr.dtype != np.uint8 or not _is_image_shape(image_bgr.shape):
        raise ValueError("image_bgr must be a uint8 HxWx3 BGR image (HxW or HxWx1 grey and HxWx4 BGRA are accepted), "
                         f"got {image_bgr.dtype} {tuple(image_bgr.shape)}")
    if disparity.ndim != 2 or tuple(disparity.shape) != tuple(image_bgr.shape[:2]):
        raise ValueError(f"disparity must be HxW = {tuple(image_bgr.shape[:2])}, got {tuple(disparity.shape)}")
    if disparity.dtype.kind != "f":
        raise ValueError(f"disparity must be a float array in [0, 1], got {disparity.dtype} (divide an integer "
                         "map by its maximum: disparity / disparity.max())")
    if image_bgr.shape[0] == 0 or image_bgr.shape[1] == 0:
        raise ValueError("image is empty")


def _is_image_shape(shape: tuple[int, ...]) -> bool:
    return len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3, 4))


def _check_disparity_values(disparity: Any) -> None:
    """Refuse NaN, inf and a disparity outside [0, 1], by its min and max (NaN carries through both): 0.6 ms at
    1080p on one core, a reduction on the GPU for a CuPy one (the call then waits for the work queued before it)."""
    low, high = float(disparity.min()), float(disparity.max())
    if not (abs(low) <= FLOAT32_MAX and abs(high) <= FLOAT32_MAX):  # NaN, inf, or inf once cast to float32
        raise ValueError(NOT_FINITE)
    if low < -RANGE_SLACK or high > 1.0 + RANGE_SLACK:
        raise ValueError(f"disparity must be in [0, 1] (larger = nearer), got values in [{low:.6g}, {high:.6g}]; "
                         "scale it to [0, 1] first, e.g. disparity / disparity.max() for a 0..255 map")


def _as_bgr(image: Any) -> Any:
    """The HxWx3 image the renderers take: BGRA without its alpha, grey replicated into three equal channels
    (each channel renders alike, so the result is grey again)."""
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    xp = array_module(image)
    if image.ndim == 3 and image.shape[2] == 4:
        return xp.ascontiguousarray(image[..., :3])
    bgr = xp.empty(image.shape[:2] + (3,), xp.uint8)
    bgr[...] = image.reshape(image.shape[:2] + (1,))
    return bgr


def _restore_channels(out: Any, image: Any) -> Any:
    """The render in the input's own channels: grey in its shape, BGRA with the input's alpha."""
    if image.ndim == 3 and image.shape[2] == 3:
        return out
    xp = array_module(out)
    if image.ndim == 2:
        return xp.ascontiguousarray(out[..., 0])
    if image.shape[2] == 1:
        return xp.ascontiguousarray(out[..., :1])
    bgra = xp.empty(image.shape, xp.uint8)
    bgra[..., :3] = out
    bgra[..., 3] = image[..., 3]
    return bgra


def _render(image_bgr: Any, disparity: Any, focus: float, max_blur_px: float, highlight_boost: float,
            exact_far: bool, chosen: str) -> Any:
    on_gpu = is_cupy_array(image_bgr)
    if chosen == "cuda" or on_gpu:
        if on_gpu and chosen == "cpu":
            # The caller asked for the CPU on device arrays: honour it, return device arrays.
            import cupy

            out = _cpu(cupy.asnumpy(image_bgr), cupy.asnumpy(disparity), focus, max_blur_px, highlight_boost,
                       exact_far)
            return cupy.asarray(out)
        from kernels import dof_cuda

        return dof_cuda.depth_of_field_cuda(image_bgr, disparity, focus, max_blur_px, highlight_boost=highlight_boost,
                                            exact_far=exact_far)
    return _cpu(image_bgr, disparity, focus, max_blur_px, highlight_boost, exact_far)


def _cpu(image_bgr: np.ndarray, disparity: np.ndarray, focus: float, max_blur_px: float,
         highlight_boost: float, exact_far: bool) -> np.ndarray:
    from kernels import dof_cpu

    return dof_cpu.depth_of_field_cpu(kernel_array(image_bgr, np.uint8), kernel_array(disparity, np.float32), focus,
                                      max_blur_px, highlight_boost=highlight_boost, exact_far=exact_far)
