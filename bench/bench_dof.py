"""CPU depth of field: ms per frame (median of many runs) at 640x480 and 1280x720, as a markdown table.

Scenes: the synthetic portrait of `stream.synthetic` (a subject in focus before a receding room: a
realistic mix of in-focus, mid and far CoC), a worst case where a smooth random disparity puts
much of the frame at CoC below the reduction factor (those pixels are gathered at full resolution), and two
blurred foregrounds, a near fence and near leaves, where most near pixels have the background in reach and gather
what lies behind them (kernels/dof_cpu_composite.py: _behind_colour_at).
Usage: python bench/bench_dof.py [--runs 100] [--blur 16] [--recorded FRAMES.npz ...]
       [--compare-rev REV | --compare OLD.py [--rounds 3] [--threads 1,2] [--photo WxH ...]] [--passes]
--recorded adds rows for frames a real run rendered (bench/record_render_inputs.py), at their own size, blur
and focus, timed in turn (each of --runs rounds renders every frame once).
On a shared virtual machine the median moves with the neighbours' load; min shows the quiet machine.
--compare-rev REV times the CPU depth of field of a git revision (any of `git rev-parse`'s names: HEAD, a commit,
a tag) and the current one alternately (old, new, old, new: --rounds rounds of --runs renders a scene each), at the
presets' settings (640x480 at live-cpu's blur and at --blur, 1280x720 at the default preset's; --photo WxH adds a
synthetic portrait of that size at the default preset's blur, scaled to its height as a run scales it), on each of
--threads Numba thread counts, and says how far their outputs differ: a change is kept only where it is faster in
every round. The revision's whole kernels/ package is extracted (`git archive`) into a folder of the temporary
directory under its own package name (kept there for the next run: Numba's cache goes with it), its imports of
`kernels` renamed, so a change to any of dof_cpu.py's modules (dof_cpu_*.py, dof.py's plan) is compared.
--compare OLD.py does the same with a copy of one old kernels/dof_cpu.py, which imports the current package: it fits
only a copy from before dof_cpu.py was split into dof_cpu_*.py (9433d6b), or one that differs from the current
module alone.
--passes gives each pass's median ms instead (reduce, gather at reduced resolution, composite), and the whole
render's, at 1280x720 and 1920x1080 (--blur at both).
--exact-far times the far field's hand-over at s (exact_far off, live runs) and at 2 s (on: photos, files into files)
alternately in one process (--rounds rounds of --runs renders; CPU ms, the process's): the synthetic portrait at
640x480 at live-cpu's blur, 1280x720 and 1920x1080 at the default preset's, each --photo size, highlight boost 0 and
1, on each of --threads, with how far the two outputs differ; then each --recorded file's frames. With --compare-rev
REV (or --compare OLD.py) it times the old and the current module instead, both with exact_far, on those scenes.
--compile gives the seconds a first render takes from a cold Numba cache (a fresh NUMBA_CACHE_DIR, in a new
process: the import and the JIT of every kernel), --rounds times; with --compare-rev REV or --compare OLD.py, the old
module's and the current one's alternately.
"""
from __future__ import annotations

import argparse
import importlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace

import cv2
import numpy as np

from kernels.dof import plan
from kernels.dof_cpu import depth_of_field_cpu, render
from stream.bench import cpu_name  # the CPU's model, also on ARM
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


