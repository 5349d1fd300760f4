"""Writing video files at the edges: pauses of hours, inputs read through a pipe, a disk that fills at the end."""
import errno
import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from media import make_timed_video, probe, timeline
from stream.sources import open_source
from stream.video_writer import VideoWriter

NTSC_60 = 60000 / 1001  # a phone's or a camera's 59.94 fps: a 180 kHz clock, whose 2**31 ticks are 3.3 hours


def _write(path: Path, times: list[float], fps: float, durations: dict[int, float] | None = None) -> VideoWriter:
    writer = VideoWriter(path, 64, 48, fps)
    for index, seconds in enumerate(times):
        duration = (durations or {}).get(index)
        writer.write(np.full((48, 64, 3), 20 + (index * 37) % 200, np.uint8), seconds, duration)
    writer.close()
    return writer


@pytest.mark.parametrize("suffix, fps, pause", [(".mp4", NTSC_60, 4 * 3600.0), (".mov", 30.0, 7 * 3600.0),
                                                (".avi", 30.0, 40 * 60.0)])
def test_a_pause_longer_than_the_container_holds_a_picture_keeps_every_time(tmp_path, suffix, fps, pause):
    """A security camera's recording paused for hours (or a timestamp jump): FFmpeg's MP4 muxer refuses a picture
    lasting 2**31 ticks (3.3 h at 59.94 fps, 6.6 h at 30) and its AVI muxer a gap of over 60000 frames (33 minutes
    at 30 fps); the run failed with "Invalid argument". The picture before the pause is shown again through it."""
    times = [i / fps for i in range(5)] + [pause + i / fps for i in range(5)]
    writer = _write(tmp_path / f"out{suffix}", times, fps)
    shown = timeline(tmp_path / f"out{suffix}")["video"]
    tick = 1 / fps if suffix == ".avi" else 1e-3  # AVI: whole frame periods
    kept = [min(shown, key=lambda at: abs(at - seconds)) for seconds in times]
    assert kept == pytest.approx(times, abs=tick)
    assert writer.frames_written == writer.pictures_on_disk == len(times)  # the copies are not counted


@pytest.mark.parametrize("suffix, fps, last", [(".mp4", NTSC_60, 4 * 3600.0), (".avi", 30.0, 3600.0)])
def test_a_last_picture_longer_than_the_container_holds_a_picture_lasts_its_time(tmp_path, suffix, fps, last):
    """A last picture held for hours: in MP4 the run failed; in AVI it lasted one frame period (0.17 s of 1 h)."""
    import av

    out = tmp_path / f"out{suffix}"
    _write(out, [i / fps for i in range(5)], fps, {4: last})
    with av.open(str(out)) as container:
        assert container.duration / 1e6 == pytest.approx(4 / fps + last, abs=0.002)


def _feed(fifo: Path, data: bytes) -> threading.Thread:
    def write() -> None:
        with open(fifo, "wb") as pipe:
            pipe.write(data)
    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO")
def test_an_input_read_through_a_pipe_is_not_opened_again(tmp_path, caplog):
    """`depthcam run /dev/stdin` or a FIFO: the writer opened the input again for its tags and its sound. With
    sound the run failed ("Invalid data found when processing input"); without, the second reader took bytes from
    the pictures (37 of 240 frames lost), or, the FIFO's writer gone, waited forever. The sound is left out, said."""
    source_path = make_timed_video(tmp_path / "in.mkv", [i / 24 for i in range(24)], fps=24, audio_seconds=1.0)
    fifo = tmp_path / "pipe.mkv"
    os.mkfifo(fifo)
    feeder = _feed(fifo, source_path.read_bytes())
    source = open_source(str(fifo))
    feeder.join(timeout=30)
    assert not feeder.is_alive()  # every byte is in the source's hands: another reader of the FIFO would wait
    out = tmp_path / "out.mp4"
    opened: list = []
    with caplog.at_level(logging.WARNING, logger="stream.video_writer"):
        opening = threading.Thread(target=lambda: opened.append(VideoWriter(
            out, source.width, source.height, source.fps, source.audio_path, tags_from=fifo)), daemon=True)
        opening.start()
        opening.join(timeout=30)
    if opening.is_alive():  # waiting for a writer into the FIFO: one that closes at once ends the wait
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        source.close()
        pytest.fail("the writer opened the FIFO again and waited for bytes that had all been read")
    assert opened, "the writer failed to open"
    writer = opened[0]
    for frame in source.frames():
        writer.write(frame.image, frame.pts_seconds)
    writer.close()
    source.close()
    assert probe(out)["frames"] == 24
    assert any("sound of" in record.getMessage() and "pipe" in record.getMessage() for record in caplog.records)


