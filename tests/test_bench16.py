"""`depthcam bench` as a latency benchmarker meets it: SIGHUP, a saved report's caveats, what the tables and the plot
name, drops that add up, the plot of async depth."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream import bench
from stream.frame import Frame
from stream.metrics import LatencyRecorder
from test_bench import _bench_args, _fake_run, _fake_runs

MACHINE = {"cpu": "Test CPU", "cores": 2, "cores_usable": 2, "numba_threads": 2, "gpu": None, "os": "Linux",
           "python": "3.11"}


def _document(**runs) -> dict:
    return {"schema_version": bench.SCHEMA_VERSION, "created": "2026-11-29T11:22:12+0000", "interrupted": False,
            "input": "clip.mp4", "frames": 5, "frames_requested": 5, "warmup": 10, "machine": MACHINE,
            "versions": {"depthcam": "0.1.0"}, "reports": [{"config": "default", "settings": {}, "runs": runs}]}


def _hand_over(run: dict, network_ms: list[float]) -> dict:
    """`run` as async depth measures it: the depth row is the hand-over (0 ms), the network's time apart."""
    run["samples_ms"]["depth"] = [0.0] * len(run["samples_ms"]["depth"])
    run["samples_ms"]["async_network"] = network_ms
    run["async_network_ms"] = {"p50": network_ms[0], "p95": 0, "p99": 0, "max": 0, "mean": 0, "count": 1}
    return run


# --- 1. SIGHUP ends bench (and a run's loading) as SIGTERM does -----------------------------------------------------

def test_the_cli_ends_on_sighup_as_on_sigterm_and_leaves_an_ignored_one_ignored(shared_models):
    """SIGHUP outside a pipeline's run (bench's sequential run, loading the model) killed the process (exit 129)."""
    from stream.cli import _terminate, main

    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        assert main(["models", "list"], restore_signals=False) == 0  # as the `depthcam` command runs it
        assert signal.getsignal(signal.SIGHUP) is _terminate
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup
        assert main(["models", "list"], restore_signals=False) == 0
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_main_called_by_a_program_leaves_its_signal_handlers_as_they_were(shared_models):
    """A program calling main() had its own SIGHUP handler replaced for good (its SIGHUP then raised
    KeyboardInterrupt), and main() from a worker thread failed with "signal only works in main thread"."""
    import threading

    from stream.cli import main

    def reload(signum, frame):
        pass

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGHUP, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGHUP, reload)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        assert main(["models", "list"]) == 0
        assert signal.getsignal(signal.SIGHUP) is reload and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        codes = []
        worker = threading.Thread(target=lambda: codes.append(main(["models", "list"])))
        worker.start()
        worker.join(60)
        assert codes == [0]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_sighup_while_a_run_loads_ends_it_as_an_interruption(shared_models, tmp_path):
    """`kill -HUP` while the run builds (the model loads, the kernels compile): exit 130 and the line every
    interruption gets, not killed by the signal (exit 129) with nothing said."""
    process = subprocess.Popen([sys.executable, "-m", "stream", "bench", "--frames", "20", "--modes", "sequential",
                                "--json", str(tmp_path / "x.json")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "DEPTHCAM_MODELS": str(shared_models)})
    assert "sequential" in process.stderr.readline()  # "depthcam bench: default (sequential, ...)": the run builds
    process.send_signal(signal.SIGHUP)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert "depthcam: interrupted" in err


def test_sighup_during_a_run_reports_what_finished_though_the_terminal_is_gone(monkeypatch, tmp_path, capsys):
    """The terminal closed: SIGHUP stops the benchmark, and writing the tables to it fails (EIO); the JSON holds the
    runs that finished."""
    from stream.cli import main

    _fake_runs(monkeypatch, measured=5)

    def hung_up(*args, **kwargs):
        # the default action would end pytest itself
        assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, signal.SIG_IGN, None), "SIGHUP not handled"
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(30)  # the handler raises KeyboardInterrupt here
        raise AssertionError("SIGHUP did not stop the run")

    monkeypatch.setattr(bench, "run_sequential", hung_up)
    monkeypatch.setattr(sys, "stdout", _Gone())
    out = tmp_path / "x.json"
    previous = signal.getsignal(signal.SIGHUP)
    try:
        assert main(["bench", "--frames", "5", "--json", str(out)]) == 130
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert sorted(json.loads(out.read_text())["reports"][0]["runs"]) == ["pipelined"]
    assert "interrupted; reporting the runs that finished" in capsys.readouterr().err


class _Gone:
    """Standard output on a terminal that closed."""

    def write(self, text):
        raise OSError(5, "Input/output error")  # EIO

    def flush(self):
        pass


def test_tables_to_a_gone_terminal_still_write_the_json(monkeypatch, tmp_path):
    _fake_runs(monkeypatch, measured=5)
    monkeypatch.setattr(sys, "stdout", _Gone())
    out = tmp_path / "b.json"
    assert bench.run_bench_command(_bench_args("--frames", "5", "--modes", "pipelined", "--json", str(out))) == 0
    assert json.loads(out.read_text())["reports"][0]["runs"]["pipelined"]["frames"] == 5


# --- 2. a saved report reprints its caveats --------------------------------------------------------------------------

def test_from_a_report_reprints_its_warnings(tmp_path, capsys):
    short = _fake_run(5)
    short["cpu_cores"] = {"depthcam": 1.0, "others": 1.3}
    document = _document(live=short)
    document["frames_requested"] = 300
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps(document))
    assert bench.run_bench_command(_bench_args("--from", str(saved))) == 0
    err = capsys.readouterr().err
    assert "fewer than the 300 frames asked for were measured: default/live 5" in err
    assert "other programs (or a VM's host) kept cores busy while measuring: default/live 1.3 of 2" in err


