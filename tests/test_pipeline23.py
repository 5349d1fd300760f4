"""The pipeline's batching contract under a busy stage (session 23): a batch waits at most max_wait_ms after its first
frame arrived, as Triton's max_queue_delay and DeepStream's batched-push-timeout count it, not after the stage took it.
Time is a fake clock the tests move (stream.queues._clock); events order the threads, so nothing rests on timing."""
import threading
import time

import numpy as np
import pytest

import stream.queues as queues
from stream.frame import Frame
from stream.pipeline import Pipeline
from stream.queues import BlockingFrameQueue, Stopped
from stream.sinks import NullSink

SAFETY_S = 30.0  # an event not set by then is a failure, never a wait the passing test needs


@pytest.fixture
def clock(monkeypatch):
    """The queues' clock, standing still until a test moves it: now[0] seconds."""
    now = [1000.0]
    monkeypatch.setattr(queues, "_clock", lambda: now[0])
    return now


def test_a_first_item_that_already_waited_its_batch_wait_goes_at_once(clock):
    """The stage was busy 5 s after the item arrived, its batch wait 0.2 s: the item goes alone now. Counted from when
    it was taken, it was held 0.2 s more (here for ever: the fake clock stands still)."""
    queue = BlockingFrameQueue(8)
    queue.put("a")
    clock[0] += 5.0
    got: list = []

    def take() -> None:
        try:
            got.append(queue.get_batch(4, max_wait_s=0.2))
        except Stopped:
            pass

    taker = threading.Thread(target=take, daemon=True)
    taker.start()
    taker.join(timeout=SAFETY_S)
    queue.stop.set()  # the old wait never ends on a clock that stands still
    assert got == [(["a"], False)]


def test_items_queued_behind_a_late_first_one_still_join_its_batch(clock):
    queue = BlockingFrameQueue(8)
    for item in "abcde":
        queue.put(item)
    clock[0] += 5.0
    assert queue.get_batch(4, max_wait_s=0.2) == (["a", "b", "c", "d"], False)
    assert queue.get_batch(4, max_wait_s=0.0) == (["e"], False)


def test_a_batch_still_waits_for_frames_within_its_wait_after_the_first_arrived(clock):
    queue = BlockingFrameQueue(8)
    queue.put("a")
    clock[0] += 0.1  # within the 0.2 s: "b" still joins
    threading.Timer(0.05, lambda: queue.put("b")).start()
    assert queue.get_batch(2, max_wait_s=0.2) == (["a", "b"], False)


def _frame(index: int) -> Frame:
    return Frame(index=index, capture_ns=time.perf_counter_ns(), image=np.zeros((8, 8, 3), np.uint8))


class _File:
    """A file of frames 0, 1, 2: frame 1 comes once the stage works on frame 0, frame 2 once frame 1 went on (or
    after SAFETY_S: a stage holding frame 1 for frame 2 then batches them together)."""

    live, fps, width, height, frame_count = False, 30.0, 8, 8, 3
    audio_path = subtitle_path = chapters = progress_seconds = None
    description = "stand-in file"

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.working_on_0, self.frame_1_queued, self.frame_1_done = threading.Event(), threading.Event(), \
            threading.Event()

    def frames(self):
        yield _frame(0)
        self.clock[0] += 100.0  # frame 0 waited past its 60 s: its batch goes alone
        self.working_on_0.wait(SAFETY_S)
        yield _frame(1)
        self.frame_1_queued.set()  # resumed once frame 1 is in the queue
        self.frame_1_done.wait(SAFETY_S)
        yield _frame(2)

    def close(self) -> None:
        pass


class _BusyDepth:
    """A batching stage (60 s wait) busy 100 s (by the fake clock) on frame 0, while frame 1 arrives."""

    name, max_batch, max_wait_ms, passes_at_once = "depth", 4, 60_000.0, False

    def __init__(self, source: _File) -> None:
        self.source, self.batches = source, []

    def process(self, batch):
        indices = [frame.index for frame in batch]
        self.batches.append(indices)
        if 0 in indices:
            self.source.working_on_0.set()
            self.source.frame_1_queued.wait(SAFETY_S)
            self.source.clock[0] += 100.0
        if 1 in indices:
            self.source.frame_1_done.set()
        return batch

    def close(self) -> None:
        pass


def test_a_frame_that_waited_while_the_depth_stage_worked_is_not_held_for_a_batch(clock):
    """Frame 1 arrived while the stage worked on frame 0 for longer than its batch wait: it goes on as soon as the
    stage is free. It was held a whole max_wait_ms more (gpu-1080p: 33 ms; quality: 50 ms), for frames that do
    not come while a file's stage is the slowest one."""
    source = _File(clock)
    stage = _BusyDepth(source)
    result = Pipeline(source, [stage], NullSink()).run()
    assert result.completed and result.frames_written == 3
    assert stage.batches == [[0], [1], [2]]
