"""Wires a source, stages and a sink into threads joined by bounded queues, and runs them.

capture thread ─► queue ─► stage thread ─► queue ─► ... ─► sink (the calling thread)

The capture queue's policy follows the source (live: keep the newest, count drops; file: block,
lose nothing). Between stages, queues block, so back-pressure reaches the capture queue. A live
source's frames are also admitted past the capture queue only while fewer than one per working stage
are on their way to the sink (`InFlightLimit`), so an overloaded stage adds no queueing latency; a first stage
with an `offer` method (the async network) is handed each captured frame too, before that wait. Any
failure, Ctrl-C, or a stop asked by the sink sets one stop event; every wait polls it, so all
threads end within a couple of seconds, and the sink is always closed (files finalised). A stage that
fails in a file run first lets the frames already past it reach the sink, as an input that turns
unreadable part-way does. At a stop the source and stages are asked to interrupt what they wait for.
"""
from __future__ import annotations

import contextlib
import sys
import threading
from array import array
from dataclasses import dataclass, field
from typing import Callable

from models.download import ModelError
from stream.console import ProgressBar, TimeProgressBar, notify, stage_line, writing_line
from stream.errors import PipelineError, StopAfter, UserError
from stream.frame import Frame, now_ns
from stream.interrupts import SignalStop, signals_stop
from stream.metrics import LatencyRecorder, live_summary
from stream.queues import END, POLL_S, BlockingFrameQueue, FrameQueue, InFlightLimit, LatestFrameQueue, Stopped
from stream.sinks import Sink, sink_parts
from stream.sources import PacedSource, Source
from stream.stages import Stage
from stream.workers import worker_thread

JOIN_TIMEOUT_S = 2.0
# A single picture larger than this is told stage by stage, one line as each starts, instead of by a bar over its one
# frame, which sat at "0/1" throughout. The depth of field's cost grows with the pixels times the blur, which grows
# with the height: on two busy cores a phone's 48-megapixel photo took 2 minutes (its depth 0.4 s, refinement 1.1 s,
# depth of field 118 s, writing its PNG 6.5 s; about half a minute since the reduced gather's bound went to 12),
# 12 megapixels 13-19 s, a 4K portrait 7.1 s, 6 megapixels 3.5 s, 4K landscape 2.7 s; 1080p 0.8 s keeps its bar.
STAGE_LINES_PIXELS = 4_000_000
# A live run's capture-to-output latencies kept for its end summary: at most this many (8 MB), then every other one
# of them and of the frames after (a webcam or virtual camera left on for days grew 20 MB a day at 30 fps).
LATENCY_KEPT = 1 << 20


@dataclass
class RunResult:
    frames_written: int
    completed: bool  # reached the end of the input
    interrupted: bool  # Ctrl-C or SIGTERM
    closed_by_user: bool  # q/Esc or the window closed
    dropped: int  # a live source's frames that never reached the stages: dropped by the capture queue, or skipped
    # by the source itself (a paced synthetic scene that fell behind moves on to its newest exposure, as a camera)
    queue_high_water: dict[str, int] = field(default_factory=dict)
    threads_left: list[str] = field(default_factory=list)
    captured: int = 0  # the frames the source delivered (a live source's skipped ones too)


