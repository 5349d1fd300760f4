"""kernels/temporal.py's RefinedFilter: normalise.pixel_smoothing's blend of the refined map at the frame's size
(after the joint bilateral refinement, whose range weights follow each frame's own noise), and its place in the
refine stage."""
from __future__ import annotations

import numpy as np
import pytest

import threading

from kernels.temporal import (MOTION_SPREAD, MOTION_THRESHOLD, RefinedFilter, grow, moving_boxes, smooth,
                              smooth_refined_reference, spread_reference, still_weights)
from models.postprocess import DisparityNormaliser
from stream.config import RefineConfig
from stream.frame import Frame
from stream.stages import DEPTH_IMAGE, SCENE_CUT, AsyncDepthStage, RefineStage

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
    got = smooth(kept, newest, grow(weights), weight)
    assert got.dtype == np.float32 and got.shape == FRAME
    np.testing.assert_allclose(got, want, atol=2e-6)
    np.testing.assert_allclose(kept_luma_fast, want_luma, atol=1e-4)


def test_the_fast_path_matches_the_reference_where_few_pixels_moved_at_any_sizes():
    """The host's blend takes the still weight in one pass and the exact weights only in boxes around the moved map
    pixels: a box one frame pixel short of what the bilinear weights read left pixels 1e-2 off. Frames larger and
    smaller than the map, odd ratios, moves at the borders."""
    rng = np.random.default_rng(11)
    for _ in range(120):
        map_shape = tuple(int(n) for n in rng.integers(1, 50, 2))
        frame_shape = tuple(int(n) for n in rng.integers(1, 260, 2))
        kept, newest = rng.random(frame_shape, dtype=np.float32), rng.random(frame_shape, dtype=np.float32)
        kept_luma = rng.uniform(0, 255, map_shape).astype(np.float32)
        luma = kept_luma.copy()
        for _ in range(int(rng.integers(0, 4))):  # none, or a few moved map pixels (some in the ramp)
            luma[int(rng.integers(0, map_shape[0])), int(rng.integers(0, map_shape[1]))] += rng.uniform(0, 40)
        weight = float(rng.uniform(0.01, 1.0))
        want, _ = smooth_refined_reference(kept, newest, kept_luma, luma, weight)
        got = smooth(kept, newest, grow(still_weights(kept_luma.copy(), luma, weight)), weight)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_still_picture_needs_no_box_and_a_moved_pixel_one_small_box():
    moving = np.zeros((192, 320), bool)
    assert moving_boxes(moving, (1080, 1920)) == []
    moving[100, 200] = True
    (rows, columns), = moving_boxes(moving, (1080, 1920))
    assert 0 < rows.stop - rows.start <= 4 * 1080 / 192 and 0 < columns.stop - columns.start <= 4 * 1920 / 320


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
    reach = MOTION_SPREAD
    weights = np.zeros(MAP)
    weights[10, 20] = 1.0
    up = spread_reference(weights, (MAP[0] * 2, MAP[1] * 2))
    # frame pixel i reads the map pixels around (i + 0.5)/2 − 0.5: between the centres of map rows 10 ± reach, 1;
    # reading only rows beyond them, 0
    assert up[2 * (10 - reach) + 1:2 * (10 + reach) + 1, 2 * (20 - reach) + 1:2 * (20 + reach) + 1].min() == 1.0
    assert up[:2 * (9 - reach) + 1].max() == 0.0 and up[2 * (11 + reach) + 1:].max() == 0.0
    assert up[:, :2 * (19 - reach) + 1].max() == 0.0 and up[:, 2 * (21 + reach) + 1:].max() == 0.0
    np.testing.assert_array_equal(spread_reference(np.full(MAP, 0.3), FRAME), 0.3)


def _subject_on_a_wall(centre: float) -> tuple[np.ndarray, np.ndarray]:
    """A flat subject (luma 170) on a plain wall (90), and a refined map's stand-in: the subject's disparity 0.8 with
    a soft halo fading to the wall's 0.2 over 8 frame pixels (4 network-map pixels) around it, as the refinement
    leaves a network map's soft edge on a wall with nothing to snap to."""
    rows, columns = np.mgrid[:FRAME[0], :FRAME[1]]
    outside = np.hypot(rows - FRAME[0] / 2, columns - centre) - 14.0  # frame pixels beyond the subject's edge
    picture = np.repeat(np.where(outside < 0, 170, 90).astype(np.uint8)[..., None], 3, axis=2)
    return picture, (0.2 + 0.6 * np.clip(1.0 - outside / 8.0, 0.0, 1.0)).astype(np.float32)


