"""Focus at a cut in an edited video: straight to the new shot's subject, not a focus pull from the last one's."""
import itertools
import time

import cv2
import numpy as np
import pytest

from stream.focus import FocusController, SceneCuts
from stream.sample import sample_frames
from stream.synthetic import SyntheticPortrait, SyntheticScene

SIZE = (640, 480)


def _photo(name: str) -> np.ndarray:
    from skimage import data

    image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2BGR)


def _shot(photo: np.ndarray, frames: int, pan=(0.0, 0.0), zoom=(1.0, 1.0), shake=0.0, gain=(1.0, 1.0),
          seed: int = 0, centre=(0.5, 0.5)):
    """A camera moving over a photo: a pan in px a frame, a zoom and an exposure ramp over 12 frames (0.4 s),
    a shaking hand (px)."""
    rng = np.random.default_rng(seed)
    h, w = photo.shape[:2]
    for i in range(frames):
        t = i / 11
        scale = (zoom[0] + (zoom[1] - zoom[0]) * t) * max(SIZE[0] / w, SIZE[1] / h) * 1.3
        cx = w * centre[0] + (pan[0] * i + shake * rng.standard_normal()) / scale
        cy = h * centre[1] + (pan[1] * i + shake * rng.standard_normal()) / scale
        matrix = np.array([[scale, 0, SIZE[0] / 2 - scale * cx], [0, scale, SIZE[1] / 2 - scale * cy]])
        image = cv2.warpAffine(photo, matrix, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        gain_now = gain[0] + (gain[1] - gain[0]) * t
        noisy = image * gain_now + 2.0 * rng.standard_normal(image.shape)
        yield np.clip(noisy, 0, 255).astype(np.uint8)


def _cuts(frames) -> list[int]:
    cuts = SceneCuts()
    return [i for i, frame in enumerate(frames) if cuts.is_cut(frame)]


MOVES = {"still": {}, "slow pan": {"pan": (2, 0)}, "pan": {"pan": (8, 1)}, "fast pan": {"pan": (40, 5)},
         "tilt": {"pan": (0, 10)}, "zoom": {"zoom": (1.0, 1.6)}, "hand shake": {"shake": 6},
         "exposure ramp": {"gain": (0.7, 1.3)}, "pan and exposure": {"pan": (20, 0), "gain": (1.3, 0.7)}}
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle", "immunohistochemistry", "brick"]


@pytest.mark.parametrize("move", MOVES)
def test_a_moving_camera_is_not_a_cut(move):
    for name in PHOTOS:
        assert _cuts(_shot(_photo(name), 12, **MOVES[move])) == [], name


def test_the_sample_clip_and_the_synthetic_scene_have_no_cut():
    scene = SyntheticPortrait(SyntheticScene(*SIZE))
    assert _cuts(sample_frames()) == []
    assert _cuts(scene.render(t)[0] for t in range(0, 120, 2)) == []  # moving at twice its speed


def test_a_cut_between_shots_is_found_whatever_the_camera_does():
    moves = list(MOVES.values())
    for i, (a, b) in enumerate(itertools.permutations(PHOTOS, 2)):
        first = list(_shot(_photo(a), 4, seed=i, **moves[i % len(moves)]))
        second = list(_shot(_photo(b), 3, seed=i + 100, **moves[(3 * i + 1) % len(moves)]))
        assert _cuts(first + second) == [4], (a, b)


def test_a_cut_to_a_close_up_of_the_same_scene_and_to_black_and_back_are_cuts():
    astronaut = _photo("astronaut")
    wide = list(_shot(astronaut, 3, pan=(4, 0)))
    close = list(_shot(astronaut, 3, zoom=(2.5, 2.5), centre=(0.45, 0.25)))  # her face
    black = [np.zeros_like(wide[0])] * 2
    assert _cuts(wide + close + black + wide) == [3, 6, 8]
    assert _cuts([(frame * (1 - k / 8)).astype(np.uint8) for k, frame in enumerate(wide * 3)]) == []  # a fade out


def _portrait_then_coffee():
    """An astronaut shot (her face at disparity 0.6) cut to a coffee shot whose near region (0.8) lies
    away from where her face was: the face box held from the first shot reads the second one's wall."""
    first = list(sample_frames(12))
    face_shot = np.full(SIZE[::-1], 0.6, np.float32)
    face_shot[400:] = 0.95
    coffee = np.full(SIZE[::-1], 0.1, np.float32)
    coffee[240:, 320:] = 0.8
    return [(frame, face_shot) for frame in first] + [(frame, coffee) for frame in _shot(_photo("coffee"), 20)]


def test_at_a_cut_focus_goes_straight_to_the_new_shots_subject():
    controller = FocusController("auto", face_interval=3)  # the default preset's settings
    focus = [controller.update(image, disparity) for image, disparity in _portrait_then_coffee()]
    assert focus[:12] == pytest.approx([0.6] * 12)
    assert focus[12:] == pytest.approx([0.8] * 20)  # before: 0.48, 0.38 ... 0.11 (the held box), then back


def test_a_file_run_with_cuts_focuses_alike_every_time():
    frames = _portrait_then_coffee() + _portrait_then_coffee()
    runs = [[FocusController("auto", face_interval=3).update(*frame) for frame in frames] for _ in range(2)]
    assert runs[0] == runs[1]


def test_in_a_live_run_focus_snaps_to_the_new_shots_face_when_the_detection_comes_in():
    coffee = next(_shot(_photo("coffee"), 1))
    portrait = next(sample_frames(1))
    near = np.full(SIZE[::-1], 0.1, np.float32)
    near[240:, 320:] = 0.8
    face_shot = np.full(SIZE[::-1], 0.6, np.float32)
    face_shot[400:] = 0.95
    controller = FocusController("auto", face_interval=2, faces_in_background=True)
    try:
        for _ in range(5):
            assert controller.update(coffee, near) == pytest.approx(0.8)
        focus = [controller.update(portrait, face_shot)]  # the cut: nothing detected yet, the nearest region
        deadline = time.monotonic() + 10.0
        while focus[-1] == pytest.approx(0.95, abs=1e-3) and time.monotonic() < deadline:
            time.sleep(0.01)
            focus.append(controller.update(portrait, face_shot))
    finally:
        controller.close()
    assert focus[0] == pytest.approx(0.95, abs=1e-3)
    assert focus[-1] == pytest.approx(0.6)  # the face, at once: no focus pull from the fallback after a cut
    assert controller.update(portrait, face_shot) == pytest.approx(0.6)


def test_a_followed_point_across_a_cut_reads_the_new_shot_at_once():
    rng = np.random.default_rng(3)
    wall = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 1.5)
    on_subject = np.full((480, 640), 0.8, np.float32)
    controller = FocusController("auto", point=(320, 240), smoothing=0.25)
    for _ in range(5):
        assert controller.update(wall, on_subject) == pytest.approx(0.8)
    other_shot = next(_shot(_photo("motorcycle"), 1))
    there = np.full((480, 640), 0.3, np.float32)
    # before: the point was lost and focus held the last shot's 0.8 for half a second
    assert [controller.update(other_shot, there) for _ in range(3)] == pytest.approx([0.3] * 3)
    assert controller._tracker.lost_frames == 0 and controller._tracker.point == (320.0, 240.0)


def test_a_fixed_focus_stays_at_a_cut():
    controller = FocusController(0.4)
    for image, disparity in _portrait_then_coffee():
        assert controller.update(image, disparity) == pytest.approx(0.4)


def test_the_cut_test_reads_frames_of_any_size_and_a_change_of_size():
    cuts = SceneCuts()
    assert not cuts.is_cut(np.zeros((20, 30, 3), np.uint8))
    assert not cuts.is_cut(np.zeros((1080, 1920, 3), np.uint8))
    assert not cuts.is_cut(np.zeros((1, 700, 3), np.uint8))
