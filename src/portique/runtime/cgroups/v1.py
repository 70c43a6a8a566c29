"""The cgroup v1 driver: one directory per mounted hierarchy.

`plan(resources, has)` turns resources into (controller, file, value) writes,
pure and unit-tested; `V1Manager.apply` performs them in the directory of the
hierarchy that carries the controller. Named hierarchies (name=systemd) get a
directory too, so the container's /proc/self/cgroup names its own path
everywhere.

Swap: OCI `memory.swap` is the memory+swap total, which is exactly
memory.memsw.limit_in_bytes. A kernel without swap accounting has no memsw
files: a swap limit is then refused (runc warns and drops it; the spec says
a value that cannot be honoured MUST be an error), and -1 (unlimited) is
what such a kernel does anyway.

Everything else the spec defines and this host cannot do is refused the
same way, naming the field: kernel memory limits (no longer enforced by
Linux), net_cls/net_prio and rdma without their controller, CFQ's leaf
weights on blk-mq kernels, useHierarchy false. memory.kernelTCP is
memory.kmem.tcp.limit_in_bytes.
"""

from __future__ import annotations

import os

from portique.errors import InvalidArgument, Unsupported

from .base import (
    MOUNTINFO,
    CgroupError,
    check_memory_update,
    mkdir_path,
    mounted_hierarchies,
    rdma_lines,
    read_file,
    read_int,
    read_keyed,
    read_pids,
    remove_tree,
    wait_for,
    write_file,
    write_lines,
)

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    import logging
    import signal
    from collections.abc import Callable
    from pathlib import Path
    from typing import Final

    from _typeshed import StrPath

    from portique.oci.resources import BlockIO, Cpu, LinuxResources, Memory, Network
else:
    import _signal as signal  # the numbers and calls, without signal's enum wrappers


def _log() -> logging.Logger:
    # logging (and traceback, threading, string behind it) loads only when
    # there is something to say: `state`, `kill` and `delete` never need it.
    import logging

    return logging.getLogger(__name__)


FREEZE_TIMEOUT: Final = 10.0
MEMSW: Final = "memory.memsw.limit_in_bytes"

Write = tuple[str, str, str]  # (controller, file, value)


def _plan_memory(m: Memory, has: Callable[[str, str], bool]) -> list[Write]:
    out: list[Write] = []
    field = "linux.resources.memory"
    swap = m.swap
    if swap is None and m.limit == -1:
        # Lifting the memory limit must lift memsw too, or memsw stays the cap.
        swap = -1
    if swap is not None and swap != 0 and not has("memory", MEMSW):
        if swap > 0:
            raise Unsupported(
                f"{field}.swap: this kernel has no swap accounting ({MEMSW} is missing), "
                "so a swap limit cannot hold; boot with swapaccount=1 or leave swap out"
            )
        swap = None  # unlimited is what a kernel without accounting gives anyway
    if m.limit is not None:
        out.append(("memory", "memory.limit_in_bytes", str(m.limit)))
    if swap is not None and swap != 0:
        # memsw >= memory is a kernel invariant; apply() swaps the order of
        # these two writes when raising a limit above the current memsw.
        out.append(("memory", MEMSW, str(swap)))
    if m.reservation is not None:
        out.append(("memory", "memory.soft_limit_in_bytes", str(m.reservation)))
    if m.swappiness is not None:
        out.append(("memory", "memory.swappiness", str(m.swappiness)))
    if m.disable_oom_killer is not None:
        out.append(("memory", "memory.oom_control", "1" if m.disable_oom_killer else "0"))
    out.extend(_plan_kernel_memory(m, has))
    if m.use_hierarchy is False:
        # Linux 5.x made every v1 memory cgroup hierarchical (writing 0 to
        # memory.use_hierarchy is EINVAL): true is what it does anyway.
        raise Unsupported(f"{field}.useHierarchy: false is not supported by this kernel")
    return out


