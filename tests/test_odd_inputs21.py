"""Inputs at their edges (the twenty-first session): recordings cut without re-encoding, whose first pictures never
show, are not taken for truncated ones; a transport stream of one or two pictures has its frame rate; an APNG's
pictures of 10 ms or less are shown 100 ms; an MP4 given no picture is said empty."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from stream.sources import open_source
from test_damaged_video import _encode


def _remuxed(source: Path, out: Path, skip: int = 0, shift: float = 0.0) -> Path:
    """`source`'s video packets copied into `out` as they are (no re-encoding), less the first `skip` in decode
    order, all times moved `shift` seconds earlier (an MP4 then hides those before 0 by its edit list, as
    `ffmpeg -ss SHIFT -c copy` leaves the GOP before its cut)."""
    import av

    with av.open(str(source)) as container, av.open(str(out), "w") as output:
        stream = container.streams.video[0]
        copy = output.add_stream_from_template(stream)
        ticks = round(Fraction(shift) / stream.time_base)
        for number, packet in enumerate(packet for packet in container.demux(stream) if packet.size):
            if number < skip:
                continue
            packet.pts, packet.dts, packet.stream = packet.pts - ticks, packet.dts - ticks, copy
            output.mux(packet)
    return out


def _read(path: Path) -> tuple[int, str | None]:
    """The pictures a run gets from `path`, and the warning after it."""
    source = open_source(str(path))
    try:
        return len(list(source.frames())), source.truncation_warning()
    finally:
        source.close()


@pytest.fixture(scope="module")
def gop_video(tmp_path_factory) -> Path:
    """48 pictures at 24 fps, a keyframe each second, B-frames."""
    return _encode(tmp_path_factory.mktemp("gop") / "in.mp4", "libx264", frames=48,
                   options={"g": "24", "keyint_min": "24", "bf": "2", "sc_threshold": "0"})


def test_an_mp4_cut_without_re_encoding_is_not_called_truncated(gop_video, tmp_path):
    """`ffmpeg -ss 0.5 -c copy`'s cut: the 12 pictures before 0.5 s are kept for the decoder, hidden by the edit list
    and counted in the frame count; the 36 shown were "only 36 of 48 frames decoded; it may be truncated"."""
    assert _read(_remuxed(gop_video, tmp_path / "cut.mp4", shift=0.5)) == (36, None)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_recording_cut_mid_gop_is_not_called_truncated(gop_video, tmp_path, suffix):
    """A recording whose first packet is not a keyframe (cut mid-GOP): its pictures up to the next keyframe, at
    1 s, cannot be made and the 24 after it are given; the MP4 was "announced 43 frames but only 24 could be
    decoded", the Matroska "announced 1.8 s of video but its pictures end after 1.0 s", "it may be truncated"."""
    assert _read(_remuxed(gop_video, tmp_path / f"cut{suffix}", skip=5)) == (24, None)


def test_a_recording_cut_at_both_ends_is_still_called_truncated(gop_video, tmp_path):
    """Cut mid-GOP and its end lost (its clusters end early, the length in its header stays): the warning stays."""
    cut = _remuxed(gop_video, tmp_path / "cut.mkv", skip=5)
    data = cut.read_bytes()
    cut.write_bytes(data[:int(len(data) * 0.75)])
    count, warning = _read(cut)
    assert 0 < count < 20 and "it may be truncated" in (warning or "")


@pytest.mark.parametrize("codec", ["libx264", "mpeg2video"])
@pytest.mark.parametrize("frames", [1, 2])
def test_a_transport_stream_of_one_or_two_pictures_has_its_own_frame_rate(tmp_path, codec, frames):
    """FFmpeg can average no rate over one or two pictures and guessed its clock's, twice theirs: "@ 50 fps"."""
    import av

    path = _encode(tmp_path / "in.ts", codec, frames=frames)
    with av.open(str(path)) as container:  # as FFmpeg reads it: the case guarded
        assert container.streams.video[0].average_rate is None
    source = open_source(str(path))
    try:
        assert source.fps == 24 and "@ 24 fps" in source.description
        assert len(list(source.frames())) == frames
    finally:
        source.close()


def _apng(path: Path, durations_ms: list[int]) -> Path:
    """An opaque APNG (FFmpeg reads it, as a video) of pictures stored as shown `durations_ms`."""
    import numpy as np
    from PIL import Image

    pictures = [Image.fromarray(np.full((48, 64, 3), 40 * number, np.uint8)) for number in range(len(durations_ms))]
    pictures[0].save(path, "PNG", save_all=True, append_images=pictures[1:], duration=durations_ms, loop=0)
    return path


def test_an_apng_picture_stored_as_shown_10_ms_or_less_is_shown_100_ms(tmp_path):
    """As browsers show it, as a GIF's and a transparent APNG's are: FFmpeg showed 0 s for 1/15 s, 5 ms as 5 ms."""
    source = open_source(str(_apng(tmp_path / "in.png", [0, 5, 10, 40, 16])))
    try:
        times = [round(frame.pts_seconds, 4) for frame in source.frames()]
    finally:
        source.close()
    assert times == [0.0, 0.1, 0.2, 0.3, 0.34]


@pytest.mark.parametrize("faststart", [False, True])
def test_an_mp4_whose_video_stream_got_no_picture_is_said_empty_not_damaged(tmp_path, capsys, faststart):
    """FFmpeg given no picture writes an empty media data box and an index of no track: it was "a damaged index
    ... repair it with untrunc"."""
    import av

    from stream.cli import main

    path = tmp_path / "empty.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as container:
        video = container.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    assert main(["run", str(path), "-o", str(tmp_path / "out.mp4")], restore_signals=False) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "holds no picture" in err and "damaged" not in err
    assert not (tmp_path / "out.mp4").exists()
