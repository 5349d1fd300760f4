"""exact_far: the far field gathered exactly below 2 s (kernels/dof.py: FAR_EXACT), as the near field is.

Through the blocks (from s), a bright background beside a dark one spread its light ~1.5 s px past its disc's rim
and stopped in a hard line, 25-44 levels off the reference (tests/test_dof_block_seam.py). Exact below 2 s it costs a
portrait's background 30-50 % more render time, so it is asked for: `kernels.depth_of_field(..., exact_far=True)`,
`render.exact_far` (auto: on for photos and files into files, off live; the quality preset: on)."""
from __future__ import annotations

import numpy as np
import pytest

import kernels
from kernels.dof import FAR_EXACT, plan
from kernels.dof_cpu import depth_of_field_cpu
from kernels.dof_reference import depth_of_field_reference
from stream.config import RenderConfig, load_config
from stream.errors import UserError
from stream.focus import FocusController
from stream.frame import Frame
from stream.stages import RenderStage

SHAPES = [(1, 1), (2, 9), (9, 2), (5, 7), (23, 41), (61, 97)]


@pytest.fixture(scope="module")
def host_cuda(tmp_path_factory):
    """kernels/depth_of_field.cu on the host through the GPU's launch code (`run_passes`), exact_far in its plan."""
    from host_cuda import compile_for_host

    from kernels.cuda_module import read_source
    from kernels.dof_cuda import KERNELS, SOURCE, DofBuffers, run_passes

    launch = compile_for_host(read_source(SOURCE), KERNELS, tmp_path_factory.mktemp("dof_far_exact"))[1]

    def render(img, disp, focus, max_blur, boost, scale, exact_far):
        p = plan(disp.shape, focus, max_blur, boost, scale, exact_far)
        out = np.empty_like(img)
        run_passes(np.ascontiguousarray(img), np.ascontiguousarray(disp), p, DofBuffers(np, disp.shape, p.low_shape),
                   out, launch)
        return out

    return render


def far_scene(rng, shape: tuple[int, int], scale: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Every pixel behind the focus (focus 1, disparity 0.5..1) with a CoC below 2 s (blur 1.9 s) or in focus, on
    hard-edged bright and black patches running out of the frame: (image, disparity, blur)."""
    h, w = shape
    img = np.where(rng.random((-(-h // 4), -(-w // 4), 1)) < 0.5, 0, 230).astype(np.uint8)
    img = np.repeat(np.repeat(img, 4, 0), 4, 1)[:h, :w]
    img = np.ascontiguousarray(np.broadcast_to(img, (h, w, 3)))
    img[rng.random((h, w)) < 0.02] = 255
    disp = rng.uniform(0.5, 1.0, (-(-h // 5), -(-w // 5))).astype(np.float32)
    disp = np.ascontiguousarray(np.repeat(np.repeat(disp, 5, 0), 5, 1)[:h, :w])
    return img, disp, 1.9 * scale


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale", [2, 3, 5])
def test_exact_far_equals_the_reference_below_2s_at_odd_sizes_and_borders(rng, shape, scale):
    """With every far CoC below 2 s, exact_far gathers the whole far field as the reference does, in float32: <= 1
    level anywhere, the frame's sides and corners included, on frames smaller than a block or no multiple of s."""
    img, disp, blur = far_scene(rng, shape, scale)
    reference = depth_of_field_reference(img, disp, 1.0, blur, 1.0, as_float=True)
    out = depth_of_field_cpu(img, disp, 1.0, blur, highlight_boost=1.0, scale=scale, exact_far=True)
    error = np.abs(out - reference)
    assert error.max() <= 1.0, (shape, scale, float(error.max()), np.argwhere(error > 1.0)[:5])


def test_without_exact_far_the_same_scene_goes_through_the_blocks(rng):
    """The scene above tells the two apart: without exact_far its CoCs from s to 2 s go through the blocks."""
    img, disp, blur = far_scene(rng, (61, 97), 5)
    reference = depth_of_field_reference(img, disp, 1.0, blur, as_float=True)
    fast = np.abs(depth_of_field_cpu(img, disp, 1.0, blur, scale=5) - reference).max()
    exact = np.abs(depth_of_field_cpu(img, disp, 1.0, blur, scale=5, exact_far=True) - reference).max()
    assert exact <= 1.0 < 10.0 < fast


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_exact_far_cuda_source_on_the_host_matches_the_cpu_path(rng, host_cuda, shape, scale):
    """The .cu takes exact_far (`far_exact`) as the CPU does: the same picture, <= 1 level, also on a random depth
    with near pixels and far CoCs above 2 s (blocks and exact pairs side by side)."""
    h, w = shape
    img, disp, blur = far_scene(rng, shape, scale)
    mixed = np.ascontiguousarray(rng.random(shape, dtype=np.float32))
    for depth, focus, max_blur in ((disp, 1.0, blur), (mixed, 0.6, 3.6 * scale)):
        emulated = host_cuda(img, depth, focus, max_blur, 2.0, scale, True)
        cpu = depth_of_field_cpu(img, depth, focus, max_blur, highlight_boost=2.0, scale=scale, exact_far=True)
        diff = np.abs(emulated.astype(np.int16) - cpu)
        assert diff.max() <= 1, (focus, np.argwhere(diff > 1)[:5])
        assert (diff > 0).mean() <= 0.02


def test_exact_far_widens_the_far_reach_masks_to_2s():
    """The exact far gather's chunks are marked per whole distance up to 2 s with exact_far (s without)."""
    from kernels import dof_cpu

    s = 3
    img = np.zeros((20, 30, 3), np.uint8)
    disp = np.full((20, 30), 0.5, np.float32)
    for exact_far, distances in ((False, s + 1), (True, FAR_EXACT * s + 1)):
        depth_of_field_cpu(img, disp, 1.0, 12.0, scale=s, exact_far=exact_far)
        assert dof_cpu._local.workspace.far_mask.shape[1] == distances


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_depth_of_field_refuses_an_exact_far_that_is_not_a_bool(value):
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="exact_far must be True or False"):
        kernels.depth_of_field(img, np.zeros((8, 8), np.float32), 0.5, 4.0, exact_far=value, backend="cpu")


