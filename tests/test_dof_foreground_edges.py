"""A blurred foreground before a sharp wall: what lies behind its pixels fades in, with no step and no notch.

A near pixel's blur composites over what lies behind it, the pixels not near within its disc. Taken whole as soon
as any weighed more than 0, the rim of a disc passing over the first pixel not near switched the colour there: a
hard step across a blurred foreground (76 levels here, in the reference), which the fast paths, whose blocks reach
a little farther, drew as rectangles (the user's notches on the astronaut's suit, --focus 0.2 --blur 30).
"""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from kernels.dof_cpu import depth_of_field_cpu
from kernels.dof_reference import depth_of_field_reference

FOCUS, BLUR = 0.2, 32.0  # s = 5; CoC = 40 (d - 0.2)
SUIT, WALL, SHELF = 0.675, 0.3, 0.2  # CoC 19 (reduced gather), 4 (near, but gathered exactly), 0 (in focus)
EDGE = 64  # the suit's right side


def suit_before_wall(top: int, h: int = 96, w: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """An orange suit (CoC 19) left of a textured wall barely in front of the focus (CoC 4), under a bright shelf
    in focus: the suit's pixels beside the wall are not covered whole by the near field (the wall's discs are small),
    and the shelf comes within their reach a few rows down (the user's photo: 23 px from the suit's pixels)."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(90, 230, (h, w, 3), dtype=np.uint8), (0, 0), 1.0)
    img[:top] = (235, 235, 235)
    img[top:, :EDGE] = (60, 100, 210)
    disp = np.full((h, w), WALL, np.float32)
    disp[:top] = SHELF
    disp[top:, :EDGE] = SUIT
    return img, disp


def largest_step(out: np.ndarray) -> float:
    """The largest difference between neighbouring pixels (any channel), across and down."""
    out = out.astype(np.float64)
    return max(np.abs(np.diff(out, axis=0)).max(), np.abs(np.diff(out, axis=1)).max())


def render(path: str, img: np.ndarray, disp: np.ndarray, request: pytest.FixtureRequest) -> np.ndarray:
    if path == "reference":
        return depth_of_field_reference(img, disp, FOCUS, BLUR, as_float=True)
    if path == "cpu":
        return depth_of_field_cpu(img, disp, FOCUS, BLUR).astype(np.float64)
    from kernels.dof_cuda import default_scale

    host_cuda = request.getfixturevalue("host_cuda")
    return host_cuda(img, disp, FOCUS, BLUR, 0.0, default_scale(BLUR)).astype(np.float64)


@pytest.fixture(scope="module")
def host_cuda(tmp_path_factory):
    """kernels/depth_of_field.cu on the host, through the GPU's launch code (as in test_depth_of_field)."""
    from host_cuda import compile_dof_for_host

    return compile_dof_for_host(tmp_path_factory.mktemp("dof_edges"))


@pytest.mark.parametrize("top", [16, 18, 20])
@pytest.mark.parametrize("path", ["reference", "cpu", "cuda source on the host"])
def test_a_blurred_foreground_has_no_step_where_the_background_comes_into_reach(request, path, top):
    """Inside the suit (its outlines left out: the shelf's and the wall's own edges are steep) what lies behind
    fades in as the shelf comes into reach: the largest step between neighbours was 76 levels in the reference
    and 75 in the fast paths, a notch; now 18-19 in all three (BEHIND_FADE 0.1). Bound 30."""
    img, disp = suit_before_wall(top)
    inside = render(path, img, disp, request)[top + 3:, :EDGE - 6]
    assert largest_step(inside) <= 30.0
    # the shelf still shows through the suit's top (soft on both sides of its outline), and not deep inside it
    assert inside[0, EDGE // 2, 0] >= 100.0
    assert abs(inside[-1, EDGE // 2, 0] - 60.0) <= 2.0


@pytest.mark.parametrize("path", ["cpu", "cuda source on the host"])
def test_the_fast_paths_follow_the_reference_where_the_background_comes_into_reach(request, path):
    """The fast paths' blocks reach a few pixels farther than a disc: where what lay behind was taken whole from
    any weight above 0, that drew a rectangle of the shelf's colour into the suit (76 levels off the reference);
    faded in by the weight, 20 at most (a smooth ramp a few pixels lower). Bound 27."""
    img, disp = suit_before_wall(16)
    out = render(path, img, disp, request)
    ref = depth_of_field_reference(img, disp, FOCUS, BLUR, as_float=True)
    inside = (slice(16 + 3, None), slice(0, EDGE - 6))
    assert np.abs(out - ref)[inside].max() <= 27.0


def test_a_near_pixel_with_nothing_behind_in_reach_keeps_its_own_colour():
    """Deep inside a uniformly blurred foreground, with no pixel not near within its disc, a pixel is its own
    colour, as before; and a foreground covering the frame stays uniform."""
    img = np.full((40, 48, 3), (60, 100, 210), np.uint8)
    disp = np.full((40, 48), SUIT, np.float32)
    for out in (depth_of_field_reference(img, disp, FOCUS, BLUR), depth_of_field_cpu(img, disp, FOCUS, BLUR)):
        assert np.array_equal(out, img)


def test_the_cuda_source_fades_by_the_python_constant():
    """The .cu restates BEHIND_FADE: a change to one side only would make --device cuda render another picture."""
    from kernels.dof_reference import BEHIND_FADE

    source = (Path(__file__).resolve().parents[1] / "kernels" / "depth_of_field.cu").read_text()
    match = re.search(r"#define BEHIND_FADE ([0-9.]+)f", source)
    assert match and float(match.group(1)) == BEHIND_FADE


def small_blur_at_a_noisy_edge(h: int = 64, w: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A violet foreground of small blur (CoC 2, below s = 5: gathered exactly) whose outline wanders by +-2 px,
    a dark in-focus strip 1-5 px wide beside it, and a bright in-focus wall beyond the strip."""
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), 40, np.uint8)
    img[:, :w // 2] = 230
    disp = np.full((h, w), SHELF, np.float32)
    near = np.arange(w)[None, :] >= (w // 2 + 3 + rng.integers(-2, 3, h))[:, None]
    disp[near] = 0.25  # CoC 2
    img[near] = (120, 60, 200)
    return img, disp


@pytest.mark.parametrize("path", ["cpu", "cuda source on the host"])
def test_a_near_pixel_of_small_blur_takes_its_backdrop_from_its_own_disc(request, path):
    """Behind a near pixel of CoC 2 lies what is not near within 2.5 px: the dark strip. Taken from the blocks
    (their mean radius, s = 5, and the bilinear reach) it came from up to ~1.5 s px away, the bright wall beyond
    the strip (85 levels off the reference, at the user's noisy focus edges a hard line); gathered exactly over
    the pixel's own disc, 0.5. Bound 3."""
    img, disp = small_blur_at_a_noisy_edge()
    out = render(path, img, disp, request)
    ref = depth_of_field_reference(img, disp, FOCUS, BLUR, as_float=True)
    assert np.abs(out - ref).max() <= 3.0
