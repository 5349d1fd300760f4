"""Inputs as a new user gives them: a part of clips joined as they are (`cat a.ts b.ts`), a glob the shell left
unexpanded (Windows), standard input as `-`, a picture through a pipe, a picture named as a video."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from media import join, make_video
from stream.errors import UserError
from stream.sources import VIDEO_TIME, open_source


def _joined(tmp_path: Path, seconds: list[float]) -> Path:
    """Clips of 10 fps, `seconds` long each, joined as `cat` joins them: each one's times start again."""
    clips = [make_video(tmp_path / f"clip{i}.ts", frames=round(10 * length), fps=10, size=(64, 48),
                        audio_codec=None) for i, length in enumerate(seconds)]
    return join(tmp_path / "joined.ts", clips)


def _part(path: Path, start: float | None, duration: float | None) -> list[float]:
    """The video times (from the first picture's) of the frames a part gives."""
    source = open_source(str(path))
    try:
        origin = source._first.time
        source.set_range(start, duration)
        return [round(frame.extra[VIDEO_TIME] - origin, 3) for frame in source.frames()]
    finally:
        source.close()


def test_a_start_in_joined_clips_keeps_the_later_clip_s_pictures(tmp_path):
    """--start 0.5 in a 1 s clip joined to a 2 s one: the second clip's pictures whose own times (which start again
    at 0) were before 0.5 s were skipped too; 20 frames of the 25 from 0.5 s on."""
    assert _part(_joined(tmp_path, [1.0, 2.0]), 0.5, None) == pytest.approx(np.arange(5, 30) / 10)


def test_a_part_in_the_later_of_joined_clips_is_taken_by_the_video_s_time(tmp_path):
    """--start 1.5 --duration 1: the part was the pictures of the second clip from its own 1.5 s, 5 frames."""
    assert _part(_joined(tmp_path, [1.0, 2.0]), 1.5, 1.0) == pytest.approx(np.arange(15, 25) / 10)


def test_a_start_past_the_guessed_length_of_joined_clips_is_taken(tmp_path):
    """FFmpeg guesses the length of a transport stream from its first and last times: 2 s for the 3 s of a 1 s and a
    2 s clip joined. --start 2.5 was refused as past the end; the joins found at open now give the true length."""
    path = _joined(tmp_path, [1.0, 2.0])
    source = open_source(str(path))
    try:
        assert source.progress_seconds == pytest.approx(3.0, abs=1e-3)  # the clips' sum (FFmpeg guesses 2 s)
    finally:
        source.close()
    assert _part(path, 2.5, None) == pytest.approx(np.arange(25, 30) / 10)


def test_a_start_past_the_end_of_joined_clips_says_where_they_end(tmp_path):
    with pytest.raises(UserError, match=r"^joined.ts has no picture from --start 4.0 s on \(its pictures end at "
                                        r"3.0 s\); give an earlier start$"):
        _part(_joined(tmp_path, [1.0, 2.0]), 4.0, None)


def test_a_start_past_the_end_of_a_file_that_knows_its_length_is_still_refused_at_once(tmp_path):
    path = make_video(tmp_path / "clip.mp4", frames=10, fps=10, audio_codec=None)
    with pytest.raises(UserError, match=r"--start 2.0 s is past the end of clip.mp4 \(1.0 s long\)"):
        _part(path, 2.0, None)


@pytest.mark.parametrize("name, kind, meant", [("clip.mp4", "PNG", "clip.png"), ("take.MOV", "JPEG", "take.jpg")])
def test_a_picture_named_as_a_video_is_refused_with_its_own_name(tmp_path, name, kind, meant):
    """A PNG renamed .mp4 was read by its content as a photo, and `-o x.mp4` made it a one-frame, 0.03 s video
    without a word. Refused as a video named .jpg is, the other way round."""
    import cv2

    picture = np.full((48, 64, 3), 128, np.uint8)
    ok, data = cv2.imencode(".png" if kind == "PNG" else ".jpg", picture)
    path = tmp_path / name
    path.write_bytes(data.tobytes())
    said = rf"^cannot read video {re.escape(str(path))}: it holds a {kind} picture, not a video; name it {meant} to "
    with pytest.raises(UserError, match=said + "process it as a photo$"):
        open_source(str(path))


