"""`depthcam bench`: latency and throughput of the real pipeline, as JSON (schema in the README).

Modes, each on the same input and configuration:
- pipelined: the real threaded pipeline into a null sink (as fast as it goes, nothing dropped);
- sequential: the same stages called one after another on one thread, no queues;
- batch: pipelined throughput with max_batch 1, 2, 4, 8;
- live: the source paced at camera rate through the live queue policy: capture → sink latency, drops
  (a file is paced at its own frame rate, as a camera would deliver it).
The first frames of each run (warm-up: JIT compilation, allocator, caches) are left out.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Callable, Iterator

from models.download import ModelError, sha256_of
from stream.cgroup import cpu_max_quota
from stream.cgroup import cpu_quota as cgroup_cpu_quota
from stream.config import CONFIG_DIR, PipelineConfig, closest_choice, load_config, preset_names, resolve_config_path
from stream.console import notify
from stream.errors import StopAfter, UserError
from stream.frame import Frame, now_ns
from stream.metrics import LatencyRecorder, others_counted_on
from stream.network_source import is_network_spec, redact
from stream.options import GivenOnce, add_model_options, model_overrides
from stream.paths import ensure_writable, replace_atomically, same_file
from stream.sinks import NullSink
from stream.sources import ImageSource, PacedSource, Source

STAGES = ["depth", "refine", "render"]
MODES = ("pipelined", "sequential", "batch", "live")
ASYNC_SPEEDUP_NOTE = ("async depth: the pipelined run predicts depth on fewer frames than the sequential one, "
                      "so the two rates are not the same work")
# 2: "frames" is what was measured (fewest of any run), "frames_requested" what was asked; NaN is null
SCHEMA_VERSION = 2
# The default live input is made longer than the run needs: frames the live queue drops are not measured,
# and the run ends once --frames frames (after the warm-up) reached the sink.
LIVE_SYNTHETIC_FRAMES = 10_000_000
SYNTHETIC_MAX_FRAMES = 10_000_000  # the synthetic source's longest scene (stream/sources.py's frames= range)
TABLE_NOTE = ("times in ms (p50 unless named); fps: frames reaching the sink per second; e2e: capture → sink (the "
              "pipelined and batch runs read their input ahead, so theirs includes queueing: latency is the live "
              "run's; for a paced synthetic frame drawn past its exposure, from the drawing's end: a camera's "
              "frame is ready when exposed); depth, refine, render: the stage's own time, start → end of the call "
              "that took the frame (a whole batch for batched depth; for async depth the hand-over of the newest "
              "depth, the network's own time per prediction being async net); dropped: frames after the warm-up "
              "that never reached the sink (the live queue's drops, those a paced synthetic input skipped, also at "
              "a file's end); cores: CPU cores depthcam kept busy on average while measuring (others: other "
              "programs on the cores depthcam may run on, Linux only). The sequential run's fps counts producing "
              "each frame (decoding it, or drawing the synthetic scene) too, which e2e (capture → sink) leaves "
              "out: its fps is below 1000 / e2e mean")


class ReportNotWritten(UserError):
    """The benchmark ran but its --json or --plot file could not be written (a full disk): a failure while
    running, not bad input."""

    exit_code = 1


class CutShort(Exception):
    """A run stopped part-way (Ctrl-C or SIGTERM, its input or model failing): what it had measured until then,
    and why it stopped, which ends the benchmark once the figures are kept."""

    def __init__(self, summary: dict, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.summary = summary
        self.cause = cause


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="?", default=None, metavar="INPUT",
                        help="any input (default: the synthetic portrait, 640x480)")
    parser.add_argument("--frames", type=int, default=300, metavar="N", help="frames per run (default 300)")
    parser.add_argument("--warmup", type=int, default=10, metavar="N",
                        help="frames left out at the start of each run (default 10)")
    parser.add_argument("--config", metavar="FILE|PRESET", action=GivenOnce,
                        help=f"preset ({', '.join(preset_names())}) or YAML (to run several: --compare)")
    parser.add_argument("--compare", nargs="+", metavar="CONFIG", default=[],
                        help="more presets or YAML files to run the same benchmark with")
    parser.add_argument("--modes", default="pipelined,sequential", metavar="LIST",
                        help=f"comma-separated, from {', '.join(MODES)} (default pipelined,sequential)")
    add_model_options(parser, device_help="where everything runs (default: the config's)")
    parser.add_argument("--json", metavar="OUT.json",
                        help="write the full report here; - for standard output (the tables then go to stderr)")
    parser.add_argument("--plot", metavar="OUT.png", help="latency timeline and per-stage histograms (matplotlib)")
    parser.add_argument("--from", dest="from_report", nargs="+", action="extend", metavar="REPORT.json",
                        help="run nothing: print the tables of reports --json wrote before, and --plot them (several: "
                             "one after another, and in one plot, to compare them)")


def machine_info() -> dict:
    """The machine as the benchmark found it before its first run: its load then too, which figures measured
    beside other work carry without a word."""
    gpu = gpu_name()
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "cores_usable": usable_cores(),
            "others_counted_on": others_counted_on(), "numba_threads": numba_threads(),
            "load_average": load_average(), "gpu": gpu,
            "cuda": cuda_versions() if gpu else None, "os": platform.platform(), "python": platform.python_version()}


def cuda_versions() -> str | None:
    """The CUDA driver's and runtime's versions as CuPy sees them ("driver 12.8, runtime 12.6"): GPU figures move
    with both, and a GPU named without them compared nothing. None without CuPy or a driver."""
    try:
        import cupy

        driver, runtime = cupy.cuda.runtime.driverGetVersion(), cupy.cuda.runtime.runtimeGetVersion()
    except Exception:  # noqa: BLE001 (no CuPy, a broken install, no driver)
        return None
    return f"driver {_cuda_version(driver)}, runtime {_cuda_version(runtime)}"


def _cuda_version(number: int) -> str:
    """CUDA's 12080 as 12.8."""
    return f"{number // 1000}.{number % 1000 // 10}"


def cpu_name(cpuinfo: str = "/proc/cpuinfo", board: str = "/proc/device-tree/model") -> str:
    """The CPU's model: x86's `model name`; on ARM Linux, which has none, the board (a Jetson, a Raspberry Pi) or
    the implementer's part; a Mac's brand string. The bare architecture ('aarch64', 'arm') named no machine."""
    fields: dict[str, str] = {}
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    if fields.get("model name"):
        return fields["model name"]
    try:
        model = Path(board).read_text(errors="replace").strip("\x00 \n")
    except OSError:
        model = fields.get("model", "")  # a Raspberry Pi's cpuinfo names its board (x86's is a number)
    model = "" if model.isdigit() else model
    if model:
        return model
    if sys.platform == "darwin":
        brand = _command_output(["sysctl", "-n", "machdep.cpu.brand_string"])
        if brand:
            return brand
    arch = platform.machine()
    if fields.get("cpu implementer") and fields.get("cpu part"):  # a server ARM (Graviton, Ampere) names only these
        return f"{arch} (implementer {fields['cpu implementer']}, part {fields['cpu part']})"
    return platform.processor() or arch


