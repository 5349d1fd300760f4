"""What a stopped (Ctrl-C) or joined video output keeps of its input's subtitles and chapters, as players read them:
the QuickTime chapter track cut where the pictures stop, no line past the last picture, and the lines of each clip
joined as they are with that clip's pictures."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import join
from tests.test_video_streams_kept import _boxes, _read, _run, _subtitled, _ts_clip


def _chapter_track_samples(path: Path) -> list[tuple[float, float]]:
    """The QuickTime chapter track's samples (start, end) in seconds, from its sample table: what Apple's players
    list. The track is the one the others point to (tref/chap)."""
    import struct

    moov = next(body for kind, body in _boxes(path.read_bytes()) if kind == b"moov")
    traks = [trak for kind, trak in _boxes(moov) if kind == b"trak"]
    ids = {struct.unpack(">I", ref[4 * i:4 * i + 4])[0] for trak in traks for kind, tref in _boxes(trak)
           if kind == b"tref" for ref_kind, ref in _boxes(tref) if ref_kind == b"chap" for i in range(len(ref) // 4)}
    assert len(ids) == 1
    for trak in traks:
        tkhd = next(body for kind, body in _boxes(trak) if kind == b"tkhd")
        if struct.unpack(">I", tkhd[12:16] if tkhd[0] == 0 else tkhd[20:24])[0] not in ids:
            continue
        mdia = next(body for kind, body in _boxes(trak) if kind == b"mdia")
        mdhd = next(body for kind, body in _boxes(mdia) if kind == b"mdhd")
        scale = struct.unpack(">I", mdhd[12:16] if mdhd[0] == 0 else mdhd[20:24])[0]
        minf = next(body for kind, body in _boxes(mdia) if kind == b"minf")
        stbl = next(body for kind, body in _boxes(minf) if kind == b"stbl")
        stts = next(body for kind, body in _boxes(stbl) if kind == b"stts")
        samples, at = [], 0
        for i in range(struct.unpack(">I", stts[4:8])[0]):
            count, delta = struct.unpack(">II", stts[8 + 8 * i:16 + 8 * i])
            for _ in range(count):
                samples.append((round(at / scale, 3), round((at + delta) / scale, 3)))
                at += delta
        return samples
    raise AssertionError("no chapter track")


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_a_stopped_mp4_s_chapter_track_ends_with_its_pictures(tmp_path, suffix):
    """Ctrl-C after 12 of 20 pictures (1.2 s): Apple's players list the chapters of the QuickTime chapter track,
    written with the header for the whole input; it listed "End" (from 1.2 s), which the file does not reach, and
    its last chapter ran to 2.0 s."""
    _run(_subtitled(tmp_path / "in.mkv"), tmp_path / f"out{suffix}", stop_after=12)
    samples = _chapter_track_samples(tmp_path / f"out{suffix}")
    assert samples == [(0.0, 0.5), (0.5, 1.2)]  # Intro, Talk: 1 s earlier than in the input, cut at 1.2 s
    chapters, _ = _read(tmp_path / f"out{suffix}")  # FFmpeg's reading (the Nero list, where it finds one)
    assert [(start, end, title) for start, end, title in chapters] == [(0.0, 0.5, "Intro"), (0.5, 1.2, "Talk")]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_line_on_screen_at_a_stop_ends_with_the_last_picture(tmp_path, suffix):
    """Ctrl-C after 12 of 20 pictures (1.2 s) while "World" (0.9 s to 1.5 s) is on screen: it ends at 1.2 s. It
    ran to 1.5 s, and the MP4 said it lasted 1.5 s, its video 1.2 s."""
    _run(_subtitled(tmp_path / "in.mkv"), tmp_path / f"out{suffix}", stop_after=12)
    _, streams = _read(tmp_path / f"out{suffix}")
    assert streams[0]["lines"] == [(0.2, 0.6, "Hello"), (0.9, 1.2, "World")]
    import av

    with av.open(str(tmp_path / f"out{suffix}")) as container:
        assert container.duration / 1e6 == pytest.approx(1.2, abs=0.002)


def test_a_middle_clip_without_lines_keeps_the_next_clip_s_lines_with_its_pictures(tmp_path):
    """`cat a.ts b.ts c.ts`, b without a line: c's lines go with c's pictures (from 4 s), not b's (from 2 s).
    b's origin was given to c's lines, which the sound's join did when b was reached."""
    first = _ts_clip(tmp_path / "a.ts", [(1.2, 1.6, "a1"), (1.9, 2.5, "a2")])
    middle = _ts_clip(tmp_path / "b.ts", [])
    last = _ts_clip(tmp_path / "c.ts", [(1.5, 1.6, "c1"), (2.5, 2.9, "c2")])
    _run(join(tmp_path / "joined.ts", [first, middle, last]), tmp_path / "out.mkv")
    _, streams = _read(tmp_path / "out.mkv")
    assert [start for start, _, _ in streams[0]["lines"]] == [0.2, 0.9, 4.5, 5.5]


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
@pytest.mark.parametrize("flag", [None, "forced", "default"])
def test_mp4_shows_subtitles_by_default_only_where_the_input_did(tmp_path, suffix, flag):
    """FFmpeg's MP4 muxer enabled the first subtitle track where none was the default one, and players (FFmpeg's
    demuxer, QuickTime) showed it without being asked."""
    from av.stream import Disposition

    _run(_subtitled(tmp_path / "in.mkv", disposition=flag), tmp_path / f"out{suffix}")
    _, streams = _read(tmp_path / f"out{suffix}")
    assert bool(streams[0]["flags"] & Disposition.default) == (flag == "default")
    assert streams[0]["lines"] == [(0.2, 0.6, "Hello"), (0.9, 1.5, "World"), (1.6, 1.9, "Bye")]


