"""Network inputs whose end is known, and streams that stop: a video file served over HTTP and a VOD HLS playlist are
read as files (every frame, in order, timed by their own clock), where read live the live queue dropped nearly every
frame; the pictures held back when a stream stalls keep its clock; a web page sent without a length is told as a web
page. Real local servers through the real PyAV (FFmpeg) path; time-outs shortened through the module's constants."""
import functools
import http.server
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import stream.network_source as network
from media import make_video
from raw_server import RawServer
from stream.errors import UserError
from stream.network_source import NetworkSource
from stream.pipeline import Pipeline
from stream.sources import open_source
from test_network_blocking import _LiveHls
from test_network_source import _Server, _SlowStage, _transport_stream
from test_pipeline import CollectingSink


def _folder_server(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """python's http.server on `folder` (each file with its Content-Length), and its address."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def _run_slowly(url: str) -> tuple[object, list, object]:
    """`url` through a pipeline whose stage is slower than the network (queues of one): the result, the frames
    written, the source."""
    source = open_source(url)
    sink = CollectingSink()
    result = Pipeline(source, [_SlowStage()], sink, queue_size=1).run()
    return result, sink.frames, source


# -- a file over HTTP, a VOD playlist: read as files -------------------------------------------------------------


@pytest.mark.parametrize("name", ["clip.mp4", "clip.ts"])
def test_a_video_file_served_over_http_is_read_as_a_file_every_frame_in_order(tmp_path, told, name):
    """A file with its Content-Length came in as fast as the network gave it and the live queue dropped all but a
    few frames (2 of 90 written, exit 0). It is a file run now: every frame, in order, timed by its own clock."""
    folder = tmp_path / "www"
    folder.mkdir()
    clip = make_video(tmp_path / "clip.mp4", frames=48, fps=24)
    (folder / name).write_bytes(clip.read_bytes() if name.endswith(".mp4") else _transport_stream(tmp_path))
    httpd, base = _folder_server(folder)
    try:
        result, frames, source = _run_slowly(f"{base}/{name}")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert not source.live and source.description.endswith(", read as a file (its length is stated)")
    assert result.completed and result.dropped == 0 and result.frames_written == 48
    assert [f.index for f in frames] == list(range(48))
    assert np.allclose([f.pts_seconds for f in frames], np.arange(48) / 24, atol=1e-3)  # its clock, not arrivals
    # its sound kept: the writer reads it through a connection of its own (this server sends files whole only)
    assert str(source.audio_path) == f"{base}/{name}" and not any("not kept" in line for line in told)


def test_a_vod_hls_playlist_is_read_as_a_file_and_a_live_one_stays_live(tmp_path, told, monkeypatch):
    """A playlist with its #EXT-X-ENDLIST (a recording, a VOD): every frame, as a file's. The same segments in a
    live playlist (no end stated) stay a live stream."""
    monkeypatch.setattr(network, "TIMEOUT_S", 0.5)
    monkeypatch.setattr(network, "HLS_TIMEOUT_S", 3.0, raising=False)
    live = _LiveHls(tmp_path, seconds=1.0, segments=4)  # its folder's all.m3u8 is the VOD playlist of them all
    try:
        result, frames, source = _run_slowly(live.url.replace("live.m3u8", "all.m3u8"))
        streaming = NetworkSource(live.url)
        streaming.close()
    finally:
        live.close()
    assert not source.live and "its playlist states its end" in source.description
    assert result.completed and result.dropped == 0 and [f.index for f in frames] == list(range(40))
    assert source.frame_count == 40 and source.progress_seconds == pytest.approx(4.0, abs=0.05)
    assert streaming.live and streaming.frame_count is None and "read as a file" not in streaming.description


def test_a_stream_of_no_stated_length_stays_live(tmp_path, told):
    """MPEG-TS relayed in chunks (no Content-Length) is a live stream: the live queue drops what the stages cannot
    take, as before."""
    server = _Server(ts=_transport_stream(tmp_path))
    try:
        result, frames, source = _run_slowly(f"{server.base}/clip.ts?live")
    finally:
        server.close()
    assert source.live and result.dropped > 0 and result.frames_written + result.dropped == 48


class _CutFile(RawServer):
    """A file with its Content-Length whose first connection closes half-way (the network dropped); the next ones
    serve it whole."""

    def __init__(self, body: bytes) -> None:
        super().__init__("/clip.ts")
        self.body = body
        self.accept_each(self._serve)

    def _serve(self, connection: socket.socket, number: int) -> None:
        with connection:
            connection.recv(65536)
            sent = self.body if number > 1 else self.body[:len(self.body) // 2]
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: %d\r\n\r\n%s"
                               % (len(self.body), sent))


def test_a_file_that_drops_part_way_goes_on_past_the_frames_given(tmp_path, told, monkeypatch):
    """Opened again after a drop, a file is read from its start: the pictures given before are not given again."""
    monkeypatch.setattr(network, "TIMEOUT_S", 1.0)
    monkeypatch.setattr(network, "RETRY_PAUSE_S", 0.1)
    server = _CutFile(_transport_stream(tmp_path))
    try:
        source = open_source(server.url)
        frames = list(source.frames())
        source.close()
    finally:
        server.close()
    assert not source.live and server.connections >= 2
    assert any(": its connection dropped" in line and "read again from its start" in line for line in told), told
    seconds = [f.pts_seconds for f in frames]
    assert len(frames) == 48 and np.allclose(seconds, np.arange(48) / 24, atol=1e-3)


# -- a stream that stalls --------------------------------------------------------------------------------------


class _StallingRelay(RawServer):
    """MPEG-TS at its own pace (48 pictures at 24 fps, B-frames held back by the decoder) on one connection, no
    length stated, which then goes silent (the sender stopped); connections after it are refused with a 404."""

    def __init__(self, body: bytes) -> None:
        super().__init__("/live.ts")
        self.body = body
        self.accept_each(self._serve)

    def _serve(self, connection: socket.socket, number: int) -> None:
        self.hold(connection)
        if number > 1:
            connection.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return
        connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\n")
        chunk, started = 188 * 7, time.monotonic()
        for offset in range(0, len(self.body), chunk):
            time.sleep(max(0.0, started + offset / len(self.body) * 2.0 - time.monotonic()))
            connection.sendall(self.body[offset:offset + chunk])
        self.await_hang_up(connection)


def test_the_pictures_a_stall_lets_out_keep_the_stream_s_clock(tmp_path, told, monkeypatch):
    """The pictures held back (MPEG-TS's last packet, the decoder's B-frames) came out only when the read timed out,
    stamped with that late arrival: the recording froze for the time-out before its last frames (a 5 s gap; 3 s sent
    made a 7.6 s file), and the decoder's were lost. They keep the stream's clock now, and none is lost."""
    monkeypatch.setattr(network, "TIMEOUT_S", 1.0)
    monkeypatch.setattr(network, "JUMP_S", 0.3)  # a 1 s time-out lays the clock anew, as 5 s does past 1 s
    monkeypatch.setattr(network, "RECONNECT_S", 0.5)
    monkeypatch.setattr(network, "RETRY_PAUSE_S", 0.1)
    server = _StallingRelay(_transport_stream(tmp_path))
    frames = []
    try:
        source = NetworkSource(server.url)
        with pytest.raises(UserError, match="stopped delivering frames after"):
            for frame in source.frames():
                frames.append(frame)
        source.close()
    finally:
        server.close()
    steps = np.diff([f.capture_ns for f in frames]) / 1e9
    assert steps.min() >= 0 and steps.max() < 0.2, steps[-6:]
    assert source.live and len(frames) == 48  # the decoder's two B-frames too


# -- a web page without a length ---------------------------------------------------------------------------------


class _Page(RawServer):
    """An embedded web server's answer, HTTP/1.0 style: no Content-Length, ended by closing the connection."""

    def __init__(self, kind: str, body: bytes) -> None:
        super().__init__("/")
        self.kind, self.body, self.status = kind, body, b"200 OK"
        self.accept_each(self._serve)

    def _serve(self, connection: socket.socket, number: int) -> None:
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.0 %s\r\nContent-Type: %s\r\n\r\n%s" % (self.status, self.kind.encode(),
                                                                                 self.body))


