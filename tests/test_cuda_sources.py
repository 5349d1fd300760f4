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


def test_the_near_fields_exact_gather_reaches_as_far_on_both_devices():
    """Both paths gather the near field exactly below NEAR_EXACT * s: the CPU's constant, restated in the .cu."""
    from kernels import dof_cpu

    source = (Path(__file__).resolve().parents[1] / "kernels" / "depth_of_field.cu").read_text()
    match = re.search(r"#define NEAR_EXACT (\d+)\n", source)
    assert match and int(match.group(1)) == dof_cpu.NEAR_EXACT


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
           "dof_back": ("width", "height", 1), "dof_behind_blocks": ("wl", "hl", 1),
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
    assert [name for name, *_ in recorder.launches] == ["dof_reduce", "dof_gather", "dof_back", "dof_behind_blocks",
                                                        "dof_composite"]


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
    # the first copy has not run yet: its output stays out of ONNX Runtime's reach
    assert _held(estimator) == outputs[:2]
    events[0].synchronize()
    estimator._run(batch, on_device=True)
    assert _held(estimator) == outputs[1:3]  # copied: let go, without waiting
    for _ in range(6):
        estimator._run(batch, on_device=True)
    held = len(_held(estimator))
    assert held <= DepthEstimator.MAX_OUTPUTS_IN_USE and all(e.done for e in events[:-held])
    host = estimator._run(batch, on_device=False)
    assert isinstance(host, np.ndarray) and (host == len(outputs) - 1).all()


# --- the GPU's floating point, on the host ------------------------------------------------------------------

