"""Network streams as input, read through the real PyAV (FFmpeg) path from servers on this machine: MPEG-TS and
multipart MJPEG over HTTP (python's http.server), and RTSP from a small camera stand-in here (its handshake, and
H.264 that FFmpeg's own RTP muxer packs, sent interleaved on the TCP connection). No internet."""
import fractions
import http.server
import io
import itertools
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

import stream.network_source as network
from media import make_video, make_with_cover_art, probe
from raw_server import RawServer
from stream.errors import UserError
from stream.frame import Frame
from stream.network_source import NetworkSource, ffmpeg_options, is_network_spec, redact
from stream.pipeline import Pipeline
from stream.sinks import NullSink
from stream.sources import open_source
from stream.synthetic import SyntheticPortrait, SyntheticScene

REPO = Path(__file__).resolve().parents[1]
SECRET = "hunter2"


def _transport_stream(folder: Path) -> bytes:
    """The synthetic portrait, 48 pictures at 24 fps with a sound track, as MPEG-TS (what OBS or ffmpeg send)."""
    import av

    clip = make_video(folder / "clip.mp4", frames=48, fps=24, size=(160, 120))
    with av.open(str(clip)) as source, av.open(str(folder / "clip.ts"), "w", format="mpegts") as target:
        streams = {s.index: target.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                target.mux(packet)
    return (folder / "clip.ts").read_bytes()


class _Server:
    """A local HTTP server thread. /clip.ts: an MPEG-TS file with its Content-Length (it ends cleanly: read as a
    file), paced at its own rate with ?paced; with ?live in chunks of no stated length, as a live relay sends it
    (read live; its last chunk ends it cleanly). /video: multipart MJPEG at `fps`, `per_connection` pictures a connection, after which
    the connection closes (a phone app stopping part-way); connections past `most` get 404, or with `silent` no
    answer at all (a camera that froze). /auth answers 401."""

    def __init__(self, ts: bytes = b"", fps: float = 10, per_connection: int = 1000, most: int = 1000,
                 silent: bool = False) -> None:
        scene = SyntheticPortrait(SyntheticScene(160, 120))
        self.pictures = [scene.render(i)[0] for i in range(10)]
        self.jpegs = [cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
                      for image in self.pictures]
        self.ts, self.fps, self.per_connection, self.most = ts, fps, per_connection, most
        self.silent, self.closing = silent, threading.Event()
        self.connections = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.connections += 1
                try:
                    if self.path.startswith("/clip.ts"):
                        outer.send_ts(self)
                    elif self.path.startswith("/video") and outer.connections <= outer.most:
                        outer.send_mjpeg(self)
                    elif self.path.startswith("/video") and outer.silent:
                        outer.closing.wait(30)  # the connection taken, the request never answered
                    else:
                        self.send_response(401 if self.path.startswith("/auth") else 404)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                except OSError:  # the reader went away
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def send_ts(self, handler) -> None:
        live = "live" in handler.path
        if live:
            handler.protocol_version, handler.close_connection = "HTTP/1.1", True
        handler.send_response(200)
        handler.send_header("Content-Type", "video/mp2t")
        handler.send_header(*(("Transfer-Encoding", "chunked") if live else ("Content-Length", str(len(self.ts)))))
        handler.end_headers()
        chunk, seconds, started = 188 * 16, 48 / 24, time.monotonic()
        for offset in range(0, len(self.ts), chunk):
            if "paced" in handler.path:
                time.sleep(max(0.0, started + offset / len(self.ts) * seconds - time.monotonic()))
            data = self.ts[offset:offset + chunk]
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if live else data)
        if live:
            handler.wfile.write(b"0\r\n\r\n")

    def send_mjpeg(self, handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        handler.end_headers()
        for index in range(self.per_connection):
            jpeg = self.jpegs[index % len(self.jpegs)]
            handler.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                % (len(jpeg), jpeg))
            handler.wfile.flush()
            time.sleep(1 / self.fps)

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def quick(monkeypatch):
    """Short waits, so that the failures and reconnects take a fraction of a second."""
    monkeypatch.setattr(network, "TIMEOUT_S", 1.0)
    monkeypatch.setattr(network, "RECONNECT_S", 1.0)
    monkeypatch.setattr(network, "RETRY_PAUSE_S", 0.1)


def _closed_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


def _first_frames(source, count: int) -> list[Frame]:
    """The first `count` frames of a stream that never ends by itself."""
    return list(itertools.islice(source.frames(), count))


def _frames_served(server: "_Server", url: str, count: int) -> tuple[NetworkSource, list[Frame]]:
    """The first `count` frames of `server`'s stream at `url`, read through a NetworkSource; both closed after."""
    try:
        source = NetworkSource(url)
        frames = _first_frames(source, count)
        source.close()
    finally:
        server.close()
    return source, frames


def test_mjpeg_over_http_is_read_live_with_a_measured_rate(told):
    """A phone as a webcam (IP Webcam, DroidCam): multipart MJPEG, which states no rate (FFmpeg makes up 25 fps and
    numbers the pictures): the rate is measured from their arrivals, and the pictures are the ones served."""
    server = _Server(fps=10)
    try:
        source = open_source(f"{server.base}/video")
        try:
            assert isinstance(source, NetworkSource) and source.live and source.frame_count is None
            assert (source.width, source.height) == (160, 120)
            assert 5 <= source.fps <= 15 and "(measured)" in source.description, source.description  # not 25
            assert "MJPEG" in source.description and source.audio_path is None
            frames = _first_frames(source, 12)
        finally:
            source.close()
    finally:
        server.close()
    assert [f.index for f in frames] == list(range(12))
    assert all(b.capture_ns > a.capture_ns for a, b in zip(frames, frames[1:]))
    for frame in frames:
        served = cv2.imdecode(np.frombuffer(server.jpegs[frame.index % 10], np.uint8), cv2.IMREAD_COLOR)
        assert frame.image.shape == (120, 160, 3) and frame.image.dtype == np.uint8
        assert np.abs(frame.image.astype(int) - served).mean() < 2.0
    assert told == []


