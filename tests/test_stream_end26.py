"""A live stream whose sender stops ends as an end, not as a drop: the sender closed the connection after a whole
picture, and the reconnect found it gone in a sure way (the port refused, no stream at the path). A phone app's MJPEG
stopped, or `ffmpeg -listen 1` relaying RTMP to depthcam ending, reconnected for 10 s and ended with exit status 2
and a "stopped delivering frames" line, which a script reads as a failure. A close in the middle of a picture, a
reset, or a reconnect that hangs is still a drop; a sender that comes back within the grace goes on. Servers on this
machine only (raw sockets: each close, reset or answer exactly as written here)."""
from __future__ import annotations

import io
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import stream.network_source as network
from raw_server import RawServer
from stream.errors import UserError
from stream.network_source import NetworkSource

REPO = Path(__file__).resolve().parents[1]
SECRET = "hunter2"
PICTURES = 12
HEAD = b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n"


@pytest.fixture(autouse=True)
def _short_grace(monkeypatch):
    """The in-process runs tell a sender gone within 2 s (5 s in a run), so that each test takes a few seconds; the
    subprocess run (the CLI's) has the real grace."""
    monkeypatch.setattr(network, "ENDED_GRACE_S", 2.0)


def _jpeg(number: int) -> bytes:
    image = np.full((120, 160, 3), (number * 20) % 256, np.uint8)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def _part(jpeg: bytes, length: bool = True) -> bytes:
    """One multipart part, with its Content-Length (as IP Webcam, DroidCam, mjpg-streamer and ffmpeg send it) or
    without (read up to the next boundary)."""
    stated = b"Content-Length: %d\r\n" % len(jpeg) if length else b""
    return b"--frame\r\nContent-Type: image/jpeg\r\n" + stated + b"\r\n" + jpeg + b"\r\n"


