"""Session 24: one cgroup reader for the bench's CPU quota and a photo's memory room; the paced synthetic input's
own lateness told apart from the pipeline's latency."""
from __future__ import annotations

import itertools

import pytest

from stream import bench, cgroup, images
from test_bench20 import _cgroup_tree

GiB = 1 << 30
MiB = 1 << 20


MEMORY_CASES = [
    # v2, the limit on the process's own cgroup
    ("0::/docker/abc\n", {"docker/abc/memory.max": f"{4 * GiB}\n", "docker/abc/memory.current": f"{GiB}\n"},
     3 * GiB),
    # v1, its own cgroup
    ("9:pids:/docker/abc\n8:memory:/docker/abc\n",
     {"memory/docker/abc/memory.limit_in_bytes": f"{4 * GiB}\n", "memory/docker/abc/memory.usage_in_bytes": f"{GiB}\n",
      "memory/memory.limit_in_bytes": f"{(1 << 63) - 4096}\n", "memory/memory.usage_in_bytes": f"{9 * GiB}\n"},
     3 * GiB),
    # v2, systemd's MemoryMax= on the slice, the service in a child of it without a limit of its own
    ("0::/app.slice/run.service\n", {"app.slice/memory.max": f"{2 * GiB}\n", "app.slice/memory.current": f"{GiB}\n",
                                     "app.slice/run.service/memory.max": "max\n",
                                     "app.slice/run.service/memory.current": f"{GiB // 2}\n"}, GiB),
    # a container on a cgroup v1 host: its own cgroup at the mount's root, the host's path of it nowhere
    ("8:memory:/docker/abc\n", {"memory/memory.limit_in_bytes": f"{2 * GiB}\n",
                                "memory/memory.usage_in_bytes": f"{GiB // 2}\n"}, GiB + GiB // 2),
    # the same on cgroup v2 without a cgroup namespace
    ("0::/system.slice/docker-abc.scope\n", {"memory.max": f"{2 * GiB}\n", "memory.current": f"{GiB}\n"}, GiB),
    # no limit anywhere: "max", and v1's huge number
    ("0::/user.slice\n", {"user.slice/memory.max": "max\n", "user.slice/memory.current": "1000\n"}, None),
    ("8:memory:/\n", {"memory/memory.limit_in_bytes": f"{(1 << 63) - 4096}\n",
                      "memory/memory.usage_in_bytes": "1000\n"}, None),
    # more used than the limit: no room, not a negative one
    ("0::/a\n", {"a/memory.max": "1000\n", "a/memory.current": "5000\n"}, 0),
    # a slice near its limit with video files' cache, which the kernel drops when memory is asked for (v2, v1)
    ("0::/system.slice/app.service\n", {"system.slice/memory.max": f"{8 * GiB}\n",
                                        "system.slice/memory.current": f"{8 * GiB - 100 * MiB}\n",
                                        "system.slice/memory.stat": f"anon {GiB}\ninactive_file {6 * GiB}\n"
                                                                    f"active_file {GiB}\n",
                                        "system.slice/app.service/memory.max": "max\n"}, 6 * GiB + 100 * MiB),
    ("8:memory:/docker/abc\n", {"memory/docker/abc/memory.limit_in_bytes": f"{4 * GiB}\n",
                                "memory/docker/abc/memory.usage_in_bytes": f"{4 * GiB}\n",
                                "memory/docker/abc/memory.stat": f"inactive_file {GiB}\ntotal_inactive_file "
                                                                 f"{3 * GiB}\n"}, 3 * GiB),
]


@pytest.mark.parametrize("membership, files, room", MEMORY_CASES)
def test_the_memory_room_is_read_over_v1_v2_and_the_cgroups_above(tmp_path, membership, files, room):
    """A photo's memory check read its own cgroup's limit only: a slice's MemoryMax= above a service, or a
    container seeing its own cgroup at the mount's root (the host's path of it absent), read as no limit, so a
    photo too big for the container was decoded and the out-of-memory killer ended the run without a word."""
    root, own = _cgroup_tree(tmp_path, membership, files)
    assert cgroup.memory_room(root, own) == room
    assert images.cgroup_room(root, own) == room  # the name images' callers know


def test_the_bench_reads_the_cpu_quota_with_the_one_reader():
    """The bench's quota is stream.cgroup's (its cases: tests/test_bench20.py)."""
    assert bench.cgroup_cpu_quota is cgroup.cpu_quota


def test_a_tree_with_both_limits_gives_each_its_own(tmp_path):
    """The two readers walk the same folders: one tree, a CPU quota and a memory limit on different levels."""
    root, own = _cgroup_tree(tmp_path, "0::/slice/svc\n", {
        "slice/cpu.max": "50000 100000\n", "slice/memory.max": "max\n", "slice/memory.current": "1\n",
        "slice/svc/memory.max": "3000\n", "slice/svc/memory.current": "1000\n"})
    assert cgroup.cpu_quota(root, own) == 0.5
    assert cgroup.memory_room(root, own) == 2000
    assert [version for version, _ in cgroup.folders("memory", root, own)] == [2, 2, 2]


def test_no_cgroups_readable_is_no_limit(tmp_path):
    """Not Linux, or /proc not mounted: no limit, no error."""
    assert cgroup.folders("cpu", tmp_path, tmp_path / "no such file") == []
    assert cgroup.cpu_quota(tmp_path, tmp_path / "no such file") is None
    assert cgroup.memory_room(tmp_path, tmp_path / "no such file") is None
    (tmp_path / "self").write_text("0::/gone\n")  # a membership whose mount is absent
    assert cgroup.memory_room(tmp_path / "absent", tmp_path / "self") is None


def test_this_machine_s_cgroups_read_without_error():
    quota, room = cgroup.cpu_quota(), cgroup.memory_room()
    assert quota is None or quota > 0
    assert room is None or room >= 0


# --- the paced synthetic input's own lateness -------------------------------------------------------------------

MS = 1_000_000


class _Clock:
    """A fake pipeline clock: the paced source waits on it, a drawing moves it on (no wall-clock time involved)."""

    def __init__(self) -> None:
        self.t = 1_000 * MS

    def now(self) -> int:
        return self.t

    def wait_until(self, due: int) -> None:
        self.t = max(self.t, due)


class _SlowScene:
    """The synthetic scene, its drawing taking `draw_ms` of the fake clock."""

    def __init__(self, scene, clock: _Clock, draw_ms: float) -> None:
        self.scene, self.clock, self.draw_ns = scene, clock, round(draw_ms * MS)

    def render(self, t: int):
        self.clock.t += self.draw_ns
        return self.scene.render(t)


def _paced_run(monkeypatch, draw_ms: float, frames: int = 12, warmup: int = 2, pipeline_ms: float = 10.0):
    """A paced 10 fps synthetic input through the bench's delivery counting, each frame reaching the sink
    `pipeline_ms` after it was handed on: (frames delivered, the recorder)."""
    from stream import sources
    from stream.metrics import LatencyRecorder

    clock = _Clock()
    for module in (sources, bench):
        monkeypatch.setattr(module, "now_ns", clock.now)
    monkeypatch.setattr(sources, "_wait_until", clock.wait_until)
    source = sources.SyntheticSource("synthetic:portrait?size=32x32&fps=10&frames=100000&realtime=1")
    source.scene = _SlowScene(source.scene, clock, draw_ms)
    recorder = LatencyRecorder(bench.STAGES, warmup=warmup)
    delivered = []
    for frame in bench._counting_deliveries(source, recorder).frames():
        frame.stamps["sink"] = clock.t + round(pipeline_ms * MS)  # handed on now, through the stages in pipeline_ms
        recorder.record(frame)
        delivered.append(frame)
        if len(delivered) == frames + warmup:
            break
    return delivered, recorder


def test_a_synthetic_frame_drawn_on_time_counts_from_its_exposure(monkeypatch):
    """The input draws ahead of each exposure (30 ms of a 100 ms period): nothing changes, no lateness."""
    delivered, recorder = _paced_run(monkeypatch, draw_ms=30)
    start = 1_000 * MS  # the first exposure: when the input began (its first drawing, a warm-up frame, is late)
    assert [frame.capture_ns - start for frame in delivered[1:]] == [index * 100 * MS for index in range(1, 14)]
    summary = recorder.summary()
    assert summary["source_late_ms"]["max"] == 0 and summary["source_late_ms"]["count"] == 12
    assert summary["end_to_end_ms"]["max"] == pytest.approx(10.0)  # handed on at the exposure: the pipeline's 10 ms
    assert recorder.dropped_at_capture(input_ended=False) == 0


def test_a_synthetic_input_drawing_late_is_not_counted_as_capture_latency(monkeypatch):
    """On a busy machine the synthetic input drew its frames past their exposure (150 ms a frame at 10 fps): the
    lateness, up to 250 ms here, was counted as capture → sink latency and as the depth stage's queue wait, so the
    camera it stands in for read slow where the machine was. Each frame now counts from when it was drawn; the
    lateness is reported apart (source_late_ms) and the frames the input skipped as dropped at capture."""
    delivered, recorder = _paced_run(monkeypatch, draw_ms=150)
    summary = recorder.summary()
    assert summary["end_to_end_ms"]["p50"] == pytest.approx(10.0)  # the pipeline's own 10 ms: was 160-260 ms
    assert summary["end_to_end_ms"]["max"] == pytest.approx(10.0)
    late = summary["source_late_ms"]
    assert 150 <= late["p50"] <= 250 and late["count"] == summary["frames"] == 12
    # drawing at 150 ms a frame, it keeps two exposures of three and skips the third, as a camera's driver would
    indices = [frame.index for frame in delivered]
    assert indices[:6] == [0, 1, 2, 4, 5, 7]
    skipped = recorder.dropped_at_capture(input_ended=False)
    assert skipped == recorder.dropped_after_warmup(input_ended=False) > 0  # all its drops were its own
    assert skipped == sum(1 for low, high in zip(indices[2:], indices[3:]) for _ in range(low + 1, high))


def test_a_live_run_counts_a_late_synthetic_frame_from_its_drawing_too(monkeypatch):
    """Outside the bench (`depthcam run synthetic:portrait?realtime=1`), frames drawn past their exposure were timed
    from the exposure, the drawing's overrun counted as the pipeline's latency: the paced input times them itself."""
    from stream import sources

    clock = _Clock()
    monkeypatch.setattr(sources, "now_ns", clock.now)
    monkeypatch.setattr(sources, "_wait_until", clock.wait_until)
    source = sources.SyntheticSource("synthetic:portrait?size=32x32&fps=10&frames=100000&realtime=1")
    source.scene = _SlowScene(source.scene, clock, draw_ms=150)
    delivered = list(itertools.islice(source.frames(), 6))
    drawn = [frame.capture_ns for frame in delivered]
    assert drawn == sorted(drawn) and all(frame.extra["source_late_ns"] > 0 for frame in delivered)
    for frame in delivered:  # each counts from when its drawing ended: its exposure plus its overrun
        assert frame.capture_ns == 1_000 * MS + frame.index * 100 * MS + frame.extra["source_late_ns"]
    assert drawn[1] - drawn[0] == 150 * MS  # drawing after drawing: no exposure waited for


def test_drops_at_capture_are_told_apart_from_the_live_queue_s():
    """Of the frames after the warm-up that never reached the sink, those the input skipped itself (a gap in what
    it delivered) and those a queue dropped later (delivered, not measured)."""
    from stream.frame import Frame
    from stream.metrics import LatencyRecorder

    recorder = LatencyRecorder(bench.STAGES, warmup=2)
    delivered = [0, 1, 2, 3, 6, 7, 8, 9, 11, 12]  # 4, 5 and 10 skipped by the input
    for index in delivered:
        recorder.delivered(index)
        if index == 8:  # dropped by the live queue
            continue
        frame = Frame(index=index, capture_ns=index * 100, image=None)  # type: ignore[arg-type]
        frame.stamps["sink"] = index * 100 + 10
        recorder.record(frame)
    assert recorder.dropped_after_warmup(input_ended=True) == 4  # 4, 5, 8, 10 after the warm-up's 0 and 1
    assert recorder.dropped_at_capture(input_ended=True) == 3
    assert recorder.summary()["source_late_ms"] is None  # not a paced synthetic input: nothing to tell


def _run(frames: int = 150, dropped: int = 40, at_capture: int | None = 30, late: dict | None = None) -> dict:
    run = {"frames": frames, "dropped_frames": dropped, "dropped_after_warmup": dropped}
    if at_capture is not None:
        run.update(dropped_at_capture=at_capture, source_late_ms=late)
    return run


def test_the_table_says_where_the_synthetic_input_fell_behind():
    late = {"p50": 45.3, "p95": 88.4, "p99": 100.0, "max": 148.4, "mean": 50.0, "count": 150}
    line = bench.source_line({"config": "live-cpu", "runs": {"live": _run(late=late)}})
    assert line == ("the synthetic input, drawn on the cores the pipeline runs on, fell behind its frame rate: live "
                    "skipped 30 of its 40 dropped frames itself and drew frames past their exposure (p50 45.3, "
                    "p95 88.4, max 148.4 ms, left out of e2e); the machine was busy, not the camera it stands in for")
    on_time = {**late, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.2}
    assert bench.source_line({"config": "c", "runs": {"live": _run(at_capture=0, late=on_time)}}) is None
    # a file's live run, the sequential run and an older report (no such keys): nothing said
    runs = {"live": _run(at_capture=0), "sequential": _run(dropped=0, at_capture=0), "old": _run(at_capture=None)}
    assert bench.source_line({"config": "c", "runs": runs}) is None


def test_a_live_run_reports_the_synthetic_input_s_lateness_and_its_own_drops(shared_models):
    """The real pipeline, paced: the JSON's new figures are there beside the old ones, and they add up."""
    from stream.config import load_config

    config = load_config("live-cpu", {"render.blur": 0, "output.progress": False})
    run = bench.run_pipelined(config, "synthetic:portrait?size=160x120&fps=20&frames=400&realtime=1", frames=20,
                              warmup=3)
    late = run["source_late_ms"]
    assert late is not None and late["count"] == run["frames"] == 20 and late["p50"] >= 0
    assert 0 <= run["dropped_at_capture"] <= run["dropped_after_warmup"]
    for key in ("dropped_frames", "dropped_after_warmup", "end_to_end_ms", "stages"):  # the old keys kept
        assert key in run
    file_mode = bench.run_pipelined(config, "synthetic:portrait?size=160x120&frames=12", frames=8, warmup=2)
    assert file_mode["source_late_ms"] is None and file_mode["dropped_at_capture"] == 0  # not paced: nothing late


def test_the_table_note_says_what_e2e_counts_from():
    """The note under the tables said e2e was capture → sink, nothing more: a pipelined run's 1.2 s (its frames
    queued behind a saturated pipeline, 20 fps on two busy cores) read as its latency."""
    assert "read their input ahead, so theirs includes queueing: latency is the live run's" in bench.TABLE_NOTE
    assert "for a paced synthetic frame drawn past its exposure, from the drawing's end" in bench.TABLE_NOTE
    assert "those a paced synthetic input skipped" in bench.TABLE_NOTE


def test_the_report_lists_the_user_s_environment_not_what_depthcam_set_itself(monkeypatch):
    """kernels sets OMP_WAIT_POLICY=PASSIVE where the user set neither OpenMP variable; a report listed it among the
    user's settings. A value the user set is listed, also PASSIVE (depthcam set nothing then)."""
    import kernels
    from stream.bench import user_environment

    monkeypatch.setitem(kernels.DEFAULTED_ENVIRONMENT, "OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert user_environment().get("OMP_WAIT_POLICY") is None
    assert user_environment()["OMP_NUM_THREADS"] == "2"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # changed after depthcam's default: the user's
    assert user_environment()["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.delitem(kernels.DEFAULTED_ENVIRONMENT, "OMP_WAIT_POLICY")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert user_environment()["OMP_WAIT_POLICY"] == "PASSIVE"


def test_kernels_records_the_openmp_default_it_sets(monkeypatch):
    import kernels

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setattr(kernels, "DEFAULTED_ENVIRONMENT", {})
    kernels._passive_openmp_waits()
    assert kernels.DEFAULTED_ENVIRONMENT == {"OMP_WAIT_POLICY": "PASSIVE"}
    monkeypatch.setenv("GOMP_SPINCOUNT", "0")
    monkeypatch.setattr(kernels, "DEFAULTED_ENVIRONMENT", {})
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    kernels._passive_openmp_waits()
    assert kernels.DEFAULTED_ENVIRONMENT == {}
