"""The pipeline's wiring against DESIGN.md's contracts (queues, batching, metrics, stop), with stand-in sources,
stages and sinks: what a user of `depthcam run` and `depthcam bench` relies on."""
import os
import signal
import threading
import time

import numpy as np
import pytest
from tqdm import tqdm

from media import probe
from stream.frame import Frame
from stream.metrics import LatencyRecorder
from stream.pipeline import Pipeline
from stream.sinks import NullSink, VideoSink

SIZE = (48, 64)  # height, width


def _frame(index: int) -> Frame:
    return Frame(index=index, capture_ns=time.perf_counter_ns(), image=np.full((*SIZE, 3), index % 256, np.uint8),
                 pts_seconds=index / 30)


class _Source:
    """A file (live=False) or a camera (live=True) delivering the given frame indices as fast as they are taken."""

    fps = 30.0
    height, width = SIZE
    audio_path = None
    description = "stand-in"

    def __init__(self, indices, live=False, fps=30.0):
        self.indices, self.live, self.fps = list(indices), live, fps
        self.frame_count = len(self.indices)
        self.closed = False

    def frames(self):
        for index in self.indices:
            yield _frame(index)

    def close(self):
        self.closed = True


class _Stage:
    name = "work"
    max_batch = 1
    max_wait_ms = 0.0
    passes_at_once = False

    def __init__(self, name="work", max_batch=1, max_wait_ms=0.0):
        self.name, self.max_batch, self.max_wait_ms = name, max_batch, max_wait_ms
        self.batches: list[list[int]] = []

    def process(self, batch):
        self.batches.append([frame.index for frame in batch])
        return batch

    def close(self):
        pass


class _Collecting(NullSink):
    def __init__(self, seconds=0.0):
        super().__init__()
        self.seconds, self.frames = seconds, []

    def write(self, frame):
        time.sleep(self.seconds)  # an encoder's time
        self.frames.append(frame)


@pytest.fixture
def sigint_handled():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


class _NativeCall(_Stage):
    """From frame `blocks_at` on, a call that neither polls the stop event nor ends on interrupt() (a Numba
    kernel, a network without terminate); interrupt() is where the user presses Ctrl-C a second time."""

    def __init__(self, blocks_at):
        super().__init__("native")
        self.blocks_at = blocks_at
        self.released = threading.Event()

    def process(self, batch):
        if batch[0].index >= self.blocks_at:
            self.released.wait(timeout=30)
        return batch

    def interrupt(self):
        os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, while the run is shutting down
        time.sleep(0.01)  # the handler runs here


def test_a_second_ctrl_c_during_shutdown_still_finalises_the_output(tmp_path, sigint_handled):
    """A second Ctrl-C while the run waited for a stage stuck in a long call raised out of the wait: the sink was
    never closed, and the MP4's frames stayed in a hidden .part file no player opens (the output was lost)."""
    out = tmp_path / "out.mp4"
    sink = VideoSink(out, SIZE[1], SIZE[0], 30.0, None, picture=lambda frame: frame.image)
    write = sink.write

    def write_then_ctrl_c(frame):
        write(frame)
        if frame.index == 3:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    sink.write = write_then_ctrl_c
    stage = _NativeCall(blocks_at=5)
    pipeline = Pipeline(_Source(range(1000)), [stage], sink, queue_size=2)
    try:
        result = pipeline.run()
    except KeyboardInterrupt:
        pytest.fail("the second Ctrl-C escaped the shutdown, before the output was finalised")
    finally:
        stage.released.set()
    assert result.interrupted and not result.completed and pipeline.sink_finalised
    assert result.frames_written >= 4
    assert not (tmp_path / ".out.mp4.part").exists()
    assert probe(out)["frames"] == result.frames_written