def _plan_kernel_memory(m: Memory, has: Callable[[str, str], bool]) -> list[Write]:
    field = "linux.resources.memory"
    if m.kernel is not None and m.kernel != -1:
        # Since Linux 5.16 memory.kmem.limit_in_bytes takes a write and
        # ignores it (kernel memory is charged to the memory limit).
        raise Unsupported(
            f"{field}.kernel: kernel memory limits are not enforced by this kernel; "
            "leave it out (memory.limit covers kernel memory)"
        )
    if m.kernel_tcp is None:
        return []
    tcp = "memory.kmem.tcp.limit_in_bytes"
    if not has("memory", tcp):
        raise Unsupported(f"{field}.kernelTCP: this kernel has no {tcp}")
    return [("memory", tcp, str(m.kernel_tcp))]


def _plan_cpu(c: Cpu) -> list[Write]:
    out: list[Write] = []
    if c.shares is not None:
        out.append(("cpu", "cpu.shares", str(c.shares)))
    # Period before quota: the kernel checks quota against the current period.
    if c.period is not None:
        out.append(("cpu", "cpu.cfs_period_us", str(c.period)))
    if c.quota is not None and c.quota != 0:
        out.append(("cpu", "cpu.cfs_quota_us", str(c.quota if c.quota > 0 else -1)))
    if c.burst is not None:
        out.append(("cpu", "cpu.cfs_burst_us", str(c.burst)))
    if c.realtime_period:
        out.append(("cpu", "cpu.rt_period_us", str(c.realtime_period)))
    if c.realtime_runtime:
        out.append(("cpu", "cpu.rt_runtime_us", str(c.realtime_runtime)))
    if c.idle is not None:
        out.append(("cpu", "cpu.idle", str(c.idle)))
    if c.cpus:
        out.append(("cpuset", "cpuset.cpus", c.cpus))
    if c.mems:
        out.append(("cpuset", "cpuset.mems", c.mems))
    return out


def _plan_blkio(b: BlockIO, has: Callable[[str, str], bool]) -> list[Write]:
    out: list[Write] = []
    field = "linux.resources.blockIO"
    # CFQ's blkio.weight is gone from blk-mq kernels; BFQ offers blkio.bfq.weight.
    cfq = has("blkio", "blkio.weight")
    weight_file = "blkio.weight" if cfq else "blkio.bfq.weight"
    if b.weight is not None:
        out.append(("blkio", weight_file, str(b.weight)))
    leaf = has("blkio", "blkio.leaf_weight")
    if b.leaf_weight is not None:
        if not leaf:
            raise Unsupported(f"{field}.leafWeight: this kernel has no blkio.leaf_weight (CFQ)")
        out.append(("blkio", "blkio.leaf_weight", str(b.leaf_weight)))
    for i, wd in enumerate(b.weight_device):
        if wd.weight:
            name = "blkio.weight_device" if cfq else "blkio.bfq.weight"
            out.append(("blkio", name, f"{wd.major}:{wd.minor} {wd.weight}"))
        if wd.leaf_weight:
            if not leaf:
                raise Unsupported(
                    f"{field}.weightDevice[{i}].leafWeight: this kernel has no "
                    "blkio.leaf_weight_device (CFQ)"
                )
            out.append(
                ("blkio", "blkio.leaf_weight_device", f"{wd.major}:{wd.minor} {wd.leaf_weight}")
            )
    for name, devices in (
        ("blkio.throttle.read_bps_device", b.throttle_read_bps_device),
        ("blkio.throttle.write_bps_device", b.throttle_write_bps_device),
        ("blkio.throttle.read_iops_device", b.throttle_read_iops_device),
        ("blkio.throttle.write_iops_device", b.throttle_write_iops_device),
    ):
        out.extend(("blkio", name, f"{d.major}:{d.minor} {d.rate}") for d in devices)
    return out


def _plan_network(n: Network, has: Callable[[str, str], bool]) -> list[Write]:
    out: list[Write] = []
    field = "linux.resources.network"
    if n.class_id is not None:
        if not has("net_cls", "net_cls.classid"):
            raise Unsupported(
                f"{field}.classID: needs the net_cls cgroup controller, "
                "which this host does not mount"
            )
        out.append(("net_cls", "net_cls.classid", str(n.class_id)))
    if n.priorities and not has("net_prio", "net_prio.ifpriomap"):
        raise Unsupported(
            f"{field}.priorities: needs the net_prio cgroup controller, "
            "which this host does not mount"
        )
    # One interface per write: the kernel parses a single "name prio" line.
    out.extend(("net_prio", "net_prio.ifpriomap", f"{name} {prio}") for name, prio in n.priorities)
    return out


