"""Recorded videos as cameras, phones and tagging tools really leave them: non-square pixels, mirrored phone
video, damaged spots, album covers, a disk that fills up."""

import re
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from media import damage, make_noise_mp4, make_timed_video, make_video, make_with_cover_art, probe, square_size
from stream.errors import UserError
from stream.sources import open_source
from stream.synthetic import SyntheticPortrait, SyntheticScene
from stream.video_writer import VideoWriter


def _copy(source_path: Path, out_path: Path) -> None:
    source = open_source(str(source_path))
    writer = VideoWriter(out_path, source.width, source.height, source.fps, source.audio_path)
    for frame in source.frames():
        writer.write(frame.image, frame.pts_seconds)
    writer.close()
    source.close()


def _error(image: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(image.astype(float) - truth).mean())


def _first_picture(path: Path) -> tuple[np.ndarray, str]:
    source = open_source(str(path))
    try:
        return next(source.frames()).image, source.description
    finally:
        source.close()


@pytest.mark.parametrize("stored, sar", [
    ((180, 144), Fraction(64, 45)),  # 16:9 anamorphic PAL (720x576), scaled down
    ((150, 120), Fraction(16, 15)),  # 4:3 PAL DV
    ((144, 96), Fraction(8, 9)),     # 4:3 NTSC DV: pixels narrower than high
])
def test_non_square_pixels_are_processed_and_written_square(tmp_path, stored, sar):
    """The network, the face detector and the round blur need the picture in its true shape: the frames are
    scaled to square pixels (the height kept), and the output, square, shows as the input did."""
    import av

    square = square_size(stored, sar)
    path = make_video(tmp_path / "dv.mkv", frames=3, fps=25, size=stored, sar=sar, audio_codec=None)
    first, description = _first_picture(path)
    truth, _ = SyntheticPortrait(SyntheticScene(*square)).render(0)
    assert first.shape == truth.shape and "square pixels" in description
    assert _error(first, truth) < 6
    _copy(path, tmp_path / "out.mp4")
    written = probe(tmp_path / "out.mp4")
    assert (written["width"], written["height"], written["frames"]) == (*square, 3)
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.video[0].sample_aspect_ratio in (None, 0, 1)


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_a_mirrored_phone_video_is_shown_as_its_display_matrix_says(tmp_path, rotation):
    """A front camera may store its picture mirrored, with a display matrix that mirrors it back: the
    rotation alone was applied (a mirror alone reads as a 180° rotation: the picture came out upside down)."""
    upright = (96, 128)
    path = make_video(tmp_path / "selfie.mp4", frames=3, fps=12, size=upright, rotation=rotation, mirror=True,
                      audio_codec=None)
    first, description = _first_picture(path)
    truth, _ = SyntheticPortrait(SyntheticScene(*upright)).render(0)
    assert first.shape == truth.shape
    error = _error(first, truth)
    assert error < 6 and error * 4 < _error(first, truth[:, ::-1])  # H.264 loss vs a mirror left in
    assert "mirrored" in description
    _copy(path, tmp_path / "out.mp4")
    written = probe(tmp_path / "out.mp4")
    assert (written["width"], written["height"], written["rotation"]) == (*upright, 0)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_damaged_spot_is_skipped_and_the_pictures_after_it_processed(tmp_path, capsys, suffix):
    """As FFmpeg's players do: the decoder refusing one packet ended the run there (frame 40 of 96)."""
    times = [i / 24 for i in range(96)]
    path = damage(make_timed_video(tmp_path / f"in{suffix}", times, fps=24, size=(160, 120), audio_codecs=(),
                                   keyframe_every=12), picture=40)
    source = open_source(str(path))
    frames = list(source.frames())
    source.close()
    assert len(frames) >= 90 and frames[-1].pts_seconds == pytest.approx(times[-1], abs=1e-3)
    told = [line for line in capsys.readouterr().err.splitlines() if "damaged" in line]
    assert len(told) == 1 and "skipped" in told[0], told
    assert source.truncation_warning() is None


