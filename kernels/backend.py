"""Which compute backend a kernel call runs on: detected for real, never assumed."""
from __future__ import annotations

import functools
from typing import Any, Literal, NamedTuple

Backend = Literal["cpu", "cuda"]
BACKEND_CHOICES = ("auto", "cpu", "cuda")


class BackendUnavailable(RuntimeError):
    """The caller asked for CUDA where no usable GPU (or no CuPy) exists. Its message speaks to a Python caller
    (backend='cpu'); `cli_message` says the same to a command-line user (--device cpu)."""

    def __init__(self, message: str, cli_message: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = cli_message or message


@functools.lru_cache(maxsize=1)
def cuda_available() -> bool:
    """True when CuPy imports, sees a CUDA device and can compile kernels (False, without noise, on a CPU
    machine)."""
    try:
        import cupy
    except Exception:  # ImportError, or a broken CUDA install
        return False
    try:
        return bool(cupy.cuda.is_available()) and _nvrtc_error() is None
    except Exception:
        return False


def _nvrtc_error() -> Exception | None:
    """Why NVRTC, which CuPy compiles every kernel with (ours and its own), cannot load; None where it can.
    CuPy's wheels leave it out (cupy-cuda13x[ctk] or a CUDA toolkit brings it), and cupy.cuda.is_available()
    asks only the driver: a GPU machine without it passed as usable, and the first kernel failed."""
    try:
        from cupy.cuda import nvrtc

        nvrtc.getVersion()
    except Exception as exc:
        return exc
    return None


CUDA_EXTRAS = "pip install 'depthcam[cuda]' (CUDA 13) or 'depthcam[cuda12]'"


class CudaProblem(NamedTuple):
    cause: str  # why the kernels cannot run on CUDA here
    fix: str
    gpu_seen: bool  # CuPy sees a GPU (the fix is for this machine, not for one that has a GPU)


def cuda_problem() -> CudaProblem:
    """Why the kernels cannot run on CUDA here and what fixes it, to be said to whoever asked for CUDA in their own
    words: the CLI's --device, the Python API's backend=, `depthcam doctor`."""
    try:
        import cupy
    except ModuleNotFoundError as exc:
        if exc.name == "cupy":
            return CudaProblem("CuPy is not installed", f"install it with {CUDA_EXTRAS}", False)
        return CudaProblem(f"CuPy fails to import (it needs {exc.name}, not installed)",
                           f"install it again with {CUDA_EXTRAS}", False)
    except Exception as exc:  # a broken install: a wheel for another CUDA version, a library it cannot load
        cause = (str(exc).splitlines() or [exc.__class__.__name__])[0]
        return CudaProblem(f"CuPy fails to import ({cause})",
                           f"install it again for this CUDA version with {CUDA_EXTRAS}", False)
    try:
        gpu = bool(cupy.cuda.is_available())
    except Exception:
        gpu = False
    error = _nvrtc_error() if gpu else None
    if error is not None:
        cause = (str(error).splitlines() or [error.__class__.__name__])[0]
        return CudaProblem(f"CuPy, which sees a GPU, cannot load NVRTC, the CUDA compiler its kernels need ({cause})",
                           "pip install 'cuda-toolkit[nvrtc]' (CUDA 13) or 'nvidia-cuda-nvrtc-cu12' (CUDA 12)", True)
    return CudaProblem("no CUDA GPU is visible to CuPy (cupy.cuda.is_available() is False)",
                       "check that the NVIDIA driver is loaded (nvidia-smi lists the GPU)", False)


def cuda_unavailable_reason() -> str:
    """Why CUDA cannot run here and the fix, in one phrase (a test's skip reason, doctor's line)."""
    problem = cuda_problem()
    return f"{problem.cause}; {problem.fix}"


def cuda_device_error() -> str:
    """The command line's refusal of --device cuda where the kernels cannot run on CUDA."""
    problem = cuda_problem()
    return (f"--device cuda (or a config's device: cuda) was requested but {problem.cause}; {problem.fix}, or run "
            f"with --device cpu")


def resolve_backend(backend: str) -> Backend:
    """Map 'auto' | 'cpu' | 'cuda' to the backend that will really run."""
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_CHOICES)}")
    if backend == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if backend == "cuda":
        problem = cuda_problem()
        raise BackendUnavailable(f"backend='cuda' was requested but {problem.cause}; {problem.fix}, or pass "
                                 f"backend='cpu'",
                                 cuda_device_error())
    return "cpu"


def is_cupy_array(array: object) -> bool:
    """True for a CuPy ndarray, without importing CuPy on machines that lack it."""
    return type(array).__module__.startswith("cupy")


def array_module(array: object):
    """cupy for a CuPy array, numpy otherwise: code that runs on either side of the PCIe bus."""
    if is_cupy_array(array):
        import cupy

        return cupy
    import numpy

    return numpy


def to_host(array):
    """A NumPy array of `array`'s values: CuPy arrays are copied from the GPU, NumPy ones pass as they are."""
    return array.get() if is_cupy_array(array) else array


def number_argument(name: str, value: Any, requirement: str) -> float:
    """A kernel's scalar argument as a float; ValueError "`name` must be `requirement`" for what is not a
    number. float() alone would take "0.5" and True; NumPy scalars and 0-d arrays are numbers and pass."""
    import numpy as np

    if isinstance(value, (str, bytes, bool, np.bool_)) or np.iscomplexobj(value):
        raise ValueError(f"{name} must be {requirement}, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float's range (10**400)
        raise ValueError(f"{name} must be {requirement}, got {value!r}") from None


def kernel_array(array: Any, dtype: Any) -> Any:
    """`array` as the CPU kernels were compiled (and warmed up) for: a plain C-contiguous, aligned, writable
    NumPy array of `dtype`, copied only where it is not one. Numba compiles a kernel anew for every array type,
    and read-only is a type of its own: a read-only frame (np.frombuffer, np.load(mmap_mode="r")) compiled the
    renderer a second time on its first use (26 s on two cores), after the warm-up."""
    import numpy as np

    out = np.ascontiguousarray(array, dtype=dtype)
    return out if out.flags.writeable and out.flags.aligned else out.copy()


# the message for a disparity the kernels cannot take (their float32 sums would spread NaN or inf)
NOT_FINITE = "disparity holds NaN, infinite or values beyond float32's range (3.4e38); depth must be finite"