def plan(resources: LinuxResources, has: Callable[[str, str], bool]) -> list[Write]:
    """The writes for `resources`, in order; `has(controller, file)` says what exists."""
    if resources.unified:
        key = resources.unified[0][0]
        raise InvalidArgument(
            f"linux.resources.unified.{key}: needs cgroup v2, and this host uses cgroup v1"
        )
    out: list[Write] = [
        ("devices", "devices.allow" if r.allow else "devices.deny", r.v1_line())
        for r in resources.devices
    ]
    if resources.memory is not None:
        out.extend(_plan_memory(resources.memory, has))
    if resources.cpu is not None:
        out.extend(_plan_cpu(resources.cpu))
    if resources.pids is not None and resources.pids.limit != 0:
        limit = resources.pids.limit
        out.append(("pids", "pids.max", "max" if limit < 0 else str(limit)))
    if resources.block_io is not None:
        out.extend(_plan_blkio(resources.block_io, has))
    out.extend(
        ("hugetlb", f"hugetlb.{h.page_size}.limit_in_bytes", str(h.limit))
        for h in resources.hugepage_limits
    )
    if resources.network is not None:
        out.extend(_plan_network(resources.network, has))
    if resources.rdma:
        if not has("rdma", "rdma.max"):
            raise Unsupported(
                "linux.resources.rdma: needs the rdma cgroup controller, "
                "which this host does not mount"
            )
        out.extend(("rdma", "rdma.max", line) for line in rdma_lines(resources.rdma))
    return out


