"""A video file served over HTTP(S) (its length stated) or a VOD HLS playlist (its #EXT-X-ENDLIST), read as a local
file is: network_input tells it from a live stream (stream.network_source's NetworkSource, which opens the address
first and says whether its end is stated) and, where FFmpeg can seek in it (an HLS playlist, a server that takes
Range requests), opens it as a VideoFileSource of its ServedFile: every picture in order, its sound and subtitles
kept by the writer opening it again, --start and --duration sought, a connection that drops taken up where it
stopped. One whose server sends it whole only stays the NetworkSource that found it, read once and in order, its
sound read by the writer (whole_only: each read again from its start where its connection drops). The network's
time-outs (TIMEOUT_S, HLS_TIMEOUT_S) are NetworkSource's, read from there at each call; a stop cuts a read in progress
short as a live stream's is (network_source's _cut), the writer's and a jump's on the main thread too (stop_cuts).
"""
from __future__ import annotations

import errno
import threading
import time
import urllib.parse
from fractions import Fraction
from typing import Any, Callable, ContextManager

import stream.network_source as network
from stream.errors import UserError
from stream.sources import Source, VideoFileSource, input_rate_refusal

# FFmpeg's HTTP protocol reconnects a connection that drops part-way and asks for the rest (a Range request), this
# long at most: a file's pictures then come once each, in order (opened again from its start, they came again)
RECONNECT_OPTIONS = {"reconnect": "1", "reconnect_on_network_error": "1", "reconnect_delay_max": "5"}
# A file's read waits its socket's time-out (TIMEOUT_S), after which FFmpeg's HTTP connects again and asks for the
# rest (a server stalled on one connection may answer the next), and this long more for that, before the file ends
# (ServedFile.stopped_sending). PyAV's read time-out, equal to the socket's, ended every such read first: the stall
# counted as damage, read again on the stalled connection 16 times (80 s) before the video ended.
STALL_RECONNECT_S = network.RECONNECT_S
# What a served file's read fails with where the network failed (FFmpeg's "Input/output error": a connection that
# could not be taken up again), not the file: read again, it only waits again
NETWORK_ERRORS = (errno.ETIMEDOUT, errno.EIO, errno.ECONNRESET, errno.EPIPE, errno.ECONNREFUSED)


def served_as_file(spec: str) -> bool:
    """Whether an address serves a file, whose end is stated (a video file over HTTP(S) with its length, an HLS
    playlist with its #EXT-X-ENDLIST), from its answer's headers (a playlist's text), asked once within
    PAGE_PROBE_S: such a run gets a file's settings, not the live preset. False for anything else, and where the
    address gives no answer (opening it then says why)."""
    parts = urllib.parse.urlsplit(spec.partition("#")[0])
    if parts.scheme.lower() not in ("http", "https"):
        return False
    answer = network._asked(parts, body_most=network.PLAYLIST_MOST if network._says_hls(parts) else 0)
    if answer is None or not 200 <= answer[0] < 300:
        return False
    _, headers, body = answer
    kind = network._kind(headers)
    if network._says_hls(parts) or "mpegurl" in kind:
        return _playlist_ends(parts, body or network._body(parts))
    length = headers.get("Content-Length") or ""
    # a camera's MJPEG (multipart), its snapshot (an image) and a web page are no video file
    return length.isdigit() and int(length) > 0 and not kind.startswith(("multipart/", "text/", "image/"))


def _playlist_ends(parts: urllib.parse.SplitResult, text: bytes) -> bool:
    """Whether an HLS playlist states its end; a master playlist's, its first variant's."""
    if b"#EXT-X-ENDLIST" in text:
        return True
    variant = network._first_variant(parts, text)
    return variant is not None and b"#EXT-X-ENDLIST" in network._body(variant)


def index_out_of_reach(shown: str) -> str:
    """The line for an MP4 or MOV whose index (moov) is at its end, from a server that sends files whole only: FFmpeg
    cannot go back from the index to the pictures (python -m http.server; "answered but gave no picture" said to
    check the camera and the password)."""
    return (f"file {shown} is an MP4 or MOV with its index (moov) at its end, and its server sends files whole only "
            f"(no HTTP Range requests), so its pictures cannot be read as they come; download it and run the file, "
            f"serve it from a server that takes Range requests (most web servers), or give it its index in front: "
            f"ffmpeg -i IN.mp4 -c copy -movflags +faststart OUT.mp4")


