"""`depthcam bench` reports a benchmarker can trust and reproduce: when the measuring began and how long it took, the
command and the files it read (by hash), a photo as the input, tail percentiles from too few frames, the plot's axis."""
import hashlib
import json
import shlex
import time

import cv2
import numpy as np
import pytest

from stream import bench
from stream.cli import main
from stream.sources import ImageSource
from tests.test_bench import _bench_args, _fake_run, _fake_runs, _no_runs, _written_report
from tests.test_bench16 import _drawn

# --- 1. when the measuring began, and for how long ------------------------------------------------------------------


def test_the_report_says_when_the_measuring_began_and_how_long_it_took(monkeypatch, tmp_path, capsys):
    """`created` is when the report was written, after every run: a long benchmark compared by it was dated by its
    end. `started` (after the checks, before the first run) and `duration_s` say when and how long it measured."""
    _fake_runs(monkeypatch, measured=5)
    slow = bench.run_pipelined

    def a_run_of_a_fifth_of_a_second(*args, **kwargs):
        time.sleep(0.2)
        return slow(*args, **kwargs)

    monkeypatch.setattr(bench, "run_pipelined", a_run_of_a_fifth_of_a_second)
    out = tmp_path / "r.json"
    assert bench.run_bench_command(_bench_args("--frames", "5", "--modes", "pipelined", "--json", str(out))) == 0
    document = json.loads(out.read_text())
    assert document["started"] <= document["created"] and document["duration_s"] >= 0.2
    started = document["started"].replace("T", " ")
    assert f"measured {started} for {document['duration_s']:.1f} s" in capsys.readouterr().out


def test_a_report_without_a_start_is_dated_by_when_it_was_written():
    assert bench.input_line({"input": "a.mp4", "created": "2026-01-02T03:04:05+0000"}) == (
        "input: a.mp4; measured 2026-01-02 03:04:05+0000")
    assert bench.input_line({"input": "a.mp4", "created": "2026-01-02T03:04:59+0000",
                             "started": "2026-01-02T03:04:05+0000", "duration_s": 54.04}) == (
        "input: a.mp4; measured 2026-01-02 03:04:05+0000 for 54.0 s")


# --- 2. the command, and the files it read --------------------------------------------------------------------------


def test_the_report_holds_the_command_its_config_files_and_input_and_from_prints_them(monkeypatch, tmp_path, capsys):
    """Nothing said how a report was measured: the options given (--frames, --modes, a YAML file's settings) were
    lost. The report holds the command (the counts and modes even at their defaults, which a version may change),
    each configuration file's hash and text, a preset's hash, the input file's size and hash; --from prints them."""
    _fake_runs(monkeypatch, measured=5)
    config = tmp_path / "my config.yaml"
    config.write_text("render:\n  blur: 9\n")
    clip = tmp_path / "still.png"
    cv2.imwrite(str(clip), np.full((48, 64, 3), 128, np.uint8))
    out = tmp_path / "r.json"
    given = [str(clip), "--frames", "5", "--config", str(config), "--compare", "live-cpu", "--json", str(out)]
    assert bench.run_bench_command(_bench_args(*given)) == 0
    record = json.loads(out.read_text())["reproduce"]
    assert record["command"] == shlex.join(["depthcam", "bench", str(clip), "--frames", "5", "--warmup", "10",
                                            "--config", str(config), "--compare", "live-cpu", "--modes",
                                            "pipelined,sequential"])
    again = _bench_args(*shlex.split(record["command"])[2:])  # the command gives the same options
    assert vars(again) == vars(_bench_args(*given[:-2], "--warmup", "10"))  # --json left out: not overwritten
    mine, preset = record["configs"]
    assert mine == {"name": str(config), "preset": False, "path": str(config.resolve()),
                    "sha256": hashlib.sha256(config.read_bytes()).hexdigest(), "text": "render:\n  blur: 9\n"}
    assert preset["name"] == "live-cpu" and preset["preset"] is True and len(preset["sha256"]) == 64
    assert record["input"] == {"spec": str(clip), "frames": 1, "size": [64, 48], "photo": True,
                               "path": str(clip.resolve()), "bytes": clip.stat().st_size,
                               "sha256": hashlib.sha256(clip.read_bytes()).hexdigest()}
    run_printed = capsys.readouterr().out
    assert bench.run_bench_command(_bench_args("--from", str(out))) == 0
    printed = capsys.readouterr().out
    assert f"reproduce: {record['command']}\n" in printed and f"reproduce: {record['command']}\n" in run_printed
    assert f"config {config}: sha256 {mine['sha256']}" in printed
    assert f"input {clip.resolve()}: {clip.stat().st_size} bytes, a photo of 64x48, sha256 " in printed


def test_the_command_leaves_out_a_network_inputs_password():
    command = bench.command_line(_bench_args("rtsp://me:secret@cam.local/live", "--modes", "live"))
    assert "secret" not in command and "--modes live" in command
    assert command.startswith("depthcam bench 'rtsp://me:***@cam.local/live'")


def test_a_report_older_than_the_record_prints_no_command(monkeypatch, tmp_path, capsys):
    _no_runs(monkeypatch)
    saved = tmp_path / "old.json"
    saved.write_text(json.dumps(_written_report(tmp_path)))
    assert main(["bench", "--from", str(saved)]) == 0
    assert "reproduce:" not in capsys.readouterr().out


