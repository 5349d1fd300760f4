"""Depth of field where a pixel's CoC lies just above the block size s: the block path's box and bilinear tent
spread a disc's light ~1.5 s px past its rim, so from s to 2 s a blurred foreground's edge over black ran on as a grey
band ending in a hard line, and its coverage fell short of 1 and let the blocks' backdrop (reaching as far too far)
show through. Below 2 s the near field is now gathered exactly (kernels/dof_cpu.py: NEAR_EXACT), CPU and CUDA. The
far field, where a bright background beside a dark one spreads the same way, is so only with exact_far (photos, files
into files: kernels/dof.py, FAR_EXACT); without it, live, it is not (expected failures below)."""
from __future__ import annotations

import numpy as np
import pytest

from kernels.dof import plan
from kernels.dof_cpu import depth_of_field_cpu
from kernels.dof_reference import depth_of_field_reference

FOCUS = 0.2
MAX_BLUR = 32.0  # s = 5, as `depthcam run astronaut.png --focus 0.2 --blur 32`
SPAN = 1.0 - FOCUS
# The near field's CoCs below 2 s go through the same exact gather as the reference's, in float32: the error left is
# rounding (measured 0-0.5 levels). Two levels leave room for rounding and nothing for the block path, whose error
# on these scenes was 25-44 levels.
BOUND = 2.0


def disparity_for(coc: float) -> float:
    return FOCUS + coc * SPAN / MAX_BLUR


@pytest.fixture(scope="module")
def host_cuda(tmp_path_factory):
    """kernels/depth_of_field.cu on the host, through the GPU's launch code (as in test_depth_of_field), with
    exact_far as the plan takes it."""
    from host_cuda import compile_for_host

    from kernels.cuda_module import read_source
    from kernels.dof_cuda import KERNELS, SOURCE, DofBuffers, run_passes

    launch = compile_for_host(read_source(SOURCE), KERNELS, tmp_path_factory.mktemp("dof_seam"))[1]

    def render(img: np.ndarray, disp: np.ndarray, focus: float, exact_far: bool) -> np.ndarray:
        p = plan(disp.shape, focus, MAX_BLUR, 0.0, exact_far=exact_far)
        out = np.empty_like(img)
        run_passes(img, disp, p, DofBuffers(np, disp.shape, p.low_shape), out, launch)
        return out

    return render


def render(request, path: str, img: np.ndarray, disp: np.ndarray, focus: float = FOCUS,
           exact_far: bool = False) -> np.ndarray:
    if path == "cpu":
        return depth_of_field_cpu(img, disp, focus, MAX_BLUR, exact_far=exact_far)
    return request.getfixturevalue("host_cuda")(img, disp, focus, exact_far)


def edge_over_black(coc: float) -> tuple[np.ndarray, np.ndarray]:
    """A blurred foreground, all at one CoC: a bright half beside a black one (the astronaut's white suit beside the
    black backdrop, both in front of the focus)."""
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, :47] = 180
    return img, np.full((100, 100), disparity_for(coc), np.float32)


@pytest.mark.parametrize("path", ["cpu", "cuda"])
@pytest.mark.parametrize("coc", [4.5, 6.0, 6.5, 7.5, 9.0])
def test_a_blurred_edge_over_black_ends_where_its_disc_does(request, path, coc):
    """At CoC 6-7.5 the grey ran 4-5 px past the disc's rim and stopped in a hard line (34-44 levels off the
    reference; 35 in the 4.5 cross-fade, 28 at 9)."""
    assert plan((100, 100), FOCUS, MAX_BLUR, 0.0).scale == 5
    img, disp = edge_over_black(coc)
    reference = depth_of_field_reference(img, disp, FOCUS, MAX_BLUR, as_float=True)
    error = np.abs(render(request, path, img, disp) - reference)[20:80, 30:70]
    assert error.max() <= BOUND, f"{error.max():.1f} levels off the reference"


