"""An in-focus depth band around the focus: a remap of the disparity handed to the depth-of-field renderer.

The renderer's circle of confusion is ``max_blur * |d - focus| / span`` (``span = max(focus, 1 - focus)``): no
tolerance, so a network's blotchy relief inside the subject (the disparity is normalised to the scene's range)
becomes blur, patchily. A lens, and a phone's portrait mode, keep a depth of field around the focus. With a band b,
disparities within b of the focus are in focus and beyond it the blur grows from 0, so that the extreme that lies
farther from the focus keeps the full blur::

    coc = max_blur * max(0, |d - focus| - b) / (span - b)

The renderer is not touched: the same CoC comes out of its own formula on a remapped disparity::

    d' = focus + sign(d - focus) * max(0, |d - focus| - b) * span / (span - b)

The map is monotonic (non-decreasing), so the renderer's near/far ordering holds and its no-halo rule with it: the
pixels within the band all get the focus itself (in focus, out = image), and only pixels beyond the band, on the
background's side, are far; the background still gathers only background. It never moves a pixel away from the
focus (|d' - focus| <= |d - focus| for d in [0, 1]), so d' stays in [0, 1]; values a rounding outside [0, 1] are
clipped to it (the renderer gives them the extremes' blur either way). Any other value is too: a map on another scale
(0..255) is not refused here as depth_of_field refuses it (the render stage's map is the normaliser's, in [0, 1]).

A group (stream.focus: several real faces of about one size at different depths) widens the range on either side:
``[low, high] = [focus - b - farther, focus + b + nearer]`` is in focus, each side reaching at most WIDEN_REACH from
the focus. Beyond it each side's blur grows from 0 at the range to what the band alone gives that side's extreme (0
or 1), so the extremes keep their blur and a side not widened is remapped as above::

    d' = focus - (low - d) * s * (focus - b) / (focus - b - farther)    for d < low
    d' = focus + (d - high) * s * (1 - focus - b) / (1 - focus - b - nearer)    for d > high,  s = span / (span - b)

Still monotonic and never away from the focus. The focus stays the followed face's: sharp exactly, the renderer's
focus plane (one common stretch, so that the far extreme kept the full blur, blurred a near person's chest 3.5 -> 6.5
levels beside a group behind her).

Edge cases: b = 0 hands back the disparity itself (the contract's formula exactly). ``span >= 0.5`` for every focus,
so a band below 0.5 (render.focus_band's range) always leaves ``span - b > 0``; a band at or beyond span (a wider
one called directly) leaves nothing out of focus, the limit of the formula, and every pixel gets the focus.
"""
from __future__ import annotations

from typing import Any

from kernels.backend import array_module


# A band widened for a group reaches at most this far from the focus on either side, band included: the background
# keeps some blur (render.focus_band's own range ends below it; a wider band is not cut).
WIDEN_REACH = 0.4

Widen = tuple[float, float]  # (farther, nearer): how much more than the band is in focus behind and before the focus


def _widening(band: float, widen: Widen) -> tuple[float, float]:
    """`widen` as applied: each side at least 0, and reaching at most WIDEN_REACH from the focus with the band."""
    room = max(WIDEN_REACH - band, 0.0)
    farther, nearer = (min(max(side, 0.0), room) for side in widen)
    return farther, nearer


def in_focus_range(focus: float, band: float, widen: Widen = (0.0, 0.0)) -> tuple[float, float]:
    """The disparities kept in focus, [low, high]: the band around the focus, widened by `widen` up to WIDEN_REACH."""
    farther, nearer = _widening(band, widen)
    return focus - (band + farther), focus + (band + nearer)


def band_scale(focus: float, band: float) -> float:
    """span / (span - band): how much the distance beyond the band is stretched; 0 where the band covers the span."""
    span = max(focus, 1.0 - focus)
    return span / (span - band) if band < span else 0.0


def side_scales(focus: float, band: float, widen: Widen = (0.0, 0.0)) -> tuple[float, float]:
    """How much the distance beyond the in-focus range is stretched behind and before it (the module's text): the
    band's own stretch on a side not widened, and 0 on a side with nothing beyond the range."""
    scale = band_scale(focus, band)

    def stretch(room: float, widened: float) -> float:  # room: the band's distance to that side's extreme
        if widened == 0.0:
            return scale
        return scale * room / (room - widened) if room - widened > 0.0 else 0.0

    farther, nearer = _widening(band, widen)
    return stretch(focus - band, farther), stretch(1.0 - focus - band, nearer)


def focus_band(disparity: Any, focus: float, band: float, widen: Widen = (0.0, 0.0)) -> Any:
    """The disparity to render with so that |d - focus| <= band, widened by `widen`, is in focus (the module's text).

    disparity: float HxW in [0, 1] (NumPy or CuPy; the result is of the same kind and dtype, a new array).
    band 0 returns `disparity` itself, unchanged (the thin lens: nothing widened either).
    """
    if band <= 0.0:
        return disparity
    xp = array_module(disparity)
    dtype = disparity.dtype.type
    low, high = in_focus_range(focus, band, widen)
    farther, nearer = side_scales(focus, band, widen)
    # d - clip(d, low, high): the distance beyond the range, signed, exactly 0 within it (d - d); in place after the
    # clip's one new array (5 passes: 0.3 ms at 640x480, 1.6 ms at 1080p on one core)
    beyond = xp.clip(disparity, dtype(low), dtype(high))
    xp.subtract(disparity, beyond, out=beyond)
    if farther == nearer:
        beyond *= dtype(farther)
    else:  # a group's widened band: each side stretched to keep its extreme's blur (a mask and a where: about 1 ms
        # more at 640x480 on two busy cores, only while a group is in view)
        beyond *= xp.where(beyond > 0, dtype(nearer), dtype(farther))
    beyond += dtype(focus)
    return xp.clip(beyond, dtype(0.0), dtype(1.0), out=beyond)


def focus_band_reference(disparity: Any, focus: float, band: float, widen: Widen = (0.0, 0.0)) -> Any:
    """The remap's formula as written, in float64 (NumPy), for tests."""
    import numpy as np

    d = np.asarray(disparity, dtype=np.float64)
    if band <= 0.0:
        return d
    low, high = in_focus_range(focus, band, widen)
    span = max(focus, 1.0 - focus)
    if band >= span:
        return np.full_like(d, focus)
    scale = span / (span - band)
    below = np.maximum(low - d, 0.0) * scale * (focus - band) / low if low > 0.0 else 0.0 * d
    above = np.maximum(d - high, 0.0) * scale * (1.0 - focus - band) / (1.0 - high) if high < 1.0 else 0.0 * d
    return np.clip(focus - below + above, 0.0, 1.0)
