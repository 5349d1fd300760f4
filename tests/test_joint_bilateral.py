"""Joint bilateral refinement: the fast CPU path and the CUDA kernel against the float64 reference."""
from __future__ import annotations

import numpy as np
import pytest

import kernels
from kernels.bilateral import MAX_RADIUS, joint_bilateral, refine_live
from kernels.bilateral_cuda import RANGE_VARIANTS
from kernels.bilateral_reference import joint_bilateral_reference, joint_bilateral_upsample_reference


def random_inputs(rng: np.random.Generator, height: int, width: int, smooth: bool = False):
    disparity = rng.random((height, width), dtype=np.float32)
    guide = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if smooth:  # natural-image-like guide: neighbours similar, so the range weights are far from 0 or 1
        import cv2

        guide = cv2.GaussianBlur(guide, (0, 0), 1.5)
    return disparity, guide


def synthetic_scene(height: int = 120, width: int = 160):
    """A textured disc (near, disparity 0.8) in front of a textured background (far, 0.2), with true edges."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:height, :width]
    subject = (yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (min(height, width) / 3) ** 2
    truth = np.where(subject, 0.8, 0.2).astype(np.float32)
    guide = np.empty((height, width, 3), np.uint8)
    guide[...] = (40, 90, 160)
    guide[subject] = (200, 170, 60)
    guide = np.clip(guide.astype(np.int16) + rng.integers(-6, 7, guide.shape), 0, 255).astype(np.uint8)
    return truth, guide


# --- CPU path against the reference -----------------------------------------------------------------

@pytest.mark.parametrize("radius", [1, 2, 3, 5, 8, 12, 16])
def test_cpu_matches_reference(rng, radius):
    for smooth in (False, True):
        d, g = random_inputs(rng, 29, 37, smooth)  # odd sizes, smaller than the window for large r
        for sigma_spatial, sigma_range in ((radius / 2 + 0.5, 0.05), (20.0, 0.2), (1.0, 1.0)):
            ref = joint_bilateral_reference(d, g, radius, sigma_spatial, sigma_range)
            out = joint_bilateral(d, g, radius, sigma_spatial, sigma_range, backend="cpu")
            assert out.dtype == np.float32 and out.shape == d.shape
            assert np.abs(out - ref).max() <= 1e-4


def test_cpu_matches_reference_at_borders_and_odd_shapes(rng):
    for height, width in ((1, 1), (1, 17), (23, 1), (3, 5), (41, 19)):
        d, g = random_inputs(rng, height, width, smooth=True)
        ref = joint_bilateral_reference(d, g, 6, 4.0, 0.1)
        out = joint_bilateral(d, g, 6, 4.0, 0.1, backend="cpu")
        assert np.abs(out - ref).max() <= 1e-4, (height, width)


def test_default_parameters_match_reference(rng):
    d, g = random_inputs(rng, 31, 45, smooth=True)
    ref = joint_bilateral_reference(d, g, 12, 20.0, 0.05)
    assert np.abs(kernels.joint_bilateral(d, g, backend="cpu") - ref).max() <= 1e-4


def test_radius_zero_and_constant_image_are_identities(rng):
    d, g = random_inputs(rng, 17, 23)
    np.testing.assert_allclose(joint_bilateral(d, g, 0, 5.0, 0.1, backend="cpu"), d, rtol=1e-6)
    flat = np.full((17, 23), 0.375, np.float32)
    np.testing.assert_allclose(joint_bilateral(flat, g, 5, 5.0, 0.1, backend="cpu"), flat, rtol=1e-6)


def test_edges_follow_the_guide():
    """A step in the guide with a misplaced, noisy step in the depth: the filter puts it back on the edge."""
    truth, guide = synthetic_scene()
    rng = np.random.default_rng(3)
    import cv2

    rough = (cv2.GaussianBlur(truth, (0, 0), 3) + rng.normal(0, 0.03, truth.shape)).astype(np.float32)
    out = joint_bilateral(rough, guide, 8, 6.0, 0.1, backend="cpu")
    edges = cv2.Canny((truth * 255).astype(np.uint8), 10, 20) > 0
    near_edge = cv2.dilate(edges.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0  # within 3 px of the edge
    rmse = lambda a, mask: float(np.sqrt(np.mean((a - truth)[mask] ** 2)))  # noqa: E731
    assert rmse(out, near_edge) < 0.6 * rmse(rough, near_edge)  # the blurred step is sharpened again
    assert rmse(out, ~near_edge) < 0.7 * rmse(rough, ~near_edge)  # and the noise on flat parts is smoothed


# --- live mode ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("low_shape", [(128, 160), (192, 320), (60, 80), (480, 640)])
def test_refine_live_shape_and_range(low_shape):
    truth, guide = synthetic_scene(480, 640)
    import cv2

    low = cv2.resize(truth, low_shape[::-1], interpolation=cv2.INTER_AREA)
    out = refine_live(low, guide, backend="cpu")
    assert out.shape == (480, 640) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.2 - 1e-5 and out.max() <= 0.8 + 1e-5  # a convex combination


@pytest.mark.parametrize("low_shape, full_shape", [((12, 16), (48, 64)), ((40, 60), (120, 180)), ((9, 13), (9, 13)),
                                                   ((7, 9), (31, 45)), ((1, 1), (5, 7)), ((5, 11), (23, 17))])
@pytest.mark.parametrize("sigma_range", [0.02, 0.05, 0.3])
def test_joint_bilateral_upsampling_matches_the_float64_reference(rng, low_shape, full_shape, sigma_range):
    """Live mode's upsampler against its float64 reference: any scale, including 1 and 3, where pixel
    centres fall exactly on low-res samples (a float floor picked either side's taps, by FMA contraction),
    a frame narrower than its low-res map, and narrow sigmas where no neighbour's colour resembles p's
    (the nearest sample is taken)."""
    import cv2

    from kernels.bilateral import LIVE_UPSAMPLE_SIGMA, range_lut
    from kernels.bilateral_cpu import guide_planes, joint_bilateral_upsample

    low = rng.random(low_shape).astype(np.float32)
    guide = rng.integers(0, 256, full_shape + (3,), dtype=np.uint8)
    low_guide = cv2.resize(guide, low_shape[::-1], interpolation=cv2.INTER_AREA)
    fast = joint_bilateral_upsample(low, guide_planes(low_guide), guide, range_lut(sigma_range), LIVE_UPSAMPLE_SIGMA)
    reference = joint_bilateral_upsample_reference(low, low_guide, guide, sigma_range, LIVE_UPSAMPLE_SIGMA)
    assert np.abs(fast - reference).max() <= 1e-5


def extreme_colours(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Every channel 0 or 255: each colour difference is 0 or ±255, the ends of the signed range table."""
    return (rng.integers(0, 2, (height, width, 3)) * 255).astype(np.uint8)


def test_cpu_extreme_colour_differences_match_reference(rng):
    """The fast path packs B, G and R into one word and reads all three differences from one subtraction
    (255 + Δ in 10-bit fields): at Δ = ±255 in every channel at once no field may borrow from the next.
    σr = 1 keeps a 255 difference's weight (exp(−1/2) a channel) far above the table's floor."""
    d = rng.random((23, 31), dtype=np.float32)
    g = extreme_colours(rng, 23, 31)
    for radius in (1, 3):
        ref = joint_bilateral_reference(d, g, radius, 2.0, 1.0)
        assert np.abs(joint_bilateral(d, g, radius, 2.0, 1.0, backend="cpu") - ref).max() <= 1e-4


def test_upsampling_of_extreme_colour_differences_matches_the_reference(rng):
    from kernels.bilateral import LIVE_UPSAMPLE_SIGMA, range_lut
    from kernels.bilateral_cpu import guide_planes, joint_bilateral_upsample

    low = rng.random((7, 9)).astype(np.float32)
    guide = extreme_colours(rng, 29, 40)
    low_guide = extreme_colours(rng, 7, 9)  # not the guide's average: differences of ±255 both ways
    fast = joint_bilateral_upsample(low, guide_planes(low_guide), guide, range_lut(1.0), LIVE_UPSAMPLE_SIGMA)
    reference = joint_bilateral_upsample_reference(low, low_guide, guide, 1.0, LIVE_UPSAMPLE_SIGMA)
    assert np.abs(fast - reference).max() <= 1e-5


def test_refine_live_close_to_full_resolution_filter():
    import cv2

    truth, guide = synthetic_scene(240, 320)
    rng = np.random.default_rng(5)
    low = cv2.resize(truth, (160, 128), interpolation=cv2.INTER_AREA)
    low = (cv2.GaussianBlur(low, (0, 0), 1.5) + rng.normal(0, 0.02, low.shape)).astype(np.float32)
    upsampled = cv2.resize(low, (320, 240), interpolation=cv2.INTER_LINEAR)
    full = joint_bilateral(upsampled, guide, 8, 6.0, 0.08, backend="cpu")
    live = refine_live(low, guide, backend="cpu")
    rmse = lambda a: float(np.sqrt(np.mean((a - truth) ** 2)))  # noqa: E731
    assert rmse(live) < rmse(upsampled)             # better than plain upsampling
    assert rmse(live) < rmse(full) + 0.02           # and about as good as the full-resolution filter
    assert float(np.sqrt(np.mean((live - full) ** 2))) < 0.05


def test_refine_live_upsampling_puts_the_edge_back_on_the_guides_edge():
    """The joint bilateral upsampling, not a plain resize of the working-size result, sharpens the depth edge at
    full resolution: within 3 px of the true edge (as test_edges_follow_the_guide measures), about half the error
    of cv2.resize of the same working-size filtered map."""
    import cv2

    from kernels.bilateral import LIVE_RADIUS, LIVE_SIGMA_RANGE, LIVE_SIGMA_SPATIAL, LIVE_WORK_WIDTH, working_size

    truth, guide = synthetic_scene(240, 320)
    rng = np.random.default_rng(5)
    low = cv2.resize(truth, (160, 128), interpolation=cv2.INTER_AREA)
    low = (cv2.GaussianBlur(low, (0, 0), 1.5) + rng.normal(0, 0.02, low.shape)).astype(np.float32)
    work_h, work_w = working_size(240, 320, LIVE_WORK_WIDTH)
    guide_low = cv2.resize(guide, (work_w, work_h), interpolation=cv2.INTER_AREA)
    filtered = joint_bilateral(cv2.resize(low, (work_w, work_h), interpolation=cv2.INTER_LINEAR), guide_low,
                               LIVE_RADIUS, LIVE_SIGMA_SPATIAL, LIVE_SIGMA_RANGE, backend="cpu")
    resized = cv2.resize(filtered, (320, 240), interpolation=cv2.INTER_LINEAR)
    live = refine_live(low, guide, backend="cpu")
    edges = cv2.Canny((truth * 255).astype(np.uint8), 10, 20) > 0
    near_edge = cv2.dilate(edges.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0  # within 3 px of the edge
    rmse = lambda a, mask: float(np.sqrt(np.mean((a - truth)[mask] ** 2)))  # noqa: E731
    assert rmse(live, near_edge) < 0.7 * rmse(resized, near_edge)  # measured 0.066 against 0.130
    assert rmse(live, ~near_edge) < rmse(resized, ~near_edge) + 0.005  # and no worse on the flat parts


# --- validation --------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    dict(disparity=np.zeros((4, 5), np.int32)),
    dict(disparity=np.zeros((4, 5, 1), np.float32)),
    dict(guide=np.zeros((4, 5, 2), np.uint8)),
    dict(guide=np.zeros((4, 5, 3), np.float32)),
    dict(guide=np.zeros((4, 6, 3), np.uint8)),
    dict(radius=-1), dict(radius=MAX_RADIUS + 1), dict(radius=2.5),
    dict(sigma_spatial=0.0), dict(sigma_range=-1.0), dict(sigma_range=float("nan")),
    dict(backend="opencl"),
])
def test_invalid_inputs_raise(bad):
    args = dict(disparity=np.zeros((4, 5), np.float32), guide=np.zeros((4, 5, 3), np.uint8), radius=2,
                sigma_spatial=2.0, sigma_range=0.1, backend="cpu")
    args.update(bad)
    with pytest.raises(ValueError):
        joint_bilateral(args["disparity"], args["guide"], args["radius"], args["sigma_spatial"],
                        args["sigma_range"], backend=args["backend"])


