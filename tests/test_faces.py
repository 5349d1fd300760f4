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