@pytest.mark.parametrize("made", [".mkv", ".mp4"])
def test_a_long_line_on_screen_at_start_is_kept_after_the_jump(tmp_path, made):
    """--start 64 in a video whose line "Long" shows from 40 s to 70 s, "Short" over it from 50 s to 52 s: the jump
    to 10 s before the start lands at a keyframe after 40 s (Matroska: at 51 s), past the line's beginning, and the
    line was lost. (MP4's lines do not overlap: a sample lasts until the next one; there it has no "Short".)"""
    cues = [(1.5, 3.0, "Early"), (40.0, 70.0, "Long"), (50.0, 52.0, "Short"), (71.0, 75.0, "Next")]
    if made == ".mp4":
        cues.pop(2)
    source = _subtitled(tmp_path / f"in{made}", "mov_text" if made == ".mp4" else "subrip", frames=900, cues=cues)
    _run(source, tmp_path / "out.mkv", start=64, duration=2)
    _, streams = _read(tmp_path / "out.mkv")
    assert streams[0]["lines"] == [(0.0, 2.0, "Long")]


def _mp4_with_chapters(path: Path, options: dict[str, str] | None = None) -> Path:
    """2 s of pictures and a QuickTime chapter track (chapters set before the header) of the three CHAPTERS, less
    1 s: 0 to 0.5, 0.5 to 1.2 and 1.2 to 2.0."""
    import av
    import numpy as np

    from tests.test_video_streams_kept import CHAPTERS, _chapters

    with av.open(str(path), "w", container_options=options) as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        container.set_chapters(_chapters([(start - 1, end - 1, title) for start, end, title in CHAPTERS]))
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i, np.uint8), format="bgr24")
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


@pytest.mark.parametrize("options", [None, {"movflags": "faststart"}])
def test_the_chapter_track_is_cut_whether_the_moov_ends_the_file_or_not(tmp_path, options):
    """FFmpeg writes the moov last, unless asked to put it first (faststart): there the new, shorter moov is
    followed by a free box over the rest, so the pictures stay where the offsets say."""
    from stream.mp4_edit_list import end_text_tracks

    path = _mp4_with_chapters(tmp_path / "in.mp4", options)
    assert end_text_tracks(path, 1.0)
    assert _chapter_track_samples(path) == [(0.0, 0.5), (0.5, 1.0)]  # Nero's list (chpl), the writer cuts itself
    import av

    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 20  # the pictures are all there, as they were
    kinds = [kind for kind, _ in _boxes(path.read_bytes())]
    assert kinds[-1] == b"moov" if options is None else kinds[kinds.index(b"moov") + 1] == b"free"
    cut = path.read_bytes()
    assert not end_text_tracks(path, 1.0) and path.read_bytes() == cut  # once is enough
    assert not end_text_tracks(path) and path.read_bytes() == cut  # nothing past the pictures' end (2 s)


def test_a_middle_clip_without_sound_keeps_the_next_clip_s_sound_with_its_pictures(tmp_path):
    """`cat a.ts b.ts c.ts`, b without sound: c's click (0.5 s into it) plays 0.5 s after c's pictures begin (4 s),
    not under b's pictures (2.5 s), as the lines of a clip without lines did."""
    from tests.media import make_timed_video, timeline

    times = [1.0 + i / 30 for i in range(60)]
    sound = {"click_at": 1.5, "audio_start": 1.0, "audio_seconds": 2.0}
    first = make_timed_video(tmp_path / "a.ts", times, **sound)
    middle = make_timed_video(tmp_path / "b.ts", times, audio_codecs=())
    last = make_timed_video(tmp_path / "c.ts", times, **sound)
    _run(join(tmp_path / "joined.ts", [first, middle, last]), tmp_path / "out.mkv")
    assert timeline(tmp_path / "out.mkv")["clicks"] == pytest.approx([0.5, 4.5], abs=0.01)


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_a_long_line_is_written_near_its_start_in_the_file(tmp_path, suffix):
    """A line held until the pictures passed its end was written seconds of pictures after its start: Matroska
    players read in file order and showed a 4 s line late or not at all."""
    import av

    _run(_subtitled(tmp_path / "in.mkv", frames=100, cues=[(1.2, 8.0, "Long")]), tmp_path / f"out{suffix}")
    with av.open(str(tmp_path / f"out{suffix}")) as container:
        packets = [(p.stream.type, float(p.pts * p.time_base), p.pos) for p in container.demux() if p.pts is not None]
    line = next(packet for packet in packets if packet[0] == "subtitle")
    assert line[1] == pytest.approx(0.2, abs=0.01)
    later_pictures = [pos for kind, seconds, pos in packets if kind == "video" and seconds >= line[1] + 1.5]
    assert line[2] < min(later_pictures)  # before the pictures 1.5 s after its start, not among those of 7 s