@pytest.mark.parametrize("suffix, options", [(".mkv", None), (".mp4", {"movflags": "faststart"})])
def test_a_file_cut_short_still_ends_with_the_truncation_warning(tmp_path, suffix, options):
    """A broken download: the pictures up to the cut are processed and the run ends with the warning."""
    whole = make_timed_video(tmp_path / f"whole{suffix}", [i / 24 for i in range(96)], fps=24, size=(160, 120),
                             audio_codecs=(), keyframe_every=12, container_options=options)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    source = open_source(str(cut))
    frames = list(source.frames())
    source.close()
    assert 10 < len(frames) < 96 and "it may be truncated" in source.truncation_warning()


@pytest.mark.parametrize("name, container_format", [("song.mp3", None), ("song.m4a", "mp4"), ("song.mka", "matroska")])
def test_sound_with_cover_art_is_refused_as_having_no_video(tmp_path, name, container_format):
    """The album cover decodes as one picture: it was taken for a one-frame video at 90000 fps. Matroska has no
    flag for a cover: FFmpeg's muxer stores it as a video track of one JPEG picture, which was processed."""
    path = make_with_cover_art(tmp_path / name, container_format=container_format)
    with pytest.raises(UserError, match="no video, only cover art") as refusal:
        open_source(str(path))
    assert "\n" not in str(refusal.value)


def test_a_video_with_cover_art_is_read_from_its_video_stream(tmp_path):
    path = make_with_cover_art(tmp_path / "clip.mp4", video_frames=10)
    import av

    with av.open(str(path)) as container:  # the cover comes first, as the test means it to
        assert container.streams.video[0].disposition & av.stream.Disposition.attached_pic
    source = open_source(str(path))
    assert (source.width, source.height, source.fps) == (64, 48, 10.0)
    assert len(list(source.frames())) == 10
    source.close()
    source = open_source(str(path))
    source.set_range(0.6, None)  # a jump, and a file opened anew, keep to the video stream too
    assert len(list(source.frames())) == 4
    source.close()


def test_a_matroska_video_with_its_cover_stored_as_a_track_is_read_from_its_video(tmp_path):
    """FFmpeg's Matroska muxer stores a cover as a video track (one JPEG picture) before the video: that
    picture was the whole output, 1 frame of 64x64."""
    path = make_with_cover_art(tmp_path / "clip.mkv", video_frames=10, container_format="matroska")
    source = open_source(str(path))
    try:
        assert (source.width, source.height) == (64, 48) and len(list(source.frames())) == 10
    finally:
        source.close()


@pytest.fixture
def small_disk(tmp_path):
    """A 96 KiB file system (tmpfs): needs root, else the test is skipped."""
    import os
    import subprocess

    folder = tmp_path / "small_disk"
    folder.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)  # a file left open there: its test says so


def test_a_disk_that_fills_up_mid_mp4_is_said_and_what_was_written_plays(small_disk):
    """The write's ENOSPC reaches the pipeline (which says "the disk is full ... write the output to another
    disk" and exits 1), and the fragments that reached the disk play (FFmpeg's hybrid MP4), up to a last
    picture cut in two, which is skipped: what the run can keep, with no room to write more."""
    import errno

    from stream.errors import PipelineError
    from stream.video_writer import container_options

    if container_options(".mp4") is None:
        pytest.skip("an FFmpeg older than 7.1 writes MP4 the plain way: its index comes only at the end")
    scene = SyntheticPortrait(SyntheticScene(320, 240))
    out = small_disk / "out.mp4"
    writer = VideoWriter(out, 320, 240, 30)
    with pytest.raises(OSError) as full:
        for index in range(300):
            writer.write(scene.render(index)[0], index / 30)
    assert full.value.errno == errno.ENOSPC
    assert str(PipelineError("write", full.value)).startswith("the disk is full")
    with pytest.raises((OSError, RuntimeError)):  # the trailer finds no room either, or is left out
        writer.close()
    source = open_source(str(out))
    assert len(list(source.frames())) >= 30  # the first one-second fragment at least
    source.close()


