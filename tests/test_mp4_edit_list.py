"""The mend for FFmpeg's hybrid MP4, which may end a video track one picture short."""
import struct

import pytest

from media import make_video, probe
from stream.mp4_edit_list import CONTAINERS, _boxes, _find_moov, _read_track, _time_scale, _Track, mend_last_picture


def _movie_scale(path) -> int:
    """mvhd's time scale: 1000 up to FFmpeg 7, the audio's sample rate (44100) with FFmpeg 8 (PyAV 19)."""
    with open(path, "rb") as file:
        base, size = _find_moov(file)
        file.seek(base)
        data = file.read(size)
    return next(_time_scale(data, at) for kind, at, _ in _boxes(data, 0, len(data)) if kind == b"mvhd")


def _video_track(path):
    with open(path, "rb") as file:
        base, size = _find_moov(file)
        file.seek(base)
        data = file.read(size)
    for kind, at, stop in _boxes(data, 0, len(data)):
        if kind == b"trak":
            track = _Track()
            _read_track(data, at, stop, base, track)
            if track.handler == b"vide":
                return track
    raise AssertionError("no video track")


@pytest.mark.parametrize("suffix, audio", [(".mp4", "aac"), (".mov", None)])
def test_headers_cut_one_picture_short_are_mended_to_what_a_plain_mp4_holds(tmp_path, suffix, audio):
    path = make_video(tmp_path / f"clip{suffix}", frames=31, fps=30, audio_codec=audio)  # plain FFmpeg MP4
    whole = path.read_bytes()
    assert not mend_last_picture(path) and path.read_bytes() == whole  # a right file is left alone
    track = _video_track(path)
    picture, second = track.media_scale // 30, _movie_scale(path)
    assert track.edit.value == -(-31 * second // 30)  # 31 pictures at 30 fps, rounded up
    # what the hybrid muxer wrote at 31 frames: every duration one picture short (one second)
    with open(path, "r+b") as file:
        track.edit.write(file, second)
        track.duration.write(file, second)
        track.media_duration.write(file, track.media_duration.value - picture)
    assert probe(path)["frames"] == 30
    assert mend_last_picture(path)
    assert probe(path)["frames"] == 31
    assert path.read_bytes() == whole


def _as_version_1(path):
    """The movie with mvhd, tkhd, mdhd and elst rewritten in version 1 (64-bit times), as FFmpeg writes them once
    a duration passes 2^32 ticks (99 minutes at 23.976 fps). The moov is last, so no sample offset moves."""
    data = path.read_bytes()
    with open(path, "rb") as file:
        base, size = _find_moov(file)

    def rebuilt(start, end):
        out = b""
        for kind, at, stop in _boxes(data, start, end):
            body = data[at:stop]
            if kind in CONTAINERS | {b"trak"}:
                body = rebuilt(at, stop)
            elif kind in (b"mvhd", b"mdhd"):
                created, modified, scale, duration = struct.unpack_from(">IIII", body, 4)
                body = b"\1" + body[1:4] + struct.pack(">QQIQ", created, modified, scale, duration) + body[20:]
            elif kind == b"tkhd":
                created, modified, track, reserved, duration = struct.unpack_from(">IIIII", body, 4)
                body = (b"\1" + body[1:4] + struct.pack(">QQIIQ", created, modified, track, reserved, duration)
                        + body[24:])
            elif kind == b"elst":
                count = struct.unpack_from(">I", body, 4)[0]
                entries = [struct.unpack_from(">IiI", body, 8 + 12 * i) for i in range(count)]
                body = b"\1" + body[1:4] + struct.pack(">I", count) + b"".join(struct.pack(">QqI", *e) for e in entries)
            out += struct.pack(">I4s", 8 + len(body), kind) + body
        return out
    assert base + size == len(data)
    path.write_bytes(data[:base - 8] + struct.pack(">I4s", 8 + len(rebuilt(base, base + size)), b"moov")
                     + rebuilt(base, base + size))


def test_version_1_headers_are_mended_too(tmp_path):
    path = make_video(tmp_path / "clip.mp4", frames=31, fps=30, audio_codec=None)
    _as_version_1(path)
    whole = path.read_bytes()
    track = _video_track(path)
    second = _movie_scale(path)
    assert track.media_scale == 15360 and track.edit.width == 8 and track.edit.value == -(-31 * second // 30)
    with open(path, "r+b") as file:
        track.edit.write(file, second)
        track.duration.write(file, second)
    assert probe(path)["frames"] == 30
    assert mend_last_picture(path) and path.read_bytes() == whole and probe(path)["frames"] == 31


def test_an_edit_far_shorter_than_its_pictures_is_not_taken_for_the_muxer_s_fault(tmp_path):
    """A cut made on purpose (an edit list of half the pictures) is no missing last picture."""
    path = make_video(tmp_path / "clip.mp4", frames=31, fps=30, audio_codec=None)
    track = _video_track(path)
    with open(path, "r+b") as file:
        track.edit.write(file, 500)
    cut = path.read_bytes()
    assert not mend_last_picture(path) and path.read_bytes() == cut


def test_a_file_without_a_movie_header_is_left_alone(tmp_path):
    path = tmp_path / "fragments.mp4"
    path.write_bytes(struct.pack(">I4s", 16, b"ftyp") + b"isom\0\0\0\0" + struct.pack(">I4s", 8, b"mdat"))
    assert not mend_last_picture(path)
