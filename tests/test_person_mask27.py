"""refine.person_mask's loose ends (session 27): the GPU map shrunk on the GPU before it crosses to the host, one
segmentation session a process, a new frame size taken as a cut, and no segmentation where no face was found.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from models import segmentation
from models.segmentation import FaceGate, FocusFaces, PersonMask, load_segmenter, person_targets, shrink
from stream.config import RefineConfig

SMALL, LARGE = np.zeros((48, 64, 3), np.uint8), np.zeros((96, 128, 3), np.uint8)


def old_person_targets(disparity: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """Session 26's targets: the map shrunk by OpenCV's area resize, one median a connected part's core."""
    height, width = probability.shape
    small = cv2.resize(disparity, (width, height), interpolation=cv2.INTER_AREA)
    count, labels = cv2.connectedComponents((probability >= 0.5).astype(np.uint8), connectivity=8)
    targets = np.zeros((height, width), np.float32)
    for label in range(1, count):
        person, sure = labels == label, (labels == label) & (probability >= 0.9)
        if sure.sum() >= 0.005 * probability.size:
            targets[person] = np.median(small[sure])
    return targets


def two_people(shape=(256, 256)) -> np.ndarray:
    rows, cols = np.indices(shape)
    near = np.hypot(rows - 128, cols - 70) < 45
    far = np.hypot(rows - 128, cols - 190) < 40
    return np.where(near | far, np.float32(1), np.float32(0))


