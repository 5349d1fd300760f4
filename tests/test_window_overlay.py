"""The preview window's `i` text and `p` pictures, at the sizes and in the folders users have."""
import errno
import os

import cv2
import numpy as np
import pytest

from stream import sinks
from stream.frame import Frame
from stream.sinks import WindowSink

PARTS = ["25.0 fps", "65 ms capture to display", "focus 0.62"]


def _with_info(width, height, level=128):
    window = WindowSink.__new__(WindowSink)  # the drawing alone: no window
    window._shown_at = [0, 40_000_000]
    image = np.full((height, width, 3), level, np.uint8)
    frame = Frame(index=0, capture_ns=0, image=image, output=image.copy(), focus=0.62)
    return window._with_text(frame.output, window._info_parts(frame, 65_000_000))  # the `i` text


@pytest.mark.parametrize("width,height", [(320, 240), (1080, 1920), (160, 120), (640, 480), (3840, 2160)])
def test_window_info_text_stays_inside_the_picture(width, height):
    # a 320x240 camera and a phone's upright 1080x1920 video: the one line ran off the right edge
    out = _with_info(width, height)
    margin = round(12 * max(0.4, height / 1000))  # the text keeps about its left margin on the right too
    assert (out[:, -margin:] == 128).all() and (out != 128).any()


def test_window_info_keeps_one_line_where_it_fits_else_a_part_a_line():
    assert WindowSink._info_layout(PARTS, 640, 480) == (0.48, [" | ".join(PARTS)])
    assert WindowSink._info_layout(PARTS, 3840, 2160) == (2.16, [" | ".join(PARTS)])
    assert WindowSink._info_layout(PARTS, 320, 240) == (0.4, PARTS)  # not smaller: a part a line fits
    assert WindowSink._info_layout(PARTS, 1080, 1920) == (1.92, PARTS)


@pytest.mark.parametrize("level", [0, 255])
def test_window_info_is_readable_on_dark_and_bright_pictures(level):
    corner = _with_info(320, 240, level)[:80]  # white text with a black outline: both show on either
    assert (corner.min(axis=2) > 200).sum() > 100 and (corner.max(axis=2) < 60).sum() > 100


def _window(monkeypatch):
    monkeypatch.setattr(sinks, "check_display", lambda fix=None: None)
    for name in ("namedWindow", "setMouseCallback", "imshow"):
        monkeypatch.setattr(cv2, name, lambda *a: None)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "waitKeyEx", lambda delay: ord("p"))
    told = []
    return WindowSink("t", None, 60, False, notify=told.append), told


def _frame():
    image = np.full((40, 60, 3), 200, np.uint8)
    return Frame(index=0, capture_ns=0, image=image, output=image.copy())


@pytest.mark.parametrize("error", [errno.EACCES, errno.ENOSPC])
def test_window_p_says_why_a_picture_could_not_be_saved(monkeypatch, tmp_path, error):
    # it said "(is the folder writable?)" whatever the cause, a full disk too
    window, told = _window(monkeypatch)
    monkeypatch.chdir(tmp_path)

    def refused(path, picture, metadata=None):
        raise OSError(error, os.strerror(error))  # as open() raises it

    monkeypatch.setattr(sinks, "write_image", refused)
    window.write(_frame())
    assert len(told) == 1 and told[0].startswith(f"could not save {tmp_path.resolve()}/depthcam_")
    assert f": {os.strerror(error)} (p saves into the current folder)" in told[0]
    assert not window.wants_stop  # the run goes on
