import os
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from stream.faces import FaceFinder
import stream.focus as focus_module
from stream.focus import FocusController, subject_disparity


def _astronaut():
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def test_finds_the_astronauts_face():
    face = FaceFinder().largest_face(_astronaut())
    assert face is not None
    x, y, w, h = face
    # Eileen Collins' face sits around x 170-290, y 40-200 in the 512x512 photo.
    assert 150 < x + w / 2 < 300 and 50 < y + h / 2 < 200 and w > 60


def test_auto_focus_takes_the_face_disparity_over_a_nearer_region():
    image = _astronaut()
    disparity = np.full(image.shape[:2], 0.2, np.float32)
    x, y, w, h = FaceFinder().largest_face(image)
    disparity[y:y + h, x:x + w] = 0.6
    disparity[400:, :] = 0.95  # something nearer than the face, but it is not the subject
    assert FocusController("auto").update(image, disparity) == pytest.approx(0.6)


def test_without_a_face_auto_focus_takes_the_nearest_subject():
    image = np.full((120, 160, 3), 128, np.uint8)
    disparity = np.full((120, 160), 0.1, np.float32)
    disparity[40:100, 50:110] = 0.8  # a 19% region
    disparity[0, 0] = 1.0  # a near speck is ignored
    assert subject_disparity(disparity) == pytest.approx(0.8)
    assert FocusController("auto").update(image, disparity) == pytest.approx(0.8)


def test_the_subject_of_a_large_map_is_read_on_a_sample_of_it(monkeypatch):
    """A 720p map is read on a grid (1.5-10 ms a frame otherwise): the same region, the same value
    to well under a level of blur, and a near cluster at the edge (a hand) still ignored."""
    rng = np.random.default_rng(3)
    disparity = (0.1 + 0.02 * rng.random((720, 1280))).astype(np.float32)
    disparity[200:520, 500:800] = 0.7 + 0.02 * rng.random((320, 300))  # 10% of the frame
    disparity[650:700, 0:60] = 1.0  # 0.3%: a hand at the edge
    sampled = subject_disparity(disparity)
    monkeypatch.setattr(focus_module, "SUBJECT_SAMPLES", disparity.size)  # every pixel read
    assert sampled == pytest.approx(subject_disparity(disparity), abs=0.002)
    assert 0.7 <= sampled <= 0.72


def test_fixed_and_point_focus_and_smoothing():
    image = np.zeros((60, 80, 3), np.uint8)
    disparity = np.zeros((60, 80), np.float32)
    disparity[:, 40:] = 1.0
    assert FocusController(0.3).update(image, disparity) == pytest.approx(0.3)
    controller = FocusController(0.3, point=(70, 30), smoothing=0.5)
    assert controller.update(image, disparity) == pytest.approx(1.0)
    controller.set_point(10, 30)  # a click elsewhere: focus glides there rather than jumping
    assert controller.update(image, disparity) == pytest.approx(0.5)
    assert controller.update(image, disparity) == pytest.approx(0.25)


def test_faces_are_looked_for_every_nth_frame_and_the_last_box_is_reused(monkeypatch):
    """The face's box at 0.6, the fallback (nearest large region) at 0.95, the rest at 0.2: on the frames
    between detections the focus is read in the last box found, at its place."""
    image, disparity, face = _face_scene()
    controller = FocusController("auto", face_interval=3, smoothing=1.0)  # no smoothing: each frame's own target
    calls = []
    original = FaceFinder.faces
    monkeypatch.setattr(FaceFinder, "faces", lambda self, img: calls.append(1) or original(self, img))
    for frame in range(7):
        assert controller.update(image, disparity) == pytest.approx(0.6), frame
        assert tuple(controller.last_face) == tuple(face), frame
    assert len(calls) == 3  # frames 0, 3 and 6


def _found(face):
    """A scripted detection: the face, or none found."""
    return [] if face is None else [face]


def _face_scene():
    image = _astronaut()
    face = FaceFinder().largest_face(image)
    x, y, w, h = face
    disparity = np.full(image.shape[:2], 0.2, np.float32)
    disparity[y:y + h, x:x + w] = 0.6
    disparity[400:, :] = 0.95  # the fallback (nearest large region) would focus here
    return image, disparity, face


