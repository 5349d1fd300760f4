"""Cameras through OpenCV (V4L2, AVFoundation, Media Foundation): `camera:N?...` read and checked, the mode asked
for and the one given, why a camera did not open, and the source that reads it (opened again after a hiccup)."""
from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from stream.console import notify
from stream.errors import UserError
from stream.frame import Frame, now_ns
from stream.hints import camera_permission_hint
from stream.images import opencv_quiet
from stream.network_source import PendingFrame
from stream.sources import Source, number, parse_size, query, refuse_unknown, scale_telling_once

# V4L2 stamps each buffer when the camera delivered it, on CLOCK_MONOTONIC, which is now_ns's clock on
# Linux (time.perf_counter_ns): counted from there, latency includes the time a frame waited in the
# driver's queue. OpenCV reports the stamp as CAP_PROP_POS_MSEC; other backends report something else.
# The first frame decides: a stamp older than this, or from the future, is on another clock, and the run
# then counts from when frames were read.
DRIVER_STAMP_MAX_AGE_NS = 2_000_000_000


def driver_timestamp_ns(capture: Any) -> int:
    """The driver's timestamp of the frame just read, in nanoseconds."""
    return round(capture.get(cv2.CAP_PROP_POS_MSEC) * 1e6)


def _backend_name(capture: Any) -> str:
    try:
        return capture.getBackendName()
    except (cv2.error, AttributeError):
        return ""


# OpenCV's V4L2 backend waits this many seconds (10 by default) in each read of a camera that stopped sending (a
# stalled USB webcam) before the read fails and the camera is opened again: the picture stood still that long with
# no word. Read once a process, at the first wait; a value the user set is kept.
V4L2_SELECT_TIMEOUT = ("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", "3")


def _open_camera(index: int) -> cv2.VideoCapture:
    """Open a camera quietly: probing every backend for a missing camera prints several error lines."""
    os.environ.setdefault(*V4L2_SELECT_TIMEOUT)
    with opencv_quiet():
        return cv2.VideoCapture(index)


MAX_CAMERA_INDEX = 1023
# A camera that stops delivering (a USB hiccup, a driver reset, its cable pulled out and plugged in again: a few
# seconds by hand, then the device's enumeration) is opened again for this long before the run gives up, as a network
# stream is. It was 1.5 s, too short for a cable plugged back in. A stop (q, Ctrl-C) ends the reopening at once.
CAMERA_RECONNECT_S = 10.0
CAMERA_RETRY_PAUSE_S = 0.1
# How long closing waits for a read in progress (a frame period or two); one still waiting in the driver then (a
# stalled camera at a stop) keeps its capture, which is not released under it.
CAMERA_CLOSE_WAIT_S = 0.5


CAMERA_FORMATS = {"auto": None, "mjpg": "MJPG", "yuyv": "YUYV"}
# Above this many pixels a USB 2 webcam's uncompressed YUYV mode runs at a few frames a second (1080p
# YUYV is ~100 MB/s at 30 fps, USB 2 carries ~40): ask for its MJPG mode unless told otherwise.
MJPG_ABOVE_PIXELS = 640 * 480


def _fourcc_text(code: float) -> str:
    value = int(code)
    text = "".join(chr((value >> (8 * i)) & 0xFF) for i in range(4))
    return text if value and text.isprintable() else "?"


def _whole(value: float) -> int:
    """A size a backend reported, 0 where it gave none it could tell (NaN, negative)."""
    return int(value) if 0 < value < math.inf else 0


# Reads in a row that answer ok but hold no picture (MSMF while it starts, a USB glitch) skipped before the
# camera counts as stopped and is opened again.
EMPTY_READS_SKIPPED = 10


