"""CUDA kernels compiled for the host, for the tests: no GPU here, but a kernel that uses no shared memory,
warp intrinsics or synchronisation is an independent function of (blockIdx, threadIdx). Compiled as C++
with a small shim and run thread by thread, the very same source and launch code are checked on every
machine. `compile_for_host` returns the library and a launcher with CuPy's `kernel(grid, block, args)`
signature, keyed by kernel name."""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

SHIM = r"""
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
struct idx3 { unsigned x, y, z; };
static thread_local idx3 threadIdx, blockIdx, blockDim;
struct float4 { float x, y, z, w; };
static inline float4 make_float4(float a, float b, float c, float d) { return float4{a, b, c, d}; }
template <typename T> static inline T __ldg(const T* p) { return *p; }
using std::abs;
using std::max;
using std::min;
#define __global__
#define __device__
#define __constant__
#define __forceinline__ inline
#define __restrict__
#define __launch_bounds__(n)
#define __syncthreads()
#include "kernel.inc"
template <typename F> struct Launcher;
template <typename... A> struct Launcher<void (*)(A...)> {
    template <void (*K)(A...)> static void run(unsigned gx, unsigned gy, unsigned bx, unsigned by, A... a) {
        blockDim = idx3{bx, by, 1};
        for (unsigned j = 0; j < gy; ++j) for (unsigned i = 0; i < gx; ++i) {
            blockIdx = idx3{i, j, 0};
            for (unsigned ty = 0; ty < by; ++ty) for (unsigned tx = 0; tx < bx; ++tx) {
                threadIdx = idx3{tx, ty, 0};
                K(a...);
            }
        }
    }
};
#define EXPORT(k) extern "C" void* launcher_##k() { return (void*)&Launcher<decltype(&k)>::run<&k>; }
"""

Launch = Callable[[str, tuple, tuple, tuple], None]


def compile_for_host(source: str, kernels: tuple[str, ...], folder: Path, extra: str = "") -> tuple[ctypes.CDLL, Launch]:
    """Build `source` (CUDA C text) with `kernels` exported, plus `extra` C++ appended to the shim;
    skips the test where there is no C++ compiler."""
    compiler = shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ compiler to run the CUDA source on the host")
    (folder / "kernel.inc").write_text(source)
    exports = "".join(f"EXPORT({name})\n" for name in kernels)
    (folder / "shim.cpp").write_text(SHIM + exports + extra)
    library = folder / "host_kernels.so"
    build = subprocess.run([compiler, "-std=c++17", "-O2", "-shared", "-fPIC", "-o", str(library),
                            str(folder / "shim.cpp")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    lib = ctypes.CDLL(str(library))
    entries = {}
    for name in kernels:
        getter = getattr(lib, f"launcher_{name}")
        getter.restype = ctypes.c_void_p
        entries[name] = getter()

    def ctype(arg):
        if isinstance(arg, np.ndarray):
            assert arg.flags.c_contiguous
            return ctypes.c_void_p
        return {np.dtype(np.int32): ctypes.c_int, np.dtype(np.float32): ctypes.c_float}[np.asarray(arg).dtype]

    def launch(name, grid, block, args):
        proto = ctypes.CFUNCTYPE(None, *([ctypes.c_uint] * 4), *(ctype(a) for a in args))
        values = [a.ctypes.data if isinstance(a, np.ndarray) else a.item() for a in args]
        proto(entries[name])(grid[0], grid[1], block[0], block[1], *values)

    return lib, launch
