"""The live path when the world around it misbehaves: the preview window's X server stops, the window is
left alone between frames (a slow network, a camera that stalls), keys come between frames."""
import os
import random
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from stream import sinks
from stream.frame import Frame
from stream.sinks import DISPLAY_GONE, DisplayWatch, NullSink, TeeSink, WindowSink

REPO = Path(__file__).resolve().parents[1]


def start_xvfb(xvfb: str) -> tuple[str, subprocess.Popen] | None:
    """An Xvfb on a display number of its own, once it accepts connections, or None where it does not start.
    A random number far from the usual ones, and -displayfd to hear when the server is ready: a number picked
    from the lock files then a 1 s sleep could be taken meanwhile by a parallel run's server, or not be listening
    yet on a busy machine ("could not connect to display :145"); servers left to pick the lowest free number
    themselves race for the same one. A number another server holds makes Xvfb exit: another is tried."""
    for number in random.sample(range(1000, 30000), 5):
        read, write = os.pipe()
        server = subprocess.Popen([xvfb, f":{number}", "-displayfd", str(write), "-screen", "0", "1280x720x24",
                                   "-nolisten", "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as numbers:
            if numbers.readline().strip() == str(number):  # written once the server is ready
                return f":{number}", server
        server.wait(timeout=10)
    return None


def stop_xvfb(display: str, server: subprocess.Popen) -> None:
    """The server ended, and what a killed one leaves behind (its lock file and socket) removed."""
    if server.poll() is None:
        server.kill()
    server.wait(timeout=10)
    number = display.lstrip(":")
    for left in (Path(f"/tmp/.X{number}-lock"), Path(f"/tmp/.X11-unix/X{number}")):
        left.unlink(missing_ok=True)


@pytest.fixture
def x_server():
    """A real X server without a screen (Xvfb), which the test may stop."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb) to open a real preview window")
    started = start_xvfb(xvfb)
    if started is None:
        pytest.skip("Xvfb did not start")
    yield started
    stop_xvfb(*started)


def test_the_display_watch_sees_the_x_server_stop(x_server):
    display, server = x_server
    watch = DisplayWatch.open(display)
    if watch is None:
        pytest.skip("libxcb is not there")
    assert not watch.gone()
    server.kill()
    server.wait(timeout=10)
    assert watch.gone()
    watch.close()
    assert watch.gone()  # closed: nothing more to ask


def test_no_display_watch_without_an_x_server():
    assert DisplayWatch.open("") is None
    assert DisplayWatch.open(":199") is None  # no server there


# Writes frames to a file with --preview's window on a real X server, stops the server part-way, and writes on.
PREVIEW_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    import numpy as np
    from stream.frame import Frame
    from stream.sinks import make_sink

    server, out = int(sys.argv[1]), Path(sys.argv[2])
    sink = make_sink(str(out), width=160, height=120, fps=24, audio_from=None, side_by_side=False,
                     save_depth=None, preview=True)

    def frame(i):
        image = np.full((120, 160, 3), i * 8 % 256, np.uint8)
        return Frame(index=i, capture_ns=0, image=image, output=image, pts_seconds=i / 24)

    for i in range(10):
        sink.write(frame(i))
    os.kill(server, signal.SIGKILL)
    time.sleep(0.5)  # Qt's own reader finds its connection broken meanwhile
    for i in range(10, 30):
        sink.write(frame(i))
        assert not sink.wants_stop
    sink.close()
    print("closed")
""")


def test_a_file_run_goes_on_when_the_preview_windows_x_server_stops(x_server, tmp_path):
    # Qt's xcb plugin calls exit(1) inside the next OpenCV window call once its connection broke: the run
    # ended with "The X11 connection broke (error 1). Did the X11 server die?", exit status 1, an ONNX
    # Runtime error from the threads torn down under it, and the output file unfinished
    from media import probe

    display, server = x_server
    out = tmp_path / "out.mp4"
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", PREVIEW_SCRIPT, str(server.pid), str(out)], capture_output=True,
                            text=True, timeout=120, cwd=REPO, env=env)
    assert result.returncode == 0 and "closed" in result.stdout, result.stderr
    assert result.stderr.count(DISPLAY_GONE) == 1, result.stderr
    assert "the run goes on without the window" in result.stderr and "X11 connection broke" not in result.stderr
    assert probe(out)["frames"] == 30  # all of them, written after the window went as before


# --- the window between frames and after its display went, without a screen ------------------------


class FakeWatch:
    def __init__(self) -> None:
        self.is_gone = False

    def gone(self) -> bool:
        return self.is_gone

    def close(self) -> None:
        pass


