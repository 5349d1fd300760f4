"""Damaged videos, as a fuzz run left them: a damaged spot part-way through is skipped with a line and the rest
processed; an input that cannot be read gets one line naming the problem and what to do."""

import random
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from media import damage, make_video, probe
from stream.errors import UserError
from stream.sources import open_source
from stream.synthetic import SyntheticPortrait, SyntheticScene
from stream.video_writer import VideoWriter


def _encode(path: Path, codec: str, frames: int = 24, size: tuple[int, int] = (64, 48), pix_fmt: str = "yuv420p",
            options: dict[str, str] | None = None, title: str | None = None, rate: int | Fraction = 24) -> Path:
    """The synthetic portrait at `rate` fps in `codec`, without sound (the container, or raw stream, by the suffix)."""
    import av

    scene = SyntheticPortrait(SyntheticScene(*size))
    with av.open(str(path), "w") as container:
        if title is not None:
            container.metadata["title"] = title
        video = container.add_stream(codec, rate=rate, options=options or {})
        video.width, video.height = size
        video.pix_fmt = pix_fmt
        for i in range(frames):
            image, _ = scene.render(i)
            for packet in video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


def _flip(path: Path, count: int, seed: int, lo: float = 0.4, hi: float = 0.6) -> Path:
    """`count` bytes in the middle of the file XORed with noise, as the fuzz run damaged its inputs."""
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    for _ in range(count):
        data[rng.randrange(int(len(data) * lo), int(len(data) * hi))] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))
    return path


def _frames(path: Path) -> list:
    source = open_source(str(path))
    try:
        return list(source.frames())
    finally:
        source.close()


def _copy(source_path: Path, out_path: Path) -> int:
    """The input written again with its sound, as a run writes it; the frames written."""
    source = open_source(str(source_path))
    writer = VideoWriter(out_path, source.width, source.height, source.fps, source.audio_path)
    count = 0
    for frame in source.frames():
        writer.write(frame.image, frame.pts_seconds)
        count += 1
    writer.close()
    source.close()
    return count


def _damage_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "damaged" in line]


def test_a_damaged_sound_packet_in_mpeg_ts_is_skipped_and_the_video_written(tmp_path, capsys):
    """A damaged AAC packet (the MPEG-TS demuxer gives it empty) made the ADTS filter fail: "stage 'sink' failed:
    InvalidDataError", the frames done lost. The packet is skipped, said once; the pictures and the rest of the
    sound are written."""
    import av

    path = _flip(make_video(tmp_path / "in.ts", frames=48, fps=24, size=(160, 120)), 100, seed=100)
    written = _copy(path, tmp_path / "out.mp4")
    assert written >= 40
    with av.open(str(tmp_path / "out.mp4")) as out:  # copied as they are: a damaged one the decoder refuses stays
        packets = [(p.stream.type, p.duration * p.time_base) for p in out.demux() if p.size]
    assert sum(kind == "video" for kind, _ in packets) >= written  # the writer fills a damaged time gap
    assert sum(length for kind, length in packets if kind == "audio") > 1.5
    told = [line for line in capsys.readouterr().err.splitlines() if "sound packet" in line]
    assert len(told) == 1 and "skipped" in told[0], told


