"""Where rendered frames go: a video or image file, a preview window, a virtual camera, or nowhere.

Sinks run on the pipeline's calling (main) thread: GUI toolkits want one thread, and Ctrl-C lands
there. `compose` builds the picture a sink shows: the render, or input | render | depth side by side.
"""
from __future__ import annotations

import collections
import contextlib
import ctypes
import functools
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping

import cv2
import numpy as np

from kernels.backend import to_host
from stream.animation_writer import AnimationWriter
from stream.console import notify
from stream.controls import LiveControls
from stream.errors import UserError
from stream.frame import Frame, now_ns
from stream.paths import ensure_writable
from stream.images import (ANIMATION_FORMATS, ANIMATION_ONLY, IMAGE_SUFFIXES, PhotoMetadata, alpha_for, on_page,
                           with_alpha, write_image)
from stream.video_writer import VideoWriter, codec_of, video_suffixes


def colourise(disparity) -> np.ndarray:
    """Disparity in [0, 1] (NumPy, or CuPy from the GPU path) as a BGR picture (near = warm), for depth
    videos and previews."""
    grey = np.clip(to_host(disparity) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(grey, cv2.COLORMAP_INFERNO)


GREY16_IMAGES = (".png", ".tif", ".tiff")  # the photo types that hold 16-bit grey (OpenCV writes them so)
GREY16_VIDEOS = (".mkv",)  # FFV1's 16-bit grey: FFmpeg's MOV, MP4, WebM and AVI muxers take no gray16le FFV1


def grey16(disparity) -> np.ndarray:
    """Disparity in [0, 1] (NumPy, or CuPy) as 16-bit grey, round(d * 65535): the depth as data, not a picture to
    look at (near = bright, as the colour map). In float64, where float32 would round some values one off."""
    return np.clip(np.rint(to_host(disparity).astype(np.float64) * 65535.0), 0, 65535).astype(np.uint16)


def depth_picture(depth_format: str) -> Callable[[Frame], np.ndarray]:
    """A frame's depth as the depth file holds it: colourised (BGR), or grey16 (one channel); nothing where the
    frame has no depth (black)."""
    if depth_format == "grey16":
        return lambda f: grey16(f.refined) if f.refined is not None else np.zeros(f.image.shape[:2], np.uint16)
    return lambda f: colourise(f.refined) if f.refined is not None else np.zeros_like(f.image)


def check_depth_format(save_depth: str | None, depth_format: str, animated: bool = False) -> None:
    """Before the run (cli._run, before the model loads): a grey16 depth file has a type that holds 16-bit grey (a
    UserError naming the types); `animated`: the input is an animation (GIF, APNG, animated WebP), whose grey16
    depth goes into a video (OpenCV writes one 16-bit picture; the animation writers take 8-bit colour)."""
    if depth_format != "grey16" or not save_depth:
        return
    path = Path(save_depth)
    suffix = path.suffix.lower()
    if suffix in GREY16_VIDEOS:
        return
    try:
        kind = output_kind(save_depth)
    except UserError:  # no type at all: the output checks say so, as for a colour depth
        return
    if kind == "image" and animated:
        raise UserError(f"--save-depth {save_depth}: an animation's 16-bit grey depth goes into a video; give "
                        f"{path.with_suffix('.mkv').name}")
    if suffix in GREY16_IMAGES:
        return
    if kind == "image":
        raise UserError(f"--save-depth {save_depth}: {suffix} holds no 16-bit grey (--depth-format grey16); give "
                        f"a .png or .tif ({path.with_suffix('.png').name}), or --depth-format colour")
    if kind == "video":
        raise UserError(f"--save-depth {save_depth}: {suffix} holds no 16-bit grey video (--depth-format grey16); "
                        f"give a .mkv (lossless FFV1: {path.with_suffix('.mkv').name}), or --depth-format colour")


def compose(frame: Frame, side_by_side: bool, page: bool = False) -> np.ndarray:
    """The picture an output shows: the render, or input | render | depth. A transparent input's pictures (their
    alpha in `extra["alpha"]`) hold the nearest visible colour where they are hidden (filled_behind): laid on white
    for an output that holds no transparency (`page`: a video, the window, a virtual camera) and side by side, whose
    panels no alpha fits; an image output takes the alpha back itself."""
    output = frame.output if frame.output is not None else frame.image
    alpha = frame.extra.get("alpha")
    if alpha is not None and (page or side_by_side):
        output = on_page(output, alpha_for(alpha, output.shape[:2]))
    if not side_by_side:
        return output
    image = frame.image if alpha is None else on_page(frame.image, alpha_for(alpha, frame.image.shape[:2]))
    depth = colourise(frame.refined) if frame.refined is not None else np.zeros_like(output)
    return np.hstack([image, output, depth])


class Sink:
    def write(self, frame: Frame) -> None:
        raise NotImplementedError

    def close(self, complete: bool = True) -> None:
        pass

    def idle(self) -> None:
        """Called between frames when none came for a while (a slow network, a camera that stalls): a window
        answers its keys, clicks and close button then too."""

    @property
    def wants_stop(self) -> bool:
        """True when the user asked to stop from the sink (a key in the preview window)."""
        return False


class NullSink(Sink):
    """Discards frames: for benchmarks, where only the timestamps matter."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, frame: Frame) -> None:
        self.count += 1


class VideoSink(Sink):
    """`audio_ends_with_pictures`: the input's sound is cut where the pictures end (a part of a video),
    as after an interrupted run, rather than written to its own end. `tags_from`: the file whose container
    tags (creation time, location, title) the video keeps, or those tags, by default `audio_from`'s. A frame's own
    duration (`frame.extra["duration_seconds"]`, a GIF's or a variable frame rate's) is kept too. `subtitles_from`:
    the file whose subtitle streams are kept; `chapters`: the input's chapters, cut as the sound is; `part_end`:
    where the part taken ends, in the input's seconds (its subtitles are cut there); `codec`: output.codec, which
    `input_codec` (the input's decoder's name) may decide; `audio_tracks`: output.audio_tracks, the audio streams
    kept (from 1; None: every one); `transparency`: `picture` gives the render itself (not side by side, not a depth
    picture), to which a transparent input's alpha fits; `grey16`: `picture` gives 16-bit grey (a grey16 depth),
    written as lossless FFV1."""

    def __init__(self, path: Path, width: int, height: int, fps: float, audio_from: Path | None,
                 picture: Callable[[Frame], np.ndarray], audio_ends_with_pictures: bool = False,
                 tags_from: Path | Mapping[str, str] | None = None, subtitles_from: Path | None = None,
                 chapters: list[Mapping[str, Any]] | None = None, part_end: float | None = None,
                 codec: str = "auto", input_codec: str | None = None, audio_tracks: list[int] | None = None,
                 transparency: bool = False, grey16: bool = False) -> None:
        self.writer = VideoWriter(path, width, height, fps, audio_from, tags_from=tags_from,
                                  subtitles_from=subtitles_from, chapters=chapters, part_end=part_end,
                                  codec=codec, input_codec=input_codec, audio_tracks=audio_tracks, grey16=grey16)
        self.picture = picture
        self.audio_ends_with_pictures = audio_ends_with_pictures
        self.transparency = transparency
        self._white_told = False

    def write(self, frame: Frame) -> None:
        picture = self._picture(frame)
        if not self.writer.begun:  # the part's end is on the video's clock, which joined clips' times do not set back
            from stream.sources import VIDEO_TIME  # not at the top: the sinks load without the video sources

            self.writer.begin(frame.pts_seconds, frame.extra.get(VIDEO_TIME))
        # no duration (a camera's frame, a decoder that gave none): one frame period
        self.writer.write(picture, frame.pts_seconds, frame.extra.get("duration_seconds"))

    def _picture(self, frame: Frame) -> np.ndarray:
        """The picture written. A transparent input's render (its alpha in `extra["alpha"]`, its hidden pixels filled)
        takes the input's alpha back, as given: not blurred, as a photo's (a compositor keys on the outline the user
        made; the hidden pixels have no depth to blur by), where the codec holds alpha (the first picture decides:
        VideoWriter.alpha); else it is laid on white, said once. Side by side and a depth picture: as composed."""
        alpha = frame.extra.get("alpha")
        if alpha is None or not self.transparency:
            picture = self.picture(frame)
            if alpha is not None and not self._white_told and alpha.shape != picture.shape[:2] and alpha.min() < 255:
                self._tell_white(side_by_side=True)  # composed with the input laid on white; a depth picture has none
            return picture
        render = self.picture(replace(frame, extra={key: kept for key, kept in frame.extra.items() if key != "alpha"}))
        alpha = alpha_for(alpha, render.shape[:2])
        if alpha is not None and self.writer.alpha is not False:
            return with_alpha(render, alpha)
        if alpha is not None and not self._white_told and alpha.min() < 255:
            self._tell_white(side_by_side=False)
        return on_page(render, alpha)

    def _tell_white(self, side_by_side: bool) -> None:
        """Says once that the input's alpha is laid on white, and why: the codec holds none, or no alpha fits side
        by side's panels (composed with the input laid on white)."""
        if self._white_told:
            return
        self._white_told = True
        why = "side by side holds none (its panels are opaque)" if side_by_side else (
            f"{codec_of(self.writer.codec).title} holds none; --codec prores (.mov, .mkv), ffv1 (.mkv) or vp9 "
            f"(.webm) keeps it")
        notify(f"{self.writer.path.name}: the input's alpha channel is laid on white: {why}")

    def close(self, complete: bool = True) -> None:
        self.writer.close(complete and not self.audio_ends_with_pictures)


class ImageSink(Sink):
    def __init__(self, path: Path, picture: Callable[[Frame], np.ndarray],
                 metadata: PhotoMetadata | None = None) -> None:
        self.path = ensure_writable(path, "image")
        self.picture = picture
        self.metadata = metadata  # the input photo's colour profile and EXIF

    def write(self, frame: Frame) -> None:
        picture = self.picture(frame)
        try:
            written = write_image(self.path, picture, self.metadata)
        except cv2.error as exc:
            written, reason = False, str(exc).strip().splitlines()[-1][:160]
        else:
            reason = "the encoder refused it"
        if not written:  # the folder was checked when the sink opened, and a full disk raises: the format is left
            height, width = picture.shape[:2]
            other = ".tif" if self.path.suffix.lower() == ".png" else ".png"
            raise UserError(f"cannot write image {self.path} ({width}x{height}): {reason}; try {other}")


class AnimationSink(Sink):
    """An animated GIF, PNG (APNG) or WebP: each picture held for its own duration (a frame's
    `extra["duration_seconds"]`, else one frame period), played as many times as the input (`metadata.plays`).
    Each picture is encoded as it comes (AnimationWriter), none kept: a run stopped early writes those it had. With
    `transparency`, a transparent input's alpha (a frame's `extra["alpha"]`, else a photo's `metadata.alpha`) is
    kept, unchanged, where the picture is the input's (not side by side)."""

    def __init__(self, path: Path, picture: Callable[[Frame], np.ndarray], fps: float,
                 metadata: PhotoMetadata | None = None, transparency: bool = True) -> None:
        self.path = ensure_writable(path, "image")
        self.picture = picture
        self.period = 1.0 / fps
        self.transparency = transparency
        self.photo_alpha = metadata.alpha if metadata is not None else None
        self.writer = AnimationWriter.open(self.path, metadata)

    def write(self, frame: Frame) -> None:
        picture = self.picture(frame)
        alpha = frame.extra.get("alpha", self.photo_alpha) if self.transparency else None
        try:
            self.writer.add(picture, frame.extra.get("duration_seconds") or self.period,
                            alpha_for(alpha, picture.shape[:2]))
        except (ValueError, RuntimeError):  # RuntimeError: an encoder's refusal of a picture
            number, (height, width) = self.writer.count + 1, picture.shape[:2]
            self.writer.discard()
            raise UserError(f"cannot write animation {self.path} (picture {number}, {width}x{height}): the encoder "
                            f"refused it; try .mp4") from None
        except BaseException:  # a full disk: no half-written file left beside the target
            self.writer.discard()
            raise

    def close(self, complete: bool = True) -> None:
        self.writer.finish()


def picture_sink(path: Path, picture: Callable[[Frame], np.ndarray], fps: float,
                 metadata: PhotoMetadata | None, transparency: bool = True) -> Sink:
    """The sink of an image file: an animation for an animated input (`metadata.plays`) where the format holds
    one, and always for .gif and .apng; else one picture. `transparency`: an animation keeps the input's."""
    suffix = path.suffix.lower()
    animated = metadata is not None and metadata.plays is not None and suffix in ANIMATION_FORMATS
    if animated or suffix in ANIMATION_ONLY:
        return AnimationSink(path, picture, fps, metadata, transparency)
    return ImageSink(path, picture, metadata)


DISPLAY_PROBE = ("import cv2; cv2.namedWindow('depthcam-probe', cv2.WINDOW_NORMAL); "
                 "cv2.destroyAllWindows(); cv2.waitKey(1)")


WINDOW_FIX = "write to a file with -o out.mp4, or use -o null"
PREVIEW_FIX = "leave out --preview (output.preview)"


def check_display(fix: str = WINDOW_FIX) -> None:
    """On Linux, that the preview window can open here; a clear UserError where it cannot, ending in `fix`."""
    if not sys.platform.startswith("linux"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError(f"no display for the preview window (DISPLAY is not set); {fix}")
    problem = _probe_display(os.environ.get("DISPLAY", ""), os.environ.get("WAYLAND_DISPLAY", ""))
    if problem is not None:
        raise UserError(f"{problem}; check DISPLAY, or {fix}")


@functools.lru_cache(maxsize=4)
def _probe_display(display: str, wayland_display: str, timeout_s: float = 20.0) -> str | None:
    """Open a window once in a child process: with DISPLAY set but unreachable (a stale DISPLAY over
    SSH, a stopped X server) OpenCV's Qt aborts the whole process (SIGABRT) instead of raising.
    Cached per display: build() checks before loading anything, the window sink again when it opens.
    Returns what is wrong, or None."""
    try:
        probe = subprocess.run([sys.executable, "-c", DISPLAY_PROBE], capture_output=True, text=True,
                               timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"the display {display!r} did not answer within {timeout_s:.0f} s"
    if probe.returncode != 0:
        lines = [line.strip() for line in probe.stderr.splitlines() if line.strip()]
        # Qt names the display problem ("could not connect"); a headless OpenCV ends with a cv2.error line
        reason = next((line for line in lines if "could not" in line or "error" in line.lower()),
                      lines[-1] if lines else f"exit status {probe.returncode}")
        return f"cannot open a preview window on display {display!r} ({reason[:120]})"
    return None


class _XcbScreens(ctypes.Structure):
    """xcb_screen_iterator_t: `data` points to an xcb_screen_t, whose width and height in pixels are the two
    16-bit numbers at byte 20."""
    _fields_ = [("data", ctypes.c_void_p), ("rem", ctypes.c_int), ("index", ctypes.c_int)]


@functools.lru_cache(maxsize=1)
def _libxcb() -> ctypes.CDLL | None:
    """The X client library Qt's xcb platform itself loads (opencv-python's wheels rely on the system's); None
    where it is missing."""
    try:
        lib = ctypes.CDLL("libxcb.so.1")
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    lib.xcb_connect.restype, lib.xcb_connect.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_void_p]
    lib.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    lib.xcb_poll_for_event.restype, lib.xcb_poll_for_event.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    lib.xcb_disconnect.argtypes = [ctypes.c_void_p]
    lib.xcb_get_setup.restype, lib.xcb_get_setup.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    lib.xcb_setup_roots_iterator.restype = _XcbScreens
    lib.xcb_setup_roots_iterator.argtypes = [ctypes.c_void_p]
    lib.free = libc.free
    lib.free.argtypes = [ctypes.c_void_p]
    return lib


class DisplayWatch:
    """Whether the X server a window is on is still there. Qt's xcb plugin ends the whole process (exit status 1,
    the output file left unfinished, no last line) once it finds its own connection broken, which it looks at
    only inside OpenCV's window calls: a connection of our own, looked at before each of them (under a
    microsecond), finds the server gone first, and the window is then left alone."""

    def __init__(self, lib: ctypes.CDLL, connection: int) -> None:
        self._lib, self._connection = lib, connection

    @classmethod
    def open(cls, display: str) -> DisplayWatch | None:
        """A watch on `display` (X11 only: DISPLAY set, libxcb there); None where none can be kept."""
        lib = _libxcb() if display and sys.platform.startswith("linux") else None
        if lib is None:
            return None
        connection = lib.xcb_connect(display.encode(), None)
        if lib.xcb_connection_has_error(connection):
            lib.xcb_disconnect(connection)
            return None
        return cls(lib, connection)

    def gone(self) -> bool:
        if self._connection is None:
            return True
        while event := self._lib.xcb_poll_for_event(self._connection):  # reads the socket; none are asked for
            self._lib.free(event)
        return self._lib.xcb_connection_has_error(self._connection) != 0

    def close(self) -> None:
        if self._connection is not None:
            self._lib.xcb_disconnect(self._connection)
            self._connection = None


DISPLAY_GONE = "the preview window's display went away (its X server stopped)"

# The room a preview window takes: this share of the screen's width and height (the rest for its title bar, a
# panel or a dock), at most twice as wide as high (several monitors side by side make one wide X screen: the
# window stays on one), or this many pixels where the screen's size is unknown (Wayland alone, macOS).
SCREEN_SHARE = (0.9, 0.85)
UNKNOWN_SCREEN_ROOM = (1600, 900)
# Qt's toolbar (pan, zoom, save) and status bar (the pixel under the mouse) left out: a viewer's chrome, not ours
WINDOW_FLAGS = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | getattr(cv2, "WINDOW_GUI_NORMAL", 0)


def screen_size(display: str) -> tuple[int, int] | None:
    """The screen's size in pixels where it can be asked: X11 and Windows (the main monitor, in the units its
    windows are sized in)."""
    if sys.platform == "win32":
        metrics = ctypes.windll.user32.GetSystemMetrics  # type: ignore[attr-defined]
        return metrics(0), metrics(1)  # SM_CXSCREEN, SM_CYSCREEN
    return _x_screen_size(display)


def _x_screen_size(display: str) -> tuple[int, int] | None:
    """The size of the X display's first screen, where the window opens (DISPLAY=:0.1 is rare)."""
    lib = _libxcb() if display and sys.platform.startswith("linux") else None
    if lib is None:
        return None
    connection = lib.xcb_connect(display.encode(), None)
    try:
        if lib.xcb_connection_has_error(connection):
            return None
        screen = lib.xcb_setup_roots_iterator(lib.xcb_get_setup(connection)).data
        width, height = (ctypes.c_uint16 * 2).from_address(screen + 20) if screen else (0, 0)
        return (width, height) if width and height else None
    finally:
        lib.xcb_disconnect(connection)


def window_room(screen: tuple[int, int] | None) -> tuple[int, int]:
    """The largest window, in pixels, that a picture is shown in on `screen`."""
    if screen is None:
        return UNKNOWN_SCREEN_ROOM
    height = int(screen[1] * SCREEN_SHARE[1])
    return min(int(screen[0] * SCREEN_SHARE[0]), 2 * height), height


def fitted_size(width: int, height: int, room: tuple[int, int]) -> tuple[int, int]:
    """A picture's window size: its own, made smaller (never larger, its aspect kept) where it exceeds `room`."""
    scale = min(1.0, room[0] / width, room[1] / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


# X keysyms of the keypad's printable keys, KP_Multiply (*) to KP_Equal (=): GTK reports the keypad's + as KP_Add
# (0xFFAB), which read as no key, so its + and - did not change the blur.
KEYPAD_FIRST, KEYPAD_LAST = 0xFFAA, 0xFFBD


def key_char(code: int) -> int | None:
    """The ASCII code of a key that `cv2.waitKeyEx` returned, or None for no key or a special one.
    `cv2.waitKey` keeps the low byte only, which turns special keys into letters (Print Screen is
    X's 0xFF61, so it read as `a`); GTK adds modifier bits above the low 16 and sends Esc as 0xFF1B."""
    if code < 0:
        return None
    code &= 0xFFFF
    if code == 0xFF1B:
        return 27
    if KEYPAD_FIRST <= code <= KEYPAD_LAST:  # GTK's keypad keys, X's keysym 0xFF80 + their ASCII: its + and - too
        return code - 0xFF80
    return code if 0 < code < 128 else None


INFO_LEAST_SCALE = 0.4  # the `i` text's smallest size on screen (OpenCV's font scale): about 9 px high
NOTE_NS = 1_500_000_000  # how long the window shows what a key changed: read at a glance, then out of the way


class WindowSink(Sink):
    """A live preview window. q or Esc stops; s switches between the render and input | render | depth, i
    shows the rate and latency (both in the window only); p saves the render as it is now (a camera's
    shutter); a click, a and +/- go to `controls` (stream.controls). `alone`: the window is the run's only
    output, so a display that goes away ends the run (beside a file the run goes on without the window).
    `photo_metadata`: a photo's colour profile and EXIF, which its snapshots keep as its output file does."""

    _window_scale = 1.0  # the window's size against the picture's: below 1 where made smaller to fit the screen
    controls: LiveControls | None = None
    _seen = False  # the window was once reported on screen: only then does "not on screen" mean closed
    _note = ""  # what the last key changed, shown on the pictures until _note_until (now_ns)
    _note_until = 0

    def __init__(self, title: str, controls: LiveControls | None, frame_width: int, side_by_side: bool,
                 notify: Callable[[str], None] = notify, alone: bool = True,
                 photo_metadata: PhotoMetadata | None = None) -> None:
        check_display()
        self.title = title
        self.photo_metadata = photo_metadata
        self.frame_width = frame_width
        self.side_by_side = side_by_side
        self.notify = notify
        self.alone = alone
        self.info = False
        self._shown_at: collections.deque[int] = collections.deque(maxlen=31)  # the rate over the last 30 frames
        self._stop = False
        self._gone = False  # the display went away: no OpenCV window call is made again
        self._last: Frame | None = None  # the frame on screen, which p saves between frames too
        self._shown = (0, 0)  # height, width of the picture on screen: clicks outside it are ignored
        try:
            cv2.namedWindow(title, WINDOW_FLAGS)
        except cv2.error as exc:
            raise UserError(f"cannot open a preview window ({str(exc).strip().splitlines()[-1]}); "
                            f"install opencv-python (not -headless), or write to a file with -o") from None
        self._watch = DisplayWatch.open(os.environ.get("DISPLAY", ""))
        self._room = window_room(screen_size(os.environ.get("DISPLAY", "")))
        self.controls = controls
        self._show_title()
        if controls is not None:
            def mouse(event, x, y, flags, param):
                if event == cv2.EVENT_LBUTTONDOWN:
                    self.click(x, y)
            cv2.setMouseCallback(title, mouse)

    def _show_title(self) -> None:
        """The title bar says what is shown and which keys there are (the window itself shows no help)."""
        shown = "input | render | depth" if self.side_by_side else "the render"
        keys = "click: focus · a: auto focus · +/-: blur · " if self.controls is not None else ""
        try:
            cv2.setWindowTitle(self.title,
                               f"depthcam: {shown} — {keys}p: save · s: side by side · i: info · q: quit")
        except cv2.error:  # a backend without titles: the keys still work
            pass

    def click(self, x: int, y: int) -> None:
        """A click in picture pixels. On any panel of a side-by-side view it focuses on that point of the
        frame; one on the border of a resized window (outside the picture: OpenCV does not clip) is ignored."""
        height, width = self._shown
        if self.controls is not None and 0 <= x < width and 0 <= y < height:
            self.controls.click(x % self.frame_width, y)
            self._tell("focus on the point clicked")

    def _visibility(self) -> float:
        """OpenCV's WND_PROP_VISIBLE: 1 on screen, 0 off it, -1 where the backend cannot tell (GTK before OpenCV
        4.6, some others). Qt ends its GUI thread with its last window, after which OpenCV raises here instead of
        answering 0: off screen."""
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE)
        except cv2.error:
            return 0.0

    def _closed(self) -> bool:
        """True once the window is off screen after it was on it: its close button, at any time, before the first
        picture too. A window never yet reported on screen counts as still opening until its first picture (a
        backend may map it only then); one whose backend cannot tell (-1, never on screen) is never taken as
        closed: q and Esc end its run (it ended every run after the first picture)."""
        visible = self._visibility()
        if visible >= 1:
            self._seen = True
            return False
        if self._seen:  # on screen before: 0, or -1 from a backend that no longer knows the closed window
            return True
        return visible >= 0 and self._shown != (0, 0)

    def _display_gone(self) -> bool:
        """True once the X server went away, said once; a window alone then stops the run."""
        if not self._gone and self._watch is not None and self._watch.gone():
            self._gone = True
            self.notify(f"{DISPLAY_GONE}; " + ("stopping" if self.alone else "the run goes on without the window"))
        if self._gone and self.alone:
            self._stop = True
        return self._gone

    def write(self, frame: Frame) -> None:
        if self._stop or self._display_gone():
            return
        if self._closed():
            self._stop = True  # closed: imshow would open the window again
            return
        picture = compose(frame, self.side_by_side, page=True)
        if picture.shape[:2] != self._shown:  # the first picture, or s changed its size
            self._fit_window(picture.shape[1], picture.shape[0])
        shown_at = now_ns()
        self._shown_at.append(shown_at)
        parts = self._info_parts(frame, shown_at) if self.info else []
        note = self._note if shown_at < self._note_until else ""
        if parts or note:  # else nothing drawn: the picture itself, no copy
            picture = self._with_text(picture, parts, note)
        self._shown = picture.shape[:2]
        cv2.imshow(self.title, picture)
        self._last = frame
        self._answer(frame)

    def _fit_window(self, width: int, height: int) -> None:
        """The window at the picture's size, made smaller to fit the screen (Qt opened it at 400x300 whatever the
        picture). A click still comes in picture pixels: OpenCV maps it back through the window's scale."""
        size = fitted_size(width, height, self._room)
        self._window_scale = size[0] / width
        try:
            cv2.resizeWindow(self.title, *size)
        except cv2.error:  # a backend that cannot: the window keeps its size, the picture its aspect
            pass

    def idle(self) -> None:
        # before the first picture too (a slow first depth, a network stream's first batch): its keys, q, Esc and
        # its close button are answered; a closed window is not pumped again
        if self._stop or self._display_gone():
            return
        if self._closed():
            self._stop = True
            return
        self._answer(self._last)

    def _answer(self, frame: Frame | None) -> None:
        """Let the window handle its events, and act on the key pressed since (OpenCV gives one at most);
        `frame`: the one on screen, None before the first."""
        key = key_char(cv2.waitKeyEx(1))
        if key not in (27, ord("q"), ord("Q")) and self._closed():
            self._stop = True
            return
        self._act(key, frame)

    def _act(self, key: int | None, frame: Frame | None) -> None:
        """What a key does; `frame`: the one on screen, None before the first (p has nothing to save then)."""
        if key in (27, ord("q"), ord("Q")):
            self._stop = True
        elif key in (ord("i"), ord("I")):
            self.info = not self.info
            self.notify("window: rate, latency and focus shown (i: hide)" if self.info
                        else "window: rate, latency and focus hidden (i: show)")
        elif key in (ord("p"), ord("P")) and frame is not None:
            self._snapshot(frame)
        elif key in (ord("s"), ord("S")):
            self.side_by_side = not self.side_by_side
            self.notify("window: input | render | depth (s: the render alone)" if self.side_by_side
                        else "window: the render (s: input | render | depth)")
            self._show_title()
        elif key is not None and self.controls is not None:
            self.controls.key(key)
            self._tell_control(chr(key).lower())

    def _tell_control(self, char: str) -> None:
        """The window's note of what a control key changed (the keys of LiveControls.key): the picture alone did
        not show that + or - did anything."""
        if char in ("+", "=", "-"):
            self._tell(self._blur_text())
        elif char == "a":
            self._tell("auto focus")

    def _blur_text(self) -> str:
        """The blur set (as --blur counts it); "" for controls without render settings (that only take keys)."""
        render = getattr(self.controls, "render", None)
        return f"blur {render.blur:g} px" if render is not None else ""

    def _tell(self, note: str) -> None:
        """Shown on the pictures of the next NOTE_NS, over the `i` text or alone."""
        self._note, self._note_until = note, now_ns() + NOTE_NS

    def _snapshot(self, frame: Frame) -> None:
        """The render of the frame on screen, at the frame's full size, into the current folder under a
        name from the time (a second one in the same second gets a number)."""
        stem = time.strftime("depthcam_%Y%m%d_%H%M%S")
        path = Path(f"{stem}.png")
        number = 1
        while path.exists():
            number += 1
            path = Path(f"{stem}_{number}.png")
        try:
            picture = compose(frame, False)
            metadata = self._snapshot_metadata(frame, picture)
            saved, reason = write_image(path, picture, metadata), "the encoder refused it"
        except OSError as exc:  # a read-only folder, a full disk: say which, not a guess
            saved, reason = False, exc.strerror or str(exc)
        self.notify(f"saved {path.resolve()}" if saved else
                    f"could not save {path.resolve()}: {reason} (p saves into the current folder)")
        self._tell(f"saved {path.name}" if saved else f"not saved: {reason}")

    def _snapshot_metadata(self, frame: Frame, picture: np.ndarray) -> PhotoMetadata | None:
        """A snapshot's PNG keeps a transparent video's alpha as a photo's output does: its hidden pixels hold the
        nearest visible colour (filled for the render), which without the alpha would show."""
        alpha = frame.extra.get("alpha")
        if alpha is None or (self.photo_metadata is not None and self.photo_metadata.alpha is not None):
            return self.photo_metadata
        return replace(self.photo_metadata or PhotoMetadata(), alpha=alpha_for(alpha, picture.shape[:2]))

    def _info_parts(self, frame: Frame, shown_at: int) -> list[str]:
        """The rate shown, the frame's latency from capture to display, its focus and the blur set."""
        times = self._shown_at
        rate = (len(times) - 1) * 1e9 / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        parts = [f"{rate:.1f} fps", f"{(shown_at - frame.capture_ns) / 1e6:.0f} ms capture to display"]
        if frame.focus is not None:
            parts.append(f"focus {frame.focus:.2f}")
        if blur := self._blur_text():
            parts.append(blur)
        return parts

    def _with_text(self, picture: np.ndarray, parts: list[str], note: str = "") -> np.ndarray:
        """A copy with `parts` written in its top left corner, and `note` on a line of its own below them (the
        picture may be the frame's own output, which other sinks write)."""
        out = picture.copy()
        # at least the smallest readable size on screen, where the window shows the picture smaller
        least = INFO_LEAST_SCALE / self._window_scale
        scale, lines = self._info_layout(parts, *picture.shape[1::-1], least=least) if parts else (np.inf, [])
        if note:
            scale, lines = min(scale, self._info_layout([note], *picture.shape[1::-1], least=least)[0]), lines + [note]
        thickness = max(1, round(2 * scale))
        for row, text in enumerate(lines):
            origin = (round(16 * scale), round(48 * scale) + row * round(40 * scale))
            cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
            cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
        return out

    @staticmethod
    def _info_layout(parts: list[str], width: int, height: int,
                     least: float = INFO_LEAST_SCALE) -> tuple[float, list[str]]:
        """The text's scale (with the picture's height, `least` at the least) and its lines: one where it fits
        the width, else a line a part where the picture is tall enough (a 320x240 camera, a phone's upright
        video), made smaller only where a line is still too wide. It ran off the right edge there."""
        scale = max(least, height / 1000)
        room = width - 2 * round(16 * scale)

        def widest(lines: list[str]) -> int:
            thickness = max(1, round(2 * scale)) + 2
            return max(cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] for text in lines)

        lines = [" | ".join(parts)]
        if widest(lines) > room and round(56 * scale) + (len(parts) - 1) * round(40 * scale) <= height:
            lines = parts
        too_wide = widest(lines)
        return (scale * room / too_wide if too_wide > room else scale), lines

    @property
    def wants_stop(self) -> bool:
        return self._stop

    def close(self, complete: bool = True) -> None:
        if not self._display_gone():  # on a broken connection Qt's next call would end the process
            # a window closed by its close button is gone already (Qt raises); one whose backend cannot tell (-1)
            # is taken away, left on screen after its run otherwise
            if self._visibility() != 0:
                with contextlib.suppress(cv2.error):  # -1 may also be a backend's answer for a window it forgot
                    cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        if self._watch is not None:
            self._watch.close()


def check_virtual_camera() -> ModuleType:
    """pyvirtualcam, or a UserError naming the extra: cheap, so it can run before the model loads."""
    try:
        import pyvirtualcam
    except ImportError:
        raise UserError("the virtual camera needs pyvirtualcam: pip install 'depthcam[vcam]'") from None
    return pyvirtualcam


LOOPBACK_MODULE = Path("/sys/module/v4l2loopback")  # there while the module is loaded


def virtual_camera_problem(message: str, width: int, height: int, fps: float, side_by_side: bool) -> str:
    """One line from pyvirtualcam's error, which holds a line per backend it tried (Windows tries two), with
    the fix for what went wrong: no device, a device another program holds, or a mode it refused."""
    reason = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    lowered = reason.lower()
    # pyvirtualcam passes over a loopback device another program sends to, then finds "no device"
    taken = "no v4l2 loopback device found" in lowered and sys.platform.startswith("linux") and \
        LOOPBACK_MODULE.exists()
    if taken or "busy" in lowered or "already in use" in lowered:
        return (f"the virtual camera is busy ({reason}); close the program that sends to it (another depthcam, "
                f"OBS), or add a device: sudo modprobe -r v4l2loopback && sudo modprobe v4l2loopback devices=2")
    if "invalid argument" in lowered or "could not be configured" in lowered:
        smaller = "leave out --side-by-side, or " if side_by_side else ""
        return (f"the virtual camera refused {width}x{height} @ {fps:g} fps ({reason}); {smaller}give a smaller "
                f"input (a camera: e.g. camera:0?size=1280x720)")
    if sys.platform.startswith("linux"):
        fix = "load v4l2loopback: sudo modprobe v4l2loopback exclusive_caps=1 card_label=depthcam"
    elif sys.platform == "darwin":  # OBS 30+ sends through a system extension that OBS itself activates once
        fix = ("install OBS Studio, click its Start Virtual Camera once (OBS 30 and later: allow its system "
               "extension in System Settings, maybe restart), then quit OBS")
    else:
        fix = "install OBS Studio 26 or later (OBS Virtual Camera), or Unity Capture"
    return f"no virtual camera device ({reason}); {fix}"


class VirtualCameraSink(Sink):
    """A system virtual camera (v4l2loopback, OBS Virtual Camera, ...) through pyvirtualcam."""

    def __init__(self, width: int, height: int, fps: float, picture: Callable[[Frame], np.ndarray],
                 side_by_side: bool = False) -> None:
        pyvirtualcam = check_virtual_camera()
        try:
            self.camera = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.BGR)
        except RuntimeError as exc:
            raise UserError(virtual_camera_problem(str(exc), width, height, fps, side_by_side)) from None
        # Video apps list virtual cameras by name: say which one to pick there.
        notify(f"virtual camera {self.camera.device} ({self.camera.backend}) {width}x{height} @ {fps:g} fps: "
               f"choose it as the camera in your video app")
        self.picture = picture

    def write(self, frame: Frame) -> None:
        self.camera.send(self.picture(frame))

    def close(self, complete: bool = True) -> None:
        self.camera.close()


