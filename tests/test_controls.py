"""The preview window's controls: a click focuses there, a returns to auto focus, + and - change the blur."""
import numpy as np

from stream.config import load_config
from stream.controls import BLUR_STEP, LiveControls
from stream.focus import FocusController


def _controls(height=480):
    render = load_config("default", {"render.focus": "auto"}).render
    return LiveControls(FocusController("auto"), render, height), render


def test_a_click_focuses_there_and_a_returns_to_auto():
    controls, _ = _controls()
    disparity = np.zeros((480, 640), np.float32)
    disparity[100:140, 200:240] = 0.9  # a small near object: auto focus ignores it for the large region
    image = np.zeros((480, 640, 3), np.uint8)
    auto = controls.focus.measure(image, disparity)
    controls.click(220, 120)
    assert controls.focus.measure(image, disparity) == np.float32(0.9) != auto
    controls.key(ord("a"))
    assert controls.focus.measure(image, disparity) == auto


def test_plus_and_minus_change_the_blur_within_what_the_renderer_takes():
    controls, render = _controls(height=2160)
    start = render.blur
    controls.key(ord("+"))
    assert render.blur == start + BLUR_STEP
    controls.key(ord("-"))
    controls.key(ord("-"))
    assert render.blur == start - BLUR_STEP
    for _ in range(500):
        controls.key(ord("="))
    assert render.blur * 2160 / render.reference_height == 512.0  # the renderer's limit at this height
    for _ in range(500):
        controls.key(ord("-"))
    assert render.blur == 0.0


def test_other_keys_change_nothing():
    controls, render = _controls()
    before = render.blur
    for code in (ord("x"), ord(" "), 200, 0):
        controls.key(code)
    assert render.blur == before and controls.focus._point is None
