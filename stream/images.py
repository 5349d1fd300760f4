"""Still images: reading them upright, and what each output format can hold."""
from __future__ import annotations

import ctypes
import functools
import io
import math
import os
import re
import sys
import tempfile
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from stream.cgroup import memory_room as cgroup_room  # a container's memory limit (its name kept for callers)
from stream.console import command_word, notify
from stream.errors import UserError
from stream.paths import replace_atomically

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
# HEIF photos (an iPhone's): read through pillow-heif. FFmpeg would take one for a video and give the first of the
# 512 px tiles an iPhone stores it in, as a one-frame NAME_portrait.mp4. Inputs only: no output is written so.
HEIF_SUFFIXES = {".heic", ".heif", ".hif"}
HEIF_FIX = "pip install 'depthcam[heif]' (pillow-heif, which depthcam then reads it with), or convert it to JPEG"
TRANSPARENT_BACKGROUND = (255, 255, 255)  # a transparent photo's render is laid on white where no alpha is kept
# A matted (premultiplied) picture told from a straight one (images._matte) by its antialiased edge: the pixels
# at most this far from an opaque one, of at least this alpha and at most 255 less it, at least so many of them,
# whose colour is at least this many levels (mean) from the opaque ones'
MATTE_EDGE_PX, MATTE_MIN_ALPHA, MATTE_EVIDENCE_PX, MATTE_MIN_LEVELS = 2, 16, 16, 8.0
MATTE_SAMPLES = 4096
# A matted picture's semi-transparent pixels lie within the bounds its matte allows (_within_matte), but for
# rounding and lossy coding: at most this share of them this many levels outside
MATTE_BOUND_LEVELS, MATTE_OUTSIDE_SHARE = 6.0, 0.01
ALPHA_KEPT = {".png", ".webp", ".tif", ".tiff"}  # outputs that hold it, which then take the input's transparency back
# Outputs that hold an animation, and the Pillow format of each; a GIF or APNG output is always written as one
ANIMATION_FORMATS = {".gif": "GIF", ".png": "PNG", ".apng": "PNG", ".webp": "WEBP"}
ANIMATION_ONLY = {".gif", ".apng"}  # outputs written as an animation whatever the input (a photo's: one picture)
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
# A photo's run (the picture, its depth at full size, the refined depth, the render, their float working copies)
# peaked at 0.76, 1.23 and 2.14 GB for 12, 24 and 48 MP photos, JPEG in, PNG out: 39 B a pixel over 0.3 GB. A 388 KB
# 20000x20000 PNG reached 16 GB, as this says; one near MAX_PIXELS would need 43 GB and die to the OOM killer unsaid.
RUN_BYTES_PER_PIXEL = 40
RUN_BASE_BYTES = 300 << 20


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
def opencv_quiet(level: int = cv2.utils.logging.LOG_LEVEL_SILENT) -> Iterator[None]:
    """OpenCV's own log lines off for a call that may fail: they would bury the one line that says why. `level`:
    those up to it kept (for decoder_messages to take)."""
    logging = cv2.utils.logging
    previous = logging.getLogLevel()
    logging.setLogLevel(level)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


class WhileReading:
    """A process-wide setting held while any thread reads a picture here: the first reader sets it, the last puts it
    back (_set, _put_back). Each reader saving and restoring it for itself let one thread's restore land inside
    another's read and left the other's setting in place for good."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers = 0

    @contextmanager
    def held(self) -> Iterator[None]:
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
        raise NotImplementedError

    def _put_back(self) -> None:
        raise NotImplementedError


class _PixelLimit(WhileReading):
    """Pillow's pixel limit at OpenCV's (MAX_PIXELS), and its decompression-bomb warning silenced (OpenCV's pixel
    limit speaks first), while any thread reads a picture here. Both are process-wide globals, read by Pillow as it
    opens, seeks and loads: the first reader sets them and the last puts them back. Each reader saving and restoring
    them for itself let one thread's restore land inside another's read (a 200-megapixel photo refused under the
    limit put back) and left the other's settings in place for good."""

    def __init__(self) -> None:
        super().__init__()
        self._limit: int | None = None
        self._filters: list[Any] = []

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
def pillow_open(path: Path) -> Iterator[Any]:
    """The picture as Pillow opens it (lazily: headers first), or None where Pillow cannot read it. Pillow's pixel
    limit is OpenCV's (MAX_PIXELS) meanwhile: its own (179 MP) refused a phone's 200-megapixel photo, which OpenCV
    reads, and the output lost the photo's colour profile and EXIF (see _PixelLimit)."""
    from PIL import Image, UnidentifiedImageError

    heif_readable()
    with _PIXEL_LIMIT.held():
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
        with pillow_open(path) as image:
            return image is not None and (transparent(image) or _cmyk_profile(image) is not None)
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


