"""Numba's parallel CPU kernels called from several threads at once (the pipeline's stages, the capture
thread's HDR decode), and OpenCV's one thread pool that every stage's cv2 calls share.

Safe on Numba's TBB and OpenMP threading layers; fatal on its workqueue layer, where Numba aborts the
whole process ("Concurrent access has been detected"). Numba falls back to workqueue where neither
library is found (pip's Numba on macOS, for one): there the kernels take turns.
"""
from __future__ import annotations

import contextlib
import os
import threading
from typing import ContextManager, Iterable, Mapping

import numpy as np
from numba import njit, prange

import kernels.numba_cache  # noqa: F401 (first: every cached kernel's stamp is the whole package's sources)

_turns = threading.Lock()
_take_turns: bool | None = None  # decided at the first parallel launch, which is when Numba picks its layer


@njit(parallel=True, cache=True)
def _first_launch(values):  # pragma: no cover - Numba
    for i in prange(values.shape[0]):
        values[i] = i


def _layer_takes_turns() -> bool:
    global _take_turns
    if _take_turns is None:
        with _turns:  # the first launch itself must not be concurrent
            if _take_turns is None:
                import numba

                _first_launch(np.empty(2))
                _take_turns = numba.threading_layer() == "workqueue"
    return _take_turns


def parallel_section() -> ContextManager:
    """Hold this around calls of parallel Numba kernels: a lock on the workqueue layer, nothing elsewhere."""
    return _turns if _layer_takes_turns() else contextlib.nullcontext()


# OpenCV's own variable for its thread count, read when cv2 loads: where a user set it, it is theirs
OPENCV_THREADS_VARIABLE = "OPENCV_FOR_THREADS_NUM"
OPENCV_DEFAULT = -1  # cv2.setNumThreads's "OpenCV's own default": every core, or OPENCV_FOR_THREADS_NUM


def opencv_threads(stage_threads: Iterable[int], cpus: int, environ: Mapping[str, str] = os.environ) -> int | None:
    """OpenCV's thread count for a run whose CPU stages (refine, render) are configured with `stage_threads`
    (none: the kernels run on the GPU): the largest, at most `cpus`, where each stage is limited; OpenCV's default
    where one takes every core (0) or none runs on the CPU; None (left as it is) where the user set
    OPENCV_FOR_THREADS_NUM.

    OpenCV has one pool for the process, which some of each stage's cv2 calls wake (refine's colour conversion for
    the motion test: a tenth of that stage's CPU time ran on the pool at 720p; the focus's face detection): where
    the stages were each held to one core, those calls still spread over every core, and the stage could wait for a
    pool thread that other threads had pushed off its core. Measured with live-cpu on two cores that other
    programs kept busy (640x480, paced, pairs of runs in one process): one thread gave 10 of 10 pairs the higher
    fps, median +8 %, refine p50 -25 %, CPU per frame -8 %; on the same cores idle, and at 1280x720, no consistent
    difference. With every stage on all cores (the default preset, file runs) one thread was slower or the same:
    there OpenCV keeps its default."""
    if environ.get(OPENCV_THREADS_VARIABLE, "").strip():
        return None
    counts = list(stage_threads)
    return min(max(counts), max(cpus, 1)) if counts and all(counts) else OPENCV_DEFAULT


_before_runs: int | None = None  # OpenCV's count before a run limited it: the process's (a library caller's own)


def set_opencv_threads(stage_threads: Iterable[int]) -> None:
    """OpenCV's process-wide thread count for this run (`opencv_threads`); set at each run's build, so that a run
    after another in the same process (the benchmark's --compare) gets its own. A run that does not limit it gives
    back the count the process had before a run limited it (a library caller's own cv2.setNumThreads, which a
    default run had reset to OpenCV's default)."""
    global _before_runs
    import cv2

    wanted = opencv_threads(stage_threads, cv2.getNumberOfCPUs())
    if wanted is None:
        return
    if wanted == OPENCV_DEFAULT:
        if _before_runs is not None:
            cv2.setNumThreads(_before_runs)
            _before_runs = None
        return
    if _before_runs is None:
        _before_runs = cv2.getNumThreads()
    cv2.setNumThreads(wanted)
