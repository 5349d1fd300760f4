"""A video file served over HTTP(S): a stop while its server stalls the writer's sound, and a file from a server
without Range requests (read once, in order, by NetworkSource) named as a file. Real local servers through the
real PyAV (FFmpeg) path."""
import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from media import make_video, probe
from raw_server import RawServer
from stream.interrupts import signals_stop
from stream.served_file import ServedFile
from stream.video_writer import VideoWriter
from test_http_file25 import _keyed_every
from test_network_source import SECRET

RANGE = re.compile(rb"\r\nrange: bytes=(\d+)-(\d*)", re.IGNORECASE)
IN_FLIGHT = 6  # frames a run still writes after a stop (those in its queues)


def _front_indexed(path: Path) -> Path:
    """`path` remuxed with its index (moov) in front, as a file made for the web is: FFmpeg reads it in one pass
    from its start, and a server's stall past a byte holds each reading at the same point of its pictures."""
    target = path.with_name(f"fast_{path.name}")
    with av.open(str(path)) as source, av.open(str(target), "w", options={"movflags": "faststart"}) as out:
        streams = {stream.index: out.add_stream_from_template(stream) for stream in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return target


class _Server(RawServer):
    """Serves `body` at /clip.mp4 with its length, a part asked for (Range) as 206 where `ranges`, else the whole
    file. Each reading (a GET of more than one byte) is numbered from 1; `behaviour` maps a number (0: every one not
    named) to what its connection does at byte `at` of the file: "stall" (nothing more sent, held open until
    close()) or "drop" (closed there, the network lost). `readings`: each reading's first byte."""

    def __init__(self, body: bytes, at: int, behaviour: dict[int, str], ranges: bool = True) -> None:
        super().__init__("/clip.mp4")
        self.body, self.at, self.behaviour, self.ranges = body, at, behaviour, ranges
        self.readings: list[int] = []
        self.stalled = threading.Event()
        self.accept_each(self._serve)

    def _serve(self, connection: socket.socket, _number: int) -> None:
        request = connection.recv(65536)
        asked = RANGE.search(request) if self.ranges else None
        start = int(asked.group(1)) if asked else 0
        end = int(asked.group(2)) + 1 if asked and asked.group(2) else len(self.body)
        if end - start > 1:
            self.readings.append(start)
        what = self.behaviour.get(len(self.readings), self.behaviour.get(0)) if end - start > 1 else None
        head = b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nAccept-Ranges: bytes\r\n" \
            % (start, end - 1, len(self.body)) if asked else b"HTTP/1.1 200 OK\r\n"
        part = self.body[start:end]
        sent = part[:max(0, self.at - start)] if what is not None and end > self.at else part
        try:
            connection.sendall(head + b"Content-Type: video/mp4\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                               % len(part) + sent)
        except OSError:  # the reader went away
            pass
        if sent is not part and what == "stall":
            self.held.append(connection)  # silent from here, open
            self.stalled.set()
            return
        connection.close()


@pytest.fixture
def clip(tmp_path) -> Path:
    """A 2 s 64x48 MP4 at 24 fps with an AAC sound track, its index in front."""
    return _front_indexed(make_video(tmp_path / "clip.mp4", frames=48, fps=24, size=(64, 48)))


def _decoded(path: Path) -> tuple[list[np.ndarray], list[float]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return [f.to_ndarray(format="bgr24") for f in frames], [float(f.time) for f in frames]


def _sound(path: Path) -> np.ndarray:
    """The file's sound, decoded (a packet cut short fails here: "Invalid data found")."""
    with av.open(str(path)) as container:
        return np.concatenate([frame.to_ndarray() for frame in container.decode(audio=0)], axis=1)


def _inside_a_sound_packet(path: Path, seconds: float) -> int:
    """The byte half-way through the sound packet at `seconds`: a reading stalled there holds that packet half-read."""
    with av.open(str(path)) as container:
        packet = next(p for p in container.demux(audio=0) if p.size and float(p.pts * p.time_base) >= seconds)
        return packet.pos + packet.size // 2


def test_a_stop_ends_the_writers_wait_for_a_stalled_servers_sound_at_once(clip, tmp_path):
    """The writer reads a served file's sound on the main thread, up to each picture it writes; the server stalls
    0.7 s in, half-way through a sound packet, for good (a reconnection too). A stop signal (Ctrl-C, SIGTERM) then
    ends that read at once, and the file is finalised, playable, its sound whole up to where the server stopped: the
    half-read packet the cut read gives is left out (copied, the output's sound failed to decode there, "Invalid data
    found when processing input", once the pictures in flight passed it). The read waited for its time-out (15 s)
    before the signal was even seen."""
    import av.container.core as core

    import stream.network_source as network

    server = _Server(clip.read_bytes(), at=_inside_a_sound_packet(clip, 0.7), behaviour={0: "stall"})
    pictures, times = _decoded(clip)
    out, stop = tmp_path / "out.mp4", threading.Event()
    signalled = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    written = 0
    try:
        writer = VideoWriter(out, 64, 48, 24, audio_from=ServedFile(server.url))
        with signals_stop(stop):
            signalled.start()
            started = time.monotonic()
            for picture, seconds in zip(pictures, times):
                writer.write(picture, seconds)
                written += 1
                if stop.is_set():
                    break
            took = time.monotonic() - started
            for picture, seconds in list(zip(pictures, times))[written:written + IN_FLIGHT]:
                writer.write(picture, seconds)  # the frames the stages had in hand: written, as the pipeline does
                written += 1
            signalled.join()  # the signal given inside, to the run's handler (never to pytest's)
            stop.wait(5)
        writer.close(complete=False)
    finally:
        server.close()
    assert server.stalled.is_set() and stop.is_set()
    assert took < 8, took  # the signal came after 1 s; the read's time-out is 15 s
    assert 0 < written < len(pictures)
    assert network._cut_threads == set() and core.time is time  # no cut left on the main thread's later reads
    info = probe(out)
    sound = _sound(out)
    assert info["frames"] == written and info["audio_codec"] == "aac"
    assert 0.3 < sound.shape[1] / 44100 <= written / 24 + 0.05


def test_a_sound_packet_a_stalled_server_cut_short_is_left_out(clip, tmp_path, monkeypatch, capsys):
    """The server stalls half-way through a sound packet, for good, and no stop comes: the read's time-out (1.5 s
    here) ends the sound's reading there, in one line, the half-read packet left out: the output's sound decodes to
    its end. That packet, flagged corrupt by FFmpeg, was copied, and the output's sound failed to decode there; the
    line said "a damaged sound packet is skipped (Immediate exit requested)"."""
    import stream.network_source as network
    import stream.served_file as served_file

    monkeypatch.setattr(network, "TIMEOUT_S", 0.5)
    monkeypatch.setattr(served_file, "STALL_RECONNECT_S", 1.0)
    server = _Server(clip.read_bytes(), at=_inside_a_sound_packet(clip, 0.7), behaviour={0: "stall"})
    pictures, times = _decoded(clip)
    out = tmp_path / "out.mp4"
    try:
        writer = VideoWriter(out, 64, 48, 24, audio_from=ServedFile(server.url))
        for picture, seconds in zip(pictures, times):
            writer.write(picture, seconds)
        writer.close()
    finally:
        server.close()
    assert server.stalled.is_set() and probe(out)["frames"] == len(pictures)
    assert 0.5 < _sound(out).shape[1] / 44100 < 0.75
    said = capsys.readouterr().err
    assert "clip.mp4: its server stopped sending the sound after 0.7 s (nothing arrived for 1.5 s); the sound ends " \
        "there" in said and "damaged" not in said


def _sound_packets(path: Path) -> list[tuple[float, bytes]]:
    """Each sound packet's time (seconds) and bytes."""
    with av.open(str(path)) as container:
        return [(round(float(p.pts * p.time_base), 4), bytes(p)) for p in container.demux(audio=0) if p.size]


@pytest.mark.parametrize("dropped", ["pictures", "sound"])
def test_a_whole_only_files_sound_after_a_dropped_connection_is_whole_and_in_step(clip, tmp_path, dropped, told):
    """A server without Range requests (python -m http.server): NetworkSource reads the pictures once, the writer
    the sound through a connection of its own. Either connection drops half-way through a sound packet; neither
    can be taken up where it stopped, and each is read again from the file's start, what was read passed by: the
    output's sound is the file's, packet for packet at the same times, neither doubled nor out of step. The
    pictures' drop kept the sound whole already; the sound's drop copied the packet it cut short (the output's sound
    did not decode there), said "a damaged sound packet is skipped", and lost the rest. Its lines name a file, its
    password hidden: they said "network stream ... dropped ... and came back", "ended (its sender closed it)"."""
    from stream.network_source import NetworkSource
    from stream.sources import open_source

    # the readings: the pictures' (NetworkSource), the Range question (answered whole), the writer's sound
    reading = {"pictures": 1, "sound": 3}[dropped]
    server = _Server(clip.read_bytes(), at=_inside_a_sound_packet(clip, 1.0), behaviour={reading: "drop"},
                     ranges=False)
    out = tmp_path / "out.mp4"
    try:
        source = open_source(server.url.replace("http://", f"http://me:{SECRET}@"))
        try:
            writer = VideoWriter(out, 64, 48, 24, audio_from=source.audio_path)
            for frame in source.frames():
                writer.write(frame.image, frame.pts_seconds)
            writer.close()
        finally:
            source.close()
    finally:
        server.close()
    assert isinstance(source, NetworkSource) and not source.live
    assert len(server.readings) == 4  # the dropped one read again, once
    assert probe(out)["frames"] == 48
    assert _sound_packets(out) == _sound_packets(clip)
    shown = f"http://me:***@{server.url[7:]}"
    assert source.description.startswith(f"file {shown} (H264) 64x48 @ 24 fps")
    dropped_line = [f"file {shown}: its connection dropped (the connection was closed); read again from its start"]
    assert [line[:len(dropped_line[0])] for line in told[:-1]] == (dropped_line if dropped == "pictures" else [])
    assert told[-1] == f"file {shown} ended after 48 frames"
    assert not any(SECRET in line for line in [*told, source.description])


class _Signalled(Exception):
    """Raised by the test's own handler of SIGINT (never pytest's KeyboardInterrupt)."""


def _raise_signalled(_signum, _frame) -> None:
    raise _Signalled


def test_a_stop_cuts_a_jump_to_the_start_short_where_the_server_stalled(tmp_path):
    """`--start 3` on a served file whose server stalls 40 % of the way in (1.6 s), for good: the jump (set_range, on
    the main thread while the run is built) waits for the part at 3 s. A stop signal now ends it at once, and is
    raised as its handler raises it. The jump waited for the read's time-out (15 s) before the signal was even seen,
    and the run went on to say the server "stopped sending it after 0 frames"."""
    import av.container.core as core

    import stream.network_source as network
    from stream.sources import VideoFileSource, open_source

    made = make_video(tmp_path / "made.mp4", frames=96, fps=24, size=(320, 240))
    clip = _front_indexed(_keyed_every(made, tmp_path / "long.mp4", gop=12))  # 3 s sought, not read up to
    body = clip.read_bytes()
    server = _Server(body, at=len(body) * 4 // 10, behaviour={0: "stall"})  # every reading held past 40 %
    previous = signal.signal(signal.SIGINT, _raise_signalled)
    signalled = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    try:
        source = open_source(server.url)
        try:
            signalled.start()
            started = time.monotonic()
            with pytest.raises(_Signalled):
                source.set_range(3.0, None)
            took = time.monotonic() - started
        finally:
            signalled.join()
            source.close()
    finally:
        signal.signal(signal.SIGINT, previous)
        server.close()
    assert isinstance(source, VideoFileSource) and server.stalled.is_set()
    assert took < 8, took  # the signal came after 1 s; the read's time-out is 15 s
    assert network._cut_threads == set() and core.time is time


def test_a_whole_only_file_whose_server_stops_ends_in_one_line_naming_a_file(clip, monkeypatch, told):
    """The pictures' connection drops half-way and every later reading stalls there: read again from its start, the
    file gives nothing new, and the run ends in one line naming a file and its server, the frames before kept. It
    said a "network stream ... stopped delivering frames ... and did not come back", a camera's words."""
    import stream.network_source as network
    from stream.errors import UserError
    from stream.sources import open_source

    monkeypatch.setattr(network, "TIMEOUT_S", 0.5)
    monkeypatch.setattr(network, "RECONNECT_S", 1.5)
    monkeypatch.setattr(network, "RETRY_PAUSE_S", 0.1)
    body = clip.read_bytes()
    server = _Server(body, at=len(body) // 2, behaviour={1: "drop", 0: "stall"}, ranges=False)
    frames = []
    try:
        source = open_source(server.url.replace("http://", f"http://me:{SECRET}@"))
        try:
            with pytest.raises(UserError) as ended:
                frames.extend(source.frames())
        finally:
            source.close()
    finally:
        server.close()
    shown, where = f"http://me:***@{server.url[7:]}", server.url.split("/")[2]
    assert 0 < len(frames) < 48 and [f.index for f in frames] == list(range(len(frames)))
    assert re.fullmatch(rf"file {re.escape(shown)}: its server stopped sending it after {len(frames)} frames \(the "
                        rf"connection was closed\) and did not answer again within 1\.5 s \(.+\); the frames before "
                        rf"were kept; run it again once the server answers, or download the file and run that",
                        str(ended.value)), str(ended.value)
    assert SECRET not in str(ended.value) and where in str(ended.value)


def test_a_sound_read_again_skips_what_was_read_and_packets_of_no_place():
    """The sound's connection dropped after its last packet (a server sending the file whole, FFmpeg reading an MKV's
    index at its end): read again from the start, every packet has a place before the drop's but the demuxer's closing
    one, whose place is None; comparing it raised a TypeError (a traceback). Packets of no place among the read ones
    are skipped with them, so no sound is written twice."""
    from types import SimpleNamespace

    from stream.audio_track import unread_packets

    packets = [SimpleNamespace(pos=pos) for pos in (100, None, 200, 300, -1, 400, None)]
    assert [p.pos for p in unread_packets(iter(packets), 400)] == []
    assert [p.pos for p in unread_packets(iter(packets), 250)] == [300, -1, 400, None]
    assert [p.pos for p in unread_packets(iter(packets), 0)] == [100, None, 200, 300, -1, 400, None]
