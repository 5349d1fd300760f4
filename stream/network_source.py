"""Network streams as input: an IP camera's RTSP, a phone's HTTP MJPEG (IP Webcam, DroidCam), HLS, MPEG-TS over
HTTP, UDP or TCP (OBS, ffmpeg), decoded with PyAV (FFmpeg) on the capture thread.

Live as a camera is: the pipeline keeps the newest frame and drops the oldest. A stream that drops part-way (a
camera rebooting, Wi-Fi roaming; an RTSP camera closing the connection) is opened again for a bounded time; one its
sender ends cleanly ends the run as a file's end does. A stream whose end is stated from the start (a video file
served over HTTP with its length, an HLS playlist with its #EXT-X-ENDLIST) is read as a file is instead (_is_file):
every picture, in order, timed by its own clock, as fast as the stages take them; read live, it came in as fast as
the network gave it and the live queue dropped nearly all (2 of 90 frames written). Where FFmpeg can seek in it (an
HLS playlist, a server that takes Range requests), such a file is then opened as a local file is (stream.served_file:
a VideoFileSource of its ServedFile): its sound and subtitles kept, --start and --duration sought, a connection that
drops taken up where it stopped; one its server sends whole only is read here, once and in order, its sound read by
the writer. A password in the address is never shown.

Each picture is treated as a video file's is (VideoFileSource), by the same functions: interlaced pictures (a DVB or
IPTV multicast's 1080i/576i) deinterlaced with bwdif, which holds each back only until the next has come; HDR (HLG,
PQ) and BT.2020 tone-mapped to SDR BT.709; non-square pixels (576i's 16:15, 64:45) scaled square; a display
rotation and mirror (an H.264 display orientation SEI, as a phone app's stream may carry) applied. All but the
deinterlacing are decided from the first picture, as a file's are. Deinterlacing, which needs every picture in
order, runs on the capture thread; the rest (a 1080p HDR picture's tone mapping is most of the CPU a stream costs)
only for the frames the live queue keeps, when a stage first reads the picture (PendingFrame). An MJPEG stream's
pictures, each a JPEG of its own, are not even decoded on the capture thread past each connection's first: only
their headers are read there (a damaged one skipped, as a picture that fails to decode is), and a kept frame's
JPEG is decoded by the stage that first reads it (_Undecoded), so a decoder slower than the stream (1080p MJPEG at
60 fps on a slow laptop) holds back no arrivals. That is where the first picture is progressive, and the stream is
then never deinterlaced; an interlaced one's pictures are all decoded there, in order, for bwdif.

An HLS master playlist's variants are all opened by FFmpeg, which would then read the first listed and download
every variant's segments: the largest up to 1080p (VARIANT_MOST_P) is read instead, and only its segments fetched.

Every connect and read ends after its time-out (PyAV's interrupt callback, which FFmpeg polls every 0.1 s while it
waits): a stall is a drop, reconnected. A stop (interrupt()) ends the call in progress at once, through the same
callback (_cut): no reader thread or connection is left waiting for the time-out. The first open runs on a thread
of its own too, which a stop signal (Ctrl-C, SIGTERM) cuts the same way (opened_away). The first pictures that
measure a rate the stream does not state are taken at their window's end (RATE_WINDOW_S) even with a read in
progress: a camera pausing after its first keyframe starts no later; that read ends on the opening thread, and
frames() gives its picture next.
"""
from __future__ import annotations

import collections
import contextlib
import errno
import itertools
import re
import signal
import socket
import threading
import time
import types
import urllib.parse
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from stream.console import notify, rate_text
from stream.deinterlace import DESCRIPTION as DEINTERLACED, Deinterlacer
from stream.errors import UserError
from stream.frame import Frame, now_ns
from stream.hls_pacing import SegmentPacer
from stream.interrupts import stop_signals
from stream.sources import PictureTreatment, Source, chosen_video_stream, scale_telling_once

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")
TIMEOUT_S = 5.0  # connecting, and the wait for each packet: an unreachable host or a stalled stream fails after this
# An HLS stream's wait for each packet: FFmpeg waits for a live playlist's next segment inside one read, up to 1.5
# target durations (6 s in Apple's guidelines, 10 s in older ones); with TIMEOUT_S such a stream ended at its first.
HLS_TIMEOUT_S = 15.0
FIRST_PICTURE_S = 10.0  # a stream joined part-way decodes from its next keyframe (IP cameras: every 1-4 s)
# a stream that dropped is opened again for this long (a reconnect takes 0.5-3 s) before the run ends
RECONNECT_S = 10.0
# A sender that closed the connection after a whole picture and then answers that it is gone (the port refused, no
# stream at the path) stopped: given this long to come back, the run then ends as at its end (exit 0). Long enough
# for an app or a streaming server restarting (MediaMTX, a phone app: 1-4 s); a camera rebooting (10-60 s) ends the
# run. Without such an answer (a time-out, a host out of reach) it is a drop: RECONNECT_S, exit 2.
ENDED_GRACE_S = 5.0
RETRY_PAUSE_S = 0.5
STALE_S = 2.0  # opened longer ago than this when the run starts (the model loaded meanwhile): opened afresh
SET_UP_REOPEN = "opened again after the set-up"
# Opened longer ago than this (and two frame periods; under STALE_S), the socket holds pictures that came during the
# set-up: passed by to the live one (_caught_up). A shorter set-up's few are given (a recording's first picture held
# that long at most), as a stream that sends faster than it films (a relay's burst) is given whole to the live queue.
BACKLOG_S = 0.25
# The first open's wait on its thread wakes this often: a stop signal the kernel gave that thread, not the main one,
# is handled at the main thread's next wake-up.
OPEN_POLL_S = 0.1
# How long an open a stop signal cut short is waited for before the signal is raised anyway: the cut reaches FFmpeg
# within its 0.1 s poll, not a host name's look-up (getaddrinfo), which the thread then finishes alone.
LEFT_OPEN_S = 1.0
# Stream analysis kept short: FFmpeg's defaults (5 MB, 5 s, and frames read to estimate the rate) held the first
# picture back 1.1 s on a local 25 fps MPEG-TS; with these, 0.34 s. `fflags nobuffer` is left out on purpose: it
# throws the analysed packets away, the first keyframe with them, and the first picture waited a GOP (2.3 s there).
LOW_DELAY = {"probesize": "500000", "analyzeduration": "1000000", "fpsprobesize": "0"}
RATE_PICTURES = 8  # a rate the stream does not state is measured over this many pictures ...
RATE_WINDOW_S = 1.0  # ... or this long from the first, whichever comes first: a stream that pauses waits no longer
RATE_RANGE = (0.1, 240.0)
ASSUMED_RATE = 30.0  # a rate neither stated nor measured (the stream paused, or came in bursts, while measured)
# A picture whose read took less than this was there already (FFmpeg's analysis kept it, or a camera or proxy sent
# its buffer at once on connect): its arrival tells nothing of the camera's rate.
WAITED_NS = 2_000_000
# Pictures read without a wait for this long from the first are no buffer's burst (a sender's buffer holds a few
# pictures, decoded in milliseconds): the decoder, barely keeping up or not at all (4K H.264 at 60 fps on a slow
# CPU), set their pace, which is the rate the pictures come at.
BURST_MOST_S = 0.5
# Formats with no clock of their own: FFmpeg numbers their pictures at a made-up 25 fps, so arrival times count.
UNTIMED_FORMATS = ("mpjpeg", "mjpeg", "jpeg_pipe", "h264", "hevc")
# Formats whose demuxer lets each picture out as soon as its bytes are in: a multipart MJPEG part, read by its
# Content-Length (IP Webcam, DroidCam, mjpg-streamer and IP cameras send one). The others let a picture's packet out
# only once the next picture begins (MPEG-TS's PES, a parser splitting raw H.264 or MJPEG at the next start): after
# a stall, the first packet read holds the picture from before it (_held).
WHOLE_ON_ARRIVAL = ("mpjpeg",)
# Codecs whose every packet is a whole picture that decodes alone, which a stage decodes only for the frames it keeps
# (_Undecoded): what a phone app's or a camera's MJPEG (over HTTP, or RTSP's JPEG) carries. H.264 and HEVC refer to
# the pictures before: every one is decoded in order, on the capture thread.
DEFERRED_CODECS = ("mjpeg",)
JUMP_S = 1.0  # a stream clock this far behind the arrivals (a restart, a loop, drift) is laid on them afresh
SECRET = re.compile(r"([?&;][^=&#]*(?:pass|pwd|token|key|secret|auth|sig)[^=&#]*=)[^&#]*", re.IGNORECASE)
FIX = "check the address, that the camera's or app's streaming is on, and the user name and password"
# An HLS variant's short side at most this: a portrait effect gains nothing from more (the depth network sees
# 256-640 px) and a 4K variant costs four times the decoding; a phone app's 360p beside its 1080p loses detail.
VARIANT_MOST_P = 1080
PAGE_PROBE_S = 2.0  # an address that failed to open asked again for its answer's type (_answers_text)