def _command_output(command: list[str]) -> str | None:
    """A command's first line of output, None where it is missing or fails."""
    import subprocess

    try:
        answer = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return next((line.strip() for line in answer.splitlines() if line.strip()), None)


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the system has none: Windows)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def gpu_name() -> str | None:
    """The first CUDA GPU this process sees: by CuPy's runtime, which needs no NVRTC (the kernels' compiler, whose
    absence made such a GPU 'no GPU'), else by nvidia-smi (onnxruntime-gpu without CuPy: the network ran on a GPU
    the machine line did not name)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.split(",")[0].strip() in ("", "-1"):  # every GPU hidden from CUDA
        return None
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception:  # noqa: BLE001 (no CuPy, a broken install, no driver: nvidia-smi may still answer)
        pass
    return _nvidia_smi_gpu(visible)


def _nvidia_smi_gpu(visible: str | None) -> str | None:
    """nvidia-smi's name for the first GPU CUDA_VISIBLE_DEVICES leaves (its index or UUID), None without one."""
    command = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
    if visible:
        command += ["-i", visible.split(",")[0].strip()]
    return _command_output(command)


def usable_cores(cgroup_max: str | None = None) -> float | None:
    """The cores this process may run on: its CPU affinity (taskset), less a container's or a service's CPU quota
    (docker --cpus, systemd's CPUQuota), which `cores` (the machine's) does not show. `cgroup_max`: one cgroup v2
    cpu.max file to read instead of this process's cgroups."""
    try:
        usable: float | None = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    quota = cpu_max_quota(Path(cgroup_max)) if cgroup_max is not None else cgroup_cpu_quota()
    if quota is not None and usable is not None:
        usable = min(usable, quota)
    return usable


def numba_threads() -> int | None:
    """Numba's thread count: what `refine.threads` and `render.threads` of 0 (all cores) give."""
    try:
        import numba
    except ImportError:
        return None
    return int(numba.config.NUMBA_NUM_THREADS)


def machine_line(machine: dict, found: dict) -> str:
    """The machine and the versions in one line above the tables: figures quoted without them compare
    nothing."""
    usable = machine.get("cores_usable")
    cores = f"{machine['cores']} cores" + (f" ({usable:g} usable)" if usable not in (None, machine["cores"]) else "")
    counted = machine.get("others_counted_on")  # absent from older reports (counted on the whole machine)
    if _is_number(counted) and counted != machine["cores"]:
        cores += f", others counted on the {counted:g} depthcam may run on"
    load = machine.get("load_average")  # absent from older reports
    if isinstance(load, list) and load and isinstance(load[0], (int, float)):
        cores += f", load average {load[0]:.2f} at start"
    # CuPy named only beside a GPU: installed without one, it ran nothing measured
    libraries = ", ".join(f"{name} {version}" for name, version in found.items()
                          if version and (name != "cupy" or machine["gpu"]))
    gpu = machine["gpu"] or "no GPU"
    if machine["gpu"] and machine.get("cuda"):  # absent from older reports
        gpu += f" (CUDA {machine['cuda']})"
    python = ", ".join(part for part in (f"Python {machine['python']}", libraries) if part)
    return f"machine: {machine['cpu']}, {cores}, {gpu}; {machine['os']}; {python}"


def setup_line(report: dict, machine: dict) -> str:
    """What ran where in one configuration: the model, ONNX Runtime's provider as created (not as asked)
    and its threads, the kernels' device and their Numba threads."""
    run = next(iter(report["runs"].values()))
    settings = report.get("settings") or {}  # a report of an older version may lack some of them
    threads = settings.get("inference", {}).get("threads", 0)
    model = run["model"] + (" at {}x{}".format(*run["model_input_size"]) if run.get("model_input_size") else "")
    network = f"{model} on {run.get('provider')} ({threads or 'default'} thread{'s' if threads != 1 else ''})"
    if run.get("frame_size"):
        network = "{}x{} frames; ".format(*run["frame_size"]) + network
    kernels = f"kernels on {run.get('kernels_backend')}"
    if run.get("kernels_backend") == "cpu":
        from stream.stages import CpuThreads

        every = machine.get("numba_threads")

        def count(stage: str) -> str:
            wanted = settings.get(stage, {}).get("threads", 0)  # 0: all of Numba's
            if every is None:
                return f"{stage} {wanted or 'all'}"
            return f"{stage} {CpuThreads.count(wanted, every)}"

        kernels += f" (Numba threads: {count('refine')}, {count('render')})"
    return f"{network}, {kernels}"


def versions() -> dict:
    import cv2
    import numpy
    import onnxruntime

    found = {"depthcam": depthcam_version(), "numpy": numpy.__version__, "opencv": cv2.__version__,
             "onnxruntime": onnxruntime.__version__}
    for name in ("numba", "cupy", "av"):
        try:
            found[name] = __import__(name).__version__
        except ImportError:
            found[name] = None
    return found


def depthcam_version() -> str | None:
    """The installed package's version (pyproject.toml's), None when running from a checkout not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("depthcam")
    except PackageNotFoundError:
        return None


def measurement_overhead_ns(stamps_per_frame: int, repeats: int = 20000) -> float:
    """What taking one frame's stamps costs: the clock read plus the dict store, measured here."""
    stamps: dict[str, int] = {}
    start = time.perf_counter_ns()
    for _ in range(repeats):
        stamps["stage"] = now_ns()
    return (time.perf_counter_ns() - start) / repeats * stamps_per_frame


def _input_spec(input_spec: str | None, frames: int, live: bool) -> str:
    """The input of one run: the synthetic scene by default, paced like a camera for the live run. A synthetic
    scene given without its length is made `frames` long, as the default one is: its own 300 ended a run of
    --frames 300 (and its 10 warm-up frames) at 290 measured, and a live run early once frames were dropped."""
    if input_spec is None:
        return f"synthetic:portrait?size=640x480&fps=30&frames={frames}&realtime={int(live)}"
    if not input_spec.startswith("synthetic:"):
        return input_spec
    added = (["realtime=1"] if live else []) + ([] if synthetic_length_given(input_spec) else [f"frames={frames}"])
    if not added:
        return input_spec
    return input_spec + ("&" if "?" in input_spec else "?") + "&".join(added)


def synthetic_length_given(input_spec: str) -> bool:
    """Whether a synthetic spec sets its own length (frames=)."""
    query = urllib.parse.urlsplit(input_spec.split(":", 1)[1]).query
    return any(key == "frames" for key, _ in urllib.parse.parse_qsl(query, keep_blank_values=True))


def paced_by_bench(input_spec: str) -> bool:
    """Whether the live run paces this input itself: a camera and a network stream pace themselves, a synthetic
    input is given realtime=1, and a file or image would otherwise be read as fast as it decodes."""
    return not input_spec.startswith(("camera:", "synthetic:")) and not is_network_spec(input_spec)


