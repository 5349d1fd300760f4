"""The depth range over time with the real network (TCMonoDepth) on built clips: the normalised disparity of a
still subject through a fade to black and back, and a near object coming in at the frame's edge."""
import cv2
import numpy as np
import pytest

from models.postprocess import DisparityNormaliser
from models.registry import resolve_model
from models.runtime import DepthEstimator
from stream.frame import Frame
from stream.focus import SceneCuts
from stream.stages import normalise_per_shot
from stream.synthetic import SyntheticPortrait, SyntheticScene

FPS = 30.0


@pytest.fixture
def estimator(shared_models) -> DepthEstimator:
    spec, path = resolve_model("tcmonodepth", progress=False)
    return DepthEstimator(spec, path, "cpu")


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray]:
    """The synthetic portrait's first frame, a little sensor noise on it (a still camera), and its subject."""
    image, truth = SyntheticPortrait(SyntheticScene(640, 480, 0)).render(0)
    return image, truth > 0.7


def _normalised(estimator: DepthEstimator, images: list[np.ndarray]) -> list[np.ndarray]:
    """Each frame's disparity on [0, 1] as the depth stage makes it: the network, the cut test, the range."""
    normaliser, cuts, out = DisparityNormaliser(), SceneCuts(), []
    for start in range(0, len(images), 8):
        depths = estimator.predict(images[start:start + 8])
        for index, depth in enumerate(depths, start):
            frame = Frame(index=index, capture_ns=0, image=images[index], pts_seconds=index / FPS)
            disparity = estimator.to_disparity(depth)
            out.append(normalise_per_shot(normaliser, cuts.is_cut(frame.image), frame, disparity))
    return out


def _noisy(image: np.ndarray, gain: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(image * gain + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8)


def _clipped(disparity: np.ndarray) -> float:
    """The share of the map at 0 or 1: the range's percentiles put 4 % there."""
    return float(((disparity <= 0) | (disparity >= 1)).mean())


def test_the_picture_back_from_a_fade_to_black_keeps_its_depth(estimator, scene, rng):
    """On black frames the network's range shrinks (0.37-0.90 against 0.06-1.28); gliding back from it left 65-76 %
    of the returning picture at 0 or 1 for most of a second: a flat subject at 1, the floor's depth gone."""
    image, _ = scene
    gains = [1.0] * 5 + [1 - i / 10 for i in range(1, 11)] + [0.0] * 10 + [i / 10 for i in range(1, 11)] + [1.0] * 5
    maps = _normalised(estimator, [_noisy(image, gain, rng) for gain in gains])
    returning = [_clipped(m) for m in maps[26:]]  # from the fade-in's second frame (a tenth of the light)
    assert max(returning) < 0.3, [round(v, 2) for v in returning]
    assert _clipped(maps[-1]) < 0.1


def test_a_near_object_sliding_in_at_the_edge_glides_in(estimator, scene, rng):
    """A near object coming up from the frame's bottom edge (a cup, to 40 % of the frame) is no fade: the range
    glides to it at the smoothing's pace (a jump would move the subject's value, and a fixed focus, at once)."""
    from skimage import data

    image, _ = scene
    cup = cv2.GaussianBlur(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), (0, 0), 4)  # near: out of focus
    images = []
    for i in range(30):
        frame = image.copy()
        rise = int(np.clip((i - 5) / 20, 0, 1) * 300)  # from frame 5 to 25, up to 300 rows of 480
        if rise:
            frame[-rise:, :480] = cup[:rise, 60:540]
        images.append(_noisy(frame, 1.0, rng))
    normaliser = DisparityNormaliser(smoothing=0.15)
    for index, depth in enumerate(estimator.predict(images[:15]) + estimator.predict(images[15:])):
        disparity = estimator.to_disparity(depth)
        low, high = np.percentile(disparity, (2, 98))
        before = (normaliser.low, normaliser.high)
        normaliser(disparity, index / FPS)
        if index:
            assert normaliser.low == pytest.approx(before[0] + 0.15 * (low - before[0]), abs=1e-6)
            assert normaliser.high == pytest.approx(before[1] + 0.15 * (high - before[1]), abs=1e-6)
