"""Camera mode negotiation, against a fake capture that behaves like a USB 2 webcam (no camera here)."""
import itertools

import cv2
import pytest

from stream.errors import UserError
from stream.sources import configure_capture, open_source


class FakeWebcam:
    """A V4L2-like capture: YUYV up to 640x480 at 30 fps (1920x1080 at 5), MJPG up to 1920x1080 at 30.
    Like V4L2, a size it lacks snaps to the nearest it has, and the size list depends on the format."""

    MODES = {"YUYV": {(640, 480): 30, (1920, 1080): 5}, "MJPG": {(640, 480): 30, (1280, 720): 30, (1920, 1080): 30}}

    def __init__(self) -> None:
        self.fourcc, self.size, self.fps, self.calls = "YUYV", (640, 480), 30.0, []

    def set(self, prop, value):
        self.calls.append(prop)
        if prop == cv2.CAP_PROP_FOURCC:
            text = "".join(chr((int(value) >> (8 * i)) & 0xFF) for i in range(4))
            self.fourcc = text if text in self.MODES else self.fourcc
        elif prop == cv2.CAP_PROP_FRAME_WIDTH:
            self._snap(int(value), self.size[1])
        elif prop == cv2.CAP_PROP_FRAME_HEIGHT:
            self._snap(self.size[0], int(value))
        elif prop == cv2.CAP_PROP_FPS:
            self.fps = min(float(value), self.MODES[self.fourcc][self.size])
        return True

    def _snap(self, width, height):
        self.size = min(self.MODES[self.fourcc], key=lambda s: abs(s[0] - width) + abs(s[1] - height))
        self.fps = min(self.fps, self.MODES[self.fourcc][self.size])

    def get(self, prop):
        if prop == cv2.CAP_PROP_FOURCC:
            return float(cv2.VideoWriter_fourcc(*self.fourcc))
        return {cv2.CAP_PROP_FRAME_WIDTH: self.size[0], cv2.CAP_PROP_FRAME_HEIGHT: self.size[1],
                cv2.CAP_PROP_FPS: self.fps}[prop]


def test_a_large_size_asks_for_mjpg_first_and_gets_full_rate():
    camera = FakeWebcam()
    mode = configure_capture(camera, (1920, 1080), 30, "auto")
    assert str(mode) == "1920x1080 @ 30 fps MJPG" and (mode.width, mode.height, mode.fps) == (1920, 1080, 30)
    assert camera.calls[0] == cv2.CAP_PROP_FOURCC  # before the size: the sizes depend on the format


def test_uncompressed_when_asked_and_the_shortfall_is_reported():
    mode = configure_capture(FakeWebcam(), (1920, 1080), 30, "yuyv")
    assert str(mode) == "1920x1080 @ 5 fps YUYV (asked 30 fps: the camera has no such mode)"


def test_a_size_the_camera_lacks_is_reported():
    assert str(configure_capture(FakeWebcam(), (1280, 720), 0, "yuyv")).endswith(
        "(asked 1280x720: the camera has no such mode)")


def test_small_sizes_keep_the_cameras_own_format():
    camera = FakeWebcam()
    assert str(configure_capture(camera, (640, 480), 30, "auto")) == "640x480 @ 30 fps YUYV"
    assert cv2.CAP_PROP_FOURCC not in camera.calls


def test_an_unknown_format_is_refused_before_the_camera_opens():
    with pytest.raises(UserError, match="format=h265 .* choose auto, mjpg, yuyv"):
        open_source("camera:0?format=h265")


class StampingWebcam(FakeWebcam):
    """Delivers three frames whose driver timestamps (CAP_PROP_POS_MSEC) lie `age_ms` before they are read."""

    def __init__(self, backend: str, age_ms: float | list[float]) -> None:
        super().__init__()
        self.backend, self.stamps_ms = backend, []
        self.ages_ms = age_ms if isinstance(age_ms, list) else [age_ms] * 3

    def isOpened(self):
        return True

    def getBackendName(self):
        return self.backend

    def read(self):
        import numpy as np

        from stream.frame import now_ns

        if len(self.stamps_ms) == len(self.ages_ms):
            return False, None
        self.stamps_ms.append(now_ns() / 1e6 - self.ages_ms[len(self.stamps_ms)])
        return True, np.zeros((480, 640, 3), np.uint8)

    def get(self, prop):
        return self.stamps_ms[-1] if prop == cv2.CAP_PROP_POS_MSEC else super().get(prop)

    def release(self):
        pass


@pytest.mark.parametrize("backend, age_ms, uses_stamp", [("V4L2", 45.0, True), ("V4L2", 5000.0, False),
                                                          ("V4L2", -50.0, False), ("AVFOUNDATION", 45.0, False)])
