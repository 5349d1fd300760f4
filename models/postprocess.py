"""Disparity normalisation to [0, 1] that stays stable over time."""
from __future__ import annotations

import numpy as np


class DisparityNormaliser:
    """Maps disparity to [0, 1] with a robust (percentile) range smoothed across frames.

    A per-frame min/max would make the whole picture flicker whenever a near object enters or a
    noisy pixel spikes; an exponential moving average of the percentile range does not.
    """

    def __init__(self, low_percentile: float = 2.0, high_percentile: float = 98.0, smoothing: float = 0.15) -> None:
        if not 0.0 <= low_percentile < high_percentile <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {low_percentile}, {high_percentile}")
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1] (the newest frame's weight), got {smoothing}")
        self.low_percentile = low_percentile
        self.high_percentile = high_percentile
        self.smoothing = smoothing
        self.low: float | None = None
        self.high: float | None = None

    def reset(self) -> None:
        """Forget the range: the next frame's own is taken whole (a cut to a new shot, whose depths have nothing
        to do with the last one's, would otherwise glide in over ~15 frames)."""
        self.low = self.high = None

    def update(self, disparity) -> tuple[float, float]:
        # NumPy's functions dispatch to CuPy for device arrays (NEP 18), so this runs where the map is.
        low, high = (float(v) for v in np.percentile(disparity, (self.low_percentile, self.high_percentile)))
        if not (np.isfinite(low) and np.isfinite(high)):  # one NaN frame would hold the range at NaN for good
            raise ValueError("disparity holds NaN or infinite values")
        if self.low is None or self.high is None:
            self.low, self.high = low, high
        else:
            self.low += self.smoothing * (low - self.low)
            self.high += self.smoothing * (high - self.high)
        return self.low, self.high

    def __call__(self, disparity):
        low, high = self.update(disparity)
        span = max(high - low, 1e-6 * max(abs(high), 1.0))
        return np.clip((disparity - low) / span, 0.0, 1.0).astype(np.float32)