def test_a_web_page_sent_without_a_length_is_told_as_a_web_page(told):
    """FFmpeg says "Input/output error" for such a page (where one with its length is "Invalid data"): the line
    was the generic "cannot open the stream", not the documented one naming the stream's own path."""
    server = _Page("text/html; charset=utf-8", b"<html><body>" + b"camera settings " * 40 + b"</body></html>")
    try:
        with pytest.raises(UserError) as caught:
            open_source(server.url)
    finally:
        server.close()
    message = str(caught.value)
    assert "answered at / with no video stream (a web page, perhaps" in message, message
    assert f"{server.url}video" in message and "Input/output error" not in message


def test_an_answer_of_no_text_is_no_web_page():
    """Only an answer whose type is text (HTML, XML, JSON) is said to be a page; anything else, or no answer, is
    not (FFmpeg's own reason is given then)."""
    server = _Page("application/octet-stream", bytes(range(256)) * 4)
    try:
        parts = network.urllib.parse.urlsplit(server.url)
        assert not network._answers_text(parts)
        server.kind = "application/xhtml+xml"
        assert network._answers_text(parts)
        for status in (b"401 Unauthorized", b"503 Service Unavailable"):  # an error's page: a login, a failing server
            server.status = status
            assert not network._answers_text(parts)
    finally:
        server.close()
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert not network._answers_text(network.urllib.parse.urlsplit(f"http://127.0.0.1:{port}/"))


def test_a_file_over_http_goes_to_a_window_by_default_and_plays_there_at_its_pace(tmp_path, told):
    """Read as a file, an address had no place beside it: "is a pipe or a device ... give one with -o". It goes to a
    window, as every network stream does, and plays there (and into a virtual camera) at its own pace."""
    from stream.app import default_output, plays_in_real_time

    folder = tmp_path / "www"
    folder.mkdir()
    (folder / "clip.ts").write_bytes(_transport_stream(tmp_path))
    httpd, base = _folder_server(folder)
    try:
        source = open_source(f"{base}/clip.ts")
        source.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert not source.live and default_output(f"{base}/clip.ts", source) == "window"
    assert plays_in_real_time("window", source) and not plays_in_real_time(str(tmp_path / "out.mp4"), source)