def test_latency_counts_from_the_drivers_timestamp_where_it_is_on_our_clock(monkeypatch, backend, age_ms,
                                                                             uses_stamp):
    # V4L2 stamps a buffer when the camera delivered it: a frame that waited 45 ms in the driver's queue
    # counts those 45 ms. A stamp from the future or seconds old is on another clock, and other
    # backends' CAP_PROP_POS_MSEC means something else: then the time the frame was read counts.
    from stream import sources

    camera = StampingWebcam(backend, age_ms)
    monkeypatch.setattr(sources, "_open_camera", lambda index: camera)
    frames = list(itertools.islice(open_source("camera:0").frames(), 3))
    for frame, stamp_ms in zip(frames, camera.stamps_ms):
        from_stamp = abs(frame.capture_ns / 1e6 - stamp_ms) < 1e-3
        assert from_stamp == uses_stamp
        if not uses_stamp:
            assert frame.capture_ns / 1e6 >= stamp_ms + age_ms  # when it was read


def test_the_first_frame_chooses_the_clock_for_the_whole_run(monkeypatch):
    # one clock per run: a later stamp's jitter into the future is clamped to the read time, and a
    # backlog older than the plausibility window still counts from the driver's stamp
    from stream import sources

    camera = StampingWebcam("V4L2", [30.0, -3.0, 2500.0])
    monkeypatch.setattr(sources, "_open_camera", lambda index: camera)
    first, jittered, backlog = itertools.islice(open_source("camera:0").frames(), 3)
    assert abs(first.capture_ns / 1e6 - camera.stamps_ms[0]) < 1e-3
    assert jittered.capture_ns / 1e6 < camera.stamps_ms[1]  # not in the future: the read time
    assert abs(backlog.capture_ns / 1e6 - camera.stamps_ms[2]) < 1e-3


def test_a_camera_that_stops_mid_run_ends_it_with_one_line_and_a_playable_file(monkeypatch, shared_models, tmp_path,
                                                                               capsys):
    # unplugged, or taken by another program: read() starts failing. The run says so (a silent end would
    # look like a normal quit) and keeps what it had written.
    from media import probe

    from stream import cli, sources

    camera = StampingWebcam("V4L2", [0.0] * 40)
    monkeypatch.setattr(sources, "_open_camera", lambda index: camera)
    monkeypatch.setattr(sources, "CAMERA_RECONNECT_S", 0.3)  # it does not come back: tried for that long
    out = tmp_path / "recording.mp4"
    status = cli.main(["run", "camera:0", "-o", str(out), "--no-progress"])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert status == 2
    assert len(errors) == 1 and "camera 0 stopped delivering frames after 40" in errors[0], errors
    assert 0 < probe(out)["frames"] <= 40


class FlakyWebcam(StampingWebcam):
    """Delivers frames, stops for `gap` reads (a USB hiccup: opening it again does not help at once), then
    delivers again."""

    def __init__(self, before: int, gap: int, after: int) -> None:
        super().__init__("V4L2", [0.0] * (before + after))
        self.before, self.gap, self.failed, self.opened = before, gap, 0, 0

    def read(self):
        if len(self.stamps_ms) == self.before and self.failed < self.gap:
            self.failed += 1
            return False, None
        return super().read()


def test_a_camera_that_stops_for_a_moment_is_opened_again_and_the_run_goes_on(monkeypatch, capsys):
    from stream import sources

    camera = FlakyWebcam(before=5, gap=3, after=4)

    def reopen(index):
        camera.opened += 1
        return camera

    monkeypatch.setattr(sources, "_open_camera", reopen)
    monkeypatch.setattr(sources, "CAMERA_RETRY_PAUSE_S", 0.01)
    frames = list(itertools.islice(open_source("camera:0").frames(), 9))
    assert [f.index for f in frames] == list(range(9))  # five, the pause, four more
    assert camera.opened == 1 + 3  # opened again until it delivered (each try reads once)
    notes = capsys.readouterr().err
    assert "camera 0 stopped for" in notes and "came back" in notes


def test_a_recording_plays_at_the_pace_the_camera_filmed(monkeypatch, shared_models, tmp_path, capsys):
    # a camera delivering 15 frames a second (announcing 30): the recording's frames are spaced by their
    # capture times, not by the nominal rate, so the film does not play twice too fast
    import time

    import av

    from stream import cli, sources

    class FifteenFps(StampingWebcam):
        def read(self):
            time.sleep(1 / 15)
            return super().read()

    camera = FifteenFps("AVFOUNDATION", [0.0] * 12)  # no driver stamps: the read time counts
    monkeypatch.setattr(sources, "_open_camera", lambda index: camera)
    monkeypatch.setattr(sources, "CAMERA_RECONNECT_S", 0.1)
    out = tmp_path / "recording.mp4"
    cli.main(["run", "camera:0", "-o", str(out), "--no-progress", "--refine", "off"])  # ends when the camera does
    capsys.readouterr()
    with av.open(str(out)) as container:
        times = [frame.time for frame in container.decode(video=0)]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) >= 3 and min(gaps) > 0.055  # 1/15 s apart (or more where a frame was dropped), not 1/30
