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
        self.close_looks = 0  # look_closely's calls: a cut's

    def prepare(self, image_bgr, inline=False):
        return image_bgr

    def look_closely(self) -> None:
        self.close_looks += 1

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


# --- the default preset's person mask (auto), its gate's fine pass, the segmenter's device, its upsampling ---------

def small_face_frame() -> np.ndarray:
    """640x480: the astronaut 300 px high on the coffee photo, her face about 58 px wide (9 % of the width), under
    the coarse pass's 12 % (a half-length shot of a group, a person beside a pet)."""
    from skimage import data

    frame = cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), (640, 480), interpolation=cv2.INTER_AREA)
    frame[180:, 200:500] = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (300, 300),
                                      interpolation=cv2.INTER_AREA)
    return frame


def no_face_frame() -> np.ndarray:
    from skimage import data

    return cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), (640, 480), interpolation=cv2.INTER_AREA)


@pytest.fixture
def offline(monkeypatch):
    """No selfie model to be had: the fetch fails as it does with no network and an empty cache (no download is
    tried), and the process has said nothing yet (models.registry.notify says a line once a process). The models
    the fetch was asked for."""
    from models import registry
    from models.download import ModelError

    tried: list[str] = []

    def unreachable(name, **_):
        tried.append(name)
        raise ModelError(f"cannot download {name}.onnx from https://example.invalid/{name}.onnx: <urlopen error "
                         f"[Errno -2] Name or service not known> (check the network, or place the file in the cache)")

    monkeypatch.setattr(segmentation, "fetch", unreachable)
    monkeypatch.setattr(segmentation, "AUTO_MISSING", set())
    monkeypatch.setattr(registry, "_SAID", set())
    return tried


def test_the_default_preset_has_the_person_mask_where_the_model_can_be_had(shared_models):
    """A person tall in a portrait frame had the body blurred more than the background in the default preset (the
    network's head-to-chest gradient); the mask keeps it sharp, so the default (file) preset runs it: auto."""
    from stream.config import PipelineConfig, load_config
    from stream.stages import RefineStage

    assert load_config("default").refine.person_mask == PipelineConfig().refine.person_mask == "auto"
    assert load_config("live-cpu").refine.person_mask == "off"
    assert load_config("gpu-1080p").refine.person_mask == "auto"  # its GPU path passed the gpu tests on an H200
    assert load_config("quality").refine.person_mask == "on"
    stage = RefineStage(RefineConfig(threads=1), "cpu")
    assert isinstance(stage.person_mask, PersonMask)
    assert RefineStage(RefineConfig(person_mask="off", threads=1), "cpu").person_mask is None


def test_auto_without_the_model_runs_on_after_one_warning_line(offline, capsys, monkeypatch):
    from models import download
    from stream.errors import UserError
    from stream.stages import RefineStage

    # a first run, online, whose fetch of the mask fails: tried whatever the cache holds (it passed only where
    # $DEPTHCAM_MODELS pointed the cache at a folder holding the model)
    monkeypatch.setattr(download, "DOWNLOADED", True)
    stages = [RefineStage(RefineConfig(threads=1), "cpu") for _ in range(2)]  # a batch's two inputs
    assert [stage.person_mask for stage in stages] == [None, None]
    assert offline == ["selfie_segmentation"]  # the second input did not try the network again
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("depthcam: no person mask in this run: cannot download")
    assert "depthcam models fetch selfie_segmentation" in lines[0] and "--person-mask off" in lines[0]
    with pytest.raises(UserError) as refused:  # asked for by name: refused, as before
        RefineStage(RefineConfig(person_mask="on", threads=1), "cpu")
    assert "\n" not in str(refused.value) and "refine.person_mask: off" in str(refused.value)