def test_the_public_call_passes_exact_far_to_the_cpu_path(rng):
    img, disp, blur = far_scene(rng, (40, 50), 5)
    for exact_far in (False, True):
        np.testing.assert_array_equal(
            kernels.depth_of_field(img, disp, 1.0, blur, exact_far=exact_far, backend="cpu"),
            depth_of_field_cpu(img, disp, 1.0, blur, exact_far=exact_far))


@pytest.mark.parametrize("text, expected", [("auto", "auto"), ("true", True), ("false", False), ("on", True)])
def test_config_render_exact_far_takes_auto_or_a_bool(tmp_path, text, expected):
    path = tmp_path / "mine.yaml"
    path.write_text(f"render:\n  exact_far: {text}\n")
    assert load_config(str(path)).render.exact_far == expected


@pytest.mark.parametrize("text", ["sometimes", "1", "'true'", "autp"])
def test_config_render_exact_far_refuses_anything_else_in_one_line(tmp_path, text):
    path = tmp_path / "mine.yaml"
    path.write_text(f"render:\n  exact_far: {text}\n")
    with pytest.raises(UserError) as caught:
        load_config(str(path))
    message = str(caught.value)
    assert "\n" not in message and "render.exact_far must be auto, true or false" in message
    assert "line 2" in message


def test_config_presets_exact_far():
    """auto by default (the live presets); the quality preset, for recorded video whatever the speed: always."""
    assert load_config("default").render.exact_far == "auto"
    assert load_config("live-cpu").render.exact_far == "auto"
    assert load_config("quality").render.exact_far is True


@pytest.mark.parametrize("setting, file_run, expected", [("auto", True, True), ("auto", False, False),
                                                         (True, False, True), (False, True, False)])
def test_render_stage_passes_exact_far_for_its_run(monkeypatch, setting, file_run, expected):
    """A file run (a photo, a file into a file) renders the exact far field under auto; a live run the fast one;
    true or false is taken as it is."""
    seen = []

    def recording(image, disparity, focus, max_blur_px, **options):
        seen.append(options["exact_far"])
        return image

    monkeypatch.setattr(kernels, "depth_of_field", recording)
    config = RenderConfig(focus=0.5, exact_far=setting)
    stage = RenderStage(config, FocusController(0.5), "cpu", file_run=file_run)
    image = np.zeros((48, 64, 3), np.uint8)
    stage.process([Frame(index=0, capture_ns=0, image=image, refined=np.full((48, 64), 0.5, np.float32))])
    stage.close()
    assert seen == [expected]


@pytest.mark.parametrize("file_run", [True, False])
def test_build_stages_tells_the_render_stage_its_run(file_run):
    """The pipeline's stages carry the run's kind to the renderer: a file into a file gets auto's exact far field,
    a live run (and the benchmark's own sink) the fast one."""
    from stream.app import build_stages
    import threading

    class NoNetwork:  # the depth stage only holds it here
        pass

    # the run's kind alone: the default's person mask (auto) would fetch its model where none is cached
    stages = build_stages(load_config("default", {"refine.person_mask": "off"}), NoNetwork(), FocusController(0.5),
                          "cpu", threading.Event(), file_run=file_run)
    try:
        assert [stage.file_run for stage in stages if isinstance(stage, RenderStage)] == [file_run]
    finally:
        for stage in stages:
            stage.close()
