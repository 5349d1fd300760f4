"""HDR (PQ, HLG) and BT.2020 video to SDR BT.709: the curves, the fast pass against its float64
reference, and real tagged videos through the video source."""
from __future__ import annotations

import numpy as np
import pytest

from kernels.colour import (BT2020_TO_BT709, SDR_WHITE_NITS, ColourTables, bt2390_eetf, convert_rgb48,
                            hlg_ootf_gain, hlg_to_scene, nits_to_pq, pq_to_nits)
from kernels.colour_reference import convert_rgb48_reference
from media import make_colour_video, make_yuv_video
from stream.hdr import DEFAULT_PQ_PEAK_NITS, ColourSignal, colour_signal, pq_peak_nits
from stream.sources import open_source

TRC_PQ, TRC_HLG, TRC_BT2020_10 = 16, 18, 14


def code(x: np.ndarray | float) -> np.ndarray:
    return np.round(np.asarray(x) * 65535).astype(np.uint16)


def test_pq_curve_at_published_points():
    # SMPTE ST 2084: 100 cd/m² is code 0.5081, 1000 is 0.7518, 10000 is 1
    assert nits_to_pq(100.0) == pytest.approx(0.5081, abs=2e-4)
    assert nits_to_pq(1000.0) == pytest.approx(0.7518, abs=2e-4)
    assert nits_to_pq(10000.0) == pytest.approx(1.0)
    nits = np.logspace(-3, 4, 50)
    assert np.allclose(pq_to_nits(nits_to_pq(nits)), nits, rtol=1e-9)


def test_hlg_curve_and_reference_white():
    assert hlg_to_scene(0.5) == pytest.approx(1 / 12)
    assert hlg_to_scene(0.75) == pytest.approx(0.26496, abs=1e-5)  # BT.2100's curve at reference white
    assert hlg_to_scene(1.0) == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(hlg_to_scene(np.linspace(0, 1, 1001))) > 0)
    # BT.2408: a grey at 75 % HLG signal is reference white, 203 cd/m² on the nominal 1000 cd/m² display
    scene = hlg_to_scene(0.75)
    assert scene * hlg_ootf_gain(scene) == pytest.approx(1.0, rel=0.01)  # in SDR-white units


def eetf_as_written(nits: float, source_peak: float, target_peak: float) -> float:
    """BT.2390-9 section 5.4, step by step with scalars (black levels 0), for checking the vectorised one."""
    def pq(value):  # inverse EOTF
        y = (value / 10000) ** (2610 / 16384)
        return ((3424 / 4096 + 2413 / 128 * y) / (1 + 2392 / 128 * y)) ** (2523 / 32)

    def eotf(signal):
        p = signal ** (32 / 2523)
        return 10000 * (max(p - 3424 / 4096, 0) / (2413 / 128 - 2392 / 128 * p)) ** (16384 / 2610)

    e1 = pq(nits) / pq(source_peak)
    max_lum = pq(target_peak) / pq(source_peak)
    ks = 1.5 * max_lum - 0.5
    if e1 < ks:
        e2 = e1
    else:
        t = (e1 - ks) / (1 - ks)
        e2 = ((2 * t ** 3 - 3 * t ** 2 + 1) * ks + (t ** 3 - 2 * t ** 2 + t) * (1 - ks)
              + (-2 * t ** 3 + 3 * t ** 2) * max_lum)
    return eotf(e2 * pq(source_peak))


@pytest.mark.parametrize("source_peak", [400.0, 1000.0, 4000.0, 10000.0])
def test_bt2390_matches_the_standard_written_out(source_peak):
    nits = np.array([0.5, 20, 90, 120, 203, 400, 700, source_peak])
    nits = nits[nits <= source_peak]
    expected = [eetf_as_written(n, source_peak, SDR_WHITE_NITS) for n in nits]
    assert np.allclose(bt2390_eetf(nits, source_peak, SDR_WHITE_NITS), expected, rtol=1e-9)


