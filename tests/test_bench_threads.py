"""`depthcam bench` measures the configuration it names: each CPU stage runs with its configured Numba thread
count (`refine.threads`, `render.threads`), in the pipelined and in the sequential run."""
import collections
import threading

import pytest

from stream import bench
from stream.config import load_config
from stream.stages import RefineStage, RenderStage

numba = pytest.importorskip("numba")
SPEC = "synthetic:portrait?size=96x64&frames=12"


@pytest.fixture
def threads_seen(monkeypatch):
    """(stage, thread name) -> the Numba thread counts the stage's calls ran with."""
    seen: dict[tuple[str, str], set[int]] = collections.defaultdict(set)
    for stage_class in (RefineStage, RenderStage):
        original = stage_class.process

        def process(self, batch, original=original):
            done = original(self, batch)  # its own settings are applied inside the call
            seen[(self.name, threading.current_thread().name)].add(numba.get_num_threads())
            return done

        monkeypatch.setattr(stage_class, "process", process)
    return seen


needs_two = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one Numba thread: every count is 1")


@needs_two
def test_pipelined_stage_threads_keep_the_configured_count(shared_models, threads_seen):
    """The warm-up frame pushed through the stages on the bench's own thread (prime) took the stages' one
    chance to set their count: live-cpu's refine and render then ran on every core, not on one each."""
    config = load_config("live-cpu", {"output.progress": False, "render.threads": 1, "refine.threads": 1})
    bench.run_pipelined(config, SPEC, frames=6, warmup=2)
    on_stage_threads = {key: counts for key, counts in threads_seen.items() if key[1].startswith("depthcam-stage")}
    assert on_stage_threads == {("refine", "depthcam-stage-refine"): {1}, ("render", "depthcam-stage-render"): {1}}


@needs_two
def test_sequential_stages_each_run_with_their_own_count(shared_models, threads_seen):
    """On the one thread of the sequential run, each stage ran with the count the stage before it left."""
    config = load_config("default", {"output.progress": False, "refine.threads": 1, "render.threads": 0})
    bench.run_sequential(config, SPEC, frames=6, warmup=2)
    assert threads_seen[("refine", "MainThread")] == {1}
    assert threads_seen[("render", "MainThread")] == {numba.config.NUMBA_NUM_THREADS}  # 0: all cores


def test_a_pipelined_run_is_freed_when_it_returns(shared_models, monkeypatch):
    """The stop rule given to the pipeline (on_frame) held the whole run in a cycle: each configuration's pipeline,
    source and model session stayed alive until a garbage collection, two sessions at once during the next run."""
    import gc
    import weakref

    built_runs = []
    timed_build = bench._timed_build

    def remember(*args, **kwargs):
        built, build_ms = timed_build(*args, **kwargs)
        built_runs.append(weakref.ref(built.pipeline))
        return built, build_ms

    monkeypatch.setattr(bench, "_timed_build", remember)
    config = load_config("live-cpu", {"output.progress": False})
    # run once first: a first use that compiles the kernels (an empty Numba cache, the file alone) leaves Numba's
    # caught exceptions in cycles with the calling frames, the warm-up's build and its pipeline too, until a gc
    bench.run_pipelined(config, SPEC, frames=1, warmup=0)
    built_runs.clear()
    gc.collect()
    gc.disable()
    try:
        bench.run_pipelined(config, SPEC, frames=4, warmup=1)
        assert built_runs and built_runs[0]() is None
    finally:
        gc.enable()
