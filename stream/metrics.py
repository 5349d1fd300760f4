"""Per-frame timestamps at every stage boundary, summarised as latency percentiles and throughput.

Each stage stamps `<name>.start` when it takes a batch and `<name>` when it hands it on (the clock
is `time.perf_counter_ns`, monotonic). A stage's latency is its own service time (start → end);
the time a frame waits in the queue before it is reported apart, so a slow stage shows up in its
own row and in the end-to-end figure, and nowhere else. The sink is the last row (`sink.start` → `sink`: a
video file's encoding, a window's display), so the rows' waits and services add up to end to end.
Beside the wall-clock figures, the CPU the process and other programs used while measuring (`cpu_cores`): a
stage time that grew because another program held the cores looks the same as a slow stage otherwise. Other
programs are counted on the cores this process may run on (its affinity: taskset, docker --cpuset-cpus), which
are the only ones they can take from it; a program busy on a core it may not use slows nothing.
"""
from __future__ import annotations

import os
import time
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from stream.frame import Frame

PERCENTILES = (50, 95, 99)
SINK = "sink"  # the last stage of every frame, timed after the recorder's own stages
CPU_READ_EVERY_NS = 100_000_000  # the CPU clocks are read at most this often while measuring (a file read)
_PROC_STAT = "/proc/stat"


@dataclass(frozen=True)
class CpuClock:
    """One reading: wall time, this process's CPU time (all its threads), and the time the cores were busy
    (everything but idle and I/O wait: other programs, and time a VM's host took, counted as steal), all in ns;
    `machine_busy_ns` is None where /proc/stat is missing (not Linux). `busy_cpus`: the CPUs that busy time is
    summed over (this process's affinity); None: the whole machine's (/proc/stat's first line)."""

    wall_ns: int
    process_ns: int
    machine_busy_ns: int | None
    busy_cpus: frozenset[int] | None = None


def machine_busy_ns(path: str = _PROC_STAT) -> int | None:
    """The machine's busy CPU time since boot, summed over its cores, from /proc/stat's first line."""
    return cpus_busy_ns(None, path)[0]


def cpus_busy_ns(cpus: Collection[int] | None, path: str = _PROC_STAT) -> tuple[int | None, frozenset[int] | None]:
    """The busy CPU time since boot summed over `cpus` (their `cpuN` lines), and the CPUs it is summed over. The
    whole machine's (the first line), with None for the CPUs, where `cpus` is None or empty, or one of them has
    no line (a /proc/stat that is not the kernel's: a container's lxcfs numbers its own CPUs)."""
    lines = _cpu_lines(path)
    if lines is None:
        return None, None
    if cpus and all(f"cpu{cpu}" in lines for cpu in cpus):
        ticks = [_busy_ticks(lines[f"cpu{cpu}"]) for cpu in cpus]
        if None not in ticks:
            return _ticks_ns(sum(ticks)), frozenset(cpus)  # type: ignore[arg-type]
    whole = _busy_ticks(lines.get("cpu", []))
    return (None if whole is None else _ticks_ns(whole)), None


def _cpu_lines(path: str) -> dict[str, list[int]] | None:
    """/proc/stat's CPU lines by name ('cpu': the machine's, 'cpu0'...), read up to the first other line (the
    interrupt counts after them run to thousands of figures). None where it cannot be read."""
    lines: dict[str, list[int]] = {}
    try:
        with open(path) as handle:
            for line in handle:
                name, *values = line.split() or [""]
                if not name.startswith("cpu"):
                    break
                lines[name] = [int(value) for value in values]
    except (OSError, ValueError):
        return None
    return lines


def _busy_ticks(fields: list[int]) -> int | None:
    """One CPU line's busy clock ticks: user nice system idle iowait irq softirq steal, less idle and I/O wait
    (guest is inside user already). None for a line too short to be one."""
    if len(fields) < 5:
        return None
    return sum(fields[:8]) - fields[3] - fields[4]


def _ticks_ns(ticks: int) -> int:
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def affinity() -> frozenset[int] | None:
    """The CPUs this process may run on (taskset, docker --cpuset-cpus); None where the OS does not say (macOS,
    Windows)."""
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def others_counted_on() -> int | None:
    """How many cores `cpu_cores`' `others` is counted on: this process's affinity where /proc/stat has a line for
    each of its CPUs, else the whole machine's; None where nothing is counted (not Linux)."""
    busy, cpus = cpus_busy_ns(affinity(), _PROC_STAT)
    if busy is None:
        return None
    return len(cpus) if cpus is not None else os.cpu_count()


def read_cpu_clock() -> CpuClock:
    wall, process = time.perf_counter_ns(), time.process_time_ns()
    busy, cpus = cpus_busy_ns(affinity(), _PROC_STAT)  # looked up here: a test reads a made-up one
    return CpuClock(wall, process, busy, cpus)