def test_bt2390_keeps_the_darks_and_lands_the_peak():
    nits = np.linspace(0, 1000, 20001)
    mapped = bt2390_eetf(nits, 1000.0, SDR_WHITE_NITS)
    assert mapped[-1] == pytest.approx(SDR_WHITE_NITS, rel=1e-9)
    assert np.all(np.diff(mapped) >= 0)
    dark = nits < 80  # below the knee (about 90 cd/m² for a 1000 cd/m² grade) nothing changes
    assert np.allclose(mapped[dark], nits[dark], rtol=1e-9)
    assert np.max(np.abs(np.diff(mapped, 2))) < 1e-3  # no kink at the knee
    assert np.array_equal(bt2390_eetf(nits, 150.0, SDR_WHITE_NITS), np.minimum(nits, SDR_WHITE_NITS))


@pytest.mark.parametrize("transfer, peak", [("pq", 1000.0), ("pq", 4000.0), ("pq", 400.0), ("hlg", 1000.0),
                                            ("sdr", SDR_WHITE_NITS)])
@pytest.mark.parametrize("shape", [(1, 1), (37, 53), (64, 3)])
def test_fast_pass_matches_the_float64_reference(rng, transfer, peak, shape):
    # float32 tables against float64 curves: at most a level, where a value sits on a rounding edge
    # (measured on 300,000 random values: 0.02-0.12 % of them; on these small samples at most 1.04 %)
    rgb16 = rng.integers(0, 65536, shape + (3,), dtype=np.uint16)
    rgb16.reshape(-1, 3)[:2] = [[0, 0, 0], [65535, 65535, 65535]][:rgb16.size // 3]
    for bt2020 in (True, False):
        fast = convert_rgb48(rgb16, ColourTables(transfer, peak, bt2020))
        reference = convert_rgb48_reference(rgb16, transfer, peak, bt2020)
        diff = np.abs(fast.astype(np.int16) - reference)
        assert diff.max() <= 1 and (diff > 0).mean() <= 0.015


TRANSFERS = [("pq", 1000.0), ("pq", 4000.0), ("pq", 400.0), ("pq", 10000.0), ("hlg", 1000.0), ("sdr", SDR_WHITE_NITS)]


@pytest.mark.parametrize("transfer, peak", TRANSFERS)
def test_fast_pass_is_off_the_reference_on_a_few_values_only(rng, transfer, peak):
    # 300,000 random values: the tables used to put 0.3-1.6 % of them a level off (a 4096-entry encoding
    # and HLG gain, a tone table by light), now 0.02-0.12 %
    rgb16 = rng.integers(0, 65536, (200, 500, 3), dtype=np.uint16)
    for bt2020 in (True, False):
        diff = np.abs(convert_rgb48(rgb16, ColourTables(transfer, peak, bt2020)).astype(np.int16)
                      - convert_rgb48_reference(rgb16, transfer, peak, bt2020))
        assert diff.max() <= 1 and (diff > 0).mean() <= 0.0025


# 16-bit codes at the ends: black, the first step, 10-bit limited range's black and white (64, 940) and full
# white (1023) shifted to 16 bits, the last step, white
EXTREME_CODES = [0, 1, 64 << 6, 940 << 6, 1023 << 6, 65534, 65535]


@pytest.mark.parametrize("transfer, peak", TRANSFERS)
def test_fast_pass_at_the_extreme_codes(transfer, peak):
    combinations = np.stack(np.meshgrid(*[EXTREME_CODES] * 3, indexing="ij"), axis=-1).astype(np.uint16)
    rgb16 = combinations.reshape(7, 49, 3)  # 343 pixels: an odd size, rows not a multiple of a task's
    for bt2020 in (True, False):
        tables = ColourTables(transfer, peak, bt2020)
        assert all(np.isfinite(table).all() for table in (tables.linear, tables.hlg_gain, tables.tone))
        fast = convert_rgb48(rgb16, tables)
        assert np.abs(fast.astype(np.int16) - convert_rgb48_reference(rgb16, transfer, peak, bt2020)).max() <= 1
        assert (fast[0, 0] == 0).all() and (fast[-1, -1] == 255).all()  # black and full white stay so


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (9, 1), (17, 33), (1, 67), (23, 7)])
def test_fast_pass_at_odd_sizes(rng, shape):
    rgb16 = rng.integers(0, 65536, shape + (3,), dtype=np.uint16)
    for transfer, peak in (("pq", 1000.0), ("hlg", 1000.0)):
        fast = convert_rgb48(rgb16, ColourTables(transfer, peak))
        assert fast.shape == rgb16.shape and fast.dtype == np.uint8
        assert np.abs(fast.astype(np.int16) - convert_rgb48_reference(rgb16, transfer, peak)).max(initial=0) <= 1
        if rgb16.size:  # each row on its own: no row depends on another's buffers or task
            assert all(np.array_equal(convert_rgb48(rgb16[y:y + 1], ColourTables(transfer, peak)), fast[y:y + 1])
                       for y in range(shape[0]))