def as_bgr(image: Any) -> Any:
    """A camera's picture as the BGR uint8 HxWx3 the stages take: grey (IR and monochrome cameras) and BGRA
    (some backends) converted, 16 bits a sample brought to 8; None for anything else."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.dtype != np.uint8:
        return None
    channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else 0
    if channels == 3:
        return image
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return None


def _is_empty(image: Any) -> bool:
    return image is None or getattr(image, "size", 0) == 0


def _bytes_in_a_row(image: Any) -> bool:
    """Whether a read gave one row (or column) of bytes: a buffer as the driver filled it (CAP_PROP_CONVERT_RGB
    off), not a picture."""
    return image.dtype == np.uint8 and image.ndim <= 2 and image.shape[0] in (1, image.size)


def is_jpeg(image: Any) -> bool:
    """Whether a read gave a JPEG's bytes (V4L2's MJPEG with CAP_PROP_CONVERT_RGB off), not a picture."""
    return _bytes_in_a_row(image) and image.size > 2 and image.flat[0] == 0xFF and image.flat[1] == 0xD8


def is_raw_row(image: Any) -> bool:
    """Whether a read gave a buffer of bytes, not a picture: a JPEG, or bytes of a kind this camera sends in its
    "MJPG" mode that only OpenCV's own decoding takes."""
    return _bytes_in_a_row(image) and image.size > 64


def ask_for_jpeg(capture: Any, mode: CameraMode) -> bool:
    """Ask a V4L2 capture in an MJPEG mode for each frame's JPEG bytes (a copy) instead of its decoded picture: the
    first stage decodes the frames the live queue keeps (PendingFrame), the dropped ones never. OpenCV decoded every
    one on the capture thread (2.4 ms of CPU a 1280x720 frame, 5 ms at 1920x1080): at 1280x720 and 30 fps shown at
    ~15 on two busy cores, half the frames decoded for nothing, 38-39 ms of CPU a frame shown where 35 now. Other
    backends, and other formats (YUYV's conversion costs well under a millisecond), are read as before."""
    if _backend_name(capture) != "V4L2" or mode.fourcc != "MJPG":
        return False
    try:
        return bool(capture.set(cv2.CAP_PROP_CONVERT_RGB, 0))
    except cv2.error:
        return False


@dataclass(frozen=True)
class CameraMode:
    """The mode a camera really gave, and what it could not give of what was asked."""

    width: int
    height: int
    fps: float
    fourcc: str
    shortfall: tuple[str, ...] = ()

    def __str__(self) -> str:  # e.g. "1280x720 @ 30 fps MJPG (asked 1920x1080: the camera has no such mode)"
        mode = f"{self.width}x{self.height} @ {self.fps:g} fps {self.fourcc}"
        return mode + (f" (asked {', '.join(self.shortfall)}: the camera has no such mode)" if self.shortfall else "")


