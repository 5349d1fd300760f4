"""kernels/temporal.py's RefinedFilter: normalise.pixel_smoothing's blend of the refined map at the frame's size
(after the joint bilateral refinement, whose range weights follow each frame's own noise), and its place in the
refine stage."""
from __future__ import annotations

import numpy as np
import pytest

from kernels.temporal import (MOTION_THRESHOLD, RefinedFilter, TemporalFilter, lerp, smooth_refined_reference, spread,
                              spread_reference, still_weights)
from stream.config import RefineConfig
from stream.frame import Frame
from stream.stages import SCENE_CUT, RefineStage

MAP = (24, 40)
FRAME = (72, 120)


def _case(seed: int, map_shape=MAP, frame_shape=FRAME):
    rng = np.random.default_rng(seed)
    kept, newest = rng.random(frame_shape, dtype=np.float32), rng.random(frame_shape, dtype=np.float32)
    kept_luma = rng.uniform(0, 255, map_shape).astype(np.float32)
    # changes from still (0) through the ramp (t..2t) to moved (> 2t)
    luma = np.clip(kept_luma + rng.uniform(-3, 3, map_shape) * MOTION_THRESHOLD, 0, 255).astype(np.float32)
    return kept, newest, kept_luma, luma


@pytest.mark.parametrize("seed, weight", [(0, 0.05), (1, 0.3), (2, 1.0), (3, 0.7)])
def test_the_fast_path_matches_the_float64_reference(seed, weight):
    kept, newest, kept_luma, luma = _case(seed)
    want, want_luma = smooth_refined_reference(kept, newest, kept_luma, luma, weight)
    kept_luma_fast = kept_luma.copy()
    weights = still_weights(kept_luma_fast, luma, weight)
    got = lerp(kept, newest, spread(weights, newest))
    assert got.dtype == np.float32 and got.shape == FRAME
    np.testing.assert_allclose(got, want, atol=2e-6)
    np.testing.assert_allclose(kept_luma_fast, want_luma, atol=1e-4)


def test_still_pixels_are_smoothed_and_a_moving_one_s_neighbourhood_takes_the_newest():
    kept, newest = np.zeros(FRAME, np.float32), np.ones(FRAME, np.float32)
    kept_luma = np.full(MAP, 100.0, np.float32)
    luma = kept_luma.copy()
    luma[10, 20] += 2 * MOTION_THRESHOLD + 1  # one map pixel moved
    luma[:, 2] += MOTION_THRESHOLD - 1  # noise below the threshold: still
    out, new_luma = smooth_refined_reference(kept, newest, kept_luma, luma, 0.25)
    np.testing.assert_allclose(out[:, :30], 0.25)  # far from the motion: the still weight
    np.testing.assert_allclose(out[28:35, 58:65], 1.0)  # between the centres of the 3x3 map pixels around it
    assert new_luma[10, 20] == luma[10, 20] and new_luma[10, 21] == pytest.approx(100.0)  # its own weight


def test_the_spread_covers_the_neighbours_and_comes_up_bilinearly():
    weights = np.zeros(MAP)
    weights[5, 5] = 1.0
    up = spread_reference(weights, (MAP[0] * 2, MAP[1] * 2))
    assert up[9:13, 9:13].min() == 1.0 and up[:4].max() == 0.0  # between map rows 4..6's centres; 0..2: 0
    np.testing.assert_array_equal(spread_reference(np.full(MAP, 0.3), FRAME), 0.3)


def _noisy_still(count: int, seed: int = 5):
    """A still scene with a depth edge behind a colour edge, fresh sensor noise every frame (sigma 4 levels)."""
    rng = np.random.default_rng(seed)
    picture = np.full(FRAME + (3,), 60.0)
    picture[:, FRAME[1] // 2:] = 190.0
    disparity = np.full(MAP, 0.2, np.float32)
    disparity[:, MAP[1] // 2:] = 0.8
    for _ in range(count):
        image = np.clip(picture + rng.normal(0, 4.0, picture.shape), 0, 255).astype(np.uint8)
        yield image, np.clip(disparity + rng.normal(0, 0.01, MAP), 0, 1).astype(np.float32)


def _change(maps) -> float:
    return float(np.mean([np.abs(b.astype(np.float64) - a).mean() for a, b in zip(maps, maps[1:])]))


def _refined(smoothing: float | None, count: int = 30) -> list[np.ndarray]:
    stage = RefineStage(RefineConfig(mode="live", work_width=40), "cpu",
                        None if smoothing is None else RefinedFilter(smoothing))
    out = []
    for i, (image, disparity) in enumerate(_noisy_still(count)):
        frame = Frame(i, 0, image, pts_seconds=i / 30)
        frame.disparity = disparity
        out.append(stage.process([frame])[0].refined)
    return out[5:]  # the filter's first frames are the network's own


def test_a_still_noisy_clip_s_refined_map_changes_less_and_keeps_its_depth():
    plain, smoothed = _refined(None), _refined(0.3)
    # white noise through an exponential average of weight 0.3: its frame-to-frame change about 0.42 times
    assert _change(smoothed) < 0.6 * _change(plain)
    assert float(np.abs(np.mean(smoothed, axis=0) - np.mean(plain, axis=0)).mean()) < 0.01  # unbiased


def test_a_refine_stage_without_the_filter_is_unchanged():
    assert RefineStage(RefineConfig(), "cpu").temporal is None


def test_returned_maps_are_never_changed_afterwards():
    """A frame in flight (the render, a sink) keeps the depth it was given."""
    smoother = RefinedFilter(0.3)
    results, copies = [], []
    for i, (image, disparity) in enumerate(_noisy_still(4)):
        refined = np.repeat(np.repeat(disparity, 3, 0), 3, 1)
        results.append(smoother(refined, image, MAP, i / 30))
        copies.append(results[-1].copy())
    for got, want in zip(results, copies):
        np.testing.assert_array_equal(got, want)


def test_a_cut_a_new_size_or_a_gap_starts_afresh():
    image = np.full(FRAME + (3,), 100, np.uint8)
    zeros, ones = np.zeros(FRAME, np.float32), np.ones(FRAME, np.float32)
    smoother = RefinedFilter(0.2)
    smoother(zeros, image, MAP, 0.0)
    np.testing.assert_allclose(smoother(ones, image, MAP, 1 / 30), 0.2, atol=1e-6)
    np.testing.assert_array_equal(smoother(zeros, image, MAP, 1.0), 0.0)  # 0.97 s later
    bigger = np.full((90, 150, 3), 100, np.uint8)
    np.testing.assert_array_equal(smoother(np.ones((90, 150), np.float32), bigger, MAP, 1.0 + 1 / 30), 1.0)
    stage = RefineStage(RefineConfig(mode="off"), "cpu", RefinedFilter(0.2))
    for index, (level, cut) in enumerate([(0.0, False), (1.0, True)]):
        frame = Frame(index, 0, image, pts_seconds=index / 30, extra={SCENE_CUT: cut})
        frame.disparity = np.full(MAP, level, np.float32)
        stage.process([frame])
    np.testing.assert_array_equal(frame.refined, 1.0)  # the depth stage's cut: the new shot's depth whole


def test_out_of_range_smoothing_is_refused_as_for_the_network_s_filter():
    with pytest.raises(ValueError, match="smoothing"):
        RefinedFilter(0.0)
    with pytest.raises(ValueError, match="threshold"):
        RefinedFilter(0.3, 0.0)
    assert TemporalFilter(0.3).smoothing == RefinedFilter(0.3).smoothing
