"""Session 23: the warm-up covers what a run calls (a first run compiles nothing at its first frame, after the notice
said the kernels were ready), the slow warm-up's notice asks the cache about the run's kernels only, and an output
name longer than its disk takes is refused by the output checks themselves (the Python API's and bench's too)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from media import make_video

REPO = os.path.dirname(os.path.dirname(__file__))

# -- the warm-up covers the run ---------------------------------------------------------------------------------

# In a fresh process (this one's kernels may hold other tests' specialisations): the CLI's run, each kernel's
# compiled specialisations and cache loads counted after the warm-up and after the run. Prints what the run added
# and the exact_far of its renders.
RUN_AFTER_WARM_UP = """
import json, sys
import kernels, stream.app
from numba.core.registry import CPUDispatcher
from stream.cli import main

def state():
    return {f"{value.py_func.__module__}.{value.__name__}": [len(value.signatures), dict(value.stats.cache_hits),
                                                            dict(value.stats.cache_misses)]
            for name, module in list(sys.modules.items()) if name.split(".")[0] == "kernels"
            for value in list(vars(module).values()) if isinstance(value, CPUDispatcher)}

after_warm_up, exact_far = {}, set()
warm_up, depth_of_field = stream.app.warm_up, kernels.depth_of_field

def warm_up_counted(backend, **parts):
    warm_up(backend, **parts)
    after_warm_up.update(state())

def rendered(*args, **kwargs):
    exact_far.add(kwargs.get("exact_far"))
    return depth_of_field(*args, **kwargs)

