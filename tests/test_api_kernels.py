"""The kernels package as a Python library: array layouts and flags as NumPy, OpenCV and file readers give them."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import kernels
from kernels import bilateral_cpu, colour, dof_cpu
from test_cuda_sources import gpu_on_host, host_gpu  # noqa: F401 (fixtures: CuPy's host stand-in)


def _frame(rng: np.random.Generator, height: int = 36, width: int = 52) -> tuple[np.ndarray, np.ndarray]:
    image = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 1.5)
    yy, xx = np.mgrid[:height, :width]
    disparity = np.where((yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (height / 3) ** 2, 0.7, 0.2)
    return image, disparity.astype(np.float32)


def _read_only(array: np.ndarray) -> np.ndarray:
    copy = array.copy()
    copy.setflags(write=False)
    return copy


def _calls(image: np.ndarray, disparity: np.ndarray) -> list[np.ndarray]:
    return [kernels.joint_bilateral(disparity, image, 3, 2.5, 0.1, backend="cpu"),
            kernels.refine_live(np.ascontiguousarray(disparity[::2, ::2]), image, work_width=20, backend="cpu"),
            kernels.refine_live(disparity, image, work_width=20, backend="cpu"),
            kernels.depth_of_field(image, disparity, 0.7, 6.0, highlight_boost=1.0, backend="cpu")]


def test_api_read_only_inputs_run_the_kernels_compiled_for_writable_ones(rng):
    """Numba compiles a kernel anew for each array type, and a read-only array is a type of its own: a frame
    from np.frombuffer or np.load(mmap_mode="r") compiled the renderer a second time on its first use (26 s on
    two cores with an empty cache), after the warm-up had compiled the writable one."""
    image, disparity = _frame(rng)
    expected = _calls(image, disparity)
    dispatchers = (bilateral_cpu.joint_bilateral_planes, bilateral_cpu.joint_bilateral_upsample, dof_cpu._reduce,
                   dof_cpu._composite)
    compiled = [set(f.signatures) for f in dispatchers]
    for image_in, disparity_in in ((_read_only(image), _read_only(disparity)), (image, _read_only(disparity)),
                                   (_read_only(image), disparity)):
        for got, want in zip(_calls(image_in, disparity_in), expected):
            np.testing.assert_array_equal(got, want)
    assert [set(f.signatures) for f in dispatchers] == compiled


def test_api_read_only_hdr_frame_runs_the_compiled_conversion():
    tables = colour.ColourTables("pq", 1000.0)
    frame = np.arange(2 * 3 * 3, dtype=np.uint16).reshape(2, 3, 3) * 3000
    expected = colour.convert_rgb48(frame, tables)
    compiled = set(colour._convert.signatures)
    np.testing.assert_array_equal(colour.convert_rgb48(_read_only(frame), tables), expected)
    assert set(colour._convert.signatures) == compiled


@pytest.mark.parametrize("layout", ["fortran", "transposed"])
def test_api_no_blur_gives_a_c_contiguous_copy_as_every_render_does(rng, layout):
    """Blur 0 (a slider at its end) returned np.array(image): a Fortran or transposed input's layout, which
    cv2's drawing functions refuse ("Layout of the output array img is incompatible with cv::Mat"), where
    every other blur gives a C-contiguous image."""
    image, disparity = _frame(rng)
    if layout == "fortran":
        image, disparity = np.asfortranarray(image), np.asfortranarray(disparity)
    else:
        image, disparity = np.ascontiguousarray(image.transpose(1, 0, 2)).transpose(1, 0, 2), disparity
    for blur in (0.0, 4.0):
        out = kernels.depth_of_field(image, disparity, 0.7, blur, backend="cpu")
        assert out.flags.c_contiguous and out.flags.writeable and not np.shares_memory(out, image), blur
        cv2.rectangle(out, (1, 1), (5, 5), (255, 0, 0), 1)  # draws in place: raises on a layout cv2 cannot take
    np.testing.assert_array_equal(kernels.depth_of_field(image, disparity, 0.7, 0.0, backend="cpu"), image)


@pytest.fixture
def gpu_without_nvrtc(monkeypatch):
    """A GPU that CuPy's driver query sees, on a machine without NVRTC (CuPy's wheels leave it out)."""
    cupy = pytest.importorskip("cupy")
    from cupy.cuda import nvrtc

    from kernels import backend

    def missing() -> tuple[int, int]:
        raise RuntimeError("CuPy failed to load libnvrtc.so.13: OSError: libnvrtc.so.13: cannot open shared object "
                           "file: No such file or directory")

    monkeypatch.setattr(cupy.cuda, "is_available", lambda: True)
    monkeypatch.setattr(nvrtc, "getVersion", missing)
    backend.cuda_available.cache_clear()
    yield
    monkeypatch.undo()
    backend.cuda_available.cache_clear()


def test_api_a_gpu_without_nvrtc_falls_back_to_the_cpu(gpu_without_nvrtc, rng):
    """CuPy compiles every kernel, its own and ours, with NVRTC; "auto" chose CUDA on the driver's word alone,
    and the first call failed to load the compiler instead of running on the CPU."""
    from kernels.backend import BackendUnavailable, cuda_available, resolve_backend

    assert not cuda_available() and resolve_backend("auto") == "cpu"
    with pytest.raises(BackendUnavailable, match=r"cannot load NVRTC.*libnvrtc\.so\.13.*cuda-toolkit\[nvrtc\]"):
        resolve_backend("cuda")
    image, disparity = _frame(rng)
    assert isinstance(kernels.depth_of_field(image, disparity, 0.7, 4.0), np.ndarray)  # "auto" ran on the CPU


def test_kernels_are_warmed_up_once_a_process(monkeypatch):
    # each input of a batch (`run clips/*`) ran the warm-up again: 48 ms an input for kernels compiled already
    from kernels import bilateral, dof, warmup

    calls = []
    monkeypatch.setattr(warmup, "_warmed", set())
    monkeypatch.setattr(bilateral, "refine_live", lambda *args, **kwargs: calls.append("live"))
    monkeypatch.setattr(dof, "depth_of_field", lambda *args, **kwargs: calls.append("dof"))
    for _ in range(3):
        warmup.warm_up("cpu", exact_filter=False)
    assert calls == ["live", "dof"]
    warmup.warm_up("cpu", exact_filter=False, depth_of_field=False)  # another set of kernels: its own warm-up
    assert calls == ["live", "dof", "live"]


# --- depth_of_field takes what the filters take; what it refuses says the fix ---------------------------------

def _grey_scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    image, disparity = _frame(rng)
    return np.ascontiguousarray(image[..., 1]), disparity


@pytest.mark.parametrize("shape", ["HxW", "HxWx1"])
@pytest.mark.parametrize("blur", [0.0, 6.0])
def test_api_depth_of_field_renders_a_grey_image_as_grey_in_its_shape(rng, shape, blur):
    """joint_bilateral and refine_live took a grey guide; depth_of_field refused a grey image ("must be uint8
    HxWx3"). Its three equal channels render alike: the grey render is any one of them."""
    grey, disparity = _grey_scene(rng)
    image = grey if shape == "HxW" else grey[..., None]
    bgr = kernels.depth_of_field(np.repeat(grey[..., None], 3, axis=2), disparity, 0.7, blur, backend="cpu")
    assert np.array_equal(bgr[..., 0], bgr[..., 1]) and np.array_equal(bgr[..., 0], bgr[..., 2])
    out = kernels.depth_of_field(image, disparity, 0.7, blur, highlight_boost=0.0, backend="cpu")
    assert out.shape == image.shape and out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out.reshape(grey.shape), bgr[..., 0])
    assert blur == 0.0 or not np.array_equal(out.reshape(grey.shape), grey)  # it did blur


