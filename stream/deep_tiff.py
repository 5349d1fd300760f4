"""TIFFs of float, signed or 32-bit samples (HDR merges, stacking tools, scientific cameras) read as the 8-bit
BGR photo the pipeline takes: OpenCV's 8-bit read refused float colour, turned float grey black and saturated
32-bit integers. 8- and 16-bit unsigned TIFFs go the usual way (stream/images.py)."""
from __future__ import annotations

import itertools
import logging
import math
import struct
from pathlib import Path
from typing import Any, Callable, TypeVar

import cv2
import numpy as np

from stream.images import WhileReading, opencv_quiet, refuse_if_too_large

TIFF_ORIENTATION, TIFF_ICC_PROFILE = 274, 34675


def read_deep_tiff(path: Path, data: np.ndarray) -> np.ndarray | None:
    """A TIFF of float, signed or 32-bit samples as 8-bit BGR (OpenCV's 8-bit read refused float colour, turned
    float grey black and saturated 32-bit integers). None for 8- and 16-bit unsigned samples, which the usual
    path reads, and where neither OpenCV nor tifffile decodes the file."""
    header = _sample_format(path)
    if header is not None and header[1] == 1 and header[0] <= 16:  # unsigned 8/16-bit: not decoded twice
        return None
    with opencv_quiet():
        try:
            raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # libtiff applies the orientation tag here too
        except cv2.error as exc:
            refuse_if_too_large(path, exc)
            raw = None
    if raw is None:
        raw = _read_with_tifffile(path)  # unsigned 32-bit and half floats, which OpenCV refuses
    if raw is None or raw.dtype in (np.uint8, np.uint16) or raw.ndim not in (2, 3):
        return None  # a damaged header's 1-D or 4-D "picture": the usual path says it is damaged
    if raw.ndim == 2:
        raw = raw[..., None]
    colour = raw[..., :3] if raw.shape[2] >= 3 else np.repeat(raw[..., :1], 3, axis=2)
    alpha = raw[..., 3 if raw.shape[2] >= 4 else 1] if raw.shape[2] in (2, 4) else None
    picture, white_at_one = _unit_range(colour)
    linear = white_at_one and _linear_light(path)
    if alpha is not None:  # on white, as every transparent photo (unassociated alpha, TIFF's usual)
        opacity = _unit_range(alpha)[0][..., None]
        picture = picture * opacity + (1.0 - opacity)
    if linear:  # to sRGB's transfer, which the output's numbers are in
        picture = np.where(picture <= 0.0031308, picture * 12.92, 1.055 * np.power(picture, 1 / 2.4) - 0.055)
    return np.ascontiguousarray(np.clip(picture * 255.0 + 0.5, 0, 255).astype(np.uint8))


def _unit_range(samples: np.ndarray) -> tuple[np.ndarray, bool]:
    """Samples on 0..1 (float32), as a photographer's editor shows them, and whether they are floats with white
    at 1.0. Such floats (an HDR merge, a stack: most of a photo lies below white) keep 1.0 as white, values
    above it being highlights, clipped as an editor shows them at exposure 0; dividing by the brightest (the
    sun) would make the whole picture dark. Floats whose middle lies above 1 (an integer picture stored as
    floats, 0..255 or 0..65535) are divided by their maximum. Integers by their type's range, except 32-bit
    ones that hold 16-bit values (some stacking tools' output), which would otherwise be black. NaN is black,
    negative values 0."""
    if samples.dtype.kind == "f":
        values = np.nan_to_num(samples.astype(np.float32), nan=0.0, posinf=np.finfo(np.float32).max, neginf=0.0)
        sample = values.reshape(-1)[::97]  # the median of a 12 MP photo's every 97th value: a few ms
        if not sample.size or float(np.median(sample)) <= 1.0:
            return np.clip(values, 0.0, 1.0), True
        return np.clip(values / float(values.max()), 0.0, 1.0), False
    scale = float(np.iinfo(samples.dtype).max)
    if samples.dtype.itemsize >= 4 and samples.max() <= 65535:
        scale = 65535.0
    return np.clip(samples.astype(np.float32) / scale, 0.0, 1.0), False


def _linear_light(path: Path) -> bool:
    """Whether a float TIFF holds linear light: float TIFFs do (Photoshop's and Affinity's 32-bit HDR merges,
    stacking tools), unless their colour profile gives a transfer curve (GIMP's "perceptual" float), which
    would make a linear reading wash the picture out."""
    gamma = _profile_gamma(_tiff_tag(path, TIFF_ICC_PROFILE))
    return gamma is None or abs(gamma - 1.0) < 0.1


