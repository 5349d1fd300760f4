"""Video files in and out: frame count, frame rate and sound survive a run."""

from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from media import THROUGH_THE_WRITER, channels, join, make_timed_video, make_video, probe, timeline
from stream.errors import UserError
from stream.sources import open_source
from stream.video_writer import VIDEO_CODECS, VideoWriter

AAC_FRAME_S = 1024 / 44100


def _copy(source_path, out_path, frames: int | None = None):
    """Write the input's frames (only the first `frames`, then close as an interrupted run does)."""
    source = open_source(str(source_path))
    writer = VideoWriter(out_path, source.width, source.height, source.fps, source.audio_path)
    for frame in source.frames():
        if frames is not None and frame.index == frames:
            break
        writer.write(frame.image, frame.pts_seconds)
    writer.close(complete=frames is None)
    source.close()


def test_writer_keeps_frames_rate_and_copies_aac_audio(tmp_path):
    src = make_video(tmp_path / "in.mp4", frames=30, fps=25)
    _copy(src, tmp_path / "out.mp4")
    before, after = probe(src), probe(tmp_path / "out.mp4")
    assert after["frames"] == before["frames"] == 30
    assert after["fps"] == pytest.approx(25.0)
    assert after["audio_codec"] == "aac"
    assert after["audio_seconds"] == pytest.approx(before["audio_seconds"], abs=0.05)


def test_writer_transcodes_audio_the_container_cannot_hold(tmp_path):
    src = make_video(tmp_path / "in.mkv", frames=20, fps=20, audio_codec="pcm_s16le")
    _copy(src, tmp_path / "out.mp4")
    after = probe(tmp_path / "out.mp4")
    assert after["frames"] == 20
    assert after["audio_codec"] == "aac"
    assert after["audio_seconds"] == pytest.approx(1.0, abs=0.1)


def test_odd_frame_sizes_are_padded_to_even(tmp_path):
    import numpy as np

    writer = VideoWriter(tmp_path / "odd.mp4", 33, 21, 10)
    for _ in range(3):
        writer.write(np.zeros((21, 33, 3), np.uint8))
    writer.close()
    assert probe(tmp_path / "odd.mp4")["frames"] == 3


def test_unknown_output_type_is_refused(tmp_path):
    with pytest.raises(UserError, match="unknown video type"):
        VideoWriter(tmp_path / "x.xyz", 32, 32, 10)


def test_video_source_reports_size_rate_and_count(tmp_path):
    src = open_source(str(make_video(tmp_path / "in.mp4", frames=12, fps=12, size=(96, 64))))
    assert (src.width, src.height, src.fps, src.frame_count) == (96, 64, 12.0, 12)
    assert src.audio_path is not None and not src.live
    frames = list(src.frames())
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].image.shape == (64, 96, 3)
    src.close()


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_phone_video_is_turned_upright_and_written_upright(tmp_path, rotation):
    import numpy as np

    from stream.synthetic import SyntheticPortrait, SyntheticScene

    upright_size = (96, 128)  # a portrait video, stored turned (landscape for 90 and 270)
    path = make_video(tmp_path / "phone.mp4", frames=6, fps=12, size=upright_size, rotation=rotation)
    stored = probe(path)
    assert stored["rotation"] == rotation and (stored["width"], stored["height"]) != (0, 0)
    source = open_source(str(path))
    assert (source.width, source.height) == upright_size and "upright" in source.description
    first = next(source.frames()).image
    truth, _ = SyntheticPortrait(SyntheticScene(*upright_size)).render(0)
    assert first.shape == truth.shape
    error = np.abs(first.astype(float) - truth).mean()
    wrong_turns = [np.abs(np.rot90(first, k).astype(float) - truth).mean() for k in (2,)]  # the same shape
    assert error < 6 and all(error * 4 < wrong for wrong in wrong_turns)  # H.264 loss vs a wrong turn
    source.close()
    out = tmp_path / "out.mp4"
    _copy(path, out)
    written = probe(out)
    assert (written["width"], written["height"], written["rotation"]) == (*upright_size, 0)
    assert written["frames"] == 6


def _times(start: float, count: int, fps: float) -> list[float]:
    return [start + i / fps for i in range(count)]


@pytest.mark.parametrize("video_start, audio_start, codec, suffix, out_suffix", [
    (1.0, 0.0, "aac", ".mp4", ".mp4"),        # video starts 1 s after the audio; packets copied
    (2.0, 2.0, "aac", ".mp4", ".mp4"),        # both start at 2 s
    (1.0, 0.0, "pcm_s16le", ".mkv", ".mp4"),  # transcoded to AAC
    (0.0, 0.5, "pcm_s16le", ".mkv", ".mp4"),  # audio starts 0.5 s after the video
    (0.0, 0.5, "pcm_s16le", ".mkv", ".avi"),  # AVI has no audio timestamps: the offset is silence
    (0.0, 0.5, "mp3", ".mkv", ".avi"),
])
def test_an_offset_input_keeps_its_audio_to_video_offset(tmp_path, video_start, audio_start, codec, suffix,
                                                         out_suffix):
    click = max(video_start, audio_start) + 0.3
    src = make_timed_video(tmp_path / f"in{suffix}", _times(video_start, 10, 10), fps=10, audio_codecs=(codec,),
                           audio_start=audio_start, audio_seconds=1.5, click_at=click)
    _copy(src, tmp_path / f"out{out_suffix}")
    before, after = timeline(src), timeline(tmp_path / f"out{out_suffix}")
    assert before["click"] - before["video"][0] == pytest.approx(click - video_start, abs=0.01)
    assert after["video"][0] == pytest.approx(0, abs=0.03)
    assert after["click"] - after["video"][0] == pytest.approx(click - video_start, abs=AAC_FRAME_S)
    # What came before the pictures is cut (a later start is kept, or filled with silence when transcoded).
    assert -AAC_FRAME_S <= after["audio_start"] - after["video"][0] <= max(audio_start - video_start, 0) + AAC_FRAME_S


