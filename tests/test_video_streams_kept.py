"""What a processed video keeps of its input besides pictures and sound: its chapters and its subtitle streams,
on the output's timeline (shifted to the first picture, cut with --start/--duration), as a player reads them."""
import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from media import text_line_packet

from stream.sinks import make_sink
from stream.sources import open_source

MS = Fraction(1, 1000)
CUES = [(1.2, 1.6, "Hello"), (1.9, 2.5, "World"), (2.6, 2.9, "Bye")]  # the input's own seconds
CHAPTERS = [(0.0, 1.5, "Intro"), (1.5, 2.2, "Talk"), (2.2, 3.0, "End")]
# The styles FFmpeg's text subtitle encoders take their lines' look from (as a decoder would give them)
ASS_HEADER = b"""[Script Info]
ScriptType: v4.00+
PlayResX: 384
PlayResY: 288

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, \
MarginV, Encoding
Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def _chapters(marks: list[tuple[float, float, str]]) -> list[dict]:
    return [{"id": i + 1, "start": round(a / MS), "end": round(b / MS), "time_base": MS, "metadata": {"title": t}}
            for i, (a, b, t) in enumerate(marks)]


def _subtitled(path: Path, codec: str = "subrip", video_start: float = 1.0, frames: int = 20, fps: int = 10,
               language: str = "fra", disposition: str | None = None, bitmap: bool = False,
               cues: list[tuple[float, float, str]] = CUES) -> Path:
    """Pictures from `video_start` (a stream that does not start at 0), one subtitle stream of `cues` (its lines
    encoded by FFmpeg, or for a bitmap codec raw packets) and CHAPTERS."""
    import av
    from av.stream import Disposition

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.time_base = video.codec_context.time_base = MS
        lines = container.add_mux_stream(codec, time_base=MS) if bitmap else container.add_stream(codec)
        if not bitmap:
            lines.codec_context.subtitle_header = ASS_HEADER
        lines.metadata.update({"language": language, "title": "Dialogue"})
        lines.disposition = getattr(Disposition, disposition) if disposition else Disposition(0)
        container.set_chapters(_chapters(CHAPTERS))
        container.start_encoding()
        packets = []
        for i, (start, end, text) in enumerate(cues):
            if not bitmap:
                packets.append(text_line_packet(lines, i, start, end, text))
                continue
            # a PGS display set: a composition with no object, then its end
            packet = av.Packet(bytes([0x16, 0, 11]) + bytes([0, 64, 0, 48, 0x10, 0, i, 0x80, 0, 0, 0])
                               + bytes([0x80, 0, 0]))
            packet.stream, packet.time_base = lines, lines.time_base
            packet.pts = packet.dts = round(start / lines.time_base)
            packet.duration = round((end - start) / lines.time_base)
            packets.append(packet)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 + 8 * i % 200, np.uint8), format="bgr24")
            frame.pts, frame.time_base = round((video_start + i / fps) / MS), MS
            for packet in video.encode(frame):
                container.mux(packet)
            while packets and float(packets[0].pts * packets[0].time_base) <= video_start + i / fps:
                container.mux(packets.pop(0))
        for packet in video.encode(None):
            container.mux(packet)
        for packet in packets:
            container.mux(packet)
    return path


def _run(source_path: Path, out: Path, start: float | None = None, duration: float | None = None,
         stop_after: int | None = None) -> None:
    """The input through its source and the video sink, as `depthcam run` hands them (stop_after: Ctrl-C)."""
    source = open_source(str(source_path))
    if start is not None or duration is not None:
        source.set_range(start, duration)
    sink = make_sink(str(out), width=source.width, height=source.height, fps=source.fps,
                     audio_from=source.audio_path, side_by_side=False, save_depth=None,
                     audio_ends_with_pictures=source.audio_ends_with_pictures, tags_from=source.tags,
                     subtitles_from=source.subtitle_path, chapters=source.chapters, part_end=source.part_end)
    for count, frame in enumerate(source.frames()):
        if count == stop_after:
            break
        sink.write(frame)
    sink.close(stop_after is None)
    source.close()


def _read(path: Path) -> tuple[list[tuple[float, float, str]], list[dict]]:
    """The chapters (start, end, title) and each subtitle stream (codec, tags, flags, its lines as a player
    decodes them: start, end, text)."""
    import av

    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) > 0  # the file plays
    with av.open(str(path)) as container:
        chapters = [(round(float(c["start"] * c["time_base"]), 3), round(float(c["end"] * c["time_base"]), 3),
                     c["metadata"].get("title")) for c in container.chapters()]
        streams = []
        for stream in container.streams.subtitles:
            lines = []
            for packet in container.demux(stream):
                if not packet.size or packet.pts is None:
                    continue
                start = float(packet.pts * packet.time_base)
                end = start + float((packet.duration or 0) * packet.time_base)
                text = "bitmap"
                if stream.codec_context.codec.text_sub:
                    decoded = stream.codec_context.decode2(packet)
                    text = "".join(rect.dialogue.decode() for rect in decoded) if decoded is not None else ""
                if text:  # mov_text's empty samples between lines
                    lines.append((round(start, 3), round(end, 3), text.replace("{\\i1}", "").replace("{\\i0}", "")))
            streams.append({"codec": stream.codec_context.codec.canonical_name, "tags": dict(stream.metadata),
                            "flags": stream.disposition, "lines": lines})
    return chapters, streams


@pytest.mark.parametrize("suffix", [".mp4", ".m4v", ".mov", ".mkv", ".webm"])
def test_chapters_are_kept_from_the_first_picture_on(tmp_path, suffix):
    """A lecture's chapter marks stay where they were in the talk: the pictures start at 1 s in the input, so every
    mark moves 1 s earlier, and the chapter before the first picture is left out."""
    source = _subtitled(tmp_path / "in.mkv")
    _run(source, tmp_path / f"out{suffix}")
    chapters, _ = _read(tmp_path / f"out{suffix}")
    assert [title for _, _, title in chapters] == ["Intro", "Talk", "End"]
    assert [start for start, _, _ in chapters] == pytest.approx([0.0, 0.5, 1.2], abs=0.002)
    assert chapters[1][1] == pytest.approx(1.2, abs=0.002)


def test_chapters_and_subtitles_are_cut_with_start_and_duration(tmp_path):
    """--start 0.5 --duration 1.0 takes 1.5 s to 2.5 s of the input: the chapter before it goes, the one across
    its start begins at 0, the one across its end ends there; a line across the start shows from 0, one across the
    end stops there, and one after it goes."""
    source = _subtitled(tmp_path / "in.mkv")
    _run(source, tmp_path / "part.mkv", start=0.5, duration=1.0)
    chapters, streams = _read(tmp_path / "part.mkv")
    assert chapters == [(0.0, 0.7, "Talk"), (0.7, 1.0, "End")]
    assert streams[0]["lines"] == [(0.0, 0.1, "Hello"), (0.4, 1.0, "World")]


@pytest.mark.parametrize("codec, suffix, kept", [
    ("subrip", ".mkv", "subrip"),      # copied
    ("ass", ".mkv", "ass"),            # copied, its styles kept
    ("subrip", ".mp4", "mov_text"),    # converted
    ("ass", ".mov", "mov_text"),       # converted
    ("mov_text", ".mkv", "subrip"),    # converted
    ("mov_text", ".mp4", "mov_text"),  # copied
    ("subrip", ".webm", "webvtt"),     # converted: WebM takes WebVTT only
])
def test_text_subtitles_are_copied_or_converted_and_stay_in_step(tmp_path, codec, suffix, kept):
    source = _subtitled(tmp_path / ("in.mp4" if codec == "mov_text" else "in.mkv"), codec)
    _run(source, tmp_path / f"out{suffix}")
    _, streams = _read(tmp_path / f"out{suffix}")
    assert len(streams) == 1 and streams[0]["codec"] == kept
    assert streams[0]["tags"].get("language") == "fra"
    assert "Dialogue" in (streams[0]["tags"].get("title"), streams[0]["tags"].get("name"))  # MP4 calls it name
    assert streams[0]["lines"] == [(0.2, 0.6, "Hello"), (0.9, 1.5, "World"), (1.6, 1.9, "Bye")]  # 1 s earlier


@pytest.mark.parametrize("flag", ["forced", "default"])
def test_the_default_and_forced_flags_are_kept(tmp_path, flag):
    """A forced track (the foreign-language lines of a film) is shown without asking: the flag must stay."""
    from av.stream import Disposition

    _run(_subtitled(tmp_path / "in.mkv", disposition=flag), tmp_path / "out.mkv")
    _, streams = _read(tmp_path / "out.mkv")
    assert streams[0]["flags"] & getattr(Disposition, flag)
    assert not streams[0]["flags"] & (Disposition.forced if flag == "default" else Disposition.default)


@pytest.mark.parametrize("suffix, kept", [(".mkv", True), (".mp4", False)])
def test_bitmap_subtitles_are_copied_where_the_container_takes_them_else_said_in_a_line(tmp_path, caplog, suffix,
                                                                                        kept):
    source = _subtitled(tmp_path / "in.mkv", "hdmv_pgs_subtitle", bitmap=True)
    with caplog.at_level(logging.WARNING):
        _run(source, tmp_path / f"out{suffix}")
    _, streams = _read(tmp_path / f"out{suffix}")
    told = [r.getMessage() for r in caplog.records if "subtitle" in r.getMessage()]
    if kept:
        assert [stream["codec"] for stream in streams] == ["hdmv_pgs_subtitle"] and not told
        assert [start for start, _, _ in streams[0]["lines"]] == [0.2, 0.9, 1.6]
    else:
        assert streams == []
        assert len(told) == 1 and "left out" in told[0] and ".mkv" in told[0]


def test_avi_says_in_one_line_each_that_it_holds_no_chapters_or_subtitles(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        _run(_subtitled(tmp_path / "in.mkv"), tmp_path / "out.avi")
    told = [r.getMessage() for r in caplog.records]
    assert sum("chapters" in line and "left out" in line for line in told) == 1
    assert sum("subtitle" in line and "left out" in line for line in told) == 1


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_stopped_run_keeps_the_chapters_and_lines_up_to_where_it_stopped(tmp_path, suffix):
    """Ctrl-C after 12 of 20 pictures (1.2 s): the file plays, its chapters end with its pictures and the lines
    that had not begun are not there."""
    _run(_subtitled(tmp_path / "in.mkv"), tmp_path / f"out{suffix}", stop_after=12)
    chapters, streams = _read(tmp_path / f"out{suffix}")
    if suffix == ".mp4":  # its QuickTime chapter track was written with the header: Nero's list has the cut
        chapters = [(start, start, title) for start, title in _nero_chapters(tmp_path / f"out{suffix}")]
    assert [title for _, _, title in chapters] == ["Intro", "Talk", "End"][:len(chapters)]
    assert all(end <= 1.2 + 0.002 for _, end, _ in chapters[:-1]) and chapters[-1][0] < 1.2
    assert [text for _, _, text in streams[0]["lines"]] == ["Hello", "World"]


def _boxes(data: bytes, start: int = 0, stop: int | None = None) -> list[tuple[bytes, bytes]]:
    """The boxes (type, contents) of an MP4 file's part, one level."""
    import struct

    boxes, at, stop = [], start, len(data) if stop is None else stop
    while at + 8 <= stop:
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", data[at + 8:at + 16])[0], 16
        size = size or stop - at
        boxes.append((kind, data[at + head:at + size]))
        at += size
    return boxes


