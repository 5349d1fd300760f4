"""kernels/temporal.py: the per-pixel temporal filter of the refined disparity (RefinedFilter), and its wiring as
normalise.pixel_smoothing (off by default) into the refine stage."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from kernels.temporal import (MOTION_THRESHOLD, RESET_GAP_S, RefinedFilter, newest_weight, small_luma, still_weights,
                              still_weights_reference)
from stream.config import load_config
from stream.errors import UserError
from stream.frame import Frame
from stream.sources import Source
from stream.stages import AsyncDepthStage, DepthStage, RefineStage

SHAPE = (24, 40)  # the network map's, where the motion test runs
FRAME = (48, 80)  # the refined map's


def _frame(level: float, shape=SHAPE, scale: int = 2) -> np.ndarray:
    """A flat grey BGR frame `scale` times the map's size."""
    return np.full((shape[0] * scale, shape[1] * scale, 3), level, np.uint8)


def _full(value: float, shape=FRAME) -> np.ndarray:
    return np.full(shape, value, np.float32)


def test_fast_still_weights_match_the_float64_reference():
    rng = np.random.default_rng(0)
    for weight in (0.05, 0.3, 1.0):
        kept_luma = rng.uniform(0, 255, SHAPE).astype(np.float32)
        # changes from still (0) through the ramp (8..16) to moved (> 16)
        luma = np.clip(kept_luma + rng.uniform(-30, 30, SHAPE), 0, 255).astype(np.float32)
        want, want_luma = still_weights_reference(kept_luma, luma, weight)
        got_luma = kept_luma.copy()
        got = still_weights(got_luma, luma, weight)
        assert got.dtype == np.float32 and got_luma.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-6)
        np.testing.assert_allclose(got_luma, want_luma, atol=1e-3)


def test_still_pixels_get_the_still_weight_moving_ones_the_newest_whole():
    kept_luma = np.full(SHAPE, 100.0, np.float32)
    luma = kept_luma.copy()
    luma[:, 20:] += 2 * MOTION_THRESHOLD + 1  # the right half moved
    luma[:, 10] += MOTION_THRESHOLD - 1  # noise below the threshold: still
    weights, _ = still_weights_reference(kept_luma, luma, 0.25)
    np.testing.assert_allclose(weights[:, :20], 0.25)
    np.testing.assert_allclose(weights[:, 20:], 1.0)


def test_newest_weight_is_per_thirtieth_of_a_second_at_any_frame_rate():
    assert newest_weight(0.3, 1 / 30, 0.0) == pytest.approx(0.3)
    two_at_60 = 1 - (1 - newest_weight(0.3, 1 / 60, 0.0)) ** 2
    assert two_at_60 == pytest.approx(0.3)
    assert newest_weight(0.3, None, None) == pytest.approx(0.3)  # unknown times: one step
    assert newest_weight(0.3, 1.0, 2.0) == pytest.approx(0.3)  # times going back (clips joined): one step


@pytest.mark.parametrize("fps", [24.0, 60.0, 120.0])
def test_the_filter_keeps_the_thirtieth_of_a_second_rule_at_other_frame_rates(fps):
    """A still picture's depth stepping from 0 to 1: after 1/30 s it holds the 30 fps filter's first step, at any
    frame rate (at 24 fps one frame is 1.25 steps)."""
    smoother = RefinedFilter(0.3)
    image = _frame(100)
    smoother(_full(0.0), image, SHAPE, 0.0)
    frames = max(1, round(fps / 30))
    out = None
    for i in range(1, frames + 1):
        out = smoother(_full(1.0), image, SHAPE, i / fps)
    want = 1 - 0.7 ** (frames * 30 / fps)
    np.testing.assert_allclose(out, want, atol=1e-6)


