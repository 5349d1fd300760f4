"""`depthcam bench`: the JSON has every documented field, and a delay shows up where it belongs."""
import json
import math
import re
import time

import pytest

from stream.bench import run_pipelined
from stream.cli import main
from stream.config import load_config
from stream.stages import RefineStage

STAT_KEYS = {"p50", "p95", "p99", "max", "mean", "count"}


def _check_stats(stats, frames):
    assert set(stats) == STAT_KEYS
    assert stats["count"] == frames
    assert 0 <= stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"]


def test_bench_json_has_every_documented_field(shared_models, tmp_path):
    out = tmp_path / "bench.json"
    code = main(["bench", "synthetic:portrait?size=160x120", "--frames", "20", "--warmup", "3",
                 "--modes", "pipelined,sequential,live", "--json", str(out), "--plot", str(tmp_path / "b.png")])
    assert code == 0
    document = json.loads(out.read_text())
    assert document["schema_version"] == 2
    assert {"created", "input", "frames", "warmup", "machine", "versions", "reports"} <= set(document)
    assert document["interrupted"] is False
    assert {"cpu", "cores", "gpu", "os", "python"} <= set(document["machine"])
    assert document["machine"]["cores"] >= 1
    assert document["versions"]["onnxruntime"]
    report = document["reports"][0]
    assert report["config"] == "default" and report["settings"]["model"] == "tcmonodepth"
    assert report["speedup_pipelined_over_sequential"] > 0
    assert 0 < report["measurement_overhead"]["fraction_of_frame_time"] < 0.01
    for name in ("pipelined", "sequential", "live"):
        run = report["runs"][name]
        assert run["frames"] == 20 and run["warmup_frames"] == 3
        assert run["throughput_fps"] > 0 and math.isfinite(run["throughput_fps"])
        assert run["dropped_frames"] >= 0
        assert run["provider"] == "CPUExecutionProvider" or run["provider"].startswith("CUDA")
        assert run["model"] == "tcmonodepth" and run["kernels_backend"] in ("cpu", "cuda")
        _check_stats(run["end_to_end_ms"], 20)
        for stage in ("depth", "refine", "render"):
            _check_stats(run["stages"][stage]["service_ms"], 20)
            _check_stats(run["stages"][stage]["queue_wait_ms"], 20)
            assert len(run["samples_ms"][stage]) == 20
        assert len(run["samples_ms"]["end_to_end"]) == 20
    for name in ("pipelined", "sequential", "live"):  # the documented keys in every run (sequential: no queue, 0)
        assert set(report["runs"][name]["queue_high_water"]) == {"capture", "depth", "refine", "render"}
    assert set(report["runs"]["sequential"]["queue_high_water"].values()) == {0}
    assert report["runs"]["sequential"]["async_network_ms"] is None  # the default preset's depth is sync
    assert (tmp_path / "b.png").stat().st_size > 10_000


def test_async_depth_reports_the_network_time_and_depth_age(shared_models):
    config = load_config("live-cpu", {"render.blur": 0})
    run = run_pipelined(config, "synthetic:portrait?size=160x120&fps=20&frames=40&realtime=1", frames=30, warmup=5)
    network = run["async_network_ms"]
    assert network is not None and 0 < network["p50"] < 1000 and network["count"] >= 1
    assert run["depth_age_frames"]["p50"] >= 0
    assert run["stages"]["depth"]["service_ms"]["p50"] < network["p50"]  # the display never waits for it


def test_an_injected_delay_shows_in_its_stage_and_end_to_end_only(shared_models, monkeypatch):
    config = load_config("default", {"refine.mode": "off", "render.blur": 0, "output.progress": False,
                                     "inference.max_batch": 1, "inference.threads": 1})
    # paced: the pipeline is never saturated (the delay stays well under the 250 ms period); the delay is large
    # against what a busy machine moves the other stages' medians by (21 ms seen beside other test runs)
    spec = "synthetic:portrait?size=160x120&fps=4&frames=30&realtime=1"
    baseline = run_pipelined(config, spec, frames=24, warmup=4)
    delay_ms = 150.0
    original = RefineStage.process

    def slow(self, batch):
        time.sleep(delay_ms / 1000)
        return original(self, batch)

    monkeypatch.setattr(RefineStage, "process", slow)
    delayed = run_pipelined(config, spec, frames=24, warmup=4)

    def p50(run, stage):
        return run["stages"][stage]["service_ms"]["p50"]

    assert p50(delayed, "refine") - p50(baseline, "refine") == pytest.approx(delay_ms, abs=15)
    e2e_growth = delayed["end_to_end_ms"]["p50"] - baseline["end_to_end_ms"]["p50"]
    assert e2e_growth == pytest.approx(delay_ms, abs=40)
    for stage in ("depth", "render"):  # the other stages' own times do not take the delay
        assert abs(p50(delayed, stage) - p50(baseline, stage)) < 0.25 * delay_ms, stage


# --- bad options are refused before the first run (no pipeline runs below: fast) ------------------

import sys  # noqa: E402

from stream import bench  # noqa: E402
from stream.cli import build_parser  # noqa: E402
from stream.errors import UserError  # noqa: E402
from stream.frame import Frame  # noqa: E402
from stream.metrics import LatencyRecorder  # noqa: E402


def _bench_args(*argv: str):
    return build_parser().parse_args(["bench", *argv])


