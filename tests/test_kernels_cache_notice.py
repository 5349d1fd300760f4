"""The notice of a slow CPU warm-up says what it is doing: a first run compiling the kernels, or a busy machine
loading them from Numba's cache (it said "a first run ... compiles them" on every run of a busy machine)."""
import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(__file__))
PROBE = "from numba import njit\n\n\n@njit(cache=True)\ndef twice(x):\n    return 2 * x\n"


def _cached(tmp_path, cache_dir, call: bool = False, modules: str = "['probe']") -> str:
    """cpu_cached() of the probe module in a fresh process whose Numba caches in `cache_dir`; `call`: the probe's
    kernel called (compiled and cached) after."""
    script = ("import sys, importlib; sys.path.insert(0, sys.argv[1]); from kernels.warmup import cpu_cached; "
              f"print(cpu_cached({modules}))" + ("; importlib.import_module('probe').twice(1.5)" if call else ""))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    return subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True,
                          cwd=REPO, env=env).stdout.split()[-1]


def test_numba_s_cache_is_told_fresh_from_filled(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    cache = tmp_path / "cache"
    assert _cached(tmp_path, cache, call=True) == "False"  # fresh: a first run compiles
    assert _cached(tmp_path, cache) == "True"  # filled by that run
    (tmp_path / "probe.py").write_text(PROBE + "\n# updated\n")  # the source changed: compiled again
    assert _cached(tmp_path, cache) == "False"


def test_the_kernels_in_a_fresh_cache_are_not_cached(tmp_path):
    assert _cached(tmp_path, tmp_path / "fresh", modules="") == "False"


@pytest.mark.parametrize("cached, said", [
    (True, "preparing the CPU kernels: loading them from the cache (slow: the machine is busy)"),
    (False, "preparing the CPU kernels: a first run on this machine (or after an update) compiles them"),
    (None, "preparing the CPU kernels: a first run on this machine (or after an update) compiles them")])
def test_a_slow_warm_up_is_announced_by_what_the_cache_holds(monkeypatch, cached, said):
    import stream.app
    from stream.config import load_config

    monkeypatch.setattr(stream.app, "SLOW_NOTICE_S", 0.05)
    monkeypatch.setattr(stream.app, "cpu_cached", lambda kernels=None: cached)
    monkeypatch.setattr(stream.app, "cpu_compiled", lambda: 0 if cached else 5)
    monkeypatch.setattr(stream.app, "warm_up", lambda backend, **kernels: time.sleep(0.3))
    messages: list[str] = []
    stream.app.prepare_kernels(load_config(None), "cpu", messages.append)
    assert len(messages) == 2 and messages[0].startswith(said)
    assert messages[1].startswith("kernels loaded from the cache" if cached else "kernels compiled in")