def test_tags_read_by_the_source_are_kept_without_opening_the_input(tmp_path):
    import av

    out = tmp_path / "out.mkv"
    writer = VideoWriter(out, 64, 48, 10, tags_from={"title": "Holiday", "encoder": "theirs"})
    writer.write(np.zeros((48, 64, 3), np.uint8), 0.0)
    writer.close()
    with av.open(str(out)) as container:
        tags = {key.lower(): value for key, value in container.metadata.items()}
    assert tags["title"] == "Holiday" and tags.get("encoder") != "theirs"


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_a_disk_that_fills_as_the_file_is_finalised_is_called_full(tmp_path, monkeypatch, suffix):
    """The MP4 trailer's failed write came out as "Error in PyAV callback": the run's line said "stage 'sink'
    failed: PyAVCallbackError" instead of the disk is full. The pictures in the fragments on the disk stay."""
    import av

    from stream import video_writer

    out = tmp_path / f"out{suffix}"
    writer = VideoWriter(out, 160, 120, 24)
    rng = np.random.default_rng(0)
    for i in range(80):  # over a second: a fragment or cluster on the disk
        writer.write(rng.integers(0, 255, (120, 160, 3), np.uint8), i / 24)
    real_write = os.write

    def full_disk(fd, data):
        if fd == writer._file._fd:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)
    monkeypatch.setattr(video_writer.os, "write", full_disk)
    with pytest.raises(OSError) as raised:
        writer.close()
    monkeypatch.undo()
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(out)
    assert not writer.finalised and writer.pictures_on_disk >= 24
    with av.open(str(out)) as container:
        decoded = 0
        for packet in container.demux(video=0):
            try:
                decoded += len(packet.decode())
            except av.error.FFmpegError:  # the packet the disk cut short, which a player skips
                pass
    assert decoded >= writer.pictures_on_disk


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv"])
def test_a_time_lapse_slower_than_a_picture_in_1001_seconds_is_written(tmp_path, suffix):
    """Three pictures in four hours (a time-lapse, a camera's snapshots): the nominal rate, 1/7200 fps, was rounded
    to 0 and the run failed with "ZeroDivisionError: Fraction(1, 0)". Each picture keeps its time, the last its
    own duration."""
    import av

    out = tmp_path / f"out{suffix}"
    times = [0.0, 7200.0, 14400.0]
    writer = VideoWriter(out, 64, 48, 1 / 7200)
    for index, seconds in enumerate(times):
        writer.write(np.full((48, 64, 3), 40 + 60 * index, np.uint8), seconds, 7200.0)
    writer.close()
    shown = timeline(out)["video"]
    assert [min(shown, key=lambda at: abs(at - seconds)) for seconds in times] == pytest.approx(times, abs=1e-3)
    with av.open(str(out)) as container:
        assert container.duration / 1e6 == pytest.approx(21600.0, abs=0.01)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO")
