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


def _recording_controls(focus, height=480):
    render = load_config("default", {"render.focus": "auto"}).render
    messages = []
    return LiveControls(focus, render, height, notify=messages.append), render, messages


def test_a_gives_auto_focus_also_after_a_fixed_focus():
    # The window's help says "a: auto focus": with --focus 0.3 it used to go back to 0.3.
    controls, _, _ = _recording_controls(FocusController(0.3))
    image = np.zeros((120, 160, 3), np.uint8)
    disparity = np.full((120, 160), 0.1, np.float32)
    disparity[40:100, 50:110] = 0.8
    controls.click(10, 10)
    controls.key(ord("a"))
    assert controls.focus.measure(image, disparity) == np.float32(0.8)


def test_each_change_says_what_it_set_and_capitals_work():
    controls, render, messages = _recording_controls(FocusController("auto"))
    render.blur = 12.0
    controls.key(ord("+"))
    controls.click(5, 7)
    controls.key(ord("A"))  # Caps Lock on
    assert messages[0] == "blur 14 px at 480 lines (as --blur counts it)"
    assert "focus on the point 5,7" in messages[1] and messages[2].startswith("auto focus")
    assert controls.focus._point is None


def test_the_keys_stop_at_the_blur_a_configuration_may_give():
    controls, render, messages = _recording_controls(FocusController("auto"), height=480)
    for _ in range(200):
        controls.key(ord("+"))
    assert render.blur == 256.0  # --blur refuses more; the renderer alone would take 512
    assert messages[-1].endswith(": the most")


def test_a_click_on_a_photo_shown_smaller_is_said_in_the_photo_s_own_pixels():
    """A 4000 px photo is refocused on a copy 1280 wide: the line said the copy's pixels, which --focus-point
    (the photo's own) would take for another place."""
    render = load_config("default").render
    said = []
    scale = 1280 / 4000
    controls = LiveControls(FocusController("auto"), render, 3000, notify=said.append, shown_scale=scale)
    for x, y in [(640, 480), (0, 0), (1279, 959), (333, 77)]:
        controls.click(x, y)
        own_x, own_y = (int(v) for v in said[-1].split("point ")[1].split(" ")[0].split(","))
        assert 0 <= own_x < 4000 and 0 <= own_y < 3000
        assert (round(own_x * scale), round(own_y * scale)) == (x, y)  # as the run maps --focus-point back
    assert controls.focus._point == (333, 77)  # the focus itself works on the copy it is shown
