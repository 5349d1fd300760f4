"""What a container or a service leaves this process (Linux): its CPU quota and its memory room, read from the
cgroup filesystem, v1 and v2, over the process's own cgroup and every one above it.

The limit may sit on a parent (systemd's CPUQuota= and MemoryMax= on a slice, the service in a child of it), and a
container may see its own cgroup at the mount's root while /proc/self/cgroup names the host's path of it, which is
not there: the folders of that path that exist are read, down to the mount's root. The bench's `cores_usable` and a
photo's memory check (stream/images.py) both read their limits here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

ROOT = Path("/sys/fs/cgroup")
MEMBERSHIP = Path("/proc/self/cgroup")
NO_MEMORY_LIMIT = 1 << 60  # v1 writes "no limit" as a huge number (PAGE_COUNTER_MAX pages), v2 as "max"

Value = TypeVar("Value", int, float)


def folders(controller: str, root: Path | str = ROOT, membership: Path | str = MEMBERSHIP) -> list[tuple[int, Path]]:
    """(cgroup version, folder) of this process's cgroup and of each one above it, own first, for one controller
    ('cpu', 'memory'): v2's single hierarchy (mounted at the root, or at unified/ beside v1's) and v1's hierarchy
    of that controller (mounted under its names, 'cpu,cpuacct', or the controller's own). None readable: []."""
    try:
        lines = Path(membership).read_text().splitlines()
    except OSError:
        return []
    root = Path(root)
    found: list[tuple[int, Path]] = []
    for line in lines:
        number, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if number == "0" and controllers == "":  # v2: "0::/path"
            places = [(2, mount) for mount in (root, root / "unified")]
        elif controller in controllers.split(","):
            places = [(1, mount) for mount in (root / controllers, root / controller)]
        else:
            continue
        for version, mount in places:
            found += [(version, folder) for folder in _up_from(mount, path) if (version, folder) not in found]
    return found


def _up_from(mount: Path, path: str) -> list[Path]:
    """The folders of cgroup `path` and of every cgroup above it under `mount`, that exist."""
    if not mount.is_dir():
        return []
    parts = [part for part in path.strip("/").split("/") if part]
    return [mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)
            if mount.joinpath(*parts[:depth]).is_dir()]


def cpu_quota(root: Path | str = ROOT, membership: Path | str = MEMBERSHIP) -> float | None:
    """The tightest CPU quota in cores (docker --cpus, systemd's CPUQuota=): v2's cpu.max, v1's cpu.cfs_quota_us
    over cpu.cfs_period_us. None without one."""
    return _tightest(folders("cpu", root, membership),
                     lambda version, folder: cpu_max_quota(folder / "cpu.max") if version == 2 else _cfs_quota(folder))


def memory_room(root: Path | str = ROOT, membership: Path | str = MEMBERSHIP) -> int | None:
    """Bytes the tightest memory limit leaves (docker --memory, systemd's MemoryMax=): its limit less what its
    group uses (v2's memory.max less memory.current, v1's memory.limit_in_bytes less memory.usage_in_bytes) that
    the kernel cannot take back, at least 0. None without a limit (in a container /proc/meminfo is the host's: this
    is what the container has)."""
    names = {2: ("memory.max", "memory.current", "inactive_file"),
             1: ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")}
    return _tightest(folders("memory", root, membership),
                     lambda version, folder: _memory_room(folder, *names[version]))


def _tightest(places: list[tuple[int, Path]], read: Callable[[int, Path], Value | None]) -> Value | None:
    """The smallest value `read` finds over the places, None where none has one."""
    values = [value for value in (read(version, folder) for version, folder in places) if value is not None]
    return min(values) if values else None


def cpu_max_quota(path: Path) -> float | None:
    """v2's cpu.max ('150000 100000': 1.5 cores; 'max 100000': none) in cores."""
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _cfs_quota(folder: Path) -> float | None:
    """v1's cpu.cfs_quota_us over cpu.cfs_period_us in cores (a quota of -1: none)."""
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def _memory_room(folder: Path, limit_name: str, usage_name: str, cache_name: str) -> int | None:
    """One group's limit less its use in bytes; None where it sets no limit ('max', v1's huge number). The use
    counts files read and written as cache: its inactive part, which the kernel drops when memory is asked for, is
    left out (as the kubelet's working set does), or a container that had written a few GB of video was told a
    photo did not fit."""
    try:
        limit, usage = (folder / limit_name).read_text().strip(), (folder / usage_name).read_text().strip()
    except OSError:
        return None
    if not (limit.isdigit() and usage.isdigit()) or int(limit) >= NO_MEMORY_LIMIT:
        return None
    return max(int(limit) - max(int(usage) - _stat(folder / "memory.stat", cache_name), 0), 0)


def _stat(path: Path, name: str) -> int:
    """One figure of a memory.stat file ('inactive_file 123'), 0 where it is missing."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        key, _, value = line.partition(" ")
        if key == name and value.strip().isdigit():
            return int(value)
    return 0
