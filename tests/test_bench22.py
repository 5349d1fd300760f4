"""The benchmark as a latency-measuring user runs it (session 22): an input that can be read only once (a video
through a pipe) is refused before the model loads, instead of failing the first run as a corrupt video."""
import os
import threading

import pytest

from media import make_video
from stream import bench
from stream.cli import main
from stream.errors import UserError
from test_bench import _bench_args, _no_runs

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX's")


def _feed(fifo, video) -> threading.Thread:
    """A writer that pipes `video` into `fifo` once a reader opens it (the old code read it, then ran on nothing)."""
    def write() -> None:
        try:
            with open(fifo, "wb") as out:
                out.write(video.read_bytes())
        except OSError:  # the reader left before the end
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return writer


def _release(fifo, writer: threading.Thread) -> None:
    """A writer still waiting for a reader is let go: a reader opens the pipe and leaves."""
    if writer.is_alive():
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    writer.join(timeout=30)


def test_a_video_through_a_pipe_is_refused_before_the_model_loads(monkeypatch, tmp_path, capsys):
    """`cat clip.mp4 | depthcam bench -` (or a named pipe) read the video once to check it, loaded the model, and
    its first run then failed on what the pipe had left: "cannot read video /dev/stdin: Invalid data ... (the file
    is not a video, or it is truncated or corrupt)". The benchmark reads its input once a run: one line says so
    first."""
    video, fifo = make_video(tmp_path / "clip.mp4", frames=12), tmp_path / "pipe"
    os.mkfifo(fifo)
    _no_runs(monkeypatch)
    monkeypatch.setattr(bench, "check_runnable", lambda configs: None)
    writer = _feed(fifo, video)
    try:
        code = main(["bench", str(fifo), "--frames", "2", "--warmup", "1"])
    finally:
        _release(fifo, writer)
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("depthcam: error: input ") and "Traceback" not in err
    assert "a pipe, which can be read only once" in lines[0] and "save the video to a file" in lines[0]


def test_standard_input_through_a_pipe_is_named_as_such(monkeypatch, tmp_path):
    """`-` is named as standard input (a pipe there); the refusal comes before the configurations load."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    monkeypatch.setattr("stream.piped_input.input_path", lambda spec: fifo)
    monkeypatch.setattr(bench, "load_bench_configs", lambda args: pytest.fail("configurations loaded first"))
    with pytest.raises(UserError, match=r"^input - \(standard input\) is a pipe"):
        bench.preflight(_bench_args("-", "--frames", "2"))


def test_a_file_and_a_file_given_as_standard_input_are_read_again(monkeypatch, tmp_path):
    """A file, also one given as `< clip.mp4` (standard input is then the file itself), and the inputs that are no
    file are not refused: each can be opened once a run."""
    video = make_video(tmp_path / "clip.mp4", frames=12)
    for spec in (str(video), None, "synthetic:portrait", "camera:0", "rtsp://example.invalid/live"):
        bench.check_read_again(spec)
    monkeypatch.setattr("stream.piped_input.input_path", lambda spec: video)
    bench.check_read_again("-")


@pytest.mark.parametrize("name", ["", "  "])
def test_an_empty_from_is_named_so(name):
    # `--from "$REPORT"` with REPORT unset read the current folder: "cannot read it as text (Is a directory)"
    from stream.bench_plot import load_report

    with pytest.raises(UserError, match=r"^--from is empty \(an unset shell variable\?\); give a report"):
        load_report(name, 2)


def test_a_gpu_machine_line_names_cuda_and_cupy():
    """GPU figures move with the CUDA driver and runtime: the line named the card alone, and never CuPy's version."""
    machine = {"cpu": "Xeon", "cores": 16, "cores_usable": 16, "gpu": "NVIDIA H200",
               "cuda": "driver 12.8, runtime 12.6", "os": "Linux-6", "python": "3.11.7"}
    found = {"depthcam": "0.1.0", "cupy": "13.6.0"}
    assert bench.machine_line(machine, found) == ("machine: Xeon, 16 cores, NVIDIA H200 (CUDA driver 12.8, runtime "
                                                  "12.6); Linux-6; Python 3.11.7, depthcam 0.1.0, cupy 13.6.0")
    cpu_only = dict(machine, gpu=None, cuda=None)  # CuPy installed without a GPU ran nothing measured
    assert "cupy" not in bench.machine_line(cpu_only, found) and "no GPU" in bench.machine_line(cpu_only, found)


def test_cuda_versions_read_as_cuda_writes_them():
    assert bench._cuda_version(12080) == "12.8" and bench._cuda_version(11040) == "11.4"
