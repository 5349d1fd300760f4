"""An MP4 or MOV whose last pictures come after a pause: FFmpeg reads the track's length from the decoding times (the
sample durations), which the encoder lags behind the pictures; the writer makes them reach where the pictures end,
without copies (the pictures are the input's) and without lengthening the edit list."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream.mp4_edit_list import _boxes, _find_moov, _read_track, _time_scale, _Track
from stream.video_writer import VideoWriter

FRAME = 1 / 30


def _written(path: Path, times: list[float], codec: str, last_seconds: float | None = None) -> Path:
    rng = np.random.default_rng(21)  # seeded: the same pictures every run
    images = [rng.integers(0, 256, (64, 96, 3), dtype=np.uint8) for _ in range(4)]
    writer = VideoWriter(path, 96, 64, 30, codec=codec)
    for index, time in enumerate(times):
        writer.write(images[index % 4], time, last_seconds if index == len(times) - 1 else None)
    writer.close()
    return path


def _as_ffmpeg_reads(path: Path) -> tuple[list[float], float]:
    """Every picture's time, decoded, and the file's length as FFmpeg reads it."""
    import av

    with av.open(str(path)) as container:
        times = [float(frame.time) for frame in container.decode(container.streams.video[0])]
        return times, container.duration / 1e6


def _header_seconds(path: Path) -> tuple[float, float]:
    """The video track's length in its header (tkhd) and its edit's, in seconds."""
    with open(path, "rb") as file:
        base, size = _find_moov(file)
        file.seek(base)
        data = file.read(size)
    scale = next(_time_scale(data, at) for kind, at, _ in _boxes(data, 0, len(data)) if kind == b"mvhd")
    for kind, at, stop in _boxes(data, 0, len(data)):
        track = _Track()
        if kind == b"trak":
            _read_track(data, at, stop, base, track)
            if track.handler == b"vide":
                return track.duration.value / scale, track.edit.value / scale
    raise AssertionError("no video track")


def _check(path: Path, given: list[float], end: float) -> None:
    times, length = _as_ffmpeg_reads(path)
    assert times == pytest.approx(given, abs=1e-3)  # every picture, at its time, none added
    assert length == pytest.approx(end, abs=1e-3)
    assert _header_seconds(path) == pytest.approx((end, end), abs=2e-3)


STEADY = [i * FRAME for i in range(30)]


@pytest.mark.parametrize("codec, suffix", [("h264", ".mp4"), ("h264", ".mov"), ("hevc", ".mp4"), ("hevc", ".mov")])
@pytest.mark.parametrize("after", [[20.9], [20.9, 20.9 + FRAME]], ids=["one", "two"])
def test_pictures_after_a_pause_at_the_end_are_in_the_length(tmp_path, codec, suffix, after):
    """One or two last pictures 20 s after the others: FFmpeg read 1.03 or 1.07 s of 20.93 s (the decoding times two
    pictures behind), and cut them. Two after the pause, the second stored before the first (a B-frame): its
    decoding time moved alone, the edit list said 40.9 s."""
    given = STEADY + after
    _check(_written(tmp_path / f"out{suffix}", given, codec), given, given[-1] + FRAME)


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_a_variable_rate_ending_unevenly_keeps_its_length(tmp_path, codec):
    """Pictures 10 ms late every third one and the last after 1 s: FFmpeg read 1.51 s of 2.53 s."""
    given = [i * FRAME + (0.01 if i % 3 == 1 else 0) for i in range(45)] + [2.5]
    _check(_written(tmp_path / "out.mp4", given, codec), given, given[-1] + FRAME)


def test_a_last_picture_after_a_pause_longer_than_a_picture_may_last(tmp_path):
    """3 h before the last picture (over the 1.66 h one picture may last: the one before is shown again through it):
    FFmpeg read 0.4 s of 3 h."""
    given = [i * FRAME for i in range(10)] + [3 * 3600.0]
    times, length = _as_ffmpeg_reads(_written(tmp_path / "out.mp4", given, "h264"))
    assert all(any(abs(time - wanted) < 1e-3 for time in times) for wanted in given)
    assert length == pytest.approx(given[-1] + FRAME, abs=1e-3)


@pytest.mark.parametrize("codec, suffix", [("h264", ".mp4"), ("hevc", ".mov")])
def test_a_long_last_picture_after_a_pause_lasts_its_own_time(tmp_path, codec, suffix):
    """A GIF-like last picture of 2 s after a 0.5 s pause: FFmpeg read 4.0 s of 4.47 s."""
    given = STEADY + [STEADY[-1] + 0.5]
    _check(_written(tmp_path / f"out{suffix}", given, codec, last_seconds=2.0), given, given[-1] + 2.0)
