"""Damaged inputs (the twentieth session): HEVC's pictures after a damaged one, a sound packet timed far ahead,
a damaged picture time taken for a join of clips, damaged TIFF and HEIF photos, a photo's blur limit checked before
decoding."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from media import damage
from test_damaged_video import _damage_lines, _encode, _flip, _frames, _slice_decoded


def _hevc(path: Path, keyint: int) -> Path:
    import av

    if "libx265" not in av.codecs_available:
        pytest.skip("FFmpeg without libx265")
    return _encode(path, "libx265", frames=48, size=(320, 240), options={"x265-params": f"keyint={keyint}"})


def _grey(frame) -> bool:
    """Whether a picture is mostly the flat grey FFmpeg's HEVC decoder puts in place of a lost reference."""
    spread = frame.image.astype(np.int16).max(axis=2) - frame.image.min(axis=2)
    return bool(np.mean(spread <= 2) > 0.5)


def test_hevc_pictures_predicted_from_a_damaged_one_are_shown_smeared(tmp_path, capsys):
    """FFmpeg 8's HEVC decoder drops the pictures it flags corrupt: 42 of 48 where `ffmpeg -i` (FFmpeg 5) and the
    players give 47, smeared; the writer held the last good one over the gap. They are given, said once."""
    path = _flip(_hevc(tmp_path / "in.mp4", 12), 3, seed=1)
    frames = _frames(path)
    assert _slice_decoded(path) == 42 and len(frames) == 47
    times = [frame.pts_seconds for frame in frames]
    assert times == sorted(set(times))
    assert not any(_grey(frame) for frame in frames)
    told = _damage_lines(capsys)
    assert len(told) == 1 and "near 0.7 s" in told[0], told


def test_hevc_pictures_made_from_ffmpegs_grey_stand_in_are_not_given(tmp_path, capsys):
    """A reference picture lost whole: those after it, up to the next keyframe, are made from a mid-grey picture
    FFmpeg puts in its place (no scene left): not given, and none given out of order."""
    path = damage(_hevc(tmp_path / "in.mp4", 12), 20)
    frames = _frames(path)
    assert len(frames) == _slice_decoded(path) == 44
    times = [frame.pts_seconds for frame in frames]
    assert times == sorted(set(times)) and not any(_grey(frame) for frame in frames)
    assert len(_damage_lines(capsys)) == 1



