"""Float64 reference of `kernels.colour`: the same chain, every curve evaluated exactly (no tables)."""
from __future__ import annotations

import numpy as np

from kernels.colour import (BT2020_TO_BT709, CODE_LEVELS, SDR_WHITE_NITS, graded_peak_nits, hlg_luma, hlg_ootf_gain,
                            signal_to_linear, tone_map)


def convert_rgb48_reference(rgb16: np.ndarray, transfer: str, peak_nits: float, bt2020: bool = True) -> np.ndarray:
    rgb = signal_to_linear(rgb16.astype(np.float64) / (CODE_LEVELS - 1), transfer)
    if transfer == "hlg":
        rgb = rgb * hlg_ootf_gain(rgb @ np.array(hlg_luma(bt2020)))[..., None]
    peak = graded_peak_nits(transfer, peak_nits)
    m = np.minimum(rgb.max(axis=2), peak / SDR_WHITE_NITS)  # above the grade's peak: the peak's factor (then clipped)
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(m > 0, tone_map(m, peak) / m, 1.0)
    matrix = BT2020_TO_BT709 if bt2020 else np.eye(3)
    rgb709 = np.clip((rgb * factor[..., None]) @ matrix.T, 0.0, 1.0)
    return np.round(255.0 * rgb709 ** (1 / 2.4)).astype(np.uint8)[..., ::-1]
