"""render.focus_band: an in-focus depth band around the focus (kernels.focus_band), so a subject's own relief, and a
network's blotches in it, stay sharp while the background keeps its blur.

Before it the CoC was `blur * |d - focus| / span` with no tolerance: with focus on a face 73 % of the body got more than
2 px of blur, two things on the same chest came out differently sharp, and at --blur 30 the face smeared."""
from __future__ import annotations

import numpy as np
import pytest

import kernels
from kernels.focus_band import WIDEN_REACH, band_scale, focus_band, focus_band_reference, in_focus_range
from stream.config import MAX_FOCUS_BAND, RenderConfig, load_config
from stream.errors import UserError
from stream.focus import FocusController
from stream.frame import Frame
from stream.stages import RenderStage

FOCI = [0.0, 0.2, 0.5, 0.725, 1.0]  # both ends: the span is the whole range on one side, nothing on the other
BANDS = [0.01, 0.15, 0.4, 0.5, 0.8]  # 0.5 and up reach the span where the focus is 0.5 (and 0.8: past 0.725's)


def _disparity(rng: np.random.Generator, shape=(37, 53)) -> np.ndarray:
    """Random values with the exact ends and the band's edges among them."""
    d = rng.random(shape, dtype=np.float32)
    d.flat[:4] = [0.0, 1.0, 0.5, 0.65]
    return d


@pytest.mark.parametrize("focus", FOCI)
@pytest.mark.parametrize("band", BANDS)
def test_the_remap_matches_the_float64_reference(rng, focus, band):
    d = _disparity(rng)
    out = focus_band(d, focus, band)
    assert out.dtype == np.float32 and out.shape == d.shape and out is not d
    # float32 arithmetic stretched by span / (span - band), at most 0.5 / 0.1 here
    np.testing.assert_allclose(out, focus_band_reference(d, focus, band), rtol=0, atol=2e-6)


@pytest.mark.parametrize("focus", FOCI)
@pytest.mark.parametrize("band", [0.05, 0.15, 0.3])
def test_the_remap_gives_the_band_s_circle_of_confusion_through_the_renderer_s_formula(rng, focus, band):
    """blur * |d' - focus| / span == blur * max(0, |d - focus| - band) / (span - band), the band's CoC."""
    d = rng.random((40, 40)).astype(np.float64)
    span = max(focus, 1 - focus)
    through_renderer = np.abs(focus_band_reference(d, focus, band) - focus) / span
    wanted = np.maximum(0.0, np.abs(d - focus) - band) / (span - band)
    np.testing.assert_allclose(through_renderer, wanted, rtol=0, atol=1e-12)


@pytest.mark.parametrize("focus", FOCI)
def test_the_remap_keeps_the_order_the_range_and_the_far_end_s_full_blur(focus):
    """Monotonic (the renderer's near/far sides, and its no-halo rule, hold), never away from the focus (so within
    [0, 1]), the band all at the focus itself, and the extreme farther from the focus still at that extreme."""
    band = 0.15
    d = np.linspace(0.0, 1.0, 4001, dtype=np.float32)
    out = focus_band(d, focus, band)
    assert np.all(np.diff(out) >= 0)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.all(np.abs(out - focus) <= np.abs(d - focus) + 1e-6)
    inside = np.abs(d - np.float32(focus)) <= np.float32(band)
    assert np.all(out[inside] == np.float32(focus))  # exactly: the renderer's in-focus test is |CoC| <= 0.5 px
    far_end = 0.0 if focus >= 0.5 else 1.0
    assert out[0 if far_end == 0.0 else -1] == far_end


def test_a_band_that_covers_the_span_leaves_everything_in_focus():
    d = np.linspace(0.0, 1.0, 101, dtype=np.float32)
    assert band_scale(0.5, 0.5) == 0.0
    assert np.all(focus_band(d, 0.5, 0.5) == np.float32(0.5))
    assert np.all(focus_band(d, 0.3, 0.8) == np.float32(0.3))


def test_band_zero_is_the_disparity_itself(rng):
    d = _disparity(rng)
    assert focus_band(d, 0.4, 0.0) is d


WIDENINGS = [(0.2, 0.0), (0.0, 0.1), (0.1, 0.3), (0.6, 0.6)]  # a group behind, before, both; past WIDEN_REACH


