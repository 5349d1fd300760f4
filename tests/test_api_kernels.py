"""The kernels package as a Python library: array layouts and flags as NumPy, OpenCV and file readers give them."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import kernels
from kernels import bilateral_cpu, colour, dof_cpu


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