def _chapter_references(path: Path) -> list[bytes]:
    """Each track's references to a QuickTime chapter track (tref/chap): what Apple's players list."""
    moov = next(body for kind, body in _boxes(path.read_bytes()) if kind == b"moov")
    return [ref for kind, trak in _boxes(moov) if kind == b"trak"
            for tref_kind, tref in _boxes(trak) if tref_kind == b"tref"
            for ref_kind, ref in _boxes(tref) if ref_kind == b"chap"]


def _nero_chapters(path: Path) -> list[tuple[float, str]]:
    """The chapters of an MP4 file's Nero list (moov/udta/chpl): start (s), title."""
    import struct

    moov = next(body for kind, body in _boxes(path.read_bytes()) if kind == b"moov")
    udta = next(body for kind, body in _boxes(moov) if kind == b"udta")
    chpl = next(body for kind, body in _boxes(udta) if kind == b"chpl")
    chapters, at = [], 9  # version, flags, reserved, count
    for _ in range(chpl[8]):
        start, size = struct.unpack(">QB", chpl[at:at + 9])
        chapters.append((round(start / 1e7, 3), chpl[at + 9:at + 9 + size].decode()))
        at += 9 + size
    return chapters


@pytest.mark.parametrize("suffix", [".mp4", ".m4v", ".mov"])
def test_mp4_chapters_are_a_quicktime_chapter_track_as_well(tmp_path, suffix):
    """Apple's players read chapters from a text track that the others point to (tref/chap), not from Nero's chpl:
    FFmpeg's muxer makes one only for chapters set before the header. A part's are cut there already."""
    source = _subtitled(tmp_path / "in.mkv")
    _run(source, tmp_path / f"out{suffix}", start=0.5, duration=1.0)
    assert _chapter_references(tmp_path / f"out{suffix}")
    chapters, _ = _read(tmp_path / f"out{suffix}")
    assert chapters == [(0.0, 0.7, "Talk"), (0.7, 1.0, "End")]
    assert _nero_chapters(tmp_path / f"out{suffix}") == [(0.0, "Talk"), (0.7, "End")]


