"""Small lights bloom into visible bokeh balls by default (session 26). The highlight boost was 0 by default and a
weight linear in the luminance: a 2 px light on grey 40 at 12 px blur became a disc of 58 (59 with the fast path),
barely brighter than its surroundings, string lights faint grey discs. The weight now grows with the 16th power of
how near the pixel's brightest channel is to clipping (kernels/dof.py: highlight boost), 4x the boost at 255, and
the presets boost: clipped lights, white or coloured, bloom into bright discs while mid-bright surfaces (a white
wall, a sunlit shirt) keep their weight of about 1."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import kernels
from kernels import dof
from kernels.dof_cpu import depth_of_field_cpu
from kernels.dof_reference import depth_of_field_reference, highlight_weight
from stream.config import RenderConfig, load_config

BLUR = 12.0
FOCUS = 0.75  # the scene at disparity 0: the full blur behind the focus plane
GREY = 40
WHITE, WARM = (255, 255, 255), (140, 210, 255)  # BGR: a white bulb, a warm one (clipped in red only)


def _light(colour: tuple[int, int, int], size: int = 61) -> tuple[np.ndarray, np.ndarray]:
    """A light of 2 px radius (13 pixels) on grey 40, all behind the focus plane."""
    image = np.full((size, size, 3), GREY, np.uint8)
    yy, xx = np.mgrid[:size, :size] - size // 2
    image[np.hypot(yy, xx) <= 2.0] = colour
    return image, np.zeros((size, size), np.float32)


def _disc(out: np.ndarray, radius: float) -> np.ndarray:
    """The brightest channel of the pixels within `radius` of the frame's centre."""
    size = out.shape[0]
    yy, xx = np.mgrid[:size, :size] - size // 2
    return out[np.hypot(yy, xx) <= radius].max(axis=-1).astype(np.float64)


RENDERS = {
    "reference": lambda image, disparity, boost: depth_of_field_reference(image, disparity, FOCUS, BLUR, boost),
    "cpu": lambda image, disparity, boost: kernels.depth_of_field(image, disparity, FOCUS, BLUR,
                                                                  highlight_boost=boost, backend="cpu"),
}


@pytest.mark.parametrize("colour", [WHITE, WARM])
@pytest.mark.parametrize("path", list(RENDERS))
def test_a_small_light_is_a_bright_disc_at_the_default(path: str, colour: tuple[int, int, int]) -> None:
    """At the default preset's boost a 2 px light at 12 px blur is a disc of ~150 on grey 40 (before: 58 at the
    default, 99 white and 72 warm at boost 4 by the old curve), as wide as the blur: no halo beyond its rim."""
    boost = load_config("default").render.highlight_boost
    image, disparity = _light(colour)
    out = RENDERS[path](image, disparity, boost)
    disc = _disc(out, 9.0)
    assert disc.min() >= 120 and disc.mean() >= 130, (disc.min(), disc.mean())
    plain = _disc(RENDERS[path](image, disparity, 0.0), 9.0)
    assert plain.mean() < 70  # the faint disc it was
    outside = out[:, :5]  # over 25 px from the light, beyond its 12 px disc and the fast path's spread
    assert np.abs(outside.astype(int) - GREY).max() <= 1


def test_every_preset_boosts_and_the_config_default_is_the_default_preset_s() -> None:
    assert RenderConfig().highlight_boost == load_config("default").render.highlight_boost > 0
    for preset in ("default", "gpu-1080p", "live-cpu", "quality"):
        assert load_config(preset).render.highlight_boost >= 4, preset


def test_the_weight_is_steep_near_clipping_and_by_the_brightest_channel() -> None:
    """A clipped pixel weighs 1 + 4 boost whatever its other channels (a sensor clips each); mid-bright ones about 1
    (before: linear in the luminance, 240 weighed 1 + 0.69 boost, a warm light 1 + 0.11 boost)."""
    values = np.array([[[200] * 3, [235] * 3, [240] * 3, [245] * 3, [250] * 3, [255] * 3, WARM, (40, 40, 255)]],
                      np.uint8)
    weight = highlight_weight(values, 4.0)[0]
    assert weight[0] == 1.0
    assert weight[1] < 1.01 and weight[2] < 1.05 and weight[3] < 1.4
    assert 3.0 < weight[4] < 4.0
    assert weight[5:] == pytest.approx([17.0, 17.0, 17.0])
    assert np.array_equal(highlight_weight(values, 0.0), np.ones_like(weight[None]))


def _wall(value: int) -> tuple[np.ndarray, np.ndarray]:
    """A bright wall beside a dark doorway, both behind the focus plane."""
    image = np.full((40, 80, 3), 30, np.uint8)
    image[:, :40] = value
    return image, np.zeros((40, 80), np.float32)