def test_mpeg_ts_over_http_ends_cleanly_and_its_sound_is_said_once(tmp_path, told):
    """MPEG-TS with a sound track over HTTP: every picture, in order, at the rate its own clock gives (the short
    analysis states none); the sound is kept (the writer reads it through a connection of its own: this server
    sends a file whole only), no longer said lost; a stream its sender ends is the input's end."""
    server = _Server(ts=_transport_stream(tmp_path))
    try:
        source = open_source(f"{server.base}/clip.ts")
        frames = list(source.frames())
        source.close()
    finally:
        server.close()
    assert source.fps == 24
    assert [f.index for f in frames] == list(range(48))
    first = SyntheticPortrait(SyntheticScene(160, 120)).render(0)[0]
    assert np.abs(frames[0].image.astype(int) - first).mean() < 6.0  # H.264 of the same picture
    assert str(source.audio_path) == f"{server.base}/clip.ts" and not any("not kept" in line for line in told)
    assert told[-1] == f"file {server.base}/clip.ts ended after 48 frames"  # a file: no live stream's wording
    steps = np.diff([f.capture_ns for f in frames])  # none before the one it follows, none after its arrival
    assert np.all(steps >= 0)


def test_a_stream_with_cover_art_is_read_from_its_video_and_a_song_refused(tmp_path, told):
    """An MP4 served over HTTP whose album cover comes first: the cover (one 64x64 picture) was the whole input. A
    song with a cover "played" its cover as one frame. The video stream is read; the song is refused in a line."""
    clip = make_with_cover_art(tmp_path / "clip.mp4", video_frames=10)
    source, frames = _served_frames(clip)
    assert (source.width, source.height) == (64, 48) and len(frames) == 10
    server, url = _serve_ts(make_with_cover_art(tmp_path / "song.mp3"))
    try:
        with pytest.raises(UserError, match="carries no video, only cover art beside its sound"):
            open_source(url)
    finally:
        server.close()


def test_a_stream_that_drops_part_way_is_opened_again_and_goes_on(told, quick):
    """The phone app closes the connection every 6 pictures: each time the stream is opened again, said in one
    line, and the frames go on numbered without a gap."""
    server = _Server(fps=30, per_connection=6)
    _, frames = _frames_served(server, f"http://me:{SECRET}@{server.base[7:]}/video", 20)
    assert [f.index for f in frames] == list(range(20))
    came_back = [line for line in told if "dropped (the connection was closed) and came back" in line]
    assert len(came_back) >= 3 and server.connections >= 4
    assert all(SECRET not in line for line in told)


def test_a_sender_of_one_connection_opened_again_after_the_set_up_is_told_so(quick):
    """A sender that serves one connection (`ffmpeg -f mpjpeg -listen 1`): opened again once the model had loaded
    (its first pictures stale), it answered no more, and the line said "stopped delivering frames after 0"."""
    server = _Server(fps=20, most=1)
    try:
        source = NetworkSource(f"http://{server.base[7:]}/video")
        source.read_at -= network.STALE_S + 1  # as if the model took that long to load
        with pytest.raises(UserError) as caught:
            _first_frames(source, 1)
        source.close()
    finally:
        server.close()
    message = str(caught.value)
    assert "was opened again once the model had loaded" in message and "serves one connection only" in message
    assert "after 0" not in message


def test_a_stream_that_stays_away_ends_the_run_with_one_line_and_a_playable_file(tmp_path, shared_models, quick,
                                                                                  monkeypatch):
    """Through the real pipeline and video writer: the stream drops and its address then answers 404; the run
    ends with one line saying so, and the file holds every frame written, playable. (A clean close answered 404
    for ENDED_GRACE_S is a sender that stopped, an end: tests/test_stream_end26.py. Here the grace outlasts the
    reconnect window, as for a sender whose 404 the window cannot wait out: a drop.)"""
    from stream.app import build
    from stream.config import load_config

    monkeypatch.setattr(network, "ENDED_GRACE_S", 30.0)
    server = _Server(fps=20, per_connection=12, most=2)
    out = tmp_path / "take.mp4"
    try:
        config = load_config("live-cpu", {"output.progress": False})
        built = build(config, f"http://me:{SECRET}@{server.base[7:]}/video", str(out))
        with pytest.raises(UserError) as caught:
            built.pipeline.run()
    finally:
        server.close()
    message = str(caught.value)
    assert "stopped delivering frames after" in message and "has no stream at /video" in message
    assert "the frames before were kept" in message and SECRET not in message
    assert built.pipeline.sink_finalised and built.pipeline.frames_written > 0
    assert probe(out)["frames"] == built.pipeline.frames_written


class _QuitWhileAway(NullSink):
    """A window whose user presses q once the stream has been away a while (a reconnect under way)."""

    def __init__(self, server: _Server) -> None:
        super().__init__()
        self.server = server

    def idle(self) -> None:
        pass

    @property
    def wants_stop(self) -> bool:
        return self.server.connections >= 2  # the first try to open it again reached the server: it hangs there


