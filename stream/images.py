"""Still images: which inputs are photos, reading them upright, and what each output format can hold."""
from __future__ import annotations

import functools
import io
import os
import shutil
import struct
import threading
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from stream.errors import UserError
from stream.paths import replace_atomically

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
# HEIF photos (an iPhone's): read through pillow-heif. FFmpeg would take one for a video and give the first of the
# 512 px tiles an iPhone stores it in, as a one-frame NAME_portrait.mp4. Inputs only: no output is written so.
HEIF_SUFFIXES = {".heic", ".heif", ".hif"}
HEIF_FIX = "pip install 'depthcam[heif]' (pillow-heif, which depthcam then reads it with), or convert it to JPEG"
TRANSPARENT_BACKGROUND = (255, 255, 255)  # a transparent photo's render is laid on white where no alpha is kept
ALPHA_KEPT = {".png", ".webp", ".tif", ".tiff"}  # outputs that hold it, which then take the input's transparency back
# Formats OpenCV also reads as one picture that may hold many: read as video (every frame).
SEQUENCE_SUFFIXES = {".gif", ".mjpeg", ".mjpg", ".apng"}
# Outputs that hold an animation, and the Pillow format of each; a GIF or APNG output is always written as one
ANIMATION_FORMATS = {".gif": "GIF", ".png": "PNG", ".apng": "PNG", ".webp": "WEBP"}
ANIMATION_ONLY = {".gif", ".apng"}  # outputs written as an animation whatever the input (a photo's: one picture)
ANIMATION_SUFFIX = {"GIF": ".gif", "PNG": ".png", "WEBP": ".webp"}  # an animation's own type, by Pillow's format
# as PILLOW_SAVE for stills; WebP at method 0, as Pillow's animation writer encoded its pictures
ANIMATION_SAVE = {"GIF": {}, "PNG": {"compress_level": 1}, "WEBP": {"quality": 95, "method": 0}}
# A picture stored as shown this long or less (0, 10 ms) is shown 100 ms, as browsers show it; 16 ms (60 fps, a
# WebP made from a video) is kept: the 20 ms of FFmpeg's GIF rule played such a WebP 6 times slower
CLAMPED_DURATION_MS = 10
# The largest side each encoder takes (JPEG's and GIF's 16-bit header fields, WebP's 14-bit ones; PNG's are 31-bit).
IMAGE_MAX_SIDE = {".jpg": 65535, ".jpeg": 65535, ".webp": 16383, ".gif": 65535}
EXIF_ORIENTATION = 0x0112
# How Pillow writes a photo that keeps its colour profile and EXIF, as close as may be to OpenCV's
# defaults, which write the others (JPEG quality 95; PNG's fast compression; TIFF with LZW).
PILLOW_SAVE = {".jpg": {"quality": 95}, ".jpeg": {"quality": 95}, ".png": {"compress_level": 1},
               ".webp": {"quality": 95}, ".tif": {"compression": "tiff_lzw"}, ".tiff": {"compression": "tiff_lzw"}}
PILLOW_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
EXIF_KEPT = {".jpg", ".jpeg", ".png", ".webp"}  # Pillow's TIFF writer takes the profile, not EXIF
# OpenCV writes the photos without metadata: WebP at Pillow's quality too (its own default is lossless, 6 times larger)
OPENCV_SAVE = {".webp": [cv2.IMWRITE_WEBP_QUALITY, PILLOW_SAVE[".webp"]["quality"]]}
# What of a TIFF's first directory is EXIF's IFD0 (its description, camera, date, place); the rest (sizes, bits,
# compression, the strips' offsets, a Photoshop file's layers) describes how that TIFF stores its pixels.
TIFF_EXIF_TAGS = {270, 271, 272, 274, 282, 283, 296, 305, 306, 315, 33432, 34665, 34853}
# Pillow's reading of the orientation tag: how to bring the stored picture upright (as ImageOps.exif_transpose)
UPRIGHT_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
                     7: "TRANSVERSE", 8: "ROTATE_90"}
