"""A live user's sweep (session 22): the keypad's keys in the window, a phone app's or camera's web page or snapshot
given as the stream's address, and the line a camera that came back says. No display or camera here: OpenCV's window
calls and capture are answered in-process (the camera on a fake clock); the pages come from python's http.server."""
import http.server
import threading

import cv2
import numpy as np
import pytest

from stream import sinks
from stream.config import load_config
from stream.controls import BLUR_STEP, LiveControls
from stream.errors import UserError
from stream.focus import FocusController
from stream.frame import Frame
from stream.sinks import WindowSink, key_char
from stream.sources import open_source

from test_live20 import PacedWebcam

# --- the keypad's keys -----------------------------------------------------------------------------------------------


def test_the_keypads_keys_are_the_characters_they_show():
    # GTK gives the keypad's + as X's KP_Add (0xFFAB), not '+': it read as no key, so the blur did not change
    assert key_char(0xFFAB) == ord("+") and key_char(0xFFAD) == ord("-") and key_char(0xFFBD) == ord("=")
    assert key_char(0x10_FFAB) == ord("+")  # with Num Lock's modifier bit
    assert key_char(0xFFB0) == ord("0") and key_char(0xFFAA) == ord("*")
    assert key_char(0xFF95) is None and key_char(0xFF51) is None  # the keypad's Home (Num Lock off), Left arrow
    assert key_char(0xFFBE) is None  # F1, the keysym after the keypad's


def test_the_keypads_plus_and_minus_change_the_blur_in_the_window(monkeypatch):
    pressed = iter([0xFFAB, 0xFFAB, 0x10_FFAD])
    monkeypatch.setattr(sinks, "check_display", lambda fix=None: None)
    monkeypatch.setattr(sinks.DisplayWatch, "open", classmethod(lambda cls, display: None))
    monkeypatch.setattr(sinks, "screen_size", lambda display: (1600, 1000))
    for name in ("namedWindow", "resizeWindow", "setMouseCallback", "imshow", "setWindowTitle"):
        monkeypatch.setattr(cv2, name, lambda *a: None)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "waitKeyEx", lambda delay: next(pressed, -1))
    render = load_config("default", {"render.focus": "auto"}).render
    told = []
    controls = LiveControls(FocusController("auto"), render, 120, notify=told.append)
    window = WindowSink("t", controls, 160, False, notify=told.append)
    image = np.full((120, 160, 3), 90, np.uint8)
    start = render.blur
    for index in range(3):
        window.write(Frame(index=index, capture_ns=0, image=image, output=image.copy()))
    assert render.blur == start + BLUR_STEP  # up twice, down once
    assert len(told) == 3 and all(line.startswith("blur ") for line in told)  # each press says what it set


# --- a web page where the stream was expected ------------------------------------------------------------------------


class _OneAnswer:
    """An HTTP server that answers every address with the same body (200, `content_type`)."""

    def __init__(self, content_type: str, body: bytes) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.where = f"127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _web_page() -> _OneAnswer:
    """A phone app's or camera's own page, at the address without its stream's path."""
    return _OneAnswer("text/html", b"<!DOCTYPE html><html><head><title>IP Webcam</title></head><body><h1>IP Webcam</h1>"
                      + b"<p>Video renderer: browser</p>" * 60 + b"</body></html>")


def test_a_web_page_at_the_streams_address_is_said_with_the_fix():
    # it said "cannot open the stream from HOST: Invalid data found when processing input", which names no fix: a
    # phone app's address without its stream's path (http://phone:8080) gives the app's page
    page = _web_page()
    try:
        with pytest.raises(UserError) as caught:
            open_source(f"http://admin:hunter2@{page.where}/")
    finally:
        page.close()
    message = str(caught.value)
    assert f"{page.where} answered at / with no video stream (a web page, perhaps" in message, message
    assert f"(IP Webcam: http://{page.where}/video)" in message
    assert "hunter2" not in message and "\n" not in message and "Invalid data" not in message


# --- a camera's snapshot address -------------------------------------------------------------------------------------


def _snapshot() -> _OneAnswer:
    """A camera's or phone app's snapshot: one JPEG picture at every address."""
    picture = np.zeros((120, 160, 3), np.uint8)
    cv2.circle(picture, (80, 60), 30, (0, 200, 255), -1)
    return _OneAnswer("image/jpeg", cv2.imencode(".jpg", picture)[1].tobytes())


@pytest.mark.parametrize("path", ["/shot.jpg", "/snapshot.cgi?user=admin&pwd=hunter2"])  # image2, jpeg_pipe
def test_a_cameras_snapshot_address_is_said_to_be_no_stream(path):
    # it ran as a one-frame video and ended as a finished stream does: "ended (its sender closed it) after 1 frames"
    server = _snapshot()
    try:
        source = open_source(f"http://{server.where}{path}")
        frames = []
        try:
            with pytest.raises(UserError) as caught:
                for frame in source.frames():
                    frames.append(frame.image)
        finally:
            source.close()
    finally:
        server.close()
    message = str(caught.value)
    assert len(frames) == 1  # the picture it served still goes through, as a cut file's frames do
    assert "served one still picture and ended: that address is the camera's or app's snapshot" in message, message
    assert f"(IP Webcam: http://{server.where}/video)" in message
    assert "hunter2" not in message and "\n" not in message


# --- a camera that stalls, then comes back -------------------------------------------------------------------------


class _StallingCamera(PacedWebcam):
    """An opened capture on a fake clock: 30 fps, whose read after the `before`th picture waits `stall_s` in the driver
    and fails (V4L2's select time-out), then delivers again once opened anew."""

    def __init__(self, clock: list[int], before: int, stall_s: float) -> None:
        super().__init__(fps=30.0, size=(64, 48))
        self.clock, self.before, self.stall_s, self.delivered, self.stalled = clock, before, stall_s, 0, False

    def read(self):
        if self.delivered == self.before and not self.stalled:
            self.stalled = True
            self.clock[0] += int(self.stall_s * 1e9)
            return False, None
        self.clock[0] += 33_000_000
        self.delivered += 1
        return True, np.zeros((48, 64, 3), np.uint8)

    def release(self):
        pass


def test_a_camera_that_came_back_says_how_long_it_stood_still(monkeypatch):
    # the read that found it stalled waited 3 s in the driver: the line said "stopped for 0.0 s" (the reopening alone)
    from stream import camera as cameras

    clock = [10**12]
    camera = _StallingCamera(clock, before=5, stall_s=3.0)
    monkeypatch.setattr(cameras, "now_ns", lambda: clock[0])
    monkeypatch.setattr(cameras, "_open_camera", lambda index: camera)
    monkeypatch.setattr(cameras, "CAMERA_RETRY_PAUSE_S", 0.001)
    told: list[str] = []  # its own list: console.notify's stream may be another test's (a quiet or captured run)
    monkeypatch.setattr(cameras, "notify", told.append)
    source = open_source("camera:0")
    frames = []
    for frame in source.frames():
        frames.append(frame)
        if len(frames) == 8:
            break
    assert [frame.index for frame in frames] == list(range(8))
    came_back = [line for line in told if "came back" in line]
    assert came_back == ["camera 0 stopped for 3.0 s and came back"]  # the stall, and a read's 33 ms