def takes_ranges(parts: urllib.parse.SplitResult) -> bool:
    """Whether an HTTP server sends a part of a file asked for (a Range request: 206), as FFmpeg needs to seek in
    it (--start) and to go on where a connection dropped."""
    answer = network._asked(parts, {"Range": "bytes=0-0"})
    return answer is not None and answer[0] == 206


class ServedFile(str):
    """A video file served over HTTP(S) with its length, or a VOD HLS playlist, by its address: read as a local
    file is (VideoFileSource: every frame, --start and --duration sought, its sound and subtitles kept by the
    writer opening it again). str() is the address FFmpeg opens; formatted into a line (f"{path}") or repr'd it is
    redact()'s, so that no message of a file's shows the password. `name` is its path's last part."""

    hls: bool
    whole_only: bool  # its server takes no Range requests: a reading that drops is read again from its start

    def __new__(cls, url: str, hls: bool = False, whole_only: bool = False) -> "ServedFile":
        served = super().__new__(cls, url)
        served.hls, served.whole_only = hls, whole_only
        return served

    def __format__(self, spec: str) -> str:
        return format(network.redact(str(self)), spec)

    def __repr__(self) -> str:
        return repr(network.redact(str(self)))

    @property
    def name(self) -> str:
        parts = urllib.parse.urlsplit(str(self))
        return urllib.parse.unquote(parts.path.rstrip("/").rpartition("/")[2]) or network._where(parts)

    def is_file(self) -> bool:
        """A file (not a pipe read once), though not on this machine's disk: readable_again is False for it, which
        the checks that read a local file's bytes ask."""
        return True

    @property
    def read_timeout_s(self) -> float:
        """How long one read waits: an HLS segment's (its connections take no reconnect options), else the socket's
        time-out and the reconnection after it."""
        return network.HLS_TIMEOUT_S if self.hls else network.TIMEOUT_S + STALL_RECONNECT_S

    def stopped_sending(self, exc: Exception, frames: int) -> str | None:
        """Where a read failed for the network (a stall past read_timeout_s, a connection FFmpeg could not take up
        again) after `frames` frames, the line that ends the file, the frames before kept; None where the file
        itself is at fault (damaged data: read on)."""
        why = self.network_failure(exc)
        if why is None:
            return None
        where = network._where(urllib.parse.urlsplit(str(self)))
        return (f"file {self}: {where} stopped sending it after {network._frames_text(frames)} ({why}); the frames "
                f"before were kept; run it again once the server answers, or download the file and run that")

    def network_failure(self, exc: Exception) -> str | None:
        """Why a read failed, in words, where the network failed (a stall past read_timeout_s, a connection FFmpeg
        could not take up again); None where the file itself is at fault."""
        import av

        if not isinstance(exc, av.error.ExitError) and getattr(exc, "errno", None) not in NETWORK_ERRORS:
            return None
        return network._drop_reason(exc, self.read_timeout_s)

    def cut(self, thread: int) -> None:
        """End `thread`'s read of this file now (a stop), as a network stream's (network_source._cut), until uncut."""
        network._cut(thread)

    def uncut(self, thread: int) -> None:
        network._uncut(thread)

    def stop_cuts(self) -> ContextManager[list[int]]:
        """A read of this file on the main thread (the writer's sound, a seek) that a stop signal ends at once, as
        a stalled server would hold it for the read's time-out (network_source.stop_signals_cut)."""
        return network.stop_signals_cut()

    def av_open(self, **kwargs: Any) -> Any:
        """av.open of the address with a local file's `kwargs`, and the network's time-outs and reconnection; UserError
        in one line where it cannot be opened. Of an HLS master playlist, one variant read (_chosen_variant)."""
        import av
        from av.stream import Discard

        options = {**kwargs.pop("container_options", {}), **RECONNECT_OPTIONS,
                   "timeout": str(round(network.TIMEOUT_S * 1e6))}
        parts, started = urllib.parse.urlsplit(str(self)), time.monotonic()
        try:
            container = av.open(str(self), container_options=options,
                                timeout=(network.TIMEOUT_S, self.read_timeout_s), **kwargs)
        except av.error.FFmpegError as exc:
            why = network.open_failure(exc, parts, elapsed=time.monotonic() - started)
            raise UserError(f"network stream {self}: {why}") from None
        chosen = network._chosen_variant(container)
        if chosen is not None:  # the others' segments never fetched; chosen_video_stream and audio_streams pass them by
            for other in container.streams:
                if not _of_variant(other, chosen[0]):
                    other.discard = Discard.all
        return container