def test_a_mid_bright_wall_does_not_bloom_into_a_dark_neighbour() -> None:
    """A sunlit wall at 235-240 blurs into the dark doorway beside it as without the boost (<= 1-2 levels; the old
    curve at boost 4 moved that edge by up to 52 levels at 235), while a clipped one does bloom."""
    boost = load_config("default").render.highlight_boost
    for value, bound in ((235, 1), (240, 2)):
        image, disparity = _wall(value)
        plain = depth_of_field_reference(image, disparity, FOCUS, BLUR, 0.0).astype(int)
        boosted = depth_of_field_reference(image, disparity, FOCUS, BLUR, boost).astype(int)
        assert np.abs(boosted - plain).max() <= bound, value
    image, disparity = _wall(255)
    plain = depth_of_field_reference(image, disparity, FOCUS, BLUR, 0.0).astype(int)
    boosted = depth_of_field_reference(image, disparity, FOCUS, BLUR, boost).astype(int)
    assert np.abs(boosted - plain).max() >= 50


def test_a_daylight_photo_changes_little_and_its_sharp_pixels_not_at_all() -> None:
    """skimage's coffee (a cup on a wooden table), the picture receding from its bottom rows, in focus, to the full
    blur at the top: at the default boost the output moves 1.6 levels on average from boost 0, as the cup's clipped
    rim and the table's specular glints (0.4 % of the pixels at 255) bloom into their discs (6.5 % of the pixels move
    more than 10 levels; boost 6: 1.9), its sharp pixels not at all."""
    from skimage import data

    image = np.ascontiguousarray(data.coffee()[:, :, ::-1])
    height, width = image.shape[:2]
    rows = np.minimum(np.linspace(0.0, 1.0, height, dtype=np.float32), np.float32(FOCUS))
    disparity = np.repeat(rows[:, None], width, axis=1)
    sharp = disparity == np.float32(FOCUS)
    boost = load_config("default").render.highlight_boost
    plain = kernels.depth_of_field(image, disparity, FOCUS, BLUR, backend="cpu").astype(int)
    boosted = kernels.depth_of_field(image, disparity, FOCUS, BLUR, highlight_boost=boost, backend="cpu")
    change = np.abs(boosted.astype(int) - plain)
    assert change.mean() <= 1.8, change.mean()
    assert (change.max(axis=-1) > 10).mean() <= 0.075
    assert np.array_equal(boosted[sharp], image[sharp])


def test_the_cuda_source_s_gain_is_the_python_one() -> None:
    source = (Path(__file__).resolve().parents[1] / "kernels" / "depth_of_field.cu").read_text()
    match = re.search(r"#define HIGHLIGHT_GAIN ([0-9.]+)f", source)
    assert match and float(match.group(1)) == dof.HIGHLIGHT_GAIN


def _near_clipped_scene() -> tuple[np.ndarray, np.ndarray]:
    """Every pixel somewhere on the curve: channels spread over 190..255 (many clipped), a smooth random depth."""
    rng = np.random.default_rng(26)
    image = rng.integers(190, 256, (48, 64, 3)).astype(np.uint8)
    image[rng.random((48, 64)) < 0.3] = rng.integers(0, 120, 3)  # darker pixels for the bright ones to outweigh
    disparity = np.clip(np.cumsum(rng.normal(0, 0.05, (48, 64)), axis=1) + 0.5, 0, 1).astype(np.float32)
    return image, disparity


@pytest.mark.parametrize("boost", [4.0, 16.0])
def test_cpu_at_scale_one_weighs_as_the_reference(boost: float) -> None:
    image, disparity = _near_clipped_scene()
    cpu = depth_of_field_cpu(image, disparity, 0.5, 5.0, highlight_boost=boost, scale=1)
    reference = depth_of_field_reference(image, disparity, 0.5, 5.0, boost)
    diff = np.abs(cpu.astype(np.int16) - reference)
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.005
    # the weights matter here: without them the picture is another
    plain = depth_of_field_reference(image, disparity, 0.5, 5.0, 0.0)
    assert np.abs(plain.astype(np.int16) - reference).mean() > 3


@pytest.fixture(scope="module")
def host_cuda(tmp_path_factory):
    """kernels/depth_of_field.cu on the host, through the GPU's own launch code (`dof_cuda.run_passes`)."""
    from host_cuda import compile_dof_for_host

    return compile_dof_for_host(tmp_path_factory.mktemp("bokeh26"))


@pytest.mark.parametrize("boost, scale", [(4.0, 1), (4.0, 3), (16.0, 2)])
def test_the_cuda_source_weighs_as_the_cpu(host_cuda, boost: float, scale: int) -> None:
    image, disparity = _near_clipped_scene()
    emulated = host_cuda(image, disparity, 0.5, 12.0 if scale > 1 else 5.0, boost, scale)
    cpu = depth_of_field_cpu(image, disparity, 0.5, 12.0 if scale > 1 else 5.0, highlight_boost=boost, scale=scale)
    diff = np.abs(emulated.astype(np.int16) - cpu)
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.01