MAX_PIXELS = 1 << 30  # OpenCV's own limit on a picture it decodes (CV_IO_MAX_IMAGE_PIXELS)
TIFF_MAGIC = {b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"}  # little- and big-endian, classic and BigTIFF


@dataclass(frozen=True)
class PhotoMetadata:
    """What a photo's output keeps of it: the colour profile (an iPhone's Display P3, a camera's Adobe RGB:
    without it, viewers take the numbers for sRGB and the colours go dull) and EXIF (camera, date, place),
    its orientation set to upright, as the pixels are written."""

    icc_profile: bytes | None = None
    exif: bytes | None = None
    alpha: np.ndarray | None = field(default=None, compare=False)  # a transparent photo's opacity, upright, 8-bit
    plays: int | None = None  # an animation's (GIF, APNG, animated WebP): times it is played, 0 for ever; else None

    def __bool__(self) -> bool:
        return bool(self.icc_profile or self.exif) or self.alpha is not None


@contextmanager
def opencv_quiet() -> Iterator[None]:
    """OpenCV's own log lines off for a call that may fail: they would bury the one line that says why."""
    logging = cv2.utils.logging
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


class _PixelLimit:
    """Pillow's pixel limit at OpenCV's (MAX_PIXELS), and its decompression-bomb warning silenced (OpenCV's pixel
    limit speaks first), while any thread reads a picture here. Both are process-wide globals, read by Pillow as it
    opens, seeks and loads: the first reader sets them and the last puts them back. Each reader saving and restoring
    them for itself let one thread's restore land inside another's read (a 200-megapixel photo refused under the
    limit put back) and left the other's settings in place for good."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers = 0
        self._limit: int | None = None
        self._filters: list[Any] = []

    @contextmanager
    def raised(self) -> Iterator[None]:
        with self._lock:
            if self._readers == 0:
                self._set()
            self._readers += 1
        try:
            yield
        finally:
            with self._lock:
                self._readers -= 1
                if self._readers == 0:
                    self._put_back()

    def _set(self) -> None:
        from PIL import Image

        self._limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS // 2  # refused at twice it
        self._filters = list(warnings.filters)
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", "Truncated File Read")  # a TIFF cut short: the error says so, once
        # Pillow's own remarks on an odd file (a guess at what a nameless one is, damaged EXIF): depthcam says what
        # matters in its own words. Here, not in a catch_warnings around one call: that saved and put back the
        # process's filters across another thread's reading, and could leave these ignores on for good.
        warnings.filterwarnings("ignore", module=r"PIL(\.|$)")

    def _put_back(self) -> None:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = self._limit
        warnings.filters[:] = self._filters
        getattr(warnings, "_filters_mutated", lambda: None)()  # as catch_warnings does: cached decisions dropped


_PIXEL_LIMIT = _PixelLimit()


@contextmanager
def _pillow_open(path: Path) -> Iterator[Any]:
    """The picture as Pillow opens it (lazily: headers first), or None where Pillow cannot read it. Pillow's pixel
    limit is OpenCV's (MAX_PIXELS) meanwhile: its own (179 MP) refused a phone's 200-megapixel photo, which OpenCV
    reads, and the output lost the photo's colour profile and EXIF (see _PixelLimit)."""
    from PIL import Image, UnidentifiedImageError

    heif_readable()
    with _PIXEL_LIMIT.raised():
        try:
            opened = Image.open(path)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
            yield None
            return
        with opened:
            yield opened


@functools.cache
def heif_readable() -> bool:
    """Pillow reads HEIF where pillow-heif is installed (an optional package); whether it is."""
    try:
        from pillow_heif import register_heif_opener

        register_heif_opener()
    except Exception:  # noqa: BLE001 (not installed, or a broken install: HEIF unread, every other photo still read)
        return False
    return True


def _pillow_decodes(path: Path) -> bool:
    """Whether Pillow, not OpenCV, decodes the picture, from its headers: one with transparency (OpenCV drops the
    alpha) or a CMYK one with its colour profile (OpenCV turns inks into RGB by a formula, which a print profile's
    colours are far from)."""
    from PIL import Image

    try:
        with _pillow_open(path) as image:
            return image is not None and (_transparent(image) or _cmyk_profile(image) is not None)
    except Image.DecompressionBombError:  # beyond Pillow's pixel limit: OpenCV reads it, or says it is too large
        return False


def _cmyk_profile(image: Any) -> bytes | None:
    """A CMYK picture's embedded colour profile, where it has one that describes CMYK."""
    icc = image.info.get("icc_profile") if image.mode == "CMYK" else None
    return icc if icc and icc[16:20] == b"CMYK" else None  # its data colour space, from its header


@functools.cache
def _srgb_profile() -> Any:
    from PIL import ImageCms

    return ImageCms.createProfile("sRGB")


def _cmyk_to_rgb(image: Any) -> Any:
    """A CMYK picture (a print workflow's, a Photoshop export's; Pillow undoes Adobe's inverted inks as it reads)
    in sRGB, through its embedded profile where LittleCMS can use it; else by Pillow's formula, inks inverted and
    times the black, as OpenCV and browsers convert a CMYK picture without one."""
    from PIL import ImageCms

    icc = _cmyk_profile(image)
    if icc is not None:
        try:
            return ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _srgb_profile(),
                                             outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):  # a damaged profile: the formula
            pass
    return image.convert("RGB")


def _transparent(image: Any) -> bool:
    return image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info


# OpenCV's own file functions take the name as UTF-8: a name that is not (a byte such as 0xff in a Linux file
# name, which Python carries as a surrogate) crashed them (SIGSEGV). So files are read and written here, and
# OpenCV only decodes and encodes bytes (imread also refused TIFFs turned by their orientation tag, 5-8).