def test_a_home_relative_output_is_written_where_it_was_checked(tmp_path, monkeypatch):
    # `--save-depth=~/d.mp4` or a YAML value: the shell expands no ~ there
    monkeypatch.setenv("HOME", str(tmp_path))
    writer = VideoWriter(Path("~/sub/depth.mp4"), 64, 48, 10)
    writer.write(np.zeros((48, 64, 3), np.uint8), 0.0)
    writer.close()
    assert probe(tmp_path / "sub" / "depth.mp4")["frames"] == 1


def test_avi_takes_an_odd_average_frame_rate(tmp_path):
    # a phone's variable-rate 120 fps clip averages 119.8765 fps: 69888/583, over MPEG-4 Part 2's 65535 ticks
    writer = VideoWriter(tmp_path / "out.avi", 64, 48, 119.8765)
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8), i / 119.8765)
    writer.close()
    assert probe(tmp_path / "out.avi")["frames"] == 5 and writer.rate.numerator <= 65535
    assert float(writer.rate) == pytest.approx(119.8765, rel=1e-3)


def _pictures_and_a_second_of_sound(path: Path, codec: str, layout: str, fmt: str,
                                    sound: Callable[[list[str]], np.ndarray]) -> Path:
    """Ten black pictures at 10 fps and a second of sound at 48 kHz in `layout`: `sound(its channels' names)`,
    the samples packed (1 x 48000 * channels) in `fmt`."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream(codec, rate=48000, layout=layout)
        for _ in range(10):
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="bgr24")))
        container.mux(video.encode(None))
        names = [channel.name for channel in audio.codec_context.layout.channels]
        frame = av.AudioFrame.from_ndarray(sound(names), format=fmt, layout=layout)
        frame.sample_rate, frame.pts = 48000, 0
        container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


@pytest.mark.parametrize("layout", ["mono", "5.1"])
def test_transcoded_audio_keeps_its_channels(tmp_path, layout):
    import av

    src = _pictures_and_a_second_of_sound(tmp_path / "in.mkv", "pcm_s16le", layout, "s16",
                                          lambda names: np.zeros((1, 48000 * len(names)), np.int16))
    channels = av.AudioLayout(layout).nb_channels
    _copy(src, tmp_path / "out.mp4")  # pcm into mp4: transcoded to AAC
    with av.open(str(tmp_path / "out.mp4")) as out:
        assert out.streams.audio[0].codec_context.layout.nb_channels == channels


def _seven_one(path: Path, video_start: float, parts: list[tuple[float, float]], click_at: float) -> Path:
    """Ten pictures at 10 fps from `video_start`, and 7.1 AAC (decoded to 8 planar channels) in `parts` (start,
    end; a pause between), a tone with a click at `click_at` on every channel."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.time_base = video.codec_context.time_base = Fraction(1, 90000)
        audio = container.add_stream("aac", rate=48000, layout="7.1")
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 60 + 9 * i, np.uint8), format="bgr24")
            frame.pts = round((video_start + i / 10) * 90000)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        for start, end in parts:
            for first in range(round(start * 48000), round(end * 48000), 1024):
                t = (first + np.arange(1024)) / 48000
                tone = np.where(np.abs(t - click_at - 0.0025) < 0.0025, 0.9, 0.1 * np.sin(2 * np.pi * 440 * t))
                frame = av.AudioFrame.from_ndarray(np.repeat(tone[:, None], 8, 1).astype(np.float32).reshape(1, -1),
                                                   format="flt", layout="7.1")  # packed: PyAV takes 8 rows of it
                frame.sample_rate, frame.pts, frame.time_base = 48000, first, Fraction(1, 48000)
                for packet in audio.encode(frame):
                    container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)
    return path