@contextlib.contextmanager
def model_failures_in_one_line() -> Iterator[None]:
    """A model that misbehaves where the benchmark calls the stages itself (priming, the sequential run) is said as a
    run says it, as a UserError: the pipeline turns these into one, but there it came out as "ModelError: ...
    (run with --debug for details)", and the runs that finished before went unreported."""
    try:
        yield
    except StopAfter as stop:  # the depth stage's NaN: in a run the frames before it go on; here nothing waits
        if not isinstance(stop.cause, (ModelError, UserError)):
            raise stop.cause from None
        raise UserError(str(stop.cause)) from None
    except ModelError as exc:
        raise UserError(str(exc)) from None


def prime(stages: list, input_spec: str) -> float | None:
    """Push one frame through every stage before timing: Numba compiles, ONNX Runtime and CUDA
    allocate on first use, and a paced source would pile frames up behind that one-off pause.
    Returns the stages' time for it in ms (None for a camera or stream, which are not primed)."""
    from stream.sources import open_source

    if input_spec.startswith("camera:") or is_network_spec(input_spec):
        return None  # a camera cannot be opened twice (nor many a stream: a phone app serves one client)
    source = open_source(input_spec)
    try:
        batch = [next(iter(source.frames()))]
        started = now_ns()
        for stage in stages:
            batch = stage.process(batch)
        return (now_ns() - started) / 1e6
    finally:
        source.close()


def _timed_build(config: PipelineConfig, input_spec: str, **kwargs):
    """build()'s result and its time in ms: opening the input, loading the model, loading (or compiling) the
    kernels, which the steady-state figures leave out and the report gives apart."""
    from stream.app import build

    started = now_ns()
    built = build(config, input_spec, None, sink=NullSink(), progress=False, **kwargs)
    return built, (now_ns() - started) / 1e6


def _what_ran(built, build_ms: float, first_frame_ms: float | None) -> dict:
    """What a run measured beside its frames: the model as loaded (its input size: a model of dynamic size runs
    at --model-size), where it and the kernels ran, and the one-off costs kept out of the figures."""
    return {"provider": built.estimator.provider, "kernels_backend": built.backend,
            "model": built.estimator.spec.name,
            "model_input_size": [built.estimator.input.width, built.estimator.input.height],
            # false: the model took batch 1 on this device (its graph, or a batch its layers did not keep), so a
            # batch of frames ran as single calls
            "model_batches": not built.estimator.input.static_batch,
            "startup_ms": {"build": build_ms, "first_frame": first_frame_ms}}


def run_pipelined(config: PipelineConfig, input_spec: str, frames: int, warmup: int, paced: bool = False) -> dict:
    """The threaded pipeline into a null sink; `paced`: the input (a file) is delivered at its frame rate
    through the live queue, as a camera would deliver it."""
    recorder = LatencyRecorder(STAGES, warmup=warmup)

    def wrap(source: Source) -> Source:
        # paced (live), a photo repeats until --frames frames reached the sink, as the live synthetic input does
        source = _as_stream(source, LIVE_SYNTHETIC_FRAMES if paced else frames + warmup)
        return _counting_deliveries(PacedSource(source) if paced else source, recorder)

    built, build_ms = _timed_build(config, input_spec, recorder=recorder, wrap_source=wrap)
    try:
        first_frame_ms = prime(built.pipeline.stages, input_spec)
    except BaseException:  # run() never starts, so it cannot close them
        for stage in built.pipeline.stages:
            stage.close()
        built.source.close()
        raise
    stop_after, stop = frames + warmup, built.pipeline.stop

    def limit(frame) -> None:  # bounded runs on endless inputs (cameras)
        if recorder.seen >= stop_after:
            stop.set()  # not through `built`: the pipeline holds this function, a cycle kept its model till a gc

    built.pipeline.on_frame = limit

    def summary(input_ended: bool = False) -> dict:
        figures = recorder.summary()
        figures.update(dropped_frames=recorder.dropped_while_measuring,
                       dropped_after_warmup=recorder.dropped_after_warmup(input_ended),
                       dropped_at_capture=recorder.dropped_at_capture(input_ended),
                       queue_high_water={queue.name: queue.high_water for queue in built.pipeline.queues},
                       **_what_ran(built, build_ms, first_frame_ms))
        return figures

    try:
        result = built.pipeline.run()
    except (UserError, ModelError) as exc:  # the input or the model failed part-way: the frames before it count
        raise CutShort(summary(), exc) from None
    if result.interrupted:  # Ctrl-C ends the whole benchmark, not just this run: what it measured is kept
        raise CutShort(summary(), KeyboardInterrupt())
    return summary(input_ended=recorder.seen < stop_after)  # stopped by `limit`: the frames in flight are no drops


def _counting_deliveries(source: Source, recorder: LatencyRecorder) -> Source:
    """`source`, telling `recorder` each frame it delivers: frames dropped after the last measured one (a live
    run's at a file's end) are counted from them, and those the input skipped itself. (A paced synthetic input's
    frame drawn past its exposure comes timed from when it was drawn, its overrun apart: SyntheticSource.)"""
    frames = source.frames

    def counted() -> Iterator[Frame]:
        for frame in frames():
            recorder.delivered(frame.index)
            yield frame

    source.frames = counted  # type: ignore[method-assign]
    return source


STILL_STREAM_FPS = 30.0  # a photo's still stream is paced at the default synthetic input's camera rate (live run)


class StillStream(Source):
    """A photo delivered `count` times, as a camera filming a print would: a photo is one frame, so its warm-up
    measured nothing (`bench photo.jpg` was refused until --warmup 0, and then gave one sample and no rate)."""

    def __init__(self, photo: ImageSource, count: int) -> None:
        self.photo = photo
        self.fps, self.width, self.height = STILL_STREAM_FPS, photo.width, photo.height
        self.frame_count = count
        self.description = f"{photo.description}, repeated {count} times"

    def frames(self) -> Iterator[Frame]:
        for index in range(self.frame_count or 0):
            picture = next(iter(self.photo.frames()))
            # a copy each time: a stage's work on one frame must not show in the next
            yield Frame(index=index, capture_ns=now_ns(), image=picture.image.copy(),
                        pts_seconds=index / self.fps, extra=dict(picture.extra))

    def close(self) -> None:
        self.photo.close()


def _as_stream(source: Source, count: int) -> Source:
    """The run's input: a photo repeated as a still stream of `count` frames, any other input as it is."""
    return StillStream(source, count) if isinstance(source, ImageSource) else source


def run_sequential(config: PipelineConfig, input_spec: str, frames: int, warmup: int) -> dict:
    """The same stages on one thread, one frame at a time: the baseline the pipeline must beat."""
    sequential = dataclasses.replace(config, inference=dataclasses.replace(config.inference, mode="sync"))
    built, build_ms = _timed_build(sequential, input_spec)  # its threads never start
    source, stages = _as_stream(built.source, frames + warmup), built.pipeline.stages
    recorder = LatencyRecorder(STAGES, warmup=warmup)
    first_frame_ms: float | None = None

    def summary() -> dict:
        figures = recorder.summary()
        # no queues: the documented keys all 0, so a reader of the JSON finds the same fields in every run
        figures.update(dropped_frames=0, dropped_after_warmup=0, dropped_at_capture=0,
                       queue_high_water={name: 0 for name in ["capture", *STAGES]},
                       **_what_ran(built, build_ms, first_frame_ms))
        return figures

    try:
        first_frame_ms = prime(stages, input_spec)
        try:
            for count, frame in enumerate(source.frames()):
                if count >= frames + warmup:
                    break
                _one_frame_in_turn(frame, stages)
                recorder.record(frame)
        except (KeyboardInterrupt, UserError, ModelError, StopAfter) as exc:  # the frames measured before count
            raise CutShort(summary(), exc) from None
    finally:
        for stage in stages:
            stage.close()
        source.close()
    return summary()


