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


def _swallowed_signal(then: Exception | None):
    """A warm-up whose native callback swallows the KeyboardInterrupt a stop signal raised in it (llvmlite's ctypes
    callback while Numba compiles), then fails with `then` (its half-built library) or goes on as if nothing came."""
    import os

    def warm_up(backend, **kernels):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
        except KeyboardInterrupt:
            pass  # "Exception ignored on calling ctypes callback function"
        if then is not None:
            raise then

    return warm_up


@pytest.mark.parametrize("then", [RuntimeError("no compiled object yet for <Library '_block_sum'>"), None])
def test_a_stop_signal_while_the_kernels_compile_ends_the_run_as_an_interruption(monkeypatch, then):
    """SIGTERM (or Ctrl-C, SIGHUP) during the compile: the run ended with "RuntimeError: no compiled object yet"
    (exit 1), or not at all where the compile went on."""
    import stream.app
    from stream.config import PipelineConfig

    from stream.cli import _terminate

    monkeypatch.setattr(stream.app, "warm_up", _swallowed_signal(then))
    previous = signal.signal(signal.SIGTERM, _terminate)  # as the command has it (SIG_DFL would end pytest)
    try:
        with pytest.raises(KeyboardInterrupt):
            stream.app.prepare_kernels(PipelineConfig(device="cpu"), "cpu")
        assert signal.getsignal(signal.SIGTERM) is _terminate  # put back as it was
    finally:
        signal.signal(signal.SIGTERM, previous)
