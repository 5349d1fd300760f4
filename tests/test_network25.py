"""A live network stream's timing where it stalls and where the run starts: an untimed stream's (HTTP MJPEG) pictures
after a stall are timed by their own arrival, not by the last one before it (the "held" rule is for demuxers that
hold a picture until the next begins); and the pictures that queued up while the run was set up are passed by, so
that a recording starts with the live stream, not with a first picture that stands still for the set-up's length.
Real local servers through the real PyAV (FFmpeg) path; the stall's threshold set through the source, its clock faked
where only the rule is asked."""
import socket
import time
import types

import cv2
import numpy as np
import pytest

import stream.network_source as network
from raw_server import RawServer
from stream.frame import now_ns
from stream.network_source import NetworkSource
from stream.pipeline import Pipeline
from test_network_source import _SlowStage
from test_pipeline import CollectingSink

FPS = 20.0


def _grey_jpeg(number: int) -> bytes:
    """A flat picture whose grey level tells `number` (up to 40) once decoded (_number_of)."""
    image = np.full((96, 128, 3), 10 + 6 * number, np.uint8)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def _number_of(image: np.ndarray) -> int:
    return round((float(image.mean()) - 10) / 6)


class _MjpegCamera(RawServer):
    """Multipart MJPEG (each part with its Content-Length, as IP Webcam and DroidCam send it) to each connection:
    `schedule` is (seconds waited before it, picture number) per picture; the connection is held open after the
    last until close()."""

    def __init__(self, schedule: list[tuple[float, int]]) -> None:
        super().__init__("/video")
        self.schedule = schedule
        self.accept_each(self._serve)

    def _serve(self, connection: socket.socket, _: int) -> None:
        self.hold(connection)
        try:
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
            for wait, number in self.schedule:
                time.sleep(wait)
                jpeg = _grey_jpeg(number % 41)
                connection.sendall(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                   % (len(jpeg), jpeg))
        except OSError:  # the reader went away
            pass


def _paced(first: int, count: int) -> list[tuple[float, int]]:
    return [(1 / FPS, number) for number in range(first, first + count)]


# -- an untimed stream's pictures after a stall ----------------------------------------------------------------


def test_an_mjpeg_stream_s_pictures_after_a_stall_are_timed_by_their_own_arrival(monkeypatch, told):
    """A phone's MJPEG stalled 4.5-5 s (a read waiting 90% of its time-out counted as a stall) and the pictures
    after it, a burst of three then paced, were given the capture time of the last picture before it: its latency
    figures and the live queue's "newest" were off by the stall. Each part comes whole on arrival (its
    Content-Length): only MPEG-TS and the streams a parser splits hold a picture across a stall."""
    stall_s = 1.0
    server = _MjpegCamera(_paced(0, 30) + [(stall_s, 30), (0.0, 31), (0.0, 32)] + _paced(33, 10))
    captured: dict[int, int] = {}
    try:
        source = NetworkSource(server.url)
        # the stall threshold (90% of the read's time-out) under the 1 s stall; FFmpeg's own time-out, set when
        # the stream opened, stays 5 s: no drop, no reconnect
        monkeypatch.setattr(NetworkSource, "read_timeout_s", property(lambda self: 0.65))
        for frame in source.frames():
            captured[_number_of(frame.image)] = frame.capture_ns
            if 35 in captured:
                break
        source.close()
    finally:
        server.close()
    assert source.container.format.name == "mpjpeg" and not source.timed
    assert {29, 30, 31, 32} <= set(captured), sorted(captured)
    before = captured[29]
    assert all(captured[after] - before >= 0.9 * stall_s * 1e9 for after in (30, 31, 32)), \
        [(captured[after] - before) / 1e9 for after in (30, 31, 32)]
    assert not any("dropped" in line for line in told), told


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


def _held_flags(monkeypatch, format_name: str, timed: bool, waits: list[float]) -> list[bool]:
    """_demuxed's held flags for packets whose reads waited `waits` seconds (a fake clock; time-out 5 s)."""
    clock = _Clock()
    monkeypatch.setattr(network, "time", types.SimpleNamespace(monotonic=clock.monotonic))

    def demux(_stream):
        for wait in waits:
            clock.now += wait
            yield types.SimpleNamespace(size=1000)

    source = NetworkSource.__new__(NetworkSource)  # its demuxing alone: nothing opened
    source.container = types.SimpleNamespace(demux=demux, format=types.SimpleNamespace(name=format_name))
    source.stream, source.timed, source.hls, source.dropped = None, timed, False, None
    return [held for _, held in source._demuxed()]


# read waits: two paced pictures, a 4.7 s stall (90% of the 5 s time-out and more), a burst of two, one paced
WAITS = [0.04, 0.04, 4.7, 0.0005, 0.0005, 0.04]


@pytest.mark.parametrize("format_name, timed, held", [
    # MPEG-TS lets a picture out when the next begins: the first after the stall is the one before it, and those
    # read at once after it keep the stream's clock (laid anew, the recording froze before the stall)
    ("mpegts", True, [False, False, True, True, True, False]),
    # raw H.264 (a parser splits it at the next picture): the first is the one before the stall; the burst after it
    # came after the stall and has no clock of its own: its arrival
    ("h264", False, [False, False, True, False, False, False]),
    # multipart MJPEG: each picture whole as it arrives, none held
    ("mpjpeg", False, [False] * 6),
])
def test_only_a_picture_the_demuxer_held_across_a_stall_keeps_the_time_before_it(monkeypatch, format_name, timed,
                                                                                 held):
    assert _held_flags(monkeypatch, format_name, timed, WAITS) == held


# -- the run's start after the set-up ----------------------------------------------------------------------------


class _StoppingSink(CollectingSink):
    """Asks the run to stop (as the window's q does) once it has `after` frames."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    @property
    def wants_stop(self) -> bool:
        return len(self.frames) >= self.after


def test_pictures_queued_during_the_set_up_are_passed_by_to_the_live_one(told):
    """The model loaded for 0.6 s (under STALE_S, so the stream was not opened again) while the stream went on: its
    socket held those pictures, which came at once; the first stage took the oldest (the first picture, from before
    the set-up) and the live queue dropped the rest, so a recording's first picture stood still for the set-up
    (0.5-1.8 s measured on a UDP stream). The run starts with the live stream: its first frame was captured after
    the set-up, the next within a stage's time of it."""
    set_up_s = 0.6
    server = _MjpegCamera(_paced(0, 200))
    try:
        source = NetworkSource(server.url)
        opened = now_ns()
        time.sleep(set_up_s)  # the model loading
        sink = _StoppingSink(after=12)
        result = Pipeline(source, [_SlowStage()], sink, queue_size=1).run()
    finally:
        server.close()
    assert result.closed_by_user and len(sink.frames) >= 12
    first, second = sink.frames[:2]
    assert first.capture_ns - opened >= 0.8 * set_up_s * 1e9, (first.capture_ns - opened) / 1e9
    # the next comes within a few of a stage's 50 ms (a bound loose enough for a loaded machine)
    assert second.capture_ns - first.capture_ns <= 1.0e9, (second.capture_ns - first.capture_ns) / 1e9
    assert not any("dropped" in line for line in told), told


def test_a_quick_set_up_gives_the_first_pictures_as_they_came(told):
    """Opened and read at once (no set-up to speak of), nothing is passed by: the first frame is the stream's
    first picture."""
    server = _MjpegCamera(_paced(0, 30))
    try:
        source = NetworkSource(server.url)
        first = next(iter(source.frames()))
        number = _number_of(first.image)
        source.close()
    finally:
        server.close()
    assert number == 0 and first.index == 0