def _one_frame_in_turn(frame, stages: list) -> None:
    """A frame through every stage on this thread, stamped as the pipeline stamps it."""
    batch = [frame]
    for stage in stages:
        frame.stamps[f"{stage.name}.start"] = now_ns()
        batch = stage.process(batch)
        frame.stamps[stage.name] = now_ns()
    frame.stamp("sink")


def bench_config(config_name: str | None, args: argparse.Namespace) -> PipelineConfig:
    return load_config(config_name, {**model_overrides(args), "output.progress": False}, notify)


def parse_modes(text: str) -> list[str]:
    """`--modes a,b`: known names, each once, in the order given; an empty list is refused."""
    modes = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    if not modes:
        raise UserError(f"--modes is empty; give one or more of {', '.join(MODES)}, comma-separated")
    unknown = sorted(set(modes) - set(MODES))
    if unknown:  # each with the mode it most likely meant (`livee`: live), as a misspelt option's choice is
        named = ", ".join(f"{mode} (did you mean {meant}?)" if (meant := closest_choice(mode, MODES)) else mode
                          for mode in unknown)
        raise UserError(f"unknown bench mode(s) {named}; choose from {', '.join(MODES)}")
    return modes


def load_bench_configs(args: argparse.Namespace) -> list[tuple[str | None, PipelineConfig]]:
    """Every configuration, loaded and validated before the first run: a typo in the last --compare
    name must not cost the runs before it. A configuration equal to one before it (`--compare default`
    without --config, a preset named twice) runs once."""
    configs: list[tuple[str | None, PipelineConfig]] = []
    for name in [args.config, *args.compare]:
        config = bench_config(name, args)
        same = next((label for label, earlier in configs if earlier == config), False)
        if same is False:
            configs.append((name, config))
        else:
            notify(f"--compare {name}: the same settings as {same or 'default'}, benchmarked once")
    return configs


STDOUT = "-"  # --json -: the report on standard output


def _is_standard_output(name: str) -> bool:
    """`-`, or a name for this process's standard output (/dev/stdout, /proc/self/fd/1): the JSON is written there
    alone, the tables going to stderr (written to /dev/stdout after them, a pipe got both and jq read neither)."""
    if name == STDOUT:
        return True
    try:
        return os.path.samestat(os.stat(Path(name).expanduser()), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):  # no such file, or stdout is no file (a test's capture)
        return False


def check_json_suffix(path: Path) -> None:
    """The report is JSON whatever the name: `--json out.csv` wrote JSON into a .csv file without a word. Standard
    output, a device or a pipe (a shell's >(jq .)), a link to a .json file and a folder (refused by ensure_writable)
    keep their own names."""
    names = (path, path.expanduser().resolve())
    if any(name.suffix.lower() == ".json" for name in names) or _is_standard_output(str(path)):
        return
    if path.exists() and not path.is_file():
        return
    raise UserError(f"--json {path}: the report is JSON; name the file .json (e.g. {path.with_suffix('.json').name}), "
                    f"or give - for standard output")


def check_report_paths(json_path: str | None, plot_path: str | None, input_spec: str | None) -> None:
    """--json and --plot are written after every run; whatever would make them fail is found first."""
    json_path = None if json_path == STDOUT else json_path  # standard output: nothing to check
    targets = {flag: Path(value) for flag, value in (("--json", json_path), ("--plot", plot_path)) if value is not None}
    for flag, path in targets.items():
        if not str(path).strip() or path == Path("."):
            raise UserError(f"{flag} needs a file name")
        if input_spec and same_file(input_spec, path):
            raise UserError(f"{flag} {path} is the input file: writing it would destroy the input; choose another name")
    if len(targets) == 2 and same_file(targets["--json"], targets["--plot"]):
        raise UserError(f"--json and --plot both name {json_path}; give each its own file")
    if "--json" in targets:
        check_json_suffix(targets["--json"])
        ensure_writable(targets["--json"], "benchmark JSON")
    if "--plot" in targets:
        from stream.bench_plot import check_plot_path

        check_plot_path(targets["--plot"])


def check_input(input_spec: str | None, warmup: int, configs: list[tuple[str | None, PipelineConfig]]) -> dict:
    """Open the input once before any run: a bad input, one too short to measure anything, or settings
    that do not fit its frame size (blur, focus point) are refused now. A camera's spec is checked, the
    camera itself left to the run: opening one twice is slow and some refuse it. Returns what the report says
    of the input: its frame count and size, and whether it is a photo (repeated as a still stream)."""
    from stream.app import check_outputs
    from stream.camera import parse_camera_spec
    from stream.sources import open_source

    if input_spec is None:
        return {}  # the default synthetic input is made with frames + warmup frames
    if input_spec.startswith("camera:"):
        parse_camera_spec(input_spec)  # its spelling; the camera itself answers when the run opens it
        return {}
    source = open_source(input_spec)
    try:
        photo = isinstance(source, ImageSource)
        count = source.frame_count
        if count is not None and count <= warmup and not photo:  # a photo is repeated for as long as the run
            raise UserError(f"the input has {count} frame{'s' if count != 1 else ''}, all within the {warmup} "
                            f"warm-up frames: nothing would be measured; lower --warmup or use a longer input")
        for _, config in configs:
            check_outputs(config, input_spec, "null", source)
        return {"frames": count, "size": [source.width, source.height], "photo": photo}
    finally:
        source.close()


def check_runnable(configs: list[tuple[str | None, PipelineConfig]]) -> None:
    """Each configuration's model (fetched now if needed, loaded on the CPU as its settings feed it: the
    layout, --model-size, --model-input) and device, so that the second configuration cannot fail on them
    after the first one's runs."""
    from stream.app import kernel_backend, load_estimator

    for _, config in configs:
        load_estimator(dataclasses.replace(config, device="cpu"), progress=True)  # UserError on a bad model
        kernel_backend(config.device)


def _require_frames(run: dict, label: str, warmup: int) -> dict:
    """A run that measured nothing has no figures to report: refuse it by name instead of a table of nan."""
    if run["frames"] == 0:
        raise UserError(f"bench {label}: no frame was measured (the input ended within the {warmup} warm-up "
                        f"frames); use a longer input or lower --warmup")
    return run


def short_runs_warning(reports: list[dict], frames: int) -> str | None:
    """One line naming every run that measured fewer frames than asked for, or None."""
    short = [f"{report['config']}/{name} {_measured_of_delivered(run)}"
             for report in reports for name, run in report["runs"].items()
             if run["frames"] < frames and not run.get("cut_short")]  # a run cut short is named in its table
    if not short:
        return None
    return (f"depthcam bench: warning: fewer than the {frames} frames asked for were measured: {', '.join(short)}; "
            f"the input is shorter than --frames + --warmup (or the live run dropped frames), so the figures "
            f"rest on fewer samples")


