"""Damaged configs and photos (the nineteenth session's fuzz run): each is one clear line, or read with a warning."""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from stream import images
from stream.config import load_config
from stream.errors import UserError
from stream.images import read_image


def _bomb(levels: int) -> str:
    """`model_size` holding 10^levels values through nested aliases (a 'billion laughs' file of a few hundred bytes)."""
    lists = ["&l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    lists += [f"&l{level} [{','.join([f'*l{level - 1}'] * 10)}]" for level in range(1, levels)]
    return f"model_size: [{', '.join(lists)}]\n"


def test_a_config_whose_aliases_expand_to_a_hundred_thousand_values_is_refused_in_one_line(tmp_path):
    # a 10^9 one ran 41 s and out of memory, as model_size's message formatted the whole value
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb(5))
    with pytest.raises(UserError, match=r"its aliases \(\*name\) stand for 123,440 more values, over the 10000"
                                        r" a config could need .*; write the values out instead") as caught:
        load_config(str(path))
    assert "\n" not in str(caught.value)
    path.write_text("refine: &base {radius: 4}\nrender: {blur: 3}\nloop: &a [*a]\n")  # a few aliases are fine
    with pytest.raises(UserError, match="unknown config key 'loop'"):  # and a list holding itself is no bomb
        load_config(str(path))


