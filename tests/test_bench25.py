"""The bench's "others" (the CPU other programs used while measuring) is counted on the cores the benchmark may run
on, and its busy-machine warning measured against them.

`taskset -c 0 depthcam bench ...` beside a busy loop on core 1 said "kept cores busy while measuring: default/live
1.1 of 1" and a cell "0.8 (1.1)": more than the one usable core, and wrong, the loop having run where depthcam could
not (the figures did not move). /proc/stat's first line (every core) was read. A made-up /proc/stat and affinity
here; no timing.
"""
import os
from types import SimpleNamespace

import pytest

from stream import bench, metrics

GIGA = 1_000_000_000
HZ = os.sysconf("SC_CLK_TCK")


def _proc_stat(busy_s: list[float], per_cpu: bool = True) -> str:
    """A /proc/stat whose core N was busy busy_s[N] seconds since boot (as user time), idle 500 s each."""
    ticks = [round(seconds * HZ) for seconds in busy_s]
    lines = [f"cpu  {sum(ticks)} 0 0 {500 * HZ * len(ticks)} 0 0 0 0 0 0"]
    if per_cpu:
        lines += [f"cpu{number} {busy} 0 0 {500 * HZ} 0 0 0 0 0 0" for number, busy in enumerate(ticks)]
    return "\n".join(lines + ["intr 123456 1 2 3", "ctxt 99", "btime 1700000000"]) + "\n"


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """Reads a made-up /proc/stat, affinity and clocks: `read(busy_s, wall_s, ours_s)` is one CpuClock reading."""
    stat = tmp_path / "stat"
    clocks = {"wall": 0, "process": 0}
    monkeypatch.setattr(metrics, "_PROC_STAT", str(stat))
    monkeypatch.setattr(metrics, "time", SimpleNamespace(perf_counter_ns=lambda: clocks["wall"],
                                                         process_time_ns=lambda: clocks["process"]))
    state = SimpleNamespace(affinity=None, per_cpu=True)
    monkeypatch.setattr(metrics, "affinity", lambda: state.affinity)

    def read(busy_s: list[float], wall_s: float, ours_s: float) -> metrics.CpuClock:
        stat.write_text(_proc_stat(busy_s, state.per_cpu))
        clocks.update(wall=round(wall_s * GIGA), process=round(ours_s * GIGA))
        return metrics.read_cpu_clock()

    state.read = read
    return state


def _others(machine, start_busy: list[float], end_busy: list[float], wall_s: float, ours_s: float) -> float | None:
    start = machine.read(start_busy, 0.0, 0.0)
    return metrics.cpu_cores(start, machine.read(end_busy, wall_s, ours_s))["others"]


def _live(others: float) -> list[dict]:
    return [{"config": "default", "runs": {"live": {"cpu_cores": {"depthcam": 0.8, "others": others}}}}]


def test_pinned_to_one_core_a_program_busy_on_the_other_is_not_counted(machine):
    """The explorer's case: depthcam pinned to core 0 and busy there all along, a loop busy on core 1. Before:
    others 1.0 of the 1 usable core, and the warning."""
    machine.affinity = frozenset({0})
    others = _others(machine, [100, 200], [110, 210], wall_s=10, ours_s=10)
    assert others == pytest.approx(0.0, abs=1e-9)
    assert metrics.others_counted_on() == 1
    pinned = {"cores": 2, "cores_usable": 1, "others_counted_on": metrics.others_counted_on()}
    assert bench.busy_machine_warning(_live(others), pinned) is None
    assert "others counted on the 1 depthcam may run on" in bench.machine_line({**pinned, "cpu": "Xeon", "gpu": None,
                                                                               "os": "Linux", "python": "3.11"}, {})


