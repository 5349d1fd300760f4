"""CPU timing of the joint bilateral filter against OpenCV's cv2.ximgproc.jointBilateralFilter, and live mode.

opencv-contrib-python (for cv2.ximgproc) conflicts with the project's opencv-python, so it lives in its own
virtual environment (gitignored). From the repository root:

    python3 -m venv bench/.venv-contrib
    bench/.venv-contrib/bin/pip install numpy numba opencv-contrib-python
    PYTHONPATH=. bench/.venv-contrib/bin/python bench/bench_refine_cpu.py

Without cv2.ximgproc (e.g. the project's .venv) it still times this filter and live mode. Runs of the two
filters are interleaved and the medians compared, so a busy machine slows both alike and the ratio holds.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numba  # noqa: E402

from kernels.bilateral import joint_bilateral, refine_live  # noqa: E402
from stream.bench import cpu_name  # noqa: E402  # the CPU's model, also on ARM

RADIUS, SIGMA_SPATIAL, SIGMA_RANGE = 12, 20.0, 0.05  # the seed's 25x25 window


def scene(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A natural-looking guide (smooth colour regions with texture and edges) and a matching disparity."""
    rng = np.random.default_rng(seed)
    guide = cv2.resize(rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8), (width, height),
                       interpolation=cv2.INTER_NEAREST)
    guide = cv2.GaussianBlur(guide, (0, 0), 2)
    guide = np.clip(guide + rng.normal(0, 6, guide.shape), 0, 255).astype(np.uint8)
    disparity = cv2.GaussianBlur(guide[..., 1].astype(np.float32) / 255, (0, 0), 3)
    return disparity, guide


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main() -> None:
    has_ximgproc = hasattr(cv2, "ximgproc")
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; numba {numba.__version__} "
          f"({numba.get_num_threads()} threads), OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads)\n")
    print(f"Joint bilateral, r={RADIUS} (25x25 window), σs={SIGMA_SPATIAL:g} px, σr={SIGMA_RANGE:g}:\n")
    print("| size | this CPU path, exact, float32 (ms) | ximgproc, 8-bit guide and 8-bit disparity (ms) | speed-up "
          "| ximgproc, float32 guide and disparity (ms) | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for height, width in ((480, 640), (720, 1280)):
        disparity, guide = scene(height, width)
        ours = lambda: joint_bilateral(  # noqa: E731
            disparity, guide, RADIUS, SIGMA_SPATIAL, SIGMA_RANGE, backend="cpu")
        ours()  # compile / load the Numba cache
        if not has_ximgproc:
            print(f"| {width}x{height} | {median_ms(ours, 5):.1f} | (no cv2.ximgproc here) | | | |")
            continue
        # The same 25x25 window. ximgproc wants guide and source of one depth: its fast 8-bit path quantises
        # the disparity to 256 levels (sigmaColor in 0..255 units); its float path takes the guide in [0, 1].
        # Either way it weighs colour by a table of the L1 colour distance and pads the border by reflection:
        # close to, not the same as, the exact filter.
        disparity8, joint_f = (disparity * 255).astype(np.uint8), guide.astype(np.float32) / 255
        theirs8 = lambda: cv2.ximgproc.jointBilateralFilter(guide, disparity8, 2 * RADIUS + 1,  # noqa: E731
                                                            SIGMA_RANGE * 255, SIGMA_SPATIAL)
        theirs_f = lambda: cv2.ximgproc.jointBilateralFilter(joint_f, disparity, 2 * RADIUS + 1,  # noqa: E731
                                                             SIGMA_RANGE, SIGMA_SPATIAL)
        theirs8(), theirs_f()
        times: dict[str, list[float]] = {"ours": [], "8u": [], "f32": []}
        for _ in range(5):  # interleaved
            times["ours"].append(median_ms(ours, 1))
            times["8u"].append(median_ms(theirs8, 1))
            times["f32"].append(median_ms(theirs_f, 1))
        o, t8, tf = (float(np.median(times[k])) for k in ("ours", "8u", "f32"))
        print(f"| {width}x{height} | {o:.1f} | {t8:.1f} | {t8 / o:.2f}x | {tf:.1f} | {tf / o:.2f}x |")

    print("\nLive mode (refine_live, default parameters: the live-cpu and default presets' refinement); 1 thread too, "
          "since on a shared machine the slower of two threads sets a parallel call's time. CPU: the process's CPU "
          "time per call (at 1 thread the steadiest figure on a shared machine):\n")
    print("| frame | network disparity | threads | median (ms) | p95 (ms) | CPU median (ms) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    all_threads = numba.get_num_threads()
    for (height, width), low_sizes, runs in (((480, 640), ((160, 128), (320, 192)), 200),
                                             ((1080, 1920), ((320, 192),), 60)):
        disparity, guide = scene(height, width, seed=1)
        for low_w, low_h in low_sizes:
            low = cv2.resize(disparity, (low_w, low_h), interpolation=cv2.INTER_AREA)
            for threads in sorted({all_threads, 1}, reverse=True):
                numba.set_num_threads(threads)
                refine_live(low, guide, backend="cpu")
                times, cpu = [], []
                for _ in range(runs):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    refine_live(low, guide, backend="cpu")
                    times.append(time.perf_counter() - start)
                    cpu.append(time.process_time() - start_cpu)
                print(f"| {width}x{height} | {low_w}x{low_h} | {threads} | {np.median(times) * 1e3:.2f} "
                      f"| {np.percentile(times, 95) * 1e3:.2f} | {np.median(cpu) * 1e3:.2f} |")
    numba.set_num_threads(all_threads)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
