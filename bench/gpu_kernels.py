"""GPU timing of the joint bilateral kernels (issue 4, item 5), for a machine with an NVIDIA GPU.

    PYTHONPATH=. python bench/gpu_kernels.py [--runs 200]

Needs only CuPy, NumPy and OpenCV (PyTorch + kornia optional: its joint_bilateral_blur is timed when it
imports). For each size and radius: the shared-memory kernel with the range weight from the per-channel
LUT and from one hardware exp2 (ex2.approx), the register-blocked exp2 kernels (4 or 8 outputs a thread),
the plain global-memory kernel, kornia, and floors from the card's own rates: memory (11 bytes per pixel:
read 4 B disparity + 3 B guide, write 4 B), MUFU (one ex2 per tap at 16 per clock per SM) and issue (the
rows kernels' 10 instructions per tap at 4 warp-instructions per clock per SM). "max rel diff" is each
kernel's largest difference from the CPU path's output, relative to its largest value: all should be ~1e-6
(a smooth scene's range weights hide little: the gpu tests check the exact window on a flat one). Times are medians of CUDA-event timings after
warm-up. One table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cupy
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kernels.bilateral import joint_bilateral  # noqa: E402
from kernels.bilateral_cuda import DEFAULT_RANGE_VARIANT, RANGE_VARIANTS, launch, launch_global  # noqa: E402

SIZES = ((640, 480), (1280, 720), (1920, 1080))
RADII = (4, 8, 12)
SIGMA_RANGE = 0.05
ISSUE_PER_TAP = 10  # exp2_rows*: 3 FADD + 4 FFMA + MUFU + FFMA + FADD a tap (loads amortised over the rows)
MUFU_PER_SM_CLOCK = 16
BYTES_PER_PIXEL = 11


def sigma_spatial_for(radius: int) -> float:
    return 20.0 if radius == 12 else radius / 2.0 + 1.0


def scene(height: int, width: int) -> tuple[cupy.ndarray, cupy.ndarray]:
    rng = np.random.default_rng(0)
    import cv2

    guide = cv2.resize(rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8), (width, height),
                       interpolation=cv2.INTER_NEAREST)
    guide = np.clip(cv2.GaussianBlur(guide, (0, 0), 2) + rng.normal(0, 6, guide.shape), 0, 255).astype(np.uint8)
    disparity = cv2.GaussianBlur(guide[..., 1].astype(np.float32) / 255, (0, 0), 3)
    return cupy.asarray(disparity), cupy.asarray(guide)


def median_ms(fn, runs: int, warmup: int = 10) -> float:
    """Median per-run GPU time: an event between consecutive launches, all queued before one sync, so the
    host's launch overhead is hidden behind the GPU work (no idle gaps counted as kernel time)."""
    for _ in range(warmup):
        fn()
    events = [cupy.cuda.Event() for _ in range(runs + 1)]
    events[0].record()
    for i in range(runs):
        fn()
        events[i + 1].record()
    events[-1].synchronize()
    return float(np.median([cupy.cuda.get_elapsed_time(a, b) for a, b in zip(events, events[1:])]))


