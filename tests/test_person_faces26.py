"""refine.person_mask's face gate shares the auto focus's faces in a live run.

The gate looked for faces itself every 10 frames on the refine thread (35-170 ms a look on a CPU: a stall of the
refine stage every 10 frames), while a live run's auto focus finds the same faces beside the render. Now a live
run's render hands its focus's faces to the refine stage (FocusFaces) and the gate looks for none itself; where the
focus looks for none (a point, a fixed value) the gate looks on a thread of its own; a file run's gate looks on each
frame itself, as before, so that every run of a file is the same.
"""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from models import segmentation
from models.segmentation import FaceGate, FocusFaces, PersonMask, load_segmenter
from stream.config import RefineConfig, RenderConfig, load_config
from stream.focus import FocusController
from stream.frame import Frame

IMAGE = np.zeros((480, 640, 3), np.uint8)
OWN_BOX = (300, 200, 40, 40)


class CountingFinder:
    """A face finder that finds OWN_BOX, counting its looks and the threads they ran on."""

    def __init__(self) -> None:
        self.looks = 0
        self.threads: list[int] = []

    def prepare(self, image_bgr, inline=False):
        return image_bgr

    def detect_all(self, prepared):
        self.looks += 1
        self.threads.append(threading.get_ident())
        return [OWN_BOX]


def counting_gate(focus_faces: FocusFaces | None, every: int = 3) -> FaceGate:
    gate = FaceGate(every=every, focus_faces=focus_faces)
    gate.finder = CountingFinder()
    return gate


def wait_for(condition, seconds: float = 10.0) -> None:
    """Until `condition()` holds (a thread's work to finish); fails past `seconds`, a bound, not a measurement."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the gate's own look never finished"
        time.sleep(0.005)


def test_a_live_gate_takes_the_focus_faces_and_looks_for_none_itself():
    shared = FocusFaces()
    gate = counting_gate(shared)
    assert gate(IMAGE, index=0) == []  # the render has shown no frame yet: no faces, and no look of its own
    for index in range(1, 25):
        box = (10 * index, 20, 50, 50)  # the render is a frame behind: its focus's faces of the frame before
        shared.publish(index - 1, [box])
        assert gate(IMAGE, index=index) == [box]
    assert gate.finder.looks == 0 and gate._beside is None


def test_at_a_cut_the_focus_faces_from_the_last_shot_are_not_taken():
    shared = FocusFaces()
    gate = counting_gate(shared)
    last_shot, new_shot = (10, 10, 50, 50), (400, 100, 60, 60)
    shared.publish(3, [last_shot])
    assert gate(IMAGE, index=4) == [last_shot]
    assert gate(IMAGE, cut=True, index=5) == []  # the render has not reached the cut: its faces are the last shot's
    shared.publish(4, [last_shot])
    assert gate(IMAGE, index=6) == []
    shared.publish(5, [new_shot])  # the render's focus has seen the cut (and forgot the last shot's faces)
    assert gate(IMAGE, index=7) == [new_shot]
    assert gate.finder.looks == 0


def test_where_the_focus_looks_for_no_faces_the_gate_looks_itself_off_the_refine_thread():
    shared = FocusFaces()
    gate = counting_gate(shared, every=3)
    focus_box = (10, 10, 50, 50)
    try:
        shared.publish(0, [focus_box])
        assert gate(IMAGE, index=1) == [focus_box]
        shared.publish(1, None)  # a click: focus on a point, no faces looked for
        assert gate(IMAGE, index=2) == [focus_box]  # held while its own look (asked now) is under way
        wait_for(lambda: gate.finder.looks == 1)
        assert gate(IMAGE, index=3) == [OWN_BOX]
        gate(IMAGE, index=4)
        assert gate.finder.looks == 1  # every 3 frames: the next look is at frame 5
        gate(IMAGE, index=5)
        wait_for(lambda: gate.finder.looks == 2)
        assert gate(IMAGE, cut=True, index=6) == []  # a cut: the last shot's boxes go, a look is asked at once
        wait_for(lambda: gate.finder.looks == 3)
        assert gate(IMAGE, index=7) == [OWN_BOX]
        assert threading.get_ident() not in gate.finder.threads
    finally:
        gate.close()
    assert not gate._beside._thread.is_alive()


def test_a_file_runs_gate_still_looks_on_the_frame_itself():
    gate = counting_gate(None, every=3)
    assert gate(IMAGE, index=0) == [OWN_BOX] and gate.finder.threads == [threading.get_ident()]


class StubFocusFinder:
    """The focus's own detector, finding the boxes it is given in turn."""

    def __init__(self, *found: list) -> None:
        self.found = list(found)

    def faces(self, image_bgr):
        return self.found.pop(0) if len(self.found) > 1 else self.found[0]

    def look_closely(self) -> None:
        pass


