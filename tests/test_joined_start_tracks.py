"""A part (--start, --duration) of clips joined as they are (`cat a.ts b.ts`) that begins in a later clip: the output
keeps that clip's sound and lines under its pictures. The writer's tracks counted the clips from the file's start, so
the first clip's sound came out under the later clip's pictures (0.5 s of 440 Hz under 1.5 s of the 880 Hz clip), and
its own sound waited for a join that never came. Each clip here has its own tone and its own line."""
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from stream.app import follow_part
from stream.sinks import make_sink
from stream.sources import open_source

MS = Fraction(1, 1000)
RATE = 48000
FPS = 10
AAC_FRAME_S = 1024 / RATE  # one audio frame: the sound's end is the pictures' within it
# (seconds, tone in Hz, a line's start in the clip's own seconds); every clip's pictures start at 1 s
CLIPS = [(1.0, 440, 1.2), (1.5, 880, 1.3), (2.0, 1320, 1.7)]


def _clip(path: Path, seconds: float, tone: int, line: float, mark: int, codec: str = "aac") -> Path:
    """An MPEG-TS clip: pictures from 1 s at 10 fps, sound (`codec`) of a sine of `tone` Hz under them, and one DVB
    subtitle line at `line` whose bitmap holds `mark` (which clip's line it is)."""
    import av

    with av.open(str(path), "w", format="mpegts") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.time_base = video.codec_context.time_base = MS
        audio = container.add_stream(codec, rate=RATE)
        audio.layout = "mono"
        lines = container.add_mux_stream("dvb_subtitle", time_base=MS)
        container.start_encoding()
        size = audio.codec_context.frame_size  # AC-3 takes 1536 samples a frame
        caption = av.Packet(bytes([0x16, 0, 11, 0, 64, 0, 48, 0x10, 0, mark, 0x80, 0, 0, 0, 0x80, 0, 0]))
        caption.stream, caption.time_base = lines, MS
        caption.pts = caption.dts = round(line / MS)
        count = -(-round(seconds * RATE) // size) * size  # whole frames: AC-3's encoder takes no short last one
        samples = (0.3 * np.sin(2 * np.pi * tone * np.arange(count) / RATE)).astype(np.float32)
        sound = []
        for start in range(0, len(samples), size):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + size], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = RATE, RATE + start, Fraction(1, RATE)
            sound.append(frame)
        for i in range(round(seconds * FPS)):  # interleaved as a camera writes them
            picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 + 8 * i % 200, np.uint8), format="bgr24")
            picture.pts, picture.time_base = round((1 + i / FPS) / MS), MS
            packets = list(video.encode(picture))
            while sound and sound[0].pts / RATE < 1 + (i + 1) / FPS:
                packets += audio.encode(sound.pop(0))
            if caption is not None and caption.pts * MS <= 1 + i / FPS:
                packets, caption = packets + [caption], None
            for packet in packets:
                container.mux(packet)
        for packet in [*video.encode(None), *(p for frame in sound for p in audio.encode(frame)), *audio.encode(None)]:
            container.mux(packet)
        if caption is not None:
            container.mux(caption)
    return path


def _joined(tmp_path: Path, count: int, codec: str = "aac") -> Path:
    """The first `count` CLIPS joined as they are, their sound in `codec`."""
    parts = [_clip(tmp_path / f"{i}.ts", seconds, tone, line, i + 1, codec)
             for i, (seconds, tone, line) in enumerate(CLIPS[:count])]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(part.read_bytes() for part in parts))
    return joined


def _run(source_path: Path, out: Path, start: float | None, duration: float | None = None) -> int:
    """The input through its source and the video sink as `depthcam run` hands them, the writer asking the source
    for the first picture's clip; the pictures written."""
    source = open_source(str(source_path))
    source.set_range(start, duration)
    sink = make_sink(str(out), width=source.width, height=source.height, fps=source.fps,
                     audio_from=source.audio_path, side_by_side=False, save_depth=None,
                     audio_ends_with_pictures=source.audio_ends_with_pictures, tags_from=source.tags,
                     subtitles_from=source.subtitle_path, chapters=source.chapters, part_end=source.part_end)
    follow_part(sink, source)  # as app.build does
    count = 0
    for frame in source.frames():
        sink.write(frame)
        count += 1
    sink.close(True)
    source.close()
    return count


