"""An editor's two options: --audio-track (output.audio_tracks) keeps some of the input's audio streams, in the order
given, the first the default track; --start and --duration as an editor's timecode (HH:MM:SS:FF, ;FF drop-frame),
counted from the clip's own first timecode at its rate. And a .mov keeps the languages its muxer dropped (deu, zho)."""
from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from media import make_tracks_video

from stream import cli
from stream.config import load_config
from stream.errors import UserError
from stream.sources import Timecode, open_source, parse_timecode, timecode_frames
from stream.video_writer import VideoWriter, shifted_timecode
from tests.test_audio_tracks import _tracks
from tests.test_timecode import FILM, NTSC, _clip, _timecodes

# how the refusals name a track number, which a flag or a config file gave
GIVEN = "(--audio-track, or output.audio_tracks in a config file)"


def _write(src: Path, out: Path, audio_tracks: list[int] | None) -> None:
    """`src`'s pictures into `out` with the audio streams `audio_tracks` names."""
    source = open_source(str(src))
    writer = VideoWriter(out, source.width, source.height, source.fps, source.audio_path, audio_tracks=audio_tracks)
    try:
        for frame in source.frames():
            writer.write(frame.image, frame.pts_seconds)
    finally:
        writer.close()
        source.close()


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, errors
    assert "Traceback" not in errors[0]
    return errors[0]


# --audio-track


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_the_tracks_given_are_kept_in_their_order_the_first_the_default(tmp_path, suffix):
    """Three streams (tones 0.1, 0.2, 0.3 loud), the second the input's default; --audio-track 3,1 keeps the third
    then the first, the third the default track (MP4: the one enabled)."""
    src = make_tracks_video(tmp_path / "in.mkv", ("aac", "aac", "aac"), default=1, languages=("eng", "fra", "spa"))
    out = tmp_path / f"out{suffix}"
    _write(src, out, [3, 1])
    tracks, _ = _tracks(out)
    assert [(track.loudness, track.default, track.tags.get("language")) for track in tracks] == [
        (0.3, True, "spa"), (0.1, False, "eng")]


def test_audio_track_none_writes_no_sound(tmp_path):
    import av

    src = make_tracks_video(tmp_path / "in.mov", ("aac", "aac"))
    out = tmp_path / "out.mp4"
    _write(src, out, [])
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 0 and container.streams.video[0].frames == 10


def test_a_track_the_input_lacks_is_refused_before_the_run(tmp_path, capsys):
    """One line naming the streams the input has, before the model loads; no file left."""
    src = make_tracks_video(tmp_path / "in.mov", ("pcm_s24le",) * 4)
    out = tmp_path / "out.mp4"
    assert cli.main(["run", str(src), "-o", str(out), "--audio-track", "2,6", "--no-progress"]) != 0
    assert f"in.mov has 4 audio streams; audio track 6 {GIVEN} names none: give 1 to 4" in _error_line(capsys)
    assert not out.exists()
    refused = f"in.mov has 4 audio streams; audio track 5 {GIVEN} names none: give 1 to 4"
    with pytest.raises(UserError, match=re.escape(refused)):
        _write(src, out, [5])  # the writer's own check, where no run checked first
    assert not out.exists()


def test_a_track_missing_in_one_input_is_refused_before_any_input_runs(tmp_path, capsys):
    """Session 26: the input lacking it was refused at its turn, after those before it had run (for hours, maybe);
    now every input is checked before the first runs, and no folder is left."""
    two = make_tracks_video(tmp_path / "two.mov", ("aac", "aac"), frames=3, seconds=0.3)
    one = make_tracks_video(tmp_path / "one.mov", ("aac",), frames=3, seconds=0.3)
    folder = tmp_path / "out"
    code = cli.main(["run", str(two), str(one), "-o", str(folder), "--audio-track", "2", "--refine", "off",
                     "--no-progress"])
    assert code == 2 and _error_line(capsys) == (
        f"depthcam: error: --audio-track 2 names audio streams by their numbers; of the 2 inputs, {one} has 1 audio "
        f"stream: give numbers that each input has, or run those inputs apart")
    assert not folder.exists()


@pytest.mark.parametrize("given,expected", [
    ("2", [2]), ("3,1", [3, 1]), (" 2, 1 ", [2, 1]), ("none", "none"), ("ALL", "all")])
def test_the_flag_reads_numbers_none_and_all(given, expected):
    assert cli._audio_tracks(given) == expected


@pytest.mark.parametrize("given,says", [("0", "numbers from 1"), ("1,1", "names track 1 twice"),
                                        ("first", "numbers from 1"), ("", "numbers from 1")])
def test_a_bad_flag_is_one_line(tmp_path, capsys, given, says):
    src = make_tracks_video(tmp_path / "in.mov", ("aac",))
    with pytest.raises(SystemExit) as stopped:
        cli.main(["run", str(src), "-o", str(tmp_path / "out.mp4"), "--audio-track", given])
    assert stopped.value.code != 0
    assert says in _error_line(capsys)


