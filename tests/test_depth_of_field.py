"""Depth of field on synthetic scenes with known disparity: focus kept, background blurred as the CoC
implies, no halo, disc bokeh of the right size, foreground spill, CPU vs the float64 reference, CUDA."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

import kernels
from kernels.backend import BackendUnavailable, cuda_available
from kernels.dof_cpu import depth_of_field_cpu
from kernels.dof_reference import depth_of_field_reference, signed_coc, silhouette_band

FAR, SUBJECT, NEAR = 0.2, 0.6, 0.95
FOCUS = SUBJECT
MAX_BLUR = 16.0


def coc_radius(d: float, focus: float = FOCUS, max_blur: float = MAX_BLUR) -> float:
    return float(abs(signed_coc(np.array(d), focus, max_blur)))


def disc_kernel(radius: float) -> np.ndarray:
    """The renderer's disc: anti-aliased hard edge, normalised."""
    k = int(math.ceil(radius + 0.5))
    yy, xx = np.mgrid[-k:k + 1, -k:k + 1]
    disc = np.clip(radius - np.hypot(yy, xx) + 0.5, 0.0, 1.0)
    return (disc / disc.sum()).astype(np.float32)


def portrait_scene(rng: np.random.Generator, height: int = 192, width: int = 256):
    """Textured background (red channel fixed at 30), textured subject (red fixed at 230) in focus.

    Red marks who a colour came from: any subject leakage into the background shows in red.
    """
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = rng.integers(40, 216, (height, width))  # white-noise texture in blue and green
    img[..., 1] = rng.integers(40, 216, (height, width))
    img[..., 2] = 30
    subject = np.zeros((height, width), bool)
    cy, cx = height // 2, width // 2
    yy, xx = np.mgrid[:height, :width]
    subject[((yy - cy) / (0.3 * height)) ** 2 + ((xx - cx) / (0.18 * width)) ** 2 <= 1.0] = True
    img[subject, 0] = rng.integers(0, 120, subject.sum())
    img[subject, 1] = rng.integers(0, 120, subject.sum())
    img[subject, 2] = 230
    disparity = np.where(subject, SUBJECT, FAR).astype(np.float32)
    return img, disparity, subject


