"""Camera mode negotiation, against a fake capture that behaves like a USB 2 webcam (no camera here)."""
import itertools

import cv2
import pytest

from stream.camera import configure_capture
from stream.errors import UserError
from stream.sources import open_source


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
    from stream import camera as cameras

    camera = StampingWebcam(backend, age_ms)
    monkeypatch.setattr(cameras, "_open_camera", lambda index: camera)
    frames = list(itertools.islice(open_source("camera:0").frames(), 3))
    for frame, stamp_ms in zip(frames, camera.stamps_ms):
        from_stamp = abs(frame.capture_ns / 1e6 - stamp_ms) < 1e-3
        assert from_stamp == uses_stamp
        if not uses_stamp:
            assert frame.capture_ns / 1e6 >= stamp_ms + age_ms  # when it was read


def test_the_first_frame_chooses_the_clock_for_the_whole_run(monkeypatch):
    # one clock per run: a later stamp's jitter into the future is clamped to the read time, and a
    # backlog older than the plausibility window still counts from the driver's stamp
    from stream import camera as cameras

    camera = StampingWebcam("V4L2", [30.0, -3.0, 2500.0])
    monkeypatch.setattr(cameras, "_open_camera", lambda index: camera)
    first, jittered, backlog = itertools.islice(open_source("camera:0").frames(), 3)
    assert abs(first.capture_ns / 1e6 - camera.stamps_ms[0]) < 1e-3
    assert jittered.capture_ns / 1e6 < camera.stamps_ms[1]  # not in the future: the read time
    assert abs(backlog.capture_ns / 1e6 - camera.stamps_ms[2]) < 1e-3


def test_a_camera_that_stops_mid_run_ends_it_with_one_line_and_a_playable_file(monkeypatch, shared_models, tmp_path,
                                                                               capsys):
    # unplugged, or taken by another program: read() starts failing. The run says so (a silent end would
    # look like a normal quit) and keeps what it had written.
    from media import probe

    from stream import camera as cameras
    from stream import cli

    camera = StampingWebcam("V4L2", [0.0] * 40)
    monkeypatch.setattr(cameras, "_open_camera", lambda index: camera)
    monkeypatch.setattr(cameras, "CAMERA_RECONNECT_S", 0.3)  # it does not come back: tried for that long
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
    from stream import camera as cameras

    camera = FlakyWebcam(before=5, gap=3, after=4)

    def reopen(index):
        camera.opened += 1
        return camera

    monkeypatch.setattr(cameras, "_open_camera", reopen)
    monkeypatch.setattr(cameras, "CAMERA_RETRY_PAUSE_S", 0.01)
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

    from stream import camera as cameras
    from stream import cli

    class FifteenFps(StampingWebcam):
        def read(self):
            time.sleep(1 / 15)
            return super().read()

    camera = FifteenFps("AVFOUNDATION", [0.0] * 12)  # no driver stamps: the read time counts
    monkeypatch.setattr(cameras, "_open_camera", lambda index: camera)
    monkeypatch.setattr(cameras, "CAMERA_RECONNECT_S", 0.1)
    out = tmp_path / "recording.mp4"
    cli.main(["run", "camera:0", "-o", str(out), "--no-progress", "--refine", "off"])  # ends when the camera does
    capsys.readouterr()
    with av.open(str(out)) as container:
        times = [frame.time for frame in container.decode(video=0)]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) >= 3 and min(gaps) > 0.055  # 1/15 s apart (or more where a frame was dropped), not 1/30


# --- what real cameras deliver besides what they announced ----------------------------------------------


class PictureWebcam(StampingWebcam):
    """Delivers the given pictures, one per read (None: a read that says ok but gives no picture), then stops.
    Announces `size` (0x0: a backend that tells the size only once a frame was read) and `fps`."""

    def __init__(self, pictures, size=(640, 480), fps=30.0) -> None:
        super().__init__("AVFOUNDATION", [0.0] * len(pictures))
        self.pictures, self.size, self.fps = pictures, size, fps

    def set(self, prop, value):  # keeps its one mode whatever is asked
        return True

    def read(self):
        ok, _ = super().read()
        return (True, self.pictures[len(self.stamps_ms) - 1]) if ok else (False, None)


def _camera(monkeypatch, camera):
    from stream import camera as cameras

    monkeypatch.setattr(cameras, "_open_camera", lambda index: camera)
    monkeypatch.setattr(cameras, "CAMERA_RECONNECT_S", 0.05)
    monkeypatch.setattr(cameras, "CAMERA_RETRY_PAUSE_S", 0.01)
    return open_source("camera:0")


def _picture(height, width, channels=3, value=100):
    import numpy as np

    return np.full((height, width, channels) if channels else (height, width), value, np.uint8)


def _read_all(source):
    frames = []
    with pytest.raises(UserError, match="stopped delivering frames"):  # the fake camera's end
        for frame in source.frames():
            frames.append(frame)
    return frames


