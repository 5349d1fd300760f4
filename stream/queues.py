"""Bounded frame queues with the two policies of DESIGN.md, and the live pipeline's admission limit.

`BlockingFrameQueue` (files): a full queue makes the producer wait; nothing is lost, order kept.
`LatestFrameQueue` (live): a full queue drops its oldest frame and counts the drop, so latency
stays bounded when the consumer is slower than the camera.
Every wait polls a shared stop event, so shutdown never hangs on a queue. Each item keeps the time it arrived:
a batch's wait counts from its first item's arrival (Triton's max_queue_delay, DeepStream's batched-push-timeout).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")
POLL_S = 0.05
_clock = time.monotonic  # the queues' clock (a test's fake one stands in for it)


class EndOfStream:
    """The sentinel a producer puts after its last item."""

    def __repr__(self) -> str:
        return "END"


END = EndOfStream()


class Stopped(Exception):
    """The pipeline's stop event was set while waiting."""


class FrameQueue(Generic[T]):
    drops_oldest = False

    def __init__(self, maxsize: int, stop: threading.Event | None = None, name: str = "queue") -> None:
        if maxsize < 1:
            raise ValueError(f"queue size must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self.name = name
        self.stop = stop or threading.Event()
        self.dropped = 0
        self.high_water = 0
        self._items: deque[T | EndOfStream] = deque()
        self._arrived: deque[float] = deque()  # when each of _items was put, on _clock
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def _wait(self, predicate, deadline: float | None) -> bool:
        """Wait until predicate() holds; False on timeout; raises Stopped on stop."""
        while not predicate():
            if self.stop.is_set():
                raise Stopped
            remaining = POLL_S if deadline is None else min(POLL_S, deadline - _clock())
            if remaining <= 0:
                return False
            self._cond.wait(remaining)
        return True

    def put(self, item: T | EndOfStream) -> None:
        with self._cond:
            if item is END:
                self._append(item)  # the end marker is never dropped nor blocked on, nor counted as a frame
                self._cond.notify_all()
                return
            if self.drops_oldest:
                while len(self._items) >= self.maxsize and self._drop_oldest():
                    pass
            else:
                self._wait(lambda: len(self._items) < self.maxsize, None)
            self._append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()

    def _drop_oldest(self) -> bool:
        for position, queued in enumerate(self._items):
            if queued is not END:
                del self._items[position]
                del self._arrived[position]
                self.dropped += 1
                return True
        return False

    def _append(self, item: T | EndOfStream) -> None:
        self._items.append(item)
        self._arrived.append(_clock())

    def _take(self, deadline: float | None) -> tuple[T | EndOfStream, float]:
        """The next item and when it arrived, under the lock; raises TimeoutError past `deadline`, Stopped on stop."""
        if not self._wait(lambda: bool(self._items), deadline):
            raise TimeoutError(self.name)
        taken = self._items.popleft(), self._arrived.popleft()
        self._cond.notify_all()  # a producer waiting for room
        return taken

    def get(self, timeout_s: float | None = None) -> T | EndOfStream:
        """The next item; raises TimeoutError after timeout_s, Stopped on stop."""
        deadline = None if timeout_s is None else _clock() + timeout_s
        with self._cond:
            return self._take(deadline)[0]

    def get_batch(self, max_batch: int, max_wait_s: float) -> tuple[list[T], bool]:
        """Up to max_batch items, waiting at most max_wait_s after the first one arrived (DeepStream/Triton policy):
        a first item that already waited that long (the consumer was busy, or its thread late to wake) goes at once
        with the items queued behind it; counted from when it was taken, it was held a whole max_wait_s more.

        Returns (items, ended): ended is True when the end marker was reached; items may be empty then.
        """
        with self._cond:
            first, arrived = self._take(None)
            if first is END:
                return [], True
            batch: list[T] = [first]  # type: ignore[list-item]
            deadline = arrived + max_wait_s
            while len(batch) < max_batch:
                try:
                    item, _ = self._take(deadline)
                except TimeoutError:
                    break
                if item is END:
                    return batch, True
                batch.append(item)  # type: ignore[arg-type]
        return batch, False


class BlockingFrameQueue(FrameQueue[T]):
    drops_oldest = False


class LatestFrameQueue(FrameQueue[T]):
    drops_oldest = True


class InFlightLimit:
    """At most `limit` frames of a live source between its capture queue and the sink.

    Bounded queues alone hold a frame in every queue and in every stage's hands when the slowest stage
    cannot keep the camera's rate: six or seven frames for three stages, which at 720p on two cores was
    200-300 ms of capture-to-display latency. With one admission per working stage, the newest capture
    waits in the capture queue (older ones are dropped there, as a camera's would be) until a frame
    leaves the pipeline, so the latency stays near the stages' own times (110-145 ms there).
    """

    def __init__(self, limit: int, stop: threading.Event) -> None:
        if limit < 1:
            raise ValueError(f"in-flight limit must be at least 1, got {limit}")
        self.limit = limit
        self.stop = stop
        self._free = limit
        self._cond = threading.Condition()

    def acquire(self, most: int) -> int:
        """Take between 1 and `most` admissions, waiting for the first; raises Stopped on stop."""
        with self._cond:
            while self._free == 0:
                if self.stop.is_set():
                    raise Stopped
                self._cond.wait(POLL_S)
            taken = min(self._free, max(1, most))
            self._free -= taken
            return taken

    def release(self, count: int = 1) -> None:
        with self._cond:
            self._free = min(self.limit, self._free + count)
            self._cond.notify_all()