def test_noise_on_a_still_picture_is_smoothed_without_bias():
    rng = np.random.default_rng(1)
    truth = np.linspace(0.2, 0.8, FRAME[1], dtype=np.float32)[None].repeat(FRAME[0], 0)
    noisy = [np.clip(truth + rng.normal(0, 0.02, FRAME), 0, 1).astype(np.float32) for _ in range(90)]
    image = _frame(120)
    smoother = RefinedFilter(0.3)
    out = [smoother(d, image, SHAPE, i / 30) for i, d in enumerate(noisy)]

    def change(maps):
        return np.mean([np.abs(b - a).mean() for a, b in zip(maps, maps[1:])])

    # white noise through an exponential average of weight w: its frame-to-frame change falls to sqrt(w / (2 - w))
    assert change(out) < 0.5 * change(noisy)
    assert abs(float(np.mean(out[30:]) - truth.mean())) < 2e-3


def test_a_reset_or_a_new_size_starts_again_from_the_newest_depth():
    smoother = RefinedFilter(0.2)
    smoother(_full(0.0), _frame(100), SHAPE, 0.0)
    np.testing.assert_allclose(smoother(_full(1.0), _frame(100), SHAPE, 1 / 30), 0.2, atol=1e-6)
    smoother.reset()
    np.testing.assert_array_equal(smoother(_full(1.0), _frame(100), SHAPE, 2 / 30), 1.0)
    bigger = (30, 50)
    np.testing.assert_array_equal(smoother(_full(0.0, (60, 100)), _frame(100, bigger), bigger, 3 / 30), 0.0)


def test_slow_motion_adds_up_against_the_kept_picture():
    """A picture brightening 6 levels a frame never moves more than the threshold between two frames, but it moves
    away from the picture the kept depth was made from: the filter follows a depth step faster than the still
    weight alone would."""
    smoother = RefinedFilter(0.1)
    smoother(_full(0.0), _frame(40), SHAPE, 0.0)
    out = None
    for i in range(1, 11):
        out = smoother(_full(1.0), _frame(40 + 6 * i), SHAPE, i / 30)
    still_only = 1 - 0.9 ** 10  # 0.65
    assert float(out.mean()) > still_only + 0.2


def test_small_luma_averages_a_large_frame_down():
    rng = np.random.default_rng(2)
    image = np.clip(128 + rng.normal(0, 8, (1080, 1920, 3)), 0, 255).astype(np.uint8)
    small = small_luma(image, (192, 320))
    assert small.shape == (192, 320) and small.dtype == np.float32
    assert abs(float(small.mean()) - 128) < 1 and float(small.std()) < 4  # noise averaged well below its 8


def test_a_still_1080p_frame_s_noise_is_no_motion_at_the_map_s_size():
    """Sigma-8 noise on a still 1080p picture: a bilinear step to twice the map's size read 4 of the ~30 pixels
    each map pixel covers, and 0.6 % of the map pixels changed by more than the threshold from one frame to the next
    (up to 14 levels: motion, the depth taken whole there); halved by pyrDown, at most 4."""
    rng = np.random.default_rng(6)
    lumas = [small_luma(np.clip(128 + rng.normal(0, 8, (1080, 1920, 3)), 0, 255).astype(np.uint8), (192, 320))
             for _ in range(2)]
    assert float(np.abs(lumas[1] - lumas[0]).max()) < MOTION_THRESHOLD


def test_smoothing_out_of_range_is_refused():
    with pytest.raises(ValueError, match="smoothing"):
        RefinedFilter(0.0)


def test_fast_still_weights_match_the_reference_on_random_maps_and_weights():
    rng = np.random.default_rng(3)
    for _ in range(20):
        shape = tuple(int(n) for n in rng.integers(1, 200, 2))
        weight = float(rng.uniform(0.001, 1.0))
        threshold = float(rng.uniform(1, 64))
        kept_luma = rng.uniform(0, 255, shape).astype(np.float32)
        luma = np.clip(kept_luma + rng.normal(0, 2 * threshold, shape), 0, 255).astype(np.float32)
        want, want_luma = still_weights_reference(kept_luma, luma, weight, threshold)
        got_luma = kept_luma.copy()
        np.testing.assert_allclose(still_weights(got_luma, luma, weight, threshold), want, atol=2e-6)
        np.testing.assert_allclose(got_luma, want_luma, atol=1e-4)


