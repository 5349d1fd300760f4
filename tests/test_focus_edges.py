"""A tapped point on the frame's edge or corner (--focus-point 639,479) is followed as the picture moves."""
import pytest

from stream.tracking import PointTracker
from test_focus_cuts import _photo, _shot


@pytest.mark.parametrize("photo", ["coffee", "motorcycle"])
@pytest.mark.parametrize("point", [(639, 479), (320, 479), (639, 240)])
def test_a_point_on_the_frames_edge_is_followed_as_the_picture_moves_in(photo, point):
    tracker = PointTracker(point)
    for image in _shot(_photo(photo), 12, pan=(4, 3)):  # the picture moves left and up by 4, 3 px a frame
        x, y = tracker.follow(image)
    # before: half of its patch outside the frame, it was lost from the first frame and stayed at the corner
    assert tracker.lost_frames == 0
    assert abs(x - (point[0] - 44)) <= 12 and abs(y - (point[1] - 33)) <= 12


def test_a_point_whose_picture_leaves_the_frame_is_held_where_it_was():
    tracker = PointTracker((0, 479))
    for image in _shot(_photo("coffee"), 6, pan=(4, 3)):  # what was at the bottom left corner has left
        where = tracker.follow(image)
    assert where == (0, 479) and tracker.lost_frames == 5