def test_a_default_run_without_the_model_renders_and_says_so_once(shared_models, offline, tmp_path, capsys):
    """Through the command line, offline on a first run: the default run goes on without the mask; --person-mask on
    refuses in one line, exit 2."""
    from stream.cli import main

    photo, out = tmp_path / "in.png", tmp_path / "out.png"
    cv2.imwrite(str(photo), small_face_frame())
    assert main(["run", str(photo), "-o", str(out)], restore_signals=False) == 0
    assert cv2.imread(str(out)).shape == (480, 640, 3)
    said = [line for line in capsys.readouterr().err.splitlines() if "person mask" in line]
    assert len(said) == 1 and "depthcam models fetch selfie_segmentation" in said[0]
    assert main(["run", str(photo), "-o", str(tmp_path / "on.png"), "--person-mask", "on"],
                restore_signals=False) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot download selfie_segmentation.onnx" in err[0]
    assert not (tmp_path / "on.png").exists()


def test_a_file_runs_gate_finds_a_face_too_small_for_the_coarse_pass():
    """The focus's file look has the fine pass and found the 67-79 px faces of a group and a pet clip; the gate had
    none, found nothing there, and the mask silently did nothing."""
    from stream.faces import FaceFinder

    frame = small_face_frame()
    coarse = FaceFinder(fine_every=0)
    assert coarse.detect_all(coarse.prepare(frame, inline=True)) == []
    faces = FaceGate()(frame)
    assert len(faces) == 1
    x, y, w, h = faces[0]
    assert 300 <= x + w / 2 <= 400 and 180 <= y + h / 2 <= 300  # her face, in the frame's pixels


def test_at_a_cut_the_gate_looks_for_small_faces_at_once():
    """The fine pass looks at a shot's first look, then at every FACE_FINE_EVERY-th that finds none: a cut to a
    shot with a small face is not left without the mask for up to 2 s."""
    gate = FaceGate(every=10)
    assert gate(no_face_frame(), index=0) == []  # the fine pass looked and found none: the next is 6 looks away
    assert len(gate(small_face_frame(), cut=True, index=1)) == 1
    counting = FaceGate(every=10)
    counting.finder = CountingFinder()
    for index in range(3):
        counting(SMALL, cut=index == 2, index=index)
    assert counting.finder.close_looks == 1


def test_the_mask_is_upsampled_with_the_refine_stage_s_parameters(shared_models):
    """On a GPU the filter's constant tables are the refinement's and the upsampling's both: the quality preset's
    sigma_range 0.04 against the upsampling's 0.05 swapped them twice a frame, each after a device-wide sync."""
    import kernels
    from models.segmentation import Upsampling, guided_upsample
    from stream.config import load_config
    from stream.stages import RefineStage

    quality = load_config("quality").refine
    stage = RefineStage(quality, "cpu")
    assert stage.person_mask.upsampling == Upsampling(quality.work_width, quality.live_radius,
                                                      quality.live_sigma_spatial, quality.sigma_range)
    assert stage.person_mask.upsampling.sigma_range == 0.04
    rng = np.random.default_rng(27)
    probability = rng.uniform(0, 1, (256, 256)).astype(np.float32)
    guide = rng.integers(0, 255, (120, 160, 3), np.uint8)
    upsampling = Upsampling(96, 3, 2.0, 0.04)
    expected = np.clip(kernels.refine_live(probability, guide, work_width=96, radius=3, sigma_spatial=2.0,
                                           sigma_range=0.04, backend="cpu"), 0, 1)
    np.testing.assert_array_equal(guided_upsample(probability, guide, "cpu", upsampling), expected)
    assert not np.array_equal(guided_upsample(probability, guide, "cpu"), expected)


