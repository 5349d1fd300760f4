"""Numba's parallel CPU kernels called from several threads at once (the pipeline's stages, the capture
thread's HDR decode).

Safe on Numba's TBB and OpenMP threading layers; fatal on its workqueue layer, where Numba aborts the
whole process ("Concurrent access has been detected"). Numba falls back to workqueue where neither
library is found (pip's Numba on macOS, for one): there the kernels take turns.
"""
from __future__ import annotations

import contextlib
import threading
from typing import ContextManager

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