def test_a_stop_while_the_stream_reconnects_ends_its_thread_and_closes_it(told, quick, monkeypatch):
    """q (Ctrl-C, SIGTERM) while the stream was away: the run ended after the pipeline's 2 s wait, but the capture
    thread, which could not see the stop, went on opening the stream again (RECONNECT_S) behind it, and the
    connection stayed open until the process exited. The stop now interrupts the source: the try in progress is
    cut short and the last, the thread ends and closes the stream, and no failure is said for the stop."""
    monkeypatch.setattr(network, "RECONNECT_S", 120.0)  # the old loop outlives the run by far
    server = _Server(fps=30, per_connection=6, most=1, silent=True)
    try:
        source = NetworkSource(f"{server.base}/video")
        closed = []
        close = source.close
        source.close = lambda: (closed.append(True), close())
        result = Pipeline(source, [_SlowStage()], _QuitWhileAway(server), queue_size=2).run()
        for thread in threading.enumerate():
            if thread.name == "depthcam-capture":
                thread.join(10)  # the try in progress ends at its timeout
        connections = server.connections
    finally:
        server.close()
    assert result.closed_by_user and not result.completed and result.frames_written > 0
    assert result.threads_left == [] and closed == [True] and connections == 2
    assert not any("stopped delivering" in line or "came back" in line for line in told), told


class _SlowStage:
    name, max_batch, max_wait_ms, passes_at_once = "slow", 1, 0.0, False

    def process(self, batch: list[Frame]) -> list[Frame]:
        time.sleep(0.05)
        return batch

    def close(self) -> None:
        pass


def test_the_live_queue_keeps_the_newest_frame_and_counts_the_drops(tmp_path):
    """A stream faster than the stages (the whole clip arrives at once): the oldest frames are dropped and
    counted, none lost without a count, the ones kept in order."""
    from test_pipeline import CollectingSink

    server = _Server(ts=_transport_stream(tmp_path))
    try:
        sink = CollectingSink()
        result = Pipeline(open_source(f"{server.base}/clip.ts?live"), [_SlowStage()], sink, queue_size=1).run()
    finally:
        server.close()
    assert result.completed and result.dropped > 0
    assert result.frames_written + result.dropped == 48
    indices = [frame.index for frame in sink.frames]
    assert indices == sorted(indices) and len(indices) == result.frames_written


def test_an_unreachable_host_fails_at_once_in_one_line_without_the_password(quick):
    port = _closed_port()
    for url in (f"rtsp://admin:{SECRET}@127.0.0.1:{port}/stream1", f"http://admin:{SECRET}@127.0.0.1:{port}/video"):
        with pytest.raises(UserError) as caught:
            open_source(url)
        message = str(caught.value)
        assert f"127.0.0.1:{port} refused the connection" in message and "streaming is on" in message
        assert SECRET not in message and "admin:***@" in message and "\n" not in message
    with socket.socket() as silent:  # a host that takes the connection and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        for scheme in ("http", "rtsp"):
            with pytest.raises(UserError) as caught:
                open_source(f"{scheme}://admin:{SECRET}@127.0.0.1:{silent.getsockname()[1]}/live")
            assert f"no answer from 127.0.0.1:{silent.getsockname()[1]} within 1 s" in str(caught.value)
            assert SECRET not in str(caught.value)


def test_http_refusals_name_the_fix():
    server = _Server()
    try:
        with pytest.raises(UserError) as caught:
            open_source(f"http://admin:{SECRET}@{server.base[7:]}/auth")
        assert "refused the user name or password" in str(caught.value) and SECRET not in str(caught.value)
        with pytest.raises(UserError) as caught:
            open_source(f"{server.base}/cam/mjpeg")
        assert "has no stream at /cam/mjpeg; check the path" in str(caught.value)
    finally:
        server.close()


SDP = ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n"
       "a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:track1\r\n")


