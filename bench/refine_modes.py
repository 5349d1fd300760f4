"""The refinement modes with the real network, against ground truth, at several frame sizes.

    .venv/bin/python bench/refine_modes.py [--sizes 640x480,1920x1080] [--frames 8]

The synthetic portrait (exact disparity per frame) goes through the default preset's network with
refinement off; each mode then refines the same network output. The disparity is relative, so each
result is fitted to the truth by scale and shift before the RMSE, over all pixels and within 3 px
(scaled with the frame height) of the true depth edges. Prints a markdown table; the first two
frames are left out (the normaliser's range settles).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kernels.bilateral import joint_bilateral, refine_live  # noqa: E402
from stream.app import build  # noqa: E402
from stream.config import load_config  # noqa: E402
from stream.frame import Frame  # noqa: E402
from stream.sinks import Sink  # noqa: E402
from stream.stages import upsample  # noqa: E402


class _Collect(Sink):
    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def write(self, frame: Frame) -> None:
        self.frames.append(frame)


def edge_band(truth: np.ndarray, px: int) -> np.ndarray:
    """The pixels within `px` of a true depth edge (also the pipeline test's metric)."""
    edges = cv2.Canny((truth * 255).astype(np.uint8), 10, 30) > 0
    return cv2.dilate(edges.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0


def fitted(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Least-squares scale and shift of a relative disparity onto the truth, before comparing them."""
    a = np.stack([prediction.ravel(), np.ones(prediction.size)], axis=1)
    coef, *_ = np.linalg.lstsq(a, truth.ravel(), rcond=None)
    return prediction * coef[0] + coef[1]


def methods(width: int, height: int):
    yield "bilinear upsampling", lambda d, g: upsample(d, width, height)
    yield "exact filter, r = 12, σs = 20", lambda d, g: joint_bilateral(upsample(d, width, height), g, 12, 20.0, 0.05,
                                                                        backend="cpu")
    for work in (160, 240, 320):
        yield f"live, {work} px, r = 4, σs = 3", lambda d, g, w=work: refine_live(
            d, g, work_width=w, radius=4, sigma_spatial=3.0, sigma_range=0.05, backend="cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="640x480,1920x1080")
    parser.add_argument("--frames", type=int, default=8)
    args = parser.parse_args()
    print("| frame | method | RMSE all | RMSE edges | ms/frame |")
    print("| --- | --- | ---: | ---: | ---: |")
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        sink = _Collect()
        config = load_config("default", {"output.progress": False, "refine.mode": "off", "device": "cpu"})
        build(config, f"synthetic:portrait?size={size}&frames={args.frames}", None, sink=sink).pipeline.run()
        frames = sink.frames[2:]
        for name, refine in methods(width, height):
            refine(frames[0].disparity, frames[0].image)  # compile / warm up
            all_err, edge_err, times = [], [], []
            for frame in frames:
                started = time.perf_counter()
                out = refine(frame.disparity, frame.image)
                times.append(time.perf_counter() - started)
                truth = frame.ground_truth
                band = edge_band(truth, max(3, round(3 * height / 480)))
                error = fitted(out, truth) - truth
                all_err.append(np.sqrt(np.mean(error ** 2)))
                edge_err.append(np.sqrt(np.mean(error[band] ** 2)))
            print(f"| {size} | {name} | {np.mean(all_err):.4f} | {np.mean(edge_err):.4f} | "
                  f"{1e3 * np.median(times):.1f} |")


if __name__ == "__main__":
    main()
