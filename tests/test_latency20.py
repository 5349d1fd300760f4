"""A live run's latency, camera to screen: what the display path pays for beside its own stages."""
import numpy as np
import pytest

from stream import focus as focus_module
from stream.focus import FocusController


class CountingFinder:
    """Stands in for the background face finder: counts the frames handed to it, finds nothing."""

    def __init__(self, finder) -> None:
        self.asked: list[tuple[int, float]] = []

    def submit(self, image_bgr, tag) -> None:
        self.asked.append(tag)

    def results(self) -> list:
        return []

    def discard(self) -> None:
        pass

    def close(self) -> None:
        pass


def _asks(monkeypatch, fps: float | None, frames: int, face_interval: int = 6) -> int:
    """How many of `frames` frames a live run's focus hands to the face detector, at `fps` (None: no frame times)."""
    monkeypatch.setattr(focus_module, "BackgroundFaceFinder", CountingFinder)
    controller = FocusController("auto", face_interval=face_interval, faces_in_background=True)
    image, disparity = np.zeros((48, 64, 3), np.uint8), np.full((48, 64), 0.5, np.float32)
    jitter = np.random.default_rng(0).uniform(-0.002, 0.002, frames)  # a camera's frame times wander a little
    for index in range(frames):
        controller.update(image, disparity, None if fps is None else 100.0 + index / fps + jitter[index])
    return len(controller._background.asked)


@pytest.mark.parametrize("fps", [30.0, 60.0, 120.0])
def test_a_live_face_detector_is_asked_as_often_a_second_at_any_camera_rate(monkeypatch, fps):
    # one second of camera at face_interval 6: five detections, as a 30 fps camera always had. A 60 fps camera asked
    # ten (its 12-27 ms passes on the display's two cores: p50 53 -> 48 ms, 43 -> 46 fps shown at face_interval 12)
    assert _asks(monkeypatch, fps, round(fps)) == 5


def test_without_frame_times_the_detector_is_asked_every_face_interval_frames(monkeypatch):
    assert _asks(monkeypatch, None, 30) == 5
    assert _asks(monkeypatch, None, 30, face_interval=1) == 30


def test_a_slow_camera_or_a_display_that_drops_frames_asks_no_more_often_than_every_face_interval_frames(monkeypatch):
    # 2 s at 15 fps: every 6th frame as before (time alone would ask every 3rd, doubling the detector's share)
    assert _asks(monkeypatch, 15.0, 30) == 5