def test_a_subject_crossing_a_plain_wall_leaves_no_trail_of_its_halo():
    """The halo moves with the subject; the wall's pixels it leaves keep their luma, so their own test calls them
    still. With a 3x3 reach (MOTION_SPREAD 1) the old halo faded there at the still weight: 0.21 of disparity behind
    the subject (a third of the 0.6 step), frame after frame; the moved pixels' reach now covers it."""
    smoother = RefinedFilter(0.3)
    worst = 0.0
    for index in range(12):  # moving left 4 frame pixels (2 map pixels) a frame
        picture, refined = _subject_on_a_wall(100.0 - 4 * index)
        worst = max(worst, float(np.abs(smoother(refined, picture, (36, 60), index / 30) - refined).max()))
    assert worst < 0.05


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
    stage = RefineStage(RefineConfig(mode="live", work_width=40, person_mask="off"), "cpu",  # the filter alone
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
    assert RefineStage(RefineConfig(person_mask="off"), "cpu").temporal is None  # (the mask would fetch its model)


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
    stage = RefineStage(RefineConfig(mode="off", person_mask="off"), "cpu", RefinedFilter(0.2))
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
    with pytest.raises(ValueError, match="smoothing"):
        RefinedFilter(1.5)


# --- async runs: a map reused over frames, a new one made from another picture ------------------------------------

def test_a_new_map_made_from_another_picture_is_taken_whole():
    """Async: the frames refine the newest map, made a few frames back. After motion (or a cut) the next map is
    made from a picture unlike the kept depth's: taken whole, where the frame's own picture, still by then, would
    have let the kept depth (the stale map's) fade out over 10 frames."""
    still_picture = np.full(FRAME + (3,), 100, np.uint8)
    moved_picture = still_picture.copy()
    moved_picture[:, :60] = 180  # where the subject was when the new map's frame was taken
    smoother = RefinedFilter(0.2)
    smoother(np.zeros(FRAME, np.float32), still_picture, MAP, 0.0, depth_image=still_picture)
    out = smoother(np.ones(FRAME, np.float32), still_picture, MAP, 1 / 30, depth_image=moved_picture)
    np.testing.assert_array_equal(out[:, :55], 1.0)  # the new map's pixels whose picture moved
    beyond = 3 * (21 + MOTION_SPREAD) + 4  # reading only map columns beyond the moved ones' (0..20) reach
    np.testing.assert_allclose(out[:, beyond:], 0.2, atol=1e-6)  # the rest: still in both, smoothed
    # the same map on the next frames (the same picture object): the frame's own test only
    np.testing.assert_allclose(smoother(np.zeros(FRAME, np.float32), still_picture, MAP, 2 / 30,
                                        depth_image=moved_picture)[:, beyond:], 0.16, atol=1e-6)


def test_a_new_map_from_a_like_picture_is_smoothed():
    rng = np.random.default_rng(8)
    picture = np.full(FRAME + (3,), 100.0)
    noisy = [np.clip(picture + rng.normal(0, 3, picture.shape), 0, 255).astype(np.uint8) for _ in range(2)]
    smoother = RefinedFilter(0.2)
    smoother(np.zeros(FRAME, np.float32), noisy[0], MAP, 0.0, depth_image=noisy[0])
    np.testing.assert_allclose(smoother(np.ones(FRAME, np.float32), noisy[1], MAP, 1 / 30, depth_image=noisy[1]), 0.2,
                               atol=1e-6)


def test_the_refine_stage_hands_the_async_depth_s_picture_to_the_filter():
    still_picture = np.full(FRAME + (3,), 100, np.uint8)
    cut_picture = np.full(FRAME + (3,), 220, np.uint8)  # the new shot, whose map arrives while the frame is still
    stage = RefineStage(RefineConfig(mode="off", person_mask="off"), "cpu", RefinedFilter(0.2))
    for index, (level, depth_image) in enumerate([(0.0, still_picture), (1.0, cut_picture)]):
        frame = Frame(index, 0, still_picture, pts_seconds=index / 30, extra={DEPTH_IMAGE: depth_image})
        frame.disparity = np.full(MAP, level, np.float32)
        stage.process([frame])
    np.testing.assert_array_equal(frame.refined, 1.0)


class _FlatNetwork:
    """A network whose depth is a ramp (what the async stage's worker touches)."""

    def predict(self, images, **_):
        return [np.linspace(0, 1, MAP[1], dtype=np.float32)[None].repeat(MAP[0], 0) for _ in images]

    def to_disparity(self, depth):
        return depth

    def terminate(self) -> None:
        pass


def test_the_async_depth_stage_hands_on_the_picture_its_map_was_made_from():
    stage = AsyncDepthStage(_FlatNetwork(), DisparityNormaliser(), threading.Event())
    try:
        first = Frame(0, 0, np.full(FRAME + (3,), 100, np.uint8))
        stage.process([first])
        assert first.extra[DEPTH_IMAGE] is first.image and first.depth_index == 0
    finally:
        stage.close()
