"""CUDA kernels compiled for the host, for the tests: no GPU here, but a kernel's threads are independent
functions of (blockIdx, threadIdx) up to a __syncthreads(). Compiled as C++ with a small shim and run
thread by thread, the very same source and launch code are checked on every machine. `compile_for_host`
returns the library and a launcher with CuPy's `kernel(grid, block, args, shared_mem=...)` signature, keyed
by kernel name.

Shared-memory kernels (one barrier: fill a tile, __syncthreads(), compute from it) run in two phases per block:
every thread up to its barrier, then every thread again from the start. Filling the tile is idempotent, so
after the first phase the tile is complete, as the barrier guarantees on the GPU. The dynamic shared memory
starts as NaN in every block: a read of an element no thread wrote shows in the result."""
from __future__ import annotations

import ctypes
import re
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
#include <vector>
struct idx3 { unsigned x, y, z; };
static thread_local idx3 threadIdx, blockIdx, blockDim;
struct float4 { float x, y, z, w; };
static inline float4 make_float4(float a, float b, float c, float d) { return float4{a, b, c, d}; }
template <typename T> static inline T __ldg(const T* p) { return *p; }
struct BarrierReached {};
static thread_local int g_phase = 1;  // 0: each thread runs until its first __syncthreads()
static thread_local std::vector<float4> g_shared;  // the block's dynamic shared memory
extern "C" void host_set_shared(size_t bytes) { g_shared.assign((bytes + 15) / 16, float4{NAN, NAN, NAN, NAN}); }
using std::abs;
using std::max;
using std::min;
#define __global__
#define __device__
#define __constant__
#define __forceinline__ inline
#define __restrict__
#define __launch_bounds__(n)
#define __syncthreads() do { if (g_phase == 0) throw BarrierReached{}; } while (0)
#include "kernel.inc"
// The order blocks and a block's threads run in (host_set_order): 0 as written, 1 reversed, 2 shuffled. A GPU
// promises none: a kernel whose result changes with it has a race (two threads writing one pixel, a read of what
// another thread writes, an unsynchronised shared-memory write).
static int g_order = 0;
static unsigned g_seed = 1;
extern "C" void host_set_order(int order, unsigned seed) { g_order = order; g_seed = seed ? seed : 1; }
static std::vector<unsigned> host_order(unsigned n) {
    std::vector<unsigned> order(n);
    for (unsigned i = 0; i < n; ++i) order[i] = g_order == 1 ? n - 1 - i : i;
    if (g_order == 2) for (unsigned i = n; i > 1; --i) {  // Fisher-Yates on a xorshift32
        g_seed ^= g_seed << 13; g_seed ^= g_seed >> 17; g_seed ^= g_seed << 5;
        std::swap(order[i - 1], order[g_seed % i]);
    }
    return order;
}
// Set when some threads of a block reached the barrier and others returned before it: on a GPU that
// __syncthreads() is undefined (a hang or a tile half loaded); read and cleared by host_barrier_diverged().
static int g_diverged = 0;
extern "C" int host_barrier_diverged() { const int d = g_diverged; g_diverged = 0; return d; }
template <typename F> struct Launcher;
template <typename... A> struct Launcher<void (*)(A...)> {
    template <void (*K)(A...)> static void run(unsigned gx, unsigned gy, unsigned bx, unsigned by, A... a) {
        blockDim = idx3{bx, by, 1};
        const size_t shared = g_shared.size();
        for (unsigned block : host_order(gx * gy)) {
            blockIdx = idx3{block % gx, block / gx, 0};
            g_shared.assign(shared, float4{NAN, NAN, NAN, NAN});
            bool barrier = false;
            for (int phase = 0; phase < (barrier ? 2 : 1); ++phase) {
                g_phase = phase;
                unsigned returned = 0;
                for (unsigned thread : host_order(bx * by)) {
                    threadIdx = idx3{thread % bx, thread / bx, 0};
                    try { K(a...); ++returned; } catch (const BarrierReached&) { barrier = true; }
                }
                if (phase == 0 && barrier && returned) g_diverged = 1;
                if (!barrier) break;
            }
            g_phase = 1;
        }
    }
};
#define EXPORT(k) extern "C" void* launcher_##k() { return (void*)&Launcher<decltype(&k)>::run<&k>; }
"""

Launch = Callable[..., None]  # (kernel name, grid, block, args, shared_mem=0)


def host_source(source: str) -> str:
    """A .cu source as the shim compiles it: the one inline PTX instruction (ex2.approx) as std::exp2 and the
    dynamic shared memory (`extern __shared__ T name[];`) as the block's buffer."""
    source = source.replace('asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));', "y = std::exp2(x);")
    source = re.sub(r"extern __shared__ (\w+) (\w+)\[\];", r"\1* \2 = reinterpret_cast<\1*>(g_shared.data());", source)
    assert "asm(" not in source and "extern __shared__" not in source, "update host_source's substitutions"
    return source