def transparent(image: Any) -> bool:
    return image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info


# OpenCV's own file functions take the name as UTF-8: a name that is not (a byte such as 0xff in a Linux file
# name, which Python carries as a surrogate) crashed them (SIGSEGV). So files are read and written here, and
# OpenCV only decodes and encodes bytes (imread also refused TIFFs turned by their orientation tag, 5-8).


def read_image(path: Path) -> np.ndarray:
    """8-bit BGR, turned as its EXIF or TIFF orientation says (as viewers show it); a transparent picture's hidden
    pixels filled from its visible ones (filled_behind; OpenCV drops the alpha and shows what the transparent pixels
    hide: often black, or junk). A picture the decoder found damaged or cut short is read as far as it goes, with a
    warning; one whose run would not fit in memory is refused before it is decoded."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise UserError(f"cannot read image {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() in HEIF_SUFFIXES and not heif_readable():
        raise UserError(f"cannot read HEIF photo {path}: {HEIF_FIX}")
    refuse_beyond_memory(path)
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
    # OpenCV logs libtiff's errors as its warnings (nothing where silent): a damaged TIFF was read without a word
    orientation = None if tiff else _orientation(path)
    with opencv_quiet(cv2.utils.logging.LOG_LEVEL_WARNING if tiff else cv2.utils.logging.LOG_LEVEL_SILENT), \
            decoder_messages() as said:
        try:
            flags = cv2.IMREAD_COLOR | (0 if orientation is None else cv2.IMREAD_IGNORE_ORIENTATION)
            image = cv2.imdecode(data, flags) if data.size else None
        except cv2.error as exc:
            refuse_if_too_large(path, exc)
            image = None
    if image is not None and orientation is not None:
        image = turned_upright(image, orientation)
    image = _read_with_pillow(path) if image is None else image
    if image is not None:
        _warn_if_damaged(path, said)
    if image is None:
        samples = tiff_samples(path) if tiff else None
        if samples:
            raise UserError(f"cannot read image {path}: a TIFF of {samples} samples that could not be decoded "
                            f"(damaged, or compressed in a way depthcam cannot read); save it again as a 16-bit TIFF "
                            f"or a PNG")
        raise UserError(f"cannot read image {path}: {_unreadable(path, data[:512].tobytes())}")
    return image


def is_tiff(path: Path) -> bool:
    """Whether `path` begins as a TIFF does (whatever its name); False where it cannot be read."""
    try:
        with path.open("rb") as file:
            return file.read(4) in TIFF_MAGIC
    except OSError:
        return False


# A container's first bytes, and what it is: a video with a photo's name (a phone's export, a renamed download)
VIDEO_SIGNATURES = ((4, b"ftyp", "a video (MP4/MOV)", ".mp4"),
                    (0, b"\x1a\x45\xdf\xa3", "a video (Matroska/WebM)", ".mkv"), (8, b"AVI ", "a video (AVI)", ".avi"))
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
PICTURE_BRANDS = (*HEIF_BRANDS, b"avif", b"avis")  # an MP4-like box structure that holds a photo


# What libpng and libjpeg say of a damaged picture that they (or Pillow after them) still read: it is cut short, or
# damaged within; their other remarks (an sRGB profile libpng calls incorrect, an unknown JFIF revision, "Invalid SOS
# parameters" of some cameras' own files) are not said
_CUT_SHORT = re.compile(r"Not enough image data|input buffer is incomplete|Premature end of JPEG file|Read Error|"
                        r"Read error on strip|Read error on tile")
_DAMAGED = re.compile(r"libpng error|CRC error|Corrupt JPEG data|libtiff: ")
# How OpenCV logs libtiff's error ("[ERROR:0@0.02] global grfmt_tiff.cpp:116 TIFF_Error Using code not yet in
# table"), and its warning of a JPEG-compressed TIFF's damage: said as libtiff's own words
_OPENCV_TIFF = re.compile(r"^\[[^]]*\] global grfmt_tiff\.cpp:\d+ TIFF_(Error |Warning (?=JPEGLib: Corrupt))")
_STDERR_LOCK = threading.Lock()  # one capture of the process's fd 2 at a time


@contextmanager
def decoder_messages() -> Iterator[list[str]]:
    """The lines C decoders (libpng, libjpeg, under OpenCV) write to stderr meanwhile, taken off the screen, where
    they came without depthcam's prefix ("libpng error: IDAT: CRC error") beside its own line. The list is filled as
    the block ends. Another thread's depthcam lines written meanwhile go on to stderr."""
    said: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as capture:
        saved = _redirect_stderr(capture.fileno())
        try:
            yield said
        finally:
            if saved is not None:
                _put_back_stderr(saved)
                capture.seek(0)
                said.extend(_decoders_lines(capture.read().decode("utf-8", "replace")))