def test_an_hevc_recording_cut_mid_gop_starts_at_its_keyframe_without_a_word(tmp_path, capsys):
    """A transport stream cut before a keyframe: the pictures before it (made from nothing) are not given, nor
    called damage, as before corrupt pictures were asked for."""
    import av

    path = _hevc(tmp_path / "in.ts", 24)
    with av.open(str(path)) as container:
        places = [packet.pos for packet in container.demux(video=0) if packet.size]
    data = path.read_bytes()
    (tmp_path / "cut.ts").write_bytes(data[places[5] // 188 * 188:])
    assert len(_frames(tmp_path / "cut.ts")) == 24
    assert _damage_lines(capsys) == []

def _pes_time(data: bytes) -> int:
    return ((data[0] >> 1) & 7) << 30 | data[1] << 22 | (data[2] >> 1) << 15 | data[3] << 7 | data[4] >> 1


def _pes_time_bytes(ticks: int, prefix: int) -> bytes:
    return bytes([prefix << 4 | (ticks >> 29) & 0xE | 1, ticks >> 22 & 0xFF, ticks >> 14 & 0xFE | 1, ticks >> 7 & 0xFF,
                  ticks << 1 & 0xFE | 1])


def _timed_ahead(path: Path, number: int, seconds: float, kind: str = "audio") -> Path:
    """The `number`-th sound (`kind`: or video) PES of an MPEG-TS timed `seconds` later (its PTS, and DTS where it
    has one), as a damaged header leaves it."""
    import av

    with av.open(str(path)) as container:
        pid = getattr(container.streams, kind)[0].id
    data, seen = bytearray(path.read_bytes()), 0
    for at in range(0, len(data), 188):
        if (data[at + 1] & 0x1F) << 8 | data[at + 2] != pid or not data[at + 1] & 0x40:
            continue  # another stream's, or no PES starts in it
        body = at + 4 + (1 + data[at + 4] if data[at + 3] & 0x20 else 0)  # past its adaptation field
        if seen == number:
            flags, times = data[body + 7] >> 6, body + 9
            for index, prefix in enumerate((flags, 1) if flags == 3 else (2,)):
                place = times + 5 * index
                ticks = (_pes_time(data[place:place + 5]) + round(seconds * 90000)) % (1 << 33)
                data[place:place + 5] = _pes_time_bytes(ticks, prefix)
            break
        seen += 1
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_a_sound_packet_timed_an_hour_ahead_is_put_back_in_line(tmp_path, capsys, suffix):
    """Copied, the sound ended at the damaged packet (0.46 s of 4 s: the muxer took none after it); encoded again
    (AVI's PCM), an hour of silence was written (639 MB, 9 s). Put back in line: all of it, said once."""
    import av

    from media import make_video, probe
    from test_damaged_video import _copy

    path = _timed_ahead(make_video(tmp_path / "in.ts", frames=96, fps=24, size=(160, 120)), 20, 3600)
    with av.open(str(path)) as container:
        times = [float(p.pts * p.time_base) for p in container.demux(audio=0) if p.pts is not None]
    assert times[20] > 3600 > times[21]
    assert _copy(path, tmp_path / f"out{suffix}") == 96
    out = probe(tmp_path / f"out{suffix}")
    assert 3.8 < out["audio_seconds"] < 4.2
    assert (tmp_path / f"out{suffix}").stat().st_size < 2 << 20
    told = [line for line in capsys.readouterr().err.splitlines() if "sound packet" in line]
    assert len(told) == 1 and "near 0.5 s is timed 3600 s after those around it" in told[0], told


@pytest.mark.parametrize("seconds", [3600, -1])
def test_a_picture_whose_time_is_damaged_makes_no_join_of_clips(tmp_path, capsys, seconds):
    """A picture of an MPEG-TS timed an hour ahead (a second back) was read as clips joined: every later picture
    came an hour (a second) late, the output an hour long (fps 0.027) or a second frozen, the sound out of step, and
    the clips found at open six (two). It is put back in line, said once; the file is one clip."""
    from media import make_video, probe
    from stream.sources import open_source
    from test_damaged_video import _copy

    path = _timed_ahead(make_video(tmp_path / "in.ts", frames=96, fps=24, size=(160, 120)), 40, seconds, "video")
    source = open_source(str(path))
    assert len(source._clips) == 1 and source._clips[0].length == pytest.approx(4.0, abs=0.1)
    frames = list(source.frames())
    source.close()
    times = [frame.pts_seconds for frame in frames]
    assert len(frames) == 96 and times == sorted(set(times)) and times[-1] - times[0] == pytest.approx(95 / 24)
    told = [line for line in capsys.readouterr().err.splitlines() if "out of line" in line]
    assert len(told) == 1 and f"1 picture timed {abs(seconds)} s out of line" in told[0], told
    assert _copy(path, tmp_path / "out.mp4") == 96
    out = probe(tmp_path / "out.mp4")
    assert out["frames"] == 96 and out["fps"] == pytest.approx(24, abs=0.1)
    assert 3.8 < out["audio_seconds"] < 4.2


def test_the_sound_under_a_picture_whose_time_is_damaged_is_kept(tmp_path):
    """The sound's clips (track_timeline.Clips) took the damaged picture's return into line for a join: the sound
    after it waited for a clip that never came (3.83 of 4.02 s kept with picture 90 of 96 timed an hour ahead)."""
    from media import make_video, probe
    from test_damaged_video import _copy

    path = _timed_ahead(make_video(tmp_path / "in.ts", frames=96, fps=24, size=(160, 120)), 90, 3600, "video")
    assert _copy(path, tmp_path / "out.mp4") == 96
    assert probe(tmp_path / "out.mp4")["audio_seconds"] == pytest.approx(probe(path)["audio_seconds"], abs=0.05)


def test_clips_joined_are_still_joins(tmp_path):
    """Times that restart and go on rising are a join: the second clip's pictures come after the first's."""
    from media import make_video
    from stream.sources import open_source

    first = make_video(tmp_path / "a.ts", frames=24, fps=24, size=(160, 120)).read_bytes()
    (tmp_path / "joined.ts").write_bytes(first + first)
    source = open_source(str(tmp_path / "joined.ts"))
    assert len(source._clips) == 2
    frames = list(source.frames())
    source.close()
    assert len(frames) == 48 and frames[30].extra["video_seconds"] > frames[20].extra["video_seconds"]


def _tiff(compression: str) -> bytes:
    import io

    from PIL import Image

    rng = np.random.default_rng(3)
    picture = np.ascontiguousarray(np.repeat(np.repeat(rng.integers(0, 256, (30, 40, 3), np.uint8), 16, 0), 16, 1))
    out = io.BytesIO()
    Image.fromarray(picture).save(out, "TIFF", compression=compression)
    return out.getvalue()


@pytest.mark.parametrize("compression, said", [("tiff_adobe_deflate", "libtiff: ZIPDecode: Decoding error"),
                                               ("tiff_lzw", "libtiff: "), ("jpeg", "libtiff: JPEGLib: Corrupt JPEG")])
def test_a_damaged_tiff_that_decodes_is_warned_about_as_a_jpeg_is(tmp_path, capfd, compression, said):
    """OpenCV silences libtiff's errors: a TIFF whose compressed data is damaged (a smeared or grey stretch) was
    read without a word, where a damaged JPEG or PNG is said."""
    import random

    from stream.images import read_image
    from test_damaged_inputs19 import _only_depthcam_lines

    data, rng = bytearray(_tiff(compression)), random.Random(5)
    for _ in range(20):
        data[rng.randrange(len(data) * 3 // 10, len(data) * 7 // 10)] ^= rng.randrange(1, 256)
    (tmp_path / "flip.tif").write_bytes(bytes(data))
    assert read_image(tmp_path / "flip.tif").shape == (480, 640, 3)
    lines = _only_depthcam_lines(capfd.readouterr().err)
    assert len(lines) == 1 and f"flip.tif is damaged ({said}" in lines[0], lines


def test_a_clean_tiff_is_read_without_a_word(tmp_path, capfd):
    from stream.images import read_image

    for compression in ("tiff_adobe_deflate", "tiff_lzw", "jpeg", "raw"):
        (tmp_path / "clean.tif").write_bytes(_tiff(compression))
        assert read_image(tmp_path / "clean.tif").shape == (480, 640, 3)
    assert capfd.readouterr().err == ""


def test_a_photo_whose_blur_is_refused_is_refused_before_it_is_decoded(tmp_path, monkeypatch, capsys):
    """The blur's limit (and an output's size limit) was checked against the decoded photo: a 48-megapixel one was
    decoded (seconds, 150 MB) only to be refused. Its size comes from its headers; it is decoded after the checks."""
    import cv2

    from stream import images
    from stream.cli import main

    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((1500, 2000, 3), np.uint8))
    exif = images.EXIF_ORIENTATION  # a turned JPEG's size is its shown size
    from PIL import Image

    tags = Image.Exif()
    tags[exif] = 6
    Image.fromarray(np.zeros((1500, 2000, 3), np.uint8)).save(tmp_path / "turned.jpg", exif=tags.tobytes())

    def decoded(*args, **kwargs):
        raise AssertionError("decoded before the checks")

    monkeypatch.setattr(images.cv2, "imdecode", decoded)
    monkeypatch.setattr(images, "_read_with_pillow", decoded)
    assert main(["run", str(tmp_path / "big.png"), "-o", str(tmp_path / "out.png"), "--blur", "200"],
                restore_signals=False) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and "is 625 px at this 2000x1500 input, over the 512 px limit" in said[0], said
    assert main(["run", str(tmp_path / "turned.jpg"), "-o", str(tmp_path / "out.png"), "--blur", "200"],
                restore_signals=False) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and "is 625 px at this 1500x2000 input" in said[0], said  # its shown size, turned


def test_a_photo_is_decoded_once_its_size_passed_the_checks(tmp_path):
    from stream.sources import ImageSource

    cv2 = pytest.importorskip("cv2")
    cv2.imwrite(str(tmp_path / "small.png"), np.full((30, 40, 3), 7, np.uint8))
    source = ImageSource(tmp_path / "small.png")
    assert (source.width, source.height) == (40, 30) and source._image is None
    [frame] = source.frames()
    assert frame.image.shape == (30, 40, 3) and int(frame.image[0, 0, 0]) == 7