def _depthcam(*args: str, stdin: object = None, data: bytes | None = None) -> tuple[int, list[str]]:
    """The command, standard input a pipe of `data` (or the file object `stdin`): its exit status and its lines."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "stream", "run", *args, "--refine", "off", "--no-progress"],
                            input=data, stdin=stdin, capture_output=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr
    return result.returncode, [line for line in stderr.splitlines() if line.startswith("depthcam:")]


def test_a_video_piped_into_dash_is_read_whole(shared_models, tmp_path):
    """`cat clip.ts | depthcam run - -o out.mp4` said "input - not found"; its first bytes, read to tell a picture
    from a video, are given back, so that every picture is there."""
    clip = make_video(tmp_path / "clip.ts", frames=12, fps=12, size=(64, 48), audio_codec=None)
    code, lines = _depthcam("-", "-o", str(tmp_path / "out.mp4"), data=clip.read_bytes())
    assert code == 0, lines
    assert lines[-1].startswith(f"depthcam: wrote 12 frames to {tmp_path / 'out.mp4'}")


def test_a_part_of_a_video_piped_in_starts_where_asked(shared_models, tmp_path):
    """`cat clip.ts | depthcam run - --start 1`: the jump read on through the pipe, then went back to a pipe read
    once already, and said "stdin has no picture from --start 1.0 s on"."""
    clip = make_video(tmp_path / "clip.ts", frames=24, fps=12, size=(64, 48), audio_codec=None)
    code, lines = _depthcam("-", "--start", "1", "-o", str(tmp_path / "out.mp4"), data=clip.read_bytes())
    assert code == 0, lines
    assert lines[-1].startswith(f"depthcam: wrote 12 frames to {tmp_path / 'out.mp4'}")


@pytest.mark.parametrize("spec", ["-", "/dev/stdin"])
def test_a_photo_piped_in_is_processed_as_a_photo(shared_models, tmp_path, spec):
    """A photo through a pipe was refused as "a video or a camera" (-o out.png), or read as a one-picture video."""
    import cv2

    ok, data = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))
    code, lines = _depthcam(spec, "-o", str(tmp_path) + "/", data=data.tobytes())
    assert code == 0, lines
    assert any(line.startswith("depthcam: image stdin.jpg 64x48 ->") for line in lines)
    assert cv2.imread(str(tmp_path / "stdin_portrait.png")).shape == (48, 64, 3)


def test_nothing_through_the_pipe_is_said_in_one_line():
    assert _depthcam("-", "-o", "out.mp4", data=b"") == (2, [
        "depthcam: error: input - (standard input) is empty: nothing came through the pipe; pipe a video or a photo "
        "into it"])


def test_dash_from_the_terminal_says_to_pipe_into_it(tmp_path):
    """Read from a terminal, the run would wait for a video typed in."""
    import os
    import pty

    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "rb", closefd=False) as terminal:
            code, lines = _depthcam("-", "-o", str(tmp_path / "out.mp4"), stdin=terminal)
    finally:
        os.close(leader)
        os.close(follower)
    assert code == 2 and lines == [
        "depthcam: error: input - is standard input, which is the terminal here; pipe a video or a photo into it "
        "(e.g. cat clip.ts | depthcam run - -o out.mp4), or give the file itself"]


def test_dash_as_the_output_is_refused_in_one_line(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", frames=2, audio_codec=None)
    assert _depthcam(str(clip), "-o", "-") == (2, [
        "depthcam: error: -o -: depthcam writes no output to standard output; give a file name (e.g. -o out.mp4)"])
