"""Review of session 22's HDR range commit (stream/hdr.py: rgb48_gain): the white probe must write each pixel format's
codes as that format stores them, or the gain is refused (1.0) and white comes out a level dark."""
from __future__ import annotations

import av
import numpy as np
import pytest

from stream.hdr import ColourConverter, ColourSignal, rgb48_gain

LIMITED, FULL, UNSPECIFIED = 1, 2, 0
BT2020_MATRIX = 9


def white(pix_fmt: str, colour_range: int, luma: int, chroma: int, shift: int = 0) -> av.VideoFrame:
    """A 16x16 frame of `pix_fmt` at the given luma and (neutral) chroma codes, stored `shift` bits up."""
    frame = av.VideoFrame(16, 16, pix_fmt)
    frame.colorspace, frame.color_range = BT2020_MATRIX, colour_range
    dtype = np.uint8 if pix_fmt.startswith("yuvj") else np.dtype("<u2")
    for index, plane in enumerate(frame.planes):
        np.frombuffer(plane, dtype)[:] = (luma if index == 0 else chroma) << shift
    return frame


def test_a_p010_frame_gets_the_limited_range_gain() -> None:
    """P010 (hardware decoders' 10 bits in a word's top bits): the probe wrote 940, not 940 << 6, read it as black
    and fell back to 1.0."""
    assert rgb48_gain(white("p010le", LIMITED, 0, 0), None) == pytest.approx(65535 / 65283)
    assert rgb48_gain(white("p010le", FULL, 0, 0), None) == pytest.approx(65535 / 65472)


def test_p010_white_comes_out_at_255() -> None:
    converter = ColourConverter(ColourSignal("sdr", 100.0))
    out = converter.convert(white("p010le", LIMITED, 940, 512, shift=6))
    assert int(out.min()) == 255, np.unique(out)


@pytest.mark.parametrize("colour_range", [UNSPECIFIED, LIMITED])
def test_a_yuvj_frame_is_probed_as_full_range_whatever_its_tag(colour_range: int) -> None:
    """swscale reads yuvj formats as full range whatever the tag: the probe's limited white (235) read as 92% and its
    gain was refused, so white stayed at 65280 of 65535."""
    frame = white("yuvj420p", colour_range, 255, 128)
    assert rgb48_gain(frame, None) == pytest.approx(65535 / 65280)
    assert int(ColourConverter(ColourSignal("sdr", 100.0)).convert(frame).min()) == 255