class _PhoneApp(RawServer):
    """A phone app's MJPEG at 20 fps: the first connection gets PICTURES pictures (every connection, until `until`
    is set, where it is given), then `ending` ("close" after a whole part, "closing boundary", "cut" in the middle of
    a part, "reset"); later connections are `then`: "refused" (the app stopped: nothing listens), "404", "silent"
    (the request taken, never answered), or "back after N" (404 to the next N connections, then the stream again)."""

    def __init__(self, ending: str = "close", then: str = "refused", length: bool = True,
                 until: threading.Event | None = None) -> None:
        super().__init__("/video")
        self.ending, self.then, self.length, self.until = ending, then, length, until
        self.accept_each(self._serve)

    def _serve(self, connection: socket.socket, number: int) -> None:
        self.hold(connection)
        try:
            back = self.then.startswith("back after") and number > int(self.then.split()[-1]) + 1
            if number == 1 or back or (self.until is not None and not self.until.is_set()):
                self._stream(connection, forever=back)
            elif self.then == "404":
                connection.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                connection.close()
            elif self.then.startswith("back after"):
                connection.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                connection.close()
            # "silent": held unanswered until close()
        except OSError:  # the reader went away
            pass

    def _stream(self, connection: socket.socket, forever: bool) -> None:
        connection.sendall(HEAD)
        for number in range(100_000):
            if self.until.is_set() if self.until is not None else number == PICTURES and not forever:
                break
            connection.sendall(_part(_jpeg(number), self.length))
            time.sleep(0.05)
        if self.then == "refused":  # the app stopped: its port closed before the connection
            self.listener.shutdown(socket.SHUT_RDWR)  # a close alone leaves the accept in progress listening
            self.listener.close()
        if self.ending == "closing boundary":
            connection.sendall(b"--frame--\r\n")
        elif self.ending == "cut":
            jpeg = _jpeg(PICTURES)
            connection.sendall(_part(jpeg, self.length)[:-len(jpeg) // 2])
        elif self.ending == "reset":  # SO_LINGER 0: the close sends RST, not FIN
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()


def _drained(source: NetworkSource) -> tuple[list, float, BaseException | None]:
    """Every frame the source gives, the clock at its last frame, and what it raised."""
    frames, failure, last = [], None, time.monotonic()
    try:
        for frame in source.frames():
            frames.append(frame)
            last = time.monotonic()
    except UserError as exc:
        failure = exc
    return frames, last, failure


def _read(url: str) -> tuple[list, float, BaseException | None]:
    """Every frame the stream gives, the seconds from its end (its last frame) to the run's, and what it raised."""
    source = NetworkSource(url)
    try:
        frames, last, failure = _drained(source)
    finally:
        source.close()
    return frames, time.monotonic() - last, failure


def _run(server: _PhoneApp, password: bool = False) -> tuple[list, float, BaseException | None]:
    login = f"me:{SECRET}@" if password else ""
    try:
        return _read(server.url.replace("http://", f"http://{login}"))
    finally:
        server.close()


@pytest.mark.parametrize("ending, length", [("close", True), ("closing boundary", True), ("close", False)])
def test_a_phone_app_that_stops_ends_the_run_at_once_as_its_end(told, ending, length):
    """The app stopped: the connection closed after a whole picture (with the parts' Content-Length or without, or
    after a closing boundary), and its port then refused connections. The run ends within the 2 s grace, with the
    end's line (its exit status 0), where it reconnected for 10 s and raised "stopped delivering frames" (exit 2)."""
    frames, after_s, failure = _run(_PhoneApp(ending, "refused", length), password=True)
    assert failure is None, failure
    # of parts of no stated length FFmpeg loses the last, read up to the next boundary: the close fails that read
    assert [f.index for f in frames] == list(range(len(frames))) and len(frames) >= PICTURES - (not length)
    assert network.ENDED_GRACE_S <= after_s < 5.0, after_s  # the old loop: RECONNECT_S (10 s), then the failure
    assert told[-1].startswith("network stream http://me:***@127.0.0.1:")
    assert f"ended (its sender stopped) after {len(frames)} frames: it closed the connection, and 127.0.0." in told[-1]
    assert told[-1].endswith("then refused the connection")
    assert not any("dropped" in line for line in told) and all(SECRET not in line for line in told)


def test_a_sender_that_answers_404_after_closing_has_stopped(told):
    """A relay or app server still up whose stream is gone: 404 at the path, tried for the grace, then the end."""
    frames, after_s, failure = _run(_PhoneApp("close", "404"))
    assert failure is None and len(frames) == PICTURES, failure
    assert after_s < 5.0, after_s
    assert told[-1].endswith("then had no stream at /video (Server returned 404 Not Found)"), told[-1]


def test_a_sender_that_comes_back_within_the_grace_goes_on(told):
    """Closed after a whole picture, 404 twice (an app restarting its server), then the stream again: it is
    opened again and the frames go on, said as a drop that came back, as before."""
    server = _PhoneApp("close", "back after 2")
    try:
        source = NetworkSource(server.url)
        frames = []
        for frame in source.frames():
            frames.append(frame)
            if len(frames) == PICTURES + 10:
                break
        source.close()
    finally:
        server.close()
    assert [f.index for f in frames] == list(range(PICTURES + 10))
    assert server.connections == 4
    assert any("dropped (the connection was closed) and came back" in line for line in told), told
    assert not any("ended" in line for line in told), told


@pytest.mark.parametrize("ending", ["cut", "reset"])
def test_a_close_mid_picture_or_a_reset_is_still_a_drop(told, monkeypatch, ending):
    """A part cut in the middle, or a connection reset: no clean end, whatever the reconnect then finds: opened
    again for RECONNECT_S and the run fails as a drop (exit status 2)."""
    monkeypatch.setattr(network, "RECONNECT_S", 3.0)
    frames, after_s, failure = _run(_PhoneApp(ending, "refused"))
    assert isinstance(failure, UserError), told
    # the half picture cut short is given too: its JPEG's headers read
    assert f"stopped delivering frames after {len(frames)} frames" in str(failure), failure
    assert len(frames) >= PICTURES and "did not come back" in str(failure)
    assert after_s >= 2.5, after_s  # reconnected for RECONNECT_S, not ended at the grace
    assert not any("ended" in line for line in told), told


def test_a_reconnect_that_hangs_is_still_a_drop(told, monkeypatch):
    """Closed after a whole picture, but the address then takes the connection and never answers: nothing sure
    about the sender, so a drop as before."""
    monkeypatch.setattr(network, "TIMEOUT_S", 1.0)
    monkeypatch.setattr(network, "RECONNECT_S", 3.0)
    frames, _, failure = _run(_PhoneApp("close", "silent"))
    assert isinstance(failure, UserError) and len(frames) == PICTURES, told
    assert "no answer from" in str(failure), failure


def _matroska(pictures: int) -> bytes:
    import av

    written = io.BytesIO()
    with av.open(written, "w", format="matroska") as container:
        video = container.add_stream("mpeg4", rate=25)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        for index in range(pictures):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), index * 3, np.uint8), format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return written.getvalue()


