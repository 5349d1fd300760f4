"""A stop signal (Ctrl-C, SIGTERM) while a served file's server stalls the writer's other readings of it: the
subtitles' lines, the sound's jump to the first picture far in (and its reopening), and the openings of both. Each
ends at once, nothing more is read from that connection, and the output is finalised playable. Each waited for its
time-out (a read's 15 s: the socket's 5 s and FFmpeg's reconnection; an opening's 5 s) before the signal was even
seen. Real local servers through the real PyAV (FFmpeg) path."""
import os
import signal
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from media import make_tracks_video, probe
from stream.interrupts import signals_stop
from stream.served_file import ServedFile
from stream.video_writer import VideoWriter
from test_served_file26 import IN_FLIGHT, _front_indexed, _inside_a_sound_packet, _Server
from test_video_streams_kept import _read, _subtitled

STOP_AFTER_S = 1.0  # when the stop signal comes
CUT_SHORT_S = 8.0  # a read cut short ends well within this after it began; its time-out is 15 s
OPENING_STOP_S, OPENING_CUT_SHORT_S = 0.5, 3.0  # the same for an opening, whose time-out is 5 s
# "Three" is the line the server stalls half-way through: its reading, cut short, gives half of it
CUES = [(1.1, 1.3, "One"), (1.4, 1.5, "Two"), (1.6, 1.9, "Three, which the server stalls half-way through")]


class _Signalled(Exception):
    """Raised by the test's own handler of SIGINT (never pytest's KeyboardInterrupt)."""


def _raise_signalled(_signum, _frame) -> None:
    raise _Signalled


def _front_indexed_tracks(path: Path) -> Path:
    """`path`'s pictures, sound and subtitles remuxed with the index (moov) in front (its chapter track left out:
    FFmpeg's MP4 muxer takes no copy of it)."""
    target = path.with_name(f"fast_{path.name}")
    with av.open(str(path)) as source, av.open(str(target), "w", options={"movflags": "faststart"}) as out:
        kept = [stream for stream in source.streams if stream.type in ("video", "audio", "subtitle")]
        streams = {stream.index: out.add_stream_from_template(stream) for stream in kept}
        for packet in source.demux(*kept):
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return target


def _line_packet_middle(path: Path, text: str) -> int:
    """The byte half-way through the subtitle packet of the line that begins with `text`."""
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        for packet in container.demux(stream):
            if packet.size > 2 and text.encode() in bytes(packet):
                return packet.pos + packet.size // 2
    raise AssertionError(f"no line {text!r} in {path}")


def _pictures(path: Path) -> list[tuple[np.ndarray, float]]:
    with av.open(str(path)) as container:
        return [(frame.to_ndarray(format="bgr24"), float(frame.time)) for frame in container.decode(video=0)]


def _written_until_stopped(writer: VideoWriter, pictures: list[tuple[np.ndarray, float]]) -> tuple[int, float]:
    """The pictures written as a run writes them, a stop signal coming STOP_AFTER_S in to the run's own handler:
    up to the stop, then those the stages had in hand (IN_FLIGHT), then the file finalised as a stopped run's. The
    pictures written and the seconds from the first write to the file finalised."""
    stop = threading.Event()
    signalled = threading.Timer(STOP_AFTER_S, os.kill, (os.getpid(), signal.SIGINT))
    written = 0
    with signals_stop(stop):
        signalled.start()
        started = time.monotonic()
        for picture, seconds in pictures:
            writer.write(picture, seconds)
            written += 1
            if stop.is_set():
                break
        for picture, seconds in pictures[written:written + IN_FLIGHT]:
            writer.write(picture, seconds)
            written += 1
        writer.close(complete=False)
        took = time.monotonic() - started
        signalled.join()  # the signal given inside, to the run's handler (never to pytest's)
    assert stop.is_set()
    return written, took


def _stopped_while_stalled(clip: Path, at: int, pictures: list[tuple[np.ndarray, float]], out: Path,
                           reads: str) -> tuple[int, _Server]:
    """`clip` served by a server that stalls every reading at byte `at`, for good, and a writer of `out` that reads
    it as `reads` (audio_from, subtitles_from) writing `pictures` until a stop signal (_written_until_stopped): the
    stop ended the stalled read well within its time-out, and no cut is left. The pictures written, and the server
    (closed)."""
    server = _Server(clip.read_bytes(), at=at, behaviour={0: "stall"})
    try:
        writer = VideoWriter(out, 64, 48, 10, **{reads: ServedFile(server.url)})
        written, took = _written_until_stopped(writer, pictures)
    finally:
        server.close()
    assert server.stalled.is_set()
    assert took < CUT_SHORT_S, took
    _no_cut_left()
    return written, server


