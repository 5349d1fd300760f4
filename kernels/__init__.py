"""Image kernels: joint bilateral refinement and synthetic depth of field, on CPU and CUDA.

Each kernel has a public dispatcher (`backend="auto"|"cpu"|"cuda"`), a fast CPU path, a CUDA path
(CuPy RawModule compiled from the `.cu` file beside it) and a slow float64 reference for tests.
"""
import os

from kernels.backend import BackendUnavailable, cuda_available, resolve_backend
# eager (NumPy only): the submodule of the same name, once imported, would otherwise stand for the function
from kernels.focus_band import focus_band

# The variables depthcam set itself, not the user (a benchmark's report lists the user's only: depthcam sets these
# again on every run)
DEFAULTED_ENVIRONMENT: dict[str, str] = {}


def _passive_openmp_waits() -> None:
    """OpenMP's threads sleep between the kernels' parallel loops unless the user chose otherwise.

    GNU libgomp (Numba's `omp` threading layer) spins its idle workers for about 300,000 iterations after every
    parallel loop: on a small CPU they burned the cores the next stage needed (ONNX Runtime's network, another
    kernel on another stage's thread). libgomp reads the environment once, when it loads at Numba's first
    parallel launch, which comes after this import. A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is kept.
    Measured on two busy cores: `bench` sequential at 160x120, end-to-end p50 51 -> 27 ms; a 720p file run the same
    within noise (waking a sleeping worker costs microseconds, against frames of tens of milliseconds)."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = DEFAULTED_ENVIRONMENT["OMP_WAIT_POLICY"] = "PASSIVE"


_passive_openmp_waits()

__all__ = [
    "BackendUnavailable",
    "cuda_available",
    "resolve_backend",
    "joint_bilateral",
    "refine_live",
    "depth_of_field",
    "focus_band",
]


def __getattr__(name: str):
    # Lazy: importing `kernels` must not compile Numba or CUDA code.
    if name in ("joint_bilateral", "refine_live"):
        from kernels import bilateral

        return getattr(bilateral, name)
    if name == "depth_of_field":
        from kernels.dof import depth_of_field

        return depth_of_field
    raise AttributeError(f"module 'kernels' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))  # the lazy names too, for completion and help()