def test_a_new_frame_size_starts_afresh_even_at_the_same_map_size():
    """A map of the same size from a frame of another size (a stream reconnected at another resolution) owes
    nothing to the kept one: its luma is of another picture."""
    smoother = RefinedFilter(0.2)
    smoother(_full(0.0), _frame(100, scale=2), SHAPE, 0.0)
    bigger = (SHAPE[0] * 3, SHAPE[1] * 3)
    np.testing.assert_array_equal(smoother(_full(1.0, bigger), _frame(100, scale=3), SHAPE, 1 / 30), 1.0)


def test_a_gap_in_time_starts_afresh():
    """A live source reconnecting (a camera reopened, a stream dropped) leaves a gap in the frames' times."""
    smoother = RefinedFilter(0.2)
    smoother(_full(0.0), _frame(100), SHAPE, 10.0)
    np.testing.assert_array_equal(smoother(_full(1.0), _frame(100), SHAPE, 10.0 + RESET_GAP_S + 0.1), 1.0)
    np.testing.assert_allclose(smoother(_full(0.0), _frame(100), SHAPE, 10.0 + RESET_GAP_S + 0.1 + 1 / 30), 0.8,
                               atol=1e-6)  # then smoothed again


class _Estimator:
    """What the stages' constructors touch of a DepthEstimator (nothing runs here)."""

    def predict(self, images, **_):
        raise AssertionError("not called")

    def terminate(self) -> None:
        pass


def _stages(overrides: dict, still: bool = False, file_run: bool = True):
    from stream.app import build_stages
    from stream.focus import FocusController

    # the temporal filter's wiring alone: the default's person mask (auto) would fetch its model where none is cached
    overrides = {"refine.person_mask": "off", **overrides}
    return build_stages(load_config("default", overrides), _Estimator(), FocusController(), "cpu",
                        threading.Event(), file_run=file_run, still=still)


def test_pixel_smoothing_is_off_by_default_and_wired_when_set():
    assert load_config("default").normalise.pixel_smoothing == 1.0
    assert _stages({})[1].temporal is None
    depth, refine, _ = _stages({"normalise.pixel_smoothing": 0.3, "normalise.motion_threshold": 12})
    assert isinstance(depth, DepthStage) and not hasattr(depth, "temporal")  # the network's map is not smoothed
    assert isinstance(refine, RefineStage) and isinstance(refine.temporal, RefinedFilter)
    assert (refine.temporal.smoothing, refine.temporal.threshold) == (0.3, 12)
    # a photo, once or repeated for the window: nothing to smooth, no cost
    assert _stages({"normalise.pixel_smoothing": 0.3}, still=True)[1].temporal is None
    live, refine, _ = _stages({"normalise.pixel_smoothing": 0.3, "inference.mode": "async"}, file_run=False)
    try:
        assert isinstance(live, AsyncDepthStage) and isinstance(refine.temporal, RefinedFilter)
    finally:
        live.close()


@pytest.mark.parametrize("key, value", [("normalise.pixel_smoothing", 0.0), ("normalise.pixel_smoothing", 1.5),
                                        ("normalise.motion_threshold", 0), ("normalise.motion_threshold", 100)])
def test_out_of_range_settings_are_refused_by_name(key, value):
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        load_config("default", {key: value})