stream.app.warm_up, kernels.depth_of_field = warm_up_counted, rendered
code = main(sys.argv[1:])
added = sorted(name for name, now in state().items() if after_warm_up.get(name, [0, {}, {}]) != now)
print(json.dumps({"code": code, "warmed": bool(after_warm_up), "added": added, "exact_far": sorted(exact_far)}))
"""


def _run_counted(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", RUN_AFTER_WARM_UP, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("run, exact_far", [
    ("file", True),  # a file into a file: render.exact_far auto gathers the far field exactly
    ("live", False),  # the live preset on a source paced like a camera
    ("photo", True),  # a photo, through the exact filter (--refine full)
])
def test_a_run_compiles_nothing_after_its_warm_up(shared_models, tmp_path, run, exact_far):
    """Whatever the run calls after the warm-up was compiled (or loaded) by it: a kernel first called at frame 1
    compiled there, after "kernels compiled in N s", and stalled the first frame (and the progress bar's ETA)."""
    if run == "file":
        args = ["run", str(make_video(tmp_path / "in.mp4", frames=3, audio_codec=None)), "-o",
                str(tmp_path / "out.mp4")]
    elif run == "live":
        args = ["run", "synthetic:portrait?size=96x72&frames=3&realtime=1", "--config", "live-cpu", "-o", "null"]
    else:
        from stream.synthetic import SyntheticPortrait, SyntheticScene

        image, _ = SyntheticPortrait(SyntheticScene(120, 90)).render(0)
        cv2.imwrite(str(tmp_path / "in.png"), image)
        args = ["run", str(tmp_path / "in.png"), "--refine", "full", "-o", str(tmp_path / "out.png")]
    found = _run_counted(args)
    assert found["code"] == 0 and found["warmed"]
    assert found["exact_far"] == [exact_far]
    assert found["added"] == []


# -- the notice asks about the run's kernels --------------------------------------------------------------------

@pytest.mark.parametrize("blur, refine, parts", [
    (0.0, "live", ["live_filter"]),
    (8.0, "full", ["exact_filter", "depth_of_field"]),
    (0.0, "off", []),
])
def test_the_slow_notice_asks_the_cache_about_the_run_s_kernels_only(monkeypatch, blur, refine, parts):
    """cpu_cached() was asked about every part's kernels: a user whose runs all had --blur 0 (no depth of field
    cached) was told "a first run ... compiles them" on a slow warm-up that only loaded the filter."""
    import stream.app
    from kernels.warmup import CPU_ENTRIES
    from stream.config import load_config

    asked: list = []
    monkeypatch.setattr(stream.app, "SLOW_NOTICE_S", 0.0)
    monkeypatch.setattr(stream.app, "cpu_cached", lambda kernels=None: asked.append(kernels) or True)
    monkeypatch.setattr(stream.app, "warm_up", lambda backend, **kernels: None)
    config = load_config(None, {"render.blur": blur, "refine.mode": refine})
    messages: list[str] = []
    stream.app.prepare_kernels(config, "cpu", messages.append)
    assert len(asked) == 1 and asked[0] is not None
    assert set(asked[0]) == {name for part in parts for name in CPU_ENTRIES[part]}


# -- a long output name in a folder not made yet -----------------------------------------------------------------

def _long(tmp_path: Path, length: int = 256) -> Path:
    return tmp_path / "outs" / f"{'n' * (length - 4)}.mp4"


def test_a_check_before_the_run_refuses_a_long_name_in_a_folder_not_made_yet(tmp_path):
    """ensure_writable(create_folder=False), the check before the model loads, passed such a name: the lookup of the
    missing folder fails first, so the system never looked at the name."""
    from stream.errors import UserError
    from stream.paths import ensure_writable

    with pytest.raises(UserError, match="a name in it is 256 bytes long, over the 255 its disk takes; choose a "
                                        "shorter name"):
        ensure_writable(_long(tmp_path), create_folder=False)
    with pytest.raises(UserError, match="a name in it is 300 bytes long"):
        ensure_writable(tmp_path / "takes" / ("f" * 300) / "out.mp4", create_folder=False)  # a folder's
    assert ensure_writable(_long(tmp_path, 255), create_folder=False) == _long(tmp_path, 255)
    assert list(tmp_path.iterdir()) == []  # nothing made, by the refusals or the check that passed


def test_a_sink_s_check_refuses_a_long_name_before_making_its_folder(tmp_path):
    """ensure_writable() made the folder, then the name failed ("File name too long"), the folder left empty:
    `depthcam bench --json reports/NAME.json` too."""
    from stream.bench import check_report_paths
    from stream.errors import UserError
    from stream.paths import ensure_writable

    with pytest.raises(UserError) as refused:
        ensure_writable(_long(tmp_path))
    assert not (tmp_path / "outs").exists() and "a name in it is 256 bytes long" in str(refused.value)
    with pytest.raises(UserError) as refused:
        check_report_paths(str(tmp_path / "reports" / f"{'r' * 251}.json"), None, None)
    assert not (tmp_path / "reports").exists() and "cannot write benchmark JSON" in str(refused.value)
    assert ensure_writable(_long(tmp_path, 255)) == _long(tmp_path, 255) and (tmp_path / "outs").is_dir()


def test_the_python_api_refuses_a_long_name_before_the_model_loads(monkeypatch, tmp_path):
    """stream.app.build (docs' Python use of the pipeline, and bench's runs) checks its outputs before the model
    loads; a long name in a folder not made yet passed, and the sink refused it after the model and the kernels."""
    import stream.app
    from stream.config import load_config
    from stream.errors import UserError

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(stream.app, "load_estimator", never)
    video = make_video(tmp_path / "in.mp4", frames=2, audio_codec=None)
    config = load_config(None)
    with pytest.raises(UserError, match="cannot write output .*: a name in it is 256 bytes long"):
        stream.app.build(config, str(video), str(_long(tmp_path)))
    config.output.save_depth = str(tmp_path / "depths" / f"{'d' * 252}.mp4")
    with pytest.raises(UserError, match="cannot write depth video .*: a name in it is 256 bytes long"):
        stream.app.build(config, str(video), str(tmp_path / "out.mp4"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.mp4"]
