"""The cgroup v2 driver against a fake cgroupfs tree: exactly what it writes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from portique.errors import InvalidArgument, Unsupported
from portique.oci.resources import parse_resources
from portique.runtime.cgroups import CgroupError, open_manager
from portique.runtime.cgroups.base import shares_to_weight
from portique.runtime.cgroups.devices_bpf import compile_rules
from portique.runtime.cgroups.v2 import V2Manager, plan
from support.cgfake import Writes, populate_v2


def _manager(root: Path, cid: str = "c1") -> V2Manager:
    mgr = open_manager(None, cid, root=root)
    assert isinstance(mgr, V2Manager)
    return mgr


def test_create_enables_controllers_top_down(fake_v2: Path, writes: Writes) -> None:
    populate_v2(fake_v2 / "portique", leaf=False)
    mgr = _manager(fake_v2)
    mgr.create()
    assert mgr.dir == fake_v2 / "portique" / "c1"
    assert mgr.dir.is_dir()
    want = "+cpuset +cpu +io +memory +hugetlb +pids +rdma +misc"
    assert writes.calls == [
        (str(fake_v2), "cgroup.subtree_control", want),
        (str(fake_v2 / "portique"), "cgroup.subtree_control", want),
    ]
    # The leaf itself enables nothing: it holds the container's processes.
    assert mgr.dirs() == {"": mgr.dir}
    assert mgr.version == "v2"


def test_create_skips_enabled_controllers(fake_v2: Path, writes: Writes) -> None:
    (fake_v2 / "cgroup.subtree_control").write_text("cpuset cpu io memory pids\n")
    populate_v2(fake_v2 / "portique", "cpuset cpu io memory pids", leaf=False)
    (fake_v2 / "portique" / "cgroup.subtree_control").write_text("cpuset cpu io memory pids\n")
    _manager(fake_v2).create()
    assert writes.calls == [(str(fake_v2), "cgroup.subtree_control", "+hugetlb +rdma +misc")]


def test_create_absolute_path_and_relative_path(fake_v2: Path) -> None:
    populate_v2(fake_v2 / "default", leaf=False)
    mgr = open_manager("/default/abc", "abc", root=fake_v2)
    assert mgr.path == "/default/abc"
    mgr.create()
    assert (fake_v2 / "default" / "abc").is_dir()
    populate_v2(fake_v2 / "portique", leaf=False)
    populate_v2(fake_v2 / "portique" / "group", leaf=False)
    rel = open_manager("group/x", "x", root=fake_v2)
    assert rel.path == "/portique/group/x"
    rel.create()
    assert (fake_v2 / "portique" / "group" / "x").is_dir()


def test_apply_writes_exact_values(fake_v2: Path, writes: Writes) -> None:
    mgr = _manager(fake_v2)
    populate_v2(mgr.dir)
    res = parse_resources(
        {
            "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
            "pids": {"limit": 32},
            "blockIO": {
                "weight": 500,
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "unified": {"memory.high": "50000000"},
        }
    )
    mgr.apply(res)
    assert [(n, v) for _, n, v in writes.calls] == [
        ("memory.max", str(64 << 20)),
        ("memory.low", str(32 << 20)),
        ("memory.swap.max", str(32 << 20)),  # swap is memory+swap in OCI
        ("cpu.weight", "39"),
        ("cpu.max", "50000 100000"),
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
        ("pids.max", "32"),
        ("io.weight", str(1 + (490 * 9999) // 990)),
        ("io.max", "8:0 rbps=1048576"),
        ("hugetlb.2MB.max", "4194304"),
        ("memory.high", "50000000"),
    ]
    assert (mgr.dir / "cpu.max").read_text() == "50000 100000"
    assert {d for d, _, _ in writes.calls} == {str(mgr.dir)}


def test_apply_unlimited_values(fake_v2: Path) -> None:
    res = parse_resources(
        {"memory": {"limit": -1, "swap": -1}, "cpu": {"quota": -1}, "pids": {"limit": -1}}
    )
    assert plan(res, lambda f: True) == [
        ("memory.max", "max"),
        ("memory.swap.max", "max"),
        ("cpu.max", "max"),
        ("pids.max", "max"),
    ]


def test_apply_none_writes_nothing(fake_v2: Path, writes: Writes) -> None:
    mgr = _manager(fake_v2)
    populate_v2(mgr.dir)
    mgr.apply(None)
    mgr.apply(parse_resources({}))
    assert writes.calls == []


@pytest.mark.parametrize(
    ("shares", "weight"), [(2, 1), (1024, 39), (262144, 10000), (512, 20), (100, 4)]
)
def test_shares_to_weight(shares: int, weight: int) -> None:
    assert shares_to_weight(shares) == weight


def test_bfq_takes_v1_weight_unchanged() -> None:
    res = parse_resources(
        {"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 16, "weight": 700}]}}
    )
    assert plan(res, lambda f: f == "io.bfq.weight") == [
        ("io.bfq.weight", "300"),
        ("io.bfq.weight", "8:16 700"),
    ]


def test_swap_needs_a_memory_limit() -> None:
    with pytest.raises(InvalidArgument, match=r"memory\.swap.*memory\.limit"):
        plan(parse_resources({"memory": {"swap": 1 << 30}}), lambda f: True)


def test_swap_without_accounting_is_refused() -> None:
    # The spec: a value that cannot be honoured MUST be an error (runc drops it).
    res = parse_resources({"memory": {"limit": 1 << 20, "swap": 2 << 20}})
    with pytest.raises(Unsupported, match=r"memory\.swap: this kernel has no swap accounting"):
        plan(res, lambda f: f != "memory.swap.max")
    res = parse_resources({"memory": {"limit": 1 << 20, "swap": -1}})
    assert plan(res, lambda f: f != "memory.swap.max") == [("memory.max", str(1 << 20))]


def test_realtime_is_unsupported_on_v2() -> None:
    with pytest.raises(Unsupported, match="realtimeRuntime"):
        plan(parse_resources({"cpu": {"realtimeRuntime": 1000}}), lambda f: True)


def test_missing_file_error_names_file_and_dir(fake_v2: Path) -> None:
    mgr = _manager(fake_v2)
    populate_v2(mgr.dir)
    (mgr.dir / "pids.max").unlink()
    with pytest.raises(CgroupError, match=rf"cannot write pids\.max in {mgr.dir}"):
        mgr.apply(parse_resources({"pids": {"limit": 5}}))


def test_device_rules_become_a_bpf_program_on_the_cgroup(fake_v2: Path) -> None:
    attached: list[tuple[tuple[int, int], bytes]] = []

    class Loader:
        def attach_device_filter(self, cgroup_fd: int, insns: bytes) -> None:
            st = os.fstat(cgroup_fd)
            attached.append(((st.st_dev, st.st_ino), insns))

    mgr = V2Manager("/portique/c1", fake_v2, devices=Loader())
    populate_v2(mgr.dir)
    res = parse_resources(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            ]
        }
    )
    mgr.apply(res)
    st = mgr.dir.stat()
    assert attached == [((st.st_dev, st.st_ino), compile_rules(res.devices))]


def test_freeze_thaw_and_state(fake_v2: Path, writes: Writes) -> None:
    mgr = _manager(fake_v2)
    populate_v2(mgr.dir)
    # The kernel flips cgroup.events once every task stopped; the fake says so up front.
    (mgr.dir / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    mgr.freeze()
    assert (mgr.dir / "cgroup.freeze").read_text() == "1"
    assert mgr.is_frozen()
    (mgr.dir / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    mgr.thaw()
    assert (mgr.dir / "cgroup.freeze").read_text() == "0"
    assert not mgr.is_frozen()
    assert writes.names() == ["cgroup.freeze", "cgroup.freeze"]


def test_add_process_pids_and_recursive_walk(fake_v2: Path) -> None:
    mgr = _manager(fake_v2)
    populate_v2(mgr.dir)
    mgr.add_process(4242)
    assert (mgr.dir / "cgroup.procs").read_text() == "4242"
    sub = populate_v2(mgr.dir / "inner")
    (sub / "cgroup.procs").write_text("7\n8\n")
    assert sorted(mgr.pids()) == [7, 8, 4242]


def test_join_moves_the_calling_process(fake_v2: Path) -> None:
    mgr = _manager(fake_v2)
    populate_v2(mgr.dir)
    mgr.join()
    assert (mgr.dir / "cgroup.procs").read_text() == "0"


def test_kill_all_uses_cgroup_kill(fake_v2: Path) -> None:
    mgr = _manager(fake_v2)
    populate_v2(mgr.dir)
    mgr.kill_all(signal.SIGKILL)
    assert (mgr.dir / "cgroup.kill").read_text() == "1"


def test_oom_kill_count_and_stats(fake_v2: Path) -> None:
    mgr = _manager(fake_v2)
    populate_v2(mgr.dir)
    (mgr.dir / "memory.events").write_text("low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\n")
    (mgr.dir / "memory.current").write_text("1048576\n")
    (mgr.dir / "memory.peak").write_text("2097152\n")
    (mgr.dir / "memory.max").write_text("max\n")
    (mgr.dir / "memory.swap.current").write_text("0\n")
    (mgr.dir / "memory.swap.max").write_text("max\n")
    (mgr.dir / "memory.stat").write_text("anon 4096\nfile 8192\n")
    (mgr.dir / "cpu.stat").write_text(
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\nnr_throttled 1\n"
        "throttled_usec 20\n"
    )
    (mgr.dir / "pids.current").write_text("3\n")
    (mgr.dir / "pids.max").write_text("100\n")
    (mgr.dir / "io.stat").write_text("8:0 rbytes=4096 wbytes=512 rios=1 wios=2 dbytes=0 dios=0\n")
    assert mgr.oom_kill_count() == 2
    st = mgr.stats()
    assert st["cpu"] == {
        "usage": {"total": 1_500_000, "kernel": 500_000, "user": 1_000_000},
        "throttling": {"periods": 3, "throttledPeriods": 1, "throttledTime": 20_000},
    }
    mem = st["memory"]
    assert isinstance(mem, dict)
    assert mem["usage"] == {"usage": 1048576, "max": 2097152, "limit": 2**64 - 1, "failcnt": 5}
    assert mem["cache"] == 8192
    assert st["pids"] == {"current": 3, "limit": 100}
    assert st["blkio"] == {
        "ioServiceBytesRecursive": [
            {"major": 8, "minor": 0, "op": "Read", "value": 4096},
            {"major": 8, "minor": 0, "op": "Write", "value": 512},
        ],
        "ioServicedRecursive": [
            {"major": 8, "minor": 0, "op": "Read", "value": 1},
            {"major": 8, "minor": 0, "op": "Write", "value": 2},
        ],
    }


def test_destroy_removes_deepest_first_and_is_idempotent(
    fake_v2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mgr = _manager(fake_v2)
    (mgr.dir / "a" / "b").mkdir(parents=True)
    (mgr.dir / "c").mkdir()
    removed: list[str] = []
    real = os.rmdir

    def rmdir(p: str | Path) -> None:
        real(p)  # the removals, in order (a try on a non-empty dir fails first)
        removed.append(str(Path(p).relative_to(fake_v2)))

    monkeypatch.setattr(os, "rmdir", rmdir)
    mgr.destroy()
    assert removed[0] == "portique/c1/a/b"
    assert removed[-1] == "portique/c1"
    assert set(removed) == {"portique/c1/a/b", "portique/c1/a", "portique/c1/c", "portique/c1"}
    assert not mgr.exists()
    assert (fake_v2 / "portique").is_dir()  # the shared parent stays
    mgr.destroy()  # idempotent


def test_destroy_retries_ebusy(fake_v2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mgr = _manager(fake_v2)
    mgr.dir.mkdir(parents=True)
    real = os.rmdir
    failures = [OSError(16, "Device or resource busy")] * 2

    def rmdir(p: str | Path) -> None:
        if failures:
            raise failures.pop()
        real(p)

    monkeypatch.setattr(os, "rmdir", rmdir)
    mgr.destroy()
    assert not mgr.exists()


def test_destroy_gives_up_on_persistent_ebusy(
    fake_v2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mgr = _manager(fake_v2)
    mgr.dir.mkdir(parents=True)

    def rmdir(p: str | Path) -> None:
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(os, "rmdir", rmdir)
    monkeypatch.setattr("portique.runtime.cgroups.base.time.sleep", lambda s: None)
    with pytest.raises(CgroupError, match="cannot remove cgroup"):
        mgr.destroy()


def test_check_before_update_refuses_a_limit_below_usage(fake_v2: Path, writes: Writes) -> None:
    mgr = _manager(fake_v2)
    populate_v2(mgr.dir)
    (mgr.dir / "memory.current").write_text(f"{8 << 20}\n")
    with pytest.raises(CgroupError, match="below current usage 8388608"):
        mgr.apply(parse_resources({"memory": {"limit": 4 << 20, "checkBeforeUpdate": True}}))
    assert writes.calls == []
    mgr.apply(parse_resources({"memory": {"limit": 16 << 20, "checkBeforeUpdate": True}}))
    assert writes.names() == ["memory.max"]
