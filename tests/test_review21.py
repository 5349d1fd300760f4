"""Review of the twenty-first session: the ordinary paths around its changes (x265's decoding times set to the
presentation times for one or two pictures, the edit list's end from the picture shown last, the rate of a
stream FFmpeg averaged none for, the length of a stream measured from its own start) stay as they were."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from stream.sources import open_source
from stream.video_writer import VideoWriter


def _pictures(count: int, width: int = 96, height: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(21)  # seeded: the same pictures every run
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def _written(path: Path, times: list[float], codec: str, last_seconds: float | None = None) -> Path:
    images = _pictures(4)
    writer = VideoWriter(path, 96, 64, 30, codec=codec)
    for index, time in enumerate(times):
        writer.write(images[index % 4], time, last_seconds if index == len(times) - 1 else None)
    writer.close()
    return path


def _packets_and_length(path: Path) -> tuple[list[tuple[int, int]], list[float], float]:
    """The video packets' (pts, dts) in decoding order, the pictures' times and the file's length as FFmpeg reads it."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(packet.pts, packet.dts) for packet in container.demux(stream) if packet.size]
        container.seek(0)
        times = [float(frame.time) for frame in container.decode(stream)]
        return packets, times, container.duration / 1e6


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize("pictures", [3, 5])
def test_hevc_of_three_pictures_or_more_keeps_x265s_decoding_times(tmp_path, suffix, pictures):
    """dts = pts only for a stream of one or two pictures: from three on, x265's reordered decoding times (the first
    ones before 0) are muxed as it gives them."""
    packets, times, _ = _packets_and_length(_written(tmp_path / f"out{suffix}", [i / 30 for i in range(pictures)],
                                                     "hevc"))
    assert len(times) == pictures
    if suffix == ".mp4":  # Matroska stores no decoding time
        assert packets[0][1] < packets[0][0] and packets[0][1] < 0


@pytest.mark.parametrize("codec, suffix", [("h264", ".mp4"), ("hevc", ".mov")])
@pytest.mark.parametrize("pictures", [121, 181])
def test_a_b_frame_mp4_lasts_as_long_as_its_pictures(tmp_path, codec, suffix, pictures):
    """The edit list's end from the picture shown last: an ordinary run with B-frames (HEVC's 121 and 181 pictures
    have their edit mended) still lasts exactly its pictures."""
    _, times, length = _packets_and_length(_written(tmp_path / f"out{suffix}", [i / 30 for i in range(pictures)],
                                                    codec))
    assert len(times) == pictures and length == pytest.approx(pictures / 30, abs=1e-3)


@pytest.mark.parametrize("codec, suffix", [("h264", ".mp4"), ("hevc", ".mov")])
def test_a_4_hour_pause_in_the_middle_keeps_the_times_and_the_length(tmp_path, codec, suffix):
    given = [i / 30 for i in range(10)] + [4 * 3600 + i / 30 for i in range(10)]
    _, times, length = _packets_and_length(_written(tmp_path / f"out{suffix}", given, codec))
    assert all(any(abs(time - wanted) < 1e-3 for time in times) for wanted in given)
    assert length == pytest.approx(given[-1] + 1 / 30, abs=1e-3)


def test_a_last_picture_after_a_pause_is_in_the_length_ffmpeg_reads(tmp_path):
    """A variable frame rate whose last picture comes after a 20 s pause (a screen recording that ends on a change):
    the file's headers (tkhd, the edit list) say 21 s, but FFmpeg read 1.03 s, the picture at 20.97 s past its end."""
    given = [i / 30 for i in range(30)] + [20 + 29 / 30]
    _, times, length = _packets_and_length(_written(tmp_path / "out.mp4", given, "h264"))
    assert len(times) == 31
    assert length == pytest.approx(given[-1] + 1 / 30, abs=1e-3)


def _encoded_video(path: Path, pictures: int, rate: int, codec: str, offset: float = 0.0) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        start = round(Fraction(offset) * rate)
        for index, image in enumerate(_pictures(pictures)):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = start + index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _read(path: Path) -> tuple[float, int, str | None]:
    source = open_source(str(path))
    try:
        return source.fps, len(list(source.frames())), source.truncation_warning()
    finally:
        source.close()


@pytest.mark.parametrize("codec", ["libx264", "mpeg2video"])
@pytest.mark.parametrize("rate", [50, 60])
@pytest.mark.parametrize("pictures", [1, 2, 3, 30])
def test_a_50_or_60_fps_transport_stream_is_read_at_its_rate(tmp_path, codec, rate, pictures):
    """FFmpeg's guess of twice the codec's rate is halved only where it averaged none: a real 50 or 60 fps stream
    keeps its rate (of one or two pictures, it was read at 100 or 120)."""
    assert _read(_encoded_video(tmp_path / "in.ts", pictures, rate, codec)) == (rate, pictures, None)


@pytest.mark.parametrize("suffix, codec", [(".webm", "libvpx-vp9"), (".mkv", "libx264")])
def test_a_clip_starting_at_10_s_is_whole_and_its_cut_is_truncated(tmp_path, suffix, codec):
    """A clip cut out of a longer one keeping its times (it starts at 10 s): measured from its own start, it is not
    called truncated; cut short, it still is."""
    path = _encoded_video(tmp_path / f"in{suffix}", 60, 30, codec, offset=10.0)
    assert _read(path) == (30, 60, None)
    data = path.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[:int(len(data) * 0.6)])
    fps, count, warning = _read(cut)
    assert count < 45 and "it may be truncated" in (warning or "")
