"""CPU depth of field: ms per frame (median of many runs) at 640x480 and 1280x720, as a markdown table.

Scenes: the synthetic portrait of `stream.synthetic` (a subject in focus before a receding room: a
realistic mix of in-focus, mid and far CoC), and a worst case where a smooth random disparity puts
much of the frame at CoC below the reduction factor (those pixels are gathered at full resolution).
Usage: python bench/bench_dof.py [--runs 100] [--blur 16]
On a shared virtual machine the median moves with the neighbours' load; min shows the quiet machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import cv2
import numpy as np

from kernels.dof import plan
from kernels.dof_cpu import depth_of_field_cpu
from stream.synthetic import SUBJECT_DISPARITY, SyntheticPortrait, SyntheticScene


def portrait(width: int, height: int) -> tuple[np.ndarray, np.ndarray, float]:
    image, disparity = SyntheticPortrait(SyntheticScene(width=width, height=height)).render(0)
    return image, disparity.astype(np.float32), SUBJECT_DISPARITY


def worst_case(width: int, height: int) -> tuple[np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(0)
    disparity = cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), 0.02 * width)
    disparity = (disparity - disparity.min()) / (disparity.max() - disparity.min())
    image = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 1.5)
    return image, disparity, 0.5


def time_ms(image, disparity, focus, blur, runs: int) -> tuple[float, float, float]:
    for _ in range(5):  # JIT (cached on disk) and thread-pool warm-up
        depth_of_field_cpu(image, disparity, focus, blur, highlight_boost=1.0)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        depth_of_field_cpu(image, disparity, focus, blur, highlight_boost=1.0)
        samples.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(samples)), float(np.percentile(samples, 90)), float(np.min(samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--blur", type=float, default=16.0, help="max CoC radius in px")
    args = parser.parse_args()
    import numba

    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Numba {numba.__version__} ({numba.get_num_threads()} threads)\n")
    print("| scene | frame | max blur (px) | reduction s | ms/frame (median) | p90 ms | min ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, make in (("synthetic portrait", portrait), ("worst case: random depth", worst_case)):
        for width, height in ((640, 480), (1280, 720)):
            image, disparity, focus = make(width, height)
            s = plan(disparity.shape, focus, args.blur, 1.0).scale
            median, p90, best = time_ms(image, disparity, focus, args.blur, args.runs)
            print(f"| {name} | {width}x{height} | {args.blur:g} | {s} | {median:.1f} | {p90:.1f} | {best:.1f} |")


if __name__ == "__main__":
    main()
