"""Photos as users bring them: the orientation OpenCV does not read (an AVIF's rotation, a PNG's odd EXIF)."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, features

from stream.images import UPRIGHT_TRANSPOSE, read_image, read_metadata, turned_upright, upright_size


def _upright_picture() -> np.ndarray:
    """RGB, 64 wide and 48 high, a red corner top-left: where each turn takes it tells the turns apart."""
    picture = np.full((48, 64, 3), (90, 120, 160), np.uint8)
    picture[:8, :12] = (255, 0, 0)
    return picture


def _stored_for_6() -> Image.Image:
    """The upright picture as a phone stores it under orientation 6 (turned a quarter anticlockwise)."""
    return Image.fromarray(_upright_picture()).transpose(Image.Transpose.ROTATE_90)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Apple"
    return exif


def _assert_upright(picture_bgr: np.ndarray) -> None:
    assert picture_bgr.shape == (48, 64, 3)
    assert picture_bgr[2, 2].tolist() == pytest.approx([0, 0, 255], abs=12)  # BGR red, top-left
    assert picture_bgr[45, 61].tolist() == pytest.approx([160, 120, 90], abs=12)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_turned_upright_turns_as_pillow_does(orientation):
    stored = (np.arange(5 * 7 * 3) % 251).astype(np.uint8).reshape(5, 7, 3)
    method = UPRIGHT_TRANSPOSE.get(orientation)
    expected = stored if method is None else np.asarray(
        Image.fromarray(stored).transpose(getattr(Image.Transpose, method)))
    assert np.array_equal(turned_upright(stored, orientation), expected)


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow writes no AVIF")
def test_an_avif_turned_by_its_rotation_is_read_upright(tmp_path):
    # Pillow (as avifenc) stores the orientation as the AVIF's rotation (irot), which OpenCV's decoder ignored: the
    # output came out sideways, its EXIF saying upright
    path = tmp_path / "phone.avif"
    _stored_for_6().save(path, exif=_exif(6), quality=95)
    _assert_upright(read_image(path))
    assert upright_size(path) == (64, 48)
    exif = Image.Exif()
    exif.load(read_metadata(path).exif)
    assert exif.get(0x0112) == 1


def _png_with_exif_chunk(path: Path, picture_rgb: np.ndarray, exif: bytes) -> None:
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(picture_rgb, cv2.COLOR_RGB2BGR))
    assert ok
    data = buffer.tobytes()
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(">I", zlib.crc32(b"eXIf" + exif))
    at = data.index(b"IDAT") - 4
    path.write_bytes(data[:at] + chunk + data[at:])


def test_a_png_whose_exif_has_its_jpeg_header_is_read_upright(tmp_path):
    # an eXIf chunk beginning "Exif\0\0" (as in a JPEG): libpng refuses it, Pillow reads its orientation and the
    # output's EXIF was set upright, the pixels left as stored
    path = tmp_path / "turned.png"
    _png_with_exif_chunk(path, np.asarray(_stored_for_6()), _exif(6).tobytes())
    assert _exif(6).tobytes().startswith(b"Exif\0\0")
    _assert_upright(read_image(path))
    assert upright_size(path) == (64, 48)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_jpeg_of_each_orientation_is_read_upright(tmp_path, orientation):
    inverse = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_90",
               7: "TRANSVERSE", 8: "ROTATE_270"}
    upright = Image.fromarray(_upright_picture())
    stored = upright if orientation == 1 else upright.transpose(getattr(Image.Transpose, inverse[orientation]))
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=_exif(orientation), quality=95)
    _assert_upright(read_image(path))