def test_the_shrink_is_the_area_mean_and_the_targets_those_of_the_old_resize():
    rng = np.random.default_rng(27)
    even = rng.uniform(0, 1, (512, 768)).astype(np.float32)  # 2x3 pixels a cell: the exact area mean
    np.testing.assert_allclose(shrink(even, 256, 256), cv2.resize(even, (256, 256), interpolation=cv2.INTER_AREA),
                               atol=1e-6)
    for height, width in ((480, 640), (720, 1280), (1080, 1920)):  # uneven cells: a few samples each
        disparity = cv2.GaussianBlur(rng.uniform(0, 1, (height, width)).astype(np.float32), (0, 0), 4)
        disparity[:, width // 2:] += 0.5  # two depths, an edge between them
        small = shrink(disparity, 256, 256)
        assert small.shape == (256, 256) and small.dtype == np.float32 and small.flags.c_contiguous
        area = cv2.resize(disparity, (256, 256), interpolation=cv2.INTER_AREA)
        assert np.mean(np.abs(small - area)) < 0.005
        probability = two_people()
        np.testing.assert_allclose(person_targets(disparity, probability), old_person_targets(disparity, probability),
                                   atol=0.005)


@pytest.mark.gpu
def test_on_the_gpu_the_map_is_shrunk_there_and_gives_the_cpu_targets():
    from kernels.backend import cuda_available

    if not cuda_available():
        pytest.skip("no CUDA device")
    import cupy

    rng = np.random.default_rng(27)
    disparity = cv2.GaussianBlur(rng.uniform(0, 1, (1080, 1920)).astype(np.float32), (0, 0), 4)
    on_gpu = cupy.asarray(disparity)
    small = shrink(on_gpu, 256, 256)
    assert isinstance(small, np.ndarray) and small.shape == (256, 256)  # 256 KB crossed, not the 8 MB map
    np.testing.assert_allclose(small, shrink(disparity, 256, 256), atol=1e-5)
    probability = two_people()
    np.testing.assert_allclose(person_targets(on_gpu, probability), person_targets(disparity, probability), atol=1e-5)


def test_the_segmenter_is_loaded_once_a_process_per_device_and_threads(shared_models):
    """Each input of a batch (`depthcam run a.mp4 b.mp4`, photos) builds its stages again: the model was loaded again
    for each."""
    from stream.stages import RefineStage

    first = load_segmenter("cpu", 1, progress=False)
    assert load_segmenter("cpu", 1, progress=False) is first
    assert load_segmenter("cpu", 2, progress=False) is not first
    stages = [RefineStage(RefineConfig(person_mask="on", threads=1), "cpu") for _ in range(2)]
    assert stages[0].person_mask.segmenter is stages[1].person_mask.segmenter is first
    assert stages[0].person_mask is not stages[1].person_mask  # each input's own steadying and face gate


class CountingFinder:
    """Finds one box (its look's number as x), counting its looks."""

    def __init__(self, found: bool = True) -> None:
        self.looks = 0
        self.found = found

    def prepare(self, image_bgr, inline=False):
        return image_bgr

    def detect_all(self, prepared):
        self.looks += 1
        return [(self.looks, 0, 10, 10)] if self.found else []


def test_a_new_frame_size_is_a_cut_for_the_face_gate():
    """Boxes held from frames of another size (a batch's next input, a camera changing mode) are in the wrong
    pixels: the gate looks again at once."""
    gate = FaceGate(every=10)
    gate.finder = CountingFinder()
    seen = [gate(image, index=index)[0][0] for index, image in enumerate([SMALL] * 3 + [LARGE] * 3)]
    assert seen == [1, 1, 1, 2, 2, 2]


def test_a_live_gate_takes_no_faces_from_frames_of_the_old_size():
    shared = FocusFaces()
    gate = FaceGate(focus_faces=shared)
    shared.publish(3, [(10, 10, 20, 20)])
    assert gate(SMALL, index=4) == [(10, 10, 20, 20)]
    assert gate(LARGE, index=5) == []  # the render's faces are of the old size until it reaches frame 5
    shared.publish(5, [(40, 40, 30, 30)])
    assert gate(LARGE, index=6) == [(40, 40, 30, 30)]


class SequenceSegmenter:
    """Gives the probabilities it was made with in turn, counting its calls."""

    def __init__(self, *probabilities: np.ndarray) -> None:
        self.probabilities = list(probabilities)
        self.calls = 0

    def probability(self, image_bgr):
        self.calls += 1
        return self.probabilities[min(self.calls, len(self.probabilities)) - 1]


def test_the_steadied_mask_starts_afresh_at_a_new_frame_size():
    """The model's probability is 256x256 whatever the frame's size, so its shape never told a new size."""
    before, after = np.full((256, 256), 0.6, np.float32), np.full((256, 256), 0.4, np.float32)
    mask = PersonMask(SequenceSegmenter(before, after))
    mask(np.zeros(SMALL.shape[:2], np.float32), SMALL)
    mask(np.zeros(LARGE.shape[:2], np.float32), LARGE)
    assert np.array_equal(mask._steady, after)  # not 0.6 + 0.3·(0.4 − 0.6), an average with the old size's mask


def test_no_segmentation_where_the_gate_found_no_face():
    """Only a part of the mask with a face counts: without one the model's 3-7 ms a frame (CPU) were thrown away.
    The first frame with a face takes its mask as it comes."""
    first, second = np.full((256, 256), 0.95, np.float32), np.full((256, 256), 0.7, np.float32)
    segmenter = SequenceSegmenter(first, second)
    gate = FaceGate(every=2)
    gate.finder = CountingFinder(found=False)
    mask = PersonMask(segmenter, faces=gate)
    refined = np.random.default_rng(3).uniform(0, 1, SMALL.shape[:2]).astype(np.float32)
    assert all(mask(refined, SMALL, index=index) is refined for index in range(6))
    assert segmenter.calls == 0 and gate.finder.looks == 3
    gate.finder.found = True
    fused = mask(refined, SMALL, index=6)
    assert segmenter.calls == 1 and np.array_equal(mask._steady, first)
    assert np.all(fused >= refined) and np.any(fused > refined)


def test_a_batch_of_photos_loads_the_model_once(shared_models, tmp_path, monkeypatch):
    """Through the command line: two photos in one run make one session."""
    from stream.cli import main

    made: list[str] = []
    real = segmentation.PersonSegmenter.__init__

    def counted(self, spec, path, backend="cpu", threads=0):
        made.append(str(path))
        real(self, spec, path, backend, threads)

    monkeypatch.setattr(segmentation.PersonSegmenter, "__init__", counted)
    segmentation._loaded.cache_clear()
    image = np.random.default_rng(5).integers(0, 255, (96, 128, 3), np.uint8)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), image)
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(out), "--person-mask", "on",
                 "--model", "tcmonodepth"], restore_signals=False) == 0
    assert len(made) == 1 and len(list(out.iterdir())) == 2


class ScriptedFinder(CountingFinder):
    """Finds what its script says at each look in turn."""

    def __init__(self, *script: list) -> None:
        super().__init__()
        self.script = list(script)

    def detect_all(self, prepared):
        self.looks += 1
        return self.script[self.looks - 1]


def test_one_look_that_misses_the_face_keeps_the_last_ones_but_two_do_not():
    """The cascade misses a face it found a look before (5 of 12 looks on a 1280x720 clip): the person's hair went
    soft for a whole look's frames. One miss keeps the boxes; a second, or a cut, drops them."""
    face = (100, 50, 40, 40)
    gate = FaceGate(every=2)
    gate.finder = ScriptedFinder([face], [], [], [face], [], [])
    seen = [gate(SMALL, cut=index == 9, index=index) for index in range(10)]
    assert seen == [[face]] * 4 + [[]] * 2 + [[face]] * 3 + [[]]
