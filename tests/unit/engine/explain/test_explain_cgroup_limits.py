"""runtime/cgroups/limits.py against fake cgroup trees (v1 and v2)."""

from __future__ import annotations

from pathlib import Path

from portique.runtime.cgroups.limits import CgroupFacts, Value, read_facts


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _get(facts: CgroupFacts, name: str) -> Value:
    value = facts.get(name)
    assert value is not None, name
    return value


def test_v1(tmp_path: Path) -> None:
    root, proc = tmp_path / "cg", tmp_path / "proc"
    _write(
        proc / "42/cgroup",
        "5:memory:/portique/c\n4:pids:/portique/c\n3:cpu,cpuacct:/portique/c\n2:devices:/portique/c\n0::/\n",
    )
    mountinfo = tmp_path / "mountinfo"
    lines = []
    for i, (d, opts) in enumerate(
        (
            ("memory", "memory"),
            ("pids", "pids"),
            ("cpu,cpuacct", "cpu,cpuacct"),
            ("devices", "devices"),
        )
    ):
        lines.append(f"{30 + i} 25 0:{30 + i} / {root}/{d} rw - cgroup cgroup rw,{opts}")
        (root / d / "portique/c").mkdir(parents=True)
        (root / d / "cgroup.procs").write_text("")
    mountinfo.write_text("\n".join(lines) + "\n")
    c = root / "memory/portique/c"
    _write(c / "memory.limit_in_bytes", "67108864\n")
    _write(c / "memory.memsw.limit_in_bytes", "9223372036854771712\n")
    _write(c / "memory.usage_in_bytes", "1024\n")
    _write(c / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    _write(root / "pids/portique/c/pids.max", "max\n")
    _write(root / "cpu,cpuacct/portique/c/cpu.cfs_quota_us", "50000\n")
    _write(root / "cpu,cpuacct/portique/c/cpu.cfs_period_us", "100000\n")
    _write(root / "devices/portique/c/devices.list", "c 1:3 rwm\nb *:* m\n")
    (root / "cpuset").mkdir()  # a tmpfs directory without a hierarchy: ignored
    facts = read_facts(42, root=root, proc=str(proc), mountinfo=mountinfo)
    assert facts.version == "v1"
    assert facts.paths["cpuacct"] == str(root / "cpu,cpuacct/portique/c")
    assert (_get(facts, "memory.max").value, _get(facts, "memory.max").source) == (
        64 << 20,
        str(c / "memory.limit_in_bytes"),
    )
    assert _get(facts, "memory+swap.max").value is None  # v1's "unlimited"
    assert _get(facts, "pids.max").value is None
    assert _get(facts, "pids.max").raw == "max"
    assert _get(facts, "cpu.quota_us").value == 50000
    assert _get(facts, "memory.oom_kills").value == 2
    assert facts.device_rules == ["c 1:3 rwm", "b *:* m"]
    assert facts.procs_files("devices") == [str(root / "devices/portique/c/cgroup.procs")]


def test_v2(tmp_path: Path) -> None:
    root, proc = tmp_path / "cg", tmp_path / "proc"
    _write(proc / "42/cgroup", "0::/portique/c\n")
    _write(root / "cgroup.controllers", "cpu memory pids\n")
    d = root / "portique/c"
    _write(d / "memory.max", "67108864\n")
    _write(d / "memory.swap.max", "max\n")
    _write(d / "cpu.max", "max 100000\n")
    _write(d / "pids.max", "20\n")
    _write(d / "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    _write(d / "cpu.stat", "usage_usec 1500\nuser_usec 1000\n")
    _write(d / "cgroup.events", "populated 1\nfrozen 1\n")
    facts = read_facts(42, root=root, proc=str(proc))
    assert facts.version == "v2"
    assert facts.paths == {"unified": str(d)}
    assert _get(facts, "memory.max").value == 64 << 20
    assert _get(facts, "memory.swap.max").value is None
    assert _get(facts, "cpu.quota_us").value is None
    assert _get(facts, "cpu.period_us").value == 100000
    assert _get(facts, "pids.max").value == 20
    assert _get(facts, "memory.oom_kills").value == 1
    assert _get(facts, "cpu.usage_ns").value == 1_500_000
    assert facts.frozen is True
    assert facts.device_rules is None
    assert facts.procs_files("devices") == [str(d / "cgroup.procs")]
