"""Focus smoothing and holds mean the same in seconds at any frame rate, given the frames' times."""
import cv2
import numpy as np
import pytest

from stream.focus import FocusController
from stream.sample import sample_frames


def _step_response(fps: float, seconds: float = 0.5, smoothing: float = 0.25) -> dict[float, float]:
    """Focus over time after the subject jumps from disparity 0.2 to 0.8, keyed by the frame's time."""
    image = np.full((60, 80, 3), 128, np.uint8)
    near, far = np.full((60, 80), 0.8, np.float32), np.full((60, 80), 0.2, np.float32)
    controller = FocusController("auto", point=(40, 30), smoothing=smoothing, track_point=False)
    controller.update(image, far, 10.0)  # a run that starts part-way (--start 10)
    frames = round(seconds * fps)
    return {round(i / fps, 6): controller.update(image, near, 10.0 + i / fps) for i in range(1, frames + 1)}


def test_smoothing_glides_as_fast_in_seconds_at_24_30_and_60_fps():
    at = {fps: _step_response(fps) for fps in (24, 30, 60)}
    for t in (1 / 6, 1 / 3, 1 / 2):  # times that all three rates have a frame at
        t = round(t, 6)
        assert at[24][t] == pytest.approx(at[30][t]) and at[60][t] == pytest.approx(at[30][t])
    # at 30 fps the setting is what it always was: the newest measurement's weight a frame
    assert at[30][round(1 / 30, 6)] == pytest.approx(0.2 + 0.25 * 0.6)
    assert at[30][round(1 / 15, 6)] == pytest.approx(0.2 + (1 - 0.75 ** 2) * 0.6)
    # before: per frame, so at 60 fps it was 83% of the way after 1/6 s (30 fps: 76%, 24 fps: 68%)
    assert (at[60][round(1 / 6, 6)] - 0.2) / 0.6 == pytest.approx(1 - 0.75 ** 5)


def test_without_frame_times_or_when_they_do_not_go_forward_a_frame_counts_as_one_thirtieth_second():
    image = np.full((60, 80, 3), 128, np.uint8)
    near, far = np.full((60, 80), 0.8, np.float32), np.full((60, 80), 0.2, np.float32)
    untimed = FocusController("auto", point=(40, 30), smoothing=0.5, track_point=False)
    joined = FocusController("auto", point=(40, 30), smoothing=0.5, track_point=False)
    untimed.update(image, far)
    joined.update(image, far, 5.0)
    assert untimed.update(image, near) == pytest.approx(0.5)
    assert joined.update(image, near, 0.0) == pytest.approx(0.5)  # clips joined as they are: time went back
    assert joined.update(image, near, 0.0) == pytest.approx(0.65)


def _found(face):
    return [] if face is None else [face]


def _face_then_none(fps: float, face_interval: int = 3, seconds: float = 1.0):
    """A face found on the first frame, then missed by every detection after it: focus per frame time."""
    image = next(sample_frames(1))  # any picture: the detections are scripted
    disparity = np.full(image.shape[:2], 0.6, np.float32)
    face = (200, 20, 120, 120)
    disparity[400:] = 0.95  # the fallback: the nearest large region
    controller = FocusController("auto", smoothing=1.0, face_interval=face_interval)
    detections = iter([face] + [None] * 1000)
    controller._faces.faces = lambda img: _found(next(detections))
    return [(i / fps, controller.update(image, disparity, i / fps)) for i in range(round(fps * seconds))]


@pytest.mark.parametrize("fps", [24, 30, 60])
def test_a_missed_face_is_held_half_a_second_at_any_frame_rate(fps):
    held = [t for t, focus in _face_then_none(fps) if focus == pytest.approx(0.6)]
    # let go at the first detection from half a second on (every 3rd frame); before: 15 frames at any rate,
    # a quarter of a second at 60 fps
    assert 0.5 - 1e-9 <= held[-1] + 1 / fps < 0.5 + 3 / fps


def test_at_a_low_frame_rate_a_face_is_still_held_through_one_missed_detection():
    # 8 fps and a detection every 6th frame: half a second is 4 frames, less than one missed detection
    focus = [f for _, f in _face_then_none(8, face_interval=6, seconds=2.0)]
    assert focus[:12] == pytest.approx([0.6] * 12)  # let go at frame 12, the second detection that missed it
    assert focus[12] == pytest.approx(0.95, abs=1e-3)


def test_a_point_that_cannot_be_followed_is_held_half_a_second_at_60_fps():
    rng = np.random.default_rng(3)
    wall = cv2.GaussianBlur(rng.integers(0, 256, (240, 480, 3), dtype=np.uint8), (0, 0), 1.5)
    blank = np.full_like(wall, 128)  # nothing to follow (the cut test sees a plain frame of the same brightness)
    on_it, behind = np.full((240, 480), 0.8, np.float32), np.full((240, 480), 0.2, np.float32)
    controller = FocusController("auto", point=(70, 120), smoothing=1.0)
    controller.update(wall, on_it, 0.0)
    focus = [controller.update(blank, behind, i / 60) for i in range(1, 60)]
    assert controller._tracker.lost_frames == 59
    assert focus[:30] == pytest.approx([0.8] * 30) and focus[30:] == pytest.approx([0.2] * 29)
