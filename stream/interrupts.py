"""Ctrl-C and SIGTERM (SIGHUP, Windows' Ctrl-Break) during a run: ask the pipeline to stop instead of raising
inside it.

Python's default SIGINT handler raises KeyboardInterrupt wherever the main thread happens to be:
inside the video encoder, half-way through a queue's lock, in the middle of finalising a file.
A run interrupted there could hang or leave a broken file. During a run the signal only sets the
pipeline's stop event; the main loop notices it within one poll and every stage winds down
through its normal path, so the output is finalised. A second signal raises KeyboardInterrupt at
once, for a user who would rather lose the end of the file than wait (inside a frame's write, once the frame is
written; a third there at once, for a write that hangs); once the run is finalising its outputs, it
only ends the wait for the stage threads, so the file is still closed and playable.
"""
from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

# SIGHUP: the terminal closed (a window, an SSH session), which ended a recording as a crash would. SIGBREAK:
# Windows' Ctrl-Break, also how a script there stops a program gently (os.kill(pid, CTRL_BREAK_EVENT) on one
# started with CREATE_NEW_PROCESS_GROUP): SIGTERM exists there but cannot be sent, os.kill terminates.
STOP_SIGNAL_NAMES = ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")


def stop_signals() -> tuple[int, ...]:
    """The stop signals this system has (Windows has no SIGHUP, POSIX no SIGBREAK)."""
    return tuple(getattr(signal, name) for name in STOP_SIGNAL_NAMES if hasattr(signal, name))


STOP_SIGNALS = stop_signals()


class SignalStop:
    """Set by the first stop signal; `count` tells how many arrived."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.count = 0
        # False while the run finalises its outputs: a second signal then only counts (the pipeline stops waiting
        # for its threads); raised there, it left the output file unclosed, with nothing playable in it
        self.raising = True
        self._holding = False  # inside held(): a second signal waits for the stretch's end, a third does not
        self._deferred = 0

    @property
    def received(self) -> bool:
        return self.count > 0

    def _handle(self, signum, frame) -> None:
        self.count += 1
        self.stop.set()
        if self.count > 1 and self.raising:
            raise KeyboardInterrupt  # the second one: stop now
        if self.count > 1 and self._holding:
            self._deferred += 1
            if self._deferred > 1:  # a write that hangs (a stalled disk, a pipe no one reads): the user insists
                raise KeyboardInterrupt

    @contextmanager
    def held(self) -> Iterator[None]:
        """A stretch a second signal must not cut: a frame being written to the output (raised inside the video
        writer, it left the file unfinishable: "left unfinished after a failed write", exit 1). A second signal
        that came meanwhile is raised once the stretch is over; a third is raised at once, for a write that hangs
        (a stalled network disk, a pipe no one reads) and would otherwise leave only SIGKILL."""
        raising, count, holding = self.raising, self.count, self._holding
        self.raising, self._holding, self._deferred = False, raising, 0
        try:
            yield
        finally:
            self.raising, self._holding = raising, holding
        if raising and self.count > max(count, 1):
            raise KeyboardInterrupt


@contextmanager
def signals_stop(stop: threading.Event) -> Iterator[SignalStop]:
    """While inside, the stop signals set `stop`. Signal handlers can only be installed from the
    main thread; elsewhere (a pipeline run from a worker thread) the signals keep their handlers,
    and so does a signal that is ignored."""
    state = SignalStop(stop)
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    # A signal the process was started with ignored (a background job of a script ignores SIGINT)
    # stays ignored, as every well-behaved program leaves it.
    previous = {signum: signal.signal(signum, state._handle) for signum in stop_signals()
                if signal.getsignal(signum) is not signal.SIG_IGN}
    try:
        yield state
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def noted_stop_signals() -> Iterator[None]:
    """Inside, a stop signal raises KeyboardInterrupt at once, as the command's handlers do, and is also noted:
    raised inside a native library's callback (llvmlite's, while Numba compiles), it is swallowed there and comes out
    as another error ("RuntimeError: no compiled object yet", exit 1) or not at all. So an error leaving the stretch
    after a signal is the KeyboardInterrupt it stands for, and a signal swallowed without one is raised at its end.
    Main thread only (where handlers run); a signal started ignored stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []

    def note(signum, frame) -> None:
        noted.append(signum)
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, note) for signum in stop_signals()
                if signal.getsignal(signum) not in (signal.SIG_IGN, None)}
    try:
        yield
    except Exception:
        if noted:
            raise KeyboardInterrupt from None
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if noted:
        raise KeyboardInterrupt


def quiet_unraisable_interrupts() -> None:
    """A stop signal's KeyboardInterrupt (the second one, raised at once) that lands inside a finaliser or a weakref
    callback (a WeakSet's `_remove` as a thread's objects are freed) cannot be raised there: Python prints it as
    "Exception ignored in ... Traceback ... KeyboardInterrupt" and goes on. The stop it asks for is already set (the
    handler sets the stop event first), so the run ends as the first signal ends it: say nothing. Any other
    unraisable exception is reported as before."""
    report = sys.unraisablehook

    def hook(unraisable) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            return
        report(unraisable)

    sys.unraisablehook = hook
