"""The cgroup v1 driver against a fake hybrid tree: exactly what it writes, where."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from portique.errors import InvalidArgument, Unsupported
from portique.oci.resources import parse_resources
from portique.runtime.cgroups import CgroupError, open_manager
from portique.runtime.cgroups.v1 import V1Manager, plan
from support.cgfake import FakeV1, Writes, populate_v1


def _manager(fake: FakeV1, cid: str = "c1", path: str | None = None) -> V1Manager:
    mgr = open_manager(path, cid, root=fake.root, mountinfo=fake.mountinfo)
    assert isinstance(mgr, V1Manager)
    return mgr


def test_dirs_cover_every_hierarchy(fake_v1: FakeV1) -> None:
    mgr = _manager(fake_v1)
    assert mgr.version == "v1"
    root = fake_v1.root
    # cpu and cpuacct are one co-mounted hierarchy; unified (cgroup2) is not a v1 one.
    assert mgr.dirs() == {
        str(root / mp): root / mp / "portique" / "c1"
        for mp in (
            "cpu,cpuacct",
            "cpuset",
            "memory",
            "devices",
            "freezer",
            "blkio",
            "pids",
            "systemd",
        )
    }


def test_create_copies_cpuset_from_parent(fake_v1: FakeV1, writes: Writes) -> None:
    cpuset = fake_v1.root / "cpuset"
    # What the kernel shows right after mkdir: empty cpus and mems.
    for d in (cpuset / "portique", cpuset / "portique" / "c1"):
        d.mkdir(parents=True, exist_ok=True)
        (d / "cpuset.cpus").write_text("\n")
        (d / "cpuset.mems").write_text("\n")
    mgr = _manager(fake_v1)
    mgr.create()
    assert all(d.is_dir() for d in mgr.dirs().values())
    assert (cpuset / "portique" / "cpuset.cpus").read_text().startswith("0-3")
    assert (cpuset / "portique" / "c1" / "cpuset.cpus").read_text().startswith("0-3")
    assert (cpuset / "portique" / "c1" / "cpuset.mems").read_text().startswith("0")
    assert writes.names() == ["cpuset.cpus", "cpuset.mems", "cpuset.cpus", "cpuset.mems"]


def test_apply_writes_each_file_in_its_hierarchy(fake_v1: FakeV1, writes: Writes) -> None:
    dirs = populate_v1(fake_v1.root, "portique/c1")
    (dirs["memory"] / "memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")
    mgr = _manager(fake_v1)
    res = parse_resources(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": True, "type": "c", "major": 136, "access": "rw"},
            ],
            "memory": {
                "limit": 64 << 20,
                "reservation": 32 << 20,
                "swap": 96 << 20,
                "swappiness": 10,
                "disableOOMKiller": True,
            },
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "1", "mems": "0"},
            "pids": {"limit": 20},
            "blockIO": {
                "weight": 500,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
            },
        }
    )
    mgr.apply(res)
    rel = [(Path(d).relative_to(fake_v1.root).parts[0], n, v) for d, n, v in writes.calls]
    assert rel == [
        ("devices", "devices.deny", "a *:* rwm"),
        ("devices", "devices.allow", "c 1:3 rwm"),
        ("devices", "devices.allow", "c 136:* rw"),
        # Raising from an unlimited memsw: memory first is safe.
        ("memory", "memory.limit_in_bytes", str(64 << 20)),
        ("memory", "memory.memsw.limit_in_bytes", str(96 << 20)),
        ("memory", "memory.soft_limit_in_bytes", str(32 << 20)),
        ("memory", "memory.swappiness", "10"),
        ("memory", "memory.oom_control", "1"),
        ("cpu,cpuacct", "cpu.shares", "512"),
        ("cpu,cpuacct", "cpu.cfs_period_us", "100000"),
        ("cpu,cpuacct", "cpu.cfs_quota_us", "50000"),
        ("cpuset", "cpuset.cpus", "1"),
        ("cpuset", "cpuset.mems", "0"),
        ("pids", "pids.max", "20"),
        ("blkio", "blkio.weight", "500"),
        ("blkio", "blkio.weight_device", "8:0 200"),
        ("blkio", "blkio.throttle.write_iops_device", "8:0 100"),
    ]


def test_raising_memory_above_memsw_writes_memsw_first(fake_v1: FakeV1, writes: Writes) -> None:
    dirs = populate_v1(fake_v1.root, "portique/c1")
    (dirs["memory"] / "memory.memsw.limit_in_bytes").write_text(f"{64 << 20}\n")
    _manager(fake_v1).apply(parse_resources({"memory": {"limit": 128 << 20, "swap": 256 << 20}}))
    assert writes.names() == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]


def test_unlimited_memory_lifts_memsw(fake_v1: FakeV1) -> None:
    res = parse_resources({"memory": {"limit": -1}})
    assert plan(res, lambda c, f: True) == [
        ("memory", "memory.limit_in_bytes", "-1"),
        ("memory", "memory.memsw.limit_in_bytes", "-1"),
    ]


def test_swap_without_memsw_is_refused() -> None:
    # The spec: a value that cannot be honoured MUST be an error (runc drops it).
    res = parse_resources({"memory": {"limit": 1 << 20, "swap": 2 << 20}})
    has = lambda c, f: f != "memory.memsw.limit_in_bytes"  # noqa: E731
    with pytest.raises(Unsupported, match=r"memory\.swap: this kernel has no swap accounting"):
        plan(res, has)
    # Unlimited swap is what such a kernel does anyway.
    res = parse_resources({"memory": {"limit": 1 << 20, "swap": -1}})
    assert plan(res, has) == [("memory", "memory.limit_in_bytes", str(1 << 20))]


def test_bfq_weight_when_cfq_is_gone() -> None:
    res = parse_resources({"blockIO": {"weight": 300}})
    has = lambda c, f: f == "blkio.bfq.weight"  # noqa: E731
    assert plan(res, has) == [("blkio", "blkio.bfq.weight", "300")]
    # CFQ's leaf weights went with it: refused, not dropped.
    with pytest.raises(Unsupported, match=r"blockIO\.leafWeight"):
        plan(parse_resources({"blockIO": {"weight": 300, "leafWeight": 200}}), has)


def test_unified_is_rejected_on_v1() -> None:
    with pytest.raises(InvalidArgument, match=r"unified\.memory\.high: needs cgroup v2"):
        plan(parse_resources({"unified": {"memory.high": "1"}}), lambda c, f: True)


def test_missing_controller_is_named(fake_v1: FakeV1) -> None:
    populate_v1(fake_v1.root, "portique/c1")
    with pytest.raises(CgroupError, match="hugetlb cgroup controller is not mounted"):
        _manager(fake_v1).apply(
            parse_resources({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]})
        )


def test_add_process_joins_every_hierarchy(fake_v1: FakeV1) -> None:
    populate_v1(fake_v1.root, "portique/c1")
    mgr = _manager(fake_v1)
    mgr.add_process(31337)
    assert {d.parts[-3]: (d / "cgroup.procs").read_text() for d in mgr.dirs().values()} == {
        mp: "31337"
        for mp in (
            "cpu,cpuacct",
            "cpuset",
            "memory",
            "devices",
            "freezer",
            "blkio",
            "pids",
            "systemd",
        )
    }
    assert mgr.pids() == [31337]


def test_join_moves_the_calling_thread_in_every_hierarchy(fake_v1: FakeV1) -> None:
    # "0" to tasks: the caller moves itself, which spares the kernel's global
    # threadgroup lock (cgroup.procs is left alone).
    populate_v1(fake_v1.root, "portique/c1")
    mgr = _manager(fake_v1)
    mgr.join()
    dirs = mgr.dirs().values()
    assert len(dirs) == 8
    assert {(d / "tasks").read_text() for d in dirs} == {"0"}
    assert {(d / "cgroup.procs").read_text() for d in dirs} == {""}


def test_freeze_and_thaw_use_freezer_state(fake_v1: FakeV1, writes: Writes) -> None:
    dirs = populate_v1(fake_v1.root, "portique/c1")
    state = dirs["freezer"] / "freezer.state"
    mgr = _manager(fake_v1)
    mgr.freeze()  # the fake "kernel" reports the written state at once
    assert state.read_text() == "FROZEN"
    assert mgr.is_frozen()
    state.write_text("")
    mgr.thaw()
    assert state.read_text() == "THAWED"
    assert not mgr.is_frozen()
    assert writes.calls == [
        (str(dirs["freezer"]), "freezer.state", "FROZEN"),
        (str(dirs["freezer"]), "freezer.state", "THAWED"),
    ]


def test_kill_all_freezes_signals_thaws(fake_v1: FakeV1, writes: Writes) -> None:
    populate_v1(fake_v1.root, "portique/c1")
    mgr = _manager(fake_v1)
    # An empty cgroup: nothing to signal, but the freeze/thaw bracket is there.
    mgr.kill_all(signal.SIGTERM)
    assert [v for _, n, v in writes.calls] == ["FROZEN", "THAWED"]


def test_oom_kill_count_and_stats(fake_v1: FakeV1) -> None:
    dirs = populate_v1(fake_v1.root, "portique/c1")
    mem = dirs["memory"]
    (mem / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    (mem / "memory.usage_in_bytes").write_text("4096\n")
    (mem / "memory.limit_in_bytes").write_text("8192\n")
    (mem / "memory.failcnt").write_text("7\n")
    (mem / "memory.stat").write_text("cache 100\nrss 200\ntotal_cache 300\n")
    cpu = dirs["cpu,cpuacct"]
    (cpu / "cpuacct.usage").write_text("123456\n")
    (cpu / "cpuacct.usage_percpu").write_text("100000 23456\n")
    (cpu / "cpuacct.stat").write_text("user 2\nsystem 1\n")
    (cpu / "cpu.stat").write_text("nr_periods 4\nnr_throttled 2\nthrottled_time 99\n")
    (dirs["pids"] / "pids.current").write_text("2\n")
    (dirs["pids"] / "pids.max").write_text("max\n")
    (dirs["blkio"] / "blkio.throttle.io_service_bytes_recursive").write_text(
        "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n"
    )
    mgr = _manager(fake_v1)
    assert mgr.oom_kill_count() == 3
    st = mgr.stats()
    tick = 1_000_000_000 // __import__("os").sysconf("SC_CLK_TCK")
    assert st["cpu"] == {
        "usage": {"total": 123456, "percpu": [100000, 23456], "kernel": tick, "user": 2 * tick},
        "throttling": {"periods": 4, "throttledPeriods": 2, "throttledTime": 99},
    }
    memory = st["memory"]
    assert isinstance(memory, dict)
    assert memory["usage"] == {"usage": 4096, "max": 0, "limit": 8192, "failcnt": 7}
    assert memory["cache"] == 300
    assert st["pids"] == {"current": 2, "limit": 0}
    blkio = st["blkio"]
    assert isinstance(blkio, dict)
    assert blkio["ioServiceBytesRecursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 4096},
        {"major": 8, "minor": 0, "op": "Write", "value": 0},
    ]


def test_destroy_removes_in_every_hierarchy(fake_v1: FakeV1) -> None:
    mgr = _manager(fake_v1, path="/default/x")
    for d in mgr.dirs().values():
        (d / "sub").mkdir(parents=True)
    assert mgr.exists()
    mgr.destroy()
    assert not mgr.exists()
    assert all((Path(mp) / "default").is_dir() for mp in mgr.dirs())
    mgr.destroy()


def test_kill_all_keeps_a_paused_container_paused(fake_v1: FakeV1, writes: Writes) -> None:
    dirs = populate_v1(fake_v1.root, "portique/c1")
    (dirs["freezer"] / "freezer.state").write_text("FROZEN")
    mgr = _manager(fake_v1)
    mgr.kill_all(signal.SIGTERM)
    assert [v for _, n, v in writes.calls] == ["FROZEN"]
    assert mgr.is_frozen()
    # SIGKILL must be delivered, and a frozen task cannot die: thaw.
    mgr.kill_all(signal.SIGKILL)
    assert [v for _, n, v in writes.calls] == ["FROZEN", "FROZEN", "THAWED"]


def _cpuset_files(fake: FakeV1) -> None:
    """What the kernel shows in a new cpuset: empty cpus and mems files."""
    for d in (fake.root / "cpuset" / "portique", fake.root / "cpuset" / "portique" / "c1"):
        d.mkdir(parents=True, exist_ok=True)
        (d / "cpuset.cpus").write_text("\n")
        (d / "cpuset.mems").write_text("\n")


def test_read_only_named_hierarchy_is_skipped(fake_v1: FakeV1) -> None:
    _cpuset_files(fake_v1)
    systemd = fake_v1.root / "systemd"
    (systemd / "portique").write_text("")  # mkdir under it fails (ENOTDIR), like EROFS would
    mgr = _manager(fake_v1)
    mgr.create()
    assert str(systemd) not in mgr.dirs()
    assert len(mgr.dirs()) == 7


def test_failing_controller_hierarchy_is_an_error(fake_v1: FakeV1) -> None:
    _cpuset_files(fake_v1)
    (fake_v1.root / "memory" / "portique").write_text("")
    with pytest.raises(CgroupError, match=r"cannot create cgroup .*memory/portique"):
        _manager(fake_v1).create()


def test_check_before_update_uses_v1_usage(fake_v1: FakeV1) -> None:
    dirs = populate_v1(fake_v1.root, "portique/c1")
    (dirs["memory"] / "memory.usage_in_bytes").write_text(f"{8 << 20}\n")
    with pytest.raises(CgroupError, match="below current usage"):
        _manager(fake_v1).apply(
            parse_resources({"memory": {"limit": 4 << 20, "checkBeforeUpdate": True}})
        )
