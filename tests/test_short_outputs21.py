"""The video writer at its edges (twenty-first session): FFV1 of pictures under 4 px a side, which FFmpeg refused to
code in 16 slices, written with as many slices as the picture holds, directly and through a run that keeps an FFV1
input's codec (codec auto)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream.video_writer import VideoWriter, ffv1_slices
from tests.test_output_codec import depthcam, read_back


def _pictures(width: int, height: int, count: int, channels: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(21)  # seeded: the same pictures every run
    return [rng.integers(0, 256, (height, width, channels), dtype=np.uint8) for _ in range(count)]


def _write(path: Path, pictures: list[np.ndarray], codec: str) -> Path:
    height, width = pictures[0].shape[:2]
    writer = VideoWriter(path, width, height, 30, codec=codec)
    for index, picture in enumerate(pictures):
        writer.write(picture, index / 30)
    writer.close()
    return path


@pytest.mark.parametrize("suffix", [".mkv", ".avi"])
@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 5), (5, 3), (2, 9)])
def test_ffv1_of_a_picture_under_4_px_a_side_is_written_exactly(tmp_path, suffix, size):
    """FFV1 was asked for 16 slices (4 by 4), and FFmpeg refused a picture with a side under 4 px: the run failed at
    its first picture with "cannot write out.mkv: [Errno 38] Function not implemented: 'avcodec_open2(\"ffv1\",
    ...)'" (a 3x5 clip, `--codec ffv1`, or an FFV1 input kept in FFV1 by codec auto)."""
    pictures = _pictures(*size, count=2)
    _, frames = read_back(_write(tmp_path / f"out{suffix}", pictures, "ffv1"))
    assert [frame.to_ndarray(format="bgr24").tolist() for frame in frames] == [p.tolist() for p in pictures]


def test_ffv1_with_alpha_of_a_tiny_picture_keeps_its_alpha(tmp_path):
    pictures = _pictures(3, 2, count=2, channels=4)
    _, frames = read_back(_write(tmp_path / "out.mkv", pictures, "ffv1"))
    for frame, picture in zip(frames, pictures, strict=True):  # 10-bit alpha read back to 8 bits: within a level
        assert np.abs(frame.to_ndarray(format="bgra").astype(int) - picture).max() <= 1


def test_ffv1_slices_are_16_wherever_the_picture_holds_them():
    assert [ffv1_slices(*size) for size in [(1, 1), (1, 9), (2, 2), (3, 5), (4, 4), (1920, 1080)]] == \
        [1, 1, 4, 9, 16, 16]


def test_a_run_keeps_a_tiny_ffv1_input_in_ffv1(tmp_path):
    """codec auto keeps an FFV1 input's codec: a 3x5 one failed the run ("stopped after 0 frames; nothing was
    written")."""
    import av

    from test_models import _first_channel_model

    given = tmp_path / "tiny.mkv"
    with av.open(str(given), "w") as container:
        stream = container.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = 3, 5, "yuv444p"
        for picture in _pictures(3, 5, count=3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    out = tmp_path / "out.mkv"
    ran = depthcam("run", str(given), "-o", str(out), "--model", str(_first_channel_model(tmp_path / "any.onnx")),
                   "--model-size", "48x32", "--model-input", "unit", "--refine", "off", "--no-progress")
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
    stream, frames = read_back(out)
    assert (stream.codec_context.name, stream.width, stream.height, len(frames)) == ("ffv1", 3, 5, 3)


@pytest.mark.parametrize("codec, suffix", [("h264", ".mp4"), ("hevc", ".mov")])
@pytest.mark.parametrize("pictures", [1, 2])
def test_a_last_picture_of_4_hours_lasts_4_hours_in_mp4(tmp_path, codec, suffix, pictures):
    """A last picture longer than MP4 holds (3.3 h at 90 kHz) is shown again through the pause; with the decoding
    times two pictures behind, a copy's sample seemed to last a whole 2**29 ticks past its time, and the check of
    the last picture's edit lengthened the file to 20365 s (5.7 h) for 4 h."""
    import av

    images = _pictures(66, 66, count=pictures)
    writer = VideoWriter(tmp_path / f"out{suffix}", 66, 66, 30, codec=codec)
    for index, image in enumerate(images):
        writer.write(image, index / 30, 4 * 3600.0 if index == pictures - 1 else None)
    writer.close()
    with av.open(str(tmp_path / f"out{suffix}")) as container:
        assert abs(container.duration / 1e6 - (4 * 3600 + (pictures - 1) / 30)) < 0.05