class _AddedStream:
    """A container as PyAV gives it for MPEG-TS whose tables, damaged, made FFmpeg add a stream part-way: its
    demux raises IndexError after its last packets (at its flush, the new stream beyond its list)."""

    def __init__(self, container) -> None:
        self._container = container

    def __getattr__(self, name):
        return getattr(self._container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._container.close()

    def demux(self, *args, **kwargs):
        yield from self._container.demux(*args, **kwargs)
        raise IndexError("list index out of range")


def test_a_stream_added_part_way_through_mpeg_ts_ends_no_run(tmp_path, monkeypatch):
    """"IndexError: list index out of range" from the demuxers (the joins' finder, the pictures', the sound's):
    every picture and the sound are written."""
    import av

    path = make_video(tmp_path / "in.ts", frames=24, fps=24, size=(160, 120))
    opened = av.open
    monkeypatch.setattr(av, "open", lambda *args, **kwargs: _AddedStream(opened(*args, **kwargs))
                        if "w" not in args[1:2] else opened(*args, **kwargs))
    assert _copy(path, tmp_path / "out.mp4") == 24
    monkeypatch.undo()
    out = probe(tmp_path / "out.mp4")
    assert out["frames"] == 24 and out["audio_codec"] == "aac"


def _prores_with_matrix(path: Path, picture: int, matrix: int) -> Path:
    """A ProRes MOV whose `picture`-th frame header says colour matrix `matrix` (a damaged byte)."""
    _encode(path, "prores_ks", frames=24, pix_fmt="yuv422p10le")
    data = bytearray(path.read_bytes())
    at, headers = 0, []
    while (at := data.find(b"icpf", at + 1)) > 0:
        headers.append(at)
    data[headers[picture] + 20] = matrix  # after 'icpf': size, version, vendor, width, height, flags, colours
    path.write_bytes(bytes(data))
    return path


def test_a_picture_with_an_impossible_colour_matrix_is_taken_as_untagged(tmp_path, capsys):
    """Matrix 39 (no such one) in one damaged ProRes picture: swscale refused it and the run ended there ("corrupt
    or truncated after frame 12"). It reads as untagged, as FFmpeg's players show it."""
    frames = _frames(_prores_with_matrix(tmp_path / "in.mov", 12, 39))
    assert len(frames) == 24
    assert _damage_lines(capsys) == []


def test_a_picture_that_cannot_be_converted_is_a_damaged_spot(tmp_path, capsys, monkeypatch):
    """A picture swscale refuses to convert (ENOTSUP): skipped and said, not the end of the run."""
    import errno

    import av

    from stream.sources import PictureTreatment

    convert, seen = PictureTreatment.image_and_alpha, []

    def refusing_the_thirteenth(self, picture):
        seen.append(picture)
        if len(seen) == 13:
            raise av.error.OSError(errno.ENOTSUP, "Operation not supported")
        return convert(self, picture)

    monkeypatch.setattr(PictureTreatment, "image_and_alpha", refusing_the_thirteenth)
    frames = _frames(_encode(tmp_path / "in.mov", "prores_ks", frames=24, pix_fmt="yuv422p10le"))
    assert len(frames) == 23 and frames[-1].pts_seconds == pytest.approx(23 / 24, abs=1e-3)
    told = _damage_lines(capsys)
    assert len(told) == 1 and "skipped" in told[0], told


@pytest.mark.parametrize("pictures", [(12,), tuple(range(24))])
def test_a_real_matrix_swscale_refuses_is_read_as_untagged_said_once(tmp_path, capsys, pictures):
    """YCgCo (8), which swscale does not convert, in one picture or in every one: each was skipped as damaged (a
    whole file tagged so gave no picture); read as untagged, said once, every picture kept."""
    path = _encode(tmp_path / "in.mov", "prores_ks", frames=24, pix_fmt="yuv422p10le")
    data = bytearray(path.read_bytes())
    at, headers = 0, []
    while (at := data.find(b"icpf", at + 1)) > 0:
        headers.append(at)
    for picture in pictures:
        data[headers[picture] + 20] = 8
    path.write_bytes(bytes(data))
    assert len(_frames(path)) == 24
    err = capsys.readouterr().err
    assert err.count("its colour matrix (YCgCo) is one FFmpeg's converter does not take") == 1
    assert "damaged" not in err


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_a_tag_in_invalid_utf8_is_read_with_its_bytes_replaced(tmp_path, suffix):
    """A damaged header byte in a tag: "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xbb" at open."""
    path = _encode(tmp_path / f"in{suffix}", "libx264", title="Holiday clip")
    data = path.read_bytes()
    assert data.count(b"Holiday") == 1
    path.write_bytes(data.replace(b"Holiday", b"Hol\xbbday"))
    source = open_source(str(path))
    assert len(list(source.frames())) == 24
    source.close()
    _copy(path, tmp_path / "out.mkv")
    assert probe(tmp_path / "out.mkv")["frames"] == 24


def test_an_avi_whose_video_codec_ffmpeg_does_not_know_gets_one_line(tmp_path):
    """A damaged AVI header (its codec tag): "AttributeError: 'NoneType' object has no attribute 'name'"."""
    path = _encode(tmp_path / "in.avi", "mpeg4")
    data = path.read_bytes()
    assert data.count(b"FMP4") >= 1
    path.write_bytes(data.replace(b"FMP4", b"Q\x00Z\x07"))
    with pytest.raises(UserError, match="codec is unknown to FFmpeg") as refusal:
        open_source(str(path))
    assert "\n" not in str(refusal.value) and "cover art" not in str(refusal.value)


def _mov_boxes(data: bytes) -> dict[bytes, tuple[int, int]]:
    boxes, at = {}, 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        boxes[kind] = (at, size)
        at += max(size, 8)
    return boxes


@pytest.mark.parametrize("how", ["cut", "track"])
def test_an_mp4_whose_index_lists_no_readable_video_track_is_said_damaged(tmp_path, how):
    """Its track's box damaged: it was told it "has no video stream (give a video file, ...)"; cut short inside it:
    "End of file (the file is not a video, ...)". The line says the index is damaged and how to repair it."""
    path = _encode(tmp_path / "in.mov", "libx264")
    data = path.read_bytes()
    moov_at, moov_size = _mov_boxes(data)[b"moov"]
    if how == "cut":
        assert moov_at + moov_size == len(data)  # the index at the end, as a camera writes it
        data = data[:moov_at + moov_size // 2]
    else:
        assert data.count(b"trak") == 1
        data = data.replace(b"trak", b"tr\x8ek")
    path.write_bytes(data)
    with pytest.raises(UserError, match="index.*untrunc") as refusal:
        open_source(str(path))
    assert "\n" not in str(refusal.value)


def test_frame_threads_lose_no_pictures_after_a_damaged_spot(tmp_path, capsys):
    """VP9 decoded with frame threads refused pictures after one damaged packet until the next keyframe (25 of
    49 in the fuzz run): decoded again with slice threads from the keyframe, every picture after it comes."""
    path = _encode(tmp_path / "in.webm", "libvpx-vp9", frames=48, size=(320, 240),
                   options={"g": "1000", "deadline": "realtime", "cpu-used": "8"})
    frames = _frames(damage(path, 20))
    assert len(frames) == 47
    times = [frame.pts_seconds for frame in frames]
    assert times == sorted(set(times)) and times[-1] == pytest.approx(47 / 24, abs=1e-3)
    assert len(_damage_lines(capsys)) == 1


def test_a_packet_stored_twice_gives_its_picture_once(tmp_path, capsys):
    """A packet repeated (a damaged copy): two pictures at the same time, written a tick apart. The second is
    skipped as a damaged spot."""
    import av

    clean = _encode(tmp_path / "clean.mkv", "libx264", options={"g": "1", "bf": "0"})
    path = tmp_path / "in.mkv"
    with av.open(str(clean)) as source, av.open(str(path), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for number, packet in enumerate(p for p in source.demux(video=0) if p.size):
            for _ in range(2 if number == 12 else 1):
                packet.stream = stream
                out.mux(packet)
    frames = _frames(path)
    times = [frame.pts_seconds for frame in frames]
    assert len(frames) == 24 and times == sorted(set(times))
    told = _damage_lines(capsys)
    assert len(told) == 1 and "skipped" in told[0], told


def _slice_decoded(path: Path) -> int:
    """The pictures FFmpeg's decoder gives with slice threads, each packet it refuses skipped (as its players)."""
    import av

    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        for packet in container.demux(stream):
            try:
                count += len(stream.decode(packet))
            except av.error.FFmpegError:
                continue
    return count


@pytest.mark.parametrize("codec, suffix", [("ffv1", "mkv"), ("utvideo", "avi")])
def test_an_ffv1_or_ut_video_file_loses_no_pictures_after_a_damaged_packet(tmp_path, capsys, codec, suffix):
    """The decoder made again after a damaged spot had only the extradata: FFV1 (no size) and Ut Video (no codec
    tag) could not open, and every later picture was lost (12 of 38, 14 of 49) under a line saying the rest was
    processed. Made from the stream's parameters, it gives as many as FFmpeg's own."""
    path = damage(_encode(tmp_path / f"in.{suffix}", codec, frames=48, size=(320, 240)), 12)
    frames = _frames(path)
    assert len(frames) == _slice_decoded(path) > 24
    times = [frame.pts_seconds for frame in frames]
    assert times == sorted(set(times))
    assert len(_damage_lines(capsys)) == 1


def test_a_clean_long_gop_file_holds_few_packets_to_decode_again(tmp_path, monkeypatch):
    """Every packet since the last keyframe was held on a clean file (4K H.264 at 155 Mbit/s, a keyframe each
    12 s: 282 MB of memory became 523 MB): only VP9's, whose frame threads lose pictures after a damaged spot,
    are kept between keyframes, and those up to REPLAY_BYTES."""
    import stream.sources as sources

    monkeypatch.setattr(sources, "REPLAY_BYTES", 4000, raising=False)
    for name, codec, cap in (("h264.mp4", "libx264", 0), ("vp9.webm", "libvpx-vp9", 4000)):
        path = _encode(tmp_path / name, codec, frames=48, size=(320, 240),
                       options={"g": "1000", "deadline": "realtime", "cpu-used": "8"} if codec == "libvpx-vp9"
                       else {"g": "1000"})
        source = open_source(str(path))
        held = [(len(source._redecoder.kept), sum(p.size for p in source._redecoder.kept), max(
            (p.size for p in source._redecoder.kept), default=0)) for _ in source.frames()]
        source.close()
        assert len(held) == 48
        assert all(count <= 1 or size <= cap + largest for count, size, largest in held), (name, held)
        assert max(count for count, _, _ in held) <= (1 if cap == 0 else 48), name


def test_the_stream_s_own_decoder_decodes_again_from_the_next_keyframe(tmp_path, capsys):
    """After one damaged spot the rest of the file was decoded by the stand-in with slice threads (PNG in MOV,
    in one thread: 1.27 times as long): from the next keyframe the stream's frame-threaded decoder decodes again,
    no picture lost or given twice."""
    for name, codec, pix_fmt, options in (
            ("png.mov", "png", "rgb24", {}),
            ("vp9.webm", "libvpx-vp9", "yuv420p", {"g": "10", "deadline": "realtime", "cpu-used": "8"})):
        clean = _frames(_encode(tmp_path / f"clean_{name}", codec, 30, (320, 240), pix_fmt, options))
        path = damage(_encode(tmp_path / name, codec, 30, (320, 240), pix_fmt, options), 12)
        source = open_source(str(path))
        frames = list(source.frames())
        assert source._redecoder.stand_in is None, name
        source.close()
        assert [frame.pts_seconds for frame in frames] == [frame.pts_seconds for frame in clean[:12] + clean[13:]]
        for given, expected in zip(frames[19:], clean[20:]):  # from the next keyframe on: as on the clean file
            np.testing.assert_array_equal(given.image, expected.image)
    assert len(_damage_lines(capsys)) == 2


def test_where_no_stand_in_can_be_made_the_stream_s_decoder_goes_on(tmp_path, capsys, monkeypatch):
    """The file cannot be opened again (gone, a pipe) for the stand-in: the stream's own decoder, left as it is,
    decodes on, as before there was a stand-in (one that could not open lost every later picture)."""
    from stream.sources import Redecoder

    monkeypatch.setattr(Redecoder, "_stand_in", lambda self: None, raising=False)
    path = damage(_encode(tmp_path / "in.mkv", "ffv1", frames=48, size=(320, 240)), 12)
    frames = _frames(path)
    assert len(frames) == _slice_decoded(path) > 24
    assert len(_damage_lines(capsys)) == 1


def test_a_piped_input_is_not_read_again_for_a_stand_in(tmp_path):
    """Through a pipe (`cat clip | depthcam run -`) the stand-in decoder opened /dev/stdin again: its reader took
    the pictures' bytes (27 of 95 MJPEG pictures written) or, from a FIFO whose writer had gone, waited for ever.
    A pipe's damaged spot is decoded on by the stream's own decoder: as many pictures as the file gives."""
    import subprocess
    import sys

    path = damage(_encode(tmp_path / "in.mkv", "ffv1", frames=48, size=(320, 240)), 12)
    count = ("from stream.sources import open_source; source = open_source('-'); "
             "print(sum(1 for _ in source.frames())); source.close()")
    done = subprocess.run([sys.executable, "-c", count], input=path.read_bytes(), capture_output=True, timeout=120)
    done.stdout, done.stderr = done.stdout.decode(), done.stderr.decode()  # through a pipe, as `cat clip |` gives it
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) >= _slice_decoded(path) - 1