def _redirect_stderr(target: int) -> int | None:
    """fd 2 pointed at `target`; its former self (a duplicate) to put back, or None where there is no fd 2."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no stderr (a GUI launch), or closed
        return None
    os.dup2(target, 2)
    return saved


def _put_back_stderr(saved: int) -> None:
    try:
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    os.dup2(saved, 2)
    os.close(saved)


def _decoders_lines(text: str) -> list[str]:
    """The decoders' own lines of what was written to stderr; depthcam's (another thread's) are written again."""
    lines = [_OPENCV_TIFF.sub("libtiff: ", line.strip()) for line in text.splitlines() if line.strip()]
    ours = [line for line in lines if line.startswith("depthcam:")]
    if ours:
        os.write(2, ("\n".join(ours) + "\n").encode("utf-8", "replace"))
    return [line for line in lines if not line.startswith("depthcam:")]


def _warn_if_damaged(path: Path, said: list[str]) -> None:
    """A photo read although its decoder found it damaged or cut short is said once, as a video's damage is."""
    short = next((line for line in said if _CUT_SHORT.search(line)), None)
    damaged = short or next((line for line in said if _DAMAGED.search(line)), None)
    if damaged is None:
        return
    if short is not None:
        notify(f"{path.name} is cut short ({damaged}): the picture past where it ends is black or grey; "
               f"processed as read (copy it again for the whole picture)")
    else:
        notify(f"{path.name} is damaged ({damaged}): part of the picture may be smeared or grey; processed as read "
               f"(copy it again if it shows)")


def memory_available() -> int | None:
    """Bytes the system can give a run now: MemAvailable and free swap (Linux's /proc/meminfo), what Windows can
    still commit; None elsewhere (macOS), where the size of a photo's run is not checked."""
    if sys.platform == "win32":
        return windows_commit_room()
    try:
        info = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    fields = {name.strip(): value.split() for name, _, value in (line.partition(":") for line in info.splitlines())}
    try:
        free = (int(fields["MemAvailable"][0]) + int(fields.get("SwapFree", ["0"])[0])) * 1024
    except (KeyError, ValueError, IndexError):
        return None
    room = cgroup_room()
    return free if room is None else min(free, room)


class _MemoryStatus(ctypes.Structure):
    """MEMORYSTATUSEX, as GlobalMemoryStatusEx fills it."""
    _fields_ = [("dwLength", ctypes.c_uint32), ("dwMemoryLoad", ctypes.c_uint32),  # DWORDs
                *((name, ctypes.c_ulonglong) for name in ("ullTotalPhys", "ullAvailPhys", "ullTotalPageFile",
                                                          "ullAvailPageFile", "ullTotalVirtual", "ullAvailVirtual",
                                                          "ullAvailExtendedVirtual"))]


def windows_commit_room() -> int | None:
    """Bytes Windows can still commit (its commit limit, RAM and page file, less what is committed): where an
    allocation fails there. A photo's run beyond it ended in MemoryError, or paging for minutes first, after the
    decode; Windows has no /proc/meminfo, so it was not checked. None where it cannot be asked."""
    status = _MemoryStatus()
    status.dwLength = ctypes.sizeof(_MemoryStatus)
    try:
        ok = ctypes.WinDLL("kernel32").GlobalMemoryStatusEx(ctypes.byref(status))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None
    return int(status.ullAvailPageFile) if ok else None


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as stored, from the picture's headers alone, before any decoding (a check on its size need not
    wait for a 900-megapixel decode); None where Pillow cannot read them."""
    from PIL import Image

    try:
        with pillow_open(path) as image:
            return None if image is None else image.size
    except Image.DecompressionBombError:  # over MAX_PIXELS: refused as OpenCV refuses it
        raise UserError(f"image {path} is larger than depthcam reads (over {MAX_PIXELS / 1e6:.0f} "
                        f"megapixels); downscale it first") from None


def upright_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as read_image gives the picture, turned by its orientation tag, from its headers alone (a
    check of the run against it need not wait for a 48-megapixel decode); None where they cannot be read. A HEIF's
    is its shown size already (pillow-heif turns it and drops the tag); a TIFF's, by tifffile (Pillow gives some
    TIFFs turned already, others as stored)."""
    from PIL import Image

    try:
        with pillow_open(path) as image:
            if image is None or image.format == "TIFF":  # a float TIFF Pillow cannot open: tifffile's headers
                return _upright_tiff_size(path)
            width, height = image.size
            if image.format == "HEIF":
                return width, height
            try:
                orientation = image.getexif().get(EXIF_ORIENTATION, 1)
            except Exception:  # noqa: BLE001 (EXIF beyond reading: as stored, as _upright reads it)
                orientation = 1
    except Image.DecompressionBombError:  # read_image says it is too large
        return None
    return (height, width) if orientation in TURNED_ORIENTATIONS else (width, height)


