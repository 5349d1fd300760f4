"""Raw elementary streams and short FLVs (the twenty-first session): a raw .h264 / .hevc (a Raspberry Pi's, a drone's)
is read at the rate its SPS gives, not FFmpeg's default 25, and one that gives none says so; an FLV's length is not
counted twice from its start (a 3-picture 60 fps FLV was called truncated), while a cut one still is."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from stream.sources import open_source
from test_damaged_video import _encode as encode_portrait

X265_QUIET = "log-level=error"


def _encode(path: Path, codec: str, frames: int, rate: int | Fraction = 60,
            options: dict[str, str] | None = None) -> Path:
    """`frames` pictures of the synthetic portrait at `rate` fps in `codec`, the container (or raw stream) by `path`'s
    suffix."""
    return encode_portrait(path, codec, frames=frames, options=options, rate=rate)


def _read(path: Path) -> tuple[object, list, str | None]:
    """The source opened on `path` (closed), its frames and the warning after them."""
    source = open_source(str(path))
    try:
        frames = list(source.frames())
        return source, frames, source.truncation_warning()
    finally:
        source.close()


@pytest.mark.parametrize("codec, suffix, options", [("libx264", ".h264", {}),
                                                    ("libx265", ".hevc", {"x265-params": X265_QUIET})])
def test_a_raw_stream_is_read_at_the_rate_its_sps_gives(tmp_path, capsys, codec, suffix, options):
    """60 fps in the SPS's timing: FFmpeg's raw demuxer averages 25 (its default); the run said "@ 25 fps", wrote a
    25 fps output 2.4 times as long, and its progress counted 0.24 s for 6 pictures."""
    import av

    path = _encode(tmp_path / f"in{suffix}", codec, frames=6, options=options)
    with av.open(str(path)) as container:  # as FFmpeg reads it: the case guarded
        assert container.streams.video[0].average_rate == 25
    source, frames, warning = _read(path)
    assert source.fps == 60 and "@ 60 fps" in source.description
    assert len(frames) == 6 and source.seconds_done(frames[-1]) == pytest.approx(0.1)
    assert warning is None and "no frame rate" not in capsys.readouterr().err


def test_a_raw_stream_without_a_frame_rate_says_so(tmp_path, capsys):
    """No timing in the SPS (raspivid's usual stream): the rate is unknown, read at 25 and said once, with the
    command that gives it one (re-encoded: x265's B-frames are stored out of order, which a copy loses)."""
    options = {"x265-params": f"{X265_QUIET}:vui-timing-info=0:vui-hrd-info=0"}
    path = _encode(tmp_path / "in.hevc", "libx265", frames=6, options=options)
    source, frames, _ = _read(path)
    said = [line for line in capsys.readouterr().err.splitlines() if "no frame rate" in line]
    assert source.fps == 25 and len(frames) == 6
    assert len(said) == 1 and "in.hevc is a raw HEVC video stream with no frame rate: read at 25 fps" in said[0]
    assert "ffmpeg -framerate 30 -i in.hevc -crf 16 in.mp4" in said[0]


def test_a_raw_stream_without_b_frames_is_told_to_be_copied(tmp_path, capsys):
    """A Pi's encoder makes no B-frames: its pictures are stored in order and a copy keeps them."""
    options = {"x265-params": f"{X265_QUIET}:vui-timing-info=0:vui-hrd-info=0:bframes=0"}
    _read(_encode(tmp_path / "in.hevc", "libx265", frames=3, options=options))
    assert "ffmpeg -framerate 30 -i in.hevc -c copy in.mp4" in capsys.readouterr().err


@pytest.mark.parametrize("frames", [3, 4, 30])
def test_a_short_flv_is_not_called_truncated(tmp_path, frames):
    """x264's B-frames start the FLV's pictures at 33 ms; its duration (onMetaData's) ends there, on the file's clock
    from 0: counted from the start again, 3 pictures "announced 0.1 s of video but its pictures end after 0.0 s",
    and the progress bar counted 5 (92 for 90)."""
    import av

    path = _encode(tmp_path / "in.flv", "libx264", frames=frames, options={"bf": "2"})
    with av.open(str(path)) as container:  # as FFmpeg reads it: the case guarded
        assert container.streams.video[0].start_time > 0
    source, read, warning = _read(path)
    assert (len(read), source.frame_count, warning) == (frames, frames, None)


def test_a_cut_flv_is_still_called_truncated(tmp_path):
    """Its bytes cut at half: the duration in its header stays, its pictures end near half of it."""
    path = _encode(tmp_path / "in.flv", "libx264", frames=60, options={"bf": "2"})
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    _, read, warning = _read(path)
    assert 10 < len(read) < 50 and "it may be truncated" in (warning or "")


def test_an_mpeg2_elementary_stream_is_read_as_a_video(tmp_path):
    """A DVD's .m2v: Pillow recognises it (as "MPEG") but decodes none of it, and it was read as a damaged photo
    ("the MPEG picture (64x48) is damaged or cut short")."""
    source, frames, warning = _read(_encode(tmp_path / "dvd.m2v", "mpeg2video", frames=12, rate=25))
    assert len(frames) == 12 and source.fps == 25 and warning is None


@pytest.mark.parametrize("rate", [60, Fraction(30000, 1001)])
def test_a_part_of_a_raw_stream_is_the_pictures_at_its_times(tmp_path, rate):
    """Its pictures carry no times (FFmpeg's raw demuxers give none): --start 3 frames --duration 3 frames was
    ignored, every picture written. Timed a frame period apart at the stream's rate, the part is frames 3 to 5."""
    path = _encode(tmp_path / "in.h264", "libx264", frames=12, rate=rate)
    _, whole, _ = _read(path)
    source = open_source(str(path))
    try:
        source.set_range(float(3 / rate), float(3 / rate))
        part = list(source.frames())
    finally:
        source.close()
    assert [frame.pts_seconds for frame in whole] == pytest.approx([float(n / rate) for n in range(12)], abs=1e-6)
    assert len(part) == 3 and all(np.array_equal(a.image, b.image) for a, b in zip(part, whole[3:6]))
    assert [frame.pts_seconds for frame in part] == pytest.approx([float(n / rate) for n in (3, 4, 5)], abs=1e-6)