@pytest.mark.parametrize("focus", FOCI)
@pytest.mark.parametrize("widen", WIDENINGS)
def test_a_widened_band_matches_the_float64_reference(rng, focus, widen):
    d = _disparity(rng)
    np.testing.assert_allclose(focus_band(d, focus, 0.15, widen), focus_band_reference(d, focus, 0.15, widen),
                               rtol=0, atol=2e-6)


@pytest.mark.parametrize("focus", [0.3, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("widen", WIDENINGS)
def test_a_widened_band_keeps_its_range_in_focus_the_order_and_each_extreme_s_blur(focus, widen):
    """A group's faces (stream.focus) widen the in-focus range to one side or both, up to WIDEN_REACH from the focus
    each side: that range is exactly at the focus, the map still monotonic and never away from the focus, each
    extreme (0 and 1) remapped as by the band alone (its blur kept), and a side not widened the band's own remap (a
    near person's chest no blurrier for a group behind her)."""
    band = 0.15
    low, high = in_focus_range(focus, band, widen)
    assert low == pytest.approx(focus - band - min(widen[0], WIDEN_REACH - band))
    assert high == pytest.approx(focus + band + min(widen[1], WIDEN_REACH - band))
    d = np.linspace(0.0, 1.0, 4001, dtype=np.float32)
    out, band_alone = focus_band(d, focus, band, widen), focus_band(d, focus, band)
    assert np.all(np.diff(out) >= 0)
    assert np.all(np.abs(out - focus) <= np.abs(d - focus) + 1e-6)
    inside = (d >= np.float32(low)) & (d <= np.float32(high))
    assert np.all(out[inside] == np.float32(focus)) and np.all(out[~inside] != np.float32(focus))
    beyond = [end for end in (0, -1) if not inside[end]]  # an extreme inside the range is in focus
    np.testing.assert_allclose(out[beyond], band_alone[beyond], rtol=0, atol=1e-6)
    for side, widened in ((d < focus, widen[0]), (d > focus, widen[1])):
        if widened == 0.0:
            assert np.array_equal(out[side], band_alone[side])


def test_band_zero_is_the_disparity_itself_widened_or_not(rng):
    d = _disparity(rng)
    assert focus_band(d, 0.4, 0.0, (0.2, 0.2)) is d


def test_a_rounding_outside_the_range_is_clipped_to_it():
    """Values a float32 rounding past [0, 1] (the renderer takes them, RANGE_SLACK) stay in range once stretched."""
    d = np.array([-1e-4, 0.0, 1.0, 1.0 + 1e-4], np.float32)
    out = focus_band(d, 0.5, 0.4)  # stretched 5 times
    assert out.min() == 0.0 and out.max() == 1.0


def _scene(size: int = 96) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured red subject (a disc) whose disparity has relief of +-0.1 around 0.7, over a textured background
    at 0.1 with no red in it. Returns image, disparity and the subject's mask."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:size, :size]
    subject = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2
    image = np.zeros((size, size, 3), np.uint8)
    image[..., 0] = rng.integers(0, 256, (size, size))  # blue and green texture everywhere
    image[..., 1] = rng.integers(0, 256, (size, size))
    image[..., 2] = np.where(subject, rng.integers(128, 256, (size, size)), 0)  # red only on the subject
    relief = 0.1 * np.sin(xx / 3.0) * np.cos(yy / 4.0)  # a face's nose, a chest's patch: within the band
    disparity = np.where(subject, 0.7 + relief, 0.1).astype(np.float32)
    return image, disparity, subject


def _render(image: np.ndarray, disparity: np.ndarray, band: float, blur: float = 12.0) -> np.ndarray:
    config = RenderConfig(focus=0.7, blur=blur, focus_band=band, reference_height=image.shape[0])
    stage = RenderStage(config, FocusController(0.7), "cpu")
    frame = Frame(index=0, capture_ns=0, image=image, refined=disparity)
    stage.process([frame])
    stage.close()
    return frame.output


def test_the_subject_s_relief_within_the_band_comes_out_unchanged_and_the_background_keeps_its_blur():
    image, disparity, subject = _scene()
    before = disparity.copy()
    thin_lens = _render(image, disparity, 0.0)
    banded = _render(image, disparity, 0.15)
    assert np.array_equal(disparity, before)  # the measured depth (saved, shown) is not the renderer's remap
    # without the band the relief is blurred (the scene does test something), with it every subject pixel is the input
    assert np.abs(thin_lens[subject].astype(int) - image[subject]).mean() > 5
    assert np.array_equal(banded[subject], image[subject])
    # the background (0.6 behind the focus) keeps its blur: 0.45 / 0.55 of the span against 0.6 / 0.7
    background = ~subject
    assert _change(banded, image, background) > 0.9 * _change(thin_lens, image, background) > 20
    # no halo: the background gathers only background, so none of the subject's red reaches it
    assert banded[background][:, 2].max() == 0


def _change(out: np.ndarray, image: np.ndarray, where: np.ndarray) -> float:
    return float(np.abs(out[where].astype(int) - image[where]).mean())


def test_band_zero_renders_exactly_the_thin_lens():
    """render.focus_band 0 is the DESIGN contract's coc = blur * |d - focus| / span: the renderer's own output."""
    image, disparity, _ = _scene()
    direct = kernels.depth_of_field(image, disparity, 0.7, 12.0, highlight_boost=RenderConfig().highlight_boost,
                                    backend="cpu")
    assert np.array_equal(_render(image, disparity, 0.0), direct)
    assert not np.array_equal(_render(image, disparity, 0.15), direct)


@pytest.mark.parametrize("preset", ["default", "quality", "live-cpu", "gpu-1080p"])
def test_every_preset_has_a_band_that_keeps_most_of_the_background_s_blur(preset):
    """Each preset sets its band (tuned on a composite with an exact mask: docs/how-it-works.md); none so wide that
    a background halfway across the range from the focus loses more than a quarter of its blur."""
    band = load_config(preset).render.focus_band
    assert 0.1 <= band <= 0.15
    span = 0.7
    assert (0.5 - band) / (span - band) / (0.5 / span) > 0.75


@pytest.mark.parametrize("value, said", [(0.5, f"render.focus_band must be in [0, {MAX_FOCUS_BAND}], got 0.5"),
                                         (-0.1, "render.focus_band must be in [0, 0.4], got -0.1"),
                                         ("wide", "render.focus_band must be a number in [0, 0.4], got 'wide'"),
                                         (True, "render.focus_band must be a number")])
def test_a_bad_band_is_refused_in_one_line_naming_the_key(tmp_path, value, said):
    path = tmp_path / "band.yaml"
    path.write_text(f"render:\n  focus_band: {value if not isinstance(value, bool) else 'true'}\n")
    with pytest.raises(UserError) as caught:
        load_config(str(path))
    message = str(caught.value)
    assert said in message and "line 2" in message and "\n" not in message, message


def test_the_flag_sets_the_band_and_a_bad_one_is_named_as_typed(capsys, tmp_path):
    from stream.cli import build_parser, main, run_config

    args = build_parser().parse_args(["run", "clip.mp4", "--focus-band", "0.05"])
    assert run_config(args.inputs[0], args)[0].render.focus_band == 0.05
    args = build_parser().parse_args(["run", "clip.mp4", "--config", "live-cpu"])
    assert run_config(args.inputs[0], args)[0].render.focus_band == load_config("live-cpu").render.focus_band
    code = main(["run", "synthetic:portrait?frames=1&size=96x72", "--focus-band", "0.9", "-o", str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert code == 2
    assert "--focus-band: render.focus_band must be in [0, 0.4], got 0.9" in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if "error" in line.lower()]) == 1, err


@pytest.mark.gpu
def test_the_remap_on_the_gpu_is_the_cpu_s(rng):
    import cupy

    d = _disparity(rng, (480, 640))
    for focus, band, widen in [(0.725, 0.15, (0.0, 0.0)), (0.0, 0.4, (0.0, 0.0)), (0.5, 0.5, (0.0, 0.0)),
                               (0.7, 0.15, (0.25, 0.05))]:
        on_gpu = focus_band(cupy.asarray(d), focus, band, widen)
        assert isinstance(on_gpu, cupy.ndarray) and on_gpu.dtype == cupy.float32
        np.testing.assert_array_equal(cupy.asnumpy(on_gpu), focus_band(d, focus, band, widen))