TURNED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF's and TIFF's orientations that swap width and height


def _upright_tiff_size(path: Path) -> tuple[int, int] | None:
    from stream.deep_tiff import TIFF_ORIENTATION, _tiff_tag, tiff_size

    size = tiff_size(path)
    if size is None or 0 in size:
        return None
    return size[::-1] if _tiff_tag(path, TIFF_ORIENTATION) in TURNED_ORIENTATIONS else size


def refuse_beyond_memory(path: Path) -> None:
    """A photo whose run would need more memory than is free is refused before it is decoded, with a size that fits
    (its run would grow until the system killed it, with no word said)."""
    size = header_size(path)
    available = memory_available() if size is not None else None
    if size is None or available is None:
        return
    width, height = size
    need = width * height * RUN_BYTES_PER_PIXEL + RUN_BASE_BYTES
    if need <= available:
        return
    scale = 0.9 * math.sqrt(max(available - RUN_BASE_BYTES, 0) / RUN_BYTES_PER_PIXEL / (width * height))
    fits = f"{max(1, int(width * scale))}x{max(1, int(height * scale))}"
    smaller = command_word(f"{path.stem}_small{path.suffix}")
    raise UserError(f"image {path} is {width}x{height} ({width * height / 1e6:.0f} megapixels): its run needs about "
                    f"{need / 1e9:.1f} GB of memory and {available / 1e9:.1f} GB is free; downscale it first, to "
                    f"{fits} or less (e.g. magick {command_word(path.name)} -resize {fits} {smaller})")


# A picture's first bytes and its format: a file that begins so yet neither decoder reads is that picture, damaged
PICTURE_SIGNATURES = ((0, b"\x89PNG\r\n\x1a\n", "PNG"), (0, b"\xff\xd8\xff", "JPEG"), (8, b"WEBP", "WebP"),
                      (0, b"GIF8", "GIF"))


def _signature_format(path: Path, head: bytes) -> str | None:
    """The picture format `head` (a file's first bytes) begins, where a damaged header leaves only those to go by."""
    if head[4:8] == b"ftyp" and head[8:12] in PICTURE_BRANDS:
        return "AVIF" if head[8:12] in (b"avif", b"avis") else "HEIF"
    for offset, signature, name in PICTURE_SIGNATURES:
        if head[offset:offset + len(signature)] == signature and (name != "WebP" or head[:4] == b"RIFF"):
            return name
    return "BMP" if head[:2] == b"BM" and path.suffix.lower() == ".bmp" else None


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
    kind = _signature_format(path, head)
    if kind is not None:
        return (f"it begins as a {kind} picture, but its headers are damaged or it is cut short (an unfinished "
                f"download or copy?); copy it again")
    return "not an image, or corrupt (give a PNG/JPEG file)"


