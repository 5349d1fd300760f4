"""A dark or washed-out frame is stretched before the depth network (models/levels.py); normal frames are not."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.stats import spearmanr
from skimage import data

from models.levels import FULL_SPAN, IDENTITY, MAX_GAIN, Levels, levels_of, smooth_percentiles, stretched_table
from models.registry import resolve_model
from models.runtime import DepthEstimator, input_lut

PHOTOS = {"astronaut": data.astronaut, "coffee": data.coffee, "chelsea": data.chelsea,
          "motorcycle_left": lambda: data.stereo_motorcycle()[0]}
NOISE_SIGMA = 1.5  # sensor noise of the explorer's dark clip (7 % exposure)


@pytest.fixture
def estimator(shared_models) -> DepthEstimator:
    spec, path = resolve_model("tcmonodepth", progress=False)
    return DepthEstimator(spec, path, "cpu")


def _bgr(name: str) -> np.ndarray:
    return cv2.cvtColor(PHOTOS[name](), cv2.COLOR_RGB2BGR)


def _exposed(image: np.ndarray, exposure: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, NOISE_SIGMA, image.shape)
    return np.clip(image.astype(np.float64) * exposure + noise, 0, 255).astype(np.uint8)


def _small(estimator: DepthEstimator, image_bgr: np.ndarray) -> np.ndarray:
    """The frame at the network's size, as preprocess makes it before the levels."""
    size = (estimator.input.width, estimator.input.height)
    return cv2.cvtColor(cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_dark_input26_a_normal_photo_gets_exactly_the_old_input_and_depth(estimator, name):
    image = _bgr(name)
    assert levels_of(_small(estimator, image)) == IDENTITY
    old = cv2.LUT(_small(estimator, image), input_lut(estimator.spec)).transpose(2, 0, 1)
    assert np.array_equal(estimator.preprocess(image), old)
    estimator.auto_levels = False
    try:
        before = estimator.predict([image])[0]
    finally:
        estimator.auto_levels = True
    assert np.array_equal(estimator.predict([image])[0], before)


def test_dark_input26_a_dark_noisy_photo_keeps_its_depth(estimator):
    """7 % exposure: the old input (levels 0..18) gave a depth ranked 0.93 like the normal one's; stretched, 0.99."""
    image = _bgr("motorcycle_left")
    normal = estimator.predict([image])[0].ravel()
    dark = estimator.predict([_exposed(image, 0.07, seed=1)])[0].ravel()
    assert spearmanr(dark, normal)[0] > 0.97


def test_dark_input26_a_washed_out_photo_is_stretched_in_place(estimator):
    """Fog or a raised black level: the range is widened to FULL_SPAN where it sat, not pushed to the bottom."""
    washed = np.clip(PHOTOS["motorcycle_left"]().astype(np.float32) * 0.35 + 150, 0, 255).astype(np.uint8)
    levels = levels_of(washed)
    low, high = smooth_percentiles(washed, (1.0, 99.5))
    new_low, new_high = levels.gain * low + levels.offset, levels.gain * high + levels.offset
    assert new_high - new_low == pytest.approx(FULL_SPAN)
    assert 20 < new_low and new_high < 255


@pytest.mark.parametrize("level", [0, 1, 77, 254, 255])
def test_dark_input26_a_one_level_frame_stays_finite_and_near_its_level(estimator, level):
    frame = np.full((120, 160, 3), level, np.uint8)
    levels = levels_of(frame)
    assert levels.gain == MAX_GAIN and np.isfinite(levels.offset)
    assert abs(levels.values()[level] - level) < MAX_GAIN / 2  # a level's width, stretched: its one level stays put
    tensor = estimator.preprocess(frame)
    assert np.isfinite(tensor).all()
    assert np.isfinite(estimator.predict([frame])[0]).all()


def test_dark_input26_a_black_noisy_frame_stays_finite(estimator):
    frame = np.clip(np.random.default_rng(3).normal(0.0, NOISE_SIGMA, (120, 160, 3)), 0, 255).astype(np.uint8)
    assert levels_of(frame).gain == MAX_GAIN
    assert np.isfinite(estimator.predict([frame])[0]).all()


def test_dark_input26_the_stretch_follows_a_fade_without_a_step(estimator):
    """A fade to 3 % exposure in 80 frames (4.4 % darker each), fresh noise every frame: the gain grows from exactly
    1 to its limit by at most a little more than the fade's own step, and the network's input brightness moves by
    the fade's own step at most (a switch at a threshold would jump by its whole gain)."""
    image = _bgr("astronaut")
    exposures = np.geomspace(1.0, 0.03, 80)
    gains, means = [], []
    for index, exposure in enumerate(exposures):
        small = _small(estimator, _exposed(image, exposure, seed=index))
        levels = levels_of(small)
        gains.append(levels.gain)
        means.append(levels.values()[small].mean())
    gains, means = np.array(gains), np.array(means)
    assert gains[0] == 1.0 and gains[-1] == MAX_GAIN and (gains > 1.0).sum() > 40
    assert np.abs(np.diff(np.log(gains))).max() < 0.06  # each frame 4.4 % darker: log step 0.045
    assert np.abs(np.diff(np.log(means))).max() < 0.06  # brightness: stretched, it holds; a step of 2x: 0.69


def test_dark_input26_the_stretch_and_the_networks_scaling_are_one_exact_lookup():
    """The table read at stretched levels equals the network's scaling of those levels (FCRN's raw 0..255, the
    ImageNet and symmetric normalisations alike), and a uint8 model gets the stretched levels rounded."""
    from models.registry import get_spec
    levels = Levels(gain=3.0, offset=-12.0)
    stretched = levels.values()
    for name in ("tcmonodepth", "fcrn"):
        table = input_lut(get_spec(name))
        want = table[0] + (table[255] - table[0]) * (stretched[:, None, None] / 255.0)
        assert np.allclose(stretched_table(levels, table), want, atol=1e-5)
    fcrn = stretched_table(levels, input_lut(get_spec("fcrn")))
    assert fcrn[4, 0, 0] == pytest.approx(0.0) and fcrn[90, 0, 0] == pytest.approx(255.0)  # 0..255, unscaled
    identity = np.arange(256, dtype=np.uint8).reshape(256, 1, 1)
    assert np.array_equal(stretched_table(levels, identity)[:, 0, 0], np.round(stretched).astype(np.uint8))


def test_dark_input26_a_model_fed_uint8_gets_the_stretched_levels_rounded(tmp_path):
    """A model that scales its input itself (uint8 in) is stretched too: its red channel read back as depth."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Cast", ["image"], ["floats"], to=TensorProto.FLOAT),
             helper.make_node("Gather", ["floats", "first"], ["depth"], axis=1)]
    image = helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 3, 16, 16])
    depth = helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, 16, 16])
    first = numpy_helper.from_array(np.array([0], np.int64), "first")
    graph = helper.make_graph(nodes, "bytes", [image], [depth], [first])
    path = tmp_path / "bytes.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    spec, resolved = resolve_model(str(path), progress=False)
    estimator = DepthEstimator(spec, resolved, "cpu")
    red = np.arange(256, dtype=np.uint8).reshape(16, 16) // 13  # a dark frame: levels 0..19
    dark = np.dstack([red // 2, red // 2, red])  # BGR
    levels = levels_of(cv2.cvtColor(dark, cv2.COLOR_BGR2RGB))
    assert levels.gain > 4
    assert np.array_equal(estimator.predict([dark])[0], np.round(levels.values()[red]).astype(np.float32))
    normal = np.dstack([red * 13, red * 13, red * 13])
    assert np.array_equal(estimator.predict([normal])[0], (red * 13).astype(np.float32))
