"""Parallel Numba kernels called from several threads at once, as the pipeline's stages call them."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CONCURRENT_KERNELS = """
import threading
import numpy as np
from kernels.bilateral import joint_bilateral, refine_live
from kernels.colour import ColourTables, convert_rgb48
from kernels.dof_cpu import depth_of_field_cpu

rng = np.random.default_rng(0)
image = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
disparity = rng.random((96, 128), dtype=np.float32)
rgb16 = rng.integers(0, 65536, (96, 128, 3), dtype=np.uint16)
tables = ColourTables("hlg", 1000.0)
work = [lambda: depth_of_field_cpu(image, disparity, 0.5, 8.0),
        lambda: joint_bilateral(disparity, image, 4, 3.0, 0.1, backend="cpu"),
        lambda: refine_live(disparity[::4, ::4].copy(), image, work_width=32, backend="cpu"),
        lambda: convert_rgb48(rgb16, tables)]
threads = [threading.Thread(target=lambda job=job: [job() for _ in range(40)]) for job in work]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
import numba
print("finished on", numba.threading_layer())
"""


@pytest.mark.parametrize("layer", ["workqueue", "default"])
def test_kernels_run_from_several_threads_on_every_threading_layer(layer):
    # Numba's workqueue layer (its fallback where neither TBB nor OpenMP is found, e.g. pip's Numba on
    # macOS) aborts the whole process on concurrent launches: there the kernels must take turns.
    env = {**os.environ, "NUMBA_THREADING_LAYER": layer, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", CONCURRENT_KERNELS], capture_output=True, text=True,
                            cwd=REPO, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "finished on" in result.stdout and (layer != "workqueue" or "finished on workqueue" in result.stdout)


def test_only_the_workqueue_layer_takes_turns():
    import numba

    from kernels import cpu_threads

    section = cpu_threads.parallel_section()  # decides the layer at the first launch
    assert (section is cpu_threads._turns) == (numba.threading_layer() == "workqueue")
