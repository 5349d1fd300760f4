"""A seeded randomized sweep of the public kernels (joint_bilateral, refine_live, depth_of_field): sizes down to
1x1, 1xN and Nx1, sizes below the radius or the blur, every accepted layout and dtype, parameters at the edges of
what is accepted and just outside, each fast path against its float64 reference within the documented tolerance,
border handling, determinism and independence from the thread count. Small frames: the whole file runs in about
half a minute on two busy cores."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

import kernels
from kernels.bilateral import MAX_RADIUS, SIGMA_LIMITS
from kernels.bilateral_reference import joint_bilateral_reference
from kernels.dof_cpu import depth_of_field_cpu
from kernels.dof_reference import depth_of_field_reference

LAYOUTS = ("C", "F", "reversed", "strided", "read-only")


def laid_out(array: np.ndarray, layout: str) -> np.ndarray:
    """The same values in another memory layout: Fortran order, a negative-stride view, a strided view, read-only."""
    if layout == "F":
        return np.asfortranarray(array)
    if layout == "reversed":
        return np.ascontiguousarray(array[::-1, ::-1])[::-1, ::-1]
    if layout == "strided":
        big = np.zeros((2 * array.shape[0], 2 * array.shape[1]) + array.shape[2:], array.dtype)
        big[::2, ::2] = array
        return big[::2, ::2]
    if layout == "read-only":
        out = array.copy()
        out.flags.writeable = False
        return out
    return array


def random_size(rng: np.random.Generator, largest: int) -> tuple[int, int]:
    kind = rng.integers(0, 6)
    if kind == 0:
        return 1, 1
    if kind == 1:
        return 1, int(rng.integers(1, largest))
    if kind == 2:
        return int(rng.integers(1, largest)), 1
    if kind == 3:
        return 2, 2
    return int(rng.integers(1, largest)), int(rng.integers(1, largest))


def random_disparity(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Any finite scale: [0, 1], constant, all zero, negative, tiny, large."""
    kind = rng.integers(0, 6)
    if kind == 0:
        return rng.random(shape)
    if kind == 1:
        return np.full(shape, rng.uniform(-5.0, 5.0))
    if kind == 2:
        return np.zeros(shape)
    if kind == 3:
        return rng.uniform(-1e3, 1e3, shape)
    if kind == 4:
        return rng.normal(0.0, 1e-6, shape)
    return rng.random(shape) * 1e30