def _of_variant(stream: Any, chosen: Any) -> bool:
    """Whether an HLS master playlist's `stream` is one the `chosen` video's variant plays: chosen itself, a stream
    of the same playlist (its muxed sound: FFmpeg's stream id is its playlist's number), a rendition of that variant
    alone (its sound or subtitles in a playlist of their own, given the variant's bitrate), or one FFmpeg gives no
    variant (a rendition several variants share). Only the pictures of other variants were set aside before: their
    sound kept every variant's segments fetched (by the writer's sound reader, which took each variant's sound for a
    track of its own)."""
    if stream is chosen or stream.id == chosen.id:
        return True
    bitrate = stream.metadata.get("variant_bitrate")
    return bitrate is None or (stream.type != "video" and bitrate == chosen.metadata.get("variant_bitrate"))


def network_input(spec: str, input_rate: Fraction | None = None) -> Source:
    """A network address's source: a live stream's NetworkSource; a file served (_is_file) read as a local file
    is, where FFmpeg can seek in it (an HLS playlist, a server that takes Range requests), at `input_rate`
    (--input-rate) where its pictures carry no times (a raw stream). One whose server sends it whole only is read
    once, in order, as before (opened again from its start after a drop), and its sound kept by a reading of its
    own (whole_only: read again from its start too where its connection drops); no part of it can be sought.
    --input-rate is refused for a live stream and for such a file."""
    source = network.NetworkSource(spec)
    if source.live or not source.hls and not takes_ranges(source.parts):
        if input_rate is not None:
            source.close()
            own = "is a live network stream, which times its own pictures" if source.live else \
                "is served whole only, read once as it comes: download it and give the file"
            raise UserError(input_rate_refusal(source.shown, own))
        if not source.live:
            has_sound = bool(source.container.streams.audio)
            source.audio_path = ServedFile(source.url, whole_only=True) if has_sound else None  # type: ignore
        return source
    url, hls = source.url, source.hls
    source.close()
    served = _made_away(lambda: VideoFileSource(ServedFile(url, hls), input_rate))  # type: ignore[arg-type]
    served.description += f", read as a file ({'its playlist states its end' if hls else 'its length is stated'})"
    return served


def _made_away(make: Callable[[], Source]) -> Source:
    """`make()` (a served file's opening: its connection, its first pictures) on a thread a stop signal cuts short,
    as NetworkSource's first open is (network_source.opened_away); what it made closed where the stop came as it
    ended. On the main thread it waited out FFmpeg's time-out and was then lost in PyAV's error handling ("no
    answer")."""
    made: list[Source] = []
    done, lock = threading.Event(), threading.Lock()
    maker: list[int] = []  # the opening thread, while it opens: a stop cuts its network calls short
    stopped = threading.Event()

    def work() -> None:
        me = threading.get_ident()
        with lock:
            if stopped.is_set():  # the stop came before: open nothing
                return
            maker.append(me)
        try:
            made.append(make())
        finally:
            with lock:  # a cut left on would cut the next thread given this one's ident
                maker.clear()
                network._uncut(me)

    def stop() -> None:
        with lock:
            stopped.set()
            for thread in maker:
                network._cut(thread)

    try:
        network.opened_away(work, stop, done)
    except BaseException:
        if done.is_set():  # ended (by the cut, or just before the stop): what it opened closed
            for source in made:
                source.close()
        raise
    return made[0]