def test_pictures_of_another_size_than_announced_are_scaled_to_it_and_said_once(monkeypatch, capsys):
    # the writer, the virtual camera and the stages all work at the announced size: a camera that gave a
    # 1280x720 picture after announcing 640x480 ended the run with "stage 'sink' failed" (exit 1)
    pictures = [_picture(720, 1280)] * 3 + [_picture(480, 640)] * 2 + [_picture(600, 800)] * 2
    source = _camera(monkeypatch, PictureWebcam(pictures))
    frames = _read_all(source)
    assert [f.image.shape for f in frames] == [(480, 640, 3)] * 7
    assert [f.index for f in frames] == list(range(7))
    notes = [line for line in capsys.readouterr().err.splitlines() if "scaled to 640x480" in line]
    assert len(notes) == 2 and "1280x720" in notes[0] and "800x600" in notes[1], notes


@pytest.mark.parametrize("channels", [0, 1, 4])
def test_grey_and_bgra_pictures_are_made_bgr(monkeypatch, channels):
    # an IR or monochrome camera delivers grey, some backends BGRA: the stages take BGR only (the depth
    # stage failed on grey with an OpenCV assertion, the render on BGRA)
    source = _camera(monkeypatch, PictureWebcam([_picture(480, 640, channels)] * 2))
    frames = _read_all(source)
    assert [f.image.shape for f in frames] == [(480, 640, 3)] * 2
    assert all(f.image.dtype.name == "uint8" and (f.image == 100).all() for f in frames)


def test_a_picture_format_that_cannot_be_made_bgr_is_refused_in_one_line(monkeypatch):
    source = _camera(monkeypatch, PictureWebcam([_picture(480, 640, 2)] * 2))  # raw YUYV bytes
    with pytest.raises(UserError, match=r"camera 0 delivers 640x480x2 uint8 pictures.*format=mjpg"):
        next(iter(source.frames()))


def test_empty_reads_are_skipped(monkeypatch, capsys):
    # some backends answer ok with no picture now and then (MSMF while it starts, a USB glitch): the depth
    # stage failed on None ("'NoneType' object has no attribute 'shape'")
    import numpy as np

    empty = np.zeros((0, 0, 3), np.uint8)
    pictures = [None, _picture(480, 640), empty, None, _picture(480, 640), _picture(480, 640)]
    frames = _read_all(_camera(monkeypatch, PictureWebcam(pictures)))
    assert [f.index for f in frames] == [0, 1, 2] and all(f.image.shape == (480, 640, 3) for f in frames)
    assert capsys.readouterr().err.count("empty") == 1  # said once


def test_a_camera_that_gives_only_empty_reads_has_delivered_no_frame(monkeypatch):
    source = _camera(monkeypatch, PictureWebcam([None] * 100))
    with pytest.raises(UserError, match="camera 0 opened but delivered no frame"):
        next(iter(source.frames()))


def test_a_camera_that_tells_no_size_is_asked_by_its_first_picture(monkeypatch):
    # some backends answer 0x0 until a frame was read: the sinks were opened at 0x0
    camera = PictureWebcam([_picture(720, 1280)] * 4, size=(0, 0))
    source = _camera(monkeypatch, camera)
    assert (source.width, source.height) == (1280, 720) and "1280x720" in source.description
    assert all(f.image.shape == (720, 1280, 3) for f in _read_all(source))


def test_a_camera_that_tells_no_size_and_gives_no_picture_is_refused_at_once(monkeypatch):
    with pytest.raises(UserError, match="camera 0 opened but delivered no frame"):
        _camera(monkeypatch, PictureWebcam([None] * 100, size=(0, 0)))


@pytest.mark.parametrize("reported", [0.0, -1.0, float("nan"), float("inf")])
def test_a_frame_rate_the_camera_cannot_tell_is_taken_as_30(reported):
    camera = FakeWebcam()
    camera.fps = reported
    mode = configure_capture(camera, None, 0, "auto")
    assert mode.fps == 30.0


def test_a_camera_bigger_than_announced_feeds_the_virtual_camera_at_the_announced_size(monkeypatch, shared_models,
                                                                                       capsys):
    # pyvirtualcam refuses a frame of another shape than it was opened at ("unexpected frame shape")
    import sys
    import types

    import numpy as np

    from stream import cli

    sent = []

    class Camera:
        device, backend = "/dev/video7", "v4l2loopback"

        def __init__(self, width, height, fps, fmt):
            self.shape = (height, width, 3)

        def send(self, frame):
            if frame.shape != self.shape or frame.dtype != np.uint8:
                raise ValueError(f"unexpected frame shape: {frame.shape} != {self.shape}")
            sent.append(frame.shape)

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "pyvirtualcam", types.SimpleNamespace(
        Camera=Camera, PixelFormat=types.SimpleNamespace(BGR="BGR")))
    _camera(monkeypatch, PictureWebcam([_picture(720, 1280)] * 6))  # the fakes, in place for the run
    status = cli.main(["run", "camera:0", "-o", "vcam", "--no-progress", "--refine", "off"])
    err = capsys.readouterr().err
    assert status == 2 and "stopped delivering frames after 6" in err, err  # the fake camera's end, no other
    assert sent and set(sent) == {(480, 640, 3)}