@pytest.mark.parametrize("blur", [0.0, 6.0])
def test_api_depth_of_field_passes_a_bgra_images_alpha_through(rng, blur):
    image, disparity = _frame(rng)
    alpha = rng.integers(0, 256, image.shape[:2], dtype=np.uint8)
    out = kernels.depth_of_field(np.dstack([image, alpha]), disparity, 0.7, blur, highlight_boost=1.0, backend="cpu")
    assert out.shape == image.shape[:2] + (4,) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 3], alpha)
    np.testing.assert_array_equal(out[..., :3], kernels.depth_of_field(image, disparity, 0.7, blur,
                                                                       highlight_boost=1.0, backend="cpu"))


@pytest.mark.parametrize("backend", ["cpu", "cuda"])  # refused before a missing GPU is reported
@pytest.mark.parametrize("scale, offset", [(255.0, 0.0), (1.0, -0.5), (3.0, 0.0)])
def test_api_depth_of_field_refuses_a_disparity_outside_0_1(rng, backend, scale, offset):
    """A 0..255 float map rendered silently (every pixel off the focus at the full blur), where an out-of-range
    focus was refused: the docstring's [0, 1] is now checked, with the fix in the message."""
    image, disparity = _frame(rng)
    with pytest.raises(ValueError, match=r"disparity must be in \[0, 1\].*got values in .*disparity / disparity"):
        kernels.depth_of_field(image, disparity * scale + offset, 0.5, 6.0, backend=backend)


