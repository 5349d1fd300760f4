"""HDR and BT.2020 colours to SDR BT.709: the curves, their tables, and one Numba pass per frame.

Linear light (PQ's EOTF; HLG's inverse OETF and its OOTF for a 1000-nit display), the BT.2390 EETF
on max(R, G, B) so highlights above the SDR range roll off instead of clipping, BT.2020 to BT.709
primaries, and the encoding for an SDR display (BT.1886, gamma 2.4). Light is counted in SDR whites:
203 cd/m² (BT.2408's HDR reference white) is 1.0, the SDR display's peak, as in libplacebo and mpv.
The EETF maps the grade's peak there, so reference white itself lands lower: code 230 of 255 for a
1000 cd/m² grade, 210 for 4000, 198 for 10000. BT.2020 SDR video gets the primaries conversion alone.
`colour_reference` computes the same chain in float64 without tables.

Every curve is tabulated once per video (`ColourTables`), by 16-bit code where it is a function of one
channel's code. Rows go in parallel, each in passes over row buffers that stay in cache, table lookups
(scalar: LLVM does not vectorise them on today's x86 CPUs) apart from arithmetic (vectorised): the light,
then the matrix, clipping and square roots, then the encoding's lookups into the BGR output. That took a
1080p picture from 27 to 9 ms (PQ) and from 45 to 13 ms (HLG) of CPU on one thread (bench/bench_hdr.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

import kernels.numba_cache  # noqa: F401 (first: every cached kernel's stamp is the whole package's sources)
from kernels.backend import kernel_array
from kernels.cpu_threads import parallel_section

SDR_WHITE_NITS = 203.0  # BT.2408's HDR reference white, shown as SDR's 100 %
HLG_DISPLAY_PEAK_NITS = 1000.0  # HLG's nominal display (BT.2100): system gamma 1.2
HLG_SYSTEM_GAMMA = 1.2
TRANSFERS = ("pq", "hlg", "sdr")
CODE_LEVELS = 65536  # rgb48 samples: the curves of the signal are tabulated for every code
GAIN_TABLE_SIZE = 65536  # HLG's gain, by √luminance: with 4096 entries 0.25 % of values came a level off, now 0.1 %
ENCODE_TABLE_SIZE = 65536  # by √light, 64 KiB: with 4096 entries 1.4 % of values came a level off, now 0.09 %
# (the kernels index the tables with uint16: none may have more than 65536 entries)
ROWS_PER_TASK = 8  # rows a parallel task converts with one set of row buffers (an allocation per task)

# Linear BT.2020 RGB to linear BT.709 RGB (BT.2087).
BT2020_TO_BT709 = np.array([[1.660491, -0.587641, -0.072850],
                            [-0.124550, 1.132900, -0.008349],
                            [-0.018151, -0.100579, 1.118730]])
BT2020_LUMA = (0.2627, 0.6780, 0.0593)
BT709_LUMA = (0.2126, 0.7152, 0.0722)

# SMPTE ST 2084 (PQ).
PQ_M1, PQ_M2 = 2610 / 16384, 2523 / 4096 * 128
PQ_C1, PQ_C2, PQ_C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
# ARIB STD-B67 (HLG).
HLG_A = 0.17883277
HLG_B = 1 - 4 * HLG_A
HLG_C = 0.5 - HLG_A * float(np.log(4 * HLG_A))


def pq_to_nits(signal: np.ndarray) -> np.ndarray:
    """PQ's EOTF: signal in [0, 1] to display light in cd/m²."""
    p = np.power(np.clip(signal, 0.0, 1.0), 1 / PQ_M2)
    return 10000.0 * np.power(np.maximum(p - PQ_C1, 0.0) / (PQ_C2 - PQ_C3 * p), 1 / PQ_M1)


def nits_to_pq(nits: np.ndarray | float) -> np.ndarray:
    """PQ's inverse EOTF."""
    y = np.power(np.clip(np.asarray(nits, dtype=np.float64) / 10000.0, 0.0, 1.0), PQ_M1)
    return np.power((PQ_C1 + PQ_C2 * y) / (1 + PQ_C3 * y), PQ_M2)


