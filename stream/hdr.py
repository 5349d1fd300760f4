"""HDR and wide-gamut video, found by its tags and decoded to the SDR BT.709 frames the pipeline uses.

Phones record HDR by default (HLG on iPhones, PQ/HDR10 on many others), in BT.2020 colours. Decoded
as if it were SDR, such video looks flat, grey and pale, and depthcam's output (SDR BT.709) would
keep that look; `kernels.colour` tone-maps it instead.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from kernels.colour import ColourTables

# FFmpeg's AVColorTransferCharacteristic and AVColorPrimaries values.
TRC_PQ, TRC_HLG = 16, 18
TRC_SDR = (1, 6, 14, 15)  # BT.709, BT.601, BT.2020 10- and 12-bit: one curve, near enough
PRIMARIES_BT709, PRIMARIES_BT2020 = 1, 9
UNSPECIFIED_MATRIX = 2  # AVCOL_SPC_UNSPECIFIED
DEFAULT_PQ_PEAK_NITS = 1000.0  # where a PQ video does not say its peak (most HDR10 grades)
PQ_PEAK_RANGE = (400.0, 10000.0)
FULL_RANGE = 2  # AVCOL_RANGE_JPEG; unspecified YUV is taken as limited (MPEG), as swscale does
# planar formats whose 10 or 12 bits sit in the top of 16 (hardware decoders' output), named by FFmpeg's scheme
MSB_ALIGNED = re.compile(r"p[024]1[02](le|be)")
SWSCALE_GAINS = (1.0, 1.02)  # plausible gains (1.0039 at 10 and 12 bits, 1.0079 at 8): outside, the probe misread
# The kernels a converter calls from Python (named as kernels.warmup.CPU_ENTRIES names a warm-up part's): the slow
# warm-up's notice asks Numba's cache about these too where the input is converted
CONVERT_KERNELS = ("kernels.colour._convert", "kernels.cpu_threads._first_launch")


@dataclass(frozen=True)
class ColourSignal:
    """What a video's tags say about its colours, where they need more than a plain decode."""

    transfer: str  # "pq", "hlg" or "sdr" (BT.2020 primaries with an SDR curve)
    peak_nits: float  # the grade's brightest light (PQ), HLG's nominal display, SDR white
    bt2020: bool = True  # the primaries; a few cameras tag HDR with BT.709's, which then need no conversion

    def __str__(self) -> str:
        if self.transfer == "sdr":
            return "BT.2020 colours converted to BT.709"
        name = "PQ/HDR10" if self.transfer == "pq" else "HLG"
        return f"HDR ({name}, {self.peak_nits:.0f} nits) tone-mapped to SDR"


def colour_signal(frame: Any) -> ColourSignal | None:
    """The conversion a decoded av.VideoFrame needs, or None for ordinary BT.709/601 video."""
    trc, primaries = int(frame.color_trc), int(frame.color_primaries)
    if trc not in (TRC_PQ, TRC_HLG) and not (primaries == PRIMARIES_BT2020 and trc in TRC_SDR):
        return None  # before kernels.colour (and Numba with it) is imported: most video stops here
    from kernels.colour import HLG_DISPLAY_PEAK_NITS, SDR_WHITE_NITS

    bt2020 = primaries != PRIMARIES_BT709  # HDR with untagged primaries is BT.2020
    if trc == TRC_PQ:
        return ColourSignal("pq", pq_peak_nits(frame), bt2020)
    if trc == TRC_HLG:
        return ColourSignal("hlg", HLG_DISPLAY_PEAK_NITS, bt2020)
    return ColourSignal("sdr", SDR_WHITE_NITS)


def props_only(frame: Any) -> Any:
    """A 2x2 grey copy of `frame` with its side data, to read that from: PyAV ties a frame and its side data in a
    reference cycle, which kept the first picture of each input (12 MB in 4K) till a full gc; only the copy is now."""
    import av

    if not isinstance(frame, av.VideoFrame):  # side data alone (a test's stand-in)
        return frame
    try:
        return frame.reformat(width=2, height=2, format="gray", interpolation="POINT")
    except (av.error.FFmpegError, ValueError):  # a picture format swscale cannot read: the frame itself
        return frame


def pq_peak_nits(frame: Any) -> float:
    """The grade's peak from the frame's HDR10 metadata: MaxCLL, else the mastering display's peak."""
    from av.sidedata.sidedata import Type

    peak, side_data = 0.0, props_only(frame).side_data
    light = side_data.get(Type.CONTENT_LIGHT_LEVEL)
    if light is not None and len(bytes(light)) >= 4:
        peak = float(np.frombuffer(bytes(light), np.uint32, count=1)[0])  # AVContentLightMetadata: MaxCLL, MaxFALL
    mastering = side_data.get(Type.MASTERING_DISPLAY_METADATA)
    if not peak and mastering is not None and len(bytes(mastering)) >= 88:
        # AVMasteringDisplayMetadata: 8 rationals (primaries, white point), min and max luminance,
        # has_primaries, has_luminance
        fields = np.frombuffer(bytes(mastering), np.int32, count=22)
        if fields[21] and fields[19] > 0:
            peak = fields[18] / fields[19]
    return float(np.clip(peak, *PQ_PEAK_RANGE)) if peak > 0 else DEFAULT_PQ_PEAK_NITS