def test_refine_live_validation():
    with pytest.raises(ValueError):
        refine_live(np.zeros((4, 5), np.float32), np.zeros((8, 10, 3), np.uint8), work_width=1, backend="cpu")
    with pytest.raises(ValueError):
        refine_live(np.zeros((4, 5), np.int32), np.zeros((8, 10, 3), np.uint8), backend="cpu")


@pytest.mark.parametrize("name", ["sigma_spatial", "sigma_range"])
@pytest.mark.parametrize("value", ["0.1", None, True, [0.1], 1j, 0.0, -1.0, float("inf"), float("nan")])
def test_sigma_errors_are_value_errors_naming_the_argument(name, value):
    """Not a TypeError from NumPy's isfinite (strings, None, lists), and a bool is not a sigma."""
    params = dict(radius=2, sigma_spatial=2.0, sigma_range=0.1, backend="cpu")
    params[name] = value
    d, g = np.zeros((4, 5), np.float32), np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match=name):
        joint_bilateral(d, g, **params)
    with pytest.raises(ValueError, match=name):
        refine_live(d, g, **params)


def test_extreme_sigmas_give_the_filter_s_limits(rng):
    """1e-300 and 1e300 are valid positive sigmas: no ZeroDivision/Overflow in the tables, no NaN output;
    the result is the filter's limit (only q = p or equal colours weigh; all weights 1), which the float64
    reference reaches at 1e-4 and 1e6."""
    d, g = random_inputs(rng, 15, 18, smooth=True)
    g[5:9, 6:12] = g[6, 7]  # a flat patch: equal colours for the tiny sigma_range
    np.testing.assert_array_equal(joint_bilateral(d, g, 4, 1e-300, 0.1, backend="cpu"), d)
    for ss, sr, ref_ss, ref_sr in ((2.0, 1e-300, 2.0, 1e-4), (1e300, 0.1, 1e6, 0.1), (2.0, 1e300, 2.0, 1e6),
                                   (1e300, 1e300, 1e6, 1e6)):
        out = joint_bilateral(d, g, 4, ss, sr, backend="cpu")
        assert np.abs(out - joint_bilateral_reference(d, g, 4, ref_ss, ref_sr)).max() <= 1e-4, (ss, sr)
        assert np.isfinite(refine_live(d, g, work_width=8, radius=2, sigma_spatial=ss, sigma_range=sr,
                                       backend="cpu")).all()


