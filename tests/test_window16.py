"""The preview window's size: the picture's own, made smaller to fit the screen, without Qt's viewer toolbar
and status bar, again after s; clicks still land on the frame's pixels. It opened at 400x300 under a toolbar
whatever the picture (a 640x480 camera at 317x238, the 1920x480 side by side strip at 400x100)."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from stream import sinks
from stream.frame import Frame
from stream.sinks import WindowSink, fitted_size, window_room

REPO = Path(__file__).resolve().parents[1]


def test_the_window_room_is_most_of_the_screen_and_on_one_monitor():
    assert window_room((1600, 1000)) == (1440, 850)
    assert window_room((1920, 1080)) == (1728, 918)
    assert window_room((3840, 1080)) == (1836, 918)  # two monitors side by side: one X screen, a window on one
    assert window_room(None) == sinks.UNKNOWN_SCREEN_ROOM  # Wayland alone, macOS


def test_a_picture_keeps_its_size_where_it_fits_else_is_made_smaller_in_its_aspect():
    assert fitted_size(640, 480, (1440, 850)) == (640, 480)  # never larger: a 320x240 camera stays sharp
    assert fitted_size(1920, 480, (1440, 850)) == (1440, 360)  # input | render | depth
    assert fitted_size(1080, 1920, (1728, 918)) == (516, 918)  # a phone's upright video
    assert fitted_size(4000, 3, (1440, 850)) == (1440, 1)


def _window(monkeypatch, keys, screen=(1600, 1000)):
    """A WindowSink on OpenCV calls answered in-process: (the window, namedWindow's flags, resizeWindow's sizes)."""
    flags, sizes = [], []
    pressed = iter(keys)
    monkeypatch.setattr(sinks, "check_display", lambda fix=None: None)
    monkeypatch.setattr(sinks.DisplayWatch, "open", classmethod(lambda cls, display: None))
    monkeypatch.setattr(sinks, "screen_size", lambda display: screen)
    monkeypatch.setattr(cv2, "namedWindow", lambda title, flag=0: flags.append(flag))
    monkeypatch.setattr(cv2, "resizeWindow", lambda title, width, height: sizes.append((width, height)))
    for name in ("setMouseCallback", "imshow", "setWindowTitle"):
        monkeypatch.setattr(cv2, name, lambda *a: None)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "waitKeyEx", lambda delay: next(pressed, -1))
    return WindowSink("t", None, 640, False, notify=lambda message: None), flags, sizes


def _frame(width=640, height=480):
    image = np.full((height, width, 3), 90, np.uint8)
    return Frame(index=0, capture_ns=0, image=image, output=image.copy(), refined=np.zeros((height, width), np.float32))


def test_the_window_opens_without_qts_toolbar_and_status_bar(monkeypatch):
    _, flags, _ = _window(monkeypatch, [])
    assert flags == [cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL]


def test_the_window_takes_the_pictures_size_and_again_after_s(monkeypatch):
    window, _, sizes = _window(monkeypatch, [-1, -1, ord("s"), -1, -1, ord("s"), -1])
    for _ in range(7):
        window.write(_frame())
    # the render at its size; s: the 1920x480 strip made smaller to fit 90% of a 1600x1000 screen; s: back
    assert sizes == [(640, 480), (1440, 360), (640, 480)]


def test_the_info_text_stays_readable_in_a_window_made_smaller(monkeypatch):
    window, _, _ = _window(monkeypatch, [ord("s"), ord("i")], screen=(800, 600))
    window.write(_frame())  # s: side by side from the next frame, shown at 720x180 (3/8 of its size)
    window.write(_frame())  # i
    assert window._window_scale == 0.375
    scale, _ = window._info_layout(["25.0 fps"], 1920, 480, least=sinks.INFO_LEAST_SCALE / window._window_scale)
    assert scale * window._window_scale == pytest.approx(sinks.INFO_LEAST_SCALE)  # as large on screen as at 1:1


# On a real X server: the window's picture area, a click at a screen point, in a child process (Qt ends the
# process whose display goes away, which the test stops).
WINDOW_SCRIPT = textwrap.dedent("""
    import ctypes, json, sys
    import cv2, numpy as np
    from stream.frame import Frame
    from stream.sinks import WindowSink

    class Controls:
        clicks = []
        def click(self, x, y): self.clicks.append((x, y))
        def key(self, code): pass

    def show(window, frame, times=8):
        for _ in range(times):
            window.write(frame)
            cv2.waitKey(20)

    def click(x, y):  # a left click at a screen point, through the XTEST extension
        x11, xtest = ctypes.CDLL("libX11.so.6"), ctypes.CDLL("libXtst.so.6")
        x11.XOpenDisplay.restype, x11.XOpenDisplay.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
        xtest.XTestFakeMotionEvent.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                               ctypes.c_ulong]
        xtest.XTestFakeButtonEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
        x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        display = x11.XOpenDisplay(None)
        xtest.XTestFakeMotionEvent(display, -1, x, y, 0)
        xtest.XTestFakeButtonEvent(display, 1, 1, 0)
        xtest.XTestFakeButtonEvent(display, 1, 0, 0)
        x11.XFlush(display)
        x11.XCloseDisplay(display)

    image = np.full((480, 640, 3), 90, np.uint8)
    frame = Frame(index=0, capture_ns=0, image=image, output=image.copy(), refined=np.zeros((480, 640), np.float32))
    window = WindowSink("t", Controls(), 640, False, notify=lambda message: None)
    show(window, frame)
    rects = [cv2.getWindowImageRect("t")]
    window.side_by_side = True
    show(window, frame)
    rects.append(cv2.getWindowImageRect("t"))
    left, top, width, height = rects[-1]
    if sys.argv[1] == "click":  # the strip's point (1000, 300): the render's (360, 300)
        click(left + round(1000 * width / 1920), top + round(300 * height / 480))
        show(window, frame)
    window.close(True)
    print(json.dumps({"rects": rects, "clicks": Controls.clicks}))
