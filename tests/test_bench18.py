"""`depthcam bench` as an engineer evaluating latency meets it: a synthetic scene of their own size, two saved
reports compared."""
import json

import pytest

from stream import bench
from stream.errors import UserError
from stream.sources import open_source
from stream.cli import main
from test_bench import _bench_args, _fake_run, _no_runs, _written_report


# --- 1. a synthetic scene given without frames= is as long as the benchmark needs ----------------------------------

def test_a_given_synthetic_scene_is_made_as_long_as_frames_and_warmup():
    """`bench synthetic:portrait?size=1280x720` (an input size to compare) measured 290 of the 300 frames asked for,
    with a warning, even with every option at its default: the scene's own 300 frames held the 10 warm-up ones."""
    source = open_source(bench._input_spec("synthetic:portrait?size=64x48", 310, live=False))
    try:
        assert source.frame_count == 310
    finally:
        source.close()


def test_a_run_of_a_given_synthetic_scene_measures_the_frames_asked_for(monkeypatch):
    seen = []

    def sequential(config, spec, frames, warmup):
        seen.append(spec)
        source = open_source(spec)  # as the real run opens it: as many frames as the scene has, at most
        return _fake_run(min(frames, source.frame_count - warmup))

    monkeypatch.setattr(bench, "run_sequential", sequential)
    report = bench.bench_one(None, _bench_args("synthetic:portrait?size=64x48", "--frames", "300"), ["sequential"],
                             bench.load_config("default"))
    assert report["runs"]["sequential"]["frames"] == 300
    assert seen == ["synthetic:portrait?size=64x48&frames=310"]


def test_a_given_synthetic_scene_is_checked_at_the_length_it_will_be_made(monkeypatch):
    """--warmup 300 was refused for a scene "of 300 frames, all within the 300 warm-up frames" it never had."""
    monkeypatch.setattr(bench, "check_runnable", lambda configs: None)
    bench.preflight(_bench_args("synthetic:portrait?size=64x48", "--warmup", "300", "--frames", "2"))
    with pytest.raises(UserError, match="has 5 frames, all within the 10 warm-up"):  # a length given stays
        bench.preflight(_bench_args("synthetic:portrait?size=64x48&frames=5"))


def test_too_many_frames_of_a_given_synthetic_scene_are_refused_up_front(monkeypatch):
    _no_runs(monkeypatch)
    with pytest.raises(UserError, match="--frames 10000000 with --warmup 10: the synthetic input makes at most"):
        bench.run_bench_command(_bench_args("synthetic:portrait?size=64x48", "--frames", "10000000"))


# --- 2. two saved reports compared -----------------------------------------------------------------------------------

def _two_reports(tmp_path) -> tuple[str, str]:
    names = []
    for label, created in (("before", "2026-11-28T10:00:00+0000"), ("after", "2026-11-29T10:00:00+0000")):
        document = {**_written_report(tmp_path), "input": f"{label}.mp4", "created": created}
        path = tmp_path / f"{label}.json"
        path.write_text(json.dumps(document))
        names.append(str(path))
    return names[0], names[1]


@pytest.mark.parametrize("twice", [False, True])
def test_two_saved_reports_are_printed_one_after_the_other(monkeypatch, tmp_path, capsys, twice):
    """`--from before.json after.json` refused after.json as an input to run, and `--from before.json --from
    after.json` printed after.json alone: two runs could not be compared without the first being lost."""
    _no_runs(monkeypatch)
    before, after = _two_reports(tmp_path)
    argv = ["--from", before, "--from", after] if twice else ["--from", before, after]
    assert main(["bench", *argv]) == 0
    printed = capsys.readouterr().out
    assert printed.index(f"# {before}") < printed.index("input: before.mp4") < printed.index(f"# {after}") \
        < printed.index("input: after.mp4")
    assert printed.count("| pipelined | 12 |") == 2


def test_two_saved_reports_are_plotted_together_each_run_named_after_its_file(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    _no_runs(monkeypatch)
    before, after = _two_reports(tmp_path)
    drawn = []
    savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: (drawn.append(self),
                                                                         savefig(self, *args, **kwargs)))
    assert main(["bench", "--from", before, after, "--plot", str(tmp_path / "both.png")]) == 0
    timeline = drawn[0].axes[0]
    labels = [line.get_label().split(" (")[0] for line in timeline.get_lines()]
    assert labels == [f"{before}: default/pipelined", f"{before}: default/sequential",
                      f"{after}: default/pipelined", f"{after}: default/sequential"]
    assert len({line.get_linestyle() for line in timeline.get_lines()}) == 2  # a dash per report
    title = drawn[0].get_suptitle()
    assert f"{before}: before.mp4, 2026-11-28 10:00:00+0000" in title and f"{after}: after.mp4" in title