def test_an_mp4_written_into_a_fifo_is_not_reopened_to_be_mended(tmp_path, caplog):
    """`-o stream.mp4` naming a FIFO another program reads: the headers' check opened it again and warned "could
    not check its last picture's time (File or stream is not seekable.)"."""
    fifo = tmp_path / "stream.mp4"
    os.mkfifo(fifo)
    received = bytearray()
    reader = threading.Thread(target=lambda: received.extend(fifo.read_bytes()), daemon=True)
    reader.start()
    with caplog.at_level(logging.WARNING, logger="stream.video_writer"):
        writer = VideoWriter(fifo, 64, 48, 10)
        for index in range(5):
            writer.write(np.full((48, 64, 3), 40 * index, np.uint8), index / 10)
        writer.close()
    reader.join(timeout=30)
    assert not caplog.records
    (tmp_path / "copy.mp4").write_bytes(bytes(received))
    assert probe(tmp_path / "copy.mp4")["frames"] == 5


def _paused_recording(path: Path, pause: float, codec: str = "pcm_s16le") -> Path:
    """A second of pictures and sound, a pause, and another second whose sound starts with a click. PCM is exact:
    an encoder's delay moves no click."""
    from fractions import Fraction

    import av

    tick = Fraction(1, 90000)
    tone = 0.1 * np.sin(np.arange(44100) / 10)
    clicked = tone.copy()
    clicked[:220] = 0.9
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.time_base = video.codec_context.time_base = tick
        audio = container.add_stream(codec, rate=44100)
        for index, seconds in enumerate([i / 30 for i in range(30)] + [pause + i / 30 for i in range(30)]):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 + index, np.uint8), format="bgr24")
            frame.pts, frame.time_base = round(seconds / tick), tick
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        for first, signal in ((0, tone), (round(pause * 44100), clicked)):
            for start in range(0, len(signal), 1024):
                frame = av.AudioFrame.from_ndarray(signal[None, start:start + 1024].astype(np.float32), format="fltp",
                                                   layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = 44100, first + start, Fraction(1, 44100)
                for packet in audio.encode(frame):
                    container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)
    return path


def test_a_pause_in_the_sound_is_filled_with_silence_a_second_at_a_time(tmp_path, monkeypatch):
    """AVI keeps no audio times: a pause in the sound becomes silence, which was made at once: 0.5 GB more memory
    for a 10-minute pause, gigabytes for a camera's pause of hours. The sound after the pause stays in step."""
    from stream import audio_track

    made: list[int] = []
    real_silence = audio_track._silence

    def silence(like, samples):
        made.append(samples)
        return real_silence(like, samples)
    monkeypatch.setattr(audio_track, "_silence", silence)
    source = open_source(str(_paused_recording(tmp_path / "in.mkv", 120.0)))
    out = tmp_path / "out.avi"
    writer = VideoWriter(out, source.width, source.height, source.fps, source.audio_path)
    for frame in source.frames():
        writer.write(frame.image, frame.pts_seconds)
    writer.close()
    source.close()
    assert sum(made) >= 118 * 44100 and max(made) <= 44100
    sound = timeline(out)
    assert sound["clicks"] == pytest.approx([120.0], abs=0.01)
    assert sound["audio_end"] == pytest.approx(121.0, abs=0.05)


PAUSED_SOUND_INTO_MP4 = """
import sys
from pathlib import Path
from stream.errors import UserError
from stream.sources import open_source
from stream.video_writer import VideoWriter
source = open_source(sys.argv[1])
writer = VideoWriter(Path(sys.argv[2]), source.width, source.height, source.fps, source.audio_path)
try:
    for frame in source.frames():
        writer.write(frame.image, frame.pts_seconds)
except UserError as exc:
    print(exc)
    sys.exit(2)
finally:
    try:
        writer.close()
    except RuntimeError:  # unfinished after the refusal
        pass
"""