def test_the_config_key_is_checked_with_its_line_and_the_flag_wins(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("output:\n  progress: false\n  audio_tracks: [2, 0]\n")
    with pytest.raises(UserError, match=r"output\.audio_tracks.*line 3.*numbers from 1|line 3.*audio_tracks"):
        load_config(str(config))
    config.write_text("output:\n  audio_tracks: 2,1\n")
    assert load_config(str(config)).output.kept_audio_tracks() == [2, 1]
    assert load_config(str(config), overrides={"output.audio_tracks": "all"}).output.kept_audio_tracks() is None
    assert load_config(str(config), overrides={"output.audio_tracks": "none"}).output.kept_audio_tracks() == []
    config.write_text("output:\n  audio_tracks: none\n")
    assert load_config(str(config)).output.kept_audio_tracks() == []
    assert load_config(None).output.kept_audio_tracks() is None  # every track, as before


def test_a_mov_keeps_the_languages_its_muxer_dropped(tmp_path):
    """FFmpeg's MOV muxer writes only the codes of QuickTime's old table: deu, zho, fas, cze and swe were dropped;
    their other codes, which it holds, are written. MP4 takes every code as it is."""
    languages = ("deu", "zho", "fas", "cze", "swe")
    src = make_tracks_video(tmp_path / "in.mkv", ("aac",) * len(languages), languages=languages)
    _write(src, tmp_path / "out.mov", None)
    _write(src, tmp_path / "out.mp4", None)
    mov, _ = _tracks(tmp_path / "out.mov")
    mp4, _ = _tracks(tmp_path / "out.mp4")
    assert [track.tags.get("language") for track in mov] == ["ger", "chi", "per", "ces", "sve"]
    assert [track.tags.get("language") for track in mp4] == list(languages)


# --start and --duration as a timecode


def _greys(path: Path) -> list[float]:
    """Each picture's mean grey level (_clip's pictures are each a different grey, 4 levels apart)."""
    import av

    with av.open(str(path)) as container:
        return [float(frame.to_ndarray(format="gray").mean()) for frame in container.decode(video=0)]


def test_an_editor_s_timecode_takes_the_part_it_names(shared_models, tmp_path):
    """A .mov whose tmcd track says 01:00:00:00 at 23.976 fps: --start 01:00:01:00 is its picture 24 (one
    second of 24 labels), --duration 00:00:00:12 twelve pictures; the part's own timecode is 01:00:01:00."""
    source = _clip(tmp_path / "in.mov", FILM, 48, "01:00:00:00")
    out = tmp_path / "part.mov"
    assert cli.main(["run", str(source), "-o", str(out), "--start", "01:00:01:00", "--duration", "00:00:00:12",
                     "--refine", "off", "--no-progress"]) == 0
    greys, pictures = _greys(out), _greys(source)
    assert len(greys) == 12
    assert min(range(len(pictures)), key=lambda index: abs(pictures[index] - greys[0])) == 24
    assert _timecodes(out) == {"01:00:01:00"}


def test_a_drop_frame_timecode_across_a_minute_counts_the_labels_skipped(tmp_path):
    """29.97 drop-frame from 00:00:59;28: 00:01:00;03 is three pictures on (;29, then the minute's ;02 and ;03),
    not five; its timecode again in the part."""
    source = open_source(str(_clip(tmp_path / "in.mov", NTSC, 15, "00:00:59;28")))
    try:
        source.set_range(parse_timecode("00:01:00;03"), parse_timecode("00:00:00;06"))
        assert source.part_start == pytest.approx(3 / float(NTSC))
        assert source.frame_count == 6
        assert "from 00:01:00;03 for 00:00:00;06" in source.description
    finally:
        source.close()
    writer = VideoWriter(tmp_path / "out.mkv", 64, 48, float(NTSC), tags_from={"timecode": "00:00:59;28"})
    writer.start_part(3 / float(NTSC))
    writer.write(np.zeros((48, 64, 3), np.uint8), 3 / float(NTSC))
    writer.close()
    assert _timecodes(tmp_path / "out.mkv") == {"00:01:00;03"}


@pytest.mark.parametrize("typed, read", [("00:01:00:03", "00:01:00;03"), ("00:01:00;03", "00:01:00;03")])
def test_a_timecode_typed_in_the_other_mode_is_read_in_the_clip_s(tmp_path, capsys, typed, read):
    """A drop-frame clip's timecode typed with a colon (as an editor often types it) is the clip's own label, as an
    NLE reads it: counted as non-drop it landed two pictures late across the minute, or was refused as outside
    the clip at 01:00:01:00; said in a line."""
    source = open_source(str(_clip(tmp_path / "in.mov", NTSC, 15, "00:00:59;28")))
    try:
        source.set_range(parse_timecode(typed), None)
        assert source.part_start == pytest.approx(3 / float(NTSC))
    finally:
        source.close()
    told = [line for line in capsys.readouterr().err.splitlines() if "read as" in line]
    assert told == ([f"depthcam: --start {typed}: in.mov's timecode is drop-frame: read as {read}"]
                    if typed != read else [])


@pytest.mark.parametrize("given", ["00:59:59:23", "01:00:02:00", "02:00:00:00"])
def test_a_timecode_outside_the_clip_is_refused_naming_its_range(tmp_path, capsys, given):
    source = _clip(tmp_path / "in.mov", FILM, 48, "01:00:00:00")
    out = tmp_path / "part.mp4"
    assert cli.main(["run", str(source), "-o", str(out), "--start", given, "--no-progress"]) != 0
    line = _error_line(capsys)
    assert f"--start {given} is outside in.mov, whose timecodes run 01:00:00:00 to 01:00:01:23" in line
    assert not out.exists()


def test_a_clip_without_timecode_counts_from_zero_said_in_a_line(tmp_path, capsys):
    source = open_source(str(_clip(tmp_path / "in.mkv", FILM, 48, None)))
    try:
        source.set_range(parse_timecode("00:00:01:00"), None)
        assert source.part_start == pytest.approx(24 / float(FILM)) and source.frame_count == 24
    finally:
        source.close()
    assert "in.mkv has no timecode: --start 00:00:01:00 is counted from 00:00:00:00 at 23.976 fps" in \
        capsys.readouterr().err


@pytest.mark.parametrize("given,says", [
    ("01:00:00:24", "no frame 24 at 23.976 fps"), ("01:00:00;00", "drop-frame (;) is 29.97 and 59.94 fps"),
])
def test_a_timecode_the_rate_has_not_is_refused(tmp_path, given, says):
    source = open_source(str(_clip(tmp_path / "in.mkv", FILM, 48, "01:00:00:00")))
    try:
        with pytest.raises(UserError, match=r"--start .*" + says.replace("(", r"\(").replace(")", r"\)")):
            source.set_range(parse_timecode(given), None)
    finally:
        source.close()


def test_timecode_counting_agrees_with_the_writer_s():
    """timecode_frames (a timecode's frame from 00:00:00:00) is shifted_timecode's inverse, drop-frame and not."""
    for rate, first in ((FILM, "01:00:00:00"), (NTSC, "00:58:59;02"), (Fraction(60000, 1001), "00:09:59;50"),
                        (Fraction(25), "10:00:00:00")):
        start = timecode_frames(parse_timecode(first), rate)
        for frames in (0, 1, 29, 30, 1799, 1800, 17982, 100000):
            shifted = parse_timecode(shifted_timecode(first, frames, rate))
            assert timecode_frames(shifted, rate) - start == frames
    with pytest.raises(ValueError, match="skipped at each minute"):
        timecode_frames(parse_timecode("00:01:00;01"), NTSC)


def test_times_are_read_as_before_and_timecodes_as_timecodes():
    assert cli._time("1:02:03.5") == 3723.5 and cli._time("90") == 90.0
    assert cli._time("01:00:01:00") == Timecode(1, 0, 1, 0, False, "01:00:01:00")
    assert cli._time("00:01:00;02").drop


def test_a_part_past_the_end_is_said_with_its_length(tmp_path, capsys):
    """--duration that runs past the clip's end was shortened without a word; said, with the part's length. A part
    that ends at the clip's end says nothing."""
    from media import make_video

    path = make_video(tmp_path / "in.mp4", frames=30, fps=10, audio_codec=None)
    for start, duration in ((2.0, 5.0), (1.0, 2.0)):
        source = open_source(str(path))
        try:
            source.set_range(start, duration)
        finally:
            source.close()
    told = [line for line in capsys.readouterr().err.splitlines() if "past its end" in line]
    assert told == ["depthcam: in.mp4: --duration 5.0 s from 2.0 s runs past its end: the part is 1.0 s"]


@pytest.mark.parametrize("given", ["photo.png", "synthetic:portrait?frames=2&size=64x48"])
def test_an_input_without_sound_given_a_track_is_refused(tmp_path, capsys, given):
    """A photo (or the synthetic scene) given --audio-track 2 ran without a word; refused as a video without sound
    is, before the model loads. `none` is taken."""
    import cv2

    if given.endswith(".png"):
        cv2.imwrite(str(tmp_path / given), np.full((48, 64, 3), 90, np.uint8))
        given = str(tmp_path / given)
    out = tmp_path / ("out.png" if given.endswith(".png") else "out.mp4")
    assert cli.main(["run", given, "-o", str(out), "--audio-track", "2", "--no-progress"]) != 0
    line = _error_line(capsys)
    assert f"has no audio stream; audio track 2 {GIVEN} names none: leave it out" in line
    assert not out.exists()