def _open_on(folder: Path) -> list[str]:
    """The files under `folder` this process holds open."""
    import os

    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own descriptor, closed since
            continue
        if target.startswith(str(folder)):
            held.append(target)
    return held


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi", ".webm"])
@pytest.mark.parametrize("room", [0, 8192])  # nothing at all; room for a header but not a picture
@pytest.mark.parametrize("earlier", [False, True])
def test_a_disk_full_before_the_first_picture_leaves_no_file_and_an_earlier_one_alone(small_disk, suffix, room,
                                                                                     earlier):
    """A disk full at the first frame left a 0-byte or header-only file (unplayable), over an earlier output, and
    an MP4 whose header failed kept its file open (FFmpeg's; the space was not freed by deleting it)."""
    out = small_disk / f"out{suffix}"
    if earlier:
        out.write_bytes(b"an earlier result")
    writer = VideoWriter(out, 320, 240, 30)
    with open(small_disk / "filler", "wb") as filler:  # the rest of the disk, less `room`
        try:
            filler.write(bytes(96 * 1024 - 4096 * earlier - room))
        except OSError:
            pass
    noise = np.random.default_rng(0).integers(0, 256, (60, 240, 320, 3), dtype=np.uint8)
    with pytest.raises(OSError):
        for index, image in enumerate(noise):
            writer.write(image, index / 30)
    with pytest.raises((OSError, RuntimeError)):
        writer.close()
    assert sorted(p.name for p in small_disk.iterdir()) == (["filler", out.name] if earlier else ["filler"])
    if earlier:
        assert out.read_bytes() == b"an earlier result"
    assert _open_on(small_disk) == []
    assert writer.pictures_on_disk == 0


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi", ".webm"])
@pytest.mark.parametrize("audio", [False, True])
def test_a_disk_full_part_way_counts_the_pictures_that_reached_it(small_disk, tmp_path, suffix, audio):
    """After a full disk the closing line counted the frames the encoder got, not those the file holds. The count
    is of the pictures in whole fragments (clusters): at most a second fewer than a player finds."""
    from stream.video_writer import container_options

    if suffix == ".mp4" and container_options(suffix) is None:
        pytest.skip("an FFmpeg older than 7.1 writes MP4 the plain way: its index comes only at the end")
    sound = make_video(tmp_path / "in.mkv", frames=300, fps=30, audio_codec="pcm_s16le") if audio else None
    scene = SyntheticPortrait(SyntheticScene(320, 240))
    out = small_disk / f"out{suffix}"
    writer = VideoWriter(out, 320, 240, 30, sound)
    with pytest.raises(OSError):
        for index in range(300):
            writer.write(scene.render(index)[0], index / 30)
    with pytest.raises((OSError, RuntimeError)):
        writer.close()
    source = open_source(str(out))
    decoded = len(list(source.frames()))
    source.close()
    assert 0 < writer.pictures_on_disk <= writer.frames_written
    assert decoded - 31 <= writer.pictures_on_disk <= decoded, (decoded, writer.pictures_on_disk)


@pytest.mark.parametrize("suffix, earlier", [(".mp4", True), (".mkv", False)])
def test_a_run_on_a_full_disk_says_what_its_file_holds(shared_models, small_disk, capsys, suffix, earlier):
    """The closing line counted the frames the encoder got ("stopped after 300 frames; ... plays up to about the
    last second"), and a disk full from the start left a 0-byte file over an earlier output."""
    import re

    from stream import cli

    out = small_disk / f"out{suffix}"
    if earlier:  # and room for the header only: an MP4 holds its pictures until its first one-second fragment
        out.write_bytes(b"an earlier result")
        (small_disk / "filler").write_bytes(bytes(96 * 1024 - 2 * 4096))
    assert cli.main(["run", "synthetic:portrait?size=320x240&frames=300", "-o", str(out), "--refine", "off",
                     "--no-progress"]) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    if earlier:
        assert re.fullmatch(rf"depthcam: stopped after \d+ frames; {re.escape(str(out))} was not written \(a file of "
                            rf"that name is left as it was\)", last), last
        assert out.read_bytes() == b"an earlier result"
        return
    held = re.fullmatch(rf"depthcam: stopped after (\d+) frames; {re.escape(str(out))} could not be finalised: it "
                        rf"holds at least its first (\d+) frames, those that reached the disk", last)
    assert held, last
    source = open_source(str(out))
    decoded = len(list(source.frames()))
    source.close()
    assert int(held[2]) <= decoded < int(held[1])