def test_two_quick_ctrl_c_while_a_frame_is_written_still_finalise_the_output(tmp_path, sigint_handled):
    """Ctrl-C twice in quick succession, the second landing inside the video writer's write (a slow encoder's
    frame): raised there, the writer took it for a failed write and left the file unfinishable ("left unfinished
    after a failed write", exit 1, a CI run's flake). It is raised once the frame is written."""
    out = tmp_path / "out.mp4"

    def picture(frame):  # called inside VideoWriter.write, before the frame is encoded
        if frame.index == 3:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # the handlers run here, inside the write
        return frame.image

    sink = VideoSink(out, SIZE[1], SIZE[0], 30.0, None, picture=picture)
    pipeline = Pipeline(_Source(range(1000)), [], sink, queue_size=2)
    result = pipeline.run()
    assert result.interrupted and not result.completed and pipeline.sink_finalised
    assert result.frames_written == 4 and probe(out)["frames"] == 4


class _StalledRead(_Source):
    """An input whose read stops answering after two frames (a FIFO nobody writes to, a stalled network file)."""

    def __init__(self):
        super().__init__(range(2))
        self.reading = threading.Event()
        self.resume = threading.Event()
        self.closed_while_reading = False

    def frames(self):
        yield from super().frames()
        self.reading.set()
        self.resume.wait(timeout=30)
        self.reading.clear()

    def close(self):
        self.closed_while_reading = self.reading.is_set()
        super().close()


def test_a_source_is_closed_once_a_read_still_in_progress_returns():
    """The capture thread's name carries the workers' prefix, so the check for it among the threads left never
    matched: a decoder or camera was closed under a read still using it (PyAV, OpenCV: a crash). Now the capture
    thread closes it once the read returns."""
    source = _StalledRead()
    pipeline = Pipeline(source, [_Stage()], _Collecting(), queue_size=2)
    pipeline.on_frame = lambda frame: pipeline.stop.set() if frame.index == 1 else None
    try:
        result = pipeline.run()
        assert result.threads_left == ["depthcam-capture"] and not source.closed
    finally:
        source.resume.set()
    pipeline.threads[0].join(timeout=5)
    assert source.closed and not source.closed_while_reading


def test_a_source_is_closed_when_the_run_ends():
    source = _Source(range(3))
    assert Pipeline(source, [_Stage()], _Collecting()).run().completed and source.closed


def test_frames_a_live_source_moved_past_are_counted_as_dropped():
    """A paced synthetic scene that falls behind skips to its newest exposure, as a camera does: those frames never
    reach the sink, yet `depthcam run` said "dropped 29 frames" where 73 of 150 were missing."""
    indices = [0, 1, 5, 6, 10, 11]
    sink = _Collecting()
    result = Pipeline(_Source(indices, live=True), [_Stage()], sink, queue_size=8).run()
    assert result.completed and [f.index for f in sink.frames] == indices
    assert result.dropped == 6 == indices[-1] + 1 - result.frames_written


def test_a_file_keeps_every_frame_in_order_in_batches():
    stage = _Stage("depth", max_batch=4, max_wait_ms=1000.0)
    sink = _Collecting()
    result = Pipeline(_Source(range(23)), [stage, _Stage("refine")], sink, queue_size=2).run()
    assert result.completed and result.dropped == 0
    assert [f.index for f in sink.frames] == list(range(23))
    assert [i for batch in stage.batches for i in batch] == list(range(23))
    assert max(map(len, stage.batches)) <= 4


class _Camera(_Source):
    """Frame 1 comes only once frame 0 was processed (or after 5 s): a batch that waited for it longer than a
    frame period shows as [0, 1]."""

    def __init__(self, processed: threading.Event):
        super().__init__(range(3), live=True, fps=50.0)
        self.processed = processed

    def frames(self):
        for index in self.indices:
            if index == 1:
                self.processed.wait(timeout=5)
            yield _frame(index)


class _Signalling(_Stage):
    def __init__(self, processed: threading.Event):
        super().__init__("depth", max_batch=4, max_wait_ms=60_000.0)
        self.processed = processed

    def process(self, batch):
        self.processed.set()
        return super().process(batch)