# --- 3. the tables and the plot name the input and the date ----------------------------------------------------------

def test_the_tables_name_the_input_and_the_date(monkeypatch, tmp_path, capsys):
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps(_document(pipelined=_fake_run(5))))
    assert bench.run_bench_command(_bench_args("--from", str(saved))) == 0
    assert "input: clip.mp4; measured 2026-11-29 11:22:12+0000" in capsys.readouterr().out
    _fake_runs(monkeypatch, measured=5)
    assert bench.run_bench_command(_bench_args("--frames", "5", "--modes", "pipelined")) == 0
    assert f"input: synthetic:portrait?size=640x480&fps=30; measured {time.strftime('%Y-')}" in capsys.readouterr().out


def _drawn(monkeypatch, document: dict, tmp_path: Path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from stream.bench_plot import plot_report

    drawn = []
    savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: (drawn.append(self),
                                                                         savefig(self, *args, **kwargs)))
    plot_report(document, tmp_path / "b.png")
    return drawn[0]


def test_the_plot_title_names_the_input_and_the_date(monkeypatch, tmp_path):
    figure = _drawn(monkeypatch, _document(pipelined=_fake_run(5)), tmp_path)
    title = figure.get_suptitle()
    assert "clip.mp4" in title and "2026-11-29 11:22:12" in title and "Test CPU" in title


# --- 4. dropped frames add up for a file ---------------------------------------------------------------------------

def test_frames_dropped_at_a_files_end_are_counted():
    """96 frames, 10 of warm-up: 77 measured and 4 dropped between them left 5 unaccounted for (the last ones)."""
    recorder = LatencyRecorder(bench.STAGES, warmup=10)
    reached = [i for i in range(91) if i not in (30, 31, 50, 70)]  # 4 dropped while measuring, 91-95 at the end
    for index in range(96):
        recorder.delivered(index)
    for index in reached:
        frame = Frame(index=index, capture_ns=index, image=None)  # type: ignore[arg-type]
        frame.stamps["sink"] = index + 1
        recorder.record(frame)
    assert recorder.frames == 77 and recorder.dropped_while_measuring == 4  # as before: the schema's meaning
    assert recorder.dropped_after_warmup(input_ended=True) == 9  # 77 + 9 = 96 - 10
    assert recorder.dropped_after_warmup(input_ended=False) == 4  # stopped by --frames: the rest were in flight


def test_the_warning_and_table_give_figures_that_add_up(monkeypatch, capsys):
    run = _fake_run(77)
    run.update(dropped_frames=4, dropped_after_warmup=9)
    monkeypatch.setattr(bench, "run_pipelined", lambda *args, **kwargs: dict(run))
    monkeypatch.setattr(bench, "check_runnable", lambda configs: None)
    assert bench.run_bench_command(_bench_args("--frames", "300", "--modes", "live")) == 0
    captured = capsys.readouterr()
    assert "default/live 77 of the 86 delivered after the warm-up (9 dropped)" in captured.err
    assert "| live | 77 |" in captured.out and "| 9 |" in captured.out


def test_a_live_file_run_counts_what_its_source_delivered(shared_models, tmp_path):
    """The pipeline's source tells the recorder each frame it delivers: frames + dropped = delivered - warm-up."""
    from stream.config import load_config

    run = bench.run_pipelined(load_config("live-cpu", {"render.blur": 0}),
                              "synthetic:portrait?size=160x120&fps=30&frames=40", frames=100, warmup=5)
    assert run["frames"] + run["dropped_after_warmup"] == 40 - 5


# --- 5. the plot of async depth, outliers and legends ----------------------------------------------------------------

def test_the_plot_shows_the_async_networks_time_clips_outliers_and_has_a_legend_on_every_panel(monkeypatch, tmp_path):
    sync = _fake_run(200)
    sync["samples_ms"]["refine"] = [10.0 + i % 5 for i in range(199)] + [5000.0]  # one outlier
    live = _hand_over(_fake_run(200), [50.0 + i % 7 for i in range(60)])
    figure = _drawn(monkeypatch, _document(pipelined=sync, live=live), tmp_path)
    _, depth, refine, _ = figure.axes
    assert all(axis.get_legend() is not None for axis in figure.axes)
    labels = [text.get_text() for text in depth.get_legend().get_texts()]
    assert "default/live (async net)" in labels
    left, right = depth.get_xlim()
    assert right > 50  # the network's times, not the hand-over's 0 ms alone
    assert refine.get_xlim()[1] < 1000 and "99.5th percentile" in refine.get_xlabel()


def test_two_runs_equal_bars_both_show(monkeypatch, tmp_path):
    """Outlines of different widths: a later run's equal bars lie inside the earlier one's, not over them."""
    figure = _drawn(monkeypatch, _document(pipelined=_fake_run(20), sequential=_fake_run(20)), tmp_path)
    widths = [patch.get_linewidth() for patch in figure.axes[2].patches]
    assert len(widths) == 2 and widths[0] > widths[1]


def test_the_recorder_keeps_the_async_networks_samples():
    recorder = LatencyRecorder(bench.STAGES)
    frame = Frame(index=0, capture_ns=0, image=None)  # type: ignore[arg-type]
    frame.stamps["sink"] = 1
    frame.extra["network_ns"] = 42_000_000
    recorder.record(frame)
    assert recorder.samples_ms()["async_network"] == [42.0]


# --- 6. the table's note says why sequential fps lies below 1000 / e2e ------------------------------------------------

def test_the_note_says_the_sequential_rate_counts_producing_the_frame():
    assert "sequential run's fps counts producing each frame" in bench.TABLE_NOTE