def is_still_image(path: Path) -> bool:
    """A photo, by its name, or by its content where the name is none of the usual ones (.jfif, .ppm, none):
    one picture that Pillow recognises (an animated WebP or PNG is read as the animation it is)."""
    path = path.expanduser()
    suffix = path.suffix.lower()
    if suffix in (".png", ".webp") and picture_count(path) > 1:
        return False  # an animated PNG (APNG), which FFmpeg decodes as the video it is, or WebP (AnimationSource)
    if suffix in IMAGE_SUFFIXES or suffix in HEIF_SUFFIXES:
        return True
    try:
        if suffix in SEQUENCE_SUFFIXES or not path.is_file():
            return False
    except OSError:  # a name too long: opening the input says so
        return False
    return picture_count(path) == 1


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
        with _pillow_open(Path(name)) as image:  # quiet: a guess at what the file is says nothing
            if image is None:
                return None
            pictures = (2 if image.is_animated else 1) if image.format == "GIF" else int(getattr(image, "n_frames", 1))
            profile, plays = _rgb_profile(image), _plays(image)  # picture 0's, before seeking on
            transparent = _gif_transparent(Path(name)) if image.format == "GIF" else _png_transparent(image, pictures)
            return _Headers(image.format, pictures, profile, plays, transparent)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None


def _png_transparent(image: Any, pictures: int) -> bool:
    """Whether an opened picture file shows the page anywhere: a still one (or a WebP) by its mode; an APNG's pictures
    decoded until one has a pixel not fully opaque (an alpha channel alone is none: encoders give one to opaque
    animations, which FFmpeg then reads as it did)."""
    if image.format != "PNG" or pictures < 2 or not _transparent(image):  # a WebP's pictures give their own alpha
        return _transparent(image)
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
    return _transparent(image) and int(np.asarray(image.convert("RGBA").getchannel("A")).min()) < 255


def _gif_first_shows_through(path: Path) -> bool:
    """Whether a GIF's first picture has a pixel of its transparent colour: FFmpeg's paletteuse reserves one in
    every GIF it makes, opaque ones too."""
    try:
        with _pillow_open(path) as image:
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
    if image.format != "GIF" or image.tell() != 0 or _transparent(image) or image.mode != "P":
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


