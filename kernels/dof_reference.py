"""Slow, simple float64 depth of field: the exact gather semantics of `kernels.dof`, at full resolution.

For tests on small images only (it loops over every offset of the largest disc).
"""
from __future__ import annotations

import math

import numpy as np

from kernels.dof import FOCUS_RADIUS, GAMMA, HIGHLIGHT_GAIN, HIGHLIGHT_THRESHOLD

# What lies behind a near pixel fades in from the pixel itself while the pixels not near within its disc weigh
# less than this share of the disc's area (pi r^2). Taken whole from the first one in reach, a disc's rim passing
# over a single pixel not near switched a blurred foreground's colour there: a hard-edged step (76 levels on a
# foreground before a sharp wall), which the fast paths, whose blocks reach a little farther, drew as rectangular
# notches. A tenth of the disc fades it in as the rim moves 0.3 r in (that step: 18 levels a pixel); an outline's
# inner side, where the part of the disc seen through is as small, stays within 2.5 % of the lens's profile.
BEHIND_FADE = 0.1
# What lies behind a near pixel is the scene as rendered without it (the far field's blur, the focus sharp) at the
# pixels not near within its disc, the nearer ones weighing more: 1 / (1 + (d / BEHIND_NEAR_PX)^4). Evenly weighed
# and sharp, a thin near object (a wire) crossing a sharp outline drew the outline's disc-wide blur along its path
# (smeared over 26 columns, mean 10 levels off the hidden scene, at 16 px), and inside a blurred foreground before
# an in-focus texture its outline showed as a step (45 levels); weighed so, 9 columns, 2.6 and 35. A heavy tail,
# not a Gaussian: where only far pixels are in reach they all still count, so the backdrop does not switch where the
# nearest one changes (a Gaussian of 1 px drew a 34-level seam down a foreground between two backgrounds; this 8).
# Rendered, not sharp: a blurred background stays blurred behind a blurred foreground (sharp, its texture showed
# inside the foreground's blur: a 24-level step at 8 px).
BEHIND_NEAR_PX = 1.5


def highlight_weight(image_bgr: np.ndarray, boost: float) -> np.ndarray:
    """1 + HIGHLIGHT_GAIN * boost * u^16, u = max(0, M - T) / (1 - T) of the pixel's brightest channel M in linear
    light (`kernels.dof`: highlight boost)."""
    brightest = (image_bgr.astype(np.float64).max(axis=-1) / 255.0) ** GAMMA
    u = np.maximum(brightest - HIGHLIGHT_THRESHOLD, 0.0) / (1.0 - HIGHLIGHT_THRESHOLD)
    return 1.0 + HIGHLIGHT_GAIN * boost * u ** 16


def disc_weight(radius: np.ndarray, dist: float) -> np.ndarray:
    """Anti-aliased hard-edged disc coverage divided by the disc's area (radius already >= 0.5)."""
    return np.clip(radius - dist + 0.5, 0.0, 1.0) / (math.pi * (radius * radius + 1.0 / 12.0))


def behind_proximity(dist: float) -> float:
    """The weight of a pixel not near at distance `dist` in the backdrop of a near pixel (BEHIND_NEAR_PX)."""
    return 1.0 / (1.0 + (dist / BEHIND_NEAR_PX) ** 4)


