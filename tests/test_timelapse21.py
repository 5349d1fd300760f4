"""A time-lapse (or a security camera's stills) in MP4/MOV with an encoder that reorders: a composition offset (pts -
dts) of x264 spans five pauses, of x265 six (B-frames in a row, and decoding times two pictures behind), and FFmpeg's
MP4 muxer refuses one over 2**31 ticks with "Not yet implemented in FFmpeg, patches welcome". The writer shows a
picture again within a pause short enough that no offset reaches that."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream.errors import UserError
from stream.track_timeline import MP4_MAX_TICKS
from stream.video_writer import VideoWriter

FPS = 30
GAP = 5960.0  # 8 pictures this far apart failed: 5 or 6 of these pauses make more than 2**31 ticks at 90 kHz


def _picture(index: int) -> np.ndarray:
    """A smooth picture moving a little each time: what both encoders code with B-frames (unlike noise)."""
    x = np.arange(96)[None, :, None] + 2 * index
    y = np.arange(64)[:, None, None]
    return ((np.sin(x / 7.0) + np.cos(y / 5.0)) * 60 + 128).astype(np.uint8).repeat(3, axis=2)


def _write(path: Path, seconds: list[float], codec: str, hold: bool = True) -> VideoWriter:
    writer = VideoWriter(path, 96, 64, FPS, codec=codec)
    if not hold:  # as the writer held pictures before (no copies): the muxer is left to refuse
        writer._max_ticks = None
    for index, at in enumerate(seconds):
        writer.write(_picture(index), at)
    writer.close()
    return writer


def _read(path: Path) -> tuple[list[float], float, int]:
    """Every decoded picture's time, the length FFmpeg reads, and the largest composition offset in ticks."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        offsets = [packet.pts - packet.dts for packet in container.demux(stream) if packet.pts is not None]
        container.seek(0)
        times = [float(frame.time) for frame in container.decode(stream)]
        return times, container.duration / 1e6, max(offsets)


@pytest.mark.parametrize("codec, suffix, pictures", [("hevc", ".mov", 8), ("hevc", ".mp4", 20), ("hevc", ".mov", 3),
                                                     ("h264", ".mp4", 8), ("h264", ".mov", 20)])
def test_a_time_lapse_with_b_frames_keeps_every_picture_at_its_time(tmp_path, codec, suffix, pictures):
    """Pictures 5960 s apart (1.66 h, under the 3.3 h a picture lasts before it is shown again): the run failed
    with FFmpeg's "Not yet implemented in FFmpeg, patches welcome" (HEVC, and H.264 of pictures it reorders)."""
    given = [index * GAP for index in range(pictures)]
    writer = _write(tmp_path / f"out{suffix}", given, codec)
    times, length, offset = _read(tmp_path / f"out{suffix}")
    shown = [min(times, key=lambda at: abs(at - seconds)) for seconds in given]
    assert shown == pytest.approx(given, abs=1e-3)  # every picture at its time (copies between them)
    assert times == sorted(times) and times[-1] == pytest.approx(given[-1], abs=1e-3)
    assert length == pytest.approx(given[-1] + 1 / FPS, abs=1e-3)
    assert offset < MP4_MAX_TICKS
    assert writer.frames_written == writer.pictures_on_disk == pictures  # the copies are not counted


def test_a_pause_a_tick_longer_than_a_picture_lasts_ends_where_the_last_picture_ends(tmp_path):
    """A copy shown a whole limit after the picture before lasted a single tick to the next picture: its 1-tick
    sample, stored right after the last picture (a P-frame stored before B-frames), ended the file a frame early."""
    probe = VideoWriter(tmp_path / "probe.mp4", 96, 64, FPS, codec="h264")
    limit = probe._max_ticks  # the longest a picture lasts before it is shown again
    probe.close()
    ticks = [0, limit, 2 * limit] + [index * limit + 1 for index in range(3, 8)]
    given = [tick / 90_000 for tick in ticks]
    _write(tmp_path / "out.mp4", given, "h264")
    times, length, _ = _read(tmp_path / "out.mp4")
    assert [min(times, key=lambda at: abs(at - seconds)) for seconds in given] == pytest.approx(given, abs=1e-3)
    assert length == pytest.approx(given[-1] + 1 / FPS, abs=1e-3)


def test_a_time_the_mp4_muxer_cannot_store_is_said_in_one_line(tmp_path):
    """FFmpeg's AVERROR_PATCHWELCOME from the muxer ("Not yet implemented in FFmpeg, patches welcome") is said as
    what it is, with the fix, rather than as FFmpeg's raw error."""
    with pytest.raises(UserError) as refused:
        _write(tmp_path / "out.mov", [index * GAP for index in range(8)], "hevc", hold=False)
    message = str(refused.value)
    assert message == ("cannot write out.mov: FFmpeg's mov muxer cannot store the times of the video (a pause too long "
                       "for its 32-bit times); write .mkv instead")
