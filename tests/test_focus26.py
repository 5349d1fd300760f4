"""Auto focus lands on the subject: without a face not on the floor or a side's near edge, a small face found, a
false face on a wall left alone, and a file's first face snapped to rather than glided to."""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import pytest
from skimage import data

from stream.faces import FaceFinder
from stream.focus import (FINE_EAGER_FILE, FINE_EVERY_FILE, FINE_EVERY_LIVE, FocusController, real_faces,
                          subject_disparity)
from stream.synthetic import SyntheticPortrait, SyntheticScene

SIZE = (640, 480)


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def nearest_large_region(disparity: np.ndarray, area_fraction: float = 0.05) -> float:
    """Auto focus's rule without a face before session 26, kept as these tests' "before": the median of the nearest
    `area_fraction` of the frame, read on a grid of about 20,000 points."""
    step = max(1, int((disparity.size / 20_000) ** 0.5))
    sample = disparity[step // 2::step, step // 2::step]
    threshold = float(np.quantile(sample, 1.0 - area_fraction))
    return float(np.median(sample[sample >= threshold]))


def _room_with_floor(subject: float = 0.6) -> np.ndarray:
    """A wall at 0.1 and a floor rising steadily from it at half the height to 1.0 at the bottom row, with a box on
    the floor in the middle (a motorcycle in a garage, a cup on a table) at `subject`."""
    width, height = SIZE
    rows = np.arange(height, dtype=np.float32)[:, None]
    floor = 0.1 + 0.9 * np.clip((rows - height / 2) / (height / 2 - 1), 0.0, 1.0)
    depth = np.broadcast_to(floor, (height, width)).copy()
    depth[180:330, 250:390] = subject
    return depth


def test_without_a_face_focus_leaves_a_floor_that_runs_to_the_bottom_edge():
    """Before: the nearest 5 % of the frame, the floor's front (0.97), and the box on it blurred."""
    depth = _room_with_floor()
    assert nearest_large_region(depth) > 0.95  # what focus took before
    grey = np.full((*SIZE[::-1], 3), 128, np.uint8)  # no face to find
    assert FocusController("auto").update(grey, depth) == pytest.approx(0.6, abs=0.01)


def test_a_near_object_at_the_bottom_that_is_no_floor_is_still_taken():
    """A step, not a steady rise: something held up to the camera along the bottom is still the nearest subject."""
    depth = np.full(SIZE[::-1], 0.2, np.float32)
    depth[400:] = 0.9
    assert subject_disparity(depth) == pytest.approx(0.9)


def test_a_near_edge_at_the_frames_side_weighs_less_than_the_middle():
    """The rocket between its gantries: a near strip at a side took focus from the subject in the middle."""
    depth = np.full(SIZE[::-1], 0.05, np.float32)
    depth[:, :64] = 0.97  # a gantry: 10 % of the frame, at its left edge
    depth[100:400, 280:360] = 0.5  # the rocket: 8 %
    assert nearest_large_region(depth) == pytest.approx(0.97)
    assert subject_disparity(depth) == pytest.approx(0.5)


def test_a_cat_without_a_face_found_is_focused_on_its_eyes_not_its_chin(shared_models):
    """scikit-image's chelsea through the depth network: the nearest 5 % is her chin and chest along the bottom
    (0.99); her eyes are at about 0.85."""
    import kernels
    import models

    spec, path = models.resolve_model("tcmonodepth", progress=False)
    estimator = models.DepthEstimator(spec, path, "cpu")
    image = _bgr(data.chelsea())
    disparity = models.DisparityNormaliser()(estimator.to_disparity(estimator.predict([image])[0]))
    refined = kernels.refine_live(disparity, image)
    eyes = float(np.median(refined[80:170, 130:350]))
    assert nearest_large_region(refined) - eyes > 0.1
    assert abs(FocusController("auto").update(image, refined) - eyes) < 0.05


def _small_face_frame(scale: float) -> np.ndarray:
    """The astronaut shrunk by `scale` (her face 96 px wide at 1) on scikit-image's coffee at 640x480."""
    frame = cv2.resize(_bgr(data.coffee()), SIZE, interpolation=cv2.INTER_AREA)
    person = cv2.resize(_bgr(data.astronaut()), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = person.shape[:2]
    frame[480 - h:, 120:120 + w] = person
    return frame


@pytest.mark.parametrize("scale", [0.7, 0.55])
def test_a_face_under_a_tenth_of_the_frames_width_is_found(scale):
    """Faces of 67 and 53 px in a 640 px frame: the 320 px pass at 12 % of the width found neither."""
    frame = _small_face_frame(scale)
    faces = FaceFinder(fine_every=1).faces(frame)
    assert len(faces) == 1
    x, y, w, h = faces[0]
    face_x, face_y = 120 + scale * 224, 480 - 512 * scale + scale * 114  # her face's centre in the frame
    assert abs(x + w / 2 - face_x) < w / 3 and abs(y + h / 2 - face_y) < h / 3


def test_a_face_in_a_160x120_frame_is_found():
    frame = cv2.resize(_small_face_frame(0.9), (160, 120), interpolation=cv2.INTER_AREA)
    assert len(FaceFinder(fine_every=1).faces(frame)) == 1


def _watch_frontal_passes(finder: FaceFinder, counted: Callable[[np.ndarray], bool]) -> list[int]:
    """The numbers of the detections (calls of faces) at which the frontal cascade looked at a grey picture that
    `counted` picks out (filled in as the finder detects)."""
    looked, calls = [], []
    frontal, faces = finder._frontal, finder.faces

    def counted_frontal(grey, smallest, neighbours=5):
        if counted(grey):
            looked.append(len(calls) - 1)
        return frontal(grey, smallest, neighbours)

    def counted_faces(image):
        calls.append(1)
        return faces(image)

    finder._frontal, finder.faces = counted_frontal, counted_faces
    return looked


def _watch_fine_passes(finder: FaceFinder) -> list[int]:
    """The numbers of the detections at which the fine (640 px) pass looked at the whole frame."""
    return _watch_frontal_passes(finder, lambda grey: grey.shape[1] == 640)


def _fine_passes(finder: FaceFinder, frame: np.ndarray, detections: int) -> list[int]:
    looked = _watch_fine_passes(finder)
    for _ in range(detections):
        finder.faces(frame)
    return looked


def test_the_fine_pass_looks_at_every_fifth_detection_a_files_at_each_of_a_shots_first_ten():
    faceless = cv2.resize(_bgr(data.coffee()), SIZE, interpolation=cv2.INTER_AREA)
    assert _fine_passes(FaceFinder(fine_every=5), faceless, 11) == [0, 5, 10]
    assert _fine_passes(FaceFinder(fine_every=5, fine_eager=3), faceless, 12) == [0, 1, 2, 7]
    live = FocusController("auto", faces_in_background=True)
    try:
        assert (live._faces.fine_every, live._faces.fine_eager) == (FINE_EVERY_LIVE, 0)
    finally:
        live.close()
    files = FocusController("auto")._faces
    assert (files.fine_every, files.fine_eager) == (FINE_EVERY_FILE, FINE_EAGER_FILE)


def test_a_file_runs_fine_pass_looks_closely_again_after_a_cut():
    coffee = cv2.resize(_bgr(data.coffee()), SIZE, interpolation=cv2.INTER_AREA)
    rocket = cv2.resize(_bgr(data.rocket()), SIZE, interpolation=cv2.INTER_AREA)
    depth = np.full(SIZE[::-1], 0.5, np.float32)
    controller = FocusController("auto", face_interval=1)
    looked = _watch_fine_passes(controller._faces)
    for image in [coffee] * 15 + [rocket] * 5:
        controller.update(image, depth)
    # each of a shot's first FINE_EAGER_FILE (4) detections, none at 4-14: the next after them would be at 23
    assert looked == [*range(FINE_EAGER_FILE), *range(15, 15 + FINE_EAGER_FILE)]
    assert FINE_EAGER_FILE - 1 + FINE_EVERY_FILE > 19


def test_a_found_small_face_is_looked_for_around_itself_not_in_the_whole_frame():
    frame = _small_face_frame(0.55)
    finder = FaceFinder(fine_every=FINE_EVERY_LIVE)
    assert _fine_passes(finder, frame, 4) == [0]  # then in a crop around it
    assert len(finder.faces(frame)) == 1


def test_a_false_face_on_the_wall_does_not_take_focus_off_the_subject():
    """The synthetic scene: the cascade boxes a wall panel at frames 65-68; trusted, focus went to the wall (0.12)
    for half a second while the subject (0.85-0.93) was blurred."""
    portrait = SyntheticPortrait(SyntheticScene())
    controller = FocusController("auto", face_interval=3)
    focus = []
    for t in range(54, 90):
        image, disparity = portrait.render(t)
        focus.append(controller.update(image, disparity, t / 30))
    assert min(focus) > 0.8


def test_a_face_box_is_dropped_only_where_the_depth_says_no_head_is_there():
    depth = np.full(SIZE[::-1], 0.1, np.float32)
    depth[150:480, 80:300] = 0.9  # the subject
    wall_face = (400, 100, 100, 100)  # a pattern on the wall behind
    assert real_faces([wall_face], depth) == []
    depth[110:190, 410:490] = 0.5  # a head there after all, nearer than the wall around it
    assert real_faces([wall_face], depth) == [wall_face]
    flat = np.full(SIZE[::-1], 0.6, np.float32)  # a face on a flat map, no nearer subject: kept
    assert real_faces([wall_face], flat) == [wall_face]


def _scripted(controller: FocusController, detections: list[list[tuple[int, int, int, int]]]) -> None:
    found = iter(detections)
    controller._faces.faces = lambda image: next(found, [])


def _face_scene() -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    image = np.zeros((*SIZE[::-1], 3), np.uint8)
    depth = np.full(SIZE[::-1], 0.2, np.float32)
    depth[400:] = 0.95  # the fallback's pick
    face = (270, 100, 100, 100)
    depth[100:200, 270:370] = 0.6
    return image, depth, face


def test_a_file_run_snaps_to_the_shots_first_face_found_early():
    """The first detection misses the face (frame 0), the next finds it (frame 3): focus was on the fallback (0.95)
    and glided to the face (0.6) over half a second; now it snaps to it there, and glides as ever after."""
    image, depth, face = _face_scene()
    controller = FocusController("auto", face_interval=3)
    _scripted(controller, [[], [face], [face], [face]])
    focus = [controller.update(image, depth, i / 30) for i in range(6)]
    assert focus[:3] == pytest.approx([0.95] * 3)
    assert focus[3:] == pytest.approx([0.6] * 3)
    depth[100:200, 270:370] = 0.8  # she leans in: a glide
    assert controller.update(image, depth, 6 / 30) == pytest.approx(0.65)


def test_a_face_found_late_in_a_shot_is_glided_to():
    image, depth, face = _face_scene()
    controller = FocusController("auto", face_interval=3)
    _scripted(controller, [[]] * 7 + [[face]] * 5)  # found at frame 21, 0.7 s in
    focus = [controller.update(image, depth, i / 30) for i in range(24)]
    assert focus[20] == pytest.approx(0.95)
    assert 0.6 < focus[21] < 0.9


def face_found_live(frame: np.ndarray, depth: np.ndarray) -> tuple[int, int, int, int] | None:
    """The face a live run's auto focus (its detector on a thread of its own) follows once it found one in the same
    frame shown over and over, within 10 s; None where it found none."""
    import time

    controller = FocusController("auto", face_interval=3, faces_in_background=True)
    try:
        deadline = time.monotonic() + 10.0
        while controller.last_face is None and time.monotonic() < deadline:
            controller.update(frame, depth)
            time.sleep(0.02)
        return controller.last_face
    finally:
        controller.close()


def test_a_live_run_finds_a_small_face_on_the_detectors_thread():
    depth = np.full(SIZE[::-1], 0.2, np.float32)
    depth[200:, 150:350] = 0.8  # her head and body, nearer than the room
    face = face_found_live(_small_face_frame(0.55), depth)
    assert face is not None and face[2] < 0.1 * SIZE[0]