def test_mp4_chapters_that_begin_after_the_first_picture_keep_their_start(tmp_path):
    """FFmpeg read a QuickTime chapter track's first chapter from 0 wherever it began: such a list is Nero's only."""
    from stream.video_writer import VideoWriter

    writer = VideoWriter(tmp_path / "out.mp4", 64, 48, 10, chapters=_chapters([(3.0, 3.5, "A"), (3.5, 4.5, "B")]))
    for i in range(40):
        writer.write(np.full((48, 64, 3), 40, np.uint8), 1.0 + i / 10)
    writer.close()
    chapters, _ = _read(tmp_path / "out.mp4")
    assert [(start, title) for start, _, title in chapters] == [(2.0, "A"), (2.5, "B")]


def _ts_clip(path: Path, cues: list[tuple[float, float, str]]) -> Path:
    """A 2 s MPEG-TS clip whose pictures start at 1 s, with DVB subtitles starting at `cues`' times."""
    return _subtitled(path, "dvb_subtitle", bitmap=True, cues=cues)


def test_joined_clips_keep_each_clips_lines_with_its_pictures(tmp_path):
    """`cat a.ts b.ts`: b's lines go with b's pictures, after a's, as its sound does. Read with a's origin, b's
    line earlier than a's last was left out and a later one shown during a."""
    first = _ts_clip(tmp_path / "a.ts", [(1.2, 1.6, "a1"), (1.9, 2.5, "a2")])
    second = _ts_clip(tmp_path / "b.ts", [(1.5, 1.6, "b1"), (2.5, 2.9, "b2")])
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    _run(joined, tmp_path / "out.mkv")
    _, streams = _read(tmp_path / "out.mkv")
    assert [start for start, _, _ in streams[0]["lines"]] == [0.2, 0.9, 2.5, 3.5]  # b's pictures from 2.0