class V1Manager:
    """A container's cgroup: `path` under every v1 hierarchy mounted below `root`."""

    version = "v1"

    def __init__(self, path: str, root: StrPath, *, mountinfo: StrPath = MOUNTINFO) -> None:
        self.path = path
        self.root = root
        rel = path.lstrip("/")
        # Text, not Paths: see base.py (dirs() gives Paths).
        self._hier = mounted_hierarchies(root, mountinfo)
        self._dirs = {mp: os.path.join(mp, rel) for mp, _ in self._hier}
        self._by_ctrl = {c: os.path.join(mp, rel) for mp, ctrls in self._hier for c in ctrls}

    def _dir(self, controller: str) -> str:
        try:
            return self._by_ctrl[controller]
        except KeyError:
            raise CgroupError(
                f"the {controller} cgroup controller is not mounted under {self.root}"
            ) from None

    # ------------------------------------------------------------ lifecycle

    def create(self) -> None:
        for mp, ctrls in list(self._hier):
            try:
                made = mkdir_path(mp, self.path)
            except CgroupError:
                if not all(c.startswith("name=") for c in ctrls):
                    raise
                # A named hierarchy (name=systemd) limits nothing; when it is
                # read-only (a nested runtime), go on without it.
                _log().debug("skipping read-only hierarchy %s", mp)
                self._hier.remove((mp, ctrls))
                del self._dirs[mp]
                continue
            if "cpuset" in ctrls:
                _init_cpuset(mp, made)

    def apply(self, resources: LinuxResources | None) -> None:
        if resources is None:
            return
        if "memory" in self._by_ctrl:
            check_memory_update(resources, self._by_ctrl["memory"], "memory.usage_in_bytes")
        writes = plan(
            resources,
            lambda c, f: c in self._by_ctrl and os.path.exists(os.path.join(self._by_ctrl[c], f)),
        )
        i = 0
        while i < len(writes):
            ctrl, name, value = writes[i]
            d = self._dir(ctrl)
            nxt = writes[i + 1] if i + 1 < len(writes) else None
            if name == "memory.limit_in_bytes" and nxt is not None and nxt[1] == MEMSW:
                _write_memory_pair(d, value, nxt[2])
                i += 2
                continue
            if name in ("devices.allow", "devices.deny"):
                # One rule per write(2), so a run of rules for the same file
                # (the device list: a dozen and more) shares one open.
                j = i + 1
                while j < len(writes) and writes[j][:2] == (ctrl, name):
                    j += 1
                write_lines(d, name, [w[2] for w in writes[i:j]])
                i = j
                continue
            write_file(d, name, value)
            i += 1

    def add_process(self, pid: int) -> None:
        for d in self._dirs.values():
            write_file(d, "cgroup.procs", str(pid))

    def join(self) -> None:
        # "0" to `tasks` moves the calling thread, the whole process when it
        # has one thread (a freshly forked runtime child). Since Linux 5.17
        # ("cgroup: Optimize single thread migration") that move skips the
        # global threadgroup lock, whose RCU grace period made the first
        # cgroup.procs write of every start cost 7-18 ms here (~1 ms now).
        for d in self._dirs.values():
            write_file(d, "tasks", "0")

    def destroy(self) -> None:
        errors = []
        for d in self._dirs.values():
            try:
                remove_tree(d)
            except CgroupError as e:
                errors.append(e)
        if errors:
            raise errors[0]

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._dirs.values())

    def dirs(self) -> dict[str, Path]:
        from pathlib import Path

        return {mp: Path(d) for mp, d in self._dirs.items()}

    def dir_texts(self) -> dict[str, str]:
        return dict(self._dirs)

    # ------------------------------------------------------------ freezer

    def freeze(self) -> None:
        d = self._dir("freezer")
        write_file(d, "freezer.state", "FROZEN")

        def frozen() -> bool:
            state = read_file(d, "freezer.state").strip()
            if state == "THAWED":
                # A racing thaw or a task that escaped: ask again.
                write_file(d, "freezer.state", "FROZEN")
            return state == "FROZEN"

        if not wait_for(frozen, FREEZE_TIMEOUT):
            write_file(d, "freezer.state", "THAWED")
            raise CgroupError(f"cannot freeze {d}: tasks did not stop in time")

    def thaw(self) -> None:
        d = self._dir("freezer")
        write_file(d, "freezer.state", "THAWED")
        if not wait_for(lambda: read_file(d, "freezer.state").strip() == "THAWED", FREEZE_TIMEOUT):
            raise CgroupError(f"cannot thaw {d}: still frozen")

    def is_frozen(self) -> bool:
        d = self._by_ctrl.get("freezer")
        if d is None or not os.path.isdir(d):
            return False
        return read_file(d, "freezer.state").strip() == "FROZEN"

    # ------------------------------------------------------------ processes

    def _procs_dir(self) -> str:
        for ctrl in ("freezer", "pids", "memory", "cpu"):
            if ctrl in self._by_ctrl:
                return self._by_ctrl[ctrl]
        return next(iter(self._dirs.values()))

    def pids(self) -> list[int]:
        return read_pids(self._procs_dir())

    def kill_all(self, sig: int) -> None:
        # Freeze first so that no task forks a child the walk misses, then
        # thaw so that the signal is delivered (a frozen task cannot even die).
        # A container that was paused stays paused, unless it is being killed.
        can_freeze = "freezer" in self._by_ctrl and os.path.isdir(self._by_ctrl["freezer"])
        was_frozen = can_freeze and self.is_frozen()
        if can_freeze:
            self.freeze()
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if can_freeze and (not was_frozen or sig == signal.SIGKILL):
                self.thaw()

    def oom_kill_count(self) -> int:
        d = self._by_ctrl.get("memory")
        return 0 if d is None else read_keyed(d, "memory.oom_control").get("oom_kill", 0)

    # ------------------------------------------------------------ stats

    def stats(self) -> dict[str, object]:
        """runc's `events --stats` data from the v1 files."""
        out: dict[str, object] = {
            "cpu": self._cpu_stats(),
            "memory": self._memory_stats(),
            "pids": {},
            "blkio": {},
            "hugetlb": {},
        }
        if "pids" in self._by_ctrl:
            d = self._by_ctrl["pids"]
            limit = read_int(d, "pids.max", -1)
            out["pids"] = {"current": read_int(d, "pids.current"), "limit": max(limit, 0)}
        if "blkio" in self._by_ctrl:
            d = self._by_ctrl["blkio"]
            out["blkio"] = {
                "ioServiceBytesRecursive": _blkio_entries(
                    d, "blkio.throttle.io_service_bytes_recursive"
                ),
                "ioServicedRecursive": _blkio_entries(d, "blkio.throttle.io_serviced_recursive"),
            }
        return out

    def _cpu_stats(self) -> dict[str, object]:
        usage: dict[str, object] = {}
        if "cpuacct" in self._by_ctrl:
            d = self._by_ctrl["cpuacct"]
            ticks = read_keyed(d, "cpuacct.stat")
            # cpuacct.stat counts USER_HZ ticks; runc reports nanoseconds.
            ns_per_tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
            try:
                percpu = [int(x) for x in read_file(d, "cpuacct.usage_percpu").split()]
            except CgroupError:
                percpu = []
            usage = {
                "total": read_int(d, "cpuacct.usage"),
                "percpu": percpu,
                "kernel": ticks.get("system", 0) * ns_per_tick,
                "user": ticks.get("user", 0) * ns_per_tick,
            }
        throttling: dict[str, object] = {}
        if "cpu" in self._by_ctrl:
            st = read_keyed(self._by_ctrl["cpu"], "cpu.stat")
            throttling = {
                "periods": st.get("nr_periods", 0),
                "throttledPeriods": st.get("nr_throttled", 0),
                "throttledTime": st.get("throttled_time", 0),
            }
        return {"usage": usage, "throttling": throttling}

    def _memory_stats(self) -> dict[str, object]:
        if "memory" not in self._by_ctrl:
            return {}
        d = self._by_ctrl["memory"]

        def entry(prefix: str) -> dict[str, int]:
            return {
                "usage": read_int(d, f"{prefix}.usage_in_bytes"),
                "max": read_int(d, f"{prefix}.max_usage_in_bytes"),
                "limit": read_int(d, f"{prefix}.limit_in_bytes"),
                "failcnt": read_int(d, f"{prefix}.failcnt"),
            }

        raw = read_keyed(d, "memory.stat")
        return {
            "cache": raw.get("total_cache", raw.get("cache", 0)),
            "usage": entry("memory"),
            "swap": entry("memory.memsw"),
            "kernel": entry("memory.kmem"),
            "raw": raw,
        }