# --- 3. a photo: a still stream -------------------------------------------------------------------------------------


def _photo(tmp_path, name="still.png"):
    photo = tmp_path / name
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    return photo


def test_a_photo_is_not_refused_for_its_single_frame(monkeypatch, tmp_path):
    """`bench photo.png` was refused ("the input has 1 frame, all within the 10 warm-up frames") until --warmup 0,
    which then measured one frame: no rate, and percentiles of one sample."""
    monkeypatch.setattr(bench, "check_runnable", lambda configs: None)
    facts = bench.preflight(_bench_args(str(_photo(tmp_path))))[2]
    assert facts == {"frames": 1, "size": [64, 48], "photo": True}


def test_a_photo_is_repeated_as_a_still_stream_of_its_own_copies(tmp_path):
    stream = bench._as_stream(ImageSource(_photo(tmp_path)), 4)
    frames = list(stream.frames())
    assert [frame.index for frame in frames] == [0, 1, 2, 3] and stream.frame_count == 4
    assert all(np.array_equal(frame.image, frames[0].image) for frame in frames)
    frames[0].image[:] = 0  # a stage writing into one frame leaves the next as it was
    assert frames[1].image.any() and frames[0].image is not frames[1].image


def test_a_photo_is_benchmarked_over_the_frames_asked_for(shared_models, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["bench", str(_photo(tmp_path)), "--frames", "4", "--warmup", "2", "--modes",
                 "pipelined,sequential,live", "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    runs = document["reports"][0]["runs"]
    assert {name: (run["frames"], run["warmup_frames"]) for name, run in runs.items()} == {
        "pipelined": (4, 2), "sequential": (4, 2), "live": (4, 2)}
    assert all(run["throughput_fps"] > 0 for run in runs.values()) and document["frames"] == 4
    captured = capsys.readouterr()
    assert "(a photo, repeated as a still stream)" in captured.out and "warning: fewer" not in captured.err


# --- 4. tail percentiles from too few frames ------------------------------------------------------------------------


def test_tail_percentiles_from_too_few_frames_are_named():
    """p99 of 12 frames lies between the two largest: the table printed it as a 1-in-100 figure without a word."""
    report = {"config": "default", "runs": {"pipelined": _fake_run(12), "sequential": _fake_run(40)}}
    line = bench.few_samples_line(report)
    assert line.startswith("too few frames for the tail: p95 needs 20 frames (pipelined 12 measured); p99 needs "
                           "100 frames (pipelined 12, sequential 40 measured)")
    assert line in bench.format_table(report)
    assert bench.few_samples_line({"config": "default", "runs": {"pipelined": _fake_run(100)}}) is None


# --- 5. the plot --------------------------------------------------------------------------------------------------


def test_the_timeline_counts_measured_frames_in_whole_numbers(monkeypatch, tmp_path):
    """The timeline's axis read "frame" with ticks at 2.5, 7.5: no frame has those numbers, and the count starts
    after the warm-up, not at the input's first frame."""
    pytest.importorskip("matplotlib")
    document = {**_written_report(tmp_path), "input": "clip.mp4", "created": "2026-11-29T11:22:12+0000"}
    timeline = _drawn(monkeypatch, document, tmp_path).axes[0]
    assert timeline.get_xlabel() == "measured frame (after the warm-up)"
    assert all(float(tick).is_integer() for tick in timeline.get_xticks())


def test_the_plot_is_dated_by_when_the_measuring_began(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    document = {**_written_report(tmp_path), "input": "clip.mp4", "created": "2026-11-29T12:40:00+0000",
                "started": "2026-11-29T11:22:12+0000"}
    title = _drawn(monkeypatch, document, tmp_path).get_suptitle()
    assert "2026-11-29 11:22:12" in title and "12:40" not in title


def test_the_report_holds_the_model_file_and_the_thread_variables(monkeypatch, tmp_path, capsys):
    """A network file of the user's own was recorded by its path alone, and the variables that set the threads
    (OMP_NUM_THREADS, NUMBA_NUM_THREADS) not at all: two reports of "the same" command could differ by them. The
    model file's hash and those variables are recorded, and --from prints them."""
    _fake_runs(monkeypatch, measured=5)
    model = tmp_path / "mine.onnx"
    model.write_bytes(b"not read: the runs are faked")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    monkeypatch.setenv("UNRELATED_SECRET", "x")
    args = _bench_args("--frames", "5", "--json", str(tmp_path / "r.json"))
    args.model = str(model)
    record = bench.reproduction(args, {})
    assert record["model"] == {"path": str(model.resolve()), "bytes": model.stat().st_size,
                               "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    assert record["environment"]["OMP_NUM_THREADS"] == "2" and record["environment"]["NUMBA_NUM_THREADS"] == "1"
    assert "UNRELATED_SECRET" not in record["environment"]
    lines = bench.reproduce_lines({"reproduce": record})
    assert f"  model {model.resolve()}: {model.stat().st_size} bytes, sha256 {record['model']['sha256']}" in lines
    assert any(line.startswith("  environment: ") and "OMP_NUM_THREADS=2" in line for line in lines)