def test_api_depth_of_field_takes_a_01_disparity_with_float_rounding(rng):
    """A [0, 1] map through the filters' weighted means can come out an ulp or so past its ends: still taken, and
    rendered as the clamped map is."""
    image, _ = _frame(rng)
    disparity = np.linspace(-1e-5, 1 + 1e-5, image.shape[0] * image.shape[1], dtype=np.float32).reshape(image.shape[:2])
    np.testing.assert_array_equal(kernels.depth_of_field(image, disparity, 0.5, 6.0, backend="cpu"),
                                  kernels.depth_of_field(image, np.clip(disparity, 0, 1), 0.5, 6.0, backend="cpu"))


def _swapped_calls(guide: np.ndarray, disparity: np.ndarray):
    yield "joint_bilateral", lambda: kernels.joint_bilateral(guide, disparity, backend="cpu")
    yield "refine_live", lambda: kernels.refine_live(guide, disparity, backend="cpu")
    yield "depth_of_field", lambda: kernels.depth_of_field(disparity, guide, 0.5, 6.0, backend="cpu")


@pytest.mark.parametrize("layout", ["BGR", "BGRA", "grey", "HxWx1"])
def test_api_swapped_image_and_disparity_say_which_comes_first(rng, layout):
    """depth_of_field takes the image first, the filters the disparity: a call in the other's order said only
    "image_bgr must be uint8 HxWx3" or "disparity must be a 2-D HxW array"."""
    image, disparity = _frame(rng)
    guide = {"BGR": image, "BGRA": np.dstack([image, image[..., :1]]), "grey": image[..., 0],
             "HxWx1": image[..., :1]}[layout]
    for name, call in _swapped_calls(guide, disparity):
        first = "the image first" if name == "depth_of_field" else "the disparity first"
        with pytest.raises(ValueError, match=rf"look swapped; {name} takes {first}: {name}\("):
            call()


# --- CuPy inputs: the same checks, the disparity scanned on the device ------------------------------------------

def _check_cpu_on_device_arrays(image: np.ndarray, disparity: np.ndarray) -> None:
    """backend="cpu" on CuPy arrays (README: computes on the host, returns CuPy arrays): the values of the same
    call on NumPy arrays, not merely arrays of the right type."""
    import cupy

    d_image, d_disparity, d_half = (cupy.asarray(a) for a in (image, disparity,
                                                              np.ascontiguousarray(disparity[::2, ::2])))
    pairs = [(kernels.depth_of_field(d_image, d_disparity, 0.7, 6.0, backend="cpu"),
              kernels.depth_of_field(image, disparity, 0.7, 6.0, backend="cpu")),
             (kernels.joint_bilateral(d_disparity, d_image, 3, 2.5, 0.1, backend="cpu"),
              kernels.joint_bilateral(disparity, image, 3, 2.5, 0.1, backend="cpu")),
             (kernels.refine_live(d_half, d_image, work_width=20, backend="cpu"),
              kernels.refine_live(np.ascontiguousarray(disparity[::2, ::2]), image, work_width=20, backend="cpu"))]
    for (got, want), unchanged in zip(pairs, (image, disparity, None)):
        assert isinstance(got, cupy.ndarray)
        np.testing.assert_array_equal(cupy.asnumpy(got), want)
        assert unchanged is None or not np.array_equal(want, unchanged)  # the call did change its input
    assert np.ptp(pairs[2][1]) > 0.3  # refine_live kept the disc's step (not a constant map)