def test_7_1_sound_made_anew_is_cut_and_paused_without_a_crash(tmp_path):
    """7.1 sound made anew (here PCM for AVI; Opus for WebM, AAC in MP4 from PCM, FLAC, DTS alike): cut at the first
    picture and its pause filled, it crashed the process (SIGSEGV, no message): PyAV's to_ndarray of 8 planar
    channels read a ninth. In a child process, so that the old crash fails this test rather than ending the test
    run. (AVI's PCM is read back packed, which PyAV reads right.)"""
    import subprocess
    import sys

    import av

    src = _seven_one(tmp_path / "in.mkv", 0.5, [(0.0, 0.8), (1.2, 1.6)], click_at=1.3)
    out = tmp_path / "out.avi"
    done = subprocess.run([sys.executable, "-c", THROUGH_THE_WRITER, str(src), str(out)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = timeline(out)
    assert after["clicks"] == pytest.approx([0.8], abs=0.002)  # the click, under the same picture
    assert after["audio_end"] == pytest.approx(1.1, abs=0.01)
    with av.open(str(out)) as container:
        channels = container.streams.audio[0].codec_context.layout.nb_channels
        quiet = [frame.to_ndarray()[0] for frame in container.decode(audio=0)  # PCM's 8 channels: packed
                 if 0.35 <= frame.time <= 0.65]
    assert channels == 8
    assert quiet and max(np.abs(samples).max() for samples in quiet) < 0.01 * 32767


@pytest.mark.parametrize("layout", ["5.1", "7.1"])
@pytest.mark.parametrize("loud", ["FC", "LFE", "BR"])
def test_surround_sound_into_webm_keeps_each_channel_where_it_was(tmp_path, layout, loud):
    """WebM's sound is Opus, which holds up to 7.1: a 5.1 or 7.1 track was mixed down to stereo."""
    import av

    def tone_on_the_loud_one(names: list[str]) -> np.ndarray:
        signal = np.zeros((48000, len(names)), np.float32)
        signal[:, names.index(loud)] = 0.5 * np.sin(2 * np.pi * 60 * np.arange(48000) / 48000)
        return signal.reshape(1, -1)

    src = _pictures_and_a_second_of_sound(tmp_path / "in.mp4", "aac", layout, "flt", tone_on_the_loud_one)
    out = tmp_path / "out.webm"
    _copy(src, out)
    with av.open(str(out)) as container:
        layout_out = container.streams.audio[0].codec_context.layout
        energy = sum((channels(frame).astype(np.float64) ** 2).sum(axis=1) for frame in container.decode(audio=0))
    assert layout_out.name == layout
    assert [channel.name for channel in layout_out.channels][int(np.argmax(energy))] == loud
    assert np.sort(energy)[-2] < 0.01 * energy.max()  # the others quiet


def test_44_1_khz_audio_goes_into_webm(tmp_path):
    src = make_video(tmp_path / "in.mp4", frames=12, fps=12, size=(64, 48), sample_rate=44100)
    _copy(src, tmp_path / "out.webm")
    after = probe(tmp_path / "out.webm")
    assert after["frames"] == 12 and after["audio_codec"] == "opus"
    assert after["audio_seconds"] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate_keeps_every_frame_time(tmp_path, suffix):
    times = _times(0.0, 15, 30) + _times(0.5, 8, 15)  # 30 fps, then 15 fps
    src = make_timed_video(tmp_path / "in.mp4", times, fps=30, audio_seconds=1.05)
    _copy(src, tmp_path / f"out{suffix}")
    after = timeline(tmp_path / f"out{suffix}")
    written = [t - after["video"][0] for t in after["video"]]
    assert written == pytest.approx(times, abs=0.001 + after["tick"])


@pytest.mark.parametrize("codec, start, suffix", [
    ("aac", 0.0, ".mp4"),        # copied packets
    ("aac", 2.0, ".mkv"),        # an input that starts at 2 s
    ("pcm_s16le", 0.0, ".mp4"),  # transcoded
])
def test_an_interrupted_write_ends_its_audio_with_the_video(tmp_path, codec, start, suffix):
    src = make_timed_video(tmp_path / "in.mkv", _times(start, 20, 10), fps=10, audio_codecs=(codec,),
                           audio_start=start, audio_seconds=2.0)
    _copy(src, tmp_path / f"out{suffix}", frames=8)
    after = timeline(tmp_path / f"out{suffix}")
    assert len(after["video"]) == 8
    video_end = after["video"][-1] + 0.1
    assert after["audio_start"] == pytest.approx(after["video"][0], abs=AAC_FRAME_S)  # sound under the pictures
    assert after["audio_end"] == pytest.approx(video_end, abs=0.1)


@pytest.mark.parametrize("size, matrix", [((320, 240), 6), ((1280, 720), 1)])  # BT.601 (SMPTE 170M), BT.709
def test_grey_and_primaries_survive_the_colour_conversion_and_are_tagged(tmp_path, size, matrix):
    import av
    import numpy as np
    from av.video.reformatter import Interpolation

    colours = [(128, 128, 128), (0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 255), (0, 0, 0)]  # BGR
    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    for i, colour in enumerate(colours):
        image[:, i * width // len(colours):(i + 1) * width // len(colours)] = colour
    writer = VideoWriter(tmp_path / "out.mp4", width, height, 10)
    for _ in range(2):
        writer.write(image)
    writer.close()
    with av.open(str(tmp_path / "out.mp4")) as container:
        frame = next(container.decode(video=0))
        assert (frame.colorspace, frame.color_range) == (matrix, 1)  # tagged, limited range
        # A player's exact conversion, by the tags.
        back = frame.to_ndarray(format="bgr24", interpolation=Interpolation.BILINEAR | Interpolation.ACCURATE_RND
                                | Interpolation.FULL_CHR_H_INT)
    for i, colour in enumerate(colours):
        got = back[height // 2, (2 * i + 1) * width // (2 * len(colours))].astype(int)
        assert np.abs(got - colour).max() <= 2, (colour, got)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_mp3_audio_is_copied_not_reencoded(tmp_path, suffix):
    src = make_timed_video(tmp_path / "in.mkv", _times(0, 10, 10), fps=10, audio_codecs=("libmp3lame",))
    _copy(src, tmp_path / f"out{suffix}")
    assert probe(tmp_path / f"out{suffix}")["audio_codec"] == "mp3"


def test_every_audio_stream_is_kept_the_default_one_flagged(tmp_path):
    src = make_timed_video(tmp_path / "in.mkv", _times(0, 10, 10), fps=10, audio_codecs=("aac", "libmp3lame"),
                           default_audio=1)
    _copy(src, tmp_path / "out.mkv")
    import av

    with av.open(str(tmp_path / "out.mkv")) as container:
        streams = list(container.streams.audio)
        assert [s.codec_context.codec.canonical_name for s in streams] == ["aac", "mp3"]
        assert [bool(s.disposition & av.stream.Disposition.default) for s in streams] == [False, True]


def test_an_output_that_cannot_be_written_fails_at_construction(tmp_path):
    (tmp_path / "folder.mp4").mkdir()
    (tmp_path / "file").write_text("")
    for path in (tmp_path / "folder.mp4", tmp_path / "file" / "out.mp4"):
        with pytest.raises(UserError, match="cannot write output"):
            VideoWriter(path, 32, 32, 10)


def test_an_encoder_that_fails_at_open_is_a_user_error_and_leaves_no_file(tmp_path, monkeypatch):
    from stream import video_writer

    monkeypatch.setitem(video_writer.VIDEO_CODECS, ".mp4", "no_such_codec")
    with pytest.raises(UserError, match="cannot write"):
        VideoWriter(tmp_path / "out.mp4", 32, 32, 10)
    assert not (tmp_path / "out.mp4").exists()


KILLED_WRITER = """
import os, signal, sys
import numpy as np
from pathlib import Path
from stream.video_writer import VIDEO_CODECS, VideoWriter
writer = VideoWriter(Path(sys.argv[1]), 160, 120, 30)
for i in range(150):
    writer.write(np.full((120, 160, 3), (i * 5) % 255, np.uint8), i / 30)
os.kill(os.getpid(), signal.SIGKILL)  # no close(): a crash, a power cut, the OOM killer
"""


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("suffix", sorted(VIDEO_CODECS))
def test_a_killed_run_keeps_what_it_wrote(tmp_path, suffix):
    import subprocess
    import sys

    import av

    from stream.video_writer import container_options

    if container_options(suffix) is None:
        pytest.skip(f"this PyAV's FFmpeg ({av.library_versions['libavformat']}) is older than 7.1: {suffix} "
                    f"is written the plain way, playable once closed")

    out = tmp_path / f"killed{suffix}"
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out)], cwd=Path(__file__).resolve().parents[1],
                   timeout=120)
    with av.open(str(out)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded >= 100  # of 150: the encoder's look-ahead and the last second may be lost


def _top_level_boxes(path: Path) -> list[str]:
    import struct

    data, boxes, pos = path.read_bytes(), [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        size = struct.unpack(">Q", data[pos + 8:pos + 16])[0] if size == 1 else size or len(data) - pos
        boxes.append(kind.decode("latin-1"))
        pos += size
    return boxes


@pytest.mark.parametrize("suffix", [".mp4", ".m4v", ".mov"])
def test_a_finished_mp4_is_a_regular_unfragmented_file(tmp_path, suffix):
    # written in fragments (crash-safe), closed into one index: what every editor and player expects
    out = tmp_path / f"out{suffix}"
    writer = VideoWriter(out, 64, 48, 10)
    for i in range(40):
        writer.write(np.full((48, 64, 3), 6 * i, np.uint8), i / 10)
    writer.close()
    boxes = _top_level_boxes(out)
    assert "moov" in boxes and "mdat" in boxes and "moof" not in boxes, boxes
    assert probe(out)["frames"] == 40


def test_an_ffmpeg_older_than_7_1_writes_mp4_the_plain_way(tmp_path, monkeypatch):
    import av

    from stream.video_writer import HYBRID_MP4_SINCE, container_options

    if tuple(av.library_versions["libavformat"][:2]) >= HYBRID_MP4_SINCE:
        assert "hybrid_fragmented" in container_options(".mp4")["movflags"]
    monkeypatch.setitem(av.library_versions, "libavformat", (61, 1, 100))  # FFmpeg 7.0: no hybrid mode
    assert container_options(".mp4") is None and container_options(".mkv")["cluster_time_limit"] == "1000"
    writer = VideoWriter(tmp_path / "plain.mp4", 64, 48, 10)
    for i in range(5):
        writer.write(np.full((48, 64, 3), 30 * i, np.uint8), i / 10)
    writer.close()
    assert probe(tmp_path / "plain.mp4")["frames"] == 5


def test_a_paced_synthetic_source_draws_each_frame_before_its_exposure_time(monkeypatch):
    """Like a camera, the paced source has frame i ready at its exposure time: it draws it first and
    then waits, so drawing (38 ms at 720p) is not counted as pipeline latency unless it runs late."""
    import stream.sources as sources

    clock = [0]
    events = []
    monkeypatch.setattr(sources, "now_ns", lambda: clock[0])

    def sleep(seconds):
        events.append("wait")
        clock[0] += int(seconds * 1e9)

    monkeypatch.setattr(sources.time, "sleep", sleep)
    source = open_source("synthetic:portrait?size=48x32&fps=10&frames=3&realtime=1")
    draw = source.scene.render

    def timed_draw(index):
        events.append(f"draw {index}")
        clock[0] += 30_000_000  # 30 ms of a 100 ms period
        return draw(index)

    monkeypatch.setattr(source.scene, "render", timed_draw)
    frames = []
    for frame in source.frames():
        events.append(f"frame {frame.index} at {clock[0] // 1_000_000} ms")
        frames.append(frame)
    assert events == ["draw 0", "frame 0 at 30 ms",  # the first is late by its drawing
                      "draw 1", "wait", "frame 1 at 100 ms", "draw 2", "wait", "frame 2 at 200 ms"]
    # latency counts from the exposure; from the drawing's end where that came later, the overrun kept apart
    assert [f.capture_ns // 1_000_000 for f in frames] == [30, 100, 200]
    assert [f.extra["source_late_ns"] // 1_000_000 for f in frames] == [30, 0, 0]


def test_a_paced_synthetic_source_that_falls_behind_moves_on_like_a_camera(monkeypatch):
    """Drawing slower than the frame period (720p on two busy cores): a camera hands over its newest
    exposure, not a growing queue. The frames it could not draw in time are skipped, so the delay stays
    within its drawing and a period instead of growing with every frame."""
    import stream.sources as sources

    clock = [0]
    monkeypatch.setattr(sources, "now_ns", lambda: clock[0])
    monkeypatch.setattr(sources.time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + int(seconds * 1e9)))
    source = open_source("synthetic:portrait?size=48x32&fps=10&frames=40&realtime=1")
    draw = source.scene.render

    def slow_draw(index):
        clock[0] += 250_000_000  # 2.5 periods a frame
        return draw(index)

    monkeypatch.setattr(source.scene, "render", slow_draw)
    delays, indices = [], []
    for frame in source.frames():
        delays.append(clock[0] - frame.capture_ns)
        indices.append(frame.index)
    assert max(delays) <= 250_000_000 + 100_000_000  # its drawing and a period at most, not more and more
    assert indices[:4] == [0, 2, 5, 7] and indices[-1] <= 39  # each draw skips the exposures it missed


def test_a_writer_that_got_no_picture_leaves_a_file_already_there_alone(tmp_path):
    """A part with no picture in it (--start between the last picture and the announced end) writes nothing
    (the run says "nothing was written"): before 2026-11-28 the audio was still muxed, replacing the file with
    an empty video."""
    src = make_video(tmp_path / "in.mp4", frames=12, fps=12)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier result")
    VideoWriter(out, 160, 120, 12, src).close()
    assert out.read_bytes() == b"an earlier result"


def test_a_part_shorter_than_a_frame_still_takes_its_first_picture(tmp_path):
    source = open_source(str(make_video(tmp_path / "in.mp4", frames=12, fps=12)))
    source.set_range(0.25, 0.001)
    assert len(list(source.frames())) == 1
    source.close()


def _read_all(path: Path, start=None, duration=None):
    source = open_source(str(path))
    if start is not None or duration is not None:
        source.set_range(start, duration)
    frames = list(source.frames())
    source.close()  # as after a run: the warning is asked for once the source is closed
    return frames, source.truncation_warning()


def test_a_variable_frame_rate_without_a_frame_count_is_not_taken_for_truncated(tmp_path):
    """Matroska gives no frame count; one estimated from the average rate (here 30 fps over 2 s: 59) is no
    measure of 20 frames 30 ms apart and 20 frames 70 ms apart. The warning compares times instead."""
    times = [0.03 * i for i in range(20)] + [0.6 + 0.07 * i for i in range(20)]
    video = make_timed_video(tmp_path / "vfr.mkv", times, fps=30, audio_codecs=())
    frames, warning = _read_all(video)
    assert len(frames) == 40 and warning is None
    frames, warning = _read_all(video, 0.5, 1.0)
    assert len(frames) == 16 and warning is None


def test_a_matroska_file_cut_short_is_warned_about_by_time(tmp_path):
    whole = make_video(tmp_path / "whole.mkv", frames=48, fps=24, audio_codec=None)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    frames, warning = _read_all(cut)
    assert 0 < len(frames) < 48 and "it may be truncated" in warning
    assert _read_all(whole)[1] is None


def test_a_variable_frame_rate_in_avi_keeps_each_picture_at_its_time(tmp_path):
    """AVI has one tick a picture: pictures closer together than its rate are left out, so that every picture
    kept is shown within half a tick of its time (they were pushed a tick on: 0.2 s late at the white one)."""
    from fractions import Fraction

    import av

    times = [0.03 * i for i in range(20)] + [0.6 + 0.07 * i for i in range(20)]
    white = 25  # at 0.95 s
    with av.open(str(tmp_path / "vfr.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 255 if i == white else 40, np.uint8), "bgr24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    source = open_source(str(tmp_path / "vfr.mp4"))
    writer = VideoWriter(tmp_path / "out.avi", source.width, source.height, source.fps)
    for frame in source.frames():
        writer.write(frame.image, frame.pts_seconds)
    writer.close()
    source.close()
    assert 0 < writer.pictures_left_out < 20
    with av.open(str(tmp_path / "out.avi")) as container:
        shown = [(frame.time, frame.to_ndarray(format="bgr24").mean()) for frame in container.decode(video=0)]
    assert len(shown) == 40 - writer.pictures_left_out
    white_at = [time for time, level in shown if level > 200]
    assert len(white_at) == 1 and abs(white_at[0] - times[white]) <= 0.5 / float(writer.rate) + 1e-3, white_at


@pytest.mark.parametrize("suffix", [".avi", ".mkv"])
def test_clips_joined_as_they_are_play_one_after_the_other(tmp_path, suffix):
    """`cat a.ts b.ts`: the times go back to 0 half-way. The second clip follows the first a frame later
    (AVI left out every picture of it; the others crammed it into one tick after the other)."""
    import av

    parts = [make_timed_video(tmp_path / f"{name}.ts", [i / 25 for i in range(25)], fps=25, audio_codecs=())
             for name in ("a", "b")]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(part.read_bytes() for part in parts))
    _copy(joined, tmp_path / f"out{suffix}")
    with av.open(str(tmp_path / f"out{suffix}")) as container:
        times = [frame.time for frame in container.decode(video=0)]
    assert len(times) == 50
    assert np.allclose(np.diff(times), 1 / 25, atol=0.002), np.diff(times)


def test_after_a_failed_write_nothing_more_is_muxed(tmp_path, monkeypatch):
    """A full disk at the header: PyAV would write the header again at the next mux, and FFmpeg's MP4 muxer
    crashed on that (SIGSEGV, no message). The writer stops muxing and says the file is unfinished."""
    import errno

    writer = VideoWriter(tmp_path / "out.mp4", 64, 48, 10)
    calls = []

    def full_disk(packet):
        calls.append(packet)
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(writer, "container", _MuxFails(writer.container, full_disk))
    with pytest.raises(OSError):
        for _ in range(60):  # until the encoder's look-ahead gives its first packet
            writer.write(np.zeros((48, 64, 3), np.uint8))
    muxed = len(calls)
    with pytest.raises(RuntimeError, match="was not written: no picture reached the disk"):
        writer.close()
    assert len(calls) == muxed == 1


@pytest.mark.parametrize("suffix", sorted(VIDEO_CODECS))
@pytest.mark.parametrize("earlier", [False, True])
def test_a_full_disk_at_the_first_picture_leaves_an_earlier_output_alone_and_no_new_file(tmp_path, monkeypatch,
                                                                                         suffix, earlier):
    """The header reached the disk and the first picture did not: the file was left 0 bytes or header-only,
    unplayable, in place of an earlier output (tests/test_video_inputs.py fills a real disk)."""
    import errno

    out = tmp_path / f"out{suffix}"
    if earlier:
        out.write_bytes(b"an earlier result")
    writer = VideoWriter(out, 64, 48, 10)

    def full_disk(packet):
        raise OSError(errno.ENOSPC, "No space left on device", str(out))
    monkeypatch.setattr(writer, "container", _MuxFails(writer.container, full_disk))
    with pytest.raises(OSError):
        for _ in range(60):
            writer.write(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(RuntimeError):
        writer.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == ([out.name] if earlier else [])
    if earlier:
        assert out.read_bytes() == b"an earlier result"
    assert writer.pictures_on_disk == 0


class _MuxFails:
    def __init__(self, container, mux):
        self._container, self.mux = container, mux

    def __getattr__(self, name):
        return getattr(self._container, name)


def test_a_raw_stream_without_duration_or_count_is_read_without_a_warning(tmp_path):
    """A raw H.264 stream (.h264) announces neither; the warning, asked for after the source was closed, read
    the closed container (AssertionError: Container is not open)."""
    import av

    path = tmp_path / "raw.h264"
    with av.open(str(path), "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), "bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    frames, warning = _read_all(path)
    assert len(frames) == 10 and warning is None


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".m4v"])
def test_aac_from_mpeg_ts_is_copied_into_mp4_and_mov_in_step(tmp_path, suffix):
    """MPEG-TS carries AAC as ADTS, which FFmpeg's MP4 muxer refused with error -1 at the first sound packet
    ("PermissionError: Operation not permitted"): the packets go through aac_adtstoasc, whole and in step."""
    src = make_timed_video(tmp_path / "in.ts", _times(0.0, 30, 30), fps=30, size=(160, 120),
                           audio_seconds=1.0, click_at=0.5)
    _copy(src, tmp_path / f"out{suffix}")
    before, after = timeline(src), timeline(tmp_path / f"out{suffix}")
    assert len(after["video"]) == 30 and probe(tmp_path / f"out{suffix}")["audio_codec"] == "aac"
    assert after["click"] - after["video"][0] == pytest.approx(before["click"] - before["video"][0], abs=0.002)
    assert after["audio_end"] == pytest.approx(1.0, abs=AAC_FRAME_S)


def test_a_muxer_refusing_a_packet_is_not_called_a_permission_problem(tmp_path, monkeypatch):
    """FFmpeg's muxers fail with a bare -1, which Python reads as EPERM ("Operation not permitted")."""
    import errno

    import av

    def refuse(packet):
        raise av.error.PermissionError(errno.EPERM, "Operation not permitted", str(tmp_path / "out.mp4"))
    writer = VideoWriter(tmp_path / "out.mp4", 64, 48, 10)
    monkeypatch.setattr(writer, "container", _MuxFails(writer.container, refuse))
    with pytest.raises(UserError, match="muxer refused the video .*not a permission problem.*e.g. .mkv"):
        for _ in range(60):
            writer.write(np.zeros((48, 64, 3), np.uint8))


def _keyframe_times(path: Path) -> list[float]:
    import av

    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0) if frame.key_frame]


@pytest.mark.parametrize("keyframe_every, start, duration, count", [
    (15, 0.7, 0.5, 15),    # keyframes every 0.5 s: the jump landed on the one after the start (6 frames from 1.07 s)
    (300, 0.5, None, 30),  # one keyframe: refused, "no picture from --start 0.5 s on"
])
def test_start_in_mpeg_ts_begins_at_the_first_picture_from_it(tmp_path, keyframe_every, start, duration, count):
    """MPEG-TS has no index: its demuxer lands on the keyframe after the time asked for. The part starts at
    the first picture at or after --start all the same, and its sound is cut to match."""
    src = make_timed_video(tmp_path / "in.ts", _times(0.0, 45, 30), fps=30, size=(160, 120),
                           audio_codecs=("mp2",), audio_seconds=1.5, click_at=1.0, keyframe_every=keyframe_every)
    first = timeline(src)["video"][0]
    assert len(_keyframe_times(src)) == (3 if keyframe_every == 15 else 1)
    source = open_source(str(src))
    source.set_range(start, duration)
    writer = VideoWriter(tmp_path / "out.mp4", source.width, source.height, source.fps, source.audio_path)
    frames = list(source.frames())
    for frame in frames:
        writer.write(frame.image, frame.pts_seconds)
    writer.close(complete=duration is None)
    source.close()
    assert len(frames) == count
    assert frames[0].pts_seconds - first == pytest.approx(start, abs=0.5 / 30)  # the picture at the start
    after = timeline(tmp_path / "out.mp4")
    assert len(after["video"]) == count
    click = 1.0 - (frames[0].pts_seconds - first)  # the click at 1 s of the input, under the same picture
    assert after["click"] - after["video"][0] == pytest.approx(click, abs=AAC_FRAME_S)
    assert after["audio_end"] == pytest.approx(count / 30, abs=0.05)


@pytest.mark.parametrize("sizes", [((160, 120), (320, 240)), ((320, 240), (160, 120))])
def test_clips_of_different_sizes_joined_are_brought_to_the_first_size(tmp_path, capsys, sizes):
    """`cat p1.ts p2.ts`: a bigger second clip failed in the writer (ValueError: index can't contain negative
    values); a smaller one sat in the top-left corner, its edges smeared. Every picture gets the first size,
    scaled, and the change is said once."""
    import cv2

    parts = [make_video(tmp_path / f"part{i}.ts", frames=10, fps=10, size=size, audio_codec=None)
             for i, size in enumerate(sizes)]
    joined = join(tmp_path / "joined.ts", parts)
    frames, _ = _read_all(joined)
    assert [frame.image.shape[:2] for frame in frames] == [sizes[0][::-1]] * 20
    told = [line for line in capsys.readouterr().err.splitlines() if "picture size" in line]
    assert len(told) == 1 and f"from {sizes[0][0]}x{sizes[0][1]} to {sizes[1][0]}x{sizes[1][1]}" in told[0]
    second, _ = _read_all(parts[1])
    scaled = cv2.resize(second[0].image, sizes[0], interpolation=cv2.INTER_AREA)
    assert np.abs(frames[10].image.astype(float) - scaled).mean() < 3  # the whole picture, not a corner
    _copy(joined, tmp_path / "out.mp4")
    written = probe(tmp_path / "out.mp4")
    assert (written["frames"], written["width"], written["height"]) == (20, *sizes[0])


def test_the_writer_refuses_a_picture_of_another_size(tmp_path):
    writer = VideoWriter(tmp_path / "out.mp4", 64, 48, 10)
    writer.write(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="every picture must have the first one's size"):
        writer.write(np.zeros((96, 128, 3), np.uint8))
    writer.close()


@pytest.mark.parametrize("codec, suffix", [
    ("aac", ".mp4"),  # copied
    ("mp2", ".mp4"),  # transcoded to AAC
    ("aac", ".mkv"),  # copied
    ("mp2", ".avi"),  # PCM
])
def test_clips_joined_as_they_are_keep_the_sound_of_each(tmp_path, codec, suffix):
    """`cat a.ts a.ts`: the sound stopped with the first clip (0.68 s of 1.33). Each clip's sound follows its
    pictures, as in the clip: its click sits under the same picture."""
    part = make_timed_video(tmp_path / "part.ts", _times(0.0, 20, 30), fps=30, size=(160, 120),
                            audio_codecs=(codec,), audio_seconds=20 / 30, click_at=0.3)
    joined = join(tmp_path / "joined.ts", [part, part])
    _copy(joined, tmp_path / f"out{suffix}")
    before, after = timeline(part), timeline(tmp_path / f"out{suffix}")
    assert len(after["video"]) == 40
    offset = before["click"] - before["video"][0]
    clicks = [click - after["video"][0] for click in after["clicks"]]
    assert clicks == pytest.approx([offset, offset + 20 / 30], abs=AAC_FRAME_S)
    assert after["audio_end"] - after["video"][0] == pytest.approx(40 / 30, abs=0.05)


@pytest.mark.parametrize("codec, rate, suffix, kept", [
    ("libmp3lame", 44100, ".m4v", "aac"),  # the ipod muxer (.m4v) takes no MP3 or E-AC-3: the run was refused
    ("eac3", 48000, ".m4v", "aac"),
    ("libmp3lame", 8000, ".mp4", "aac"),  # MP4 takes no MP3 below 16 kHz: the run failed at the first sound
    ("libmp3lame", 22050, ".mp4", "mp3"),
    ("pcm_s24be", 48000, ".mov", "pcm_s24be"),  # QuickTime's own 24-bit PCM: was made AAC
    ("pcm_s16be", 48000, ".mkv", "pcm_s16be"),
])
def test_audio_is_copied_where_the_container_takes_it_and_made_anew_where_not(tmp_path, codec, rate, suffix, kept):
    src = make_timed_video(tmp_path / ("in.mov" if codec.startswith("pcm") else "in.mkv"), _times(0, 10, 10), fps=10,
                           audio_codecs=(codec,), sample_rate=rate)
    _copy(src, tmp_path / f"out{suffix}")
    after = probe(tmp_path / f"out{suffix}")
    assert after["frames"] == 10 and after["audio_codec"] == kept
    assert after["audio_seconds"] == pytest.approx(1.0, abs=0.1)


def test_avi_above_1000_fps_keeps_the_pictures_it_can_time(tmp_path):
    """FFmpeg's AVI muxer times video above 1000 fps in 1/600 s: the second picture's time collided with the
    first's and the run failed ("non monotonically increasing dts")."""
    import av

    writer = VideoWriter(tmp_path / "fast.avi", 64, 48, 1200)
    for i in range(24):
        writer.write(np.full((48, 64, 3), i * 10, np.uint8), i / 1200)
    writer.close()
    assert writer.rate <= 1000 and writer.pictures_left_out < 24 // 2
    with av.open(str(tmp_path / "fast.avi")) as container:
        times = [frame.time for frame in container.decode(video=0)]
    assert len(times) == 24 - writer.pictures_left_out and times == sorted(set(times))


@pytest.mark.parametrize("suffix, size, limit", [(".avi", (8191, 64), 8190), (".mp4", (64, 16385), 16384),
                                                 (".mkv", (3 * 5760, 64), 16384)])
def test_a_picture_larger_than_the_codec_holds_is_one_clear_line(tmp_path, suffix, size, limit):
    """The encoder's refusal came as "Generic error in an external library: 'avcodec_open2(...)'"."""
    with pytest.raises(UserError, match=rf"at most {limit} px a side and this one is {size[0]}x{size[1]}; use "):
        VideoWriter(tmp_path / f"wide{suffix}", *size, 30)
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_cannot_be_renamed_at_close_says_where_its_frames_are(tmp_path, monkeypatch):
    # Windows renames at close (an open file cannot be renamed there): a player holding the old output then
    # fails the rename after the whole run, and the error must say where the frames went
    from stream import video_writer

    out = tmp_path / "clip.mp4"
    file = video_writer._OutputFile(out)
    file.write(b"frames")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(video_writer.os, "replace", refuse)
    with pytest.raises(OSError, match=r"the frames are in .*\.clip\.mp4\.part") as caught:
        file.close(keep=True)
    assert caught.value.filename == str(out) and (tmp_path / ".clip.mp4.part").read_bytes() == b"frames"


def test_a_writer_with_sound_is_freed_when_its_last_reference_goes(tmp_path):
    # the sound track held the writer's bound method and the writer the track: a cycle that kept the writer and its
    # x264 encoder (threads, buffers) alive until a full collection, which a batch of inputs reached only now and then
    import gc
    import weakref

    source = make_video(tmp_path / "in.mp4", frames=4)
    writer = VideoWriter(tmp_path / "out.mp4", 160, 120, 24.0, audio_from=source)
    for index in range(4):
        writer.write(np.full((120, 160, 3), 60 * index, np.uint8), pts_seconds=index / 24)
    writer.close()
    gone = weakref.ref(writer)
    gc.collect()
    gc.disable()
    try:
        del writer
        assert gone() is None
    finally:
        gc.enable()
