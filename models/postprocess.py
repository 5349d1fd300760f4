"""Disparity normalisation to [0, 1] that stays stable over time."""
from __future__ import annotations

import numpy as np

from kernels.temporal import newest_weight
# A frame with more than this share of its values outside the smoothed range has outgrown it (the picture coming back
# from a fade to black, the lights going on; the network's range shrinks on dark frames): its wider side is taken at
# once. Gliding there clipped up to 76 % of the frame to 0 or 1 for most of a second (a flat, two-level depth;
# TCMonoDepth on the synthetic scene), where the percentiles clip 4 %. A near object coming in at the frame's edge (a
# cup sliding up over 37-47 % of it, a head 12 % at once) left at most 12 % outside: it still glides in.
OUTGROWN_SHARE = 0.25


class DisparityNormaliser:
    """Maps disparity to [0, 1] with a robust (percentile) range smoothed across frames.

    A per-frame min/max would make the whole picture flicker whenever a near object enters or a
    noisy pixel spikes; an exponential moving average of the percentile range does not. `smoothing` is the
    newest range's weight per 1/30 s: given the frames' times, the range moves as fast in seconds at any frame
    rate, and on the async network's frames, which come a few frames apart. Where a quarter of a frame lies
    beyond the range (OUTGROWN_SHARE), the side it outgrew is taken at once.
    """

    def __init__(self, low_percentile: float = 2.0, high_percentile: float = 98.0, smoothing: float = 0.15) -> None:
        if not 0.0 <= low_percentile < high_percentile <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, "
                             f"got {low_percentile}, {high_percentile}")
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1] (the newest frame's weight), got {smoothing}")
        self.low_percentile = low_percentile
        self.high_percentile = high_percentile
        self.smoothing = smoothing
        self.low: float | None = None
        self.high: float | None = None
        self._seconds: float | None = None  # the last frame's time

    def reset(self) -> None:
        """Forget the range: the next frame's own is taken whole (a cut to a new shot, whose depths have nothing
        to do with the last one's, would otherwise glide in over ~15 frames)."""
        self.low = self.high = self._seconds = None

    def update(self, disparity, seconds: float | None = None) -> tuple[float, float]:
        """The smoothed range after this frame; `seconds` is its time, where there is one."""
        # NumPy's functions dispatch to CuPy for device arrays (NEP 18), so this runs where the map is.
        low, high = (float(v) for v in np.percentile(disparity, (self.low_percentile, self.high_percentile)))
        if not (np.isfinite(low) and np.isfinite(high)):  # one NaN frame would hold the range at NaN for good
            raise ValueError("disparity holds NaN or infinite values")
        previous, self._seconds = self._seconds, seconds
        if self.low is None or self.high is None:
            self.low, self.high = low, high
        else:
            weight = newest_weight(self.smoothing, seconds, previous)
            outgrown = _share_outside(disparity, self.low, self.high) > OUTGROWN_SHARE
            self.low += (1.0 if outgrown and low < self.low else weight) * (low - self.low)
            self.high += (1.0 if outgrown and high > self.high else weight) * (high - self.high)
        return self.low, self.high

    def __call__(self, disparity, seconds: float | None = None):
        low, high = self.update(disparity, seconds)
        span = max(high - low, 1e-6 * max(abs(high), 1.0))
        return np.clip((disparity - low) / span, 0.0, 1.0).astype(np.float32)


def _share_outside(disparity, low: float, high: float) -> float:
    """The share of the map's values outside [low, high], read from a strided sample (as the focus's quantiles)."""
    step = max(1, int((disparity.size / 20_000) ** 0.5))
    sample = disparity[::step, ::step] if disparity.ndim == 2 else disparity
    return float(((sample < low) | (sample > high)).mean())