def fence(width: int, height: int) -> tuple[np.ndarray, np.ndarray, float]:
    """A blurred near fence over the whole frame (3 px bars every 12 px) before a far background: every near pixel
    has a pixel not near within 2 px, so every one gathers what lies behind it (the backdrop's worst case)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    disparity = np.full((height, width), 0.2, np.float32)
    disparity[:, (np.arange(width) % 12) < 3] = 0.98
    return image, disparity, 0.6


def leaves(width: int, height: int) -> tuple[np.ndarray, np.ndarray, float]:
    """A foreground of leaves (near discs, radius 4-14 px at 480 lines, over 30 % of the frame) before a far
    background, a subject in focus in the middle."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    disparity = np.full((height, width), 0.2, np.float32)
    mask = np.zeros((height, width), np.uint8)
    scale = height / 480
    while mask.mean() < 0.3:
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(mask, centre, int(rng.integers(4, 15) * scale), 1, -1)
    disparity[mask > 0] = 0.95
    disparity[height * 5 // 16:height * 11 // 16, width * 11 // 32:width * 21 // 32] = 0.6  # the subject
    return image, disparity, 0.6


# (name, scene maker): the default table's and --compare's scenes
SCENES = (("synthetic portrait", portrait), ("worst case: random depth", worst_case),
          ("near fence", fence), ("near leaves", leaves))


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


LIVE_CPU_BLUR = 10.0  # configs/live-cpu.yaml: 640x480
DEFAULT_BLUR = 12.0  # configs/default.yaml, at 480 lines; the blur scales with the frame's height


REPO = Path(__file__).resolve().parents[1]


def load_module(path: Path) -> ModuleType:
    """A copy of kernels/dof_cpu.py as a module importable by name (Numba's cache reloads its functions by it)."""
    sys.path.insert(0, str(path.resolve().parent))
    return importlib.import_module(path.stem)


class RevisionError(Exception):
    """A --compare-rev revision that git cannot resolve or that has no kernels/dof_cpu.py."""


def _git(*args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True)
    except OSError as error:
        raise RevisionError(f"--compare-rev needs git ({error.strerror}); install it, or use --compare OLD.py") \
            from None
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise RevisionError(f"git {args[0]}: {lines[-1] if lines else 'failed'}")
    return done.stdout


def revision_package(rev: str) -> tuple[str, Path]:
    """(package name, folder holding it) of revision `rev`'s kernels/ package, extracted once into the temporary
    directory as `kernels_<commit>` with its imports of `kernels` renamed to it (its Numba cache stays beside it)."""
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()
    except RevisionError:
        raise RevisionError(f"--compare-rev {rev!r} is not a revision of {REPO} (try HEAD~1 or a commit hash "
                            "from git log)") from None
    name = f"kernels_{commit[:12]}"
    root = Path(tempfile.gettempdir()) / f"depthcam-bench-{commit[:12]}"
    if not (root / name).is_dir():
        files = _package_files(_git("archive", "--format=tar", commit, "kernels"), name)
        if "dof_cpu.py" not in files:
            raise RevisionError(f"revision {rev} ({commit[:12]}) has no kernels/dof_cpu.py to compare")
        # written beside, then renamed: an interrupted run leaves no half package to be taken for a whole one
        part = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=root.parent))
        for file_name, data in files.items():
            (part / file_name).write_bytes(data)
        root.mkdir(exist_ok=True)
        try:
            part.rename(root / name)
        except OSError:  # another run put it there first
            shutil.rmtree(part, ignore_errors=True)
    return name, root


def _package_files(archive: bytes, name: str) -> dict[str, bytes]:
    """The files directly in kernels/ of a `git archive` tar, their imports of `kernels` renamed to `name`."""
    files = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            base = member.name.removeprefix("kernels/")
            if member.isfile() and base and "/" not in base:
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                files[base] = rename_imports(data.decode(), name).encode() if base.endswith(".py") else data
    return files


_IMPORT = re.compile(r"^(\s*(?:from|import)\s+)kernels\b", re.MULTILINE)


def rename_imports(source: str, package: str) -> str:
    """`source` importing `package` where it imported `kernels` (from kernels.x import, import kernels.x,
    from kernels import x)."""
    return _IMPORT.sub(lambda m: m.group(1) + package, source)


def load_revision(rev: str) -> ModuleType:
    """Revision `rev`'s kernels/dof_cpu.py, with the rest of its own kernels/ package."""
    name, root = revision_package(rev)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"{name}.dof_cpu")


PHOTO_SIZE = re.compile(r"^(\d+)x(\d+)$")


def photo_size(text: str) -> tuple[int, int]:
    """--photo's WxH."""
    match = PHOTO_SIZE.match(text)
    if not match or min(int(match[1]), int(match[2])) < 16:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 4032x3024, got {text!r}")
    return int(match[1]), int(match[2])


