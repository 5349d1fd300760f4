"""The CUDA sources on the host (tests/host_cuda.py) at odd sizes and every radius, against the CPU paths, and in
reversed and shuffled block and thread order: a GPU runs blocks and threads in no set order, so a result that
changes with the order is a race that only a GPU would show (and then only sometimes)."""
from __future__ import annotations

import numpy as np
import pytest
import test_cuda_sources
from host_cuda import barrier_diverged, set_order

from kernels.bilateral import joint_bilateral

# the fixtures: every .cu source built for the host, and CuPy replaced by the host stand-in that runs them
host_gpu = test_cuda_sources.host_gpu
gpu_on_host = test_cuda_sources.gpu_on_host

ORDERS = (("reverse", 1), ("shuffle", 7), ("shuffle", 12345))
# odd sizes from one pixel to 97 x 121: narrower and shorter than a block, not a multiple of any block side
SHAPES = ((1, 1), (2, 3), (7, 33), (17, 3), (31, 9), (45, 70), (97, 121))


def _scene(seed: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A guide of flat patches plus noise (edges the range weight must respect) and a disparity following it."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = shape
    patches = rng.integers(0, 256, (max(h // 8, 1), max(w // 8, 1), 3), dtype=np.uint8)
    guide = cv2.resize(patches, (w, h), interpolation=cv2.INTER_NEAREST)
    guide = np.clip(guide + rng.normal(0, 8, guide.shape), 0, 255).astype(np.uint8)
    disparity = (guide[..., 1] / 255.0 + rng.normal(0, 0.05, shape)).astype(np.float32)
    return np.ascontiguousarray(disparity), np.ascontiguousarray(guide)


def _filter_on_host(variant: str, disparity, guide, radius: int, ss: float, sr: float) -> np.ndarray:
    import cupy  # the host stand-in (gpu_on_host)

    from kernels.bilateral_cuda import launch, launch_global

    out = cupy.empty(disparity.shape, cupy.float32)  # NaN: a pixel no thread writes shows
    if variant == "global":
        launch_global(cupy.asarray(disparity), cupy.asarray(guide), out, radius, ss, sr)
    else:
        launch(cupy.asarray(disparity), cupy.asarray(guide), out, radius, ss, sr, variant=variant)
    return out.get()


VARIANTS = ("lut", "exp2", "exp2_rows4", "exp2_rows8", "global")


@pytest.mark.parametrize("radius", range(0, 17))
def test_every_range_variant_matches_the_cpu_path_at_every_radius(gpu_on_host, host_gpu, radius):
    """Each radius 0..16 (0: the pixel itself; exp2_rows4, the default since the GPU run, had never run it) at two
    odd sizes (one smaller than a block, one of several partial blocks), every
    variant, against the CPU path; a wide range sigma at odd radii (an out-of-image tap would weigh and show)."""
    _, libraries = host_gpu
    ss, sr = radius / 2 + 1.0, (0.5 if radius % 2 else 0.08)
    for shape in (SHAPES[radius % 5], SHAPES[5 + radius % 2]):
        disparity, guide = _scene(radius, shape)
        cpu = joint_bilateral(disparity, guide, radius, ss, sr, backend="cpu")
        for variant in VARIANTS:
            out = _filter_on_host(variant, disparity, guide, radius, ss, sr)
            assert np.isfinite(out).all(), (variant, shape)
            np.testing.assert_allclose(out, cpu, rtol=2e-5, atol=2e-6, err_msg=f"{variant} {shape}")
        assert not barrier_diverged(libraries["joint_bilateral.cu"])


@pytest.mark.parametrize("shape", SHAPES)
def test_the_filter_does_not_depend_on_the_order_blocks_and_threads_run_in(gpu_on_host, host_gpu, shape):
    """Reversed and shuffled blocks and threads give the very same bits as the written order, for every variant
    at the radii where the tile is widest (16) and narrowest (1): no thread reads what another writes unsynchronised."""
    _, libraries = host_gpu
    lib = libraries["joint_bilateral.cu"]
    disparity, guide = _scene(3, shape)
    try:
        for radius in (1, 16):
            for variant in VARIANTS:
                set_order(lib, "forward")
                expected = _filter_on_host(variant, disparity, guide, radius, radius / 2 + 1.0, 0.1)
                for order, seed in ORDERS:
                    set_order(lib, order, seed)
                    out = _filter_on_host(variant, disparity, guide, radius, radius / 2 + 1.0, 0.1)
                    np.testing.assert_array_equal(out, expected, err_msg=f"{variant} r={radius} {order}")
        assert not barrier_diverged(lib)
    finally:
        set_order(lib, "forward")


def _dof_on_host(launchers, img, disp, focus, max_blur, boost, scale, exact_far):
    from kernels.dof import plan
    from kernels.dof_cuda import DofBuffers, run_passes

    p = plan(disp.shape, focus, max_blur, boost, scale, exact_far=exact_far)
    buffers = DofBuffers(np, disp.shape, p.low_shape)
    for name in vars(buffers):  # garbage, as a GPU's fresh memory is: a value read before it is written shows
        array = getattr(buffers, name)
        if isinstance(array, np.ndarray):
            array.fill(np.nan if array.dtype.kind == "f" else 0xCD)
    out = np.full_like(img, 0xCD)
    run_passes(img, disp, p, buffers, out, launchers["dof_reduce"])
    return out


def _dof_scene(seed: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Random colour (highlights included) over a smooth random depth with a few sharp near blobs: in-focus,
    near and far pixels side by side, so the near ring, the far field and the hand-over at s / 2s are all used."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = shape
    disp = cv2.resize(rng.random((max(h // 6, 1), max(w // 6, 1))).astype(np.float32), (w, h))
    near = rng.random(shape) > 0.97
    disp[near] = 0.95
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[rng.random(shape) > 0.98] = 255
    return np.ascontiguousarray(img), np.ascontiguousarray(disp, np.float32)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("exact_far", [False, True])
def test_depth_of_field_source_matches_the_cpu_path_at_odd_sizes(host_gpu, shape, exact_far):
    """dof_reduce (near ring included), dof_gather, dof_back, dof_behind_blocks and dof_composite on the host against
    the CPU path at every reduction 1..7, both far-field hand-overs, a focus in front and one behind: <= 1 level on
    <= 2 % of values."""
    from kernels.dof_cpu import depth_of_field_cpu

    launchers, _ = host_gpu
    img, disp = _dof_scene(sum(shape), shape)
    for scale in range(1, 8):
        for focus in (0.5, 0.1):
            blur = 3.6 * scale
            host = _dof_on_host(launchers, img, disp, focus, blur, 2.0, scale, exact_far)
            cpu = depth_of_field_cpu(img, disp, focus, blur, highlight_boost=2.0, scale=scale, exact_far=exact_far)
            diff = np.abs(host.astype(np.int16) - cpu)
            where = (scale, focus, np.argwhere(diff > 1)[:3].tolist())
            assert diff.max() <= 1 and (diff > 0).mean() <= 0.02, where


@pytest.mark.parametrize("shape", [(1, 1), (7, 33), (45, 70), (97, 121)])
def test_depth_of_field_does_not_depend_on_the_order_blocks_and_threads_run_in(host_gpu, shape):
    """The five passes in reversed and shuffled order give the same bits: no pass reads a pixel of its own output
    that another thread writes, and no two threads write one pixel."""
    launchers, libraries = host_gpu
    lib = libraries["depth_of_field.cu"]
    img, disp = _dof_scene(11, shape)
    try:
        for scale, exact_far in ((2, False), (3, True), (5, True), (7, False)):
            set_order(lib, "forward")
            expected = _dof_on_host(launchers, img, disp, 0.3, 3.6 * scale, 2.0, scale, exact_far)
            for order, seed in ORDERS:
                set_order(lib, order, seed)
                out = _dof_on_host(launchers, img, disp, 0.3, 3.6 * scale, 2.0, scale, exact_far)
                np.testing.assert_array_equal(out, expected, err_msg=f"s={scale} {order}")
    finally:
        set_order(lib, "forward")


def test_the_order_and_barrier_checks_see_a_planted_race_and_a_divergent_barrier(tmp_path):
    """The checks themselves: a kernel whose threads write one shared pixel (last writer wins) changes with the
    order, and one whose out-of-range threads return before __syncthreads() is flagged."""
    from host_cuda import compile_for_host

    source = r"""
extern "C" __global__ void last_writer(float* out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[0] = (float)i;
}
extern "C" __global__ void early_return(float* out, int n) {
    extern __shared__ float4 tile[];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    tile[threadIdx.x].x = (float)i;
    __syncthreads();
    out[i] = tile[threadIdx.x].x;
}
"""
    from host_cuda import host_source

    lib, launch = compile_for_host(host_source(source), ("last_writer", "early_return"), tmp_path)
    results = set()
    for order, seed in (("forward", 1), *ORDERS):
        set_order(lib, order, seed)
        out = np.zeros(1, np.float32)
        launch("last_writer", (4, 1), (32, 1), (out, np.int32(100)))
        results.add(float(out[0]))
    set_order(lib, "forward")
    assert len(results) > 1
    out = np.zeros(40, np.float32)
    launch("early_return", (2, 1), (32, 1), (out, np.int32(40)), shared_mem=32 * 16)
    assert barrier_diverged(lib) and not barrier_diverged(lib)  # read once, then cleared
    launch("early_return", (1, 1), (32, 1), (out, np.int32(40)), shared_mem=32 * 16)
    assert not barrier_diverged(lib)


# --- the GPU benchmarks themselves, rehearsed on the host stand-in -----------------------------------------
# A GPU session has 15 minutes; a benchmark that stops on a Python error there (a CuPy call the stand-in lacks
# is caught here too) costs a rerun. Small frames and few runs: what is checked is that each prints its tables.

@pytest.fixture
def bench_on_host(gpu_on_host, monkeypatch):
    """The stand-in with what the benchmarks also ask of CuPy: the device's properties and a device copy."""
    import sys
    import types

    cupy = sys.modules["cupy"]
    props = {"name": b"host stand-in", "multiProcessorCount": 2, "clockRate": 1_000_000,
             "memoryClockRate": 1_000_000, "memoryBusWidth": 64}
    monkeypatch.setattr(cupy.cuda, "runtime", types.SimpleNamespace(getDeviceProperties=lambda device: props),
                        raising=False)
    monkeypatch.setattr(cupy, "abs", np.abs, raising=False)
    return cupy


def _bench_module(name: str) -> dict:
    import runpy
    from pathlib import Path

    return runpy.run_path(str(Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"), run_name=name)


def _tables(text: str) -> list[list[str]]:
    """The markdown tables in `text`, as lists of their lines."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_the_joint_bilateral_benchmark_prints_its_tables(bench_on_host, monkeypatch, capsys):
    module = _bench_module("gpu_kernels")
    module["main"].__globals__.update(SIZES=((40, 24), (45, 37)), RADII=(1, 12))
    monkeypatch.setattr("sys.argv", ["gpu_kernels.py", "--runs", "2", "--kornia-runs", "1"])
    module["main"]()
    tables = _tables(capsys.readouterr().out)
    assert [len(t) for t in tables] == [2 + 2 * 2, 2 + 2]  # header, rule, a row per size and radius; per size
    for row in tables[0][2:]:  # every variant agrees with the default one (the host runs exp2 exactly)
        assert float(row.rstrip(" |").rsplit("|", 1)[1]) < 1e-5, row
    for row in tables[1][2:]:  # live mode against the CPU path
        assert float(row.rstrip(" |").rsplit("|", 1)[1]) < 1e-3, row


def test_the_depth_of_field_benchmark_prints_its_tables(bench_on_host, monkeypatch, capsys):
    module = _bench_module("gpu_dof")
    monkeypatch.setattr("sys.argv", ["gpu_dof.py", "--runs", "2", "--width", "96", "--height", "64"])
    assert module["main"]() == 0
    tables = _tables(capsys.readouterr().out)
    assert [len(t) for t in tables] == [2 + 3, 2 + 3]  # the GPU's table, then the CPU's
    assert all("nan" not in row for row in tables[1]), tables[1]


def test_the_depth_of_field_benchmark_splits_a_render_into_its_passes(bench_on_host, monkeypatch):
    """queued_ms records an event after each pass: a render's queued time spans every launch of dof_cuda.KERNELS and
    the split has one figure a pass. It took 3 events a render after the passes became 5: a render's "total" was 3/5
    of one, ending mid-render, and the split named passes that were not the ones timed."""
    import itertools

    from kernels.dof import plan
    from kernels.dof_cuda import KERNELS

    cupy = bench_on_host
    clock = itertools.count()

    class Event:  # stamped in the order events are recorded: one unit a launch
        at = -1

        def record(self, stream=None) -> None:
            self.at = next(clock)

        def synchronize(self) -> None:
            pass

    monkeypatch.setattr(cupy.cuda, "Event", Event)
    monkeypatch.setattr(cupy.cuda, "get_elapsed_time", lambda start, stop: float(stop.at - start.at))
    rng = np.random.default_rng(3)
    image = cupy.asarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    disparity = cupy.asarray(rng.random((16, 24), dtype=np.float32))
    queued_ms = _bench_module("gpu_dof")["queued_ms"]
    total, passes = queued_ms(cupy, image, disparity, plan((16, 24), 0.5, 4.0, 0.0), cupy.empty_like(image), 3)
    assert total == len(KERNELS) and passes == [1.0] * len(KERNELS), (total, passes)


# --- bench/gpu_check.sh, rehearsed with a stand-in Python ----------------------------------------------------

STUB_PYTHON = """#!/usr/bin/env bash
# records each call; pytest "runs" 50 tests; everything else answers one line
echo "$*" >> "$STUB_LOG"
case "$*" in
  *"-m pytest"*) echo "50 passed, 3000 deselected in 1.00s" ;;
  "-") cat > /dev/null; echo "versions: stub" ;;
  *) echo "stub" ;;
esac
"""


def test_gpu_check_goes_on_past_a_test_module_that_fails_to_import_and_brings_back_its_summary(tmp_path):
    """On the GPU image PyAV was missing: test_review22b.py's `import av` failed to collect and pytest ran none
    of the 50 gpu tests, the one thing a GPU session is for. The run goes on past collection errors, counts the
    gpu tests, and writes its summary to $OUT, where a device call brings it back as a file."""
    import os
    import subprocess
    from pathlib import Path

    stub = tmp_path / "python"
    stub.write_text(STUB_PYTHON)
    stub.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    script = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.sh"
    env = {**os.environ, "PYTHON": str(stub), "STUB_LOG": str(tmp_path / "calls"), "OUT": str(out),
           "GPU_CHECK_PARTS": "tests", "PATH": "/usr/bin:/bin"}  # no nvidia-smi: no GPU listed
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    pytest_calls = [c for c in (tmp_path / "calls").read_text().splitlines() if "-m pytest" in c]
    assert len(pytest_calls) == 1 and "-m gpu" in pytest_calls[0], pytest_calls
    assert "--continue-on-collection-errors" in pytest_calls[0]
    summary = (out / "summary.txt").read_text()
    assert "gpu tests: 50 passed, 3000 deselected in 1.00s (gpu tests counted: 50" in summary, summary
    assert "the kernel and FCRN benchmarks are left out" in result.stdout  # the stub's CuPy sees no GPU
