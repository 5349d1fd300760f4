"""A subtitle line that begins where a part (--start/--duration) or a stopped run ends, or less than a tick of the
file before: left out, not muxed lasting 0 ticks at the last picture's end (players flash it, some refuse the file).
And MP4's overlapping lines, each ended where the next begins, on time."""
from __future__ import annotations

from pathlib import Path

import pytest
from media import text_line_packet

from tests.test_video_streams_kept import ASS_HEADER, _read, _run, _subtitled


def _subtitle_packets(path: Path) -> list[tuple[float, float]]:
    """Each subtitle packet's (start, length) in seconds, as the file stores it (mov_text's empty ones too)."""
    import av

    with av.open(str(path)) as container:
        return [(float(packet.pts * packet.time_base), float((packet.duration or 0) * packet.time_base))
                for packet in container.demux(container.streams.subtitles[0]) if packet.size and packet.pts is not None]


def _pictures_end(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        return max(float((packet.pts + (packet.duration or 0)) * packet.time_base)
                   for packet in container.demux(video=0) if packet.pts is not None)


def _mp4_as_ffmpeg_makes_it(path: Path, cues: list[tuple[float, float, str]]) -> Path:
    """3 s of 30 fps pictures from 0 on FFmpeg's own clocks for MP4 (pictures in 1/15360 s, mov_text lines in
    microseconds), as `ffmpeg -i clip -i lines.srt -c:s mov_text` writes them."""
    from fractions import Fraction

    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.time_base = video.codec_context.time_base = Fraction(1, 15360)
        lines = container.add_stream("mov_text")
        lines.codec_context.subtitle_header = ASS_HEADER
        lines.time_base = Fraction(1, 1_000_000)
        container.start_encoding()
        packets = []
        for i, (start, end, text) in enumerate(cues):
            packets.append(text_line_packet(lines, i, start, end, text))
        for i in range(90):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i % 200, np.uint8), format="bgr24")
            frame.pts, frame.time_base = i * 512, video.time_base
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        for packet in packets:
            container.mux(packet)
    return path


@pytest.mark.parametrize("made, codec", [(".mkv", "subrip"), (".mp4", "mov_text")])
@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".mp4"])
def test_a_line_beginning_where_the_part_ends_is_left_out(tmp_path, made, codec, suffix):
    """30 fps pictures from 0.021 s (FFmpeg's own files start so, after AAC's priming), --start 0.02 --duration 2:
    the part is 0.054 s to 2.054 s (a constant rate's part ends on a frame boundary), its first picture at 0.054 s.
    "Next" begins at 2.054 s, "After" at 2.064 s. A line beginning where the part ends came out a rounding below
    the pictures' end, and was muxed lasting 0 ticks there in .mkv and .webm."""
    cues = [(0.5, 1.941, "Before"), (2.054, 2.3, "Next"), (2.064, 2.3, "After")]
    source = _subtitled(tmp_path / f"in{made}", codec, video_start=0.021, frames=90, fps=30, cues=cues)
    out = tmp_path / f"out{suffix}"
    _run(source, out, start=0.02, duration=2.0)
    _, streams = _read(out)
    assert streams[0]["lines"] == [(0.446, 1.887, "Before")]
    end = _pictures_end(out)
    assert all(length > 0 and start < end for start, length in _subtitle_packets(out))


@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".mp4"])
def test_a_line_beginning_where_a_stopped_run_ends_is_left_out(tmp_path, suffix):
    """Ctrl-C after 4 pictures (10 fps from 1.0 s: they end at 0.4 s) as "Late" begins, at 1.4 s: 1.4 - 1.0 came out a
    rounding below 0.4, so the line was written, then cut at the stop to 0 ticks."""
    cues = [(1.1, 1.3, "Hello"), (1.4, 1.8, "Late")]
    out = tmp_path / f"out{suffix}"
    _run(_subtitled(tmp_path / "in.mkv", cues=cues), out, stop_after=4)
    _, streams = _read(out)
    assert streams[0]["lines"] == [(0.1, 0.3, "Hello")]
    end = _pictures_end(out)
    assert all(length > 0 and start < end for start, length in _subtitle_packets(out))


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_a_line_beginning_less_than_a_millisecond_before_the_pictures_end_is_left_out(tmp_path, suffix):
    """--start 0.05 --duration 1.995 of 30 fps pictures: the part's pictures end at 2.0333 s (1.9667 s in the output),
    and "Brief" begins at 2.033 s, 0.33 ms before: Matroska, whose ticks are milliseconds, stored it lasting 0."""
    source = _mp4_as_ffmpeg_makes_it(tmp_path / "in.mp4", [(0.5, 1.5, "Before"), (2.033, 2.3, "Brief")])
    out = tmp_path / f"out{suffix}"
    _run(source, out, start=0.05, duration=1.995)
    _, streams = _read(out)
    assert [text for _, _, text in streams[0]["lines"]] == ["Before"]
    assert all(length > 0 for _, length in _subtitle_packets(out))


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_overlapping_lines_keep_their_times_in_mp4(tmp_path, suffix):
    """An SRT's overlapping lines (two speakers): "Two" begins while "One" is on screen. An MP4 sample lasts until
    the next one, so "One" ends where "Two" begins. Given its whole length, FFmpeg's MP4 muxer ended it with an empty
    sample at 0.8 s and put "Two" and "Three" after it: 0.801 s to 1.001 s and 1.002 s to 1.302 s, 0.3 s and 0.1 s
    late."""
    cues = [(1.2, 1.8, "One"), (1.5, 1.7, "Two"), (1.9, 2.2, "Three")]
    out = tmp_path / f"out{suffix}"
    _run(_subtitled(tmp_path / "in.mkv", cues=cues), out)
    _, streams = _read(out)
    assert streams[0]["lines"] == [(0.2, 0.5, "One"), (0.5, 0.7, "Two"), (0.9, 1.2, "Three")]