def cpu_cores(start: CpuClock | None, end: CpuClock | None) -> dict[str, float | None]:
    """Cores kept busy on average between two readings: by this process, and by everything else on the cores it
    may run on (the whole machine where the readings could not tell them apart). None for `others` where the
    readings were summed over different CPUs (the affinity changed while measuring)."""
    if start is None or end is None or end.wall_ns <= start.wall_ns:
        return {"depthcam": None, "others": None}
    wall = end.wall_ns - start.wall_ns
    ours = (end.process_ns - start.process_ns) / wall
    others = None
    if start.machine_busy_ns is not None and end.machine_busy_ns is not None and start.busy_cpus == end.busy_cpus:
        # the two clocks tick differently (10 ms ticks against ns): never below 0
        others = max(0.0, (end.machine_busy_ns - start.machine_busy_ns) / wall - ours)
        if start.busy_cpus is not None:  # nor more than the cores counted leave beside ours
            others = min(others, max(0.0, len(start.busy_cpus) - ours))
    return {"depthcam": ours, "others": others}


def summarise_ms(values_ns: list[int] | np.ndarray) -> dict[str, float]:
    return percentiles(np.asarray(values_ns, dtype=np.float64) / 1e6)


def percentiles(values: np.ndarray) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan"),
                "mean": float("nan"), "count": 0}
    p50, p95, p99 = np.percentile(values, PERCENTILES)
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(values.max()),
            "mean": float(values.mean()), "count": int(values.size)}


def live_summary(captured: int, processed: int, dropped: int, latency_ns, delivered: str = "captured") -> str:
    """The line a live run ends with, e.g. "432 frames captured, 139 processed, 290 dropped to keep up (3 in flight at
    the stop); capture to output latency p50 96 ms, p95 142 ms": what a streamer checks after a session.
    `delivered`: how the frames came ("played" for a video file paced for a window: no camera captured them)."""
    line = f"{captured} frames {delivered}, {processed} processed, {dropped} dropped to keep up"
    in_flight = captured - processed - dropped
    if in_flight > 0:
        line += f" ({in_flight} in flight at the stop)"
    if len(latency_ns):
        latency = percentiles(np.asarray(latency_ns, dtype=np.float64) / 1e6)
        line += f"; capture to output latency p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms"
    return line


