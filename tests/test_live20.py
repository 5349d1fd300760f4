"""A webcam user's walk-through: the ways a camera is named (`run 0`, /dev/video0, its name), and the summary a live
run ends with. No camera here: a fake OpenCV capture paced at a camera's rate feeds the real pipeline and queues."""
import time

import cv2
import numpy as np
import pytest

from stream import camera as cameras
from stream.errors import UserError
from stream.frame import Frame, now_ns
from stream.pipeline import Pipeline
from stream.sinks import NullSink
from stream.sources import Source, open_source


class PacedWebcam:
    """An opened OpenCV capture that delivers `frames` pictures at `fps` (as a V4L2 camera paces its reads),
    then fails its reads as an unplugged camera's do."""

    def __init__(self, fps: float = 60.0, frames: int = 1000, size=(160, 120)) -> None:
        self.fps, self.frames, self.size, self.read_count, self.due = fps, frames, size, 0, None

    def isOpened(self):
        return True

    def getBackendName(self):
        return "AVFOUNDATION"  # no driver stamps: the read time counts

    def set(self, prop, value):
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: self.size[0], cv2.CAP_PROP_FRAME_HEIGHT: self.size[1],
                cv2.CAP_PROP_FPS: self.fps}.get(prop, 0.0)

    def read(self):
        if self.read_count >= self.frames:
            return False, None
        self.due = (self.due or now_ns()) + int(1e9 / self.fps)
        time.sleep(max(0.0, (self.due - now_ns()) / 1e9))
        self.read_count += 1
        return True, np.full((self.size[1], self.size[0], 3), self.read_count % 256, np.uint8)

    def release(self):
        pass


def _linux_cameras(monkeypatch, tmp_path, nodes):
    """Linux with these cameras: (N of /dev/videoN, device name, node index: 1 for a webcam's metadata node)."""
    root, dev = tmp_path / "video4linux", tmp_path / "dev"
    dev.mkdir()
    for number, name, index in nodes:
        (root / f"video{number}").mkdir(parents=True)
        (root / f"video{number}" / "index").write_text(f"{index}\n")
        (root / f"video{number}" / "name").write_text(f"{name}\n")
        (dev / f"video{number}").touch()
    monkeypatch.setattr(cameras, "VIDEO4LINUX", root)
    monkeypatch.setattr(cameras, "DEV", dev)
    monkeypatch.setattr(cameras.sys, "platform", "linux")
    return dev


# --- the ways a user names a camera ----------------------------------------------------------------------------------


def test_a_bare_number_and_a_cameras_device_mean_that_camera(monkeypatch, tmp_path):
    # `depthcam run 0` (OpenCV's habit) was "input 0 not found"; /dev/video0 was read as a video file ("Invalid data")
    dev = _linux_cameras(monkeypatch, tmp_path, [(0, "Integrated Camera", 0), (2, "HD Pro Webcam C920", 0)])
    monkeypatch.chdir(tmp_path)
    by_id = tmp_path / "usb-046d_HD_Pro_Webcam_C920-video-index0"
    by_id.symlink_to(dev / "video2")  # /dev/v4l/by-id/...: the name that stays when cameras are plugged in again
    assert cameras.camera_input("0") == "camera:0"
    assert cameras.camera_input("12") == "camera:12"
    assert cameras.camera_input(str(dev / "video2")) == "camera:2"
    assert cameras.camera_input(str(by_id)) == "camera:2"
    (tmp_path / "7").write_bytes(b"a file named 7")  # a file of that name is that file
    for spec in ("7", "clip.mp4", "camera:1", "synthetic:portrait", "rtsp://host/0", str(dev / "video2x")):
        assert cameras.camera_input(spec) == spec


def test_run_0_opens_camera_0(monkeypatch, tmp_path, capsys):
    from stream import cli

    _linux_cameras(monkeypatch, tmp_path, [(0, "Integrated Camera", 0)])
    opened = []

    class Closed:
        def isOpened(self):
            return False

    monkeypatch.setattr(cameras, "_open_camera", lambda index: opened.append(index) or Closed())
    monkeypatch.setattr(cameras.os, "access", lambda path, mode: True)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "0", "-o", "null"]) == 2
    assert opened == [0]
    assert "camera 0 could not be opened: it is busy" in capsys.readouterr().err


def test_a_camera_is_chosen_by_its_name(monkeypatch, tmp_path):
    _linux_cameras(monkeypatch, tmp_path, [(0, "Integrated Camera: Integrated C", 0), (1, "Integrated Camera", 1),
                                           (2, "HD Pro Webcam C920", 0), (4, "HD Pro Webcam C920", 0)])
    assert cameras.parse_camera_spec("camera:integrated?fps=30")[:3] == (0, None, 30)
    assert cameras.parse_camera_spec("camera:integrated%20camera")[0] == 0  # not its metadata node, video1
    with pytest.raises(UserError, match=r"bad camera 'camera:C920': it names 2 cameras, camera:2 \(HD Pro Webcam "
                                        r"C920\), camera:4 \(HD Pro Webcam C920\); give its number, e.g. camera:2"):
        cameras.parse_camera_spec("camera:C920")
    with pytest.raises(UserError, match=r"bad camera 'camera:Brio': no camera is named like 'Brio'; this machine "
                                        r"has camera:0 \(Integrated Camera: Integrated C\), camera:2 \(HD Pro Webcam "
                                        r"C920\), camera:4"):
        cameras.parse_camera_spec("camera:Brio")


def test_a_camera_name_where_names_cannot_be_looked_up(monkeypatch, tmp_path):
    monkeypatch.setattr(cameras.sys, "platform", "darwin")
    with pytest.raises(UserError, match="cameras are found by name on Linux only; write camera:N"):
        cameras.parse_camera_spec("camera:FaceTime")
    _linux_cameras(monkeypatch, tmp_path, [])
    with pytest.raises(UserError, match="no camera is named like 'C920', as this machine lists none"):
        cameras.parse_camera_spec("camera:C920")