def read_image(path: Path) -> np.ndarray:
    """8-bit BGR, turned as its EXIF or TIFF orientation says (as viewers show it); a transparent picture's hidden
    pixels filled from its visible ones (filled_behind; OpenCV drops the alpha and shows what the transparent pixels
    hide: often black, or junk)."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise UserError(f"cannot read image {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() in HEIF_SUFFIXES and not heif_readable():
        raise UserError(f"cannot read HEIF photo {path}: {HEIF_FIX}")
    tiff = data[:4].tobytes() in TIFF_MAGIC
    if tiff:
        from stream.deep_tiff import read_deep_tiff, tiff_samples

        image = read_deep_tiff(path, data)
        if image is not None:
            return image
    if _pillow_decodes(path):
        image = _read_with_pillow(path)
        if image is not None:
            return image
    with opencv_quiet():
        try:
            image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        except cv2.error as exc:
            refuse_if_too_large(path, exc)
            image = None
    image = _read_with_pillow(path) if image is None else image
    if image is None:
        samples = tiff_samples(path) if tiff else None
        if samples:
            raise UserError(f"cannot read image {path}: a TIFF of {samples} samples that could not be decoded "
                            f"(damaged, or compressed in a way depthcam cannot read); save it again as a 16-bit TIFF "
                            f"or a PNG")
        raise UserError(f"cannot read image {path}: {_unreadable(path, data[:512].tobytes())}")
    return image


# A container's first bytes, and what it is: a video with a photo's name (a phone's export, a renamed download)
VIDEO_SIGNATURES = ((4, b"ftyp", "a video (MP4/MOV)", ".mp4"),
                    (0, b"\x1a\x45\xdf\xa3", "a video (Matroska/WebM)", ".mkv"), (8, b"AVI ", "a video (AVI)", ".avi"))
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
PICTURE_BRANDS = (*HEIF_BRANDS, b"avif", b"avis")  # an MP4-like box structure that holds a photo


def _unreadable(path: Path, head: bytes) -> str:
    """Why a file that neither OpenCV nor Pillow decodes is no photo, and what to do, from its first bytes."""
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS and not heif_readable():
        return f"it holds a HEIF photo (an iPhone's HEIC) under another name; {HEIF_FIX}"
    for offset, signature, what, suffix in VIDEO_SIGNATURES:
        if head[offset:offset + len(signature)] == signature and head[8:12] not in PICTURE_BRANDS:
            return f"it holds {what}, not a picture; name it {path.with_suffix(suffix).name} to process it as a video"
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html")):
        return ("it holds a web page (HTML), not a picture; download the photo itself (a share link's page was saved "
                "in its place)")
    damaged = _damaged_picture(path)
    if damaged:
        return f"{damaged} is damaged or cut short (an unfinished download or copy?); copy it again"
    return "not an image, or corrupt (give a PNG/JPEG file)"


def _damaged_picture(path: Path) -> str | None:
    """"the JPEG picture (WxH)" where Pillow read its headers (so it is one) but neither decoder its pixels."""
    from PIL import Image

    try:
        with _pillow_open(path) as image:
            return None if image is None else f"the {image.format} picture ({image.width}x{image.height})"
    except Image.DecompressionBombError:
        return None


def refuse_if_too_large(path: Path, exc: cv2.error) -> None:
    if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
        raise UserError(f"image {path} is larger than depthcam reads (over {MAX_PIXELS / 1e6:.0f} "
                        f"megapixels); downscale it first") from None




def _read_with_pillow(path: Path) -> np.ndarray | None:
    from PIL import Image

    try:
        with _pillow_open(path) as opened:
            if opened is None:
                return None
            image = _upright(opened)
            if image.mode.startswith("I"):  # 16- or 32-bit grey: to 8 bits as OpenCV does (/257)
                grey = np.clip(np.asarray(image, np.float64) / 257.0 + 0.5, 0, 255).astype(np.uint8)
                return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
            return _bgr(image)
    except Image.DecompressionBombError:
        raise UserError(f"image {path} is larger than depthcam reads; downscale it first") from None
    except (OSError, ValueError, SyntaxError, EOFError):  # a picture that breaks off while decoding
        return None


def _bgr(image: Any) -> np.ndarray:
    """An opened colour picture as 8-bit BGR: CMYK through its profile, a transparent one's hidden pixels filled
    from its visible ones (filled_behind)."""
    if image.mode == "CMYK":
        image = _cmyk_to_rgb(image)
    if _transparent(image):
        rgba = np.asarray(image.convert("RGBA"))
        return filled_behind(cv2.cvtColor(rgba[..., :3], cv2.COLOR_RGB2BGR), rgba[..., 3])
    return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)


def filled_behind(picture_bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A transparent picture as the network and the render see it: each visible pixel's own colour (straight, as
    stored), each wholly transparent one that of the nearest visible pixel. Laid on white, the blur gathered the
    white into the subject's edge: a light rim 5-10 px wide, plain on a dark page. The output takes the alpha back
    (_with_alpha) or lays the render on white (on_page). All transparent: white, as a page shows it."""
    hidden = alpha == 0
    if not hidden.any():
        return picture_bgr
    if hidden.all():
        return np.full_like(picture_bgr, TRANSPARENT_BACKGROUND[0])
    # each hidden pixel's label is that of its nearest visible one; visible pixels are labelled in scan order
    _, labels = cv2.distanceTransformWithLabels(hidden.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    nearest = np.flatnonzero(~hidden.ravel()).astype(np.int32)[labels.ravel() - 1]
    # gathered as one 32-bit word a pixel: 2-3 times as fast as a boolean mask of 3-byte rows
    words = cv2.cvtColor(picture_bgr, cv2.COLOR_BGR2BGRA).view(np.uint32).ravel()
    return cv2.cvtColor(words[nearest].view(np.uint8).reshape(*picture_bgr.shape[:2], 4), cv2.COLOR_BGRA2BGR)


def on_page(picture_bgr: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """A render of a transparent picture laid on white, as a page shows it: for an output that holds no alpha
    (JPEG, a video, the window), where the hidden pixels' fill (filled_behind) would show."""
    if alpha is None or alpha.shape != picture_bgr.shape[:2] or alpha.min() == 255:
        return picture_bgr
    opacity = alpha.astype(np.float32)[..., None] / 255.0
    page = picture_bgr * opacity + np.float32(TRANSPARENT_BACKGROUND[0]) * (1.0 - opacity)
    return np.clip(page + 0.5, 0, 255).astype(np.uint8)


def _upright(image: Any) -> Any:
    """The picture turned as its orientation tag says. Not ImageOps.exif_transpose, which writes the EXIF back and
    raised on a damaged tag elsewhere in it (a Make stored as a number: AttributeError)."""
    from PIL import Image

    try:
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
        method = UPRIGHT_TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    except Exception:  # noqa: BLE001 (EXIF beyond reading: the picture as stored)
        method = None
    return image if method is None else image.transpose(getattr(Image.Transpose, method))


def check_image_size(flag: str, target: str, width: int, height: int) -> None:
    """Before the run: an output picture larger than its format holds is refused with the formats that hold it."""
    suffix = Path(target).suffix.lower()
    limit = IMAGE_MAX_SIDE.get(suffix)
    if limit is not None and max(width, height) > limit:
        fix = "use .png" if suffix in ANIMATION_ONLY else "use .png or .tif"  # a .tif holds no animation
        raise UserError(f"{flag} {target}: {suffix} images are at most {limit} px a side and this one is "
                        f"{width}x{height}; {fix}")


def read_metadata(path: Path) -> PhotoMetadata:
    """The colour profile and EXIF of a photo (headers only); none where Pillow cannot read them."""
    from PIL import Image

    try:
        with _pillow_open(path) as image:
            if image is None:
                return PhotoMetadata()
            alpha = _opacity(image)  # before _upright_exif, which sets the orientation in Pillow's own EXIF to 1
            return PhotoMetadata(_rgb_profile(image), _upright_exif(image), alpha)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return PhotoMetadata()


def _rgb_profile(image: Any) -> bytes | None:
    """The picture's colour profile, where its output keeps it: a grey or CMYK picture is written as RGB, which its
    profile does not describe."""
    icc = image.info.get("icc_profile") or None
    return None if icc is None or icc[16:20] in (b"GRAY", b"CMYK") else icc  # its data colour space, from its header


def _opacity(image: Any) -> np.ndarray | None:
    """A transparent photo's alpha, upright as its pixels are read; None where every pixel is opaque."""
    if not _transparent(image):
        return None
    try:
        alpha = np.asarray(_upright(image).convert("RGBA").getchannel("A"))
    except (OSError, ValueError, SyntaxError, EOFError):  # its pixels break off: reading the photo says so
        return None
    return alpha if alpha.min() < 255 else None


def _upright_exif(image: Any) -> bytes | None:
    """The EXIF as an output keeps it: orientation upright, as the pixels are read; a TIFF's own storage tags left
    out. None where there is none, or it is damaged so that Pillow cannot write it back (the photo then goes
    without it rather than not at all)."""
    try:
        exif = image.getexif()
        if image.format == "TIFF":
            for tag in set(exif) - TIFF_EXIF_TAGS:
                del exif[tag]
        if EXIF_ORIENTATION in exif:
            exif[EXIF_ORIENTATION] = 1
        return exif.tobytes() if len(exif) else None
    except Exception:  # noqa: BLE001 (a tag of the wrong type, a bad offset: struct.error, TypeError, AttributeError)
        return None


def write_image(path: Path, picture_bgr: np.ndarray, metadata: PhotoMetadata | None = None) -> bool:
    """Write a photo; with the input's colour profile and EXIF where the format holds them. False where
    the encoder refused it."""
    suffix = path.suffix.lower()
    alpha = alpha_for(metadata.alpha if metadata else None, picture_bgr.shape[:2])
    if alpha is not None:  # kept, or the render laid on white where the format holds none (JPEG, BMP)
        picture_bgr = _with_alpha(picture_bgr, alpha) if suffix in ALPHA_KEPT else on_page(picture_bgr, alpha)
    encoded = _encode_with_pillow(picture_bgr, suffix, metadata) if metadata and suffix in PILLOW_SAVE else None
    if encoded is None:
        with opencv_quiet():
            ok, buffer = cv2.imencode(suffix, picture_bgr, OPENCV_SAVE.get(suffix, []))
        if not ok:
            return False
        encoded = buffer.tobytes()
    # beside the target, then renamed over it: a full disk leaves the file that was there, not half a picture
    replace_atomically(path, lambda partial: partial.write_bytes(encoded))
    return True


def alpha_for(alpha: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """The photo's alpha for a picture of `size` (height, width): as it is, or scaled where the picture is the photo
    scaled (the window's snapshot of a photo wider than it shows); None for another picture (side by side)."""
    if alpha is None or alpha.shape == size:
        return alpha
    (height, width), (alpha_height, alpha_width) = size, alpha.shape
    if abs(width / height - alpha_width / alpha_height) > 0.01 * alpha_width / alpha_height:
        return None
    return cv2.resize(alpha, (width, height), interpolation=cv2.INTER_AREA)


def _with_alpha(picture_bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """BGRA: the picture with the input's alpha. The render holds straight colours (filled_behind laid it on no
    page), as PNG, WebP, TIFF and Pillow's RGBA store them."""
    return np.dstack([picture_bgr, alpha])


def _encode_with_pillow(picture_bgr: np.ndarray, suffix: str, metadata: PhotoMetadata) -> bytes | None:
    """The photo with the colour profile and EXIF; without the EXIF where Pillow refused it (over JPEG's 64 KB),
    so that the profile stays; None where Pillow refused the rest too (then OpenCV writes the picture alone)."""
    from PIL import Image

    to_rgb = cv2.COLOR_BGRA2RGBA if picture_bgr.shape[2] == 4 else cv2.COLOR_BGR2RGB
    picture = Image.fromarray(cv2.cvtColor(picture_bgr, to_rgb))
    options: dict[str, Any] = dict(PILLOW_SAVE[suffix])
    if metadata.icc_profile:
        options["icc_profile"] = metadata.icc_profile
    attempts = [options]
    if metadata.exif and suffix in EXIF_KEPT:
        attempts.insert(0, {**options, "exif": metadata.exif})
    for attempt in attempts:
        buffer = io.BytesIO()
        try:
            picture.save(buffer, format=PILLOW_FORMATS[suffix], **attempt)
        except (OSError, ValueError, RuntimeError):  # RuntimeError: libtiff's refusal of a tag
            continue
        return buffer.getvalue()
    return None


# Animations (GIF, APNG, animated WebP) in and out. FFmpeg reads a GIF and an APNG as a video (VideoFileSource, each
# picture for its own duration); an animated WebP, which it cannot decode, is read by Pillow (AnimationSource). An
# animation output holds every picture for its own duration and plays as many times as the input.


def animation_metadata(path: Path) -> PhotoMetadata | None:
    """An animation's colour profile and times played, from its headers; None for any other file. A GIF counts as
    one whatever it holds (a GIF of one picture gives a GIF); a PNG or WebP of one picture is a photo."""
    if path.suffix.lower() not in ANIMATION_FORMATS:
        return None
    headers = _headers(path)
    if headers is None or headers.format not in ANIMATION_SUFFIX:
        return None
    if headers.format != "GIF" and headers.pictures < 2:
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


def _loop_option(pillow_format: str, plays: int) -> dict[str, int]:
    """Pillow's `loop` option that plays an animation of this format `plays` times (0: for ever)."""
    if pillow_format == "GIF":
        return {} if plays == 1 else {"loop": 0 if plays == 0 else plays - 1}
    return {"loop": plays}


def _shown_ms(duration_ms: float | None) -> float:
    """How long a picture is shown: as stored, or 100 ms where it is stored shorter than browsers show one."""
    return 100.0 if not duration_ms or duration_ms <= CLAMPED_DURATION_MS else float(duration_ms)


GIF_SHORTEST_CS = 2  # browsers show a GIF picture of 0 or 1 hundredths for 100 ms
GIF_CLEAR = 255  # a transparent GIF picture's index of its transparent pixels, its others in 255 colours
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class AnimationWriter:
    """An animated GIF, PNG (APNG) or WebP written picture by picture as they come: each encoded alone by Pillow's
    still encoder, its data put into the animation's container in a file beside the target, renamed over it once
    complete. Pillow's animation writers take every picture at once: a 4K animation of 600 pictures held ~15 GB
    until the end. Each picture is held for its duration, played `metadata.plays` times (once where it has none: a
    photo's GIF), with the colour profile (not in a GIF). A transparent animation (alpha given with its first
    picture) keeps each picture's alpha; a GIF's pixels under half opaque are its transparent ones."""

    def __init__(self, path: Path, metadata: PhotoMetadata | None = None) -> None:
        self.path = path
        self.format = ANIMATION_FORMATS[path.suffix.lower()]
        self.plays = metadata.plays if metadata is not None and metadata.plays is not None else 1
        self.icc_profile = metadata.icc_profile if metadata is not None and self.format != "GIF" else None
        self.count = 0
        self.size: tuple[int, int] = (0, 0)
        self.transparent = False
        target = Path(os.path.realpath(path))  # where replace_atomically writes: the rename stays in one folder
        self._spool = target.with_name(f".{target.name}.frames.part")
        self._file: Any = None

    @staticmethod
    def open(path: Path, metadata: PhotoMetadata | None = None) -> AnimationWriter:
        """The writer of `path`'s type (.gif, .png, .apng, .webp)."""
        kind = {"GIF": _GifWriter, "PNG": _PngWriter, "WEBP": _WebpWriter}[ANIMATION_FORMATS[path.suffix.lower()]]
        return kind(path, metadata)

    def add(self, picture_bgr: np.ndarray, duration_s: float, alpha: np.ndarray | None = None) -> None:
        """The next picture, encoded and written now. OSError (a full disk), or ValueError/RuntimeError where the
        encoder refused it."""
        height, width = picture_bgr.shape[:2]
        if self._file is None:
            self.size, self.transparent = (width, height), alpha is not None
            self._file = open(self._spool, "w+b")
        elif (width, height) != self.size:
            raise ValueError(f"a picture of {width}x{height} in an animation of {self.size[0]}x{self.size[1]}")
        self._add(_pillow_picture(picture_bgr, alpha if self.transparent else None, self.transparent), duration_s)
        self.count += 1

    def finish(self) -> None:
        """The animation, complete, under its name (nothing where no picture came); the file beside it removed."""
        if self._file is None:
            return
        try:
            self._end()
            self._file.close()
            replace_atomically(self.path, lambda partial: _move_into(self._spool, partial))
        finally:
            self.discard()

    def discard(self) -> None:
        """The file beside the target removed (an error, or nothing to keep)."""
        if self._file is not None:
            self._file.close()
            self._file, self.count = None, 0  # a picture added after starts the animation afresh
        self._spool.unlink(missing_ok=True)

    def _write(self, data: bytes) -> None:
        self._file.write(data)

    def _add(self, picture: Any, duration_s: float) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        raise NotImplementedError


def _pillow_picture(picture_bgr: np.ndarray, alpha: np.ndarray | None, transparent: bool) -> Any:
    """Pillow's RGB picture, or RGBA for a transparent animation (opaque where this picture has no alpha)."""
    from PIL import Image

    if not transparent:
        return Image.fromarray(cv2.cvtColor(picture_bgr, cv2.COLOR_BGR2RGB))
    if alpha is None:
        alpha = np.full(picture_bgr.shape[:2], 255, np.uint8)
    return Image.fromarray(cv2.cvtColor(_with_alpha(picture_bgr, alpha), cv2.COLOR_BGRA2RGBA))


def _move_into(source: Path, target: Path) -> None:
    """`source`'s bytes as `target`: renamed, or copied into what is no plain file (a pipe)."""
    if target.exists() and not target.is_file():
        with open(source, "rb") as data, open(target, "wb") as out:
            shutil.copyfileobj(data, out)
    else:
        shutil.move(source, target)


def _encoded(picture: Any, pillow_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=pillow_format, **options)
    return buffer.getvalue()


class _GifWriter(AnimationWriter):
    """GIF89a: each picture in its own 256 colours (a local colour table), by the fast octree (Pillow's own choice,
    median cut, took 0.7 s a 480x320 picture, 150 times as long, for 2.6 levels off on average rather than 3.0)."""

    def _add(self, picture: Any, duration_s: float) -> None:
        if self.count == 0:
            self._wanted_cs, self._given_cs = 0.0, 0
            width, height = self.size
            self._write(b"GIF89a" + struct.pack("<HHBBB", width, height, 0x70, 0, 0))  # no global colours
            loop = _loop_option("GIF", self.plays)
            if loop:
                self._write(b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop["loop"]) + b"\x00")
        colours, bits, flags, data = _gif_picture(_gif_indexed(picture))
        # a transparent one is cleared before the next (disposal 2): that one's transparent pixels show the page
        packed = (2 << 2 | 1) if self.transparent else 1 << 2
        self._write(b"\x21\xf9\x04" + struct.pack("<BHB", packed, self._delay_cs(duration_s), GIF_CLEAR) + b"\x00")
        self._write(b"\x2c" + struct.pack("<HHHHB", 0, 0, *self.size, (flags & 0x40) | 0x80 | bits) + colours + data)

    def _delay_cs(self, duration_s: float) -> int:
        """The picture's delay (whole hundredths, at least GIF_SHORTEST_CS), the rounding carried on so that the
        whole lasts as long: a 60 fps WebP made into a GIF had 10 ms delays, shown as 100 ms."""
        self._wanted_cs += duration_s * 100
        hundredths = max(GIF_SHORTEST_CS, round(self._wanted_cs - self._given_cs))
        self._given_cs += hundredths
        return min(hundredths, 0xFFFF)

    def _end(self) -> None:
        self._write(b"\x3b")


def _gif_indexed(picture: Any) -> Any:
    """The picture in 256 colours; a transparent one's in 255, GIF_CLEAR where it is under half opaque."""
    from PIL import Image

    if picture.mode != "RGBA":
        return picture.quantize(256, method=Image.Quantize.FASTOCTREE)
    quantized = picture.convert("RGB").quantize(255, method=Image.Quantize.FASTOCTREE)
    indices = np.array(quantized)
    indices[np.asarray(picture.getchannel("A")) < 128] = GIF_CLEAR
    indexed = Image.fromarray(indices, "P")
    palette = quantized.getpalette() or []
    indexed.putpalette(palette[:3 * GIF_CLEAR] + [0] * (3 * 256 - len(palette[:3 * GIF_CLEAR])))
    return indexed


def _gif_picture(indexed: Any) -> tuple[bytes, int, int, bytes]:
    """A picture's colour table, its size bits, its descriptor's flags and its LZW data, from Pillow's GIF of it."""
    gif = _encoded(indexed, "GIF", optimize=False)  # its palette as it is: GIF_CLEAR stays the transparent index
    screen_flags, offset = gif[10], 13
    table = 3 << ((screen_flags & 7) + 1) if screen_flags & 0x80 else 0
    colours, bits, offset = gif[offset:offset + table], screen_flags & 7, offset + table
    while gif[offset] == 0x21:  # extensions (Pillow's own): skipped, sub-block by sub-block
        offset += 2
        while gif[offset]:
            offset += gif[offset] + 1
        offset += 1
    flags, offset = gif[offset + 9], offset + 10
    if flags & 0x80:  # a colour table of the picture's own
        table = 3 << ((flags & 7) + 1)
        colours, bits, offset = gif[offset:offset + table], flags & 7, offset + table
    end = offset + 1  # the LZW code size, then sub-blocks to the empty one
    while gif[end]:
        end += gif[end] + 1
    return colours, bits, flags, gif[offset:end + 1]


class _PngWriter(AnimationWriter):
    """APNG: the first picture's IDAT is the PNG's own picture; the number of pictures, which acTL (before it)
    says, is written in once the last has come."""

    def _add(self, picture: Any, duration_s: float) -> None:
        options = dict(ANIMATION_SAVE["PNG"])
        if self.count == 0 and self.icc_profile:
            options["icc_profile"] = self.icc_profile
        chunks = _png_chunks(_encoded(picture, "PNG", **options))
        if self.count == 0:
            self._sequence = 0
            self._write(PNG_SIGNATURE)
            for kind, data in chunks:
                if kind == b"IDAT":
                    break
                self._chunk(kind, data)  # IHDR, iCCP
            self._actl_at = self._file.tell()
            self._chunk(b"acTL", struct.pack(">II", 0, self.plays))
        delay = Fraction(max(1, round(duration_s * 1000)), 1000)
        if delay.numerator > 0xFFFF:
            delay = Fraction(min(round(delay), 0xFFFF))
        # blend_op SOURCE: a transparent pixel replaces what the last picture had there
        self._chunk(b"fcTL", struct.pack(">IIIIIHHBB", self._next(), *self.size, 0, 0, delay.numerator,
                                         delay.denominator, 0, 0))
        for kind, data in chunks:
            if kind == b"IDAT" and self.count == 0:
                self._chunk(b"IDAT", data)
            elif kind == b"IDAT":  # a later picture's: numbered, as every fcTL is
                self._chunk(b"fdAT", struct.pack(">I", self._next()) + data)

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence - 1

    def _chunk(self, kind: bytes, data: bytes) -> None:
        self._write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)))

    def _end(self) -> None:
        self._chunk(b"IEND", b"")
        self._file.seek(self._actl_at)
        self._chunk(b"acTL", struct.pack(">II", self.count, self.plays))


