"""Still images: which inputs are photos, reading them upright, and what each output format can hold."""
from __future__ import annotations

import functools
import io
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
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
TRANSPARENT_BACKGROUND = (255, 255, 255)  # a transparent photo is laid on white, as a page shows it
# Formats OpenCV also reads as one picture that may hold many: read as video (every frame).
SEQUENCE_SUFFIXES = {".gif", ".mjpeg", ".mjpg", ".apng"}
# The largest side each encoder takes (JPEG's 16-bit header fields, WebP's 14-bit ones).
IMAGE_MAX_SIDE = {".jpg": 65535, ".jpeg": 65535, ".webp": 16383}
EXIF_ORIENTATION = 0x0112
# How Pillow writes a photo that keeps its colour profile and EXIF, as close as may be to OpenCV's
# defaults, which write the others (JPEG quality 95; PNG's fast compression; TIFF with LZW).
PILLOW_SAVE = {".jpg": {"quality": 95}, ".jpeg": {"quality": 95}, ".png": {"compress_level": 1},
               ".webp": {"quality": 95}, ".tif": {"compression": "tiff_lzw"}, ".tiff": {"compression": "tiff_lzw"}}
PILLOW_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
EXIF_KEPT = {".jpg", ".jpeg", ".png", ".webp"}  # Pillow's TIFF writer takes the profile, not EXIF
TIFF_MAGIC = {b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"}  # little- and big-endian, classic and BigTIFF


@dataclass(frozen=True)
class PhotoMetadata:
    """What a photo's output keeps of it: the colour profile (an iPhone's Display P3, a camera's Adobe RGB:
    without it, viewers take the numbers for sRGB and the colours go dull) and EXIF (camera, date, place),
    its orientation set to upright, as the pixels are written."""

    icc_profile: bytes | None = None
    exif: bytes | None = None

    def __bool__(self) -> bool:
        return bool(self.icc_profile or self.exif)


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


@contextmanager
def _pillow_open(path: Path) -> Iterator[Any]:
    """The picture as Pillow opens it (lazily: headers first), or None where Pillow cannot read it. Its
    decompression-bomb warning is silenced (OpenCV's pixel limit speaks first); the error stays."""
    from PIL import Image, UnidentifiedImageError

    heif_readable()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", "Truncated File Read")  # a TIFF cut short: the error says so, once
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


def _has_alpha(path: Path) -> bool:
    """Whether the picture has transparency (RGBA, grey with alpha, a palette or tRNS colour), from its headers."""
    from PIL import Image

    try:
        with _pillow_open(path) as image:
            return image is not None and _transparent(image)
    except Image.DecompressionBombError:  # beyond Pillow's pixel limit: OpenCV reads it, or says it is too large
        return False


def _transparent(image: Any) -> bool:
    return image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info


# OpenCV's own file functions take the name as UTF-8: a name that is not (a byte such as 0xff in a Linux file
# name, which Python carries as a surrogate) crashed them (SIGSEGV). So files are read and written here, and
# OpenCV only decodes and encodes bytes (imread also refused TIFFs turned by their orientation tag, 5-8).


def is_still_image(path: Path) -> bool:
    """A photo, by its name, or by its content where the name is none of the usual ones (.jfif, .ppm, none):
    one picture that Pillow recognises (an animated WebP or PNG is read as a video)."""
    path = path.expanduser()
    suffix = path.suffix.lower()
    if suffix == ".png" and picture_count(path) > 1:
        return False  # an animated PNG (APNG), which FFmpeg decodes as the video it is
    if suffix in IMAGE_SUFFIXES or suffix in HEIF_SUFFIXES:
        return True
    try:
        if suffix in SEQUENCE_SUFFIXES or not path.is_file():
            return False
    except OSError:  # a name too long: opening the input says so
        return False
    return picture_count(path) == 1


def picture_count(path: Path) -> int:
    """How many pictures the file holds by its headers (an animated PNG or WebP more than one); 0 where Pillow
    cannot read it."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a guess at what the file is stays silent
            with _pillow_open(path) as image:
                return int(getattr(image, "n_frames", 1)) if image is not None else 0
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return 0


def read_image(path: Path) -> np.ndarray:
    """8-bit BGR, turned as its EXIF or TIFF orientation says (as viewers show it); a transparent picture laid
    on white (OpenCV drops the alpha and shows what the transparent pixels hide: often black, or junk)."""
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
    if _has_alpha(path):
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
        raise UserError(f"cannot read image {path}: not an image, or corrupt (give a PNG/JPEG file)")
    return image


def refuse_if_too_large(path: Path, exc: cv2.error) -> None:
    if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
        raise UserError(f"image {path} is larger than depthcam reads (over {(1 << 30) / 1e6:.0f} "
                        f"megapixels); downscale it first") from None




def _read_with_pillow(path: Path) -> np.ndarray | None:
    from PIL import Image, ImageOps

    try:
        with _pillow_open(path) as opened:
            if opened is None:
                return None
            image = ImageOps.exif_transpose(opened)
            if image.mode.startswith("I"):  # 16- or 32-bit grey: to 8 bits as OpenCV does (/257)
                grey = np.clip(np.asarray(image, np.float64) / 257.0 + 0.5, 0, 255).astype(np.uint8)
                return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
            if _transparent(image):
                background = Image.new("RGBA", image.size, (*TRANSPARENT_BACKGROUND, 255))
                image = Image.alpha_composite(background, image.convert("RGBA"))
            return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    except Image.DecompressionBombError:
        raise UserError(f"image {path} is larger than depthcam reads; downscale it first") from None
    except (OSError, ValueError, SyntaxError, EOFError):  # a picture that breaks off while decoding
        return None


def check_image_size(flag: str, target: str, width: int, height: int) -> None:
    """Before the run: an output picture larger than its format holds is refused with the formats that hold it."""
    suffix = Path(target).suffix.lower()
    limit = IMAGE_MAX_SIDE.get(suffix)
    if limit is not None and max(width, height) > limit:
        raise UserError(f"{flag} {target}: {suffix} images are at most {limit} px a side and this one is "
                        f"{width}x{height}; use .png or .tif")


def read_metadata(path: Path) -> PhotoMetadata:
    """The colour profile and EXIF of a photo (headers only); none where Pillow cannot read them."""
    from PIL import Image

    try:
        with _pillow_open(path) as image:
            if image is None:
                return PhotoMetadata()
            icc = image.info.get("icc_profile") or None
            if icc is not None and icc[16:20] in (b"GRAY", b"CMYK"):  # its data colour space, from its header
                icc = None  # a grey or CMYK photo is written as RGB, which its profile does not describe
            exif = image.getexif()
            if EXIF_ORIENTATION in exif:
                exif[EXIF_ORIENTATION] = 1  # the pixels are read upright
            return PhotoMetadata(icc, exif.tobytes() if len(exif) else None)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return PhotoMetadata()


def write_image(path: Path, picture_bgr: np.ndarray, metadata: PhotoMetadata | None = None) -> bool:
    """Write a photo; with the input's colour profile and EXIF where the format holds them. False where
    the encoder refused it."""
    suffix = path.suffix.lower()
    encoded = _encode_with_pillow(picture_bgr, suffix, metadata) if metadata and suffix in PILLOW_SAVE else None
    if encoded is None:
        with opencv_quiet():
            ok, buffer = cv2.imencode(suffix, picture_bgr)
        if not ok:
            return False
        encoded = buffer.tobytes()
    # beside the target, then renamed over it: a full disk leaves the file that was there, not half a picture
    replace_atomically(path, lambda partial: partial.write_bytes(encoded))
    return True


def _encode_with_pillow(picture_bgr: np.ndarray, suffix: str, metadata: PhotoMetadata) -> bytes | None:
    """The photo with the colour profile and EXIF; None where Pillow refused them (EXIF over JPEG's 64 KB:
    then the picture without them beats none)."""
    from PIL import Image

    options: dict[str, Any] = dict(PILLOW_SAVE[suffix])
    if metadata.icc_profile:
        options["icc_profile"] = metadata.icc_profile
    if metadata.exif and suffix in EXIF_KEPT:
        options["exif"] = metadata.exif
    buffer = io.BytesIO()
    try:
        Image.fromarray(cv2.cvtColor(picture_bgr, cv2.COLOR_BGR2RGB)).save(buffer, format=PILLOW_FORMATS[suffix],
                                                                           **options)
    except (OSError, ValueError):
        return None
    return buffer.getvalue()
