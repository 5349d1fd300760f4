"""Which inputs are photos and which animations, by their headers, read once; animations (GIF, APNG, animated
WebP) in. FFmpeg reads a GIF and an APNG as a video (VideoFileSource, each picture for its own duration); an
animated WebP, which it cannot decode, is read by Pillow (AnimationSource)."""
from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from stream.errors import UserError
from stream.images import (ANIMATION_FORMATS, HEIF_SUFFIXES, IMAGE_SUFFIXES, PhotoMetadata, bgr, pillow_open,
                           rgb_profile, transparent)

# Formats OpenCV also reads as one picture that may hold many: read as video (every frame).
SEQUENCE_SUFFIXES = {".gif", ".mjpeg", ".mjpg", ".apng"}
# Animation types whose file of one picture is a photo (a PNG or WebP of one picture is one by its type already)
ONE_PICTURE_ANIMATIONS = {".gif", ".apng"}
ANIMATION_SUFFIX = {"GIF": ".gif", "PNG": ".png", "WEBP": ".webp"}  # an animation's own type, by Pillow's format
# A picture stored as shown this long or less (0, 10 ms) is shown 100 ms, as browsers show it; 16 ms (60 fps, a
# WebP made from a video) is kept: the 20 ms of FFmpeg's GIF rule played such a WebP 6 times slower
CLAMPED_DURATION_MS = 10


def is_still_image(path: Path) -> bool:
    """A photo, by its name, or by its content where the name is none of the usual ones (.jfif, .ppm, none):
    one picture that Pillow recognises (an animated WebP or PNG is read as the animation it is)."""
    path = path.expanduser()
    suffix = path.suffix.lower()
    if suffix in (".png", ".webp") and picture_count(path) > 1:
        return False  # an animated PNG (APNG), which FFmpeg decodes as the video it is, or WebP (AnimationSource)
    if suffix in ONE_PICTURE_ANIMATIONS:  # one picture is a photo: its grey16 depth a 16-bit PNG, not a video
        return picture_count(path) == 1
    if suffix in IMAGE_SUFFIXES or suffix in HEIF_SUFFIXES:
        return True
    try:
        if suffix in SEQUENCE_SUFFIXES or not path.is_file():
            return False
    except OSError:  # a name too long: opening the input says so
        return False
    headers = _headers(path)
    return headers is not None and headers.pictures == 1 and headers.format not in VIDEO_KNOWN_TO_PILLOW


# Formats Pillow recognises but cannot decode, being video: an MPEG-1/2 elementary stream (a DVD's .m2v) was read as
# a damaged photo ("the MPEG picture (320x240) is damaged or cut short")
VIDEO_KNOWN_TO_PILLOW = frozenset({"MPEG"})


def picture_count(path: Path) -> int:
    """How many pictures the file holds by its headers (an animated PNG or WebP more than one; a GIF 1 or 2, for
    many); 0 where Pillow cannot read it."""
    headers = _headers(path)
    return headers.pictures if headers is not None else 0


@dataclass(frozen=True)
class _Headers:
    """What start-up asks of a picture file's headers (whether it is a photo or an animation, the output's type
    and names, what the output keeps)."""

    format: str
    pictures: int  # a GIF's 1, or 2 for many: counting them reads the whole file
    icc_profile: bytes | None
    plays: int
    transparent: bool


