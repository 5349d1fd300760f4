"""The once-only advice for long file runs."""
from stream.frame import Frame
from stream.hints import SlowRunHint


class FakeClock:
    def __init__(self, step_s: float) -> None:
        self.now = 0.0
        self.step_s = step_s

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


def _feed(hint: SlowRunHint, frames: int) -> None:
    for index in range(frames):
        hint(Frame(index=index, capture_ns=0, image=None))


def test_a_long_run_is_told_once_how_long_and_what_is_faster():
    messages = []
    # 2 frames/s with 10,000 frames to go: more than an hour
    hint = SlowRunHint(10_000, messages.append, clock=FakeClock(0.5))
    _feed(hint, 50)
    assert len(messages) == 1
    assert "83 min to go" in messages[0] and "--refine live" in messages[0]


def test_a_short_run_gets_no_advice():
    messages = []
    hint = SlowRunHint(1_000, messages.append, clock=FakeClock(0.05))  # 20 frames/s: under a minute
    _feed(hint, 50)
    assert messages == []


def test_the_rate_leaves_out_the_time_before_the_first_frame():
    messages = []
    clock = FakeClock(0.5)
    hint = SlowRunHint(2_000, messages.append, threshold_s=600.0, clock=clock)
    clock.now = 1_000.0  # a long start-up (model load, pipeline fill) before the first frame arrives
    _feed(hint, 20)
    # 2 frames/s over the frames themselves: (2000 - 9) / 2 s = 16.6 min, whatever the start-up took
    assert len(messages) == 1 and "17 min to go" in messages[0]


def test_where_the_frames_number_is_a_guess_the_time_to_go_goes_by_seconds_of_video():
    """A 2-hour Matroska screen recording that stood still for most of it: its guessed frame count (length x
    average rate) was 216,000 when it holds 9,000, and the hint said "about 1799 min to go" of a 75-minute run."""
    messages = []
    # 2 frames/s, each frame 0.8 s of video (a recording at 1.25 fps on average): 7200 s of video at 1.6 s a second
    hint = SlowRunHint(7200.0, messages.append, clock=FakeClock(0.5), done=lambda frame: 0.8 * (frame.index + 1))
    _feed(hint, 20)
    assert len(messages) == 1 and "75 min to go" in messages[0]