def _no_runs(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("a run started before the options were checked")

    monkeypatch.setattr(bench, "run_pipelined", fail)
    monkeypatch.setattr(bench, "run_sequential", fail)


@pytest.mark.parametrize("modes", ["", ",", " , "])
def test_empty_mode_list_is_refused(modes):
    with pytest.raises(UserError, match="--modes is empty"):
        bench.parse_modes(modes)


def test_modes_keep_order_and_drop_repeats():
    assert bench.parse_modes("live, pipelined,live") == ["live", "pipelined"]


def test_the_runs_go_in_the_order_the_modes_are_given(monkeypatch):
    """`--modes sequential,pipelined` ran pipelined first (a fixed order), and its table listed it first."""
    ran = []
    monkeypatch.setattr(bench, "run_pipelined", lambda config, spec, frames, warmup, paced=False: (
        ran.append("live" if "realtime=1" in spec else "pipelined"), _fake_run(frames))[1])
    monkeypatch.setattr(bench, "run_sequential", lambda config, spec, frames, warmup: (
        ran.append("sequential"), _fake_run(frames))[1])
    report = bench.bench_one(None, _bench_args("--frames", "5"), ["sequential", "live", "pipelined"],
                             load_config("default"))
    assert ran == ["sequential", "live", "pipelined"] and list(report["runs"]) == ran


def test_unknown_compare_config_is_refused_before_any_run(monkeypatch):
    _no_runs(monkeypatch)
    with pytest.raises(UserError, match="unknown config preset 'nosuchpreset'"):
        bench.run_bench_command(_bench_args("--compare", "default", "nosuchpreset"))


@pytest.mark.parametrize("spec, message", [("camera:abc", "bad camera 'camera:abc'"),
                                           ("camera:0?size=foo", "bad size 'foo'")])
def test_a_misspelt_camera_is_refused_before_the_first_line(monkeypatch, capsys, spec, message):
    _no_runs(monkeypatch)
    with pytest.raises(UserError, match=re.escape(message)):
        bench.run_bench_command(_bench_args(spec, "--frames", "10"))
    assert capsys.readouterr().err == ""


def test_a_configuration_named_twice_is_benchmarked_once(capsys):
    # no --config means the defaults, which the default preset also holds
    configs = bench.load_bench_configs(_bench_args("--compare", "default", "live-cpu", "live-cpu"))
    assert [name for name, _ in configs] == [None, "live-cpu"]
    notes = capsys.readouterr().err
    assert "--compare default: the same settings as default" in notes
    assert "--compare live-cpu: the same settings as live-cpu" in notes


def test_bad_report_paths_are_refused_before_any_run(monkeypatch, tmp_path):
    _no_runs(monkeypatch)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for argv, message in [(["--json", str(tmp_path)], "is a folder"),
                          (["--json", str(blocker / "b.json")], "is a file, not a folder"),
                          (["--plot", str(tmp_path / "b.nosuchformat")], "matplotlib cannot write .nosuchformat"),
                          (["--plot", str(tmp_path / "plot")], "without an extension"),
                          (["--json", str(tmp_path / "x"), "--plot", str(tmp_path / "x")], "both name"),
                          (["--json", ""], "needs a file name")]:
        with pytest.raises(UserError, match=message):
            bench.run_bench_command(_bench_args(*argv))


def test_plot_without_matplotlib_is_refused_up_front(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    with pytest.raises(UserError, match="--plot needs matplotlib"):
        bench.check_report_paths(None, str(tmp_path / "b.png"), None)


def test_report_path_that_is_the_input_is_refused(tmp_path):
    video = tmp_path / "in.mp4"
    video.write_bytes(b"")
    with pytest.raises(UserError, match="is the input file"):
        bench.check_report_paths(str(video), None, str(video))


def test_input_shorter_than_the_warmup_is_refused_before_any_run():
    configs = bench.load_bench_configs(_bench_args())
    with pytest.raises(UserError, match=r"has 5 frames, all within the 10 warm-up frames"):
        bench.check_input("synthetic:portrait?size=32x32&frames=5", 10, configs)


def _fake_run(measured: int) -> dict:
    recorder = LatencyRecorder(bench.STAGES)
    for index in range(measured):
        frame = Frame(index=index, capture_ns=1000 * index, image=None)  # type: ignore[arg-type]
        for offset, stage in enumerate(bench.STAGES):
            frame.stamps[f"{stage}.start"], frame.stamps[stage] = 1000 * index + offset, 1000 * index + offset + 1
        frame.stamps["sink"] = 1000 * index + 10
        recorder.record(frame)
    summary = recorder.summary()
    summary.update(dropped_frames=0, queue_high_water={}, provider="CPUExecutionProvider", kernels_backend="cpu",
                   model="tcmonodepth")
    return summary


def _fake_runs(monkeypatch, measured: int) -> None:
    monkeypatch.setattr(bench, "run_pipelined", lambda *args, **kwargs: _fake_run(measured))
    monkeypatch.setattr(bench, "run_sequential", lambda *args, **kwargs: _fake_run(measured))
    monkeypatch.setattr(bench, "check_runnable", lambda configs: None)


def test_json_dash_is_standard_output_holding_the_report_alone(monkeypatch, tmp_path, capsys):
    """`--json -` wrote a file named '-' (after the whole benchmark); it is the report on standard output, which
    then holds nothing else (the tables go to stderr), so `depthcam bench --json - | jq` reads it."""
    _fake_runs(monkeypatch, measured=5)
    monkeypatch.chdir(tmp_path)
    assert bench.run_bench_command(_bench_args("--frames", "5", "--modes", "pipelined", "--json", "-")) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["reports"][0]["runs"]["pipelined"]["frames"] == 5
    assert "pipelined" in captured.err and not (tmp_path / "-").exists()


def test_json_to_the_file_standard_output_is_holds_the_report_alone(monkeypatch, tmp_path, capsys):
    """`--json /dev/stdout | jq`: the tables went to standard output too, before the JSON, and jq read neither. A
    --json naming the file standard output is (here a file standing in for the pipe) gets the report alone."""
    _fake_runs(monkeypatch, measured=5)
    out = tmp_path / "stdout.txt"
    with open(out, "w") as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        assert bench.run_bench_command(_bench_args("--frames", "5", "--modes", "pipelined", "--json", str(out))) == 0
    assert json.loads(out.read_text())["frames"] == 5
    assert "| pipelined |" in capsys.readouterr().err  # the tables, on stderr


def test_json_through_a_link_is_written_where_it_points_and_the_link_stays(monkeypatch, tmp_path):
    """The report was written beside the name and renamed over it: a link (`--json /dev/stdout`, a link into a
    shared folder) was replaced by a plain file; as root, /dev/stdout itself."""
    _fake_runs(monkeypatch, measured=5)
    (tmp_path / "shared").mkdir()
    link = tmp_path / "latest.json"
    link.symlink_to(tmp_path / "shared" / "bench.json")
    assert bench.run_bench_command(_bench_args("--frames", "5", "--modes", "pipelined", "--json", str(link))) == 0
    assert link.is_symlink() and json.loads((tmp_path / "shared" / "bench.json").read_text())["frames"] == 5


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="named pipes are POSIX's")
def test_json_into_a_pipe_is_written_into_it(monkeypatch, tmp_path):
    import os
    import threading

    _fake_runs(monkeypatch, measured=5)
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)  # none may write
    reader.start()
    assert bench.run_bench_command(_bench_args("--frames", "5", "--modes", "pipelined", "--json", str(fifo))) == 0
    reader.join(10)
    assert json.loads(got[0])["frames"] == 5 and fifo.is_fifo()