def _window(monkeypatch, keys, alone=True, visible=1.0):
    """A WindowSink on stubbed OpenCV calls: waitKeyEx gives `keys` in turn, then nothing; every window call
    is recorded in `calls`."""
    calls = []
    pressed = iter(keys)
    monkeypatch.setattr(sinks, "check_display", lambda fix=None: None)
    for name in ("namedWindow", "setMouseCallback", "imshow", "setWindowTitle", "destroyWindow", "waitKey"):
        monkeypatch.setattr(cv2, name, lambda *a, name=name: calls.append(name))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: calls.append("getWindowProperty") or visible)
    monkeypatch.setattr(cv2, "waitKeyEx", lambda delay: calls.append("waitKeyEx") or next(pressed, -1))
    watch = FakeWatch()
    monkeypatch.setattr(sinks.DisplayWatch, "open", classmethod(lambda cls, display: watch))
    told = []
    window = WindowSink("t", None, 60, False, notify=told.append, alone=alone)
    return window, watch, calls, told


def _frame(index=0):
    image = np.full((40, 60, 3), 200, np.uint8)
    return Frame(index=index, capture_ns=0, image=image, output=image.copy())


@pytest.mark.parametrize("alone", [True, False])
def test_after_the_display_went_no_window_call_is_made(monkeypatch, alone):
    window, watch, calls, told = _window(monkeypatch, [], alone=alone)
    window.write(_frame())
    watch.is_gone = True
    calls.clear()
    for index in range(1, 4):
        window.write(_frame(index))
        window.idle()
    window.close()
    assert calls == []  # each of them would have ended the process
    assert told == [f"{DISPLAY_GONE}; " + ("stopping" if alone else "the run goes on without the window")]
    assert window.wants_stop == alone  # a window alone ends the run; beside a file the run goes on


def test_between_frames_the_window_answers_its_keys(monkeypatch, tmp_path):
    # a slow network or a stalled camera: the window was pumped only when a frame came, so q, p and the
    # close button did nothing until then (and the desktop called the window not responding)
    monkeypatch.chdir(tmp_path)
    window, watch, calls, told = _window(monkeypatch, [-1, -1, ord("p"), ord("i"), ord("q")])  # idle, write, ...
    window.idle()  # nothing shown yet: its keys are answered (none pressed)
    # its visibility is asked now too, so that its close button works before the first picture; a window never
    # reported on screen is not taken as closed then (a backend may map it only at the first picture): test_window22
    assert calls.count("waitKeyEx") == 1 and not window.wants_stop
    window.write(_frame())
    window.idle()  # p: the frame on screen saved
    assert len(list(tmp_path.glob("depthcam_*.png"))) == 1 and told[0].startswith("saved ")
    window.idle()  # i
    assert window.info and not window.wants_stop
    window.idle()  # q
    assert window.wants_stop


def test_between_frames_a_window_closed_by_its_button_stops_the_run(monkeypatch):
    window, watch, calls, told = _window(monkeypatch, [])
    window.write(_frame())
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 0.0)
    calls.clear()
    window.idle()
    assert window.wants_stop and "waitKeyEx" not in calls  # not pumped again once it is closed


def test_a_tee_passes_the_pause_on_to_each_sink(monkeypatch):
    window, watch, calls, told = _window(monkeypatch, [-1, ord("q")])
    tee = TeeSink([NullSink(), window])
    tee.write(_frame())
    assert not tee.wants_stop
    tee.idle()
    assert tee.wants_stop



# --- a camera that stalls: its read waits in the driver ---------------------------------------------------


class StallingWebcam:
    """Delivers `frames` pictures, then a read that waits until `unblock` is set and then fails (a stalled or
    unplugged camera). Records a release made while that read waited."""

    def __init__(self, frames: int) -> None:
        import threading

        self.frames, self.read_count, self.opened = frames, 0, 0
        self.waiting, self.unblock = threading.Event(), threading.Event()
        self.released_under_a_read = False
        self.read_returned = False
        self.releases = 0

    def isOpened(self):
        return True

    def set(self, prop, value):
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: 64, cv2.CAP_PROP_FRAME_HEIGHT: 48, cv2.CAP_PROP_FPS: 30.0}.get(prop, 0.0)

    def getBackendName(self):
        return "AVFOUNDATION"

    def read(self):
        self.read_count += 1
        if self.read_count <= self.frames:
            return True, np.zeros((48, 64, 3), np.uint8)
        self.waiting.set()
        self.unblock.wait(10)
        self.read_returned = True
        return False, None

    def release(self):
        self.releases += 1
        self.released_under_a_read = self.released_under_a_read or (self.waiting.is_set()
                                                                    and not self.unblock.is_set())


