"""Frame sources: video files (PyAV), still images and the synthetic portrait; `open_source` opens any input
(cameras: stream.camera, network streams: stream.network_source, standard input: stream.piped_input).

`open_source(spec)` opens and validates at once, so a bad input fails before any thread starts.
A source's `frames()` runs on the capture thread.
"""
from __future__ import annotations

import collections
import contextlib
import itertools
import math
import os
import re
import struct
import threading
import time
import urllib.parse
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import cv2
import numpy as np

from stream.animations import animation_source, is_still_image
from stream.clip_joins import (Clip, ClipFinder, demuxed, marked_out_of_line, transport_packet_size,
                               transport_stream_cut)
from stream.console import command_word, notify, rate_text
from stream.container_files import flv_tagged_duration, matroska_empty, mp4_empty, mp4_index_cut, mp4_without_index
from stream.deinterlace import DESCRIPTION as DEINTERLACED, Deinterlacer
from stream.errors import UserError
from stream.frame import Frame, now_ns
from stream.hdr import UNSPECIFIED_MATRIX, ColourConverter, colour_signal, props_only
from stream.images import filled_behind, is_tiff, on_white, read_image, read_metadata, upright_size
from stream.piped_input import STDIN_NAMES, input_path, tell_default_rate
from stream.synthetic import SyntheticPortrait, SyntheticScene
from stream.audio_track import audio_streams, open_input, read_streams, stop_cuts
from stream.video_writer import (TIMECODE, alpha_pix_fmt, is_hd, opens_again, part_first_picture, readable_again,
                                 shifted_timecode, stream_timecode, timecode_count)

SHORT_INPUT = 0.9  # a file whose pictures end before this share of the length it announced gets a warning
SEEK_BACK_S = 1.0  # a jump that lands after --start is made again this much earlier, then twice as much, ...
# A display rotation (degrees counter-clockwise, as FFmpeg's av_display_rotation_get gives it) and the
# turn that shows the picture upright, as FFmpeg's own players apply it.
UPRIGHT = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
# Pixels wider or narrower than this (to 1 high) are taken for a damaged tag rather than a real camera's.
PIXEL_ASPECT_RANGE = (Fraction(1, 4), Fraction(4))
READ_RETRIES = 16  # read errors in a row, with no packet between, after which the rest of a file counts as unreadable
DAMAGE_TOLD = 5  # damaged spots each said; further ones are skipped without a word
MATRICES = 18  # FFmpeg 8's colour matrices (AVCOL_SPC_NB): a larger tag is a damaged one
# The matrices swscale converts (it refuses 3, reserved, and 8, 10-17: YCgCo, BT.2020 constant luminance, SMPTE 2085,
# chroma-derived, ICtCp, IPT-C2, YCgCo-R): a picture tagged with another is converted as untagged
CONVERTED_MATRICES = frozenset({0, 1, 2, 4, 5, 6, 7, 9})
MATRIX_NAMES = {3: "reserved", 8: "YCgCo", 10: "BT.2020 constant luminance", 11: "SMPTE ST 2085",
                12: "chroma-derived, non-constant luminance", 13: "chroma-derived, constant luminance", 14: "ICtCp",
                15: "IPT-C2", 16: "YCgCo-Re", 17: "YCgCo-Ro"}
JOINABLE_FORMATS = ("mpegts", "mpeg")  # FFmpeg's demuxers of what plays on when files are joined as they are
VIDEO_TIME = "video_seconds"  # a frame's extra: its time on a clock that joined clips' times do not set back


class Source:
    """What the pipeline needs to know about where frames come from."""

    live = False  # live sources drop the oldest frame when the pipeline falls behind
    fps = 30.0
    width = 0
    height = 0
    frame_count: int | None = None
    # Where frame_count is only an estimate (a file that gives no count: Matroska, WebM, MPEG-TS; a part taken
    # with --start or --duration), the seconds of video to process: the estimate, the length times the average
    # rate, is off by any factor for a variable rate (a 4-hour screen recording that paused showed "20/432010"),
    # so a progress bar goes by the pictures' times over this many seconds instead (seconds_done).
    progress_seconds: float | None = None
    audio_path: Path | None = None  # a file whose audio the video sink re-muxes
    subtitle_path: Path | None = None  # a file whose subtitle streams the video sink keeps
    chapters: list[dict[str, Any]] | None = None  # the input's chapters (as PyAV reads them), which the output keeps
    description = "source"

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def seconds_done(self, frame: Frame) -> float:
        """With progress_seconds: the seconds of video processed once `frame` is (its own time to its end)."""
        return (frame.index + 1) / self.fps

    def truncation_warning(self) -> str | None:
        """After every frame was read: a warning where the input ended well before it said it would."""
        return None

    def interrupt(self) -> None:
        """The run is stopping (called from another thread, before close()): a source that waits or tries again
        (a stream reconnecting, a camera opened anew) gives up now, and frames() ends without an error."""

    def close(self) -> None:
        pass


