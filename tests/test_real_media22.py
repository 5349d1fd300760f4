"""Real-world media as users bring them (phones, screen recorders, cameras, editors) through the source and writer:
what the output keeps of the input."""
from __future__ import annotations

from stream.clip_joins import TimeLine
from stream.sources import open_source

from tests.media import make_timed_video

# --- a screen recording's pause a little over a second (TimeLine) -------------------------------------------------


def test_the_pictures_after_a_pause_a_little_over_a_second_keep_their_times(tmp_path, capsys):
    """OBS-like: 30 fps pictures, still from 0.5 s to 1.567 s. The average rate (19.7 fps: the pause counted) made
    the frame step long enough that the second picture after the pause read as back in line: the first was called
    damaged and moved to 1.017 s, shown half a second early."""
    times = [i / 30 for i in range(16)] + [i / 30 for i in range(47, 90)]
    path = make_timed_video(tmp_path / "screen.mp4", times, audio_codecs=())
    source = open_source(str(path))
    try:
        shown = [round(frame.pts_seconds, 3) for frame in source.frames()]
    finally:
        source.close()
    assert shown == [round(t, 3) for t in times]
    assert "damaged" not in capsys.readouterr().err


def test_the_time_line_reads_times_rising_from_those_held_as_a_pause():
    line = TimeLine(step=0.05)  # the average rate's step, longer than the pictures' own (1/30 s)
    for name, time in (("a", 0.0), ("b", 0.033)):
        assert line.feed(name, time) == [(name, False)]
    assert line.feed("p", 1.1) == []  # past the line's reach: held
    assert line.feed("q", 1.133) == [("p", False), ("q", False)]  # goes on from it: a pause, not a damaged time
    assert line.feed("r", 1.167) == [("r", False)]


def test_a_damaged_time_a_little_over_a_second_ahead_is_still_put_back_in_line():
    line = TimeLine(step=0.05)
    for name, time in (("a", 0.0), ("b", 0.033)):
        line.feed(name, time)
    assert line.feed("x", 1.1) == []
    assert line.feed("c", 0.133) == [("x", True), ("c", False)]


def test_a_damaged_run_of_rising_times_an_hour_ahead_is_still_put_back_in_line():
    line = TimeLine(step=0.05)
    for name, time in (("a", 0.0), ("b", 0.033)):
        line.feed(name, time)
    assert line.feed("x", 3600.067) == []
    assert line.feed("y", 3600.1) == []  # rising from x, but out of the line's reach: still held
    assert line.feed("c", 0.167) == [("x", True), ("y", True), ("c", False)]
