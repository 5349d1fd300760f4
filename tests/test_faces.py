import threading
import time

import cv2
import numpy as np
import pytest

from stream.faces import BackgroundFaceFinder, FaceFinder, largest


def _astronaut():
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def _wait_for_results(finder: BackgroundFaceFinder, count: int = 1, timeout_s: float = 10.0):
    done, deadline = [], time.monotonic() + timeout_s
    while len(done) < count and time.monotonic() < deadline:
        done += finder.results()
        time.sleep(0.005)
    return done


class _GatedFinder(FaceFinder):
    """Detection waits for the test's go-ahead and records which frames (by their mean) it saw."""

    def __init__(self):
        super().__init__()
        self.started, self.go, self.seen = threading.Event(), threading.Event(), []

    def detect_all(self, prepared):
        self.seen.append(int(prepared.grey.mean() > 0))
        self.started.set()
        assert self.go.wait(10.0)
        return [(1, 2, 3, 4)]


def test_the_background_finder_finds_what_the_inline_one_finds():
    image = _astronaut()
    finder = BackgroundFaceFinder(FaceFinder())
    try:
        finder.submit(image, tag=7)
        [detection] = _wait_for_results(finder)
    finally:
        finder.close()
    assert detection.tag == 7
    assert largest(detection.faces) == FaceFinder().largest_face(image)
    assert not finder._thread.is_alive()


def test_the_prepared_image_is_a_copy_the_caller_may_overwrite():
    image = _astronaut()
    finder = FaceFinder()
    prepared = finder.prepare(image)
    expected = prepared.grey.copy()
    image[:] = 0  # the frame's buffer reused by the next stage, while the worker still reads its copy
    assert np.array_equal(prepared.grey, expected)
    assert prepared.grey.shape == (320, 320) and prepared.scale == pytest.approx(320 / 512)


def test_a_busy_finder_takes_only_the_newest_waiting_frame():
    gated = _GatedFinder()
    finder = BackgroundFaceFinder(gated)
    try:
        finder.submit(np.zeros((48, 64, 3), np.uint8), tag=0)
        assert gated.started.wait(10.0)  # frame 0 is being looked at; 1 and 2 wait, 2 replaces 1
        finder.submit(np.zeros((48, 64, 3), np.uint8), tag=1)
        finder.submit(np.full((48, 64, 3), 200, np.uint8), tag=2)
        gated.go.set()
        done = _wait_for_results(finder, count=2)
    finally:
        finder.close()
    assert [d.tag for d in done] == [0, 2]
    assert gated.seen == [0, 1]


def test_discard_drops_the_detection_under_way_and_the_waiting_frame():
    gated = _GatedFinder()
    finder = BackgroundFaceFinder(gated)
    try:
        finder.submit(np.zeros((48, 64, 3), np.uint8), tag=0)
        assert gated.started.wait(10.0)
        finder.submit(np.zeros((48, 64, 3), np.uint8), tag=1)
        finder.discard()  # a click: neither detection may move focus now
        gated.go.set()
        time.sleep(0.2)
        assert finder.results() == []
        finder.submit(np.zeros((48, 64, 3), np.uint8), tag=5)
        assert [d.tag for d in _wait_for_results(finder)] == [5]
    finally:
        finder.close()


def test_a_failure_on_the_worker_is_raised_to_the_caller():
    class Broken(FaceFinder):
        def detect_all(self, prepared):
            raise RuntimeError("cascade exploded")

    finder = BackgroundFaceFinder(Broken())
    finder.submit(np.zeros((48, 64, 3), np.uint8), tag=0)
    deadline = time.monotonic() + 10.0
    with pytest.raises(RuntimeError, match="cascade exploded"):
        while time.monotonic() < deadline:
            finder.results()
            time.sleep(0.005)
    finder.close()


def _picture(name: str) -> np.ndarray:
    from skimage import data

    image = getattr(data, name)()
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR)


class _CountingFinder(FaceFinder):
    def __init__(self):
        super().__init__()
        self.profile_passes = 0

    def _profiles(self, grey):
        self.profile_passes += 1
        return super()._profiles(grey)


def test_a_head_in_profile_is_found_where_the_frontal_cascade_finds_none():
    """scikit-image's cameraman, his head turned to the side: the frontal cascade alone found no face."""
    [(x, y, w, h)] = FaceFinder().faces(_picture("camera"))
    centre = (x + w / 2, y + h / 2)
    assert 190 <= centre[0] <= 260 and 110 <= centre[1] <= 170 and 90 <= w <= 170  # his head, not the camera


@pytest.mark.parametrize("name", ["coffee", "rocket", "chelsea", "coins", "page"])
def test_pictures_without_people_give_no_head_in_profile(name):
    assert FaceFinder(fine_every=1).faces(_picture(name)) == []  # the fine pass for small faces too


def test_a_frontal_face_found_asks_the_profile_cascade_nothing():
    finder = _CountingFinder()
    [face] = finder.faces(_astronaut())
    assert finder.profile_passes == 0 and face == FaceFinder().largest_face(_astronaut())


@pytest.mark.parametrize("name, passes", [("coffee", 2), ("camera", 4)])
def test_the_profile_cascade_looks_every_other_time_where_it_finds_no_head(name, passes):
    """Both directions cost more than the frontal pass: a film without faces pays it at every other detection;
    a head found in profile is looked for at every one."""
    finder, image = _CountingFinder(), _picture(name)
    found = [finder.faces(image) for _ in range(4)]
    assert finder.profile_passes == passes
    assert all(faces == found[0] for faces in found) if name == "camera" else found == [[]] * 4