def test_an_mp4_through_a_pipe_says_why_it_gives_no_picture(tmp_path):
    """`cat clip.mp4 | depthcam run /dev/stdin`: the index at the end of an MP4 is out of a pipe's reach; the run
    said the input was damaged, then that it held no decodable frame."""
    import subprocess
    import sys

    clip = make_noise_mp4(tmp_path / "clip.mp4")
    result = subprocess.run([sys.executable, "-m", "stream", "run", "/dev/stdin", "-o", str(tmp_path / "out.mp4"),
                             "--refine", "off", "--no-progress"], input=clip.read_bytes(), capture_output=True,
                            timeout=120, cwd=Path(__file__).resolve().parents[1])
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if line.startswith("depthcam:")] == [
        "depthcam: error: /dev/stdin gave no picture through the pipe: an MP4 or MOV whose index comes at its end "
        "cannot be read so (a pipe cannot go back for it); give the file itself, or pipe one made with "
        "-movflags +faststart (or MPEG-TS, MKV)"]


def test_a_gif_holding_its_last_picture_is_not_taken_for_truncated(tmp_path):
    """A GIF that holds its last picture 3 s was 'announced 3.4 s of video but its pictures end after 0.5 s'."""
    from PIL import Image

    pictures = [Image.fromarray(np.full((32, 48, 3), 40 * i, np.uint8)) for i in range(5)]
    pictures[0].save(tmp_path / "hold.gif", save_all=True, append_images=pictures[1:],
                     duration=[100, 100, 100, 100, 3000], loop=0)
    source = open_source(str(tmp_path / "hold.gif"))
    try:
        assert len(list(source.frames())) == 5
        assert source.truncation_warning() is None
    finally:
        source.close()
    cut = tmp_path / "cut.mkv"  # the warning itself still stands where pictures are missing
    make_video(cut, frames=48, audio_codec=None)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    source = open_source(str(cut))
    try:
        list(source.frames())
        assert "it may be truncated" in (source.truncation_warning() or "")
    finally:
        source.close()


def test_a_matroska_duration_tag_of_nan_is_not_taken_for_the_length(tmp_path):
    """FFmpeg 8's Matroska muxer (PyAV 19) may tag a stream DURATION "00:00:        -nan": opening such a file
    raised ValueError (NaN seconds times the frame rate) instead of reading it."""
    path = make_video(tmp_path / "clip.mkv", frames=12, fps=24, audio_codec=None)
    data = path.read_bytes()
    tag = re.search(rb"00:00:\d\d\.\d{9}", data).group()  # the stream's DURATION tag, 18 bytes as the bad one
    path.write_bytes(data.replace(tag, b"00:00:        -nan"))
    source = open_source(str(path))
    try:
        assert source.frame_count in (None, 12) and sum(1 for _ in source.frames()) == 12
    finally:
        source.close()


def test_an_animation_s_frame_rate_is_its_pictures_not_its_average(tmp_path):
    """A GIF of nine 0.1 s pictures and a 2 s last one averages 3.45 fps; taken for its frame rate, AVI's fixed
    rate left out 6 of its 10 pictures. Its rate is that of its pictures, 10 fps."""
    from PIL import Image

    pictures = [Image.fromarray(np.full((32, 48, 3), 25 * i, np.uint8)) for i in range(10)]
    pictures[0].save(tmp_path / "hold.gif", save_all=True, append_images=pictures[1:],
                     duration=[100] * 9 + [2000], loop=0)
    source = open_source(str(tmp_path / "hold.gif"))
    source.close()
    assert source.fps == pytest.approx(10)
    _copy(tmp_path / "hold.gif", tmp_path / "out.avi")
    assert probe(tmp_path / "out.avi")["frames"] == 10


