"""Record what the renderer really receives in a run: frame, refined disparity, focus, blur, highlight boost.

The synthetic scenes of bench_dof.py have exact depth; a real run renders the network's refined depth,
whose CoCs spread differently (softer edges, a body at mid CoC behind a focused face), and the renderer's
cost follows its CoCs. This runs `depthcam run INPUT` with a preset and keeps the render stage's inputs of
the first frames, for `bench_dof.py --recorded`.

Usage: python bench/record_render_inputs.py INPUT OUT.npz [--frames 30] [--config default] [depthcam run options]
INPUT: anything `depthcam run` takes; the built-in sample clip is written by `depthcam demo` (out/sample_astronaut.mp4),
and a 1080p clip by e.g. `depthcam run "synthetic:portrait?size=1920x1080&frames=40" -o clip.mp4 --refine off --blur 0`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import kernels  # noqa: E402
from stream import cli  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("output", type=Path)
    parser.add_argument("--frames", type=int, default=30, help="how many frames to keep (the first ones)")
    parser.add_argument("--config", default="default")
    args, run_options = parser.parse_known_args()

    kept: list[tuple] = []
    render = kernels.depth_of_field

    def recording_render(image, disparity, focus, max_blur_px, **options):
        # the render stage calls kernels.depth_of_field through the module, so replacing it here sees every call
        if len(kept) < args.frames:
            kept.append((np.array(image), np.array(disparity, np.float32), float(focus), float(max_blur_px),
                         float(options.get("highlight_boost", 0.0))))
        return render(image, disparity, focus, max_blur_px, **options)

    kernels.depth_of_field = recording_render
    try:
        with tempfile.TemporaryDirectory() as folder:
            status = cli.main(["run", args.input, "-o", str(Path(folder) / "render.mp4"), "--config", args.config,
                               "--device", "cpu", "--no-progress", *run_options])
    finally:
        kernels.depth_of_field = render
    if status != 0 or not kept:
        print(f"record_render_inputs: the run failed (status {status}) or rendered nothing", file=sys.stderr)
        return status or 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, images=np.stack([k[0] for k in kept]), disparities=np.stack([k[1] for k in kept]),
                        focus=np.array([k[2] for k in kept]), blur=np.array([k[3] for k in kept]),
                        highlight_boost=np.array([k[4] for k in kept]))
    height, width = kept[0][0].shape[:2]
    print(f"kept {len(kept)} frames of {width}x{height}, blur {kept[0][3]:g} px, in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
