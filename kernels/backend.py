"""Which compute backend a kernel call runs on: detected for real, never assumed."""
from __future__ import annotations

import functools
from typing import Any, Literal

Backend = Literal["cpu", "cuda"]
BACKEND_CHOICES = ("auto", "cpu", "cuda")


class BackendUnavailable(RuntimeError):
    """The caller asked for CUDA where no usable GPU (or no CuPy) exists."""


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


def cuda_unavailable_reason() -> str:
    try:
        import cupy
    except Exception as exc:
        return f"CuPy is not installed ({exc.__class__.__name__}); install depthcam[cuda]"
    try:
        gpu = bool(cupy.cuda.is_available())
    except Exception:
        gpu = False
    error = _nvrtc_error() if gpu else None
    if error is not None:
        cause = (str(error).splitlines() or [error.__class__.__name__])[0]
        return (f"CuPy, which sees a GPU, cannot load NVRTC, the CUDA compiler its kernels need ({cause}); "
                "pip install 'cuda-toolkit[nvrtc]' (CUDA 13) or 'nvidia-cuda-nvrtc-cu12' (CUDA 12)")
    return "no CUDA GPU is visible to CuPy (cupy.cuda.is_available() is False)"


def resolve_backend(backend: str) -> Backend:
    """Map 'auto' | 'cpu' | 'cuda' to the backend that will really run."""
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_CHOICES)}")
    if backend == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if backend == "cuda":
        raise BackendUnavailable(f"CUDA was requested but {cuda_unavailable_reason()}; "
                                 "use --device cpu (backend='cpu' from Python)")
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
