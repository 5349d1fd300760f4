"""Live runs: the async network predicts on the newest frame captured, not the newest admitted past the capture
queue, and no more often than frames are shown. Threads are driven step by step (a fed source, a network and a stage
that hold until told), so nothing rests on how fast a loaded machine runs; SAFETY_S is never waited for by a
passing test, only by a failing one."""
import queue
import threading
import time

import numpy as np
import pytest

from models.postprocess import DisparityNormaliser
from stream.frame import Frame
from stream.network_source import PendingFrame
from stream.pipeline import Pipeline
from stream.sources import Source
from stream.stages import AsyncDepthStage
from test_pipeline import CollectingSink

SAFETY_S = 10.0
SIZE = (6, 8)  # height, width
MAP = (3, 4)


def _frame(index: int) -> Frame:
    """A frame whose picture says its index (the network reads it back)."""
    return Frame(index=index, capture_ns=index * 1000, image=np.full(SIZE + (3,), index, np.uint8))


class _HeldNetwork:
    """A network whose calls each wait for a `go`; `started` gets the index of each picture it starts on."""

    def __init__(self, held: bool = True) -> None:
        self.calls: list[int] = []
        self.started: queue.Queue[int] = queue.Queue()
        self.go = threading.Semaphore(0)
        self.held = held
        self._ended = threading.Event()

    def predict(self, images, **_):
        index = int(images[0][0, 0, 0])
        self.calls.append(index)
        self.started.put(index)
        if self.held and not self._ended.is_set():
            assert self.go.acquire(timeout=SAFETY_S), "the test never let the network go on"
        return [np.full(MAP, index / 255, np.float32) for _ in images]

    def to_disparity(self, depth):
        return depth

    def terminate(self) -> None:
        self._ended.set()
        self.go.release(8)


class _FedLiveSource(Source):
    """A live source that delivers the frames the test puts in `feed` (None ends it)."""

    live = True
    fps = 30.0
    height, width = SIZE

    def __init__(self) -> None:
        self.feed: queue.Queue[int | None] = queue.Queue()

    def frames(self):
        while (index := self.feed.get(timeout=SAFETY_S)) is not None:
            yield _frame(index)


class _Stage:
    """A stage of one frame at a time that passes its frames on."""

    name = "stage"
    max_batch = 1
    max_wait_ms = 0.0
    passes_at_once = False

    def process(self, batch):
        return batch

    def close(self) -> None:
        pass


class _HoldingStage(_Stage):
    """A working stage that keeps each frame until `release` is given: its admission stays taken meanwhile."""

    name = "hold"

    def __init__(self) -> None:
        self.release = threading.Semaphore(0)

    def process(self, batch):
        assert self.release.acquire(timeout=SAFETY_S), "the test never released the held frame"
        return batch


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + SAFETY_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.002)


def test_the_network_starts_on_the_newest_frame_captured_not_the_newest_admitted():
    """Frames captured while the stages are busy wait in the capture queue for their admission: the network, free
    meanwhile, started again only once a new one was admitted, on a picture that had waited for its admission. It
    now starts on the newest capture."""
    network, held, source = _HeldNetwork(), _HoldingStage(), _FedLiveSource()
    stop = threading.Event()
    depth = AsyncDepthStage(network, DisparityNormaliser(), stop)
    process = depth.process

    def process_once_started(batch):
        """Frame 0 reaches the stage once the network is on it: it takes the depth in progress, and so wants one
        more (as every frame shown while the network works, when it is the slower)."""
        _until(lambda: 0 in network.calls, "the network did not start on frame 0")
        return process(batch)

    depth.process = process_once_started
    sink = CollectingSink()
    pipeline = Pipeline(source, [depth, held], sink, queue_size=1, stop=stop)
    results: list = []
    runner = threading.Thread(target=lambda: results.append(pipeline.run()), daemon=True)
    runner.start()
    capture = pipeline.queues[0]
    try:
        source.feed.put(0)
        assert network.started.get(timeout=SAFETY_S) == 0
        _until(lambda: len(capture) == 0, "frame 0 was not admitted")  # the depth stage waits for the first depth
        for index in (1, 2, 3):  # captured while frame 0 holds the one admission: 3 waits, 1 and 2 are dropped
            source.feed.put(index)
        _until(lambda: capture.dropped == 2, "frames 1-3 were not captured")
        network.go.release()  # depth 0: frame 0 goes on to the holding stage, which keeps the admission
        try:
            newest = network.started.get(timeout=SAFETY_S)
        except queue.Empty:
            newest = None  # before: the network waited for frame 3's admission, after frame 0 reached the sink
        assert newest == 3
        network.go.release()
        held.release.release(2)
        source.feed.put(None)
        runner.join(SAFETY_S)
        assert not runner.is_alive()
    finally:
        stop.set()
        network.terminate()
        held.release.release(8)
        source.feed.put(None)
        runner.join(SAFETY_S)
    assert results[0].completed and [frame.index for frame in sink.frames] == [0, 3]
    assert network.calls == [0, 3]  # frame 3, shown, was not predicted on twice