def test_short_input_reports_the_real_count_warns_once_and_writes_strict_json(monkeypatch, tmp_path, capsys):
    _fake_runs(monkeypatch, measured=1)  # one frame: no rate, so NaN throughput and speedup
    out = tmp_path / "bench.json"
    code = bench.run_bench_command(_bench_args("--frames", "50", "--json", str(out)))
    assert code == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "default/pipelined 1" in warnings[0] and "50 frames" in warnings[0]
    assert "nan" not in captured.out
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    document = json.loads(text)
    assert document["frames"] == 1 and document["frames_requested"] == 50
    report = document["reports"][0]
    assert report["runs"]["pipelined"]["frames"] == 1
    assert report["runs"]["pipelined"]["throughput_fps"] is None
    assert report["speedup_pipelined_over_sequential"] is None


def test_a_run_that_measured_nothing_is_refused(monkeypatch):
    _fake_runs(monkeypatch, measured=0)
    with pytest.raises(UserError, match="default/pipelined: no frame was measured"):
        bench.run_bench_command(_bench_args("--modes", "pipelined"))


def test_full_runs_give_no_warning():
    assert bench.short_runs_warning([{"config": "default", "runs": {"pipelined": _fake_run(5)}}], 5) is None


def test_async_depth_gets_no_pipelined_over_sequential_ratio(monkeypatch, tmp_path, capsys):
    # the async pipelined run predicts depth on fewer frames than the sequential one: not the same work
    _fake_runs(monkeypatch, measured=20)
    out = tmp_path / "bench.json"
    assert bench.run_bench_command(_bench_args("--config", "live-cpu", "--frames", "20", "--json", str(out))) == 0
    report = json.loads(out.read_text())["reports"][0]
    assert report["speedup_pipelined_over_sequential"] is None and "not the same work" in report["speedup_note"]
    assert "not reported" in capsys.readouterr().out
    assert bench.run_bench_command(_bench_args("--frames", "20", "--json", str(out))) == 0
    assert json.loads(out.read_text())["reports"][0]["speedup_pipelined_over_sequential"] > 0  # sync: reported


def test_bad_frames_or_warmup_is_named(monkeypatch):
    _no_runs(monkeypatch)
    with pytest.raises(UserError, match=r"^--warmup -1: give 0 or more$"):
        bench.run_bench_command(_bench_args("--warmup", "-1"))
    with pytest.raises(UserError, match=r"^--frames 1: give at least 2"):
        bench.run_bench_command(_bench_args("--frames", "1"))


def _four_frames_50_ms_apart(decode_ms=(0, 0, 0, 0), clock: list[int] | None = None):
    """A file of four frames 50 ms apart whose stream starts at 10 s (pacing counts from the first frame); each
    takes decode_ms[i] to decode, on the fake `clock` where one is given."""
    from stream.sources import Source

    class File(Source):
        fps, width, height, frame_count = 20.0, 8, 8, 4

        def frames(self):
            for index in range(4):
                if clock is not None:
                    clock[0] += decode_ms[index] * 1_000_000
                yield Frame(index=index, capture_ns=0, image=None,  # type: ignore[arg-type]
                            pts_seconds=10 + index / 20)

    return File()