def _damaged_picture(path: Path) -> str | None:
    """"the JPEG picture (WxH)" where Pillow read its headers (so it is one) but neither decoder its pixels; a TIFF's
    headers, where Pillow cannot read them, as tifffile does (a damaged tag: "the TIFF picture (320x0)")."""
    from PIL import Image

    try:
        with pillow_open(path) as image:
            if image is not None:
                return f"the {image.format} picture ({image.width}x{image.height})"
    except Image.DecompressionBombError:
        return None
    from stream.deep_tiff import tiff_size

    with open(path, "rb") as file:
        size = tiff_size(path) if file.read(4) in TIFF_MAGIC else None
    return None if size is None else f"the TIFF picture ({size[0]}x{size[1]})"


def refuse_if_too_large(path: Path, exc: cv2.error) -> None:
    if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
        raise UserError(f"image {path} is larger than depthcam reads (over {MAX_PIXELS / 1e6:.0f} "
                        f"megapixels); downscale it first") from None


def _read_with_pillow(path: Path) -> np.ndarray | None:
    from PIL import Image

    try:
        with pillow_open(path) as opened:
            if opened is None:
                return None
            image = _upright(opened)
            if image.mode.startswith("I"):  # 16- or 32-bit grey: to 8 bits as OpenCV does (/257)
                grey = np.clip(np.asarray(image, np.float64) / 257.0 + 0.5, 0, 255).astype(np.uint8)
                return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
            return bgr(image)
    except Image.DecompressionBombError:
        raise UserError(f"image {path} is larger than depthcam reads; downscale it first") from None
    except (OSError, ValueError, SyntaxError, EOFError):  # a picture that breaks off while decoding
        return None


def bgr(image: Any) -> np.ndarray:
    """An opened colour picture as 8-bit BGR: CMYK through its profile, a transparent one's hidden pixels filled
    from its visible ones (filled_behind)."""
    if image.mode == "CMYK":
        image = _cmyk_to_rgb(image)
    if transparent(image):
        rgba = np.asarray(image.convert("RGBA"))
        return filled_behind(cv2.cvtColor(rgba[..., :3], cv2.COLOR_RGB2BGR), rgba[..., 3])
    return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)


