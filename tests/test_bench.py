"""`depthcam bench`: the JSON has every documented field, and a delay shows up where it belongs."""
import json
import math
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
    assert document["schema_version"] == 1
    assert {"created", "input", "frames", "warmup", "machine", "versions", "reports"} <= set(document)
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
    assert set(report["runs"]["pipelined"]["queue_high_water"]) == {"capture", "depth", "refine", "render"}
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
    spec = "synthetic:portrait?size=160x120&fps=5&frames=30&realtime=1"  # paced: the pipeline is never saturated
    baseline = run_pipelined(config, spec, frames=24, warmup=4)
    delay_ms = 100.0
    original = RefineStage.process

    def slow(self, batch):
        time.sleep(delay_ms / 1000)
        return original(self, batch)

    monkeypatch.setattr(RefineStage, "process", slow)
    delayed = run_pipelined(config, spec, frames=24, warmup=4)

    def p50(run, stage):
        return run["stages"][stage]["service_ms"]["p50"]

    assert p50(delayed, "refine") - p50(baseline, "refine") == pytest.approx(delay_ms, abs=10)
    e2e_growth = delayed["end_to_end_ms"]["p50"] - baseline["end_to_end_ms"]["p50"]
    assert e2e_growth == pytest.approx(delay_ms, abs=25)
    for stage in ("depth", "render"):  # the other stages' own times do not move
        assert abs(p50(delayed, stage) - p50(baseline, stage)) < 10, stage