""")


@pytest.fixture
def x_display():
    """A real X server without a screen (Xvfb) of 1280x720 on a free display number, where Xvfb is installed."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb) to open a real preview window")
    read, write = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as numbers:
        number = numbers.readline().strip()  # written once the server is ready
    if not number:
        server.wait(timeout=10)
        pytest.skip("Xvfb did not start")
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def _run_window(display: str, action: str) -> dict:
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", WINDOW_SCRIPT, action], capture_output=True, text=True,
                            timeout=120, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_real_window_shows_the_picture_at_its_size_then_fitted_to_the_screen(x_display):
    rects = _run_window(x_display, "sizes")["rects"]
    assert rects[0][2:] == [640, 480]  # the render at 1:1 (it was 400x300, 317x238 of it the picture)
    # input | render | depth, 1920x480, in 90% of the 1280-wide screen
    assert rects[1][2:] == list(fitted_size(1920, 480, window_room((1280, 720)))) == [1152, 288]


def test_a_click_in_a_window_made_smaller_focuses_on_the_frames_point(x_display):
    if not all(_loads(name) for name in ("libX11.so.6", "libXtst.so.6")):
        pytest.skip("libXtst is not installed to click in the window")
    clicks = _run_window(x_display, "click")["clicks"]
    assert len(clicks) == 1
    x, y = clicks[0]
    assert abs(x - 360) <= 2 and abs(y - 300) <= 2  # the render's pixel under the click, not the window's


def _loads(name: str) -> bool:
    import ctypes

    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def test_the_screen_size_is_read_from_the_x_display(x_display):
    if sinks._libxcb() is None:
        pytest.skip("libxcb is not there")
    assert sinks.screen_size(x_display) == (1280, 720)
    assert sinks.screen_size(":9999") is None  # no such display: the window takes the size for an unknown screen
