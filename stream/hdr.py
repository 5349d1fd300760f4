"""HDR and wide-gamut video, found by its tags and decoded to the SDR BT.709 frames the pipeline uses.

Phones record HDR by default (HLG on iPhones, PQ/HDR10 on many others), in BT.2020 colours. Decoded
as if it were SDR, such video looks flat, grey and pale, and depthcam's output (SDR BT.709) would
keep that look; `kernels.colour` tone-maps it instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# FFmpeg's AVColorTransferCharacteristic and AVColorPrimaries values.
TRC_PQ, TRC_HLG = 16, 18
TRC_SDR = (1, 6, 14, 15)  # BT.709, BT.601, BT.2020 10- and 12-bit: one curve, near enough
PRIMARIES_BT709, PRIMARIES_BT2020 = 1, 9
UNSPECIFIED_MATRIX = 2  # AVCOL_SPC_UNSPECIFIED
DEFAULT_PQ_PEAK_NITS = 1000.0  # where a PQ video does not say its peak (most HDR10 grades)
PQ_PEAK_RANGE = (400.0, 10000.0)


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
        from kernels.colour import ColourTables, convert_rgb48

        self.signal = signal
        self.tables = ColourTables(signal.transfer, signal.peak_nits, signal.bt2020)
        self.untagged_matrix = "bt2020" if signal.bt2020 else "itu709"  # swscale would take BT.601
        convert_rgb48(np.zeros((2, 2, 3), np.uint16), self.tables)  # compiled (or loaded) now, not on frame 1

    def convert(self, frame: Any) -> np.ndarray:
        """Any YUV or RGB av.VideoFrame (its matrix and range from its tags) to BGR."""
        from kernels.colour import convert_rgb48

        untagged = int(frame.colorspace) == UNSPECIFIED_MATRIX
        rgb16 = frame.to_ndarray(format="rgb48le", src_colorspace=self.untagged_matrix if untagged else None)
        return convert_rgb48(rgb16, self.tables)