def _headers(path: Path) -> _Headers | None:
    """The file's headers, read once however often start-up asks (an animation's were opened five times: its
    output's and depth's names, the output checks, what the output keeps); read again once the file changes."""
    try:
        stat = path.stat()
    except OSError:  # a name too long, none there: opening the input says so
        return None
    return _read_headers(str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _read_headers(name: str, inode: int, size: int, mtime_ns: int) -> _Headers | None:
    """_headers's reading, by the file's name and what says it is unchanged; None where Pillow cannot read it."""
    from PIL import Image

    try:
        with pillow_open(Path(name)) as image:  # quiet: a guess at what the file is says nothing
            if image is None:
                return None
            pictures = (2 if image.is_animated else 1) if image.format == "GIF" else int(getattr(image, "n_frames", 1))
            profile, plays = rgb_profile(image), _plays(image)  # picture 0's, before seeking on
            transparent = _gif_transparent(Path(name)) if image.format == "GIF" else _png_transparent(image, pictures)
            return _Headers(image.format, pictures, profile, plays, transparent)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None


def _png_transparent(image: Any, pictures: int) -> bool:
    """Whether an opened picture file shows the page anywhere: a still one (or a WebP) by its mode; an APNG's pictures
    decoded until one has a pixel not fully opaque (an alpha channel alone is none: encoders give one to opaque
    animations, which FFmpeg then reads as it did)."""
    if image.format != "PNG" or pictures < 2 or not transparent(image):  # a WebP's pictures give their own alpha
        return transparent(image)
    try:
        for index in range(_first_picture(image), pictures):
            image.seek(index)
            if _shows_through(image):
                return True
    except (OSError, ValueError, SyntaxError, EOFError):  # damaged: read by AnimationSource, which says so
        return True
    return False


def _first_picture(image: Any) -> int:
    """An opened animation's first picture played: an APNG's default image (for viewers without APNG, Pillow's
    picture 0) is none of them."""
    return 1 if image.format == "PNG" and image.info.get("default_image") else 0


def _shows_through(image: Any) -> bool:
    """Whether the opened picture has a pixel not fully opaque."""
    return transparent(image) and int(np.asarray(image.convert("RGBA").getchannel("A")).min()) < 255


def _gif_first_shows_through(path: Path) -> bool:
    """Whether a GIF's first picture has a pixel of its transparent colour: FFmpeg's paletteuse reserves one in
    every GIF it makes, opaque ones too."""
    try:
        with pillow_open(path) as image:
            return image is not None and _shows_through(image)
    except (OSError, ValueError, SyntaxError, EOFError):  # damaged: read by AnimationSource, which says so
        return True


def _gif_transparent(path: Path) -> bool:
    """Whether a GIF shows the page anywhere: its first picture has a pixel of its transparent colour, or a
    picture cleared to the background (disposal 2, which browsers show as the page) is followed by one with a
    transparent colour or not covering its place. Pillow tells of the first picture only, and a GIF opaque at first
    went through FFmpeg, which gave every picture opaque. A transparent colour alone is no transparency: encoders
    (Pillow's, gifsicle) draw a later picture's unchanged pixels so, over the last picture, which shows through.
    The blocks are walked, not searched for, so that picture data alike counts for nothing; a GIF cut short counts
    what it holds. (An APNG's or WebP's transparency is the file's: Pillow reads it.)"""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    offset = 13 + (3 << ((data[10] & 7) + 1) if len(data) > 10 and data[10] & 0x80 else 0)
    # the next picture's Graphic Control flags; the last picture's place, if cleared; whether none came yet
    control, cleared, first = 0, None, True
    try:
        while offset < len(data):
            block = data[offset]
            if block == 0x21:  # an extension: its label, then sub-blocks to an empty one
                if data[offset + 1] == 0xF9 and data[offset + 2] >= 4:
                    control = data[offset + 3]
                offset = _after_sub_blocks(data, offset + 2)
            elif block == 0x2C:  # a picture: its place, its own colours, the LZW code size, sub-blocks
                place = struct.unpack("<HHHH", data[offset + 1:offset + 9])
                see_through = bool(control & 1)
                if see_through and (cleared is not None or first and _gif_first_shows_through(path)):
                    return True
                if cleared is not None and not _covers(place, cleared):
                    return True
                cleared = place if (control >> 2) & 7 == 2 else None
                control, first, flags = 0, False, data[offset + 9]
                offset += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
                offset = _after_sub_blocks(data, offset + 1)
            else:  # the trailer (0x3B), or what is no GIF block
                return False
    except (IndexError, struct.error):
        pass
    return False


def _covers(place: tuple[int, ...], other: tuple[int, ...]) -> bool:
    """Whether a GIF picture's place (left, top, width, height) covers another's."""
    left, top, width, height = place
    other_left, other_top, other_width, other_height = other
    return (left <= other_left and top <= other_top and left + width >= other_left + other_width
            and top + height >= other_top + other_height)


def _transparent_from_the_start(image: Any) -> None:
    """A GIF opaque at first whose later pictures are transparent (_gif_transparent), opened: Pillow lays its later
    pictures on an opaque canvas, the first's, and clears a picture's place (disposal 2) to the background colour,
    where browsers show the page. Made as Pillow makes a GIF transparent from its first picture: a colour the first
    does not use is its transparent one, and the cleared place is of it. Pillow's internals, so any change there
    leaves the pictures as Pillow gives them."""
    if image.format != "GIF" or image.tell() != 0 or transparent(image) or image.mode != "P":
        return
    from PIL import Image

    try:
        image.load()
        used = np.bincount(np.asarray(image).ravel(), minlength=256)
        if used.all():  # every colour used: none free to be the transparent one
            return
        free = int(np.argmin(used))
        image.info["transparency"] = free
        if image.disposal_method == 2:
            left, top, right, bottom = image.dispose_extent
            image.dispose = Image.core.fill("P", (right - left, bottom - top), free)
    except (AttributeError, TypeError, ValueError):
        image.info.pop("transparency", None)


def _after_sub_blocks(data: bytes, offset: int) -> int:
    """Where a GIF's chain of sub-blocks starting at `offset` ends (after its empty one)."""
    while data[offset]:
        offset += data[offset] + 1
    return offset + 1


def animation_metadata(path: Path) -> PhotoMetadata | None:
    """An animation's colour profile and times played, from its headers; None for any other file. A file of one
    picture (GIF, APNG, PNG, WebP) is a photo: a GIF of one was read as a 100 fps video, whose grey16 depth had to
    be a video (an .apng's output was a one-frame video); it keeps its type as a photo's output (app.portrait_name)."""
    if path.suffix.lower() not in ANIMATION_FORMATS:
        return None
    headers = _headers(path)
    if headers is None or headers.format not in ANIMATION_SUFFIX or headers.pictures < 2:
        return None
    return PhotoMetadata(headers.icc_profile, plays=headers.plays)


def animation_suffix(path: Path) -> str | None:
    """The type of file an animation's output is by default, that of the input (.gif, .png, .apng, .webp); None
    for any other file."""
    if animation_metadata(path) is None:
        return None
    return path.suffix.lower()


def _plays(image: Any) -> int:
    """How many times an opened animation is played, 0 for ever. A GIF's loop count is of repeats, and one without
    it plays once; APNG's and WebP's count the plays."""
    loop = image.info.get("loop")
    if image.format == "GIF":
        return 1 if loop is None else 0 if loop == 0 else int(loop) + 1
    return int(loop or 0)


def _shown_ms(duration_ms: float | None) -> float:
    """How long a picture is shown: as stored, or 100 ms where it is stored shorter than browsers show one."""
    return 100.0 if not duration_ms or duration_ms <= CLAMPED_DURATION_MS else float(duration_ms)


class AnimationSource:
    """An animated WebP, which FFmpeg cannot decode, or a transparent GIF or APNG, read picture by picture by
    Pillow, each at its own time and for its own duration (as VideoFileSource gives a GIF's), a transparent one
    filled as a photo is (filled_behind), its alpha handed along (`extra["alpha"]`) for the output; no sound, as an
    animation has none. A stream.sources.Source (that module imports this one, so not by name)."""

    live = False
    progress_seconds: float | None = None
    audio_path: Path | None = None
    subtitle_path: Path | None = None
    chapters: list[dict[str, Any]] | None = None

    def __init__(self, path: Path, metadata: PhotoMetadata | None = None) -> None:
        self.path = path
        # kept by an animation output: its times played, its profile (read by animation_source already, where given)
        self.metadata = metadata if metadata is not None else animation_metadata(path)
        self._durations_ms = self._read_durations()
        # any picture's (a GIF's later ones too): every picture's alpha is then given, as an output takes the first's
        headers = _headers(path)
        self._transparent = headers is not None and headers.transparent
        self.frame_count = len(self._durations_ms)
        # what frames() gives: (picture, when, for how long), in seconds from the part's start (set_range)
        self._part = _timeline(self._durations_ms, 0.0, None)
        # the rate of its pictures (the commonest duration), not its average: a 2 s last one is no frame rate
        self.fps = 1000.0 / max(set(self._durations_ms), key=lambda ms: (self._durations_ms.count(ms), -ms))
        self.description = (f"animation {path.name} {self.width}x{self.height}, {self.frame_count} "
                            f"picture{'s' if self.frame_count != 1 else ''}, "
                            f"{sum(self._durations_ms) / 1000:.3g} s")

    def _read_durations(self) -> list[float]:
        """Each picture's duration in ms, the pictures decoded once (WebP tells one only so). libwebp checks the
        whole file as it opens it: a damaged one is no animation here, and is refused as a photo that cannot be
        read."""
        from PIL import Image

        try:
            with pillow_open(self.path) as image:
                if image is None:
                    raise UserError(f"cannot read animation {self.path}: not a picture, or corrupt")
                self.width, self.height = image.size
                durations, self._first = [], _first_picture(image)
                for index in range(self._first, image.n_frames):
                    image.seek(index)
                    image.load()
                    durations.append(_shown_ms(image.info.get("duration")))
                return durations
        except Image.DecompressionBombError:
            raise UserError(f"animation {self.path} is larger than depthcam reads; downscale it first") from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise UserError(f"cannot read animation {self.path}: {exc}") from None

    def set_range(self, start: float | None, duration: float | None) -> None:
        """Process only `duration` seconds from `start` (--start, --duration), as a video's part: from the picture
        on screen at `start`, cut at the end, its times from 0."""
        from stream.sources import format_time  # that module imports this one

        if duration is not None and duration <= 0:
            raise UserError(f"--duration {duration:g} takes nothing; give a length above 0 (seconds or MM:SS)")
        start, length = start or 0.0, sum(self._durations_ms) / 1000.0
        if _milliseconds(start) >= sum(self._durations_ms):  # as _timeline counts: a part with no picture
            raise UserError(f"--start {format_time(start)} is past the end of {self.path.name} "
                            f"({format_time(length)} long); give an earlier start")
        if not start and duration is None:
            return
        self._part = _timeline(self._durations_ms, start, duration)
        self.frame_count = len(self._part)
        self.description += f", from {format_time(start)}" + (f" for {format_time(duration)}" if duration else "")

    def frames(self) -> Iterator[Any]:
        from stream.frame import Frame, now_ns

        with pillow_open(self.path) as image:
            if self._transparent:
                _transparent_from_the_start(image)
            for index, (picture, start, seconds) in enumerate(self._part):
                image.seek(picture + self._first)
                extra: dict[str, Any] = {"duration_seconds": seconds}
                if self._transparent or transparent(image):  # kept by an animation output; the picture filled
                    extra["alpha"] = np.asarray(image.convert("RGBA").getchannel("A"))
                yield Frame(index=index, capture_ns=now_ns(), image=bgr(image), pts_seconds=start, extra=extra)

    def seconds_done(self, frame: Any) -> float:
        return (frame.index + 1) / self.fps

    def truncation_warning(self) -> str | None:
        return None

    def interrupt(self) -> None:
        pass

    def close(self) -> None:
        pass


def _timeline(durations_ms: list[float], start: float, duration: float | None) -> list[tuple[int, float, float]]:
    """(picture, its time, how long it is shown) of the pictures shown from `start` for `duration` seconds (None:
    to the end), times from the part's start: the first the one on screen at `start`, the last cut at the end."""
    # In milliseconds, which the durations are whole numbers of: summed in seconds, 0.1 + 0.2 came to just over 0.3,
    # and --start 0.3 began with a sliver (5.6e-17 s) of the picture that ends there.
    start_ms = _milliseconds(start)
    end_ms = None if duration is None else _milliseconds(start + duration)
    part, shown = [], 0.0
    for picture, milliseconds in enumerate(durations_ms):
        begins, shown = shown, shown + milliseconds
        if shown <= start_ms:
            continue
        if end_ms is not None and begins >= end_ms and part:  # the first picture of a part always counts
            break
        since = max(begins, start_ms)
        part.append((picture, (since - start_ms) / 1000.0,
                     ((shown if end_ms is None else min(shown, end_ms)) - since) / 1000.0))
    return part


def _milliseconds(seconds: float) -> float:
    """A time given in seconds (--start 0.3) in milliseconds, rounded off its float error (0.3 s: 300, not
    299.99999999999997), as a picture's duration is counted."""
    return round(seconds * 1000.0, 6)


def animation_source(path: Path) -> AnimationSource | None:
    """The source of an animated WebP (FFmpeg decodes none), or of a transparent GIF or APNG (FFmpeg's pictures
    showed what the transparent pixels hide, and an output could not keep the transparency); None for any other
    file, which FFmpeg reads."""
    metadata = animation_metadata(path)
    headers = _headers(path) if metadata is not None else None
    if headers is None or not (headers.format == "WEBP" or headers.transparent):
        return None
    return AnimationSource(path, metadata)