# --- inputs as users pass them -----------------------------------------------------------------------

def test_float_disparity_of_any_precision_is_accepted(rng):
    """float64 (NumPy's default), float16 and big-endian float32 are cast to float32, as depth_of_field does."""
    d, g = random_inputs(rng, 19, 27, smooth=True)
    expected = joint_bilateral(d, g, 4, 3.0, 0.1, backend="cpu")
    for other in (d.astype(np.float64), d.astype(">f4")):
        np.testing.assert_array_equal(joint_bilateral(other, g, 4, 3.0, 0.1, backend="cpu"), expected)
        np.testing.assert_array_equal(refine_live(other, g, work_width=9, backend="cpu"),
                                      refine_live(d, g, work_width=9, backend="cpu"))
    half = d.astype(np.float16)
    assert np.abs(joint_bilateral(half, g, 4, 3.0, 0.1, backend="cpu")
                  - joint_bilateral_reference(half, g, 4, 3.0, 0.1)).max() <= 1e-4


def test_float32_contiguous_disparity_reaches_the_kernel_uncopied(rng, monkeypatch):
    import kernels.bilateral_cpu as cpu

    seen = []
    real = cpu.joint_bilateral_planes
    monkeypatch.setattr(cpu, "joint_bilateral_planes", lambda disparity, *rest: seen.append(disparity) or
                        real(disparity, *rest))
    d, g = random_inputs(rng, 8, 9)
    joint_bilateral(d, g, 2, 2.0, 0.1, backend="cpu")
    assert seen[-1] is d
    joint_bilateral(d[:, ::-1].astype(np.float64), g, 2, 2.0, 0.1, backend="cpu")
    assert seen[-1].dtype == np.float32 and seen[-1].flags.c_contiguous