@pytest.mark.parametrize("transfer, peak", [("pq", 1000.0), ("hlg", 1000.0), ("sdr", SDR_WHITE_NITS)])
def test_greys_stay_grey_and_brighter_stays_brighter(transfer, peak):
    ramp = code(np.linspace(0, 1, 4096))
    out = convert_rgb48(np.repeat(ramp[None, :, None], 3, axis=2), ColourTables(transfer, peak))[0]
    assert np.abs(out.astype(int) - out[:, :1]).max() <= 1  # B = G = R
    assert np.all(np.diff(out[:, 1].astype(int)) >= 0) and out[0, 1] == 0 and out[-1, 1] == 255


def test_hdr_white_and_highlights_land_in_the_sdr_range():
    hlg = ColourTables("hlg", 1000.0)
    white, peak = convert_rgb48(code(np.full((1, 2, 3), [[0.75], [1.0]])), hlg)[0, :, 1]
    # reference white lands high in the SDR range, with headroom left for highlights, which roll off to white
    assert 200 <= white <= 245 and peak == 255
    pq = ColourTables("pq", 1000.0)
    levels = convert_rgb48(code(np.repeat(nits_to_pq(np.array([[50.0, 100, 203, 500, 1000]]))[..., None], 3, 2)),
                           pq)[0, :, 1]
    assert np.all(np.diff(levels.astype(int)) > 0) and levels[-1] == 255
    assert levels[0] == pytest.approx(255 * (50 / SDR_WHITE_NITS) ** (1 / 2.4), abs=1)  # below the knee: exact


def test_bt2020_colours_outside_bt709_are_clipped_and_bt709_colours_kept():
    sdr = ColourTables("sdr", SDR_WHITE_NITS)
    green2020 = convert_rgb48(code(np.array([[[0.0, 1.0, 0.0]]])), sdr)[0, 0]
    assert green2020[1] == 255 and green2020[2] == 0  # BGR: full green, no red (its negative part clipped)
    # a BT.709 colour written in BT.2020 comes back as itself
    red709_linear = np.linalg.solve(BT2020_TO_BT709, [0.6, 0.05, 0.02])
    out = convert_rgb48(code(red709_linear[None, None] ** (1 / 2.4)), sdr)[0, 0]
    expected = np.round(255 * np.array([0.02, 0.05, 0.6]) ** (1 / 2.4))
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_tags_choose_the_conversion():
    class Frame:
        def __init__(self, trc, primaries):
            self.color_trc, self.color_primaries, self.side_data = trc, primaries, {}

    assert colour_signal(Frame(TRC_PQ, 9)) == ColourSignal("pq", DEFAULT_PQ_PEAK_NITS)
    assert colour_signal(Frame(TRC_PQ, 1)).bt2020 is False  # HDR on BT.709 primaries: no gamut conversion
    assert colour_signal(Frame(TRC_HLG, 2)).bt2020 is True  # untagged primaries: HDR means BT.2020
    assert colour_signal(Frame(TRC_HLG, 9)).transfer == "hlg"
    assert colour_signal(Frame(TRC_BT2020_10, 9)).transfer == "sdr"
    assert colour_signal(Frame(1, 1)) is None  # BT.709
    assert colour_signal(Frame(2, 2)) is None  # untagged
    assert colour_signal(Frame(1, 2)) is None