def test_chapters_of_joined_clips_stay_on_the_first_clips_timeline(tmp_path):
    """The video's origin moves at a join; the chapters keep the first one's."""
    from stream.video_writer import VideoWriter

    writer = VideoWriter(tmp_path / "out.mkv", 64, 48, 10, chapters=_chapters(CHAPTERS))
    for clip in range(2):
        for i in range(20):
            writer.write(np.full((48, 64, 3), 40 + 8 * i, np.uint8), 1.0 + i / 10)
    writer.close()
    chapters, _ = _read(tmp_path / "out.mkv")
    assert chapters == [(0.0, 0.5, "Intro"), (0.5, 1.2, "Talk"), (1.2, 2.0, "End")]


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_lines_starting_together_show_together_in_mp4(tmp_path, suffix):
    """Two speakers' ASS lines at one time, converted to mov_text: one sample shows both for their whole time.
    One tick apart (MP4 takes no two samples at one time), the first showed for that tick only."""
    cues = [(1.2, 2.0, "Top speaker"), (1.2, 1.8, "Bottom speaker"), (2.2, 2.5, "Next")]
    source = _subtitled(tmp_path / "in.mkv", "ass", cues=cues)
    _run(source, tmp_path / f"out{suffix}")
    _, streams = _read(tmp_path / f"out{suffix}")
    assert streams[0]["lines"] == [(0.2, 1.0, "Top speaker\nBottom speaker"), (1.2, 1.5, "Next")]


def test_the_video_source_offers_its_subtitles_and_chapters_to_the_sink(tmp_path):
    source = open_source(str(_subtitled(tmp_path / "in.mkv")))
    try:
        assert source.subtitle_path == tmp_path / "in.mkv"
        assert [c["metadata"]["title"] for c in source.chapters] == ["Intro", "Talk", "End"]
        assert source.part_end is None
    finally:
        source.close()


def test_a_mov_keeps_a_subtitle_language_its_muxer_would_drop(tmp_path):
    """FFmpeg's MOV muxer writes only QuickTime's old language codes: a German (deu) subtitle track came out with
    none; it is written as ger, the code the table holds (as the audio tracks' are)."""
    source = _subtitled(tmp_path / "in.mkv", "subrip", language="deu")
    _run(source, tmp_path / "out.mov")
    _, streams = _read(tmp_path / "out.mov")
    assert len(streams) == 1 and streams[0]["tags"].get("language") == "ger"