@pytest.mark.parametrize("suffix, options", [(".ts", None), (".m2ts", {"mpegts_m2ts_mode": "1"})])
def test_a_transport_stream_cut_short_is_said_to_be(tmp_path, suffix, options):
    # MPEG-TS has no index: FFmpeg estimates its length from its size, so a cut one read as whole, no warning
    whole = make_timed_video(tmp_path / f"whole{suffix}", [i / 24 for i in range(96)], fps=24, size=(160, 120),
                             keyframe_every=12, container_options=options)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2 + 77])
    for path, cut_short in ((whole, False), (cut, True)):
        source = open_source(str(path))
        frames = list(source.frames())
        source.close()
        warning = source.truncation_warning()
        assert (warning is not None and "ends part-way through a" in warning) == cut_short, warning
        assert (len(frames) < 60) == cut_short


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs a FIFO")
def test_a_transport_stream_through_a_pipe_is_read_once(tmp_path):
    """`cat rec.ts | depthcam run /dev/stdin`: the source opened the input a second time to find the transport
    stream's packet size. A FIFO whose writer had finished then waited forever; a pipe lost bytes to that reader."""
    import os
    import threading

    clip = make_video(tmp_path / "in.ts", frames=24, audio_codec=None)
    fifo = tmp_path / "pipe.ts"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as pipe:
            pipe.write(clip.read_bytes())

    threading.Thread(target=feed, daemon=True).start()
    opened: list = []
    opening = threading.Thread(target=lambda: opened.append(open_source(str(fifo))), daemon=True)
    opening.start()
    opening.join(timeout=30)
    if opening.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # a writer that closes at once ends the wait
        pytest.fail("the source opened the FIFO again and waited for bytes that had all been read")
    source = opened[0]
    try:
        assert sum(1 for _ in source.frames()) == 24
    finally:
        source.close()


def _progress(path: Path, start: float | None = None, duration: float | None = None) -> tuple[float | None, list]:
    """The source's progress_seconds and seconds_done after each of its frames."""
    source = open_source(str(path))
    try:
        if start is not None or duration is not None:
            source.set_range(start, duration)
        return source.progress_seconds, [source.seconds_done(frame) for frame in source.frames()]
    finally:
        source.close()


def test_a_matroska_with_a_long_pause_goes_by_time_not_by_an_estimated_count(tmp_path):
    """Matroska gives no frame count: the estimate (length x average rate) of a screen recording at 30 fps that
    stood still for 30 s was 904 frames for 5, the progress bar "5/904". Its progress goes by time instead: the
    length, and where each frame ends, up to the end."""
    path = make_timed_video(tmp_path / "screen.mkv", [0.0, 0.1, 0.2, 30.0, 30.1], audio_codecs=())
    total, done = _progress(path)
    assert total == pytest.approx(30.13, abs=0.05)
    assert done == sorted(done) and done[2] < 0.3 and done[3] > 30.0
    assert done[-1] == pytest.approx(total, abs=1e-6)


def test_a_file_that_counts_its_frames_goes_by_frames_and_a_part_by_time(tmp_path):
    """An MP4 announces its count: that is the bar's total. A part of it (--start, --duration) has only an
    estimated count, so it goes by time, from the start asked to the end of its last picture."""
    path = make_video(tmp_path / "clip.mp4", frames=24, fps=24, audio_codec=None)
    assert _progress(path)[0] is None
    assert _progress(path, start=0.0)[0] is None  # `--start 0` is the whole file: its count stands
    total, done = _progress(path, start=0.25, duration=0.5)
    assert total == pytest.approx(0.5) and len(done) == 12
    assert done[0] == pytest.approx(1 / 24, abs=1e-3) and done[-1] == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("mdat_size", ["kept", "zero"])