def test_the_network_predicts_no_more_often_than_frames_are_shown():
    """Handed every capture, a network faster than the display would predict on frames no one shows: it starts
    again only once a frame has taken a depth since it last started."""
    network = _HeldNetwork(held=False)
    depth = AsyncDepthStage(network, DisparityNormaliser(), threading.Event())
    try:
        depth.offer(_frame(0))
        _until(lambda: network.calls == [0], "the network did not start on frame 0")
        first = _frame(0)
        depth.process([first])  # took the depth in progress: one more prediction is wanted
        assert first.depth_index == 0
        depth.offer(_frame(1))
        _until(lambda: network.calls == [0, 1], "the network did not start on frame 1")
        for index in range(2, 7):  # captured, none shown: the network may be free, it does not start
            depth.offer(_frame(index))
            time.sleep(0.01)
        assert network.calls == [0, 1]
        shown = _frame(6)
        depth.process([shown])
        _until(lambda: network.calls == [0, 1, 6], "the network did not start on the newest capture once shown")
    finally:
        depth.close()


def test_a_picture_made_when_first_read_is_not_handed_over_by_the_capture_thread():
    """A network stream's picture is made by the first stage that reads it: offered on the capture thread, the
    network's worker (nice 5) would make it, the depth stage waiting on it. It goes to the network once admitted."""
    network = _HeldNetwork()
    depth = AsyncDepthStage(network, DisparityNormaliser(), threading.Event())
    converted: list[str] = []

    def convert(picture):
        converted.append(threading.current_thread().name)
        return np.full(SIZE + (3,), picture, np.uint8)

    try:
        depth.offer(_frame(0))
        assert network.started.get(timeout=SAFETY_S) == 0  # the worker is held in its call on frame 0
        pending = PendingFrame(1, 1000, 1, convert, (SIZE[1], SIZE[0]))
        depth.offer(pending)
        assert len(depth.pending) == 0 and converted == []
        pending.image  # noqa: B018 (the pipeline's first stage reads it, on its own thread)
        network.go.release()
        depth.process([pending])
        assert network.started.get(timeout=SAFETY_S) == 1
        assert converted == [threading.current_thread().name]
        network.go.release()
    finally:
        depth.close()


class _Offered(_Stage):
    """A first stage that takes offers and says which frames it was offered."""

    name = "offered"

    def __init__(self) -> None:
        self.offered: list[int] = []

    def offer(self, frame: Frame) -> None:
        self.offered.append(frame.index)


@pytest.mark.parametrize("live", [True, False])
def test_only_a_live_run_hands_its_captures_to_the_first_stage(live):
    class Frames(Source):
        fps, frame_count = 30.0, 4
        height, width = SIZE

        def frames(self):
            return (_frame(index) for index in range(4))

    source = Frames()
    source.live = live
    stage = _Offered()
    result = Pipeline(source, [stage], CollectingSink(), queue_size=8).run()
    assert result.completed
    assert stage.offered == ([0, 1, 2, 3] if live else [])


# --- an MJPEG camera's dropped frames are never decoded --------------------------------------------------------