def distance_outside(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) of every pixel outside `mask` to it (0 inside)."""
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)


def distance_inside(mask: np.ndarray) -> np.ndarray:
    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)


def ac_energy(a: np.ndarray) -> float:
    return float(np.mean((a - a.mean()) ** 2))


# --- contract ---------------------------------------------------------------------------------------

def test_no_blur_returns_a_plain_copy():
    """Blur 0 returned the input's own type (a memmap's copy is a memmap), every other call a plain array."""
    image = np.zeros((8, 8, 3), np.uint8).view(np.memmap)
    out = kernels.depth_of_field(image, np.zeros((8, 8), np.float32), 0.5, 0.0, backend="cpu")
    assert type(out) is np.ndarray and out is not image


def test_numpy_in_numpy_out_and_input_untouched(rng):
    img, disp, _ = portrait_scene(rng, 64, 80)
    before = img.copy()
    out = kernels.depth_of_field(img, disp, FOCUS, 8.0, backend="cpu")
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == img.shape
    assert np.array_equal(img, before)
    assert np.array_equal(kernels.depth_of_field(img, disp, FOCUS, 0.0, backend="cpu"), img)


@pytest.mark.parametrize("kwargs, match", [
    (dict(image_bgr=np.zeros((8, 8, 3), np.float32)), "uint8"),
    (dict(image_bgr=np.zeros((8, 8, 2), np.uint8)), "uint8 HxWx3"),  # grey HxW, HxWx1 and BGRA are taken
    (dict(disparity=np.zeros((8, 9), np.float32)), "disparity must be HxW"),
    (dict(disparity=np.zeros((8, 8), np.uint8)), "float"),
    (dict(disparity=np.full((8, 8), np.nan, np.float32)), "NaN"),
    (dict(focus=1.5), "focus"),
    (dict(focus=float("nan")), "focus"),
    (dict(focus="near"), "focus"),
    (dict(max_blur_px=-1.0), "max_blur_px"),
    (dict(max_blur_px=1e6), "max_blur_px"),
    (dict(highlight_boost=-0.5), "highlight_boost"),
    (dict(backend="tpu"), "backend"),
    (dict(image_bgr=[[0]]), "NumPy"),
    # float() takes these; a numeric API should not
    (dict(focus="0.5"), "focus"),
    (dict(max_blur_px=True), "max_blur_px"),
    (dict(highlight_boost=b"1"), "highlight_boost"),
    # checked whichever backend runs (CUDA was not), and before a missing GPU is reported
    (dict(disparity=np.full((8, 8), np.nan, np.float32), backend="cuda"), "NaN"),
    (dict(disparity=np.full((8, 8), -np.inf, np.float64), backend="auto"), "NaN"),
    # finite, but inf once cast for the float32 kernels (it overflowed with a NumPy warning)
    (dict(disparity=np.full((8, 8), 1e39, np.float64)), "beyond float32's range"),
    (dict(focus=10 ** 400), "focus"),  # float() raises OverflowError, not a message naming the argument
    (dict(max_blur_px=np.complex128(4.0)), "max_blur_px"),  # float() dropped the imaginary part with a warning
])
def test_invalid_inputs_raise_clear_value_errors(kwargs, match):
    args = dict(image_bgr=np.zeros((8, 8, 3), np.uint8), disparity=np.zeros((8, 8), np.float32), focus=0.5,
                max_blur_px=4.0, highlight_boost=0.0, backend="cpu")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        kernels.depth_of_field(args.pop("image_bgr"), args.pop("disparity"), args.pop("focus"),
                               args.pop("max_blur_px"), **args)


@pytest.mark.skipif(cuda_available(), reason="checks the error on machines without a GPU")
def test_cuda_backend_without_gpu_says_so():
    with pytest.raises(BackendUnavailable, match="backend='cpu'"):  # the Python spelling, not only the CLI's
        kernels.depth_of_field(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.float32), 0.5, 4.0, backend="cuda")


def test_array_layouts_and_float_precisions_render_alike(rng):
    """Views, Fortran order, read-only and foreign buffers, float64/float16 disparity: the same picture as a
    contiguous float32 call, the inputs untouched, a new writable C-contiguous image out."""
    img, disp, _ = portrait_scene(rng, 40, 52)
    expected = kernels.depth_of_field(img, disp, FOCUS, 6.0, backend="cpu")
    read_only = (img.copy(), disp.copy())
    for a in read_only:
        a.setflags(write=False)
    cases = {
        "fortran": (np.asfortranarray(img), np.asfortranarray(disp)),
        "read-only": read_only,
        "channel slices": (np.dstack([img, img[..., :1]])[..., :3], np.dstack([disp, disp])[..., 0]),
        "frombuffer": (np.frombuffer(img.tobytes(), np.uint8).reshape(img.shape),
                       np.frombuffer(disp.tobytes(), np.float32).reshape(disp.shape)),
        "float64": (img, disp.astype(np.float64)),
        "big-endian": (img, disp.astype(">f4")),
    }
    for name, (iv, dv) in cases.items():
        before = (iv.copy(), dv.copy())
        out = kernels.depth_of_field(iv, dv, FOCUS, 6.0, backend="cpu")
        assert np.array_equal(out, expected), name
        assert out.flags.c_contiguous and out.flags.writeable and not np.shares_memory(out, iv), name
        assert np.array_equal(iv, before[0]) and np.array_equal(dv, before[1]), name
    flipped = kernels.depth_of_field(img[:, ::-1], disp[:, ::-1], FOCUS, 6.0, backend="cpu")
    assert np.array_equal(flipped, kernels.depth_of_field(img[:, ::-1].copy(), disp[:, ::-1].copy(), FOCUS, 6.0,
                                                          backend="cpu"))


# --- behaviour --------------------------------------------------------------------------------------

def test_in_focus_subject_is_unchanged(rng):
    img, disp, subject = portrait_scene(rng)
    out = kernels.depth_of_field(img, disp, FOCUS, MAX_BLUR, backend="cpu")
    diff = np.abs(out.astype(np.int16) - img.astype(np.int16))
    core = distance_inside(subject) > 2
    # Acceptance: mean abs difference <= 1/255 away from depth edges ...
    assert diff[core].mean() <= 1.0
    # ... and in fact exact everywhere on the subject: the far field never spreads over it.
    assert diff[subject].max() == 0


def test_focus_band_of_a_continuous_surface_is_unchanged(rng):
    """A slanted plane through the focus: pixels whose CoC is at most half a pixel are kept bit for bit,
    except within reach of the near side's discs (the slightly-near neighbours' discs, < 1 px, do cover
    the first column or two, as the reference says). Far pixels never spread over them."""
    h, w = 64, 256
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    disp = np.tile(np.linspace(0.0, 1.0, w, dtype=np.float32), (h, 1))
    out = kernels.depth_of_field(img, disp, 0.5, 12.0, backend="cpu")
    coc = signed_coc(disp, 0.5, 12.0)
    in_focus = np.abs(coc) <= 0.45  # clear of the float32/float64 boundary at 0.5
    near_side = distance_outside(coc > 0.5) <= 2.0
    assert in_focus.sum() >= h * 4
    diff = np.abs(out.astype(np.int16) - img)
    assert diff[in_focus].mean() <= 1.0
    assert np.array_equal(out[in_focus & ~near_side], img[in_focus & ~near_side])


def test_background_energy_drops_by_the_disc_factor(rng):
    """White noise through a normalised disc keeps sum(k^2) of its AC energy (Parseval): ~1/(pi r^2),
    here 1/357 for r = 10.7 px (in light, and nearly so after the square root: its slope varies little
    over the small ripple left around the mean). Checked two ways: the exact disc-filtered noise matches 1/(pi r^2)
    within 35% (a sample estimate over ~10^4 correlated pixels), and the renderer's background energy
    is within [0.7, 1.25] of that disc-filtered reference. The fast path (s = 4) adds a box-and-tent
    blur of ~s px, for which its disc is narrowed (kernels.dof), and keeps ~0.9 of the energy (0.8 at the
    disc's full radius); since energy goes as 1/r^2, the window rejects a CoC 20% too large (0.69) or 12%
    too small (1.28).
    """
    img, disp, subject = portrait_scene(rng)
    out = kernels.depth_of_field(img, disp, FOCUS, MAX_BLUR, backend="cpu").astype(np.float32)
    r = coc_radius(FAR)
    assert r == pytest.approx(MAX_BLUR * 0.4 / 0.6)
    # the disc spreads light (gamma 2): filtered squares, then the square root
    reference = np.sqrt(cv2.filter2D(img.astype(np.float32) ** 2, -1, disc_kernel(r), borderType=cv2.BORDER_REFLECT))
    # Far from the subject and the borders, where the whole disc sees background.
    interior = distance_outside(subject) > r + 4
    m = int(math.ceil(r)) + 2
    interior[:m] = interior[-m:] = False
    interior[:, :m] = interior[:, -m:] = False
    for ch in (0, 1):
        e_in = ac_energy(img[..., ch][interior].astype(np.float32))
        e_out = ac_energy(out[..., ch][interior])
        e_ref = ac_energy(reference[..., ch][interior])
        expected = 1.0 / (math.pi * (r * r + 1.0 / 12.0))
        assert e_ref / e_in == pytest.approx(expected, rel=0.35)  # the sample estimate of sum(k^2)
        assert 0.7 * e_ref <= e_out <= 1.25 * e_ref, (e_in, e_out, e_ref)


def test_no_halo_of_subject_colour_in_the_background(rng):
    """Red is 30 in the background, 230 on the subject: red above 30 outside the subject is leakage.

    A plain disc blur of the frame (what a halo is) leaks ~40% at the silhouette; the far field never
    gathers in-focus pixels, so only float rounding remains. The threshold, 1% of the subject/background
    contrast (2 levels), is below what is visible in a blurred background and 40x below the naive leak.
    """
    img, disp, subject = portrait_scene(rng)
    out = kernels.depth_of_field(img, disp, FOCUS, MAX_BLUR, backend="cpu")
    r = coc_radius(FAR)
    band = (distance_outside(subject) > 0) & (distance_outside(subject) <= r)
    leak = (out[..., 2][band].astype(np.float32) - 30.0) / 200.0
    assert leak.max() <= 0.01
    naive = cv2.filter2D(img.astype(np.float32), -1, disc_kernel(r))
    naive_leak = (naive[..., 2][band & (distance_outside(subject) <= 2)] - 30.0) / 200.0
    assert naive_leak.mean() > 0.3  # the test would see a halo


@pytest.mark.parametrize("max_blur, scale", [(16.0, None), (16.0, 1), (9.0, None), (30.0, None)])
def test_bright_background_pixel_becomes_a_disc_of_diameter_two_coc(max_blur, scale):
    """A highlight at the far extreme (d = 0, focus 0.75: span 0.75 so its CoC is max_blur) becomes a flat disc.

    Diameter: of the disc of equal area above half the peak excess; must be 2 CoC within 15%.
    Flat top and hard edge tell it from a Gaussian smudge: the inner half-radius varies by <= 10%, and
    the excess falls from 90% to 10% of the peak within 0.6 r (a Gaussian with the same half-maximum
    diameter takes 1.44 r); exactly (scale 1) within 2 px, the anti-aliased rim of the disc. At
    scale s the rim is widened by the s-px box and tent of the reduced gather (~1.5 s <= 0.5 r).
    """
    h = w = 2 * int(max_blur) + 40
    img = np.full((h, w, 3), 20, np.uint8)
    cy = cx = h // 2
    img[cy, cx] = 255
    disp = np.zeros((h, w), np.float32)
    # boost ~ disc area: the single highlight then carries ~1/4 of its disc's weight (peak ~57 levels)
    out = depth_of_field_cpu(img, disp, 0.75, max_blur, highlight_boost=max_blur ** 2, scale=scale)
    excess = out[..., 1].astype(np.float32) - 20.0
    peak = excess.max()
    assert peak >= 10  # visible bokeh: the boost made the highlight dominate its disc
    diameter = 2.0 * math.sqrt((excess > peak / 2).sum() / math.pi)
    assert diameter == pytest.approx(2 * max_blur, rel=0.15)
    yy, xx = np.mgrid[:h, :w]
    dist = np.hypot(yy - cy, xx - cx)
    inner = excess[dist <= 0.5 * max_blur]
    assert inner.min() >= 0.9 * inner.max()
    row = excess[cy, cx:]
    edge_90 = np.argmax(row < 0.9 * peak)
    edge_10 = np.argmax(row < 0.1 * peak)
    assert edge_10 - edge_90 <= (2 if scale == 1 else 0.6 * max_blur)


def light_spread(out: np.ndarray, background: float, cy: int, cx: int) -> float:
    """Root-mean-square distance from (cy, cx) of the light a render added to a uniform background."""
    added = np.clip(out.astype(np.float64).mean(axis=2) ** 2 - background ** 2, 0.0, None)  # linear light
    yy, xx = np.indices(added.shape)
    return float(np.sqrt((added * ((yy - cy) ** 2 + (xx - cx) ** 2)).sum() / added.sum()))


@pytest.mark.parametrize("path", ["cpu", "cuda source on the host"])
@pytest.mark.parametrize("side", [-1.0, 1.0])  # far, near
@pytest.mark.parametrize("coc", [6.0, 8.0, 12.0])
def test_a_small_light_spreads_as_wide_as_its_disc(request, path, side, coc):
    """The block average and the bilinear composite widen the reduced gather's disc by themselves; a light
    on a CoC of 6 px (s = 5) spread 1.43 times as wide as the reference's disc (rms radius), 8 px 1.15,
    12 px 1.09. The reduced disc is now narrowed by as much (kernels.dof): 1.13, 1.10, 1.02."""
    focus, max_blur = 0.5, 20.0
    img = np.full((96, 96, 3), 30, np.uint8)
    cy, cx = 47, 49  # off the blocks' centres
    img[cy, cx] = 255
    disp = np.full((96, 96), focus + side * 0.5 * coc / max_blur, np.float32)
    if path == "cpu":
        out = depth_of_field_cpu(img, disp, focus, max_blur)
    else:
        from kernels.dof_cuda import default_scale

        assert default_scale(max_blur) == 5
        out = request.getfixturevalue("host_cuda")(img, disp, focus, max_blur, 0.0, 5)
    reference = light_spread(depth_of_field_reference(img, disp, focus, max_blur, as_float=True), 30.0, cy, cx)
    assert light_spread(out, 30.0, cy, cx) == pytest.approx(reference, rel=0.15)


def test_highlight_boost_brightens_bokeh(rng):
    h = w = 72
    img = np.full((h, w, 3), 20, np.uint8)
    img[36, 36] = 255
    disp = np.zeros((h, w), np.float32)
    plain = kernels.depth_of_field(img, disp, 0.75, 12.0, backend="cpu")[36, 36, 1]
    boosted = kernels.depth_of_field(img, disp, 0.75, 12.0, highlight_boost=100.0, backend="cpu")[36, 36, 1]
    # in linear light (gamma 2) over the disc's 453 px: sqrt((452 * 20^2 + 255^2) / 453) = 23.3
    assert plain <= 24  # a single pixel of light all but vanishes into the background
    assert boosted >= plain + 70  # weight 401 (1 + 4 x 100): sqrt((452 * 20^2 + 401 * 255^2) / 853) = 175


def test_blur_averages_light_not_stored_values():
    """A lens spreads light: 1-px black and white stripes blur to the grey of half the light, 255 / sqrt(2)
    = 180 in gamma 2, not the stored values' mean 127.5; and a small light (7 pixels at 255 on 20) stays a
    visible ball over its 12 px disc: sqrt((446 * 20^2 + 7 * 255^2) / 453) = 37.4, where the stored values'
    mean gave 23.6."""
    h = w = 72
    disp = np.zeros((h, w), np.float32)
    stripes = np.zeros((h, w, 3), np.uint8)
    stripes[:, ::2] = 255
    out = kernels.depth_of_field(stripes, disp, 0.75, 12.0, backend="cpu")[20:52, 20:52].astype(np.float32)
    assert np.abs(out - 255 / math.sqrt(2)).max() <= 2.0
    light = np.full((h, w, 3), 20, np.uint8)
    for dy, dx in ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1)):
        light[36 + dy, 36 + dx] = 255
    assert abs(float(kernels.depth_of_field(light, disp, 0.75, 12.0, backend="cpu")[36, 36, 1]) - 37.4) <= 1.5
    reference = depth_of_field_reference(light, disp, 0.75, 12.0, as_float=True)
    assert reference[36, 36, 1] == pytest.approx(math.sqrt((446 * 20 ** 2 + 7 * 255 ** 2) / 453.0), rel=0.02)


def test_near_foreground_spills_over_the_focused_subject():
    """A blurred near bar over an in-focus subject: its disc covers the subject behind it as a lens would.

    Expected spill at distance x outside a straight edge = the part of a radius-r disc past a chord at x:
    (acos(x/r) - (x/r) sqrt(1 - (x/r)^2)) / pi, 0.5 at the edge. Tolerance 0.06 on the fraction,
    twice the measured worst case (0.03): the reduced (s = 4) gather smooths the profile near the rim.
    """
    h, w = 96, 160
    img = np.zeros((h, w, 3), np.uint8)
    img[...] = (40, 200, 40)  # the subject: green, in focus everywhere
    img[:, :60] = (200, 40, 40)  # the near bar: blue, in front
    disp = np.full((h, w), SUBJECT, np.float32)
    disp[:, :60] = NEAR
    out = kernels.depth_of_field(img, disp, FOCUS, MAX_BLUR, backend="cpu").astype(np.float32)
    r = coc_radius(NEAR)
    # the bar's share of the light on the subject, per distance from the bar (blue: 40 subject, 200 bar)
    spill = (out[h // 2, 60:, 0] ** 2 - 40.0 ** 2) / (200.0 ** 2 - 40.0 ** 2)
    x = np.arange(spill.size) + 0.5
    u = np.clip(x / r, 0.0, 1.0)
    expected = (np.arccos(u) - u * np.sqrt(1.0 - u * u)) / np.pi
    assert spill[0] >= 0.3
    assert np.abs(spill[: int(r) + 4] - expected[: int(r) + 4]).max() <= 0.06
    far_from_bar = out[:, 60 + int(r) + 6:]
    assert np.array_equal(far_from_bar, img[:, 60 + int(r) + 6:].astype(np.float32))


@pytest.mark.parametrize("path", ["reference", "cpu", "cuda source on the host"])
def test_a_blurred_foreground_is_soft_on_both_sides_of_its_outline(request, path):
    """A lens blurs a foreground's outline both ways: at distance x inside the bar, what lies behind it (the
    subject) shows through by the part of the disc outside, so the bar's share is 1 - spill(x), 0.5 at the
    edge. Composited over its own colour the bar stayed opaque to its outline (share 1 from x = 0): a sharp
    object with a glow around it. Tolerance 0.08 on the share (the reduced gather smooths the profile)."""
    h, w = 96, 160
    img = np.zeros((h, w, 3), np.uint8)
    img[...] = (40, 200, 40)  # the subject: green, in focus
    img[:, :60] = (200, 40, 40)  # the near bar: blue, in front
    disp = np.full((h, w), SUBJECT, np.float32)
    disp[:, :60] = NEAR
    if path == "reference":
        out = depth_of_field_reference(img, disp, FOCUS, MAX_BLUR, as_float=True)
    elif path == "cpu":
        out = depth_of_field_cpu(img, disp, FOCUS, MAX_BLUR).astype(np.float64)
    else:
        from kernels.dof_cuda import default_scale

        out = request.getfixturevalue("host_cuda")(img, disp, FOCUS, MAX_BLUR, 0.0,
                                                  default_scale(MAX_BLUR)).astype(np.float64)
    r = coc_radius(NEAR)
    inside = out[h // 2, 59::-1, 0]  # from the outline into the bar
    share = (inside ** 2 - 40.0 ** 2) / (200.0 ** 2 - 40.0 ** 2)
    x = np.arange(share.size) + 0.5
    u = np.clip(x / r, 0.0, 1.0)
    expected = 1.0 - (np.arccos(u) - u * np.sqrt(1.0 - u * u)) / np.pi
    assert share[0] <= 0.7
    assert np.abs(share[: int(r) + 4] - expected[: int(r) + 4]).max() <= 0.08, share[: int(r) + 4].round(2)


def test_far_background_does_not_cover_a_nearer_far_object():
    """Within the far field a farther pixel reaches a nearer one only within the nearer one's own CoC
    (the min-radius rule): a slightly defocused object (r = 3.2) before a very defocused wall (r = 12.8)
    keeps its colour deeper than 2 s = 8 px inside (<= 1 level), where a plain r = 12.8 blur of the far
    field would pull it 13% (18 levels) of the way to the wall at 8 px; and the wall is the wall farther
    than 3.2 px + 2 s from the object."""
    h, w = 96, 128
    img = np.empty((h, w, 3), np.uint8)
    img[...] = (60, 60, 200)  # the wall
    img[28:68, 40:88] = (200, 200, 60)  # the object
    disp = np.full((h, w), 0.1, np.float32)
    disp[28:68, 40:88] = 0.4
    out = kernels.depth_of_field(img, disp, 0.5, MAX_BLUR, backend="cpu").astype(np.int16)
    inner = np.zeros((h, w), bool)
    inner[36:60, 48:80] = True
    assert np.abs(out[inner] - img[inner]).max() <= 1
    wall_far_from_object = distance_outside(disp > 0.3) > 3.2 + 2 * 4
    assert np.abs(out[wall_far_from_object] - img[wall_far_from_object]).max() <= 1


# --- against the float64 reference -------------------------------------------------------------------

def random_scene(rng: np.random.Generator, h: int = 72, w: int = 96):
    """Smooth random disparity crossing the focus (far, in-focus and near regions, continuous CoC), with
    a few highlights; image: textured, not white noise, like a photo."""
    disp = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 6.0)
    disp = (disp - disp.min()) / (disp.max() - disp.min())
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 1.5)
    img[rng.random((h, w)) < 0.01] = 255
    return img, disp


def test_cpu_at_scale_one_is_the_reference(rng):
    """At scale 1 the fast path computes the reference's sums in float32/float64 mixed precision:
    only ties at .5 may round differently (<= 1 level on <= 0.5% of values)."""
    img, disp = random_scene(rng)
    out = depth_of_field_cpu(img, disp, 0.5, 5.0, highlight_boost=3.0, scale=1)
    ref = depth_of_field_reference(img, disp, 0.5, 5.0, 3.0)
    diff = np.abs(out.astype(np.int16) - ref)
    assert diff.max() <= 1
    assert (diff > 0).mean() <= 0.005


@pytest.mark.parametrize("max_blur, mean_bound, p95_bound", [(MAX_BLUR, 2.0, 7.0), (40.0, 2.0, 6.0)])
def test_cpu_fast_path_matches_reference_within_reduction_error(rng, max_blur, mean_bound, p95_bound):
    """At max_blur 16 the CPU path gathers CoC >= 4 px at 1/4 resolution (kernel: the disc convolved with
    a 4-px box and a bilinear tent) and smaller CoC exactly; at 40 px, CoC >= 5 px at 1/5 resolution,
    discs up to 8 reduced px. On this photo-like scene with a continuous disparity the fast path is off by
    1.0 levels on average (95th percentile 4, the worst at depth edges; at 40 px 1.0 and 4; in linear light,
    where a leak over a dark pixel reads larger; at 40 px the ramp rule, RAMP_SPREAD, costs 0.1 here and
    gains 20-30 % beside real subjects). Bounds: mean 2 levels, 95th percentile 7 (at 40 px 2 and 6). They
    exclude a wrong lens: rendering with a 1.5x larger aperture is farther from the reference than 1.25
    times the bound (16 px: 3.9, 40 px: 2.6). Boost 0.5: its clipped pixels weigh 3, as boost 2 did before the
    steeper curve of session 26 (1.7 and 6 then, mid-bright pixels weighing more); at the default 4 (weight 17) the
    reduced gather's spread of each light's rim reads 2.8 and 14 at 12 px (1.1 and 6 with exact_far)."""
    img, disp = random_scene(rng, 96, 128)
    out = kernels.depth_of_field(img, disp, 0.5, max_blur, highlight_boost=0.5, backend="cpu").astype(np.float32)
    ref = depth_of_field_reference(img, disp, 0.5, max_blur, 0.5).astype(np.float32)
    diff = np.abs(out - ref)
    assert diff.mean() <= mean_bound
    assert np.percentile(diff, 95) <= p95_bound
    wrong = depth_of_field_reference(img, disp, 0.5, 1.5 * max_blur, 0.5).astype(np.float32)
    assert np.abs(wrong - ref).mean() > mean_bound * 1.25


def exact_far_gather(far_r: np.ndarray, exact_w: np.ndarray, pre: np.ndarray, s: int, y: int) -> np.ndarray:
    """`_gather_exact_far` of row y in float64: every pair of far pixels within the (2s + 3)^2 window (rows and
    columns beyond the frame skipped) at the smaller radius, the larger inverse area and weight 1 - t_q t_p."""
    h, w = far_r.shape
    kd = s + 1
    r = far_r.astype(np.float64)
    share = np.clip(r - (s - 1.0), 0.0, 1.0)
    out = np.zeros((4, w))
    for qy in range(max(y - kd, 0), min(y + kd + 1, h)):
        for dx in range(-kd, kd + 1):
            p = np.arange(max(-dx, 0), min(w - dx, w))
            rp, rq = r[y, p], r[qy, p + dx]
            weight = (np.clip(np.minimum(rq, rp) + 0.5 - math.hypot(qy - y, dx), 0.0, 1.0)
                      * np.maximum(exact_w[y, p], exact_w[qy, p + dx]) * (1.0 - share[y, p] * share[qy, p + dx]))
            out[:, p] += weight * pre[:, qy, p + dx]
    return out


def test_exact_far_gather_takes_every_non_zero_tap(rng):
    """The exact far gather visits, per offset, only the 8-column chunks holding a small receiver or source that
    reaches the offset's distance (`_reach_masks`): its sums must be those of every pair in the window, or the
    render silently loses light. Rows as on a real portrait at s = 5: a body whose CoC grows from its middle (in
    focus) outwards; lone small pixels, at and beside chunk borders, in a large far background (only their own
    chunks, and those their discs reach across, hold taps); random rows; a width no chunk divides."""
    from kernels import dof_cpu

    s, width = 5, 403
    shift = dof_cpu._share_shift(s)
    x = np.arange(width)
    rows = [np.where(np.abs(x - c) < 30, dof_cpu._NO_FAR, 0.6 + 5.0 * np.abs(x - c) / 200.0)
            for c in range(190, 222, 3)]
    rows += [rows[0] + 0.3, np.where(x % 97 < 60, rows[0], 7.0)]
    rows += [np.where(np.isin(x, [0, 3, 100 + c, 231 + c, 360 + c, width - 1]), 4.9, 7.0) for c in range(0, 32, 5)]
    rows += [np.where(rng.random(width) < 0.2, dof_cpu._NO_FAR, rng.uniform(0.5, 9.0, width)) for _ in range(4)]
    far_r = np.array(rows, np.float32)
    h = len(rows)
    exact_w = np.where(far_r > 0, 1.0 / (np.pi * (far_r.astype(np.float64) ** 2 + 1.0 / 12.0)), 0.0).astype(np.float32)
    pre = rng.uniform(0.0, 255.0 ** 2, (4, h, width)).astype(np.float32)
    masks = np.empty((h, s + 1, 1), np.uint64)  # whole distances 0 to s: those below s + 1/2
    far_rmax = np.empty(h, np.float32)
    span = np.empty(2, np.int64)
    for y in range(h):  # as the reduce pass marks the small far pixels
        small = np.where((far_r[y] > 0.5) & (np.clip(far_r[y] - shift, 0.0, 1.0) < 1.0), far_r[y], -1.0)
        far_rmax[y] = dof_cpu._small_span(small.astype(np.float32), span)
        dof_cpu._reach_masks(small.astype(np.float32), span, np.empty(width, np.float32), masks[y])
    dist = dof_cpu._distance_table(s + 1)
    for y in range(h):
        exact = np.zeros((4, width), np.float32)
        dof_cpu._gather_exact_far(y, np.float32(shift), pre, exact_w, far_r, dist, far_rmax, masks, exact)
        expected = exact_far_gather(far_r, exact_w, pre, s, y)
        np.testing.assert_allclose(exact, expected, rtol=1e-5, atol=1e-6 * max(1.0, expected.max()), err_msg=str(y))


def reduced_fields(img: np.ndarray, coc: np.ndarray, pre: np.ndarray, s: int) -> dict[str, np.ndarray]:
    """The reduce pass's per-block fields, in float64, from its per-pixel CoC and premultiplied colour: each s x s
    block (narrower at the right and bottom borders) as `kernels.dof_cpu._reduce` documents them."""
    h, w = coc.shape
    hl, wl = -(-h // s), -(-w // s)
    shift = s - 1.0 if s > 1 else -1e30
    near_shift = 2 * s - 1.0 if s > 1 else -1e30  # the near field is exact below 2 s (dof_cpu.NEAR_EXACT)
    c = coc.astype(np.float64)
    far, near = c < -0.5, c > 0.5
    fs = np.where(far, np.clip(-c - shift, 0.0, 1.0), 0.0)
    ns = np.where(near, np.clip(c - near_shift, 0.0, 1.0), 0.0)
    light = img.astype(np.float64).transpose(2, 0, 1) ** 2
    out = {k: np.empty(shape) for k, shape in (("low_f", (4, hl, wl)), ("low_n", (5, hl, wl)), ("low_b", (4, hl, wl)),
                                               ("low_fr", (hl, wl)), ("low_nr", (hl, wl)), ("low_br", (hl, wl)))}

    def narrowed(r: float) -> float:
        return r if s == 1 else math.sqrt(max(r * r - (s * s - 1), 0.25 * s * s)) / s

    for by in range(hl):
        for bx in range(wl):
            b = (slice(by * s, by * s + s), slice(bx * s, bx * s + s))
            n = c[b].size
            out["low_f"][:, by, bx] = (fs[b] * pre[(slice(None),) + b]).sum(axis=(1, 2)) / n
            out["low_n"][:4, by, bx] = (ns[b] * pre[(slice(None),) + b]).sum(axis=(1, 2)) / n
            out["low_n"][4, by, bx] = ns[b].sum() / n
            out["low_b"][:3, by, bx] = (light[(slice(None),) + b] * ~near[b]).sum(axis=(1, 2)) / n
            out["low_b"][3, by, bx] = (~near[b]).sum() / n
            radii = coc[b][fs[b] > 0]  # float32, as the kernel spreads them
            if fs[b].sum() == 0:
                out["low_fr"][by, bx] = -1.0
            elif -radii.min() - -radii.max() > s:  # a depth ramp: the smallest radius as it is
                out["low_fr"][by, bx] = -radii.max() / s
            else:
                out["low_fr"][by, bx] = narrowed((fs[b] * -c[b]).sum() / fs[b].sum())
            out["low_nr"][by, bx] = narrowed((ns[b] * c[b]).sum() / ns[b].sum()) if ns[b].sum() > 0 else -1.0
            out["low_br"][by, bx] = c[b][near[b]].sum() / (near[b].sum() * s) if near[b].any() else -1.0
    return out


@pytest.mark.parametrize("shape", [(1, 1), (2, 9), (9, 2), (5, 7), (23, 41), (61, 97), (64, 96)])
@pytest.mark.parametrize("scale", [1, 2, 3, 4, 5, 6, 7])
def test_cpu_reduce_pass_blocks_at_odd_sizes_and_every_scale(rng, shape, scale):
    """The reduce pass sums whole blocks a phase at a time (a constant stride for s <= 5) and the narrower
    blocks at the right and bottom borders on their own: every block's fields as a plain float64 sum says, for
    frames smaller than a block, sizes no scale divides, and scales with and without the constant strides."""
    from kernels import dof_cpu

    h, w = shape
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    # CoCs from -12 to 12 px: far, near, in focus, small and large, blocks with a depth ramp and without
    disp = rng.random((h, w)).astype(np.float32) if min(h, w) < 8 else random_scene(rng, h, w)[1]
    depth_of_field_cpu(img, disp, 0.5, 12.0, highlight_boost=2.0, scale=scale)
    ws = dof_cpu._local.workspace
    want = reduced_fields(img, ws.coc, ws.pre, scale)
    for name, expected in want.items():
        np.testing.assert_allclose(getattr(ws, name), expected, rtol=2e-5, atol=1e-3, err_msg=name)


def test_eight_lane_taps_add_what_one_lane_taps_add(rng):
    """The exact gathers add a chunk's taps as one explicit 8-lane step (`_near_taps8`, `_far_taps8`), and at the
    frame's sides one column at a time (`_near_taps`, `_far_taps`): the same sums bit for bit, or a pixel's colour
    would depend on where its column falls among the chunks. Weights at every clamp: coverage 0, partial and 1,
    shares 0, partial and 1, sources and receivers outside the far field (no far radius), every distance."""
    from numba import njit

    from kernels import dof_cpu
    from kernels.dof_cpu_common import _UNFUSED

    # the gathers' flags, which Numba gives the intrinsics' instructions too (fastmath=True here fused and
    # reassociated them as in no gather)
    @njit(fastmath=_UNFUSED)
    def near_taps8(near, pre, coc, exact_w, qy, p0, q0, edge):
        dof_cpu._near_taps8(near, pre, coc, exact_w, qy, p0, q0, edge)

    @njit(fastmath=_UNFUSED)
    def far_taps8(exact, pre, far_r, exact_w, y, qy, p0, q0, edge, shift):
        dof_cpu._far_taps8(exact, pre, far_r, exact_w, y, qy, p0, q0, edge, shift)

    s, h, w = 5, 3, 40
    # most pixels far with a radius about s - 1, where both the exact share and the coverage are partial
    coc = np.where(rng.random((h, w)) < 0.7, rng.uniform(-5.5, -3.5, (h, w)), rng.uniform(-3.5, 6.0, (h, w)))
    coc = coc.astype(np.float32)
    far_r = np.where(coc < -0.5, -coc, dof_cpu._NO_FAR).astype(np.float32)
    exact_w = rng.uniform(0.0, 0.3, (h, w)).astype(np.float32)
    pre = rng.uniform(0.0, 255.0 ** 2, (4, h, w)).astype(np.float32)
    shift = np.float32(dof_cpu._share_shift(s))
    distances = np.unique(dof_cpu._distance_table(s + 1))
    for dx in (-6, -1, 0, 3, 6):
        p0 = 16
        for d in distances[distances < s + 0.5]:
            edge = np.float32(0.5) - d
            start = rng.uniform(0.0, 1e3, (5, w)).astype(np.float32)
            lanes, one = start.copy(), start.copy()
            near_taps8(lanes, pre, coc, exact_w, 1, p0, p0 + dx, edge)
            dof_cpu._near_taps(one, pre, coc, exact_w, 1, p0, p0 + 8, dx, edge)
            np.testing.assert_array_equal(lanes.view(np.int32), one.view(np.int32), err_msg=f"near {dx} {d}")
            lanes, one = start[:4].copy(), start[:4].copy()
            far_taps8(lanes, pre, far_r, exact_w, 0, 2, p0, p0 + dx, edge, shift)
            dof_cpu._far_taps(one, pre, far_r, exact_w, 0, 2, p0, p0 + 8, dx, edge, shift)
            np.testing.assert_array_equal(lanes.view(np.int32), one.view(np.int32), err_msg=f"far {dx} {d}")
            if d < 2.0:  # taps were added
                assert (lanes != start[:4]).any(), (dx, d)


def chunks_that_reach(small: np.ndarray, distances: int) -> np.ndarray:
    """For each whole distance b below `distances`, which 8-column chunks of the row hold a small pixel (`small`:
    its radius, -1 elsewhere) whose disc reaches it (r + 1/2 > b): bool, distances x chunks."""
    chunks = -(-small.size // 8)
    padded = np.full(chunks * 8, -1.0, np.float32)
    padded[:small.size] = small
    reach = padded[None, :] + (np.float32(0.5) - np.arange(distances, dtype=np.float32)[:, None]) > 0
    return reach.reshape(distances, chunks, 8).any(axis=2)


def test_reduce_pass_marks_the_chunks_that_reach_each_distance(rng):
    """The reduce pass marks, per row and whole distance, the 8-column chunks holding a small far (near) pixel whose
    disc reaches that far (`_reach_masks`, 64 chunks a word), which the composite's exact gathers visit at every
    distance from there to the next whole one (a superset: the taps it adds beyond are 0): on rows whose
    small pixels sit in lone columns, at chunk and word borders, in long runs whose radius grows along them, and
    in none; on a frame whose width no chunk divides."""
    from kernels import dof_cpu

    s, h, w = 5, 40, 1100
    coc = np.full((h, w), 10.0, np.float32)  # near and large (at least 2 s): no small pixel
    for y in range(h):
        cols = rng.choice(w, size=int(rng.integers(1, 12)), replace=False)
        if y % 4 == 0:
            cols = np.array([0, 7, 8, 511, 512, 1023, w - 1])[: 1 + y % 7]  # chunk and word borders, the frame's
        coc[y, cols] = -rng.uniform(0.6, 4.9, cols.size) if y % 2 else rng.uniform(0.6, 4.9, cols.size)
        if y % 3 == 0:
            coc[y, 100:180] = -np.linspace(0.6, 4.9, 80)  # a long run, the radius growing along it
            coc[y, 600:700] = np.linspace(4.9, 0.6, 100)
    coc[h - 1] = 0.0  # a row without any
    disp = (coc / 12.0 + 0.5).astype(np.float32)  # focus 0.5 and blur 12 px: coc_scale 24, c = 24 (d - 0.5)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    depth_of_field_cpu(img, disp, 0.5, 12.0, scale=s)
    ws = dof_cpu._local.workspace
    assert ws.far_mask.shape[1] == s + 1  # the whole distances below s + 1/2, which a CoC below s reaches
    assert ws.near_mask.shape[1] == 2 * s + 1  # the near field's small CoCs are those below 2 s
    for field, masks, sign, shift, n in (("far", ws.far_mask, -1.0, s - 1.0, s + 1),
                                         ("near", ws.near_mask, 1.0, 2 * s - 1.0, 2 * s + 1)):
        for y in range(h):
            c = sign * ws.coc[y]
            small = np.where((c > 0.5) & (np.clip(c - shift, 0, 1) < 1), c, -1.0).astype(np.float32)
            got = np.unpackbits(masks[y].view(np.uint8), axis=1, bitorder="little")[:, :-(-w // 8)].astype(bool)
            np.testing.assert_array_equal(got, chunks_that_reach(small, n), err_msg=f"{field} {y}")


@pytest.mark.parametrize("scale", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("width", [1, 2, 5, 9, 13, 41, 97, 128, 1283])
def test_cpu_upsampling_all_phases_at_once_matches_one_phase_at_a_time(rng, scale, width):
    """The composite upsamples every channel of a field in one call, all s phases of a block in one loop of
    constant stride for s = 2 to 5 (`_phases_fixed`): bit for bit what the loop of one phase at a time
    (`_phases_generic`, also used at other factors) gives inside the frame, and the borders, where the taps
    clamp, a plain bilinear interpolation. Widths no scale divides, narrower than a block or three."""
    from kernels import dof_cpu

    wl = -(-width // scale)
    acc = (rng.random((5, 3, wl)) * 1000.0).astype(np.float32)
    x0, x1, fx, phase_off, phase_fx = dof_cpu._bilinear_columns(width, scale, wl)
    low = np.empty((5, wl), np.float32)
    got = np.empty((5, width), np.float32)
    fy = np.float32(0.375)
    dof_cpu._upsample_rows(acc, 1, 2, fy, scale, phase_off, phase_fx, x0, x1, fx, low, got)
    vertical = acc[:, 1].astype(np.float64) + float(fy) * (acc[:, 2].astype(np.float64) - acc[:, 1])
    expected = vertical[:, x0] + fx * (vertical[:, x1] - vertical[:, x0])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    one_at_a_time = got.copy()
    for ch in range(5):
        dof_cpu._phases_generic(low[ch], scale, phase_off, phase_fx, width, one_at_a_time[ch])
    inside = slice(scale, scale * (wl - 1))  # columns of the blocks 1 .. wl - 2; the rest are border columns
    np.testing.assert_array_equal(got[:, inside].view(np.int32), one_at_a_time[:, inside].view(np.int32))


def small_near_gather(coc: np.ndarray, pre: np.ndarray, exact_w: np.ndarray, s: int, y: int) -> np.ndarray:
    """`_add_small_near` of row y in float64: every offset of the (4s + 3)^2 window, rows and columns beyond the
    frame continuing its edge, each source weighed by its coverage and `exact_w` (0 but on small near pixels)."""
    h, w = coc.shape
    kd = 2 * s + 1
    shift = 2 * s - 1.0 if s > 1 else -1e30
    c = coc.astype(np.float64)
    small = (c > 0.5) & (np.clip(c - shift, 0.0, 1.0) < 1.0)
    out = np.zeros((5, w))
    for dy in range(-kd, kd + 1):
        qy = min(max(y + dy, 0), h - 1)
        for dx in range(-kd, kd + 1):
            qx = np.clip(np.arange(w) + dx, 0, w - 1)
            weight = np.clip(c[qy, qx] + 0.5 - math.hypot(dy, dx), 0.0, 1.0) * exact_w[qy, qx] * small[qy, qx]
            out[:4] += weight * pre[:, qy, qx]
            out[4] += weight
    return out


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (23, 41), (40, 300)])
@pytest.mark.parametrize("scale", [1, 2, 3, 4, 5, 6])
def test_exact_near_gather_visits_the_sources_that_reach_each_distance(rng, shape, scale):
    """The composite's exact near gather runs each offset across the 8-column chunks holding a source that reaches
    its distance only (`near_mask`, found by the reduce pass): its sums are those of the whole window, on a smooth
    random depth (small near pixels in bands, every radius; chunks without one skipped between them) and on the
    frame's edges, where the sources beyond it continue the edge pixel."""
    from kernels import dof_cpu

    h, w = shape
    disp = random_scene(rng, h, w)[1] if min(h, w) >= 8 else rng.random((h, w)).astype(np.float32)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    blur = 3.6 * scale
    depth_of_field_cpu(img, disp, 0.5, blur, highlight_boost=2.0, scale=scale)
    ws = dof_cpu._local.workspace
    dist = dof_cpu._distance_table(2 * scale + 1)
    skipped = False
    for y in range(h):
        near = np.zeros((5, w), np.float32)
        dof_cpu._add_small_near(y, ws.coc, ws.pre, ws.exact_w, dist, ws.near_span, ws.near_cmax, ws.near_mask,
                                near)
        expected = small_near_gather(ws.coc, ws.pre, ws.exact_w, scale, y)
        np.testing.assert_allclose(near, expected, rtol=1e-5, atol=1e-3 * max(1.0, expected.max()), err_msg=str(y))
        if ws.near_mask.shape[1] and ws.near_span[y, 0] <= ws.near_span[y, 1]:  # a chunk between the first and
            chunks = np.unpackbits(ws.near_mask[y, 0].view(np.uint8), bitorder="little")  # last left out
            skipped |= not chunks[ws.near_span[y, 0] // 8:ws.near_span[y, 1] // 8 + 1].all()
    assert skipped or max(h, w) < 100 or scale == 1  # the wide frame's bands leave chunks out


def test_cpu_render_reports_each_pass_time_and_renders_the_same(rng):
    """bench/bench_dof.py --passes reads each pass's time from `render`; timing must not change the picture."""
    from kernels.dof import plan
    from kernels.dof_cpu import render

    img, disp = random_scene(rng)
    timings: dict[str, float] = {}
    out = render(img, disp, plan(disp.shape, 0.5, 16.0, 0.0), timings)
    assert sorted(timings) == ["composite", "gather", "reduce"] and min(timings.values()) >= 0.0
    np.testing.assert_array_equal(out, depth_of_field_cpu(img, disp, 0.5, 16.0))


def test_reduction_factor_stops_growing_until_the_reduced_discs_get_large():
    """s = ceil(blur / 4) up to 5 (VGA's presets unchanged: 12 px -> 3, 16 px -> 4); then the reduced discs
    grow instead, up to 12 reduced px (MAX_LOW_RES_RADIUS), so the exact full-resolution gather (CoC < s) stays
    small at 4K and in photos (tests/test_dof_large_blur.py)."""
    from kernels.dof import MAX_EXACT_SCALE, MAX_LOW_RES_RADIUS, reduction_scale

    assert [reduction_scale(b) for b in (0.5, 4.0, 12.0, 16.0, 27.0, 54.0, 512.0)] == [1, 1, 3, 4, 5, 5, 43]
    for blur in np.arange(0.25, 520.0, 0.25):
        s = reduction_scale(blur)
        assert blur / s <= MAX_LOW_RES_RADIUS + 1e-9  # the reduced gather's largest disc is bounded
        # and s is the smallest factor allowed: below the cap by the blur / 4 rule, above it by that bound
        assert s == 1 or (blur / (s - 1) > (4.0 if s <= MAX_EXACT_SCALE else MAX_LOW_RES_RADIUS))


# --- CUDA --------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("exact_far", [False, True])
@pytest.mark.parametrize("max_blur, boost", [(16.0, 0.0), (36.0, 4.0), (5.0, 1.0)])
def test_cuda_matches_cpu_at_the_same_scale(rng, max_blur, boost, exact_far):
    """Same passes, same order of operations; float32 vs float64 accumulation and powf vs a LUT for the
    highlight luminance: <= 1 level, on <= 1% of values; with the far field's hand-over at s or 2s (exact_far)."""
    from kernels.dof import reduction_scale
    from kernels.dof_cuda import depth_of_field_cuda

    img, disp = random_scene(rng, 270, 480)
    s = reduction_scale(max_blur)
    gpu = depth_of_field_cuda(img, disp, 0.5, max_blur, highlight_boost=boost, scale=s, exact_far=exact_far)
    cpu = depth_of_field_cpu(img, disp, 0.5, max_blur, highlight_boost=boost, scale=s, exact_far=exact_far)
    diff = np.abs(gpu.astype(np.int16) - cpu)
    assert diff.max() <= 1
    assert (diff > 0).mean() <= 0.01


@pytest.mark.gpu
def test_cuda_at_scale_one_is_the_reference(rng):
    from kernels.dof_cuda import depth_of_field_cuda

    img, disp = random_scene(rng)
    gpu = depth_of_field_cuda(img, disp, 0.5, 5.0, highlight_boost=3.0, scale=1)
    ref = depth_of_field_reference(img, disp, 0.5, 5.0, 3.0)
    diff = np.abs(gpu.astype(np.int16) - ref)
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.01


@pytest.mark.gpu
def test_cuda_default_path_renders_what_the_cpu_renders(rng):
    """Both devices pick the same reduction, so `--device` does not change the picture."""
    img, disp = random_scene(rng, 96, 128)
    for exact_far in (False, True):
        gpu = kernels.depth_of_field(img, disp, 0.5, MAX_BLUR, highlight_boost=2.0, exact_far=exact_far,
                                     backend="cuda")
        cpu = kernels.depth_of_field(img, disp, 0.5, MAX_BLUR, highlight_boost=2.0, exact_far=exact_far,
                                     backend="cpu")
        diff = np.abs(gpu.astype(np.int16) - cpu)
        assert diff.max() <= 1 and (diff > 0).mean() <= 0.01, exact_far


@pytest.mark.gpu
def test_cupy_in_cupy_out_and_focus_kept(rng):
    import cupy as cp

    img, disp, subject = portrait_scene(rng)
    out = kernels.depth_of_field(cp.asarray(img), cp.asarray(disp), FOCUS, MAX_BLUR)
    assert isinstance(out, cp.ndarray) and out.dtype == cp.uint8 and out.shape == img.shape
    host = cp.asnumpy(out)
    assert np.array_equal(host[subject], img[subject])
    with pytest.raises(ValueError, match="both"):
        kernels.depth_of_field(cp.asarray(img), disp, FOCUS, MAX_BLUR)
    cpu_on_device = kernels.depth_of_field(cp.asarray(img), cp.asarray(disp), FOCUS, MAX_BLUR, backend="cpu")
    assert isinstance(cpu_on_device, cp.ndarray)


# --- the CUDA source, compiled for the host (tests/host_cuda.py) -------------------------------------
# The kernels use no shared memory, warp intrinsics or synchronisation, so they run thread by thread on
# the host, through the very launch code (`dof_cuda.run_passes`) the GPU uses.


@pytest.fixture(scope="module")
def host_cuda(tmp_path_factory):
    """kernels/depth_of_field.cu on the host, through the very launch code of the GPU (`run_passes`)."""
    from host_cuda import compile_dof_for_host

    return compile_dof_for_host(tmp_path_factory.mktemp("dof_host"))


@pytest.mark.parametrize("max_blur, boost, scale", [(16.0, 0.0, None), (16.0, 3.0, 2), (36.0, 4.0, None),
                                                    (5.0, 1.0, 1)])
def test_cuda_source_on_the_host_matches_the_cpu_path(rng, host_cuda, max_blur, boost, scale):
    """Same passes and order of operations; float32 (CUDA) vs float64 (Numba) accumulation, powf vs a
    LUT for the highlight luminance: <= 1 level, on <= 1% of values."""
    from kernels.dof import reduction_scale

    img, disp = random_scene(rng, 90, 124)
    s = reduction_scale(max_blur) if scale is None else scale
    emulated = host_cuda(img, disp, 0.5, max_blur, boost, s)
    cpu = depth_of_field_cpu(img, disp, 0.5, max_blur, highlight_boost=boost, scale=s)
    diff = np.abs(emulated.astype(np.int16) - cpu)
    assert diff.max() <= 1
    assert (diff > 0).mean() <= 0.01


@pytest.mark.parametrize("shape", [(1, 1), (2, 9), (9, 2), (5, 7), (23, 41), (61, 97)])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_cpu_row_stencils_match_the_cuda_source_at_odd_sizes(rng, host_cuda, shape, scale):
    """The CPU path gathers by row stencils and upsamples one column phase at a time, with the borders
    (where taps clamp) apart; the CUDA source gathers per pixel. Frames smaller than a block, widths
    not a multiple of s and a single pixel must agree as closely as larger ones."""
    h, w = shape
    disp = cv2.resize(rng.random((max(h // 3, 1), max(w // 3, 1))).astype(np.float32), (w, h))
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    for focus in (0.5, 0.05):
        emulated = host_cuda(img, disp, focus, 3.6 * scale, 2.0, scale)
        cpu = depth_of_field_cpu(img, disp, focus, 3.6 * scale, highlight_boost=2.0, scale=scale)
        diff = np.abs(emulated.astype(np.int16) - cpu)
        assert diff.max() <= 1, (focus, np.argwhere(diff > 1)[:5])
        assert (diff > 0).mean() <= 0.02


def test_cuda_source_on_the_host_keeps_focus_and_has_no_halo(rng, host_cuda):
    from kernels.dof_cuda import default_scale

    img, disp, subject = portrait_scene(rng)
    out = host_cuda(img, disp, FOCUS, MAX_BLUR, 0.0, default_scale(MAX_BLUR))
    assert np.array_equal(out[subject], img[subject])
    band = (distance_outside(subject) > 0) & (distance_outside(subject) <= coc_radius(FAR))
    assert (out[..., 2][band].astype(np.float32) - 30.0).max() / 200.0 <= 0.01


def test_cuda_work_buffers_are_never_shared_between_threads_or_streams(monkeypatch):
    """Kernels on one stream run in order, so one thread may reuse its buffers there; two threads, or two
    streams, could have renders in flight at once. Checked with a stand-in for CuPy (no GPU needed)."""
    import sys
    import threading
    import types

    from kernels import dof_cuda

    stream = types.SimpleNamespace(ptr=1)
    cuda = types.SimpleNamespace(Device=lambda: types.SimpleNamespace(id=0), get_current_stream=lambda: stream)
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(cuda=cuda, empty=np.empty, float32=np.float32))
    monkeypatch.setattr(dof_cuda, "_local", threading.local())
    shape, low = (36, 64), (9, 16)
    first = dof_cuda._cupy_buffers(shape, low)
    assert dof_cuda._cupy_buffers(shape, low) is first  # same thread, same stream: reused
    stream.ptr = 2
    assert dof_cuda._cupy_buffers(shape, low) is not first  # another stream
    stream.ptr = 1
    other: list = []
    worker = threading.Thread(target=lambda: other.append(dof_cuda._cupy_buffers(shape, low)))
    worker.start()
    worker.join()
    assert other[0] is not first and dof_cuda._cupy_buffers(shape, low) is first  # another thread
    for size in range(dof_cuda.MAX_WORKSPACES + 1):  # frame sizes come and go: a bounded number kept
        dof_cuda._cupy_buffers((36 + size, 64), low)
    assert len(dof_cuda._local.buffers) <= dof_cuda.MAX_WORKSPACES


def test_cpu_work_arrays_of_a_photo_are_not_kept_after_its_render(monkeypatch, rng):
    """A 12 MP photo's work arrays (~430 MB) stayed with the thread after its render; frames up to the limit
    keep theirs for the next frame, and a result never depends on which was used."""
    import threading

    from kernels import dof_cpu

    monkeypatch.setattr(dof_cpu, "_local", threading.local())
    monkeypatch.setattr(dof_cpu, "WORKSPACE_KEPT_PIXELS", 64 * 96)
    image, disparity, _ = portrait_scene(rng, 64, 96)
    first = depth_of_field_cpu(image, disparity, 0.8, 10.0)
    kept = dof_cpu._local.workspace
    assert kept is not None and kept.key[0] == (64, 96)
    large_image, large_disparity, _ = portrait_scene(rng, 72, 96)
    large = depth_of_field_cpu(large_image, large_disparity, 0.8, 10.0)
    assert dof_cpu._local.workspace is None  # the larger frame's arrays went with its render
    monkeypatch.setattr(dof_cpu, "WORKSPACE_KEPT_PIXELS", 72 * 96)
    np.testing.assert_array_equal(depth_of_field_cpu(large_image, large_disparity, 0.8, 10.0), large)
    np.testing.assert_array_equal(depth_of_field_cpu(image, disparity, 0.8, 10.0), first)


@pytest.fixture
def astronaut_render_inputs(shared_models, monkeypatch, tmp_path):
    """What the renderer receives for scikit-image's astronaut photo in a real run (TCMonoDepth, refined
    depth, auto focus, --blur 16): its head and hair, where the refined depth ramps from the focused
    subject to the backdrop over ~10 px, as a network's depth does, unlike the synthetic scenes' steps."""
    from skimage import data

    from stream import cli

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    kept = []
    render = kernels.depth_of_field

    def recording_render(image, disparity, focus, max_blur_px, **options):
        kept.append((np.array(image), np.array(disparity, np.float32), float(focus), float(max_blur_px)))
        return render(image, disparity, focus, max_blur_px, **options)

    monkeypatch.setattr(kernels, "depth_of_field", recording_render)
    assert cli.main(["run", str(photo), "-o", str(tmp_path / "out.png"), "--device", "cpu", "--blur", "16",
                     "--no-progress"]) == 0
    monkeypatch.setattr(kernels, "depth_of_field", render)
    image, disparity, focus, max_blur = kept[0]
    head = (slice(0, 160), slice(200, 360))
    return np.ascontiguousarray(image[head]), np.ascontiguousarray(disparity[head]), focus, max_blur


@pytest.mark.parametrize("path", ["cpu", "cuda source on the host"])
def test_real_photo_outline_matches_the_reference(astronaut_render_inputs, request, path):
    """Beside the subject the fast paths used to spread the depth ramp's colours with their block's mean
    radius: a dark halo and outlines stair-stepped by the reduction factor (within 12 px of the subject,
    error mean 7.4 levels, p99 40; whole crop 1.0). Pairs with a radius below s are now gathered exactly
    whichever side is small: mean 0.9, p99 5.1, whole crop 0.26. Bounds about half way, in the ratio."""
    img, disp, focus, max_blur = astronaut_render_inputs
    if path == "cpu":
        out = depth_of_field_cpu(img, disp, focus, max_blur)
    else:
        from kernels.dof_cuda import default_scale

        out = request.getfixturevalue("host_cuda")(img, disp, focus, max_blur, 0.0, default_scale(max_blur))
    ref = depth_of_field_reference(img, disp, focus, max_blur, as_float=True)
    band = silhouette_band(disp, focus, max_blur, 12.0)
    assert band.sum() > 2000  # the hair's outline against the backdrop
    error = np.abs(out - ref)[band]
    assert error.mean() <= 2.5
    assert np.percentile(error, 99) <= 16.0
    assert np.abs(out - ref).mean() <= 0.5


@pytest.mark.parametrize("path", ["reference", "cpu", "cuda source on the host"])
@pytest.mark.parametrize("coc", [16.0, 2.0])  # at s = 4: the reduced gather; a disc below s - 1, gathered exactly
def test_a_blurred_foreground_covers_up_to_the_frame_s_edge(request, path, coc):
    """A foreground filling the frame (stripes, CoC 16 or 2): its coverage fell to ~1/2 at the borders, where
    the sources beyond the frame were skipped, and the sharp stripes showed through in a strip as wide as
    the blur (contrast 73 levels in the first row, 1-4 inside). The near field now continues the edge."""
    img = np.zeros((96, 120, 3), np.uint8)
    img[:, ::6] = img[:, 1::6] = img[:, 2::6] = 230
    img[::6, :, 1] = img[1::6, :, 1] = img[2::6, :, 1] = 230
    focus, max_blur = 0.5, 16.0
    disp = np.full((96, 120), focus + 0.5 * coc / max_blur, np.float32)  # everything nearer than the focus
    if path == "reference":
        out = depth_of_field_reference(img, disp, focus, max_blur)
    elif path == "cpu":
        out = depth_of_field_cpu(img, disp, focus, max_blur)
    else:
        from kernels.dof_cuda import default_scale

        out = request.getfixturevalue("host_cuda")(img, disp, focus, max_blur, 0.0, default_scale(max_blur))
    blue = out[..., 0].astype(np.float32)
    inside = np.ptp(blue[40:56, 20:100], axis=1).max()
    for edge in (blue[:3, 20:100], blue[-3:, 20:100], blue[20:76, :3].T, blue[20:76, -3:].T):
        assert np.ptp(edge, axis=1).max() <= inside + 12, (path, np.ptp(edge, axis=1), inside)
