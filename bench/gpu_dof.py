"""GPU depth of field: the CUDA path timed with CUDA events at 1920x1080 (median of >= 100 runs after
warm-up), next to the same frame on the CPU path, as a compact markdown table.

Three GPU figures: one call's latency (events around `render`, synchronised each time, so the host's launch
gaps count), the GPU's own time (calls queued back to back, an event between consecutive calls, the host
hidden behind the GPU), and that time split over the passes (dof_cuda.KERNELS, in launch order).

Needs only CuPy, NumPy, Numba and OpenCV (no network): run from the repository root,
`python bench/gpu_dof.py`, or through `bash bench/gpu_check.sh`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernels import dof_cuda  # noqa: E402
from kernels.dof import plan  # noqa: E402
from kernels.dof_cuda import default_scale, render  # noqa: E402
from stream.synthetic import SUBJECT_DISPARITY, SyntheticPortrait, SyntheticScene  # noqa: E402

REFERENCE_HEIGHT = 480  # the aperture scales with the frame: 16 px at 480p is 36 px at 1080p
PASSES = tuple(name.removeprefix("dof_") for name in dof_cuda.KERNELS)  # the queued time's split, in launch order


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    args = parser.parse_args()
    try:
        import cupy as cp

        if not cp.cuda.is_available():
            raise RuntimeError("cupy.cuda.is_available() is False")
    except Exception as exc:  # ImportError or no device
        print(f"no CUDA GPU: {exc}")
        return 0

    w, h = args.width, args.height
    image, disparity = SyntheticPortrait(SyntheticScene(width=w, height=h)).render(0)
    disparity = disparity.astype(np.float32)
    img_d, disp_d = cp.asarray(image), cp.asarray(disparity)
    out_d = cp.empty_like(img_d)
    name = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    print(f"GPU: {name}, CuPy {cp.__version__}\n")
    print("| kernel | frame | max blur (px) | reduction s | far exact below | GPU ms (median, CUDA events) "
          f"| GPU p90 ms | GPU ms queued ({' / '.join(PASSES)}) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    configs = ((16.0, False), (16.0, True), (8.0, False))  # exact_far: files' and photos' auto
    for blur_480, exact_far in configs:
        blur = blur_480 * h / REFERENCE_HEIGHT
        p = plan((h, w), SUBJECT_DISPARITY, blur, 1.0, default_scale(blur), exact_far=exact_far)
        for _ in range(20):  # compile (first call) and warm-up
            render(img_d, disp_d, p, out_d)
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        samples = []
        for _ in range(args.runs):
            start.record()
            render(img_d, disp_d, p, out_d)
            stop.record()
            stop.synchronize()
            samples.append(cp.cuda.get_elapsed_time(start, stop))
        queued, passes = queued_ms(cp, img_d, disp_d, p, out_d, args.runs)
        print(f"| depth of field (CUDA) | {w}x{h} | {blur:g} | {p.scale} | {'2s' if exact_far else 's'} | "
              f"{np.median(samples):.3f} | "
              f"{np.percentile(samples, 90):.3f} | {queued:.3f} ({' / '.join(f'{t:.3f}' for t in passes)}) |")
    # The CPU path after the GPU table, in a table of its own: on a machine whose Numba cache is cold its first
    # call compiles for a minute, and a time limit reached there must not take the GPU figures with it.
    print("\n| kernel | frame | max blur (px) | far exact below | CPU ms (median of 10) |")
    print("| --- | --- | --- | --- | --- |")
    for blur_480, exact_far in configs:
        blur = blur_480 * h / REFERENCE_HEIGHT
        print(f"| depth of field (CPU) | {w}x{h} | {blur:g} | {'2s' if exact_far else 's'} | "
              f"{cpu_ms(image, disparity, blur, exact_far):.1f} |")
    return 0


def cpu_ms(image: np.ndarray, disparity: np.ndarray, blur: float, exact_far: bool) -> float:
    """Median wall time of the CPU path on the same frame (after one untimed call); NaN where it fails."""
    try:
        from kernels.dof_cpu import depth_of_field_cpu

        def run() -> None:
            depth_of_field_cpu(image, disparity, SUBJECT_DISPARITY, blur, highlight_boost=1.0, exact_far=exact_far)
        run()
        samples = []
        for _ in range(10):
            t0 = time.perf_counter()
            run()
            samples.append((time.perf_counter() - t0) * 1e3)
        return float(np.median(samples))
    except Exception as exc:  # the CPU column is a comparison only
        print(f"(CPU path failed: {exc})")
        return float("nan")


def queued_ms(cp, img_d, disp_d, p, out_d, runs: int) -> tuple[float, list[float]]:
    """Median GPU time of a render and of each pass, all calls queued before one synchronisation."""
    events: list = []

    def launch(name, grid, block, args):
        dof_cuda._cupy_launch(name, grid, block, args)
        event = cp.cuda.Event()
        event.record()
        events.append(event)

    buf = dof_cuda._cupy_buffers(tuple(disp_d.shape), p.low_shape)
    for _ in range(5):
        dof_cuda.run_passes(img_d, disp_d, p, buf, out_d, launch)
    cp.cuda.get_current_stream().synchronize()
    events.clear()
    first = cp.cuda.Event()
    first.record()
    for _ in range(runs):
        dof_cuda.run_passes(img_d, disp_d, p, buf, out_d, launch)
    events[-1].synchronize()
    n = len(dof_cuda.KERNELS)  # an event after each pass: n a render (3 had been assumed when there were 5)
    marks = [first] + events
    per_pass = [[cp.cuda.get_elapsed_time(marks[n * i + j], marks[n * i + j + 1]) for i in range(runs)]
                for j in range(n)]
    totals = [cp.cuda.get_elapsed_time(marks[n * i], marks[n * i + n]) for i in range(runs)]
    return float(np.median(totals)), [float(np.median(t)) for t in per_pass]


if __name__ == "__main__":
    raise SystemExit(main())