def test_a_missed_detection_does_not_pull_focus_off_the_face():
    # Haar cascades miss single frames (a blink, motion blur); focus must not swing to the fallback and back.
    image, disparity, face = _face_scene()
    controller = FocusController("auto", face_interval=6)
    detections = iter([face, None, face, None, None, face])
    controller._faces.faces = lambda img: _found(next(detections))
    focus = [controller.update(image, disparity) for _ in range(36)]
    assert focus == pytest.approx([0.6] * 36)


def test_a_face_gone_for_longer_than_the_hold_is_let_go():
    image, disparity, face = _face_scene()
    controller = FocusController("auto", face_interval=3, face_hold=9)
    detections = iter([face] + [None] * 30)
    controller._faces.faces = lambda img: _found(next(detections))
    focus = [controller.update(image, disparity) for _ in range(60)]
    assert focus[:9] == pytest.approx([0.6] * 9)  # held through the misses at frames 3 and 6
    assert focus[9] > 0.6 and focus[-1] == pytest.approx(0.95, abs=1e-3)  # then it glides to the fallback


def test_auto_turns_a_fixed_focus_into_auto_focus_and_glides_there():
    image = np.full((120, 160, 3), 128, np.uint8)
    disparity = np.full((120, 160), 0.1, np.float32)
    disparity[40:100, 50:110] = 0.8
    controller = FocusController(0.3, smoothing=0.5)
    assert controller.update(image, disparity) == pytest.approx(0.3)
    controller.auto()
    assert controller.update(image, disparity) == pytest.approx(0.55)  # no jump: half way at smoothing 0.5
    for _ in range(30):
        controller.update(image, disparity)
    assert controller.current == pytest.approx(0.8)


def test_after_a_click_auto_focus_looks_for_the_face_afresh():
    # a face box from before the click says nothing about where a face is now
    image, disparity, face = _face_scene()
    controller = FocusController("auto", face_interval=6, smoothing=1.0)
    detections = iter([face] + [None] * 100)
    controller._faces.faces = lambda img: _found(next(detections))
    assert controller.update(image, disparity) == pytest.approx(0.6)
    controller.set_point(10, 10)
    for _ in range(300):
        assert controller.update(image, disparity) == pytest.approx(0.2)
    controller.auto()  # the face has gone meanwhile: the fallback at once, not the old box
    assert controller.update(image, disparity) == pytest.approx(0.95, abs=1e-3)


def test_live_focus_looks_for_faces_off_the_render_thread_and_takes_the_face_when_found(monkeypatch):
    image, disparity, face = _face_scene()
    detected_on = []
    original = FaceFinder.detect_all
    monkeypatch.setattr(FaceFinder, "detect_all",
                        lambda self, prepared: detected_on.append(threading.get_ident()) or original(self, prepared))
    controller = FocusController("auto", face_interval=2, smoothing=1.0, faces_in_background=True)
    try:
        assert controller.update(image, disparity) == pytest.approx(0.95, abs=1e-3)  # no detection back yet
        deadline = time.monotonic() + 10.0
        while controller.update(image, disparity) != pytest.approx(0.6) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert controller.last_face == face
    finally:
        controller.close()
    assert detected_on and threading.get_ident() not in detected_on
    assert not controller._background._thread.is_alive()


def _moving_subject(frames: int, step: int, size=(240, 480), side: int = 60, top: int = 90):
    """A textured square (disparity 0.8) crossing a textured wall (0.2) by `step` px a frame."""
    rng = np.random.default_rng(3)
    height, width = size
    wall = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 1.5)
    subject = cv2.GaussianBlur(rng.integers(0, 256, (side, side, 3), dtype=np.uint8), (0, 0), 1.5)
    for i in range(frames):
        image, disparity = wall.copy(), np.full(size, 0.2, np.float32)
        x = 40 + step * i
        image[top:top + side, x:x + side] = subject
        disparity[top:top + side, x:x + side] = 0.8
        yield image, disparity