@pytest.mark.gpu
def test_the_filter_runs_on_the_gpu_as_on_the_cpu():
    """The refined map stays on the GPU (RefineStage's CUDA path): the filter keeps it there, with the CPU's result,
    moving pixels and all."""
    from kernels.backend import cuda_available, is_cupy_array, to_host

    if not cuda_available():
        pytest.skip("no usable CUDA GPU")
    import cupy

    rng = np.random.default_rng(4)
    on_cpu, on_gpu = RefinedFilter(0.3), RefinedFilter(0.3)
    for i in range(12):
        refined = rng.random((240, 400), dtype=np.float32)
        image = rng.integers(0, 256, (240, 400, 3), dtype=np.uint8)
        want = on_cpu(refined, image, (96, 160), i / 30)
        got = on_gpu(cupy.asarray(refined), image, (96, 160), i / 30)
        assert is_cupy_array(got) and got.dtype == cupy.float32
        np.testing.assert_allclose(to_host(got), want, atol=1e-5)


# --- through the real pipeline: a still camera's noisy frames -----------------------------------------------------

STILL_FRAMES = 20
NOISE_SIGMA = 5.0  # levels of 255: a webcam's raw frames indoors


class _NoisyStill(Source):
    """The built-in sample's first picture held still, with fresh sensor noise every frame (the same each run)."""

    def __init__(self, inner: Source) -> None:
        from stream.sample import sample_frames

        inner.close()
        self.image = next(sample_frames(1, size=(320, 240)))
        self.height, self.width = self.image.shape[:2]
        self.fps, self.frame_count, self.description = 30.0, STILL_FRAMES, "a noisy still"

    def frames(self):
        rng = np.random.default_rng(0)
        for index in range(STILL_FRAMES):
            noise = rng.normal(0.0, NOISE_SIGMA, self.image.shape)
            image = np.clip(self.image + noise, 0, 255).astype(np.uint8)
            yield Frame(index=index, capture_ns=0, image=image, pts_seconds=index / self.fps)


def _run_still(overrides: dict) -> list[Frame]:
    from stream.app import build
    from stream.sinks import NullSink

    class Collecting(NullSink):
        def __init__(self) -> None:
            super().__init__()
            self.frames: list[Frame] = []

        def write(self, frame: Frame) -> None:
            super().write(frame)
            self.frames.append(frame)

    sink = Collecting()
    config = load_config("default", {"output.progress": False, "device": "cpu", **overrides})
    result = build(config, "synthetic:portrait?size=320x240&frames=1", None, sink=sink,
                   wrap_source=_NoisyStill).pipeline.run()
    assert result.completed and len(sink.frames) == STILL_FRAMES
    return sink.frames


def _flicker(maps) -> float:
    return float(np.mean([np.abs(b.astype(np.float64) - a).mean() for a, b in zip(maps, maps[1:])]))


def test_flicker_on_a_still_drops_with_pixel_smoothing_and_off_is_unchanged(shared_models):
    plain = _run_still({})
    off = _run_still({"normalise.pixel_smoothing": 1.0})
    for a, b in zip(plain, off, strict=True):  # off: the very same path, bit for bit
        np.testing.assert_array_equal(a.disparity, b.disparity)
        np.testing.assert_array_equal(a.output, b.output)
    smoothed = _run_still({"normalise.pixel_smoothing": 0.3})
    settled = slice(5, None)  # the filter's first frames are the network's own

    def figures(frames):
        return (_flicker([f.disparity for f in frames[settled]]), _flicker([f.refined for f in frames[settled]]),
                _flicker([f.output for f in frames[settled]]))

    (network, refined, output), (network_s, refined_s, output_s) = figures(plain), figures(smoothed)
    assert network_s == pytest.approx(network)  # the network's map is the per-frame one: the refined map is smoothed
    assert refined_s < 0.7 * refined
    assert output_s < output  # the output's change is mostly the input's own noise (kept: it is the picture)
    # unbiased: the smoothed depth is the per-frame depth's mean, not another depth
    mean_plain = np.mean([f.refined for f in plain[settled]], axis=0)
    assert float(np.abs(np.mean([f.refined for f in smoothed[settled]], axis=0) - mean_plain).mean()) < 0.01
