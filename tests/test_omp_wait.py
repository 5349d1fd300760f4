"""OpenMP's idle threads sleep instead of spinning unless the user chose; `bench --json` names a .json file."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stream import bench
from stream.cli import main
from test_bench import _no_runs

REPO = Path(__file__).resolve().parents[1]

# Imports the package, notes the environment and whether an OpenMP library is loaded yet, makes Numba's first
# parallel launch, then has libgomp (where that is the layer's) print the settings it read (on stderr).
WAIT_POLICY_PROBE = """
import ctypes, os, sys
import kernels
loaded = any("libgomp" in line or "libomp" in line or "libiomp" in line for line in open("/proc/self/maps"))
print(os.environ.get("OMP_WAIT_POLICY"), loaded)
from kernels.cpu_threads import parallel_section
parallel_section()
gomp = {line.split()[-1] for line in open("/proc/self/maps") if "libgomp" in line}
sys.stdout.flush()
if gomp:
    ctypes.CDLL(gomp.pop()).omp_display_env(1)
"""

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")


def _probe(**user_env: str) -> tuple[str, str | None]:
    """The child's OMP_WAIT_POLICY after `import kernels` (asserting no OpenMP library was loaded by then), and the
    spin count libgomp started with (None where Numba's layer is not GNU OpenMP)."""
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(user_env, PYTHONPATH=str(REPO))  # this process's own import of kernels set the policy: left out
    result = subprocess.run([sys.executable, "-c", WAIT_POLICY_PROBE], capture_output=True, text=True, cwd=REPO,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    policy, loaded = result.stdout.split()
    assert loaded == "False"  # libgomp reads the environment when it loads: the import came first
    spin = re.search(r"GOMP_SPINCOUNT = '(\d+)'", result.stderr)
    return policy, spin and spin.group(1)


@linux_only
def test_openmp_workers_sleep_between_kernels_by_default():
    """libgomp's idle workers spun ~300,000 iterations after every parallel loop, taking the cores of the stage
    that ran next on a small CPU."""
    policy, spin = _probe()
    assert policy == "PASSIVE"
    assert spin in (None, "0")


@linux_only
def test_a_users_own_wait_policy_is_kept():
    policy, spin = _probe(OMP_WAIT_POLICY="ACTIVE")
    assert policy == "ACTIVE"
    assert spin in (None, "30000000000")  # libgomp's spin for ACTIVE


@linux_only
def test_a_users_own_spin_count_is_kept():
    policy, spin = _probe(GOMP_SPINCOUNT="1000")
    assert policy == "None"
    assert spin in (None, "1000")


@pytest.mark.parametrize("name", ["out.csv", "out", "out.json.txt"])
def test_json_report_named_other_than_json_is_refused_in_one_line(monkeypatch, tmp_path, capsys, name):
    """`--json out.csv` wrote JSON into a .csv file without a word (there is no CSV output)."""
    _no_runs(monkeypatch)
    assert main(["bench", "--json", str(tmp_path / name)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the report is JSON; name the file .json" in err and "Traceback" not in err
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("name", ["out.json", "OUT.JSON"])
def test_json_report_named_json_passes_the_check(tmp_path, name):
    bench.check_report_paths(str(tmp_path / name), None, None)


def test_json_report_into_a_link_to_a_json_file_passes_the_check(tmp_path):
    link = tmp_path / "latest"
    link.symlink_to(tmp_path / "bench.json")
    bench.check_report_paths(str(link), None, None)


def test_json_report_to_standard_output_or_a_device_passes_the_check(tmp_path):
    bench.check_report_paths("-", None, None)
    bench.check_report_paths("/dev/null", None, None)  # a character device, as /dev/stdout into a pipe is