class _PacketList(io.RawIOBase):
    """Where FFmpeg's RTP muxer writes: one write a packet."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.packets.append(bytes(data))
        return len(data)


def _rtp_packets(pictures: int, fps: int = 15) -> list[bytes]:
    """The synthetic portrait as H.264 in RTP packets (RTCP's among them), as an IP camera sends them."""
    import av

    written = _PacketList()
    scene = SyntheticPortrait(SyntheticScene(160, 120))
    with av.open(written, "w", format="rtp") as container:
        video = container.add_stream("libx264", rate=fps, options={"g": str(fps), "bf": "0", "tune": "zerolatency"})
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        for index in range(pictures):
            for packet in video.encode(av.VideoFrame.from_ndarray(scene.render(index)[0], format="bgr24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return written.packets


class _RtspCamera:
    """A local RTSP camera on FFmpeg's real client's other end. `describe`: "401", "404", "sdp" (then SETUP is
    refused: 461 Unsupported Transport) or "stream" (SETUP and PLAY answered, then `packets` sent interleaved on the
    connection at 15 pictures a second, after which the camera closes it). Each request's first line and Transport
    header are kept; every connection is served anew (a camera that comes back)."""

    def __init__(self, describe: str, packets: list[bytes] = ()) -> None:
        self.describe, self.packets = describe, packets
        self.requests: list[str] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _answer(self, method: str, cseq: str) -> str:
        ok = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n"
        if method == "OPTIONS":
            return ok + "Public: DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"
        if method == "DESCRIBE" and self.describe in ("401", "404"):
            status = "401 Unauthorized" if self.describe == "401" else "404 Not Found"
            return f'RTSP/1.0 {status}\r\nCSeq: {cseq}\r\nWWW-Authenticate: Basic realm="cam"\r\n\r\n'
        if method == "DESCRIBE":
            return ok + f"Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n{SDP}"
        if method == "SETUP" and self.describe == "stream":
            return ok + "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 1234\r\n\r\n"
        if method in ("PLAY", "TEARDOWN", "GET_PARAMETER") and self.describe == "stream":
            return ok + "Session: 1234\r\n\r\n"
        return f"RTSP/1.0 461 Unsupported Transport\r\nCSeq: {cseq}\r\n\r\n"

    def _serve(self, connection: socket.socket) -> None:
        buffer = b""
        with connection:
            try:
                while data := connection.recv(4096):
                    buffer += data
                    while b"\r\n\r\n" in buffer:
                        head, buffer = buffer.split(b"\r\n\r\n", 1)
                        lines = head.decode().split("\r\n")
                        self.requests.append(" | ".join([lines[0], *(x for x in lines if x.startswith("Transport"))]))
                        cseq = next(x.split(":", 1)[1].strip() for x in lines if x.lower().startswith("cseq"))
                        method = lines[0].split()[0]
                        connection.sendall(self._answer(method, cseq).encode())
                        if method == "PLAY":
                            self._play(connection)
                            return
            except OSError:
                pass

    def _play(self, connection: socket.socket) -> None:
        """RTP on channel 0 and RTCP on 1, each packet behind '$', its channel and length (RFC 2326 10.12)."""
        started, shown = time.monotonic(), 0
        for packet in self.packets:
            channel = 1 if packet[1] in (200, 201) else 0  # RTCP's sender report and its description
            connection.sendall(b"$" + bytes([channel]) + struct.pack(">H", len(packet)) + packet)
            if channel == 0 and packet[1] & 0x80:  # the marker bit: a picture's last packet
                shown += 1
                time.sleep(max(0.0, started + shown / 15 - time.monotonic()))

    def close(self) -> None:
        self.listener.close()


def test_rtsp_over_tcp_delivers_pictures_and_a_camera_that_closes_is_opened_again(told, quick):
    """An IP camera's stream through FFmpeg's real RTSP client, RTP interleaved on the TCP connection: the pictures
    arrive; the camera closing the connection is a drop (a camera never ends its stream), and it comes back."""
    camera = _RtspCamera("stream", _rtp_packets(10))
    try:
        source = open_source(f"rtsp://admin:{SECRET}@127.0.0.1:{camera.port}/live")
        assert (source.width, source.height) == (160, 120) and "H264" in source.description
        frames = _first_frames(source, 16)
        source.close()
    finally:
        camera.close()
    assert [f.index for f in frames] == list(range(16))
    first = SyntheticPortrait(SyntheticScene(160, 120)).render(0)[0]
    assert np.abs(frames[0].image.astype(int) - first).mean() < 6.0
    assert any("dropped (the camera closed the connection) and came back" in line for line in told), told
    assert all(SECRET not in line for line in told)
    assert sum(r.startswith("PLAY") for r in camera.requests) == 2


def test_rtsp_asks_for_tcp_and_its_refusals_name_the_fix(quick):
    """SETUP asks for RTP over TCP (interleaved) by default and over UDP with #udp; a camera that refuses the
    transport, the password or the path says the fix."""
    camera = _RtspCamera("sdp")
    with pytest.raises(UserError) as caught:
        open_source(f"rtsp://admin:{SECRET}@127.0.0.1:{camera.port}/live")
    assert any(r.startswith("SETUP") and "RTP/AVP/TCP" in r for r in camera.requests), camera.requests
    assert "does not stream RTSP over TCP; add #udp to the address" in str(caught.value)
    assert SECRET not in str(caught.value)
    camera.requests.clear()
    with pytest.raises(UserError) as caught:
        open_source(f"rtsp://127.0.0.1:{camera.port}/live#udp")
    setup = next(r for r in camera.requests if r.startswith("SETUP"))
    assert "RTP/AVP/TCP" not in setup and "client_port" in setup, setup
    assert "does not stream RTSP over UDP; leave #udp out" in str(caught.value)
    camera.close()
    camera = _RtspCamera("401")
    with pytest.raises(UserError) as caught:
        open_source(f"rtsp://admin:{SECRET}@127.0.0.1:{camera.port}/live")
    assert f"127.0.0.1:{camera.port} refused the user name or password" in str(caught.value)
    assert SECRET not in str(caught.value)
    camera.close()
    camera = _RtspCamera("404")
    with pytest.raises(UserError) as caught:
        open_source(f"rtsp://127.0.0.1:{camera.port}/Streaming/Channels/101")
    assert "has no stream at /Streaming/Channels/101" in str(caught.value)
    camera.close()


def test_ffmpeg_options_for_each_kind_of_stream(monkeypatch):
    monkeypatch.setattr(network, "TIMEOUT_S", 5.0)
    rtsp = ffmpeg_options("rtsp://cam/stream1")
    assert rtsp["rtsp_transport"] == "tcp" and rtsp["timeout"] == "5000000"  # microseconds
    assert ffmpeg_options("rtsp://cam/stream1", "udp")["rtsp_transport"] == "udp"
    assert ffmpeg_options("http://phone:8080/video")["timeout"] == "5000000"
    assert "rtsp_transport" not in ffmpeg_options("http://phone:8080/video")
    assert ffmpeg_options("udp://@:1234")["overrun_nonfatal"] == "1"
    rtmp = ffmpeg_options("rtmp://server/live/key")
    assert "timeout" not in rtmp and rtmp["rw_timeout"] == "5000000"  # rtmp's `timeout` would make it listen
    for options in (rtsp, rtmp):  # a short analysis; nobuffer would throw the first keyframe away
        assert options["analyzeduration"] == "1000000" and options["fpsprobesize"] == "0"
        assert "fflags" not in options


def test_the_password_is_kept_out_of_what_is_shown():
    assert redact(f"rtsp://admin:{SECRET}@192.168.1.20:554/Streaming/Channels/101") == \
        "rtsp://admin:***@192.168.1.20:554/Streaming/Channels/101"
    assert redact("rtsp://admin:p@ss:w/rd@cam/live") == "rtsp://admin:***@cam/live"  # unencoded '@' and '/'
    assert redact(f"http://cam/videostream.cgi?user=admin&pwd={SECRET}&rate=0") == \
        "http://cam/videostream.cgi?user=admin&pwd=***&rate=0"
    assert redact(f"https://host/live.m3u8?token={SECRET}") == "https://host/live.m3u8?token=***"
    assert redact("udp://@:1234") == "udp://@:1234" and redact("http://phone:8080/video") == "http://phone:8080/video"
    with pytest.raises(UserError) as caught:
        open_source(f"ftp://admin:{SECRET}@host/clip.ts")
    assert "reads no ftp:// address" in str(caught.value) and SECRET not in str(caught.value)
    with pytest.raises(UserError) as caught:
        open_source(f"http://admin:{SECRET}@host/video#tcp")
    assert "unknown option #tcp" in str(caught.value) and SECRET not in str(caught.value)


def test_a_network_stream_gets_the_camera_defaults():
    from stream.app import default_output
    from stream.bench import paced_by_bench
    from stream.cli import _into_folder, build_parser, run_config

    def config(*argv):
        args = build_parser().parse_args(["run", *argv])
        return run_config(args.inputs[0], args)

    for url in ("rtsp://cam/stream1", "http://phone:8080/video", "udp://@:1234", "https://host/live.m3u8"):
        assert is_network_spec(url) and not paced_by_bench(url)  # it paces itself, as a camera
        live, chosen = config(url)
        assert chosen and live.device == "auto" and live.refine.mode == "live" and live.inference.mode == "async"
    assert config("rtsp://cam/stream1", "--config", "default")[0].inference.mode == "sync"
    assert not is_network_spec("clip.mp4") and not is_network_spec("camera:0")

    class Live:
        live = True

    assert default_output("rtsp://cam/stream1", Live()) == "window"
    with pytest.raises(UserError, match="give the recording a file name"):
        _into_folder("rtsp://cam/stream1", "-o", str(REPO))
    assert _into_folder("rtsp://cam/stream1", "-o", "take1.mp4") == "take1.mp4"


def _depthcam(*args, timeout=180):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "stream", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


def test_several_inputs_refuse_a_stream_without_its_password():
    result = _depthcam("run", "a.mp4", f"rtsp://admin:{SECRET}@cam/live", "-o", "null")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "rtsp://admin:***@cam/live never ends" in result.stderr and SECRET not in result.stderr


def test_run_records_a_stream_with_the_live_settings(tmp_path, shared_models):
    """`depthcam run URL -o take.mp4`: the live preset's settings, the stream's own line, the sound said once, the
    end of the stream said, a playable file; the password nowhere."""
    server = _Server(ts=_transport_stream(tmp_path))
    out = tmp_path / "take.mp4"
    try:
        result = _depthcam("run", f"http://me:{SECRET}@{server.base[7:]}/clip.ts?paced&live", "-o", str(out))
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    assert "network stream input: using the live-cpu preset's settings" in result.stderr
    assert f"network stream http://me:***@{server.base[7:]}/clip.ts?paced&live (H264) 160x120" in result.stderr
    assert result.stderr.count("has sound, which is not kept") == 1
    assert "ended (its sender closed it)" in result.stderr and SECRET not in result.stderr
    written = int(result.stderr.split("wrote ")[1].split(" frame")[0])
    assert written > 0 and probe(out)["frames"] == written


def test_the_stream_clock_keeps_its_spacing_and_never_runs_ahead_of_arrival():
    from stream.network_source import _Clock

    clock, s = _Clock(), 1_000_000_000
    assert clock.capture_ns(0.00, 1 * s) == 1 * s
    assert clock.capture_ns(0.04, int(1.10 * s)) == int(1.04 * s)  # a late burst keeps the camera's spacing
    assert clock.capture_ns(0.08, int(1.1001 * s)) == int(1.08 * s)
    assert clock.capture_ns(0.12, int(1.11 * s)) == int(1.11 * s)  # earlier than the clock said: its arrival
    assert clock.capture_ns(0.16, int(1.20 * s)) == int(1.15 * s)  # laid on that earliest arrival from then on
    assert clock.capture_ns(0.00, 5 * s) == 5 * s  # the clock went back (a reconnect): laid anew
    assert clock.capture_ns(None, 7 * s) == 7 * s  # no clock of its own: the arrival


# -- each picture treated as a file's: deinterlaced, tone-mapped, upright, square ----------------------------------


def _serve_ts(path: Path):
    """A local server whose /clip.ts is the MPEG-TS at `path`, and its address."""
    server = _Server(ts=path.read_bytes())
    return server, f"{server.base}/clip.ts"


def _served_frames(path: Path) -> tuple[NetworkSource, list[Frame]]:
    """The file at `path` served locally and read whole as a network stream: the (closed) source and its frames."""
    server, url = _serve_ts(path)
    try:
        source = open_source(url)
        frames = list(source.frames())
        source.close()
    finally:
        server.close()
    return source, frames


def _read_counting(source: NetworkSource) -> tuple[list[Frame], list[int]]:
    """Every frame, and for each how many pictures had been decoded when it was given (the latency contract)."""
    decoded = [len(source._head)]
    packets = source.packets

    def counted():
        for found in packets:
            decoded[0] += 1
            yield found

    source.packets = counted()
    frames, pulled = [], []
    for frame in source.frames():
        frames.append(frame)
        pulled.append(decoded[0])
    return frames, pulled


@pytest.mark.parametrize("codec, tff", [("libx264", True), ("mpeg2video", False)])  # IPTV H.264, DVB MPEG-2
def test_an_interlaced_stream_is_deinterlaced_holding_back_no_more_than_bwdif_needs(tmp_path, told, codec, tff):
    """A DVB/IPTV multicast is 1080i/576i: its pictures were given as decoded, comb teeth on every moving edge.
    They are deinterlaced now as a file's are, each given as soon as the next has entered bwdif (its one-picture
    look-ahead), with the capture time it arrived with; the last one at the stream's end."""
    from test_interlaced import assert_deinterlaced, make_interlaced, plain

    path = make_interlaced(tmp_path / "multicast.ts", codec, tff)
    stored, _, flags = plain(path)
    assert all(flags)
    server, url = _serve_ts(path)
    try:
        source = open_source(url)
        head = len(source._head)
        assert "deinterlaced (bwdif)" in source.description, source.description
        frames, pulled = _read_counting(source)
        source.close()
    finally:
        server.close()
    assert [f.index for f in frames] == list(range(10))
    assert_deinterlaced([f.image for f in frames], stored)
    assert pulled == [min(max(head, i + 2), 10) for i in range(10)], (head, pulled)
    assert all(b.capture_ns >= a.capture_ns for a, b in zip(frames, frames[1:]))
    assert told[-1] == f"file {url} ended after 10 frames"  # a .ts of stated length: a file


def test_a_progressive_stream_is_untouched_and_not_held_back(tmp_path, told):
    from test_interlaced import make_interlaced, plain

    path = make_interlaced(tmp_path / "progressive.ts", fields=["prog"] * 6)
    stored, _, _ = plain(path)
    server, url = _serve_ts(path)
    try:
        source = open_source(url)
        head = len(source._head)
        frames, pulled = _read_counting(source)
        source.close()
    finally:
        server.close()
    assert "interlaced" not in source.description
    assert all(np.array_equal(f.image, raw) for f, raw in zip(frames, stored)) and len(frames) == 6
    assert pulled == [max(head, i + 1) for i in range(6)]


def test_an_interlaced_stream_with_deinterlace_off_gives_the_pictures_as_decoded(tmp_path, told):
    """`--deinterlace off` (keep_fields, as a file's): a 25p camera in a 50i stream, its pictures as decoded."""
    from test_interlaced import make_interlaced, plain

    path = make_interlaced(tmp_path / "multicast.ts", frames=4)
    stored, _, _ = plain(path)
    server, url = _serve_ts(path)
    try:
        source = open_source(url)
        source.keep_fields()
        assert "interlaced" not in source.description
        frames = list(source.frames())
        source.close()
    finally:
        server.close()
    assert len(frames) == 4 and all(np.array_equal(f.image, raw) for f, raw in zip(frames, stored))


def test_deinterlace_off_reaches_a_network_stream_through_the_run(shared_models, tmp_path, told):
    """`--deinterlace off` (config `deinterlace: off`) was applied to video files only: a stream was deinterlaced."""
    from stream.app import build
    from stream.config import load_config
    from test_interlaced import make_interlaced

    server, url = _serve_ts(make_interlaced(tmp_path / "multicast.ts", frames=4))
    try:
        # the file preset: live-cpu's stages would start threads (async depth, the face finder) that a run ends
        built = build(load_config("default", {"deinterlace": "off", "output.progress": False}), url, "null")
        try:
            assert "interlaced" not in built.source.description
        finally:
            built.focus.close()
            built.source.close()
    finally:
        server.close()


def test_a_stream_that_turns_interlaced_is_deinterlaced_from_there_and_said(tmp_path, told):
    from test_interlaced import assert_deinterlaced, make_interlaced, plain

    path = tmp_path / "joined.ts"
    path.write_bytes(make_interlaced(tmp_path / "a.ts", fields=["prog"] * 4).read_bytes()
                     + make_interlaced(tmp_path / "b.ts", frames=6).read_bytes())
    stored, _, _ = plain(path)
    source, frames = _served_frames(path)
    assert "interlaced" not in source.description and len(frames) == 10
    assert any("turns interlaced at frame 5" in line for line in told), told
    assert all(np.array_equal(f.image, raw) for f, raw in zip(frames[:4], stored[:4]))
    assert_deinterlaced([f.image for f in frames[4:]], stored[4:])


def _hdr_stream(path: Path, codec: str, trc: int, frames: int = 6) -> Path:
    """The test picture as 10-bit BT.2020 video tagged with `trc` (16 PQ, 18 HLG), as MPEG-TS (an HLS segment)."""
    import av

    from test_interlaced import SIZE, picture

    options = {"x265-params": "log-level=none"} if codec == "libx265" else {}
    with av.open(str(path), "w", format="mpegts") as container:
        video = container.add_stream(codec, rate=25, options=options)
        video.width, video.height, video.pix_fmt = *SIZE, "yuv420p10le"
        tags = (trc, 9, 9)  # transfer, BT.2020 primaries and matrix
        video.codec_context.color_trc, video.codec_context.color_primaries, video.codec_context.colorspace = tags
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(picture(2 * i), format="bgr24").reformat(
                format="yuv420p10le", dst_colorspace="bt2020")
            frame.color_trc, frame.color_primaries, frame.colorspace = tags
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


@pytest.mark.parametrize("codec, trc, name", [("libx264", 18, "HLG"), ("libx265", 16, "PQ/HDR10")])
def test_an_hdr_stream_is_tone_mapped_to_sdr(tmp_path, told, codec, trc, name):
    """A phone app's or an HDR camera's stream in HLG or PQ: it was decoded as SDR, dim and pale. Its pictures are
    tone-mapped now as a file's are, and the run line says so."""
    import av

    from stream.hdr import ColourConverter, colour_signal

    path = _hdr_stream(tmp_path / "hdr.ts", codec, trc)
    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
    converter = ColourConverter(colour_signal(decoded[0]))
    source, frames = _served_frames(path)
    assert f"HDR ({name}" in source.description and "tone-mapped to SDR" in source.description
    assert len(frames) == len(decoded) == 6
    for frame, picture in zip(frames, decoded):
        mapped, plainly = converter.convert(picture), picture.to_ndarray(format="bgr24")
        assert np.abs(frame.image.astype(int) - mapped).mean() < 0.5
        assert np.abs(plainly.astype(int) - mapped).mean() > 5  # what the stream was given as before


def _remuxed_to_ts(source_path: Path, target: Path, bsf: str | None = None) -> Path:
    """An MP4's H.264 as MPEG-TS, through the bitstream filters `bsf` (a display orientation SEI put in)."""
    import av
    import av.bitstream

    with av.open(str(source_path)) as source, av.open(str(target), "w", format="mpegts") as container:
        video = source.streams.video[0]
        context = av.bitstream.BitStreamFilterContext(bsf, video) if bsf else None
        out = container.add_stream_from_template(video)
        for packet in source.demux(video):
            for done in (context.filter(packet if packet.size else None) if context else
                         [packet] if packet.dts is not None else []):
                done.stream = out
                container.mux(done)
    return target


@pytest.mark.parametrize("kind", ["turned", "turned and mirrored", "anamorphic"])
def test_a_stream_is_shown_upright_and_square_as_its_display_says(tmp_path, told, kind):
    """A phone's portrait stream: landscape pictures with a display orientation SEI (which MPEG-TS and RTSP carry
    in the H.264 itself), mirrored too from a front camera; 576i's non-square pixels. The pictures were given as
    stored: on their side, squeezed. They are turned, mirrored back and made square now, as a file's are."""
    import av
    from fractions import Fraction

    from stream.sources import display_orientation

    turned = kind != "anamorphic"
    mirror = kind == "turned and mirrored"
    stored = make_video(tmp_path / "phone.mp4", frames=6, size=(160, 120), audio_codec=None,
                        rotation=90 if turned else 0, mirror=mirror, sar=None if turned else Fraction(4, 3))
    # rotate is the SEI's own anticlockwise angle; with its flip FFmpeg reads it as the other way round
    sei = f"rotate={270 if mirror else 90}" + (":flip=horizontal" if mirror else "")
    path = _remuxed_to_ts(stored, tmp_path / "phone.ts",
                          f"h264_mp4toannexb,h264_metadata=display_orientation=insert:{sei}" if turned else None)
    with av.open(str(path)) as container:
        first = next(container.decode(video=0))
        assert display_orientation(first) == ((90, mirror) if turned else (0, False))  # what the stream says
    source, frames = _served_frames(path)
    size = (160, 120) if turned else (213, 120)
    assert (source.width, source.height) == size and len(frames) == 6
    assert ("turned upright (90° display rotation)" in source.description) == turned, source.description
    assert ("mirrored back" in source.description) == mirror
    assert ("scaled to square pixels from 160x120 (pixel aspect 4/3)" in source.description) != turned
    scene = SyntheticPortrait(SyntheticScene(*size))
    for frame in frames:
        assert np.abs(frame.image.astype(int) - scene.render(frame.index)[0]).mean() < 6.0, frame.index


def test_an_interlaced_multicast_over_udp_is_deinterlaced(tmp_path, told):
    """DVB/IPTV as it comes: MPEG-TS in 7-packet UDP datagrams, joined part-way (decoded from the next keyframe),
    sent again and again as a channel is. Every picture given is deinterlaced."""
    from test_interlaced import comb, make_interlaced, plain

    path = make_interlaced(tmp_path / "channel.ts", frames=10)
    stored, _, _ = plain(path)
    data, stop = path.read_bytes(), threading.Event()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            while not stop.is_set():
                for offset in range(0, len(data), 7 * 188):
                    sender.sendto(data[offset:offset + 7 * 188], ("127.0.0.1", port))
                    time.sleep(0.4 / (len(data) / (7 * 188)))  # the 10 pictures in 0.4 s: 25 fps
    threading.Thread(target=send, daemon=True).start()
    try:
        source = open_source(f"udp://@:{port}")
        assert "deinterlaced (bwdif)" in source.description, source.description
        frames = _first_frames(source, 12)
        source.close()
    finally:
        stop.set()
    assert [f.index for f in frames] == list(range(12))
    teeth = min(comb(raw) for raw in stored)
    assert all(comb(f.image) < 0.25 * teeth for f in frames), [comb(f.image) for f in frames]


def test_a_rate_out_of_range_or_from_a_burst_is_not_measured():
    """Arrivals as fast as pictures decode (a burst, all that came in the window) gave 240 fps, the clamp, as
    "measured"; the pictures read without a wait, and the first (it came with the connection), tell no rate."""
    assert network._rate_from([0.0, 0.001, 0.002]) is None  # 1000 fps: no clamp passes for a measurement
    assert network._rate_from([5.0]) is None
    assert network._rate_from([0.0, 0.1, 0.2]) == 10
    assert network._steady_from([False, False, False, True, True]) == 3  # a burst of three, then waits
    assert network._steady_from([False, True, True]) == 1  # the first picture's gap is left out
    source = NetworkSource.__new__(NetworkSource)  # where the stream's own clock times the pictures, every one counts
    source.timed, source._waited = True, [False, False, False, True, True]
    head = [(types.SimpleNamespace(time=index / 10), index * 1_000_000) for index in range(5)]
    assert source._steady_start(head) == 0
    source.timed = False  # the same arrivals without a clock: the burst is left out
    assert source._steady_start(head) == 3


# -- the start-up rate of a stream that states none ----------------------------------------------------------------


def _unrated_ts_pictures(count: int, fps: int) -> list[bytes]:
    """H.264 in MPEG-TS at `fps` by its clock, whose stream states no rate (no codec rate given: FFmpeg finds none
    with LOW_DELAY's analysis, as of many encoders' TS), cut into one piece a picture (from each video PES start),
    the tables going with the first."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="mpegts") as target:
        video = target.add_stream("h264")
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        video.codec_context.time_base = video.time_base = fractions.Fraction(1, 90000)
        video.codec_context.options = {"tune": "zerolatency"}  # a picture out per picture in, as a live encoder
        scene = SyntheticPortrait(SyntheticScene(160, 120))
        for index in range(count):
            picture = av.VideoFrame.from_ndarray(scene.render(index)[0], format="bgr24")
            picture.pts, picture.time_base = index * 90000 // fps, video.time_base
            target.mux(video.encode(picture))
        target.mux(video.encode())
    data = out.getvalue()
    packets = [data[offset:offset + 188] for offset in range(0, len(data), 188)]
    video_pid = 0x100  # FFmpeg's mpegts muxer's first stream
    pieces: list[bytes] = [b""]
    for packet in packets:
        starts = packet[1] & 0x40 and ((packet[1] & 0x1F) << 8 | packet[2]) == video_pid
        if starts and any(((p[1] & 0x1F) << 8 | p[2]) == video_pid for p in _ts_packets(pieces[-1])):
            pieces.append(b"")
        pieces[-1] += packet
    return pieces


def _ts_packets(data: bytes) -> list[bytes]:
    return [data[offset:offset + 188] for offset in range(0, len(data), 188)]


class _BurstingTs(RawServer):
    """MPEG-TS over HTTP on a raw socket, as a relay or an encoder with a buffer sends it: `burst` pictures at once
    on connect, then one every 1/`fps` s, held open at the end until closed."""

    def __init__(self, pieces: list[bytes], burst: int, fps: float) -> None:
        super().__init__("/live.ts")
        self.pieces, self.burst, self.fps, self.closing = pieces, burst, fps, threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            connection = self.hold(self.listener.accept()[0])
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\n"
                               + b"".join(self.pieces[:self.burst]))
            for piece in self.pieces[self.burst:]:
                if self.closing.wait(1 / self.fps):
                    return
                connection.sendall(piece)
            self.closing.wait(30)
        except OSError:  # the reader went away, or closed
            pass

    def close(self) -> None:
        self.closing.set()
        super().close()


def test_a_timed_stream_that_bursts_on_connect_is_measured_over_its_first_pictures(told):
    """An MPEG-TS that states no rate, from a relay that sends twelve pictures at once on connect, then 10 fps. Its
    own clock times the pictures, a burst or not (_measured_rate), but the measurement went on until eight pictures
    had arrived after a wait: twenty pictures, 0.8 s more of start-up (the whole window, 1 s, for a slower stream).
    It now ends at RATE_PICTURES pictures, the burst's, and their clock says 10 fps."""
    server = _BurstingTs(_unrated_ts_pictures(40, fps=10), burst=12, fps=10)
    try:
        source = NetworkSource(server.url)
        try:
            assert source._stated_rate() is None  # the case in question: a rate to measure
            assert len(source._head) == network.RATE_PICTURES, len(source._head)
            assert source.fps == 10 and "(measured)" in source.description, source.description
        finally:
            source.close()
    finally:
        server.close()


def test_pictures_read_without_a_wait_for_half_a_second_are_no_burst():
    """A run of reads that never waited, from the first picture, is a buffer's burst only while short: one that
    lasts BURST_MOST_S came at the decoder's pace (every picture already there when it was done), and tells the
    rate from the second picture; one that ends with a wait before then is left out, as before."""
    ms = 1_000_000
    steady = [0, 18 * ms, 36 * ms, 54 * ms]
    assert network._steady_from([False] * 30, [index * 18 * ms for index in range(30)]) == 1  # 0.52 s of them
    assert network._steady_from([False] * 4, steady) == 4  # 54 ms: what a burst might be (nothing to measure)
    assert network._steady_from([False, False, False, True, True], [0, ms, 2 * ms, 70 * ms, 137 * ms]) == 3
    assert network._steady_from([False, False, False, True, True]) == 3  # no arrivals given: the waits alone


NO_NUMBER_PORT = ("depthcam: error: the network address given has no port that is a number after its host; a user "
                  "name or password with / ? # or @ in it must be written percent-encoded there (%2F %3F %23 %40)")


@pytest.mark.parametrize("address, said", [
    ("udp://127.0.0.1:70000", "depthcam: error: udp://127.0.0.1:70000: 70000 is no port (a number from 1 to 65535); "
                              "check the address"),
    (f"rtsp://admin:{SECRET}@cam:554x/live", NO_NUMBER_PORT),
    (f"rtsp://admin:{SECRET[:3]}/{SECRET[3:]}@cam/live", NO_NUMBER_PORT),  # a '/' in the password: no part of it said
    (f"rtsp://admin:{SECRET[:3]}#{SECRET[3:]}@cam/live", NO_NUMBER_PORT),
])
def test_an_address_whose_port_is_no_port_is_one_line_before_anything_opens(address, said):
    """udp://host:70000 ended in "error: ValueError: Port out of range 0-65535" (exit 1); rtsp://host:70000 tried to
    connect and said FFmpeg's "Invalid argument". A password with / or # in it, not percent-encoded, looks like a
    port: no part of it is repeated."""
    result = _depthcam("run", address, "-o", "null")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert SECRET[:3] not in result.stderr and SECRET[3:] not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == said


def test_a_part_of_a_stream_is_refused_before_it_is_opened():
    """`run udp://... --duration 5` waited 5 s for a sender and then named the silence, not --duration; with a sender
    it connected first (a server of one client at a time lost its connection to it)."""
    result = _depthcam("run", "udp://127.0.0.1:5999", "-o", "x.mp4", "--duration", "5")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == ("depthcam: error: --start and --duration take a part of a video "
                                                      "file; udp://127.0.0.1:5999 is not one")
    assert "nothing arrived" not in result.stderr  # refused before listening for a sender