# --- the summary a live run ends with --------------------------------------------------------------------------------


class SlowStage:
    """A stage slower than the camera (a CPU's 20 fps against a 60 fps webcam)."""

    name, max_batch, max_wait_ms, passes_at_once = "render", 1, 0.0, False

    def process(self, batch: list[Frame]) -> list[Frame]:
        time.sleep(0.05)
        return batch

    def close(self) -> None:
        pass


def _fake_camera(monkeypatch, camera: PacedWebcam) -> Source:
    monkeypatch.setattr(cameras, "_open_camera", lambda index: camera)
    monkeypatch.setattr(cameras, "CAMERA_RECONNECT_S", 0.05)
    monkeypatch.setattr(cameras, "CAMERA_RETRY_PAUSE_S", 0.01)
    return open_source("camera:0")


def test_a_live_run_counts_what_it_captured_processed_and_dropped_and_its_latency(monkeypatch):
    # 60 frames at 60 fps into a 20 fps stage: the live queue drops the oldest, and the summary's figures add up
    camera = PacedWebcam(fps=60, frames=60)
    pipeline = Pipeline(_fake_camera(monkeypatch, camera), [SlowStage()], NullSink(), queue_size=1)
    with pytest.raises(UserError, match="stopped delivering frames after 60"):  # the fake camera's end
        pipeline.run()
    summary = pipeline.live_summary()
    dropped = pipeline.queues[0].dropped
    assert summary.startswith(f"60 frames captured, {pipeline.frames_written} processed, {dropped} dropped to keep up")
    assert 0 < pipeline.frames_written < 60 and dropped > 0 and pipeline.frames_written + dropped == 60
    assert len(pipeline.latency_ns) == pipeline.frames_written and min(pipeline.latency_ns) > 0
    assert "; capture to output latency p50 " in summary and " ms, p95 " in summary


def test_a_file_run_has_no_live_summary(tmp_path):
    from stream.sources import SyntheticSource

    pipeline = Pipeline(SyntheticSource("synthetic:portrait?size=64x48&frames=3"), [SlowStage()], NullSink())
    assert pipeline.run().frames_written == 3 and pipeline.live_summary() is None


def test_a_video_file_played_in_a_window_says_its_frames_were_played_not_captured():
    """A video file paced for a window is a live source to the pipeline, but no camera captured its frames."""
    from stream.sources import PacedSource, SyntheticSource

    source = SyntheticSource("synthetic:portrait?size=64x48&frames=3")
    source.live = False  # as a file's source is
    pipeline = Pipeline(PacedSource(source), [SlowStage()], NullSink())
    assert pipeline.run().frames_written == 3
    assert pipeline.live_summary().startswith("3 frames played, 3 processed, 0 dropped")
    camera = Pipeline(SyntheticSource("synthetic:portrait?size=64x48&frames=3&realtime=1"), [SlowStage()], NullSink())
    camera.run()
    assert camera.live_summary().startswith("3 frames captured")


def test_the_run_line_ends_a_webcam_session_with_its_summary(monkeypatch, shared_models, capsys):
    from stream import cli

    _fake_camera(monkeypatch, PacedWebcam(fps=60, frames=30))
    assert cli.main(["run", "camera:0", "-o", "null", "--no-progress", "--refine", "off"]) == 2  # unplugged at 30
    lines = capsys.readouterr().err.splitlines()
    summary = [line for line in lines if "frames captured" in line]
    assert len(summary) == 1 and summary[0].startswith("depthcam: 30 frames captured, ")
    assert "latency p50" in summary[0] and "dropped" not in "".join(line for line in lines if line not in summary)


# --- a camera unplugged and plugged in again ------------------------------------------------------------------------


def test_a_camera_plugged_in_again_within_seconds_comes_back(monkeypatch, capsys):
    # its cable pulled out and pushed back in: away for 3 s (the 1.5 s the run waited ended it, exit status 2)
    camera, missing = PacedWebcam(fps=30, frames=5), PacedWebcam(fps=30)
    missing.isOpened = lambda: False
    back_at = []

    def opening(index):
        if not back_at:  # the first opening, the run's
            back_at.append(None)
            return camera
        if back_at[-1] is None:
            back_at[-1] = time.monotonic() + 3.0
        return PacedWebcam(fps=30, frames=4) if time.monotonic() >= back_at[-1] else missing

    monkeypatch.setattr(cameras, "_open_camera", opening)
    monkeypatch.setattr(cameras, "CAMERA_RETRY_PAUSE_S", 0.05)
    frames = []
    for frame in open_source("camera:0").frames():
        frames.append(frame)
        if len(frames) == 9:
            break
    assert [frame.index for frame in frames] == list(range(9))
    assert frames[5].capture_ns - frames[4].capture_ns > 2.9e9  # the recording keeps the pause as it was
    notes = capsys.readouterr().err
    assert "camera 0 stopped delivering frames; opening it again for up to 10 s" in notes and "came back" in notes


def test_doctor_lists_the_cameras_that_give_pictures_by_name(monkeypatch, tmp_path):
    """A webcam's second node (its metadata) was listed beside the first, as another camera to try."""
    from stream import doctor

    _linux_cameras(monkeypatch, tmp_path, [(0, "Integrated Camera", 0), (1, "Integrated Camera", 1),
                                           (2, "HD Pro Webcam C920", 0), (3, "HD Pro Webcam C920", 1)])
    check = doctor._cameras()
    assert check.ok and check.detail == "camera:0 (Integrated Camera), camera:2 (HD Pro Webcam C920)"
