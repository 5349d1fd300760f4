"""Auto focus over time and with several people: a face crossing briskly stays in focus between detections, a group's
faces are all kept in the in-focus band, and a subject walking into the frame is focused on sooner.

The scenes paste scikit-image's astronaut (her head and shoulders, found by the real cascade) over its coffee photo,
with a synthetic disparity that moves with her: her head nearer than the room, her body nearer still."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from stream.config import RenderConfig
from stream.focus import FocusController
from stream.frame import Frame
from stream.stages import RenderStage

SIZE = (640, 480)
ROOM = 0.15  # the room's disparity


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


PERSON = _bgr(data.astronaut())[20:300, 120:330]  # her head and shoulders, 210 x 280; her face at (56, 46), 96 wide
FACE_AT = (56, 46, 96)


def _room() -> tuple[np.ndarray, np.ndarray]:
    image = cv2.resize(_bgr(data.coffee()), SIZE, interpolation=cv2.INTER_AREA)
    return image, np.full(SIZE[::-1], ROOM, np.float32)


def _paste(image: np.ndarray, depth: np.ndarray, left: int, top: int = 120, scale: float = 1.0, head: float = 0.7,
           body: float = 0.8) -> None:
    """The astronaut at (left, top), scaled, cut at the frame's sides; her head (an ellipse inside her face box) at
    `head`, her shoulders at `body`."""
    person = cv2.resize(PERSON, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    height, width = person.shape[:2]
    inside = slice(max(-left, 0), min(width, SIZE[0] - left))
    image[top:top + height, max(left, 0):left + width][:, :inside.stop - inside.start] = person[:, inside]
    depth[top + int(0.55 * height):top + height, max(left, 0):max(left + width, 0)] = body
    x, y, side = (round(v * scale) for v in FACE_AT)
    rows, columns = np.mgrid[:SIZE[1], :SIZE[0]]
    centre_x, centre_y = left + x + side / 2, top + y + side / 2
    depth[((columns - centre_x) / (0.35 * side)) ** 2 + ((rows - centre_y) / (0.5 * side)) ** 2 < 1] = head


def _crossing(left: int) -> tuple[np.ndarray, np.ndarray]:
    image, depth = _room()
    _paste(image, depth, left)
    return image, depth


def test_a_face_crossing_at_a_brisk_walk_stays_in_focus_between_detections():
    """24 px a frame (640 px in 0.9 s): the face box found at a detection was read unchanged for the next two frames,
    by which time her head had left its middle; focus went 0.70 -> 0.58 -> 0.49 every third frame (the explorer's clip:
    her body 4 to 22 levels of blur and back, 8 times a second)."""
    controller = FocusController("auto", face_interval=3)
    focus = []
    for i in range(18):
        image, depth = _crossing(20 + 24 * i)
        focus.append(controller.update(image, depth, i / 30))
    assert controller.last_face is not None  # the real cascade found her throughout
    assert max(abs(value - 0.7) for value in focus) < 0.02, np.round(focus, 3)


def test_a_face_walking_toward_the_camera_is_still_followed_between_detections():
    """Her head comes nearer by 0.0125 a frame (0.5 in 1.3 s): between detections the box's own value is taken, so
    focus keeps up (lagging only by its smoothing), and lands on her."""
    controller = FocusController("auto", face_interval=3)
    focus, head = [], []
    for i in range(50):
        head.append(min(0.4 + 0.0125 * i, 0.9))
        image, depth = _room()
        _paste(image, depth, 200, head=head[-1], body=min(head[-1] + 0.05, 1.0))
        focus.append(controller.update(image, depth, i / 30))
    lag = np.array(head) - np.array(focus)
    assert np.all(lag[1:] > 0) and lag.max() < 0.045  # the smoothing's steady lag: 0.0125 x 3
    assert focus[-1] == pytest.approx(0.9, abs=0.01)


def _stepped_after_two_detections(head_before: float, head_after: float):
    """A head (its body 0.05 nearer) at `head_before` through frames 0-3 (detections at 0 and 3), then moved to
    `head_after` in the same box: the controller, the frame and its depth for the frames after."""
    controller = FocusController("auto", face_interval=3)
    image, depth = _room()
    _paste(image, depth, 200, head=head_before, body=head_before + 0.05)
    for i in range(4):
        controller.update(image, depth, i / 30)
    _paste(image, depth, 200, head=head_after, body=head_after + 0.05)
    return controller, image, depth


def test_a_faces_real_step_nearer_between_detections_is_followed_at_once():
    """A head whose depth jumps by more than FACE_DEPTH_TOLERANCE in its box between detections still stands out of
    what is around it: it came nearer, and focus glides to it at once rather than holding to the next detection (a
    head that left its box leaves it flat, as in the test above)."""
    controller, image, depth = _stepped_after_two_detections(head_before=0.5, head_after=0.8)
    assert [controller.update(image, depth, i / 30) for i in (4, 5)] == pytest.approx([0.575, 0.63125])


def test_a_face_stepping_back_between_detections_is_taken_at_the_next_one():
    """The price of the hold: a fall of more than FACE_DEPTH_TOLERANCE reads as the head having left its box, so a
    head that really stepped back that far is held at its old depth up to the next detection (two frames at most)."""
    controller, image, depth = _stepped_after_two_detections(head_before=0.8, head_after=0.5)
    assert [controller.update(image, depth, i / 30) for i in (4, 5)] == pytest.approx([0.8, 0.8])
    assert controller.update(image, depth, 6 / 30) == pytest.approx(0.725)  # found again: glides to her


def _group() -> tuple[np.ndarray, np.ndarray]:
    """Two people of about one size: the nearer one's face 104 px wide at 0.7, the other's 94 px at 0.45."""
    image, depth = _room()
    _paste(image, depth, 10, head=0.7, body=0.8)
    _paste(image, depth, 380, top=140, scale=0.9, head=0.45, body=0.5)
    return image, depth


def _render_stage(band: float = 0.15, focus: str | float = "auto",
                  point: tuple[int, int] | None = None) -> RenderStage:
    config = RenderConfig(focus=focus, blur=12.0, focus_band=band, reference_height=SIZE[1])
    controller = FocusController(focus, point=point, face_interval=3)
    return RenderStage(config, controller, "cpu")


def _render(stage: RenderStage, image: np.ndarray, depth: np.ndarray, frames: int = 4) -> Frame:
    for index in range(frames):
        frame = Frame(index=index, capture_ns=0, image=image, refined=depth, pts_seconds=index / 30)
        stage.process([frame])
    return frame


def _change_on_head(frame: Frame, depth: np.ndarray, head: float) -> float:
    where = np.abs(depth - head) < 1e-6
    return float(np.abs(frame.output[where].astype(int) - frame.image[where]).mean())


def test_both_faces_of_a_group_are_rendered_sharp_and_the_room_keeps_blur():
    """Focused on the larger face alone (0.7, band 0.15), the other's (0.45) came out blurred (the explorer's group:
    9.6-10.8 levels); the band now reaches both, and the room behind (0.15) is still blurred."""
    image, depth = _group()
    stage = _render_stage()
    frame = _render(stage, image, depth)
    stage.close()
    assert stage.focus.detected and len(stage.focus.detected) == 2  # the cascade found both
    assert frame.focus == pytest.approx(0.7)  # focus (the renderer's plane) stays on the followed face
    assert _change_on_head(frame, depth, 0.7) == 0.0
    assert _change_on_head(frame, depth, 0.45) == 0.0
    assert stage.focus.widen == pytest.approx((0.25, 0.0))
    room = (depth == ROOM) & (cv2.blur(depth, (41, 41)) == ROOM)  # 20 px clear of both people
    assert float(np.abs(frame.output[room].astype(int) - image[room]).mean()) > 5


def test_a_much_smaller_face_is_left_to_its_depth():
    """Someone far back (a face under GROUP_SIZE of the largest's width) does not widen the band."""
    image, depth = _room()
    stage = _render_stage()
    controller = stage.focus
    found = iter([[(100, 100, 100, 100), (450, 150, 45, 45)]] * 4)
    controller._faces.faces = lambda frame: next(found, [])
    depth[120:180, 125:175] = 0.7
    depth[160:185, 460:485] = 0.45
    for i in range(4):
        controller.update(image, depth, i / 30)
    assert controller.detected == ((100, 100, 100, 100), (450, 150, 45, 45))
    assert controller.widen == (0.0, 0.0)
    stage.close()


@pytest.mark.parametrize("mode", ["fixed", "point", "band 0"])
def test_an_explicit_focus_or_band_zero_keeps_one_plane(mode):
    """A fixed focus or a tapped point follows no faces: nothing is widened; band 0 is the thin lens, the group's
    widening ignored."""
    image, depth = _group()
    stage = {"fixed": lambda: _render_stage(focus=0.7), "point": lambda: _render_stage(point=(130, 230)),
             "band 0": lambda: _render_stage(band=0.0)}[mode]()
    frame = _render(stage, image, depth)
    stage.close()
    assert stage.focus.widen == ((0.25, 0.0) if mode == "band 0" else (0.0, 0.0))
    assert frame.focus == pytest.approx(0.7)
    assert _change_on_head(frame, depth, 0.45) > 3  # the other face blurred as its depth says


def test_the_group_s_widening_is_smoothed_like_the_focus_and_goes_when_the_face_does():
    image, depth = _group()
    controller = FocusController("auto", face_interval=3)
    found = iter([[(66, 166, 96, 96)]] * 2 + [[(66, 166, 96, 96), (430, 181, 86, 86)]] * 3)
    controller._faces.faces = lambda frame: next(found, [])
    widen = []
    for i in range(12):
        controller.update(image, depth, i / 30)
        widen.append(controller.widen[0])
    assert widen[:6] == [0.0] * 6  # the second face first found at frame 6: glided to, as focus is
    assert 0.0 < widen[6] < widen[7] < widen[8] < 0.25
    assert widen[-1] == pytest.approx(0.25, abs=0.05)
    controller.auto()  # the mode changed: the faces from before are forgotten, and the band narrows
    image, depth = _room()
    for i in range(12, 40):
        controller.update(image, depth, i / 30)
    assert controller.widen[0] < 0.01


def _walking_in(frames: int, pan: int = 0) -> list[float]:
    """Focus without a face found (the detector scripted to find none): a room with something in its middle at 0.45,
    and from frame 10 the astronaut walking in over the right side at 16 px a frame (head 0.85, body 0.9). With `pan`,
    the middle's thing moves by that many px a frame (the camera pans)."""
    controller = FocusController("auto", face_interval=3)
    controller._faces.faces = lambda frame: []
    focus = []
    for i in range(frames):
        image, depth = _room()
        depth[200:420, 260 + pan * i:380 + pan * i] = 0.45
        if i >= 10:
            _paste(image, depth, SIZE[0] - 16 * (i - 9), head=0.85, body=0.9)
        focus.append(controller.update(image, depth, i / 30))
    return focus


def test_a_subject_walking_in_over_a_side_takes_focus_at_once():
    """She counted only once she neared the middle: focus stayed on the room's thing (0.45) until frame 19 (she was
    150 px in) and glided to her over 0.4 s more. Now she is taken as she comes in, snapped to."""
    focus = _walking_in(30)
    assert focus[:12] == pytest.approx([0.45] * 12)
    assert min(focus[15:]) > 0.85, np.round(focus, 3)  # from 96 px in (15 % of the width)


def test_a_pan_that_brings_a_near_region_in_at_a_side_does_not_take_focus():
    """Where the middle moves too (the camera pans), what comes in at a side is no newcomer: the side weighting's pick
    as ever (the thing in the middle while she is at the side)."""
    focus = _walking_in(16, pan=8)
    assert focus == pytest.approx([0.45] * 16)


def test_a_near_region_at_a_side_from_the_start_is_not_a_newcomer():
    depth = np.full(SIZE[::-1], 0.05, np.float32)
    depth[:, :64] = 0.97  # a gantry at the left edge, there all along
    depth[100:400, 280:360] = 0.5
    controller = FocusController("auto", face_interval=3)
    grey = np.full((*SIZE[::-1], 3), 128, np.uint8)
    assert [controller.update(grey, depth, i / 30) for i in range(12)] == pytest.approx([0.5] * 12)


def test_a_subject_stepping_nearer_in_the_middle_glides_as_does_a_one_frame_flip():
    """Without a face, only a region that walked in over a side is snapped to (the walking-in test above): a pick
    stepping nearer in the middle glides, for one frame or for good (tests/test_focus_fixes27.py)."""
    controller = FocusController("auto", face_interval=3)
    grey = np.full((*SIZE[::-1], 3), 128, np.uint8)
    depth = np.full(SIZE[::-1], 0.1, np.float32)
    depth[150:400, 250:390] = 0.3
    focus = [controller.update(grey, depth, i / 30) for i in range(4)]
    depth[150:400, 250:390] = 0.8  # for one frame
    focus.append(controller.update(grey, depth, 4 / 30))
    depth[150:400, 250:390] = 0.3
    focus.append(controller.update(grey, depth, 5 / 30))
    assert focus == pytest.approx([0.3] * 4 + [0.425, 0.39375])
    depth[150:400, 250:390] = 0.8  # someone steps in for good
    focus += [controller.update(grey, depth, i / 30) for i in range(6, 9)]
    assert focus[6:] == pytest.approx([0.49531, 0.57148, 0.62861], abs=1e-4)


def test_a_group_member_missed_by_later_detections_is_held_while_her_depth_stays():
    """The fine pass, which finds a face under an eighth of the frame's width, looks only now and then: later
    detections found only the largest face, and the band narrowed from the fourth frame on (the explorer's group).
    A member is held while the depth in her box stays; once she has left it, the band narrows."""
    image, depth = _group()
    controller = FocusController("auto", face_interval=3)
    found = iter([[(66, 166, 96, 96), (430, 181, 86, 86)]] + [[(66, 166, 96, 96)]] * 20)
    controller._faces.faces = lambda frame: next(found, [])
    for i in range(30):
        controller.update(image, depth, i / 30)
    assert controller.widen == pytest.approx((0.25, 0.0))
    depth[181:267, 430:516] = ROOM  # she walked off
    for i in range(30, 60):
        controller.update(image, depth, i / 30)
    assert controller.widen[0] < 0.01