def test_a_stalled_camera_is_not_released_under_its_waiting_read(monkeypatch):
    # at a stop (Ctrl-C, q) the pipeline closed the source while the capture thread still waited in read():
    # OpenCV frees the buffers that read fills, which crashes the process; and a read that then failed opened
    # the camera again behind the ended run
    import threading

    from stream import camera as cameras
    from stream import sources

    camera = StallingWebcam(frames=3)

    def opening(index):
        camera.opened += 1
        return camera

    monkeypatch.setattr(cameras, "_open_camera", opening)
    monkeypatch.setattr(cameras, "CAMERA_CLOSE_WAIT_S", 0.05)
    monkeypatch.setattr(cameras, "CAMERA_RETRY_PAUSE_S", 0.01)
    source = sources.open_source("camera:0")
    got, ended = [], []

    def capture():
        try:
            for frame in source.frames():
                got.append(frame)
        except Exception as exc:  # noqa: BLE001 (the end of the camera, as the pipeline's capture thread sees it)
            ended.append(exc)

    thread = threading.Thread(target=capture, daemon=True)
    thread.start()
    assert camera.waiting.wait(10) and len(got) == 3
    source.close()  # the run's end, the read still waiting
    assert not camera.released_under_a_read and camera.releases == 0
    camera.unblock.set()  # the read fails at last: the camera is not opened again
    thread.join(10)
    assert not thread.is_alive() and camera.opened == 1 and len(ended) == 1


def test_a_camera_is_released_at_the_end_of_a_run(monkeypatch):
    from stream import camera as cameras
    from stream import sources

    camera = StallingWebcam(frames=2)
    monkeypatch.setattr(cameras, "_open_camera", lambda index: camera)
    source = sources.open_source("camera:0")
    frames = source.frames()
    next(frames)
    source.close()
    assert camera.releases == 1


@pytest.mark.parametrize("own", [None, "7"])
def test_a_stalled_v4l2_camera_is_found_in_seconds_not_ten(monkeypatch, own):
    # OpenCV's V4L2 read waits 10 s by default for a camera that stopped sending: the picture stood still
    # that long before the camera was opened again or the run ended with its line
    from stream import camera as cameras

    monkeypatch.setenv("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", own or "")  # restored after the test, set or not
    if own is None:
        monkeypatch.delenv("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT")
    seen = []
    monkeypatch.setattr(cameras.cv2, "VideoCapture",
                        lambda index: seen.append(os.environ.get("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT")))
    cameras._open_camera(0)
    assert seen == [own or "3"]  # set before OpenCV opens (and so before its first wait reads it)


class _Unplugged(StallingWebcam):
    """Delivers `frames` pictures, then its reads fail at once (unplugged); opened again, it is not there."""

    def read(self):
        self.read_count += 1
        return (True, np.zeros((48, 64, 3), np.uint8)) if self.read_count <= self.frames else (False, None)


def test_a_stop_while_the_camera_is_opened_again_ends_its_reopening(monkeypatch):
    # q while an unplugged camera was being opened again: the capture thread, which could not see the stop, went on
    # opening it (CAMERA_RECONNECT_S) behind the ended run, and its giving up then failed the run the user had ended
    # ("camera 0 stopped delivering frames", exit status 2)
    from stream import camera as cameras
    from stream import sources
    from stream.pipeline import Pipeline
    from test_pipeline_contracts import _Window  # q pressed while no frame comes (the camera away)

    camera, missing = _Unplugged(frames=3), _Unplugged(frames=0)
    missing.isOpened = lambda: False
    opened = iter([camera])
    monkeypatch.setattr(cameras, "_open_camera", lambda index: next(opened, missing))
    source = sources.open_source("camera:0")
    result = Pipeline(source, [], _Window()).run()  # no error: the user stopped it
    assert result.closed_by_user and result.frames_written == 3
    assert result.threads_left == [] and camera.releases >= 1


def test_a_stop_during_a_stalled_camera_s_read_ends_the_run_without_waiting_for_that_read(monkeypatch):
    """q while the camera's read waits in the driver: the run waited for the capture thread (2 s, all of a
    network stream's 5 s timeout wasn't even enough) before finalising its output; the frame that read brings is not
    wanted. The capture thread closes the camera when the read returns."""
    from stream import camera as cameras
    from stream import pipeline, sources
    from stream.pipeline import Pipeline
    from test_pipeline_contracts import _Window

    camera = StallingWebcam(frames=3)
    monkeypatch.setattr(cameras, "_open_camera", lambda index: camera)
    monkeypatch.setattr(cameras, "CAMERA_CLOSE_WAIT_S", 0.05)
    monkeypatch.setattr(pipeline, "JOIN_TIMEOUT_S", 30.0)  # longer than the read's wait: the old join outwaited it
    result = Pipeline(sources.open_source("camera:0"), [], _Window()).run()
    assert result.closed_by_user and result.frames_written == 3
    assert camera.waiting.is_set() and not camera.read_returned  # the run ended while the read still waited
    assert result.threads_left == ["depthcam-capture"] and camera.releases == 0
    camera.unblock.set()
    for thread in threading.enumerate():
        if thread.name == "depthcam-capture":
            thread.join(10)
    assert camera.read_returned and camera.releases >= 1 and not camera.released_under_a_read