def hlg_to_scene(signal: np.ndarray) -> np.ndarray:
    """HLG's inverse OETF: signal in [0, 1] to relative scene light in [0, 1]."""
    e = np.clip(np.asarray(signal, dtype=np.float64), 0.0, 1.0)
    with np.errstate(over="ignore"):
        high = (np.exp((e - HLG_C) / HLG_A) + HLG_B) / 12.0
    return np.where(e <= 0.5, e * e / 3.0, high)


def bt2390_eetf(nits: np.ndarray, source_peak: float, target_peak: float) -> np.ndarray:
    """BT.2390's EETF (black level 0): display light mastered up to `source_peak` for a display that
    reaches `target_peak`. Unchanged below the knee; a Hermite spline in PQ up to the target's peak."""
    nits = np.asarray(nits, dtype=np.float64)
    if source_peak <= target_peak:
        return np.minimum(nits, target_peak)
    e_peak = nits_to_pq(source_peak)
    e1 = np.minimum(nits_to_pq(nits) / e_peak, 1.0)
    max_lum = nits_to_pq(target_peak) / e_peak
    knee = 1.5 * max_lum - 0.5
    t = (e1 - knee) / (1.0 - knee)
    spline = ((2 * t ** 3 - 3 * t ** 2 + 1) * knee + (t ** 3 - 2 * t ** 2 + t) * (1 - knee)
              + (-2 * t ** 3 + 3 * t ** 2) * max_lum)
    return pq_to_nits(np.where(e1 < knee, e1, spline) * e_peak)


def signal_to_linear(code: np.ndarray, transfer: str) -> np.ndarray:
    """Signal in [0, 1] to linear light: display light in SDR-white units (PQ), scene light (HLG,
    before its OOTF), or display light of an SDR BT.1886 display."""
    if transfer == "pq":
        return pq_to_nits(code) / SDR_WHITE_NITS
    if transfer == "hlg":
        return hlg_to_scene(code)
    return np.power(np.clip(code, 0.0, 1.0), 2.4)


def hlg_ootf_gain(luminance: np.ndarray) -> np.ndarray:
    """HLG's OOTF as a gain on scene light, in SDR-white units: Lw · Ys^(γ - 1) / 203."""
    return HLG_DISPLAY_PEAK_NITS / SDR_WHITE_NITS * np.power(np.clip(luminance, 0.0, 1.0), HLG_SYSTEM_GAMMA - 1)


@dataclass
class ColourTables:
    """The per-video tables of the fast pass, each a curve sampled once per video. The encoding and HLG's
    gain are steep near black: their tables are spaced by the square root (index = √x · (n - 1)), so the
    encoding's first step is 0.03 of a level and its steps near white 0.003."""

    transfer: str
    peak_nits: float
    bt2020: bool = True  # False: the primaries are BT.709's already
    # the decoder's codes times this are the true ones: swscale gives limited-range YUV's white as 65283 of 65535
    # (stream.hdr measures it per format), which put BT.2020 SDR white at 254 and PQ's grey 2 levels dark
    code_gain: float = 1.0

    def __post_init__(self) -> None:
        if self.transfer not in TRANSFERS:
            raise ValueError(f"transfer must be one of {TRANSFERS}, got {self.transfer!r}")
        signal = np.minimum(np.arange(CODE_LEVELS) * self.code_gain / (CODE_LEVELS - 1), 1.0)
        linear = signal_to_linear(signal, self.transfer)
        self.linear = linear.astype(np.float32)  # by code: exact but for float32's rounding
        peak = graded_peak_nits(self.transfer, self.peak_nits)
        self.tone_top = peak / SDR_WHITE_NITS
        if self.transfer == "hlg":
            self.hlg_gain = hlg_ootf_gain(np.linspace(0.0, 1.0, GAIN_TABLE_SIZE) ** 2).astype(np.float32)
            # tone[i]: the factor for a pixel whose brightest channel is m = top · i / (n - 1) SDR whites
            # after the OOTF (linear steps: the factor is 1 up to the knee, then smooth)
            self.tone = tone_factors(np.linspace(0.0, self.tone_top, CODE_LEVELS), peak)
        else:  # no OOTF (PQ and SDR are display light already); tone[code of the brightest channel]
            self.hlg_gain = np.zeros(0, np.float32)
            self.tone = tone_factors(linear, peak)
        self.matrix = (BT2020_TO_BT709 if self.bt2020 else np.eye(3)).astype(np.float32)
        # HLG's OOTF scales by the pixel's luminance, weighed in the video's own primaries: BT.2020's weights on
        # BT.709 light gave a BT.709-tagged HLG video's saturated reds up to 3 levels too bright, its blues 3 too dark
        self.luma = np.array(hlg_luma(self.bt2020), np.float32)
        root = np.linspace(0.0, 1.0, ENCODE_TABLE_SIZE)
        self.encode = np.round(255.0 * root ** (2 / 2.4)).astype(np.uint8)  # V = L^(1/2.4), L = root²


