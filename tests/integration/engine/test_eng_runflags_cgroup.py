"""Issue 13 item 5: the cgroup-specific run flags, read back from the kernel's
cgroup files (inside the container, whose /sys/fs/cgroup is its own cgroup)
on this cgroup v1 host and in the cgroup v2 VM (marker `vm`)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from support.engine_cli import Portique
from support.kernel_facts import cgroup_dir, cgroup_v2


def _cat(pq: Portique, flags: list[str], v1: str, v2: str) -> str:
    path = v2 if cgroup_v2() else v1
    out: str = pq.ok("run", "--rm", "--network", "none", *flags, "busybox", "cat",
                     f"/sys/fs/cgroup/{path}")  # fmt: skip
    return out.strip()


@pytest.mark.vm
def test_memory_reservation_cpu_period_quota_cpuset_mems(pq: Portique) -> None:
    low = _cat(pq, ["--memory-reservation", "40m"], "memory/memory.soft_limit_in_bytes",
               "memory.low")  # fmt: skip
    assert low == str(40 << 20)
    if cgroup_v2():
        assert _cat(pq, ["--cpu-period", "50000", "--cpu-quota", "25000"], "", "cpu.max") == (
            "25000 50000"
        )
    else:
        flags = ["--cpu-period", "50000", "--cpu-quota", "25000"]
        assert _cat(pq, flags, "cpu/cpu.cfs_period_us", "") == "50000"
        assert _cat(pq, flags, "cpu/cpu.cfs_quota_us", "") == "25000"
    assert _cat(pq, ["--cpuset-mems", "0"], "cpuset/cpuset.mems", "cpuset.mems") == "0"
    p = pq("run", "--rm", "--cpus", "1", "--cpu-quota", "5000", "busybox", "true")
    assert p.returncode == 125
    assert "conflicting options" in p.stderr


@pytest.mark.vm
def test_swappiness_and_oom_kill_disable_or_a_clear_refusal(pq: Portique) -> None:
    flags = ["-m", "64m", "--memory-swappiness", "7", "--oom-kill-disable"]
    if cgroup_v2():
        # cgroup v2 has neither knob: refused, one line, nothing created.
        before = pq.ok("ps", "-aq")
        for flag in (flags[:4], [*flags[:2], flags[4]]):
            p = pq("run", "--rm", *flag, "busybox", "true")
            assert p.returncode == 125, flag
            assert len(p.stderr.strip().splitlines()) == 1, p.stderr
            assert "cgroup v2" in p.stderr
        assert pq.ok("ps", "-aq") == before
        return
    assert _cat(pq, flags, "memory/memory.swappiness", "") == "7"
    control = _cat(pq, flags, "memory/memory.oom_control", "")
    assert "oom_kill_disable 1" in control


@pytest.mark.vm
def test_cgroup_parent_nests_under_portique(pq: Portique) -> None:
    parent = f"team-{os.getpid()}"
    try:
        cid = pq.ok("run", "-d", "--network", "none", "--cgroup-parent", f"/{parent}",
                    "busybox", "sleep", "60").strip()  # fmt: skip
        pid = pq.inspect(cid, "{{.State.Pid}}")
        d = cgroup_dir(pid, "memory")
        assert d.name == cid
        assert d.parent.name == parent
        assert d.parent.parent.name == "portique"
        assert pq.inspect(cid, "{{.HostConfig.CgroupParent}}") == parent
        pq.ok("rm", "-f", cid)
        assert not d.exists()
    finally:
        # The parent stays after its containers, as with dockerd: the test's own.
        for made in [*Path("/sys/fs/cgroup").glob(f"*/portique/{parent}"),
                     Path("/sys/fs/cgroup/portique", parent)]:  # fmt: skip
            with contextlib.suppress(OSError):
                made.rmdir()
    p = pq("run", "--rm", "--cgroup-parent", "../escape", "busybox", "true")
    assert p.returncode == 125


def _io_weight_file() -> Path | None:
    base = Path("/sys/fs/cgroup") if cgroup_v2() else Path("/sys/fs/cgroup/blkio")
    names = ("io.weight", "io.bfq.weight") if cgroup_v2() else ("blkio.weight", "blkio.bfq.weight")
    for d in (base / "portique", base):
        for n in names:
            if (d / n).exists():
                return d / n
    return None


@pytest.mark.vm
def test_blkio_weight_applied_or_refused_as_the_host_allows(pq: Portique) -> None:
    found = _io_weight_file()
    if found is None:
        # No weight file on this kernel (no CFQ/BFQ, no io.cost): refused, one line.
        p = pq("run", "--rm", "--blkio-weight", "300", "busybox", "true")
        assert p.returncode == 125
        assert "--blkio-weight" in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1
        return
    out = _cat(pq, ["--blkio-weight", "300"], f"blkio/{found.name}", found.name)
    # blkio/bfq weights take 300 as given; io.weight's scale is runc's
    # 1 + (w - 10) * 9999 / 990, so 2930.
    assert {"300", "2930"} & set(out.split()), out


def test_device_read_bps_and_iops_reach_the_throttle_files(pq: Portique) -> None:
    # /dev/loop0 is block 7:0 on this host (not vm-marked: the VM has no block device).
    flags = ["--device-read-bps", "/dev/loop0:1mb", "--device-write-iops", "/dev/loop0:400"]
    if cgroup_v2():
        assert "7:0 rbps=1048576" in _cat(pq, flags, "", "io.max")
        return
    assert _cat(pq, flags, "blkio/blkio.throttle.read_bps_device", "") == "7:0 1048576"
    assert _cat(pq, flags, "blkio/blkio.throttle.write_iops_device", "") == "7:0 400"
    p = pq("run", "--rm", "--device-read-bps", "/dev/zero:1mb", "busybox", "true")
    assert p.returncode == 125
    assert "not a block device" in p.stderr


@pytest.mark.vm
def test_cgroupns_private_and_host(pq: Portique) -> None:
    def own(mode: str) -> str:
        out: str = pq.ok("run", "--rm", "--network", "none", "--cgroupns", mode, "busybox",
                         "cat", "/proc/self/cgroup")  # fmt: skip
        line = next(ln for ln in out.splitlines() if ln.startswith("0::") or ":memory:" in ln)
        return line.rsplit(":", 1)[1]

    assert own("private") == "/"
    path = own("host")
    assert path.startswith("/portique/")
    assert len(path.split("/")[-1]) == 64  # the container's own cgroup, seen from the host's
