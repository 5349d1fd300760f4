"""Animations out (GIF, APNG, animated WebP): an animation output holds every picture for its own duration and
plays as many times as the input."""
from __future__ import annotations

import io
import os
import shutil
import struct
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from stream.images import ANIMATION_FORMATS, PhotoMetadata, with_alpha
from stream.paths import partial_path, replace_atomically

# as PILLOW_SAVE for stills; WebP at method 0, as Pillow's animation writer encoded its pictures
ANIMATION_SAVE = {"GIF": {}, "PNG": {"compress_level": 1}, "WEBP": {"quality": 95, "method": 0}}
GIF_SHORTEST_CS = 2  # browsers show a GIF picture of 0 or 1 hundredths for 100 ms
GIF_CLEAR = 255  # a transparent GIF picture's index of its transparent pixels, its others in 255 colours
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _loop_option(pillow_format: str, plays: int) -> dict[str, int]:
    """Pillow's `loop` option that plays an animation of this format `plays` times (0: for ever)."""
    if pillow_format == "GIF":
        return {} if plays == 1 else {"loop": 0 if plays == 0 else plays - 1}
    return {"loop": plays}


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
        self._spool = partial_path(target, "frames.part")  # a 250-byte name fits too
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
    return Image.fromarray(cv2.cvtColor(with_alpha(picture_bgr, alpha), cv2.COLOR_BGRA2RGBA))


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