@pytest.mark.parametrize("step, side, frames", [(3, 60, 20), (12, 60, 10), (20, 120, 10)])
def test_a_tapped_subject_stays_in_focus_as_it_moves(step, side, frames):
    # tapped at its centre on the first frame; it leaves that pixel after a few frames
    tap = (40 + side // 2, 90 + side // 2)
    tracked = FocusController("auto", point=tap, smoothing=1.0)
    fixed_pixel = FocusController("auto", point=tap, smoothing=1.0, track_point=False)
    for image, disparity in _moving_subject(frames, step, side=side):
        on_subject, on_pixel = tracked.update(image, disparity), fixed_pixel.update(image, disparity)
    assert on_subject == pytest.approx(0.8) and on_pixel == pytest.approx(0.2)
    x, y = tracked._tracker.point
    assert x == pytest.approx(tap[0] + (frames - 1) * step, abs=1.0) and y == pytest.approx(tap[1], abs=1.0)


def test_a_point_that_cannot_be_followed_holds_still_and_a_click_starts_afresh():
    controller = FocusController("auto", point=(70, 120), smoothing=1.0)
    frames = list(_moving_subject(3, 4))
    controller.update(*frames[0])
    blank = np.full_like(frames[0][0], 128)  # nothing to follow: the point stays where it was
    behind = np.full_like(frames[1][1], 0.2)  # and what is now under it is the wall: focus holds on the subject
    assert controller.update(blank, behind) == pytest.approx(0.8)
    assert controller._tracker.point == (70.0, 120.0) and controller._tracker.lost_frames == 1
    for _ in range(controller.face_hold):  # for as long as a missed face is held, then it reads the point again
        focus = controller.update(blank, behind)
    assert focus == pytest.approx(0.2)
    controller.set_point(200, 40)  # a click: followed from there
    controller.update(*frames[2])
    assert controller._tracker.point == (200.0, 40.0) and controller._tracker.lost_frames == 0


def test_tracking_a_large_frame_works_on_a_small_copy():
    from stream.tracking import PointTracker

    tracker = PointTracker((160, 400))
    for image, _ in _moving_subject(6, 16, size=(960, 1280), side=240, top=280):  # tracked at 640 x 480
        position = tracker.follow(image)
    assert abs(position[0] - (160 + 5 * 16)) <= 1 and abs(position[1] - 400) <= 1


def test_a_subject_hidden_for_a_moment_is_found_again_where_it_reappears():
    # a textured square moving 6 px a frame vanishes for four frames (behind something the colour of the
    # wall) and comes back further on: the point is looked for by its look, found, and followed again
    from stream.tracking import PointTracker

    tracker = PointTracker((70, 120))
    for i, (image, _) in enumerate(_moving_subject(14, 6)):
        hidden = 5 <= i < 9
        if hidden:
            image[80:160, :] = 90  # a plain occluder across the subject's path
        x, y = tracker.follow(image)
        if hidden:
            assert tracker.lost_frames >= 1
    assert tracker.lost_frames == 0
    assert abs(x - (70 + 13 * 6)) <= 1 and abs(y - 120) <= 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice value is Linux's")
def test_live_face_finder_runs_below_the_display_path():
    """A detection is a burst of 10-50 ms of CPU: at the render's own priority it took the cores from the render
    of its frame, which showed in the live run's latency tail. It runs at the background niceness, as the async
    network does."""
    from stream.workers import BACKGROUND_NICENESS, PREFIX

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    if base >= BACKGROUND_NICENESS:
        pytest.skip("this process runs at the background niceness or lower already")
    controller = FocusController("auto", faces_in_background=True)
    try:
        finder = next(t for t in threading.enumerate() if t.name == PREFIX + "face-finder" and t.is_alive())
        deadline = time.monotonic() + 5.0
        niceness = base
        while niceness == base and time.monotonic() < deadline:
            time.sleep(0.01)
            niceness = os.getpriority(os.PRIO_PROCESS, finder.native_id)
        assert niceness == BACKGROUND_NICENESS
    finally:
        controller.close()
