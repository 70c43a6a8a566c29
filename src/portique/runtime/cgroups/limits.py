"""The limits a process is under, read from its cgroup files (v1 or v2).

The managers (v1.py, v2.py) write limits for a container they created; this
reads what is in force for any process: its cgroups come from
/proc/<pid>/cgroup, the hierarchies from our own mountinfo, and each value
is returned with the file it was read from. The same names are used on both
versions ("memory.max" is memory.limit_in_bytes on v1), so that callers
compare and explain without caring which one the host runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from portique.linux import procinfo

from .base import DEFAULT_ROOT, detect, hierarchies

__all__ = ["CgroupFacts", "Value", "read_facts"]

# v1 writes "unlimited" as the largest page-aligned counter (PAGE_COUNTER_MAX
# pages), which varies with the page size: anything this large means none.
_V1_UNLIMITED = 1 << 62


@dataclass(frozen=True, slots=True)
class Value:
    """One number (None: no limit) as read from `source`."""

    name: str
    value: int | None
    raw: str
    source: str


@dataclass(frozen=True, slots=True)
class CgroupFacts:
    version: str  # "v1" or "v2"
    paths: dict[str, str]  # controller (v1) or "unified" (v2) -> directory
    limits: list[Value] = field(default_factory=list)
    usage: list[Value] = field(default_factory=list)
    device_rules: list[str] | None = None  # v1 devices.list; v2: an eBPF program
    frozen: bool = False
    cpuset: dict[str, str] = field(default_factory=dict)  # cpus, mems

    def get(self, name: str) -> Value | None:
        for v in (*self.limits, *self.usage):
            if v.name == name:
                return v
        return None

    def procs_files(self, controller: str) -> list[str]:
        """The cgroup.procs to write to join `controller`'s cgroup (v2: the one)."""
        d = self.paths.get(controller) or self.paths.get("unified")
        return [f"{d}/cgroup.procs"] if d else []


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _number(raw: str, *, v1: bool = False) -> int | None:
    if raw in ("max", "-1", ""):
        return None
    n = int(raw)
    return None if v1 and n >= _V1_UNLIMITED else n


def _keyed(raw: str | None, key: str) -> int | None:
    for line in (raw or "").splitlines():
        k, _, v = line.partition(" ")
        if k == key and v.strip().lstrip("-").isdigit():
            return int(v)
    return None


def read_facts(
    pid: int,
    *,
    root: Path = DEFAULT_ROOT,
    proc: str = "/proc",
    mountinfo: Path = Path("/proc/self/mountinfo"),
) -> CgroupFacts:
    entries = procinfo.cgroups(pid, proc)
    if detect(root) == "v2":
        return _v2(root, entries)
    return _v1(root, entries, mountinfo)


# ---------------------------------------------------------------- v1


def _v1(root: Path, entries: list[procinfo.CgroupEntry], mountinfo: Path) -> CgroupFacts:
    paths: dict[str, str] = {}
    for mountpoint, ctrls in hierarchies(root, mountinfo=mountinfo):
        for e in entries:
            if e.controllers and set(e.controllers) == set(ctrls):
                d = str(mountpoint / e.path.lstrip("/"))
                for c in ctrls:
                    paths[c] = d
    facts = CgroupFacts("v1", paths)

    def add(out: list[Value], name: str, ctrl: str, file: str, *, keyed: str = "") -> None:
        if ctrl not in paths:
            return
        path = Path(paths[ctrl]) / file
        raw = _read(path)
        if raw is None:
            return
        if keyed:
            number = _keyed(raw, keyed)
            raw = f"{keyed} {number}"
        else:
            number = _number(raw, v1=True) if raw.lstrip("-").isdigit() else None
        out.append(Value(name, number, raw, str(path)))

    lim, use = facts.limits, facts.usage
    add(lim, "memory.max", "memory", "memory.limit_in_bytes")
    add(lim, "memory+swap.max", "memory", "memory.memsw.limit_in_bytes")
    add(lim, "cpu.quota_us", "cpu", "cpu.cfs_quota_us")
    add(lim, "cpu.period_us", "cpu", "cpu.cfs_period_us")
    add(lim, "cpu.shares", "cpu", "cpu.shares")
    add(lim, "pids.max", "pids", "pids.max")
    add(lim, "io.weight", "blkio", "blkio.weight")
    for f in ("read_bps", "write_bps", "read_iops", "write_iops"):
        add(lim, f"io.{f}", "blkio", f"blkio.throttle.{f}_device")
    add(use, "memory.current", "memory", "memory.usage_in_bytes")
    add(use, "memory.peak", "memory", "memory.max_usage_in_bytes")
    add(use, "memory.oom_kills", "memory", "memory.oom_control", keyed="oom_kill")
    add(use, "pids.current", "pids", "pids.current")
    add(use, "cpu.usage_ns", "cpuacct", "cpuacct.usage")
    if "cpuset" in paths:
        for key in ("cpus", "mems"):
            facts.cpuset[key] = _read(Path(paths["cpuset"]) / f"cpuset.{key}") or ""
    if "devices" in paths:
        rules = _read(Path(paths["devices"]) / "devices.list")
        facts = _with(facts, device_rules=(rules or "").splitlines())
    if "freezer" in paths:
        facts = _with(facts, frozen=_read(Path(paths["freezer"]) / "freezer.state") == "FROZEN")
    return facts


# ---------------------------------------------------------------- v2


def _v2(root: Path, entries: list[procinfo.CgroupEntry]) -> CgroupFacts:
    unified = next((e.path for e in entries if e.hierarchy == 0 and not e.controllers), "/")
    d = root / unified.lstrip("/")
    facts = CgroupFacts("v2", {"unified": str(d)})

    def add(out: list[Value], name: str, file: str, *, keyed: str = "", scale: int = 1) -> None:
        raw = _read(d / file)
        if raw is None:
            return
        if keyed:
            number = _keyed(raw, keyed)
            raw = f"{keyed} {number}"
        else:
            number = _number(raw) if raw == "max" or raw.lstrip("-").isdigit() else None
        out.append(Value(name, None if number is None else number * scale, raw, str(d / file)))

    lim, use = facts.limits, facts.usage
    add(lim, "memory.max", "memory.max")
    add(lim, "memory.swap.max", "memory.swap.max")
    cpu_max = _read(d / "cpu.max")
    if cpu_max is not None:
        quota, _, period = cpu_max.partition(" ")
        lim.append(Value("cpu.quota_us", _number(quota), quota, str(d / "cpu.max")))
        lim.append(Value("cpu.period_us", _number(period), period, str(d / "cpu.max")))
    add(lim, "cpu.weight", "cpu.weight")
    add(lim, "pids.max", "pids.max")
    add(lim, "io.weight", "io.weight", keyed="default")
    io_max = _read(d / "io.max")
    if io_max is not None:
        lim.append(Value("io.max", None, io_max, str(d / "io.max")))
    add(use, "memory.current", "memory.current")
    add(use, "memory.peak", "memory.peak")
    add(use, "memory.oom_kills", "memory.events", keyed="oom_kill")
    add(use, "pids.current", "pids.current")
    add(use, "cpu.usage_ns", "cpu.stat", keyed="usage_usec", scale=1000)
    for key in ("cpus", "mems"):
        facts.cpuset[key] = _read(d / f"cpuset.{key}.effective") or ""
    events = _read(d / "cgroup.events") or ""
    return _with(facts, frozen=_keyed(events, "frozen") == 1)


def _with(facts: CgroupFacts, **changes: object) -> CgroupFacts:
    from dataclasses import replace

    return replace(facts, **changes)  # type: ignore[arg-type]
