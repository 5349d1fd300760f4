"""Depth of field at a photo's blur: the blur scales with the frame's height (render.blur is at 480 lines), so a phone's
12 MP portrait gets 100.8 px and a 48 MP one 201.6 px. The reduced gather's discs stopped at 9 reduced px, so s grew
to 12 and 23 and nearly all the render went into the exact full-resolution gathers of the CoCs below s and 2 s
(windows (2s + 1)^2 and (4s + 1)^2), the reduced gather ~0.1 % of it. They now grow to MAX_LOW_RES_RADIUS = 12
(kernels/dof.py: `reduction_scale`, where the figures are), CPU and CUDA alike; video sizes keep their factor."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from kernels.dof import MAX_EXACT_SCALE, MAX_LOW_RES_RADIUS, plan, reduction_scale
from kernels.dof_cpu import depth_of_field_cpu
from kernels.dof_reference import depth_of_field_reference

DEFAULT_BLUR = 12.0  # configs/default.yaml, at 480 lines


def photo_blur(height: int) -> float:
    return DEFAULT_BLUR * height / 480


@pytest.mark.parametrize("shape, scale", [((4032, 3024), 9), ((3024, 4032), 7), ((8064, 6048), 17),
                                          ((6048, 8064), 13), ((2160, 3840), 5)])
def test_a_photo_s_blur_gets_a_smaller_reduction_factor(shape, scale):
    """12 MP portrait and landscape (100.8 and 75.6 px): s = 9 and 7 (was 12 and 9); 48 MP (201.6 and 151.2 px):
    17 and 13 (was 23 and 17); 4K (54 px): 5 (was 6)."""
    assert plan(shape, 0.5, photo_blur(shape[0]), 0.0).scale == scale


@pytest.mark.parametrize("blur, scale", [(10.0, 3), (12.0, 3), (16.0, 4), (18.0, 5), (27.0, 5), (36.0, 5)])
def test_video_sizes_keep_their_reduction_factor(blur, scale):
    """live-cpu's and the default preset's VGA, 720p, 1080p and 1440p blurs: s as before (3 to 5)."""
    assert reduction_scale(blur) == scale


def test_the_largest_blur_keeps_the_reduced_discs_bounded():
    s = reduction_scale(512.0)
    assert s == 43 and 512.0 / s <= MAX_LOW_RES_RADIUS and s > MAX_EXACT_SCALE


def smooth_scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random disparity over [0, 1] (far, in-focus and near at focus 0.5), textured image with highlights."""
    disp = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 0.06 * w)
    disp = (disp - disp.min()) / (disp.max() - disp.min())
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 1.5)
    img[rng.random((h, w)) < 0.01] = 255
    return img, disp


@pytest.fixture(scope="module")
def host_cuda(tmp_path_factory):
    """kernels/depth_of_field.cu on the host, through the GPU's launch code (as in test_depth_of_field)."""
    from host_cuda import compile_dof_for_host

    return compile_dof_for_host(tmp_path_factory.mktemp("dof_large_blur"))


def test_the_cuda_source_matches_the_cpu_at_a_photo_s_blur(rng, host_cuda):
    """At 108 px, s = 9 (12 before): reduced discs up to 12 px, windows of 25 x 25 reduced pixels (19 x 19 before),
    exact windows up to 37 x 37 full-resolution pixels; the .cu has no fixed-size buffer tied to either."""
    from kernels.dof_cuda import default_scale

    img, disp = smooth_scene(rng, 180, 240)
    s = default_scale(108.0)
    assert s == reduction_scale(108.0) == 9
    emulated = host_cuda(img, disp, 0.5, 108.0, 2.0, s)
    cpu = depth_of_field_cpu(img, disp, 0.5, 108.0, highlight_boost=2.0)
    diff = np.abs(emulated.astype(np.int16) - cpu)
    assert diff.max() <= 1
    assert (diff > 0).mean() <= 0.01


def test_large_reduced_discs_match_the_reference(rng):
    """The reduced discs at the new bound (blur / s = 12 reduced px, as a 12 MP photo's 100.8 px at s = 9 has 11.2)
    against the float64 reference, on a frame brought down so it finishes (48 px at s = 4): on this smooth random depth
    no worse than at the old bound's ratio (9 px: s = 6 here, 8 px), mean 0.85 against 0.89 levels, p99 4.5 against
    4.8 (s = 2: 0.66, 3.9). Bounds: mean 1.2, p99 6, and no worse than the old ratio; they exclude a wrong lens (a
    1.5x larger aperture is 2.1 levels from the reference). Boost 0.25: its clipped pixels weigh 2, as boost 1 did
    before the steeper curve of session 26 (0.96 / 1.03 and 4.7 / 5.0 then, mid-bright pixels weighing more)."""
    img, disp = smooth_scene(rng, 120, 160)
    ref = depth_of_field_reference(img, disp, 0.5, 48.0, 0.25, as_float=True)
    new = np.abs(depth_of_field_cpu(img, disp, 0.5, 48.0, highlight_boost=0.25, scale=4) - ref)
    old = np.abs(depth_of_field_cpu(img, disp, 0.5, 48.0, highlight_boost=0.25, scale=6) - ref)
    assert new.mean() <= 1.2 and np.percentile(new, 99) <= 6.0
    assert new.mean() <= old.mean()
    wrong = depth_of_field_reference(img, disp, 0.5, 72.0, 0.25, as_float=True)
    assert np.abs(wrong - ref).mean() > 1.2 * 1.25
