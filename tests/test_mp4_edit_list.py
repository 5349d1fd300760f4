"""The mend for FFmpeg's hybrid MP4, which may end a video track one picture short."""
import struct

import pytest

from media import make_video, probe
from stream.mp4_edit_list import _find_moov, _read_track, _Track, _boxes, mend_last_picture


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
    picture = track.media_scale // 30
    assert track.edit.value == 1034  # ms: 31 pictures at 30 fps, rounded up
    # what the hybrid muxer wrote at 31 frames: every duration one picture short (1000 ms)
    with open(path, "r+b") as file:
        track.edit.write(file, 1000)
        track.duration.write(file, 1000)
        track.media_duration.write(file, track.media_duration.value - picture)
    assert probe(path)["frames"] == 30
    assert mend_last_picture(path)
    assert probe(path)["frames"] == 31
    assert path.read_bytes() == whole


def test_a_file_without_a_movie_header_is_left_alone(tmp_path):
    path = tmp_path / "fragments.mp4"
    path.write_bytes(struct.pack(">I4s", 16, b"ftyp") + b"isom\0\0\0\0" + struct.pack(">I4s", 8, b"mdat"))
    assert not mend_last_picture(path)