def random_guide(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(guide as passed: HxWx3, HxW, HxWx1 or HxWx4; the BGR guide the reference takes for it)."""
    bgr = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    if rng.random() < 0.3:  # colour differences of 0 and 255 only: the range table's ends
        bgr = (bgr // 128 * 255).astype(np.uint8)
    kind = rng.integers(0, 4)
    grey_as_bgr = np.zeros_like(bgr)
    grey_as_bgr[..., 0] = bgr[..., 0]  # grey is (grey, 0, 0): the grey difference exactly
    if kind == 0:
        return bgr, bgr
    if kind == 1:
        return bgr[..., 0].copy(), grey_as_bgr
    if kind == 2:
        return bgr[..., :1].copy(), grey_as_bgr
    return np.dstack([bgr, rng.integers(0, 256, shape, dtype=np.uint8)]), bgr


# --- joint bilateral filter ------------------------------------------------------------------------------------

def test_joint_bilateral_sweep_matches_the_reference():
    """300 random cases: the CPU path within 1e-4 of the float64 reference (relative to the disparity's scale: the
    contract's 1e-4 on a [0, 1] map), inputs untouched, the same result twice."""
    rng = np.random.default_rng(2020)
    for case in range(300):
        shape = random_size(rng, 40)
        radius = int(rng.choice([0, 1, 2, 5, MAX_RADIUS, rng.integers(0, MAX_RADIUS + 1)]))
        sigma_spatial = float(rng.choice([SIGMA_LIMITS[0], 0.5, 3.0, 20.0, SIGMA_LIMITS[1], 10 ** rng.uniform(-3, 4)]))
        sigma_range = float(rng.choice([SIGMA_LIMITS[0], 0.01, 0.05, 1.0, SIGMA_LIMITS[1], 10 ** rng.uniform(-4, 3)]))
        disparity = random_disparity(rng, shape).astype(rng.choice([np.float16, np.float32, np.float64]))
        disparity = np.nan_to_num(disparity, posinf=0.0, neginf=0.0)  # float16 overflows 1e30
        guide, guide_bgr = random_guide(rng, shape)
        d, g = laid_out(disparity, str(rng.choice(LAYOUTS))), laid_out(guide, str(rng.choice(LAYOUTS)))
        d_before, g_before = d.copy(), g.copy()
        out = kernels.joint_bilateral(d, g, radius, sigma_spatial, sigma_range, backend="cpu")
        what = (case, shape, radius, sigma_spatial, sigma_range, disparity.dtype, d.strides, g.shape)
        assert out.dtype == np.float32 and out.shape == shape, what
        reference = joint_bilateral_reference(disparity.astype(np.float32), guide_bgr, radius, sigma_spatial,
                                              sigma_range)
        scale = max(1.0, float(np.abs(disparity.astype(np.float32)).max()))
        assert np.abs(out - reference).max() <= 1e-4 * scale, what
        assert np.array_equal(d, d_before) and np.array_equal(g, g_before), what
        assert np.array_equal(out, kernels.joint_bilateral(d, g, radius, sigma_spatial, sigma_range, backend="cpu"))


@pytest.mark.parametrize("peak", [3.4028235e38, -3.0e38, 1.0e37, 1.0e36])
def test_a_finite_disparity_near_float32_s_limit_filters_to_finite_values(peak):
    """The filters' float32 sums reach up to (2r + 1)^2 times the largest value: a finite disparity from ~3e35 on was
    filtered to inf (then refused downstream as not finite). It is filtered scaled by a power of two now."""
    rng = np.random.default_rng(7)
    guide = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    disparity = (rng.random((9, 11)) * peak).astype(np.float32)
    disparity[0, 0] = peak
    out = kernels.joint_bilateral(disparity, guide, MAX_RADIUS, 1e6, 1e6, backend="cpu")
    assert np.isfinite(out).all()
    reference = joint_bilateral_reference(disparity, guide, MAX_RADIUS, 1e6, 1e6)
    assert np.abs(out - reference).max() <= 1e-5 * abs(peak)
    live = kernels.refine_live(disparity, guide, work_width=5, radius=3, backend="cpu")
    assert np.isfinite(live).all()
    low, high = sorted((float(disparity.min()), float(disparity.max())))
    assert low * (1 + 1e-6) - 1e-6 * abs(peak) <= live.min() and live.max() <= high + 1e-6 * abs(peak)


def test_refine_live_sweep_is_a_weighted_mean_of_the_disparity():
    """200 random cases, any disparity size against any guide size, any work width: a float32 map of the guide's
    size, within the disparity's range (every step is a weighted mean), the same twice; at full working size with
    a same-size disparity it is the exact filter."""
    rng = np.random.default_rng(2021)
    for case in range(200):
        guide_shape, disparity_shape = random_size(rng, 70), random_size(rng, 70)
        disparity = random_disparity(rng, disparity_shape).astype(rng.choice([np.float16, np.float32, np.float64]))
        disparity = np.nan_to_num(disparity, posinf=0.0, neginf=0.0)
        guide, _ = random_guide(rng, guide_shape)
        d, g = laid_out(disparity, str(rng.choice(LAYOUTS))), laid_out(guide, str(rng.choice(LAYOUTS)))
        work_width = int(rng.choice([2, 3, 7, 160, 10 ** 6, rng.integers(2, 100)]))
        radius = int(rng.integers(0, MAX_RADIUS + 1))
        params = dict(work_width=work_width, radius=radius, sigma_spatial=float(10 ** rng.uniform(-4, 6)),
                      sigma_range=float(10 ** rng.uniform(-4, 6)), backend="cpu")
        out = kernels.refine_live(d, g, **params)
        what = (case, guide_shape, disparity_shape, params)
        values = disparity.astype(np.float32)
        slack = 1e-5 * max(float(np.abs(values).max()), 1e-30)
        assert out.dtype == np.float32 and out.shape == guide_shape, what
        assert values.min() - slack <= out.min() and out.max() <= values.max() + slack, what
        assert np.array_equal(out, kernels.refine_live(d, g, **params)), what
    rng = np.random.default_rng(2022)
    for shape in [(1, 1), (1, 9), (9, 1), (2, 2), (13, 7)]:
        disparity = rng.random(shape).astype(np.float32)
        guide = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
        out = kernels.refine_live(disparity, guide, work_width=shape[1] + 5, radius=4, backend="cpu")
        assert np.abs(out - joint_bilateral_reference(disparity, guide, 4, 3.0, 0.05)).max() <= 1e-4, shape


# --- depth of field --------------------------------------------------------------------------------------------

def smooth_image(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(rng.integers(0, 256, (3, 3, 3), dtype=np.uint8), shape[::-1], interpolation=cv2.INTER_LINEAR)


def random_dof_disparity(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """[0, 1]: noise, constant (0, 1 or between), two depths, smooth, a diagonal ramp, float32 rounding past 0 and 1."""
    h, w = shape
    kind = rng.integers(0, 6)
    if kind == 0:
        return rng.random(shape)
    if kind == 1:
        return np.full(shape, rng.choice([0.0, 1.0, rng.random()]))
    if kind == 2:
        return (rng.random(shape) < 0.5).astype(np.float64)
    if kind == 3:
        return cv2.resize(rng.random((max(h // 4, 1), max(w // 4, 1))), (w, h))
    if kind == 4:
        yy, xx = np.mgrid[:h, :w]
        return (yy + xx) / max(h + w - 2, 1)
    return np.clip(rng.random(shape) * 1.002 - 0.001, -0.001, 1.001)


def test_depth_of_field_at_scale_one_matches_the_reference_sweep():
    """120 random small cases at scale 1, where the CPU path computes the reference's sums (kernels/dof.py): only
    rounding ties may differ, by 1 level on at most 0.5 % of the values (every pixel within 1 where the frame has
    fewer than 200 values)."""
    rng = np.random.default_rng(2023)
    for case in range(120):
        shape = random_size(rng, 32)
        disparity = random_dof_disparity(rng, shape).astype(np.float32)
        image = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
        image[rng.random(shape) < 0.1] = 255
        focus = float(rng.choice([0.0, 1.0, 0.5, rng.random()]))
        blur = float(rng.choice([0.3, 0.5, 0.6, 1.0, 2.5, 5.0, rng.uniform(0.0, 8.0)]))
        boost = float(rng.choice([0.0, 2.0, 1000.0]))
        out = depth_of_field_cpu(image, disparity, focus, blur, highlight_boost=boost, scale=1)
        reference = depth_of_field_reference(image, disparity, focus, blur, boost)
        difference = np.abs(out.astype(np.int16) - reference)
        what = (case, shape, focus, blur, boost)
        assert difference.max() <= 1, what
        assert (difference > 0).sum() <= max(1, 0.005 * difference.size), what


def test_depth_of_field_sweep_keeps_its_invariants():
    """80 random cases through the public path, both far-field modes: a uniform picture stays uniform under any
    depth (at most 1 level of rounding), a picture all in focus comes out unchanged, every layout and float dtype of
    the same values renders the same picture, grey stays grey in its own shape, BGRA keeps its alpha."""
    rng = np.random.default_rng(2024)
    for case in range(80):
        shape = random_size(rng, 48)
        disparity = random_dof_disparity(rng, shape).astype(np.float32)
        focus = float(rng.choice([0.0, 1.0, 0.5, rng.random()]))
        blur = float(rng.choice([0.0, 0.4, 3.0, 12.0, 30.0, 512.0, rng.uniform(0.0, 40.0)]))
        params = dict(highlight_boost=float(rng.choice([0.0, 2.0, 1000.0])), exact_far=bool(rng.random() < 0.5),
                      backend="cpu")
        what = (case, shape, focus, blur, params)
        colour = rng.integers(0, 256, 3).astype(np.uint8)
        flat = np.broadcast_to(colour, shape + (3,)).copy()
        out = kernels.depth_of_field(flat, disparity, focus, blur, **params)
        assert np.abs(out.astype(np.int16) - colour).max() <= 1, what
        image = smooth_image(rng, shape) if rng.random() < 0.5 else rng.integers(0, 256, shape + (3,), np.uint8)
        in_focus = np.full(shape, focus, np.float32)
        assert np.array_equal(kernels.depth_of_field(image, in_focus, focus, blur, **params), image), what
        out = kernels.depth_of_field(image, disparity, focus, blur, **params)
        assert out.shape == image.shape and out.dtype == np.uint8 and out.flags.c_contiguous, what
        for layout in LAYOUTS[1:]:
            again = kernels.depth_of_field(laid_out(image, layout), laid_out(disparity, layout), focus, blur, **params)
            assert np.array_equal(again, out) and again.flags.c_contiguous, (what, layout)
        for dtype in (np.float16, np.float64):
            values = disparity.astype(dtype)
            assert np.array_equal(kernels.depth_of_field(image, values, focus, blur, **params),
                                  kernels.depth_of_field(image, values.astype(np.float32), focus, blur, **params))
        grey = image[..., 1].copy()
        grey_out = kernels.depth_of_field(grey, disparity, focus, blur, **params)
        three = kernels.depth_of_field(np.dstack([grey] * 3), disparity, focus, blur, **params)
        assert grey_out.shape == shape and np.array_equal(grey_out, three[..., 0]), what
        assert np.array_equal(three[..., 0], three[..., 2]), what
        alpha = rng.integers(0, 256, shape, dtype=np.uint8)
        bgra = kernels.depth_of_field(np.dstack([image, alpha]), disparity, focus, blur, **params)
        assert np.array_equal(bgra[..., 3], alpha) and np.array_equal(bgra[..., :3], out), what


def gradient_picture(shape: tuple[int, int], axis: int) -> np.ndarray:
    ramp = np.linspace(20, 230, shape[axis])
    values = ramp[:, None] if axis == 0 else ramp[None, :]
    return np.repeat(np.broadcast_to(values, shape)[..., None], 3, axis=2).astype(np.uint8)


@pytest.fixture(scope="module")
def cuda_source_on_host(tmp_path_factory):
    """kernels/depth_of_field.cu compiled for the host, through the GPU's own launch code (tests/host_cuda.py)."""
    from host_cuda import compile_dof_for_host

    return compile_dof_for_host(tmp_path_factory.mktemp("dof_sweep_host"))


@pytest.mark.parametrize("path", ["cpu", "cuda source"])
@pytest.mark.parametrize("shape, axis", [((31, 20), 0), ((20, 31), 1), ((61, 16), 0)])
def test_a_far_background_in_blocks_the_frame_cuts_weighs_their_pixels_only(request, path, shape, axis):
    """A frame whose size s does not divide ends in a row (column) of blocks the frame cuts. The far field skips
    what lies outside the frame, yet such a block's mean weighed as s rows (columns) of pixels: a 31-row far
    gradient at s = 6 (blur 24) came out 14 levels off the reference in its last rows, 9 on average over the frame.
    Weighed by the pixels it holds, it is as close as a frame s divides (the first rows: 6 levels at most)."""
    image = gradient_picture(shape, axis)
    disparity = np.zeros(shape, np.float32)
    for blur in (12.0, 24.0):
        if path == "cpu":
            out = kernels.depth_of_field(image, disparity, 1.0, blur, backend="cpu")
        else:
            from kernels.dof import reduction_scale

            out = request.getfixturevalue("cuda_source_on_host")(image, disparity, 1.0, blur, 0.0,
                                                                  reduction_scale(blur))
        error = np.abs(out.astype(np.int16) - depth_of_field_reference(image, disparity, 1.0, blur))
        last = error[-3:] if axis == 0 else error[:, -3:]
        assert last.max() <= 3, (blur, last.max())
        assert error.mean() <= 1.5 and error.max() <= 10, (blur, error.mean(), error.max())


@pytest.mark.parametrize("path", ["cpu", "cuda source"])
def test_what_lies_behind_a_foreground_in_cut_blocks_weighs_their_pixels_only(request, path):
    """The backdrop a blurred foreground composites over skips pixels outside the frame too: a near disc over a far
    gradient in a frame s does not divide (s = 6, blur 24) came out 12.1 levels off the reference on average over
    the disc (16 at most) where the cut blocks weighed as s rows; 1.2 (5) weighed by their pixels."""
    image = gradient_picture((31, 20), 0)
    yy, xx = np.mgrid[:31, :20]
    disparity = np.where(((yy - 15.5) / 10.3) ** 2 + ((xx - 10) / 6.7) ** 2 < 1, 1.0, 0.0).astype(np.float32)
    if path == "cpu":
        out = kernels.depth_of_field(image, disparity, 0.3, 24.0, backend="cpu")
    else:
        out = request.getfixturevalue("cuda_source_on_host")(image, disparity, 0.3, 24.0, 0.0, 6)
    error = np.abs(out.astype(np.int16) - depth_of_field_reference(image, disparity, 0.3, 24.0))
    near = disparity > 0
    assert error[near].mean() <= 3.0 and error[near].max() <= 8, (error[near].mean(), error[near].max())
    assert error.mean() <= 3.0, error.mean()


# --- parameters just outside what is accepted ------------------------------------------------------------------

@pytest.mark.parametrize("function, name, value", [
    ("joint_bilateral", "radius", MAX_RADIUS + 1), ("joint_bilateral", "radius", -1),
    ("joint_bilateral", "radius", 3.0), ("joint_bilateral", "radius", np.float32(2)),
    ("joint_bilateral", "sigma_spatial", 0.0),
    ("joint_bilateral", "sigma_spatial", -1e-300), ("joint_bilateral", "sigma_spatial", math.inf),
    ("joint_bilateral", "sigma_range", math.nan), ("joint_bilateral", "sigma_range", "0.05"),
    ("joint_bilateral", "sigma_range", np.array([0.05])), ("refine_live", "work_width", 1),
    ("refine_live", "work_width", 160.0), ("refine_live", "radius", True), ("refine_live", "sigma_range", 1j),
    ("depth_of_field", "focus", -1e-9), ("depth_of_field", "focus", 1.0000001), ("depth_of_field", "focus", math.nan),
    ("depth_of_field", "max_blur_px", -1e-9), ("depth_of_field", "max_blur_px", 512.0001),
    ("depth_of_field", "max_blur_px", math.inf), ("depth_of_field", "highlight_boost", -0.5),
    ("depth_of_field", "highlight_boost", 1000.5), ("depth_of_field", "highlight_boost", "2"),
    ("depth_of_field", "exact_far", 1), ("depth_of_field", "exact_far", None),
])
def test_parameters_just_outside_what_is_accepted_are_refused_by_name(function, name, value):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    disparity = rng.random((6, 7)).astype(np.float32)
    if function == "depth_of_field":
        kwargs = {"focus": 0.5, "max_blur_px": 4.0, "backend": "cpu", name: value}
        call = lambda: kernels.depth_of_field(image, disparity, **kwargs)  # noqa: E731
    else:
        call = lambda: getattr(kernels, function)(disparity, image, backend="cpu", **{name: value})  # noqa: E731
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])
def test_a_disparity_that_is_not_finite_is_refused_by_every_kernel(bad):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    disparity = rng.random((5, 6))
    disparity[4, 5] = bad
    for call in (lambda: kernels.joint_bilateral(disparity, image, backend="cpu"),
                 lambda: kernels.refine_live(disparity, image, backend="cpu"),
                 lambda: kernels.depth_of_field(image, disparity, 0.5, 4.0, backend="cpu")):
        with pytest.raises(ValueError, match="NaN, infinite"):
            call()


# --- determinism across thread counts --------------------------------------------------------------------------

THREADS_SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import cv2, numba, numpy as np
    import kernels
    rng = np.random.default_rng(11)
    digest = hashlib.sha256()
    for h, w in [(37, 53), (61, 97), (5, 200)]:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        disparity = cv2.resize(rng.random((max(1, h // 6), max(1, w // 6))).astype(np.float32), (w, h))
        digest.update(kernels.joint_bilateral(disparity, image, 5, 3.0, 0.1, backend="cpu").tobytes())
        digest.update(kernels.refine_live(disparity, image, work_width=20, backend="cpu").tobytes())
        for blur, exact_far in [(6.0, False), (16.0, True), (30.0, False)]:
            digest.update(kernels.depth_of_field(image, disparity, 0.4, blur, highlight_boost=2.0,
                                                 exact_far=exact_far, backend="cpu").tobytes())
    print(numba.get_num_threads(), digest.hexdigest())
""")


def test_results_do_not_depend_on_the_thread_count():
    """Every parallel kernel splits its rows by thread: one thread and two give the same bytes."""
    digests = {}
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        result = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], env=env, capture_output=True, text=True,
                                timeout=300, check=True)
        count, digest = result.stdout.split()
        assert count == threads
        digests[threads] = digest
    assert digests["1"] == digests["2"]


# --- on a GPU --------------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("peak", [3.4028235e38, -1.0e37])
def test_a_finite_disparity_near_float32_s_limit_filters_to_finite_values_on_the_gpu(peak):
    import cupy

    rng = np.random.default_rng(8)
    guide = rng.integers(0, 256, (19, 23, 3), dtype=np.uint8)
    disparity = (rng.random((19, 23)) * peak).astype(np.float32)
    cpu = kernels.joint_bilateral(disparity, guide, MAX_RADIUS, 1e6, 1e6, backend="cpu")
    for d, g in ((disparity, guide), (cupy.asarray(disparity), cupy.asarray(guide))):
        out = cupy.asnumpy(kernels.joint_bilateral(d, g, MAX_RADIUS, 1e6, 1e6, backend="cuda"))
        assert np.isfinite(out).all() and np.abs(out - cpu).max() <= 1e-5 * abs(peak)
        live = cupy.asnumpy(kernels.refine_live(d, g, work_width=7, radius=3, backend="cuda"))
        assert np.isfinite(live).all()


@pytest.mark.gpu
@pytest.mark.parametrize("shape, axis", [((31, 20), 0), ((20, 31), 1)])
def test_a_far_background_in_cut_blocks_on_the_gpu(shape, axis):
    image = gradient_picture(shape, axis)
    disparity = np.zeros(shape, np.float32)
    for blur in (12.0, 24.0):
        out = kernels.depth_of_field(image, disparity, 1.0, blur, backend="cuda")
        error = np.abs(out.astype(np.int16) - depth_of_field_reference(image, disparity, 1.0, blur))
        last = error[-3:] if axis == 0 else error[:, -3:]
        assert last.max() <= 3 and error.mean() <= 1.5, (blur, last.max(), error.mean())