def test_copied_sound_that_pauses_longer_than_mp4_holds_is_refused_in_one_line(tmp_path):
    """AAC copied into MP4 with a pause of 13.6 hours (2**31 samples at 44.1 kHz is 13.5): FFmpeg's muxer ended the
    process (SIGABRT, "Assertion next_dts <= 0x7fffffff failed"), no message, the file unfinished. In a child
    process, so that the old abort fails this test rather than ending the test run."""
    import subprocess
    import sys

    source = _paused_recording(tmp_path / "in.mkv", 13.6 * 3600, codec="aac")
    out = tmp_path / "out.mp4"
    done = subprocess.run([sys.executable, "-c", PAUSED_SOUND_INTO_MP4, str(source), str(out)], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout.strip() == ("the sound of in.mkv pauses for 13.6 hours from 0:00:01.0, longer than .mp4 holds "
                                   "in sound copied at 44100 Hz (13.5 hours); write .mkv")
    assert probe(out)["frames"] >= 25  # the pictures before the pause play


def _spy_on_sound_read(monkeypatch) -> list[float]:
    """The input's times of the sound packets the writer copies and of the frames it decodes, as they come."""
    from stream import audio_track

    read: list[float] = []
    for name in ("_copy", "_place"):
        def spy(self, item, *rest, real=getattr(audio_track.AudioTrack, name)):
            if item.pts is not None and item.time_base is not None:
                read.append(float(item.pts * item.time_base))
            return real(self, item, *rest)
        monkeypatch.setattr(audio_track.AudioTrack, name, spy)
    return read


def _write_far_part(tmp_path: Path, suffix: str, out_suffix: str) -> Path:
    """Of a 26 s video with sound (a click at 24.55 s), the pictures from 24 s on, as --start 24 gives them."""
    times = [float(second) for second in range(24)] + [24.0 + i / 10 for i in range(10)]
    src = make_timed_video(tmp_path / f"in{suffix}", times, fps=10, audio_codecs=("aac",), audio_seconds=26.0,
                           click_at=24.55, keyframe_every=1)  # a jump lands on the keyframe before it
    source = open_source(str(src))
    out = tmp_path / f"out{out_suffix}"
    writer = VideoWriter(out, source.width, source.height, 10, source.audio_path)  # the part's rate
    for frame in source.frames():
        if frame.pts_seconds >= 24.0:  # the part
            writer.write(frame.image, frame.pts_seconds)
    writer.close(complete=False)
    source.close()
    return out


def _assert_part_in_step(out: Path) -> None:
    after = timeline(out)
    assert len(after["video"]) == 10
    assert after["click"] - after["video"][0] == pytest.approx(0.55, abs=0.002)
    assert after["audio_end"] == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("suffix, out_suffix", [(".mp4", ".mp4"), (".mkv", ".mov"), (".mkv", ".webm"),
                                                (".mov", ".avi")])
def test_a_part_far_into_a_video_reads_its_sound_from_just_before_the_part(tmp_path, monkeypatch, suffix, out_suffix):
    """A part far into a long video (--start 59:00): the sound before it was read from the file's beginning, copied
    packets dropped and sound made anew decoded for nothing (~2.6 ms per second skipped, minutes before the first
    frame of an hour's video). The sound is reached by a jump to a second before the part, and stays in step."""
    from stream import audio_track

    read = _spy_on_sound_read(monkeypatch)
    out = _write_far_part(tmp_path, suffix, out_suffix)
    assert min(read) >= 24.0 - audio_track.AUDIO_PREROLL_S - 0.05
    _assert_part_in_step(out)


@pytest.mark.parametrize("out_suffix", [".mp4", ".webm"])
def test_a_jump_to_the_sound_that_lands_after_the_part_reads_it_from_the_beginning(tmp_path, monkeypatch, out_suffix):
    """A jump that lands after the first picture (made so here) would lose the sound under it: the input is read
    from its beginning instead, as before."""
    from stream import audio_track

    monkeypatch.setattr(audio_track, "AUDIO_PREROLL_S", -0.3)  # a jump to 24.3 s for a part from 24 s
    read = _spy_on_sound_read(monkeypatch)
    _assert_part_in_step(_write_far_part(tmp_path, ".mp4", out_suffix))
    assert min(read) <= 0.0
