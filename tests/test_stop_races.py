"""Stops that land between the pipeline's waits: before the network's call starts, before the preview window's first
picture, in a paced file's gap; async depth on a file; a stage that fails as it closes after a complete run."""
from __future__ import annotations

import dataclasses
import threading
import time

import cv2
import numpy as np
import pytest

from models.postprocess import DisparityNormaliser
from models.registry import get_spec
from models.runtime import DepthEstimator, RunTerminated
from stream import sinks
from stream.frame import Frame
from stream.pipeline import Pipeline
from stream.queues import Stopped
from stream.sinks import NullSink, WindowSink
from stream.sources import PacedSource, Source
from stream.stages import AsyncDepthStage, DepthStage


def _frame(index: int = 0, pts: float | None = None) -> Frame:
    image = np.random.default_rng(index).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return Frame(index=index, capture_ns=time.perf_counter_ns(), image=image, output=image,
                 pts_seconds=index / 30 if pts is None else pts)


# --- 1. a stop before the network's call has started -----------------------------------------------------------

@pytest.fixture
def estimator(tmp_path):
    """A real ONNX Runtime session (grey mean of an 8x8 image, dynamic batch) whose calls are recorded; each takes
    `seconds` (checking RunOptions.terminate as ONNX Runtime does between nodes), one call a frame as on a CPU."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["depth"], axes=[1], keepdims=1)], "grey",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 8, 8])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["n", 1, 8, 8])])
    path = tmp_path / "grey.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))
    spec = dataclasses.replace(get_spec("tcmonodepth"), name="grey", filename=path.name, input_size=(8, 8))
    estimator = DepthEstimator(spec, path, "cpu")
    estimator.input = dataclasses.replace(estimator.input, static_batch=True)
    session = estimator.session

    class RecordedSession:
        seconds = 0.0
        calls: list[float] = []

        def __getattr__(self, name):
            return getattr(session, name)

        def run(self, names, feeds, options=None):
            self.calls.append(time.monotonic())
            deadline = time.monotonic() + self.seconds
            while time.monotonic() < deadline:
                if options is not None and options.terminate:
                    raise RuntimeError("Exiting due to terminate flag being set to true.")
                time.sleep(0.01)
            return session.run(names, feeds, options)

    estimator.session = RecordedSession()
    return estimator


def _stop_while_preparing(estimator, stop) -> None:
    """The estimator's preparation of a frame calls `stop` (the user's Ctrl-C landing there) on the first frame it
    prepares after being armed."""
    prepare = estimator.preprocess
    armed = [True]

    def preprocess(image):
        if armed[0]:
            armed[0] = False
            stop()
        return prepare(image)

    estimator.preprocess = preprocess


def test_a_cancelled_prediction_starts_no_call_and_the_estimator_runs_on(estimator):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(RunTerminated):
        estimator.predict([_frame(i).image for i in range(3)], cancel=cancel)
    assert estimator.session.calls == [] and estimator._in_flight is None
    assert len(estimator.predict([_frame().image], cancel=threading.Event())) == 1  # the next run's token: unset
    assert len(estimator.predict([_frame().image])) == 1


def test_a_stop_while_the_depth_stage_prepares_its_batch_ends_it_before_the_network_runs(estimator):
    # dc9c401: terminate() only flagged a call in progress; a stop while the batch was collected or prepared let
    # the whole batch run (FCRN's 8 on a CPU: 2.6 s), past run()'s 2 s wait for the thread
    stage = DepthStage(estimator, DisparityNormaliser(), max_batch=4)
    _stop_while_preparing(estimator, stage.interrupt)
    with pytest.raises(Stopped):
        stage.process([_frame(i) for i in range(4)])
    assert estimator.session.calls == []
    # the estimator is kept for the next run (app._last_estimator): that run's stage is not stopped
    batch = DepthStage(estimator, DisparityNormaliser(), max_batch=4).process([_frame(i) for i in range(4)])
    assert [f.depth_index for f in batch] == [0, 1, 2, 3] and len(estimator.session.calls) == 4


def test_a_stopped_run_s_call_ending_late_leaves_the_next_run_s_call_stoppable(estimator):
    """A stopped run's async worker can still be in a call when the next input's run starts on the same estimator
    (its stage waits 2 s for it); that late call's end wiped the new call's options, and a stop then found nothing
    to end."""
    estimator.session.seconds = 0.6
    old = threading.Thread(target=lambda: estimator.predict([_frame().image]))
    old.start()
    time.sleep(0.2)  # the old call in progress; the new run's call starts, taking its place
    failed: list[BaseException] = []

    def new_call() -> None:
        estimator.session.seconds = 30.0
        try:
            estimator.predict([_frame().image])
        except BaseException as exc:  # noqa: BLE001
            failed.append(exc)

    new = threading.Thread(target=new_call)
    new.start()
    old.join(5)
    assert not old.is_alive() and estimator._in_flight is not None  # the new call's, still there
    estimator.terminate()
    new.join(5)
    assert not new.is_alive() and [type(exc) for exc in failed] == [RunTerminated]


class _Frames(Source):
    def __init__(self, count: int, live: bool = False) -> None:
        self.count, self.live, self.frame_count = count, live, count
        self.width, self.height = 8, 8

    def frames(self):
        for index in range(self.count):
            yield _frame(index)


def test_a_pipeline_stopped_while_a_batch_is_prepared_leaves_no_thread_behind(estimator):
    """The reviewer's reproduction: each call as slow as FCRN's on two cores; the stop lands as the second batch
    is prepared, which then takes 0.3 s more."""
    estimator.session.seconds = 0.5
    stage = DepthStage(estimator, DisparityNormaliser(), max_batch=8)
    pipeline = Pipeline(_Frames(40), [stage], NullSink())
    stopped_at: list[float] = []
    prepare = estimator.preprocess

    def preprocess(image):
        if len(estimator.session.calls) >= 2 and not pipeline.stop.is_set():
            pipeline.stop.set()
            stopped_at.append(time.monotonic())
            time.sleep(0.3)
        return prepare(image)

    estimator.preprocess = preprocess
    result = pipeline.run()
    for thread in threading.enumerate():  # the old code's thread: let it end before the next test
        if thread.name == "depthcam-stage-depth":
            thread.join(10)
    assert result.threads_left == []
    assert not [called for called in estimator.session.calls if called > stopped_at[0]]  # old: 8 (4 s)


def test_an_async_depth_stage_stopped_while_its_worker_prepares_makes_no_call(estimator):
    stop = threading.Event()
    preparing, release = threading.Event(), threading.Event()
    prepare = estimator.preprocess

    def preprocess(image):
        preparing.set()
        release.wait(10)
        return prepare(image)

    estimator.preprocess = preprocess
    stage = AsyncDepthStage(estimator, DisparityNormaliser(), stop)
    try:
        stage.pending.put(_frame())
        assert preparing.wait(10)
        stop.set()
        stage.interrupt()
        release.set()
        stage._worker.join(10)
        assert not stage._worker.is_alive() and estimator.session.calls == []
    finally:
        release.set()
        stage.close()


# --- 2. the preview window before its first picture -------------------------------------------------------------

@pytest.fixture
def window(monkeypatch, tmp_path):
    """A WindowSink on stubbed OpenCV calls; `window.keys` are given by waitKeyEx in turn, then nothing."""
    monkeypatch.chdir(tmp_path)
    calls: list[str] = []
    keys: list[int] = []
    monkeypatch.setattr(sinks, "check_display", lambda fix=None: None)
    for name in ("namedWindow", "setMouseCallback", "imshow", "setWindowTitle", "destroyWindow", "waitKey",
                 "resizeWindow"):
        monkeypatch.setattr(cv2, name, lambda *a, name=name: calls.append(name))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: calls.append("getWindowProperty") or 1.0)
    monkeypatch.setattr(cv2, "waitKeyEx", lambda delay: calls.append("waitKeyEx") or (keys.pop(0) if keys else -1))
    monkeypatch.setattr(sinks.DisplayWatch, "open", classmethod(lambda cls, display: None))
    told: list[str] = []
    sink = WindowSink("t", None, 8, False, notify=told.append)
    sink.keys, sink.calls, sink.told = keys, calls, told  # type: ignore[attr-defined]
    return sink


def test_before_its_first_picture_the_window_answers_its_keys(window, tmp_path):
    window.keys += [ord("i"), ord("p"), ord("s")]
    for _ in range(3):
        window.idle()
    assert window.info and window.side_by_side and not window.wants_stop
    assert not list(tmp_path.glob("depthcam_*.png"))  # p: nothing on screen to save yet
    # its visibility is asked too (its close button); a window never seen on screen is not taken as closed
    assert window.calls.count("waitKeyEx") == 3 and not window.wants_stop  # (test_window22)
    window.keys.append(27)  # Esc
    window.idle()
    assert window.wants_stop


class _LateSource(Source):
    """A network stream or camera whose first picture is late (a slow connection): none until `release`."""

    live = True
    width, height = 8, 8

    def __init__(self) -> None:
        self.release = threading.Event()

    def frames(self):
        self.release.wait(20)
        for index in range(5):
            yield _frame(index)


def test_q_before_the_first_picture_ends_the_run(window):
    # dc9c401: idle() returned at once while nothing was shown: q did nothing until the first frame came
    window.keys += [-1, ord("q")]
    source = _LateSource()
    try:
        result = Pipeline(source, [], window).run()
    finally:
        source.release.set()
    assert result.closed_by_user and result.frames_written == 0


# --- 3. async depth on a file written to a file ----------------------------------------------------------------

def _file_run(config, spec: str, tmp_path, name: str):
    """The stages of a file run into a file, and its output's frames."""
    import av

    from stream.app import build

    out = tmp_path / name
    built = build(config, spec, str(out))
    assert built.pipeline.run().completed
    with av.open(str(out)) as container:
        return built.pipeline.stages, [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def test_async_depth_on_a_file_gives_each_frame_its_own_depth_every_run(shared_models, monkeypatch, tmp_path):
    # dc9c401: 1 of 90 frames got its own depth, up to 0.67 s old, and two runs differed
    import models.registry as registry
    import stream.console as console
    from stream.config import load_config

    told: list[str] = []
    monkeypatch.setattr(console, "notify", told.append)
    monkeypatch.setattr(registry, "_SAID", set())
    config = load_config("live-cpu", {"output.progress": False, "device": "cpu"})
    assert config.inference.mode == "async"
    spec = "synthetic:portrait?size=160x120&frames=24"
    first_stages, first = _file_run(config, spec, tmp_path, "a.mp4")
    _, second = _file_run(config, spec, tmp_path, "b.mp4")
    assert isinstance(first_stages[0], DepthStage) and len(first) == 24
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert told == ["async depth is for live sources; this file's frames each get their own depth"]  # once


def test_a_live_run_keeps_async_depth(shared_models):
    from stream.app import build
    from stream.config import load_config

    config = load_config("live-cpu", {"output.progress": False, "device": "cpu"})
    built = build(config, "synthetic:portrait?size=160x120&frames=5&realtime=1", None, sink=NullSink())
    try:
        assert isinstance(built.pipeline.stages[0], AsyncDepthStage)
    finally:
        for stage in built.pipeline.stages:
            stage.close()
        built.source.close()


# --- 4. a paced file's gap; a stage failing as it closes -------------------------------------------------------

class _GappedFile(Source):
    """A variable-frame-rate video: its second picture 10 minutes after its first (a paused screen recording)."""

    fps, width, height, frame_count = 30.0, 8, 8, 2

    def __init__(self) -> None:
        self.interrupted = False

    def frames(self):
        yield _frame(0, pts=0.0)
        yield _frame(1, pts=600.0)

    def interrupt(self) -> None:
        self.interrupted = True


def test_a_stop_during_a_paced_file_s_gap_ends_the_wait():
    # dc9c401: PacedSource slept through the gap (q in the window left the capture thread asleep for minutes)
    inner = _GappedFile()
    paced = PacedSource(inner)
    got: list[int] = []
    first = threading.Event()

    def read():
        for frame in paced.frames():
            got.append(frame.index)
            first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert first.wait(10)
    paced.interrupt()
    reader.join(10)
    assert not reader.is_alive() and got == [0] and inner.interrupted


class _ClosesBadly:
    name, max_batch, max_wait_ms, passes_at_once = "work", 1, 0.0, False

    def process(self, batch):
        return batch

    def close(self):
        raise RuntimeError("the face detector's thread did not end")


def test_a_stage_failing_as_it_closes_after_a_complete_run_is_a_warning(capsys):
    # dc9c401: exit 1 ("stage 'work' failed") though every frame was written and the output finalised complete
    closed: list[bool] = []

    class Sink(NullSink):
        def close(self, complete=True):
            closed.append(complete)

    result = Pipeline(_Frames(3), [_ClosesBadly()], Sink()).run()
    assert result.completed and result.frames_written == 3 and closed == [True]
    assert capsys.readouterr().err == ("depthcam: warning: the work stage failed as it closed after the last frame "
                                       "(RuntimeError: the face detector's thread did not end); the output is "
                                       "complete\n")


def test_a_stage_failing_as_it_closes_after_a_stop_is_still_the_run_s_error():
    from stream.errors import PipelineError

    class Stopping(NullSink):
        wants_stop = True  # q at the first frame

    with pytest.raises(PipelineError, match="stage 'work' failed"):
        Pipeline(_Frames(3), [_ClosesBadly()], Stopping()).run()