def test_a_live_batch_does_not_wait():
    """DESIGN.md: live, a batch waits at most one frame period after its first frame, whatever max_wait_ms says;
    depthcam waits none (a wait gains no frame before the camera's next, and delays the first by as much)."""
    processed = threading.Event()
    stage = _Signalling(processed)
    pipeline = Pipeline(_Camera(processed), [stage], _Collecting(), queue_size=4)
    assert pipeline.batch_wait_s(stage) == 0.0
    assert pipeline.run().completed
    assert stage.batches[0] == [0]
    file_run = Pipeline(_Source(range(2)), [stage], _Collecting())
    assert file_run.batch_wait_s(stage) == pytest.approx(60.0)  # a file's batch waits as configured


def test_a_live_wait_is_none_whatever_the_preset_says_and_a_file_s_as_configured():
    """The default preset's 20 ms made a live run of it 45 ms end to end instead of 23 (30 fps, CPU); gpu-1080p's 33 ms
    with a 60 fps camera would hold the first frame two periods for a batch of three."""
    processed = threading.Event()
    for wait_ms in (20.0, 33.0, 0.0):
        stage = _Stage("depth", max_batch=4, max_wait_ms=wait_ms)
        assert Pipeline(_Camera(processed), [stage], _Collecting()).batch_wait_s(stage) == 0.0
        assert Pipeline(_Source(range(2)), [stage], _Collecting()).batch_wait_s(stage) == pytest.approx(wait_ms / 1000)


def test_the_rows_of_the_metrics_add_up_to_end_to_end_with_the_sink_timed():
    """Each frame's waits and services, the sink's included, add up to its capture -> sink time exactly; before,
    the sink's time (a video file's encoding) was in end to end and in no row."""
    stages = [_Stage("depth", max_batch=3, max_wait_ms=5.0), _Stage("refine"), _Stage("render")]
    recorder = LatencyRecorder([s.name for s in stages])
    sink = _Collecting(seconds=0.002)
    result = Pipeline(_Source(range(12)), stages, sink, recorder=recorder).run()
    assert result.completed and recorder.frames == 12
    for i, frame in enumerate(sink.frames):
        order = ["depth.start", "depth", "refine.start", "refine", "render.start", "render", "sink.start", "sink"]
        times = [frame.capture_ns] + [frame.stamps[name] for name in order]
        assert times == sorted(times), frame.stamps
        rows = sum(recorder.wait_ns[name][i] + recorder.service_ns[name][i] for name in [*recorder.stages, "sink"])
        assert rows == recorder.end_to_end_ns[i]
        assert recorder.service_ns["sink"][i] >= 2_000_000
    summary = recorder.summary()
    assert summary["stages"]["sink"]["service_ms"]["count"] == 12 and len(summary["samples_ms"]["sink"]) == 12


def test_a_recorder_without_sink_start_gives_the_sink_no_time():
    """The benchmark's sequential run stamps only `sink`: the sink's row takes the rest, its service 0."""
    recorder = LatencyRecorder(["depth"])
    frame = Frame(index=0, capture_ns=0, image=np.zeros((*SIZE, 3), np.uint8))
    frame.stamps.update({"depth.start": 1_000_000, "depth": 3_000_000, "sink": 4_000_000})
    recorder.record(frame)
    assert recorder.service_ns["sink"] == [0] and recorder.wait_ns["sink"] == [1_000_000]
    assert recorder.summary()["stages"]["depth"]["service_ms"]["p50"] == pytest.approx(2.0)


def _stop_tqdm_monitor() -> None:
    """An earlier bar's monitor thread, from any test: a run must not start one of its own."""
    monitor = tqdm.monitor
    if monitor is not None:
        monitor.exit()
        tqdm.monitor = None


def test_a_run_without_progress_leaves_no_thread_behind():
    """tqdm starts its monitor thread for a disabled bar too and never ends it: every library run left one."""
    _stop_tqdm_monitor()
    before = set(threading.enumerate())
    result = Pipeline(_Source(range(5)), [_Stage()], _Collecting(), progress=False).run()
    assert result.completed
    assert [t.name for t in threading.enumerate() if t not in before] == []


