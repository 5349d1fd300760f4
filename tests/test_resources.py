"""Resources over many inputs in one process: the model is loaded once, and what each input's run opened (files,
threads, encoders) is gone before the next one starts."""
from __future__ import annotations

import gc
import os
import weakref
from pathlib import Path

import cv2
import numpy as np
import pytest

import stream.app
import stream.video_writer
from stream import cli
from stream.config import load_config
from stream.workers import live_workers

from media import make_video


@pytest.fixture(autouse=True)
def fresh_estimator():
    stream.app.forget_estimator()
    yield
    stream.app.forget_estimator()


@pytest.fixture
def sessions(monkeypatch) -> list[str]:
    """The model files ONNX Runtime was asked to load, one entry per session made."""
    import onnxruntime

    made: list[str] = []
    real = onnxruntime.InferenceSession

    def counted(model, *args, **kwargs):
        made.append(model if isinstance(model, str) else "<bytes>")
        return real(model, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", counted)
    return made


def _photo(path: Path, seed: int) -> Path:
    image = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), np.uint8)
    cv2.imwrite(str(path), cv2.GaussianBlur(image, (7, 7), 2))
    return path


def _open_fds() -> set[str]:
    targets = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed already
            pass
    return targets


def test_a_batch_of_inputs_loads_the_model_once(shared_models, sessions, tmp_path):
    inputs = [make_video(tmp_path / "a.mp4", frames=4, size=(64, 48)), _photo(tmp_path / "b.png", 1),
              make_video(tmp_path / "c.mp4", frames=4, size=(64, 48), audio_codec=None), _photo(tmp_path / "d.jpg", 2)]
    out = tmp_path / "out"
    assert cli.main(["run", *map(str, inputs), "-o", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_portrait.mp4", "b_portrait.png", "c_portrait.mp4",
                                                     "d_portrait.png"]
    assert len(sessions) == 1, sessions  # was one per input: FCRN's 1.3-2 s each on a CPU


def test_the_kept_session_is_used_only_for_the_same_model_file_and_settings(shared_models, sessions, tmp_path):
    default = load_config("default", {"device": "cpu"})
    first = stream.app.load_estimator(default, progress=False)
    first.watch.frames, first.watch.warned = 50, True  # a run that warned about its depth
    again = stream.app.load_estimator(load_config("default", {"device": "auto"}), progress=False)
    assert again is first and len(sessions) == 1  # on a CPU, auto asks for the same provider
    assert again.watch.frames == 0 and not again.watch.warned  # the warning is once a run, each run
    threads = stream.app.load_estimator(load_config("default", {"device": "cpu", "inference.threads": 1}),
                                        progress=False)
    assert threads is not first and len(sessions) == 2
    own = tmp_path / "own.onnx"
    own.write_bytes((shared_models / first.spec.filename).read_bytes())
    mine = stream.app.load_estimator(load_config("default", {"model": str(own), "device": "cpu"}), progress=False)
    assert stream.app.load_estimator(load_config("default", {"model": str(own), "device": "cpu"}),
                                     progress=False) is mine
    assert len(sessions) == 3
    own.write_bytes(own.read_bytes())  # the file written again (a model converted again): read again
    os.utime(own, ns=(os.stat(own).st_atime_ns, os.stat(own).st_mtime_ns + 1_000_000))
    assert stream.app.load_estimator(load_config("default", {"model": str(own), "device": "cpu"}),
                                     progress=False) is not mine
    assert len(sessions) == 4


def test_each_input_of_a_batch_leaves_nothing_open_behind_it(shared_models, tmp_path, monkeypatch):
    """A video writer and its audio track refer to each other, so the writer, its x264 encoder (its threads and
    frame buffers) and the audio's input container outlived their input until Python's cyclic collector ran,
    some inputs later: 7 threads and ~40 MB an input at 1280x720. Automatic collection is off here, so that
    only what the batch itself frees counts; a corrupt input in the middle leaves nothing open either."""
    writers: list[weakref.ref] = []
    real_init = stream.video_writer.VideoWriter.__init__

    def recorded(self, *args, **kwargs):
        writers.append(weakref.ref(self))
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(stream.video_writer.VideoWriter, "__init__", recorded)
    videos = [make_video(tmp_path / f"clip{i}.mp4", frames=4, size=(64, 48)) for i in range(3)]  # with sound
    corrupt = tmp_path / "clip1b.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    out = tmp_path / "out"
    assert cli.main(["run", str(videos[0]), "-o", str(out / "warm.mp4"), "--no-progress"]) == 0  # pools, caches
    gc.collect()
    writers.clear()
    open_before = _open_fds()
    gc.disable()
    try:
        code = cli.main(["run", str(videos[0]), str(videos[1]), str(corrupt), str(videos[2]), "-o", str(out),
                         "--no-progress"])
        alive = [ref() for ref in writers if ref() is not None]
    finally:
        gc.enable()
    assert code == 2  # the corrupt one's, the others written
    assert sorted(p.name for p in out.iterdir()) == ["clip0_portrait.mp4", "clip1_portrait.mp4", "clip2_portrait.mp4",
                                                     "warm.mp4"]
    assert len(writers) == 3 and alive == []
    assert _open_fds() <= open_before and live_workers() == []
