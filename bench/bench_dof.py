"""CPU depth of field: ms per frame (median of many runs) at 640x480 and 1280x720, as a markdown table.

Scenes: the synthetic portrait of `stream.synthetic` (a subject in focus before a receding room: a
realistic mix of in-focus, mid and far CoC), and a worst case where a smooth random disparity puts
much of the frame at CoC below the reduction factor (those pixels are gathered at full resolution).
Usage: python bench/bench_dof.py [--runs 100] [--blur 16] [--recorded FRAMES.npz ...]
--recorded adds rows for frames a real run rendered (bench/record_render_inputs.py), at their own size, blur
and focus, timed in turn (each of --runs rounds renders every frame once).
On a shared virtual machine the median moves with the neighbours' load; min shows the quiet machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

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


def time_recorded(path: Path, runs: int) -> tuple[str, float, int, float, float, float]:
    """(frame size, blur, reduction factor, median, p90, min ms) over every recorded frame, `runs` rounds."""
    with np.load(path) as recorded:
        frames = [(recorded["images"][i], recorded["disparities"][i], float(recorded["focus"][i]),
                   float(recorded["blur"][i]), float(recorded["highlight_boost"][i]))
                  for i in range(len(recorded["focus"]))]
    for image, disparity, focus, blur, boost in frames[:5]:  # JIT and thread-pool warm-up
        depth_of_field_cpu(image, disparity, focus, blur, highlight_boost=boost)
    samples = []
    for _ in range(runs):
        for image, disparity, focus, blur, boost in frames:
            t0 = time.perf_counter()
            depth_of_field_cpu(image, disparity, focus, blur, highlight_boost=boost)
            samples.append((time.perf_counter() - t0) * 1e3)
    height, width = frames[0][0].shape[:2]
    blur = frames[0][3]
    s = plan((height, width), frames[0][2], blur, 0.0).scale
    return (f"{width}x{height}", blur, s, float(np.median(samples)), float(np.percentile(samples, 90)),
            float(np.min(samples)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--blur", type=float, default=16.0, help="max CoC radius in px")
    parser.add_argument("--recorded", type=Path, nargs="*", default=[],
                        help="frames recorded at the render stage (bench/record_render_inputs.py)")
    args = parser.parse_args()
    for path in args.recorded:
        if not path.is_file():
            parser.error(f"{path} not found; make it with bench/record_render_inputs.py")
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
    for path in args.recorded:
        size, blur, s, median, p90, best = time_recorded(path, max(1, args.runs // 10))
        print(f"| recorded: {path.stem} | {size} | {blur:g} | {s} | {median:.1f} | {p90:.1f} | {best:.1f} |")


if __name__ == "__main__":
    main()