class Sound:
    """The output's sound (mono, as the input's) decoded as a player does, from where its first frame is shown (a
    packet copied whole may begin a little before the pictures) to where its last ends, and where the pictures
    begin and end."""

    def __init__(self, path: Path) -> None:
        import av

        with av.open(str(path)) as container:
            pictures = [float(frame.time) for frame in container.decode(video=0)]
        with av.open(str(path)) as container:
            frames = [(float(frame.time), frame.to_ndarray()[0]) for frame in container.decode(audio=0)]
        # Matroska moves everything on by the sound's start delay (its first packet begins before the pictures)
        self.pictures = (pictures[0], pictures[-1] + 1 / FPS)
        self.start, self.samples = frames[0][0], np.concatenate([samples for _, samples in frames])
        self.end = self.start + len(self.samples) / RATE

    def tone_at(self, seconds: float) -> float:
        """The strongest frequency of the 0.2 s from `seconds` into the pictures."""
        first = round((self.pictures[0] + seconds - self.start) * RATE)
        stretch = self.samples[max(first, 0):first + round(0.2 * RATE)]
        if len(stretch) < round(0.2 * RATE):
            return math.nan  # the sound ends before
        spectrum = np.abs(np.fft.rfft(stretch * np.hanning(len(stretch))))
        return float(np.fft.rfftfreq(len(stretch), 1 / RATE)[np.argmax(spectrum)])


def _lines(path: Path) -> list[tuple[float, int]]:
    """Each subtitle line's start in the output and the mark of the clip it came from."""
    import av

    with av.open(str(path)) as container:
        return [(round(float(packet.pts * packet.time_base), 1), bytes(packet)[11])
                for packet in container.demux(container.streams.subtitles[0]) if packet.size]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_start_in_the_second_clip_keeps_its_sound_and_line(tmp_path, suffix):
    """`cat a.ts b.ts` (1 s of 440 Hz, 1.5 s of 880 Hz), --start 1.1: b's pictures from 0.1 s into b, b's sound
    under them for as long, and b's line (0.3 s into b) at 0.2 s."""
    out = tmp_path / f"out{suffix}"
    assert _run(_joined(tmp_path, 2), out, 1.1) == 14
    sound = Sound(out)
    assert sound.tone_at(0.0) == pytest.approx(880, abs=10)
    assert sound.tone_at(1.1) == pytest.approx(880, abs=10)
    assert sound.start <= sound.pictures[0] and sound.end == pytest.approx(sound.pictures[1], abs=AAC_FRAME_S)
    if suffix == ".mkv":  # .mp4 holds no DVB subtitles
        assert _lines(out) == [(0.2, 2)]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_start_in_the_third_clip_keeps_its_sound_and_line(tmp_path, suffix):
    """Three clips (1, 1.5 and 2 s), --start 2.6: c's pictures from 0.1 s into c, c's 1320 Hz under them and c's
    line (0.7 s into c) at 0.6 s; none of a's or b's."""
    out = tmp_path / f"out{suffix}"
    assert _run(_joined(tmp_path, 3), out, 2.6) == 19
    sound = Sound(out)
    assert [sound.tone_at(at) for at in (0.0, 1.6)] == pytest.approx([1320, 1320], abs=10)
    assert sound.start <= sound.pictures[0] and sound.end == pytest.approx(sound.pictures[1], abs=AAC_FRAME_S)
    if suffix == ".mkv":
        assert _lines(out) == [(0.6, 3)]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_part_from_the_second_clip_into_the_third(tmp_path, suffix):
    """--start 1.5 --duration 1.5 of three clips: b's last second, then c's first half second, each with its own
    sound; the sound ends with the pictures; c's line (0.7 s into c) at 1.7 s is past the part, none shown."""
    out = tmp_path / f"out{suffix}"
    assert _run(_joined(tmp_path, 3), out, 1.5, 1.5) == 15
    sound = Sound(out)
    assert [sound.tone_at(at) for at in (0.0, 0.75, 1.1)] == pytest.approx([880, 880, 1320], abs=10)
    assert sound.start <= sound.pictures[0] and sound.end == pytest.approx(sound.pictures[1], abs=AAC_FRAME_S)
    if suffix == ".mkv":
        assert _lines(out) == []