def _blkio_entries(d: str, name: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    try:
        text = read_file(d, name)
    except CgroupError:
        return out
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 3:
            continue  # the "Total N" line
        dev, op, value = fields
        major, _, minor = dev.partition(":")
        if major.isdigit() and minor.isdigit() and value.isdigit():
            out.append({"major": int(major), "minor": int(minor), "op": op, "value": int(value)})
    return out


def _init_cpuset(mountpoint: str, made: list[str]) -> None:
    """A new v1 cpuset starts with empty cpus and mems, and takes no task until
    they are set: copy them down from the parent, top first."""
    parent = mountpoint
    # What each level holds, as read or written, is the next level's parent
    # value: each file is read once per level.
    known: dict[str, str] = {}
    for d in made:
        for name in ("cpuset.cpus", "cpuset.mems"):
            value = read_file(d, name).strip()
            if not value:
                value = known.get(name) or read_file(parent, name).strip()
                write_file(d, name, value)
            known[name] = value
        parent = d


def _write_memory_pair(d: str, limit: str, memsw: str) -> None:
    """memory.limit_in_bytes must stay <= memory.memsw.limit_in_bytes at every
    step: lowering writes memory first, raising writes memsw first. The current
    memsw decides which, and -1 (unlimited) sorts highest."""

    def as_int(v: str) -> int:
        n = int(v)
        return 2**63 if n < 0 else n

    current = read_int(d, MEMSW, -1)
    current = 2**63 if current < 0 or current >= 2**63 - 4096 else current
    if as_int(limit) > current:
        write_file(d, MEMSW, memsw)
        write_file(d, "memory.limit_in_bytes", limit)
    else:
        write_file(d, "memory.limit_in_bytes", limit)
        write_file(d, MEMSW, memsw)