def test_grey_and_bgra_guides(rng):
    """A grey guide (HxW or HxWx1) compares one channel: |c| is the grey difference, as the reference computes
    it for a one-channel guide (not √3 times it, as a grey image copied into B, G and R would). BGRA's alpha
    is no colour: ignored."""
    d, g = random_inputs(rng, 21, 26, smooth=True)
    grey = np.ascontiguousarray(g[..., 1])
    ref = joint_bilateral_reference(d, grey[..., None], 5, 3.0, 0.1)
    for guide in (grey, grey[..., None]):
        assert np.abs(joint_bilateral(d, guide, 5, 3.0, 0.1, backend="cpu") - ref).max() <= 1e-4
        assert np.abs(refine_live(d, guide, work_width=64, radius=5, sigma_spatial=3.0, sigma_range=0.1,
                                  backend="cpu") - ref).max() <= 1e-4  # work size = full size: the exact filter
        low = refine_live(d, guide, work_width=9, backend="cpu")
        assert low.shape == d.shape and low.min() >= d.min() - 1e-6 and low.max() <= d.max() + 1e-6
    bgra = np.dstack([g, rng.integers(0, 256, g.shape[:2], dtype=np.uint8)])
    np.testing.assert_array_equal(joint_bilateral(d, bgra, 5, 3.0, 0.1, backend="cpu"),
                                  joint_bilateral(d, g, 5, 3.0, 0.1, backend="cpu"))
    np.testing.assert_array_equal(refine_live(d, bgra, work_width=9, backend="cpu"),
                                  refine_live(d, g, work_width=9, backend="cpu"))
    with pytest.raises(ValueError, match="guide_bgr"):
        joint_bilateral(d, g[..., :2], 5, 3.0, 0.1, backend="cpu")


def test_array_layouts_match_the_reference(rng):
    """Views, Fortran order, read-only and foreign buffers, as cv2, NumPy slicing and np.frombuffer give them."""
    d, g = random_inputs(rng, 26, 34, smooth=True)
    big_d = np.dstack([d, d])
    big_g = np.dstack([g, g[..., :1]])
    read_only = (d.copy(), g.copy())
    for a in read_only:
        a.setflags(write=False)
    cases = {
        "reversed": (d[:, ::-1], g[:, ::-1]),
        "strided rows": (np.repeat(d, 2, axis=0)[::2], np.repeat(g, 2, axis=0)[::2]),
        "channel slices": (big_d[..., 0], big_g[..., :3]),
        "fortran": (np.asfortranarray(d), np.asfortranarray(g)),
        "read-only": read_only,
        "frombuffer": (np.frombuffer(d.tobytes(), np.float32).reshape(d.shape),
                       np.frombuffer(g.tobytes(), np.uint8).reshape(g.shape)),
    }
    for name, (dv, gv) in cases.items():
        before = (dv.copy(), gv.copy())
        out = joint_bilateral(dv, gv, 3, 2.5, 0.1, backend="cpu")
        assert out.flags.c_contiguous and out.flags.writeable and not np.shares_memory(out, dv), name
        assert np.abs(out - joint_bilateral_reference(dv, gv, 3, 2.5, 0.1)).max() <= 1e-4, name
        assert np.array_equal(dv, before[0]) and np.array_equal(gv, before[1]), name  # inputs untouched
        live = refine_live(dv, gv, work_width=12, backend="cpu")
        np.testing.assert_array_equal(live, refine_live(np.ascontiguousarray(dv), np.ascontiguousarray(gv),
                                                        work_width=12, backend="cpu"))


@pytest.mark.parametrize("backend", ["cpu", "auto", "cuda"])
def test_non_finite_disparity_is_refused(rng, backend):
    """One NaN or inf would spread over its whole window (0·inf is NaN): refused, on every backend, before a
    missing GPU is reported; a float64 beyond float32's range becomes inf in the cast and is refused too."""
    d, g = random_inputs(rng, 9, 11)
    for value, dtype in ((np.nan, np.float32), (np.inf, np.float32), (-np.inf, np.float64), (1e300, np.float64)):
        bad = d.astype(dtype)
        bad[4, 5] = value
        with pytest.raises(ValueError, match="NaN, infinite or values beyond float32's range"):
            joint_bilateral(bad, g, 3, 2.0, 0.1, backend=backend)
        with pytest.raises(ValueError, match="NaN, infinite or values beyond float32's range"):
            refine_live(bad, g, backend=backend)


def test_mismatched_sizes_point_to_live_mode():
    with pytest.raises(ValueError, match="refine_live"):
        joint_bilateral(np.zeros((4, 5), np.float32), np.zeros((8, 10, 3), np.uint8), 2, 2.0, 0.1, backend="cpu")


def test_public_names_are_listed():
    assert {"joint_bilateral", "refine_live", "depth_of_field", "resolve_backend"} <= set(dir(kernels))
    with pytest.raises(AttributeError, match="no attribute 'joint_bilaterl'"):
        kernels.joint_bilaterl  # noqa: B018


