"""Automatic levels for the depth network's input only: a dark or washed-out frame is stretched before the network.

On a 7 % exposure with sensor noise the network saw values 0..18 and its depth collapsed to a top-to-bottom gradient
(Spearman against the normally exposed frame's depth: 0.84); stretched, it kept the scene (docs/how-it-works.md).
The output picture, face detection and refinement's guide are never touched.

The stretch is one gain and offset for all three channels (colour balance kept), from the 1st and 99.5th
percentiles of the small frame the network gets anyway. Both percentiles are read from a histogram in which each
8-bit level spreads evenly over its width, so they move continuously as a fade shifts pixels between levels: the
gain follows a fade without steps, with no state to carry between frames (or to reset at a cut). A frame whose
levels already span FULL_SPAN or more gets exactly the input it always got.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

LOW_PERCENTILE, HIGH_PERCENTILE = 1.0, 99.5
# p1..p99.5 of the skimage photos: 184 (chelsea) to 254 (astronaut); a 30 % exposure spans about 70
FULL_SPAN = 160.0
# a black or one-level frame's noise is stretched this much at most, never by infinity; a 7 % exposure reaches it.
# On the skimage photos at 7 % (noise sigma 1.5) a gain of 12 took the cat's depth from 0.74 (unstretched) to 0.59,
# its noise amplified past its content; 8 keeps it at 0.72 and the three others' at 0.96-0.99 (docs/how-it-works.md)
MAX_GAIN = 8.0
LEVELS = 256


@dataclass(frozen=True)
class Levels:
    """value -> gain * value + offset, clipped to 0..255 (8-bit levels, before the network's own scaling)."""
    gain: float = 1.0
    offset: float = 0.0

    @property
    def identity(self) -> bool:
        return self.gain == 1.0 and self.offset == 0.0

    def values(self) -> np.ndarray:
        """The 256 levels after the stretch, float64 in 0..255."""
        return np.clip(self.gain * np.arange(LEVELS, dtype=np.float64) + self.offset, 0.0, LEVELS - 1.0)


IDENTITY = Levels()
# the table of a model fed RGB 0..255 as it is: each level as itself
UINT8_LEVELS = np.arange(LEVELS, dtype=np.uint8).reshape(LEVELS, 1, 1)


def smooth_percentiles(image: np.ndarray, percents: tuple[float, ...]) -> np.ndarray:
    """Percentiles of a uint8 image's values, each level spread evenly over [level - 0.5, level + 0.5]: continuous
    in the share of pixels at each level (np.percentile jumps a whole level at a time)."""
    # cv2.calcHist: 0.1 ms for a 320 x 192 frame's three channels, np.bincount 0.4 ms
    counts = cv2.calcHist([image.reshape(-1, 1)], [0], None, [LEVELS], [0, LEVELS]).ravel().astype(np.float64)
    cumulative = np.concatenate(([0.0], np.cumsum(counts))) / max(counts.sum(), 1.0)  # share below each edge
    shares = np.clip(np.asarray(percents, dtype=np.float64) / 100.0, 0.0, 1.0)
    # the level each share is reached in: the one after the last edge below the share (never an empty level, whose
    # edges have the same share); the share still wanted there, as a part of that level's pixels
    level = np.clip(np.searchsorted(cumulative, shares, side="left") - 1, 0, LEVELS - 1)
    within = (shares - cumulative[level]) / np.maximum(counts[level], 1.0) * max(counts.sum(), 1.0)
    return np.clip(level - 0.5 + np.clip(within, 0.0, 1.0), 0.0, LEVELS - 1.0)


def levels_of(image: np.ndarray) -> Levels:
    """The stretch for one uint8 frame (any channels): none while p1..p99.5 spans FULL_SPAN or more, else a gain that
    brings the span to FULL_SPAN (at most MAX_GAIN), the stretched range placed where the old one sat in the room
    left (a dark frame stays at the bottom, a washed-out one in the middle). Continuous in the percentiles: at a
    span of FULL_SPAN it is exactly the identity."""
    low, high = smooth_percentiles(image, (LOW_PERCENTILE, HIGH_PERCENTILE))
    span = float(high - low)
    if span >= FULL_SPAN:
        return IDENTITY
    gain = min(FULL_SPAN / max(span, 1e-6), MAX_GAIN)
    room_before, room_after = LEVELS - 1.0 - span, LEVELS - 1.0 - gain * span
    new_low = float(low) * room_after / room_before  # room_before >= 255 - FULL_SPAN > 0
    return Levels(gain=gain, offset=new_low - gain * float(low))


def stretched_table(levels: Levels, table: np.ndarray) -> np.ndarray:
    """A 256 x 1 x C lookup table (each level as the network sees it, affine in the level for every input scaling)
    read at the stretched levels: the stretch and the network's scaling in one cv2.LUT, without rounding to 8 bits
    between them. A uint8 table (a model fed RGB 0..255 as it is) is rounded once."""
    values = levels.values()
    first, last = table[0].astype(np.float64), table[LEVELS - 1].astype(np.float64)
    scaled = first + (last - first) * (values[:, None, None] / (LEVELS - 1.0))
    if table.dtype == np.uint8:
        return np.round(scaled).astype(np.uint8)
    return scaled.astype(table.dtype)