def test_hdr10_metadata_gives_the_peak():
    from av.sidedata.sidedata import Type

    class Frame:
        def __init__(self, side_data):
            self.side_data = side_data

    max_cll = np.array([1600, 400], np.uint32).tobytes()
    mastering = np.array([0] * 16 + [50, 10000, 4000, 1, 1, 1], np.int32).tobytes()  # max 4000/1 cd/m²
    no_luminance = np.array([0] * 16 + [50, 10000, 4000, 1, 1, 0], np.int32).tobytes()
    assert pq_peak_nits(Frame({Type.CONTENT_LIGHT_LEVEL: max_cll, Type.MASTERING_DISPLAY_METADATA: mastering})) == 1600
    assert pq_peak_nits(Frame({Type.MASTERING_DISPLAY_METADATA: mastering})) == 4000
    assert pq_peak_nits(Frame({Type.MASTERING_DISPLAY_METADATA: no_luminance})) == DEFAULT_PQ_PEAK_NITS
    assert pq_peak_nits(Frame({Type.CONTENT_LIGHT_LEVEL: np.array([90, 0], np.uint32).tobytes()})) == 400
    assert pq_peak_nits(Frame({})) == DEFAULT_PQ_PEAK_NITS


@pytest.mark.parametrize("trc, transfer", [(TRC_HLG, "hlg"), (TRC_PQ, "pq"), (TRC_BT2020_10, "sdr")])
def test_a_tagged_video_is_converted_by_its_source(tmp_path, rng, trc, transfer):
    pictures = [rng.integers(0, 65536, (24, 34, 3), dtype=np.uint16) for _ in range(2)]
    path = make_colour_video(tmp_path / "clip.mkv", pictures, trc)
    source = open_source(str(path))
    try:
        assert source.colour.transfer == transfer and str(source.colour) in source.description
        frames = [frame.image for frame in source.frames()]
    finally:
        source.close()
    peak = source.colour.peak_nits
    for image, rgb16 in zip(frames, pictures):
        assert np.abs(image.astype(np.int16) - convert_rgb48_reference(rgb16, transfer, peak)).max() <= 1


def test_a_phone_style_hdr_video_keeps_its_colours(tmp_path):
    """10-bit 4:2:0 HEVC with the BT.2020 matrix in limited range, as phones write it (here lossless, so
    that only the format's own rounding remains): flat patches of a
    BT.709 red and a grey come out as that red and that grey (a wrong matrix or range would tint them)."""
    red709 = np.linalg.solve(BT2020_TO_BT709, [0.45, 0.04, 0.03]) * SDR_WHITE_NITS  # in cd/m², BT.2020
    grey = np.full(3, 100.0)
    picture = np.zeros((64, 96, 3), np.uint16)
    picture[:, :48] = code(nits_to_pq(red709))
    picture[:, 48:] = code(nits_to_pq(grey))
    path = make_colour_video(tmp_path / "phone.mkv", [picture] * 3, TRC_PQ, codec="libx265")
    source = open_source(str(path))
    try:
        image = next(iter(source.frames())).image
    finally:
        source.close()
    expected = convert_rgb48_reference(picture, "pq", DEFAULT_PQ_PEAK_NITS)
    for patch in (np.s_[8:56, 8:40], np.s_[8:56, 56:88]):  # away from the edge the 4:2:0 chroma blurs
        assert np.abs(image[patch].astype(int) - expected[patch]).max() <= 3
    b, g, r = image[32, 20].astype(int)
    assert r > 150 and g < 90 and b < 90