def test_the_depth_of_field_picture_does_not_depend_on_fma_contraction(tmp_path):
    """nvcc fuses a * b + c into one FMA; the host build of the tests does not. At s = 3 or 5 (1 / s inexact)
    the composite's block coordinate (y + 0.5) * (1 / s) - 0.5 came out 1.5e-8 instead of 0 when fused, a
    neighbouring block got that weight, and a near pixel took the neighbour's background instead of its own
    colour: up to 38 levels off the CPU path, on a GPU only. Both builds must render the same picture."""
    import cv2
    from host_cuda import GPU_LIKE_FLAGS, compile_for_host, dof_on_host

    from kernels.cuda_module import read_source
    from kernels.dof_cuda import KERNELS, SOURCE

    if not GPU_LIKE_FLAGS:
        pytest.skip("this host has no FMA instruction")
    (tmp_path / "plain").mkdir()
    (tmp_path / "fused").mkdir()
    _, plain = compile_for_host(read_source(SOURCE), KERNELS, tmp_path / "plain")
    _, fused = compile_for_host(read_source(SOURCE), KERNELS, tmp_path / "fused", flags=GPU_LIKE_FLAGS)
    worst = 0
    for seed, (h, w) in enumerate([(23, 41), (61, 97), (37, 50)]):
        rng = np.random.default_rng(seed)
        disp = np.ascontiguousarray(cv2.resize(rng.random((h // 3, w // 3)).astype(np.float32), (w, h)))
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for scale in (2, 3, 5, 7):
            for focus in (0.05, 0.5):
                a = dof_on_host(plain)(img, disp, focus, 3.6 * scale, 2.0, scale)
                b = dof_on_host(fused)(img, disp, focus, 3.6 * scale, 2.0, scale)
                worst = max(worst, int(np.abs(a.astype(np.int16) - b).max()))
    assert worst <= 1


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_nvrtc_builds_the_cubin_cupy_builds_for_hopper(source):
    """On an H100/H200 CuPy asks NVRTC for sm_90 machine code (not PTX) with -ftz=true added to our options,
    so ptxas runs too: what only it rejects (registers, shared memory, the inline ex2.approx) fails here."""
    try:
        from cupy.cuda import nvrtc
    except ImportError as exc:
        pytest.skip(f"CuPy is not installed: {exc}")
    from kernels.cuda_module import NVRTC_OPTIONS, read_source

    try:
        program = nvrtc.createProgram(read_source(source.name), source.name, [], [])
    except Exception as exc:
        pytest.skip(f"the NVRTC library is not installed: {exc}")
    try:
        try:
            nvrtc.compileProgram(program, ["-arch=sm_90", *NVRTC_OPTIONS, "-ftz=true"])
        except nvrtc.NVRTCError as exc:
            raise AssertionError(nvrtc.getProgramLog(program)) from exc
        cubin = nvrtc.getCUBIN(program)
    finally:
        nvrtc.destroyProgram(program)
    text = source.read_text()
    names = re.findall(r'extern "C" __global__ void\s+(?:__launch_bounds__\([^)]*\)\s*)?(\w+)', text)
    # module.get_global and get_function look these names up in the cubin as written (no C++ mangling)
    names += re.findall(r"__constant__ float (\w+)\[", text)
    assert names and all(name.encode() + b"\0" in cubin for name in names), names


# --- the gpu tests themselves, run on the host -------------------------------------------------------------
# A stand-in for CuPy whose device arrays are NumPy arrays of a class of module "cupy" (so `is_cupy_array`,
# `isinstance(x, cupy.ndarray)` and `.get()` behave as on a GPU), whose `empty` memory is poisoned (NaN, 0xCD)
# as a GPU's is garbage, and whose kernels are the .cu sources compiled for the host (tests/host_cuda.py,
# shared-memory kernels included). Each launch is also checked against its kernel's signature. The gpu tests
# and the pipeline's GPU path, which no machine here can run, are then run through the very same code.

class _DeviceArray(np.ndarray):
    __module__ = "cupy"

    def __new__(cls, shape, dtype=float, memptr=None, strides=None, order="C"):
        if isinstance(memptr, _ConstantSymbol):  # bilateral_cuda._upload's view of a __constant__ table
            return memptr.view(shape, dtype)
        return np.ndarray.__new__(cls, shape, dtype, strides=strides, order=order)

    def get(self, stream=None) -> np.ndarray:
        return np.array(self)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # CuPy refuses a NumPy array beside its own (TypeError: Unsupported type): a host array the code forgot to
        # upload would otherwise pass here and fail on the GPU
        outs = kwargs.get("out") or ()
        _refuse_host_arrays(f"numpy.{ufunc.__name__}", (*inputs, *outs))
        host = [np.asarray(a) if isinstance(a, _DeviceArray) else a for a in inputs]
        if outs:
            kwargs["out"] = tuple(np.asarray(o) if isinstance(o, _DeviceArray) else o for o in outs)
        result = getattr(ufunc, method)(*host, **kwargs)
        if outs:
            return outs[0] if len(outs) == 1 else outs
        return result.view(_DeviceArray) if isinstance(result, np.ndarray) else result

    def __array_function__(self, func, types, args, kwargs):
        # NumPy's functions on CuPy arrays dispatch to CuPy's namesakes (NEP 18); one CuPy lacks raises there
        if _REAL_CUPY is not None and func.__module__ == "numpy" and not hasattr(_REAL_CUPY, func.__name__):
            raise TypeError(f"numpy.{func.__name__} on a CuPy array: CuPy has no {func.__name__}")
        _refuse_host_arrays(f"numpy.{func.__name__}", (*args, *kwargs.values()))
        # NumPy's own code on plain arrays (its inner steps mix in host arrays of its own, as CuPy's do not), then
        # the result on the device; `out` is written in place
        result = func(*_as_host(args), **{key: _as_host(value) for key, value in kwargs.items()})
        out = kwargs.get("out")
        return out if isinstance(out, _DeviceArray) else _as_device(result)


def _as_host(value):
    """`value` with its device arrays (also within tuples and lists) as plain NumPy views of the same memory."""
    if isinstance(value, (tuple, list)):
        return type(value)(_as_host(v) for v in value)
    return np.asarray(value) if isinstance(value, _DeviceArray) else value


def _as_device(value):
    if isinstance(value, (tuple, list)):
        return type(value)(_as_device(v) for v in value)
    return value.view(_DeviceArray) if type(value) is np.ndarray else value


def _refuse_host_arrays(call: str, arguments) -> None:
    """TypeError where a NumPy array (not a scalar or 0-d one) is among a CuPy call's arguments, as CuPy raises."""
    for argument in arguments:
        if isinstance(argument, (tuple, list)):
            _refuse_host_arrays(call, argument)
        elif type(argument) is np.ndarray and argument.ndim:
            raise TypeError(f"{call} of a CuPy array and a NumPy one {argument.shape} (CuPy refuses it): upload it")


try:  # its namespace, for the check above; no GPU needed to import it
    import cupy as _REAL_CUPY
except Exception:
    _REAL_CUPY = None


class _ConstantSymbol:
    def __init__(self, lib, name: str) -> None:
        self.lib, self.name = lib, name

    def view(self, shape, dtype):
        import ctypes

        assert np.dtype(dtype) == np.float32
        symbol = self

        class View:
            def set(self, host) -> None:
                host = np.ascontiguousarray(host)
                assert host.dtype == np.float32 and host.shape == tuple(shape)
                table = (ctypes.c_float * constant_sizes()[symbol.name]).in_dll(symbol.lib, symbol.name)
                assert host.size <= len(table), (symbol.name, host.size)
                ctypes.memmove(table, host.ctypes.data, host.nbytes)
        return View()


def _poisoned(shape, dtype) -> _DeviceArray:
    out = np.empty(shape, dtype).view(_DeviceArray)
    out.fill(np.nan if out.dtype.kind == "f" else 0xCD)
    return out


def _device(array, dtype=None) -> _DeviceArray:
    if isinstance(array, _DeviceArray) and (dtype is None or array.dtype == np.dtype(dtype)):
        return array
    return np.array(array, dtype=dtype).view(_DeviceArray)


def _contiguous(array, dtype=None) -> _DeviceArray:
    if not isinstance(array, _DeviceArray):  # CuPy's ascontiguousarray takes device arrays only
        raise TypeError(f"cupy.ascontiguousarray got a {type(array).__name__}")
    return np.ascontiguousarray(array, dtype=dtype).view(_DeviceArray)


def _fake_cupy(run_kernel) -> types.ModuleType:
    event = types.SimpleNamespace(record=lambda *a: None, synchronize=lambda: None)
    stream = types.SimpleNamespace(ptr=0, synchronize=lambda: None, record=lambda *a: event)
    device = types.SimpleNamespace(id=0, synchronize=lambda: None, compute_capability="90")
    cupy = types.ModuleType("cupy")
    cupy.__version__ = "host stand-in"
    cupy.ndarray = _DeviceArray
    cupy.float32, cupy.uint8, cupy.int32, cupy.nan = np.float32, np.uint8, np.int32, np.nan
    cupy.float64, cupy.int64 = np.float64, np.int64
    cupy.arange = lambda *a, **k: np.arange(*a, **k).view(_DeviceArray)
    cupy.asarray = _device
    cupy.ascontiguousarray = _contiguous
    cupy.array = lambda a, dtype=None, order="K", copy=True: np.array(a, dtype=dtype, order=order).view(_DeviceArray)
    cupy.asnumpy = lambda a, stream=None: np.array(a)
    cupy.empty = lambda shape, dtype=float, order="C": _poisoned(shape, dtype)
    cupy.empty_like = lambda a, dtype=None: _poisoned(a.shape, dtype or a.dtype)
    cupy.zeros = lambda shape, dtype=float: np.zeros(shape, dtype).view(_DeviceArray)
    cupy.full = lambda shape, value, dtype=None: np.full(shape, value, dtype).view(_DeviceArray)
    cupy.where = lambda condition, *values: np.asarray(np.where(condition, *values)).view(_DeviceArray)
    for name in ("abs", "isfinite", "maximum", "count_nonzero", "concatenate", "median", "quantile", "clip", "subtract",
                 "ldexp", "minimum", "take", "percentile"):
        setattr(cupy, name, getattr(np, name))
    cupy.cuda = types.SimpleNamespace(
        is_available=lambda: True, Device=lambda *a: device, get_current_stream=lambda: stream,
        Event=lambda *a, **k: event, get_elapsed_time=lambda a, b: 0.0)
    cupy.run_kernel = run_kernel
    return cupy


@pytest.fixture(scope="module")
def host_gpu(tmp_path_factory):
    """name -> launcher of the kernels of every .cu source built for the host, and name -> library."""
    from host_cuda import GPU_LIKE_FLAGS, compile_for_host, host_source

    launchers, libraries = {}, {}
    for source in SOURCES:
        text = source.read_text()
        names = tuple(name for _, name, _ in _SIGNATURE.findall(text))
        lib, launch = compile_for_host(host_source(text), names, tmp_path_factory.mktemp(source.stem),
                                       flags=GPU_LIKE_FLAGS)  # nvcc's FMA contraction, where the host has FMA
        for name in names:
            launchers[name], libraries[name] = launch, lib
        libraries[source.name] = lib
    return launchers, libraries


@pytest.fixture
def gpu_on_host(monkeypatch, host_gpu):
    """CuPy replaced by the host stand-in, CUDA reported available: the gpu tests run through it."""
    import sys

    from kernels import backend, bilateral_cuda, dof_cuda

    launchers, libraries = host_gpu
    checker = LaunchRecorder()

    def device_pointer(arg):
        return np.asarray(arg) if isinstance(arg, np.ndarray) else arg

    def kernel(name: str, device_id: int = 0):
        def launch(grid, block, args, shared_mem=0):
            checker.check(name, tuple(grid), tuple(block), tuple(args), shared_mem)
            assert all(not isinstance(a, np.ndarray) or isinstance(a, _DeviceArray) for a in args), \
                f"{name}: a host array passed to a kernel"
            launchers[name](name, tuple(grid), tuple(block), tuple(device_pointer(a) for a in args), shared_mem)
        return launch

    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(kernel))
    monkeypatch.setattr(backend, "cuda_available", lambda: True)
    module = types.SimpleNamespace(get_global=lambda name: _ConstantSymbol(libraries[bilateral_cuda.SOURCE], name))
    monkeypatch.setattr(bilateral_cuda, "_module", lambda: module)
    monkeypatch.setattr(bilateral_cuda, "_kernel", kernel)
    monkeypatch.setattr(bilateral_cuda, "_loaded", {})
    monkeypatch.setattr(dof_cuda, "_kernel", kernel)
    monkeypatch.setattr(dof_cuda, "_local", threading.local())


_RNG = "rng"  # stands for the conftest fixture: np.random.default_rng(1234)
GPU_TESTS = [
    ("test_joint_bilateral", "test_cuda_matches_cpu", (16, (480, 640))),
    ("test_joint_bilateral", "test_cuda_matches_cpu", (1, (37, 53))),
    ("test_joint_bilateral", "test_cuda_matches_cpu", (12, (9, 300))),
    *[("test_joint_bilateral", "test_cuda_writes_every_pixel", (v,)) for v in ("lut", "exp2", "exp2_rows4",
                                                                                 "exp2_rows8")],
    ("test_joint_bilateral", "test_cuda_parameter_change_takes_effect", ()),
    *[("test_joint_bilateral", "test_every_cuda_variant_averages_exactly_the_clipped_window", (v,))
      for v in ("lut", "exp2", "exp2_rows4", "exp2_rows8", "global")],
    ("test_joint_bilateral", "test_cuda_cupy_in_cupy_out", ()),
    ("test_joint_bilateral", "test_cuda_global_kernel_matches_reference", ()),
    ("test_joint_bilateral", "test_cuda_refine_live_matches_cpu", (_RNG, (480, 640), 160)),
    ("test_joint_bilateral", "test_cuda_refine_live_matches_cpu", (_RNG, (97, 131), 200)),
    *(("test_depth_of_field", "test_cuda_matches_cpu_at_the_same_scale", (_RNG, blur, boost, exact_far))
      for blur, boost in ((16.0, 0.0), (36.0, 4.0), (5.0, 1.0)) for exact_far in (False, True)),
    ("test_depth_of_field", "test_cuda_at_scale_one_is_the_reference", (_RNG,)),
    ("test_depth_of_field", "test_cuda_default_path_renders_what_the_cpu_renders", (_RNG,)),
    ("test_depth_of_field", "test_cupy_in_cupy_out_and_focus_kept", (_RNG,)),
    ("test_gpu_pipeline", "test_refine_on_gpu_matches_cpu", ("full",)),
    ("test_gpu_pipeline", "test_refine_on_gpu_matches_cpu", ("live",)),
    ("test_gpu_pipeline", "test_refine_on_gpu_matches_cpu", ("off",)),
    ("test_gpu_pipeline", "test_render_on_gpu_matches_cpu", ()),
    ("test_gpu_pipeline", "test_auto_focus_reads_the_refined_map_on_the_gpu", ()),
    ("test_focus_band26", "test_the_remap_on_the_gpu_is_the_cpu_s", (_RNG,)),
    # the gpu tests the list had left out, none of which had run anywhere
    ("test_temporal20", "test_the_filter_runs_on_the_gpu_as_on_the_cpu", ()),
    *(("test_kernels_sweep20", "test_a_finite_disparity_near_float32_s_limit_filters_to_finite_values_on_the_gpu",
       (peak,)) for peak in (3.4028235e38, -1.0e37)),
    *(("test_kernels_sweep20", "test_a_far_background_in_cut_blocks_on_the_gpu", (shape, axis))
      for shape, axis in (((31, 20), 0), ((20, 31), 1))),
    *(("test_dof_ring22", "test_gpu_thin_foreground_beside_the_frame_edge_is_not_repeated_beyond_it", (side,))
      for side in ("left", "bottom-right corner")),
    ("test_dof23_highlights", "test_gpu_boosts_a_near_highlight_as_a_far_one", ()),
    ("test_person_mask27", "test_on_the_gpu_the_map_is_shrunk_there_and_gives_the_cpu_targets", ()),
]


def _gpu_test_id(case) -> str:
    _, name, args = case.values if hasattr(case, "values") else case
    return f"{name}{list(args[1:] if args[:1] == (_RNG,) else args)}"


def test_the_stand_in_refuses_a_host_array_beside_a_device_one(gpu_on_host):
    """As CuPy does (TypeError: Unsupported type): a map left on the host beside one on the GPU fails here, not on
    the GPU. Scalars and NumPy scalars pass, as in CuPy."""
    import cupy

    device = cupy.asarray(np.ones((2, 3), np.float32))
    mixed = (lambda: device + np.ones((2, 3)), lambda: np.maximum(device, np.zeros(3), out=device),
             lambda: np.where(np.ones((2, 3), bool), device, 0), lambda: np.concatenate([device, np.ones((1, 3))]))
    for call in mixed:
        with pytest.raises(TypeError, match="CuPy refuses"):
            call()
    result = np.clip(device * np.float32(2) - 1.5, 0, 1, out=device)
    assert result is device and isinstance(device + 1, cupy.ndarray) and device.get().tolist() == [[0.5] * 3] * 2


@pytest.mark.parametrize("module, name, args", GPU_TESTS, ids=[_gpu_test_id(case) for case in GPU_TESTS])
def test_the_gpu_test_passes_on_the_host_stand_in(gpu_on_host, module, name, args):
    """The gpu tests (their CuPy calls, the wrappers' launches, the kernels' results against the CPU path)
    with the CUDA sources run on the host: what fails here would fail on the GPU (the converse does not hold:
    the GPU's own rounding, ex2.approx and timing are the GPU run's to tell)."""
    import importlib

    test = getattr(importlib.import_module(module), name)
    test(*[np.random.default_rng(1234) if a == _RNG else a for a in args])


@pytest.mark.parametrize("mode", ["live", "full"])
def test_a_file_run_with_the_depth_left_on_the_gpu_renders_what_the_cpu_renders(gpu_on_host, mode):
    """The GPU run's path no gpu test takes whole: the network's map on the device (DepthStage's on_device), normalised
    there, refined, smoothed over frames (pixel_smoothing) and focused there, then rendered; as on the CPU."""
    import cupy

    from kernels.temporal import RefinedFilter
    from models.postprocess import DisparityNormaliser
    from stream.config import load_config
    from stream.focus import FocusController
    from stream.stages import RefineStage, RenderStage
    from test_gpu_pipeline import _frames

    config = load_config("default", {"refine.mode": mode})
    runs = {}
    for backend in ("cuda", "cpu"):
        frames, normaliser = _frames(4), DisparityNormaliser()
        for frame in frames:
            frame.pts_seconds = frame.index / 30
            network = cupy.asarray(frame.disparity) if backend == "cuda" else frame.disparity
            frame.disparity = normaliser(network, frame.pts_seconds)
        refine = RefineStage(config.refine, backend, temporal=RefinedFilter(0.3))
        runs[backend] = RenderStage(config.render, FocusController("auto"), backend).process(refine.process(frames))
    for gpu, cpu in zip(runs["cuda"], runs["cpu"], strict=True):
        assert isinstance(gpu.disparity, cupy.ndarray) and isinstance(gpu.refined, cupy.ndarray)
        np.testing.assert_allclose(gpu.refined.get(), cpu.refined, atol=1e-4)
        assert gpu.focus == pytest.approx(cpu.focus, abs=1e-4)
        assert np.abs(gpu.output.astype(np.int16) - cpu.output).mean() <= 1.0


@pytest.mark.parametrize("preset", ["default", "quality"])
def test_a_run_on_the_gpu_writes_its_outputs(gpu_on_host, shared_models, monkeypatch, tmp_path, preset):
    """`depthcam run --device auto` where CUDA runs (the stand-in): the app's GPU wiring, warm-up, stages and sinks (a
    depth file from the map left on the GPU) end to end, every kernel launch checked."""
    from kernels import bilateral_cuda, dof_cuda
    from models import runtime
    from stream import cli

    monkeypatch.setattr(runtime, "cuda_available", lambda: False)  # the network on ONNX Runtime's CPU: no real CuPy
    launched = []
    for module in (bilateral_cuda, dof_cuda):
        def counted(name, device_id=0, kernel=module._kernel):
            launched.append(name)
            return kernel(name, device_id)
        monkeypatch.setattr(module, "_kernel", counted)
    out, depth = tmp_path / "out.mp4", tmp_path / "depth.mkv"
    status = cli.main(["run", "synthetic:portrait?frames=4&size=160x120", "-o", str(out), "--save-depth", str(depth),
                       "--device", "auto", "--config", preset, "--model", "tcmonodepth", "--no-progress"])
    assert status == 0 and out.stat().st_size > 0 and depth.stat().st_size > 0
    assert {f"joint_bilateral_{bilateral_cuda.DEFAULT_RANGE_VARIANT}", *dof_cuda.KERNELS} <= set(launched), set(launched)


def test_the_person_mask_gpu_test_passes_on_the_host_stand_in(gpu_on_host, shared_models):
    """test_person_mask26's gpu test (the mask fused on the refined map where it stays on the GPU), with the real
    segmentation model: it needs the model in $DEPTHCAM_MODELS, which a GPU call must carry."""
    import cv2
    from skimage import data

    from test_person_mask26 import test_the_gpu_fusion_matches_the_cpu_one

    test_the_gpu_fusion_matches_the_cpu_one(shared_models, cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))


@pytest.mark.parametrize("shape, work_width", [((240, 320), 160), ((480, 640), 160), ((360, 480), 160),
                                               ((251, 333), 160), ((97, 131), 40)])
def test_the_working_size_frame_is_opencvs(gpu_on_host, shape, work_width):
    """resize_area_bgr rounds as cv2.resize(INTER_AREA) does: halves up in OpenCV's exact 2x2 path, to even in
    its other integer factors. It rounded halves to even at 2x2 too: 14% of a 320x240 frame's working-size
    levels were 1 off the CPU path's, and live mode's depth on the GPU up to 0.03 off the CPU's."""
    import cupy
    import cv2

    from kernels.bilateral import working_size
    from kernels.bilateral_cuda import EACH_PIXEL_BLOCK, _cupy_launch, _grid

    height, width = shape
    work_h, work_w = working_size(height, width, work_width)
    frame = np.random.default_rng(5).integers(0, 256, shape + (3,), dtype=np.uint8)
    low = cupy.empty((work_h, work_w, 3), cupy.uint8)
    i32 = np.int32
    _cupy_launch("resize_area_bgr", _grid(work_h, work_w, EACH_PIXEL_BLOCK), EACH_PIXEL_BLOCK,
                 (cupy.asarray(frame), i32(height), i32(width), low, i32(work_h), i32(work_w)))
    expected = cv2.resize(frame, (work_w, work_h), interpolation=cv2.INTER_AREA)
    difference = np.abs(low.get().astype(np.int16) - expected)
    if width % work_w == 0 and height % work_h == 0:  # an integer factor: OpenCV's exact paths
        assert difference.max() == 0
    else:  # float weights: an exact half may fall either side
        assert difference.max() <= 1 and (difference > 0).mean() < 0.01
