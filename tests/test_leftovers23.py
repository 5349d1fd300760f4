"""Small user-visible leftovers of session 23: a deleted output's last line, a disk's write error in one line, a long
animated output name, a long output name in a folder not made yet, the slow kernels' notice by what Numba's cache
holds, a log's time left, an unknown option before the command."""
from __future__ import annotations

import errno
import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from media import make_video

REPO = os.path.dirname(os.path.dirname(__file__))


# -- an output deleted during the run: its last line ------------------------------------------------------------

def _run_deleting_output(monkeypatch, tmp_path, capsys, out: Path) -> list[str]:
    """A run whose output's files are deleted at its third picture, as a user cleaning up a folder would (the
    file, or its hidden partial name where no fragment made it the file yet); its stderr's lines after."""
    from stream import cli, video_writer

    write = video_writer.VideoWriter.write
    made_before = set(tmp_path.iterdir())

    def deletes(self, picture, pts_seconds=None, duration_seconds=None):
        if self.frames_written == 3:
            for made in set(tmp_path.iterdir()) - made_before:
                made.unlink()
        write(self, picture, pts_seconds, duration_seconds)

    monkeypatch.setattr(video_writer.VideoWriter, "write", deletes)
    video = make_video(tmp_path / "in.mp4", frames=8, audio_codec=None)
    made_before.add(video)
    assert cli.main(["run", str(video), "-o", str(out), "--no-progress", "--refine", "off"]) == 1
    return capsys.readouterr().err.splitlines()


def test_an_output_deleted_during_the_run_is_not_said_left_as_it_was(shared_models, monkeypatch, tmp_path, capsys):
    """It said "out.mp4 was not written (a file of that name is left as it was)", and no such file was there."""
    out = tmp_path / "out.mp4"
    lines = _run_deleting_output(monkeypatch, tmp_path, capsys, out)
    assert "deleted during the run" in lines[-2]
    assert lines[-1].startswith("depthcam: stopped after ") and lines[-1].endswith(f"; {out} was not written")
    assert not out.exists()


