"""The benchmark as its users run it (session 20): the command a report says reproduces it, and the machine it
describes (the cores a container's or a service's CPU quota leaves, the load when the measuring began, the GPU)."""
import json
import subprocess
import sys

import pytest

from stream import bench
from test_bench import _bench_args, _fake_runs


def test_the_reproduce_command_leaves_out_where_the_report_went(monkeypatch, tmp_path):
    """`reproduce.command` held --json and --plot: run again as written, it overwrote the very report it came from."""
    pytest.importorskip("matplotlib")
    _fake_runs(monkeypatch, measured=5)
    out, plot = tmp_path / "r.json", tmp_path / "r.png"
    monkeypatch.setattr("stream.bench_plot.plot_report", lambda document, path: path.write_bytes(b"png"))
    given = ["--frames", "5", "--modes", "pipelined", "--json", str(out), "--plot", str(plot)]
    assert bench.run_bench_command(_bench_args(*given)) == 0
    command = json.loads(out.read_text())["reproduce"]["command"]
    assert command == "depthcam bench --frames 5 --warmup 10 --modes pipelined"


def _cgroup_tree(tmp_path, membership: str, files: dict[str, str]):
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    root.mkdir(exist_ok=True)
    (tmp_path / "self").write_text(membership)
    return str(root), str(tmp_path / "self")