class _NoBar:
    """Stands in for tqdm where no progress is shown: tqdm starts its monitor thread for a disabled bar too and
    never ends it, so every run left a thread behind in the calling program."""

    def update(self, count: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False


def _file_names(sink: Sink) -> list[str]:
    """The files a sink writes (-o's, --save-depth's), by the names given: none for a window or null."""
    names = []
    for one in sink_parts(sink):
        path = getattr(one, "path", None) or getattr(getattr(one, "writer", None), "path", None)
        if path is not None:
            names.append(str(path))
    return names


def _interrupt(part: Source | Stage) -> None:
    """Ask a source or stage that can (a network stream, a camera, the depth stages) to end what it waits for."""
    interrupt = getattr(part, "interrupt", None)  # a stand-in or a library's own source may have none
    try:
        if interrupt is not None:
            interrupt()
    except Exception:  # noqa: BLE001 (one that cannot: its call is waited for, as before)
        pass


class Pipeline:
    def __init__(self, source: Source, stages: list[Stage], sink: Sink, *, queue_size: int = 8,
                 recorder: LatencyRecorder | None = None, progress: bool = False,
                 stop: threading.Event | None = None, on_frame: Callable[[Frame], None] | None = None) -> None:
        self.source = source
        self.stages = stages
        self.sink = sink
        self.stop = stop or threading.Event()
        self.recorder = recorder
        self.progress = progress
        self.on_frame = on_frame
        capture_queue: type[FrameQueue] = LatestFrameQueue if source.live else BlockingFrameQueue
        self.queues: list[FrameQueue[Frame]] = [capture_queue(queue_size, self.stop, name="capture")]
        self.queues += [BlockingFrameQueue(queue_size, self.stop, name=s.name) for s in stages]
        # one frame in the hands of each stage that holds it while working (not the async network's hand-over)
        holding = sum(not stage.passes_at_once for stage in stages)
        self.admission = InFlightLimit(max(1, holding), self.stop) if source.live else None
        self.error: tuple[str, BaseException] | None = None
        self._error_lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.frames_written = 0
        self.skipped_by_source = 0  # live: frames the source moved past (gaps in its indices), drops as the queue's
        self.captured = 0  # frames the source delivered, those it skipped counted (the end summary's first figure)
        # written frames' capture-to-output latencies (ns), for a live run's end summary: 8 bytes a frame, at most
        # LATENCY_KEPT of them
        self.latency_ns: array[int] = array("q")
        self._latency_every = 1  # the written frames' latencies kept: one in this many (see LATENCY_KEPT)
        self.sink_finalised = False
        self.source_error: UserError | None = None  # the input failed part-way; raised after the drain
        self.stage_error: tuple[str, BaseException] | None = None  # a stage's input turned bad part-way: as above
        # A read still in progress when the run ends (a stalled camera or network file) keeps the source open: the
        # capture thread closes it when the read returns, never the main thread from under it (PyAV, OpenCV: a crash)
        self._source_lock = threading.Lock()
        self._capturing = False
        self._close_source_after_capture = False
        self.stage_lines = False  # this run tells its one large picture's stages as they start (set by run())
        self._ran = False  # run() once: its stop event and queues end with it

    # -- threads -----------------------------------------------------------------------------
    def _fail(self, where: str, exc: BaseException) -> None:
        with self._error_lock:
            if self.error is None:
                self.error = (where, exc)
        self.stop.set()

    def _capture_tap(self) -> Callable[[Frame], None] | None:
        """A live run's first stage that takes every captured frame as well (the async network's `offer`: it starts
        on the newest picture captured, not on the newest admitted past the capture queue); None elsewhere."""
        if not self.source.live or not self.stages:
            return None
        return getattr(self.stages[0], "offer", None)

    def _capture(self) -> None:
        queue = self.queues[0]
        offer = self._capture_tap()
        try:
            try:
                last: int | None = None
                for frame in self.source.frames():
                    if self.stop.is_set():
                        return
                    skipped = frame.index - last - 1 if self.source.live and last is not None else 0
                    self.skipped_by_source += max(0, skipped)
                    self.captured += 1 + max(0, skipped)
                    last = frame.index
                    if offer is not None:
                        offer(frame)
                    queue.put(frame)
            except UserError as exc:
                # The input turned unreadable part-way (a truncated or corrupt file): the frames read so
                # far still go through the stages and are written; the error is reported after them.
                self.source_error = exc
            queue.put(END)
        except Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 (reported on the main thread)
            self._fail("capture", exc)
        finally:
            self._capture_ended()

    def _capture_ended(self) -> None:
        """The capture thread is done with the source: close it now if the run has already ended without it."""
        with self._source_lock:
            self._capturing = False
            close = self._close_source_after_capture
        if close:
            self._close_source()

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception:  # noqa: BLE001 (closing a source never hides the real error)
            pass

    def _run_stage(self, stage: Stage, inbox: FrameQueue[Frame], outbox: FrameQueue[Frame],
                   admission: InFlightLimit | None = None) -> None:
        try:
            while True:
                if self.stop.is_set():  # a stop ends the stage now, not after the frames still queued
                    raise Stopped
                most = stage.max_batch
                if admission is not None:  # the first stage of a live run: one admission per frame taken
                    most = admission.acquire(most)
                batch, ended = inbox.get_batch(most, self.batch_wait_s(stage))
                if admission is not None and len(batch) < most:
                    admission.release(most - len(batch))
                if batch:
                    if self.stage_lines:
                        notify(stage_line(stage.name, self.source.width, self.source.height))
                    started = now_ns()
                    for frame in batch:
                        frame.stamps[f"{stage.name}.start"] = started
                        if admission is not None:
                            # a network stream's picture is made when first read (PendingFrame): here, on this
                            # thread, not on the async network's worker (nice 5) with the refine stage waiting on it
                            frame.image  # noqa: B018
                    try:
                        batch = stage.process(batch)
                    except StopAfter as stop:  # the frames before the bad one go on; the run ends after them
                        batch, ended, self.stage_error = stop.done, True, (stage.name, stop.cause)
                    finished = now_ns()
                    for frame in batch:
                        frame.stamps[stage.name] = finished
                        outbox.put(frame)
                if ended:
                    outbox.put(END)
                    return
        except Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001
            self._stage_failed(stage.name, exc, outbox)

    def _stage_failed(self, where: str, exc: BaseException, outbox: FrameQueue[Frame]) -> None:
        """A file run: the frames already past the failed stage (in later queues and stages' hands, up to a queue
        of each) still reach the sink, then the run ends with the error, as after a StopAfter; the stages before
        it stall on its full inbox until the stop at the run's end. A stop ended every stage at once, and those
        frames were lost. A live run stops at once: its frames in flight are a few of a stream that goes on."""
        if self.source.live:
            self._fail(where, exc)
            return
        with self._error_lock:
            if self.error is None:
                self.error = (where, exc)
        outbox.put(END)

    def batch_wait_s(self, stage: Stage) -> float:
        """How long a stage's batch waits after its first frame arrived in its inbox: `max_wait_ms` for a file, none for
        a live source (DESIGN.md: at most one frame period). Live, a wait gains no frame sooner than the camera's next,
        a whole period after the first, and delays the first frame by as much: the default preset's 20 ms at 30 fps made
        live end to end 45 ms instead of 23 on a CPU, and 20 of a GPU's 32 (bench/RESULTS.md, session 28); a wait of
        one period (gpu-1080p's 33 ms with a 30 fps camera) doubles the first frame's delay for a batch of two. The
        frames already queued, where the stage fell behind, are taken without waiting."""
        return 0.0 if self.source.live else stage.max_wait_ms / 1000.0

    # -- run ---------------------------------------------------------------------------------
    def run(self) -> RunResult:
        if self._ran:  # a second run found the first's stop set and returned at once: nothing written, no error
            raise RuntimeError("a Pipeline runs once; build a new one (stream.app.build) for another run")
        self._ran = True
        self.threads = [worker_thread("capture", self._capture)]
        self._capturing, self._close_source_after_capture = True, False
        for index, (stage, inbox, outbox) in enumerate(zip(self.stages, self.queues, self.queues[1:])):
            admission = self.admission if index == 0 else None
            self.threads.append(worker_thread(f"stage-{stage.name}", self._run_stage, stage, inbox, outbox, admission))
        self.frames_written = 0
        self.skipped_by_source = 0
        self.captured = 0
        self.latency_ns, self._latency_every = array("q"), 1
        self.sink_finalised = False  # the sink closed without an error: its file is complete and playable
        self.source_error = None
        self.stage_error = None
        completed, interrupted, closed_by_user = False, False, False
        self.stage_lines = self.progress and self._one_large_picture()
        bar = self._progress_bar() if self.progress and not self.stage_lines else _NoBar()
        with signals_stop(self.stop) as signals:
            try:
                for thread in self.threads:
                    thread.start()
                completed, closed_by_user = self._drain(bar, signals)
            except KeyboardInterrupt:  # a second Ctrl-C, or one where no handler could be installed
                interrupted = True
            except BaseException as exc:  # noqa: BLE001 (the sink failed)
                self._fail("sink", exc)
            finally:
                # From here a further Ctrl-C only cuts the wait for the stage threads short: raised here, it left
                # the sink unclosed, and the output with it (an MP4's first second: no file at all).
                signals.raising = False
                bar.close()
                self.stop.set()
                asked = min(signals.count, 1)  # stopping asked once already: the next signal hurries
                threads_left = self._shutdown(complete=completed and self.error is None
                                              and self.source_error is None and self.stage_error is None,
                                              hurried=lambda: signals.count > asked)
            interrupted = interrupted or (signals.received and not completed)
        result = RunResult(self.frames_written, completed and self.error is None, interrupted, closed_by_user,
                           self.queues[0].dropped + self.skipped_by_source,
                           {q.name: q.high_water for q in self.queues}, threads_left, self.captured)
        if self.error is None and self.stage_error is not None:
            self.error = self.stage_error
        if self.error is None and self.source_error is not None:
            self.error = ("capture", self.source_error)
        if self.error is not None:
            where, exc = self.error
            if isinstance(exc, UserError):
                raise exc
            if isinstance(exc, ModelError):  # the model misbehaved at run time: the message says the fix
                raise UserError(str(exc)) from None
            raise PipelineError(where, exc) from exc
        return result

    def live_summary(self) -> str | None:
        """A live run's end: the frames captured, processed and dropped, and the capture-to-output latency; None
        for a file, and for a photo's copies shown in a window (no frames of an input)."""
        if not self.source.live or getattr(self.source, "repeating", False):
            return None
        played = isinstance(self.source, PacedSource) and not self.source.inner.live  # a video file in a window
        return live_summary(self.captured, self.frames_written, self.queues[0].dropped + self.skipped_by_source,
                            self.latency_ns, "played" if played else "captured")

    def _keep_latency(self, frame: Frame) -> None:
        """A written frame's capture-to-output latency, for the end summary: one in `_latency_every`, thinned to every
        other one once LATENCY_KEPT are kept, so a run of any length keeps a bounded, evenly spread sample."""
        if (self.frames_written - 1) % self._latency_every:  # frames 1, 1 + every, 1 + 2 every...
            return
        if len(self.latency_ns) >= LATENCY_KEPT:
            self.latency_ns, self._latency_every = self.latency_ns[::2], self._latency_every * 2
            if (self.frames_written - 1) % self._latency_every:
                return
        self.latency_ns.append(frame.stamps["sink"] - frame.capture_ns)

    def _one_large_picture(self) -> bool:
        """A photo (or a one-picture animation or video) larger than STAGE_LINES_PIXELS, read once, not repeated for
        a window: its stages take seconds each, and a bar over its one frame tells nothing meanwhile."""
        source = self.source
        return (not source.live and source.frame_count == 1 and not getattr(source, "progress_seconds", None)
                and source.width * source.height > STAGE_LINES_PIXELS)

    def _progress_bar(self) -> ProgressBar:
        """Frames of a known number; seconds of video where the number is only a guess (the source's
        progress_seconds); frames counted up, with no end, for a live source."""
        # into a log (stderr not a terminal) a state every 10 s, not ten a second, its time left from the speed of
        # the last few minutes: tqdm's 0.3 a state followed the last 10 s (1150-2320 s for 1836 s on a busy machine)
        terminal = _is_terminal(sys.stderr)
        options = dict(dynamic_ncols=True, leave=True, mininterval=0.1 if terminal else 10.0,
                       smoothing=0.3 if terminal else 0.05)
        seconds = None if self.source.live else getattr(self.source, "progress_seconds", None)
        if seconds:
            return TimeProgressBar(seconds, **options)
        return ProgressBar(total=None if self.source.live else self.source.frame_count, unit="frame", **options)

    def _advance(self, bar: ProgressBar | _NoBar, frame: Frame) -> None:
        if isinstance(bar, TimeProgressBar):
            bar.reach(self.source.seconds_done(frame))
        else:
            bar.update(1)

    def _drain(self, bar: ProgressBar | _NoBar, signals: SignalStop | None = None) -> tuple[bool, bool]:
        """The sink's loop on the calling thread, until the end of the input, a stop, or the user
        closing the sink. Returns (completed, closed_by_user)."""
        outbox = self.queues[-1]
        while True:
            try:
                item = outbox.get(timeout_s=0.1)
            except (TimeoutError, Stopped):
                if self.stop.is_set():
                    return False, False
                # no frame for a while (a slow network's first batch, a stalled camera): a window still answers
                # its keys and close button, and q still ends the run
                idle = getattr(self.sink, "idle", None)
                if idle is not None:
                    idle()
                if self.sink.wants_stop:
                    return False, True
                continue
            if item is END:
                return True, False
            frame: Frame = item  # type: ignore[assignment]
            frame.stamp("sink.start")  # the sink is timed as a stage: the stages' rows add up to end to end
            if self.stage_lines and (line := writing_line(_file_names(self.sink))):
                notify(line)
            # a second Ctrl-C is raised once the frame is written and counted, not inside the writer
            with signals.held() if signals is not None else contextlib.nullcontext():
                self.sink.write(frame)
                frame.stamp("sink")
                if self.admission is not None:
                    self.admission.release()
                self.frames_written += 1
                self._keep_latency(frame)
            self._advance(bar, frame)
            if self.recorder is not None:
                self.recorder.record(frame)
            if self.on_frame is not None:
                self.on_frame(frame)
            if self.sink.wants_stop:
                return False, True

    def _shutdown(self, complete: bool, hurried: Callable[[], bool] = lambda: False) -> list[str]:
        """Stop every thread (they poll the stop event), then close the stages (the async network's
        worker), then finalise the sink and the source. `hurried`: true once the user asked again to stop (a
        second Ctrl-C): the wait for the threads ends then; the sink is finalised all the same."""
        if not complete:
            # a stop: a slow network's call in progress ends now, not after its batch (FCRN: seconds); a network
            # stream or camera reconnecting gives up, where it went on trying behind the ended run
            for part in (self.source, *self.stages):
                _interrupt(part)
        self._join_threads(hurried, stopping=not complete)
        unclosed = self._close_stages(complete)
        try:
            self.sink.close(complete)
            self.sink_finalised = True
        except Exception as exc:  # noqa: BLE001
            self._fail("sink", exc)
        for name, exc in unclosed:  # every frame went through that stage: the output is whole, the exit 0
            if self.sink_finalised:
                notify(f"warning: the {name} stage failed as it closed after the last frame "
                       f"({exc.__class__.__name__}: {exc}); the output is complete")
            else:
                self._fail(name, exc)
        with self._source_lock:
            reading = self._capturing and self.threads[0].ident is not None  # the capture thread started, not done
            self._close_source_after_capture = reading
        if not reading:
            self._close_source()
        return [t.name for t in self.threads if t.is_alive()]

    def _close_stages(self, complete: bool) -> list[tuple[str, Exception]]:
        """Close every stage. A failure after a complete run is returned, to be said once the sink is finalised;
        otherwise it is the run's error (unless one came first)."""
        unclosed = []
        for stage in self.stages:
            try:
                stage.close()
            except Exception as exc:  # noqa: BLE001
                if complete:
                    unclosed.append((stage.name, exc))
                else:
                    self._fail(stage.name, exc)
        return unclosed

    def _join_threads(self, hurried: Callable[[], bool], stopping: bool) -> None:
        """Wait up to JOIN_TIMEOUT_S for the threads, in short slices: hurried (a second Ctrl-C), only the
        threads that are polling the stop event are waited for (a couple of polls), not a slow call. The stages
        first, which are closed next; the capture thread last, and at a stop of a live source only for a couple
        of polls: a read waiting on a stalled camera or network stream (up to 3-5 s) brings a frame no one wants,
        and the thread closes the source itself when it returns (the output was finalised 2 s late)."""
        deadline = now_ns() + int(JOIN_TIMEOUT_S * 1e9)
        capture, *stages = self.threads
        for thread in (*stages, capture):
            if thread is capture and stopping and self.source.live:
                deadline = min(deadline, now_ns() + int(2 * POLL_S * 1e9))
            while thread.ident is not None and thread.is_alive():  # started and still running
                if hurried():
                    deadline = min(deadline, now_ns() + int(2 * POLL_S * 1e9))
                left_s = (deadline - now_ns()) / 1e9
                if left_s <= 0:
                    return
                thread.join(timeout=min(POLL_S, left_s))
