"""Temporal smoothing of the refined disparity: a still background stops "breathing" in the blur.

The network predicts every frame afresh, so sensor noise and compression move a static pixel's disparity from
frame to frame; the joint bilateral refinement's range weights follow each frame's own noise too, so a still depth
edge's refined value moves even where the network's does not. Per pixel, the kept refined disparity S (the frame's
size) moves towards the newest refined R by

    a = w + (1 − w)·m,    m = clip((|Y − G| − t) / t, 0, 1),    S ← S + A·(R − S)

where w is the still weight (`smoothing` per 1/30 s, at any frame rate), Y the frame's luma at the network map's
size and G the luma kept the same way (by a): where the picture no longer looks like what S was made from (a moving
subject, motion blur, a light switched on) m reaches 1 and the newest depth is taken whole, so a moving edge does not
smear. Comparing against the kept luma rather than the last frame's catches slow motion too (it adds up), and noise
below the threshold t (8 of 255 on a luma already averaged to the map's size) does not count as motion. A is a
brought up to the frame's size, each map pixel's largest a within MOTION_SPREAD first: the refined map's edges are
sharp at the frame's size where the motion test is not. Where the depth is a few frames old (async runs), a new map
made from a picture unlike the kept depth's (motion, a cut) is taken whole the same way (`depth_image`).

The float64 references (`still_weights_reference`, `smooth_refined_reference`) define the result; `still_weights`
and `smooth` are the float32 paths, tested against them, on whichever side the map is (NumPy, or CuPy where the
depth stays on the GPU: only the small weights go up).
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


def small_luma(image_bgr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The frame's luma averaged down to the map's (height, width), float32: averaging also cuts the sensor noise
    that the motion test must not take for motion. Grey first (one channel to average, not three), halved by
    cv2.pyrDown (a 5x5 Gaussian) while more than twice the map's size, then an area resize. A bilinear step to twice
    the map's size instead read 4 of the ~30 pixels each map pixel covers at 1080p: with sigma-8 noise, 0.1 % of a
    still picture's map pixels counted as motion, every frame (none now), for 0.85 -> 1.6 ms (an area resize by the
    whole fractional ratio: 9-13 ms)."""
    height, width = shape
    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    while grey.shape[0] > 2 * height and grey.shape[1] > 2 * width:
        grey = cv2.pyrDown(grey)
    return cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)


# Map pixels around a moving one that take its weight (a 9x9 neighbourhood): the refined map's soft halo around a
# subject, a few network-map pixels wide, moves with it, and on a plain wall the pixels it leaves keep their luma; a
# 3x3 reach let the old halo fade at the still weight there, rings of it trailing the subject (live-cpu at 0.3, a
# subject crossing a plain wall: smear p99 0.96 -> 0.59 CoC px, 0.14 -> 0.04 at depth edges; a still picture's gain,
# where nothing moves, the same).
MOTION_SPREAD = 4
# The host's blend takes the still weight in one pass (cv2.addWeighted) and the exact per-pixel one only in boxes
# around what moved, one box a band of map rows: a still picture's 1080p map in 1 pass, not 4 (resize, subtract,
# multiply, add: 6-12 ms on two busy cores). Where the boxes cover more than MOTION_BOXES_LIMIT of the frame, the
# exact passes go over all of it at once (the one pass first was then 1.3 times the time).
MOTION_BANDS = 8
MOTION_BOXES_LIMIT = 0.5


def still_weights_reference(kept_luma: np.ndarray, luma: np.ndarray, weight: float,
                            threshold: float = MOTION_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Each map pixel's newest weight a and the next kept luma, in float64 (the definition `still_weights` is tested
    against)."""
    change = np.abs(luma.astype(np.float64) - kept_luma.astype(np.float64))
    moved = np.clip(change / threshold - 1.0, 0.0, 1.0)  # (change − t)/t, without inf/inf (NaN) at t = inf
    a = weight + (1.0 - weight) * moved
    luma64 = kept_luma.astype(np.float64)
    return a, luma64 + a * (luma.astype(np.float64) - luma64)


def still_weights(kept_luma: np.ndarray, luma: np.ndarray, weight: float,
                  threshold: float = MOTION_THRESHOLD) -> np.ndarray:
    """`still_weights_reference`'s a in float32 (NumPy), updating `kept_luma` in place."""
    still = 1.0 - weight
    a = np.subtract(luma, kept_luma, dtype=np.float32)
    np.abs(a, out=a)
    # |Δ|·(1 − w)/t − (1 − w), its factor kept finite: (|Δ| − t)·(1 − w)/t gave 0·inf, NaN at every pixel, where t
    # or (1 − w)/t lay beyond float32's range (t = inf: no pixel ever moves; t under ~1e-38)
    a *= min(still / threshold, MOTION_FACTOR_LIMIT)
    a -= still
    np.clip(a, 0.0, still, out=a)
    a += weight
    step = np.subtract(luma, kept_luma, dtype=np.float32)
    step *= a
    kept_luma += step
    return a


