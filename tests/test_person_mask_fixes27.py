"""refine.person_mask, now on by default: an object the selfie model takes for part of the person (a motorcycle's tank
beside her suit, a picture linked through it) is not raised to her depth when the depth map puts it clearly behind
her; her head, her hair and her outline still are. And a file run's gate finds the 80-90 px faces the focus follows.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.segmentation import CORE_REACH, FusionSettings, fuse_person, person_targets

SHAPE = (256, 256)  # the model's cells; the boxes below are in a 640x480 frame's pixels
FRAME_SIZE = (640, 480)
BACKGROUND, BODY, HEAD = 0.2, 0.8, 0.6  # the network often puts a head (a helmet) farther than the body
BODY_CENTRE, BODY_RADIUS = (170, 80), 55
HEAD_CENTRE, HEAD_RADIUS = (75, 80), 22
HAIR = 5  # cells of hair round the head: the model's probability 0.7, the network's depth the background's
NECK_ROWS, NECK_COLS = slice(95, 120), slice(70, 91)
# touching her right side, as sure as she is, smaller than her (her depth is still the median of the part's core)
OBJECT_ROWS, OBJECT_COLS = slice(140, 200), slice(125, 235)


def disc(centre: tuple[int, int], radius: float) -> np.ndarray:
    rows, cols = np.indices(SHAPE)
    return np.hypot(rows - centre[0], cols - centre[1]) <= radius


def scene(with_object: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(disparity, probability) at the model's size: a body, a head farther than the body with hair round it, and a
    large object touching her side at the background's depth."""
    probability = np.zeros(SHAPE, np.float32)
    disparity = np.full(SHAPE, BACKGROUND, np.float32)
    hair = disc(HEAD_CENTRE, HEAD_RADIUS + HAIR)
    probability[hair] = 0.7
    body, head = disc(BODY_CENTRE, BODY_RADIUS), disc(HEAD_CENTRE, HEAD_RADIUS)
    probability[body | head] = 1.0
    disparity[body], disparity[head] = BODY, HEAD
    probability[NECK_ROWS, NECK_COLS], disparity[NECK_ROWS, NECK_COLS] = 1.0, BODY
    if with_object:
        probability[OBJECT_ROWS, OBJECT_COLS] = 1.0  # the object is in the model's core: its probability says nothing
    return disparity, probability


def face_box() -> list[tuple[int, int, int, int]]:
    """The face's box in the frame's pixels, about the head's centre (a face is narrower than the head)."""
    sx, sy = FRAME_SIZE[0] / SHAPE[1], FRAME_SIZE[1] / SHAPE[0]
    half = 15  # cells
    return [(round((HEAD_CENTRE[1] - half) * sx), round((HEAD_CENTRE[0] - half) * sy), round(2 * half * sx),
             round(2 * half * sy))]


def test_an_object_touching_the_person_and_far_behind_her_keeps_its_depth():
    """Old code: the whole connected part, object included, got her median (0.8): the object came out sharp."""
    disparity, probability = scene()
    targets = person_targets(disparity, probability, faces=face_box(), frame_size=FRAME_SIZE)
    body_target = targets[BODY_CENTRE]
    assert body_target == np.float32(BODY)
    object_cells = np.zeros(SHAPE, bool)
    object_cells[OBJECT_ROWS, OBJECT_COLS] = True
    object_cells &= ~disc(BODY_CENTRE, BODY_RADIUS)
    raised = object_cells & (targets > 0)
    assert targets[170, 220] == 0 and targets[145, 230] == 0  # its far part: not raised
    # only a band next to her, within CORE_REACH of her body's core, is (her outline: the network misses it there)
    beside = disc(BODY_CENTRE, BODY_RADIUS + CORE_REACH + 1)
    assert raised.any() and not (raised & ~beside).any()
    assert raised.sum() < 0.15 * object_cells.sum()
    fused = fuse_person(disparity, probability, targets)
    assert np.all(fused[object_cells & ~beside] == disparity[object_cells & ~beside])


def test_her_head_and_hair_are_raised_though_the_network_puts_them_far_behind_her_body():
    """The head 0.2 behind the body and the hair at the background's depth: raised to her depth (the mask's point)."""
    disparity, probability = scene()
    targets = person_targets(disparity, probability, faces=face_box(), frame_size=FRAME_SIZE)
    head_and_hair = disc(HEAD_CENTRE, HEAD_RADIUS + HAIR)
    assert np.all(targets[head_and_hair] == np.float32(BODY))
    fused = fuse_person(disparity, probability, targets)
    hair_cell = (HEAD_CENTRE[0], HEAD_CENTRE[1] + HEAD_RADIUS + HAIR - 1)
    assert fused[hair_cell] > disparity[hair_cell] + 0.2  # raised by the hair's weight (probability 0.7: a half)


def test_without_an_object_the_targets_are_the_whole_person_s():
    """Nothing clearly behind and far from her core: the targets are as before the rule (every cell of her part)."""
    disparity, probability = scene(with_object=False)
    targets = person_targets(disparity, probability, faces=face_box(), frame_size=FRAME_SIZE)
    everything = person_targets(disparity, probability, FusionSettings(behind_margin=np.inf), faces=face_box(),
                                frame_size=FRAME_SIZE)
    np.testing.assert_array_equal(targets, everything)
    assert np.all(targets[probability >= 0.5] == np.float32(BODY))


def test_without_face_boxes_an_object_far_behind_keeps_its_depth_too():
    """A synthetic mask without faces (every part a person): the object's far part is left alone as well."""
    disparity, probability = scene()
    targets = person_targets(disparity, probability)
    assert targets[BODY_CENTRE] == np.float32(BODY) and targets[170, 220] == 0


@pytest.mark.parametrize("background", ["brick", "rocket"])
def test_a_file_runs_gate_finds_a_face_of_80_px_the_coarse_pass_misses(background):
    """The gate's first look had no fine pass (before 3d02daa): on clips where the auto focus followed a face of
    82-92 px (a person 400 px high in a 640x480 frame on a brick wall, coffee, a room), the gate found none and the
    mask was a silent no-op. The astronaut 420 px high here: her face about 80 px, missed by the coarse pass."""
    from skimage import data

    from models.segmentation import FaceGate
    from stream.faces import FaceFinder

    picture = getattr(data, background)()
    picture = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR if picture.ndim == 3 else cv2.COLOR_GRAY2BGR)
    frame = cv2.resize(picture, (640, 480), interpolation=cv2.INTER_AREA)
    frame[60:, 100:520] = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (420, 420),
                                     interpolation=cv2.INTER_AREA)
    coarse = FaceFinder(fine_every=0)
    assert coarse.detect_all(coarse.prepare(frame, inline=True)) == []
    faces = FaceGate()(frame)
    assert len(faces) == 1
    x, y, w, h = faces[0]
    assert 70 <= w <= 95 and 240 <= x + w / 2 <= 330 and 110 <= y + h / 2 <= 200  # her face