def hlg_luma(bt2020: bool) -> tuple[float, float, float]:
    """The luminance weights of the video's primaries (R, G, B), which HLG's OOTF raises to γ − 1."""
    return BT2020_LUMA if bt2020 else BT709_LUMA


def tone_factors(m: np.ndarray, peak_nits: float) -> np.ndarray:
    """float32 tone_map(m) / m, where above the grade's peak m counts as the peak (its light is then clipped)."""
    m = np.minimum(m, peak_nits / SDR_WHITE_NITS)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m > 0, tone_map(m, peak_nits) / m, 1.0).astype(np.float32)


def graded_peak_nits(transfer: str, peak_nits: float) -> float:
    """The light the tone curve maps onto SDR white: the grade's peak, or SDR white itself for SDR video."""
    return SDR_WHITE_NITS if transfer == "sdr" else peak_nits


def tone_map(m: np.ndarray, peak_nits: float) -> np.ndarray:
    """Display light in SDR-white units, mastered up to `peak_nits`, for an SDR display (peak 1.0)."""
    return bt2390_eetf(np.asarray(m) * SDR_WHITE_NITS, peak_nits, SDR_WHITE_NITS) / SDR_WHITE_NITS


@njit(cache=True, fastmath=True, error_model="numpy")
def _light_row(codes, linear, tone, light):  # pragma: no cover - Numba
    """PQ and SDR: each channel's light, times the tone factor of the brightest channel, found by its code
    (light rises with the code, so the brightest code has the brightest light)."""
    for x in range(light.shape[1]):
        r, g, b = codes[3 * x], codes[3 * x + 1], codes[3 * x + 2]
        s = tone[max(r, g, b)]
        light[0, x] = linear[r] * s
        light[1, x] = linear[g] * s
        light[2, x] = linear[b] * s


@njit(cache=True, fastmath=True, error_model="numpy")
def _hlg_light_row(codes, linear, hlg_gain, tone, tone_top, luma, light, index, gain):  # pragma: no cover - Numba
    """HLG: scene light, times the OOTF's gain (display light scales with the scene's luminance), times
    the tone factor of the brightest channel. Five passes, each lookup apart from the arithmetic it
    needs, the gain kept in a row of its own: a 1080p picture took 13.5 ms on one thread, against 20.6
    with one loop and 15.5 with the gain multiplied into the light at once."""
    n_gain = np.float32(hlg_gain.shape[0] - 1)
    tone_scale = np.float32(tone.shape[0] - 1) / tone_top
    zero, half, one = np.float32(0.0), np.float32(0.5), np.float32(1.0)
    l0, l1, l2 = luma[0], luma[1], luma[2]
    width = light.shape[1]
    for x in range(width):
        light[0, x] = linear[codes[3 * x]]
        light[1, x] = linear[codes[3 * x + 1]]
        light[2, x] = linear[codes[3 * x + 2]]
    for x in range(width):
        luminance = min(max(l0 * light[0, x] + l1 * light[1, x] + l2 * light[2, x], zero), one)
        index[x] = np.uint16(math.sqrt(luminance) * n_gain + half)
    for x in range(width):
        gain[x] = hlg_gain[index[x]]
    for x in range(width):  # above the grade's peak: the peak's factor (the light is clipped later)
        brightest = max(light[0, x], light[1, x], light[2, x]) * gain[x]
        index[x] = np.uint16(min(brightest, tone_top) * tone_scale + half)
    for x in range(width):
        f = gain[x] * tone[index[x]]
        light[0, x] *= f
        light[1, x] *= f
        light[2, x] *= f


