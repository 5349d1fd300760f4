"""A fix to session 27's focus changes: without a face, only a subject walking in over a side is snapped to; any other
jump of the pick (the network's depth flipping on a textured wall, something nearer in the middle, a hand rising at a
side) glides, as before."""
from __future__ import annotations

import numpy as np
import pytest

from stream.focus import FocusController
from tests.test_focus_motion27 import SIZE, _room, _walking_in

GREY = np.full((*SIZE[::-1], 3), 128, np.uint8)


def _faceless() -> FocusController:
    """A file run's controller whose detector finds no face."""
    controller = FocusController("auto", face_interval=3)
    controller._faces.faces = lambda frame: []
    return controller


def test_the_pick_without_a_face_stepping_nearer_in_the_middle_glides():
    """The snap was made for a subject walking in over a side; on any jump of the pick (the network's depth flipping
    as a brick wall panned, something nearer in the middle) the whole scene popped out of focus in one frame."""
    controller = _faceless()
    depth = np.full(SIZE[::-1], 0.1, np.float32)
    depth[150:400, 250:390] = 0.3
    focus = [controller.update(GREY, depth, i / 30) for i in range(4)]
    depth[150:400, 250:390] = 0.8
    focus += [controller.update(GREY, depth, i / 30) for i in range(4, 8)]
    assert focus[:4] == pytest.approx([0.3] * 4)
    assert focus[4:] == pytest.approx([0.8 - 0.5 * 0.75 ** k for k in range(1, 5)])  # smoothing 0.25 a frame


def test_the_whole_map_flipping_nearer_glides():
    """The brick wall's pan: the network put the whole wall 0.35 nearer from one frame on."""
    controller = _faceless()
    rows = np.linspace(0.3, 0.6, SIZE[1], dtype=np.float32)[:, None]
    depth = np.repeat(rows, SIZE[0], axis=1)
    first = [controller.update(GREY, depth, i / 30) for i in range(6)]
    later = [controller.update(GREY, depth + 0.35, i / 30) for i in range(6, 9)]
    assert first[-1] + 0.35 - later[1] > 0.1, np.round(later, 3)  # still gliding two frames on


def test_a_subject_walking_in_over_a_side_is_still_snapped_to():
    focus = _walking_in(30)
    jumps = np.diff(focus)
    assert jumps.max() > 0.3  # one frame's snap to her (0.56 -> 0.9), not a glide's steps (0.11 at most here)
    assert min(focus[15:]) > 0.85


def test_a_hand_rising_at_a_side_is_taken_gliding():
    """A hand coming up from the bottom at a side moves in upward (what came nearer since the last frame is wider than
    tall): it is still taken (the walk-in rule), but glided to, as before session 27 (the explorer's empty_hand: the
    garage's blur jumped 8.3 -> 14.7 levels in one frame)."""
    controller = _faceless()
    focus = []
    for i in range(24):
        image, depth = _room()
        depth[200:420, 260:380] = 0.45
        rise = min(max(i - 8, 0), 10) * 22  # 22 px a frame from frame 9, up to 220 px (the frame's lower half)
        depth[SIZE[1] - rise:, SIZE[0] - 100:] = 0.9
        focus.append(controller.update(image, depth, i / 30))
    assert focus[:9] == pytest.approx([0.45] * 9)
    assert np.diff(focus).max() < 0.15, np.round(focus, 3)  # glide steps: a quarter of the way a frame
    assert max(focus) > 0.85  # taken while it comes in (then left to the side weighting, as ever)


def test_a_new_frame_size_without_a_cut_compares_no_grids_of_the_old_size():
    """The walk-in rule compares this frame's depth grid with those of the last frames: a map of another size (a
    Python caller's, a source changing size) raised there (shapes that do not broadcast)."""
    import numpy as np

    from stream.focus import FocusController

    controller = FocusController("auto", face_interval=1000)
    picture = np.full((480, 640, 3), 90, np.uint8)
    for index in range(6):
        controller.update(picture, np.full((480, 640), 0.4, np.float32), index / 30)
    wide = np.full((360, 640, 3), 90, np.uint8)  # the same grey: no cut is seen
    for index in range(6, 12):
        focus = controller.update(wide, np.full((360, 640), 0.6, np.float32), index / 30)
    assert 0.4 < focus <= 0.6