def _png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset < len(png):
        (length,), kind = struct.unpack(">I", png[offset:offset + 4]), png[offset + 4:offset + 8]
        chunks.append((kind, png[offset + 8:offset + 8 + length]))
        offset += length + 12
    return chunks


class _WebpWriter(AnimationWriter):
    """Animated WebP: each picture a keyframe (ANMF) of the whole canvas; the RIFF size written in at the end."""

    def _add(self, picture: Any, duration_s: float) -> None:
        if self.count == 0:
            width, height = self.size
            flags = 0x02 | (0x20 if self.icc_profile else 0) | (0x10 if self.transparent else 0)
            self._write(b"RIFF\0\0\0\0WEBP")
            self._chunk(b"VP8X", bytes([flags, 0, 0, 0]) + _u24(width - 1) + _u24(height - 1))
            if self.icc_profile:
                self._chunk(b"ICCP", self.icc_profile)
            self._chunk(b"ANIM", struct.pack("<IH", 0, _loop_option("WEBP", self.plays)["loop"]))
        frame = b"".join(_riff_chunk(kind, data) for kind, data in _webp_chunks(
            _encoded(picture, "WEBP", **ANIMATION_SAVE["WEBP"])) if kind in (b"ALPH", b"VP8 ", b"VP8L"))
        width, height = self.size
        milliseconds = min(max(1, round(duration_s * 1000)), 0xFFFFFF)
        # flags 2: not blended: a transparent pixel replaces what the last picture had there
        self._chunk(b"ANMF", _u24(0) + _u24(0) + _u24(width - 1) + _u24(height - 1) + _u24(milliseconds) +
                    b"\x02" + frame)

    def _chunk(self, kind: bytes, data: bytes) -> None:
        self._write(_riff_chunk(kind, data))

    def _end(self) -> None:
        size = self._file.tell() - 8
        self._file.seek(4)
        self._write(struct.pack("<I", size))