def test_a_long_value_in_a_config_message_is_shortened(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text(f"model_size: {'9' * 100_000}x518\nrender:\n  blur: [{', '.join(['1'] * 50_000)}]\n")
    with pytest.raises(UserError) as caught:
        load_config(str(path))
    lines = str(caught.value).splitlines()
    assert len(lines) == 2 and all(len(line) < 250 for line in lines), lines
    assert "model_size (--model-size) must be WIDTHxHEIGHT" in lines[0] and "..." in lines[0]
    assert "render.blur must be a number" in lines[1] and "..." in lines[1]


@pytest.mark.parametrize("text, where, name", [
    ("device: cpu\0\n", "line 1, column 12", r"U\+0000 \(NUL\)"),
    ("render:\n  blur: 3\x1b[0m\n", "line 2, column 10", r"U\+001B \(ESC\)")])
def test_a_config_holding_a_control_character_is_one_line(tmp_path, capsys, text, where, name):
    # PyYAML's 2-line ReaderError came out raw: its loader was built outside the try that names YAML's errors
    path = tmp_path / "control.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())  # after a byte-order mark: the place is the text's
    with pytest.raises(UserError, match=rf"holds {name}, a control character YAML does not allow, at {where}; "
                                        r"save it as plain UTF-8 text"):
        load_config(str(path))
    from stream.cli import main

    assert main(["run", "synthetic:portrait", "-o", str(tmp_path / "out.mp4"), "--config", str(path)],
                restore_signals=False) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and "U+00" in said[0] and "Traceback" not in said[0], said


def test_a_utf16_config_is_named_and_a_utf8_one_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "notepad.yaml"
    path.write_bytes("render:\n  blur: 3\n".encode("utf-16"))  # Notepad's "Unicode": a BOM, then UTF-16
    with pytest.raises(UserError, match=r"is UTF-16 text; save it as plain UTF-8 text"):
        load_config(str(path))
    path.write_bytes("render:\n  blur: 3\n".encode("utf-16-le"))  # no BOM: NULs between the letters
    with pytest.raises(UserError, match=r"U\+0000 \(NUL\).*line 1, column 2 \(it reads as UTF-16 text saved"):
        load_config(str(path))
    path.write_bytes("render:\n  blur: 3\n".encode("utf-8-sig"))
    assert load_config(str(path)).render.blur == 3
    path.write_bytes("render:\n  focus: auto # f\xfcr\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"not UTF-8 text \(byte 0xfc at line 2, column 18\)"):
        load_config(str(path))


def _tiff_with_damaged_header(path) -> None:
    """An 8-bit RGB TIFF whose ImageLength reads 0 and whose Photometric tag has no valid type: the fuzz run's
    flip10_head__photo.tif, which tifffile read as a 1-D array (IndexError) and logged twice."""
    import tifffile

    tifffile.imwrite(path, np.zeros((24, 32, 3), np.uint8), photometric="rgb")
    data = bytearray(path.read_bytes())
    offset = struct.unpack_from("<I", data, 4)[0]
    for index in range(struct.unpack_from("<H", data, offset)[0]):
        entry = offset + 2 + 12 * index
        tag = struct.unpack_from("<H", data, entry)[0]
        if tag == 257:  # ImageLength
            struct.pack_into("<I", data, entry + 8, 0)
        elif tag == 262:  # Photometric: type 33539, none TIFF knows
            struct.pack_into("<H", data, entry + 2, 33539)
    path.write_bytes(bytes(data))


def test_a_tiff_with_a_damaged_header_is_one_line(tmp_path, capfd, caplog):
    path = tmp_path / "head.tif"
    _tiff_with_damaged_header(path)
    with pytest.raises(UserError, match=r"the TIFF picture \(32x0\) is damaged or cut short .*; copy it again"):
        read_image(path)
    assert capfd.readouterr().err == ""
    assert not [record for record in caplog.records if record.name == "tifffile"]  # its "<TiffTag.fromfile> raised"


def _png(width: int, height: int, rows: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def test_a_photo_whose_run_would_not_fit_in_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big photo.png"
    cv2.imwrite(str(path), np.zeros((1500, 2000, 3), np.uint8))
    monkeypatch.setattr(images, "memory_available", lambda: 100 << 20)

    def decoded(*args, **kwargs):
        raise AssertionError("decoded before its size was checked")

    monkeypatch.setattr(images.cv2, "imdecode", decoded)
    with pytest.raises(UserError, match=r"is 2000x1500 \(3 megapixels\): its run needs about 0\.4 GB of memory and "
                                        r"0\.1 GB is free; downscale it first, to \d+x\d+ or less \(e\.g\. magick "
                                        r"'big photo.png' -resize \d+x\d+ 'big photo_small.png'\)"):
        read_image(path)
    # a 388 KB-like bomb under the pixel limit, its data short: refused from its header, not after 25 s decoding
    (tmp_path / "bomb.png").write_bytes(_png(30000, 30000, b"\0" * 90001))
    monkeypatch.setattr(images, "memory_available", lambda: 24 << 30)
    with pytest.raises(UserError, match=r"30000x30000 \(900 megapixels\): its run needs about 36\.3 GB"):
        read_image(tmp_path / "bomb.png")


def test_a_photo_that_fits_is_read_whatever_the_memory_reading(tmp_path, monkeypatch):
    cv2.imwrite(str(tmp_path / "small.png"), np.full((30, 40, 3), 7, np.uint8))
    monkeypatch.setattr(images, "memory_available", lambda: None)  # not Linux: not checked
    assert read_image(tmp_path / "small.png").shape == (30, 40, 3)
    monkeypatch.setattr(images, "memory_available", lambda: 1 << 30)
    assert read_image(tmp_path / "small.png").shape == (30, 40, 3)


def _only_depthcam_lines(err: str) -> list[str]:
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("depthcam: ") for line in lines), lines  # no "libpng error: ..." of its own
    return lines


def test_a_damaged_jpeg_that_decodes_is_warned_about_in_depthcams_words(tmp_path, capfd):
    picture = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    data = bytearray(cv2.imencode(".jpg", picture)[1].tobytes())
    data[len(data) // 2:len(data) // 2 + 2] = b"\xff\xd0"  # a restart marker mid-scan: libjpeg's corrupt data
    (tmp_path / "flip.jpg").write_bytes(bytes(data))
    assert read_image(tmp_path / "flip.jpg").shape == (240, 320, 3)
    lines = _only_depthcam_lines(capfd.readouterr().err)
    assert len(lines) == 1 and "flip.jpg is damaged (Corrupt JPEG data" in lines[0], lines


def test_a_png_with_a_crc_error_is_read_with_a_warning_and_one_cut_short_is_said(tmp_path, capfd):
    rows = b"".join(b"\0" + bytes(range(96)) for _ in range(24))
    data = bytearray(_png(32, 24, rows))
    data[data.index(b"IEND") - 8] ^= 0x01  # the IDAT chunk's CRC, which its data no longer matches
    (tmp_path / "crc.png").write_bytes(bytes(data))
    read_image(tmp_path / "crc.png")
    lines = _only_depthcam_lines(capfd.readouterr().err)
    assert len(lines) == 1 and "crc.png is damaged (libpng error: IDAT: CRC error)" in lines[0], lines
    # 4 rows of a 3000x3000 picture: read black below them, which was said nowhere
    (tmp_path / "short.png").write_bytes(_png(3000, 3000, b"".join(b"\0" + b"\xc8" * 9000 for _ in range(4))))
    assert read_image(tmp_path / "short.png").shape == (3000, 3000, 3)
    lines = _only_depthcam_lines(capfd.readouterr().err)
    assert len(lines) == 1 and "short.png is cut short (libpng error: Not enough image data)" in lines[0], lines


def _damaged_webp() -> bytes:
    data = bytearray(cv2.imencode(".webp", np.full((24, 32, 3), 90, np.uint8))[1].tobytes())
    data[12:20] = b"\x00" * 8  # its VP8 chunk's name and size
    return bytes(data)


def _jpeg_of_no_height() -> bytes:
    data = bytearray(cv2.imencode(".jpg", np.full((24, 32, 3), 90, np.uint8))[1].tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 7] = b"\x00\x00"  # its frame header's height: 0
    return bytes(data)


@pytest.mark.parametrize("name, make, kind", [("head.webp", _damaged_webp, "WebP"),
                                              ("head.jpg", _jpeg_of_no_height, "JPEG"),
                                              ("head.png", lambda: _png(32, 24, b"")[:20] + b"\xff" * 40, "PNG")])
def test_a_photo_with_a_damaged_header_is_named_by_its_first_bytes(tmp_path, capfd, name, make, kind):
    # "not an image, or corrupt (give a PNG/JPEG file)" told the owner of a damaged WebP to give a PNG or JPEG
    (tmp_path / name).write_bytes(make())
    with pytest.raises(UserError, match=rf"it begins as a {kind} picture, but its headers are damaged or it is cut "
                                        r"short \(an unfinished download or copy\?\); copy it again"):
        read_image(tmp_path / name)
    assert capfd.readouterr().err == ""


def test_a_heif_photo_with_a_damaged_header_is_named_by_its_first_bytes(tmp_path):
    if not images.heif_readable():
        pytest.skip("pillow-heif is not installed")
    (tmp_path / "head.heic").write_bytes(b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1he\xa0c" + bytes(200))
    with pytest.raises(UserError, match=r"it begins as a HEIF picture, but its headers are damaged"):
        read_image(tmp_path / "head.heic")


@pytest.mark.parametrize("version", [1, 2])
def test_a_container_s_memory_limit_bounds_the_memory_free(tmp_path, version):
    """In a container /proc/meminfo is the host's: a photo that the host could hold but the container's limit cannot
    was accepted, and the limit's out-of-memory killer ended the run without a word. The limit less what the group
    uses is the room (cgroup v2 and v1); no limit set ("max", v1's huge number): none."""
    from stream.images import cgroup_room

    own = tmp_path / "cgroup"
    if version == 2:
        own.write_text("0::/docker/abc\n")
        folder, names = tmp_path / "docker" / "abc", ("memory.max", "memory.current")
    else:
        own.write_text("9:pids:/docker/abc\n8:memory:/docker/abc\n")
        folder, names = tmp_path / "memory" / "docker" / "abc", ("memory.limit_in_bytes", "memory.usage_in_bytes")
    folder.mkdir(parents=True)
    (folder / names[0]).write_text(f"{4 << 30}\n")
    (folder / names[1]).write_text(f"{1 << 30}\n")
    assert cgroup_room(tmp_path, own) == 3 << 30
    (folder / names[0]).write_text("max\n" if version == 2 else f"{(1 << 63) - 4096}\n")
    assert cgroup_room(tmp_path, own) is None
    assert cgroup_room(tmp_path, tmp_path / "no such file") is None
