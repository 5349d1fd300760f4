"""The highlight boost in front of the focus plane (session 23): a far highlight's weight wins it a larger share of
its normalised gather, so it bloomed into a brighter bokeh ball; the near field composited its colour by coverage
alone, so a near highlight (fairy lights before a face, a lamp in the foreground) came out as with no boost at all.
The near field's opacity now weighs in the boost the same way (kernels/dof_reference.py: near_alpha), in every path."""
from __future__ import annotations

import numpy as np
import pytest

from kernels.dof import depth_of_field
from kernels.dof_cpu import depth_of_field_cpu
from kernels.dof_reference import depth_of_field_reference, near_alpha

BLUR = 12.0  # s = 3
FOCUS = 0.5
DARK = 20
FAR_X, NEAR_X = 50, 150  # the two lights' columns: 100 px apart, their discs (8 px) far from each other


def _two_lights() -> tuple[np.ndarray, np.ndarray]:
    """A dark night scene: on the left a 4 x 4 light behind the focus plane (disparity 0.2, on a background as
    far), on the right one as far in front of it (0.8, before an in-focus wall): the same blur, 8 px."""
    image = np.full((90, 200, 3), DARK, np.uint8)
    disparity = np.full((90, 200), FOCUS, np.float32)
    disparity[:, :100] = 0.2
    for x, value in ((FAR_X, 0.2), (NEAR_X, 0.8)):
        image[43:47, x - 2:x + 2] = 255
        disparity[43:47, x - 2:x + 2] = value
    return image, disparity


def _light_added(out: np.ndarray, x: int) -> float:
    """The light (linear, gamma 2) a lamp's bokeh adds over the dark scene around it."""
    window = out[20:70, x - 25:x + 25].astype(np.float64)
    return float((window ** 2 - DARK ** 2).sum())


def _check_lights(render) -> None:
    image, disparity = _two_lights()
    plain = render(image, disparity, 0.0)
    for boost in (1.0, 4.0):
        out = render(image, disparity, boost)
        far, near = _light_added(out, FAR_X), _light_added(out, NEAR_X)
        # before: the near light added 0.54x (boost 1) and 0.26x (boost 4) the far one's light
        assert abs(near / far - 1.0) < 0.03, (boost, near / far)
        assert near > 1.5 * _light_added(plain, NEAR_X), boost  # before: 1.0x, as if unboosted
        centres = out[45, NEAR_X].astype(int), out[45, FAR_X].astype(int)
        assert np.abs(centres[0] - centres[1]).max() <= 2, (boost, centres)


RENDERS = {
    "reference": lambda image, disparity, boost: depth_of_field_reference(image, disparity, FOCUS, BLUR, boost),
    "cpu": lambda image, disparity, boost: depth_of_field(image, disparity, FOCUS, BLUR, highlight_boost=boost,
                                                          backend="cpu"),
    "cpu exact_far": lambda image, disparity, boost: depth_of_field(image, disparity, FOCUS, BLUR, exact_far=True,
                                                                    highlight_boost=boost, backend="cpu"),
    "cpu at s = 1": lambda image, disparity, boost: depth_of_field_cpu(image, disparity, FOCUS, BLUR,
                                                                       highlight_boost=boost, scale=1),
}


@pytest.mark.parametrize("path", list(RENDERS))
def test_a_boosted_near_highlight_blooms_as_a_far_one_does(path: str) -> None:
    """With highlight_boost, a light in front of the focus plane adds as much light as one behind it at the same
    blur (within 3 %), more than without the boost, and its bokeh ball is as bright in the middle."""
    _check_lights(RENDERS[path])


def test_the_near_alpha_is_the_coverage_without_a_boost() -> None:
    """Where the weighted sum equals the coverage (no boost: every weight 1), the opacity is the coverage bit for bit,
    so renders without a boost are unchanged; with a weight it grows, and it never passes 1."""
    rng = np.random.default_rng(23)
    coverage = np.concatenate([rng.random(1000) * 1.2, [0.0, 1.0, 1e-30]])
    assert np.array_equal(near_alpha(coverage, coverage), np.minimum(coverage, 1.0))
    boosted = near_alpha(coverage, coverage * 3.0)
    assert np.all(boosted >= np.minimum(coverage, 1.0)) and np.all(boosted <= 1.0)
    # a lone near light of coverage a and weight h a: a h / (1 + a (h - 1)), a far one's share of its gather
    assert near_alpha(np.array([0.1]), np.array([0.4]))[0] == pytest.approx(0.4 / 1.3)


@pytest.fixture(scope="module")
def host_cuda(tmp_path_factory):
    """kernels/depth_of_field.cu on the host, through the GPU's own launch code (`dof_cuda.run_passes`)."""
    from host_cuda import compile_dof_for_host

    return compile_dof_for_host(tmp_path_factory.mktemp("dof23_highlights"))


def test_cuda_source_boosts_a_near_highlight_as_the_cpu_does(host_cuda) -> None:
    """The CUDA source's composite weighs the boost into the near field's opacity too: the same lights, <= 1 level
    from the CPU path."""
    _check_lights(lambda image, disparity, boost: host_cuda(image, disparity, FOCUS, BLUR, boost))
    image, disparity = _two_lights()
    for boost in (0.0, 4.0):
        diff = np.abs(host_cuda(image, disparity, FOCUS, BLUR, boost).astype(np.int16)
                      - depth_of_field_cpu(image, disparity, FOCUS, BLUR, highlight_boost=boost))
        assert diff.max() <= 1, (boost, diff.max())


@pytest.mark.gpu
def test_gpu_boosts_a_near_highlight_as_a_far_one() -> None:
    """On the GPU, as on the CPU."""
    from kernels.dof_cuda import depth_of_field_cuda

    _check_lights(lambda image, disparity, boost: depth_of_field_cuda(image, disparity, FOCUS, BLUR,
                                                                      highlight_boost=boost))