def parse_size(value: str, spec: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise UserError(f"bad size {value!r} in {spec!r}; write it as WIDTHxHEIGHT, e.g. 640x480") from None
    if width < 32 or height < 32 or width > 8192 or height > 8192:
        raise UserError(f"size {width}x{height} in {spec!r} is out of range (32..8192 per side)")
    return width, height


def query(spec: str) -> tuple[str, dict[str, str]]:
    parsed = urllib.parse.urlsplit(spec)
    params = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
    return parsed.path, params


def number(params: dict[str, str], key: str, default: float, spec: str, low: float, high: float,
            whole: bool = False) -> float:
    raw = params.pop(key, None)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{key}={raw!r} in {spec!r} is not a number") from None
    if not low <= value <= high:  # also refuses nan
        raise UserError(f"{key}={raw} in {spec!r} is out of range [{low:g}, {high:g}]")
    if whole and not value.is_integer():
        raise UserError(f"{key}={raw} in {spec!r} must be a whole number")
    return value


def refuse_unknown(params: dict[str, str], spec: str, known: str) -> None:
    if params:
        raise UserError(f"unknown option(s) {', '.join(sorted(params))} in {spec!r} (known: {known})")


def _wait_until(due_ns: int) -> None:
    """Sleep until the pipeline's clock reads `due_ns` (at once if it is past): the paced sources' beat."""
    delay = due_ns - now_ns()
    if delay > 0:
        time.sleep(delay / 1e9)


class SyntheticSource(Source):
    """`synthetic:portrait?size=640x480&fps=30&frames=300&realtime=0&seed=0`; frames carry ground truth."""

    def __init__(self, spec: str) -> None:
        name, params = query(spec.split(":", 1)[1])
        if name not in ("", "portrait"):
            raise UserError(f"unknown synthetic scene {name!r} in {spec!r}; the scene is 'portrait'")
        self.width, self.height = parse_size(params.pop("size", "640x480"), spec)
        self.fps = number(params, "fps", 30, spec, 1, 1000)
        self.frame_count = int(number(params, "frames", 300, spec, 1, 10_000_000, whole=True))
        self.live = bool(number(params, "realtime", 0, spec, 0, 1, whole=True))
        seed = int(number(params, "seed", 0, spec, 0, 2**31, whole=True))
        refuse_unknown(params, spec, "size, fps, frames, realtime, seed")
        self.scene = SyntheticPortrait(SyntheticScene(self.width, self.height, seed))
        self.description = f"synthetic portrait {self.width}x{self.height} @ {self.fps:g} fps"

    def frames(self) -> Iterator[Frame]:
        period_ns = int(1e9 / self.fps)
        start = now_ns()
        index, count = 0, self.frame_count or 0
        while index < count:
            exposed = start + index * period_ns  # paced like a camera: frame i is exposed then
            late = now_ns() - exposed
            if self.live and late > period_ns:
                # Drawing fell behind (38 ms a 1280x720 frame, more with the pipeline on the same cores): a
                # camera does not queue what nobody read, it moves on to its newest exposure. Without this the
                # delay grew without bound (720p on two cores: 3.8 s capture -> display after 7 s).
                index += late // period_ns
                if index >= count:
                    break
                exposed = start + index * period_ns
            # Drawn before its exposure time, as a camera has a frame ready when it delivers it: drawing
            # costs 11 ms at 640x480 and 38 ms at 1280x720, which a camera's own latency does not include.
            image, truth = self.scene.render(index)
            frame = Frame(index=index, capture_ns=now_ns(), image=image, pts_seconds=index / self.fps,
                          ground_truth=truth)
            if self.live:
                # Paced, latency counts from the exposure. A frame drawn past it (the drawing shares the cores the
                # pipeline runs on) counts from when it was drawn, as a camera's from when the camera has it: the
                # overrun is the machine's, not the camera's, and is kept apart (the bench reports it).
                late = max(0, frame.capture_ns - exposed)
                _wait_until(exposed)
                frame.capture_ns = exposed + late
                frame.extra["source_late_ns"] = late
            yield frame
            index += 1


STILL_FPS = 10.0  # a photo shown in a window is rendered again this often, so clicks and keys take effect
# ... and at most this wide: a phone's 12-megapixel photo takes ~1 s a render on two cores, 1280 px ~50 ms
STILL_WINDOW_WIDTH = 1280


def _tell_pages(path: Path) -> None:
    """Says where a TIFF holds more pictures than the first, which alone is read: a scan of several pages or a
    layered export (no animation: its pages have no times) gave its first page without a word."""
    from models.registry import notify as notify_once  # a photo in a window is opened for its checks, then run
    from stream.deep_tiff import PAGES_READ, tiff_pages

    if not is_tiff(path):
        return
    pages = tiff_pages(path)
    if pages > 1:
        more = "or more " if pages >= PAGES_READ else ""
        notify_once(f"{path.name} holds {pages} {more}pages: only its first is processed; give each page as a "
                    f"file of its own to process the others")


class ImageSource(Source):
    """One frame; or, `keep_showing()`, the same picture again and again (at most STILL_WINDOW_WIDTH wide),
    paced like a slow camera, for a window in which the photo is refocused until the user is done
    (frame_count stays 1: one picture)."""

    def __init__(self, path: Path) -> None:
        """Its size from its headers where they give it (upright_size): a run refused for it (the blur, an output's
        size limit) is refused before a 48-megapixel photo is decoded (load), not after."""
        self.path = path
        size = upright_size(path)
        self._image = None if size is not None else read_image(path)
        self.metadata = read_metadata(path)  # kept by an image output
        self.width, self.height = size if size is not None else self._image.shape[1::-1]
        self.frame_count = 1
        self.repeating = False
        self.description = f"image {path.name} {self.width}x{self.height}"
        _tell_pages(path)

    @property
    def image(self) -> np.ndarray:
        return self.load()

    @image.setter
    def image(self, image: np.ndarray) -> None:
        self._image = image

    def load(self) -> np.ndarray:
        """The photo, decoded on first use; where its headers told its size otherwise (a damaged one), its own."""
        if self._image is None:
            self._image = read_image(self.path)
            if self._image.shape[:2] != (self.height, self.width):
                self.height, self.width = self._image.shape[:2]
                self.description = f"image {self.path.name} {self.width}x{self.height}"
        return self._image

    def keep_showing(self) -> float:
        """Repeat the photo for a window, brought down to STILL_WINDOW_WIDTH; returns the scale (<= 1)."""
        self.repeating = self.live = True  # live: a render slower than STILL_FPS skips copies, not time
        self.fps = STILL_FPS
        scale = min(1.0, STILL_WINDOW_WIDTH / self.width)
        if scale < 1.0:
            size = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
            self.image = cv2.resize(self.image, size, interpolation=cv2.INTER_AREA)
            self.width, self.height = size
            self.description += f" (shown at {self.width}x{self.height})"
        return scale

    def frames(self) -> Iterator[Frame]:
        period_ns = int(1e9 / STILL_FPS)
        start = now_ns()
        for index in itertools.count() if self.repeating else range(1):
            due = start + index * period_ns
            _wait_until(due)
            # a copy only for a window's repeats (a stage's work on one must not show in the next); a photo read
            # once hands over its own picture: a 48-megapixel one's copy was 146 MB more at the run's peak
            image = self.image.copy() if self.repeating else self.image
            yield Frame(index=index, capture_ns=max(due, now_ns()) if self.repeating else now_ns(),
                        image=image, pts_seconds=index / STILL_FPS,
                        extra={} if self.metadata.alpha is None else {"alpha": self.metadata.alpha})


class PacedSource(Source):
    """A file delivered like a camera, or a player: each frame is due at its presentation time after the
    first, and latency counts from then (the decoder running up to a frame period late included; later, the
    beat moves on with it); the live queue drops frames the stages cannot keep up with. The benchmark's live run
    uses it, and so does a video shown in a window (-o window)."""

    live = True
    WAIT_SLICE_NS = 100_000_000  # a stop during a long gap between frames ends the wait within this

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.fps, self.width, self.height = inner.fps, inner.width, inner.height
        self.frame_count = inner.frame_count
        self.description = f"{inner.description}, paced at its frame rate"
        self._interrupted = threading.Event()

    def interrupt(self) -> None:
        """A stop: the wait for the next frame's time ends now (a variable frame rate's gap may be minutes), and the
        file's own reading gives up where it can."""
        self._interrupted.set()
        interrupt = getattr(self.inner, "interrupt", None)  # a library's own source may have none
        if interrupt is not None:
            interrupt()

    def _wait(self, due: int) -> bool:
        """Sleep until `due` in slices of WAIT_SLICE_NS, so that a stop is seen; False once interrupted."""
        while not self._interrupted.is_set():
            _wait_until(min(due, now_ns() + self.WAIT_SLICE_NS))
            if now_ns() >= due:
                return True
        return False

    def frames(self) -> Iterator[Frame]:
        start: int | None = None
        first_pts = None
        period = round(1e9 / self.fps)
        behind = 0  # frames the decoder delivered more than a frame period late
        for index, frame in enumerate(self.inner.frames()):
            seconds = index / self.fps
            if frame.pts_seconds is not None:  # a variable frame rate keeps its own spacing
                first_pts = frame.pts_seconds if first_pts is None else first_pts
                seconds = frame.pts_seconds - first_pts
            arrived = now_ns()
            if start is None:  # the first frame is due when it is decoded: its decoding is no lateness
                start = arrived - round(seconds * 1e9)
            due = start + round(seconds * 1e9)
            if arrived - due > period:
                # A decoder slower than the video's rate (1080p on a busy laptop) made every frame later than the
                # one before: latency counted from the first frame's beat grew without end (103 -> 664 ms over 12
                # frames at half speed). From here the video is delivered at the decoder's pace, as a camera
                # that slowed down would deliver it; the debt is not carried.
                start += arrived - due
                due = arrived
                behind += 1
                if behind == max(round(self.fps), 1):
                    notify(f"{self.inner.description}: decodes slower than its {rate_text(self.fps)} fps here, so it "
                           f"is delivered at the decoder's pace")
            if not self._wait(due):
                return
            frame.capture_ns = due
            yield frame

    def close(self) -> None:
        self.inner.close()


# FFmpeg's APNG demuxer (its options; other demuxers have none of these names) shows a picture stored as shown 0 s
# for 1/15 s, and one of 1-10 ms as stored: shown 100 ms instead, as browsers do, as FFmpeg's GIF demuxer and a
# transparent APNG (animations.CLAMPED_DURATION_MS) do; a 2-picture APNG lasted 0.13 s, its GIF 0.2 s
APNG_TIMES = {"default_fps": "10", "max_fps": "99"}  # max_fps: over 99 pictures a second (10 ms or less)
ANIMATION_FORMATS = ("gif", "apng")  # FFmpeg's demuxers of animations: each picture has its own duration


class PictureTreatment:
    """What each decoded picture of a video file or a network stream needs before the pipeline sees it, decided
    from the first: tone-mapped (HDR) or plainly converted to BGR, scaled to square pixels (DV, anamorphic: the
    network, the face detector and the round blur see its true shape), turned upright and mirrored back as its
    display matrix says (a phone's portrait video), in that order. Deinterlacing comes before it, on the decoded
    frames. `name`: the input as its lines name it."""

    def __init__(self, first: Any, stream: Any, name: str) -> None:
        self.pixel_aspect: Fraction = pixel_aspect(stream, name)
        self.rotation, self.mirrored = display_orientation(first)
        self.turn = UPRIGHT.get(self.rotation)
        self.colour = colour_signal(first)
        self.converter = ColourConverter(self.colour) if self.colour is not None else None
        self.name = name
        # ProRes 4444, QuickTime Animation, PNG in MOV, FFV1: decoded with their alpha, which a file's frames carry
        # (image_and_alpha), a network stream's laid on white (image)
        self.alpha = has_alpha(first.format)
        self._last_alpha: np.ndarray | None = None  # see _decoded
        # FFmpeg's GIF pictures are BGRA whatever they show (a transparent GIF is read by Pillow: stream.animations):
        # an alpha no one chose, which an output that holds alpha would keep, opaque, and say it kept
        self.alpha_carried = self.alpha and getattr(stream.codec_context, "name", None) != "gif"
        self._alpha_told = False
        self.picture_format = first.format
        self.finer = finer_than_output(first.format)  # against H.264's 4:2:0 until the output's codec is known
        # Players take untagged video for BT.709 from HD sizes (as the writer tags its output); swscale
        # would take BT.601 for every size.
        self.untagged = "itu709" if is_hd(first.width, first.height) else None

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The size pictures stored at `width` x `height` are given at."""
        width = round(width * self.pixel_aspect)
        return (height, width) if self.rotation in (90, 270) else (width, height)

    def parts(self, stored: str) -> list[str]:
        """What is done to each picture, as the run line says it (the words VideoFileSource's says)."""
        shown = [f"scaled to square pixels from {stored} (pixel aspect {self.pixel_aspect})"] \
            if self.pixel_aspect != 1 else []
        shown += [f"turned upright ({self.rotation}° display rotation)"] if self.turn is not None else []
        shown += ["mirrored back as its display matrix says"] if self.mirrored else []
        shown += [self.finer] if self.finer is not None else []
        return shown + ([str(self.colour)] if self.colour is not None else [])

    def image(self, picture: Any) -> np.ndarray:
        """One decoded av.VideoFrame as the BGR picture the pipeline works on, laid on white where it has alpha (a
        network stream's: its outputs hold none)."""
        image, alpha = self._decoded(picture)
        return self._shaped(image if alpha is None else self._on_white(image, alpha))

    def image_and_alpha(self, picture: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """One decoded av.VideoFrame as the BGR picture the pipeline works on and, for a format with alpha (ProRes
        4444, QuickTime Animation, PNG in MOV, FFV1), its alpha apart, treated alike. As a photo's (filled_behind):
        the hidden pixels hold the nearest visible colour, so that the blur gathers no white into the edge; the
        video sink puts the alpha back, as given, where the codec holds it, else lays the render on white."""
        image, alpha = self._decoded(picture)
        if alpha is None or not self.alpha_carried:
            return self._shaped(image if alpha is None else self._on_white(image, alpha)), None
        return self._shaped(filled_behind(image, alpha)), self._shaped(alpha)

    def _decoded(self, picture: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """BGR as stored (straight colours), and the alpha where the format has one. A picture of a transparent input
        that comes without its alpha (FFmpeg's VP9 decoder standing in for libvpx after a damaged spot: it reads no
        alpha) takes the last picture's, where it flashed opaque over the programme to the next keyframe."""
        image, alpha = self._decoded_as_stored(picture)
        if alpha is None:
            return image, None
        if not has_alpha(picture.format) and self._last_alpha is not None and self._last_alpha.shape == alpha.shape:
            return image, self._last_alpha  # its own "alpha" is swscale's 255 everywhere
        self._last_alpha = alpha
        return image, alpha

    def _decoded_as_stored(self, picture: Any) -> tuple[np.ndarray, np.ndarray | None]:
        if self.converter is not None:
            image = self.converter.convert(picture)
            alpha = alpha_of(picture) if self.alpha else None  # rare: HDR with alpha
            return image, alpha
        tagged = picture.colorspace != UNSPECIFIED_MATRIX
        packed = self.alpha and not _alpha_planar(picture.format)  # argb, rgba, a palette: swscale's alpha is a copy
        decoded = picture.to_ndarray(format="bgra" if packed else "bgr24",
                                     src_colorspace=None if tagged else self.untagged)
        if packed:
            return cv2.cvtColor(decoded, cv2.COLOR_BGRA2BGR), decoded[..., 3]
        return decoded, alpha_of(picture) if self.alpha else None

    def _shaped(self, image: np.ndarray) -> np.ndarray:
        """A picture (or its alpha) at square pixels, upright and mirrored back, as the input says it is shown."""
        if self.pixel_aspect != 1:  # area averaging where it narrows (no aliasing), cubic where it widens
            height, width = image.shape[:2]
            size = (round(width * self.pixel_aspect), height)
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if size[0] < width else cv2.INTER_CUBIC)
        if self.turn is not None:
            image = cv2.rotate(image, self.turn)
        return cv2.flip(image, 1) if self.mirrored else image  # left-right, after the turn

    def _on_white(self, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The picture laid on white (on_white), said once, at the first picture that shows the page: a format
        with alpha whose pictures are all opaque (FFmpeg's GIFs decode as BGRA) says nothing."""
        if alpha.min() == 255:
            return image
        if not self._alpha_told:
            self._alpha_told = True
            notify(f"{self.name}: its alpha channel is laid on white: the output has none")
        return on_white(image, alpha)


def _alpha_planar(picture_format: Any) -> bool:
    """Whether a format's alpha is a plane of its own, in the machine's order (yuva444p12le, yuva420p, gbrap)."""
    return picture_format.name.startswith(("yuva", "gbrap")) and not picture_format.name.endswith("be")


def alpha_of(picture: Any) -> np.ndarray:
    """A decoded picture's alpha, 8-bit: a planar one's (ProRes 4444's 12-bit, VP9's, FFV1's) scaled exactly from
    its plane, where swscale's conversion to BGRA rounded some a code value high (128 came back 129), so that each
    generation drifted further."""
    if not _alpha_planar(picture.format):
        return picture.to_ndarray(format="bgra")[..., 3]
    plane, bits = picture.planes[3], next(c.bits for c in picture.format.components if c.is_alpha)
    values = np.frombuffer(plane, np.uint8 if bits <= 8 else np.dtype("<u2")).reshape(plane.height, -1)
    values, top = values[:, :plane.width], (1 << bits) - 1
    # round(v * 255 / top) in integers: top is odd, so there is no tie to break
    return values.copy() if bits == 8 else ((values.astype(np.uint32) * 510 + top) // (2 * top)).astype(np.uint8)


def has_alpha(picture_format: Any) -> bool:
    """Whether pictures of an av.VideoFormat carry alpha (yuva444p10le, yuva420p, rgba, argb, ya8...), or may: a
    palette's (pal8: PNG in MOV, an APNG made with one) is in its palette, which decoding as BGRA keeps; an opaque
    one is left as it is (_on_white)."""
    return picture_format.name == "pal8" or any(component.is_alpha for component in picture_format.components)


OUTPUT_BITS = 8  # the pipeline works on 8-bit BGR, whatever the output's codec keeps (stream.video_writer)
CHROMA_NAMES = {(1, 1): "4:4:4", (2, 1): "4:2:2", (1, 2): "4:4:0", (2, 2): "4:2:0", (4, 1): "4:1:1"}
COLOUR_LOST = " in a video output"  # the end of the run line's words where the output's codec keeps less colour


def _subsampling(picture_format: Any) -> tuple[int, int]:
    """How many pictures' pixels across and down share one chroma sample (1, 1 for RGB)."""
    if picture_format.is_rgb:
        return 1, 1
    sized = type(picture_format)(picture_format.name, 64, 64)  # the chroma planes' size at 64x64
    return 64 // max(sized.chroma_width(), 1), 64 // max(sized.chroma_height(), 1)


def finer_than_output(picture_format: Any, output_pix_fmt: str = "yuv420p") -> str | None:
    """Where a video's pictures hold more than the output keeps (over 8 bits, which the pipeline does not keep;
    colour finer than the output codec's: ProRes HQ, DNxHR, H.264 High 4:2:2 into H.264's 4:2:0), the run line's
    words for it ("10-bit 4:2:2 made 8-bit 4:2:0 in a video output"); None for nothing lost (8-bit 4:2:0 or coarser
    into H.264, 4:2:2 into ProRes), grey and paletted pictures."""
    colour = [c for c in picture_format.components if not c.is_alpha]
    if len(colour) < 3:  # grey (with alpha or not), a palette: nothing finer than the output
        return None
    bits = max(component.bits for component in colour)
    subsampling = _subsampling(picture_format)
    output = _subsampling(type(picture_format)(output_pix_fmt, 64, 64))
    finer = subsampling[0] * subsampling[1] < output[0] * output[1]
    if bits <= OUTPUT_BITS and not finer:
        return None
    sampling = "RGB" if picture_format.is_rgb else CHROMA_NAMES.get(subsampling, picture_format.name)
    given = " ".join(([f"{bits}-bit"] if bits > OUTPUT_BITS else []) + ([sampling] if finer else []))
    made = " ".join(([f"{OUTPUT_BITS}-bit"] if bits > OUTPUT_BITS else []) + ([CHROMA_NAMES[output]] if finer else []))
    return f"{given} made {made}" + (COLOUR_LOST if finer else "")  # the bits: the pipeline's own


def _own_duration(picture: Any) -> Any:
    """How long a decoded picture says it is shown, in seconds (a Fraction), or None where it does not say."""
    return picture.duration * picture.time_base if picture.duration and picture.time_base else None


REPLAY_PACKETS = 1024  # packets since the last keyframe kept to decode again (Redecoder); past that, none
REPLAY_BYTES = 64 << 20  # nor past these bytes: a clean 4K long-GOP file held 240 MB to 1.5 GB more in packets
# codecs whose frame threads refuse pictures after a damaged packet up to the next keyframe (slice threads give
# them): VP9 (28 of 47 with 16 threads); H.264, HEVC, VP8, MPEG-2 and MPEG-4 Part 2 give as many either way, so
# none of their packets are kept (an intra-only codec's, a packet each, are: DNxHD gave 12 of 24 with 16 threads)
REPLAYED_CODECS = frozenset({"vp9"})
REORDER_PACKETS = 16  # H.264's and HEVC's most pictures held back for reordering (the DPB)
# FFmpeg 8's HEVC decoder drops every picture predicted from a damaged one (flagged corrupt), where FFmpeg 5 and
# the players show them smeared: 42 of 48 where `ffmpeg -i` gave 47. Asked for them, depthcam keeps the smeared
# ones and drops those predicted from the mid-grey picture FFmpeg puts in place of a lost reference.
SHOWN_CORRUPT_CODECS = frozenset({"hevc"})
LOST_REFERENCE_SHARE = 0.5  # of chroma samples exactly mid-grey: a picture made from FFmpeg's stand-in reference


def show_corrupt(codec_context: Any) -> bool:
    """Asks the decoder of a codec in SHOWN_CORRUPT_CODECS for the pictures it flags corrupt; whether it did."""
    if codec_context.name not in SHOWN_CORRUPT_CODECS:
        return False
    codec_context.options = {**codec_context.options, "flags": "+output_corrupt"}
    return True


def from_lost_reference(picture: Any) -> bool:
    """Whether a corrupt picture is made from the grey picture FFmpeg's HEVC decoder puts in place of a lost
    reference (every sample 1 << (bits - 1)): its colour is mostly exactly that grey (0.8 to 1.0 of its chroma
    samples; a smeared picture's, 0.01 to 0.04), nothing of the scene's colour left."""
    if len(picture.planes) < 3:
        return False  # grey-scale, or chroma interleaved: not told apart
    bits = picture.format.components[1].bits
    plane = picture.planes[1]
    wide = np.uint16 if bits > 8 else np.uint8
    samples = np.frombuffer(plane, wide).reshape(plane.height, -1)[:, :plane.width]
    return bool(np.mean(samples == 1 << (bits - 1)) >= LOST_REFERENCE_SHARE)


def _file_identity(path: Path) -> tuple[int, int] | None:
    """A regular file's device and inode (None: none, or not a regular file): the file a stand-in decoder opens again
    must be the one the source reads, not a pipe nor a file put in its place since."""
    if not readable_again(path):
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def alpha_decoder(stream: Any) -> Any | None:
    """libvpx's VP9 decoder for a WebM's VP9 with alpha (`alpha_mode` 1): FFmpeg's own decodes the colour only,
    leaving the alpha, stored beside each picture, out (the picture came out opaque); None for any other stream."""
    import av

    if stream.codec_context.name != "vp9" or stream.metadata.get("alpha_mode") != "1":
        return None
    try:
        decoder = av.CodecContext.create("libvpx-vp9", "r")
    except (av.error.FFmpegError, ValueError):  # an FFmpeg built without libvpx: the colour alone, as before
        return None
    decoder.extradata = stream.codec_context.extradata
    decoder.thread_type = "SLICE"
    return decoder


class Redecoder:
    """A stream's decoder (its own, frame-threaded and fast, or libvpx's for VP9 with alpha) with a stand-in for a
    damaged spot. With frame threads VP9 refused every picture after one damaged packet up to the next keyframe
    (25 of 49 given), and pictures held in its threads were lost where a flush failed; libvpx refuses them too.
    The stand-in, FFmpeg's decoder made afresh from the stream's parameters with slice threads, decodes again from
    the last keyframe and on, as FFmpeg's players without frame threads (the damage smeared, as they show it;
    libvpx's stretch in colour only, opaque), up to the next keyframe, where the stream's decoder takes over again
    (the rest of a file in one thread took 1.27 times as long). The packets since the last keyframe before those
    whose pictures are still in the threads are kept (references, no copy) for the codecs that need them;
    pictures already given are not given twice. One for each demuxing (a jump starts anew)."""

    def __init__(self, stream: Any, reopen: Path | None = None) -> None:
        """`reopen`: the file the stream is read from, where it can be opened again for a stand-in (not a pipe or a
        FIFO: a second reader took the pictures' bytes, or waited for ever)."""
        from av.codec.context import ThreadType

        self.stream = stream
        self.reopen = reopen
        self._identity = _file_identity(reopen) if reopen is not None else None
        self.primary = alpha_decoder(stream)  # from the start where only another decoder reads the alpha
        self.stand_in: Any = None  # after a damaged spot, to the next keyframe
        self.catching_up = 0  # its packets left whose pictures may have been given already (its reordering delay)
        self.replaying = self.primary is not None or ThreadType.FRAME in stream.codec_context.thread_type
        self.long_gop = stream.codec_context.name in REPLAYED_CODECS  # its packets are kept between keyframes
        self.kept: list[Any] = []  # from a keyframe on
        self.keys: list[int] = []  # where in `kept` its keyframes are
        self.kept_bytes = 0
        self.pending: list[Any] = []  # the stand-in's last pictures, given with the next ones
        # the times of the pictures given lately: not given again (a bounded window: joined clips repeat times)
        self.given: set[int] = set()
        self.given_order: collections.deque[int] = collections.deque(maxlen=2 * REPLAY_PACKETS)

    def decode(self, packet: Any) -> list[Any]:
        """The pictures `packet` completes (None: flush); raises the decoder's error at a damaged spot."""
        if self.stand_in is not None and packet is not None and packet.is_keyframe:
            self._back()
        if self.stand_in is not None:
            self.catching_up -= 1
            return self._pending() + self._new(self.stand_in.decode(packet))
        if self.replaying and packet is not None:
            self._keep(packet)
        pictures = self.primary.decode(packet) if self.primary is not None else self.stream.decode(packet)
        return self._pending() + self._given(pictures)

    def _back(self) -> None:
        """The stream's decoder again, from a keyframe: the stand-in's last pictures given with its first ones."""
        import av

        try:
            self.pending += self._new(self.stand_in.decode(None))
        except av.error.FFmpegError:
            pass  # a damaged last packet: said already
        self.stand_in = None
        self._own().flush_buffers()  # out of the end the damaged spot's flush left it at

    def _own(self) -> Any:
        """The stream's decoder's context (libvpx's, or the stream's own)."""
        return self.primary if self.primary is not None else self.stream.codec_context

    def _pending(self) -> list[Any]:
        pending, self.pending = self.pending, []
        return pending

    def _keep(self, packet: Any) -> None:
        """Keeps `packet`, and those back to the last keyframe before the packets whose pictures the threads may
        still hold (one each; an intra-only codec's keyframes come one a packet)."""
        if packet.is_keyframe:
            self.keys.append(len(self.kept))
        elif (not self.kept or not self.long_gop or len(self.kept) >= REPLAY_PACKETS
              or self.kept_bytes >= REPLAY_BYTES):
            self._forget()  # none before a keyframe, nor past the limits: nothing to decode again
            return
        self.kept.append(packet)
        self.kept_bytes += packet.size
        in_flight = self.stream.codec_context.thread_count + 1
        while len(self.keys) > 1 and len(self.kept) - self.keys[1] >= in_flight:
            drop = self.keys[1]
            self.kept_bytes -= sum(old.size for old in self.kept[:drop])
            self.kept, self.keys = self.kept[drop:], [key - drop for key in self.keys[1:]]

    def _forget(self) -> None:
        self.kept, self.keys, self.kept_bytes = [], [], 0

    def after_damage(self, packet: Any) -> list[Any]:
        """After a damaged spot (`packet`'s, None: at the flush): the pictures the stream's decoder held, and those
        not given yet of the packets since the last keyframe, decoded again by the stand-in, which decodes on."""
        import av

        if self.stand_in is not None or not self.kept:
            return self._pending()
        stand_in = self._stand_in()
        if stand_in is None:  # the stream's decoder goes on, unflushed, to the next picture it can make
            self._forget()
            return self._pending()
        held = self._pending() + self._drained()
        self.stand_in = stand_in
        pictures: list[Any] = []
        self.catching_up = len(self.kept) + REORDER_PACKETS
        for again in self.kept + ([None] if packet is None else []):
            try:
                pictures += self._new(self.stand_in.decode(again))
            except av.error.FFmpegError:
                continue  # the damaged packet again: said already
        self._forget()
        return held + pictures

    def _stand_in(self) -> Any | None:
        """FFmpeg's decoder for the stream made from its parameters (the file opened again: one given only the
        extradata lacked FFV1's size and Ut Video's codec tag, and refused every later packet), slice-threaded;
        None where it cannot be made."""
        import av

        if self._identity is None or _file_identity(self.reopen) != self._identity:  # a pipe, or the file replaced
            return None
        try:
            with av.open(str(self.reopen), metadata_errors="replace") as again:
                decoder = again.streams[self.stream.index].codec_context
                decoder.thread_type = "SLICE"
                show_corrupt(decoder)
                decoder.open()
        except (av.error.FFmpegError, OSError, IndexError):
            return None
        return decoder

    def _new(self, pictures: list[Any]) -> list[Any]:
        """The stand-in's pictures, less those the stream's decoder gave, until it has caught up."""
        if self.catching_up <= 0:
            return pictures
        return [picture for picture in pictures if picture.pts is None or picture.pts not in self.given]

    def _drained(self) -> list[Any]:
        """The pictures the frame threads hold, as they decoded them (H.264 conceals a damaged one, which slice
        threads refuse): the decoder flushed, as the demuxer's last packet does, timed."""
        import av

        flush = av.Packet()
        flush.time_base = self.stream.time_base
        try:
            return self._given(self.primary.decode(flush) if self.primary is not None else self.stream.decode(flush))
        except av.error.FFmpegError:
            return []  # its pictures are decoded again

    def _given(self, pictures: list[Any]) -> list[Any]:
        if self.replaying and self.stand_in is None:
            for picture in pictures:
                if picture.pts is not None:
                    if len(self.given_order) == self.given_order.maxlen:
                        self.given.discard(self.given_order[0])
                    self.given_order.append(picture.pts)
                    self.given.add(picture.pts)
        return pictures


class VideoFileSource(Source):
    """Decodes with PyAV (FFmpeg), frame-threaded; keeps presentation times for the writer."""

    def __init__(self, path: Path, input_rate: Fraction | None = None) -> None:
        """`input_rate` (--input-rate): the rate of pictures with no times of their own (a stream of pictures, a raw
        stream); a video with its own is refused."""
        import av

        self.path = path
        self._interrupted = threading.Event()  # a stop: read no further (interrupt)
        self._reader: int | None = None  # the thread in frames(), whose read of a served file a stop cuts short
        self._reader_lock = threading.Lock()
        # the raw and image-pipe demuxers time their pictures at `framerate` (25 if not given); others have none
        self._open_options = {**APNG_TIMES, **({"framerate": str(input_rate)} if input_rate is not None else {})}
        try:
            # a tag in invalid UTF-8 (a damaged header) is read with its bytes replaced: it ended the run
            self.container = open_input(path, container_options=self._open_options)
        except av.error.FFmpegError as exc:
            if mp4_without_index(path):
                raise UserError(f"{path} has its pictures but no index (its moov box, which an MP4 or MOV gets when "
                                f"its recording stops): it is still being recorded, or the recording was cut off; "
                                f"run it once the recording has stopped, or repair it (e.g. with untrunc and a good "
                                f"file from the same camera)") from None
            if matroska_empty(path):
                raise UserError(f"{path} holds no picture: its header and track list are whole but no picture "
                                f"follows them (a recording stopped before its first picture, or a conversion "
                                f"that wrote none); give a video with pictures") from None
            if mp4_index_cut(path):
                raise UserError(f"{path} is cut short inside its index (its moov box, at its end): a copy or download "
                                f"not finished? copy it again, or repair it (e.g. with untrunc and a good file from "
                                f"the same camera)") from None
            raise UserError(f"cannot read video {path}: {exc.strerror or exc} "
                            f"(the file is not a video, or it is truncated or corrupt)") from None
        self.stream = _video_stream(self.container, path)
        _tell_video_streams(self.container, self.stream, path.name)
        self.stream.thread_type = "AUTO"
        self._shows_corrupt = show_corrupt(self.stream.codec_context)
        self._whole_seen = False  # a picture decoded whole (not corrupt) given yet, see _without_lost_references
        rate = self.stream.average_rate or self.stream.guessed_rate
        if self.container.format.name in ANIMATION_FORMATS and self.stream.guessed_rate:
            # an animation holds some pictures longer on purpose (a 2 s last one): its average rate (3.45 fps for
            # nine 0.1 s pictures and a 2 s one) is no frame rate, and AVI's fixed rate made of it dropped pictures
            rate = self.stream.guessed_rate
        rate = _not_the_pauses(_not_the_tick(_not_the_fields(rate, self.stream), self.stream), self.stream)
        # a raw elementary stream: FFmpeg's raw demuxers give its pictures no times, and average its rate at their
        # default 25 fps (a 60 fps Raspberry Pi or drone .h264 was read, and written, at 25): its own rate, if any
        self._raw = self.container.format.name in RAW_VIDEO_FORMATS
        own_rate = _raw_own_rate(self.stream) if self._raw else None
        rate = own_rate or rate
        if input_rate is not None:
            self._refuse_own_rate(own_rate, rate)
            rate = input_rate
        self.fps = float(rate) if rate else 30.0
        self.rate = rate
        # Pictures a frame period apart throughout (the average rate is the one they come at): a part then ends on a
        # frame boundary, its last picture whole, so that a constant rate stays constant (set_range)
        self.constant_rate = bool(rate) and self.stream.average_rate == self.stream.guessed_rate \
            and self.container.format.name not in ANIMATION_FORMATS
        self.width, self.height = self.stream.codec_context.width, self.stream.codec_context.height
        if self.width <= 0 or self.height <= 0:
            self.container.close()
            raise UserError(f"cannot read video {path}: its video stream has no frame size (corrupt file)")
        stored = f"{self.width}x{self.height}"
        self._damaged_spots, self._in_damage = 0, False  # see _damaged
        self._matrix_told = False  # see _untagged
        self._line_told = False  # see _put_in_line
        self._dts_delay: int | None = None  # an AVI's decoder delay in ticks (see _in_display_time)
        self._last_pts: int | None = None
        self._untold: list[str] | None = []  # damage before the first picture, said once one decodes (else None)
        self._unshown = 0  # packets counted in the frame count that never make a picture (see _decode)
        self._raw_pictures = 0  # a raw stream's pictures decoded: timed at its rate from its start (_timed_at_rate)
        self._start_told = False  # the pictures lost before the first keyframe said (_tell_lost_start)
        # The first frame is decoded now: a file with no decodable frame fails before anything heavy
        # loads, and its display matrix tells how the picture is meant to be shown.
        self._decoded = self._decode()
        try:
            self._first = next(self._decoded)
        except (StopIteration, av.error.FFmpegError):
            self.container.close()
            raise UserError(_undecodable(path, self.container.format.name)) from None
        except UserError:  # a served file's server stopped sending
            self.container.close()
            raise
        for line in self._untold:
            notify(line)
        self._untold = None
        if self._raw and own_rate is None and input_rate is None:  # FFmpeg's 25 is only a default
            notify(_raw_rate_unknown(path, self.container, self.stream, self.fps))
        # the output has no display matrix or pixel aspect of its own: frames are shown as the input says here
        self.treatment = PictureTreatment(self._first, self.stream, path.name)
        self.width, self.height = self.treatment.size(self.width, self.height)
        self.rotation, self.colour = self.treatment.rotation, self.treatment.colour
        count = self._announced_frames = _packets_announced(self.stream, self.container.format.name)
        if count:  # the pictures shown: the progress bar of a cut (ffmpeg -ss -c copy) ended at 36/48
            count = max(1, count - _hidden_in_index(self.stream, count))
        self._joins_unknown = False  # clips joined, too many to find at open: a start is reached by reading on
        self._clips = self._joined_clips()
        # kept: the warning after the run reads them closed; clips joined: all of their time, not FFmpeg's guess
        seconds = self._length = sum(clip.length for clip in self._clips) if self._clips else self._video_seconds()
        if not count and seconds:
            # from the first picture, as the bar counts: one cut mid-GOP has lost pictures before it (1.0 of 1.8 s)
            seconds = max(seconds - ((self._first.time or 0.0) - self._length_origin()), 1 / self.fps)
            count = int(round(seconds * self.fps))
            self.progress_seconds = seconds
        self.frame_count = count or None
        self.audio_path = path if audio_streams(self.container) else None
        # MPEG-TS (a broadcast recording, a camcorder's .MTS) has no index or length of its own: FFmpeg estimates
        # its length from its size, so a cut one reads as whole. Its fixed-size packets tell a cut instead. Only in a
        # file: a pipe's second reader took bytes from the pictures, and a FIFO's waited for a writer long gone.
        self._transport_packet = transport_packet_size(path) \
            if self.container.format.name == "mpegts" and readable_again(path) else None
        # the container's tags, which the output keeps (read once), and a MOV's or MP4's timecode, which FFmpeg
        # puts on the video stream
        self.tags = {**self.container.metadata, **stream_timecode(self.container)}
        self.subtitle_path = path if self.container.streams.subtitles else None
        self.chapters = self.container.chapters()  # metadata, read once: a lecture's marks, a film's scenes
        self._start: float | None = None  # set_range: the part of the video to process, in its own seconds
        self._end: float | None = None
        self.audio_ends_with_pictures = False  # a part cut at its end: the sound ends where its pictures do
        self._read_until: float | None = None  # where the last picture read ends, in the video's own seconds
        self._frames_read = 0
        self._carried = 0.0  # seconds added to the pictures' own times after each join where time went back
        self._clip_read = 0  # of clips joined as they are, the one read (0: the first), by the joins passed
        # the clip of the first picture given: the sound and subtitles of those before it are not the part's
        self.first_clip = 0
        self.part_start = 0.0  # seconds after the first picture where the part taken (--start) begins
        self._head = [self._first]  # pictures decoded ahead (to check where a jump landed), given first
        self._sizes_told: set[tuple[int, int]] = set()  # picture sizes other than the first's, each said once
        # Interlaced pictures (1080i, DV, broadcast) are deinterlaced before anything else sees them; a stream that
        # turns interlaced later is said when it does.
        self.interlaced = bool(self._first.interlaced_frame)
        self.deinterlace = True  # keep_fields() turns it off
        shown = ([DEINTERLACED] if self.interlaced else []) + self.treatment.parts(stored)
        self.description = f"video {path.name} {self.width}x{self.height} @ {rate_text(self.fps)} fps" + \
            "".join(f", {part}" for part in shown)

    def _refuse_own_rate(self, own_rate: Fraction | None, rate: Fraction | None) -> None:
        """--input-rate for a video whose pictures have times of their own: refused, the file closed."""
        if carries_no_rate(self.container.format.name, own_rate):
            return
        self.container.close()
        own = f"has its own ({rate_text(float(rate))} fps)" if rate else "times its pictures itself"
        raise UserError(input_rate_refusal(input_named(str(self.path)), own))

    @property
    def part_end(self) -> float | None:
        """Where the part taken (--duration) ends, in the video's own seconds; None to its end."""
        return self._end

    def written_as(self, pix_fmt: str, transparent: bool = True, keeping: str | None = None) -> None:
        """The run line's words for what the video output loses, once its codec is known (`pix_fmt`, its pictures'):
        a ProRes input written as ProRes keeps its 4:2:2, only its bits beyond 8 are said; a transparent one's 4:4:4
        (ProRes 4444, with its alpha) where the output takes the alpha (`transparent`: not side by side). `keeping`:
        how to keep the colour lost, said beside it (an XAVC-I's 4:2:2 into .mov: --codec prores)."""
        if transparent and self.treatment.alpha_carried:
            pix_fmt = alpha_pix_fmt(pix_fmt)
        old, new = self.treatment.finer, finer_than_output(self.treatment.picture_format, pix_fmt)
        if new is not None and keeping and new.endswith(COLOUR_LOST):
            new += f" ({keeping})"
        if old is not None:  # said against 4:2:0, the coarsest output: nothing is lost that was not said
            self.description = self.description.replace(f", {old}", f", {new}" if new else "")
        self.treatment.finer = new

    def keep_fields(self) -> None:
        """`--deinterlace off`: interlaced pictures as decoded, both fields woven (a camcorder's 25p recorded in
        a 50i stream flags progressive pictures interlaced, and bwdif would soften their moving parts)."""
        self.deinterlace = False
        self.description = self.description.replace(f", {DEINTERLACED}", "")

    def set_range(self, start: float | Timecode | None, duration: float | Timecode | None) -> None:
        """Process only `duration` seconds from `start` seconds after the first picture (--start, --duration), each
        also an editor's timecode (_timecode_start, _timecode_length). The decoder jumps to the keyframe before the
        start and skips the pictures before it."""
        shown_start = str(start) if isinstance(start, Timecode) else None
        shown_duration = str(duration) if isinstance(duration, Timecode) else None
        if isinstance(start, Timecode):
            start = self._timecode_start(start)
        if isinstance(duration, Timecode):
            duration = self._timecode_length(duration)
        if duration is not None and duration <= 0:
            raise UserError(f"--duration {duration:g} takes nothing; give a length above 0 (seconds or MM:SS)")
        length = self._length
        start = start or 0.0
        if length is not None and start >= length and not self._length_guessed():
            raise UserError(f"--start {format_time(start)} is past the end of {self.path.name} "
                            f"({format_time(length)} long); give an earlier start")
        # past a guessed length, clips joined may go on (the pictures tell), and no time of a single clip is the
        # start to jump to: decoded from the beginning
        beyond = length is not None and start >= length
        if beyond:
            length = self.frame_count = self.progress_seconds = None
        if not start and duration is None:  # `--start 0`: the whole file, its frame count kept
            return
        origin = self._first.time or 0.0
        if start > 0:
            self.part_start = start
            self._start = origin + start
            if len(self._clips) > 1 and not beyond:
                self._seek_clip(start)
            elif self._joins_unknown and not beyond:
                self._rewind()  # a jump by time may land in any clip: decoded from the start, the joins carried
            elif not beyond and opens_again(self.path) and not self._raw:  # a pipe is read once: its pictures
                with stop_cuts(self.path):  # before the start skipped, as a raw stream's (timed as read: no jump);
                    self._seek(self._start)  # a served file's jump, its server stalled, cut short by a stop signal
        if duration is not None:
            self._end = origin + (self._on_frame_boundary(start, duration) if self.constant_rate else start + duration)
            self.audio_ends_with_pictures = True
        left = (length - start) if length is not None else None
        asked = self._end - origin - self._start_seconds(start) if self._end is not None else None
        span = min(asked, left) if asked is not None and left is not None else (asked or left)
        shortened = asked is not None and left is not None and asked > left + 0.5 / self.fps \
            and not self._length_guessed()
        if shortened:
            notify(f"{self.path.name}: --duration {shown_duration or format_time(duration or 0.0)} from "
                   f"{shown_start or format_time(start)} runs past its end: the part is {format_time(left)}")
            shown_duration = format_time(left)  # the run line gives the part's length, as the warning did
        if span is not None:
            self.frame_count = max(1, int(round(span * self.fps)))
            self.progress_seconds = span
        self.description += f", from {shown_start or format_time(start)}" + \
            (f" for {shown_duration or format_time(duration)}" if duration else "")

    def _timecode_rate(self, given: Timecode, flag: str) -> Fraction:
        """The rate `given` counts frames at, the input's; refused where it has none, or `given` is no timecode at
        it (a frame number past the rate's, a label drop-frame skips)."""
        if not self.rate:
            raise UserError(timecode_refusal(flag, given, self.path.name))
        try:
            timecode_frames(given, self.rate)
        except ValueError as exc:
            raise UserError(f"{flag} {given}: {exc}") from None
        return Fraction(self.rate)

    def _timecode_start(self, given: Timecode) -> float:
        """--start as an editor's timecode: seconds after the first picture, counted in frames from the input's own
        first timecode (its first picture's, often 01:00:00:00), or from 00:00:00:00 where it has none (said); one
        outside the clip's timecodes is refused naming them."""
        rate = self._timecode_rate(given, "--start")
        own = next((value.strip() for key, value in self.tags.items() if key.lower() == "timecode" and value), None)
        first = parse_timecode(own, TIMECODE) if own else None
        try:
            first_frames = timecode_frames(first, rate) if first is not None else 0
        except ValueError:
            first, first_frames = None, 0  # one the rate cannot count: the writer leaves it out too, said there
        if first is None:
            notify(f"{self.path.name} has no timecode{f' at its rate ({own!r})' if own else ''}: --start {given} "
                   f"is counted from 00:00:00:00 at {rate_text(float(rate))} fps")
        elif given.drop != first.drop:  # an NLE reads a timecode typed either way in the clip's own mode
            given = self._in_clip_mode(given, first.drop)
        offset = timecode_frames(given, rate) - first_frames
        pictures = self._pictures_known()
        if pictures is not None:
            offset %= _timecode_day(rate, given.drop)  # a clip across midnight: its timecodes begin again at 00
        if offset < 0 or pictures is not None and offset >= pictures:
            origin = str(first) if first is not None else ("00:00:00;00" if given.drop else "00:00:00:00")
            span = f"{origin} to {shifted_timecode(origin, pictures - 1, rate)}" if pictures else f"from {origin}"
            raise UserError(f"--start {given} is outside {self.path.name}, whose timecodes run {span}; "
                            f"give one within them")
        return float(offset / rate)

    def _in_clip_mode(self, given: Timecode, drop: bool) -> Timecode:
        """`given`'s labels in the clip's own timecode mode, drop-frame or not (01:00:01:00 typed for a drop-frame
        clip is its 01:00:01;00, which an NLE shows for it), said in a line: counted the other way it was refused as
        outside the clip, or landed frames away."""
        text = re.sub(r"[:;](\d{1,3})$", lambda found: (";" if drop else ":") + found.group(1), given.text.strip())
        notify(f"--start {given}: {self.path.name}'s timecode is {'drop-frame' if drop else 'non-drop-frame'}: "
               f"read as {text}")
        return given._replace(drop=drop, text=text)

    def _timecode_length(self, given: Timecode) -> float:
        """--duration as an editor's timecode: that many frames at the input's rate, in seconds."""
        return float(timecode_frames(given, self._timecode_rate(given, "--duration")) / Fraction(self.rate))

    def _pictures_known(self) -> int | None:
        """How many pictures the input holds, where its length is known (not a guess, nor a pipe's)."""
        if self._length is None or self._length_guessed():
            return None
        return max(1, round(self._length * self.fps))

    def _on_frame_boundary(self, start: float, duration: float) -> float:
        """Where a part of a constant-rate video ends, in seconds after its first picture: on the frame boundary
        nearest the end asked, as frames() rounds --start to the picture nearest it (a picture is in the part where
        more than half of it comes before the end), so that `--start 0 --duration 10` and `--start 10` meet
        without a gap or a picture twice; at least one picture after the first. Its last picture keeps its whole
        duration: a 23.976 fps part that ended inside one was written with a shorter last picture, a variable
        rate (36000/1499 on average), and the subtitles are cut there, where the pictures and the sound end."""
        end = max(self._nearest_boundary(start + duration), self._nearest_boundary(start) + 1)
        return float(end / self.rate)

    def _nearest_boundary(self, seconds: float) -> int:
        """The number of the frame boundary nearest `seconds` after the first picture (a constant rate), a tie
        taken earlier, as frames() rounds --start, and as the writer counts the part's first picture for its
        timecode (part_first_picture: one rule for both)."""
        return part_first_picture(seconds, self.rate)

    def _start_seconds(self, start: float) -> float:
        """Where the part's first picture starts, in seconds after the video's first: on a frame boundary where the
        rate is constant, else `start` as asked."""
        return float(self._nearest_boundary(start) / self.rate) if self.constant_rate else start

    def _length_guessed(self) -> bool:
        """Whether the length is FFmpeg's guess from the first and last pictures' times, which clips joined as they
        are (`cat a.ts b.ts`: their times start again at each join) make short: an MPEG transport or program stream
        of no frame count."""
        return not self._announced_frames and self.container.format.name in JOINABLE_FORMATS

    def _joined_clips(self) -> list[Clip]:
        """The clips of an MPEG transport or program stream, found at open so that its length and a start are the
        video's where clips were joined as they are (`cat a.ts b.ts`), one where none was; [] for another format, a
        pipe (read once) or a file the finder cannot read (damaged: the pictures' times going back still tell each
        join as it comes)."""
        import av

        if not self._length_guessed() or not readable_again(self.path):
            return []
        finder = None
        try:
            finder = ClipFinder(self.path, self.stream.index, self.fps)
            clips = finder.clips(self._first.time or 0.0)
            self._joins_unknown = clips is None
            return clips or []
        except (av.error.FFmpegError, OSError):
            return []
        finally:
            if finder is not None:
                finder.close()

    def _seek_clip(self, start: float) -> None:
        """Decode from the keyframe before `start` (seconds of video) in the joined clip that holds it, found by its
        bytes: a jump by time landed in any clip holding that time, often a later one. The clips before it carry
        the pictures' times on; where the jump fails, the file is decoded from its beginning."""
        import av

        index, done = 0, 0.0
        while index < len(self._clips) - 1 and done + self._clips[index].length <= start:
            done, index = done + self._clips[index].length, index + 1
        clip, half = self._clips[index], self._half_frame(None)
        stop = self._clips[index + 1].pos if index + 1 < len(self._clips) else self.path.stat().st_size
        target = clip.first + start - done
        landed, finder = None, None
        try:
            finder = ClipFinder(self.path, self.stream.index, self.fps)
            self.container.seek(finder.keyframe_before(clip, stop, target + half), unsupported_byte_offset=True)
            self._decoded = self._decode()
            landed = next(self._decoded, None)
        except (av.error.FFmpegError, OSError):
            pass
        finally:
            if finder is not None:
                finder.close()
        if landed is None or landed.time is None or not clip.first - half <= landed.time <= target + half:
            self._rewind()
            return
        self._head = [landed]
        self._carried, self._clip_read = (self._first.time or 0.0) + done - clip.first, index

    def _seek(self, target: float) -> None:
        """Decode from a keyframe at or before `target` (the video's own seconds). MPEG-TS has no index and its
        demuxer may land on the keyframe after the time asked for (--start 0.7 gave the pictures from 1.07 s
        on): the jump is made earlier and earlier until its first picture is not late, and where that would
        reach the first picture the file is decoded from its beginning."""
        import av

        origin, back = self._first.time or 0.0, 0.0
        while target - back > origin:
            try:
                self.container.seek(int((target - back) / float(self.stream.time_base)), stream=self.stream,
                                    backward=True)
            except av.error.FFmpegError:
                break  # a file that cannot seek is decoded from its beginning, the pictures before the start skipped
            self._decoded = self._decode()
            try:
                landed = next(self._decoded, None)  # None: past the last keyframe
            except av.error.FFmpegError:
                landed = None  # damaged there: further back
            if landed is not None and (landed.time is None or
                                       landed.time <= target + self._half_frame(_own_duration(landed))):
                self._head = [landed]
                return
            back = max(SEEK_BACK_S, 2 * back)
        self._rewind()

    def _rewind(self) -> None:
        """Decode from the first picture again, the file opened anew: a jump to its start may land late too."""
        import av

        self.container.close()
        try:
            self.container = open_input(self.path, container_options=self._open_options)
        except av.error.FFmpegError as exc:
            raise UserError(f"cannot read video {self.path} again to start at --start: {exc.strerror or exc}; "
                            f"check the file is still there and readable") from None
        self.stream = _video_stream(self.container, self.path)
        self.stream.thread_type = "AUTO"
        show_corrupt(self.stream.codec_context)
        self._decoded = self._decode()
        self._head = []

    def _decode(self) -> Iterator[Any]:
        """The stream's pictures, decoded as FFmpeg's players do: a packet the decoder refuses (a damaged spot)
        is skipped, said once, and decoding goes on at the next picture it can make (one refused packet ended
        the run). Where the file cannot be read any further, the decoder gives what it holds and the pictures
        end there: a file cut short gets the warning after the run."""
        import av

        errors = 0
        self._redecoder = Redecoder(self.stream, self.path if readable_again(self.path) else None)
        self._whole_seen = False  # each demuxing (a jump starts anew)
        self._unshown, keyed, lost = 0, False, 0
        self._raw_pictures = 0  # decoded from the start again (a raw stream is never sought)
        while errors < READ_RETRIES:
            try:
                for packet in demuxed(self.container.demux(self.stream)):
                    errors = 0
                    if packet.is_keyframe and not keyed:
                        keyed = True
                        self._tell_lost_start(lost)
                    # counted in the frame count, never a picture, no sign of truncation (the warning said so): an
                    # MP4 cut without re-encoding (ffmpeg -ss -c copy) keeps the GOP before its cut, hidden by its
                    # edit list; one cut mid-GOP starts with pictures made from ones before its start (lost)
                    hidden = packet.size > 0 and (packet.is_discard or not keyed)
                    self._unshown += hidden
                    lost += hidden and not packet.is_discard
                    yield from self._decode_packet(packet)
                return  # the demuxer's last (empty) packet flushed the decoder
            except av.error.FFmpegError as exc:  # the demuxer's: read on from where it stopped
                if self._interrupted.is_set():  # a stop cut the read short: no damage, nothing more to give
                    return
                self._end_if_unsent(exc)
                errors += 1
                self._damaged(exc, None)
        yield from self._decode_packet(None)  # what the decoder still holds

    def _end_if_unsent(self, exc: Exception) -> None:
        """A served file's server that stopped sending (a stall, a connection not taken up again) ends the file in
        one line, the frames before kept: no damage, which read again would wait as long again."""
        stopped_sending = getattr(self.path, "stopped_sending", None)
        line = stopped_sending(exc, getattr(self, "_frames_read", 0)) if stopped_sending is not None else None
        if line is not None:
            raise UserError(line)

    def _tell_lost_start(self, lost: int) -> None:
        """Says, once, the pictures before the file's first keyframe (`lost` packets), which cannot be decoded: a
        recording cut mid-GOP; a camera's long GOP lost seconds without a word. Not those an MP4's edit list hides
        (ffmpeg -ss -c copy: no player shows them), nor an MPEG transport or program stream's: a broadcast recording
        always starts so, its players show nothing before the keyframe either."""
        if self._start_told:
            return
        self._start_told = True
        if not lost or self.container.format.name in JOINABLE_FORMATS:
            return
        told = notify if self._untold is None else self._untold.append
        told(f"{self.path.name} starts part-way through a group of pictures (cut before a keyframe): its first "
             f"{lost} picture{'s' if lost != 1 else ''} ({format_time(lost / self.fps)}) cannot be decoded and are "
             f"left out")

    def _decode_packet(self, packet: Any) -> list[Any]:
        """The pictures one packet completes (None: flush the decoder); none from a packet the decoder refuses."""
        import av

        try:
            pictures = self._redecoder.decode(packet)
        except av.error.FFmpegError as exc:
            self._damaged(exc, packet)
            pictures = self._redecoder.after_damage(packet)
        if self._shows_corrupt:
            pictures = self._without_lost_references(pictures)
        for picture in pictures:
            if picture.colorspace not in CONVERTED_MATRICES:
                self._untagged(picture)
        if pictures and (not self._shows_corrupt or any(picture.key_frame for picture in pictures)):
            # a damaged spot ends with the next picture; where corrupt ones are shown, at the next keyframe (up to
            # which they come smeared, a clean one between them)
            self._in_damage = False
        if pictures and self.container.format.name == "avi":
            self._in_display_time(pictures)
        if pictures and self._raw:
            self._timed_at_rate(pictures)
        return pictures

    def _timed_at_rate(self, pictures: list[Any]) -> None:
        """A raw stream's pictures (FFmpeg's raw demuxers give them no times), timed a frame period apart from 0 at
        the stream's rate, in the order the decoder shows them: --start and --duration had nothing to find (the part
        was ignored, every picture written)."""
        rate, time_base = Fraction(self.rate or self.fps), self.stream.time_base
        for picture in pictures:
            if picture.pts is None and time_base:
                picture.pts = round(Fraction(self._raw_pictures) / rate / time_base)
                picture.time_base = time_base
            self._raw_pictures += 1

    def _without_lost_references(self, pictures: list[Any]) -> list[Any]:
        """The pictures less those predicted from a lost reference (mid-grey): a corrupt one is a damaged spot,
        said (the decoder refused no packet), the smeared ones kept as FFmpeg's players show them. Before the first
        whole picture (a recording cut mid-GOP starts so) none is kept, nor said, as FFmpeg's decoder gives none."""
        kept = []
        for picture in pictures:
            if not picture.is_corrupt:
                self._whole_seen = True
            elif not self._whole_seen:
                continue
            else:
                self._damaged(ValueError("pictures predicted from a damaged one"), picture)
                if from_lost_reference(picture):
                    continue
            kept.append(picture)
        return kept

    def _in_display_time(self, pictures: list[Any]) -> None:
        """AVI stores no presentation times: FFmpeg guesses them from the decode order, which B-frames (H.264 in
        AVI) leave out of order (0.033, 0.1, 0.133, 0.067 s...), and the output took each step back for clips
        joined (a 1 s clip came out 2.18 s long). The decode time of the packet that completed each picture comes in
        order: that, less the decoder's delay (the first picture's), is its time; the pictures the decoder gives at
        the end (no packet) follow a frame apart."""
        for picture in pictures:
            if picture.dts is not None and picture.pts is not None and self._dts_delay is None:
                self._dts_delay = picture.dts - picture.pts
            if picture.dts is not None and self._dts_delay is not None:
                picture.pts = picture.dts - self._dts_delay
            elif self._last_pts is not None:
                step = picture.duration or max(1, round(1 / (self.fps * self.stream.time_base)))
                picture.pts = self._last_pts + step
            self._last_pts = picture.pts

    def _damaged(self, exc: Exception, packet: Any) -> None:
        """Says a damaged spot once, at its first refused packet (the decoder's threads may report it a few
        pictures late), and at most DAMAGE_TOLD spots."""
        if self._in_damage:
            return
        self._in_damage = True
        self._damaged_spots += 1
        if self._damaged_spots > DAMAGE_TOLD:
            return
        where = ""
        if packet is not None and packet.pts is not None and packet.time_base:
            start = self.stream.start_time or 0
            where = f" near {format_time(max(0.0, float((packet.pts - start) * packet.time_base)))}"
        more = "; further damage is skipped without a word" if self._damaged_spots == DAMAGE_TOLD else ""
        told = notify if self._untold is None else self._untold.append
        told(f"{self.path.name} is damaged{where} ({getattr(exc, 'strerror', None) or exc}): the pictures there "
               f"are skipped and the rest processed{more}")

    def interrupt(self) -> None:
        """A stop (q, Ctrl-C, SIGTERM): no more pictures; a served file's read in progress, which waits for its
        server up to its time-out, ends at once (ServedFile.cut). A local file's read ends by itself."""
        self._interrupted.set()
        cut = getattr(self.path, "cut", None)
        with self._reader_lock:
            if cut is not None and self._reader is not None:
                cut(self._reader)

    def frames(self) -> Iterator[Frame]:
        reader = threading.get_ident()
        with self._reader_lock:  # from here a stop cuts this thread's read of a served file short (interrupt)
            self._reader = reader
        try:
            if not self._interrupted.is_set():
                yield from self._frames()
        finally:
            with self._reader_lock:
                self._reader = None
                uncut = getattr(self.path, "uncut", None)
                if uncut is not None:
                    uncut(reader)

    def _frames(self) -> Iterator[Frame]:
        import av

        index = 0
        half_frame = 0.5 / self.fps
        previous: float | None = None
        deinterlacer = Deinterlacer(self.stream.time_base)
        pictures = self._in_line(itertools.chain(self._head, self._decoded))
        # the last picture before --start, and where it ends; on the video's clock, as --start and --duration are
        shown: tuple[Any, float] | None = None
        try:
            for decoded in deinterlacer.frames(pictures) if self.deinterlace else pictures:
                if not self.interlaced and deinterlacer.first_interlaced is not None:
                    self.interlaced = True
                    notify(f"{self.path.name} turns interlaced at picture {index + 1}: its interlaced pictures are "
                           f"{DEINTERLACED}")
                seconds, own, video = decoded.time, None, None
                if seconds is not None and seconds == previous:  # a packet stored twice: a picture shown twice at once
                    self._damaged(ValueError("a picture repeated at the same time"), decoded)
                    continue
                if seconds is not None and previous is not None and seconds < previous:
                    # time went back: clips joined as they are (`cat a.ts b.ts`); video time goes on from here
                    self._carried += self._read_until - seconds
                    self._clip_read += 1
                if seconds is not None:  # a picture lasts its own duration (a GIF's may be long), else as the last
                    step = seconds - previous if previous is not None and seconds > previous else 1 / self.fps
                    own = _own_duration(decoded)
                    self._read_until, previous = seconds + (float(own) if own else step), seconds
                    half_frame = self._half_frame(own, step)
                    # --start and --duration are on the video's clock: a later clip's own times start again
                    video = seconds + self._carried
                if video is not None and self._start is not None and video < self._start - half_frame:
                    # still on screen at the start, unless one comes by then
                    shown = (decoded, self._read_until + self._carried)
                    continue
                if shown is not None and video is not None and video > self._start + half_frame and not index:
                    # --start inside a still stretch (a screen recording's pause): the part starts with the picture
                    # shown then, held up to this one; it started with this one, the stretch and its sound lost
                    yield self._frame(shown[0], index, self._start - self._carried, video - self._start)
                    index = self._frames_read = index + 1
                shown = None
                # the first picture of a part always counts: --duration shorter than a frame gives one
                if video is not None and self._end is not None and video >= self._end - half_frame and index:
                    break
                frame = self._converted(decoded, index, own)
                if frame is None:
                    continue
                yield frame
                index = self._frames_read = index + 1
            if shown is not None and shown[1] > self._start:  # --start within the last picture's time
                yield self._frame(shown[0], index, self._start - self._carried, shown[1] - self._start)
                index = self._frames_read = index + 1
        except av.error.FFmpegError as exc:
            raise UserError(f"{self.path} is corrupt or truncated after frame {index} ({exc.strerror or exc}); "
                            f"the frames before it were processed") from None
        if index == 0 and self._start is not None and not self._interrupted.is_set():
            origin = self._first.time or 0.0
            end = f" (its pictures end at {format_time(self._read_until + self._carried - origin)})" \
                if self._read_until is not None else ""
            raise UserError(f"{self.path.name} has no picture from --start {format_time(self._start - origin)} on"
                            f"{end}; give an earlier start")

    def _in_line(self, pictures: Iterator[Any]) -> Iterator[Any]:
        """The pictures, one or a few whose times are damaged (out of line, the next back in line) put back in line
        (marked_out_of_line): read as a join of clips, such a time set every later picture an hour (a second) later."""
        last, held = None, []
        for picture, damaged in marked_out_of_line(pictures, lambda picture: picture.time, 1 / self.fps):
            if damaged:
                held.append(picture)
                continue
            if held:
                yield from self._put_in_line(held, last, picture)
                held = []
            last = picture if picture.time is not None else last
            yield picture

    def _put_in_line(self, held: list[Any], last: Any, after: Any) -> list[Any]:
        """Pictures whose times are damaged, between `last` and `after` in line: spread over the time between them
        where it holds them (a frame or more each), else skipped; said once."""
        gap, count = after.pts - last.pts, len(held)
        fits = gap * after.time_base >= (count + 0.5) / self.fps  # each a frame or more
        off = abs(held[0].time - last.time)
        if not self._line_told:
            self._line_told = True
            start = self.stream.start_time * self.stream.time_base if self.stream.start_time else 0
            notify(f"{self.path.name} is damaged near {format_time(max(0.0, float(last.time - start)))}: "
                   f"{_held_pictures(held, off)}, {'put back in line' if fits else 'skipped'} (not a join of clips); "
                   f"further ones without a word")
        if not fits:
            return []
        for number, picture in enumerate(held, 1):
            picture.pts = last.pts + gap * number // (count + 1)
        return held

    def _untagged(self, picture: Any) -> None:
        """A picture tagged with a colour matrix swscale refuses, converted as untagged (BT.709 from HD sizes): a
        damaged tag (39) silently, a real one it does not take (YCgCo, ICtCp) said once, where every picture of the
        file was skipped."""
        matrix = int(picture.colorspace)
        if 0 <= matrix < MATRICES and not self._matrix_told:
            self._matrix_told = True
            notify(f"{self.path.name}: its colour matrix ({MATRIX_NAMES.get(matrix, matrix)}) is one FFmpeg's "
                   f"converter does not take: read as untagged video (BT.709 from HD sizes, BT.601 below), its colours "
                   f"may be off")
        picture.colorspace = UNSPECIFIED_MATRIX

    def _converted(self, decoded: Any, index: int, own: Any) -> Frame | None:
        """The frame of a decoded picture, None where it cannot be converted (swscale refuses a damaged picture's
        format or tags): a damaged spot, skipped and said, where it ended the run."""
        import av

        try:
            return self._frame(decoded, index, decoded.time, own)
        except av.error.FFmpegError as exc:
            self._damaged(exc, decoded)
            return None

    def _half_frame(self, own: Any, since_last: float | None = None) -> float:
        """How near a picture's time counts as a time asked for (a rounding): half the time between pictures, by
        the nominal rate, or less where they come closer (its own duration `own`, the time since the last): a 10
        fps recording with a 4 s pause averages 3.6 fps, and --start 0.5 began with the picture at 0.4."""
        return 0.5 * min([1 / self.fps, *(float(step) for step in (own, since_last) if step)])

    def _frame(self, decoded: Any, index: int, seconds: float | None, own: Any) -> Frame:
        """The frame of a decoded picture presented at `seconds`, held `own` seconds (None: until the next)."""
        image, alpha = self.treatment.image_and_alpha(decoded)
        if image.shape[:2] != (self.height, self.width):
            image = self._fit(image, index)
        if not index:
            self.first_clip = self._clip_read
        if own and self._end is not None and seconds is not None:
            own = self._held_to_end(float(own), self._end - seconds - self._carried)
        # the writer holds each picture as long (a GIF's long last picture)
        extra = {"duration_seconds": float(own)} if own else {}
        if seconds is not None:  # where the sink's thread reads the progress (seconds_done) from
            extra[VIDEO_TIME] = seconds + self._carried
        if alpha is not None:  # the video sink keeps it where its codec holds alpha, else lays the render on white
            extra["alpha"] = alpha if alpha.shape == image.shape[:2] else cv2.resize(
                alpha, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return Frame(index=index, capture_ns=now_ns(), image=image, pts_seconds=seconds, extra=extra)

    def _held_to_end(self, own: float, left: float) -> float:
        """How long a picture `left` seconds before the part's end (--duration) is held: a part of a variable rate
        ends at its end, however long its last picture (a GIF's 2 s one). A constant rate's ends on a frame boundary
        (set_range), where its last picture ends: held whole, not a tick shorter for a time rounded to milliseconds
        (MKV); cut only where it is far longer (a pause that the rates did not tell)."""
        if self.constant_rate and own - left <= 0.5 / self.fps:
            return own
        return min(own, max(left, 0.0))

    def seconds_done(self, frame: Frame) -> float:
        """Where `frame` ends, in seconds of video from the start of the part processed (read by the sink's thread
        while the capture thread reads on, so from the frame itself). It never goes back, where joined clips'
        times do, and may pass progress_seconds, an estimate (joined clips' is FFmpeg's guess): the bar then says so."""
        if frame.pts_seconds is None:
            return super().seconds_done(frame)
        start = self._start if self._start is not None else (self._first.time or 0.0)
        held = frame.extra.get("duration_seconds") or 1 / self.fps
        return max(frame.extra.get(VIDEO_TIME, frame.pts_seconds) + held - start, 0.0)

    def _fit(self, image: Any, index: int) -> Any:
        """A picture of another size than the first (clips of different sizes joined, `cat a.ts b.ts`) scaled to
        the first's, which every stage and the output work at; each new size is said once."""
        return scale_telling_once(image, self.width, self.height, self._sizes_told, lambda width, height: (
            f"{self.path.name} changes its picture size from {self.width}x{self.height} to {width}x{height} at "
            f"picture {index + 1} (clips of different sizes joined); those pictures are scaled to "
            f"{self.width}x{self.height}"))

    def truncation_warning(self) -> str | None:
        """By the frame count where the file gives one (MP4, AVI), else by time: a count estimated from the
        average rate is wrong for a variable frame rate (Matroska and WebM give no count)."""
        count, length = self._announced_frames - self._unshown, self._length
        if count > 0 and self._start is None and self._end is None and self._frames_read < SHORT_INPUT * count:
            return (f"the input announced {count} frames but only {self._frames_read} could be decoded; it may be "
                    f"truncated")
        cut = transport_stream_cut(self.path, self._transport_packet)
        if cut is not None:
            return cut
        if length is None or self._read_until is None:
            return None
        origin = self._length_origin()
        start = self._start if self._start is not None else origin
        end = origin + length if self._end is None else min(self._end, origin + length)
        announced, read = end - start, self._read_until + self._carried - start  # joined clips: all their time
        if read >= SHORT_INPUT * announced:
            return None
        return (f"the input announced {format_time(announced)} of video but its pictures end after "
                f"{format_time(max(read, 0.0))}; it may be truncated")

    def _length_origin(self) -> float:
        """Where the length announced starts: the stream's start, which a recording cut mid-GOP has before its first
        picture that decodes (its length ran from there: it read as cut short at its end), unless clips joined were
        measured from the first picture."""
        first, stream = self._first.time or 0.0, self.stream
        if self._clips or stream.start_time is None or not stream.time_base:
            return first
        return min(first, float(stream.start_time * stream.time_base))

    def _video_seconds(self) -> float | None:
        """The video stream's length: its own duration, else where it ends (Matroska's DURATION tag, else
        the container's end, which may be the audio's) less where it starts."""
        stream = self.stream
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
        tag = stream.metadata.get("DURATION", "")
        try:
            hours, minutes, secs = tag.split(":")
            tagged = int(hours) * 3600 + int(minutes) * 60 + float(secs) - start
            if math.isfinite(tagged) and tagged > 0:  # FFmpeg 8's Matroska muxer may write "00:00:        -nan"
                return tagged
        except ValueError:
            pass
        if self.container.duration:
            return _container_end(self.container, self.path) - start
        return None

    def close(self) -> None:
        self.container.close()
        # the decoding generator's frame holds this source (a cycle): left suspended, it kept the source, its
        # decoder and the decoder's threads (3 a file) alive till a full gc, one set for each input of a batch
        with contextlib.suppress(ValueError):  # ValueError: closed from another thread while it decodes
            self._decoded.close()


def _container_end(container: Any, path: Path) -> float:
    """Where the container's streams end, in seconds: its start plus its length, but an FLV's duration in its
    onMetaData is already where they end, on the file's clock from 0: a 60 fps FLV of 3 pictures, starting at 33 ms
    (x264's B-frame delay), announced 0.1 s for its 0.05 and was called truncated. (One with none, written to a pipe,
    is given its last tag's time by FFmpeg, which the start puts near its last picture's.)"""
    start, duration = (container.start_time or 0) / 1_000_000, container.duration / 1_000_000
    tagged = flv_tagged_duration(path) if container.format.name == "flv" else None
    return tagged if tagged is not None and tagged > start else start + duration


def _packets_announced(stream: Any, format_name: str) -> int:
    """The video packets the container announces: its frame count, or, in an MP4 or MOV whose edit list trims the
    end (a trim without re-encoding, as QuickTime makes it), the packets its index keeps: FFmpeg leaves out the
    samples past the edit (its count still holds them: a whole file was called truncated)."""
    count = stream.frames
    if count and "mov" in format_name.split(","):
        kept = len(stream.index_entries)
        if kept:
            count = min(count, kept)
    return count


def _hidden_in_index(stream: Any, announced: int) -> int:
    """Of the packets in the stream's index (one an announced frame: an MP4's, an AVI's), those that never make a
    picture, as _decode counts them: before the first keyframe (cut mid-GOP), and after it those flagged discard (an
    edit list hides them: the GOP before a cut made without re-encoding, a trimmed end). With B-frames some of the
    cut's hidden pictures are stored after its first shown one: the whole index is counted (84 of 86 was the end)."""
    entries = stream.index_entries
    if len(entries) != announced:  # no index of every packet (Matroska's: keyframes only)
        return 0
    first = next((index for index, entry in enumerate(entries) if entry.is_keyframe), len(entries))
    return first + sum(1 for entry in itertools.islice(entries, first, None) if entry.is_discard)


def _held_pictures(held: list[Any], off: float) -> str:
    """The damage line's words for the pictures held out of line: those timed `off` seconds out of it, and apart
    those without a time that waited with them (TimeLine), which no time put out of line."""
    timed = sum(picture.time is not None for picture in held)
    untimed = len(held) - timed
    them = "them" if timed > 1 else "it"
    words = f"{timed} picture{'s' if timed > 1 else ''} timed {round(off, 1):g} s out of line with those around {them}"
    return words + (f", and {untimed} without a time held with {them}" if untimed else "")


def _not_the_tick(rate: Fraction | None, stream: Any) -> Fraction | None:
    """`rate`, unless it is only the stream's clock tick: FFmpeg's raw DV demuxer (a camcorder's .dv, as dvgrab
    captures it) counts every DV rate in 1/60000 s and announces that tick as the average rate (60000 fps, and
    a progress bar of 14400 frames for 6); the rate its pictures come at is then the guessed one (25, 29.97)."""
    guessed = stream.guessed_rate
    if rate and stream.time_base and rate == 1 / stream.time_base and guessed and guessed < rate:
        return guessed
    return rate


def _not_the_fields(rate: Fraction | None, stream: Any) -> Fraction | None:
    """`rate`, unless FFmpeg averaged none (a clip of one or two pictures: an MPEG-TS of H.264 or MPEG-2) and guessed
    the rate its clock ticks at, twice a picture's (50 for 25 fps: "@ 50 fps", a progress bar of 3 for 2); the
    codec's own rate is the pictures'."""
    own = stream.codec_context.framerate
    if stream.average_rate is None and rate and own and rate == 2 * own:
        return own
    return rate


# FFmpeg's demuxers of raw elementary video streams (a Raspberry Pi's .h264, a drone's or a DVR's .hevc): they time
# the pictures at their `framerate` option (25), whatever the stream says
RAW_VIDEO_FORMATS = frozenset({"h264", "hevc", "vvc", "evc", "mpegvideo", "m4v", "cavsvideo", "avs2", "avs3", "vc1",
                               "dirac", "dnxhd", "h261", "h263", "mjpeg", "mjpeg_2000", "obu", "av1"})
RAW_RATE_MAX = 240  # a raw stream's own rate above this is rather its clock's tick (90 kHz timing, no frame rate)


def _raw_own_rate(stream: Any) -> Fraction | None:
    """The frame rate a raw elementary stream gives itself (an H.264 or HEVC SPS's timing, an MPEG-2 sequence
    header's), as the decoder reads it; None where it gives none (raspivid's)."""
    own = stream.codec_context.framerate
    return own if own and own <= RAW_RATE_MAX else None


def _raw_rate_unknown(path: Path, container: Any, stream: Any, fps: float) -> str:
    """The line said for a raw stream with no frame rate, with how to give it one."""
    kind = container.format.long_name or container.format.name
    return (f"{path.name} is {'an' if kind[:1] in 'AEIOU' else 'a'} {kind} stream with no frame rate: read "
            f"at {rate_text(fps)} fps, FFmpeg's default; if it was recorded at another rate (a Raspberry Pi's is "
            f"usually 30), give it that rate (depthcam run's --input-rate 30), or make a video of it at that rate: "
            f"{_in_a_container(path, stream, '30')}")


def _in_a_container(path: Path, stream: Any, rate: str) -> str:
    """The command that puts a raw stream in an MP4 at `rate` fps. A copy loses the order of pictures stored out of
    it (B-frames, which a Pi's encoder does not make): those are re-encoded instead."""
    how = "-c copy" if not stream.codec_context.has_b_frames else "-crf 16"
    name = Path(path.name)  # a file served over HTTP is named by its address's last part (ServedFile)
    return f"ffmpeg -framerate {rate} -i {command_word(name.name)} {how} {command_word(name.with_suffix('.mp4').name)}"


PICTURE_RATE_MAX = 60  # FFmpeg's guessed rate above this is rather the tick its times are counted in (100, 1000)


def _not_the_pauses(rate: Fraction | None, stream: Any) -> Fraction | None:
    """`rate`, unless it is under a third of the rate the stream's pictures come at (FFmpeg's guess, from their
    spacing, where it is a camera's or a screen's rate): an average that counts a variable rate's pauses (a screen
    recording at 10 fps that stood still for 30 s averaged 0.2 fps, and an AVI made of it kept 2 of its 6
    pictures). A third: a phone's low-light 15 fps in a 30 fps stream, or interlaced 25 fps beside its 50 fields,
    stay at their average."""
    guessed = stream.guessed_rate
    if rate and guessed and rate < guessed / 3 and guessed <= PICTURE_RATE_MAX:
        return guessed
    return rate


def scale_telling_once(image: Any, width: int, height: int, told: set[tuple[int, int]],
                       line: Callable[[int, int], str]) -> Any:
    """`image` scaled to width x height (scale_to), a picture of a size not in `told` said first with
    `line(its width, its height)`: a source whose pictures change size says so once per size."""
    size = (image.shape[1], image.shape[0])
    if size not in told:
        told.add(size)
        notify(line(*size))
    return scale_to(image, width, height)


def scale_to(image: Any, width: int, height: int) -> Any:
    """A picture brought to the size every stage and output work at: area averaging where it shrinks (no
    aliasing), linear where it grows."""
    shrink = image.shape[1] > width or image.shape[0] > height
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _undecodable(path: Path, container_format: str) -> str:
    """Why a file gives no picture at all. An MP4 or MOV through a pipe (`cat clip.mp4 | depthcam run /dev/stdin`)
    is readable only where its index comes first: the demuxer cannot seek back to the index at its end."""
    try:
        piped = not path.is_file()
    except OSError:
        piped = False
    if piped and "mp4" in container_format.split(","):
        return (f"{path} gave no picture through the pipe: an MP4 or MOV whose index comes at its end cannot be "
                f"read so (a pipe cannot go back for it); give the file itself, or pipe one made with "
                f"-movflags +faststart (or MPEG-TS, MKV)")
    return f"{path} holds no decodable video frame (truncated or corrupt file)"


# Codecs of single pictures: a track of one such picture beside the sound is an album cover that FFmpeg's Matroska
# muxer, which has no flag for cover art, stored as a video track (`ffmpeg -i song.mp3 -c copy song.mkv`).
STILL_CODECS = frozenset({"mjpeg", "png", "bmp", "tiff", "webp"})


def _moving_streams(container: Any) -> list[Any]:
    """The video streams that are not cover art: not an attached picture (an MP3's or M4A's cover, a Matroska
    attachment), nor, where other video is there, a track in a codec of still pictures (a cover so stored)."""
    from av.stream import Disposition

    # None: a codec FFmpeg lacks; set aside: an HLS master playlist's variants but the one read (ServedFile)
    known = [s for s in read_streams(container.streams.video) if s.codec_context is not None]
    moving = [s for s in known if not s.disposition & Disposition.attached_pic]
    return [s for s in moving if s.codec_context.name not in STILL_CODECS] or moving


def _one_picture(path: Path, stream: Any) -> bool:
    """Whether the stream holds a single picture (read in a second opening of the file, so that the source's own
    starts at its beginning; a pipe, which gives its bytes once, is not read again)."""
    import av

    if not readable_again(path):
        return False
    pictures = 0
    try:
        with av.open(str(path), metadata_errors="replace") as again:
            for packet in again.demux(again.streams[stream.index]):
                pictures += bool(packet.size)
                if pictures > 1:
                    return False
    except av.error.FFmpegError:
        return False
    return pictures == 1


def chosen_video_stream(container: Any) -> Any | None:
    """The video stream a player shows: the default one (else the first) of those that are not cover art (an album
    cover decodes as a single picture, which was taken for a video); None where there is none."""
    from av.stream import Disposition

    moving = _moving_streams(container)
    return ([s for s in moving if s.disposition & Disposition.default] or moving)[0] if moving else None


def _video_stream(container: Any, path: Path) -> Any:
    """The stream to process (chosen_video_stream), unless it is a lone track of one still picture beside the
    sound: a cover."""
    chosen = chosen_video_stream(container)
    cover = chosen is not None and chosen.codec_context.name in STILL_CODECS and bool(container.streams.audio) \
        and _one_picture(path, chosen)
    if chosen is not None and not cover:
        return chosen
    refusal = _no_video(container, path)
    container.close()
    raise UserError(refusal)


def _no_video(container: Any, path: Path) -> str:
    """Why `container` gives no video stream to process: only cover art, a video stream in a codec FFmpeg does not
    know (an AVI whose header is damaged), an MP4 or MOV whose index lists no readable video track, or none."""
    video = container.streams.video
    if any(stream.codec_context is None for stream in video):
        return (f"{path}: its video stream's codec is unknown to FFmpeg (a damaged header?); copy the file again "
                f"if it was copied, or give the video in a codec FFmpeg reads")
    if video:
        return (f"{path} has no video, only cover art beside its sound; give a video file "
                f"(or an image, camera:N or synthetic:portrait)")
    sound_only = bool(container.streams) and all(stream.type == "audio" for stream in container.streams)  # an M4A
    if "mp4" in container.format.name.split(",") and mp4_empty(path):
        return (f"{path} holds no picture: its media data is empty (a recording stopped before its first picture, "
                f"or a conversion that wrote none); give a video with pictures")
    if "mp4" in container.format.name.split(",") and not sound_only:
        return (f"{path} has a damaged index (its moov box lists no readable video track); repair it (e.g. with "
                f"untrunc and a good file from the same camera), or copy it again if it was copied")
    return f"{path} has no video stream (give a video file, an image, camera:N or synthetic:portrait)"


def _tell_video_streams(container: Any, stream: Any, name: str) -> None:
    """Where a file has several video streams (not counting cover art), which one is processed: said once."""
    from av.stream import Disposition

    moving = _moving_streams(container)
    if len(moving) > 1:
        default = bool(stream.disposition & Disposition.default)
        notify(f"{name} has {len(moving)} video streams; number {moving.index(stream) + 1} "
               f"({stream.codec_context.width}x{stream.codec_context.height}), "
               f"{'the default one' if default else 'the first'}, is processed")


def pixel_aspect(stream: Any, name: str) -> Fraction:
    """The width of the stream's pixels to their height (its sample aspect ratio): 1 where it is not given, or
    where it is out of any camera's range (said)."""
    given = stream.sample_aspect_ratio
    if not given or given == 1:
        return Fraction(1)
    if not PIXEL_ASPECT_RANGE[0] <= given <= PIXEL_ASPECT_RANGE[1]:
        notify(f"{name} gives its pixels an aspect of {given} (width to height), out of any camera's range: "
               f"they are taken for square")
        return Fraction(1)
    return Fraction(given)


def display_orientation(frame: Any) -> tuple[int, bool]:
    """How a decoded picture is meant to be shown, from its display matrix (FFmpeg's display.h): the turn in
    degrees counter-clockwise, then whether it is mirrored left-right. frame.rotation reads a mirror alone as a
    180° turn (the picture came out upside down): a negative determinant is a mirror, taken off (as
    av_display_matrix_flip puts it on: the first column negated) before the turn is read."""
    from av.sidedata.sidedata import Type

    data = props_only(frame).side_data.get(Type.DISPLAYMATRIX)
    if data is None:
        return 0, False
    a, b, _, c, d = struct.unpack("=9i", bytes(data))[:5]
    mirrored = a * d - b * c < 0
    if mirrored:
        a = -a
    if a == b == 0:  # no picture to show: a damaged matrix
        return 0, False
    return round(math.degrees(-math.atan2(b, a))) % 360, mirrored


def parse_time(text: str) -> float:
    """Seconds from `90`, `12.5`, `1:30` or `01:02:03.5` (--start, --duration)."""
    refusal = ValueError(f"{text!r} is not a time; give seconds (90, 12.5) or [HH:]MM:SS (1:30, 0:01:02.5)")
    parts = text.strip().split(":")
    try:
        values = [float(part) for part in parts] if len(parts) <= 3 and all(parts) else None
    except ValueError:
        values = None
    if values is None or not all(0 <= v < math.inf for v in values) or any(v >= 60 for v in values[1:]):
        raise refusal  # also nan and inf, which float() reads
    seconds = 0.0
    for value in values:
        seconds = seconds * 60 + value
    return seconds


class Timecode(NamedTuple):
    """An editor's timecode (--start, --duration), HH:MM:SS:FF, drop-frame (29.97, 59.94 fps) with ; before the
    frames, as copied from an NLE: its frames count at the input's rate, known once it is open."""
    hours: int
    minutes: int
    seconds: int
    frames: int
    drop: bool
    text: str

    def __str__(self) -> str:
        return self.text


# As a user writes one: `:` or `;` before the frames (1:02:03.5 is a time); FFmpeg's tags also take `.` and `,`
TIMECODE_TEXT = re.compile(r"(\d{1,2}):(\d\d):(\d\d)([:;])(\d{1,3})")


def parse_timecode(text: str, pattern: re.Pattern[str] = TIMECODE_TEXT) -> Timecode | None:
    """The timecode `text` is (None: it is none, e.g. a time); ValueError where it looks like one but cannot be."""
    found = pattern.fullmatch(text.strip())
    if found is None:
        return None
    hours, minutes, seconds, separator, frames = found.groups()
    if int(minutes) > 59 or int(seconds) > 59 or int(hours) > 23:
        raise ValueError(f"{text!r} is no timecode: its hours run to 23, its minutes and seconds to 59")
    return Timecode(int(hours), int(minutes), int(seconds), int(frames), separator != ":", text.strip())


def timecode_frames(timecode: Timecode, rate: Fraction) -> int:
    """The frames from 00:00:00:00 to `timecode` at `rate`, counted at the nominal rate (24 at 23.976, 30 at
    29.97), drop-frame skipping the labels ;00 and ;01 (;00 to ;03 at 59.94) at each minute but every tenth, as
    shifted_timecode counts; ValueError for a label the rate has not."""
    fps = round(rate)
    drop = fps // 15 if timecode.drop else 0
    if timecode.frames >= fps:
        raise ValueError(f"no frame {timecode.frames:02d} at {rate_text(float(rate))} fps: frames run 00 to {fps - 1}")
    if drop and fps % 30:
        raise ValueError(f"drop-frame (;) is 29.97 and 59.94 fps timecode, and the input is "
                         f"{rate_text(float(rate))} fps; write {str(timecode).replace(';', ':')}")
    if drop and timecode.seconds == 0 and timecode.frames < drop and timecode.minutes % 10:
        raise ValueError(f"no such drop-frame timecode: ;00 to ;{drop - 1:02d} are skipped at each minute but "
                         f"every tenth; the minute begins at ;{drop:02d}")
    return timecode_count(timecode.hours, timecode.minutes, timecode.seconds, timecode.frames, fps, drop)


def _timecode_day(rate: Fraction, drop: bool) -> int:
    """The frames of 24 hours of timecode at `rate`, drop-frame's without the labels it skips."""
    fps = round(rate)
    return (fps * 600 - (fps // 15 * 9 if drop else 0)) * 144


def timecode_refusal(flag: str, given: Timecode, name: str) -> str:
    """The line for a timecode given for an input with no frame rate to count it at (a camera, an animation)."""
    return (f"{flag} {given} is a timecode (HH:MM:SS:FF), which counts frames at a video file's rate, and {name} has "
            f"none; give the time from its start in seconds or [HH:]MM:SS.s instead")


def part_refusal(name: str) -> str:
    """The line for --start or --duration given for an input that is no video file (a camera, a stream, a photo)."""
    return f"--start and --duration take a part of a video file; {name} is not one"


def format_time(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:04.1f}" if minutes else f"{rest:.1f} s"


def open_source(spec: str, input_rate: Fraction | None = None) -> Source:
    """A source from its spec: a path, `camera:N`, a network stream's URL, or `synthetic:portrait?...`.
    `input_rate` (--input-rate): the rate of a video whose pictures have no times of their own; any other input is
    refused with it, before it opens where its spec or its headers tell (a camera, a stream, a photo)."""
    from stream.camera import CameraSource  # here: it imports this module
    from stream.network_source import NETWORK_SCHEMES, is_network_spec, redact
    from stream.served_file import network_input

    if input_rate is not None and (own := _own_rate_by_spec(spec)) is not None:
        raise UserError(input_rate_refusal(input_named(spec), own))
    if spec.startswith("synthetic:"):
        return SyntheticSource(spec)
    if spec.startswith("camera:"):
        return CameraSource(spec)
    if is_network_spec(spec):
        _check_port(spec)
        return network_input(spec, input_rate)  # a file served (its length stated): a VideoFileSource of it
    path = input_path(spec)
    try:
        if "://" in spec and not path.exists():
            raise UserError(f"input {redact(spec)}: depthcam reads no {spec.partition(':')[0]}:// address; network "
                            f"streams are {', '.join(NETWORK_SCHEMES)}")
        if not path.exists():
            raise UserError(f"input {spec} not found (give a video or image file, camera:N, a stream's URL "
                            f"(rtsp://, http://, udp://...), or synthetic:portrait)")
        if path.is_dir():
            raise UserError(f"input {spec} is a folder; give a video or image file, or the files in it: "
                            f"depthcam run {Path(spec) / '*'} -o OUT/ (each into OUT/)")
        if path.is_file() and path.stat().st_size == 0:  # "not a video, or corrupt" said nothing of why
            raise UserError(f"input {spec} is empty (0 bytes): a copy or download not finished, or a recording not "
                            f"yet written out; give it once it is complete")
        still = is_still_image(path)
    except OSError as exc:  # a name longer than the file system takes
        raise UserError(f"cannot open input {spec}: {exc.strerror or exc}") from None
    if still and path.suffix.lower() in VIDEO_NAMES:
        raise UserError(_picture_named_as_video(path))
    if still and input_rate is not None:
        raise UserError(input_rate_refusal(input_named(spec), "is a photo, one picture with no rate"))
    if still:
        return ImageSource(path)
    tell_default_rate(spec, input_rate)  # standard input streaming pictures: read at FFmpeg's 25 fps without a rate
    if input_rate is None:
        return animation_source(path) or VideoFileSource(path)  # an animated WebP through Pillow: FFmpeg decodes none
    if (animation := animation_source(path)) is not None:
        raise UserError(input_rate_refusal(input_named(spec), f"has its own ({rate_text(animation.fps)} fps)"))
    return VideoFileSource(path, input_rate)


def _check_port(spec: str) -> None:
    """A network address's port, where it names one, a port (1-65535): udp://host:70000 ended in "ValueError: Port out
    of range" (exit 1), rtsp://host:70000 in FFmpeg's "Invalid argument" after trying to connect."""
    import urllib.parse

    from stream.network_source import redact

    netloc = urllib.parse.urlsplit(spec).netloc.rpartition("@")[2]
    given = netloc.rpartition("]")[2].partition(":")[2] if netloc.startswith("[") else netloc.partition(":")[2]
    if not given or given.isdigit() and 1 <= int(given) <= 65535:
        return
    if given.isdigit():
        raise UserError(f"{redact(spec)}: {given} is no port (a number from 1 to 65535); check the address")
    # not a number: most likely a password with / ? or # in it, which ends the host part there (rtsp://admin:pa/ss@
    # cam), so that the address's parts are not what they seem: neither the "port" nor the address is repeated
    raise UserError("the network address given has no port that is a number after its host; a user name or password "
                    "with / ? # or @ in it must be written percent-encoded there (%2F %3F %23 %40)")


# Demuxers of pictures that carry no times: FFmpeg's image pipes (a stream of JPEG or PNG pictures), named *_pipe
IMAGE_PIPE_FORMAT = re.compile(r"image2pipe|\w+_pipe")


def carries_no_rate(format_name: str, own_rate: Fraction | None) -> bool:
    """Whether a video read by FFmpeg's demuxer `format_name` has no times of its own, so that --input-rate gives it
    its rate: a stream of pictures, or a raw stream whose headers give no rate (`own_rate`)."""
    return bool(IMAGE_PIPE_FORMAT.fullmatch(format_name)) or (format_name in RAW_VIDEO_FORMATS and own_rate is None)


INPUT_RATE_TAKERS = ("--input-rate sets the rate of inputs that carry none (a stream of pictures on standard input or "
                     "a pipe, an .mjpeg file, a raw .h264 without timing)")


def input_rate_refusal(named: str, own: str) -> str:
    """The line refusing --input-rate for an input that has a rate of its own (`own`: what it has)."""
    return f"{INPUT_RATE_TAKERS}; {named} {own}: leave --input-rate out"


def input_named(spec: str) -> str:
    """An input as a line names it: standard input by that name, a stream's address without its password."""
    from stream.network_source import redact

    return "standard input" if spec in STDIN_NAMES else redact(spec)


def _own_rate_by_spec(spec: str) -> str | None:
    """What an input that is no file has of its own rate, told by its spec alone (None: a file, told once open)."""
    from stream.network_source import is_network_spec

    if spec.startswith("synthetic:"):
        return "has its own (set it with ?fps=)"
    if spec.startswith("camera:"):
        return "is a camera, which has its own"
    if is_network_spec(spec) and not spec.lower().startswith(("http:", "https:")):
        return "is a network stream, which times its own pictures"
    return None  # a file, or an http(s) address, which may serve one (a raw stream without timing): told once open


class FileHeaders(NamedTuple):
    """What a video file's container says of it when it is opened (probe_file)."""
    own_rate: str | None  # what it has of its own that --input-rate does not fit (input_rate_refusal's words)
    audio_streams: int


def input_rate_misfit(spec: str) -> str | None:
    """What an input has that --input-rate does not fit, in input_rate_refusal's words, told before it is read: by
    its spec, its headers (a photo, an animation) or its container's (a video's own rate), for a batch's
    inputs all before the first runs; None where it fits, or where only opening it tells (a pipe, standard input's
    video, an http(s) address, a file that does not open: open_source says what it is)."""
    from stream.animations import animation_metadata
    from stream.network_source import is_network_spec

    if (own := _own_rate_by_spec(spec)) is not None:
        return own
    if is_network_spec(spec):
        return None
    path = input_path(spec)  # standard input is looked at (once: a run reads it so anyway)
    try:
        if not readable_again(path):
            return None
        if is_still_image(path):
            return "is a photo, one picture with no rate"
        if animation_metadata(path) is not None:
            return "is an animation, which times its own pictures"
    except OSError:  # a name too long: open_source says so
        return None
    headers = probe_file(path)
    return headers.own_rate if headers is not None else None


def probe_file(path: Path) -> FileHeaders | None:
    """A video file's container headers, as FFmpeg reads them when it opens the file (its probe; no picture is read
    for the run); None where it does not open as one, or cannot be read twice (a pipe)."""
    import av

    if not readable_again(path):
        return None
    try:
        with open_input(path) as container:
            audio = len(audio_streams(container))
            if not container.streams.video:
                return FileHeaders(None, audio)
            stream, name = container.streams.video[0], container.format.name
            own = _raw_own_rate(stream) if name in RAW_VIDEO_FORMATS else None
            rate = own or stream.average_rate or stream.guessed_rate
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    if carries_no_rate(name, own):
        return FileHeaders(None, audio)
    return FileHeaders(f"has its own ({rate_text(float(rate))} fps)" if rate else "times its pictures itself", audio)


# Names that say "a video": a picture so named (renamed by hand, a download's wrong name) was read by its content and
# written as a one-frame, 0.03 s video when -o named one; refused as a video named .jpg is, the other way
VIDEO_NAMES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
                         ".wmv", ".flv", ".3gp", ".ogv", ".vob", ".mxf"})
PICTURE_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp", "HEIF": ".heic"}


def _picture_named_as_video(path: Path) -> str:
    """The line for a picture under a video's name: what it holds, and the name that has it processed as a photo."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            kind = image.format or "picture"
    except (OSError, ValueError, SyntaxError):
        kind = "picture"
    suffix = PICTURE_SUFFIX.get(kind, f".{kind.lower()}" if kind != "picture" else ".png")
    return (f"cannot read video {path}: it holds a {kind} picture, not a video; name it "
            f"{path.with_suffix(suffix).name} to process it as a photo")