def is_network_spec(spec: str) -> bool:
    """Whether an input names a network stream (`rtsp://...`, `http://...`, `udp://@:1234`, ...)."""
    scheme, sep, _ = spec.partition("://")
    return bool(sep) and scheme.lower() in NETWORK_SCHEMES


def redact(url: str) -> str:
    """The address as it may be shown: the password (up to the last '@', however it is spelled) and query values
    that look secret (`pwd=`, `token=`) as ***."""
    found = re.match(r"([a-z][a-z0-9+.-]*://)(.*)@(.*)$", url, re.IGNORECASE | re.DOTALL)
    if found and ":" in found.group(2):
        url = f"{found.group(1)}{found.group(2).split(':', 1)[0]}:***@{found.group(3)}"
    return SECRET.sub(r"\1***", url)


def ffmpeg_options(url: str, transport: str = "tcp") -> dict[str, str]:
    """The demuxer and protocol options for `url`: low-delay analysis, RTSP over `transport` (TCP: UDP loses
    packets through NAT and Wi-Fi), and a socket timeout in microseconds (rtmp and srt take theirs as rw_timeout;
    rtmp's `timeout` would make it listen)."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    options = dict(LOW_DELAY)
    micro = str(round(TIMEOUT_S * 1e6))
    options["rw_timeout" if scheme in ("rtmp", "rtmps", "srt") else "timeout"] = micro
    if scheme in ("rtsp", "rtsps"):
        options["rtsp_transport"] = transport
    if scheme == "udp":
        options["overrun_nonfatal"] = "1"  # a burst the reader missed loses packets, not the stream
    return options


def _where(parts: urllib.parse.SplitResult) -> str:
    """host:port as the URL gives them (never the user name or password)."""
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ("this machine" if parts.scheme.lower() == "udp" else "?")
    return f"{host}:{port}" if port else host


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return True


def open_failure(exc: Exception, parts: urllib.parse.SplitResult, transport: str = "tcp",
                 elapsed: float = 0.0) -> str:
    """Why a stream could not be opened after `elapsed` seconds, with the fix: one line naming the host, never the
    password (FFmpeg's own message names the whole URL: only its strerror is used)."""
    import av

    where, scheme = _where(parts), parts.scheme.lower()
    reason = getattr(exc, "strerror", None) or exc.__class__.__name__
    if isinstance(exc, (av.error.HTTPUnauthorizedError, av.error.HTTPForbiddenError)):
        return (f"{where} refused the user name or password ({reason}); give them in the address as "
                f"{scheme}://USER:PASSWORD@{where}/..., as set in the camera's or app's settings")
    if isinstance(exc, av.error.HTTPNotFoundError):
        return f"{where} has no stream at {parts.path or '/'}; check the path (the camera's manual or the app shows it)"
    if isinstance(exc, av.error.ProtocolNotFoundError):
        return f"this FFmpeg (PyAV's) cannot read {scheme}:// streams; relay it as RTSP, HTTP or UDP"
    code = getattr(exc, "errno", None)
    if scheme.startswith("rtsp") and code == errno.EPROTONOSUPPORT:  # the camera answered 461 to SETUP
        other = "add #udp to the address" if transport == "tcp" else "leave #udp out"
        return f"{where} does not stream RTSP over {transport.upper()}; {other}"
    if code == errno.ECONNREFUSED:
        return f"{where} refused the connection: nothing serves a stream on that port ({FIX})"
    if scheme == "udp":
        return (f"nothing arrived on UDP port {parts.port} within {TIMEOUT_S:g} s; check that the sender streams to "
                f"this machine's address and that port, and that no firewall blocks it")
    # RTSP says "invalid data" where its answer never came
    if code == errno.ETIMEDOUT or isinstance(exc, av.error.ExitError) or elapsed >= 0.9 * TIMEOUT_S:
        return f"no answer from {where} within {TIMEOUT_S:g} s ({FIX})"
    if parts.hostname and not _resolves(parts.hostname):
        return f"cannot find the host {parts.hostname}; check the address (or give the device's IP address)"
    if scheme in ("http", "https") and (isinstance(exc, av.error.InvalidDataError) or
                                        (code == errno.EIO and _answers_text(parts))):
        return _no_stream_at(where, scheme, parts.path)
    return f"cannot open the stream from {where}: {reason} ({FIX})"


def _no_stream_at(where: str, scheme: str, path: str) -> str:
    """An HTTP server that answered with what is no video (a phone app's or camera's web page, at the address without
    the stream's path): it said "Invalid data found when processing input", which names no fix."""
    return (f"{where} answered at {path or '/'} with no video stream (a web page, perhaps: the camera's or app's page, "
            f"not its stream); give the stream's own address, as the camera's manual or the app shows it (IP Webcam: "
            f"{scheme}://{where}/video)")


def _answers_text(parts: urllib.parse.SplitResult) -> bool:
    """Whether an http(s) address answers with text (a web page, its type's): FFmpeg says "Input/output error",
    not "Invalid data", for one sent without a length and ended by closing the connection (HTTP/1.0, as small
    embedded servers send a camera's page). Asked once more, for its headers only; False where that fails."""
    answer = _asked(parts)
    if answer is None:
        return False
    status, headers, _ = answer
    kind = _kind(headers)
    # an error's page (a login refused, a server failing) is no web page in place of a stream
    return 200 <= status < 300 and (kind.startswith("text/") or kind.endswith(("html", "xml", "json")))


def _kind(headers: Any) -> str:
    """An answer's Content-Type, without its parameters, in lower case."""
    return (headers.get("Content-Type") or "").split(";")[0].strip().lower()


REDIRECTS_MOST = 5  # redirects followed to a file's answer (a release download, a share link, an object store's)
REDIRECTS = (301, 302, 303, 307, 308)


def _asked(parts: urllib.parse.SplitResult, extra: dict[str, str] | None = None,
           body_most: int = 0) -> tuple[int, Any, bytes] | None:
    """An http(s) address's answer to a GET (`extra` headers beside the login the address gives): its status, its
    headers and up to `body_most` bytes of its body; None where it gives none within PAGE_PROBE_S each. A redirect
    is followed, up to REDIRECTS_MOST, as FFmpeg follows it (a file link answered from a CDN was taken for a
    stream); the login goes to the address's own host only."""
    asked = parts
    for _ in range(REDIRECTS_MOST + 1):
        answer = _asked_once(asked, extra, body_most, login=parts if asked.hostname == parts.hostname else None)
        location = answer[1].get("Location") if answer is not None and answer[0] in REDIRECTS else None
        if not location:
            return answer
        asked = urllib.parse.urlsplit(urllib.parse.urljoin(urllib.parse.urlunsplit(asked), location))
        if asked.scheme.lower() not in ("http", "https"):
            return None
    return None


def _asked_once(parts: urllib.parse.SplitResult, extra: dict[str, str] | None, body_most: int,
                login: urllib.parse.SplitResult | None) -> tuple[int, Any, bytes] | None:
    """One GET of _asked's, with `login`'s user name and password where it has them."""
    import base64
    import http.client
    import ssl

    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname or ""  # IPv6's brackets
    try:
        if parts.scheme.lower() == "https":  # as FFmpeg reads it: a camera's certificate is its own
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, parts.port, timeout=PAGE_PROBE_S, context=ssl._create_unverified_context())
        else:
            connection = http.client.HTTPConnection(host, parts.port, timeout=PAGE_PROBE_S)
    except ValueError:  # a port out of range
        return None
    headers = {"Accept": "*/*", **(extra or {})}
    if login is not None and login.username is not None:
        user = f"{urllib.parse.unquote(login.username)}:{urllib.parse.unquote(login.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
    try:
        connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.headers, answer.read(body_most) if body_most else b""
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()