def test_a_part_from_the_first_clip_into_the_second_keeps_both(tmp_path):
    """--start 0.5 --duration 1 (no later clip to skip to): a's last half second and b's first, each with its sound
    and b's line 0.3 s into b, at 0.8 s."""
    out = tmp_path / "out.mkv"
    assert _run(_joined(tmp_path, 2), out, 0.5, 1.0) == 10
    sound = Sound(out)
    assert [sound.tone_at(at) for at in (0.1, 0.7)] == pytest.approx([440, 880], abs=10)
    assert sound.start <= sound.pictures[0] and sound.end == pytest.approx(sound.pictures[1], abs=AAC_FRAME_S)
    assert _lines(out) == [(0.8, 2)]


@pytest.mark.parametrize("unknown", ["joins", "length"])
def test_a_start_read_on_to_from_the_beginning_keeps_the_clip_s_sound(tmp_path, monkeypatch, unknown):
    """Where the source reads on from the first picture to the start, counting the joins as they come: joins too
    many to find at open (a start within FFmpeg's guessed length, 1.2 s), or none found (a start past that guess,
    2 s: the clips' times overlap, and FFmpeg takes the 2.5 s file for 1.5 s long)."""
    from stream import clip_joins, sources

    if unknown == "joins":
        monkeypatch.setattr(clip_joins.ClipFinder, "clips", lambda self, origin: None)
        start = 1.2
    else:
        monkeypatch.setattr(sources.VideoFileSource, "_joined_clips", lambda self: [])
        start = 2.0
    out = tmp_path / "out.mkv"
    pictures = _run(_joined(tmp_path, 2), out, start)
    assert pictures == round((2.5 - start) * FPS)
    sound = Sound(out)
    assert sound.tone_at(0.0) == pytest.approx(880, abs=10)
    assert sound.start <= sound.pictures[0] and sound.end == pytest.approx(sound.pictures[1], abs=AAC_FRAME_S)


def test_depthcam_run_keeps_the_later_clip_s_sound(shared_models, tmp_path):
    """The whole command, model and all: `depthcam run joined.ts --start 1.1` writes b's sound under b's pictures."""
    from stream.cli import main

    out = tmp_path / "out.mp4"
    assert main(["run", str(_joined(tmp_path, 2)), "-o", str(out), "--start", "1.1", "--no-progress"]) == 0
    sound = Sound(out)
    assert sound.tone_at(0.0) == pytest.approx(880, abs=10) and sound.tone_at(1.1) == pytest.approx(880, abs=10)
    assert sound.end == pytest.approx(sound.pictures[1], abs=AAC_FRAME_S)


@pytest.mark.parametrize("count, start, duration, line", [(2, 1.1, 1.0, (0.2, 0.8)), (3, 2.6, 1.2, (0.6, 0.6))])
def test_a_part_of_a_later_clip_ends_its_lines_with_its_pictures(tmp_path, monkeypatch, count, start, duration,
                                                                 line):
    """--start 1.1 --duration 1 of two clips: b's line (0.3 s into b, at 0.2 s), lasting 2 s, ends with the part's
    pictures at 1 s; so does c's (0.7 s into c) with --start 2.6 --duration 1.2 of three. The part's end is on the
    video's clock, the first picture's own time on its clip's: the cut taken from both came out at 2 s and 3.7 s,
    and the line, written with its length half a second after it began, ran past the pictures (to 2 s, 2.6 s).
    FFmpeg's MPEG-TS demuxer gives a DVB line no end (its time-out is in its data) and its muxer takes no text line:
    the lines are given one here, as a text line has."""
    import av

    from stream.subtitle_tracks import SubtitleTracks

    demux = SubtitleTracks._demux

    def lasting(self):
        for packet in demux(self):
            if packet.stream.type == "subtitle" and packet.size:
                packet.duration = round(2 / packet.time_base)
            yield packet

    monkeypatch.setattr(SubtitleTracks, "_demux", lasting)
    out = tmp_path / "out.mkv"
    assert _run(_joined(tmp_path, count), out, start, duration) == round(duration * FPS)
    first, end = Sound(out).pictures  # Matroska moves all on by the sound's start delay
    with av.open(str(out)) as container:
        lines = [(float(packet.pts * packet.time_base) - first, float(packet.duration * packet.time_base))
                 for packet in container.demux(container.streams.subtitles[0]) if packet.size]
    assert lines == [pytest.approx(line, abs=0.002)] and sum(lines[0]) == pytest.approx(end - first, abs=0.002)


