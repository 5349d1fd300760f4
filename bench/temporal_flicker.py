"""Depth flicker in video from a still camera: how much the refined disparity, the blur radius and the rendered
picture change from frame to frame where nothing moves, with and without kernels/temporal.py's filter.

Two clips, each H.264-encoded (yuv420p, CRF 23) and decoded again, so the network sees compression as a camera's file:
  still: the built-in sample's first picture (scikit-image's astronaut, 640x480) held, with fresh Gaussian sensor
         noise every frame (sigma 3 levels of 255);
  moving: the built-in sample clip itself (pans and pushes in), with the same noise: what a filter must not smear.
The real pipeline's stages run on them (the default preset on the CPU, the configured model; sync depth, every frame
its own): network, normalisation, refinement, [temporal filter of the refined map], focus, render.

Figures: flicker = mean over frames of the mean |x(t) − x(t−1)| (the still clip: every pixel is still); disparity
on [0, 1], blur radius (signed CoC) in pixels, luma in levels of 255; "background": pixels with |CoC| > 2 px.
"frozen depth" renders every frame with the still clip's mean refined depth and focus: the output flicker from the
input's noise alone, the floor; "fixed network" refines the mean network disparity with each frame's own picture: the
refinement's own flicker, which no filter of the network's map removed (such a filter, before the refinement, was
retired for this one). "std over time, p99 bg": the 99th percentile over the background of each pixel's standard
deviation over the clip. Smear (moving clip): the filtered refined disparity against the unfiltered one of the same
frame, everywhere and at depth edges (the 5% largest gradients), in CoC pixels.

Usage: python bench/temporal_flicker.py [--frames 48] [--smoothing 0.3 0.15] [--threshold 8] [--cost]
[--noise 3] [--crf -1]
(DEPTHCAM_MODELS as for depthcam; the run takes a few minutes on two busy cores)
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kernels.dof_reference import signed_coc  # noqa: E402
from kernels.temporal import MOTION_THRESHOLD, RefinedFilter  # noqa: E402
from stream.frame import Frame  # noqa: E402
from stream.sample import SAMPLE_FPS, sample_frames  # noqa: E402

NOISE_SIGMA = 3.0  # levels of 255: a webcam indoors
CRF = 23  # libx264's default quality


def noisy(frames, sigma: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    for image in frames:
        yield np.clip(image + rng.normal(0.0, sigma, image.shape), 0, 255).astype(np.uint8)


def through_h264(frames, fps: int = SAMPLE_FPS, crf: int = CRF) -> list[np.ndarray]:
    """The frames as a camera's H.264 file gives them back: encoded (4:2:0) and decoded (crf < 0: as they are, a
    webcam's raw frames)."""
    import av

    if crf < 0:
        return list(frames)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        with av.open(str(path), "w") as container:
            stream = None
            for image in frames:
                if stream is None:
                    stream = container.add_stream("libx264", rate=fps)
                    stream.height, stream.width = image.shape[:2]
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": str(crf), "preset": "veryfast"}
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        with av.open(str(path)) as container:
            return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def luma(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)


def flicker(maps: list[np.ndarray], mask: np.ndarray | None = None) -> float:
    """Mean over frames of the mean |x(t) − x(t−1)| (over `mask` where given)."""
    steps = [np.abs(b.astype(np.float64) - a) for a, b in zip(maps, maps[1:])]
    return float(np.mean([s[mask].mean() if mask is not None else s.mean() for s in steps]))


class Pipeline:
    """The default preset's stages on the CPU, fed one frame at a time in order (as a sync file run)."""

    def __init__(self, config_name: str = "default") -> None:
        from stream.app import build_stages, load_estimator, prepare_kernels
        from stream.config import load_config

        self.config = dataclasses.replace(load_config(config_name), device="cpu")
        self.config.normalise.pixel_smoothing = 1.0  # the stages' per-frame depth: each run sets its own filter
        self.estimator = load_estimator(self.config, progress=False)
        prepare_kernels(self.config, "cpu")
        self._build_stages = build_stages

    def stages(self):
        from stream.focus import FocusController

        render = self.config.render
        focus = FocusController(render.focus, None, render.focus_smoothing, render.face_interval)
        return self._build_stages(self.config, self.estimator, focus, "cpu", threading.Event(), file_run=True)

    def depth(self, images: list[np.ndarray], fps: int) -> list[Frame]:
        """The network's normalised disparity of every frame (and its cut test), as the depth stage makes it."""
        depth_stage = self.stages()[0]
        frames = [Frame(i, 0, image, pts_seconds=i / fps) for i, image in enumerate(images)]
        for frame in frames:
            depth_stage.process([frame])
        return frames

    def finish(self, depths: list[Frame], temporal: RefinedFilter | None,
               frozen: np.ndarray | None = None, frozen_focus: float | None = None,
               network: np.ndarray | None = None) -> dict[str, list]:
        """Refinement and render of the depth stage's frames, with the temporal filter in the refine stage where
        given (`frozen`: every frame rendered with this refined disparity and focus instead; `network`: every frame
        refined from this network disparity, guided by its own picture)."""
        _, refine, render = self.stages()
        kept: dict[str, list] = {"disparity": [], "refined": [], "focus": [], "output": [], "seconds": []}
        if temporal is not None:
            refine.temporal = Timed(temporal, kept["seconds"])
        for old in depths:
            frame = Frame(old.index, 0, old.image, pts_seconds=old.pts_seconds, extra=dict(old.extra))
            frame.disparity = old.disparity if network is None else network
            refine.process([frame])
            if frozen is not None:
                frame.refined = frozen
                render.focus.fixed = frozen_focus
            render.process([frame])
            for key in ("disparity", "refined", "focus", "output"):
                kept[key].append(getattr(frame, key))
        return kept