def _says_hls(parts: urllib.parse.SplitResult) -> bool:
    """Whether the address names an HLS playlist (one that does not is found so when opened: _open)."""
    return parts.path.lower().endswith((".m3u8", ".m3u"))


PLAYLIST_MOST = 1 << 20  # bytes of a playlist read to find its end (a VOD of hours in 2 s segments has less)


def _body(parts: urllib.parse.SplitResult) -> bytes:
    """An http(s) address's body (a playlist's text), up to PLAYLIST_MOST bytes; empty where it gives none."""
    answer = _asked(parts, body_most=PLAYLIST_MOST)
    return answer[2] if answer is not None and 200 <= answer[0] < 300 else b""


# -- cutting a connect or read short ---------------------------------------------------------------------------
# PyAV 18 lets no other thread end a call in progress (closing the container under it crashes), but its time-outs'
# interrupt callback asks av.container.core's `time.monotonic()` whether the call's time-out has passed. While a
# thread is cut, that clock runs ahead for it alone, further at each call, so its call ends at FFmpeg's next poll
# (ExitError), whenever it began. Installed only while a cut is on, or a call a stop signal cuts is in progress
# (stop_signals_cut: a Python clock lets the signal's handler run inside the call): every other call keeps the true
# clock.
CUT_JUMP_S = 1e6  # past any time-out
_cut_lock = threading.Lock()
_cut_threads: set[int] = set()
_watched_threads: set[int] = set()  # in stop_signals_cut: their calls poll the Python clock
_cut_jumps = itertools.count(1)


def _cut_clock() -> float:
    now = time.monotonic()
    return now + CUT_JUMP_S * next(_cut_jumps) if threading.get_ident() in _cut_threads else now


_CUT_CLOCK = types.SimpleNamespace(monotonic=_cut_clock)


def _pyav_timing() -> Any | None:
    """PyAV's module whose `time` its time-outs read; None where this PyAV has none (a stop then waits for the
    call's time-out, as before)."""
    try:
        import av.container.core as core
    except ImportError:
        return None
    return core if getattr(core, "time", None) in (time, _CUT_CLOCK) else None


def _set_clock(core: Any) -> None:
    """The Python clock while a thread is cut or watched, else PyAV's own (under _cut_lock)."""
    core.time = _CUT_CLOCK if _cut_threads or _watched_threads else time


def _cut(thread: int) -> None:
    """End `thread`'s FFmpeg connect or read now, and every one it starts until _uncut."""
    core = _pyav_timing()
    if core is not None:
        with _cut_lock:
            _cut_threads.add(thread)
            _set_clock(core)


def _uncut(thread: int) -> None:
    core = _pyav_timing()
    with _cut_lock:
        _cut_threads.discard(thread)
        if core is not None:
            _set_clock(core)


@contextlib.contextmanager
def stop_signals_cut() -> Iterator[list[int]]:
    """Inside, on the main thread, a stop signal (Ctrl-C, SIGTERM) ends the FFmpeg call in progress at once (_cut:
    a served file's sound read for the writer, a seek, on a server that stalled) and every later one inside; its
    own handler gets it as the call has ended, on the way out. Yields the stop signals that came. Python runs a
    signal's handler on the main thread between its own steps only, which FFmpeg's call held back until its
    time-out (15 s for a served file): the Python clock polled inside the call is such a step. Elsewhere (another
    thread, a PyAV without that clock) nothing changes."""
    came: list[int] = []
    core = _pyav_timing()
    if threading.current_thread() is not threading.main_thread() or core is None:
        yield came
        return
    me = threading.get_ident()

    def cut_now(signum: int, _frame: Any) -> None:
        came.append(signum)
        _cut(me)

    handlers = {signum: signal.getsignal(signum) for signum in stop_signals()}
    handlers = {signum: handler for signum, handler in handlers.items() if callable(handler)}
    with _cut_lock:
        _watched_threads.add(me)
        _set_clock(core)
    for signum in handlers:
        signal.signal(signum, cut_now)
    try:
        yield came
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        with _cut_lock:
            _watched_threads.discard(me)
            if came:  # the cut taken off: the thread's next calls keep the true clock
                _cut_threads.discard(me)
            _set_clock(core)
        for signum in came:  # as Python would have given it, the call over: a second Ctrl-C may raise here
            handlers[signum](signum, None)


def opened_away(work: Callable[[], None], stop: Callable[[], None], done: threading.Event,
                until: Callable[[], bool] = lambda: False) -> None:
    """`work()` (an opening: a connection, its first pictures) on a thread of its own, which sets `done` as it ends,
    while this one waits for that or for `until()`; what work raised is raised here. A stop signal (Ctrl-C,
    SIGTERM), which Python handles on the main thread only between its own steps, is raised here at once, once
    `stop()` has cut work's network call short (_cut) and work has had LEFT_OPEN_S to end. Run on the main thread,
    FFmpeg's call held the signal back until its time-out (5 s, 15 s for HLS), and PyAV's error handling then lost
    it: the open failed ("no answer"), or it went on and the run started as if no Ctrl-C had come."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 (raised on the waiting thread)
            raised.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="network-open", daemon=True).start()
    try:
        while not done.wait(OPEN_POLL_S) and not until():
            pass
    except BaseException:  # KeyboardInterrupt, from the signal's handler
        stop()
        done.wait(LEFT_OPEN_S)
        raise
    if raised:
        raise raised[0]


class _Clock:
    """Capture times from a stream's own presentation times, laid on the pipeline's clock at the earliest arrival
    seen: pictures a network delivers in bursts (Wi-Fi, TCP) keep the camera's spacing, and none is put after its
    arrival. A clock that goes back or falls behind (a reconnect, a stream restarted) is laid anew."""

    def __init__(self) -> None:
        self._offset: int | None = None
        self._last: int | None = None

    def capture_ns(self, seconds: float | None, arrival: int) -> int:
        if seconds is None:  # no clock of its own: when it arrived
            return arrival
        stamp = round(seconds * 1e9)
        late = None if self._offset is None else arrival - (self._offset + stamp)
        if late is None or late > JUMP_S * 1e9 or (self._last is not None and stamp <= self._last):
            self._offset = arrival - stamp
        self._offset = min(self._offset, arrival - stamp)
        self._last = stamp
        return self._offset + stamp

    def held_ns(self, seconds: float | None, arrival: int) -> int:
        """The capture time of a picture the decoder held back and gave only at the stream's end or stall (its
        flush), `arrival` the last real packet's: by the clock as it stood, which that late flush does not lay anew
        (laid on the flush, 5 s after the stall, the recording froze 5 s before its last pictures)."""
        if seconds is None or self._offset is None:
            return arrival
        stamp = round(seconds * 1e9)
        self._last = stamp
        return self._offset + stamp


# -- a live HLS stream's pictures on its own clock -----------------------------------------------------------------
# How far behind a live HLS stream may fall before it skips to its newest pictures, where its playlist states no
# target duration (a segment's most: Apple's guidelines' 6 s)
SEGMENT_S = 6.0
SEGMENT_LEAST_S = 1.0  # the same, from a playlist of shorter segments: a second's jitter is no falling behind
TARGET_DURATION = re.compile(rb"#EXT-X-TARGETDURATION:\s*(\d+(?:\.\d+)?)")


def _segment_s(parts: urllib.parse.SplitResult) -> float:
    """A live HLS playlist's target duration (its segments' longest), from its text or, for a master playlist, its
    first variant's; SEGMENT_S where neither answers with one."""
    text = _body(parts)
    found = TARGET_DURATION.search(text)
    variant = _first_variant(parts, text) if found is None else None
    if variant is not None:
        found = TARGET_DURATION.search(_body(variant))
    return max(float(found.group(1)), SEGMENT_LEAST_S) if found else SEGMENT_S