def _no_cut_left() -> None:
    """No cut is left on the main thread's later reads, and PyAV's own clock is back."""
    import av.container.core as core

    import stream.network_source as network

    assert network._cut_threads == set() and core.time is time


def test_a_stop_ends_the_subtitles_wait_for_a_stalled_server_at_once(tmp_path):
    """The writer reads a served file's subtitle lines on the main thread, up to each picture it writes (a
    connection of its own); the server stalls half-way through the third line's packet, for good. A stop signal then
    ends that read at once, no line is read after it, and the file is finalised, playable, with the lines before
    the stall; the half-read line (FFmpeg flags it corrupt) is left out."""
    clip = _front_indexed_tracks(_subtitled(tmp_path / "in.mp4", "mov_text", cues=CUES))
    pictures, out = _pictures(clip), tmp_path / "out.mp4"
    written, _ = _stopped_while_stalled(clip, _line_packet_middle(clip, "Three"), pictures, out, "subtitles_from")
    assert 6 <= written < len(pictures)  # the pictures up to "Three" (0.6 s), then those in flight
    _, streams = _read(out)
    assert probe(out)["frames"] == written
    assert streams[0]["lines"] == [(0.1, 0.3, "One"), (0.4, 0.5, "Two")]


def test_a_line_a_stalled_server_cut_short_is_left_out(tmp_path, monkeypatch):
    """The server stalls half-way through the third line's packet, for good, and no stop comes: the read's time-out
    (1.5 s here) ends the subtitles' reading there, the pictures all written, and the half-read line (FFmpeg flags
    it corrupt) is left out. It was written: "Three, which the serve", shown for its whole time."""
    import stream.network_source as network
    import stream.served_file as served_file

    monkeypatch.setattr(network, "TIMEOUT_S", 0.5)
    monkeypatch.setattr(served_file, "STALL_RECONNECT_S", 1.0)
    clip = _front_indexed_tracks(_subtitled(tmp_path / "in.mp4", "mov_text", cues=CUES))
    server = _Server(clip.read_bytes(), at=_line_packet_middle(clip, "Three"), behaviour={0: "stall"})
    pictures, out = _pictures(clip), tmp_path / "out.mp4"
    try:
        writer = VideoWriter(out, 64, 48, 10, subtitles_from=ServedFile(server.url))
        for picture, seconds in pictures:
            writer.write(picture, seconds)
        writer.close()
    finally:
        server.close()
    assert server.stalled.is_set() and probe(out)["frames"] == len(pictures)
    assert _read(out)[1][0]["lines"] == [(0.1, 0.3, "One"), (0.4, 0.5, "Two")]


def test_a_stop_ends_the_subtitles_jump_to_a_first_picture_far_in_at_once(tmp_path):
    """A run from 12 s into a served file: the writer's subtitles jump near it on the main thread, reading the
    lines before the jump's landing (10 s before) to find one still on screen; the server stalls half-way through
    the first line, at 1 s, for good. A stop signal then ends that read at once, no line is read after it, and the
    file is finalised, playable, with no line (none was read). The jump waited out its read's time-out (15 s)
    before the signal was even seen."""
    cues = [(1.0, 2.0, "Early"), (11.5, 12.5, "On at the start"), (13.0, 13.5, "Later")]
    clip = _front_indexed_tracks(_subtitled(tmp_path / "in.mp4", "mov_text", video_start=0.0, frames=140, fps=10,
                                            cues=cues))
    pictures = [(image, seconds) for image, seconds in _pictures(clip) if seconds >= 12.0]
    out = tmp_path / "out.mp4"
    written, _ = _stopped_while_stalled(clip, _line_packet_middle(clip, "Early"), pictures, out, "subtitles_from")
    assert written == 1 + IN_FLIGHT  # the first picture's write held the jump
    _, streams = _read(out)
    assert probe(out)["frames"] == written and streams[0]["lines"] == []


