"""Loading the CUDA sources beside this file: CuPy RawModules on a GPU, PTX through NVRTC anywhere."""
from __future__ import annotations

import functools
from pathlib import Path

KERNEL_DIR = Path(__file__).resolve().parent
NVRTC_OPTIONS = ("--std=c++17",)


def cuda_sources() -> list[Path]:
    return sorted(KERNEL_DIR.glob("*.cu"))


def read_source(name: str) -> str:
    return (KERNEL_DIR / name).read_text()


@functools.lru_cache(maxsize=None)
def load_module(name: str, options: tuple[str, ...] = NVRTC_OPTIONS):
    """Compile `kernels/<name>` once per process into a cupy.RawModule (needs a GPU to run)."""
    import cupy

    return cupy.RawModule(code=read_source(name), options=options, name_expressions=None)


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