def _on_a_fake_clock(monkeypatch) -> tuple[list[int], list[int]]:
    """The sources' clock and sleep as a fake one that only moves when told to or waited on: (clock, waits)."""
    from stream import sources

    clock, waits = [1_000_000_000], []

    def wait_until(due_ns: int) -> None:
        waits.append(due_ns)
        clock[0] = max(clock[0], due_ns)

    monkeypatch.setattr(sources, "now_ns", lambda: clock[0])
    monkeypatch.setattr(sources, "_wait_until", wait_until)
    return clock, waits


def test_a_file_is_paced_at_its_own_frame_rate_like_a_camera(monkeypatch):
    """Each frame is held until its presentation time after the first, and stamped with that time (latency
    counts from when it was due). On a fake clock: a busy machine's scheduler (CI's two cores) made a frame
    more than a period late on the real one, which moves the beat on as designed (dues 0, 50, 160, 210 ms)."""
    from stream.sources import PacedSource

    clock, waits = _on_a_fake_clock(monkeypatch)
    paced = PacedSource(_four_frames_50_ms_apart(clock=clock))
    assert paced.live and paced.fps == 20.0
    frames = list(paced.frames())
    dues = [f.capture_ns - frames[0].capture_ns for f in frames]
    assert dues == [0, 50_000_000, 100_000_000, 150_000_000]  # latency counts from when each frame was due
    assert [w - waits[0] for w in waits] == dues and clock[0] - waits[0] == 150_000_000  # it waited for each


def test_a_file_that_decodes_late_moves_the_beat_on(monkeypatch):
    """A frame decoded more than a frame period after it was due is delivered when it comes, and the frames
    after it keep the 50 ms spacing from there: the debt is not carried."""
    from stream.sources import PacedSource

    clock, _ = _on_a_fake_clock(monkeypatch)
    frames = list(PacedSource(_four_frames_50_ms_apart((0, 0, 120, 0), clock)).frames())
    assert [f.capture_ns - frames[0].capture_ns for f in frames] == [0, 50_000_000, 170_000_000, 220_000_000]


def test_a_file_is_paced_on_the_real_clock():
    """On the real clock, whatever the scheduler does: never faster than the file's rate (a late frame only
    moves the beat later), stamped with times the frames were due, not before."""
    from stream.sources import PacedSource

    started = time.perf_counter_ns()
    frames = list(PacedSource(_four_frames_50_ms_apart()).frames())
    arrived = time.perf_counter_ns()
    stamps = [f.capture_ns for f in frames]
    assert all(later - earlier >= 50_000_000 for earlier, later in zip(stamps, stamps[1:]))
    assert started <= stamps[0] and stamps[-1] <= arrived and arrived - started >= 150_000_000


def test_the_live_run_paces_files_and_measures_the_frames_asked_for(monkeypatch, tmp_path):
    calls = []

    def fake(config, input_spec, frames, warmup, paced=False):
        calls.append((input_spec, paced))
        return _fake_run(frames)

    monkeypatch.setattr(bench, "run_pipelined", fake)
    video = tmp_path / "clip.mp4"
    bench.bench_one(None, _bench_args(str(video), "--frames", "5"), ["live"], load_config("default"))
    assert calls[-1] == (str(video), True)  # read as fast as it decodes, the live run was the pipelined one
    bench.bench_one(None, _bench_args("--frames", "5"), ["live"], load_config("default"))
    spec, paced = calls[-1]
    # the default scene outlasts the run: frames the live queue drops do not shorten what is measured
    assert not paced and "realtime=1" in spec and f"frames={bench.LIVE_SYNTHETIC_FRAMES}" in spec
    bench.bench_one(None, _bench_args("camera:0", "--frames", "5"), ["live"], load_config("default"))
    assert calls[-1] == ("camera:0", False)


def test_the_table_says_its_units(monkeypatch, capsys):
    _fake_runs(monkeypatch, measured=5)
    assert bench.run_bench_command(_bench_args("--frames", "5", "--modes", "pipelined")) == 0
    out = capsys.readouterr().out
    assert out.count("times in ms") == 1 and "e2e: capture → sink" in out


def test_plot_histograms_share_their_bins(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    from stream.bench_plot import plot_report

    bins = []
    monkeypatch.setattr(Axes, "hist", lambda self, values, bins=None, **kwargs: bins_seen(bins))

    def bins_seen(edges):
        bins.append(edges if isinstance(edges, int) else list(edges))

    fast, slow = _fake_run(5), _fake_run(5)
    slow["samples_ms"] = {key: [v * 50 + 3 for v in values] for key, values in slow["samples_ms"].items()}
    document = {"machine": {"cpu": "cpu", "cores": 2, "gpu": None},
                "reports": [{"config": "default", "runs": {"pipelined": fast, "live": slow}}]}
    plot_report(document, tmp_path / "b.png")
    assert len(bins) == 6  # two runs in each of three stages
    for stage in range(3):  # comparable bars: one set of bin edges per stage (a count gives each run its own)
        assert not isinstance(bins[2 * stage], int) and bins[2 * stage] == bins[2 * stage + 1]


def test_an_interrupted_benchmark_reports_the_runs_that_finished(monkeypatch, tmp_path, capsys):
    _fake_runs(monkeypatch, measured=20)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C during the second configuration's sequential run

    calls = iter([lambda *a, **k: _fake_run(20), interrupted])
    monkeypatch.setattr(bench, "run_sequential", lambda *args, **kwargs: next(calls)(*args, **kwargs))
    out = tmp_path / "bench.json"
    code = bench.run_bench_command(_bench_args("--compare", "quality", "--frames", "20", "--json", str(out)))
    assert code == 130
    document = json.loads(out.read_text())
    assert document["interrupted"] is True
    assert [(r["config"], sorted(r["runs"])) for r in document["reports"]] == [
        ("default", ["pipelined", "sequential"]), ("quality", ["pipelined"])]
    assert all("measurement_overhead" in report for report in document["reports"])  # as documented
    assert "interrupted; reporting the runs that finished" in capsys.readouterr().err


def test_an_interruption_before_any_run_finished_reports_nothing(monkeypatch, tmp_path, capsys):
    _fake_runs(monkeypatch, measured=20)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "run_pipelined", interrupted)
    earlier = tmp_path / "bench.json"
    earlier.write_text('{"an": "earlier report"}')
    with pytest.raises(KeyboardInterrupt):
        bench.run_bench_command(_bench_args("--json", str(earlier)))
    assert earlier.read_text() == '{"an": "earlier report"}'
    assert "interrupted before any run finished; no report written" in capsys.readouterr().err