def device_rates() -> tuple[str, float, str, float]:
    """(name, memory bytes/s, where the figure came from, FP32 lane-instructions/s) from the device itself."""
    device = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(device.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    try:
        attrs = device.attributes
    except Exception:  # an attribute this driver no longer knows
        attrs = {"MultiProcessorCount": props["multiProcessorCount"]}
    sms = attrs["MultiProcessorCount"]
    clock_khz = attrs.get("ClockRate") or props.get("clockRate") or 0
    mem_khz = attrs.get("MemoryClockRate") or props.get("memoryClockRate") or 0
    bus_bits = attrs.get("GlobalMemoryBusWidth") or props.get("memoryBusWidth") or 0
    if mem_khz and bus_bits:
        bandwidth, source = 2.0 * mem_khz * 1e3 * bus_bits / 8, "attributes"
    else:  # CUDA 13 dropped the clock attributes on some drivers: measure a large device-to-device copy
        a = cupy.empty(1 << 28, cupy.uint8)
        b = cupy.empty_like(a)
        ms = median_ms(lambda: b.__setitem__(Ellipsis, a), 20, warmup=3)
        bandwidth, source = 2.0 * a.nbytes / (ms * 1e-3), "measured copy"
    if not clock_khz:
        clock_khz = 1.98e6  # H100 SXM / H200 boost clock (a floor takes the highest), if the attribute is missing
    fp32_lanes_per_sm = 128  # Volta..Hopper: 4 sub-partitions x 32 FP32 lanes
    return name, bandwidth, source, sms * fp32_lanes_per_sm * clock_khz * 1e3


def kornia_timer(disparity: cupy.ndarray, guide: cupy.ndarray, radius: int, sigma_spatial: float):
    """A callable running kornia.filters.joint_bilateral_blur on the same data, or a reason string."""
    try:
        import kornia
        import torch
    except Exception as exc:  # not installed here: that is fine
        return f"n/a ({exc.__class__.__name__})"
    d = torch.as_tensor(disparity, device="cuda")[None, None]
    g = torch.as_tensor(guide, device="cuda").permute(2, 0, 1)[None].float() / 255
    k = 2 * radius + 1

    def run():
        kornia.filters.joint_bilateral_blur(d, g, (k, k), SIGMA_RANGE, (sigma_spatial, sigma_spatial),
                                            border_type="reflect", color_distance_type="l2")
    try:
        run()
        torch.cuda.synchronize()
    except Exception as exc:  # typically out of memory: kornia unfolds the (2r+1)^2 window
        torch.cuda.empty_cache()
        return f"failed ({exc.__class__.__name__})"
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per kernel (≥ 100)")
    parser.add_argument("--kornia-runs", type=int, default=20, help="kornia is slow and memory-hungry")
    args = parser.parse_args()
    if not cupy.cuda.is_available():
        print("no CUDA GPU: cupy.cuda.is_available() is False")
        return
    name, bandwidth, source, fp32_rate = device_rates()
    print(f"{name}: memory {bandwidth / 1e9:.0f} GB/s ({source}), FP32 {fp32_rate / 1e12:.1f} T lane-ops/s; "
          f"CuPy {cupy.__version__}; medians of {args.runs} CUDA-event timings (kornia: {args.kornia_runs})\n")
    print(f"default variant: {DEFAULT_RANGE_VARIANT}\n")
    names = " | ".join(f"{v} ms" for v in RANGE_VARIANTS)
    print(f"| size | r | {names} | global ms | kornia ms | floor ms (mem / MUFU / issue) | max rel diff |")
    print("| --- | ---: | " + "---: | " * (len(RANGE_VARIANTS) + 4))
    for width, height in SIZES:
        disparity, guide = scene(height, width)
        out = cupy.empty_like(disparity)
        for radius in RADII:
            ss = sigma_spatial_for(radius)
            expected = cupy.asarray(joint_bilateral(cupy.asnumpy(disparity), cupy.asnumpy(guide), radius, ss,
                                                    SIGMA_RANGE, backend="cpu"))
            times, diff = [], 0.0
            for variant in RANGE_VARIANTS:
                times.append(median_ms(lambda: launch(disparity, guide, out, radius, ss, SIGMA_RANGE, variant=variant),
                                       args.runs))
                diff = max(diff, float(cupy.abs(out - expected).max() / cupy.abs(expected).max()))
            plain = median_ms(lambda: launch_global(disparity, guide, out, radius, ss, SIGMA_RANGE), args.runs)
            diff = max(diff, float(cupy.abs(out - expected).max() / cupy.abs(expected).max()))
            timer = kornia_timer(disparity, guide, radius, ss)
            kornia_ms = f"{median_ms(timer, args.kornia_runs, warmup=2):.3f}" if callable(timer) else timer
            taps = width * height * (2 * radius + 1) ** 2
            floor_mem = BYTES_PER_PIXEL * width * height / bandwidth * 1e3
            floor_mufu = taps / (fp32_rate / 128 * MUFU_PER_SM_CLOCK) * 1e3
            floor_issue = ISSUE_PER_TAP * taps / fp32_rate * 1e3
            cells = " | ".join(f"{t:.3f}" for t in times)
            print(f"| {width}x{height} | {radius} | {cells} | {plain:.3f} | {kornia_ms} | "
                  f"{floor_mem:.3f} / {floor_mufu:.3f} / {floor_issue:.3f} | {diff:.1e} |")
    live_mode_table(args.runs)


def live_mode_table(runs: int) -> None:
    """Live mode (the default preset's refinement) end to end from a network-sized map, CuPy in and out:
    area-downsample the frame to 160 px, the filter there (r = 4, σs = 3), joint bilateral upsampling.
    Wall time of the whole call (host dispatch included: the steps are small), and its largest difference
    from the CPU path (the gpu tests hold it under 1e-3)."""
    import time

    import cv2

    from kernels.bilateral import refine_live

    print("\n| size | live mode, wall ms (median) | GPU ms (events) | max abs diff vs CPU |")
    print("| --- | ---: | ---: | ---: |")
    for width, height in SIZES:
        disparity, guide = scene(height, width)
        network = cupy.asarray(cv2.resize(cupy.asnumpy(disparity), (320, 192), interpolation=cv2.INTER_AREA))

        def call():
            return refine_live(network, guide, work_width=160, radius=4, sigma_spatial=3.0, sigma_range=SIGMA_RANGE)

        gpu_ms = median_ms(call, runs)
        walls = []
        for _ in range(runs):
            started = time.perf_counter()
            call()
            cupy.cuda.get_current_stream().synchronize()
            walls.append((time.perf_counter() - started) * 1e3)
        cpu = refine_live(cupy.asnumpy(network), cupy.asnumpy(guide), work_width=160, radius=4, sigma_spatial=3.0,
                          sigma_range=SIGMA_RANGE, backend="cpu")
        diff = float(np.abs(cupy.asnumpy(call()) - cpu).max())
        print(f"| {width}x{height} | {np.median(walls):.3f} | {gpu_ms:.3f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