def compare_scenes(recorded: list[Path], blur_vga: float,
                   photos: list[tuple[int, int]] = ()) -> list[tuple[str, list[tuple]]]:
    """(name, frames) at the presets' settings, and at 640x480 also at `blur_vga` (--blur: the live target's 16 px),
    each frame (image, disparity, focus, blur, highlight boost); then a synthetic portrait at each of `photos`' sizes
    at the default preset's blur scaled to its height."""
    scenes = []
    sizes = dict.fromkeys(((640, 480, LIVE_CPU_BLUR), (640, 480, blur_vga), (1280, 720, DEFAULT_BLUR * 720 / 480)))
    for name, make in SCENES:
        for width, height, blur in sizes:
            image, disparity, focus = make(width, height)
            scenes.append((f"{name} {width}x{height}", [(image, disparity, focus, blur, 0.0)]))
    for width, height in photos:
        image, disparity, focus = portrait(width, height)
        scenes.append((f"synthetic portrait {width}x{height}", [(image, disparity, focus, DEFAULT_BLUR * height / 480,
                                                                 0.0)]))
    for path in recorded:
        with np.load(path) as r:
            frames = [(r["images"][i], r["disparities"][i], float(r["focus"][i]), float(r["blur"][i]),
                       float(r["highlight_boost"][i])) for i in range(len(r["focus"]))]
        height, width = frames[0][0].shape[:2]
        scenes.append((f"recorded: {path.stem} {width}x{height}", frames))
    return scenes


def render_ms(module: ModuleType, frames: list[tuple], runs: int) -> tuple[float, float]:
    """Median wall and CPU ms (the process's, all threads) of `runs` renders, taking the frames in turn. On a
    shared VM the CPU time moves far less with the neighbours' load than the wall time (OpenMP's idle threads
    spin for a while, which counts too)."""
    wall, cpu = [], []
    for i in range(runs):
        image, disparity, focus, blur, boost = frames[i % len(frames)]
        t0, c0 = time.perf_counter(), time.process_time()
        module.depth_of_field_cpu(image, disparity, focus, blur, highlight_boost=boost)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return float(np.median(wall)), float(np.median(cpu))


