"""Session 20's review: defects found in the session's commits, each shown by a test."""
from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

from stream import pipeline as pipelines
from stream.clip_joins import LINE_HOLD, TimeLine
from stream.frame import Frame
from stream.pipeline import Pipeline
from stream.sinks import NullSink
from stream.sources import SyntheticSource, VideoFileSource


class PassStage:
    name = "pass"
    max_batch = 1
    max_wait_ms = 0.0
    passes_at_once = False

    def process(self, batch: list[Frame]) -> list[Frame]:
        return batch

    def close(self) -> None:
        pass


def test_a_long_live_run_keeps_a_bounded_latency_sample(monkeypatch):
    # each written frame's latency was kept for the end summary: 8 bytes a frame without end (a virtual camera left
    # on for days, 20 MB a day at 30 fps); past LATENCY_KEPT every other one is kept, evenly over the run
    monkeypatch.setattr(pipelines, "LATENCY_KEPT", 8, raising=False)
    source = SyntheticSource("synthetic:portrait?size=64x48&fps=1000&frames=100&realtime=1")
    pipeline = Pipeline(source, [PassStage()], NullSink(), queue_size=200)
    written = pipeline.run().frames_written
    assert written > 40
    assert 4 <= len(pipeline.latency_ns) <= 8
    assert all(latency > 0 for latency in pipeline.latency_ns)
    assert "; capture to output latency p50 " in pipeline.live_summary()


def test_a_short_live_run_keeps_every_latency(monkeypatch):
    source = SyntheticSource("synthetic:portrait?size=64x48&fps=1000&frames=20&realtime=1")
    pipeline = Pipeline(source, [PassStage()], NullSink(), queue_size=200)
    assert len(pipeline.latency_ns) == 0
    written = pipeline.run().frames_written
    assert len(pipeline.latency_ns) == written


def test_the_thinned_sample_is_every_frame_at_one_stride():
    # the frames whose latencies are kept after thinning: 1, 1 + every, ... (not a mix of strides)
    pipeline = Pipeline(SyntheticSource("synthetic:portrait?size=64x48&frames=1"), [PassStage()], NullSink())
    kept = []
    pipelines_kept, pipelines.LATENCY_KEPT = pipelines.LATENCY_KEPT, 4
    try:
        for number in range(1, 41):
            pipeline.frames_written = number
            frame = Frame(index=number, capture_ns=0, image=None)
            frame.stamps["sink"] = number  # the latency stands for the frame's number
            pipeline._keep_latency(frame)
        kept = list(pipeline.latency_ns)
    finally:
        pipelines.LATENCY_KEPT = pipelines_kept
    assert len(kept) <= 4 and kept[0] == 1
    strides = {later - earlier for earlier, later in zip(kept, kept[1:])}
    assert len(strides) == 1, kept


# --- a damaged time followed by a picture without a time (TimeLine) ---------------------------------------------------


class Picture:
    """A decoded picture as VideoFileSource._in_line reads it: pts in a 90 kHz time base (None: untimed)."""

    def __init__(self, pts: int | None) -> None:
        self.pts, self.time_base = pts, Fraction(1, 90000)

    @property
    def time(self) -> float | None:
        return None if self.pts is None else float(self.pts * self.time_base)


def _video_source(fps: float = 25.0) -> VideoFileSource:
    source = VideoFileSource.__new__(VideoFileSource)  # _in_line's own state only: no file opened
    source.fps, source._line_told = fps, False
    source.path = SimpleNamespace(name="damaged.ts")
    source.stream = SimpleNamespace(start_time=0, time_base=Fraction(1, 90000))
    return source


def test_a_picture_without_a_time_after_one_timed_an_hour_ahead_is_put_in_line_with_it(capsys):
    # 25 fps: the fourth picture's time damaged (an hour ahead), the fifth without one, the sixth back in line; the
    # untimed one was taken as the one back in line, and the source's putting the first back failed (TypeError)
    step = 3600
    pictures = [Picture(pts) for pts in (0, step, 2 * step, 3600 * 90000, None, 5 * step, 6 * step)]
    kept = list(_video_source()._in_line(iter(pictures)))
    assert [picture.pts for picture in kept] == [number * step for number in range(7)]
    assert "1 picture timed 3599.9 s out of line with those around it, and 1 without a time held with it" in \
        capsys.readouterr().err


def test_the_time_line_holds_an_untimed_item_with_those_out_of_line():
    line = TimeLine(step=0.04)
    told = [line.feed(name, time) for name, time in (("a", 0.0), ("b", 0.04), ("x", 3600.0), ("u", None))]
    assert told == [[("a", False)], [("b", False)], [], []]
    assert line.feed("c", 0.16) == [("x", True), ("u", True), ("c", False)]
    assert line.feed("v", None) == [("v", False)]  # nothing held: it passes as it is


def test_untimed_items_past_the_hold_go_on_as_they_are_and_the_line_starts_again():
    line = TimeLine(step=0.04)
    line.feed("a", 0.0)
    held = [line.feed("x", 3600.0)] + [line.feed(f"u{number}", None) for number in range(LINE_HOLD - 1)]
    assert held == [[]] * LINE_HOLD
    assert line.feed("w", None) == [("x", False)] + [(f"u{number}", False) for number in range(LINE_HOLD - 1)] + \
        [("w", False)]
    assert line.feed("y", 7200.0) == [("y", False)]  # the line starts again here
    assert line.feed("z", 7200.04) == [("z", False)] and line.last == 7200.04
