"""The stop signals' state during a run: what a second and a third Ctrl-C do inside a stretch that must not be cut
(a frame being written to the output)."""
import signal
import threading

import pytest

from stream.interrupts import SignalStop


def _signal(state: SignalStop) -> None:
    state._handle(signal.SIGINT, None)  # as Python calls a handler on the main thread


def test_a_second_signal_inside_a_write_waits_for_its_end():
    state = SignalStop(threading.Event())
    _signal(state)  # the first: stop, finalise
    with pytest.raises(KeyboardInterrupt):
        with state.held():
            _signal(state)  # not raised in the writer: the frame is written and counted first
            written = True
    assert written and state.stop.is_set()


def test_a_third_signal_ends_a_write_that_hangs():
    """A write blocked on a stalled network disk or a pipe no one reads: the user insists, and is not left with only
    SIGKILL."""
    state = SignalStop(threading.Event())
    _signal(state)
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with state.held():
            _signal(state)
            reached.append("second deferred")
            _signal(state)
            reached.append("after the third")
    assert reached == ["second deferred"]


def test_signals_while_the_outputs_are_finalised_only_count():
    state = SignalStop(threading.Event())
    _signal(state)
    state.raising = False  # the run finalises its outputs: a file half-closed is worse than a wait
    with state.held():
        for _ in range(3):
            _signal(state)
    assert state.count == 4


def test_the_first_signal_inside_a_write_only_asks_the_run_to_stop():
    state = SignalStop(threading.Event())
    with state.held():
        _signal(state)
    assert state.stop.is_set() and state.count == 1