def test_dropped_frames_count_only_while_measuring():
    recorder = LatencyRecorder(bench.STAGES, warmup=3)
    # 0, 4, 5 are the warm-up (1-3 dropped then); 6, 9, 10, 14 are measured, 7, 8 and 11-13 dropped between
    for index in [0, 4, 5, 6, 9, 10, 14]:
        frame = Frame(index=index, capture_ns=index, image=None)  # type: ignore[arg-type]
        frame.stamps["sink"] = index + 1
        recorder.record(frame)
    assert recorder.frames == 4 and recorder.dropped_while_measuring == 5


def test_a_compared_model_that_cannot_load_is_refused_before_any_run(shared_models, monkeypatch, tmp_path):
    from test_models import _first_channel_model

    _no_runs(monkeypatch)
    model = _first_channel_model(tmp_path / "any_size.onnx")  # dynamic input size, and no model_size given
    config = tmp_path / "mine.yaml"
    config.write_text(f"model: {model}\n")
    with pytest.raises(UserError, match="dynamic input size .* --model-size WxH"):
        bench.run_bench_command(_bench_args("--compare", str(config)))


def test_recorded_render_inputs_are_what_the_renderer_received(shared_models, monkeypatch, tmp_path):
    # bench/record_render_inputs.py keeps the render stage's inputs of a real run; bench_dof.py --recorded
    # times them. The recorded frames must be the run's own: its frame size, its scaled blur, a refined
    # disparity in [0, 1], and rendering them again must give the picture the run rendered.
    import numpy as np

    import kernels
    from bench import bench_dof, record_render_inputs

    rendered = []
    render = kernels.depth_of_field

    def keep_output(*args, **kwargs):
        rendered.append(render(*args, **kwargs))
        return rendered[-1]

    monkeypatch.setattr(kernels, "depth_of_field", keep_output)  # under the recorder's own wrapper
    out = tmp_path / "frames.npz"
    monkeypatch.setattr(sys, "argv", ["record_render_inputs.py", "synthetic:portrait?size=96x64&frames=5", str(out),
                                      "--frames", "3"])
    assert record_render_inputs.main() == 0
    with np.load(out) as recorded:
        images, disparities = recorded["images"], recorded["disparities"]
        assert images.shape == (3, 64, 96, 3) and disparities.shape == (3, 64, 96)
        assert 0.0 <= disparities.min() and disparities.max() <= 1.0 and disparities.std() > 0.05
        assert np.allclose(recorded["blur"], 12 * 64 / 480)  # the default preset's 12 px at 480 lines
        for i in range(3):
            again = render(images[i], disparities[i], float(recorded["focus"][i]), float(recorded["blur"][i]),
                           highlight_boost=float(recorded["highlight_boost"][i]), backend="cpu")
            np.testing.assert_array_equal(again, rendered[i])
    size, blur, scale, median, p90, best = bench_dof.time_recorded(out, runs=1)
    assert (size, blur, scale) == ("96x64", 1.6, 1) and 0 < best <= median <= p90


def test_a_live_run_of_a_given_synthetic_scene_lasts_until_its_frames_reach_the_sink():
    # the scene's own default length (300) would end a live run early once frames are dropped
    spec = bench._input_spec("synthetic:portrait?size=1280x720", bench.LIVE_SYNTHETIC_FRAMES, live=True)
    assert spec == f"synthetic:portrait?size=1280x720&realtime=1&frames={bench.LIVE_SYNTHETIC_FRAMES}"
    assert bench._input_spec("synthetic:portrait?frames=50", 10, live=True) == "synthetic:portrait?frames=50&realtime=1"
    assert bench._input_spec("synthetic:portrait?frames=50", 10, live=False) == "synthetic:portrait?frames=50"


