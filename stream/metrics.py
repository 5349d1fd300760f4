"""Per-frame timestamps at every stage boundary, summarised as latency percentiles and throughput.

Each stage stamps `<name>.start` when it takes a batch and `<name>` when it hands it on (the clock
is `time.perf_counter_ns`, monotonic). A stage's latency is its own service time (start → end);
the time a frame waits in the queue before it is reported apart, so a slow stage shows up in its
own row and in the end-to-end figure, and nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stream.frame import Frame

PERCENTILES = (50, 95, 99)


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

    def __post_init__(self) -> None:
        for stage in self.stages:
            self.service_ns.setdefault(stage, [])
            self.wait_ns.setdefault(stage, [])

    def record(self, frame: Frame) -> None:
        self.seen += 1
        if self.seen <= self.warmup:
            return
        previous = frame.capture_ns
        for stage in self.stages:
            start, end = frame.stamps.get(f"{stage}.start"), frame.stamps.get(stage)
            if start is None or end is None:
                continue
            self.wait_ns[stage].append(start - previous)
            self.service_ns[stage].append(end - start)
            previous = end
        sink_time = frame.stamps["sink"]
        self.end_to_end_ns.append(sink_time - frame.capture_ns)
        self.sink_ns.append(sink_time)
        self.capture_ns.append(frame.capture_ns)
        self.source_indices.append(frame.index)
        if frame.depth_index is not None:
            self.depth_age.append(frame.index - frame.depth_index)
        if "network_ns" in frame.extra:
            self.network_ns.append(frame.extra["network_ns"])

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

    def throughput_fps(self) -> float:
        if len(self.sink_ns) < 2:
            return float("nan")
        span = (self.sink_ns[-1] - self.sink_ns[0]) / 1e9
        return (len(self.sink_ns) - 1) / span if span > 0 else float("nan")

    def summary(self) -> dict:
        return {
            "frames": self.frames,
            "warmup_frames": min(self.seen, self.warmup),
            "throughput_fps": self.throughput_fps(),
            "end_to_end_ms": summarise_ms(self.end_to_end_ns),
            "stages": {stage: {"service_ms": summarise_ms(self.service_ns[stage]),
                               "queue_wait_ms": summarise_ms(self.wait_ns[stage])} for stage in self.stages},
            "depth_age_frames": percentiles(np.asarray(self.depth_age)) if self.depth_age else None,
            "async_network_ms": summarise_ms(self.network_ns) if self.network_ns else None,
            "samples_ms": self.samples_ms(),
        }

    def samples_ms(self) -> dict[str, list[float]]:
        """Per-frame values in frame order, for timelines and histograms."""
        def ms(values: list[int]) -> list[float]:
            return [round(v / 1e6, 3) for v in values]

        samples = {"end_to_end": ms(self.end_to_end_ns)}
        samples.update({stage: ms(self.service_ns[stage]) for stage in self.stages})
        return samples
