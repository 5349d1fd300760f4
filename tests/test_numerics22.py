"""Numerical edges of the refinement, temporal and colour kernels' CPU paths against their float64 references and
the definitions (session 22 sweep)."""
from __future__ import annotations

import numpy as np
import pytest

from kernels.bilateral import joint_bilateral, refine_live
from kernels.bilateral_reference import joint_bilateral_reference
from kernels.colour import (HLG_DISPLAY_PEAK_NITS, SDR_WHITE_NITS, ColourTables, convert_rgb48, hlg_to_scene,
                            tone_map)
from kernels.colour_reference import convert_rgb48_reference
from kernels.temporal import MOTION_SPREAD, RefinedFilter, still_weights, still_weights_reference

DENORMAL_UNIT = 2.0 ** -149  # float32's smallest step, below 2^-126


def _case(seed: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 1.0, shape), rng.integers(0, 256, shape + (3,), dtype=np.uint8)


@pytest.mark.parametrize("radius, sigma_spatial, sigma_range", [(3, 2.0, 0.05), (12, 20.0, 0.05), (16, 1e6, 1e6)])
def test_a_disparity_of_float32_denormals_is_filtered_to_the_nearest_denormal(radius, sigma_spatial, sigma_range):
    """|D| ~ 2^-135: the products weight·D were denormals, each rounded to float32's smallest step, and their sums came
    2-4 steps off the reference (and 5-6x slower); filtered in a power-of-two scale, the result is the reference
    rounded to its nearest denormal."""
    scaled, guide = _case(5, (40, 50))
    disparity = np.ldexp(scaled, -135).astype(np.float32)
    want = joint_bilateral_reference(disparity, guide, radius, sigma_spatial, sigma_range)
    got = joint_bilateral(disparity, guide, radius, sigma_spatial, sigma_range, backend="cpu")
    assert got.dtype == np.float32
    assert np.abs(got - want).max() <= DENORMAL_UNIT


def test_a_tiny_disparity_is_refined_live_as_its_power_of_two_multiple():
    """Live mode in a power-of-two scale: the tiny map's result is the unit-scale map's, scaled back (bit for bit,
    before the final rounding to float32 denormals)."""
    scaled, guide = _case(7, (36, 44))
    disparity = np.ldexp(scaled, -135).astype(np.float32)
    unit = np.ldexp(disparity, 135)  # exact: values in [0.5, 1)
    got = refine_live(disparity, guide, work_width=20, backend="cpu")
    want = np.ldexp(refine_live(unit, guide, work_width=20, backend="cpu"), -135)
    np.testing.assert_array_equal(got, want)


def test_a_zero_disparity_stays_zero():
    _, guide = _case(9, (9, 11))
    zero = np.zeros((9, 11), np.float32)
    assert not joint_bilateral(zero, guide, 2, 1.5, 0.05, backend="cpu").any()
    assert not refine_live(zero, guide, work_width=4, backend="cpu").any()


@pytest.mark.parametrize("threshold, moved", [(float("inf"), 0.0), (1e300, 0.0), (1e-50, 1.0)])
def test_a_motion_threshold_beyond_float32_s_range_gives_finite_depth(threshold, moved):
    """(|Δ| − t)·(1 − w)/t in float32 was 0·inf, NaN, at every pixel where t (inf: no pixel ever moves; 1e300) or
    (1 − w)/t (t = 1e-50: every change is motion) lay beyond float32's range; the reference gave NaN at t = inf."""
    rng = np.random.default_rng(3)
    first, second = rng.random((48, 64), dtype=np.float32), rng.random((48, 64), dtype=np.float32)
    smoothed = RefinedFilter(0.3, threshold)
    picture = np.full((48, 64, 3), 50, np.uint8)
    smoothed(first, picture, (12, 16), 0.0)
    picture[:, :32] = 150  # the left half changed, the right half is still
    got = smoothed(second, picture, (12, 16), 1 / 30)
    a = np.full((48, 64), 0.3)
    a[:, :24] += 0.7 * moved  # the moved map pixels and their neighbours' reach (MOTION_SPREAD, bilinear) aside
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[:, :24], (first + a * (second - first))[:, :24], atol=1e-6)
    # still beyond the reach of the changed map pixels (the edge's, blurred by pyrDown, at t = 1e-50 too)
    still = 4 * (9 + MOTION_SPREAD) + 2  # frame columns reading only map columns beyond the moved ones' (0..8) reach
    np.testing.assert_allclose(got[:, still:], (first + 0.3 * (second - first))[:, still:], atol=1e-6)
    kept_luma = rng.uniform(0, 255, (12, 16)).astype(np.float32)
    luma = kept_luma + rng.uniform(1, 30, (12, 16)).astype(np.float32)
    want, want_luma = still_weights_reference(kept_luma, luma, 0.3, threshold)
    got_luma = kept_luma.copy()
    got = still_weights(got_luma, luma, 0.3, threshold)
    np.testing.assert_allclose(want, 0.3 + 0.7 * moved, atol=1e-12)
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(got_luma, want_luma, atol=1e-4)


def _hlg_bt709_primary(signal: float, luma: float) -> int:
    """The SDR code of an HLG BT.709 primary at `signal`, written out: scene light, the OOTF (a 1000 cd/m² display,
    γ 1.2) on the pixel's luminance `luma`·light, the tone curve, BT.1886's encoding."""
    scene = float(hlg_to_scene(np.array(signal)))
    display = scene * HLG_DISPLAY_PEAK_NITS / SDR_WHITE_NITS * (luma * scene) ** 0.2
    return round(255 * min(float(tone_map(np.array(display), 1000.0)), 1.0) ** (1 / 2.4))


@pytest.mark.parametrize("signal", [0.5, 0.6, 0.75])
@pytest.mark.parametrize("channel, luma", [(0, 0.2126), (2, 0.0722)])  # red, blue: BT.709's weights
def test_hlg_with_bt709_primaries_weighs_luminance_in_bt709(signal, channel, luma):
    """The OOTF's luminance took BT.2020's weights (0.2627 red, 0.0593 blue) on BT.709 light: a saturated red came
    up to 3 levels too bright (159 for 156 at 0.6), a blue up to 3 too dark."""
    tables = ColourTables("hlg", 1000.0, bt2020=False)
    pixel = np.zeros((1, 1, 3), np.uint16)
    pixel[0, 0, channel] = round(signal * 65535)
    bgr = convert_rgb48(pixel, tables)[0, 0].astype(int)
    assert abs(bgr[2 - channel] - _hlg_bt709_primary(signal, luma)) <= 1
    assert np.abs(bgr - convert_rgb48_reference(pixel, "hlg", 1000.0, bt2020=False)[0, 0]).max() <= 1
