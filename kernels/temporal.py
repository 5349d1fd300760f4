"""Temporal smoothing of the network's disparity: a still background stops "breathing" in the blur.

The network predicts every frame afresh, so sensor noise and compression move a static pixel's disparity from
frame to frame, and the blur radius there pulses. Per pixel, the kept disparity S moves towards the newest D by

    a = w + (1 − w)·m,    m = clip((|Y − G| − t) / t, 0, 1),    S ← S + a·(D − S)

where w is the still weight (`smoothing` per 1/30 s, at any frame rate), Y the frame's luma at the map's size and
G the luma kept the same way as S: where the picture no longer looks like what S was made from (a moving subject,
motion blur, a light switched on) m reaches 1 and the newest depth is taken whole, so a moving edge does not smear.
Comparing against the kept luma rather than the last frame's catches slow motion too (it adds up), and noise below
the threshold t (8 of 255 on a luma already averaged to the map's size) does not count as motion.

It runs at the network's resolution (a few hundred pixels wide), before refinement: cheap at any frame size. The
float64 reference (`blend_reference`) defines the result; `blend` is the float32 path, tested against it, on whichever
side the map is (NumPy, or CuPy where the depth stays on the GPU: only the small luma map goes up).
"""
from __future__ import annotations

import cv2
import numpy as np

from kernels.backend import array_module

# Smoothing weights (the depth range's, each pixel's here, the focus's in stream.focus) are given per frame of a
# 30 fps video; with the frames' times they mean the same in seconds at any frame rate.
REFERENCE_FPS = 30.0
MOTION_THRESHOLD = 8.0  # luma levels (of 255) of change below which a pixel counts as still
# Frames further apart than this start afresh: a live source that reconnected (a camera reopened, a stream that
# dropped) shows a picture the kept depth may owe nothing to. Their still weight would be above 0.995 anyway (0.3
# per 1/30 s): the reset only makes it exact, and also where the network is slower than two maps a second.
RESET_GAP_S = 0.5
# The fast blend's largest factor per luma level: |Δ|·factor stays a finite float32 for any |Δ| up to 2.6e8, and a
# change of 1e-30 levels still counts as motion at a threshold below float32's range.
MOTION_FACTOR_LIMIT = 2.0 ** 100


def newest_weight(smoothing: float, seconds: float | None, previous: float | None) -> float:
    """The newest value's weight (a still pixel's map here, the depth range's in models.postprocess): `smoothing`
    per 1/30 s of the frames' times (one step of 1/30 s where the times are unknown or do not go forward: clips
    joined as they are)."""
    steps = (seconds - previous) * REFERENCE_FPS if seconds is not None and previous is not None and \
        seconds > previous else 1.0
    return 1.0 - (1.0 - smoothing) ** steps