def _jpegs(count: int) -> list[np.ndarray]:
    """Distinct 64x48 JPEGs, as an MJPEG webcam sends them."""
    import cv2

    rng = np.random.default_rng(24)
    return [cv2.imencode(".jpg", rng.integers(0, 256, (48, 64, 3), np.uint8))[1] for _ in range(count)]


class _MjpegWebcam:
    """A V4L2 webcam in its MJPEG mode: a read gives the next JPEG's bytes where CAP_PROP_CONVERT_RGB is off (one
    row of bytes, as cap_v4l.cpp), else the picture OpenCV decodes from them; then it stops. `before_read(n)` is
    called before the n-th read (from 0)."""

    def __init__(self, jpegs, before_read=lambda n: None, backend: str = "V4L2") -> None:
        self.jpegs, self.before_read, self.backend = jpegs, before_read, backend
        self.reads, self.convert_rgb, self.stamp_ms, self.calls = 0, True, 0.0, []

    def isOpened(self):
        return True

    def getBackendName(self):
        return self.backend

    def set(self, prop, value):
        import cv2

        self.calls.append(prop)
        if prop == cv2.CAP_PROP_CONVERT_RGB:
            self.convert_rgb = bool(value)
        return True

    def get(self, prop):
        import cv2

        return {cv2.CAP_PROP_FRAME_WIDTH: 64.0, cv2.CAP_PROP_FRAME_HEIGHT: 48.0, cv2.CAP_PROP_FPS: 30.0,
                cv2.CAP_PROP_FOURCC: float(cv2.VideoWriter_fourcc(*"MJPG")),
                cv2.CAP_PROP_POS_MSEC: self.stamp_ms}.get(prop, 0.0)

    def read(self):
        import cv2

        from stream.frame import now_ns

        if self.reads == len(self.jpegs):
            return False, None
        self.before_read(self.reads)
        jpeg = self.jpegs[self.reads]
        self.reads += 1
        self.stamp_ms = now_ns() / 1e6
        return True, (cv2.imdecode(jpeg, cv2.IMREAD_COLOR) if self.convert_rgb else jpeg.reshape(1, -1).copy())

    def release(self):
        pass