def spread_reference(weights: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The newest map's weight at the frame's (height, width), float64: each map pixel's largest weight within
    MOTION_SPREAD pixels, bilinearly up (OpenCV's pixel centres)."""
    return cv2.resize(grow(weights.astype(np.float64)), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def smooth_refined_reference(kept: np.ndarray, newest: np.ndarray, kept_luma: np.ndarray, luma: np.ndarray,
                             weight: float, threshold: float = MOTION_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """The next kept refined map (the frame's size) and kept luma (the map's), in float64: the definition the fast
    path is tested against. The luma is kept by each map pixel's own weight; the refined map by the spread one."""
    a, next_luma = still_weights_reference(kept_luma, luma, weight, threshold)
    kept64 = kept.astype(np.float64)
    return kept64 + spread_reference(a, newest.shape[:2]) * (newest.astype(np.float64) - kept64), next_luma


def grow(weights: np.ndarray) -> np.ndarray:
    """Each map pixel's largest weight within MOTION_SPREAD pixels (on the host: a few hundred pixels wide)."""
    side = 2 * MOTION_SPREAD + 1
    return cv2.dilate(weights, np.ones((side, side), np.uint8), borderType=cv2.BORDER_REPLICATE)


def smooth(kept, newest, grown: np.ndarray, weight: float):
    """kept + A·(newest − kept) into a new float32 array, A the map-size weights `grown` (float32, the host's, none
    below `weight`) brought up bilinearly: `smooth_refined_reference`'s map, on the side `kept` and `newest` are (a
    CuPy map gets 0.2 MB of weights up, not its 8 MB at 1080p)."""
    height, width = newest.shape[:2]
    if array_module(kept) is np:
        return _smooth_host(kept, np.asarray(newest, np.float32), grown, weight)
    from kernels.bilateral_cuda import resize_bilinear_cuda

    xp = array_module(kept)
    out = xp.subtract(newest, kept, dtype=xp.float32)
    out *= resize_bilinear_cuda(xp.asarray(grown), height, width)
    out += kept
    return out


def _smooth_host(kept: np.ndarray, newest: np.ndarray, grown: np.ndarray, weight: float) -> np.ndarray:
    """`smooth` on the host: the still weight everywhere in one pass, then the exact blend in the boxes whose
    weights read a moved map pixel, or everywhere where they cover most of the frame (each OpenCV pass runs on the
    calling thread, in SIMD: none of them wakes OpenCV's thread pool)."""
    still = np.float32(weight)
    height, width = newest.shape[:2]
    boxes = moving_boxes(grown > still, (height, width))
    covered = sum((rows.stop - rows.start) * (columns.stop - columns.start) for rows, columns in boxes)
    if covered > MOTION_BOXES_LIMIT * height * width:
        return _lerp_host(kept, newest, cv2.resize(grown, (width, height), interpolation=cv2.INTER_LINEAR))
    out = cv2.addWeighted(kept, 1.0 - float(still), newest, float(still), 0.0)
    if boxes:
        weights = cv2.resize(grown, (width, height), interpolation=cv2.INTER_LINEAR)
        for box in boxes:
            out[box] = _lerp_host(kept[box], newest[box], weights[box])
    return out


def _lerp_host(kept: np.ndarray, newest: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """kept + weights·(newest − kept) into a new array, in OpenCV's passes (2-3 times NumPy's speed at 1080p)."""
    out = cv2.subtract(newest, kept)
    cv2.multiply(out, weights, dst=out)
    return cv2.add(out, kept, dst=out)


def moving_boxes(moving: np.ndarray, shape: tuple[int, int]) -> list[tuple[slice, slice]]:
    """The frame's (height, width) boxes whose bilinear weights read a `moving` map pixel: per band of map rows,
    the rows and columns of its moving pixels."""
    boxes = []
    for rows in np.array_split(np.arange(moving.shape[0]), min(MOTION_BANDS, moving.shape[0])):
        band = moving[rows[0]:rows[-1] + 1]
        ys, xs = np.flatnonzero(band.any(axis=1)), np.flatnonzero(band.any(axis=0))
        if ys.size:
            boxes.append((_reading(rows[0] + ys[0], rows[0] + ys[-1], moving.shape[0], shape[0]),
                          _reading(xs[0], xs[-1], moving.shape[1], shape[1])))
    return boxes


def _reading(first: int, last: int, small: int, large: int) -> slice:
    """The frame pixels along one axis whose bilinear weights read map pixels first..last: pixel i reads the two
    around (i + 0.5)·small/large − 0.5 (OpenCV's centres), so map pixel j is read from (j − 0.5)·large/small − 0.5
    to (j + 1.5)·large/small − 0.5; a pixel more either side against rounding."""
    scale = large / small
    start = int(np.floor((first - 0.5) * scale - 0.5)) - 1
    stop = int(np.ceil((last + 1.5) * scale - 0.5)) + 1
    return slice(max(start, 0), min(stop, large))


class RefinedFilter:
    """The refined disparity kept across a shot's frames (see the module): call it on each frame's refined map
    (NumPy or CuPy, the frame's size) with the frame and the network map's (height, width), where the motion test
    runs, in frame order; `reset()` at a cut. It starts afresh by itself where the frame's size changes or frames
    come RESET_GAP_S apart. A returned map is kept as the next frame's reference, never changed by the filter (a
    frame in flight keeps its depth); the caller must not change it in place either."""

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
        self._depth_image: np.ndarray | None = None
        self._depth_luma: np.ndarray | None = None

    def __call__(self, refined, image_bgr: np.ndarray, motion_shape: tuple[int, int], seconds: float | None = None,
                 depth_image: np.ndarray | None = None):
        """The smoothed map. `depth_image`: the picture the depth was made from where it is not this frame's (async
        runs, the same array while a map is reused): a new one unlike the kept depth's picture counts as motion."""
        luma = small_luma(image_bgr, motion_shape)
        previous, self._seconds = self._seconds, seconds
        if self._afresh(refined, luma, previous, seconds):
            xp = array_module(refined)
            self._kept, self._kept_luma = xp.asarray(refined, dtype=xp.float32), luma
            self._depth_image = depth_image
            self._depth_luma = None if depth_image is None else small_luma(depth_image, motion_shape)
            return self._kept
        weight = newest_weight(self.smoothing, seconds, previous)
        weights = still_weights(self._kept_luma, luma, weight, self.threshold)
        if depth_image is not None and depth_image is not self._depth_image:
            self._depth_image = depth_image
            np.maximum(weights, self._new_depth_weights(small_luma(depth_image, motion_shape), weight), out=weights)
        self._kept = smooth(self._kept, refined, grow(weights), weight)
        return self._kept

    def _new_depth_weights(self, luma: np.ndarray, weight: float) -> np.ndarray:
        """A new depth map's weights by its own picture against the kept depth's (the still rule on them)."""
        if self._depth_luma is None or self._depth_luma.shape != luma.shape:
            self._depth_luma = luma
            return np.ones_like(luma)
        return still_weights(self._depth_luma, luma, weight, self.threshold)

    def _afresh(self, refined, luma: np.ndarray, previous: float | None, seconds: float | None) -> bool:
        """Whether this frame's map is taken whole: the first, a new size, a gap in time, or no smoothing."""
        if self._kept is None or self.smoothing >= 1.0:
            return True
        if self._kept.shape != refined.shape or self._kept_luma.shape != luma.shape:
            return True
        if array_module(self._kept) is not array_module(refined):
            return True
        return previous is not None and seconds is not None and seconds - previous > RESET_GAP_S