def test_an_earlier_output_of_the_name_is_still_said_left_as_it_was(shared_models, monkeypatch, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier render")
    lines = _run_deleting_output(monkeypatch, tmp_path, capsys, out)  # the hidden partial file deleted
    assert lines[-1].endswith(f"; {out} was not written (a file of that name is left as it was)")
    assert out.read_bytes() == b"an earlier render"


# -- a disk's write error ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [errno.EIO, errno.EROFS])
def test_a_disk_s_write_error_is_one_line_naming_the_file(code):
    """A USB disk pulled out (EIO), a file system turned read-only (EROFS): "stage 'sink' failed: OSError:
    [Errno 5] ..." said neither what to do nor, in words, what failed."""
    from stream.errors import PipelineError

    error = PipelineError("sink", OSError(code, os.strerror(code), "/media/usb/out.mp4"))
    assert str(error) == (f"cannot write /media/usb/out.mp4: {os.strerror(code)}; check the disk, or write the "
                          f"output to another one")
    assert error.exit_code == 1


def test_other_failures_keep_their_stage_and_error():
    from stream.errors import PipelineError

    reading = PipelineError("capture", OSError(errno.EIO, "Input/output error", "/media/usb/in.mp4"))
    assert str(reading).startswith("stage 'capture' failed: OSError")  # no "cannot write" for an input
    assert str(PipelineError("sink", OSError("no file named"))).startswith("stage 'sink' failed")
    assert str(PipelineError("sink", OSError(errno.ENOSPC, "No space left on device", "o.mp4"))).startswith(
        "the disk is full for o.mp4")


def test_a_sink_s_write_error_ends_the_run_in_one_line(tmp_path):
    from stream.errors import PipelineError
    from stream.pipeline import Pipeline
    from stream.sinks import NullSink
    from stream.sources import SyntheticSource

    class FailingSink(NullSink):  # its disk fails at the third frame
        def write(self, frame) -> None:
            super().write(frame)
            if self.count == 3:
                raise OSError(errno.EIO, os.strerror(errno.EIO), str(out))

    out = tmp_path / "out.mp4"
    pipeline = Pipeline(SyntheticSource("synthetic:portrait?size=64x48&frames=8"), [], FailingSink())
    with pytest.raises(PipelineError) as failed:
        pipeline.run()
    assert str(failed.value) == f"cannot write {out}: {os.strerror(errno.EIO)}; check the disk, or write the " \
                                f"output to another one"


# -- long names ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [250, 255])
def test_an_animation_named_with_up_to_the_longest_name_allowed_is_written(tmp_path, length):
    """Its pictures were gathered in `.NAME.frames.part`, 14 bytes longer: "File name too long" at the first one."""
    from stream.animation_writer import AnimationWriter

    out = tmp_path / f"{'a' * (length - 4)}.gif"
    writer = AnimationWriter.open(out)
    for shade in (40, 120, 200):
        writer.add(np.full((16, 24, 3), shade, np.uint8), 0.1)
    writer.finish()
    assert list(tmp_path.iterdir()) == [out] and out.stat().st_size > 0


REACHED = "the run went on to open the input and load the model"


def _never_built(monkeypatch) -> None:
    import stream.app
    from stream.errors import UserError

    def build(*args, **kwargs):
        raise UserError(REACHED)

    monkeypatch.setattr(stream.app, "build", build)


def test_a_long_name_in_a_folder_not_made_yet_is_refused_before_anything(monkeypatch, tmp_path, capsys):
    """A 250-byte input with `--save-depth depths/ -o outs/`: refused by the sink once the model and kernels had
    loaded, the folder depths/ made and left empty."""
    from stream.cli import main

    _never_built(monkeypatch)
    video = make_video(tmp_path / f"{'v' * 246}.mp4", frames=2, audio_codec=None)
    depths, outs = tmp_path / "depths", tmp_path / "outs"
    assert main(["run", str(video), "--save-depth", f"{depths}/", "-o", f"{outs}/"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"depthcam: error: cannot write {outs}/{'v' * 246}_portrait.mp4")
    assert "a name in it is 259 bytes long, over the 255 its disk takes; choose a shorter name for -o" in err
    assert not depths.exists() and not outs.exists()


def test_a_long_depth_name_is_refused_and_a_name_that_fits_goes_on(monkeypatch, tmp_path, capsys):
    from stream.cli import main

    _never_built(monkeypatch)
    video = make_video(tmp_path / "in.mp4", frames=2, audio_codec=None)
    depth = tmp_path / "depths" / f"{'d' * 252}.mp4"
    assert main(["run", str(video), "--save-depth", str(depth), "-o", str(tmp_path / "o.mp4")]) == 2
    assert "256 bytes long" in capsys.readouterr().err and not depth.parent.exists()
    assert main(["run", str(video), "--save-depth", str(depth.with_name(f"{'d' * 247}.mp4")), "-o", "null"]) == 2
    assert REACHED in capsys.readouterr().err  # 251 bytes fit: the run goes on


# -- the slow kernels' notice: what the cache holds ------------------------------------------------------------------

PROBE_USED = "from numba import njit\n\n\n@njit(cache=True)\ndef used(x):\n    return 2 * x\n"
PROBE = PROBE_USED + "\n\n@njit(cache=True)\ndef unused(x):\n    return 3 * x\n"


def _in_fresh_process(tmp_path, cache_dir, code: str) -> str:
    """The last word `code` prints in a fresh process whose Numba caches in `cache_dir`, the probe importable."""
    script = f"import sys, importlib; sys.path.insert(0, sys.argv[1]); {code}"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    return subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True,
                          cwd=REPO, env=env).stdout.split()[-1]


def test_a_kernel_no_warm_up_calls_does_not_make_the_cache_look_empty(tmp_path):
    """A kernel no run calls (kernels.dof_cpu_common._share_shift) has no index: every slow warm-up was announced
    as "a first run ... compiles them", then said "kernels loaded from the cache in 3 s"."""
    (tmp_path / "probe.py").write_text(PROBE)
    cache = tmp_path / "cache"
    call = "importlib.import_module('probe').used(1.5); print('called')"
    assert _in_fresh_process(tmp_path, cache, call) == "called"
    asked = "from kernels.warmup import cpu_cached; print(cpu_cached({}))"
    assert _in_fresh_process(tmp_path, cache, asked.format("['probe.used']")) == "True"
    assert _in_fresh_process(tmp_path, cache, asked.format("['probe.unused']")) == "False"
    assert _in_fresh_process(tmp_path, cache, asked.format("['probe']")) == "False"  # a module: every kernel of it


def test_another_cpu_s_build_in_a_shared_cache_is_not_taken_as_cached(tmp_path):
    """A cache folder two machines share (NUMBA_CACHE_DIR in a network home) holds the other one's build: Numba
    compiles again here, so the notice must not say "loading them from the cache"."""
    (tmp_path / "probe.py").write_text(PROBE_USED)
    cache = tmp_path / "cache"
    _in_fresh_process(tmp_path, cache, "importlib.import_module('probe').used(1.5); print('called')")
    asked = "from kernels.warmup import cpu_cached; print(cpu_cached(['probe']))"
    assert _in_fresh_process(tmp_path, cache, asked) == "True"
    (index,) = cache.rglob("*.nbi")
    with open(index, "rb") as file:
        version, data = pickle.load(file), file.read()
    stamp, overloads = pickle.loads(data)
    elsewhere = {(key[0], ("x86_64-unknown-linux-gnu", "another-cpu", "+avx512f"), key[2]): value
                 for key, value in overloads.items()}
    with open(index, "wb") as file:
        pickle.dump(version, file, protocol=-1)
        file.write(pickle.dumps((stamp, elsewhere), protocol=-1))
    assert _in_fresh_process(tmp_path, cache, asked) == "False"


TOUCHED = """
import importlib, json
from numba.core.registry import CPUDispatcher
from kernels.warmup import CPU_KERNEL_MODULES, cpu_cached, warm_up
parts = dict(exact_filter=False, live_filter=False, depth_of_field=False)
parts[sys.argv[2]] = True
warm_up("cpu", **parts)
touched = {f"{name}.{attr}": sum(value.stats.cache_misses.values()) for name in CPU_KERNEL_MODULES
           for attr, value in vars(importlib.import_module(name)).items() if isinstance(value, CPUDispatcher)
           and value.__module__ == name and (value.stats.cache_hits or value.stats.cache_misses)}
print(json.dumps(touched).replace(" ", ""))
"""


@pytest.mark.parametrize("part", ["exact_filter", "live_filter", "depth_of_field"])
def test_the_notice_asks_the_cache_for_the_kernels_the_warm_up_calls(part):
    """Each part's kernels in CPU_ENTRIES are those its warm-up calls from Python: loaded from the cache, the only
    ones touched (where the cache was empty, the first process compiles them and those they call)."""
    from kernels.warmup import CPU_ENTRIES

    def touched() -> dict[str, int]:
        done = subprocess.run([sys.executable, "-c", "import sys" + TOUCHED, REPO, part], capture_output=True,
                              text=True, check=True, cwd=REPO)
        return json.loads(done.stdout.split()[-1])

    found = touched()
    if any(found.values()):  # compiled (a cache emptied by an update): the cache holds them now
        found = touched()
    assert not any(found.values()) and set(found) == set(CPU_ENTRIES[part])
    cached = subprocess.run([sys.executable, "-c", "from kernels.warmup import cpu_cached, CPU_ENTRIES; "
                             f"print(cpu_cached(CPU_ENTRIES[{part!r}]))"], capture_output=True, text=True,
                            check=True, cwd=REPO)
    assert cached.stdout.split()[-1] == "True"


# -- the time left in a log ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("terminal, smoothing, interval", [(False, 0.05, 10.0), (True, 0.3, 0.1)])
def test_a_log_s_time_left_follows_the_speed_of_minutes_not_of_its_last_state(monkeypatch, terminal, smoothing,
                                                                              interval):
    """Into a log (a state every 10 s) tqdm's 0.3 a state made the time left swing 1150-2320 s for a true 1836 s
    on a busy machine; a terminal's, ten states a second, stays as it was."""
    from stream.pipeline import Pipeline

    stream = io.StringIO()
    stream.isatty = lambda: terminal
    monkeypatch.setattr(sys, "stderr", stream)
    owner = SimpleNamespace(source=SimpleNamespace(live=False, frame_count=100, progress_seconds=None))
    bar = Pipeline._progress_bar(owner)
    try:
        assert (bar.smoothing, bar.mininterval) == (smoothing, interval)
    finally:
        bar.close()


# -- an unknown option before the command ------------------------------------------------------------------------

def test_an_unknown_option_before_the_command_is_named(capsys):
    """`depthcam --foo 3 run x.mp4` said only "invalid choice: '3'"."""
    from stream.cli import main

    with pytest.raises(SystemExit) as exit:
        main(["--foo", "3", "run", "x.mp4"])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err.count("\n") == 1
    assert "; --foo is no option of depthcam: a command's options go after it (depthcam run ... --OPTION; " \
           "'depthcam run --help' lists them)" in err


@pytest.mark.parametrize("argv", [["--debug", "--foo", "3", "run", "x.mp4"], ["--foo=3", "bogus", "run", "x.mp4"]])
def test_an_unknown_option_is_named_beside_the_top_s_own(capsys, argv):
    from stream.cli import main

    with pytest.raises(SystemExit):
        main(argv)
    assert "--foo is no option of depthcam" in capsys.readouterr().err
