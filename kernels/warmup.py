"""Compile every kernel a run uses before its first frame.

On the CPU the kernels are Numba functions compiled on first call: cached on disk afterwards, but
the first run on a machine spends tens of seconds compiling them. Done inside the pipeline, that
stall would hit the first frame (a live camera would drop frames, a benchmark would misreport);
done here, the caller can tell the user what is happening. On CUDA the first call compiles the
`.cu` sources through NVRTC (cached by CuPy) and creates the constant-memory tables.
"""
from __future__ import annotations

import importlib
import sys
from typing import Iterable

import numpy as np

# Odd, small and not a multiple of any block or tile size, so every border branch is compiled too.
_WARM_SHAPE = (37, 53)
# What this process has warmed up already: the next input of a batch (`run clips/*`) skips it (48 ms each).
_warmed: set[tuple[str, bool, bool, bool]] = set()
# The modules of the CPU kernels a run calls (Numba functions cached on disk, each module's in its own files)
CPU_KERNEL_MODULES = ("kernels.bilateral_cpu", "kernels.dof_cpu", "kernels.dof_cpu_common", "kernels.dof_cpu_lanes",
                      "kernels.dof_cpu_reduce", "kernels.dof_cpu_gather", "kernels.dof_cpu_exact",
                      "kernels.dof_cpu_upsample", "kernels.dof_cpu_composite", "kernels.cpu_threads")


def warm_up(backend: str, *, exact_filter: bool = True, live_filter: bool = True,
            depth_of_field: bool = True) -> None:
    """Run the chosen kernels once, on `backend` ("cpu" or "cuda"), on a tiny frame with the same
    dtypes and layouts as a real run, so the compiled specialisations are the ones the run calls. Once a
    process: compiled kernels stay compiled."""
    key = (backend, exact_filter, live_filter, depth_of_field)
    if key in _warmed:
        return
    from kernels import bilateral, dof

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, _WARM_SHAPE + (3,), dtype=np.uint8)
    disparity = rng.random(_WARM_SHAPE, dtype=np.float32)
    low = np.ascontiguousarray(disparity[::4, ::4])
    if backend == "cuda":
        import cupy

        image, disparity, low = cupy.asarray(image), cupy.asarray(disparity), cupy.asarray(low)
    if exact_filter:
        bilateral.joint_bilateral(disparity, image, radius=3, sigma_spatial=2.0, sigma_range=0.1, backend=backend)
    if live_filter:
        bilateral.refine_live(low, image, work_width=24, radius=2, sigma_spatial=1.5, sigma_range=0.1,
                              backend=backend)
    if depth_of_field:
        dof.depth_of_field(image, disparity, 0.5, 8.0, highlight_boost=1.0, backend=backend)
    if backend == "cuda":
        cupy.cuda.Device().synchronize()
    _warmed.add(key)


def cpu_compiled() -> int:
    """How many of the CPU kernels this process compiled rather than loaded from Numba's cache: a slow warm-up with
    none was a busy machine loading them, not a first run (its notice said "the first run compiles" on later runs)."""
    try:
        from numba.core.registry import CPUDispatcher
    except ImportError:
        return 0
    compiled = 0
    for name, module in list(sys.modules.items()):
        if name == "kernels" or name.startswith("kernels."):
            for value in list(vars(module).values()):
                if isinstance(value, CPUDispatcher):
                    compiled += sum(value.stats.cache_misses.values())
    return compiled


# The kernels each part of a warm-up calls from Python. Loaded from the cache, each brings those it calls compiled in,
# which are then never asked for: their own index may be empty or old (`_share_shift`, which no kernel calls any more,
# had none, so the notice said "a first run compiles" on every run). tests/test_leftovers23.py checks the list.
CPU_ENTRIES = {
    "exact_filter": ("kernels.bilateral_cpu.joint_bilateral_planes", "kernels.cpu_threads._first_launch"),
    "live_filter": ("kernels.bilateral_cpu.joint_bilateral_planes", "kernels.bilateral_cpu.joint_bilateral_upsample",
                    "kernels.cpu_threads._first_launch"),
    "depth_of_field": ("kernels.dof_cpu_reduce._reduce", "kernels.dof_cpu_reduce._near_ring",
                       "kernels.dof_cpu_gather._gather", "kernels.dof_cpu_composite._composite_back",
                       "kernels.dof_cpu_composite._behind_block_stats", "kernels.dof_cpu_composite._composite",
                       "kernels.cpu_threads._first_launch"),
}
CPU_KERNELS = tuple(dict.fromkeys(name for names in CPU_ENTRIES.values() for name in names))


def cpu_cached(kernels: Iterable[str] = CPU_KERNELS) -> bool | None:
    """Whether Numba's disk cache holds each of these kernels (`module.name`, or a module: all its cached kernels)
    for this Numba, this CPU and the kernels' source as they now are (where Numba looks: the module's __pycache__,
    NUMBA_CACHE_DIR, a user-wide folder), before a warm-up: a slow one then is a busy machine loading them, not a
    first run compiling them. None where it cannot tell."""
    try:
        dispatchers = [one for name in kernels for one in _dispatchers(name)]
    except (ImportError, AttributeError):
        return None
    try:
        return all(_cached_here(dispatcher) for dispatcher in dispatchers)
    except Exception:  # noqa: BLE001 (Numba's internals changed, an unreadable index: the neutral notice)
        return None


def _dispatchers(name: str) -> list:
    """The cached kernels `name` stands for: the one `module.name`, or every one of a module (an inlined one is
    compiled into its callers, never cached alone)."""
    from numba.core.registry import CPUDispatcher

    try:
        values = list(vars(importlib.import_module(name)).values())
    except ModuleNotFoundError:
        module, _, attribute = name.rpartition(".")
        values = [getattr(importlib.import_module(module), attribute)]
    return [value for value in values if isinstance(value, CPUDispatcher)
            and value.targetoptions.get("inline") != "always" and getattr(value._cache, "_cache_file", None)]


def _cached_here(dispatcher) -> bool:
    """Whether the dispatcher's index holds a build for this CPU (Numba's key: the signature, the CPU and its
    features, the bytecode). An index of another Numba, or of the source before an update, loads empty; one on a
    folder shared by two machines holds the other's build too."""
    cache = dispatcher._cache
    codegen = dispatcher.targetctx.codegen()
    return any(key[1:] == cache._index_key(key[0], codegen)[1:] for key in cache._cache_file._load_index())
