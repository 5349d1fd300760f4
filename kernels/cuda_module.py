"""Loading the CUDA sources beside this file: CuPy RawModules on a GPU, PTX through NVRTC anywhere."""
from __future__ import annotations

import functools
import threading
from pathlib import Path

KERNEL_DIR = Path(__file__).resolve().parent
NVRTC_OPTIONS = ("--std=c++17",)


def cuda_sources() -> list[Path]:
    return sorted(KERNEL_DIR.glob("*.cu"))


def read_source(name: str) -> str:
    return (KERNEL_DIR / name).read_text()


_compile_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _raw_module(name: str, options: tuple[str, ...]):
    import cupy

    return cupy.RawModule(code=read_source(name), options=options, name_expressions=None)


def load_module(name: str, options: tuple[str, ...] = NVRTC_OPTIONS):
    """`kernels/<name>` as a cupy.RawModule, compiled for the current device (needs a GPU to run).

    Compiled under a lock: CuPy's per-device module cache is not thread-safe, and two threads compiling at
    once could each get a module of their own, whose __constant__ tables are different memory (a table
    uploaded through one would be read as zeros by the other's kernels). After the first call per device,
    compile() is a cache lookup."""
    module = _raw_module(name, tuple(options))
    with _compile_lock:
        module.compile()
    return module


def compile_ptx_nvrtc(name: str, arch: str = "compute_90", options: tuple[str, ...] = NVRTC_OPTIONS) -> str:
    """Compile a source to PTX through NVRTC as CuPy does; works on a machine without a GPU."""
    from cupy.cuda import nvrtc

    program = nvrtc.createProgram(read_source(name), name, [], [])
    try:
        try:
            nvrtc.compileProgram(program, [f"--gpu-architecture={arch}", *options])
        except nvrtc.NVRTCError as exc:
            raise RuntimeError(f"NVRTC failed on {name}:\n{nvrtc.getProgramLog(program)}") from exc
        ptx = nvrtc.getPTX(program)
        return ptx.decode() if isinstance(ptx, bytes) else ptx
    finally:
        nvrtc.destroyProgram(program)