def _tones(path: Path, seconds: float) -> list[float]:
    """The strongest frequency of the 0.2 s from every quarter second into the pictures, for `seconds` of them: the
    output's sound frames each placed at its own time (a gap is silence, 0 Hz), so a clip's sound lost shows."""
    import av

    with av.open(str(path)) as container:
        first = float(next(container.decode(video=0)).time)
    with av.open(str(path)) as container:
        frames = [(float(frame.time) - first, frame.to_ndarray()[0]) for frame in container.decode(audio=0)]
    timeline = np.zeros(round((seconds + 1) * RATE), np.float32)
    for at, samples in frames:
        start = round(at * RATE)
        timeline[max(start, 0):start + len(samples)] = samples[max(-start, 0):][:len(timeline) - max(start, 0)]
    tones = []
    for at in np.arange(0, seconds - 0.2 + 1e-6, 0.25):
        stretch = timeline[round(at * RATE):round((at + 0.2) * RATE)]
        spectrum = np.abs(np.fft.rfft(stretch * np.hanning(len(stretch))))
        tones.append(float(np.fft.rfftfreq(len(stretch), 1 / RATE)[np.argmax(spectrum)]) if spectrum.max() > 1 else 0)
    return tones


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
@pytest.mark.parametrize("count, start, duration, tones", [
    (3, None, None, [440] * 4 + [880] * 6 + [1320] * 8),  # the whole file: 1 s of a, 1.5 s of b, 2 s of c
    (2, 1.1, None, [880] * 5),  # --start in b: b's last 1.4 s
    (3, 1.5, 1.5, [880] * 4 + [1320] * 2),  # b's last second, c's first half second
])
def test_joined_ac3_clips_keep_each_clip_s_sound(tmp_path, suffix, count, start, duration, tones):
    """Clips with AC-3 sound (an AVCHD camcorder's) joined as they are: each clip's tone under its pictures, every
    quarter second. FFmpeg's parser holds a clip's last AC-3 frame back until the next clip's data, after that clip's
    first picture: counted in the next clip, it was placed a clip's length on, and the next clip's sound up to there
    was dropped as overlap (b silent for its first second, the --start part silent for 0.9 s)."""
    out = tmp_path / f"out{suffix}"
    length = sum(seconds for seconds, _, _ in CLIPS[:count]) - (start or 0) if duration is None else duration
    assert _run(_joined(tmp_path, count, "ac3"), out, start, duration) == round(length * FPS)
    assert _tones(out, length) == pytest.approx(tones, abs=10)


def _late_sound(path: Path, codec: str) -> Path:
    """A Matroska file: 3 s of pictures from 0 at 10 fps, and sound (`codec`, silence) from 2.5 s only."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream(codec, rate=RATE)
        audio.layout = "stereo"
        container.start_encoding()
        size = audio.codec_context.frame_size
        for i in range(3 * FPS):
            picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i, np.uint8), format="bgr24")
            picture.pts = i
            for packet in video.encode(picture):
                container.mux(packet)
        for start in range(round(2.5 * RATE), 3 * RATE, size):
            frame = av.AudioFrame.from_ndarray(np.zeros((2, size), np.float32), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in [*video.encode(None), *audio.encode(None)]:
            container.mux(packet)
    return path


@pytest.mark.parametrize("codec, suffix", [("ac3", ".mp4"), ("eac3", ".mp4"), ("ac3", ".m4v")])
def test_copied_ac3_with_no_sound_in_the_part_is_written(tmp_path, caplog, codec, suffix):
    """AC-3 copied into MP4 with no sound packet in the part (sound from 2.5 s, --duration 1): FFmpeg's muxer
    describes the track by its first packet and, given none, wrote no header ("Invalid argument ... returned 22": no
    file). The track gets one frame of silence, said in a line; the file plays, its pictures all there."""
    import av

    out = tmp_path / f"out{suffix}"
    assert _run(_late_sound(tmp_path / "late.mkv", codec), out, None, 1.0) == 10
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.codec.name == codec
        assert len(list(container.decode(video=0))) == 10
    with av.open(str(out)) as container:
        sound = [frame.to_ndarray() for frame in container.decode(audio=0)]
    assert len(sound) == 1 and sound[0].shape == (2, 1536) and np.abs(sound[0]).max() < 1e-4
    assert "has no sound in the part written" in caplog.text