def dropped(run: dict) -> int:
    """A run's dropped frames: all those after the warm-up where the report has them (dropped_after_warmup, added
    to schema 2), else (an older report) those between its first and last measured frame."""
    return run.get("dropped_after_warmup", run["dropped_frames"])


def _measured_of_delivered(run: dict) -> str:
    """'77 of the 86 delivered after the warm-up (9 dropped)': figures that add up; '86' with nothing dropped. An
    older report knows only the drops between measured frames: '77 (4 dropped while measuring)'."""
    lost = dropped(run)
    if not lost:
        return str(run["frames"])
    if "dropped_after_warmup" not in run:
        return f"{run['frames']} ({lost} dropped while measuring)"
    return f"{run['frames']} of the {run['frames'] + lost} delivered after the warm-up ({lost} dropped)"


def report_warnings(document: dict) -> list[str]:
    """The caveats of a report, from its figures alone: the same lines for a run and for `bench --from`."""
    reports, requested = document["reports"], document.get("frames_requested")
    warnings = [short_runs_warning(reports, requested) if isinstance(requested, int) else None,
                busy_machine_warning(reports, document["machine"])]
    return [warning for warning in warnings if warning]


def input_line(document: dict) -> str:
    """What was measured and when, above the tables: two reports' tables side by side are told apart by it. When the
    measuring began and how long it took (an older report knows only when it was written: `created`)."""
    began = str(document.get("started") or document.get("created") or "an unknown date").replace("T", " ")
    took = document.get("duration_s")
    span = f" for {took:.1f} s" if _is_number(took) else ""
    record = document.get("reproduce")
    source = record.get("input") if isinstance(record, dict) else None
    photo = " (a photo, repeated as a still stream)" if isinstance(source, dict) and source.get("photo") else ""
    # a report of a benchmark stopped part-way lacks the runs after the stop: `bench --from` said nothing of it
    interrupted = document.get("interrupted") is True
    stopped = "; stopped part-way (Ctrl-C or a failure): the runs after the stop are missing" if interrupted else ""
    return f"input: {document.get('input') or 'unknown'}{photo}; measured {began}{span}{stopped}"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def busy_machine_warning(reports: list[dict], machine: dict) -> str | None:
    """One line naming every run during which other programs (or a VM's host) kept a good part of the CPU
    busy, or None: their figures are not this machine's, yet read the same. Measured against the cores `others`
    was counted on (the benchmark's affinity; an older report's, the whole machine's): a container's CPU quota is a
    share of time on them, not fewer of them, and compared with it a busy host read as more than the quota."""
    counted = machine.get("others_counted_on")
    cores = counted if _is_number(counted) else machine.get("cores") or 1
    most = max(0.5, 0.1 * cores)
    busy = [f"{report['config']}/{name} {run['cpu_cores']['others']:.1f} of {cores:g}"
            for report in reports for name, run in report["runs"].items()
            if isinstance((run.get("cpu_cores") or {}).get("others"), (int, float))
            and run["cpu_cores"]["others"] > most]
    if not busy:
        return None
    return (f"depthcam bench: warning: other programs (or a VM's host) kept cores busy while measuring: "
            f"{', '.join(busy)}; those figures are slower than this machine gives alone: measure again when it "
            f"is idle")


def json_ready(value: object) -> object:
    """NaN and infinity (an undefined rate or percentile) as null: bare NaN is not JSON and breaks
    strict parsers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value


def bench_one(config_name: str | None, args: argparse.Namespace, modes: list[str],
              config: PipelineConfig | None = None, into: list[dict] | None = None) -> dict:
    """One configuration's runs. `into` gets the report before the first run, so the runs that
    finished survive an interruption of a later one."""
    config = config if config is not None else bench_config(config_name, args)
    frames, warmup = args.frames, args.warmup
    report: dict = {"config": config_name or "default", "settings": config.to_dict(), "runs": {}}
    if into is not None:
        into.append(report)
    file_input = _input_spec(args.input, frames + warmup, live=False)
    runs = report["runs"]

    def measure(name: str, run: Callable[[], dict]) -> None:
        runs[name] = _require_frames(_keeping_what_was_measured(runs, name, run), f"{report['config']}/{name}",
                                     warmup)

    for mode in modes:  # in the order given: `--modes sequential,pipelined` runs sequential first
        if mode == "pipelined":
            measure("pipelined", lambda: run_pipelined(config, file_input, frames, warmup))
        elif mode == "sequential":
            measure("sequential", lambda: run_sequential(config, file_input, frames, warmup))
        elif mode == "batch":
            for batch in (1, 2, 4, 8):
                batched = dataclasses.replace(config, inference=dataclasses.replace(
                    config.inference, max_batch=batch, mode="sync"))
                measure(f"batch{batch}", lambda: run_pipelined(batched, file_input, frames, warmup))
            _say_single_calls(report)
        elif mode == "live":
            live_input = _input_spec(args.input, LIVE_SYNTHETIC_FRAMES, live=True)
            measure("live", lambda: run_pipelined(config, live_input, frames, warmup,
                                                  paced=paced_by_bench(live_input)))
    summarise_report(report)
    return report


def _say_single_calls(report: dict) -> None:
    """A line where the batch runs above 1 ran single calls (a batch-1 model: TCMonoDepth on a CPU), whose rows
    otherwise read as a batch size that made no difference."""
    single = [name for name, run in report["runs"].items()
              if name.startswith("batch") and name != "batch1" and run.get("model_batches") is False]
    if single:
        model = report["runs"][single[0]].get("model", "the model")
        print(f"depthcam bench: {model} takes batch 1 on this device: {', '.join(single)} ran their frames as single "
              f"calls (a model exported with a dynamic batch axis batches them)", file=sys.stderr)


def _keeping_what_was_measured(runs: dict, name: str, run: Callable[[], dict]) -> dict:
    """One run's figures. A run cut short (Ctrl-C, its input or model failing part-way) keeps the frames it
    measured, marked `cut_short`, and the benchmark then ends with the cause: a long camera benchmark stopped
    with Ctrl-C reported nothing at all."""
    try:
        return run()
    except CutShort as cut:
        if cut.summary["frames"] > 0:
            runs[name] = {**cut.summary, "cut_short": True}
        raise cut.cause from None


def summarise_report(report: dict) -> None:
    """The figures over a configuration's runs: the pipelined/sequential ratio and the measurement's own
    cost. Also for a configuration an interruption cut short, from the runs it finished."""
    runs = report["runs"]
    if "pipelined" in runs and "sequential" in runs:
        if report["settings"]["inference"]["mode"] == "sync":
            report["speedup_pipelined_over_sequential"] = (runs["pipelined"]["throughput_fps"]
                                                           / runs["sequential"]["throughput_fps"])
        else:  # the sequential baseline predicts depth on every frame, async depth only on the newest
            report["speedup_pipelined_over_sequential"] = None
            report["speedup_note"] = ASYNC_SPEEDUP_NOTE
    any_run = next(iter(runs.values()))
    per_frame_ms = 1000.0 / any_run["throughput_fps"] if any_run["throughput_fps"] > 0 else float("nan")
    stamps = 2 * len(STAGES) + 2  # each stage's start and end, the sink's start and end
    overhead_ms = measurement_overhead_ns(stamps) / 1e6
    report["measurement_overhead"] = {"per_frame_ms": overhead_ms, "fraction_of_frame_time": overhead_ms / per_frame_ms}


def _cell(value: float | None) -> str:
    """A table figure; an undefined one (NaN: too few frames for it) as a dash, not 'nan'."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.1f}"