def test_a_live_run_with_every_real_stage_leaves_no_thread_behind(shared_models):
    """Library use: after run() returns, nothing it started still runs (async network, face detector, workers)."""
    from stream.app import build
    from stream.config import load_config

    _stop_tqdm_monitor()
    before = set(threading.enumerate())
    built = build(load_config("live-cpu", {"output.progress": False}),
                  "synthetic:portrait?size=160x120&frames=100000&realtime=1", None, sink=_Collecting())
    built.pipeline.on_frame = lambda frame: built.pipeline.stop.set() if frame.index >= 5 else None
    result = built.pipeline.run()
    assert not result.completed and result.threads_left == []
    assert [t.name for t in threading.enumerate() if t not in before] == []


class _Window(_Collecting):
    """A window whose user presses q while no frame comes (the first depth still computing, a stalled camera)."""

    def __init__(self):
        super().__init__()
        self.idle_calls = 0

    def idle(self):
        self.idle_calls += 1

    @property
    def wants_stop(self):
        return self.idle_calls >= 2


class _Stalling(_Stage):
    def __init__(self):
        super().__init__("slow")
        self.released = threading.Event()

    def process(self, batch):
        if batch[0].index == 1:
            self.released.wait(timeout=30)
        return batch


def test_a_window_answers_its_keys_while_no_frame_comes():
    """The sink's idle() (a window's event loop) runs while the run waits for a frame; before, a window showed
    nothing new and q did nothing until the next frame came (a slow model's first batch: a minute)."""
    sink, stage = _Window(), _Stalling()
    try:
        result = Pipeline(_Source(range(5)), [stage], sink, queue_size=2).run()
    finally:
        stage.released.set()
    assert result.closed_by_user and not result.completed
    assert [f.index for f in sink.frames] == [0] and sink.idle_calls == 2


def test_a_run_with_a_progress_bar_leaves_no_thread_behind(capsys):
    """Library use (`app.run(...)` with its bar): tqdm started its monitor thread with the bar and never ended it."""
    _stop_tqdm_monitor()
    before = set(threading.enumerate())
    result = Pipeline(_Source(range(5)), [_Stage()], _Collecting(), progress=True).run()
    assert result.completed
    assert [t.name for t in threading.enumerate() if t not in before] == []
    assert "5/5" in capsys.readouterr().err  # the bar itself counts as before


class _Failing(_Stage):
    """A model error at frame `at`, after the frames before it went on."""

    def __init__(self, at):
        super().__init__("refine")
        self.at = at

    def process(self, batch):
        if batch[0].index == self.at:
            raise RuntimeError("the model failed")
        return super().process(batch)


class _AfterTheFailure(_Stage):
    """A render whose first frame takes until the stage before it has failed and ended: the frames that stage had
    finished wait in this one's queue then."""

    def __init__(self):
        super().__init__("render")
        self.pipeline: Pipeline | None = None

    def process(self, batch):
        failed = next(t for t in self.pipeline.threads if t.name.endswith("stage-refine"))
        failed.join(timeout=10)
        return super().process(batch)


def test_frames_past_a_failed_stage_still_reach_a_files_output():
    """A stage failing part-way (a model error at frame 5) ended every stage at once: the frames the later stages
    had already been given were lost (here all 5). A file run now writes them before it ends with the error."""
    from stream.errors import PipelineError

    sink, render = _Collecting(), _AfterTheFailure()
    pipeline = Pipeline(_Source(range(40)), [_Stage("depth"), _Failing(at=5), render], sink, queue_size=8)
    render.pipeline = pipeline
    with pytest.raises(PipelineError, match="'refine' failed: RuntimeError: the model failed"):
        pipeline.run()
    assert pipeline.sink_finalised and [frame.index for frame in sink.frames] == [0, 1, 2, 3, 4]
    assert not any(thread.is_alive() for thread in pipeline.threads)
