"""Session 23: an HDR input's tone-mapping kernel is prepared with the other kernels, under their slow-warm-up notice,
and the notice asks Numba's cache about it. It compiled when the input opened (3-9 s on a first run), before the
notice, so a first HDR run stalled with nothing said."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from media import make_colour_video

REPO = os.path.dirname(os.path.dirname(__file__))
CONVERT = "kernels.colour._convert"
TRC_PQ, TRC_BT709 = 16, 1


def _clip(tmp_path: Path, hdr: bool) -> Path:
    """Three seeded 96x72 pictures, tagged PQ/BT.2020 (HDR) or BT.709 (SDR)."""
    rng = np.random.default_rng(23)
    pictures = [rng.integers(0, 65536, (72, 96, 3), dtype=np.uint16) for _ in range(3)]
    if hdr:
        return make_colour_video(tmp_path / "hdr.mkv", pictures, TRC_PQ)
    return make_colour_video(tmp_path / "sdr.mkv", pictures, TRC_BT709, primaries=1)


# In a fresh process (this one's kernels may hold other tests' specialisations): the CLI's run, each kernel's
# compiled specialisations and cache loads counted when the warm-up starts, when it ends and after the run, and the
# kernels the slow warm-up's notice asked the cache about.
COUNTED_RUN = """
import json, sys
import stream.app
from numba.core.registry import CPUDispatcher
from stream.cli import main

def counts(by_signature):
    return sorted([str(signature), count] for signature, count in by_signature.items())

def state():
    return {f"{value.py_func.__module__}.{value.__name__}": [len(value.signatures), counts(value.stats.cache_hits),
                                                            counts(value.stats.cache_misses)]
            for name, module in list(sys.modules.items()) if name.split(".")[0] == "kernels"
            for value in list(vars(module).values()) if isinstance(value, CPUDispatcher)}

states, asked = [], []
prepare_kernels, cpu_cached = stream.app.prepare_kernels, stream.app.cpu_cached

def prepare_counted(*args, **kwargs):
    states.append(state())
    prepare_kernels(*args, **kwargs)
    states.append(state())

def cpu_cached_asked(kernels=None):
    asked.append(list(kernels))
    return cpu_cached(kernels)

stream.app.prepare_kernels, stream.app.cpu_cached = prepare_counted, cpu_cached_asked
code = main(sys.argv[1:])
states.append(state())
print(json.dumps({"code": code, "states": states, "asked": asked}))
"""


def _counted_run(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", COUNTED_RUN, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("hdr", [True, False], ids=["hdr", "sdr"])
def test_an_hdr_input_s_kernel_is_prepared_with_the_others_and_asked_about(shared_models, tmp_path, hdr):
    """The tone mapping compiles (or loads) in the warm-up, not when the input opens nor at the first frame, and the
    notice asks the cache about it; an SDR input neither prepares nor asks about it."""
    found = _counted_run(["run", str(_clip(tmp_path, hdr)), "-o", str(tmp_path / "out.mp4"), "--no-progress"])
    assert found["code"] == 0
    opened, warmed, ended = found["states"]
    assert len(found["asked"]) == 1  # the CLI's run gives a notify: the notice is asked for once, before the warm-up
    if hdr:
        assert opened[CONVERT][0] == 0  # opening the input compiled nothing: it was before the notice
        assert warmed[CONVERT][0] == 1 and warmed[CONVERT] != opened[CONVERT]  # one specialisation, made here
        assert CONVERT in found["asked"][0]
    else:
        assert CONVERT not in warmed and CONVERT not in found["asked"][0]
    assert ended == warmed  # nothing compiled or loaded after the warm-up: the first frame does not stall


class _Converter:
    """A converter whose kernel takes as long as the notice takes to come: the warm-up cannot end before it."""

    def __init__(self, noticed: threading.Event) -> None:
        self.noticed, self.prepared = noticed, False

    def prepare(self) -> None:
        self.prepared = self.noticed.wait(60)


def test_a_slow_hdr_kernel_is_announced_once(monkeypatch):
    """The tone mapping's preparation runs under the warm-up's notice: said once, then the ready line."""
    import stream.app
    from stream.config import load_config

    noticed = threading.Event()
    messages: list[str] = []

    def notify(line: str) -> None:
        messages.append(line)
        noticed.set()

    monkeypatch.setattr(stream.app, "WARMED_HERE", set())  # no input before in this process (a batch's later HDR
    # input announces the tone mapping alone: tests/test_pipes24.py)
    monkeypatch.setattr(stream.app, "SLOW_NOTICE_S", 0.0)
    monkeypatch.setattr(stream.app, "cpu_cached", lambda kernels=None: False)
    monkeypatch.setattr(stream.app, "cpu_compiled", lambda: 1)
    monkeypatch.setattr(stream.app, "warm_up", lambda backend, **kernels: None)
    converter = _Converter(noticed)
    stream.app.prepare_kernels(load_config(None), "cpu", notify, converter=converter)
    assert converter.prepared
    assert len(messages) == 2 and messages[0].startswith("preparing the CPU kernels: a first run")
    assert messages[1].startswith("kernels compiled in")


@pytest.mark.parametrize("parts, colour", [({"live_filter": True}, True), ({"live_filter": True}, False),
                                           ({"live_filter": False}, True)])
def test_the_run_s_kernels_hold_the_tone_mapping_for_an_hdr_input_only(parts, colour):
    from kernels.warmup import CPU_ENTRIES
    from stream.app import run_kernels
    from stream.hdr import CONVERT_KERNELS

    kernels = run_kernels(parts, colour)
    expected = {name for part, on in parts.items() if on for name in CPU_ENTRIES[part]}
    expected |= set(CONVERT_KERNELS if colour else ())
    assert set(kernels) == expected and len(kernels) == len(expected)
    assert (CONVERT in kernels) is colour


@pytest.mark.parametrize("hdr", [True, False], ids=["hdr", "sdr"])
def test_an_input_s_converter_is_found_through_its_pacing(tmp_path, hdr):
    """build() finds the converter of a video file, also where it is paced for a window (a PacedSource)."""
    from stream.app import colour_converter
    from stream.sources import PacedSource, open_source

    source = open_source(str(_clip(tmp_path, hdr)))
    try:
        for shown in (source, PacedSource(source)):
            assert (colour_converter(shown) is not None) is hdr
    finally:
        source.close()
    synthetic = open_source("synthetic:portrait?size=64x48&frames=1")
    assert colour_converter(synthetic) is None
