"""The exact gathers' one-column and 8-lane taps add the same sums on other CPUs than this one, and a render's exact
gathers those of the per-offset order.

Under fastmath LLVM fused and reassociated the two forms alike on one CPU (Skylake-X, where the suite was written) and
1 ulp apart at times on others (Haswell, Zen 4 and 5, generic x86-64): `test_eight_lane_taps_add_what_one_lane_taps_add`
failed on a Zen 5 machine (kernels/dof_cpu_common.py: `_UNFUSED`). Numba compiles for the CPU NUMBA_CPU_NAME names;
only CPUs whose instructions this machine has are tried (code for another would stop on an illegal instruction)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# each CPU with the instruction sets its code uses
# (Skylake-X, where they always agreed, left out: each CPU compiles the renderer again, ~35 s)
CPUS = {"generic": (), "haswell": ("avx2", "fma", "bmi2")}


def _host_features() -> set[str]:
    import llvmlite.binding as llvm

    return {name for name, on in llvm.get_host_cpu_features().items() if on}


@pytest.mark.parametrize("cpu", sorted(CPUS))
def test_the_taps_agree_compiled_for_another_cpu(cpu, tmp_path):
    missing = set(CPUS[cpu]) - _host_features()
    if missing:
        pytest.skip(f"this CPU lacks {', '.join(sorted(missing))}: code for {cpu} would not run here")
    env = {**os.environ, "NUMBA_CPU_NAME": cpu, "NUMBA_CACHE_DIR": str(tmp_path)}
    env.pop("NUMBA_CPU_FEATURES", None)  # the CPU's own
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                           "tests/test_depth_of_field.py::test_eight_lane_taps_add_what_one_lane_taps_add",
                           "tests/test_exact_near20.py::test_render_exact_near_is_the_per_offset_sum",
                           "tests/test_exact_far20.py::test_render_exact_far_is_the_per_offset_sum"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