def test_a_report_that_cannot_be_written_keeps_the_earlier_one_and_says_so(monkeypatch, tmp_path, capsys):
    """A full disk at the end of the benchmark: the earlier bench.json was cut to what fitted, and the error
    was 'OSError: [Errno 28] ...'."""
    import errno
    from pathlib import Path

    _fake_runs(monkeypatch, measured=5)
    real_write_text = Path.write_text

    def disk_full(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    earlier = tmp_path / "bench.json"
    earlier.write_text('{"an": "earlier report"}')
    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(UserError, match=r"cannot write --json .*bench.json: No space left on device") as refused:
        bench.run_bench_command(_bench_args("--frames", "5", "--modes", "pipelined", "--json", str(earlier)))
    assert refused.value.exit_code == 1  # a failure while running, not bad input
    monkeypatch.setattr(Path, "write_text", real_write_text)
    assert earlier.read_text() == '{"an": "earlier report"}' and sorted(tmp_path.iterdir()) == [earlier]
    assert "| pipelined |" in capsys.readouterr().out  # the figures were shown before


def test_a_plot_that_cannot_be_written_keeps_the_earlier_one(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    import errno

    from matplotlib.figure import Figure

    from stream.bench_plot import plot_report

    def disk_full(self, fname, **kwargs):
        with open(fname, "wb") as half:
            half.write(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    earlier = tmp_path / "b.png"
    earlier.write_bytes(b"an earlier plot")
    monkeypatch.setattr(Figure, "savefig", disk_full)
    document = {"machine": {"cpu": "cpu", "cores": 2, "gpu": None},
                "reports": [{"config": "default", "runs": {"pipelined": _fake_run(5)}}]}
    with pytest.raises(OSError):
        plot_report(document, earlier)
    assert earlier.read_bytes() == b"an earlier plot" and sorted(tmp_path.iterdir()) == [earlier]


# --- the figures themselves, from known timestamps -------------------------------------------------------

MS = 1_000_000


def _stamped(index, capture_ms, stages_ms, sink_ms, depth_index=None):
    """A frame with its stamps in ms: stages_ms is (stage, start, end) in order."""
    frame = Frame(index=index, capture_ns=capture_ms * MS, image=None)  # type: ignore[arg-type]
    for stage, start, end in stages_ms:
        frame.stamps[f"{stage}.start"], frame.stamps[stage] = start * MS, end * MS
    frame.stamps["sink"] = sink_ms * MS
    frame.depth_index = index if depth_index is None else depth_index
    return frame


def test_percentiles_rate_and_waits_come_from_the_stamps():
    recorder = LatencyRecorder(["depth", "render"], warmup=1)
    depth_ms = [1, 2, 3, 4, 100]
    # a warm-up frame with absurd times, left out of every figure
    recorder.record(_stamped(0, 0, [("depth", 500, 9000), ("render", 9000, 9999)], 10_000))
    for i, service in enumerate(depth_ms, start=1):
        capture = 1000 * i  # depth waits 5 ms, runs `service`, render waits 1 and runs 2, the sink 3 later
        start = capture + 5
        stages = [("depth", start, start + service), ("render", start + service + 1, start + service + 3)]
        recorder.record(_stamped(i, capture, stages, start + service + 6, depth_index=i - 1))
    summary = recorder.summary()
    assert summary["frames"] == 5 and summary["warmup_frames"] == 1
    depth = summary["stages"]["depth"]["service_ms"]
    # linear interpolation between the order statistics (NumPy's default, as most tools): rank q * (n - 1)
    assert depth == pytest.approx({"p50": 3.0, "p95": 4 + 0.8 * 96, "p99": 4 + 0.96 * 96, "max": 100.0,
                                   "mean": 22.0, "count": 5})
    assert summary["stages"]["depth"]["queue_wait_ms"] == pytest.approx(
        {"p50": 5.0, "p95": 5.0, "p99": 5.0, "max": 5.0, "mean": 5.0, "count": 5})
    assert summary["stages"]["render"]["queue_wait_ms"]["max"] == pytest.approx(1.0)
    assert summary["stages"]["render"]["service_ms"]["p50"] == pytest.approx(2.0)
    end_to_end = [5 + s + 6 for s in depth_ms]  # capture -> sink
    assert summary["end_to_end_ms"]["p50"] == pytest.approx(sorted(end_to_end)[2])
    assert summary["end_to_end_ms"]["max"] == pytest.approx(max(end_to_end))
    assert summary["samples_ms"]["end_to_end"] == pytest.approx(end_to_end)  # in frame order
    assert summary["samples_ms"]["depth"] == pytest.approx(depth_ms)
    # 5 frames reached the sink between the first's and the last's arrival: 4 intervals
    sinks = [1000 * i + 5 + s + 6 for i, s in enumerate(depth_ms, start=1)]
    assert summary["throughput_fps"] == pytest.approx(4 / ((sinks[-1] - sinks[0]) / 1000))
    assert summary["depth_age_frames"]["max"] == 1 and summary["depth_age_frames"]["count"] == 5
    assert recorder.dropped_while_measuring == 0


def test_one_frame_has_percentiles_but_no_rate():
    recorder = LatencyRecorder(["depth"])
    recorder.record(_stamped(0, 0, [("depth", 1, 3)], 4))
    summary = recorder.summary()
    assert summary["stages"]["depth"]["service_ms"]["p99"] == pytest.approx(2.0)
    assert math.isnan(summary["throughput_fps"])  # null in the JSON


def test_a_benchmark_whose_input_fails_part_way_reports_the_runs_that_finished(monkeypatch, tmp_path, capsys):
    """A camera unplugged during the second run: the error went past the report, the first run's figures lost."""
    from stream.errors import UserError

    _fake_runs(monkeypatch, measured=20)

    def unplugged(*args, **kwargs):
        raise UserError("camera 0 stopped delivering frames after 31 (unplugged, or taken by another program)")

    monkeypatch.setattr(bench, "run_sequential", unplugged)
    out = tmp_path / "bench.json"
    assert bench.run_bench_command(_bench_args("--frames", "20", "--json", str(out))) == 2
    document = json.loads(out.read_text())
    assert document["interrupted"] is True and [sorted(r["runs"]) for r in document["reports"]] == [["pipelined"]]
    assert "error: camera 0 stopped delivering frames after 31" in capsys.readouterr().err


def test_a_file_that_decodes_slower_than_its_rate_is_not_counted_ever_later():
    # a 20 fps file decoded at 10 fps: measured from the first frame's beat, each frame came 50 ms later than
    # the one before (103 -> 664 ms over 12 frames), a latency that grew without end
    from stream.sources import PacedSource, Source

    class SlowFile(Source):
        fps, width, height, frame_count = 20.0, 8, 8, 8

        def frames(self):
            for index in range(8):
                time.sleep(0.1)  # the decoder's pace
                yield Frame(index=index, capture_ns=0, image=None,  # type: ignore[arg-type]
                            pts_seconds=index / 20)

    late = []
    for frame in PacedSource(SlowFile()).frames():
        late.append(time.perf_counter_ns() - frame.capture_ns)
    # a frame is due at most a frame period before it is delivered (50 ms), and the first when it is decoded
    assert late[0] < 20_000_000 and max(late) <= 50_000_000 + 20_000_000, late


# --- a run cut short keeps what it measured ---------------------------------------------------------

class _SignalAfter(LatencyRecorder):
    """Sends this process SIGINT (Ctrl-C) once `after` frames reached the sink, from the sink's own thread."""

    after = 8

    def record(self, frame) -> None:
        super().record(frame)
        if self.seen == self.after:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("mode", ["pipelined", "sequential"])
def test_ctrl_c_during_the_only_run_still_reports_what_it_measured(shared_models, monkeypatch, tmp_path, capsys,
                                                                    mode):
    # a long camera benchmark stopped with Ctrl-C printed "interrupted before any run finished; no report written"
    monkeypatch.setattr(bench, "LatencyRecorder", _SignalAfter)
    out = tmp_path / "bench.json"
    code = bench.run_bench_command(_bench_args("synthetic:portrait?size=64x48&frames=400", "--frames", "300",
                                               "--warmup", "2", "--modes", mode, "--json", str(out)))
    assert code == 130
    run = json.loads(out.read_text())["reports"][0]["runs"][mode]
    assert run["cut_short"] is True and 6 <= run["frames"] < 300
    assert len(run["samples_ms"]["end_to_end"]) == run["frames"]
    captured = capsys.readouterr()
    assert f"| {mode} (cut short) |" in captured.out
    assert "what the one cut short had measured" in captured.err and "warning: fewer" not in captured.err


def test_a_model_that_fails_part_way_keeps_the_frames_measured_before(shared_models, monkeypatch, tmp_path, capsys):
    from models.download import ModelError
    from models.runtime import DepthEstimator

    original, calls = DepthEstimator.to_disparity, []

    def nan_after_twelve(self, depth):
        calls.append(1)
        if len(calls) > 12:
            raise ModelError("the model gave NaN for a frame; check the model file")
        return original(self, depth)

    monkeypatch.setattr(DepthEstimator, "to_disparity", nan_after_twelve)
    out = tmp_path / "bench.json"
    code = bench.run_bench_command(_bench_args("synthetic:portrait?size=64x48", "--frames", "40", "--warmup", "2",
                                               "--modes", "pipelined,sequential", "--json", str(out)))
    assert code == 2
    document = json.loads(out.read_text())
    runs = document["reports"][0]["runs"]
    assert document["interrupted"] is True and list(runs) == ["pipelined"]
    # the priming frame (1) and the two warm-up frames (2) come before the nine measured
    assert runs["pipelined"]["cut_short"] is True and runs["pipelined"]["frames"] == 12 - 1 - 2
    assert "error: the model gave NaN" in capsys.readouterr().err


def test_more_frames_than_the_synthetic_input_makes_are_refused_before_any_run(monkeypatch):
    # found only after the model loaded, as "frames=100000000000000000010 in 'synthetic:portrait?...' is out of range"
    _no_runs(monkeypatch)
    with pytest.raises(UserError, match=r"^--frames 100000000000000000000 with --warmup 10: the synthetic input "
                                        r"makes at most 10,000,000 frames"):
        bench.run_bench_command(_bench_args("--frames", "100000000000000000000"))


def test_the_json_says_the_frame_and_model_sizes_and_the_start_up_apart(shared_models, tmp_path, capsys):
    # a report of a video file said neither its frame size nor the model's, and the first run's start-up (a minute
    # of kernel compiling on a new machine) was nowhere
    out = tmp_path / "bench.json"
    assert main(["bench", "synthetic:portrait?size=96x64", "--frames", "4", "--warmup", "1",
                 "--modes", "pipelined,sequential", "--json", str(out)]) == 0
    for run in json.loads(out.read_text())["reports"][0]["runs"].values():
        assert run["frame_size"] == [96, 64] and run["model_input_size"] == [320, 192]
        assert run["startup_ms"]["build"] > 0 and run["startup_ms"]["first_frame"] > 0
    printed = capsys.readouterr().out
    assert "96x64 frames; tcmonodepth at 320x192 on" in printed and "start-up, left out of the figures" in printed


def _written_report(tmp_path, runs=2) -> dict:
    names = ["pipelined", "sequential"][:runs]
    return {"schema_version": 2, "machine": {"cpu": "a CPU", "cores": 2, "gpu": None, "os": "Linux", "python": "3"},
            "versions": {"depthcam": "0.1.0"},
            "reports": [{"config": "default", "settings": {}, "runs": {n: bench.json_ready(_fake_run(12))
                                                                         for n in names}}]}


def test_a_report_written_before_is_printed_and_plotted_again_without_a_run(monkeypatch, tmp_path, capsys):
    _no_runs(monkeypatch)
    document = _written_report(tmp_path)
    older = json.loads(json.dumps(document))  # schema 1: no cpu_cores, no sink row, NaN written bare
    older["schema_version"] = 1
    for run in older["reports"][0]["runs"].values():
        del run["cpu_cores"], run["stages"]["sink"], run["samples_ms"]["sink"]
        run["throughput_fps"] = float("nan")
    for number, report in enumerate([document, older]):
        source = tmp_path / f"r{number}.json"
        source.write_text(json.dumps(report))
        assert main(["bench", "--from", str(source), "--plot", str(tmp_path / f"r{number}.png")]) == 0
        assert (tmp_path / f"r{number}.png").stat().st_size > 10_000
        assert "| pipelined | 12 |" in capsys.readouterr().out


@pytest.mark.parametrize("damage, message", [
    (lambda text: text[: len(text) // 2], r"not JSON \(line \d+, column \d+: .*\), cut short or edited by hand"),
    (lambda text: "[]", r"not a depthcam bench report"),
    (lambda text: text.replace('"schema_version": 2', '"schema_version": 9'), r"written by a newer depthcam"),
    (lambda text: text.replace('"refine": [', '"refine_": ['),
     r"reports\[0\]: runs.pipelined: samples_ms.refine is missing"),
    (lambda text: text.replace('"frames": 12', '"frames": "12"'),
     r"reports\[0\]: runs.pipelined: frames or dropped_frames is missing"),
    # these passed the checks and then failed in the table: KeyError, AttributeError, IndexError (exit 1)
    (lambda text: text.replace('"model": "tcmonodepth"', '"modell": "tcmonodepth"'),
     r"reports\[0\]: runs.pipelined: model is missing or not a name"),
    (lambda text: text.replace('"settings": {}', '"settings": {"inference": null}'),
     r"reports\[0\]: settings, or its inference, refine or render section, is not an object"),
    (lambda text: text.replace('"model": "tcmonodepth"', '"model": "tcmonodepth", "frame_size": [640]'),
     r"reports\[0\]: runs.pipelined: frame_size is not \[width, height\]"),
    (lambda text: text.replace('"cores": 2', '"cores": 2, "cores_usable": "2"'),
     r"machine.cores or machine.cores_usable is not a number"),
])
def test_a_corrupt_or_hand_edited_report_is_refused_in_one_line(monkeypatch, tmp_path, capsys, damage, message):
    _no_runs(monkeypatch)
    source = tmp_path / "r.json"
    source.write_text(damage(json.dumps(_written_report(tmp_path, runs=1))))
    assert main(["bench", "--from", str(source), "--plot", str(tmp_path / "r.png")]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"^depthcam: error: --from {re.escape(str(source))}: {message}", err) and len(
        err.splitlines()) == 1 and not (tmp_path / "r.png").exists()


def test_a_config_given_twice_to_bench_is_refused_not_half_read(capsys):
    """`bench --config a --config b` measured b alone without a word; to run several, --compare."""
    with pytest.raises(SystemExit) as stopped:
        _bench_args("--config", "default", "--config", "live-cpu")
    assert stopped.value.code == 2 and "--config is given twice (default, live-cpu)" in capsys.readouterr().err


def test_a_report_to_print_takes_no_input_to_run(monkeypatch, tmp_path):
    _no_runs(monkeypatch)
    with pytest.raises(UserError, match=r"^--from prints a report written before and runs nothing; leave out INPUT"):
        bench.run_bench_command(_bench_args("clip.mp4", "--from", str(tmp_path / "r.json")))


@pytest.mark.parametrize("options, named", [
    (["--frames", "5"], "--frames"), (["--modes", "live"], "--modes"), (["--warmup", "0"], "--warmup"),
    (["--model", "fcrn"], "--model"), (["--device", "cpu"], "--device"), (["--model-size", "320x240"], "--model-size"),
    (["--deinterlace", "off"], "--deinterlace"), (["--frames", "5", "--modes", "live"], "--frames, --modes"),
])
def test_a_report_to_print_refuses_every_run_option(monkeypatch, tmp_path, capsys, options, named):
    """`bench --from r.json --frames 5` printed the old report as if the run options had been taken: only INPUT,
    --json, --config and --compare were refused. Every option of a run is, in the same one line."""
    _no_runs(monkeypatch)
    source = tmp_path / "r.json"
    source.write_text(json.dumps(_written_report(tmp_path, runs=1)))
    assert main(["bench", "--from", str(source), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"depthcam: error: --from prints a report written before and runs nothing; leave out "
                          f"{named} (or leave out --from") and len(err.splitlines()) == 1
    assert main(["bench", "--from", str(source), "--plot", str(tmp_path / "r.png")]) == 0  # what --from takes
