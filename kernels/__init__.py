"""Image kernels: joint bilateral refinement and synthetic depth of field, on CPU and CUDA.

Each kernel has a public dispatcher (`backend="auto"|"cpu"|"cuda"`), a fast CPU path, a CUDA path
(CuPy RawModule compiled from the `.cu` file beside it) and a slow float64 reference for tests.
"""
from kernels.backend import BackendUnavailable, cuda_available, resolve_backend

__all__ = [
    "BackendUnavailable",
    "cuda_available",
    "resolve_backend",
    "joint_bilateral",
    "refine_live",
    "depth_of_field",
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