def _cores(cpu: dict | None) -> str:
    """depthcam's cores busy, other programs' on the cores it may run on in brackets: 1.8 (0.1)."""
    if not cpu or cpu.get("depthcam") is None:
        return "–"
    others = cpu.get("others")
    return f"{cpu['depthcam']:.1f}" + (f" ({others:.1f})" if others is not None else "")


TAIL_PERCENTILES = (95, 99)  # the table's tail columns; pN is a 1-in-(100 / (100 - N)) figure


def few_samples_line(report: dict) -> str | None:
    """The tail percentiles that rest on too few frames to mean what they say: with under 100 / (100 - N) frames
    (100 for p99, 20 for p95), pN interpolates between the two largest samples: next to the max, not a tail."""
    parts = []
    for tail in TAIL_PERCENTILES:
        needed = round(100 / (100 - tail))
        short = [f"{name} {run['frames']}" for name, run in report["runs"].items() if run["frames"] < needed]
        if short:
            parts.append(f"p{tail} needs {needed} frames ({', '.join(short)} measured)")
    if not parts:
        return None
    return (f"too few frames for the tail: {'; '.join(parts)}; with fewer, pN lies between the two largest samples, "
            f"no 1-in-100 (or 1-in-20) figure: measure more frames (--frames)")


def startup_line(report: dict) -> str | None:
    """Each run's one-off costs, which its figures leave out: the build (input, model, kernels) and the first
    frame through the stages (ONNX Runtime's and the kernels' first calls)."""
    parts = []
    for name, run in report["runs"].items():
        startup = run.get("startup_ms")
        if startup:
            first = startup.get("first_frame")
            parts.append(f"{name} {_cell(startup.get('build'))} + {_cell(first)}")
    if not parts:
        return None
    return f"start-up, left out of the figures (ms, build + first frame): {', '.join(parts)}"


def source_line(report: dict) -> str | None:
    """Where a paced synthetic input fell behind its rate: the frames it skipped itself and how far its drawing ran
    past the exposure (left out of e2e), both the machine's doing, not the camera's it stands in for."""
    parts = []
    for name, run in report["runs"].items():
        late, skipped = run.get("source_late_ms"), run.get("dropped_at_capture") or 0
        if not isinstance(late, dict):  # not a paced synthetic input (or an older report)
            continue
        drew_late = isinstance(late.get("max"), (int, float)) and late["max"] >= 1.0
        said = ([f"skipped {skipped} of its {dropped(run)} dropped frames itself"] if skipped else []) + (
            [f"drew frames past their exposure (p50 {_cell(late['p50'])}, p95 {_cell(late['p95'])}, max "
             f"{_cell(late['max'])} ms, left out of e2e)"] if drew_late else [])
        if said:
            parts.append(f"{name} {' and '.join(said)}")
    if not parts:
        return None
    return (f"the synthetic input, drawn on the cores the pipeline runs on, fell behind its frame rate: "
            f"{'; '.join(parts)}; the machine was busy, not the camera it stands in for")


