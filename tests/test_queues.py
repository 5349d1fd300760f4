import threading
import time

import pytest

from stream.queues import END, BlockingFrameQueue, InFlightLimit, LatestFrameQueue, Stopped


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
    consumer.join(timeout=5)
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


def test_get_batch_takes_up_to_max_batch_without_waiting_when_full():
    queue = BlockingFrameQueue(16)
    for i in range(6):
        queue.put(i)
    started = time.monotonic()
    batch, ended = queue.get_batch(4, max_wait_s=1.0)
    assert batch == [0, 1, 2, 3] and not ended
    assert time.monotonic() - started < 0.5


def test_get_batch_waits_at_most_max_wait_after_the_first_item():
    queue = BlockingFrameQueue(16)
    started = time.monotonic()  # before the put: the wait counts from the item's arrival
    queue.put("a")
    batch, ended = queue.get_batch(8, max_wait_s=0.1)
    waited = time.monotonic() - started
    assert batch == ["a"] and not ended
    assert 0.09 <= waited < 0.5


def test_get_batch_collects_items_that_arrive_within_the_wait():
    queue = BlockingFrameQueue(16)
    queue.put(0)
    threading.Timer(0.02, lambda: queue.put(1)).start()
    batch, _ = queue.get_batch(2, max_wait_s=1.0)
    assert batch == [0, 1]


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
    full, empty = BlockingFrameQueue(1, stop), BlockingFrameQueue(1, stop)
    full.put(0)
    producer, produced = _blocked_until_stopped(lambda: full.put(1))
    consumer, consumed = _blocked_until_stopped(empty.get)
    time.sleep(0.05)
    assert producer.is_alive() and consumer.is_alive()  # both still blocked (neither returned nor raised)
    stop.set()
    producer.join(timeout=10)
    consumer.join(timeout=10)
    assert not producer.is_alive() and not consumer.is_alive()
    assert produced == ["stopped"] and consumed == ["stopped"]
    assert list(full._items) == [0]  # the blocked item was not added on the way out


def test_queue_size_must_be_positive():
    with pytest.raises(ValueError):
        BlockingFrameQueue(0)


def test_in_flight_limit_admits_up_to_its_limit_and_waits_for_a_release():
    stop = threading.Event()
    limit = InFlightLimit(3, stop)
    assert limit.acquire(2) == 2 and limit.acquire(4) == 1  # as many as are free, at least one
    admitted = []
    waiter = threading.Thread(target=lambda: admitted.append(limit.acquire(1)))
    waiter.start()
    time.sleep(0.15)
    assert admitted == []  # all three in flight: the next frame waits
    limit.release()
    waiter.join(timeout=1.0)
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
