"""bench/sample_stacks.py: where each thread waits, by its innermost line in depthcam's own code."""
from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "sample_stacks.py"


def _load():
    spec = importlib.util.spec_from_file_location("sample_stacks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_thread_blocked_on_a_queue_is_counted_at_the_queue_s_wait():
    from stream.queues import BlockingFrameQueue, Stopped

    sample_stacks = _load()
    stop = threading.Event()
    queue = BlockingFrameQueue(2, stop=stop)

    def consume() -> None:
        try:
            queue.get()
        except Stopped:
            pass

    waiter = threading.Thread(target=consume, name="waiter")
    waiter.start()
    with sample_stacks.StackSampler(0.002) as sampler:
        deadline = time.monotonic() + 5
        while sampler.samples["waiter"] < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
    stop.set()
    waiter.join()
    where, count = sampler.counts["waiter"].most_common(1)[0]
    assert where.startswith("stream/queues.py:") and " _wait -> threading.py:wait" in where
    assert count >= 0.9 * sampler.samples["waiter"]
    table = sampler.table(top=3)
    assert "| waiter |" in table and "stream/queues.py" in table


def test_a_stack_outside_depthcam_says_so():
    sample_stacks = _load()
    import sys

    frame = sys._getframe()
    assert sample_stacks.own_line(frame).startswith("(outside depthcam) test_sample_stacks28.py:")