def _profile_gamma(icc: bytes | None) -> float | None:
    """The gamma of an ICC profile's red (or grey) tone curve; None without one."""
    if not icc or len(icc) < 132:
        return None
    try:
        count = struct.unpack_from(">I", icc, 128)[0]
        tags = {struct.unpack_from(">4s", icc, 132 + 12 * i)[0]: struct.unpack_from(">I", icc, 136 + 12 * i)[0]
                for i in range(min(count, 256))}
        offset = tags.get(b"rTRC", tags.get(b"kTRC"))
        if offset is None:
            return None
        kind = icc[offset:offset + 4]
        if kind == b"para":  # a parametric curve: its first parameter is the gamma (s15Fixed16)
            return struct.unpack_from(">i", icc, offset + 12)[0] / 65536
        if kind != b"curv":
            return None
        points = struct.unpack_from(">I", icc, offset + 8)[0]
        if points == 0:
            return 1.0
        if points == 1:
            return struct.unpack_from(">H", icc, offset + 12)[0] / 256
        middle = struct.unpack_from(">H", icc, offset + 12 + 2 * (points // 2))[0] / 65535  # a table: at x = 0.5
        return math.log(max(middle, 1e-6)) / math.log((points // 2) / (points - 1))
    except struct.error:  # cut short: no curve to go by
        return None


class _QuietLogger(WhileReading):
    """tifffile's logger off while any thread reads a TIFF here: of a damaged header it logged each bad tag
    ("<TiffTag.fromfile> raised TiffFileError(...)"), twice, above the one line that says the file is damaged."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name
        self._disabled = False

    def _set(self) -> None:
        logger = logging.getLogger(self._name)
        self._disabled, logger.disabled = logger.disabled, True

    def _put_back(self) -> None:
        logging.getLogger(self._name).disabled = self._disabled


_TIFFFILE_LOG = _QuietLogger("tifffile")


def _tiff_tag(path: Path, tag: int) -> Any:
    """A tag of a TIFF's first picture, through tifffile (scikit-image's dependency); None where it is missing."""
    try:
        import tifffile

        with _TIFFFILE_LOG.held(), tifffile.TiffFile(path) as tif:
            found = tif.pages[0].tags.get(tag)
            return None if found is None else found.value
    except Exception:  # noqa: BLE001 (tifffile missing, or a header it cannot parse: no tag to go by)
        return None


Read = TypeVar("Read")


def _first_page(path: Path, read: Callable[[Any], Read]) -> Read | None:
    """What `read` takes from a TIFF's first picture's headers (tifffile's page); None where tifffile cannot parse
    them (or is missing)."""
    try:
        import tifffile

        with _TIFFFILE_LOG.held(), tifffile.TiffFile(path) as tif:
            return read(tif.pages[0])
    except Exception:  # noqa: BLE001 (tifffile missing, or no header it can parse)
        return None


def _sample_format(path: Path) -> tuple[int, int] | None:
    """A TIFF's first picture's bits per sample and TIFF sample format (1 unsigned, 2 signed, 3 float), from its
    headers alone; None where tifffile cannot parse them."""
    return _first_page(path, lambda page: (int(page.bitspersample), int(page.sampleformat)))


def tiff_size(path: Path) -> tuple[int, int] | None:
    """A TIFF's first picture's (width, height) as its headers give them (0 where a damaged one says so); None where
    tifffile cannot parse them."""
    return _first_page(path, lambda page: (int(page.imagewidth), int(page.imagelength)))


PAGES_READ = 1000  # a TIFF's pages looked at (each a few tens of µs); past that, "1000 or more"
REDUCED_OR_MASK = 0b101  # NewSubfileType's bits of a page that is no picture of its own: a smaller copy, a mask


def tiff_pages(path: Path) -> int:
    """How many pictures a TIFF holds (a scan of several pages, a layered export), not counting its smaller copies
    (a pyramid's, a preview) or masks; up to PAGES_READ; 1 where tifffile cannot parse its headers."""
    try:
        import tifffile

        with _TIFFFILE_LOG.held(), tifffile.TiffFile(path) as tif:
            if len(tif.pages) <= 1:
                return 1
            pages = itertools.islice(tif.pages, PAGES_READ)
            return max(1, sum(1 for page in pages if not int(page.subfiletype) & REDUCED_OR_MASK))
    except Exception:  # noqa: BLE001 (tifffile missing, or no header it can parse: its first page is all there is)
        return 1


def tiff_samples(path: Path) -> str | None:
    """What a TIFF's samples are ("32-bit float"), from its headers; None where they are none to remark on."""
    header = _sample_format(path)
    if header is None:
        return None
    bits, kind = header[0], {2: "signed", 3: "float"}.get(header[1], "integer")
    return f"{bits}-bit {kind}" if bits > 8 else None


# TIFF's orientation tag (as EXIF's): how to bring the stored picture upright
_UPRIGHT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
            5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, -1)[::-1],
            8: lambda a: np.rot90(a, 1)}


def _read_with_tifffile(path: Path) -> np.ndarray | None:
    """The first picture of a TIFF, BGR(A) and upright, through tifffile; None where it cannot decode it."""
    try:
        import tifffile

        with _TIFFFILE_LOG.held(), tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            raw, axes = page.asarray(), page.axes
            orientation = page.tags.get(TIFF_ORIENTATION)
    except Exception:  # noqa: BLE001 (tifffile missing, or a compression it lacks the codec for: not read)
        return None
    if axes.startswith("S"):  # samples stored plane by plane
        raw = np.moveaxis(raw, 0, -1)
    if raw.ndim == 3 and raw.shape[2] >= 3:
        raw = np.concatenate([raw[..., 2::-1], raw[..., 3:]], axis=2)
    turn = _UPRIGHT.get(orientation.value if orientation is not None else 1)
    return raw if turn is None else np.ascontiguousarray(turn(raw))