def _first_variant(parts: urllib.parse.SplitResult, text: bytes) -> urllib.parse.SplitResult | None:
    """A master playlist's first variant's address (None for a media playlist)."""
    lines = [line.strip() for line in text.decode("utf-8", "replace").splitlines()]
    variant = next((line for before, line in zip(lines, lines[1:])
                    if before.startswith("#EXT-X-STREAM-INF") and line and not line.startswith("#")), None)
    if variant is None:
        return None
    return urllib.parse.urlsplit(urllib.parse.urljoin(urllib.parse.urlunsplit(parts), variant))


def _steady_from(waited: list[bool], arrivals: Sequence[int] = ()) -> int:
    """The first picture whose arrival tells the rate of a stream without a clock of its own (`waited`: whether
    each picture's read waited for it; `arrivals`: their arrival times, ns). Not the first: it came with the
    connection (a camera sends its last keyframe at once, then pauses until its next). Nor those after it read
    without a wait: they had been sent before, and arrived as fast as they decoded (measured as 240 fps); unless
    they went on for BURST_MOST_S, when the decoder set the pace."""
    start = 1
    while start < len(waited) and not waited[start]:
        start += 1
    if start > 1 and len(arrivals) >= start and arrivals[start - 1] - arrivals[0] >= BURST_MOST_S * 1e9:
        return 1
    return start


def _rate_from(seconds: list[float]) -> float | None:
    """A rate measured over pictures' times, in a round figure the writer and a virtual camera take; None where
    they tell none (fewer than two, or a rate out of RATE_RANGE: no clamp passes for a measurement)."""
    if len(seconds) < 2 or seconds[-1] <= seconds[0]:
        return None
    rate = (len(seconds) - 1) / (seconds[-1] - seconds[0])
    rate = round(rate) if rate >= 10 else round(rate, 1)
    return rate if RATE_RANGE[0] <= rate <= RATE_RANGE[1] else None


def deinterlaced(found: Iterator[tuple[Any, int]], deinterlacer: Deinterlacer | None) -> Iterator[tuple[Any, int]]:
    """(picture, capture time) with the interlaced pictures deinterlaced. bwdif gives one picture out per picture
    in, in order, so each leaves with the capture time it came with; it holds one back only until the next has
    entered (a frame interval, the least a look-ahead can take), and what it holds comes out at the end."""
    if deinterlacer is None:
        yield from found
        return
    times: collections.deque[int] = collections.deque()

    def pictures() -> Iterator[Any]:
        for picture, capture_ns in found:
            times.append(capture_ns)
            yield picture

    for picture in deinterlacer.frames(pictures()):
        yield picture, times.popleft()


class PendingFrame(Frame):
    """A frame whose BGR picture is made from its decoded picture (an MJPEG stream's: its JPEG, decoded then) when
    first read (by a stage, on the stage's thread), not on the capture thread: the live queue drops the frames the
    stages are too slow for, unconverted.
    Its size is known before (every picture is given at the stream's). A live run's first stage reads it first, on
    its own thread (pipeline._run_stage); the lock keeps a second reader from converting it again."""

    def __init__(self, index: int, capture_ns: int, picture: Any, convert: Callable[[Any], np.ndarray],
                 size: tuple[int, int], pts_seconds: float | None = None) -> None:
        super().__init__(index=index, capture_ns=capture_ns, image=None,  # type: ignore[arg-type]
                         pts_seconds=capture_ns / 1e9 if pts_seconds is None else pts_seconds)
        self._picture, self._convert, self._size = picture, convert, size
        self._lock = threading.Lock()

    @property  # type: ignore[override]
    def image(self) -> np.ndarray:
        if self._picture is not None:
            with self._lock:
                if self._picture is not None:
                    self._image = self._convert(self._picture)
                    self._picture = None  # the decoder's buffer goes back to it
        return self._image

    @image.setter
    def image(self, image: np.ndarray) -> None:  # Frame's __init__, or a stage putting its own picture
        self._image, self._picture = image, None

    @property
    def width(self) -> int:
        return self._size[0] if self._picture is not None else int(self._image.shape[1])

    @property
    def height(self) -> int:
        return self._size[1] if self._picture is not None else int(self._image.shape[0])


class _Undecoded:
    """A picture as its packet came (DEFERRED_CODECS), for a stage to decode: its stream time, as a decoded
    picture's (`time`), is the packet's."""

    def __init__(self, packet: Any) -> None:
        self.packet = packet
        self.time = None if packet.pts is None or packet.time_base is None else float(packet.pts * packet.time_base)


def _codec_of(stream: Any) -> tuple[str, bytes | None]:
    """What a decoder of its own needs of `stream`: its codec's name and a copy of its extradata (a container's own
    Huffman tables: an AVI's MJPEG), taken on the capture thread, which alone opens and closes the stream."""
    context = stream.codec_context
    return context.name, bytes(context.extradata) if context.extradata else None


def _decoder_like(codec: tuple[str, bytes | None], headers_only: bool = False) -> Any:
    """A decoder of its own for a stream's `codec` (_codec_of; a PyAV codec context is for one thread at a time):
    slice threads only, so that each packet's picture comes out of its own decode; `headers_only`: one that reads
    a picture's headers (its size, whether it is a picture at all) and decodes nothing."""
    import av

    name, extradata = codec
    decoder = av.CodecContext.create(name, "r")
    if extradata:
        decoder.extradata = extradata
    decoder.thread_type = "SLICE"
    if headers_only:
        decoder.skip_frame = "ALL"
    return decoder