def test_the_segmenter_asks_for_cuda_only_where_a_gpu_really_exists(shared_models, monkeypatch):
    """onnxruntime-gpu lists CUDA everywhere and logs an error line where its libraries cannot load: the segmenter
    detects a GPU as the depth model's session does (models.runtime.requested_providers)."""
    import onnxruntime

    from models import runtime
    from models.registry import PERSON_MASK_MODELS

    asked: list[list[str]] = []
    real = onnxruntime.InferenceSession

    def recorded(path, options=None, providers=None):
        asked.append(list(providers))
        return real(path, options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(onnxruntime, "InferenceSession", recorded)
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    path = shared_models / "selfie_segmentation.onnx"
    spec = PERSON_MASK_MODELS["selfie_segmentation"]
    for gpu in (False, True):
        monkeypatch.setattr(runtime, "cuda_available", lambda gpu=gpu: gpu)
        segmentation.PersonSegmenter(spec, path, "cuda", 1)
    segmentation.PersonSegmenter(spec, path, "cpu", 1)
    assert asked == [["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"],
                     ["CPUExecutionProvider"]]


def test_a_live_run_with_the_mask_on_auto_takes_the_focus_faces(shared_models, monkeypatch):
    """auto is on (its model in the cache): a live run's gate takes its focus's faces, not a look of its own on the
    refine thread."""
    from stream.config import load_config
    from test_person_faces26 import assert_a_live_run_shares_the_focus_faces

    monkeypatch.setattr(segmentation, "load_segmenter", lambda backend, threads=0, progress=True: object())
    monkeypatch.setattr(segmentation, "AUTO_MISSING", set())  # no earlier test's cache without the model
    config = load_config(None, {"inference.mode": "sync"})
    assert config.refine.person_mask == "auto"
    assert_a_live_run_shares_the_focus_faces(config)


def test_auto_goes_to_the_network_only_where_this_process_just_downloaded(model_cache, offline, monkeypatch, capsys):
    """A cache holding the depth model but not the selfie model (an upgrade, a cache made offline): auto fetched it at
    every run's start, and where the network drops packets each default run waited the download's minute in
    silence. Now auto takes it from the cache, or fetches it only where this process has just downloaded a model (a
    first run, online); otherwise one line names the fetch."""
    from models import download
    from stream.stages import RefineStage

    monkeypatch.setattr(download, "DOWNLOADED", False)
    assert RefineStage(RefineConfig(threads=1), "cpu").person_mask is None
    assert offline == []  # no network tried
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1 and "not in the cache" in said[0] and "depthcam models fetch selfie_segmentation" in said[0]
    monkeypatch.setattr(segmentation, "AUTO_MISSING", set())
    monkeypatch.setattr(download, "DOWNLOADED", True)  # the depth model was just downloaded: online, a first run
    assert RefineStage(RefineConfig(threads=1), "cpu").person_mask is None
    assert offline == ["selfie_segmentation"]


def test_auto_on_the_gpu_loads_the_mask_on_the_gpu(shared_models, monkeypatch):
    """auto was off on the GPU until the mask's device path had run on one; it passed there (an H200)."""
    loaded: list[tuple[str, int]] = []

    def load(backend: str, threads: int = 0, **_: object):
        loaded.append((backend, threads))
        return object()

    monkeypatch.setattr(segmentation, "load_segmenter", load)
    mask = segmentation.person_mask_for("auto", "cuda")
    assert isinstance(mask, segmentation.PersonMask) and loaded == [("cuda", 0)]


class BlinkingGate:
    """A face over the whole frame except at the frames named: a gate that missed it there."""

    def __init__(self, missed: set[int]) -> None:
        self.missed = missed

    def __call__(self, image_bgr, cut=False, index=0):
        return [] if index in self.missed else [(0, 0, image_bgr.shape[1], image_bgr.shape[0])]

    def close(self) -> None:
        pass


def test_a_gate_that_blinks_for_a_frame_keeps_the_steadied_mask():
    """The mask was started afresh at every frame without a face: one missed look brought the hair's wavering back
    (the raw probability, 0.2-0.35 off between like frames). After a longer absence it still starts afresh."""
    from models.segmentation import FACE_EVERY, MASK_STEADY_WEIGHT

    first, wavered = np.full((256, 256), 0.95, np.float32), np.full((256, 256), 0.8, np.float32)
    refined = np.zeros(SMALL.shape[:2], np.float32)
    mask = PersonMask(SequenceSegmenter(first, wavered), faces=BlinkingGate({1}))
    for index in range(3):
        mask(refined, SMALL, index=index)
    assert mask._steady[0, 0] == pytest.approx(0.95 + MASK_STEADY_WEIGHT * (0.8 - 0.95))
    away = PersonMask(SequenceSegmenter(first, wavered), faces=BlinkingGate(set(range(1, FACE_EVERY + 2))))
    for index in range(FACE_EVERY + 3):
        away(refined, SMALL, index=index)
    assert np.array_equal(away._steady, wavered)