def test_an_mp4_still_being_recorded_is_said_to_be(tmp_path, mdat_size):
    """A camera or a screen recorder writes an MP4's index (moov) when the recording stops: the file it is still
    writing (its mdat's size left 0, up to the end of the file, or already set) was "not a video, or truncated or
    corrupt". The line says what it is and what to do."""
    whole = make_video(tmp_path / "whole.mp4", frames=12, audio_codec=None).read_bytes()
    boxes, at = [], 0
    while at < len(whole):
        size, kind = struct.unpack(">I4s", whole[at:at + 8])
        boxes.append((kind, whole[at:at + size]))
        at += size
    kept = [(kind, data) for kind, data in boxes if kind != b"moov"]
    if mdat_size == "zero":
        kept = [(kind, data[:0] + b"\0\0\0\0" + data[4:] if kind == b"mdat" else data) for kind, data in kept]
    path = tmp_path / "recording.mp4"
    path.write_bytes(b"".join(data for _, data in kept))
    with pytest.raises(UserError, match="no index .* still being recorded, or the recording was cut off"):
        open_source(str(path))


def _two_video_streams(path: Path, default: int | None) -> Path:
    """A Matroska file of two video streams, 64x48 and 32x24, ten pictures each; `default`: the index of the one
    flagged default (None: neither, so the muxer flags the first)."""
    import av
    from av.stream import Disposition

    with av.open(str(path), "w") as container:
        streams = []
        for index, size in enumerate(((64, 48), (32, 24))):
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
            stream.disposition = Disposition.default if index == default else Disposition(0)
            streams.append((stream, size))
        for i in range(10):
            for stream, (width, height) in streams:
                picture = av.VideoFrame.from_ndarray(np.full((height, width, 3), 20 * i, np.uint8), format="bgr24")
                for packet in stream.encode(picture):
                    container.mux(packet)
        for stream, _ in streams:
            for packet in stream.encode(None):
                container.mux(packet)
    return path


@pytest.mark.parametrize("default, size, said", [(1, (32, 24), "number 2 (32x24), the default one"),
                                                 (None, (64, 48), "number 1 (64x48)")])
def test_of_two_video_streams_the_default_one_is_processed_and_said(tmp_path, capsys, default, size, said):
    """A file of two video streams: the one flagged default, as players choose (the first was taken whatever the
    flags said, without a word), and a line saying which."""
    source = open_source(str(_two_video_streams(tmp_path / "two.mkv", default)))
    try:
        assert (source.width, source.height) == size and sum(1 for _ in source.frames()) == 10
    finally:
        source.close()
    assert f"has 2 video streams; {said}" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["clip.mp4", "photo.jpg", "noname"])
def test_an_empty_file_is_said_to_be_empty(tmp_path, name):
    """A copy, download or recording that has not written anything yet: it was "not a video, or truncated or
    corrupt" (or "not an image"), which did not say why."""
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(UserError, match=r"is empty \(0 bytes\).*give it once it is complete"):
        open_source(str(path))


def test_a_start_inside_a_still_stretch_begins_with_the_picture_shown_then(tmp_path):
    """A screen recording that stood still from 0.2 s to 5 s, taken from --start 2: the part began with the
    picture at 5 s, the picture on screen at 2 s and the three seconds of sound under it lost. It begins with
    that picture, at 2 s, held until 5 s."""
    path = make_timed_video(tmp_path / "screen.mkv", [0.0, 0.1, 0.2, 5.0, 5.1], audio_seconds=5.2)
    source = open_source(str(path))
    try:
        source.set_range(2.0, 4.0)
        frames = list(source.frames())
    finally:
        source.close()
    assert [frame.pts_seconds for frame in frames] == pytest.approx([2.0, 5.0, 5.1])
    assert frames[0].extra["duration_seconds"] == pytest.approx(3.0)
    assert frames[0].image.mean() == pytest.approx(60 + 2 * 7, abs=3)  # the third picture (7 levels apart)