class NetworkSource(Source):
    """A network stream through PyAV. `rtsp://...#udp` takes RTSP over UDP (a fragment never reaches the camera)."""

    live = True

    def __init__(self, url: str) -> None:
        address, _, fragment = url.partition("#")
        self.url, self.shown = address, redact(url)
        self.named = f"network stream {self.shown}"  # its lines' name: "file ..." once found one (_describe)
        self.parts = urllib.parse.urlsplit(address)
        if fragment not in ("", "udp") or (fragment and self.parts.scheme.lower() not in ("rtsp", "rtsps")):
            raise UserError(f"unknown option #{fragment} in {redact(url)}; the only one is #udp, for RTSP over UDP")
        self.transport = fragment or "tcp"
        self.hls = _says_hls(self.parts)  # its reads wait HLS_TIMEOUT_S
        self._interrupted = threading.Event()  # the run is stopping: read no further, open nothing again
        self._reader: int | None = None  # the thread in frames(), whose call in progress a stop cuts short
        self._reader_lock = threading.Lock()
        self._newest: float | None = None  # the stream time of the newest picture given (HLS: none given twice)
        self._clock = _Clock()
        self._sizes_told: set[tuple[int, int]] = set()
        self._damage_told = False
        # Whether the pictures past each connection's first go to the stages undecoded (DEFERRED_CODECS), decided
        # by the first: an interlaced one is deinterlaced, which needs every picture decoded in order.
        self._defer: bool | None = None
        self._decoders = threading.local()  # each stage thread's own decoder of _Undecoded pictures
        self._codec: tuple[str, bytes | None] = ("mjpeg", None)  # the stream's (_codec_of), for those decoders
        self._good: _Undecoded | None = None  # the newest picture that decoded: a damaged one's stand-in
        self.delivered = 0  # pictures given to the pipeline
        self.stopped: str | None = None  # how the sender was found gone after closing the stream: its end
        # The first pictures, read on the opening thread (_first_pictures) and taken when measured or at the end of
        # RATE_WINDOW_S (_opened_away); the picture a read then in progress brings is _late's, for frames().
        self._head: list[tuple[Any, int]] = []
        self._waited: list[bool] = []  # whether each of _head's reads waited for its picture
        self._late: list[tuple[Any, int]] = []
        self._taken = False  # _head taken: what the opening thread reads next goes to _late
        self._measure_until: float | None = None  # the end of the measuring window, from the first picture
        self._head_lock = threading.Lock()
        self._opener_done = threading.Event()  # the opening thread ended: no read of its own in progress
        head = self._opened_away()
        try:
            self._describe(head)
        except BaseException:  # the opening thread may still be reading: end it, close the connection
            self.close()
            raise

    def _describe(self, head: list[tuple[Any, int]]) -> None:
        """What the stream is, from its first pictures: the treatment of its pictures, its rate, the run line."""
        first = head[0][0]
        self.live = not self._is_file()
        if not self.live:  # a file its server sends whole only (served_file.network_input): said a file, not live
            self.named = f"file {self.shown}"
        # decided from the first picture, as a file's (a picture with another size is scaled to it: _image)
        self.treatment = PictureTreatment(first, self.stream, self.named)
        self.width, self.height = self.treatment.size(first.width, first.height)
        # bwdif decides picture by picture (a broadcast switches); a stream that turns interlaced later is said
        self.interlaced = bool(first.interlaced_frame)
        self.deinterlace = True  # keep_fields() turns it off
        stated = self._stated_rate()
        measured = None if stated else self._measured_rate(head)
        self.fps = stated or measured or ASSUMED_RATE
        if not self.live:
            self._read_as_file(first)
        if self.container.streams.audio and self.live:  # a file's is kept (served_file.network_input)
            notify(f"network stream {self.shown} has sound, which is not kept: only its pictures are processed")
        codec = self.stream.codec_context.name.upper()
        shown = ([self.variant] if self.variant else []) + ([DEINTERLACED] if self.interlaced else []) \
            + self.treatment.parts(f"{first.width}x{first.height}")
        origin = "" if stated else " (measured)" if measured else " (assumed)"
        if not self.live:  # what the user sees: no live run, and why
            shown.append(f"read as a file ({'its playlist states its end' if self.hls else 'its length is stated'})")
        self.description = (f"{self.named} ({codec}) {self.width}x{self.height} "
                            f"@ {rate_text(self.fps)} fps" + origin + "".join(f", {part}" for part in shown))
        # a live HLS stream's pictures are released on its clock (SegmentPacer), which its segments' length bounds
        self._segment_ns = round(_segment_s(self.parts) * 1e9) if self.live and self.hls else None

    def _is_file(self) -> bool:
        """Whether the sender states from the start where the stream ends, as a file does: an HTTP answer of a
        stated length (a video file served; FFmpeg's `size`), an HLS playlist with its #EXT-X-ENDLIST (FFmpeg then
        gives its length; a live one has none). A camera's MJPEG, a live relay (no length) and RTSP, UDP and the
        rest are live; so is a camera's snapshot (_snapshot_only)."""
        if self.parts.scheme.lower() not in ("http", "https") or _one_picture_format(self.container.format.name):
            return False
        if self.hls:
            return self.container.duration is not None
        return (self.container.size or 0) > 0

    def _read_as_file(self, first: Any) -> None:
        """A file run's frames are timed by the stream's own clock from its first picture (`_origin`), each frame
        of an untimed one a period after the one before; its length, where known, is the progress bar's."""
        self._origin = first.time if self.timed and first.time is not None else None
        if self.container.duration:  # microseconds
            self.progress_seconds = self.container.duration / 1e6
            self.frame_count = max(1, round(self.progress_seconds * self.fps))

    def seconds_done(self, frame: Frame) -> float:
        """A file run's seconds of video processed once `frame` is."""
        return (frame.pts_seconds or 0.0) + 1 / self.fps

    def _file_seconds(self, picture: Any) -> float | None:
        """A file run's picture's time from the first (None for a live stream: its capture time is)."""
        if self.live:
            return None
        if self._origin is None or picture.time is None:
            return self.delivered / self.fps
        return picture.time - self._origin

    def keep_fields(self) -> None:
        """`--deinterlace off`: interlaced pictures as decoded, both fields woven (as VideoFileSource.keep_fields:
        a 25p camera in a 50i stream flags progressive pictures interlaced, and bwdif would soften what moves)."""
        self.deinterlace = False
        self.description = self.description.replace(f", {DEINTERLACED}", "")

    # -- opening ------------------------------------------------------------------------------------
    @property
    def read_timeout_s(self) -> float:
        return HLS_TIMEOUT_S if self.hls else TIMEOUT_S

    def _connect(self) -> Any:
        """The opened container, with the time-outs; UserError in one line where it cannot be opened."""
        import av

        started = time.monotonic()
        self.gone: str | None = None  # what the last failed open said of a sender that is gone (_gone_answer)
        try:
            return av.open(self.url, options=ffmpeg_options(self.url, self.transport),
                           timeout=(TIMEOUT_S, self.read_timeout_s), metadata_errors="replace")
        except av.error.FFmpegError as exc:
            self.gone = _gone_answer(exc, self.parts)
            why = open_failure(exc, self.parts, self.transport, time.monotonic() - started)
            raise UserError(f"network stream {self.shown}: {why}") from None

    def _open(self) -> None:
        """Connect and find the video stream; UserError in one line where it cannot."""
        from av.stream import Discard

        container = self._connect()
        if not self.hls and container.format.name.split(",")[0] == "hls":
            self.hls = True  # a playlist at an address that did not say so: opened again with its longer wait
            container.close()
            container = self._connect()
        # not an album cover (an MP3's, an MP4's), which decodes once; of an HLS master playlist's variants, one
        stream, self.variant = _chosen_variant(container) or (chosen_video_stream(container), "")
        if stream is None:
            only = ", only cover art beside its sound" if container.streams.video else ""
            container.close()
            raise UserError(f"network stream {self.shown} carries no video{only}; check the address's path (a "
                            f"camera's main and sub streams have their own)")
        self.container, self.stream = container, stream
        for other in container.streams:  # their packets never demuxed (an HLS variant's: its segments never fetched)
            if other is not stream:
                other.discard = Discard.all
        # Slice threads only: frame threads hold a picture back per thread (8 threads: 320 ms at 25 fps)
        self.stream.thread_type = "SLICE"
        self.timed = container.format.name.split(",")[0] not in UNTIMED_FORMATS
        self.read_at = time.monotonic()  # the end of the last read: from then the socket holds what no one read
        self.read_waited = True  # whether the newest packet's read waited for it (_demuxed)
        self.dropped: str | None = None  # why the stream failed part-way, once it has
        # whether it was the sender closing the connection between pictures (_closed_between_pictures)
        self.closed_cleanly = False
        self._last_packet: Any = None  # the newest packet with data, whose wholeness a close is judged by
        self._read_began = time.monotonic()  # the start of the newest read of a packet
        self.packets = self._decoded()

    def _opened_away(self) -> list[tuple[Any, int]]:
        """_open and _first_pictures on a thread of their own, which a stop signal cuts short (opened_away, through
        interrupt), taken at the end of the measuring window: a read still in progress then is left to that
        thread."""
        opened_away(self._open_here, self.interrupt, self._opener_done, until=self._window_passed)
        with self._head_lock:  # a read still in progress (a stream pausing after its first picture): left to it
            self._taken = True
            return list(self._head)

    def _window_passed(self) -> bool:
        """Whether the measuring window has ended (the opening thread may still be waiting in a read)."""
        return self._measure_until is not None and time.monotonic() >= self._measure_until

    def _open_here(self) -> None:
        """_opened_away's thread: where a stop came, nothing left open, and no cut left on this thread's ident."""
        me = threading.get_ident()
        try:
            with self._reader_lock:  # from here a stop cuts this thread's connect or read short (interrupt)
                self._reader = me
                if self._interrupted.is_set():  # the stop came before: open nothing
                    return
            self._open()
            self._first_pictures()
        finally:
            try:
                self._close_if_stopped()
            finally:  # whatever the close says: a cut left on would cut the next thread given this one's ident
                with self._reader_lock:
                    self._reader = None
                    _uncut(me)

    def _close_if_stopped(self) -> None:
        """What the open left open, once a stop came (no one else will: NetworkSource() raised)."""
        if self._interrupted.is_set() and hasattr(self, "packets"):  # _open's last step: opened
            self.packets.close()  # under the cut still, as frames() does: a read begun under it ends at once
            self.container.close()

    def _first_pictures(self) -> None:
        """The first picture and, where the stream states no rate, those that measure it, into _head as they come.
        The waiting thread takes them at the end of the measuring window, a read in progress or not (a camera
        pausing after its first keyframe held the start for the whole read time-out, 5 s): the picture that read
        brings is then _late's, given first by frames(), and the stall no drop."""
        measuring = self._stated_rate() is None
        while True:
            asked = now_ns()
            found = next(self.packets, None)
            with self._head_lock:
                self.read_at = time.monotonic()
                if self._taken:
                    self._late.extend([found] if found is not None else [])
                    return
                if found is None and self._head:  # a drop while measuring: the run opens it again
                    return
                if found is None:
                    mp4 = "mp4" in self.container.format.name  # FFmpeg's mov demuxer: "mov,mp4,m4a,3gp,3g2,mj2"
                    self.container.close()
                    if mp4 and self.parts.scheme.lower() in ("http", "https"):
                        from stream.served_file import index_out_of_reach, takes_ranges  # it imports this module

                        if not takes_ranges(self.parts):
                            raise UserError(index_out_of_reach(self.shown))
                    raise UserError(f"network stream {self.shown}: {_where(self.parts)} answered but gave no picture "
                                    f"({self.dropped or 'the stream ended'}; {FIX})")
                self._head.append(found)
                self._waited.append(found[1] - asked >= WAITED_NS)  # untimed: the capture time is the arrival
                if self._measure_until is None:
                    self._measure_until = time.monotonic() + RATE_WINDOW_S
                if not measuring or self._window_passed() or \
                        len(self._head) - self._steady_start(self._head) >= RATE_PICTURES:
                    return

    def _measured_rate(self, head: list[tuple[Any, int]]) -> float | None:
        """The rate the first pictures tell: by the stream's own clock where it has one (pictures that arrived in
        a burst came from a steady camera), else by their arrivals, from the first that tells it."""
        if self._clocked(head):
            return _rate_from([picture.time for picture, _ in head])
        return _rate_from([capture / 1e9 for _, capture in head[self._steady_start(head):]])

    def _clocked(self, head: list[tuple[Any, int]]) -> bool:
        """Whether the stream's own clock times these pictures (their rate then measured by it)."""
        return self.timed and all(picture.time is not None for picture, _ in head)

    def _steady_start(self, head: list[tuple[Any, int]]) -> int:
        """The first of these pictures that tells the rate: the first where the stream's clock times them (a burst
        on connect changes no presentation time: the measurement ends at RATE_PICTURES, not a second later), else
        as their reads' waits and arrivals say (_steady_from)."""
        if self._clocked(head):
            return 0
        return _steady_from(self._waited[:len(head)], [arrival for _, arrival in head])

    def _stated_rate(self) -> float | None:
        """The stream's own average rate where it has a clock and states a plausible one."""
        rate = self.stream.average_rate if self.timed else None
        return float(rate) if rate and RATE_RANGE[0] <= rate <= RATE_RANGE[1] else None

    # -- reading ------------------------------------------------------------------------------------
    def _demuxed(self) -> Iterator[tuple[Any, bool]]:
        """The stream's packets, PyAV's flushing ones at its end included, each with whether it was held back: a
        flush, a packet let out only once a read had waited its whole time-out (MPEG-TS gives a picture's packet
        when the next begins: at a stall, the time-out later), and those let out with it (_held). `dropped` is set
        where the end came once a read had waited (nearly: a socket's own time-out may come first) its whole
        time-out: FFmpeg's HLS and MPEG-TS demuxers make a read's failure the end of their stream. `read_waited`:
        whether the newest packet's read waited for it (it was not in the socket already)."""
        packets = self.container.demux(self.stream)
        held = False
        while True:
            asked = self._read_began = time.monotonic()
            packet = next(packets, None)
            if packet is None:
                return
            if packet.size:
                self._last_packet = packet
            waited = time.monotonic() - asked
            self.read_waited = waited >= WAITED_NS / 1e9
            stalled = waited >= 0.9 * self.read_timeout_s
            if not packet.size and not self.dropped and stalled:
                self.dropped = _drop_reason(None, self.read_timeout_s)
            held = self._held(packet, stalled, held and not self.read_waited)
            yield packet, held

    def _held(self, packet: Any, stalled: bool, with_held: bool) -> bool:
        """Whether a packet's pictures came before its read (their capture time then the last real arrival's, or the
        stream clock as it stood: _Clock.held_ns): a flush's; after a stall, the first packet of a format that lets a
        picture out only once the next begins (not WHOLE_ON_ARRIVAL's); and, of a timed stream, those let out with it
        (`with_held`: read at once after a held one), whose own clock keeps their spacing. An untimed stream's
        pictures after that first came after the stall, burst or not: each its own arrival (given the arrival
        before the stall, a 4.5-5 s stall's resumed burst of MJPEG was timed before it)."""
        if not packet.size:
            return True
        if self.timed and with_held:
            return True
        return stalled and self.container.format.name.split(",")[0] not in WHOLE_ON_ARRIVAL

    def _decoded(self) -> Iterator[tuple[Any, int]]:
        """(picture, capture time) as they decode, until the stream ends: cleanly, or dropped (`dropped` then
        says why: a reset, a stall past its read time-out). A packet the decoder refuses (lost on the way, or before
        the first keyframe of a stream joined part-way) is skipped. Past the first picture of a stream that defers
        (DEFERRED_CODECS), each packet whose headers read is given undecoded (_Undecoded)."""
        import av

        pictures, deadline, last_arrival = 0, time.monotonic() + FIRST_PICTURE_S, now_ns()
        # a stage's decoder is made from the codec as this thread last opened it, not from a stream that a reconnect
        # may be closing meanwhile
        self._codec = _codec_of(self.stream)
        headers = _decoder_like(self._codec, headers_only=True) if self._defers() is not False else None
        try:
            for packet, held in self._demuxed():
                if self._interrupted.is_set():
                    return
                if not pictures and time.monotonic() > deadline:  # packets that never make a picture
                    self.dropped = f"no picture within {FIRST_PICTURE_S:g} s"
                    return
                if not packet.size and self.dropped and not self.live:
                    continue  # a file's held pictures: read again, after the frames given, in order (_flushed)
                # before decoding, as a camera's frame counts from its delivery; a held packet's pictures came with the
                # last real one (it came out at the stream's end, or a stall's time-out later)
                arrival = last_arrival if held else now_ns()
                last_arrival = arrival
                try:
                    if pictures and packet.size and headers is not None and self._defers():
                        # the headers alone: a JPEG cut short or garbled fails here as its decode would
                        headers.decode(packet)
                        decoded = [_Undecoded(packet)]
                    else:
                        decoded = self.stream.decode(packet)
                except av.error.FFmpegError:
                    self._tell_damage(pictures)
                    continue
                for picture in decoded:
                    pictures += 1
                    if self._defer is None:
                        self._defer = self._defers() is not False and not picture.interlaced_frame
                    if pictures == 1 and headers is not None:
                        self._good = _Undecoded(packet)
                    seconds = picture.time if self.timed else None
                    clock = self._clock.held_ns if held else self._clock.capture_ns
                    yield picture, clock(seconds, arrival)
        except av.error.FFmpegError as exc:
            self.dropped = _drop_reason(exc, self.read_timeout_s)
            self.closed_cleanly = self._closed_between_pictures(exc)
            if self.live:
                yield from self._flushed(last_arrival)
            return
        if self.dropped:  # a stall the demuxer ended as its end
            return
        if self.parts.scheme.lower().startswith("rtsp"):  # a camera never ends its stream: it restarted, or lost us
            self.dropped, self.closed_cleanly = "the camera closed the connection", True

    def _closed_between_pictures(self, exc: Exception) -> bool:
        """Whether a read's failure was the sender closing the connection after a whole picture: FFmpeg's
        "Input/output error", which HTTP (an answer of no stated length) and RTMP give for a close, before the read
        time-out (whose own end says so too), the last packet whole (_whole). A reset ("Connection reset by peer"),
        a time-out, or a close in the middle of a picture is a drop; so is a close before the end a file states."""
        if not self.live or getattr(exc, "errno", None) != errno.EIO or self._last_packet is None:
            return False
        if time.monotonic() - self._read_began >= 0.9 * self.read_timeout_s:
            return False
        return _whole(self._last_packet, self.stream.codec_context.name)

    def _flushed(self, arrival: int) -> Iterator[tuple[Any, int]]:
        """The pictures the decoder still holds (a stream with B-frames: one or two) where a live stream's read failed
        (a stall's time-out): they came before it, and were lost with it. None after a stop; nor of a file, opened
        again from its start: forced out, its held B-frames' references came later, and the pictures between were
        skipped as given (_first_new)."""
        import av

        if self._interrupted.is_set():
            return
        try:
            pictures = self.stream.decode(None)
        except av.error.FFmpegError:
            return
        for picture in pictures:
            if picture.time_base is None:  # PyAV times a flushed picture by no packet's: the stream's
                picture.time_base = self.stream.time_base
            yield picture, self._clock.held_ns(picture.time if self.timed else None, arrival)

    def _defers(self) -> bool | None:
        """Whether this connection's pictures past its first are given undecoded: its codec is one to defer, and
        the stream's first picture (None before it) was progressive."""
        if self.stream.codec_context.name not in DEFERRED_CODECS:
            return False
        return self._defer

    def _tell_damage(self, pictures: int) -> None:
        """Said once a run, for a damaged picture after the first (before it: a stream joined part-way)."""
        if pictures and not self._damage_told:
            self._damage_told = True
            notify(f"{self.named} lost data on the way; the damaged pictures are skipped")

    def _decoded_image(self, undecoded: _Undecoded) -> np.ndarray:
        """An undecoded picture's BGR (on the stage's thread, by its own decoder), as _image makes it. One that
        does not decode, though its headers read, is the newest picture that did: a frame already given."""
        import av

        decoder = getattr(self._decoders, "decoder", None)
        if decoder is None:
            decoder = self._decoders.decoder = _decoder_like(self._codec)
        for attempt in (undecoded, self._good):
            try:
                pictures = decoder.decode(attempt.packet) if attempt is not None else []
            except av.error.FFmpegError:
                pictures = []
            if pictures:
                self._good = attempt
                return self._image(pictures[-1])
            self._tell_damage(1)
        return np.zeros((self.height, self.width, 3), np.uint8)  # nothing decoded yet: no picture to repeat

    def frames(self) -> Iterator[Frame]:
        # the opening thread's read still in progress past the measuring window: its picture comes first, and a stop
        # meanwhile cuts it (it is still the reader)
        self._opener_done.wait()
        reader = threading.get_ident()
        with self._reader_lock:  # from here a stop cuts this thread's connect or read short (interrupt)
            self._reader = reader
        try:
            if not self._interrupted.is_set():
                yield from self._frames()
        finally:
            # the demuxer's time-out set aside first: a read begun under the cut took the clock run ahead as its start
            self.packets.close()
            with self._reader_lock:
                self._reader = None
                _uncut(reader)

    def _frames(self) -> Iterator[Frame]:
        # each picture's own time base; none for a stream that defers, whose first picture was progressive
        deinterlacer = Deinterlacer(None) if self.deinterlace and not self._defer else None
        pacer = self._segment_pacer()
        pictures = self._pictures() if pacer is None else pacer.paced(self._pictures())
        for picture, capture_ns in deinterlaced(pictures, deinterlacer):
            if self._interrupted.is_set():  # what the filter held when a stop came: not given
                return
            if deinterlacer is not None and not self.interlaced and deinterlacer.first_interlaced is not None:
                self.interlaced = True
                notify(f"{self.named} turns interlaced at frame {self.delivered + 1}: its interlaced "
                       f"pictures are {DEINTERLACED}")
            # the capture time as the presentation time, as a camera's: a recording plays at the pace filmed
            convert = self._decoded_image if isinstance(picture, _Undecoded) else self._image
            # pictures the pacer skipped leave a gap in the indices: the run counts them dropped, as the queue's
            index = self.delivered + (pacer.skipped if pacer is not None else 0)
            yield PendingFrame(index, capture_ns, picture, convert, (self.width, self.height),
                               self._file_seconds(picture))
            self.delivered += 1
        if self.delivered and not self._interrupted.is_set():
            if self.stopped is not None:  # closed, then found gone (_reopen_or_end): its end, not a drop
                notify(f"network stream {self.shown} ended (its sender stopped) after {_frames_text(self.delivered)}: "
                       f"it closed the connection, and {self.stopped}")
                return
            if self.delivered == 1 and _one_picture_format(self.container.format.name):
                raise UserError(_snapshot_only(self.shown, self.parts))
            notify(f"{self.named} ended{' (its sender closed it)' if self.live else ''} after "
                   f"{_frames_text(self.delivered)}")

    def _segment_pacer(self) -> SegmentPacer | None:
        """A live HLS stream's pacer, which releases its pictures on its clock; None for every other stream."""
        if not (self.live and self.hls) or self._segment_ns is None:
            return None
        return SegmentPacer(round(1e9 / self.fps), self._segment_ns, self._interrupted.wait, name=self.shown)

    def _pictures(self) -> Iterator[tuple[Any, int]]:
        """(picture, capture time) as decoded, opened again across drops, until the sender ends the stream or a
        stop comes; UserError where it stays away."""
        pictures: Iterator[tuple[Any, int]] = iter(self._head + self._late)
        self._head, self._late = [], []
        stale_s = time.monotonic() - self.read_at
        if self.live and stale_s > STALE_S:
            # its socket held what came while the model loaded: the live stream from now on instead (a file's start
            # is no stale picture)
            pictures = self._reopen_or_end(SET_UP_REOPEN, quiet=True)
        elif self.live and not self.hls and stale_s > max(BACKLOG_S, 2 / self.fps):
            pictures = self._caught_up(pictures, stale_s)
        while True:
            found = next(pictures, None) or next(self.packets, None)
            if self._interrupted.is_set():  # a stop: not the stream's end, nor a drop to reconnect after
                return
            if found is None and self.dropped and self.stopped is None:
                pictures = self._reopen_or_end(self.dropped, closed=self.closed_cleanly)
                continue
            if found is None:
                return
            self._newest = found[0].time
            yield found

    def _caught_up(self, before: Iterator[tuple[Any, int]], most_s: float) -> Iterator[tuple[Any, int]]:
        """The stream's picture of now where the set-up (the model loading) left pictures waiting: those read before
        it (`before`) and those the socket holds, read without a wait, are passed by up to the first whose read
        waited for it, the live stream's: the run starts there, as a camera's does (neither counts what came before it
        as drops). Given at once, the first stage took the oldest while the live queue dropped the rest: a
        recording's first picture stood still for the set-up's length (0.5-1.8 s), its latency as long. Read for no
        longer than the set-up took (`most_s`): a decoder slower than the stream, which never catches up, gives its
        newest then."""
        newest: tuple[Any, int] | None = None
        for newest in itertools.chain(before, self._read_until_live(most_s)):
            pass
        if newest is not None:
            yield newest

    def _read_until_live(self, most_s: float) -> Iterator[tuple[Any, int]]:
        """The pictures read for up to `most_s`, the last the first whose read waited (or the stream's end, a drop,
        a stop)."""
        until = time.monotonic() + most_s
        while time.monotonic() < until and not self._interrupted.is_set():
            found = next(self.packets, None)
            if found is None:
                return
            yield found
            if self.read_waited:
                return

    def _image(self, picture: Any) -> Any:
        """BGR, treated as the first picture said, at the size the stream started with (a camera whose stream
        changed size after a reconnect is scaled to it; each other size said once)."""
        image = self.treatment.image(picture)
        if image.shape[:2] == (self.height, self.width):
            return image
        return scale_telling_once(image, self.width, self.height, self._sizes_told, lambda width, height: (
            f"{self.named} now delivers {width}x{height} pictures; they are scaled to the "
            f"{self.width}x{self.height} it started with"))

    def _reopen_or_end(self, reason: str, quiet: bool = False, closed: bool = False) -> Iterator[tuple[Any, int]]:
        """Open the stream again until it gives a picture (the one yielded) or RECONNECT_S have passed; UserError,
        the run's end, where it stays away. Nothing, at once, once interrupted. Where the sender had `closed` the
        connection after a whole picture, frames given, and every try for ENDED_GRACE_S found it gone (refused, no
        stream there), it stopped: nothing, and `stopped` says how it was found (the stream's end, not a drop)."""
        started, gone_since = time.monotonic(), None
        while not self._interrupted.is_set():
            self.container.close()
            try:
                self._open()
                found = self._first_new()
                cause = self.dropped or f"{_where(self.parts)} answered but gave no picture"
            except UserError as exc:
                found, cause = None, _last_cause(exc)
            gone_since = (gone_since or time.monotonic()) if self.gone and closed and self.delivered else None
            if gone_since is not None and time.monotonic() - gone_since >= ENDED_GRACE_S:
                self.stopped = self.gone
                return
            if found is not None:
                if not quiet:
                    notify(self._came_back(reason, time.monotonic() - started))
                yield found
                return
            if self._interrupted.is_set():  # the stop cut this try short: no failure of the stream's
                return
            if time.monotonic() - started + RETRY_PAUSE_S >= RECONNECT_S:
                raise UserError(self._stayed_away(reason, cause))
            self._interrupted.wait(RETRY_PAUSE_S)

    def _stayed_away(self, reason: str, cause: str) -> str:
        """The line for a stream that did not come back within RECONNECT_S. Opened again once the model had loaded
        (its first pictures stale by then), before any frame, it is a sender that takes one connection only (`ffmpeg
        -listen 1`), which the line said as "stopped delivering frames after 0"."""
        if reason == SET_UP_REOPEN and not self.delivered:
            return (f"network stream {self.shown} was opened again once the model had loaded (what it had sent by "
                    f"then was stale) and did not answer within {RECONNECT_S:g} s ({cause}); a sender that serves "
                    f"one connection only cannot be read so: let it take more (ffmpeg: -listen 2) or serve it "
                    f"through a streaming server")
        if not self.live:
            return (f"{self.named}: its server stopped sending it after {_frames_text(self.delivered)} ({reason}) "
                    f"and did not answer again within {RECONNECT_S:g} s ({cause}); the frames before were kept; run "
                    f"it again once the server answers, or download the file and run that")
        return (f"network stream {self.shown} stopped delivering frames after {_frames_text(self.delivered)} "
                f"({reason}) and did not come back within {RECONNECT_S:g} s ({cause}); the frames before were kept")

    def _came_back(self, reason: str, seconds: float) -> str:
        """The line for a stream that dropped and came back; for a file its server sends whole only, read again
        from its start."""
        if not self.live:
            return (f"{self.named}: its connection dropped ({reason}); read again from its start after {seconds:.1f} "
                    f"s (its server sends it whole only), the frames already given passed by")
        return f"network stream {self.shown} dropped ({reason}) and came back after {seconds:.1f} s"

    def _first_new(self) -> tuple[Any, int] | None:
        """The stream's first picture after it was opened again; of an HLS playlist, the first newer than those
        given: a live playlist is read from three segments back, the same segments where it had stalled; of a file,
        read again from its start, the first past those given."""
        for found in self.packets:
            again = self.hls or not self.live
            old = again and None not in (self._newest, found[0].time) and found[0].time <= self._newest
            if not old:
                return found
        return None

    def interrupt(self) -> None:
        """A stop (q, Ctrl-C, SIGTERM): the reconnecting gives up, the connect or read in progress ends at once
        (_cut), and frames() returns; its thread then closes the connection."""
        self._interrupted.set()
        with self._reader_lock:
            if self._reader is not None:
                _cut(self._reader)

    def close(self) -> None:
        if not self._opener_done.is_set():  # closing the container under its read would crash: cut, and it closes
            self.interrupt()
            self._opener_done.wait(LEFT_OPEN_S)
        if self._opener_done.is_set():
            self.container.close()