def _cupy_checks(rng: np.random.Generator) -> None:
    import cupy

    image, disparity = _frame(rng)
    d_image, d_disparity = cupy.asarray(image), cupy.asarray(disparity)
    alpha = ((disparity > 0.5) * 200).astype(np.uint8)
    for backend in ("auto", "cpu"):
        bgr = kernels.depth_of_field(d_image, d_disparity, 0.7, 6.0, backend=backend)
        grey = kernels.depth_of_field(cupy.asarray(image[..., :1]), d_disparity, 0.7, 6.0, backend=backend)
        bgra = kernels.depth_of_field(cupy.asarray(np.dstack([image, alpha])), d_disparity, 0.7, 6.0, backend=backend)
        assert isinstance(grey, cupy.ndarray) and isinstance(bgra, cupy.ndarray)
        grey_bgr = kernels.depth_of_field(cupy.asarray(np.repeat(image[..., :1], 3, axis=2)), d_disparity, 0.7, 6.0,
                                          backend=backend)
        np.testing.assert_array_equal(cupy.asnumpy(grey), cupy.asnumpy(grey_bgr)[..., :1])
        np.testing.assert_array_equal(cupy.asnumpy(bgra)[..., :3], cupy.asnumpy(bgr))
        np.testing.assert_array_equal(cupy.asnumpy(bgra)[..., 3], alpha)
        with pytest.raises(ValueError, match=r"disparity must be in \[0, 1\]"):
            kernels.depth_of_field(d_image, d_disparity * 255, 0.7, 6.0, backend=backend)
        if backend == "cpu":
            _check_cpu_on_device_arrays(image, disparity)
        holed = disparity.copy()
        holed[2, 4] = np.nan  # on the even grid, for refine_live's half-size map too
        for call in (lambda: kernels.depth_of_field(d_image, cupy.asarray(holed), 0.7, 6.0, backend=backend),
                     lambda: kernels.joint_bilateral(cupy.asarray(holed), d_image, 3, backend=backend),
                     lambda: kernels.refine_live(cupy.asarray(holed[::2, ::2]), d_image, work_width=20,
                                                 backend=backend)):
            with pytest.raises(ValueError, match="NaN"):  # NaN spread over its window on the GPU, unscanned
                call()


@pytest.mark.usefixtures("gpu_on_host")  # CuPy's stand-in: NumPy arrays of module "cupy", the .cu kernels on the host
def test_api_cupy_inputs_on_the_host_stand_in(rng):
    _cupy_checks(rng)


@pytest.mark.gpu
def test_api_cupy_inputs(rng):
    _cupy_checks(rng)


@pytest.mark.usefixtures("gpu_on_host")
def test_api_cupy_inputs_where_cuda_cannot_run_are_filtered_on_the_host(monkeypatch, rng):
    """A GPU CuPy sees but CUDA cannot run on (NVRTC will not load): backend='auto' sent CuPy inputs to the CUDA
    filter anyway, where depth_of_field rendered them on the host. Both now run where 'auto' resolves, the CuPy
    type kept."""
    import cupy  # the host stand-in

    from kernels import backend, bilateral_cuda

    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    monkeypatch.setattr(backend, "cuda_problem", lambda: pytest.fail("'auto' asked why CUDA cannot run"))

    def no_cuda(*args, **kwargs):
        raise AssertionError("the CUDA filter ran where CUDA cannot")

    monkeypatch.setattr(bilateral_cuda, "joint_bilateral_cuda", no_cuda)
    monkeypatch.setattr(bilateral_cuda, "refine_live_cuda", no_cuda)
    disparity = rng.random((24, 40), dtype=np.float32)
    guide = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    full = kernels.joint_bilateral(cupy.asarray(disparity), cupy.asarray(guide), 3)
    live = kernels.refine_live(cupy.asarray(disparity[::2, ::2]), cupy.asarray(guide), work_width=20)
    assert type(full).__module__.startswith("cupy") and type(live).__module__.startswith("cupy")
    np.testing.assert_array_equal(cupy.asnumpy(full), kernels.joint_bilateral(disparity, guide, 3, backend="cpu"))
    np.testing.assert_array_equal(cupy.asnumpy(live),
                                  kernels.refine_live(disparity[::2, ::2], guide, work_width=20, backend="cpu"))
