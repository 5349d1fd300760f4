"""What a benchmark's figures rest on: the machine and versions above the tables and in the JSON, the threads
each configuration ran with, the CPU depthcam and everything else used while measuring, and a plot whose runs
can be told apart."""
import json
import os

import pytest

from stream import bench, metrics
from stream.config import load_config
from stream.frame import Frame
from stream.metrics import CpuClock, LatencyRecorder, cpu_cores, machine_busy_ns

GIGA = 1_000_000_000


def test_the_machine_busy_time_is_read_from_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice, in clock ticks
    stat.write_text("cpu  100 10 50 1000 20 5 5 30 7 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n")
    busy_ticks = 100 + 10 + 50 + 5 + 5 + 30  # idle and I/O wait left out; steal (the VM's host) counts as busy
    assert machine_busy_ns(str(stat)) == busy_ticks * GIGA // os.sysconf("SC_CLK_TCK")
    assert machine_busy_ns(str(tmp_path / "missing")) is None  # not Linux


def test_cpu_cores_split_between_depthcam_and_the_rest():
    start, end = CpuClock(0, 0, 0), CpuClock(2 * GIGA, 3 * GIGA, int(3.5 * GIGA))  # 2 s: 3 CPU-s ours, 3.5 all
    assert cpu_cores(start, end) == pytest.approx({"depthcam": 1.5, "others": 0.25})
    assert cpu_cores(CpuClock(0, 0, None), CpuClock(GIGA, GIGA, None)) == {"depthcam": 1.0, "others": None}
    assert cpu_cores(start, None) == {"depthcam": None, "others": None}  # one reading: no span


def test_the_recorder_reads_the_cpu_over_the_measured_frames_only(monkeypatch):
    readings = iter([CpuClock(10, 0, 0), CpuClock(10 + GIGA, GIGA // 2, 2 * GIGA)])
    monkeypatch.setattr(metrics, "read_cpu_clock", lambda: next(readings))
    monkeypatch.setattr(metrics, "CPU_READ_EVERY_NS", 0)
    recorder = LatencyRecorder(["depth"], warmup=2)
    for index in range(4):  # two warm-up frames read nothing, then one reading at each measured frame
        frame = Frame(index=index, capture_ns=index, image=None)  # type: ignore[arg-type]
        frame.stamps["sink"] = index + 1
        recorder.record(frame)
    assert recorder.summary()["cpu_cores"] == pytest.approx({"depthcam": 0.5, "others": 1.5})


def _run(others):
    return {"cpu_cores": {"depthcam": 1.0, "others": others}}


def test_runs_measured_beside_other_busy_programs_are_named():
    reports = [{"config": "default", "runs": {"pipelined": _run(1.3), "live": _run(0.1)}},
               {"config": "live-cpu", "runs": {"live": _run(None)}}]
    warning = bench.busy_machine_warning(reports, {"cores": 2, "cores_usable": 2})
    assert "kept cores busy while measuring: default/pipelined 1.3 of 2;" in warning and "live" not in warning
    assert bench.busy_machine_warning(reports[1:], {"cores": 2, "cores_usable": 2}) is None


def test_usable_cores_take_a_container_quota(tmp_path):
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")  # docker --cpus 1.5
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert bench.usable_cores(str(quota)) == min(affinity, 1.5)
    quota.write_text("max 100000\n")
    assert bench.usable_cores(str(quota)) == affinity


MACHINE = {"cpu": "Xeon 2.8", "cores": 4, "cores_usable": 2, "numba_threads": 2, "gpu": None, "os": "Linux-6",
           "python": "3.11.7"}


def test_the_machine_line_names_the_cpu_cores_and_versions():
    line = bench.machine_line(MACHINE, {"depthcam": "0.1.0", "onnxruntime": "1.31.1", "numba": "0.68.1", "cupy": None})
    assert line == ("machine: Xeon 2.8, 4 cores (2 usable), no GPU; Linux-6; Python 3.11.7, depthcam 0.1.0, "
                    "onnxruntime 1.31.1, numba 0.68.1")


@pytest.mark.parametrize("preset, expected", [
    ("live-cpu", "tcmonodepth on CPUExecutionProvider (1 thread), kernels on cpu (Numba threads: refine 1, render 1)"),
    ("default", "tcmonodepth on CPUExecutionProvider (default threads), kernels on cpu "
                "(Numba threads: refine 2, render 2)")])
def test_each_configuration_says_what_ran_where_with_how_many_threads(preset, expected):
    report = {"settings": load_config(preset).to_dict(),
              "runs": {"pipelined": {"model": "tcmonodepth", "provider": "CPUExecutionProvider",
                                     "kernels_backend": "cpu"}}}
    assert bench.setup_line(report, MACHINE) == expected


def test_the_printed_report_and_the_json_hold_the_machine(monkeypatch, tmp_path, capsys):
    from importlib.metadata import version

    from test_bench import _bench_args, _fake_runs

    _fake_runs(monkeypatch, measured=5)
    out = tmp_path / "bench.json"
    assert bench.run_bench_command(_bench_args("--frames", "5", "--modes", "pipelined", "--json", str(out))) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("machine: ") and "onnxruntime" in printed
    assert "tcmonodepth on CPUExecutionProvider" in printed and "| cores (others) |" in printed
    document = json.loads(out.read_text())
    assert {"cores_usable", "numba_threads"} <= set(document["machine"])
    assert document["versions"]["depthcam"] == version("depthcam")
    assert set(document["reports"][0]["runs"]["pipelined"]["cpu_cores"]) == {"depthcam", "others"}


def test_every_run_of_a_big_comparison_has_its_own_line_style(monkeypatch, tmp_path):
    """Two configurations with every mode are 14 runs; matplotlib's cycle of ten colours gave the eleventh the
    first's colour, and live-cpu/batch4's 2 s latencies read as default/sequential's."""
    pytest.importorskip("matplotlib")
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    from stream.bench_plot import plot_report
    from test_bench import _fake_run

    modes = ["pipelined", "sequential", "batch1", "batch2", "batch4", "batch8", "live"]
    document = {"machine": MACHINE,
                "reports": [{"config": config, "runs": {mode: _fake_run(5) for mode in modes}}
                            for config in ("default", "live-cpu", "quality", "mine.yaml", "theirs.yaml")]}
    drawn = []
    savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: (drawn.append(self),
                                                                         savefig(self, *args, **kwargs)))
    plot_report(document, tmp_path / "b.png")
    timeline, histogram = drawn[0].axes[:2]
    looks = [(to_rgba(line.get_color()), line.get_linestyle()) for line in timeline.get_lines()]
    assert len(looks) == 35 and len(set(looks)) == 35
    # one outline per run in each histogram, in the order and colour of its line
    assert [to_rgba(patch.get_edgecolor()) for patch in histogram.patches] == [look for look, _ in looks]
