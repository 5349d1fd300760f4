"""Progress through MPEG-TS clips joined as they are (`cat a.ts b.ts > ab.ts`): the pictures' times start again
at each join, and the length FFmpeg announces is a guess from the first and last times (2 s for a 1 s clip
followed by a 2 s one)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from media import join, make_video
from stream.console import OVERRUN_S, TimeProgressBar
from stream.sources import open_source


def _joined(tmp_path: Path, seconds: list[float], name: str = "joined.ts") -> Path:
    """Clips of 10 fps, `seconds` long each, joined as `cat` joins them."""
    clips = [make_video(tmp_path / f"clip{i}.ts", frames=round(10 * length), fps=10, size=(64, 48),
                        audio_codec=None) for i, length in enumerate(seconds)]
    return join(tmp_path / name, clips)


def _read(path: Path) -> tuple[float | None, list[float], str | None]:
    """The source's progress_seconds, seconds_done after each frame, and its truncation warning."""
    source = open_source(str(path))
    try:
        done = [source.seconds_done(frame) for frame in source.frames()]
        return source.progress_seconds, done, source.truncation_warning()
    finally:
        source.close()


def test_seconds_done_go_on_through_a_join(tmp_path):
    """They went back to 0.1 s at the join and stopped at the announced length: the bar sat at "2.0s/2.0s"
    for the whole second clip. They go on, a frame's time a frame, to the end of the last clip."""
    total, done, _ = _read(_joined(tmp_path, [1.0, 2.0]))
    assert total == pytest.approx(2.0, abs=0.05)  # FFmpeg's guess, not the 3 s there are
    assert len(done) == 30
    assert np.diff(done) == pytest.approx(np.full(29, 0.1), abs=1e-3)
    assert done[-1] == pytest.approx(3.0, abs=1e-3)


def test_the_bar_gives_way_to_a_count_past_the_length_announced(tmp_path):
    """Past the length announced the bar said 100% to the end of the run; it becomes a count of the seconds
    done, which says the length announced was short."""
    total, done, _ = _read(_joined(tmp_path, [1.0, 2.0]))
    bar = TimeProgressBar(total, file=io.StringIO(), mininterval=0, ncols=100)
    shown = []
    for seconds in done:
        bar.reach(seconds)
        shown.append(str(bar))
    bar.close()
    assert "100%" not in shown[-1] and shown[-1].startswith("3.0s of video, more than the 2.0s announced")
    assert all("100%" not in line for seconds, line in zip(done, shown) if seconds > total + OVERRUN_S)
    assert "50%" in shown[9] and "1.0s/2.0s of video" in shown[9]  # a bar while within the length


def test_the_bar_keeps_its_end_for_a_rounding_or_a_last_pictures_hold():
    """A last picture held a little past the length announced is no sign of more video: the bar ends full."""
    bar = TimeProgressBar(3.0, file=io.StringIO(), mininterval=0, ncols=100)
    bar.reach(3.0 + OVERRUN_S / 2)
    assert bar.n == 3.0 and "100%" in str(bar) and "3.0s/3.0s of video" in str(bar)
    bar.reach(2.0)  # never back
    assert bar.n == 3.0
    bar.close()


def test_a_longer_clip_joined_before_a_shorter_one_is_not_said_truncated(tmp_path):
    """A 2 s clip then a 1 s one: the pictures' times ended at 1 s of the 2 s announced, and the run ended
    with "it may be truncated" for a whole file. All 3 s count."""
    total, done, warning = _read(_joined(tmp_path, [2.0, 1.0]))
    assert warning is None
    assert done[-1] == pytest.approx(3.0, abs=1e-3)