def near_alpha(coverage: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The near field's opacity from its coverage (sum of coverage / area) and that sum weighted by the highlight
    boost: the near colour's share of a normalised mix where what lies behind weighs 1 - coverage, as a far
    highlight's share of its normalised gather (by coverage alone a boost left a near highlight as it was, while a far
    one bloomed). Written cov + (w - cov)(1 - cov) / (w + 1 - cov): exactly the coverage where w == cov (no boost)."""
    rest = np.maximum(1.0 - coverage, 0.0)
    return np.where(coverage >= 1.0, 1.0, coverage + (weight - coverage) * rest / (weight + rest))


def signed_coc(disparity: np.ndarray, focus: float, max_blur_px: float) -> np.ndarray:
    span = max(focus, 1.0 - focus)
    coc = max_blur_px * (disparity.astype(np.float64) - focus) / span
    return np.clip(coc, -max_blur_px, max_blur_px)  # a disparity outside [0, 1] goes no further than 0 or 1


def depth_of_field_reference(image_bgr: np.ndarray, disparity: np.ndarray, focus: float, max_blur_px: float,
                             highlight_boost: float = 0.0, *, as_float: bool = False) -> np.ndarray:
    img = image_bgr.astype(np.float64) ** 2  # linear light, gamma 2
    height, width = disparity.shape
    c = signed_coc(disparity, focus, max_blur_px)
    far = c < -FOCUS_RADIUS
    near = c > FOCUS_RADIUS
    r = np.maximum(np.abs(c), FOCUS_RADIUS)
    h = highlight_weight(image_bgr, highlight_boost)
    k = int(math.ceil(max(float(r.max()), FOCUS_RADIUS) + 0.5))

    # Pad by k so every shifted view is a plain slice. For the far field the padding is in no field (pixels
    # outside are skipped); for the near field it continues the frame's edge (`kernels.dof`: borders).
    def pad(a: np.ndarray, value=None) -> np.ndarray:
        widths = ((k, k), (k, k)) + ((0, 0),) * (a.ndim - 2)
        return np.pad(a, widths, mode="edge") if value is None else np.pad(a, widths, constant_values=value)

    far_p, r_p, h_p, img_p = pad(far, False), pad(r, FOCUS_RADIUS), pad(h, 0.0), pad(img, 0.0)
    behind_p = pad(~near, False)
    near_e, r_e, h_e, img_e = pad(near), pad(r), pad(h), pad(img)
    far_num = np.zeros_like(img)
    far_den = np.zeros((height, width))
    near_num = np.zeros_like(img)
    near_den = np.zeros((height, width))
    near_cov = np.zeros((height, width))
    offsets = [(dy, dx, math.hypot(dy, dx)) for dy in range(-k, k + 1) for dx in range(-k, k + 1)]
    for dy, dx, dist in offsets:
        view = (slice(k + dy, k + dy + height), slice(k + dx, k + dx + width))
        rq, hq, iq = r_p[view], h_p[view], img_p[view]
        # Far: the radius of the nearer of the two (a farther pixel is occluded beyond p's own blur).
        wf = disc_weight(np.minimum(rq, r), dist) * (far_p[view] & far) * hq
        far_num += wf[..., None] * iq
        far_den += wf
        wn = disc_weight(r_e[view], dist) * near_e[view]
        near_num += (wn * h_e[view])[..., None] * img_e[view]
        near_den += wn * h_e[view]
        near_cov += wn
    out = img.copy()
    out[far] = far_num[far] / far_den[far][:, None]
    out[near] = _behind(out, near, r, k, behind_p)[near]
    alpha = near_alpha(near_cov, near_den)
    has_near = near_den > 0
    near_col = np.where(has_near[..., None], near_num / np.where(has_near, near_den, 1.0)[..., None], 0.0)
    out = np.sqrt(np.where(has_near[..., None], out + alpha[..., None] * (near_col - out), out))
    if as_float:
        return out
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _behind(rendered: np.ndarray, near: np.ndarray, r: np.ndarray, k: int, behind_p: np.ndarray) -> np.ndarray:
    """What lies behind each near pixel (linear light): the rendered pixels not near within its disc (anti-aliased,
    outside the frame skipped), weighed by `behind_proximity`, faded in from the pixel's own colour while their
    even coverage is below BEHIND_FADE of the disc's area."""
    height, width = near.shape
    src_p = np.pad(rendered, ((k, k), (k, k), (0, 0)))
    num = np.zeros_like(rendered)
    weight = np.zeros((height, width))
    count = np.zeros((height, width))
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            dist = math.hypot(dy, dx)
            view = (slice(k + dy, k + dy + height), slice(k + dx, k + dx + width))
            cov = np.clip(r - dist + 0.5, 0.0, 1.0) * behind_p[view] * near
            num += (cov * behind_proximity(dist))[..., None] * src_p[view]
            weight += cov * behind_proximity(dist)
            count += cov
    # the pixel's own colour stands in for the part of BEHIND_FADE of its disc that no pixel not near fills
    own_w = np.maximum(BEHIND_FADE * math.pi * r * r - count, 0.0)
    mean = num / np.maximum(weight, 1e-300)[..., None]
    return (count[..., None] * mean + own_w[..., None] * rendered) / np.maximum(count + own_w, 1e-300)[..., None]


def silhouette_band(disparity: np.ndarray, focus: float, max_blur_px: float, width_px: float) -> np.ndarray:
    """The far pixels within `width_px` of the sharp subject (|CoC| <= 2 px): where a fast path's halo and
    stair-stepped outlines show, and where whole-frame error figures dilute them. For tests and benchmarks."""
    import cv2

    c = signed_coc(disparity, focus, max_blur_px)
    outside = (np.abs(c) > 2.0).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, 5)
    return (distance > 0) & (distance <= width_px) & (c < -FOCUS_RADIUS)
