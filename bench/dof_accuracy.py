"""CPU depth of field against the float64 reference on frames a real run rendered, as a markdown table.

Whole-frame error figures dilute what a user sees at a subject's outline (a fringe, stair steps), so the
table also gives the error within a band outside the sharp subject (`silhouette_band`). The reference
loops over every offset of the largest disc: about 30 s a 640x480 frame at 12 px, 4 minutes at 1080p.

Usage: python bench/dof_accuracy.py FRAMES.npz [...] [--frames 2] [--band 12] [--region Y0:Y1,X0:X1] [--scales 9,5]
       [--exact-far]
FRAMES.npz: render inputs kept by bench/record_render_inputs.py (the first and last of --frames are used).
--region adds the error's mean, p99 and max within that rectangle (a seam seen on one frame).
--scales gives a row per reduction factor s instead of the plan's own (one reference per frame for all): the
candidates of a change to `kernels.dof.reduction_scale`, compared on the same frames.
--exact-far gives each row twice: the far field handed over to the blocks at s (live runs), then at 2 s (exact_far).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kernels.dof import plan  # noqa: E402
from kernels.dof_cpu import depth_of_field_cpu  # noqa: E402
from kernels.dof_reference import depth_of_field_reference, silhouette_band  # noqa: E402


def frame_indices(count: int, wanted: int) -> list[int]:
    """`wanted` frames spread over the recording, first and last included."""
    return sorted({round(i * (count - 1) / max(wanted - 1, 1)) for i in range(min(wanted, count))})


def region(text: str) -> tuple[slice, slice]:
    """'Y0:Y1,X0:X1' (end excluded) as the rectangle's slices."""
    try:
        rows, cols = (tuple(int(v) for v in part.split(":")) for part in text.split(","))
        return slice(*rows), slice(*cols)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected Y0:Y1,X0:X1 (e.g. 304:321,368:385), got {text!r}") from None


def scales(text: str) -> list[int]:
    """--scales' comma-separated reduction factors."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected reduction factors from 1 up, comma-separated (e.g. 12,9,5), "
                                         f"got {text!r}")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recorded", type=Path, nargs="+")
    parser.add_argument("--frames", type=int, default=2, help="frames per file, spread over it (default 2)")
    parser.add_argument("--band", type=float, default=12.0, help="band width outside the subject, px (default 12)")
    parser.add_argument("--region", type=region, help="also the error within Y0:Y1,X0:X1 (end excluded)")
    parser.add_argument("--scales", type=scales, help="reduction factors to compare, e.g. 12,9,5 (default: the plan's)")
    parser.add_argument("--exact-far", action="store_true", help="each row with exact_far off, then on")
    args = parser.parse_args()
    for path in args.recorded:
        if not path.is_file():
            parser.error(f"{path} not found; make it with bench/record_render_inputs.py")
    region_head = " region: mean | region: p99 | region: max |" if args.region else ""
    print(f"| frames | frame | blur (px) | s | whole: mean | whole: p99 | whole: max | band {args.band:g} px: mean "
          f"| band: p99 | band: max |{region_head}")
    print("| --- | --- | --- | --- |" + " ---: |" * (6 + 3 * bool(args.region)))
    for path in args.recorded:
        with np.load(path) as recorded:
            for i in frame_indices(len(recorded["focus"]), args.frames):
                image, disparity = recorded["images"][i], recorded["disparities"][i]
                focus, blur = float(recorded["focus"][i]), float(recorded["blur"][i])
                boost = float(recorded["highlight_boost"][i])
                started = time.perf_counter()
                reference = depth_of_field_reference(image, disparity, focus, blur, boost, as_float=True)
                print(f"  reference of {path.stem} #{i}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
                band = silhouette_band(disparity, focus, blur, args.band)
                height, width = disparity.shape
                for s in args.scales or [plan(disparity.shape, focus, blur, boost).scale]:
                    for exact_far in (False, True) if args.exact_far else (False,):
                        error = np.abs(depth_of_field_cpu(image, disparity, focus, blur, highlight_boost=boost,
                                                          scale=s, exact_far=exact_far) - reference)
                        label = f"{path.stem} #{i}" + (f", exact_far {'on' if exact_far else 'off'}"
                                                       if args.exact_far else "")
                        print(f"| {label} | {width}x{height} | {blur:g} | {s} | "
                              f"{error_figures(error, band, args.region)}", flush=True)
    return 0


def error_figures(error: np.ndarray, band: np.ndarray, inside: tuple[slice, slice] | None) -> str:
    """The table's cells from the whole frame's mean on: whole frame, band, and the region where given."""
    in_band = error[band]
    band_figures = (f"{in_band.mean():.2f} | {np.percentile(in_band, 99):.1f} | {in_band.max():.0f}" if in_band.size
                    else "- | - | -")
    region_figures = ""
    if inside:
        part = error[inside]
        region_figures = f" {part.mean():.2f} | {np.percentile(part, 99):.1f} | {part.max():.1f} |"
    return f"{error.mean():.3f} | {np.percentile(error, 99):.1f} | {error.max():.1f} | {band_figures} |{region_figures}"


if __name__ == "__main__":
    sys.exit(main())