def face_depth(box, shape=(480, 640)) -> np.ndarray:
    """A head at 0.8 before a wall at 0.2: real_faces keeps its box."""
    x, y, w, h = box
    disparity = np.full(shape, 0.2, np.float32)
    disparity[y - h // 2:y + 2 * h, x - w // 4:x + w + w // 4] = 0.8
    return disparity


def test_the_focus_tells_its_faces_and_none_where_it_looks_for_none():
    face = (300, 150, 60, 60)
    focus = FocusController("auto", face_interval=1)
    focus._faces = StubFocusFinder([face], [])
    focus.update(IMAGE, face_depth(face))
    assert focus.faces_now() == [face]
    focus.update(IMAGE, face_depth(face))  # missed once: the face it follows is held, and told
    assert focus.detected == () and focus.faces_now() == [face]
    focus.set_point(20, 20)
    focus.update(IMAGE, face_depth(face))
    assert focus.faces_now() is None
    fixed = FocusController(0.5)
    fixed.update(IMAGE, face_depth(face))
    assert fixed.faces_now() is None


class FixedSegmenter:
    """The person: a blob around the face box, of probability 1, the same for any picture."""

    def __init__(self, box, size=(640, 480)) -> None:
        x, y, w, h = box
        probability = np.zeros((256, 256), np.float32)
        sx, sy = 256 / size[0], 256 / size[1]
        probability[int((y - h) * sy):int((y + 3 * h) * sy), int((x - w) * sx):int((x + 2 * w) * sx)] = 1
        self._probability = probability

    def probability(self, image_bgr):
        return self._probability


def test_the_render_hands_its_focus_faces_to_the_refine_stage(monkeypatch):
    """The stages as a run calls them, frame after frame: from the render's first frame on, the refine stage's
    gate has the focus's face (the person's pixels raised) without a look of its own."""
    from stream.stages import RefineStage, RenderStage

    face = (300, 150, 60, 60)
    monkeypatch.setattr(segmentation, "load_segmenter",
                        lambda backend, threads=0, progress=True: FixedSegmenter(face))
    shared = FocusFaces()
    refine = RefineStage(RefineConfig(mode="off", person_mask="on"), "cpu", focus_faces=shared)
    gate = refine.person_mask.faces
    gate.finder = CountingFinder()
    focus = FocusController("auto", face_interval=1)
    focus._faces = StubFocusFinder([face])
    render = RenderStage(RenderConfig(blur=0), focus, "cpu", focus_faces=shared)
    x, y, w, h = face
    depth = np.full((480, 640), 0.2, np.float32)
    depth[y:y + 3 * h, x - w:x + 2 * w] = 0.6  # the person, its hair above the face missed by the network
    small = cv2.resize(depth, (320, 240), interpolation=cv2.INTER_AREA)
    image = np.random.default_rng(26).integers(0, 255, (480, 640, 3), np.uint8)
    raised = []
    for index in range(3):
        frame = Frame(index=index, capture_ns=0, image=image)
        frame.disparity = small
        unfused = cv2.resize(small, (640, 480), interpolation=cv2.INTER_LINEAR)
        refine.process([frame])
        raised.append(int(np.sum(frame.refined > unfused + 0.05)))
        render.process([frame])
        assert shared.latest() == (index, (face,))
    assert raised[0] == 0 and raised[1] > 1000 and raised[2] == raised[1]  # frame 0: the render had shown none
    assert gate.finder.looks == 0
    refine.close()


def assert_a_live_run_shares_the_focus_faces(config) -> None:
    """A live run's stages (build_stages with a background face finder): the refine stage's gate takes the render's
    focus faces."""
    from stream.app import build_stages

    live = FocusController("auto", faces_in_background=True)
    try:
        _, refine, render = build_stages(config, None, live, "cpu", threading.Event())
        assert render.focus_faces is not None and refine.person_mask.faces.focus_faces is render.focus_faces
    finally:
        live.close()


def test_build_stages_shares_the_focus_faces_in_a_live_run_only(monkeypatch):
    from stream.app import build_stages

    monkeypatch.setattr(segmentation, "load_segmenter",
                        lambda backend, threads=0, progress=True: FixedSegmenter(OWN_BOX))
    config = load_config(None, {"refine.person_mask": "on", "inference.mode": "sync"})
    assert_a_live_run_shares_the_focus_faces(config)
    _, refine, render = build_stages(config, None, FocusController("auto"), "cpu", threading.Event(), file_run=True)
    assert render.focus_faces is None and refine.person_mask.faces.focus_faces is None
    off = load_config(None, {"inference.mode": "sync", "refine.person_mask": "off"})  # the default's is auto
    live = FocusController("auto", faces_in_background=True)
    try:
        _, refine, render = build_stages(off, None, live, "cpu", threading.Event())
        assert refine.person_mask is None and render.focus_faces is None  # no mask: nothing handed over
    finally:
        live.close()


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def test_the_focus_faces_gate_the_astronaut_as_the_gates_own_look_did(shared_models, astronaut):
    """The real models and detectors on scikit-image's astronaut: the mask with the faces a live focus found beside
    it is the mask with the gate's own look (a file run's), bit for bit, and the gate looked for none."""
    import kernels
    import models

    spec, path = models.resolve_model("tcmonodepth", progress=False)
    estimator = models.DepthEstimator(spec, path, "cpu")
    disparity = models.DisparityNormaliser()(estimator.to_disparity(estimator.predict([astronaut])[0]))
    refined = kernels.refine_live(disparity, astronaut, backend="cpu")
    segmenter = load_segmenter("cpu", progress=False)
    own_look = PersonMask(segmenter, faces=FaceGate())(refined, astronaut)
    assert np.mean(own_look > refined + 0.05) > 0.02  # the person was found and raised

    shared = FocusFaces()
    focus = FocusController("auto", faces_in_background=True)
    try:
        index = 0
        while not focus.faces_now():
            focus.update(astronaut, refined)
            shared.publish(index, focus.faces_now())
            index += 1
            assert index < 2000, "the live focus found no face"
            time.sleep(0.005)
    finally:
        focus.close()
    gate = FaceGate(focus_faces=shared)
    looks = []
    gate.finder.detect_all = lambda prepared: looks.append(1) or []
    shared_look = PersonMask(segmenter, faces=gate)(refined, astronaut, index=index)
    assert np.array_equal(shared_look, own_look) and not looks