def test_a_webcams_second_device_node_is_named_with_the_one_that_gives_pictures(monkeypatch, tmp_path):
    # a UVC webcam lists two nodes (video0: pictures, video1: metadata); `ls /dev/video*` shows both and
    # camera:1 is the usual first guess for "the other camera"
    from stream import camera as cameras

    root = tmp_path / "video4linux"
    webcam, other = tmp_path / "usb1" / "1-1:1.0", tmp_path / "usb2" / "2-1:1.0"
    for node, device, index in (("video0", webcam, 0), ("video1", webcam, 1), ("video2", other, 0)):
        (root / node).mkdir(parents=True)
        device.mkdir(parents=True, exist_ok=True)
        (root / node / "device").symlink_to(device)
        (root / node / "index").write_text(f"{index}\n")
        (root / node / "name").write_text("Integrated Camera\n")
    monkeypatch.setattr(cameras, "VIDEO4LINUX", root)
    _closed_cameras(monkeypatch, tmp_path, ["video0", "video1", "video2"])
    with pytest.raises(UserError, match=r"camera 1 is the second device node of Integrated Camera .*try camera:0"):
        open_source("camera:1")
    with pytest.raises(UserError, match=r"camera 2 could not be opened: it is busy or gives no pictures"):
        open_source("camera:2")
    with pytest.raises(UserError, match=r"camera 5 could not be opened"):
        open_source("camera:5")


def _closed_cameras(monkeypatch, tmp_path, nodes):
    """Linux with these /dev/video* nodes (in a folder of the test's), none of which opens."""
    from stream import camera as cameras

    dev = tmp_path / "dev"
    dev.mkdir()
    for node in nodes:
        (dev / node).touch()
    monkeypatch.setattr(cameras, "DEV", dev)
    monkeypatch.setattr(cameras.sys, "platform", "linux")

    class Closed:
        def isOpened(self):
            return False

    monkeypatch.setattr(cameras, "_open_camera", lambda index: Closed())
    return dev


def test_a_machine_without_any_camera_device_is_told_so(monkeypatch, tmp_path):
    # it advised "try camera:0, ... list them with: ls /dev/video*" where no /dev/video* exists (a server, a VM)
    _closed_cameras(monkeypatch, tmp_path, [])
    with pytest.raises(UserError) as caught:
        open_source("camera:1")
    message = str(caught.value)
    assert message.startswith("camera 1 could not be opened: this machine has no camera device (no /dev/video*)")
    assert "plugged in" in message and "virtual machine or container" in message
    assert "try camera:0" not in message and "ls /dev/video" not in message


def test_a_camera_number_the_machine_lacks_is_told_the_ones_it_has(monkeypatch, tmp_path):
    dev = _closed_cameras(monkeypatch, tmp_path, ["video0", "video1", "video2", "video10", "video-meta"])
    with pytest.raises(UserError, match=rf"camera 5 could not be opened: there is no {dev}/video5; this machine has "
                                        r"camera:0, camera:1, camera:2, camera:10 \(see depthcam doctor\)$"):
        open_source("camera:5")


def test_a_camera_the_user_may_not_use_names_the_group_to_join(monkeypatch, tmp_path):
    from stream import camera as cameras

    dev = _closed_cameras(monkeypatch, tmp_path, ["video0"])
    monkeypatch.setattr(cameras.os, "access", lambda path, mode: False)  # as a user outside the video group
    monkeypatch.setattr(cameras, "_group_of", lambda path: "video")
    with pytest.raises(UserError, match=rf"camera 0 could not be opened: no permission to use {dev}/video0; add "
                                        r"yourself to its group \(sudo usermod -aG video \$USER, then log in again\)"):
        open_source("camera:0")


def test_on_macos_a_camera_that_gives_nothing_names_the_camera_permission(monkeypatch):
    from stream import camera as cameras

    # AVFoundation opens a camera the user has not allowed and reads nothing: the same as a busy camera,
    # unless the message says where macOS allows it
    source = _camera(monkeypatch, PictureWebcam([None] * 100))
    monkeypatch.setattr(cameras.sys, "platform", "darwin")
    with pytest.raises(UserError, match=r"delivered no frame .*Or not allowed: .*Privacy & Security > Camera"):
        next(iter(source.frames()))


def test_on_windows_a_camera_that_cannot_open_names_the_camera_permission(monkeypatch):
    from stream import camera as cameras

    class Closed:
        def isOpened(self):
            return False

    monkeypatch.setattr(cameras, "_open_camera", lambda index: Closed())
    monkeypatch.setattr(cameras.sys, "platform", "win32")
    with pytest.raises(UserError, match=r"could not be opened: .*Privacy & security > Camera") as caught:
        open_source("camera:0")
    assert "video-device permissions" not in str(caught.value)  # Linux's advice