@pytest.mark.parametrize("membership, files, cores", [
    # docker --cpus 1.5 on a cgroup v1 host (this VM's layout): cpu.max does not exist there
    ("4:cpu,cpuacct:/docker/abc\n0::/\n", {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "150000\n",
                                            "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
                                            "cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
                                            "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 1.5),
    # systemd-run -p CPUQuota=50% on cgroup v2: the quota sits on a parent of the process's own cgroup
    ("0::/system.slice/bench.service\n", {"system.slice/cpu.max": "50000 100000\n",
                                          "system.slice/bench.service/cpu.max": "max 100000\n"}, 0.5),
    # inside a container: its own cgroup is the mount's root, the host's path of it is not there
    ("0::/system.slice/docker-abc.scope\n", {"cpu.max": "200000 100000\n"}, 2.0),
    # no quota anywhere (a v1 host's unified mount without controllers)
    ("1:cpu:/\n0::/\n", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n",
                         "unified/cgroup.procs": ""}, None),
    # quotas on a cgroup and its parent: the tightest
    ("0::/a/b\n", {"a/cpu.max": "300000 100000\n", "a/b/cpu.max": "100000 100000\n"}, 1.0)])
def test_the_cpu_quota_is_found_on_cgroup_v1_and_above_a_nested_cgroup(tmp_path, membership, files, cores):
    """Only /sys/fs/cgroup/cpu.max was read: a Docker --cpus limit on a cgroup v1 host, or a service's quota on
    its slice, left `cores_usable` at every core of the machine."""
    root, self_cgroup = _cgroup_tree(tmp_path, membership, files)
    assert bench.cgroup_cpu_quota(root, self_cgroup) == cores


def test_usable_cores_take_the_process_cgroup_quota(monkeypatch):
    monkeypatch.setattr(bench, "cgroup_cpu_quota", lambda: 0.5)
    assert bench.usable_cores() == 0.5


def test_the_machine_is_described_before_the_runs_with_its_load_average(monkeypatch, tmp_path, capsys):
    """A busy machine before the first run was not in the report (machine_info was read after the last run)."""
    order = []
    _fake_runs(monkeypatch, measured=5)
    monkeypatch.setattr(bench.os, "getloadavg", lambda: (3.456, 2.0, 1.0))
    real_info, real_one = bench.machine_info, bench.bench_one
    monkeypatch.setattr(bench, "machine_info", lambda: (order.append("machine"), real_info())[1])
    monkeypatch.setattr(bench, "bench_one", lambda *args, **kwargs: (order.append("run"), real_one(*args, **kwargs))[1])
    out = tmp_path / "r.json"
    assert bench.run_bench_command(_bench_args("--frames", "5", "--modes", "pipelined", "--json", str(out))) == 0
    assert order == ["machine", "run"]
    assert json.loads(out.read_text())["machine"]["load_average"] == [3.46, 2.0, 1.0]
    assert ", load average 3.46 at start, " in capsys.readouterr().out


def test_a_gpu_without_cupy_is_named_by_nvidia_smi(monkeypatch):
    """onnxruntime-gpu without CuPy (or CuPy without NVRTC): the network ran on a GPU the report called 'no GPU'."""
    asked = []

    def smi(command, **kwargs):
        asked.append(command)
        return subprocess.CompletedProcess(command, 0, stdout="NVIDIA H200\n")

    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    monkeypatch.setattr(subprocess, "run", smi)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert bench.gpu_name() == "NVIDIA H200"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert bench.gpu_name() == "NVIDIA H200" and asked[-1][-2:] == ["-i", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # every GPU hidden from CUDA
    assert bench.gpu_name() is None


def test_a_machine_without_nvidia_smi_has_no_gpu(monkeypatch):
    def missing(command, **kwargs):
        raise FileNotFoundError(command[0])

    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(subprocess, "run", missing)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert bench.gpu_name() is None


def test_from_a_report_without_versions_still_names_its_machine(monkeypatch, tmp_path, capsys):
    """A report lacking `versions` (edited by hand) printed no machine line: two machines' tables compared blind."""
    _fake_runs(monkeypatch, measured=5)
    out = tmp_path / "r.json"
    assert bench.run_bench_command(_bench_args("--frames", "5", "--modes", "pipelined", "--json", str(out))) == 0
    document = json.loads(out.read_text())
    del document["versions"]
    document["machine"].update(cpu="Old Xeon", cores=8, gpu="RTX 3090")
    out.write_text(json.dumps(document))
    capsys.readouterr()
    assert bench.print_report([str(out)], None, []) == 0
    assert "machine: Old Xeon, 8 cores" in capsys.readouterr().out


def test_the_plot_title_gives_the_usable_cores_and_the_load():
    """The plot named the machine's cores alone: a container's 1.5 cores read as 8, a busy machine as an idle one."""
    from stream.bench_plot import plot_title

    machine = {"cpu": "Xeon", "cores": 8, "cores_usable": 1.5, "load_average": [3.2, 1.0, 0.5], "gpu": "NVIDIA H200"}
    title = plot_title({"input": "clip.mp4", "started": "2026-11-29T20:00:00+0000", "machine": machine})
    assert title == "clip.mp4, 2026-11-29 20:00:00+0000, on Xeon (8 cores, 1.5 usable, load 3.20 at start, NVIDIA H200)"
    older = {"input": "clip.mp4", "created": "2026-11-29T20:00:00", "machine": {"cpu": "Xeon", "cores": 2, "gpu": None}}
    assert plot_title(older).endswith("on Xeon (2 cores)")


@pytest.mark.parametrize("cpuinfo, board, expected", [
    ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n", None, "Intel(R) Xeon(R) Platinum 8480+"),
    # a Jetson: ARM Linux's cpuinfo has no model name; the device tree names the board
    ("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd42\n", "NVIDIA Jetson Orin Nano Developer Kit\x00",
     "NVIDIA Jetson Orin Nano Developer Kit"),
    # a Graviton: neither; the implementer and part at least tell two ARM servers apart
    ("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd40\n", None, "aarch64 (implementer 0x41, part 0xd40)")])
def test_the_cpu_is_named_on_arm_linux_too(monkeypatch, tmp_path, cpuinfo, board, expected):
    """On ARM Linux the CPU was 'aarch64' (platform.machine()): a Jetson, a Raspberry Pi and a Graviton read alike."""
    monkeypatch.setattr(bench.platform, "machine", lambda: "aarch64")
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    if board is not None:
        (tmp_path / "model").write_text(board)
    assert bench.cpu_name(str(tmp_path / "cpuinfo"), str(tmp_path / "model")) == expected


def test_from_says_a_report_was_stopped_part_way():
    """An interrupted report (`interrupted: true`) printed again by `bench --from` read as a whole one: the runs
    after the stop were simply not there."""
    line = bench.input_line({"input": "a.mp4", "started": "2026-01-02T03:04:05+0000", "duration_s": 9.0,
                             "interrupted": True})
    assert line == ("input: a.mp4; measured 2026-01-02 03:04:05+0000 for 9.0 s; stopped part-way (Ctrl-C or a "
                    "failure): the runs after the stop are missing")
    assert "stopped" not in bench.input_line({"input": "a.mp4", "interrupted": False})


def test_a_raspberry_pi_is_named_from_its_cpuinfo_and_an_x86_model_number_is_not_a_name(monkeypatch, tmp_path):
    monkeypatch.setattr(bench.platform, "machine", lambda: "aarch64")
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n")
    assert bench.cpu_name(str(tmp_path / "cpuinfo"), str(tmp_path / "none")) == "Raspberry Pi 4 Model B Rev 1.4"
    monkeypatch.setattr(bench.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(bench.platform, "processor", lambda: "")
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nmodel\t\t: 143\nmodel name\t: \n")
    assert bench.cpu_name(str(tmp_path / "cpuinfo"), str(tmp_path / "none")) == "x86_64"


def test_batch_rows_of_a_batch_1_model_say_they_ran_single_calls(tmp_path, capsys, shared_models):
    """TCMonoDepth takes batch 1 on a CPU: batch2..batch8 ran single calls, and their rows read as a batch size
    that made no difference, with no word."""
    out = tmp_path / "r.json"
    args = _bench_args("synthetic:portrait?size=64x48", "--frames", "4", "--warmup", "0", "--modes", "batch",
                       "--json", str(out))
    assert bench.run_bench_command(args) == 0
    runs = json.loads(out.read_text())["reports"][0]["runs"]
    assert [runs[f"batch{n}"]["model_batches"] for n in (1, 2, 4, 8)] == [False] * 4
    assert "takes batch 1 on this device: batch2, batch4, batch8 ran their frames as single calls" in \
        capsys.readouterr().err


def test_bench_0_means_camera_0_as_run_reads_it(tmp_path, monkeypatch, capsys):
    """`depthcam bench 0` (OpenCV's way of naming the first webcam) was read as a file named 0: "not found"."""
    monkeypatch.chdir(tmp_path)  # no file named 0 here
    seen = []
    monkeypatch.setattr(bench, "preflight", lambda args: seen.append(args.input) or (_ for _ in ()).throw(
        SystemExit(7)))
    with pytest.raises(SystemExit):
        bench.run_bench_command(_bench_args("0"))
    assert seen == ["camera:0"]