def sdr_to_hlg(rgb: np.ndarray) -> np.ndarray:
    """An SDR BT.709 picture (floats in [0, 1]) as HLG BT.2020 signal, SDR white at HLG reference white
    (BT.2408): display light, the inverse OOTF for a 1000 cd/m² display, then HLG's OETF."""
    from kernels.colour import BT2020_LUMA, HLG_A, HLG_B, HLG_C

    display = (rgb ** 2.4) @ np.linalg.inv(BT2020_TO_BT709).T  # SDR-white units, BT.2020
    luminance = np.maximum(display @ np.array(BT2020_LUMA), 1e-12)
    scene = np.clip(display / hlg_ootf_gain((luminance * SDR_WHITE_NITS / 1000) ** (1 / 1.2))[..., None], 0, 1)
    return np.where(scene <= 1 / 12, np.sqrt(3 * scene),
                    HLG_A * np.log(np.maximum(12 * scene - HLG_B, 1e-12)) + HLG_C)


def test_an_sdr_photo_recorded_as_hlg_comes_back_as_it_was(tmp_path):
    """A real photo taken to HLG as a broadcaster would (SDR white at reference white) and stored as a
    phone stores it: depthcam's decode gives back the photo; a plain decode is dim and pale."""
    import av
    from skimage import data

    rgb = data.astronaut()[:128, :160].astype(np.float64) / 255
    path = make_colour_video(tmp_path / "astronaut.mkv", [code(sdr_to_hlg(rgb))] * 2, TRC_HLG, codec="libx265")
    source = open_source(str(path))
    try:
        ours = next(iter(source.frames())).image.astype(float)
    finally:
        source.close()
    with av.open(str(path)) as container:
        plain = next(container.decode(video=0)).to_ndarray(format="bgr24").astype(float)
    original = np.round(rgb[..., ::-1] * 255)

    def saturation(image):
        return (image.max(axis=2) - image.min(axis=2)).mean()

    assert np.abs(ours - original).mean() <= 4  # measured 2.2: highlights above ~90 cd/m² roll off a little
    assert saturation(ours) == pytest.approx(saturation(original), rel=0.05)
    assert np.abs(plain - original).mean() >= 10 and saturation(plain) < 0.8 * saturation(original)


def test_hdr10_metadata_of_a_real_file_gives_the_peak(tmp_path):
    picture = np.full((32, 48, 3), code(nits_to_pq(100.0)), np.uint16)
    mastering = ":master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(40000000,50)"
    path = make_colour_video(tmp_path / "hdr10.mkv", [picture] * 2, TRC_PQ, codec="libx265",
                             x265_params=f":hdr10=1:max-cll=1600,400{mastering}")
    source = open_source(str(path))
    source.close()
    assert source.colour == ColourSignal("pq", 1600.0) and "1600 nits" in source.description


def test_an_untagged_matrix_in_hdr_video_is_read_as_bt2020(tmp_path):
    """YUV planes computed here (not by FFmpeg) with BT.2020's matrix, matrix and range left untagged:
    flat patches of a saturated red and a grey come back as the reference says (FFmpeg's default,
    BT.601, would tint both)."""
    signal = np.zeros((32, 48, 3))
    signal[:, :24] = nits_to_pq(np.linalg.solve(BT2020_TO_BT709, [0.45, 0.04, 0.03]) * SDR_WHITE_NITS)
    signal[:, 24:] = nits_to_pq(100.0)
    path = make_yuv_video(tmp_path / "untagged.mkv", signal, TRC_PQ)
    source = open_source(str(path))
    try:
        image = next(iter(source.frames())).image
    finally:
        source.close()
    expected = convert_rgb48_reference(code(signal), "pq", DEFAULT_PQ_PEAK_NITS)
    interior = np.s_[:, list(range(0, 20)) + list(range(28, 48))]  # the decoder blends chroma at the edge
    assert np.abs(image[interior].astype(int) - expected[interior]).max() <= 2