@njit(cache=True, fastmath=True, error_model="numpy")
def _encoding_index_row(light, matrix, n_enc, index):  # pragma: no cover - Numba
    """BT.709 light, clipped to the display's range, as indices of the encoding's table. No table lookups
    here, so that LLVM vectorises it (it would not vectorise a loop with them)."""
    zero, half, one = np.float32(0.0), np.float32(0.5), np.float32(1.0)
    # hoisted: Numba cannot tell that the output does not alias the matrix, and would reload it per pixel
    m00, m01, m02 = matrix[0, 0], matrix[0, 1], matrix[0, 2]
    m10, m11, m12 = matrix[1, 0], matrix[1, 1], matrix[1, 2]
    m20, m21, m22 = matrix[2, 0], matrix[2, 1], matrix[2, 2]
    for x in range(light.shape[1]):
        r, g, b = light[0, x], light[1, x], light[2, x]
        # outside BT.709's gamut, or above white: clipped
        v0 = min(max(m00 * r + m01 * g + m02 * b, zero), one)
        v1 = min(max(m10 * r + m11 * g + m12 * b, zero), one)
        v2 = min(max(m20 * r + m21 * g + m22 * b, zero), one)
        index[0, x] = np.uint16(math.sqrt(v0) * n_enc + half)
        index[1, x] = np.uint16(math.sqrt(v1) * n_enc + half)
        index[2, x] = np.uint16(math.sqrt(v2) * n_enc + half)


@njit(cache=True, fastmath=True, error_model="numpy")
def _store_bgr_row(index, encode, out_row):  # pragma: no cover - Numba
    for x in range(index.shape[1]):
        out_row[3 * x + 2] = encode[index[0, x]]
        out_row[3 * x + 1] = encode[index[1, x]]
        out_row[3 * x] = encode[index[2, x]]


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _convert(rgb16, linear, hlg_gain, tone, tone_top, luma, matrix, encode, out_bgr):  # pragma: no cover - Numba
    height, width = out_bgr.shape[:2]
    codes, out = rgb16.reshape(height, width * 3), out_bgr.reshape(height, width * 3)
    n_enc = np.float32(encode.shape[0] - 1)
    for task in prange((height + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        # one row, by channel; uint16 indices (every table has at most 65536 entries) keep a 1080p row's
        # buffers in L1 (35 KiB, 43 with HLG's gain): up to 7 % faster than int32 indices
        light = np.empty((3, width), np.float32)
        index = np.empty((3, width), np.uint16)
        gain = np.empty(width, np.float32)
        for y in range(task * ROWS_PER_TASK, min((task + 1) * ROWS_PER_TASK, height)):
            if hlg_gain.shape[0]:
                _hlg_light_row(codes[y], linear, hlg_gain, tone, tone_top, luma, light, index[0], gain)
            else:
                _light_row(codes[y], linear, tone, light)
            _encoding_index_row(light, matrix, n_enc, index)
            _store_bgr_row(index, encode, out[y])


def convert_rgb48(rgb16: np.ndarray, tables: ColourTables) -> np.ndarray:
    """uint16 HxWx3 RGB (BT.2020, full range) to uint8 HxWx3 BGR (BT.709, SDR)."""
    rgb16 = kernel_array(rgb16, np.uint16)
    out = np.empty(rgb16.shape, np.uint8)
    with parallel_section():
        _convert(rgb16, tables.linear, tables.hlg_gain, tables.tone, np.float32(tables.tone_top), tables.luma,
                 tables.matrix, tables.encode, out)
    return out