class Timed:
    """A RefinedFilter in the refine stage, its own time a frame noted."""

    def __init__(self, inner: RefinedFilter, seconds: list[float]) -> None:
        self.inner, self.seconds = inner, seconds

    def reset(self) -> None:
        self.inner.reset()

    def __call__(self, *args):
        started = time.perf_counter()
        out = self.inner(*args)
        self.seconds.append(time.perf_counter() - started)
        return out


def coc_maps(run: dict[str, list], blur_px: float) -> list[np.ndarray]:
    return [signed_coc(r, f, blur_px) for r, f in zip(run["refined"], run["focus"])]


def pulsing(maps: list[np.ndarray], mask: np.ndarray) -> float:
    """The 99th percentile over `mask` of each pixel's standard deviation over time: the places that breathe most."""
    return float(np.quantile(np.std(np.stack(maps), axis=0)[mask], 0.99))


def depth_edges(disparity: np.ndarray) -> np.ndarray:
    """The 5% of pixels with the largest disparity gradient."""
    gy, gx = np.gradient(disparity.astype(np.float64))
    edges = np.hypot(gx, gy)
    return edges >= np.quantile(edges, 0.95)


def still_figures(run: dict[str, list], blur_px: float, background: np.ndarray,
                  edges: np.ndarray) -> dict[str, float]:
    outputs = [luma(o) for o in run["output"]]
    cocs = coc_maps(run, blur_px)
    return {
        "refined disparity, depth edges": flicker(run["refined"], edges),
        "CoC px, depth edges": flicker(cocs, edges),
        "CoC px std over time, p99 edges": pulsing(cocs, edges),
        "disparity (network, model size)": flicker(run["disparity"]),
        "refined disparity": flicker(run["refined"]),
        "refined disparity, background": flicker(run["refined"], background),
        "CoC px, background": flicker(cocs, background),
        "CoC px std over time, p99 bg": pulsing(cocs, background),
        "focus": flicker([np.array(f) for f in run["focus"]]),
        "output luma": flicker(outputs),
        "output luma, background": flicker(outputs, background),
        "output luma std over time, p99 bg": pulsing(outputs, background),
    }


def smear_figures(plain: dict[str, list], filtered: dict[str, list], blur_px: float) -> dict[str, float]:
    """The filtered refined disparity against the plain one of the same frame (CoC px at the plain run's focus)."""
    errors, edge_errors, worst = [], [], []
    for ref, got, focus in zip(plain["refined"], filtered["refined"], plain["focus"]):
        span = max(focus, 1.0 - focus)
        error = np.abs(got.astype(np.float64) - ref) * blur_px / span
        edges = depth_edges(ref)
        errors.append(error.mean())
        edge_errors.append(error[edges].mean())
        worst.append(np.quantile(error, 0.99))
    return {"mean |error| CoC px": float(np.mean(errors)), "at depth edges": float(np.mean(edge_errors)),
            "p99 (mean over frames)": float(np.mean(worst)), "p99 worst frame": float(np.max(worst))}


def show(title: str, columns: dict[str, dict[str, float]]) -> None:
    names = list(columns)
    print(f"\n{title}")
    print(f"{'':34s}" + "".join(f"{n:>16s}" for n in names))
    for row in next(iter(columns.values())):
        print(f"{row:34s}" + "".join(f"{columns[n][row]:16.4f}" for n in names))


