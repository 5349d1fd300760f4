"""A video file over HTTP(S) behaves as a local file does: its sound kept, --start and --duration sought, a file's
preset, and a dropped connection resumed where it stopped (a Range request) rather than read again from the start.
Real local servers through the real PyAV (FFmpeg) path."""
import re
import socket
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from media import make_video, probe
from raw_server import RawServer
from stream.errors import UserError
from stream.network_source import NetworkSource
from stream.served_file import ServedFile, served_as_file
from stream.sources import VideoFileSource, open_source
from test_cli import depthcam
from test_network_source import SECRET, _Server

RANGE = re.compile(rb"\r\nrange: bytes=(\d+)-(\d*)", re.IGNORECASE)


class _FileServer(RawServer):
    """Serves `body` at `path` with its Content-Length, as a static file server does: a part asked for (a Range
    request) as 206 where `ranges`, else the whole file. `cut_reading`: the reading of an MP4's pictures (numbered
    from 1: each connection asking from its media data's first byte) whose connection closes half-way through (the
    network dropped)."""

    def __init__(self, body: bytes, path: str = "/clip.mp4", ranges: bool = True, cut_reading: int | None = None,
                 kind: str = "video/mp4") -> None:
        super().__init__(path)
        self.body, self.ranges, self.cut_reading, self.kind = body, ranges, cut_reading, kind
        self.pictures_at = body.find(b"mdat") + 4  # the media data box's first byte, past its size and type
        self.readings = 0
        self.starts: list[int] = []  # the first byte each GET asked for
        self.accept_each(self._serve)

    def _serve(self, connection: socket.socket, _number: int) -> None:
        with connection:
            request = connection.recv(65536)
            asked = RANGE.search(request) if self.ranges else None
            start = int(asked.group(1)) if asked else 0
            end = int(asked.group(2)) + 1 if asked and asked.group(2) else len(self.body)
            self.starts.append(start)
            self.readings += start == self.pictures_at
            cut = start == self.pictures_at and self.readings == self.cut_reading
            if asked:
                head = b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nAccept-Ranges: bytes\r\n" \
                    % (start, end - 1, len(self.body))
            else:
                head = b"HTTP/1.1 200 OK\r\n"
            part = self.body[start:end]
            sent = part[:len(part) // 2] if cut else part
            try:
                connection.sendall(head + b"Content-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                                   % (self.kind.encode(), len(part)) + sent)
            except OSError:  # the reader went away
                pass


def _keyed_every(given: Path, target: Path, gop: int) -> Path:
    """`given` with a keyframe every `gop` pictures, its sound copied: a start is then sought, not read up to."""
    with av.open(str(given)) as source:
        pictures = [frame.to_ndarray(format="bgr24") for frame in source.decode(video=0)]
        rate = source.streams.video[0].average_rate
    with av.open(str(given)) as source, av.open(str(target), "w") as out:
        video = out.add_stream("libx264", rate=rate, options={"x264-params": f"keyint={gop}:min-keyint={gop}"})
        video.width, video.height, video.pix_fmt = pictures[0].shape[1], pictures[0].shape[0], "yuv420p"
        audio = out.add_stream_from_template(source.streams.audio[0])
        for picture in pictures:
            out.mux(video.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")))
        out.mux(video.encode(None))
        for packet in source.demux(source.streams.audio[0]):
            if packet.size:
                packet.stream = audio
                out.mux(packet)
    return target


@pytest.fixture
def served(tmp_path):
    """A 2 s 64x48 MP4 with an AAC sound track and a keyframe every 0.5 s, and a Range-taking server of it (closed
    after the test)."""
    made = make_video(tmp_path / "made.mp4", frames=48, fps=24, size=(64, 48))
    clip = _keyed_every(made, tmp_path / "clip.mp4", gop=12)
    server = _FileServer(clip.read_bytes())
    yield clip, server
    server.close()


def _pictures(path) -> tuple[list[np.ndarray], list[float]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return [f.to_ndarray(format="bgr24") for f in frames], [float(f.time) for f in frames]


def _read_all(server: RawServer) -> tuple:
    """The source the server's address opens, and every frame it gave; the source and the server closed."""
    try:
        source = open_source(server.url)
        try:
            return source, list(source.frames())
        finally:
            source.close()
    finally:
        server.close()


def test_a_part_of_a_file_over_http_is_the_local_files_part_with_its_sound(served, tmp_path, shared_models):
    """`depthcam run http://host/clip.mp4 --start 0.5 --duration 1`: the file's preset (not live-cpu), the part of
    the local file's run (same frames, times and pixels), and its sound, cut with the pictures. The sound was left
    out, --start refused, and the live preset chosen."""
    clip, server = served
    args = ("--start", "0.5", "--duration", "1", "--blur", "0", "--refine", "off")
    remote, local = tmp_path / "remote.mp4", tmp_path / "local.mp4"
    over_http = depthcam("run", server.url, "-o", str(remote), *args)
    on_disk = depthcam("run", str(clip), "-o", str(local), *args)
    assert over_http.returncode == 0 and on_disk.returncode == 0, over_http.stderr + on_disk.stderr
    assert "live-cpu" not in over_http.stderr and "from 0.5 s for 1.0 s" in over_http.stderr
    assert ", read as a file (its length is stated)" in over_http.stderr
    info = probe(remote)
    assert info["frames"] == 24 and info["audio_codec"] == "aac"
    assert info["audio_seconds"] == pytest.approx(1.0, abs=0.05)
    assert info == probe(local)
    (remote_pictures, remote_times), (local_pictures, local_times) = _pictures(remote), _pictures(local)
    assert remote_times == local_times
    assert all(np.array_equal(a, b) for a, b in zip(remote_pictures, local_pictures))


class _SeeksTold:
    """A container whose seeks are noted (in seconds), everything else its own."""

    def __init__(self, container) -> None:
        self.container, self.seeks = container, []

    def seek(self, offset, *args, stream=None, **kwargs):
        self.seeks.append(float(offset * stream.time_base) if stream is not None else offset)
        return self.container.seek(offset, *args, stream=stream, **kwargs)

    def __getattr__(self, name):
        return getattr(self.container, name)


def test_a_start_in_a_file_over_http_is_sought(served):
    """--start jumps to the keyframe before it, as in a local file (FFmpeg then asks the server for that part); the
    pictures before it were decoded and thrown away, as a pipe's are."""
    _, server = served
    source = open_source(server.url)
    seeks = source.container = _SeeksTold(source.container)
    try:
        source.set_range(1.5, 0.5)
        frames = list(source.frames())
    finally:
        source.close()
    assert seeks.seeks and min(seeks.seeks) == pytest.approx(1.5, abs=0.05)
    assert len(frames) == 12 and frames[0].pts_seconds == pytest.approx(1.5, abs=1e-3)


def test_an_opus_sound_track_of_a_file_over_http_is_kept(tmp_path, shared_models):
    """A Matroska file with an Opus sound track: its sound, whole, in the output."""
    clip = make_video(tmp_path / "clip.mkv", frames=24, fps=24, size=(64, 48), audio_codec="libopus",
                      sample_rate=48000)
    server = _FileServer(clip.read_bytes(), path="/clip.mkv", kind="video/x-matroska")
    out = tmp_path / "out.mkv"
    try:
        result = depthcam("run", server.url, "-o", str(out), "--blur", "0", "--refine", "off")
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert info["frames"] == 24 and info["audio_codec"] == "opus"
    assert info["audio_seconds"] == pytest.approx(1.0, abs=0.05)


def test_a_file_over_http_gets_the_file_preset_and_a_live_stream_the_live_one(served):
    from stream.cli import build_parser, run_config

    def chosen(url: str, *argv: str) -> bool:
        args = build_parser().parse_args(["run", url, *argv])
        return run_config(url, args)[1]

    _, server = served
    mjpeg = _Server(fps=10)
    try:
        assert served_as_file(server.url) and not chosen(server.url)
        assert not served_as_file(f"{mjpeg.base}/video") and chosen(f"{mjpeg.base}/video")
    finally:
        mjpeg.close()
    single = _Server(fps=10, most=1)  # a server of one client at a time: its one connection is the stream's
    try:
        assert chosen(f"{single.base}/video") and single.connections == 0  # not asked: no video file's type named
        source = open_source(f"{single.base}/video")
        source.close()
    finally:
        single.close()
    assert source.live and single.connections == 1
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    assert chosen(f"http://127.0.0.1:{port}/clip.mp4")  # no answer: as before (opening it then says why)


def test_a_dropped_connection_goes_on_where_it_stopped(served, told):
    """The connection reading the pictures closes half-way: FFmpeg asks for the rest (Range), and every picture
    comes once, in order, as the local file's. It was opened again from its start, its first pictures read again."""
    clip, _ = served
    # the first reading of the pictures is the NetworkSource's that finds a file; the second, the file's, is cut
    server = _FileServer(clip.read_bytes(), cut_reading=2)
    source, frames = _read_all(server)
    assert isinstance(source, VideoFileSource) and source.truncation_warning() is None
    _, local_times = _pictures(clip)
    assert [f.index for f in frames] == list(range(48))
    assert np.allclose([f.pts_seconds for f in frames], np.array(local_times) - local_times[0], atol=1e-3)
    assert server.readings == 2 and server.starts[-1] > server.pictures_at  # taken up where it stopped


def test_a_server_that_sends_files_whole_only_keeps_the_sound_and_refuses_a_part(served, tmp_path, shared_models):
    """No Range requests taken: read once, in order, as before (nothing to seek), its sound read by the writer
    through a connection of its own; --start is refused in one line naming why."""
    from stream.app import build
    from stream.config import load_config

    clip, _ = served
    server = _FileServer(clip.read_bytes(), ranges=False)
    out = tmp_path / "out.mp4"
    try:
        source = open_source(server.url)
        source.close()
        with pytest.raises(UserError, match="sends it whole only: download it and run the file"):
            build(load_config("default"), server.url, "null", clip=(0.5, None))
        result = depthcam("run", server.url, "-o", str(out), "--blur", "0", "--refine", "off")
    finally:
        server.close()
    assert isinstance(source, NetworkSource) and not source.live
    assert isinstance(source.audio_path, ServedFile) and str(source.audio_path) == server.url
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert info["frames"] == 48 and info["audio_seconds"] == pytest.approx(2.0, abs=0.05)


def test_a_served_files_password_never_shows():
    served = ServedFile(f"http://me:{SECRET}@host/films/a%20clip.mp4?token={SECRET}")
    assert served.name == "a clip.mp4" and SECRET in str(served)  # FFmpeg opens the real address
    for shown in (f"{served}", repr(served), f"cannot read video {served}: ..."):
        assert SECRET not in shown and "me:***@host" in shown


def test_a_raw_stream_without_a_rate_over_http_is_read_and_its_rate_told(tmp_path, capsys):
    """A raw HEVC stream with no timing (a Pi's), served with its length: read as a file at FFmpeg's 25 fps, with
    the line that says so and names the command that gives it a rate. Making that line failed on the address
    (AttributeError: the served file has no with_suffix), ending the run in a traceback."""
    from test_raw_streams21 import X265_QUIET, _encode

    options = {"x265-params": f"{X265_QUIET}:vui-timing-info=0:vui-hrd-info=0"}
    clip = _encode(tmp_path / "in.hevc", "libx265", frames=6, options=options)
    server = _FileServer(clip.read_bytes(), path="/cams/in.hevc", kind="video/h265")
    source, frames = _read_all(server)
    said = [line for line in capsys.readouterr().err.splitlines() if "no frame rate" in line]
    assert isinstance(source, VideoFileSource) and source.fps == 25 and len(frames) == 6
    assert len(said) == 1 and "in.hevc is a raw HEVC video stream with no frame rate: read at 25 fps" in said[0]
    assert said[0].endswith("ffmpeg -framerate 30 -i in.hevc -crf 16 in.mp4")


def test_files_over_http_go_into_a_folder_and_into_a_batch_as_local_files_do(served, tmp_path, shared_models):
    """`-o portraits/` for a file over HTTP said "is a folder; give the recording a file name", and a batch with one
    refused it as a stream that "never ends": it is a file, named in the folder by its address's last part. A live
    stream is still refused both ways."""
    clip, server = served
    quick = ("--blur", "0", "--refine", "off", "--duration", "0.25")
    single = depthcam("run", f"{server.url}?token={SECRET}", "-o", f"{tmp_path / 'one'}/", *quick)
    assert single.returncode == 0, single.stderr
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["clip_portrait.mp4"]
    local = clip.rename(tmp_path / "local.mp4")
    secret_url = server.url.replace("http://", f"http://me:{SECRET}@") + f"?token={SECRET}"
    batch = depthcam("run", str(local), secret_url, "-o", f"{tmp_path / 'both'}/", *quick)
    assert batch.returncode == 0, batch.stderr
    assert "input 2 of 2: http://me:***@" in batch.stderr and SECRET not in batch.stderr  # it was said in clear
    assert sorted(p.name for p in (tmp_path / "both").iterdir()) == ["clip_portrait.mp4", "local_portrait.mp4"]
    assert probe(tmp_path / "both" / "clip_portrait.mp4")["frames"] == 6
    mjpeg = _Server(fps=10)
    try:
        live_batch = depthcam("run", str(local), f"{mjpeg.base}/video", "-o", f"{tmp_path / 'live'}/", *quick)
        live_folder = depthcam("run", f"{mjpeg.base}/video", "-o", f"{tmp_path / 'live'}/", *quick)
    finally:
        mjpeg.close()
    assert live_batch.returncode != 0 and "/video never ends, so it cannot be one of several" in live_batch.stderr
    assert live_folder.returncode != 0 and "is a folder; give the recording a file name" in live_folder.stderr


# -- a server that stops sending, a stop meanwhile ------------------------------------------------------------------
class _StallingServer(_FileServer):
    """A _FileServer whose reading `stalled_reading` of the pictures (numbered as cut_reading's) sends half its part,
    then nothing more on that connection, held open until close(). `resumes_stall`: a connection asking for the rest
    (a Range request from inside the media data, once that reading has stalled) gets its headers and nothing either:
    a server stalled for good."""

    def __init__(self, body: bytes, stalled_reading: int, resumes_stall: bool) -> None:
        self.stalled_reading, self.resumes_stall = stalled_reading, resumes_stall
        self.pictures_end = body.find(b"moov") - 4  # where the media data ends (its index follows it)
        self.stalled = threading.Event()  # a connection is holding back what it was asked for
        self.resumes: list[int] = []  # the first byte each request for the rest asked for
        super().__init__(body)

    def _serve(self, connection: socket.socket, _number: int) -> None:
        request = connection.recv(65536)
        asked = RANGE.search(request)
        start = int(asked.group(1)) if asked else 0
        self.starts.append(start)
        self.readings += start == self.pictures_at
        resuming = self.stalled.is_set() and self.pictures_at < start < self.pictures_end
        self.resumes += [start] if resuming else []
        part = self.body[start:]
        if start == self.pictures_at and self.readings == self.stalled_reading:
            sent = part[:len(part) // 2]
        elif resuming and self.resumes_stall:
            sent = b""
        else:
            sent = None
        head = b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nAccept-Ranges: bytes\r\n" \
            b"Content-Type: video/mp4\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" \
            % (start, len(self.body) - 1, len(self.body), len(part))
        try:
            connection.sendall(head + (part if sent is None else sent))
        except OSError:  # the reader went away
            pass
        if sent is None:
            connection.close()
            return
        self.held.append(connection)  # silent from here, open: closed with the server
        self.stalled.set()


def _stalling(clip: Path, resumes_stall: bool) -> _StallingServer:
    # the first reading of the pictures is the NetworkSource's that finds a file; the second, the file's, stalls
    return _StallingServer(clip.read_bytes(), stalled_reading=2, resumes_stall=resumes_stall)


def test_a_server_stalled_on_one_connection_is_asked_again_for_the_rest(served, monkeypatch, capsys):
    """The connection reading the pictures goes silent half-way, open: its socket's time-out (1 s here) passes,
    FFmpeg connects again and asks for the rest, which comes: every picture once, in order, no damage said. PyAV's
    read time-out ended the read first (ExitError), counted as damage, and the stalled connection was read again
    up to 16 times, the second half's pictures lost."""
    import stream.network_source as network

    monkeypatch.setattr(network, "TIMEOUT_S", 1.0)
    clip, _ = served
    server = _stalling(clip, resumes_stall=False)
    source, frames = _read_all(server)
    assert isinstance(source, VideoFileSource) and server.stalled.is_set()
    assert [f.index for f in frames] == list(range(48))
    assert server.resumes and min(server.resumes) > server.pictures_at  # the rest asked for, not the whole again
    assert "damaged" not in capsys.readouterr().err


def test_a_server_that_stops_sending_ends_the_file_in_one_line(served, monkeypatch, capsys):
    """A server that goes silent half-way, new connections too: the file ends with one line naming the server and
    the frames given, which are kept (the pipeline writes them). It was said damaged and read again 16 times (16
    read time-outs) before the video ended as if whole."""
    import stream.network_source as network
    import stream.served_file as served_file

    monkeypatch.setattr(network, "TIMEOUT_S", 0.5)
    monkeypatch.setattr(served_file, "STALL_RECONNECT_S", 1.0)
    clip, _ = served
    server = _stalling(clip, resumes_stall=True)
    frames = []
    try:
        source = open_source(server.url)
        try:
            with pytest.raises(UserError) as ended:
                for frame in source.frames():
                    frames.append(frame)
        finally:
            source.close()
    finally:
        server.close()
    where = server.url.split("/")[2]
    assert 0 < len(frames) < 48 and "damaged" not in capsys.readouterr().err
    assert re.fullmatch(rf"file {re.escape(server.url)}: {where} stopped sending it after \d+ frames \(.+\); "
                        r"the frames before were kept; run it again once the server answers, or download the file "
                        r"and run that", str(ended.value))


def test_a_stop_ends_a_served_files_stalled_read_at_once(served, monkeypatch):
    """A stop (q, Ctrl-C, SIGTERM: the pipeline's interrupt()) while the server is silent: frames() ends at once,
    without an error or a damage line, not after the read's time-out (60 s here). VideoFileSource had no interrupt:
    the stop waited for the time-out, then the file was read again as damaged."""
    import stream.network_source as network

    monkeypatch.setattr(network, "TIMEOUT_S", 60.0)
    clip, _ = served
    server = _stalling(clip, resumes_stall=True)
    outcome: list[object] = []

    def read() -> None:
        try:
            outcome.append(len(list(source.frames())))
        except BaseException as exc:  # noqa: BLE001 (the test's)
            outcome.append(exc)

    try:
        source = open_source(server.url)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert server.stalled.wait(30)
        source.interrupt()
        reader.join(20)  # a third of the time-out: the read ended by the stop
        if not reader.is_alive():  # closed under a read in progress, the container crashes it
            source.close()
    finally:
        server.close()
    assert not reader.is_alive() and isinstance(source, VideoFileSource)
    assert len(outcome) == 1 and isinstance(outcome[0], int) and 0 < outcome[0] < 48
    assert network._cut_threads == set()  # the cut set aside: the thread's next reads keep the true clock


# -- an HLS master playlist's variants: one read, by the pictures and the sound ------------------------------------
def _variant_with_sound(folder: Path, width: int, height: int, tone: float, seconds: float = 4.0) -> None:
    """A VOD HLS rendition of flat pictures at 24 fps and a mono AAC sound of a 440 Hz tone at amplitude `tone` (0:
    silence), in 0.5 s segments."""
    folder.mkdir()
    options = {"hls_time": "0.5", "hls_list_size": "0", "hls_playlist_type": "vod"}
    with av.open(str(folder / "index.m3u8"), "w", format="hls", options=options) as container:
        video = container.add_stream("libx264", rate=24, options={"preset": "ultrafast", "g": "12"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=48000, layout="mono")
        samples = np.arange(round(seconds * 48000)) / 48000
        sound = (tone * np.sin(2 * np.pi * 440 * samples)).astype(np.float32)
        for at in range(0, len(sound), 1024):
            frame = av.AudioFrame.from_ndarray(sound[None, at:at + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, at
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)
        for i in range(round(seconds * 24)):
            picture = av.VideoFrame.from_ndarray(np.full((height, width, 3), 100, np.uint8), format="bgr24")
            picture.pts = i
            for packet in video.encode(picture):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)


def test_the_sound_of_an_hls_master_playlist_is_its_chosen_variants_alone(tmp_path, shared_models):
    """Two variants, each with its own sound (the small one's silent): the output's pictures and its one sound track
    are the larger variant's, and the smaller's segments are fetched only while FFmpeg opens it, never read. The
    writer's sound reader opened the master playlist too: it kept each variant's sound as a track of its own (the
    first, silent, the default) and fetched every segment of both variants."""
    from test_network_kept_frames import _serve_folder

    _variant_with_sound(tmp_path / "low", 64, 36, tone=0.0)
    _variant_with_sound(tmp_path / "full", 128, 72, tone=0.5)
    (tmp_path / "master.m3u8").write_text(
        "#EXTM3U\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=64x36\nlow/index.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=128x72\nfull/index.m3u8\n")
    httpd, fetched = _serve_folder(tmp_path)
    out = tmp_path / "out.mp4"
    try:
        result = depthcam("run", f"http://127.0.0.1:{httpd.server_address[1]}/master.m3u8", "-o", str(out),
                          "--blur", "0", "--refine", "off")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result.returncode == 0, result.stderr
    with av.open(str(out)) as written:
        assert [(s.width, s.height) for s in written.streams.video] == [(128, 72)]
        assert len(written.streams.audio) == 1
        sound = np.concatenate([frame.to_ndarray().ravel() for frame in written.decode(audio=0)])
    assert np.sqrt(np.mean(sound ** 2)) > 0.2  # the tone's (0.35), not the silence
    segments = {name: {path for path in fetched if path.startswith(f"/{name}/") and path.endswith(".ts")}
                for name in ("low", "full")}
    assert len(segments["full"]) == 8
    assert segments["low"] <= {"/low/index0.ts", "/low/index1.ts"}  # what opening it reads to find its streams


class _Redirecting(RawServer):
    """Answers every GET with `status` and Location: `to` (a download link answered from a CDN)."""

    def __init__(self, to: str, status: int = 302) -> None:
        super().__init__("/download/clip.mp4")
        self.to, self.status = to, status
        self.accept_each(self._serve)

    def _serve(self, connection: socket.socket, _number: int) -> None:
        with connection:
            connection.recv(65536)
            try:
                connection.sendall(b"HTTP/1.1 %d Found\r\nLocation: %s\r\nContent-Length: 0\r\nConnection: close\r\n"
                                   b"\r\n" % (self.status, self.to.encode()))
            except OSError:
                pass


def test_a_file_link_that_redirects_is_read_as_the_file_it_leads_to(served):
    """A download link answered with a redirect (GitHub's release assets, S3, Dropbox) was taken for a stream: the
    live settings, and, the server's Range requests unseen behind it, read once with --start refused ("sends it whole
    only"). The redirect is followed as FFmpeg follows it."""
    _, server = served
    link = _Redirecting(server.url)
    try:
        assert served_as_file(link.url)
        source = open_source(link.url)
        try:
            source.set_range(1.5, 0.5)
            frames = list(source.frames())
        finally:
            source.close()
    finally:
        link.close()
    assert isinstance(source, VideoFileSource)
    assert len(frames) == 12 and frames[0].pts_seconds == pytest.approx(1.5, abs=1e-3)


class _SilentOnceProbed(_FileServer):
    """A _FileServer that goes silent, connection open, for every request after the Range check (bytes=0-0): the
    served file's own opening finds a server that stopped answering."""

    def __init__(self, body: bytes) -> None:
        self.probed = threading.Event()
        self.silent = threading.Event()  # a request is held unanswered
        super().__init__(body)

    def _serve(self, connection: socket.socket, number: int) -> None:
        if not self.probed.is_set():
            request = connection.recv(65536, socket.MSG_PEEK)
            if b"bytes=0-0" in request:
                self.probed.set()
            return super()._serve(connection, number)
        self.hold(connection)
        self.silent.set()


def test_a_stop_while_a_served_file_opens_is_raised_at_once(served):
    """Ctrl-C while the file found served was opened again as a local file (its connection, its first pictures): the
    main thread waited out FFmpeg's time-out (5 s) and PyAV's error handling lost the stop ("no answer ... within
    5 s", exit 2). The opening runs on a thread of its own, as a stream's first open does, and the stop is raised."""
    import os
    import signal

    clip, _ = served
    server = _SilentOnceProbed(clip.read_bytes())

    def stop_once_silent() -> None:
        if server.silent.wait(30):
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=stop_once_silent, daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            open_source(server.url)
    finally:
        server.close()
    assert server.probed.is_set() and server.silent.is_set()


def test_input_rate_gives_a_served_raw_stream_its_rate_and_is_refused_for_a_live_one(tmp_path):
    """The raw stream's line names --input-rate, which was then refused for any http(s) address ("a network stream,
    which times its own pictures"): a file served is told once open. A live stream still refuses it."""
    from fractions import Fraction

    from test_raw_streams21 import X265_QUIET, _encode

    options = {"x265-params": f"{X265_QUIET}:vui-timing-info=0:vui-hrd-info=0"}
    clip = _encode(tmp_path / "in.hevc", "libx265", frames=6, options=options)
    server = _FileServer(clip.read_bytes(), path="/cams/in.hevc", kind="video/h265")
    try:
        source = open_source(server.url, Fraction(30))
        try:
            times = [frame.pts_seconds for frame in source.frames()]
        finally:
            source.close()
    finally:
        server.close()
    assert isinstance(source, VideoFileSource) and source.fps == 30
    assert times == pytest.approx([index / 30 for index in range(6)])
    mjpeg = _Server(fps=10)
    try:
        with pytest.raises(UserError, match=r"/video is a live network stream, which times its own pictures: leave "
                                            r"--input-rate out$"):
            open_source(f"{mjpeg.base}/video", Fraction(30))
    finally:
        mjpeg.close()


def test_an_mp4_indexed_at_its_end_from_a_server_without_ranges_names_its_cause(tmp_path):
    """`python -m http.server` serving an MP4 whose index (moov) follows its pictures: FFmpeg cannot go back to them,
    and the line said the server "answered but gave no picture", to check the camera and the password."""
    from media import make_noise_mp4

    server = _FileServer(make_noise_mp4(tmp_path / "clip.mp4").read_bytes(), ranges=False)
    try:
        with pytest.raises(UserError) as refused:
            open_source(server.url)
    finally:
        server.close()
    said = str(refused.value)
    assert "is an MP4 or MOV with its index (moov) at its end, and its server sends files whole only" in said
    assert said.endswith("ffmpeg -i IN.mp4 -c copy -movflags +faststart OUT.mp4") and "password" not in said