class _FileServer(RawServer):
    """A video file served whole only, with its length, whose server sends two thirds of it and stops."""

    def __init__(self, body: bytes) -> None:
        super().__init__("/clip.mkv")
        self.body = body
        self.accept_each(self._serve)

    def _serve(self, connection: socket.socket, number: int) -> None:
        self.hold(connection)
        connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/x-matroska\r\nContent-Length: %d\r\n\r\n"
                           % len(self.body) + self.body[:len(self.body) * 2 // 3])
        time.sleep(0.3)
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        connection.close()


def test_a_file_cut_short_by_a_close_is_still_a_drop(told, monkeypatch):
    """A file states its end: a close before it (after a whole picture, the port then refused) is no end of the
    sender's, and stays the drop it was, not a finished file (exit 0) with a third missing."""
    monkeypatch.setattr(network, "RECONNECT_S", 3.0)
    server = _FileServer(_matroska(75))
    try:
        frames, _, failure = _read(server.url)
    finally:
        server.close()
    assert 0 < len(frames) < 75
    assert isinstance(failure, UserError) and f"after {len(frames)} frames" in str(failure), (failure, told)
    assert not any("ended" in line for line in told), told


def test_what_a_failed_open_says_of_a_sender_gone():
    """The answers that say the sender is gone, and those that say nothing sure."""
    import av
    import errno
    import urllib.parse

    http = urllib.parse.urlsplit("http://cam:8080/video")
    rtmp = urllib.parse.urlsplit("rtmp://relay/live/key")

    def answer(error: type, code: int = 0, parts=http) -> str | None:
        exc = error(code, "x") if code else error(0, "Server returned 4XX Client Error")
        return network._gone_answer(exc, parts)

    assert answer(av.error.ConnectionRefusedError, errno.ECONNREFUSED) == "cam:8080 then refused the connection"
    assert "no stream at /video" in answer(av.error.HTTPNotFoundError)
    assert "no stream at /video" in answer(av.error.HTTPOtherClientError)  # 410 Gone among them
    assert "no stream at /video" in answer(av.error.HTTPServerError)  # 503
    assert "no stream at /live/key" in answer(av.error.PermissionError, errno.EPERM, rtmp)  # Play.StreamNotFound
    assert answer(av.error.PermissionError, errno.EPERM) is None  # not RTMP's status: nothing sure
    for error, code in ((av.error.TimeoutError, errno.ETIMEDOUT), (av.error.ConnectionResetError, errno.ECONNRESET),
                        (av.error.OSError, errno.EHOSTUNREACH), (av.error.OSError, errno.EIO)):
        assert answer(error, code) is None
    assert answer(av.error.HTTPUnauthorizedError) is None and answer(av.error.HTTPForbiddenError) is None


def test_an_rtsp_relay_whose_publisher_stopped_ends_the_run(told):
    """An RTSP server relaying a publisher (MediaMTX and the like): the publisher stops, the server closes the
    session, and DESCRIBE then answers 404. A camera's close stays a drop where it comes back (test_network_source)."""
    from test_network_source import _rtp_packets, _RtspCamera

    class Relay(_RtspCamera):
        def _answer(self, method: str, cseq: str) -> str:
            if method == "DESCRIBE" and any(r.startswith("PLAY") for r in self.requests):
                return f"RTSP/1.0 404 Not Found\r\nCSeq: {cseq}\r\n\r\n"
            return super()._answer(method, cseq)

    relay = Relay("stream", _rtp_packets(15))
    try:
        frames, after_s, failure = _read(f"rtsp://127.0.0.1:{relay.port}/live")
    finally:
        relay.close()
    assert failure is None and len(frames) >= 10, (failure, told)
    assert after_s < 5.0, after_s
    assert "ended (its sender stopped)" in told[-1] and told[-1].endswith("(Server returned 404 Not Found)"), told


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program as an RTMP sender")
def test_an_rtmp_sender_that_ends_ends_the_run(told):
    """`ffmpeg -listen 1 -f flv rtmp://...` serving depthcam, then ending: FFmpeg's RTMP client says "Input/output
    error" at the close, and the port then refuses: the run's end, not 10 s of reconnecting and a failure."""
    url = f"rtmp://127.0.0.1:{_free_port()}/live/key"
    sender = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         "testsrc=size=160x120:rate=25:duration=3", "-c:v", "libx264", "-preset", "ultrafast", "-tune",
         "zerolatency", "-g", "25", "-f", "flv", "-listen", "1", url])
    try:
        source = None
        for _ in range(100):  # until it listens (a connection asked before is refused; it takes one only)
            try:
                source = NetworkSource(url)
                break
            except UserError as exc:
                assert "refused the connection" in str(exc), exc
                time.sleep(0.1)
        assert source is not None
        frames, last, failure = _drained(source)
        source.close()
    finally:
        sender.kill()
        sender.wait()
    assert failure is None, failure
    assert len(frames) > 25 and time.monotonic() - last < 5.0
    assert "ended (its sender stopped)" in told[-1] and told[-1].endswith("then refused the connection"), told