def _frames_text(count: int) -> str:
    return f"{count} frame{'' if count == 1 else 's'}"


def _one_picture_format(name: str) -> bool:
    """Whether FFmpeg read the address as still pictures (image2 by a .jpg name, jpeg_pipe and the like by content):
    a camera's snapshot address gives one and ends, where a stream of them (raw MJPEG) goes on."""
    return name == "image2" or name.endswith("_pipe")


def _snapshot_only(shown: str, parts: urllib.parse.SplitResult) -> str:
    """The line for an address that served one still picture and ended: a camera's snapshot (/shot.jpg), not its
    stream. It ran as a one-frame video and said only "ended (its sender closed it) after 1 frames"."""
    return (f"network stream {shown} served one still picture and ended: that address is the camera's or app's "
            f"snapshot, not its video stream; give the stream's own address, as the camera's manual or the app shows "
            f"it (IP Webcam: {parts.scheme}://{_where(parts)}/video)")


def _chosen_variant(container: Any) -> tuple[Any, str] | None:
    """An HLS master playlist's variant to read (None where the stream has no variants): the largest whose short
    side is at most VARIANT_MOST_P (a portrait 1080x1920 counts as 1080p), the highest bitrate of equal ones, else
    the smallest; and the run line's words for it. FFmpeg itself would read the first listed, whatever its size."""
    variants = [s for s in container.streams.video if "variant_bitrate" in s.metadata and s.codec_context.width > 0]
    if len(variants) < 2:
        return None

    def short_side(stream: Any) -> int:
        return min(stream.codec_context.width, stream.codec_context.height)

    def bitrate(stream: Any) -> int:
        found = re.match(r"\d+", stream.metadata["variant_bitrate"])
        return int(found.group()) if found else 0

    small = [s for s in variants if short_side(s) <= VARIANT_MOST_P]
    chosen = max(small, key=lambda s: (short_side(s), bitrate(s))) if small else min(variants, key=short_side)
    sizes = sorted({(short_side(s), f"{s.codec_context.width}x{s.codec_context.height}") for s in variants})
    why = f"the largest up to {VARIANT_MOST_P}p" if small else f"the smallest: none is {VARIANT_MOST_P}p or less"
    return chosen, (f"HLS variant {chosen.codec_context.width}x{chosen.codec_context.height} of "
                    f"{', '.join(size for _, size in sizes)} ({why})")