def blend_reference(kept: np.ndarray, newest: np.ndarray, kept_luma: np.ndarray, luma: np.ndarray,
                    weight: float, threshold: float = MOTION_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """The next kept disparity and kept luma, in float64 (the definition the fast path is tested against)."""
    change = np.abs(luma.astype(np.float64) - kept_luma.astype(np.float64))
    moved = np.clip(change / threshold - 1.0, 0.0, 1.0)  # (change − t)/t, without inf/inf (NaN) at t = inf
    a = weight + (1.0 - weight) * moved
    kept64 = kept.astype(np.float64)
    luma64 = kept_luma.astype(np.float64)
    return kept64 + a * (newest.astype(np.float64) - kept64), luma64 + a * (luma.astype(np.float64) - luma64)


def blend(kept: np.ndarray, newest: np.ndarray, kept_luma: np.ndarray, luma: np.ndarray,
          weight: float, threshold: float = MOTION_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """`blend_reference` in float32, updating `kept` and `kept_luma` in place (and returning them); NumPy or CuPy
    arrays, all on the same side."""
    xp = array_module(kept)
    still = 1.0 - weight
    a = xp.subtract(luma, kept_luma, dtype=xp.float32)
    xp.abs(a, out=a)
    # |Δ|·(1 − w)/t − (1 − w), its factor kept finite: (|Δ| − t)·(1 − w)/t gave 0·inf, NaN at every pixel, where t
    # or (1 − w)/t lay beyond float32's range (t = inf: no pixel ever moves; t under ~1e-38)
    a *= min(still / threshold, MOTION_FACTOR_LIMIT)
    a -= still
    xp.clip(a, 0.0, still, out=a)
    a += weight
    step = xp.subtract(newest, kept, dtype=xp.float32)
    step *= a
    kept += step
    luma_step = xp.subtract(luma, kept_luma, dtype=xp.float32)
    luma_step *= a
    kept_luma += luma_step
    return kept, kept_luma


def small_luma(image_bgr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The frame's luma averaged down to the map's (height, width), float32: averaging also cuts the sensor noise
    that the motion test must not take for motion. A large frame goes bilinearly to twice the map's size first:
    OpenCV's area resize by a fractional ratio took 9-13 ms from 1080p to 320x192, this 0.7 ms. Grey before the area
    resize, which then averages one channel, not three: 0.95 -> 0.47 ms from 640x480 (within a level of 255)."""
    height, width = shape
    if image_bgr.shape[0] > 2 * height and image_bgr.shape[1] > 2 * width:
        image_bgr = cv2.resize(image_bgr, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)


class TemporalFilter:
    """The disparity kept across a shot's frames (see the module): call it on each frame's normalised disparity
    at the network's size (NumPy or CuPy), in frame order, and `reset()` at a cut (a new shot's depth owes nothing
    to the last). It starts afresh by itself where the frame's size changes or frames come RESET_GAP_S apart."""

    def __init__(self, smoothing: float = 0.3, threshold: float = MOTION_THRESHOLD) -> None:
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1] (the newest frame's weight), got {smoothing}")
        if not threshold > 0.0:
            raise ValueError(f"threshold must be above 0 (luma levels), got {threshold}")
        self.smoothing = smoothing
        self.threshold = threshold
        self.reset()

    def reset(self) -> None:
        self._kept = self._kept_luma = None
        self._seconds: float | None = None
        self._frame_shape: tuple[int, ...] | None = None

    def __call__(self, disparity, image_bgr: np.ndarray, seconds: float | None = None):
        """The smoothed disparity for this frame, on the side `disparity` is (a new array: the caller may keep or
        change it). `image_bgr` is the frame on the host, `seconds` its time where there is one."""
        xp = array_module(disparity)
        luma = xp.asarray(small_luma(image_bgr, disparity.shape[:2]))
        previous, self._seconds = self._seconds, seconds
        if self._afresh(disparity, image_bgr.shape, previous, seconds):
            self._kept, self._kept_luma = xp.array(disparity, dtype=xp.float32), luma  # a copy: ours to change
        else:
            blend(self._kept, disparity, self._kept_luma, luma, newest_weight(self.smoothing, seconds, previous),
                  self.threshold)
        self._frame_shape = image_bgr.shape
        return self._kept.copy()

    def _afresh(self, disparity, frame_shape: tuple[int, ...], previous: float | None, seconds: float | None) -> bool:
        """Whether this frame's depth is taken whole: the first, a new size, a gap in time, or no smoothing."""
        if self._kept is None or self.smoothing >= 1.0:
            return True
        if self._kept.shape != disparity.shape or self._frame_shape != frame_shape:
            return True
        if array_module(self._kept) is not array_module(disparity):  # the other side of the PCIe bus
            return True
        return previous is not None and seconds is not None and seconds - previous > RESET_GAP_S


# --- after the refinement: the refined map itself, at the frame's size ---------------------------------------------
#
# Smoothing the network's map alone left the refined map flickering at depth edges 2-3 times as much as that map:
# the joint bilateral filter's range weights follow each frame's own sensor noise, so a still edge's refined depth
# moves whatever its input does. Blending the refined map (the same rule, the same motion test at the map's size)
# smooths both causes at once; a moving pixel's neighbours (MOTION_SPREAD map pixels) count as moving too, because
# the refined map's edges are sharp at the frame's size where the motion test is not (bench/temporal_flicker.py).
MOTION_SPREAD = 1  # map pixels around a moving one that take its weight: a 3x3 neighbourhood


def spread_reference(weights: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The newest map's weight at the frame's (height, width), float64: each map pixel's largest weight within
    MOTION_SPREAD pixels, bilinearly up (OpenCV's pixel centres)."""
    side = 2 * MOTION_SPREAD + 1
    grown = cv2.dilate(weights.astype(np.float64), np.ones((side, side), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(grown, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def smooth_refined_reference(kept: np.ndarray, newest: np.ndarray, kept_luma: np.ndarray, luma: np.ndarray,
                             weight: float, threshold: float = MOTION_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """The next kept refined map (the frame's size) and kept luma (the map's), in float64: the definition the fast
    path is tested against. The luma is kept by each map pixel's own weight; the refined map by the spread one."""
    change = np.abs(luma.astype(np.float64) - kept_luma.astype(np.float64))
    a = weight + (1.0 - weight) * np.clip(change / threshold - 1.0, 0.0, 1.0)
    luma64 = kept_luma.astype(np.float64)
    spread = spread_reference(a, newest.shape[:2])
    kept64 = kept.astype(np.float64)
    return kept64 + spread * (newest.astype(np.float64) - kept64), luma64 + a * (luma.astype(np.float64) - luma64)


def still_weights(kept_luma: np.ndarray, luma: np.ndarray, weight: float,
                  threshold: float = MOTION_THRESHOLD) -> np.ndarray:
    """Each map pixel's newest weight (float32, NumPy), updating `kept_luma` in place: `blend`'s steps."""
    still = 1.0 - weight
    a = np.subtract(luma, kept_luma, dtype=np.float32)
    np.abs(a, out=a)
    a *= min(still / threshold, MOTION_FACTOR_LIMIT)  # kept finite: see blend
    a -= still
    np.clip(a, 0.0, still, out=a)
    a += weight
    step = np.subtract(luma, kept_luma, dtype=np.float32)
    step *= a
    kept_luma += step
    return a


def spread(weights: np.ndarray, like):
    """`spread_reference` in float32, on the side `like` (the refined map) is: dilated on the host (a few hundred
    pixels wide), brought up where the map is (a CuPy map gets 0.2 MB up, not its 8 MB at 1080p)."""
    side = 2 * MOTION_SPREAD + 1
    grown = cv2.dilate(weights, np.ones((side, side), np.uint8), borderType=cv2.BORDER_REPLICATE)
    height, width = like.shape[:2]
    if array_module(like) is np:
        return cv2.resize(grown, (width, height), interpolation=cv2.INTER_LINEAR)
    from kernels.bilateral_cuda import resize_bilinear_cuda

    return resize_bilinear_cuda(array_module(like).asarray(grown), height, width)


def lerp(kept, newest, weights):
    """kept + weights·(newest − kept) into a new float32 array (NumPy through OpenCV, which runs on all cores: 2-3
    times NumPy's time at 1080p; CuPy as it is)."""
    xp = array_module(kept)
    if xp is np:
        out = cv2.subtract(np.asarray(newest, np.float32), kept)
        cv2.multiply(out, weights, dst=out)
        return cv2.add(out, kept, dst=out)
    out = xp.subtract(newest, kept, dtype=xp.float32)
    out *= weights
    out += kept
    return out


class RefinedFilter:
    """The refined disparity kept across a shot's frames (see above): call it on each frame's refined map (NumPy or
    CuPy, the frame's size) with the frame and the network map's (height, width), where the motion test runs, in
    frame order; `reset()` at a cut. It starts afresh by itself where the frame's size changes or frames come
    RESET_GAP_S apart. A returned map is kept as the next frame's reference, never changed by the filter (a frame
    in flight keeps its depth); the caller must not change it in place either."""

    def __init__(self, smoothing: float = 0.3, threshold: float = MOTION_THRESHOLD) -> None:
        TemporalFilter(smoothing, threshold)  # the same checks
        self.smoothing = smoothing
        self.threshold = threshold
        self.reset()

    def reset(self) -> None:
        self._kept = self._kept_luma = None
        self._seconds: float | None = None

    def __call__(self, refined, image_bgr: np.ndarray, motion_shape: tuple[int, int], seconds: float | None = None):
        luma = small_luma(image_bgr, motion_shape)
        previous, self._seconds = self._seconds, seconds
        if self._afresh(refined, luma, previous, seconds):
            xp = array_module(refined)
            self._kept, self._kept_luma = xp.asarray(refined, dtype=xp.float32), luma
        else:
            weights = still_weights(self._kept_luma, luma, newest_weight(self.smoothing, seconds, previous),
                                    self.threshold)
            self._kept = lerp(self._kept, refined, spread(weights, refined))
        return self._kept

    def _afresh(self, refined, luma: np.ndarray, previous: float | None, seconds: float | None) -> bool:
        """Whether this frame's map is taken whole: the first, a new size, a gap in time, or no smoothing."""
        if self._kept is None or self.smoothing >= 1.0:
            return True
        if self._kept.shape != refined.shape or self._kept_luma.shape != luma.shape:
            return True
        if array_module(self._kept) is not array_module(refined):
            return True
        return previous is not None and seconds is not None and seconds - previous > RESET_GAP_S
