"""refine.person_mask: a person segmentation (MediaPipe selfie) fused into the refined disparity, so that the hair
and thin parts the depth network misses (~20 px at a 640x480 head's outline) are kept at the person's depth.

Measured in session 26 through `depthcam run` on the explorer's composite (the astronaut over a garage, an exact
matte), CPU, 640x480, `--focus-band 0`: the subject's outermost 2 px changed by 27.6 levels without the mask, 17.0
with it, and its pixels within 6 px of the outline blurred by more than 8 levels 47 % → 27 %; with a matte made by
another model (MediaPipe Meet) 26.5 → 20.6 and 50 % → 34 %; at the default band (0.15) 11.7 → 7.9 and 17 % → 13 %.
The background beside the outline kept its blur. The mask costs ~10-20 ms a 640x480 frame on two cores.
"""
from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest
import yaml

from models.segmentation import (FaceGate, PersonMask, fuse_person, load_segmenter,
                                 person_mask_for, person_targets)
from stream.config import RefineConfig, load_config
from stream.errors import UserError


def reference_fusion(disparity, probability, targets, low=0.5, high=0.9):
    """The fusion in float64: d + w·max(t − d, 0), w = clip((p − low) / (high − low), 0, 1)."""
    d, p, t = (np.asarray(a, np.float64) for a in (disparity, probability, targets))
    weight = np.clip((p - low) / (high - low), 0, 1)
    return d + weight * np.maximum(t - d, 0)


def blob(shape, centre, radius, softness=4.0):
    """A soft round 'person': probability 1 inside, falling to 0 over `softness` pixels at its rim."""
    rows, cols = np.indices(shape)
    distance = np.hypot(rows - centre[0], cols - centre[1])
    return np.clip((radius - distance) / softness + 0.5, 0, 1).astype(np.float32)


def test_fusion_matches_the_float64_reference_and_touches_nothing_outside_the_mask():
    rng = np.random.default_rng(26)
    disparity = rng.uniform(0, 1, (60, 80)).astype(np.float32)
    probability = blob((60, 80), (30, 40), 15)
    targets = np.where(probability >= 0.5, np.float32(0.8), np.float32(0))
    fused = fuse_person(disparity, probability, targets)
    np.testing.assert_allclose(fused, reference_fusion(disparity, probability, targets), atol=1e-6)
    outside = probability < 0.5
    assert outside.sum() > 1000 and np.array_equal(fused[outside], disparity[outside])  # bit for bit
    sure = probability >= 0.9
    np.testing.assert_allclose(fused[sure], np.maximum(disparity[sure], 0.8), atol=1e-6)  # raised to the person's
    assert np.all(fused >= disparity)  # never pulled farther


def test_each_person_keeps_its_own_depth_and_a_speck_is_no_person():
    """Two people at different depths: the one behind is raised to its own median, not the nearer one's; a blob
    below min_core_share of the frame (a false positive) gets no target; no person at all: no targets."""
    shape = (128, 128)
    near, far = blob(shape, (64, 32), 20), blob(shape, (64, 96), 20)
    speck = blob(shape, (10, 64), 2)
    probability = np.maximum(np.maximum(near, far), speck)
    disparity = np.full(shape, 0.1, np.float32)
    disparity[:, :64] = 0.9
    disparity[:, 64:] = 0.4
    targets = person_targets(disparity, probability)
    assert targets[64, 32] == pytest.approx(0.9) and targets[64, 96] == pytest.approx(0.4)
    assert targets[10, 64] == 0 and targets[0, 0] == 0
    assert not person_targets(disparity, np.zeros(shape, np.float32)).any()


def test_only_a_part_of_the_mask_that_holds_a_face_is_a_person():
    """The selfie model marks much that is no person (a cat, a cup): a part of the mask counts where a face box (in
    the frame's pixels) overlaps it."""
    shape = (128, 128)
    probability = np.maximum(blob(shape, (64, 32), 20), blob(shape, (64, 96), 20))
    disparity = np.full(shape, 0.5, np.float32)
    frame_size = (640, 480)  # the boxes' frame: 5 and 3.75 of its pixels a cell
    face_on_right = [(96 * 5 - 40, 64 * 3.75 - 40, 80, 80)]
    targets = person_targets(disparity, probability, faces=face_on_right, frame_size=frame_size)
    assert targets[64, 96] == pytest.approx(0.5) and targets[64, 32] == 0
    assert not person_targets(disparity, probability, faces=[], frame_size=frame_size).any()


