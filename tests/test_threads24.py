"""OpenCV's one thread pool for the process follows the CPU stages' `threads` settings (kernels.cpu_threads), and a
user's own OPENCV_FOR_THREADS_NUM is kept."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernels.cpu_threads import OPENCV_DEFAULT, OPENCV_THREADS_VARIABLE, opencv_threads

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("stage_threads, cpus, wanted", [
    ((1, 1), 2, 1),                # live-cpu: each stage on one core, OpenCV's pool too
    ((1, 2), 4, 2),                # the largest stage's
    ((8, 8), 2, 2),                # never more than the machine's cores
    ((0, 0), 2, OPENCV_DEFAULT),   # the default preset: every core, OpenCV's own default
    ((1, 0), 2, OPENCV_DEFAULT),   # one stage on every core: OpenCV may use them too
    ((), 2, OPENCV_DEFAULT),       # kernels on the GPU: no CPU stage to follow
    ((1, 1), 0, 1),                # a machine whose core count is unknown still gets one
])
def test_opencv_follows_the_cpu_stages_threads(stage_threads, cpus, wanted):
    assert opencv_threads(stage_threads, cpus, environ={}) == wanted


@pytest.mark.parametrize("value", ["3", " 1 "])
def test_a_users_own_opencv_variable_is_left_alone(value):
    assert opencv_threads((1, 1), 2, environ={OPENCV_THREADS_VARIABLE: value}) is None


def test_an_empty_opencv_variable_counts_as_unset():
    assert opencv_threads((1, 1), 2, environ={OPENCV_THREADS_VARIABLE: ""}) == 1


SET_AND_READ = """
import cv2
from kernels.cpu_threads import set_opencv_threads
start = cv2.getNumThreads()
set_opencv_threads((1, 1))
one = cv2.getNumThreads()
set_opencv_threads((0, 1))  # a later run in the same process (bench --compare) with a stage on every core
print(start, one, cv2.getNumThreads())
"""


def _set_and_read(**variables: str) -> list[int]:
    """OpenCV's thread count at the start, after a live-cpu-like run's setting, after a default-like run's, read
    in a fresh interpreter (OpenCV reads its variable when it loads; this process's pool stays as it is)."""
    env = {key: value for key, value in os.environ.items() if key != OPENCV_THREADS_VARIABLE}
    env.update(variables, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", SET_AND_READ], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return [int(word) for word in result.stdout.split()]


def test_set_opencv_threads_sets_the_process_count_and_restores_the_default():
    start, one, after = _set_and_read()
    assert one == 1
    assert after == start  # OpenCV's own default again, not left at the previous run's 1


def test_set_opencv_threads_keeps_a_users_opencv_variable():
    assert _set_and_read(**{OPENCV_THREADS_VARIABLE: "3"}) == [3, 3, 3]


SPEC = "synthetic:portrait?size=96x64&frames=8"


@pytest.fixture
def opencv_count_restored(monkeypatch):
    """The test process's own OpenCV count back as it was; no OPENCV_FOR_THREADS_NUM of the caller's in the way."""
    import cv2

    monkeypatch.delenv(OPENCV_THREADS_VARIABLE, raising=False)
    before = cv2.getNumThreads()
    yield
    cv2.setNumThreads(before)


def test_each_runs_build_sets_opencv_threads_from_its_stages(shared_models, monkeypatch, opencv_count_restored):
    """live-cpu (refine and render on one core each): OpenCV's pool on one thread while its stages run; a default
    run after it in the same process (bench --compare): OpenCV's default again."""
    import cv2

    from stream import bench
    from stream.config import load_config
    from stream.stages import RefineStage

    seen: list[int] = []
    original = RefineStage.process

    def process(self, batch):
        seen.append(cv2.getNumThreads())
        return original(self, batch)

    monkeypatch.setattr(RefineStage, "process", process)
    cv2.setNumThreads(OPENCV_DEFAULT)
    default = cv2.getNumThreads()
    overrides = {"output.progress": False, "device": "cpu"}
    bench.run_pipelined(load_config("live-cpu", overrides), SPEC, frames=4, warmup=1)
    live, seen[:] = set(seen), []
    bench.run_pipelined(load_config("default", overrides), SPEC, frames=4, warmup=1)
    assert (live, set(seen)) == ({1}, {default})


def test_a_library_caller_s_own_opencv_count_is_kept_and_given_back(monkeypatch, opencv_count_restored):
    """A run that does not limit OpenCV left a caller's own cv2.setNumThreads(n) reset to OpenCV's default; one that
    does (live-cpu) gives the caller's count back at the next run that does not."""
    import cv2

    from kernels import cpu_threads

    monkeypatch.setattr(cpu_threads, "_before_runs", None)
    monkeypatch.setattr(cv2, "getNumberOfCPUs", lambda: 4)
    cv2.setNumThreads(3)
    cpu_threads.set_opencv_threads((0, 0))
    assert cv2.getNumThreads() == 3
    cpu_threads.set_opencv_threads((1, 1))
    assert cv2.getNumThreads() == 1
    cpu_threads.set_opencv_threads((1, 1))  # a second limited run: the caller's count is still the one given back
    cpu_threads.set_opencv_threads((0, 1))
    assert cv2.getNumThreads() == 3