@pytest.fixture
def decodes(monkeypatch):
    """The threads OpenCV decoded a JPEG on (the fake camera's own decoding included)."""
    import cv2

    threads: list[str] = []
    imdecode = cv2.imdecode

    def counted(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return imdecode(*args, **kwargs)

    monkeypatch.setattr(cv2, "imdecode", counted)
    return threads


def _camera(monkeypatch, webcam):
    from stream import camera as cameras
    from stream.sources import open_source

    monkeypatch.setattr(cameras, "_open_camera", lambda index: webcam)
    monkeypatch.setattr(cameras, "CAMERA_RECONNECT_S", 0.05)
    monkeypatch.setattr(cameras, "CAMERA_RETRY_PAUSE_S", 0.01)
    return open_source("camera:0")


class _ReadingStage(_Stage):
    """A first stage that reads each picture; it keeps frame 0 until the capture queue has dropped `drops`."""

    name = "reading"

    def __init__(self, drops: int) -> None:
        self.drops, self.started, self.pipeline = drops, threading.Event(), None

    def process(self, batch):
        for frame in batch:
            assert frame.image.shape == (48, 64, 3)
            if frame.index == 0:
                self.started.set()
                _until(lambda: self.pipeline.queues[0].dropped == self.drops, "the capture queue dropped no frames")
        return batch


def test_an_mjpeg_cameras_dropped_frames_are_never_decoded(monkeypatch, decodes):
    """OpenCV decoded every frame of an MJPEG camera on the capture thread, those the live queue then dropped
    too (1280x720 at 30 fps shown at ~15 on two busy cores: half of them). Each frame now comes as its JPEG and is
    decoded by the first stage that reads it: the kept ones only, the very pictures OpenCV gave."""
    import cv2

    jpegs = _jpegs(6)
    stage = _ReadingStage(drops=4)  # frames 1-4, captured while frame 0 is in the stage, give way to frame 5
    webcam = _MjpegWebcam(jpegs, before_read=lambda n: n == 1 and stage.started.wait(SAFETY_S))
    sink = CollectingSink()
    pipeline = Pipeline(_camera(monkeypatch, webcam), [stage], sink, queue_size=1)
    stage.pipeline = pipeline
    from stream.errors import UserError

    with pytest.raises(UserError, match="stopped delivering frames after 6"):  # the fake camera's end
        pipeline.run()
    assert [frame.index for frame in sink.frames] == [0, 5]
    assert decodes == ["depthcam-stage-reading"] * 2  # not 6 on the capture thread
    for frame in sink.frames:
        assert np.array_equal(frame.image, cv2.imdecode(jpegs[frame.index], cv2.IMREAD_COLOR))


def test_a_jpeg_that_cannot_be_decoded_shows_the_picture_before_said_once(monkeypatch, capsys):
    good = _jpegs(2)
    broken = good[0][:40].copy()  # its start only: a damaged transfer
    frames = []
    from stream.errors import UserError

    with pytest.raises(UserError, match="stopped delivering frames"):
        for frame in _camera(monkeypatch, _MjpegWebcam([good[0], broken, broken, good[1]])).frames():
            frames.append(frame)
    pictures = [frame.image for frame in frames]
    assert len(pictures) == 4
    assert np.array_equal(pictures[1], pictures[0]) and np.array_equal(pictures[2], pictures[0])
    assert not np.array_equal(pictures[3], pictures[0])
    assert capsys.readouterr().err.count("cannot be decoded") == 1


@pytest.mark.parametrize("backend, asked", [("V4L2", True), ("MSMF", False)])
def test_only_v4l2_is_asked_for_the_jpeg(monkeypatch, backend, asked):
    """Other backends' CAP_PROP_CONVERT_RGB means other things: they decode as before."""
    import cv2

    webcam = _MjpegWebcam(_jpegs(1), backend=backend)
    frame = next(iter(_camera(monkeypatch, webcam).frames()))
    assert (cv2.CAP_PROP_CONVERT_RGB in webcam.calls) == asked
    assert frame.image.shape == (48, 64, 3)


def test_a_camera_opened_again_is_asked_for_the_jpeg_again(monkeypatch):
    """A camera opened anew after a hiccup starts with OpenCV's defaults: it is asked again, so its frames still
    come undecoded."""
    from stream import camera as cameras
    from stream.errors import UserError

    jpegs = _jpegs(4)
    webcams = [_MjpegWebcam(jpegs[:2]), _MjpegWebcam(jpegs[2:])]
    opened = iter(webcams)
    monkeypatch.setattr(cameras, "_open_camera", lambda index: next(opened, webcams[-1]))
    monkeypatch.setattr(cameras, "CAMERA_RECONNECT_S", 0.05)
    monkeypatch.setattr(cameras, "CAMERA_RETRY_PAUSE_S", 0.01)
    from stream.sources import open_source

    frames = []
    with pytest.raises(UserError, match="stopped delivering frames after 4"):
        for frame in open_source("camera:0").frames():
            frames.append(frame)
    assert [type(frame) for frame in frames] == [PendingFrame] * 4
    assert all(not webcam.convert_rgb for webcam in webcams)


def test_a_camera_whose_mjpeg_buffers_are_no_jpeg_is_read_decoded_again(monkeypatch):
    """A camera whose "MJPG" buffers do not start as a JPEG (bytes only OpenCV's own V4L2 decoding takes) is not
    given to the stages as a row of bytes: raw reading is turned off at the first such buffer, a picture shown in
    its place, and later frames are OpenCV's decoded pictures."""
    import cv2

    jpegs = _jpegs(4)
    webcam = _MjpegWebcam(jpegs)
    plain_read = webcam.read

    def read():
        ok, image = plain_read()
        if ok and not webcam.convert_rgb:
            image = np.concatenate([np.zeros((1, 4), np.uint8), image], axis=1)  # a header before the JPEG
        return ok, image

    webcam.read = read
    source = _camera(monkeypatch, webcam)
    frames = source.frames()
    first = next(frames)
    assert first.image.shape == (48, 64, 3)
    assert webcam.convert_rgb  # turned back on
    second = next(frames)
    np.testing.assert_array_equal(second.image, cv2.imdecode(jpegs[1], cv2.IMREAD_COLOR))
    source.close()