def compare(old: ModuleType, recorded: list[Path], threads: list[int], rounds: int, runs: int,
            blur_vga: float, photos: list[tuple[int, int]] = (), exact_far: bool = False) -> None:
    """`old` (a dof_cpu module: load_module, load_revision) and the current one, alternately; with `exact_far`
    both render so (--exact-far's scenes: the synthetic portrait up to 1920x1080, the recorded frames)."""
    import functools

    import numba

    from kernels import dof_cpu

    new: ModuleType | SimpleNamespace = dof_cpu
    scenes = compare_scenes(recorded, blur_vga, photos)
    if exact_far:
        old, new = (SimpleNamespace(depth_of_field_cpu=functools.partial(m.depth_of_field_cpu, exact_far=True))
                    for m in (old, dof_cpu))
        scenes = exact_far_scenes(photos, recorded)

    print("| scene | blur (px) | threads | old ms, by round | new ms, by round | new / old | old CPU ms | new CPU ms "
          "| outputs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, frames in scenes:
        differ, most = 0, 0
        for image, disparity, focus, blur, boost in frames:
            a = old.depth_of_field_cpu(image, disparity, focus, blur, highlight_boost=boost).astype(np.int16)
            b = new.depth_of_field_cpu(image, disparity, focus, blur, highlight_boost=boost).astype(np.int16)
            differ += int((a != b).sum())
            most = max(most, int(np.abs(a - b).max()))
        outputs = "identical" if differ == 0 else f"{differ} values differ, by up to {most}"
        for n in threads:
            numba.set_num_threads(n)
            for module in (old, new):  # warm-up: thread pool, caches
                render_ms(module, frames, 3)
            times: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
            for _ in range(rounds):
                times["old"].append(render_ms(old, frames, runs))
                times["new"].append(render_ms(new, frames, runs))
            ratio = np.median([t[0] for t in times["new"]]) / np.median([t[0] for t in times["old"]])
            wall = {k: " / ".join(f"{t[0]:.1f}" for t in v) for k, v in times.items()}
            cpu = {k: " / ".join(f"{t[1]:.1f}" for t in v) for k, v in times.items()}
            print(f"| {name} | {frames[0][3]:g} | {n} | {wall['old']} | {wall['new']} | {ratio:.2f} | {cpu['old']} | "
                  f"{cpu['new']} | {outputs} |", flush=True)


def exact_far_scenes(photos: list[tuple[int, int]], recorded: list[Path]) -> list[tuple[str, list[tuple]]]:
    """--exact-far's scenes: the synthetic portrait at the presets' sizes and blurs, and at each photo size, each with
    highlight boost 0 and 1; then each --recorded file's frames as they were rendered."""
    sizes = [(640, 480, LIVE_CPU_BLUR), (1280, 720, DEFAULT_BLUR * 720 / 480), (1920, 1080, DEFAULT_BLUR * 1080 / 480)]
    sizes += [(width, height, DEFAULT_BLUR * height / 480) for width, height in photos]
    scenes = []
    for width, height, blur in sizes:
        image, disparity, focus = portrait(width, height)
        for boost in (0.0, 1.0):
            scenes.append((f"portrait {width}x{height}, boost {boost:g}", [(image, disparity, focus, blur, boost)]))
    return scenes + [scene for scene in compare_scenes(recorded, LIVE_CPU_BLUR) if scene[0].startswith("recorded")]


def exact_far_table(threads: list[int], rounds: int, runs: int, photos: list[tuple[int, int]],
                    recorded: list[Path]) -> None:
    """The far hand-over at s against 2 s (exact_far), alternately, in CPU ms."""
    import functools

    import numba

    from kernels import dof_cpu

    variants = {"s": SimpleNamespace(depth_of_field_cpu=dof_cpu.depth_of_field_cpu),
                "2s": SimpleNamespace(depth_of_field_cpu=functools.partial(dof_cpu.depth_of_field_cpu, exact_far=True))}
    print("| scene | blur (px) | s | threads | at s: CPU ms, by round | at 2 s: CPU ms, by round | 2 s / s | outputs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, frames in exact_far_scenes(photos, recorded):
        differ, most = 0, 0
        for image, disparity, focus, blur, boost in frames:
            a, b = (v.depth_of_field_cpu(image, disparity, focus, blur, highlight_boost=boost).astype(np.int16)
                    for v in variants.values())
            differ += int((a != b).sum())
            most = max(most, int(np.abs(a - b).max()))
        outputs = f"{differ} values differ, by up to {most}"
        s = plan(disparity.shape, focus, blur, boost).scale
        for n in threads:
            numba.set_num_threads(n)
            for variant in variants.values():
                render_ms(variant, frames, 2)
            cpu: dict[str, list[float]] = {k: [] for k in variants}
            for _ in range(rounds):
                for key, variant in variants.items():
                    cpu[key].append(render_ms(variant, frames, runs)[1])
            ratio = np.median(cpu["2s"]) / np.median(cpu["s"])
            cells = {k: " / ".join(f"{v:.1f}" for v in values) for k, values in cpu.items()}
            print(f"| {name} | {blur:g} | {s} | {n} | {cells['s']} | {cells['2s']} | {ratio:.2f} | {outputs} |",
                  flush=True)


# run in a fresh process: import the module named argv[1] from the folder argv[2] and render one small frame
_COLD_RENDER = """
import importlib, sys, time
import numpy as np
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[2])
module = importlib.import_module(sys.argv[1])
rng = np.random.default_rng(0)
module.depth_of_field_cpu(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), rng.random((48, 64), dtype=np.float32),
                          0.5, 12.0, highlight_boost=1.0)
print(time.perf_counter() - t0)
"""


def cold_compile_s(module: str, folder: Path) -> float:
    """Seconds from a new process's import of `module` (a dotted name, found in `folder`) to its first render, with an
    empty Numba cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))  # `kernels` imports
        done = subprocess.run([sys.executable, "-c", _COLD_RENDER, module, str(folder)], env=env,
                              capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def compile_table(old: tuple[str, Path] | None, rounds: int) -> None:
    """`old`: the old module's dotted name and the folder it is found in (None: the current module alone)."""
    modules = ([("old", old)] if old else []) + [("new" if old else "current", ("kernels.dof_cpu", REPO))]
    times: dict[str, list[float]] = {name: [] for name, _ in modules}
    for _ in range(rounds):
        for name, (module, folder) in modules:
            times[name].append(cold_compile_s(module, folder))
    print("| module | cold compile s, by round | median |")
    print("| --- | --- | --- |")
    for name, values in times.items():
        print(f"| {name} | {' / '.join(f'{v:.1f}' for v in values)} | {np.median(values):.1f} |")


PASSES = ("reduce", "gather", "composite")


def pass_table(blur: float, runs: int) -> None:
    """Median wall ms of each pass (`kernels.dof_cpu.render`'s timings) and of the whole render."""
    print("| scene | frame | max blur (px) | reduction s | reduce ms | gather ms | composite ms | total ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, make in (("synthetic portrait", portrait), ("worst case: random depth", worst_case)):
        for width, height in ((1280, 720), (1920, 1080)):
            image, disparity, focus = make(width, height)
            p = plan(disparity.shape, focus, blur, 1.0)
            samples: dict[str, list[float]] = {k: [] for k in PASSES + ("total",)}
            for i in range(runs + 3):  # the first three warm the JIT cache and the thread pool
                timings: dict[str, float] = {}
                t0 = time.perf_counter()
                render(image, disparity, p, timings)
                if i >= 3:
                    samples["total"].append((time.perf_counter() - t0) * 1e3)
                    for k in PASSES:
                        samples[k].append(timings[k])
            cells = " | ".join(f"{np.median(samples[k]):.2f}" for k in PASSES + ("total",))
            print(f"| {name} | {width}x{height} | {blur:g} | {p.scale} | {cells} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--blur", type=float, default=16.0, help="max CoC radius in px")
    parser.add_argument("--recorded", type=Path, nargs="*", default=[],
                        help="frames recorded at the render stage (bench/record_render_inputs.py)")
    old_group = parser.add_mutually_exclusive_group()
    old_group.add_argument("--compare-rev", metavar="REV",
                           help="a git revision whose kernels/ package to time against the current one, interleaved")
    old_group.add_argument("--compare", type=Path, metavar="OLD.py",
                           help="a copy of an earlier kernels/dof_cpu.py to time against the current one, interleaved "
                                "(only a copy from before its split into dof_cpu_*.py: use --compare-rev)")
    parser.add_argument("--photo", type=photo_size, nargs="*", default=[], metavar="WxH",
                        help="--compare, --compare-rev, --exact-far: also a synthetic portrait of this size at the "
                             "default preset's blur, scaled to its height")
    parser.add_argument("--rounds", type=int, default=3, help="--compare, --compile: rounds of old and new")
    parser.add_argument("--threads", default="1,2", help="--compare: Numba thread counts, comma-separated")
    parser.add_argument("--passes", action="store_true",
                        help="each pass's median ms at 1280x720 and 1920x1080 instead of whole renders")
    parser.add_argument("--exact-far", action="store_true",
                        help="the far field's hand-over at s against 2 s (exact_far), alternately, in CPU ms; with "
                             "--compare or --compare-rev: old and new both with exact_far")
    parser.add_argument("--compile", action="store_true",
                        help="seconds to a first render from a cold Numba cache (with --compare: old and new)")
    args = parser.parse_args()
    for path in args.recorded:
        if not path.is_file():
            parser.error(f"{path} not found; make it with bench/record_render_inputs.py")
    import numba

    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores, "
          f"Numba {numba.__version__} ({numba.get_num_threads()} threads)\n")
    if args.compare and not args.compare.is_file():
        parser.error(f"{args.compare} not found; copy kernels/dof_cpu.py as it was, e.g. to /tmp/dof_cpu_old.py, "
                     "or name a git revision with --compare-rev")
    old: tuple[str, Path] | None = None
    if args.compare:
        old = (args.compare.stem, args.compare.resolve().parent)
    elif args.compare_rev:
        try:
            name, root = revision_package(args.compare_rev)
        except RevisionError as error:
            parser.error(str(error))
        old = (f"{name}.dof_cpu", root)
    if args.compile:
        compile_table(old, args.rounds)
        return
    if old or args.exact_far:
        threads = [int(n) for n in args.threads.split(",") if n.strip().isdigit()]
        if len(threads) != len(args.threads.split(",")) or min(threads) < 1 \
                or max(threads) > numba.config.NUMBA_NUM_THREADS:
            parser.error(f"--threads must be thread counts from 1 to {numba.config.NUMBA_NUM_THREADS}, "
                         f"comma-separated, got {args.threads!r}")
    if old:
        module = load_module(args.compare) if args.compare else load_revision(args.compare_rev)
        compare(module, args.recorded, threads, args.rounds, args.runs, args.blur, args.photo, args.exact_far)
        return
    if args.exact_far:
        exact_far_table(threads, args.rounds, args.runs, args.photo, args.recorded)
        return
    if args.passes:
        pass_table(args.blur, args.runs)
        return
    print("| scene | frame | max blur (px) | reduction s | ms/frame (median) | p90 ms | min ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, make in SCENES:
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
