"""The frame queues' policies and waits. A wait's deadline is checked on a fake clock the tests move
(stream.queues._clock), and a thread's waiting is known from its condition, so nothing rests on how fast a loaded
machine runs: no bound on wall time but a lower one, and SAFETY_S, which a passing test never waits for."""
import threading
import time

import pytest

import stream.queues as queues
from stream.queues import END, BlockingFrameQueue, InFlightLimit, LatestFrameQueue, Stopped

SAFETY_S = 30.0  # a thread not done or an event not set by then is a failure, never a wait the passing test needs


@pytest.fixture
def clock(monkeypatch):
    """The queues' clock, standing still until a test moves it: now[0] seconds."""
    now = [1000.0]
    monkeypatch.setattr(queues, "_clock", lambda: now[0])
    return now


class NotedCondition(threading.Condition):
    """A condition that says when a thread waits on it: that thread is blocked, whatever the machine's speed."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


def _noted(owner):
    """`owner` (a queue or an InFlightLimit, not used yet) with a NotedCondition."""
    owner._cond = NotedCondition()
    return owner


def _in_thread(call) -> tuple[threading.Thread, list]:
    """`call` on a daemon thread, whose result `got` holds once it returns (nothing if the stop ended it)."""
    got: list = []

    def run() -> None:
        try:
            got.append(call())
        except Stopped:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, got


def test_blocking_queue_keeps_every_item_in_order():
    queue = BlockingFrameQueue(2)
    received = []

    def consume():
        while (item := queue.get()) is not END:
            received.append(item)
            time.sleep(0.001)  # a slow consumer: the producer must wait, not drop

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(50):
        queue.put(i)
    queue.put(END)
    consumer.join(timeout=SAFETY_S)
    assert received == list(range(50))
    assert queue.dropped == 0
    assert queue.high_water <= 2  # frames only: the end marker is not one


def test_latest_queue_drops_oldest_and_counts():
    queue = LatestFrameQueue(3)
    for i in range(10):
        queue.put(i)
    assert queue.dropped == 7
    assert [queue.get() for _ in range(3)] == [7, 8, 9]


def test_latest_queue_never_drops_the_end_marker():
    queue = LatestFrameQueue(1)
    queue.put(1)
    queue.put(END)
    queue.put(2)  # drops 1, keeps END
    assert queue.get() is END
    assert queue.get() == 2


def test_get_batch_takes_up_to_max_batch_without_waiting_when_full(clock):
    """On a clock that stands still a wait for more items would never end: a full batch goes without one."""
    queue = _noted(BlockingFrameQueue(16))
    for i in range(6):
        queue.put(i)
    taker, got = _in_thread(lambda: queue.get_batch(4, max_wait_s=1.0))
    taker.join(timeout=SAFETY_S)
    queue.stop.set()  # frees a taker that waited (the failure), so that it does not outlive the test
    assert got == [([0, 1, 2, 3], False)]
    assert not queue._cond.waiting.is_set()


def test_get_batch_waits_at_most_max_wait_after_the_first_item(clock):
    """The batch waits till max_wait_s after its first item arrived, not after the taker took it (0.05 s later)."""
    queue = _noted(BlockingFrameQueue(16))
    queue.put("a")  # arrived at 1000.0
    clock[0] += 0.05
    taker, got = _in_thread(lambda: queue.get_batch(8, max_wait_s=0.1))
    assert queue._cond.waiting.wait(SAFETY_S)  # "a" taken, waiting for a second item
    clock[0] = 1000.09
    queue._cond.waiting.clear()
    assert queue._cond.waiting.wait(SAFETY_S)  # looked at the clock again, and waits on
    assert got == [] and taker.is_alive()
    clock[0] = 1000.1 + 1e-6  # past the first item's arrival + 0.1 (counted from the take, it waits to 1000.15)
    taker.join(timeout=SAFETY_S)
    queue.stop.set()
    assert got == [(["a"], False)]


def test_get_batch_waits_its_max_wait_on_the_real_clock():
    """The same on time.monotonic: no sooner than max_wait_s, and it does end (a loaded machine may be late)."""
    queue = BlockingFrameQueue(16)
    started = time.monotonic()  # before the put: the wait counts from the item's arrival
    queue.put("a")
    batch, ended = queue.get_batch(8, max_wait_s=0.1)
    waited = time.monotonic() - started
    assert batch == ["a"] and not ended
    assert 0.09 <= waited < SAFETY_S


def test_get_batch_collects_items_that_arrive_within_the_wait(clock):
    """An item put while the batch waits joins it (the clock stands still: the wait cannot run out first)."""
    queue = _noted(BlockingFrameQueue(16))
    queue.put(0)
    taker, got = _in_thread(lambda: queue.get_batch(2, max_wait_s=1.0))
    assert queue._cond.waiting.wait(SAFETY_S)
    queue.put(1)
    taker.join(timeout=SAFETY_S)
    queue.stop.set()
    assert got == [([0, 1], False)]


def test_get_batch_stops_at_end_marker():
    queue = BlockingFrameQueue(16)
    queue.put(1)
    queue.put(END)
    assert queue.get_batch(4, 0.5) == ([1], True)
    queue.put(END)
    assert queue.get_batch(4, 0.5) == ([], True)


def _blocked_until_stopped(call) -> tuple[threading.Thread, list[str]]:
    """`call` on a thread of its own, which records how it ended."""
    ended: list[str] = []

    def run():
        try:
            call()
            ended.append("returned")
        except Stopped:
            ended.append("stopped")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, ended


def test_stop_event_releases_a_blocked_producer_and_consumer():
    """Both ends wait on the queue (a full one for put, an empty one for get) when the stop comes: each
    raises Stopped. The stop comes after they started waiting, not before the call."""
    stop = threading.Event()
    full, empty = _noted(BlockingFrameQueue(1, stop)), _noted(BlockingFrameQueue(1, stop))
    full.put(0)
    producer, produced = _blocked_until_stopped(lambda: full.put(1))
    consumer, consumed = _blocked_until_stopped(empty.get)
    assert full._cond.waiting.wait(SAFETY_S) and empty._cond.waiting.wait(SAFETY_S)  # both waiting
    assert producer.is_alive() and consumer.is_alive()  # both still blocked (neither returned nor raised)
    stop.set()
    producer.join(timeout=SAFETY_S)
    consumer.join(timeout=SAFETY_S)
    assert not producer.is_alive() and not consumer.is_alive()
    assert produced == ["stopped"] and consumed == ["stopped"]
    assert list(full._items) == [0]  # the blocked item was not added on the way out


def test_queue_size_must_be_positive():
    with pytest.raises(ValueError):
        BlockingFrameQueue(0)


def test_in_flight_limit_admits_up_to_its_limit_and_waits_for_a_release():
    stop = threading.Event()
    limit = _noted(InFlightLimit(3, stop))
    assert limit.acquire(2) == 2 and limit.acquire(4) == 1  # as many as are free, at least one
    assert not limit._cond.waiting.is_set()
    waiter, admitted = _in_thread(lambda: limit.acquire(1))
    assert limit._cond.waiting.wait(SAFETY_S)
    assert admitted == []  # all three in flight: the next frame waits
    limit.release()
    waiter.join(timeout=SAFETY_S)
    stop.set()
    assert admitted == [1]
    limit.release(5)  # never more free than the limit
    assert limit.acquire(10) == 3


def test_in_flight_limit_gives_way_to_the_stop_event():
    stop = threading.Event()
    limit = InFlightLimit(1, stop)
    limit.acquire(1)
    threading.Timer(0.1, stop.set).start()
    with pytest.raises(Stopped):
        limit.acquire(1)
    with pytest.raises(ValueError, match="at least 1"):
        InFlightLimit(0, stop)


@pytest.mark.parametrize("kind", [BlockingFrameQueue, LatestFrameQueue])
def test_high_water_counts_frames_not_the_end_marker(kind):
    # bench's queue_high_water said 9 for a queue of 8: a full queue and the end marker behind it
    queue = kind(2)
    queue.put(1)
    queue.put(2)
    queue.put(END)
    assert queue.high_water == 2 == queue.maxsize
    assert [queue.get(), queue.get(), queue.get()] == [1, 2, END]