def test_a_run_whose_phone_app_stops_exits_0_with_a_playable_recording(tmp_path, shared_models):
    """`depthcam run http://phone/video -o take.mp4`, the app stopped part-way: exit status 0 (a script's
    success), the end's line, every frame written kept; the password nowhere."""
    from media import probe

    stop = threading.Event()
    server = _PhoneApp("close", "refused", until=stop)
    out = tmp_path / "take.mp4"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    address = server.url.replace("http://", f"http://me:{SECRET}@")
    run = subprocess.Popen([sys.executable, "-m", "stream", "run", address, "-o", str(out)], stderr=subprocess.PIPE,
                           text=True, cwd=REPO, env=env)
    lines = []
    try:
        for line in run.stderr:  # the run line: the model has loaded, the frames go through
            lines.append(line)
            if "-> model" in line:
                break
        time.sleep(3.0)  # frames recorded meanwhile
        stop.set()
        lines.extend(run.stderr)
        run.wait(timeout=60)
    finally:
        run.kill()
        server.close()
    result = subprocess.CompletedProcess(run.args, run.returncode, "", "".join(lines))
    assert result.returncode == 0, result.stderr
    assert "ended (its sender stopped) after" in result.stderr and "stopped delivering" not in result.stderr
    assert SECRET not in result.stderr and "Traceback" not in result.stderr
    written = int(result.stderr.split("wrote ")[1].split(" frame")[0])
    assert written > 0 and probe(out)["frames"] == written
