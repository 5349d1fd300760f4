"""Review of the twenty-first session's later commits: the edges they left (doctor's cameras named by /sys alone, the
MP4 muxer's "patches welcome" line on other outputs, a raw stream's line) and the ordinary paths they must keep
(an MJPEG .avi is no raw stream, a screen recording's pause before its last pictures)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from stream.sources import _raw_rate_unknown, open_source
from stream.video_writer import VideoWriter
from test_live20 import _linux_cameras


def _sys_cameras(monkeypatch, tmp_path: Path, nodes: list[tuple[int, str, int]], in_dev: bool) -> None:
    """Linux whose /sys names these cameras ((N of /dev/videoN, name, node index)); `in_dev`: their /dev nodes too."""
    dev = _linux_cameras(monkeypatch, tmp_path, nodes)
    if not in_dev:
        for node in dev.iterdir():
            node.unlink()


def test_doctor_lists_no_camera_that_has_no_device_node(monkeypatch, tmp_path):
    """A container not given --device /dev/video0 sees the host's cameras in /sys but no /dev/video*: doctor said
    "camera:0 (HD Pro Webcam C920)" (ok), and `depthcam run camera:0` then failed."""
    from stream import doctor

    _sys_cameras(monkeypatch, tmp_path, [(0, "HD Pro Webcam C920", 0), (1, "HD Pro Webcam C920", 1)], in_dev=False)
    check = doctor._cameras()
    assert not check.ok and check.detail == "no /dev/video* device"


def test_doctor_still_lists_the_cameras_there(monkeypatch, tmp_path):
    from stream import doctor

    _sys_cameras(monkeypatch, tmp_path, [(0, "Integrated Camera", 0), (1, "Integrated Camera", 1)], in_dev=True)
    check = doctor._cameras()
    assert check.ok and check.detail == "camera:0 (Integrated Camera)"


def _started_writer(path: Path) -> VideoWriter:
    writer = VideoWriter(path, 64, 48, 30, codec="ffv1" if path.suffix == ".mkv" else "h264")
    writer.write(np.full((48, 64, 3), 90, np.uint8), 0.0)
    return writer


def test_a_patches_welcome_error_outside_mp4_is_not_called_a_long_pause(tmp_path):
    """FFmpeg's AVERROR_PATCHWELCOME (any encoder's or muxer's missing feature) was said, for every output, as the MP4
    muxer's 32-bit times with "write .mkv instead", also to a run writing .mkv: left as FFmpeg says it there."""
    import av

    error = av.error.PatchWelcomeError(0, "Not yet implemented in FFmpeg, patches welcome")
    for name, said in (("out.mkv", False), ("out.mp4", True)):
        writer = _started_writer(tmp_path / name)
        try:
            refusal = writer._refusal(error)
            assert (refusal is not None) == said
            assert refusal is None or "write .mkv instead" in str(refusal)
        finally:
            writer.close()


@pytest.mark.parametrize("long_name, article", [("AV1 low overhead OBU", "an"), ("raw H.264 video", "a")])
def test_a_raw_stream_without_a_rate_is_named_with_its_article(long_name, article):
    """An AV1 .obu said "av1.obu is a AV1 low overhead OBU stream with no frame rate"."""
    container = SimpleNamespace(format=SimpleNamespace(long_name=long_name, name="obu"))
    stream = SimpleNamespace(codec_context=SimpleNamespace(has_b_frames=0))
    line = _raw_rate_unknown(Path("in.obu"), container, stream, 25.0)
    assert line.startswith(f"in.obu is {article} {long_name} stream with no frame rate: read at 25 fps")


def test_an_mjpeg_avi_is_no_raw_stream(tmp_path, capsys):
    """The `mjpeg` demuxer is among the raw streams': an MJPEG .avi (a camera's) keeps its own rate, said nothing."""
    import av

    path = tmp_path / "camera.avi"
    with av.open(str(path), "w") as container:
        video = container.add_stream("mjpeg", rate=15)
        video.width, video.height, video.pix_fmt = 64, 48, "yuvj420p"
        for index in range(4):
            image = np.full((48, 64, 3), 40 * index, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    source = open_source(str(path))
    try:
        assert source.fps == 15 and len(list(source.frames())) == 4
    finally:
        source.close()
    assert "no frame rate" not in capsys.readouterr().err


def test_a_screen_recordings_pause_before_its_last_pictures_keeps_the_sound(tmp_path):
    """A variable rate ending with pictures after a 0.5 s pause, the sound copied (AAC): the decoding times moved
    later at the end (2709bf0) end the video where its last picture ends (it read 0.28 s long before) and leave the
    sound's packets as they were."""
    import av

    from tests.media import make_video

    phone = make_video(tmp_path / "phone.mp4", frames=30, fps=30, size=(64, 48))
    given = [index / 60 for index in range(40)] + [40 / 60 + 0.5, 40 / 60 + 0.5 + 1 / 60]
    writer = VideoWriter(tmp_path / "out.mp4", 64, 48, 60, audio_from=phone, codec="h264")
    for index, at in enumerate(given):
        writer.write(np.full((48, 64, 3), (index * 37) % 256, np.uint8), at)
    writer.close()
    with av.open(str(phone)) as source:
        sound_in = [(packet.pts, packet.duration) for packet in source.demux(audio=0) if packet.size]
    with av.open(str(tmp_path / "out.mp4")) as output:
        video, audio = output.streams.video[0], output.streams.audio[0]
        video_seconds = float(video.duration * video.time_base)
        sound_out = [(packet.pts, packet.duration) for packet in output.demux(audio) if packet.size]
        output.seek(0)
        times = [float(frame.time) for frame in output.decode(video)]
    assert times == pytest.approx(given, abs=1e-3)
    assert video_seconds == pytest.approx(given[-1] + 1 / 60, abs=1e-3)
    assert sound_out == sound_in
