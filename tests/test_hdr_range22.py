"""Limited-range (and full-range) YUV through the HDR decode: swscale's rgb48 output is scaled by 0.99615 for
limited range (white 65283 of 65535), which left BT.2020 SDR white at 254 and PQ's grey 2 levels dark, and its
8-bit 4:2:0 converter rounds at 8 bits; `stream.hdr` measures the gain once per format and folds it into the tables."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kernels.colour import BT2020_LUMA, SDR_WHITE_NITS, ColourTables
from kernels.colour_reference import convert_rgb48_reference
from media import make_yuv_video, put_planes, yuv_planes
from stream.hdr import DEFAULT_PQ_PEAK_NITS, ColourConverter, ColourSignal, rgb48_gain
from stream.sources import open_source

TRC_PQ, TRC_BT2020_10 = 16, 14
LIMITED, FULL = 1, 2
# neutral patches (signal values) and one colour, each 16 pixels wide: flat over the 4:2:0 chroma's 2x2 blocks
PATCHES = np.array([[1.0, 1.0, 1.0], [0.5, 0.5, 0.5], [0.75, 0.75, 0.75], [0.25, 0.25, 0.25], [0.6, 0.4, 0.2]])


def code(x: np.ndarray | float) -> np.ndarray:
    return np.round(np.asarray(x) * 65535).astype(np.uint16)


def signal_picture() -> np.ndarray:
    return np.repeat(np.repeat(PATCHES[None], 16, axis=0), 16, axis=1)  # 16 x 80 x 3


def layout(pix_fmt: str) -> tuple[int, tuple[int, int]]:
    """Bits and chroma subsampling (rows, columns) of a planar YUV format."""
    bits = 8 if pix_fmt in ("yuv420p", "yuv444p") else int(pix_fmt[len("yuv420p"):-2])
    return bits, {"420": (2, 2), "422": (1, 2), "444": (1, 1)}[pix_fmt[3:6]]


def stored_patches(pix_fmt: str, colour_range: int) -> np.ndarray:
    """The patches' R'G'B' signal as stored, decoded exactly (in float) from their quantised Y'CbCr: at 8 bits
    the chroma's rounding alone moves a dark channel a level or two, which is not the decoder's error."""
    bits, step = layout(pix_fmt)
    y, cb, cr = [plane[0, 16 * np.arange(len(PATCHES)) // (1 if i == 0 else step[1])].astype(np.float64)
                 for i, plane in enumerate(yuv_planes(signal_picture(), bits, colour_range == FULL, step))]
    if colour_range == FULL:
        top = (1 << bits) - 1
        y, cb, cr = y / top, (cb - (1 << (bits - 1))) / top, (cr - (1 << (bits - 1))) / top
    else:
        scale = 1 << (bits - 8)
        y, cb, cr = (y / scale - 16) / 219, (cb / scale - 128) / 224, (cr / scale - 128) / 224
    r, b = y + 1.4746 * cr, y + 1.8814 * cb
    g = (y - BT2020_LUMA[0] * r - BT2020_LUMA[2] * b) / BT2020_LUMA[1]
    return np.clip(np.stack([r, g, b], axis=1), 0.0, 1.0)


def make_tagged_yuv_video(path: Path, pix_fmt: str, trc: int, colour_range: int) -> Path:
    """Two pictures of the patches, stored exactly (FFV1, lossless) in `pix_fmt`, tagged BT.2020 (matrix and
    primaries), `trc` and `colour_range`, as a camera or an HDR grade writes them."""
    import av

    bits, step = layout(pix_fmt)
    planes = yuv_planes(signal_picture(), bits, colour_range == FULL, step)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.height, stream.width = planes[0].shape
        stream.pix_fmt = pix_fmt
        context = stream.codec_context
        context.color_trc, context.color_primaries, context.colorspace, context.color_range = trc, 9, 9, colour_range
        for index in range(2):
            frame = av.VideoFrame(stream.width, stream.height, pix_fmt)
            put_planes(frame, planes, bits)
            frame.color_trc, frame.color_primaries, frame.colorspace, frame.color_range = trc, 9, 9, colour_range
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def first_picture(path: Path) -> tuple[np.ndarray, ColourSignal]:
    source = open_source(str(path))
    try:
        return next(iter(source.frames())).image, source.colour
    finally:
        source.close()


def patch_levels(image: np.ndarray) -> np.ndarray:
    """Each patch's BGR, from its middle (away from the edges 4:2:0's chroma is shared across)."""
    return np.array([image[8, 16 * i + 8] for i in range(len(PATCHES))]).astype(int)


def expected_levels(transfer: str, peak: float, patches: np.ndarray = PATCHES) -> np.ndarray:
    return convert_rgb48_reference(code(patches)[None], transfer, peak)[0].astype(int)


@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv422p10le", "yuv444p12le", "yuv420p"])
@pytest.mark.parametrize("trc, transfer", [(TRC_BT2020_10, "sdr"), (TRC_PQ, "pq")])
def test_limited_range_patches_come_out_at_their_levels(tmp_path, pix_fmt, trc, transfer):
    """White and greys at their 8-bit levels: BT.2020 SDR white at 255 (was 254), PQ's 0.5 at 184 (was 182);
    at 8 bits 4:2:0 SDR's 0.5 was 126 for 127.5 (swscale's 8-bit converter)."""
    image, signal = first_picture(make_tagged_yuv_video(tmp_path / "clip.mkv", pix_fmt, trc, LIMITED))
    assert signal.transfer == transfer
    got, expected = patch_levels(image), expected_levels(transfer, signal.peak_nits, stored_patches(pix_fmt, LIMITED))
    assert np.abs(got - expected).max() <= 1, (got.tolist(), expected.tolist())
    assert got[0].tolist() == expected[0].tolist()  # white (SDR's 255; PQ's 1.0 is the grade's peak)


@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv444p12le", "yuv420p"])
def test_full_range_patches_stay_at_their_levels(tmp_path, pix_fmt):
    image, signal = first_picture(make_tagged_yuv_video(tmp_path / "clip.mkv", pix_fmt, TRC_BT2020_10, FULL))
    got, expected = patch_levels(image), expected_levels("sdr", signal.peak_nits, stored_patches(pix_fmt, FULL))
    assert np.abs(got - expected).max() <= 1, (got.tolist(), expected.tolist())
    assert got[0].tolist() == [255, 255, 255]


def test_an_untagged_phone_style_video_has_pq_grey_at_its_level(tmp_path):
    """10-bit 4:2:0 HEVC with its matrix and range untagged (taken as limited): PQ's signal 0.5 (Y = 502) at 184,
    not 182."""
    path = make_yuv_video(tmp_path / "untagged.mkv", signal_picture(), TRC_PQ)
    image, signal = first_picture(path)
    got, expected = patch_levels(image), expected_levels("pq", DEFAULT_PQ_PEAK_NITS)
    assert signal.transfer == "pq" and expected[1].tolist() == [184, 184, 184]
    assert np.abs(got - expected).max() <= 1, (got.tolist(), expected.tolist())


def blank(pix_fmt: str, colour_range: int):
    import av

    frame = av.VideoFrame(8, 8, pix_fmt)
    frame.colorspace, frame.color_range = 9, colour_range
    return frame


def test_the_gain_is_measured_by_format_and_range():
    assert rgb48_gain(blank("yuv420p10le", LIMITED), None) == pytest.approx(65535 / 65283)
    assert rgb48_gain(blank("yuv444p12le", LIMITED), None) == pytest.approx(65535 / 65283)
    assert rgb48_gain(blank("yuv420p10le", FULL), None) == pytest.approx(65535 / 65472)  # 1023 · 64
    assert rgb48_gain(blank("rgb48le", FULL), None) == 1.0  # RGB: exact already
    assert rgb48_gain(blank("gbrp16le", 0), None) == 1.0
    assert rgb48_gain(blank("yuyv422", LIMITED), None) == 1.0  # packed: no probe, no correction


def test_the_tables_take_the_gain_and_plain_tables_stay_as_they_were():
    plain = ColourTables("sdr", SDR_WHITE_NITS)
    gained = ColourTables("sdr", SDR_WHITE_NITS, code_gain=65535 / 65283)
    assert np.array_equal(plain.linear, ColourTables("sdr", SDR_WHITE_NITS, code_gain=1.0).linear)
    assert gained.linear[65283] == pytest.approx(1.0) and gained.linear[65535] == 1.0  # above white: clipped
    assert gained.linear[0] == 0.0


def test_a_converter_measures_each_format_once():
    converter = ColourConverter(ColourSignal("pq", 1000.0))
    first = converter.tables_for(blank("yuv420p10le", LIMITED), None)
    assert first.code_gain == pytest.approx(65535 / 65283)
    assert converter.tables_for(blank("yuv420p10le", LIMITED), None) is first
    assert converter.tables_for(blank("rgb48le", FULL), None).code_gain == 1.0
    assert converter.convert(blank("yuv420p10le", LIMITED)).shape == (8, 8, 3)
