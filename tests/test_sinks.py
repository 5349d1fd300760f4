"""Sinks: output types, side-by-side pictures, and clear refusals where a device is missing."""
import sys
from pathlib import Path

import numpy as np
import pytest

from stream.errors import UserError
from stream.frame import Frame
from stream.sinks import ImageSink, NullSink, colourise, compose, make_sink, output_kind


def _frame():
    image = np.full((40, 60, 3), 100, np.uint8)
    frame = Frame(index=0, capture_ns=0, image=image)
    frame.output = np.full_like(image, 200)
    frame.refined = np.tile(np.linspace(0, 1, 60, dtype=np.float32), (40, 1))
    return frame


def test_output_kinds():
    assert output_kind("out.mp4") == "video" and output_kind("x.webm") == "video"
    assert output_kind("a.png") == "image"
    assert output_kind("null") == "null" and output_kind("window") == "window"
    with pytest.raises(UserError, match="unknown output type"):
        output_kind("result.txt")


def test_side_by_side_is_input_output_depth():
    frame = _frame()
    picture = compose(frame, side_by_side=True)
    assert picture.shape == (40, 180, 3)
    assert (picture[:, :60] == 100).all() and (picture[:, 60:120] == 200).all()
    np.testing.assert_array_equal(picture[:, 120:], colourise(frame.refined))
    assert compose(frame, side_by_side=False) is frame.output


def test_colourise_maps_near_to_bright():
    ramp = colourise(np.array([[0.0, 1.0]], np.float32))
    assert ramp[0, 1].sum() > ramp[0, 0].sum()


def test_image_sink_writes_the_render(tmp_path):
    import cv2

    sink = ImageSink(tmp_path / "sub" / "out.png", lambda f: compose(f, False))
    sink.write(_frame())
    assert (cv2.imread(str(tmp_path / "sub" / "out.png")) == 200).all()


def test_window_without_a_display_is_refused_clearly(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("the DISPLAY check is for Linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(UserError, match="no display"):
        make_sink("window", width=64, height=48, fps=30, audio_from=None, side_by_side=False, save_depth=None,
                  controls=None)


def test_window_on_a_display_that_does_not_answer_is_refused_clearly(monkeypatch, tmp_path):
    # A stale DISPLAY (an SSH session's, a stopped X server): OpenCV's Qt would abort the process.
    if not sys.platform.startswith("linux"):
        pytest.skip("the DISPLAY check is for Linux")
    unused = next(n for n in range(917, 999) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    monkeypatch.setenv("DISPLAY", f":{unused}")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(UserError, match=f"cannot open a preview window on display ':{unused}'"):
        make_sink("window", width=64, height=48, fps=30, audio_from=None, side_by_side=False, save_depth=None,
                  controls=None)


def test_virtual_camera_says_what_is_missing():
    try:
        import pyvirtualcam  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match="pyvirtualcam"):
            make_sink("vcam", width=64, height=48, fps=30, audio_from=None, side_by_side=False, save_depth=None,
                      controls=None)
    else:
        pytest.skip("pyvirtualcam is installed; whether a device exists depends on the machine")


def test_depth_video_needs_a_video_name(tmp_path):
    with pytest.raises(UserError, match="save-depth"):
        make_sink("null", width=64, height=48, fps=30, audio_from=None, side_by_side=False,
                  save_depth=str(tmp_path / "depth.png"), controls=None)


def test_null_sink_counts():
    sink = NullSink()
    sink.write(_frame())
    sink.write(_frame())
    assert sink.count == 2