class CountingFinder:
    """A face finder that finds one box, counting its looks."""

    def __init__(self) -> None:
        self.looks = 0

    def prepare(self, image_bgr, inline=False):
        return image_bgr

    def look_closely(self) -> None:  # a cut's fine pass (session 27): no small faces here
        pass

    def detect_all(self, prepared):
        self.looks += 1
        return [(self.looks, 0, 10, 10)]


def test_faces_are_looked_for_every_few_frames_and_at_a_cut():
    gate = FaceGate(every=3)
    gate.finder = CountingFinder()
    image = np.zeros((48, 64, 3), np.uint8)
    seen = [gate(image, cut=index == 4)[0][0] for index in range(8)]
    assert seen == [1, 1, 1, 2, 3, 3, 3, 4]  # looks at frames 0, 3, the cut at 4, then 7; boxes held between


class FixedSegmenter:
    """A segmenter that gives the same 256x256 probability for any picture."""

    def __init__(self, probability: np.ndarray) -> None:
        self._probability = probability

    def probability(self, image_bgr):
        return self._probability


def test_a_frame_without_a_person_is_left_as_it_was():
    image = np.random.default_rng(1).integers(0, 255, (48, 64, 3), np.uint8)
    refined = np.random.default_rng(2).uniform(0, 1, (48, 64)).astype(np.float32)
    assert PersonMask(FixedSegmenter(np.zeros((256, 256), np.float32)))(refined, image) is refined


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def network_and_refined(image):
    import kernels
    import models

    spec, path = models.resolve_model("tcmonodepth", progress=False)
    estimator = models.DepthEstimator(spec, path, "cpu")
    disparity = models.DisparityNormaliser()(estimator.to_disparity(estimator.predict([image])[0]))
    return kernels.refine_live(disparity, image, backend="cpu")


def test_the_real_model_reads_the_astronauts_outline_as_near_more_often(shared_models, astronaut):
    """With the real segmentation on a real photo: within 6 px inside the person's outline (the model's own 0.5
    contour), more pixels reach the person's own depth than without; far outside it nothing changes."""
    refined = network_and_refined(astronaut)
    segmenter = load_segmenter("cpu", progress=False)
    fused = PersonMask(segmenter)(refined, astronaut)
    height, width = refined.shape
    person = cv2.resize(segmenter.probability(astronaut), (width, height)) >= 0.5
    inside = cv2.distanceTransform(person.astype(np.uint8), cv2.DIST_L2, 5)
    outside = cv2.distanceTransform((~person).astype(np.uint8), cv2.DIST_L2, 5)
    band = person & (inside <= 6)
    own_depth = float(np.median(refined[person & (inside > 12)]))
    before, after = np.mean(refined[band] >= own_depth - 0.05), np.mean(fused[band] >= own_depth - 0.05)
    assert after > before + 0.15, (before, after)
    far = ~person & (outside > 12)
    assert far.sum() > 10_000 and np.array_equal(fused[far], refined[far])
    assert np.all(fused >= refined)