def cost(smoothing: float, repeats: int = 200) -> None:
    """The filter's time a frame at 640x480 and 1080p (interleaved): a still picture with fresh noise (sigma 3, the
    common case: one pass at the still weight) and fresh random pictures (every pixel moved: the worst case)."""
    rng = np.random.default_rng(1)
    motion_shape = (192, 320)
    sizes = {"640x480": (480, 640), "1920x1080": (1080, 1920)}
    pictures = {k: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for k, (h, w) in sizes.items()}
    refined = {k: rng.random((h, w), dtype=np.float32) for k, (h, w) in sizes.items()}
    cases = [(f"{kind} {k}", k, kind) for k in sizes for kind in ("still", "moving")]
    filters = {name: RefinedFilter(smoothing) for name, _, _ in cases}
    times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for i in range(repeats):
        for name, size, kind in cases:
            picture = pictures[size]
            if kind == "still":
                image = np.clip(picture + rng.normal(0, NOISE_SIGMA, picture.shape), 0, 255).astype(np.uint8)
            else:
                image = rng.integers(0, 256, picture.shape, dtype=np.uint8)
            started = time.perf_counter()
            filters[name](refined[size], image, motion_shape, i / 30)
            times[name].append(time.perf_counter() - started)
    print(f"\ncost a frame, smoothing {smoothing:g} (the refined map at the frame's size), ms: " + ", ".join(
        f"{k} median {1e3 * np.median(v[1:]):.2f} p90 {1e3 * np.quantile(v[1:], 0.9):.2f}" for k, v in times.items()))


def still_clip(pipeline: Pipeline, still: list[np.ndarray], filters: dict, blur_px: float) -> None:
    print(f"input luma flicker (still clip, levels of 255): {flicker([luma(i) for i in still]):.3f}")
    depths = pipeline.depth(still, SAMPLE_FPS)
    plain = pipeline.finish(depths, None)
    mean_refined = np.mean(plain["refined"], axis=0).astype(np.float32)
    mean_focus = float(np.mean(plain["focus"]))
    background = np.abs(signed_coc(mean_refined, mean_focus, blur_px)) > 2.0
    edges = depth_edges(mean_refined)
    print(f"background (|CoC| > 2 px): {background.mean():.0%} of the picture; depth edges: the mean refined map's")
    columns = {"per frame": still_figures(plain, blur_px, background, edges)}
    frozen = pipeline.finish(depths, None, frozen=mean_refined, frozen_focus=mean_focus)
    columns["frozen depth"] = still_figures(frozen, blur_px, background, edges)
    mean_network = np.mean([f.disparity for f in depths], axis=0).astype(np.float32)
    columns["fixed network"] = still_figures(pipeline.finish(depths, None, network=mean_network), blur_px, background,
                                                  edges)
    for name, make in filters.items():
        columns[name] = still_figures(pipeline.finish(depths, make()), blur_px, background, edges)
    show("still clip: flicker (mean |frame-to-frame change|)", columns)


def moving_clip(pipeline: Pipeline, moving: list[np.ndarray], filters: dict, blur_px: float) -> None:
    depths = pipeline.depth(moving, SAMPLE_FPS)
    plain = pipeline.finish(depths, None)
    smear = {}
    for name, make in filters.items():
        filtered = pipeline.finish(depths, make())
        smear[name] = smear_figures(plain, filtered, blur_px)
        smear[name]["filter ms a frame (median)"] = 1e3 * float(np.median(filtered["seconds"]))
    show("moving clip (the sample's pan): filtered vs per-frame refined depth", smear)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48, help="frames of the still clip (the moving one: 96)")
    parser.add_argument("--smoothing", type=float, nargs="+", default=[0.3, 0.15])
    parser.add_argument("--threshold", type=float, default=MOTION_THRESHOLD)
    parser.add_argument("--config", default="default")
    parser.add_argument("--noise", type=float, default=NOISE_SIGMA, help="sensor noise sigma, levels of 255")
    parser.add_argument("--crf", type=int, default=CRF, help="H.264 quality (-1: raw frames, a webcam's)")
    parser.add_argument("--clips", nargs="+", choices=("still", "moving"), default=["still", "moving"])
    parser.add_argument("--cost", action="store_true", help="only the filter's cost a frame")
    args = parser.parse_args()
    if args.cost:
        for smoothing in args.smoothing:
            cost(smoothing)
        return 0

    pipeline = Pipeline(args.config)
    blur_px = pipeline.config.render.blur * 480 / pipeline.config.render.reference_height
    print(f"blur {blur_px:g} px; noise sigma {args.noise:g}, " + (f"CRF {args.crf}" if args.crf >= 0 else "raw frames"))
    filters = {f"refined {s:g}": (lambda s=s: RefinedFilter(s, args.threshold)) for s in args.smoothing}
    if "still" in args.clips:
        still = through_h264(noisy([next(sample_frames(1))] * args.frames, args.noise), crf=args.crf)
        still_clip(pipeline, still, filters, blur_px)
    if "moving" in args.clips:
        moving_clip(pipeline, through_h264(noisy(sample_frames(), args.noise, seed=1), crf=args.crf), filters, blur_px)
    return 0


if __name__ == "__main__":
    sys.exit(main())