def _drop_reason(exc: Exception | None, waited_s: float) -> str:
    """What ended a stream part-way (None: a read's time-out), in words (FFmpeg says "Input/output error" for a
    closed connection)."""
    import av

    code = getattr(exc, "errno", None)
    if exc is None or code == errno.ETIMEDOUT or isinstance(exc, av.error.ExitError):
        return f"nothing arrived for {waited_s:g} s"
    if code in (errno.EIO, errno.ECONNRESET, errno.EPIPE):
        return "the connection was closed"
    return getattr(exc, "strerror", None) or exc.__class__.__name__


def _whole(packet: Any, codec: str) -> bool:
    """Whether a packet holds its whole picture. FFmpeg flags one corrupt where the data ended before it did: an
    MJPEG part cut short of its Content-Length; also a part of no stated length, read up to the next boundary, which
    a close leaves out: that one is whole where its JPEG ends with its end-of-image marker."""
    if not packet.is_corrupt:
        return True
    return codec == "mjpeg" and bytes(packet).rstrip(b"\r\n").endswith(b"\xff\xd9")


def _gone_answer(exc: Exception, parts: urllib.parse.SplitResult) -> str | None:
    """What a failed open says of a sender that is gone, in words; None where it says nothing sure (a time-out, a
    host out of reach, a reset, a login refused): the port refusing connections; an HTTP or RTSP server's 404, other
    4xx (410 Gone) or 5xx (503: no stream to give); an RTMP server's error status to play
    (NetStream.Play.StreamNotFound, .Failed: FFmpeg's "Operation not permitted") or its _error answer (FFmpeg's
    "Unknown error")."""
    import av

    where, path = _where(parts), parts.path or "/"
    if getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return f"{where} then refused the connection"
    if isinstance(exc, (av.error.HTTPNotFoundError, av.error.HTTPOtherClientError, av.error.HTTPServerError)):
        return f"{where} then had no stream at {path} ({getattr(exc, 'strerror', None) or exc.__class__.__name__})"
    rtmp = parts.scheme.lower() in ("rtmp", "rtmps")
    if rtmp and (getattr(exc, "errno", None) == errno.EPERM or isinstance(exc, av.error.UnknownError)):
        return f"{where} then had no stream at {path} (it refused to play it)"
    return None


def _last_cause(exc: UserError) -> str:
    """The cause part of an open failure's line (after the stream's name)."""
    return str(exc).split(": ", 1)[-1]