def _u24(value: int) -> bytes:
    return value.to_bytes(3, "little")


def _riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)


def _webp_chunks(webp: bytes) -> list[tuple[bytes, bytes]]:
    chunks, offset = [], 12
    while offset + 8 <= len(webp):
        kind, (length,) = webp[offset:offset + 4], struct.unpack("<I", webp[offset + 4:offset + 8])
        chunks.append((kind, webp[offset + 8:offset + 8 + length]))
        offset += 8 + length + (length & 1)
    return chunks


def write_animation(path: Path, pictures_bgr: list[np.ndarray], durations_s: list[float],
                    metadata: PhotoMetadata | None = None) -> bool:
    """Write an animated GIF, PNG (APNG) or WebP of these pictures, each for its duration (AnimationWriter). False
    where the encoder refused it."""
    writer = AnimationWriter.open(path, metadata)
    try:
        for picture, seconds in zip(pictures_bgr, durations_s):
            writer.add(picture, seconds)
    except (ValueError, RuntimeError):  # RuntimeError: an encoder's refusal of a picture
        writer.discard()
        return False
    except BaseException:
        writer.discard()
        raise
    writer.finish()
    return True


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
            with _pillow_open(self.path) as image:
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
        if start >= length:
            raise UserError(f"--start {format_time(start)} is past the end of {self.path.name} "
                            f"({format_time(length)} long); give an earlier start")
        if not start and duration is None:
            return
        self._part = _timeline(self._durations_ms, start, duration)
        self.frame_count = len(self._part)
        self.description += f", from {format_time(start)}" + (f" for {format_time(duration)}" if duration else "")

    def frames(self) -> Iterator[Any]:
        from stream.frame import Frame, now_ns

        with _pillow_open(self.path) as image:
            if self._transparent:
                _transparent_from_the_start(image)
            for index, (picture, start, seconds) in enumerate(self._part):
                image.seek(picture + self._first)
                extra: dict[str, Any] = {"duration_seconds": seconds}
                if self._transparent or _transparent(image):  # kept by an animation output; the picture filled
                    extra["alpha"] = np.asarray(image.convert("RGBA").getchannel("A"))
                yield Frame(index=index, capture_ns=now_ns(), image=_bgr(image), pts_seconds=start, extra=extra)

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
    end = None if duration is None else start + duration
    part, shown = [], 0.0
    for picture, milliseconds in enumerate(durations_ms):
        begins, shown = shown, shown + milliseconds / 1000.0
        if shown <= start:
            continue
        if end is not None and begins >= end and part:  # the first picture of a part always counts
            break
        since = max(begins, start)
        part.append((picture, since - start, (shown if end is None else min(shown, end)) - since))
    return part


def animation_source(path: Path) -> AnimationSource | None:
    """The source of an animated WebP (FFmpeg decodes none), or of a transparent GIF or APNG (FFmpeg's pictures
    showed what the transparent pixels hide, and an output could not keep the transparency); None for any other
    file, which FFmpeg reads."""
    metadata = animation_metadata(path)
    headers = _headers(path) if metadata is not None else None
    if headers is None or not (headers.format == "WEBP" or headers.transparent):
        return None
    return AnimationSource(path, metadata)