def test_import_is_cheap():
    import subprocess
    import sys

    code = "import sys, kernels.bilateral; assert 'numba' not in sys.modules and 'cupy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- CUDA (run where a GPU exists) -------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("radius", [1, 4, 12, 16])
@pytest.mark.parametrize("shape", [(480, 640), (37, 53), (9, 300)])
def test_cuda_matches_cpu(radius, shape):
    rng = np.random.default_rng()  # fresh inputs every run
    d, g = random_inputs(rng, *shape, smooth=True)
    cpu = joint_bilateral(d, g, radius, 7.0, 0.07, backend="cpu")
    gpu = joint_bilateral(d, g, radius, 7.0, 0.07, backend="cuda")
    assert isinstance(gpu, np.ndarray) and gpu.dtype == np.float32  # NumPy in, NumPy out
    np.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-6)
    assert np.abs(gpu - cpu).max() / np.abs(cpu).max() <= 1e-5


@pytest.mark.gpu
@pytest.mark.parametrize("variant", RANGE_VARIANTS)
def test_cuda_writes_every_pixel(variant):
    import cupy

    from kernels.bilateral_cuda import launch

    rng = np.random.default_rng()
    d, g = random_inputs(rng, 67, 131, smooth=True)  # not a multiple of the block size
    out = cupy.full(d.shape, cupy.nan, cupy.float32)  # poison
    launch(cupy.asarray(d), cupy.asarray(g), out, 5, 3.0, 0.1, variant=variant)
    result = out.get()
    assert np.isfinite(result).all()
    ref = joint_bilateral_reference(d, g, 5, 3.0, 0.1)
    assert np.abs(result - ref).max() <= 1e-4