def format_table(report: dict, machine: dict | None = None) -> str:
    lines = [f"## {report['config']}", ""]
    if machine is not None and report["runs"]:
        lines += [setup_line(report, machine), ""]
    lines += ["| run | frames | fps | e2e p50 | p95 | p99 | max | depth p50 | refine p50 | render p50 | async net p50 "
              "| dropped | cores (others) |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, run in report["runs"].items():
        e2e, stages = run["end_to_end_ms"], run["stages"]
        network = _cell((run.get("async_network_ms") or {}).get("p50"))
        name += " (cut short)" if run.get("cut_short") else ""
        lines.append(f"| {name} | {run['frames']} | {_cell(run['throughput_fps'])} | {_cell(e2e['p50'])} | "
                     f"{_cell(e2e['p95'])} | {_cell(e2e['p99'])} | {_cell(e2e['max'])} | "
                     f"{_cell(stages['depth']['service_ms']['p50'])} | "
                     f"{_cell(stages['refine']['service_ms']['p50'])} | "
                     f"{_cell(stages['render']['service_ms']['p50'])} | {network} | {dropped(run)} | "
                     f"{_cores(run.get('cpu_cores'))} |")
    few = few_samples_line(report)
    if few:
        lines.append(f"\n{few}")
    startup = startup_line(report)
    if startup:
        lines.append(f"\n{startup}")
    source = source_line(report)
    if source:
        lines.append(f"\n{source}")
    speedup = report.get("speedup_pipelined_over_sequential")
    if speedup is not None and math.isfinite(speedup):  # NaN when a run measured under 2 frames
        lines.append(f"\npipelined / sequential throughput: {speedup:.2f}x")
    elif report.get("speedup_note"):
        lines.append(f"\npipelined / sequential throughput: not reported ({report['speedup_note']})")
    return "\n".join(lines)


def preflight(args: argparse.Namespace) -> tuple[list[str], list[tuple[str | None, PipelineConfig]], dict]:
    """Every check that needs no run, in one place and before the first run: options, output paths,
    every configuration, the input, models and devices. Returns the modes, the configurations and what the
    report says of the input (check_input's)."""
    modes = parse_modes(args.modes)
    if args.frames < 2:
        raise UserError(f"--frames {args.frames}: give at least 2 (a rate needs two frames)")
    if args.warmup < 0:
        raise UserError(f"--warmup {args.warmup}: give 0 or more")
    if _made_by_bench(args.input) and args.frames + args.warmup > SYNTHETIC_MAX_FRAMES:
        # found here, not after the model loaded as an error about a synthetic spec the user never wrote
        raise UserError(f"--frames {args.frames} with --warmup {args.warmup}: the synthetic input makes at most "
                        f"{SYNTHETIC_MAX_FRAMES:,} frames in all; give fewer (a long benchmark: a video file, or "
                        f"a camera, which runs until --frames frames were measured)")
    check_read_again(args.input)
    check_report_paths(args.json, args.plot, args.input)
    configs = load_bench_configs(args)
    # a synthetic scene is checked at the length it will be made
    given = None if args.input is None else _input_spec(args.input, args.frames + args.warmup, live=False)
    facts = check_input(given, args.warmup, configs)
    check_runnable(configs)
    return modes, configs, facts


def check_read_again(input_spec: str | None) -> None:
    """The benchmark opens its input once to check it, once to prime the stages and once a run: a video through a
    pipe (`cat clip.mp4 | depthcam bench -`, a named pipe) is gone after the first read, and the run then failed on
    what was left as "not a video, or truncated or corrupt". Refused before the model loads. A piped photo (kept in
    a file) and `< clip.mp4` (the file itself) are read again."""
    import stat

    from stream.piped_input import STDIN_NAMES, input_path

    if input_spec is None or input_spec.startswith(("synthetic:", "camera:")) or is_network_spec(input_spec):
        return
    try:
        mode = input_path(input_spec).stat().st_mode  # standard input: the pipe, or the file it was given
    except OSError:
        return  # no such file: check_input names it
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        what = " (standard input)" if input_spec in STDIN_NAMES else ""
        raise UserError(f"input {input_spec}{what} is a pipe, which can be read only once, and the benchmark reads "
                        f"its input once a run; save the video to a file (e.g. ... > clip.mp4) and give its name")


def _made_by_bench(input_spec: str | None) -> bool:
    """Whether the benchmark sets the input's length: the default synthetic scene, or one given without frames=."""
    return input_spec is None or (input_spec.startswith("synthetic:") and not synthetic_length_given(input_spec))


def print_report(from_reports: list[str], plot: str | None, given: list[str]) -> int:
    """`bench --from REPORT.json ...`: reports written before (also by an older version), their tables printed and
    plotted again without a run, several in one plot to compare them (a second --from replaced the first, and only
    one was shown); a file that is not a report is refused in one line."""
    from stream.bench_plot import load_report, plot_report

    if given:
        raise UserError(f"--from prints a report written before and runs nothing; leave out {', '.join(given)} "
                        f"(or leave out --from to run a benchmark)")
    documents = [load_report(name, SCHEMA_VERSION) for name in from_reports]
    if plot is not None:
        for name in from_reports:
            check_report_paths(None, plot, name)
    tables = Tables(sys.stdout)
    for name, document in zip(from_reports, documents):
        if len(documents) > 1:
            tables.say(f"# {name}\n")
        _print_document(document, tables)
    tables.say(TABLE_NOTE)
    if plot is not None:
        together = documents[0] if len(documents) == 1 else reports_together(from_reports, documents)
        _write_report("--plot", plot, lambda path: plot_report(together, path))
    return 0


def _print_document(document: dict, tables: Tables) -> None:
    """One report's caveats, machine, input and tables, as the run that wrote it printed them."""
    machine = document["machine"]
    for warning in report_warnings(document):  # a saved report reprints its caveats
        print(warning, file=sys.stderr)
    found = document.get("versions")  # a report edited by hand may lack them: its machine is still said
    tables.say(machine_line({"cores_usable": None, "os": "", "python": "", **machine},
                            found if isinstance(found, dict) else {}))
    for line in reproduce_lines(document):
        tables.say(line)
    tables.say(input_line(document) + "\n")
    for report in document["reports"]:
        tables.say(format_table(report, machine) + "\n")


def reports_together(names: list[str], documents: list[dict]) -> dict:
    """Several reports as one to plot: each configuration named after its file (`old.json: default`), so the
    same configuration measured twice gets two line styles, and the title holds a line for each report."""
    from stream.bench_plot import plot_title

    reports = [{**report, "config": f"{name}: {report['config']}"}
               for name, document in zip(names, documents) for report in document["reports"]]
    title = "\n".join(f"{name}: {plot_title(document)}" for name, document in zip(names, documents))
    return {**documents[0], "reports": reports, "title": title}


DEFAULT_INPUT = "synthetic:portrait?size=640x480&fps=30"  # what the report names the default input
PINNED = {"frames", "warmup", "modes"}  # written into the command even at their defaults, which may change
# where the report goes is no part of what was measured: run again as written, the command overwrote this report
NOT_REPRODUCED = {"from_report", "json", "plot"}
HASHED_AT_MOST = 1 << 30  # an input file larger than this (bytes) is not hashed: seconds of reading for a check


# The environment variables that change the figures: threads and their waiting (OpenMP's, Numba's, BLAS's), CUDA's
# device choice; with DEPTHCAM_* (the model cache)
TIMING_VARIABLES = frozenset({"OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NUMBA_NUM_THREADS",
                              "NUMBA_THREADING_LAYER", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                              "CUDA_VISIBLE_DEVICES", "OPENCV_FOR_THREADS_NUM"})


def user_environment() -> dict[str, str]:
    """The variables the user set that change the figures (not those depthcam sets itself on every run, which a
    report listed as if the user had: OMP_WAIT_POLICY=PASSIVE)."""
    from kernels import DEFAULTED_ENVIRONMENT

    return {name: os.environ[name] for name in sorted(os.environ)
            if (name in TIMING_VARIABLES or name.startswith("DEPTHCAM_"))
            and DEFAULTED_ENVIRONMENT.get(name) != os.environ[name]}


def reproduction(args: argparse.Namespace, input_facts: dict) -> dict:
    """How to run this benchmark again: the command, each configuration file's hash and text (a preset's hash:
    it may change with the version), and the input file's path, size and hash; the versions are the report's."""
    configs = [config_record(name) for name in [args.config, *args.compare] if name is not None]
    record = {"command": command_line(args), "configs": configs, "input": input_record(args.input, input_facts),
              "environment": user_environment()}
    model = Path(args.model).expanduser() if getattr(args, "model", None) else None
    if model is not None and model.is_file():  # a network file of the user's own: which one, by hash
        record["model"] = {"path": str(model.resolve()), "bytes": model.stat().st_size, "sha256": sha256_of(model)}
    return record


def command_line(args: argparse.Namespace) -> str:
    """The bench command as a shell line: every option given (a network input's password left out), and --frames,
    --warmup and --modes even at their defaults; not --json and --plot, the outputs. Built from the parsed options,
    by each one add_bench_arguments adds."""
    parser = argparse.ArgumentParser(add_help=False)
    add_bench_arguments(parser)
    words = ["depthcam", "bench"]
    for action in parser._actions:
        value = getattr(args, action.dest, action.default)
        if action.dest in NOT_REPRODUCED or value is None or (value == action.default and action.dest not in PINNED):
            continue
        values = [str(item) for item in (value if isinstance(value, list) else [value])]
        if action.dest == "input":
            values = [redact(item) for item in values]
        words += action.option_strings[:1] + values
    from stream.console import command_word  # quoted as this system's shell reads it (cmd, PowerShell: not '...')

    return " ".join(command_word(word) for word in words)


def config_record(name: str) -> dict:
    """A configuration as the report keeps it: a preset by name and hash, a file by path, hash and text."""
    path = resolve_config_path(name)
    data = path.read_bytes()
    preset = path.resolve().parent == CONFIG_DIR.resolve()
    record: dict = {"name": name, "preset": preset, "sha256": hashlib.sha256(data).hexdigest()}
    if not preset:
        record.update(path=str(path.resolve()), text=data.decode("utf-8", errors="replace"))
    return record


def input_record(spec: str | None, facts: dict) -> dict:
    """The input as the report keeps it: its spec and what check_input found, and for a file its absolute path,
    size in bytes and hash (None above HASHED_AT_MOST)."""
    record: dict = {"spec": redact(spec) if spec else DEFAULT_INPUT, **facts}
    path = Path(spec).expanduser() if spec else None
    if path is not None and path.is_file():
        size = path.stat().st_size
        record.update(path=str(path.resolve()), bytes=size,
                      sha256=sha256_of(path) if size <= HASHED_AT_MOST else None)
    return record


def reproduce_lines(document: dict) -> list[str]:
    """The command that measured a report and what it read beside it (configuration files, the input file),
    by hash: to run it again, or to tell why two reports differ. Nothing for a report older than this record."""
    record = document.get("reproduce")
    if not isinstance(record, dict) or not isinstance(record.get("command"), str):
        return []
    lines = [f"reproduce: {record['command']}"]
    for config in record.get("configs") or []:
        if isinstance(config, dict) and not config.get("preset"):
            lines.append(f"  config {config.get('name')}: sha256 {config.get('sha256')} (its text: the report's "
                         f"reproduce.configs)")
    source = record.get("input")
    if isinstance(source, dict) and source.get("path"):
        lines.append(f"  input {source['path']}: {source.get('bytes')} bytes{_input_shape(source)}, "
                     f"sha256 {source.get('sha256')}")
    model = record.get("model")
    if isinstance(model, dict) and model.get("path"):
        lines.append(f"  model {model['path']}: {model.get('bytes')} bytes, sha256 {model.get('sha256')}")
    environment = record.get("environment")
    if isinstance(environment, dict) and environment:
        lines.append("  environment: " + " ".join(f"{name}={value}" for name, value in environment.items()))
    return lines


def _input_shape(source: dict) -> str:
    """', 30 frames of 320x240' (', a photo of 64x48'), or nothing where the report lacks the size."""
    size = source.get("size")
    if not (isinstance(size, list) and len(size) == 2):
        return ""
    if source.get("photo"):
        return f", a photo of {size[0]}x{size[1]}"
    return f", {source.get('frames')} frames of {size[0]}x{size[1]}"


REPORT_OPTIONS = {"from_report", "plot"}  # what `bench --from` takes: every other bench option is a run's


def run_options_given(args: argparse.Namespace) -> list[str]:
    """The run options (INPUT, --frames, --modes, --model, ...) `args` gives a value other than their default, by
    each one add_bench_arguments adds (a new option is covered too): `bench --from` silently left them out."""
    parser = argparse.ArgumentParser(add_help=False)
    add_bench_arguments(parser)
    return [action.option_strings[0] if action.option_strings else action.metavar or action.dest
            for action in parser._actions
            if action.dest not in REPORT_OPTIONS and getattr(args, action.dest, action.default) != action.default]


def run_bench_command(args: argparse.Namespace) -> int:
    if getattr(args, "from_report", None) is not None:
        return print_report(args.from_report, args.plot, run_options_given(args))
    if args.input is not None:
        from stream.camera import camera_input

        args.input = camera_input(args.input)  # `bench 0`, `bench /dev/video0`: camera:0, as `run` reads them
    modes, configs, input_facts = preflight(args)
    reproduce = reproduction(args, input_facts)  # the files as the runs read them (the input hashed before timing)
    machine = machine_info()  # before the runs: the load average is the machine's, not the benchmark's
    started, started_ns = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.monotonic_ns()  # the runs', not the checks'
    reports: list[dict] = []
    interrupted = False
    failure: UserError | None = None
    try:
        for name, config in configs:
            print(f"depthcam bench: {name or 'default'} ({', '.join(modes)}, {args.frames} frames)", file=sys.stderr)
            with model_failures_in_one_line():
                bench_one(name, args, modes, config, into=reports)
    # Ctrl-C, SIGTERM, or an input that failed part-way (a camera unplugged): what finished is still worth its
    # table and report
    except (KeyboardInterrupt, UserError) as exc:
        interrupted = True
        failure = exc if isinstance(exc, UserError) else None
        stopped = f"error: {failure}" if failure is not None else "interrupted"
        reports = [report for report in reports if report["runs"]]
        if not reports:  # an earlier report under the same name stays as it was
            if args.json or args.plot:
                print(f"depthcam bench: {'stopped' if failure else 'interrupted'} before any run finished; "
                      f"no report written", file=sys.stderr)
            raise
        for report in reports:
            if "measurement_overhead" not in report:  # the one cut short
                summarise_report(report)
        cut = any(run.get("cut_short") for report in reports for run in report["runs"].values())
        print(f"depthcam bench: {stopped}; reporting the runs that finished"
              + (" and what the one cut short had measured" if cut else ""), file=sys.stderr)
    measured = min(run["frames"] for report in reports for run in report["runs"].values())
    duration_s = (time.monotonic_ns() - started_ns) / 1e9
    document = {"schema_version": SCHEMA_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "started": started, "duration_s": duration_s, "interrupted": interrupted,
                "input": redact(args.input) if args.input else DEFAULT_INPUT,
                "frames": measured,  # what was measured (the fewest of any run), not what was asked for
                "frames_requested": args.frames,
                "warmup": args.warmup, "machine": machine, "versions": versions(),
                "reproduce": reproduce, "reports": reports}
    for warning in report_warnings(document):
        print(warning, file=sys.stderr)
    json_out = args.json is not None and _is_standard_output(args.json)
    tables = Tables(sys.stderr if json_out else sys.stdout)  # `--json - | jq`: standard output holds the JSON
    tables.say(machine_line(document["machine"], document["versions"]))
    for line in reproduce_lines(document):
        tables.say(line)
    tables.say(input_line(document) + "\n")
    for report in reports:
        tables.say(format_table(report, document["machine"]) + "\n")
    tables.say(TABLE_NOTE)
    if args.json:
        text = json.dumps(json_ready(document), indent=2, allow_nan=False)
        if json_out:
            print(text, flush=True)
        else:
            _write_report("--json", args.json,
                          lambda path: replace_atomically(path, lambda part: part.write_text(text)))
    if args.plot:
        from stream.bench_plot import plot_report

        _write_report("--plot", args.plot, lambda path: plot_report(document, path))
    return failure.exit_code if failure is not None else 130 if interrupted else 0


class Tables:
    """Where the tables are printed, which may be gone by then: the terminal closed (SIGHUP stopped the benchmark:
    EIO), the reader of a pipe left (EPIPE). The tables are then lost, not the --json and --plot files after them
    (the write raised, and the whole report was lost)."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.gone = False

    def say(self, text: str) -> None:
        if self.gone:
            return
        try:
            print(text, file=self.stream, flush=True)
        except (OSError, ValueError):  # ValueError: the stream closed
            self.gone = True
            _silence(self.stream)


def _silence(stream) -> None:
    """Point a gone stream's file at the null device: what its buffer still holds is flushed there at exit, not
    raised again ("Exception ignored ... BrokenPipeError")."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    except (OSError, ValueError, AttributeError):  # no file (a test's capture)
        pass


def _write_report(flag: str, name: str, write: Callable[[Path], None]) -> None:
    """A report file, written whole or not at all (an earlier one of that name stays); one line if not."""
    try:
        write(Path(name).expanduser())
    except OSError as exc:
        raise ReportNotWritten(f"cannot write {flag} {name}: {exc.strerror or exc}; the tables above hold the "
                               f"figures (free some space, or give another place)") from None
    print(f"depthcam bench: wrote {name}", file=sys.stderr)