def test_a_part_of_a_file_that_paused_starts_with_the_picture_asked_for(tmp_path):
    """A 10 fps recording that stood still for 4 s averages 3.6 fps: the half-frame by that rate (0.14 s) took the
    picture at 0.4 for --start 0.5 (and --start 0.5 --duration 1 gave 0.4 to 1.5). The pictures' own spacing
    (0.1 s) says which is nearest."""
    times = [round(0.1 * i, 1) for i in range(11)] + [round(5 + 0.1 * i, 1) for i in range(11)]
    path = make_timed_video(tmp_path / "paused.mp4", times, fps=10, audio_codecs=())
    source = open_source(str(path))
    try:
        assert source.fps < 4  # the average, which counts the pause
        source.set_range(0.5, 1.0)
        frames = list(source.frames())
    finally:
        source.close()
    assert [frame.pts_seconds for frame in frames] == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])


def test_a_start_within_the_last_picture_gives_that_picture(tmp_path):
    """--start 0.97 in a 1 s video of 10 pictures falls in the last one's time, which is on screen then: the run
    ended "has no picture from --start 1.0 s on" for a file it had just accepted as 1.0 s long."""
    path = make_video(tmp_path / "clip.mp4", frames=10, fps=10, audio_codec=None)
    source = open_source(str(path))
    try:
        source.set_range(0.97, None)
        frames = list(source.frames())
    finally:
        source.close()
    assert [frame.pts_seconds for frame in frames] == pytest.approx([0.97])
    assert frames[0].extra["duration_seconds"] == pytest.approx(0.03)


def test_a_variable_rate_that_paused_keeps_the_rate_its_pictures_come_at(tmp_path):
    """A screen recording at 10 fps that stood still for 5 s averages 1.7 fps, which was taken for its frame rate:
    an AVI made of it (a fixed rate) left out the pictures closer together than that, 7 of 9. It keeps 10 fps and
    every picture."""
    times = [0.0, 0.1, 0.2, 0.3, 5.0, 5.1, 5.2, 5.3, 5.4]
    path = make_timed_video(tmp_path / "screen.mp4", times, audio_codecs=())
    source = open_source(str(path))
    source.close()
    assert source.fps == 10
    _copy(path, tmp_path / "out.avi")
    assert probe(tmp_path / "out.avi")["frames"] >= len(times)


def test_a_folder_given_as_the_input_is_told_how_to_give_its_files(tmp_path):
    """`depthcam run photos/` said only "is a folder; give a video or image file": a folder of photos is run by
    giving its files, each into an output folder."""
    from stream.errors import UserError
    from stream.sources import open_source

    (tmp_path / "photos").mkdir()
    with pytest.raises(UserError) as caught:
        open_source(f"{tmp_path / 'photos'}/")
    assert str(caught.value).endswith(f"depthcam run {tmp_path / 'photos'}/* -o OUT/ (each into OUT/)")


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_an_avi_with_b_frames_gives_its_pictures_in_time_order(tmp_path, codec):
    """AVI stores no presentation times and FFmpeg guesses them in decode order: H.264 with B-frames in an AVI
    came out timed 0.033, 0.1, 0.133, 0.067 s..., which the output took for clips joined (a 1 s clip written 2.18 s
    long). The pictures come timed a frame apart, in the order shown, each with its own picture."""
    import av

    from stream.sources import open_source

    path = tmp_path / "camcorder.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.max_b_frames = 3
        for index in range(30):
            picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), index * 8, np.uint8), format="rgb24")
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    frames = list(open_source(str(path)).frames())
    times = np.array([frame.pts_seconds for frame in frames])
    assert len(frames) == 30 and np.allclose(np.diff(times), 1 / 30, atol=1e-6)
    shown = np.array([int(frame.image[..., 1].mean()) for frame in frames])  # grey levels 0, 8, 16, ... in order
    assert np.all(np.diff(shown) >= -2) and shown[-1] - shown[0] > 200
