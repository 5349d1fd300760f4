"""Every CUDA source compiles: with nvcc for Hopper, and through NVRTC exactly as CuPy compiles it."""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from kernels.cuda_module import compile_ptx_nvrtc, cuda_sources

SOURCES = cuda_sources()


def test_there_are_cuda_sources():
    assert SOURCES, "kernels/ holds no .cu file"


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_nvcc_compiles_to_ptx(source, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH (CI machines have it)")
    result = subprocess.run([nvcc, "-ptx", "-arch=sm_90", "-std=c++17", "-o", str(tmp_path / "out.ptx"), str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ptx = (tmp_path / "out.ptx").read_text()
    assert ".entry" in ptx


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_nvrtc_compiles_like_cupy(source):
    try:
        from cupy.cuda import nvrtc  # noqa: F401
        ptx = compile_ptx_nvrtc(source.name)
    except ImportError as exc:
        pytest.skip(f"CuPy is not installed: {exc}")
    except Exception as exc:
        if "nvrtc" in str(exc).lower() and ("load" in str(exc).lower() or "not found" in str(exc).lower()):
            pytest.skip(f"the NVRTC library is not installed: {exc}")
        raise
    assert ".entry" in ptx


def test_the_cuda_sources_constants_are_the_python_ones():
    """The depth-of-field kernel's #defines restate kernels/dof.py's constants; a change to one side only
    would make --device cuda render another picture than the CPU."""
    import re

    from kernels import dof

    source = (Path(__file__).resolve().parents[1] / "kernels" / "depth_of_field.cu").read_text()
    for name in ("FOCUS_RADIUS", "HIGHLIGHT_THRESHOLD", "RAMP_SPREAD"):
        match = re.search(rf"#define {name} ([0-9.]+)f", source)
        assert match and float(match.group(1)) == getattr(dof, name), name


# --- every launch the Python wrappers make, against its kernel's `extern "C"` signature -------------------
# No GPU needed: CuPy is replaced by NumPy and a recorder that takes each launch's grid, block, arguments and
# shared memory. CuPy passes a Python int as a 64-bit and a Python float as a double, so an argument of the
# wrong width shifts every later one without an error; a grid counted in another block shape leaves pixels
# unwritten (joint_bilateral_global's grid was counted in 32 x 8 blocks for its 16 x 16 ones: half the frame).

_SIGNATURE = re.compile(r'extern "C" __global__ void\s+(?:__launch_bounds__\(([^)]*)\)\s*)?(\w+)\s*\(([^)]*)\)')
_POINTEE = {"float": np.float32, "unsigned char": np.uint8, "float4": np.float32}
# the output extent each kernel's threads must cover: (width parameter, height parameter, rows a thread)
_COVERS = {"joint_bilateral_lut": ("width", "height", 1), "joint_bilateral_exp2": ("width", "height", 1),
           "joint_bilateral_exp2_rows4": ("width", "height", 4), "joint_bilateral_exp2_rows8": ("width", "height", 8),
           "joint_bilateral_global": ("width", "height", 1), "joint_bilateral_upsample": ("width", "height", 1),
           "resize_bilinear_f32": ("dst_w", "dst_h", 1), "resize_area_f32": ("dst_w", "dst_h", 1),
           "resize_area_bgr": ("dst_w", "dst_h", 1), "dof_reduce": ("wl", "hl", 1), "dof_gather": ("wl", "hl", 1),
           "dof_composite": ("width", "height", 1)}
DEFAULT_SHARED_LIMIT = 48 * 1024  # dynamic shared memory a launch may ask for without opting in


def _defines(text: str) -> dict[str, str]:
    return {name: value.split("//")[0].strip() for name, value in re.findall(r"#define (\w+) ([^\n]+)", text)}


def _evaluate(expression: str, defines: dict[str, str]) -> int:
    for _ in range(10):
        expression = re.sub(r"\b([A-Z_][A-Z0-9_]*)\b", lambda m: f"({defines[m.group(1)]})", expression)
    assert re.fullmatch(r"[\d\s*+()-]+", expression), expression
    return int(eval(expression))  # digits, + - * and brackets only, checked above


def kernel_signatures() -> dict[str, tuple[list[tuple[str, str]], int | None]]:
    """name -> ([(C type, parameter name)], __launch_bounds__ or None), from every kernels/*.cu."""
    signatures = {}
    for source in SOURCES:
        text = source.read_text()
        defines = _defines(text)
        for bound, name, params in _SIGNATURE.findall(text):
            parsed = []
            for param in params.split(","):
                ctype, pname = " ".join(param.replace("__restrict__", "").split()).rsplit(" ", 1)
                parsed.append((ctype.replace("const ", ""), pname))
            signatures[name] = (parsed, _evaluate(bound, defines) if bound else None)
    return signatures


def constant_sizes() -> dict[str, int]:
    """__constant__ float arrays: name -> number of floats."""
    sizes = {}
    for source in SOURCES:
        text = source.read_text()
        for name, size in re.findall(r"__constant__ float (\w+)\[([^\]]+)\]", text):
            sizes[name] = _evaluate(size, _defines(text))
    return sizes


def test_the_signature_parser_sees_every_kernel():
    signatures = kernel_signatures()
    assert set(_COVERS) <= set(signatures), set(_COVERS) - set(signatures)
    assert signatures["joint_bilateral_exp2"] == (
        [("float*", "disparity"), ("unsigned char*", "guide"), ("float*", "out"), ("int", "height"),
         ("int", "width"), ("int", "radius"), ("float", "range_log2_scale")], 256)
    assert constant_sizes() == {"c_spatial": 33 * 33, "c_range_lut": 256, "c_spatial_log2": 33}


class LaunchRecorder:
    """Stands in for cupy.RawKernel: checks each launch against the kernel's signature when it is made."""

    def __init__(self) -> None:
        self.signatures = kernel_signatures()
        self.launches: list[tuple] = []

    def kernel(self, name: str):
        def launch(grid, block, args, shared_mem=0):
            self.check(name, tuple(grid), tuple(block), tuple(args), shared_mem)
            self.launches.append((name, tuple(grid), tuple(block), tuple(args), shared_mem))
        return launch

    def check(self, name, grid, block, args, shared_mem) -> None:
        params, bound = self.signatures[name]
        assert len(args) == len(params), (name, len(args), params)
        values = {}
        for (ctype, pname), arg in zip(params, args, strict=True):
            where = f"{name}({pname})"
            if ctype.endswith("*"):
                assert isinstance(arg, np.ndarray), (where, type(arg))
                assert arg.dtype == _POINTEE[ctype[:-1]], (where, arg.dtype)
                assert arg.flags.c_contiguous, f"{where}: not C-contiguous"
                if ctype == "float4*":
                    assert arg.shape[-1] == 4, (where, arg.shape)
            else:  # exactly the C type's width: a Python int or float would go as int64 or double
                assert type(arg) is {"int": np.int32, "float": np.float32}[ctype], (where, type(arg))
                values[pname] = int(arg) if ctype == "int" else float(arg)
        grid, block = (grid + (1, 1))[:3], (block + (1, 1))[:3]
        threads = block[0] * block[1] * block[2]
        assert 0 < threads <= (bound or 1024), (name, block, bound)
        assert min(grid) >= 1 and grid[1] <= 65535 and grid[2] <= 65535, (name, grid)
        assert 0 <= shared_mem <= DEFAULT_SHARED_LIMIT, (name, shared_mem)
        w_name, h_name, rows = _COVERS[name]
        width, height = values[w_name], values[h_name]
        assert grid[0] * block[0] >= width and (grid[0] - 1) * block[0] < width, (name, grid, block, width)
        assert grid[1] * block[1] * rows >= height and (grid[1] - 1) * block[1] * rows < height, \
            (name, grid, block, height)


class FakeConstant:
    def __init__(self, store: dict, sizes: dict, name: str, shape) -> None:
        self.store, self.sizes, self.name, self.shape = store, sizes, name, tuple(shape)

    def set(self, host) -> None:
        host = np.asarray(host)
        assert host.dtype == np.float32 and host.shape == self.shape
        assert host.size <= self.sizes[self.name], (self.name, host.size)
        self.store[self.name] = host.copy()


@pytest.fixture
def recorded_gpu(monkeypatch):
    """The CUDA wrappers with NumPy for CuPy and a LaunchRecorder for the kernels; the recorder and the
    constant-memory uploads (name -> values)."""
    import sys

    from kernels import bilateral_cuda, dof_cuda

    recorder, constants, sizes = LaunchRecorder(), {}, constant_sizes()
    stream = types.SimpleNamespace(ptr=0, synchronize=lambda: None)
    device = types.SimpleNamespace(id=0, synchronize=lambda: None)
    cuda = types.SimpleNamespace(Device=lambda: device, get_current_stream=lambda: stream)

    def ndarray(shape, dtype, memptr):  # only the __constant__ views of bilateral_cuda._upload
        assert np.dtype(dtype) == np.float32 and isinstance(memptr, str)
        return FakeConstant(constants, sizes, memptr, shape)

    fake = types.SimpleNamespace(
        cuda=cuda, float32=np.float32, uint8=np.uint8, ndarray=ndarray, empty=np.empty, empty_like=np.empty_like,
        asarray=lambda a, dtype=None: np.asarray(a, dtype=dtype),
        ascontiguousarray=lambda a, dtype=None: np.ascontiguousarray(a, dtype=dtype),
        asnumpy=lambda a: np.array(a))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(bilateral_cuda, "_kernel", lambda name, device_id: recorder.kernel(name))
    monkeypatch.setattr(bilateral_cuda, "_module", lambda: types.SimpleNamespace(get_global=lambda name: name))
    monkeypatch.setattr(bilateral_cuda, "_loaded", {})
    monkeypatch.setattr(dof_cuda, "_kernel", lambda name, device_id: recorder.kernel(name))
    monkeypatch.setattr(dof_cuda, "_local", threading.local())
    return recorder, constants


SHAPES = [(1, 1), (2, 3), (37, 53), (9, 300), (480, 640), (2160, 3840)]


@pytest.mark.parametrize("shape", SHAPES)
def test_every_filter_launch_matches_its_kernel(recorded_gpu, shape):
    from kernels.bilateral import range_lut, spatial_table
    from kernels.bilateral_cuda import (
        RANGE_VARIANTS,
        joint_bilateral_cuda,
        launch,
        launch_global,
        spatial_log2,
    )

    recorder, constants = recorded_gpu
    rng = np.random.default_rng(0)
    disparity = rng.random(shape).astype(np.float64)[:, ::-1]  # float64 and a view: copied to float32 first
    guide = rng.integers(0, 256, shape + (4,), dtype=np.uint8)[..., :3]  # BGRA's view
    for radius in (0, 5, 16):
        out = joint_bilateral_cuda(disparity, guide, radius, 3.0, 0.1)
        assert isinstance(out, np.ndarray) and out.shape == shape and out.dtype == np.float32
        np.testing.assert_array_equal(constants["c_spatial"], spatial_table(radius, 3.0).ravel())
        np.testing.assert_array_equal(constants["c_spatial_log2"], spatial_log2(radius, 3.0))
        np.testing.assert_array_equal(constants["c_range_lut"], range_lut(0.1))
    d = np.ascontiguousarray(disparity, np.float32)
    g = np.ascontiguousarray(guide)
    out = np.empty(shape, np.float32)
    for radius in (1, 12, 16):
        for variant in RANGE_VARIANTS:
            launch(d, g, out, radius, 20.0, 0.05, variant=variant)
        launch_global(d, g, out, radius, 20.0, 0.05)
    with pytest.raises(ValueError, match="C-contiguous"):
        launch(disparity, g, out, 3, 2.0, 0.1)  # the float64 view itself
    assert {name for name, *_ in recorder.launches} == {f"joint_bilateral_{v}" for v in RANGE_VARIANTS} | {
        "joint_bilateral_global"}


@pytest.mark.parametrize("shape, network, work_width", [((480, 640), (192, 320), 160), ((37, 53), (12, 20), 24),
                                                        ((1, 1), (1, 1), 160), ((1080, 1920), (192, 320), 160),
                                                        ((97, 131), (192, 320), 200)])
def test_every_live_mode_launch_matches_its_kernel(recorded_gpu, shape, network, work_width):
    from kernels.bilateral_cuda import refine_live_cuda, resize_bilinear_cuda

    recorder, _ = recorded_gpu
    rng = np.random.default_rng(1)
    out = refine_live_cuda(rng.random(network, dtype=np.float32), rng.integers(0, 256, shape + (3,), dtype=np.uint8),
                           work_width, 4, 3.0, 0.05)
    assert out.shape == shape and out.dtype == np.float32
    # the stages' upsampling of a network's map, here from a float64 view: the kernel reads float32 rows
    resize_bilinear_cuda(rng.random((network[0], 2 * network[1]))[:, ::2], *shape)
    assert recorder.launches


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("max_blur", [0.4, 3.0, 16.0, 54.0, 512.0])
def test_every_depth_of_field_launch_matches_its_kernel(recorded_gpu, shape, max_blur):
    from kernels.dof_cuda import depth_of_field_cuda

    recorder, _ = recorded_gpu
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    out = depth_of_field_cuda(image, rng.random(shape), 0.3, max_blur, highlight_boost=1.0)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert [name for name, *_ in recorder.launches] == ["dof_reduce", "dof_gather", "dof_composite"]


def _held(estimator) -> list:
    return [value for value, _ in estimator._outputs_in_use]


def test_a_gpu_depth_output_is_copied_and_held_until_the_copy_ran(monkeypatch):
    """models/runtime.py on the GPU (CuPy and ONNX Runtime's output replaced): the depth handed on is a copy
    in CuPy's memory, and the OrtValue is kept until the event after that copy has passed. A view, freed with
    the call, let ONNX Runtime write the next output into memory that kernels still queued on CuPy's stream
    (the normalisation, behind a render) had yet to read; its own stream waits for none of them."""
    import sys

    from models import runtime
    from models.runtime import DepthEstimator

    class Event:
        def __init__(self) -> None:
            self.done = False

        def synchronize(self) -> None:
            self.done = True

    class OrtValue:
        def __init__(self, data: np.ndarray) -> None:
            self.data = data

        def data_type(self) -> str:
            return "tensor(float)"

        def shape(self) -> list[int]:
            return list(self.data.shape)

        def data_ptr(self) -> int:
            return self.data.ctypes.data

        def numpy(self) -> np.ndarray:
            return self.data.copy()

    events: list[Event] = []
    stream = types.SimpleNamespace(record=lambda: events.append(Event()) or events[-1])

    def unowned(ptr, size, owner):
        assert ptr == owner.data.ctypes.data and size == owner.data.nbytes
        return owner

    cuda = types.SimpleNamespace(UnownedMemory=unowned, MemoryPointer=lambda memory, offset: memory,
                                 get_current_stream=lambda: stream)
    fake = types.SimpleNamespace(cuda=cuda, ndarray=lambda shape, dtype, memptr: memptr.data.view(dtype).reshape(shape))
    monkeypatch.setitem(sys.modules, "cupy", fake)

    estimator = DepthEstimator.__new__(DepthEstimator)
    estimator.providers = [runtime.CUDA, runtime.CPU]
    outputs: list[OrtValue] = []

    def run_bound(batch, device, options=None):
        assert device == "cuda"
        outputs.append(OrtValue(np.full((len(batch), 1, 4, 5), len(outputs), np.float32)))
        return outputs[-1]

    estimator._run_bound = run_bound
    batch = np.zeros((1, 3, 4, 5), np.float32)
    first = estimator._run(batch, on_device=True)
    assert not np.shares_memory(first, outputs[0].data) and (first == 0).all()
    assert _held(estimator) == [outputs[0]]
    estimator._run(batch, on_device=True)
    assert _held(estimator) == outputs[:2]  # the first copy has not run yet: its output stays out of ONNX Runtime's reach
    events[0].synchronize()
    estimator._run(batch, on_device=True)
    assert _held(estimator) == outputs[1:3]  # copied: let go, without waiting
    for _ in range(6):
        estimator._run(batch, on_device=True)
    assert len(_held(estimator)) <= DepthEstimator.MAX_OUTPUTS_IN_USE and all(e.done for e in events[:-len(_held(estimator))])
    host = estimator._run(batch, on_device=False)
    assert isinstance(host, np.ndarray) and (host == len(outputs) - 1).all()