def test_a_stop_ends_the_sounds_jump_to_a_first_picture_far_in_at_once(tmp_path):
    """A run from 12 s into a served file (--start, or pictures that begin there): the writer's sound jumps to
    11 s and reads its first packet there on the main thread, and the server stalls every reading past 5 s, for
    good. A stop signal then ends that read at once, no sound is read after it, and the file is finalised,
    playable: its pictures, its sound track empty. The jump waited out its read's time-out (15 s), and the sound
    was then read again from the file's start, which stalled at 5 s for the time-out again."""
    clip = _front_indexed(make_tracks_video(tmp_path / "long.mp4", ("aac",), frames=140, fps=10, seconds=14.0))
    pictures, out = [(image, seconds) for image, seconds in _pictures(clip) if seconds >= 12.0], tmp_path / "out.mp4"
    written, server = _stopped_while_stalled(clip, _inside_a_sound_packet(clip, 5.0), pictures, out, "audio_from")
    assert server.readings.count(0) == 1  # not read again from its start
    assert written == 1 + IN_FLIGHT  # the first picture's write held the jump
    info = probe(out)
    assert info["frames"] == written and info["audio_codec"] == "aac"
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == written
        assert not [packet for packet in container.demux(audio=0) if packet.size]


def test_a_stop_ends_the_sounds_reopening_at_once(tmp_path):
    """The sound read again from the file's start, as where its jump to the run's first picture landed after it,
    the server stalling that new reading inside the file's header, for good: a stop signal, which the run's handler
    notes, ends the opening at once; the input stays as it was and nothing more is read; the run writes its
    pictures and finalises the file. The opening waited out its time-out (5 s) and gave a header read in part,
    and the track took its stream from that ("IndexError"; or, the input closed before, "Container is not open")."""
    clip = _front_indexed(make_tracks_video(tmp_path / "clip.mp4", ("aac",), frames=20, fps=10, seconds=2.0))
    server = _Server(clip.read_bytes(), at=200, behaviour={1: None, 0: "stall"})  # the first reading whole
    out, stop = tmp_path / "out.mp4", threading.Event()
    signalled = threading.Timer(OPENING_STOP_S, os.kill, (os.getpid(), signal.SIGINT))
    try:
        writer = VideoWriter(out, 64, 48, 10, audio_from=ServedFile(server.url))
        track = writer._audio.tracks[0]
        before = track.input
        with signals_stop(stop):
            signalled.start()
            started = time.monotonic()
            track._reopen()
            took = time.monotonic() - started
            signalled.join()
        for image, seconds in _pictures(clip)[:5]:
            writer.write(image, seconds)
        writer.close(complete=False)
    finally:
        server.close()
    assert server.stalled.is_set() and len(server.readings) == 2 and stop.is_set()
    assert took < OPENING_CUT_SHORT_S, took
    assert track.input is before and track._reading_ended
    _no_cut_left()
    assert probe(out)["frames"] == 5


def _noting(_signum, _frame) -> None:
    """A handler that only notes the stop, as the run's does (stream.interrupts.signals_stop)."""


@pytest.mark.parametrize("kept, handler, raised", [("audio_from", _raise_signalled, _Signalled),
                                                   ("subtitles_from", _raise_signalled, _Signalled),
                                                   ("audio_from", _noting, KeyboardInterrupt)])
def test_a_stop_ends_the_opening_of_the_sound_or_subtitles_at_once(tmp_path, kept, handler, raised):
    """The writer opens the served file again for its sound (its subtitles) as the output is made, on the main
    thread; the server stalls inside the file's header, for good. A stop signal 0.5 s in ends the opening at once,
    raised as its handler raises it (the command's raise KeyboardInterrupt), or, where its handler only notes it, as
    the KeyboardInterrupt it stands for. The opening waited for its time-out (5 s) before the signal was even seen,
    and then went on where the handler only noted it: the writer was made of a header read in part, no sound in
    it."""
    clip = _front_indexed_tracks(_subtitled(tmp_path / "in.mp4", "mov_text", cues=CUES)) \
        if kept == "subtitles_from" else \
        _front_indexed(make_tracks_video(tmp_path / "clip.mp4", ("aac",), frames=20, fps=10, seconds=2.0))
    server = _Server(clip.read_bytes(), at=200, behaviour={0: "stall"})
    previous = signal.signal(signal.SIGINT, handler)
    signalled = threading.Timer(OPENING_STOP_S, os.kill, (os.getpid(), signal.SIGINT))
    try:
        signalled.start()
        started = time.monotonic()
        with pytest.raises(raised):
            VideoWriter(tmp_path / "out.mp4", 64, 48, 10, **{kept: ServedFile(server.url)})
        took = time.monotonic() - started
        signalled.join()
    finally:
        signal.signal(signal.SIGINT, previous)
        server.close()
    assert server.stalled.is_set()
    assert took < OPENING_CUT_SHORT_S, took
    _no_cut_left()
    assert not (tmp_path / "out.mp4").exists()