def _refined_off_and_on(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The refine stage's map of the network's depth for `image`, with refine.person_mask off and on."""
    from stream.frame import Frame
    from stream.stages import RefineStage

    small = cv2.resize(network_and_refined(image), (320, 192), interpolation=cv2.INTER_AREA)
    maps = []
    for setting in ("off", "on"):
        frame = Frame(index=0, capture_ns=0, image=image)
        frame.disparity = small
        RefineStage(RefineConfig(person_mask=setting), "cpu").process([frame])
        maps.append(frame.refined)
    return maps[0], maps[1]


def test_the_refine_stage_fuses_the_mask_when_on(shared_models, astronaut):
    from stream.stages import RefineStage

    # off (no longer the default's since session 27): the model is not even loaded
    assert RefineStage(RefineConfig(person_mask="off"), "cpu").person_mask is None
    off, on = _refined_off_and_on(astronaut)
    assert np.all(on >= off) and np.mean(on > off + 0.05) > 0.05


def test_a_non_person_subject_is_left_alone_though_the_model_marks_it(shared_models):
    """scikit-image's cat: the selfie model is sure of 76 % of the frame, but no face is found, so the refined map
    is the one without the mask."""
    from skimage import data

    cat = cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR)
    segmenter = load_segmenter("cpu", progress=False)
    assert np.mean(segmenter.probability(cat) >= 0.9) > 0.5
    off, on = _refined_off_and_on(cat)
    assert np.array_equal(off, on)


@pytest.mark.gpu
def test_the_gpu_fusion_matches_the_cpu_one(shared_models, astronaut):
    """On a GPU machine the refined map stays there (RefineStage._refine_on_gpu): the mask is fused on it, with the
    same result as on the CPU, up to the refinement kernels' float differences."""
    from kernels.backend import cuda_available

    if not cuda_available():
        pytest.skip("no CUDA device")
    import cupy

    refined = network_and_refined(astronaut)
    segmenter = load_segmenter("cuda", progress=False)
    cpu = PersonMask(segmenter, "cpu", faces=FaceGate())(refined, astronaut)
    gpu = PersonMask(segmenter, "cuda", faces=FaceGate())(cupy.asarray(refined), astronaut, cupy.asarray(astronaut))
    assert isinstance(gpu, cupy.ndarray) and gpu.dtype == cupy.float32
    difference = np.abs(cupy.asnumpy(gpu) - cpu)
    assert np.mean(difference > 0.01) < 0.001 and difference.max() < 0.1


def test_a_wrong_model_file_is_refused_in_one_line(model_cache):
    model_cache.mkdir(parents=True)
    wrong = model_cache / "selfie_segmentation.onnx"
    wrong.write_bytes(b"not the published model")
    with pytest.raises(UserError) as refused:
        person_mask_for("on", "cpu")
    message = str(refused.value)
    assert "\n" not in message
    assert "checksum mismatch for selfie_segmentation.onnx: expected sha256 1511ab55" in message
    assert f"got {hashlib.sha256(b'not the published model').hexdigest()}" in message
    assert "depthcam models fetch selfie_segmentation" in message and "refine.person_mask: off" in message


def test_config_takes_on_off_and_auto_and_refuses_anything_else(tmp_path):
    for text, expected in (("on", "on"), ("off", "off"), ('"on"', "on"), ("true", "on"), ("false", "off"),
                           ("auto", "auto")):
        path = tmp_path / "c.yaml"
        path.write_text(f"refine:\n  person_mask: {text}\n")
        assert load_config(str(path)).refine.person_mask == expected
    path.write_text("refine:\n  person_mask: maybe\n")
    with pytest.raises(UserError, match=r"line 2: refine.person_mask must be one of off, on, auto, got 'maybe'"):
        load_config(str(path))
    assert load_config(None, {"refine.person_mask": "on"}).refine.person_mask == "on"
    # session 27: the default preset's is auto (on where the model can be had: test_person_mask27)
    assert load_config("default").refine.person_mask == "auto" and load_config("quality").refine.person_mask == "on"
    assert yaml.safe_load("person_mask: on")["person_mask"] is True  # why validate() takes a bool


def test_the_cli_flag_and_the_models_commands_know_the_mask(shared_models, capsys):
    from stream.cli import build_parser, main

    assert build_parser().parse_args(["run", "in.png", "--person-mask", "on"]).person_mask == "on"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "in.png", "--person-mask", "maybe"])
    capsys.readouterr()
    assert main(["models", "info", "selfie_segmentation"], restore_signals=False) == 0
    info = capsys.readouterr().out
    assert "1511ab5564cb0ae179cba9bcad6ad931003ccc71656f11fd270967023678c6a5" in info and "state:       cached" in info
    assert main(["models", "list"], restore_signals=False) == 0
    assert any(line.startswith("selfie_segmentation ") and " cached " in line
               for line in capsys.readouterr().out.splitlines())


def test_a_wavering_mask_is_steadied_and_a_moving_one_taken_at_once():
    """The model's probability at hair wavers by 0.2-0.35 between nearly identical frames; fused as it came, the
    outline's blur flickered. Small moves are averaged over frames, a large one (a person moving, a cut) taken whole."""
    from models.segmentation import MASK_STEADY_WEIGHT

    mask = PersonMask(FixedSegmenter(np.zeros((4, 4), np.float32)))
    base = np.full((4, 4), 0.6, np.float32)
    assert mask.steadied(base) is base  # the first frame: as it came
    wavered = base.copy()
    wavered[0, 0] = 0.3  # hair noise
    wavered[3, 3] = 0.0  # a move (0.4 or more: the person moved away): taken at once
    steady = mask.steadied(wavered)
    assert steady[0, 0] == pytest.approx(0.6 + MASK_STEADY_WEIGHT * (0.3 - 0.6))
    assert steady[3, 3] == 0.0 and steady[1, 1] == pytest.approx(0.6)
    swings = [mask.steadied(base if i % 2 else wavered)[0, 0] for i in range(20)]
    assert max(swings[10:]) - min(swings[10:]) < 0.5 * 0.3  # a flicker of 0.3 each frame, steadied
    assert mask.steadied(wavered, cut=True) is wavered  # a cut starts afresh
    assert mask.steadied(np.zeros((8, 8), np.float32)).shape == (8, 8)  # a new size too
