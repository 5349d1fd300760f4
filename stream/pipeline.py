"""Wires a source, stages and a sink into threads joined by bounded queues, and runs them.

capture thread ─► queue ─► stage thread ─► queue ─► ... ─► sink (the calling thread)

The capture queue's policy follows the source (live: keep the newest, count drops; file: block,
lose nothing). Between stages, queues block, so back-pressure reaches the capture queue. A live
source's frames are also admitted past the capture queue only while fewer than one per working stage
are on their way to the sink (`InFlightLimit`), so an overloaded stage adds no queueing latency. Any
failure, Ctrl-C, or a stop asked by the sink sets one stop event; every wait polls it, so all
threads end within a couple of seconds, and the sink is always closed (files finalised).
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Callable

from tqdm import tqdm

from models.download import ModelError
from stream.errors import PipelineError, StopAfter, UserError
from stream.frame import Frame, now_ns
from stream.interrupts import signals_stop
from stream.metrics import LatencyRecorder
from stream.queues import END, BlockingFrameQueue, FrameQueue, InFlightLimit, LatestFrameQueue, Stopped
from stream.sinks import Sink
from stream.sources import Source
from stream.stages import Stage
from stream.workers import worker_thread

JOIN_TIMEOUT_S = 2.0


@dataclass
class RunResult:
    frames_written: int
    completed: bool  # reached the end of the input
    interrupted: bool  # Ctrl-C or SIGTERM
    closed_by_user: bool  # q/Esc or the window closed
    dropped: int  # frames the live capture queue dropped
    queue_high_water: dict[str, int] = field(default_factory=dict)
    threads_left: list[str] = field(default_factory=list)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False


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
        self.sink_finalised = False
        self.source_error: UserError | None = None  # the input failed part-way; raised after the drain
        self.stage_error: tuple[str, BaseException] | None = None  # a stage's input turned bad part-way: as above

    # -- threads -----------------------------------------------------------------------------
    def _fail(self, where: str, exc: BaseException) -> None:
        with self._error_lock:
            if self.error is None:
                self.error = (where, exc)
        self.stop.set()

    def _capture(self) -> None:
        queue = self.queues[0]
        try:
            try:
                for frame in self.source.frames():
                    if self.stop.is_set():
                        return
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

    def _run_stage(self, stage: Stage, inbox: FrameQueue[Frame], outbox: FrameQueue[Frame],
                   admission: InFlightLimit | None = None) -> None:
        try:
            while True:
                if self.stop.is_set():  # a stop ends the stage now, not after the frames still queued
                    raise Stopped
                most = stage.max_batch
                if admission is not None:  # the first stage of a live run: one admission per frame taken
                    most = admission.acquire(most)
                batch, ended = inbox.get_batch(most, stage.max_wait_ms / 1000.0)
                if admission is not None and len(batch) < most:
                    admission.release(most - len(batch))
                if batch:
                    started = now_ns()
                    for frame in batch:
                        frame.stamps[f"{stage.name}.start"] = started
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
            self._fail(stage.name, exc)

    # -- run ---------------------------------------------------------------------------------
    def run(self) -> RunResult:
        self.threads = [worker_thread("capture", self._capture)]
        for index, (stage, inbox, outbox) in enumerate(zip(self.stages, self.queues, self.queues[1:])):
            admission = self.admission if index == 0 else None
            self.threads.append(worker_thread(f"stage-{stage.name}", self._run_stage, stage, inbox, outbox, admission))
        self.frames_written = 0
        self.sink_finalised = False  # the sink closed without an error: its file is complete and playable
        self.source_error = None
        self.stage_error = None
        completed, interrupted, closed_by_user = False, False, False
        total = None if self.source.live else self.source.frame_count
        # into a log (stderr not a terminal) a state every 10 s, not ten a second
        bar = tqdm(total=total, unit="frame", disable=not self.progress, dynamic_ncols=True, leave=True,
                   mininterval=0.1 if _is_terminal(sys.stderr) else 10.0)
        with signals_stop(self.stop) as signals:
            try:
                for thread in self.threads:
                    thread.start()
                completed, closed_by_user = self._drain(bar)
            except KeyboardInterrupt:  # a second Ctrl-C, or one where no handler could be installed
                interrupted = True
            except BaseException as exc:  # noqa: BLE001 (the sink failed)
                self._fail("sink", exc)
            finally:
                bar.close()
                self.stop.set()
                threads_left = self._shutdown(complete=completed and self.error is None
                                              and self.source_error is None and self.stage_error is None)
            interrupted = interrupted or (signals.received and not completed)
        result = RunResult(self.frames_written, completed and self.error is None, interrupted, closed_by_user,
                           self.queues[0].dropped,
                           {q.name: q.high_water for q in self.queues}, threads_left)
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

    def _drain(self, bar: tqdm) -> tuple[bool, bool]:
        """The sink's loop on the calling thread, until the end of the input, a stop, or the user
        closing the sink. Returns (completed, closed_by_user)."""
        outbox = self.queues[-1]
        while True:
            try:
                item = outbox.get(timeout_s=0.1)
            except (TimeoutError, Stopped):
                if self.stop.is_set():
                    return False, False
                continue
            if item is END:
                return True, False
            frame: Frame = item  # type: ignore[assignment]
            self.sink.write(frame)
            frame.stamp("sink")
            if self.admission is not None:
                self.admission.release()
            self.frames_written += 1
            bar.update(1)
            if self.recorder is not None:
                self.recorder.record(frame)
            if self.on_frame is not None:
                self.on_frame(frame)
            if self.sink.wants_stop:
                return False, True

    def _shutdown(self, complete: bool) -> list[str]:
        """Stop every thread (they poll the stop event), then close the stages (the async network's
        worker), then finalise the sink and the source."""
        if not complete:  # a stop: a slow network's call in progress ends now, not after its batch (FCRN: seconds)
            for stage in self.stages:
                interrupt = getattr(stage, "interrupt", None)  # the depth stages have one
                try:
                    if interrupt is not None:
                        interrupt()
                except Exception:  # noqa: BLE001 (a network that cannot: its call is waited for, as before)
                    pass
        deadline = now_ns() + int(JOIN_TIMEOUT_S * 1e9)
        for thread in self.threads:
            if thread.ident is not None:  # started
                thread.join(timeout=max(0.0, (deadline - now_ns()) / 1e9))
        for stage in self.stages:
            try:
                stage.close()
            except Exception as exc:  # noqa: BLE001
                self._fail(stage.name, exc)
        try:
            self.sink.close(complete)
            self.sink_finalised = True
        except Exception as exc:  # noqa: BLE001
            self._fail("sink", exc)
        left = [t.name for t in self.threads if t.is_alive()]
        if "capture" not in left:  # never pull a decoder or camera from under a thread still using it
            try:
                self.source.close()
            except Exception:  # noqa: BLE001 (closing a source never hides the real error)
                pass
        return left