def configure_capture(capture, size: tuple[int, int] | None, fps: float, pixel_format: str) -> CameraMode:
    """Ask an opened capture for a mode and return the one it gave. The pixel format is set before the
    size: V4L2 lists sizes per format."""
    fourcc = CAMERA_FORMATS[pixel_format]
    if fourcc is None and size is not None and size[0] * size[1] > MJPG_ABOVE_PIXELS:
        fourcc = "MJPG"
    if fourcc is not None:
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
    if size:
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
    if fps:
        capture.set(cv2.CAP_PROP_FPS, fps)
    width, height = _whole(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), _whole(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    got_fps = float(capture.get(cv2.CAP_PROP_FPS))
    if not 0 < got_fps < math.inf:  # 0, -1 or NaN: a backend that cannot tell (the writer needs a real rate)
        got_fps = 30.0
    asked = [f"{size[0]}x{size[1]}"] if size and (width, height) != size else []
    asked += [f"{fps:g} fps"] if fps and abs(got_fps - fps) > 0.5 else []
    return CameraMode(width, height, got_fps, _fourcc_text(capture.get(cv2.CAP_PROP_FOURCC)), tuple(asked))


def parse_camera_spec(spec: str) -> tuple[int, tuple[int, int] | None, float, str]:
    """(index, size, fps, pixel format) of `camera:N?size=WxH&fps=F&format=...`, checked without opening it."""
    index_text, params = query(spec.split(":", 1)[1])
    name = camera_name(spec)
    index = int(index_text or 0) if name is None else camera_named(name, spec)
    # OpenCV reads -1 as "any camera" and crashes (SIGSEGV) where there is none; huge numbers overflow.
    if not 0 <= index <= MAX_CAMERA_INDEX:
        raise UserError(f"bad camera number {index} in {spec!r}; cameras are numbered 0..{MAX_CAMERA_INDEX}, "
                        f"e.g. camera:0")
    size = parse_size(params.pop("size"), spec) if "size" in params else None
    fps = number(params, "fps", 0, spec, 0, 1000)
    pixel_format = params.pop("format", "auto").lower()
    if pixel_format not in CAMERA_FORMATS:
        raise UserError(f"format={pixel_format} in {spec!r} is not a camera format; "
                        f"choose {', '.join(CAMERA_FORMATS)}")
    refuse_unknown(params, spec, "size, fps, format")
    return index, size, fps, pixel_format


def camera_name(spec: str) -> str | None:
    """The NAME of `camera:NAME?...` (C920, unquoted), None for `camera:N` (and `camera:`, camera 0)."""
    index_text, _ = query(spec.split(":", 1)[1])
    try:
        int(index_text or 0)
    except ValueError:
        return urllib.parse.unquote(index_text).strip()
    return None


VIDEO4LINUX = Path("/sys/class/video4linux")


def _picture_node(index: int) -> tuple[int, str] | None:
    """On Linux, where /dev/videoN is not a device's first node (a UVC webcam's second one carries metadata,
    no pictures): the number of the same device's first node, and the device's name."""
    if not sys.platform.startswith("linux"):
        return None
    node = VIDEO4LINUX / f"video{index}"
    try:
        if int((node / "index").read_text()) == 0:
            return None
        device = (node / "device").resolve()
        for other in VIDEO4LINUX.glob("video*"):
            if (other / "device").resolve() == device and int((other / "index").read_text()) == 0:
                return int(other.name[5:]), (node / "name").read_text().strip()
    except (OSError, ValueError):
        pass
    return None


DEV = Path("/dev")
DEVICE_NODE = re.compile(r"video(\d+)")


def picture_cameras() -> list[tuple[int, str]]:
    """Linux's cameras that give pictures (each device's first node: a webcam's second carries metadata), as
    (N of /dev/videoN, the device's name), by number."""
    cameras = []
    for node in VIDEO4LINUX.glob("video*"):
        try:
            if DEVICE_NODE.fullmatch(node.name) and int((node / "index").read_text()) == 0:
                cameras.append((int(node.name[5:]), (node / "name").read_text().strip()))
        except (OSError, ValueError):
            continue
    return sorted(cameras)


def camera_named(name: str, spec: str) -> int:
    """The number of the camera `camera:NAME` names: on Linux the one whose device name holds NAME (any case), e.g.
    camera:C920 for "HD Pro Webcam C920", the number a camera gets changing as cameras are plugged in."""
    if not name:
        raise UserError(f"bad camera {spec!r}; write camera:N with N the camera number, e.g. camera:0")
    if not sys.platform.startswith("linux"):
        raise UserError(f"bad camera {spec!r}: cameras are found by name on Linux only; write camera:N with N the "
                        f"camera number, e.g. camera:0")
    cameras = picture_cameras()
    listed = ", ".join(f"camera:{number} ({label})" for number, label in cameras)
    found = _named_like(name, cameras)
    if len(found) == 1:
        return found[0][0]
    if found:
        named = ", ".join(f"camera:{number} ({label})" for number, label in found)
        raise UserError(f"bad camera {spec!r}: it names {len(found)} cameras, {named}; give its number, e.g. "
                        f"camera:{found[0][0]}")
    if not cameras:
        raise UserError(f"bad camera {spec!r}: no camera is named like {name!r}, as this machine lists none (no "
                        f"/dev/video* device that gives pictures); check that the webcam is plugged in and its driver "
                        f"loaded")
    raise UserError(f"bad camera {spec!r}: no camera is named like {name!r}; this machine has {listed}")


def _named_like(name: str, cameras: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The cameras whose device name holds `name`, in any case."""
    return [(number, label) for number, label in cameras if name.lower() in label.lower()]


def camera_now(name: str, index: int) -> int | None:
    """The number camera:NAME has now, first opened as camera:`index`: plugged in again, a camera may come back as
    another /dev/videoN. None where no camera of that name is there (yet), or several are and `index` none of them:
    the number it had may now be another camera's."""
    numbers = [number for number, _ in _named_like(name, picture_cameras())]
    if index in numbers:
        return index
    return numbers[0] if len(numbers) == 1 else None


def camera_input(spec: str) -> str:
    """`camera:N` for an input that means a camera in other words: a camera's device (/dev/video0, or a stable
    link to it such as /dev/v4l/by-id/usb-...-video-index0), and a bare number no file is named (`depthcam run 0`,
    OpenCV's way); any other input as given."""
    if spec.isdigit() and not Path(spec).exists():
        return f"camera:{int(spec)}"
    if "://" not in spec and ":" not in spec.split("/", 1)[0]:  # not a URL, nor camera:, synthetic:
        node = Path(os.path.realpath(spec))
        if node.parent == DEV and (match := DEVICE_NODE.fullmatch(node.name)):
            return f"camera:{int(match.group(1))}"
    return spec


def _video_nodes() -> list[int]:
    """The N of each /dev/videoN: on Linux, every camera (and other video device) the system has."""
    return sorted(int(node.name[5:]) for node in DEV.glob("video*") if node.name[5:].isdigit())


def _why_unopened(index: int) -> str:
    """Why camera `index` did not open, and what to check. On Linux told apart by its /dev/videoN: it said "try
    camera:0 ... ls /dev/video*" on a machine with none."""
    if not sys.platform.startswith("linux"):
        other = "try camera:0, " if index != 0 else ""
        permits = camera_permission_hint() or "check the camera's permissions"
        return f"no such camera, or it is busy or not permitted ({other}close other apps using it, {permits})"
    nodes = _video_nodes()
    if not nodes:
        return ("this machine has no camera device (no /dev/video*); check that the webcam is plugged in and its "
                "driver loaded (lsusb, sudo dmesg), and that a virtual machine or container is given the camera "
                "(USB passthrough, docker run --device /dev/video0)")
    node = DEV / f"video{index}"
    if index not in nodes:
        return f"there is no {node}; this machine has {', '.join(f'camera:{n}' for n in nodes)} (see depthcam doctor)"
    if not os.access(node, os.R_OK | os.W_OK):
        return (f"no permission to use {node}; add yourself to its group (sudo usermod -aG {_group_of(node)} $USER, "
                f"then log in again)")
    return f"it is busy or gives no pictures (close other apps using it; fuser -v {node} lists them)"


def _group_of(path: Path) -> str:
    """The name of the group that owns `path` (Linux's `video` for a camera), or `video` where it has none."""
    import grp  # Unix only

    try:
        return grp.getgrgid(path.stat().st_gid).gr_name
    except (KeyError, OSError):
        return "video"


class CameraSource(Source):
    """`camera:N?size=1280x720&fps=30&format=auto|mjpg|yuyv`: a webcam through OpenCV (V4L2,
    AVFoundation, Media Foundation). The description says the mode the camera really gave."""

    live = True

    def __init__(self, spec: str) -> None:
        self.index, size, fps, pixel_format = parse_camera_spec(spec)
        self._name = camera_name(spec)  # camera:NAME is looked up again when reopened; camera:N keeps its number
        self._request = (size, fps, pixel_format)  # asked again of a camera opened anew
        # held while a read waits in the driver: OpenCV frees the buffers a read fills on release, so a capture
        # released under a read still waiting (a stalled camera, closed at a stop) crashes the process
        self._reading = threading.Lock()
        self._closed = False
        self._interrupted = threading.Event()  # the run is stopping: no reopening behind it
        self.capture = _open_camera(self.index)
        if not self.capture.isOpened():
            first = _picture_node(self.index)
            if first is not None:
                raise UserError(f"camera {self.index} is the second device node of {first[1]} (its metadata, no "
                                f"pictures: a webcam lists two); try camera:{first[0]}")
            raise UserError(f"camera {self.index} could not be opened: {_why_unopened(self.index)}")
        mode = configure_capture(self.capture, size, fps, pixel_format)
        ask_for_jpeg(self.capture, mode)
        self._empty_told = False
        self._sizes_told: set[tuple[int, int]] = set()  # picture sizes other than the announced one, each said once
        self._undecodable_told = False
        self._last_picture: np.ndarray | None = None  # the last JPEG decoded, for one that cannot be
        if mode.width <= 0 or mode.height <= 0:
            # Some backends tell the size only once a frame was read; the sinks open at the source's size.
            ok, image = self._read()
            if ok and is_jpeg(image):
                image = self._decode(image)
            elif ok and is_raw_row(image):  # no JPEG: this camera's pictures as OpenCV decodes them
                self.capture.set(cv2.CAP_PROP_CONVERT_RGB, 1)
                ok, image = self._read()
            if not ok or image is None:
                self.capture.release()
                raise UserError(self._no_frame())
            mode = dataclasses.replace(mode, width=image.shape[1], height=image.shape[0])
        self.width, self.height, self.fps = mode.width, mode.height, mode.fps
        self.description = f"camera {self.index} {mode}"
        # None: decided on the first frame, then kept, so a run's latencies all count from one clock
        self._driver_stamps: bool | None = None if _backend_name(self.capture) == "V4L2" else False

    def _no_frame(self) -> str:
        # macOS's AVFoundation opens a camera the user has not allowed and reads nothing: say where to allow it
        permission = camera_permission_hint()
        return (f"camera {self.index} opened but delivered no frame (is it in use elsewhere?"
                + (f" Or not allowed: {permission}" if permission else "") + ")")

    def _read(self) -> tuple[bool, Any]:
        """The next picture; reads that answer ok with no picture are skipped (said once), up to
        EMPTY_READS_SKIPPED in a row, after which the read counts as failed."""
        for _ in range(EMPTY_READS_SKIPPED + 1):
            with self._reading:
                if self._closed:  # closed by the run's end while this thread went on to another read
                    return False, None
                ok, image = self.capture.read()
            if not ok or not _is_empty(image):
                return ok, image
            if not self._empty_told:
                self._empty_told = True
                notify(f"camera {self.index} gave an empty frame; such frames are skipped")
        return False, None

    def _fit(self, image: Any) -> Any:
        """The picture as BGR at the size the camera announced, which the stages and the outputs (a video
        file, the virtual camera) were opened at: a camera may deliver another size than it announced, or
        change it part-way. Each other size is said once."""
        picture = as_bgr(image)
        if picture is None:
            shape = "x".join(str(side) for side in (image.shape[1], image.shape[0], *image.shape[2:]))
            raise UserError(f"camera {self.index} delivers {shape} {image.dtype} pictures, which depthcam cannot "
                            f"use; ask for another format, e.g. camera:{self.index}?format=mjpg")
        if picture.shape[:2] == (self.height, self.width):
            return picture
        return scale_telling_once(picture, self.width, self.height, self._sizes_told, lambda width, height: (
            f"camera {self.index} delivers {width}x{height} pictures, not the {self.width}x{self.height} it "
            f"announced; they are scaled to {self.width}x{self.height} (camera:{self.index}?size={width}x{height} "
            f"asks for that size)"))

    def _decode(self, jpeg: np.ndarray) -> np.ndarray | None:
        """A JPEG's picture, decoded as OpenCV's V4L2 backend decodes it; None where it cannot be."""
        return cv2.imdecode(jpeg.reshape(-1), cv2.IMREAD_COLOR)

    def _picture_of(self, jpeg: np.ndarray) -> np.ndarray:
        """A kept frame's picture from its JPEG, on the stage that first reads it. One that cannot be decoded (a
        damaged transfer: OpenCV's own decoding then gave an empty read, skipped) shows the last picture again, said
        once; the frame is already on its way."""
        picture = self._decode(jpeg)
        if picture is None:
            if not self._undecodable_told:
                self._undecodable_told = True
                notify(f"camera {self.index} gave a picture that cannot be decoded; the one before is shown instead")
            picture = self._last_picture
            if picture is None:
                picture = np.zeros((self.height, self.width, 3), np.uint8)
        picture = self._fit(picture)
        self._last_picture = picture
        return picture

    def _frame(self, index: int, capture_ns: int, image: np.ndarray) -> Frame:
        """The capture time as the presentation time: a recording plays at the pace the camera was filmed at, the
        frames a live run dropped leaving gaps, not a speeded-up film. A JPEG is decoded when first read."""
        if is_jpeg(image):
            return PendingFrame(index, capture_ns, image, self._picture_of, (self.width, self.height))
        if is_raw_row(image):  # asked for JPEGs, given bytes of another kind: OpenCV decodes this camera's own
            self.capture.set(cv2.CAP_PROP_CONVERT_RGB, 1)
            picture = self._last_picture if self._last_picture is not None else np.zeros(
                (self.height, self.width, 3), np.uint8)
            return Frame(index=index, capture_ns=capture_ns, image=picture, pts_seconds=capture_ns / 1e9)
        return Frame(index=index, capture_ns=capture_ns, image=self._fit(image), pts_seconds=capture_ns / 1e9)

    def frames(self) -> Iterator[Frame]:
        index, last_arrival = 0, now_ns()
        while True:
            ok, image = self._read()
            arrival = now_ns()
            if not ok and index > 0:
                ok, image = self._reopen(last_arrival)
                arrival = now_ns()
            if not ok and self._interrupted.is_set():  # a stop, not the camera's failure
                return
            if not ok:
                if index == 0:
                    raise UserError(self._no_frame())
                # Unplugged, or taken by another program: the run ends as a truncated file's does, the
                # frames so far shown or written (a file output stays playable), and says why.
                raise UserError(f"camera {self.index} stopped delivering frames after {index} (unplugged, or taken "
                                f"by another program: reconnect it or close that program, and run again); the "
                                f"frames before were kept")
            capture_ns = arrival
            if self._driver_stamps is not False:
                stamp = driver_timestamp_ns(self.capture)
                if self._driver_stamps is None:
                    self._driver_stamps = 0 <= arrival - stamp <= DRIVER_STAMP_MAX_AGE_NS
                if self._driver_stamps:
                    capture_ns = min(stamp, arrival)  # a stamp's jitter never puts a frame in the future
            yield self._frame(index, capture_ns, image)
            index, last_arrival = index + 1, arrival

    def _reopen(self, last_arrival: int) -> tuple[bool, Any]:
        """Open the camera again, as asked at first, until it delivers or CAMERA_RECONNECT_S have passed.
        `last_arrival`: when its last frame came (now_ns), from which the line it came back with counts its stop: the
        failed read's own wait (a V4L2 camera's 3 s) included, which the line left out ("stopped for 0.1 s")."""
        started = time.monotonic()
        # the picture stands still meanwhile: said, so that it is not taken for a hang
        notify(f"camera {self.index} stopped delivering frames; opening it again for up to {CAMERA_RECONNECT_S:g} s "
               f"(plug it back in, or close the program that took it)")
        while time.monotonic() - started < CAMERA_RECONNECT_S and not self._closed:
            with self._reading:
                self.capture.release()
            if self._interrupted.wait(CAMERA_RETRY_PAUSE_S):  # the run is stopping: it no longer waits for us
                break
            number = self.index if self._name is None else camera_now(self._name, self.index)
            if number is None:  # not plugged back in yet
                continue
            with self._reading:
                if self._closed:  # the run ended meanwhile: no camera is left open behind it
                    break
                self.capture = _open_camera(number)
            if self.capture.isOpened():
                ask_for_jpeg(self.capture, configure_capture(self.capture, *self._request))
                ok, image = self._read()
                if ok:
                    moved = f" as camera {number}" if number != self.index else ""
                    stopped_s = (now_ns() - last_arrival) / 1e9
                    notify(f"camera {self.index} stopped for {stopped_s:.1f} s and came back{moved}")
                    self.index = number
                    return True, image
        return False, None

    def interrupt(self) -> None:
        """A stop: the reopening in progress gives up (a read waiting in the driver still takes its time)."""
        self._interrupted.set()

    def close(self) -> None:
        """Release the camera, unless a read still waits in the driver after CAMERA_CLOSE_WAIT_S (a stalled
        camera): its thread is a daemon, which the process's exit ends."""
        if not self._reading.acquire(timeout=CAMERA_CLOSE_WAIT_S):
            self._closed = True  # that read, once it returns, is the last
            return
        try:
            self._closed = True
            self.capture.release()
        finally:
            self._reading.release()