@dataclass
class LatencyRecorder:
    """Collects the stamps of frames that reach the sink; the first `warmup` frames are left out."""

    stages: list[str]
    warmup: int = 0
    seen: int = 0
    service_ns: dict[str, list[int]] = field(default_factory=dict)
    wait_ns: dict[str, list[int]] = field(default_factory=dict)
    end_to_end_ns: list[int] = field(default_factory=list)
    sink_ns: list[int] = field(default_factory=list)
    capture_ns: list[int] = field(default_factory=list)
    depth_age: list[int] = field(default_factory=list)
    network_ns: list[int] = field(default_factory=list)  # async depth: the network's own time per prediction
    source_indices: list[int] = field(default_factory=list)  # of the measured frames, to count what was dropped
    cpu_first: CpuClock | None = None  # at the first measured frame
    cpu_last: CpuClock | None = None  # at a measured frame at most CPU_READ_EVERY_NS before the last one
    frame_size: list[int] | None = None  # [width, height] of the last measured frame (a camera's is known late)
    last_warmup_index: int | None = None  # the source index of the last warm-up frame that reached the sink
    first_delivered: int | None = None  # source indices the input delivered (delivered() tells them), first and last
    last_delivered: int | None = None
    skipped: list[tuple[int, int]] = field(default_factory=list)  # source indices the input itself skipped, first-last
    # per measured frame, the time a paced synthetic input's drawing ran past its exposure (a stand-in's own cost)
    source_late_ns: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        for stage in self._rows():
            self.service_ns.setdefault(stage, [])
            self.wait_ns.setdefault(stage, [])

    def _rows(self) -> list[str]:
        return [*self.stages, SINK] if SINK not in self.stages else list(self.stages)

    def record(self, frame: Frame) -> None:
        self.seen += 1
        if self.seen <= self.warmup:
            self.last_warmup_index = frame.index
            return
        sink_time = frame.stamps[SINK]
        previous = frame.capture_ns
        for stage in self._rows():
            # a sink not timed on its own (the benchmark's sequential run) took no time: it waited until it was reached
            start = frame.stamps.get(f"{stage}.start", sink_time if stage == SINK else None)
            end = frame.stamps.get(stage)
            if start is None or end is None:
                continue
            self.wait_ns[stage].append(start - previous)
            self.service_ns[stage].append(end - start)
            previous = end
        self._read_cpu()
        self.end_to_end_ns.append(sink_time - frame.capture_ns)
        self.sink_ns.append(sink_time)
        self.capture_ns.append(frame.capture_ns)
        self.source_indices.append(frame.index)
        shape = getattr(frame.image, "shape", None)
        if shape is not None:
            self.frame_size = [int(shape[1]), int(shape[0])]
        if frame.depth_index is not None:
            self.depth_age.append(frame.index - frame.depth_index)
        if "network_ns" in frame.extra:
            self.network_ns.append(frame.extra["network_ns"])
        if "source_late_ns" in frame.extra:
            self.source_late_ns.append(frame.extra["source_late_ns"])

    def _read_cpu(self) -> None:
        """The CPU clocks at the first measured frame and then every CPU_READ_EVERY_NS (not at every frame:
        /proc/stat is a file to read)."""
        last = self.cpu_last or self.cpu_first
        if last is None or time.perf_counter_ns() - last.wall_ns >= CPU_READ_EVERY_NS:
            reading = read_cpu_clock()
            if self.cpu_first is None:
                self.cpu_first = reading
            else:
                self.cpu_last = reading

    @property
    def frames(self) -> int:
        return len(self.end_to_end_ns)

    @property
    def dropped_while_measuring(self) -> int:
        """Source frames between the first and the last measured one that never reached the sink (a live
        queue's drops, the warm-up's and those after the run's end left out)."""
        if not self.source_indices:
            return 0
        return self.source_indices[-1] - self.source_indices[0] + 1 - len(self.source_indices)

    def delivered(self, index: int) -> None:
        """The input delivered the frame of this source index (the capture side calls it, before any queue); a gap
        after the last one is frames the input skipped itself (a paced synthetic input that fell behind)."""
        if self.last_delivered is not None and index > self.last_delivered + 1:
            self.skipped.append((self.last_delivered + 1, index - 1))
        self.first_delivered = index if self.first_delivered is None else self.first_delivered
        self.last_delivered = index

    def dropped_after_warmup(self, input_ended: bool) -> int:
        """Source frames after the last warm-up one that never reached the sink: those between measured frames,
        and, where the input ended (a file), those after the last measured one, which dropped_while_measuring
        leaves out (96 frames, 10 of warm-up: 77 measured and 9 dropped, not 4). A run stopped once it measured
        enough leaves the frames still in flight uncounted. Without delivered(): dropped_while_measuring."""
        if self.last_delivered is None or not self.source_indices:
            return self.dropped_while_measuring
        before, last = self._after_warmup(input_ended)
        return max(0, last - before - len(self.source_indices))

    def _after_warmup(self, input_ended: bool) -> tuple[int, int]:
        """The source indices dropped_after_warmup counts in: after `before`, up to `last` (both delivered())."""
        assert self.last_delivered is not None and self.first_delivered is not None and self.source_indices
        before = self.last_warmup_index if self.last_warmup_index is not None else self.first_delivered - 1
        return before, self.last_delivered if input_ended else self.source_indices[-1]

    def dropped_at_capture(self, input_ended: bool) -> int:
        """Of dropped_after_warmup, the frames the input skipped itself, before any queue: a paced synthetic input
        drawn on the same cores that fell more than a frame behind its rate moves on to its newest exposure."""
        if self.last_delivered is None or not self.source_indices:
            return 0
        before, last = self._after_warmup(input_ended)
        return sum(max(0, min(high, last) - max(low, before + 1) + 1) for low, high in self.skipped)

    def throughput_fps(self) -> float:
        if len(self.sink_ns) < 2:
            return float("nan")
        span = (self.sink_ns[-1] - self.sink_ns[0]) / 1e9
        return (len(self.sink_ns) - 1) / span if span > 0 else float("nan")

    def summary(self) -> dict:
        return {
            "frames": self.frames,
            "frame_size": self.frame_size,
            "warmup_frames": min(self.seen, self.warmup),
            "throughput_fps": self.throughput_fps(),
            "end_to_end_ms": summarise_ms(self.end_to_end_ns),
            "stages": {stage: {"service_ms": summarise_ms(self.service_ns[stage]),
                               "queue_wait_ms": summarise_ms(self.wait_ns[stage])} for stage in self._rows()},
            "depth_age_frames": percentiles(np.asarray(self.depth_age)) if self.depth_age else None,
            "async_network_ms": summarise_ms(self.network_ns) if self.network_ns else None,
            # a paced synthetic input's drawing past its frames' exposure, left out of end_to_end_ms; null elsewhere
            "source_late_ms": summarise_ms(self.source_late_ns) if self.source_late_ns else None,
            "cpu_cores": cpu_cores(self.cpu_first, self.cpu_last),
            "samples_ms": self.samples_ms(),
        }

    def samples_ms(self) -> dict[str, list[float]]:
        """Per-frame values in frame order, for timelines and histograms."""
        def ms(values: list[int]) -> list[float]:
            return [round(v / 1e6, 3) for v in values]

        samples = {"end_to_end": ms(self.end_to_end_ns)}
        samples.update({stage: ms(self.service_ns[stage]) for stage in self._rows()})
        if self.network_ns:  # async depth: the network's own time per prediction (the depth row is its hand-over)
            samples["async_network"] = ms(self.network_ns)
        return samples