def filled_behind(picture_bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A transparent picture as the network and the render see it: each visible pixel's own colour (straight, as
    stored; a matted picture's edges made straight: _unmatted), each wholly transparent one that of the nearest
    visible pixel. Laid on white, the blur gathered the white into the subject's edge: a light rim 5-10 px wide,
    plain on a dark page. The output takes the alpha back (with_alpha) or lays the render on white (on_page). All
    transparent: white, as a page shows it."""
    hidden = alpha == 0
    if not hidden.any():
        return picture_bgr
    if hidden.all():
        return np.full_like(picture_bgr, TRANSPARENT_BACKGROUND[0])
    picture_bgr, hidden = _unmatted(picture_bgr, alpha, hidden)
    # each hidden pixel's label is that of its nearest visible one; visible pixels are labelled in scan order
    _, labels = cv2.distanceTransformWithLabels(hidden.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    nearest = np.flatnonzero(~hidden.ravel()).astype(np.int32)[labels.ravel() - 1]
    # gathered as one 32-bit word a pixel: 2-3 times as fast as a boolean mask of 3-byte rows
    words = cv2.cvtColor(picture_bgr, cv2.COLOR_BGR2BGRA).view(np.uint32).ravel()
    return cv2.cvtColor(words[nearest].view(np.uint8).reshape(*picture_bgr.shape[:2], 4), cv2.COLOR_BGRA2BGR)


def _unmatted(picture_bgr: np.ndarray, alpha: np.ndarray, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The picture's straight colours where its edges are matted (premultiplied), and the pixels to fill: drawn over
    a colour M, the one its hidden pixels hold (black, or After Effects' composition colour), each semi-transparent
    pixel is a*F + (1-a)*M, not its own colour F. Kept as given, the edges' M (a QuickTime Animation lower third's
    blue) came into the blur at full weight, and the hidden pixels took the faintest edge's, nearly M: the opaque text
    was tinted by up to 60 levels. Made straight, (C - (1-a)*M) / a; the faintest (alpha under MATTE_MIN_ALPHA, where
    a level of C is 16 of F or more) are filled as the hidden ones are. A straight picture is left as it is."""
    x, y, width, height = cv2.boundingRect(cv2.inRange(alpha, 1, 254))  # the edges: a lower third's, 1/50th of it
    if not width:
        return picture_bgr, hidden
    margin = MATTE_EDGE_PX + 1  # the opaque pixels beside the edge, and the hidden ones
    box = np.s_[max(0, y - margin):y + height + margin, max(0, x - margin):x + width + margin]
    part, shade = picture_bgr[box], alpha[box]
    semi = (shade > 0) & (shade < 255)
    matte = _matte(part, shade, hidden[box], semi)
    if matte is None:
        return picture_bgr, hidden
    faint, kept = semi & (shade < MATTE_MIN_ALPHA), semi & (shade >= MATTE_MIN_ALPHA)
    a = shade[kept].astype(np.float32)[:, None] / 255
    out, fill = picture_bgr.copy(), hidden.copy()
    out[box][kept] = np.clip((part[kept] - (1 - a) * matte) / a + 0.5, 0, 255).astype(np.uint8)
    fill[box] |= faint
    return out, fill


def _matte(picture_bgr: np.ndarray, alpha: np.ndarray, hidden: np.ndarray, semi: np.ndarray) -> np.ndarray | None:
    """The colour a picture's edges are matted with, None where they are straight or cannot be told. As a compositor
    guesses a footage's alpha: the antialiased edge next to the opaque pixels (colour F, their local mean) is matted
    where a*F + (1-a)*M fits it far better than F itself; M the colour most hidden pixels beside visible ones hold.
    Told from at most MATTE_SAMPLES pixels of each (a photo's cut-out has 10 times as many)."""
    opaque = alpha == 255
    reach = np.ones((2 * MATTE_EDGE_PX + 1,) * 2, np.uint8)
    edge = semi & (cv2.dilate(opaque.view(np.uint8), reach) > 0) & (alpha >= MATTE_MIN_ALPHA) & \
        (alpha <= 255 - MATTE_MIN_ALPHA)
    border = hidden & (cv2.dilate((~hidden).view(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    ys, xs = np.nonzero(edge)
    if len(ys) < MATTE_EVIDENCE_PX or not border.any():
        return None
    step = -(-len(ys) // MATTE_SAMPLES)
    ys, xs = ys[::step], xs[::step]
    inner, count = np.zeros((len(ys), 3), np.float32), np.zeros((len(ys), 1), np.float32)
    for dy in range(-MATTE_EDGE_PX, MATTE_EDGE_PX + 1):  # the mean of the opaque pixels around each
        for dx in range(-MATTE_EDGE_PX, MATTE_EDGE_PX + 1):
            y, x = np.clip(ys + dy, 0, alpha.shape[0] - 1), np.clip(xs + dx, 0, alpha.shape[1] - 1)
            solid = opaque[y, x, None]
            inner += picture_bgr[y, x] * solid
            count += solid
    inner /= count
    colour, a = picture_bgr[ys, xs].astype(np.float32), alpha[ys, xs, None].astype(np.float32) / 255
    behind = picture_bgr[border]
    matte = np.median(behind[::-(-len(behind) // MATTE_SAMPLES)], axis=0).astype(np.float32)
    straight = np.abs(colour - inner).mean()
    matted = np.abs(colour - a * inner - (1 - a) * matte).mean()
    if straight < MATTE_MIN_LEVELS or matted > straight / 2:
        return None
    return matte if _within_matte(picture_bgr, alpha, semi, matte) else None


def _within_matte(picture_bgr: np.ndarray, alpha: np.ndarray, semi: np.ndarray, matte: np.ndarray) -> bool:
    """Whether the semi-transparent pixels can be matted with `matte`: a*F + (1-a)*M lies between (1-a)*M and
    a*255 + (1-a)*M for any colour F. A straight photo's soft black drop shadow fits the edge test beside its
    subject, but its subject's bright antialiased rim lies far above a*255 (5 % of the pixels, none of a matted
    picture's): taken as matted, that rim was divided by its alpha and came out near white."""
    ys, xs = np.nonzero(semi & (alpha >= MATTE_MIN_ALPHA))
    if not len(ys):
        return True
    step = -(-len(ys) // MATTE_SAMPLES)
    colour = picture_bgr[ys[::step], xs[::step]].astype(np.float32)
    a = alpha[ys[::step], xs[::step], None].astype(np.float32) / 255
    low, high = (1 - a) * matte - MATTE_BOUND_LEVELS, a * 255 + (1 - a) * matte + MATTE_BOUND_LEVELS
    return float(((colour < low) | (colour > high)).any(axis=1).mean()) <= MATTE_OUTSIDE_SHARE


def on_page(picture_bgr: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """A render of a transparent picture laid on white, as a page shows it: for an output that holds no alpha
    (JPEG, a video, the window), where the hidden pixels' fill (filled_behind) would show."""
    if alpha is None or alpha.shape != picture_bgr.shape[:2] or alpha.min() == 255:
        return picture_bgr
    return on_white(picture_bgr, alpha)


def on_white(picture_bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A picture of straight (not premultiplied) alpha laid on white (TRANSPARENT_BACKGROUND), in 8-bit operations:
    255 - (255 - colour) * alpha / 255, rounded: the same as float arithmetic for every colour and alpha (no ties),
    which took 48-150 ms a 1080p picture here (a video's every picture: stream.sources), this ~10."""
    opacity = cv2.merge([alpha, alpha, alpha])
    return cv2.bitwise_not(cv2.multiply(cv2.bitwise_not(picture_bgr), opacity, scale=1 / 255))


# How to bring a stored picture upright, by its orientation tag, in OpenCV's operations (UPRIGHT_TRANSPOSE's)
_CV_ROTATE = {3: cv2.ROTATE_180, 6: cv2.ROTATE_90_CLOCKWISE, 8: cv2.ROTATE_90_COUNTERCLOCKWISE}
_CV_FLIP = {2: 1, 4: 0}  # cv2.flip's codes: about the vertical axis, the horizontal one


def _orientation(path: Path) -> int | None:
    """The orientation tag as Pillow reads it, which the output's EXIF (set upright), its size checks (upright_size)
    and Pillow's own decoding go by; None where Pillow cannot read the file (OpenCV's reading then stands) or it is
    a HEIF (pillow-heif gives it upright). OpenCV read it otherwise: an AVIF's rotation (irot, where avifenc and
    Pillow store a phone's orientation) not at all, a PNG's EXIF under an "Exif" header (ImageMagick's) or in a
    text chunk not; the output came out sideways, its tag set upright."""
    try:
        with pillow_open(path) as image:
            if image is None or image.format == "HEIF":
                return None
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 (EXIF beyond reading, a picture past the pixel limit: OpenCV's reading)
        return None
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def turned_upright(picture: np.ndarray, orientation: int) -> np.ndarray:
    """A picture as stored, turned as its orientation tag (1-8) says: as _upright turns Pillow's."""
    if orientation in _CV_ROTATE:
        return cv2.rotate(picture, _CV_ROTATE[orientation])
    if orientation in _CV_FLIP:
        return cv2.flip(picture, _CV_FLIP[orientation])
    if orientation == 5:
        return cv2.transpose(picture)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(picture), cv2.ROTATE_180)
    return picture


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
        with pillow_open(path) as image:
            if image is None:
                return PhotoMetadata()
            alpha = _opacity(image)  # before _upright_exif, which sets the orientation in Pillow's own EXIF to 1
            return PhotoMetadata(rgb_profile(image), _upright_exif(image), alpha)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return PhotoMetadata()


def rgb_profile(image: Any) -> bytes | None:
    """The picture's colour profile, where its output keeps it: a grey or CMYK picture is written as RGB, which its
    profile does not describe."""
    icc = image.info.get("icc_profile") or None
    return None if icc is None or icc[16:20] in (b"GRAY", b"CMYK") else icc  # its data colour space, from its header


def _opacity(image: Any) -> np.ndarray | None:
    """A transparent photo's alpha, upright as its pixels are read; None where every pixel is opaque."""
    if not transparent(image):
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
        picture_bgr = with_alpha(picture_bgr, alpha) if suffix in ALPHA_KEPT else on_page(picture_bgr, alpha)
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


def with_alpha(picture_bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
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
