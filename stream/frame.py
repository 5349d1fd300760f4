"""The unit of work that flows through the pipeline."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def now_ns() -> int:
    """The pipeline's one clock: monotonic, nanoseconds."""
    return time.perf_counter_ns()


@dataclass
class Frame:
    """One captured frame and what each stage adds to it.

    `disparity` is the model's output at the model's resolution, normalised to [0, 1] with a
    range smoothed over time (larger = nearer). `refined` is the disparity at the frame's
    resolution after the guided refinement; `output` is the rendered BGR image. When those stages
    run on the GPU, `disparity` and `refined` are CuPy arrays (`kernels.backend.to_host` copies one).
    """

    index: int
    capture_ns: int
    image: np.ndarray  # BGR uint8, H x W x 3
    pts_seconds: float | None = None  # presentation time in the source, for file outputs
    ground_truth: np.ndarray | None = None  # float32 disparity in [0, 1] (synthetic sources)
    disparity: np.ndarray | None = None
    depth_index: int | None = None  # which frame the disparity was predicted from (async depth)
    refined: np.ndarray | None = None
    focus: float | None = None
    output: np.ndarray | None = None
    stamps: dict[str, int] = field(default_factory=dict)  # stage name -> perf_counter_ns at its end
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def stamp(self, stage: str) -> None:
        self.stamps[stage] = now_ns()