@pytest.mark.parametrize("path", ["cpu", "cuda"])
def test_no_backdrop_shows_through_a_foreground_just_above_the_block_size(request, path):
    """Rows of a dark foreground at CoC 7 below a bright in-focus band and a strip of small CoC (the astronaut's
    rows 270-282 at x 470-512): the blocks' coverage summed to ~0.9 there and let through a backdrop taken from the
    bright band, which lies beyond the foreground's discs: a grey line 53 levels off the reference here (35 there).
    As there, the band and the foreground begin inside a row of blocks."""
    img = np.zeros((80, 100, 3), np.uint8)
    img[:32] = 180
    disp = np.full((80, 100), disparity_for(7.0), np.float32)
    disp[:32] = FOCUS
    disp[32:37] = disparity_for(3.5)
    reference = depth_of_field_reference(img, disp, FOCUS, MAX_BLUR, as_float=True)
    error = np.abs(render(request, path, img, disp) - reference)[37:52, 20:80]
    assert error.max() <= BOUND, f"{error.max():.1f} levels off the reference"


# the span 0.8 as FOCUS's: a far field of CoC down to -32 px, s = 5 (as `depthcam run astronaut.png --focus 0.6
# --blur 32` for its background)
FAR_FOCUS = 0.8


# Known, left where exact_far is off (live runs): gathering the far field exactly below 2 s (exact_far: FAR_EXACT in
# kernels/dof.py) passes these at 0.4-0.5 levels, but costs the synthetic portrait 20 -> 30 CPU ms at 1280x720
# (+45-51 %) and 6.6 -> 8.5 at 640x480, blur 10 (+29 %), for little on a real frame (astronaut, --focus 0.6:
# whole-frame mean 1.011 -> 0.986, max 38.5 -> 37.5), and above 2 s the blocks stay 20-28 levels off
# (bench/RESULTS.md). So it is on for photos and files into files only (render.exact_far: auto).
# A finer block level for CoC s..2 s cannot pass them either: blocks of 3 (ceil(s / 2)) are still 14-32 levels
# off at CoC -6 to -10 (blocks of 2: 14-25), and a far pixel clamped to the range of the far pixels within
# its reach 16-39: any block path's tail past the rim, a few % of the light, is 20-40 levels over black.
FAR_BLOCK_SPREAD = pytest.mark.xfail(strict=True, reason="the far field's blocks take over at s: their box and "
                                     "bilinear tent spread a disc's light ~1.5 s px past its rim (see above)")


@pytest.mark.parametrize("exact_far", [pytest.param(False, marks=FAR_BLOCK_SPREAD), True])
@pytest.mark.parametrize("path", ["cpu", "cuda"])
@pytest.mark.parametrize("coc", [-4.5, -6.0, -6.5, -7.5, -8.5, -9.0])
def test_a_blurred_background_edge_over_black_ends_where_its_disc_does(request, path, coc, exact_far):
    """A background behind the focus, all at one CoC: a bright half beside a black one. From CoC -6 to -8.5 the blocks
    spread the light 3 px past the disc's rim and stopped in a hard line (34-44 levels off the reference; 25 in the
    -4.5 cross-fade, 28 at -9), as they did in the near field before it was gathered exactly below 2 s. With exact_far
    the far field is too: 0.4-0.5 levels."""
    assert plan((100, 100), FAR_FOCUS, MAX_BLUR, 0.0).scale == 5
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, :47] = 180
    disp = np.full((100, 100), FAR_FOCUS + coc * SPAN / MAX_BLUR, np.float32)
    reference = depth_of_field_reference(img, disp, FAR_FOCUS, MAX_BLUR, as_float=True)
    error = np.abs(render(request, path, img, disp, FAR_FOCUS, exact_far) - reference)[20:80, 30:70]
    assert error.max() <= BOUND, f"{error.max():.1f} levels off the reference"