def test_pinned_a_program_sharing_its_core_is_counted(machine):
    """Core 0 shared: depthcam 0.3 of it, another program 0.7; core 1 busy too, which is not depthcam's. Before:
    others 1.7 (core 1 counted) and '1.7 of 1'."""
    machine.affinity = frozenset({0})
    others = _others(machine, [100, 200], [110, 210], wall_s=10, ours_s=3)
    assert others == pytest.approx(0.7)
    warning = bench.busy_machine_warning(_live(others), {"cores": 2, "cores_usable": 1, "others_counted_on": 1})
    assert "kept cores busy while measuring: default/live 0.7 of 1;" in warning


def test_others_are_never_more_than_the_cores_counted_leave(machine):
    """Ticks and ns round apart: core 0 read 10.5 s busy in 10 s. Others stop at what depthcam left of it (0.8),
    not 0.85 (before: 1.05 - 0.2 plus core 1's 1.0, 1.85 of a core)."""
    machine.affinity = frozenset({0})
    assert _others(machine, [0, 0], [10.5, 10], wall_s=10, ours_s=2) == pytest.approx(0.8)


@pytest.mark.parametrize("affinity, per_cpu", [
    (frozenset({0, 1}), True),  # not pinned: every core counted, as the first line counts them
    (None, True),  # the OS says no affinity (macOS, Windows): the whole machine, as before
    (frozenset({0}), False),  # no per-core lines: the whole machine, as before
    (frozenset({4, 5}), True)])  # cores the file does not list (lxcfs numbers a container's own): as before
def test_unpinned_or_unknown_the_figures_are_the_whole_machines_as_before(machine, affinity, per_cpu):
    """Guards the figures that were right: these pass on the old code's logic too (no affinity read)."""
    machine.affinity, machine.per_cpu = affinity, per_cpu
    assert _others(machine, [0, 0], [7, 5], wall_s=10, ours_s=8) == pytest.approx(0.4)  # (7 + 5) / 10 - 0.8
    counted = 2 if affinity == frozenset({0, 1}) else os.cpu_count()
    assert metrics.others_counted_on() == counted


def test_an_affinity_changed_while_measuring_counts_nothing(machine):
    """Sums over different cores do not subtract: others unknown, not a made-up figure."""
    machine.affinity = frozenset({0, 1})
    start = machine.read([100, 100], 0.0, 0.0)
    machine.affinity = frozenset({0})
    assert metrics.cpu_cores(start, machine.read([110, 110], 10, 5)) == {"depthcam": 0.5, "others": None}


def test_not_linux_counts_nothing(machine, tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "_PROC_STAT", str(tmp_path / "missing"))
    machine.affinity = frozenset({0})
    assert metrics.read_cpu_clock().machine_busy_ns is None and metrics.others_counted_on() is None


def test_a_quota_is_time_on_the_cores_counted_not_fewer_cores():
    """docker --cpus 1.5 on 8 cores: the others were counted on all 8 and compared with 1.5 ('0.6 of 1.5' warned
    of 0.6 of a core used beside 6.5 free ones)."""
    quota = {"cores": 8, "cores_usable": 1.5, "others_counted_on": 8}
    assert bench.busy_machine_warning(_live(0.6), quota) is None
    assert "default/live 1.2 of 8;" in bench.busy_machine_warning(_live(1.2), quota)


def test_an_older_report_counted_the_whole_machine():
    """A report without `others_counted_on` counted every core of the machine: '3.0 of 8', not '3.0 of 1.5'."""
    older = {"cores": 8, "cores_usable": 1.5}
    assert "default/live 3.0 of 8;" in bench.busy_machine_warning(_live(3.0), older)
    line = bench.machine_line({**older, "cpu": "Xeon", "gpu": None, "os": "Linux", "python": "3.11"}, {})
    assert "counted" not in line


def test_the_machine_says_what_others_is_counted_on(machine, monkeypatch):
    machine.affinity = frozenset({1})
    machine.read([5, 5], 0.0, 0.0)  # writes the made-up /proc/stat
    monkeypatch.setattr(bench, "gpu_name", lambda: None)
    assert bench.machine_info()["others_counted_on"] == 1