def _host_has_fma() -> bool:
    try:
        return " fma " in Path("/proc/cpuinfo").read_text().replace("\n", " ")
    except OSError:
        return False


# nvcc contracts a * b + c into one FMA (--fmad=true, CuPy's default); g++ for x86-64 does not, unless told.
# A kernel whose picture changes under contraction (a weight that is exactly 0 on one side, 1e-8 on the other)
# passes the host tests and fails on the GPU: build with these to see the GPU's rounding. Empty where the host
# has no FMA instruction (the comparison is then skipped).
GPU_LIKE_FLAGS: tuple[str, ...] = ("-mfma", "-ffp-contract=fast") if _host_has_fma() else ()


def compile_for_host(source: str, kernels: tuple[str, ...], folder: Path, extra: str = "",
                     flags: tuple[str, ...] = ()) -> tuple[ctypes.CDLL, Launch]:
    """Build `source` (CUDA C text) with `kernels` exported, plus `extra` C++ appended to the shim and
    `flags` given to the compiler (e.g. GPU_LIKE_FLAGS); skips the test where there is no C++ compiler."""
    compiler = shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ compiler to run the CUDA source on the host")
    (folder / "kernel.inc").write_text(source)
    exports = "".join(f"EXPORT({name})\n" for name in kernels)
    (folder / "shim.cpp").write_text(SHIM + exports + extra)
    library = folder / "host_kernels.so"
    build = subprocess.run([compiler, "-std=c++17", "-O2", *flags, "-shared", "-fPIC", "-o", str(library),
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

    def launch(name, grid, block, args, shared_mem=0):
        proto = ctypes.CFUNCTYPE(None, *([ctypes.c_uint] * 4), *(ctype(a) for a in args))
        values = [a.ctypes.data if isinstance(a, np.ndarray) else a.item() for a in args]
        lib.host_set_shared(ctypes.c_size_t(shared_mem))  # thread-local: set in the launching thread
        proto(entries[name])(grid[0], grid[1], block[0], block[1], *values)

    return lib, launch


def set_order(lib: ctypes.CDLL, order: str, seed: int = 1) -> None:
    """The order the next launches run blocks and threads in: "forward" (as before), "reverse" or "shuffle"
    (seeded): a result that changes with it is a race the GPU may show."""
    lib.host_set_order(ctypes.c_int(("forward", "reverse", "shuffle").index(order)), ctypes.c_uint(seed))


def barrier_diverged(lib: ctypes.CDLL) -> bool:
    """Whether a launch since the last call had threads of one block return before a __syncthreads() that others
    reached (undefined on a GPU)."""
    return bool(lib.host_barrier_diverged())


def dof_on_host(launch: Launch) -> Callable[..., np.ndarray]:
    """The depth-of-field render through kernels/depth_of_field.cu's kernels as `launch` runs them on the host, by
    the GPU's own launch code (dof_cuda.run_passes): `render(img, disp, focus, max_blur, boost=0, scale=None)`."""
    def render(img: np.ndarray, disp: np.ndarray, focus: float, max_blur: float, boost: float = 0.0,
               scale: int | None = None) -> np.ndarray:
        from kernels.dof import plan
        from kernels.dof_cuda import DofBuffers, run_passes

        p = plan(disp.shape, focus, max_blur, boost, scale)
        out = np.empty_like(img)
        run_passes(np.ascontiguousarray(img), np.ascontiguousarray(disp, np.float32), p,
                   DofBuffers(np, disp.shape, p.low_shape), out, launch)
        return out

    return render


def compile_dof_for_host(folder: Path) -> Callable[..., np.ndarray]:
    """kernels/depth_of_field.cu built for the host in `folder`, as dof_on_host's render."""
    from kernels.cuda_module import read_source
    from kernels.dof_cuda import KERNELS, SOURCE

    return dof_on_host(compile_for_host(read_source(SOURCE), KERNELS, folder)[1])
