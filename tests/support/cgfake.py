"""Fake cgroupfs trees for the cgroup driver unit tests (fixtures re-exported
by unit/runtime/cgroups/conftest.py).

A fake tree is plain directories and files in tmp_path. The kernel would
create a new cgroup's interface files on mkdir; here the test pre-creates
the directories it wants populated (`populate_v2`, `populate_v1`). Interface
files start empty, so the bytes a driver writes are exactly what the file holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

V2_CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma misc"
_V2_FILES = (
    "cgroup.procs cgroup.subtree_control cgroup.freeze cgroup.kill cgroup.max.depth "
    "memory.max memory.low memory.high memory.swap.max memory.current memory.peak "
    "memory.swap.current memory.stat memory.events cpu.weight cpu.max cpu.max.burst cpu.idle "
    "cpu.stat cpuset.cpus cpuset.mems pids.max pids.current io.weight io.max io.stat "
    "hugetlb.2MB.max hugetlb.1GB.max"
)
V2_FILES = _V2_FILES.split()

V1_HIERARCHIES = {
    "cpu,cpuacct": "cpu.shares cpu.cfs_quota_us cpu.cfs_period_us cpu.cfs_burst_us "
    "cpu.rt_period_us cpu.rt_runtime_us cpu.idle cpu.stat cpuacct.usage cpuacct.usage_percpu "
    "cpuacct.stat",
    "cpuset": "cpuset.cpus cpuset.mems",
    "memory": "memory.limit_in_bytes memory.memsw.limit_in_bytes memory.soft_limit_in_bytes "
    "memory.swappiness memory.oom_control memory.usage_in_bytes memory.max_usage_in_bytes "
    "memory.failcnt memory.memsw.usage_in_bytes memory.memsw.max_usage_in_bytes "
    "memory.memsw.failcnt memory.stat",
    "devices": "devices.allow devices.deny devices.list",
    "freezer": "freezer.state",
    "blkio": "blkio.weight blkio.weight_device blkio.throttle.read_bps_device "
    "blkio.throttle.write_bps_device blkio.throttle.read_iops_device "
    "blkio.throttle.write_iops_device blkio.throttle.io_service_bytes_recursive "
    "blkio.throttle.io_serviced_recursive",
    "pids": "pids.max pids.current",
    "systemd": "",
}


def populate_v2(d: Path, controllers: str = V2_CONTROLLERS, *, leaf: bool = True) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "cgroup.controllers").write_text(controllers + "\n")
    for name in V2_FILES if leaf else ("cgroup.procs", "cgroup.subtree_control"):
        (d / name).touch()
    return d


def populate_v1(root: Path, rel: str) -> dict[str, Path]:
    out = {}
    for mp, files in V1_HIERARCHIES.items():
        d = root / mp / rel
        d.mkdir(parents=True, exist_ok=True)
        for name in ["cgroup.procs", "tasks", *files.split()]:
            (d / name).touch()
        out[mp] = d
    return out


@dataclass
class FakeV1:
    root: Path
    mountinfo: Path


@pytest.fixture
def fake_v2(tmp_path: Path) -> Path:
    """A cgroup2 root with every controller, nothing enabled for children yet."""
    root = tmp_path / "cg"
    populate_v2(root, leaf=False)
    return root


@pytest.fixture
def fake_v1(tmp_path: Path) -> FakeV1:
    """A v1 hybrid layout: cpu,cpuacct co-mounted, name=systemd, cgroup2 at unified."""
    root = tmp_path / "cg"
    lines = []
    for i, mp in enumerate(V1_HIERARCHIES):
        (root / mp).mkdir(parents=True)
        (root / mp / "cgroup.procs").touch()
        opts = "name=systemd" if mp == "systemd" else mp
        lines.append(
            f"{30 + i} 25 0:{40 + i} / {root / mp} rw,nosuid,nodev,noexec,relatime shared:{i} "
            f"- cgroup cgroup rw,{opts}"
        )
    (root / "cpu").symlink_to("cpu,cpuacct")
    (root / "cpuacct").symlink_to("cpu,cpuacct")
    populate_v2(root / "unified", "hugetlb", leaf=False)
    lines.append(f"50 25 0:50 / {root / 'unified'} rw,relatime shared:9 - cgroup2 cgroup2 rw")
    lines.append("22 1 0:21 / /proc rw,relatime shared:5 - proc proc rw")
    (root / "cpuset" / "cpuset.cpus").write_text("0-3\n")
    (root / "cpuset" / "cpuset.mems").write_text("0\n")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("\n".join(lines) + "\n")
    return FakeV1(root, mountinfo)


@dataclass
class Writes:
    """Records every write a driver makes, then performs it."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [n for _, n, _ in self.calls]


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Writes:
    from portique.runtime.cgroups import base, v1, v2

    rec = Writes()
    real = base.write_file

    def recording(directory: Path, name: str, value: str) -> None:
        rec.calls.append((str(directory), name, value))
        real(directory, name, value)

    real_lines = base.write_lines

    def recording_lines(directory: Path, name: str, values: list[str]) -> None:
        # One write(2) per value through one open: a call each, as write_file.
        rec.calls.extend((str(directory), name, v) for v in values)
        real_lines(directory, name, values)

    for mod in (base, v1, v2):
        monkeypatch.setattr(mod, "write_file", recording)
    monkeypatch.setattr(v1, "write_lines", recording_lines)
    return rec