class ColourConverter:
    """Decodes the frames of one video, by its `ColourSignal`, to SDR BT.709 BGR (uint8 HxWx3)."""

    def __init__(self, signal: ColourSignal) -> None:
        from kernels.colour import ColourTables

        self.signal = signal
        self.tables = ColourTables(signal.transfer, signal.peak_nits, signal.bt2020)
        self.untagged_matrix = "bt2020" if signal.bt2020 else "itu709"  # swscale would take BT.601
        self._tables_by_format: dict[tuple[str, int, int, str | None], ColourTables] = {}

    def prepare(self) -> None:
        """Compile the tone-mapping kernel (or load it from Numba's cache) now, not on the first frame: a run's
        warm-up calls this with the other kernels, under their notice (done when the input opened, a first run
        stalled there for 3-9 s, unannounced). Every video's tables share the kernel's one specialisation."""
        from kernels.colour import convert_rgb48

        convert_rgb48(np.zeros((2, 2, 3), np.uint16), self.tables)

    def convert(self, frame: Any) -> np.ndarray:
        """Any YUV or RGB av.VideoFrame (its matrix and range from its tags) to BGR."""
        from kernels.colour import convert_rgb48

        src_colorspace = self.untagged_matrix if int(frame.colorspace) == UNSPECIFIED_MATRIX else None
        rgb16 = frame.to_ndarray(format="rgb48le", src_colorspace=src_colorspace, interpolation=rgb48_flags())
        return convert_rgb48(rgb16, self.tables_for(frame, src_colorspace))

    def tables_for(self, frame: Any, src_colorspace: str | None) -> ColourTables:
        """The tables for swscale's codes of `frame`'s pixel format, range and matrix, its gain measured once for
        each (a video's pictures share them), so correcting it costs nothing per pixel."""
        key = (frame.format.name, int(frame.color_range), int(frame.colorspace), src_colorspace)
        if key not in self._tables_by_format:
            gain = rgb48_gain(frame, src_colorspace)
            self.tables = self.tables if gain == self.tables.code_gain else replace(self.tables, code_gain=gain)
            self._tables_by_format[key] = self.tables
        return self._tables_by_format[key]


def rgb48_gain(frame: Any, src_colorspace: str | None) -> float:
    """65535 over the rgb48 code swscale decodes white to in `frame`'s pixel format, range and matrix. For limited
    range its 16-bit output is scaled by 0.99615 (white 65283), whatever its flags or output format (float too), and
    full-range 10-bit white is 65472; 1.0 where no probe of the format can be made (packed YUV: never decoded here)."""
    import av

    try:
        white = white_picture(frame).to_ndarray(format="rgb48le", src_colorspace=src_colorspace,
                                                interpolation=rgb48_flags())
    except (av.error.FFmpegError, ValueError, TypeError):
        return 1.0
    gain = 65535 / max(float(np.median(white)), 1.0)
    return gain if SWSCALE_GAINS[0] <= gain <= SWSCALE_GAINS[1] else 1.0


def rgb48_flags() -> Any:
    """swscale's flags for the decode to rgb48: PyAV's bilinear, with accurate rounding, without which 8-bit 4:2:0
    took a special converter of 8-bit precision (mid-grey 126 for 128, after any gain); the same output at 10 bits."""
    from av.video.reformatter import Interpolation

    return Interpolation.BILINEAR | Interpolation.ACCURATE_RND


def white_picture(frame: Any) -> Any:
    """A 16x16 picture of `frame`'s pixel format, range and matrix tags, white: each plane filled with its
    components' code (luma at white, chroma neutral). ValueError for a plane of several different codes (packed
    YUV)."""
    import av

    pixel_format = frame.format
    picture = av.VideoFrame(16, 16, pixel_format.name)
    picture.colorspace, picture.color_range = frame.colorspace, frame.color_range
    # yuvj formats are full range whatever their tag (swscale's own rule): 235 read as 92% white, a gain refused
    full = pixel_format.is_rgb or int(frame.color_range) == FULL_RANGE or pixel_format.name.startswith("yuvj")
    for index, plane in enumerate(picture.planes):
        codes = {white_code(c.index, c.bits, pixel_format.is_rgb or c.is_alpha, full)
                 for c in pixel_format.components if c.plane == index}
        if len(codes) != 1:
            raise ValueError(f"{pixel_format.name}: plane {index} holds codes {codes}")
        bits = max(c.bits for c in pixel_format.components if c.plane == index)
        dtype = np.uint8 if bits <= 8 else np.dtype(">u2" if pixel_format.is_big_endian else "<u2")
        # P010-style formats keep their codes in a word's top bits: 940 alone read as black, a gain refused
        np.frombuffer(plane, dtype)[:] = codes.pop() << (16 - bits if MSB_ALIGNED.fullmatch(pixel_format.name) else 0)
    return picture


def white_code(component: int, bits: int, at_top: bool, full: bool) -> int:
    """A component's code for white: the top for RGB, alpha and full-range luma, 235 scaled for limited-range
    luma, the middle for chroma (components 1 and 2 of YUV)."""
    if at_top or (component == 0 and full):
        return (1 << bits) - 1
    return 235 << (bits - 8) if component == 0 else 1 << (bits - 1)