def sink_parts(sink: Sink) -> list[Sink]:
    """The sinks a run's output writes to: a TeeSink's parts, else the sink itself."""
    return list(getattr(sink, "sinks", [sink]))


class TeeSink(Sink):
    """Writes every frame to several sinks (the main output, the depth video, the preview window)."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks

    def write(self, frame: Frame) -> None:
        for sink in self.sinks:
            sink.write(frame)

    def idle(self) -> None:
        for sink in self.sinks:
            sink.idle()

    @property
    def wants_stop(self) -> bool:
        return any(s.wants_stop for s in self.sinks)

    def close(self, complete: bool = True) -> None:
        errors = []
        for sink in self.sinks:  # close them all even if one fails, so no file is left open
            try:
                sink.close(complete)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
        if errors:
            raise errors[0]


def output_kind(target: str) -> str:
    if target in ("null", "window", "vcam"):
        return target
    suffix = Path(target).suffix.lower()
    if suffix in IMAGE_SUFFIXES or suffix in ANIMATION_ONLY:
        return "image"
    if suffix in video_suffixes():
        return "video"
    images = ", ".join(sorted(IMAGE_SUFFIXES | ANIMATION_ONLY))
    raise UserError(f"cannot write {target}: unknown output type {suffix or '(no extension)'}; use a video "
                    f"({', '.join(video_suffixes())}), an image ({images}), window, vcam or null")


def make_sink(target: str, *, width: int, height: int, fps: float, audio_from: Path | None,
              side_by_side: bool, save_depth: str | None, preview: bool = False,
              controls: LiveControls | None = None, audio_ends_with_pictures: bool = False,
              photo_metadata: PhotoMetadata | None = None,
              tags_from: Path | Mapping[str, str] | None = None, subtitles_from: Path | None = None,
              chapters: list[Mapping[str, Any]] | None = None, part_end: float | None = None,
              codec: str = "auto", input_codec: str | None = None, audio_tracks: list[int] | None = None,
              depth_format: str = "colour") -> Sink:
    """The sink for `-o TARGET` (plus the depth video of --save-depth, and the window of --preview), opened
    and validated now. `tags_from`: the input video's tags (or the file), whose creation time, location and title
    both videos keep (by default the main output takes them from `audio_from`); `chapters`: the input's chapters,
    which both videos keep; `subtitles_from`: the file whose subtitles the main output keeps, cut at `part_end`;
    `codec`, `input_codec`: both videos' codec, as VideoSink takes them; `audio_tracks`: the main output's sound;
    `depth_format`: output.depth_format, the depth file's pictures (colour, or grey16: 16-bit grey data)."""
    kind = output_kind(target)
    picture: Callable[[Frame], np.ndarray] = lambda f: compose(f, side_by_side)  # noqa: E731
    shown: Callable[[Frame], np.ndarray] = lambda f: compose(f, side_by_side, page=True)  # noqa: E731
    out_width = width * 3 if side_by_side else width
    sinks: list[Sink] = []
    try:
        if save_depth:  # its type for depth_format checked before the model loaded (check_depth_format)
            depth = depth_picture(depth_format)
            plays = photo_metadata.plays if photo_metadata is not None else None
            if output_kind(save_depth) == "image" and depth_format == "grey16":
                sinks.append(ImageSink(Path(save_depth), depth))  # no metadata: Pillow's path takes colour only
            elif output_kind(save_depth) == "image":  # a photo's depth picture, an animation's depth animation
                sinks.append(picture_sink(Path(save_depth), depth, fps, PhotoMetadata(plays=plays),
                                          transparency=False))  # depth: opaque, as a photo's
            elif output_kind(save_depth) == "video":
                # cut as the main output is (--duration): its chapters too
                sinks.append(VideoSink(Path(save_depth), width, height, fps, None, depth, audio_ends_with_pictures,
                                       tags_from=tags_from, chapters=chapters, part_end=part_end, codec=codec,
                                       input_codec=input_codec, grey16=depth_format == "grey16"))
            else:
                raise UserError(f"--save-depth {save_depth}: give a video file ({', '.join(video_suffixes())}) or, "
                                f"for a photo, an image file")
        if kind == "null":
            sinks.append(NullSink())
        elif kind == "video":
            sinks.append(VideoSink(Path(target), out_width, height, fps, audio_from, shown, audio_ends_with_pictures,
                                   tags_from, subtitles_from, chapters, part_end, codec, input_codec, audio_tracks,
                                   transparency=not side_by_side))
        elif kind == "image":
            sinks.append(picture_sink(Path(target), picture, fps, photo_metadata))
        elif kind == "vcam":
            sinks.append(VirtualCameraSink(out_width, height, fps, shown, side_by_side))
        if kind == "window" or preview:  # last: the files have the frame before the window waits for a key
            # alone where nothing else shows the frames (-o null --preview too: a camera's run went on unseen)
            sinks.append(WindowSink("depthcam", controls, width, side_by_side, alone=kind in ("window", "null"),
                                    photo_metadata=photo_metadata))
    except BaseException:
        # a later sink that cannot open (a busy virtual camera, no window) leaves none of the earlier ones
        # open: a --save-depth writer's encoder and file
        for made in sinks:
            try:
                made.close(False)
            except Exception:  # noqa: BLE001 (the first error is the one to report)
                pass
        raise
    return sinks[0] if len(sinks) == 1 else TeeSink(sinks)