def _clipped_window_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """The plain mean over each pixel's (2r+1)^2 window clipped to the image: the filter's output where every
    weight is 1 (one colour, huge sigmas)."""
    height, width = values.shape
    # sums[y, x] = values[:y, :x].sum(): a zero row and column before the first
    sums = np.pad(values.astype(np.float64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    y0 = np.clip(np.arange(height) - radius, 0, height)[:, None]
    y1 = np.clip(np.arange(height) + radius + 1, 0, height)[:, None]
    x0 = np.clip(np.arange(width) - radius, 0, width)[None, :]
    x1 = np.clip(np.arange(width) + radius + 1, 0, width)[None, :]
    total = sums[y1, x1] - sums[y0, x1] - sums[y1, x0] + sums[y0, x0]
    return total / ((y1 - y0) * (x1 - x0))


@pytest.mark.gpu
@pytest.mark.parametrize("variant", [*RANGE_VARIANTS, "global"])
def test_every_cuda_variant_averages_exactly_the_clipped_window(variant):
    """Uniform weights: the output is the mean of the disparity over the window clipped to the image, known
    exactly. The exp2 and lut kernels, unrolled by NVRTC 13.0 on an H200, took up to 3 columns past the right
    edge (black, disparity 0) at right-border pixels, at every radius; a smooth guide's range weights hid it."""
    import cupy

    from kernels.bilateral_cuda import launch, launch_global

    for height, width in ((19, 23), (64, 80), (48, 64), (67, 131)):
        # distinct per column and row: a window one column or row too wide or too narrow changes the mean
        disparity = (np.arange(width, dtype=np.float32)[None, :] + 0.01 * np.arange(height)[:, None]).astype(np.float32)
        guide = np.full((height, width, 3), 128, np.uint8)
        for radius in (1, 4, 8, 13, MAX_RADIUS):
            out = cupy.full((height, width), cupy.nan, cupy.float32)
            args = (cupy.asarray(disparity), cupy.asarray(guide), out, radius, 1e6, 1e6)
            launch_global(*args) if variant == "global" else launch(*args, variant=variant)
            want = _clipped_window_mean(disparity, radius)
            wrong = np.argwhere(~(np.abs(out.get() - want) <= 1e-4 * np.maximum(want, 1.0)))
            assert wrong.size == 0, (f"{height}x{width}, r = {radius}: columns {sorted(set(wrong[:, 1].tolist()))}")


def test_the_clipped_window_mean_is_the_reference_filter_with_uniform_weights():
    rng = np.random.default_rng(3)
    disparity = rng.random((9, 14), dtype=np.float32)
    guide = np.full((9, 14, 3), 77, np.uint8)
    for radius in (1, 3, 16):
        np.testing.assert_allclose(_clipped_window_mean(disparity, radius),
                                   joint_bilateral_reference(disparity, guide, radius, 1e6, 1e6), rtol=1e-9)


@pytest.mark.gpu
def test_cuda_parameter_change_takes_effect():
    from kernels.bilateral_cuda import ensure_constants

    rng = np.random.default_rng()
    d, g = random_inputs(rng, 64, 80, smooth=True)
    for radius, ss, sr in ((3, 2.0, 0.05), (9, 8.0, 0.05), (9, 8.0, 0.3), (3, 2.0, 0.05), (16, 30.0, 0.02)):
        gpu = joint_bilateral(d, g, radius, ss, sr, backend="cuda")
        np.testing.assert_allclose(gpu, joint_bilateral(d, g, radius, ss, sr, backend="cpu"), rtol=1e-5, atol=1e-6)
    assert ensure_constants(16, 30.0, 0.02) is False  # unchanged parameters: no copy
    assert ensure_constants(15, 30.0, 0.02) is True


@pytest.mark.gpu
def test_cuda_cupy_in_cupy_out():
    import cupy

    rng = np.random.default_rng()
    d, g = random_inputs(rng, 48, 64, smooth=True)
    out = kernels.joint_bilateral(cupy.asarray(d), cupy.asarray(g), 6, 4.0, 0.1)  # auto → CUDA for CuPy
    assert isinstance(out, cupy.ndarray) and out.dtype == cupy.float32
    np.testing.assert_allclose(out.get(), joint_bilateral(d, g, 6, 4.0, 0.1, backend="cpu"), rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_cuda_global_kernel_matches_reference():
    import cupy

    from kernels.bilateral_cuda import launch_global

    rng = np.random.default_rng()
    d, g = random_inputs(rng, 45, 70, smooth=True)
    out = cupy.full(d.shape, cupy.nan, cupy.float32)
    launch_global(cupy.asarray(d), cupy.asarray(g), out, 7, 5.0, 0.1)
    assert np.abs(out.get() - joint_bilateral_reference(d, g, 7, 5.0, 0.1)).max() <= 1e-4


@pytest.mark.gpu
@pytest.mark.parametrize("shape, work_width", [((480, 640), 160), ((1080, 1920), 160), ((251, 333), 160),
                                               ((97, 131), 200)])
def test_cuda_refine_live_matches_cpu(rng, shape, work_width):
    """Live mode runs the same steps on both devices (the last shape: the working size is the frame's)."""
    import cupy
    import cv2

    truth, guide = synthetic_scene(*shape)
    low = cv2.resize(truth, (160, 128), interpolation=cv2.INTER_AREA)
    low += rng.normal(0, 0.03, low.shape).astype(np.float32)
    out = refine_live(cupy.asarray(low), cupy.asarray(guide), work_width=work_width)
    assert isinstance(out, cupy.ndarray) and out.shape == shape
    host = refine_live(low, guide, work_width=work_width, backend="cuda")
    assert isinstance(host, np.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(out), host, atol=1e-6)
    difference = np.abs(host - refine_live(low, guide, work_width=work_width, backend="cpu"))
    assert difference.mean() < 1e-5 and difference.max() < 1e-3, (difference.mean(), difference.max())
    assert float(np.sqrt(np.mean((host - truth) ** 2))) < 0.1


# --- the CUDA source's logic, emulated on the CPU (runs without a GPU) ---------------------------------
# Compiles kernels/joint_bilateral.cu as C++ with one std::thread per CUDA thread and a std::barrier for
# __syncthreads, so the tiling, border skipping and every-pixel-written logic is checked in CI as well.
# Only the ex2.approx instruction is swapped for std::exp2.

EMULATION_SHIM = r"""
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <thread>
#include <vector>
struct Dim { int x = 0, y = 0, z = 0; };
thread_local Dim threadIdx, blockIdx;
Dim blockDim{32, 8, 1};  // only the global and resize kernels read it; they are not run here
thread_local std::barrier<>* g_barrier;
thread_local void* g_smem;
#define __global__
#define __device__
#define __forceinline__ inline
#define __constant__
#define __restrict__
#define __launch_bounds__(n)
#define __syncthreads() g_barrier->arrive_and_wait()
struct float4 { float x, y, z, w; };
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
using std::abs; using std::max; using std::min;
#include "kernel.inc"
template <class F> void launch(int gx, int gy, int bx, int by, size_t smem, F f) {
    for (int j = 0; j < gy; ++j) for (int i = 0; i < gx; ++i) {
        std::barrier<> bar(bx * by);
        std::vector<float4> buf(smem / 16 + 1);
        std::vector<std::thread> threads;
        for (int ty = 0; ty < by; ++ty) for (int tx = 0; tx < bx; ++tx)
            threads.emplace_back([&, tx, ty] { threadIdx = {tx, ty, 0}; blockIdx = {i, j, 0}; g_barrier = &bar;
                                               g_smem = buf.data(); f(); });
        for (auto& t : threads) t.join();
    }
}
int main(int argc, char** argv) {  // argv: H W r variant scale; stdin: spatial, lut, log2 spatial, disparity, guide
    int H = atoi(argv[1]), W = atoi(argv[2]), r = atoi(argv[3]), variant = atoi(argv[4]);
    float scale = (float)atof(argv[5]);
    int k = 2 * r + 1;
    std::vector<float> d(H * W), out(H * W, NAN);
    std::vector<unsigned char> g(3 * H * W);
    if (fread(c_spatial, 4, k * k, stdin) != (size_t)(k * k) || fread(c_range_lut, 4, 256, stdin) != 256 ||
        fread(c_spatial_log2, 4, k, stdin) != (size_t)k || fread(d.data(), 4, H * W, stdin) != (size_t)(H * W) ||
        fread(g.data(), 1, 3 * H * W, stdin) != (size_t)(3 * H * W))
        return 2;
    int gx = (W + 31) / 32, gy = (H + 7) / 8;
    if (variant == 0) launch(gx, gy, 32, 8, 1024 + (32 + 2 * r) * (8 + 2 * r) * 8,
                             [&] { joint_bilateral_lut(d.data(), g.data(), out.data(), H, W, r); });
    else if (variant == 1) launch(gx, gy, 32, 8, (32 + 2 * r) * (8 + 2 * r) * 16,
                                  [&] { joint_bilateral_exp2(d.data(), g.data(), out.data(), H, W, r, scale); });
    else launch(gx, (H + 15) / 16, 32, variant == 2 ? 4 : 2, (32 + 2 * r) * (16 + 2 * r) * 16, [&] {
        if (variant == 2) joint_bilateral_exp2_rows4(d.data(), g.data(), out.data(), H, W, r, scale, 1 / scale);
        else joint_bilateral_exp2_rows8(d.data(), g.data(), out.data(), H, W, r, scale, 1 / scale);
    });
    fwrite(out.data(), 4, H * W, stdout);
}
"""


def joint_bilateral_source_for_host(shared_memory: str) -> str:
    """kernels/joint_bilateral.cu as C++: the ex2.approx instruction as std::exp2, the dynamic shared
    memory as `shared_memory` (a float4* expression), no extern "C"."""
    from kernels.cuda_module import read_source

    source = read_source("joint_bilateral.cu")
    source = source.replace('asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));', "y = std::exp2(x);")
    source = source.replace("extern __shared__ float4 smem4[];", f"float4* smem4 = {shared_memory};")
    assert "asm(" not in source and "extern __shared__" not in source, "update the host build's substitutions"
    return source.replace('extern "C"', "")


@pytest.fixture(scope="module")
def cuda_emulator(tmp_path_factory):
    import shutil
    import subprocess

    compiler = shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ compiler for the CUDA-logic emulation")
    folder = tmp_path_factory.mktemp("cuda_emulation")
    (folder / "kernel.inc").write_text(joint_bilateral_source_for_host("static_cast<float4*>(g_smem)"))
    (folder / "main.cpp").write_text(EMULATION_SHIM)
    build = subprocess.run([compiler, "-std=c++20", "-O1", "-pthread", "-o", str(folder / "emu"),
                            str(folder / "main.cpp")], capture_output=True, text=True)
    if build.returncode != 0 and "barrier" in build.stderr:
        pytest.skip(f"{compiler} lacks C++20 <barrier>")
    assert build.returncode == 0, build.stderr
    return folder / "emu"


@pytest.mark.parametrize("variant", RANGE_VARIANTS)
@pytest.mark.parametrize("shape, radius", [((19, 45), 3), ((9, 33), 16), ((37, 70), 12), ((1, 1), 5), ((17, 3), 7),
                                           ((35, 40), 0)])
def test_cuda_source_logic_emulated_on_cpu(cuda_emulator, variant, shape, radius):
    import subprocess

    from kernels.bilateral import range_lut, spatial_table
    from kernels.bilateral_cuda import spatial_log2

    rng = np.random.default_rng(radius)
    d, g = random_inputs(rng, *shape, smooth=min(shape) > 2)
    # A wide range sigma for odd radii: then a wrongly included out-of-image tap (zeros in the tile) would
    # carry real weight and show; a narrow one for the others exercises the LUT's small values.
    ss, sr = radius / 2 + 1.0, (0.5 if radius % 2 else 0.08)
    scale = -np.log2(np.e) / (2 * sr ** 2 * 255 ** 2)
    payload = b"".join([spatial_table(radius, ss).tobytes(), range_lut(sr).tobytes(),
                        spatial_log2(radius, ss).tobytes(), d.tobytes(), g.tobytes()])
    result = subprocess.run([str(cuda_emulator), str(shape[0]), str(shape[1]), str(radius),
                             str(RANGE_VARIANTS.index(variant)), repr(float(scale))],
                            input=payload, capture_output=True, check=True, timeout=120)
    out = np.frombuffer(result.stdout, np.float32).reshape(shape)
    assert np.isfinite(out).all()  # every pixel written (the output starts as NaN)
    assert np.abs(out - joint_bilateral_reference(d, g, radius, ss, sr)).max() <= 1e-4
    cpu = joint_bilateral(d, g, radius, ss, sr, backend="cpu")
    np.testing.assert_allclose(out, cpu, rtol=1e-5, atol=1e-6)


# --- live mode's CUDA steps, compiled for the host (tests/host_cuda.py) -------------------------------
# The area resizes and the joint bilateral upsampling use one thread a pixel and no shared memory;
# `run_live` (the GPU's own sequence of launches) is driven with NumPy arrays and the host launcher, the
# filter at the working size taken from the CPU path.

LIVE_KERNELS = ("resize_area_bgr", "resize_area_f32", "resize_bilinear_f32", "joint_bilateral_upsample")


@pytest.fixture(scope="module")
def live_on_host(tmp_path_factory):
    """(launch, set_range_lut): CuPy's launch signature over the CUDA source compiled for the host."""
    import ctypes

    from host_cuda import compile_for_host

    source = joint_bilateral_source_for_host("nullptr")  # the shared-memory kernels are not run here
    set_lut = ('extern "C" void set_range_lut(const float* lut) '
               '{ std::memcpy(c_range_lut, lut, sizeof(c_range_lut)); }\n')
    lib, launch = compile_for_host(source, LIVE_KERNELS, tmp_path_factory.mktemp("live_host"), extra=set_lut)

    def set_range_lut(lut):
        lib.set_range_lut(np.ascontiguousarray(lut, np.float32).ctypes.data_as(ctypes.c_void_p))

    return launch, set_range_lut


LIVE_SHAPES = [((480, 640), 160), ((1080, 1920), 160), ((251, 333), 160), ((97, 131), 40), ((7, 161), 160),
               ((30, 41), 16)]


@pytest.mark.parametrize("shape, work_width", LIVE_SHAPES)
def test_cuda_area_resize_on_the_host_matches_opencv(rng, live_on_host, shape, work_width):
    """The working-size frame and map as cv2.resize(INTER_AREA) makes them on the CPU path: the map to
    float rounding, the frame to 1 level (OpenCV rounds some exact halves the other way)."""
    import cv2

    from kernels.bilateral import _resize, working_size
    from kernels.bilateral_cuda import resize_map, run_live

    launch, _ = live_on_host
    height, width = shape
    work_h, work_w = working_size(height, width, work_width)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    captured = {}

    def keep_low_frame(map_, guide, out):  # the filter receives the working-size frame
        captured["guide"] = guide.copy()
        out[...] = map_

    run_live(np.zeros((height, width), np.float32), frame, np.empty((height, width), np.float32),
             (work_h, work_w), np, launch, keep_low_frame)
    if (work_h, work_w) != (height, width):
        expected = cv2.resize(frame, (work_w, work_h), interpolation=cv2.INTER_AREA)
        difference = np.abs(captured["guide"].astype(np.int16) - expected)
        assert difference.max() <= 1 and (difference > 0).mean() < 0.01
    # the network's map, larger or smaller than the working size: area or bilinear, as the CPU path chooses
    for map_shape in ((height, width), (max(1, height // 3), max(1, width // 3)), (work_h + 5, max(1, work_w - 3))):
        depth = rng.random(map_shape, dtype=np.float32)
        np.testing.assert_allclose(resize_map(depth, work_h, work_w, np, launch), _resize(depth, work_w, work_h),
                                   atol=2e-5)


@pytest.mark.parametrize("low_shape, shape", [((120, 160), (480, 640)), ((90, 160), (1080, 1920)),
                                              ((41, 53), (123, 159)), ((13, 17), (40, 61)), ((20, 30), (20, 30)),
                                              ((1, 5), (3, 16))])
def test_cuda_upsampling_on_the_host_matches_the_cpu_path(rng, live_on_host, low_shape, shape):
    from kernels.bilateral import LIVE_UPSAMPLE_SIGMA, range_lut
    from kernels.bilateral_cpu import guide_planes, joint_bilateral_upsample

    launch, set_range_lut = live_on_host
    (low_h, low_w), (height, width) = low_shape, shape
    low = rng.random(low_shape, dtype=np.float32)
    guide = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    guide_low = np.ascontiguousarray(guide[::max(1, height // low_h), ::max(1, width // low_w)][:low_h, :low_w])
    for sigma_range in (0.05, 0.2, 0.004):  # 0.004: most range weights floor to 0, the nearest-sample fallback
        set_range_lut(range_lut(sigma_range))
        out = np.full(shape, np.nan, np.float32)  # every pixel must be written
        launch("joint_bilateral_upsample", ((width + 15) // 16, (height + 15) // 16), (16, 16),
               (low, guide_low, np.int32(low_h), np.int32(low_w), guide, out, np.int32(height), np.int32(width),
                np.float32(0.5 / LIVE_UPSAMPLE_SIGMA ** 2)))
        cpu = joint_bilateral_upsample(low, guide_planes(guide_low), guide, range_lut(sigma_range),
                                       LIVE_UPSAMPLE_SIGMA)
        assert not np.isnan(out).any()
        np.testing.assert_allclose(out, cpu, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, work_width", LIVE_SHAPES[:4])
def test_live_mode_steps_on_the_host_match_the_cpu_path(rng, live_on_host, shape, work_width):
    """`run_live`, the GPU's sequence of launches, against `refine_live` on the CPU: the same picture."""
    import cv2

    from kernels.bilateral import range_lut, spatial_table, working_size
    from kernels.bilateral_cpu import guide_planes, joint_bilateral_planes
    from kernels.bilateral_cuda import run_live

    launch, set_range_lut = live_on_host
    height, width = shape
    radius, sigma_spatial, sigma_range = 4, 3.0, 0.05
    truth, guide = synthetic_scene(height, width)
    network = cv2.resize(truth, (max(8, width // 4), max(8, height // 4)), interpolation=cv2.INTER_AREA)
    network += rng.normal(0, 0.03, network.shape).astype(np.float32)
    set_range_lut(range_lut(sigma_range))

    def exact_filter(map_, frame, out):
        out[...] = joint_bilateral_planes(np.ascontiguousarray(map_), guide_planes(frame), range_lut(sigma_range),
                                          spatial_table(radius, sigma_spatial), radius)

    out = np.full((height, width), np.nan, np.float32)
    run_live(network, guide, out, working_size(height, width, work_width), np, launch, exact_filter)
    cpu = refine_live(network, guide, work_width=work_width, radius=radius, sigma_spatial=sigma_spatial,
                      sigma_range=sigma_range, backend="cpu")
    difference = np.abs(out - cpu)
    assert not np.isnan(out).any()
    # measured: mean 1e-8, max 3e-7 (1.5e-5 at 251x333); a 1-level rounding difference in the working-size
    # frame would move a few pixels by more, hence the margin
    assert difference.mean() < 1e-5 and difference.max() < 1e-3, (difference.mean(), difference.max())
