"""The cgroup v2 driver: one directory in the unified hierarchy.

`plan(resources, has)` turns resources into the (file, value) writes, pure and
unit-tested; `V2Manager.apply` performs them.

Devices: v2 has no devices.allow; the device cgroup is an eBPF program
attached to the cgroup. devices_bpf.py compiles the rules and
`portique.linux.bpf.attach_device_filter(cgroup_fd, insns)` (the bpf(2)
syscall) attaches them, replacing the cgroup's earlier program.
"""

from __future__ import annotations

import os

from portique.errors import InvalidArgument, Unsupported

from .base import (
    CgroupError,
    blkio_to_io_weight,
    check_memory_update,
    mkdir_path,
    rdma_lines,
    read_file,
    read_int,
    read_keyed,
    read_pids,
    remove_tree,
    shares_to_weight,
    wait_for,
    write_file,
)

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    import logging
    import signal
    from collections.abc import Callable
    from pathlib import Path
    from typing import Final, Protocol

    from _typeshed import StrPath

    from portique.oci.resources import BlockIO, Cpu, LinuxResources, Memory
else:
    import _signal as signal  # the numbers and calls, without signal's enum wrappers

    Protocol = object  # a plain base at run time: importing typing costs every call


def _log() -> logging.Logger:
    # logging (and traceback, threading, string behind it) loads only when
    # there is something to say: `state`, `kill` and `delete` never need it.
    import logging

    return logging.getLogger(__name__)


FREEZE_TIMEOUT: Final = 10.0
UINT64_MAX: Final = 2**64 - 1


def _limit(v: int) -> str:
    return "max" if v < 0 else str(v)


def swap_max(memory: Memory) -> str | None:
    """OCI swap is memory+swap; v2 memory.swap.max is swap alone."""
    swap, limit = memory.swap, memory.limit
    if swap is None or swap == 0:
        return None
    if swap < 0:
        return "max"
    if limit is None or limit <= 0:
        raise InvalidArgument(
            "linux.resources.memory.swap: a swap limit needs memory.limit on cgroup v2"
        )
    if swap < limit:
        raise InvalidArgument("linux.resources.memory.swap: must be at least memory.limit")
    return str(swap - limit)


def _plan_memory(m: Memory, has: Callable[[str], bool]) -> list[tuple[str, str]]:
    out = []
    field = "linux.resources.memory"
    if m.limit is not None:
        out.append(("memory.max", _limit(m.limit)))
    if m.reservation is not None:
        out.append(("memory.low", _limit(m.reservation)))
    swap = swap_max(m)
    if swap is not None:
        if has("memory.swap.max"):
            out.append(("memory.swap.max", swap))
        elif swap != "max":
            raise Unsupported(
                f"{field}.swap: this kernel has no swap accounting (memory.swap.max is "
                "missing), so a swap limit cannot hold; leave swap out"
            )
    # What cgroup v2 has no file for is refused unless it asks for what the
    # kernel does anyway (crun and runc refuse these on v2 too).
    if m.swappiness is not None:
        raise Unsupported(f"{field}.swappiness: cgroup v2 has no per-cgroup swappiness")
    if m.disable_oom_killer:
        raise Unsupported(f"{field}.disableOOMKiller: cgroup v2 cannot disable the OOM killer")
    if m.kernel is not None and m.kernel != -1:
        raise Unsupported(f"{field}.kernel: cgroup v2 has no kernel memory limit")
    if m.kernel_tcp is not None and m.kernel_tcp != -1:
        raise Unsupported(f"{field}.kernelTCP: cgroup v2 has no kernel TCP memory limit")
    if m.use_hierarchy is False:
        raise Unsupported(
            f"{field}.useHierarchy: false is not supported: cgroup v2 is hierarchical"
        )
    return out


def _plan_cpu(c: Cpu) -> list[tuple[str, str]]:
    out = []
    if c.shares is not None:
        out.append(("cpu.weight", str(shares_to_weight(c.shares))))
    if c.quota is not None or c.period is not None:
        quota = "max" if c.quota is None or c.quota <= 0 else str(c.quota)
        out.append(("cpu.max", quota if c.period is None else f"{quota} {c.period}"))
    if c.burst is not None:
        out.append(("cpu.max.burst", str(c.burst)))
    if c.idle is not None:
        out.append(("cpu.idle", str(c.idle)))
    if c.realtime_runtime or c.realtime_period:
        raise Unsupported("linux.resources.cpu.realtimeRuntime: not supported on cgroup v2")
    if c.cpus:
        out.append(("cpuset.cpus", c.cpus))
    if c.mems:
        out.append(("cpuset.mems", c.mems))
    return out


def _plan_io(b: BlockIO, has: Callable[[str], bool]) -> list[tuple[str, str]]:
    out = []
    if b.leaf_weight is not None or any(wd.leaf_weight for wd in b.weight_device):
        raise Unsupported("linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weights")
    # BFQ takes the v1 range [1, 1000] unchanged; io.weight (iocost) needs [1, 10000].
    bfq = has("io.bfq.weight")
    if b.weight is not None:
        out.append(
            ("io.bfq.weight", str(b.weight))
            if bfq
            else ("io.weight", str(blkio_to_io_weight(b.weight)))
        )
    for wd in b.weight_device:
        if wd.weight:
            w = wd.weight if bfq else blkio_to_io_weight(wd.weight)
            out.append(("io.bfq.weight" if bfq else "io.weight", f"{wd.major}:{wd.minor} {w}"))
    for key, devices in (
        ("rbps", b.throttle_read_bps_device),
        ("wbps", b.throttle_write_bps_device),
        ("riops", b.throttle_read_iops_device),
        ("wiops", b.throttle_write_iops_device),
    ):
        out.extend(
            ("io.max", f"{d.major}:{d.minor} {key}={d.rate if d.rate else 'max'}") for d in devices
        )
    return out


def plan(resources: LinuxResources, has: Callable[[str], bool]) -> list[tuple[str, str]]:
    """The (file, value) writes for `resources`, in order; `has(file)` tells what exists."""
    out: list[tuple[str, str]] = []
    if resources.memory is not None:
        out.extend(_plan_memory(resources.memory, has))
    if resources.cpu is not None:
        out.extend(_plan_cpu(resources.cpu))
    if resources.pids is not None and resources.pids.limit != 0:
        out.append(("pids.max", _limit(resources.pids.limit)))
    if resources.block_io is not None:
        out.extend(_plan_io(resources.block_io, has))
    out.extend((f"hugetlb.{h.page_size}.max", str(h.limit)) for h in resources.hugepage_limits)
    if resources.network is not None and (
        resources.network.class_id is not None or resources.network.priorities
    ):
        raise Unsupported("linux.resources.network: net_cls and net_prio exist on cgroup v1 only")
    if resources.rdma:
        out.extend(("rdma.max", line) for line in rdma_lines(resources.rdma))
    # unified comes last: an explicit key overrides what the typed fields wrote.
    out.extend(resources.unified)
    return out


class DeviceFilterLoader(Protocol):
    """Attach a BPF_PROG_TYPE_CGROUP_DEVICE program to a cgroup, replacing the
    device programs attached to that cgroup before (so updates can widen)."""

    def attach_device_filter(self, cgroup_fd: int, insns: bytes) -> None: ...


def _kernel_loader() -> DeviceFilterLoader:
    from portique.linux import bpf

    loader: DeviceFilterLoader = bpf
    return loader


class V2Manager:
    """A container's cgroup at `root`/`path` on a cgroup2 mount."""

    version = "v2"

    def __init__(
        self, path: str, root: StrPath, *, devices: DeviceFilterLoader | None = None
    ) -> None:
        self.path = path
        self.root = root
        # Text, not a Path: see base.py (`dir` gives the Path).
        self._dir = os.path.join(root, path.lstrip("/"))
        self._devices = devices

    @property
    def dir(self) -> Path:
        from pathlib import Path

        return Path(self._dir)

    # ------------------------------------------------------------ lifecycle

    def create(self) -> None:
        # Top down: a parent must hand its controllers to its children before
        # the child exists for them to show up in the child's cgroup.controllers.
        parent = os.fspath(self.root)
        for part in self.path.strip("/").split("/"):
            _enable_controllers(parent)
            mkdir_path(parent, part)
            parent = os.path.join(parent, part)

    def apply(self, resources: LinuxResources | None) -> None:
        if resources is None:
            return
        check_memory_update(resources, self._dir, "memory.current")
        for name, value in plan(resources, lambda f: os.path.exists(os.path.join(self._dir, f))):
            if not os.path.exists(os.path.join(self._dir, name)):
                raise CgroupError(
                    f"cannot write {name} in {self._dir}: no such file "
                    "(controller not enabled or not supported by this kernel)"
                )
            write_file(self._dir, name, value)
        if resources.devices and not _in_user_namespace():
            self._apply_devices(resources)

    def _apply_devices(self, resources: LinuxResources) -> None:
        from .devices_bpf import compile_rules

        loader = self._devices or _kernel_loader()
        insns = compile_rules(resources.devices)
        fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            loader.attach_device_filter(fd, insns)
        except OSError as e:
            raise CgroupError(
                f"cannot attach the device filter to {self._dir}: {e.strerror}"
            ) from None
        finally:
            os.close(fd)

    def add_process(self, pid: int) -> None:
        write_file(self._dir, "cgroup.procs", str(pid))

    def join(self) -> None:
        # cgroup.threads would skip the global lock as v1's tasks does, but
        # a domain cgroup refuses thread moves: move the process.
        write_file(self._dir, "cgroup.procs", "0")

    def destroy(self) -> None:
        remove_tree(self._dir)

    def exists(self) -> bool:
        return os.path.isdir(self._dir)

    def dirs(self) -> dict[str, Path]:
        return {"": self.dir}

    def dir_texts(self) -> dict[str, str]:
        return {"": self._dir}

    # ------------------------------------------------------------ freezer

    def freeze(self) -> None:
        self._need_freezer()
        write_file(self._dir, "cgroup.freeze", "1")
        # Freezing is asynchronous: cgroup.events says when every task stopped.
        if not wait_for(self.is_frozen, FREEZE_TIMEOUT):
            write_file(self._dir, "cgroup.freeze", "0")
            raise CgroupError(f"cannot freeze {self._dir}: tasks did not stop in time")

    def thaw(self) -> None:
        self._need_freezer()
        write_file(self._dir, "cgroup.freeze", "0")
        if not wait_for(lambda: not self.is_frozen(), FREEZE_TIMEOUT):
            raise CgroupError(f"cannot thaw {self._dir}: still frozen")

    def is_frozen(self) -> bool:
        return read_keyed(self._dir, "cgroup.events").get("frozen", 0) == 1

    def _need_freezer(self) -> None:
        if not os.path.exists(os.path.join(self._dir, "cgroup.freeze")):
            raise Unsupported(f"cgroup freezer missing in {self._dir} (kernel older than 5.2)")

    # ------------------------------------------------------------ processes

    def pids(self) -> list[int]:
        return read_pids(self._dir)

    def kill_all(self, sig: int) -> None:
        if sig == signal.SIGKILL and os.path.exists(os.path.join(self._dir, "cgroup.kill")):
            # Atomic against forks racing the walk (kernel >= 5.14).
            write_file(self._dir, "cgroup.kill", "1")
            return
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def oom_kill_count(self) -> int:
        return read_keyed(self._dir, "memory.events").get("oom_kill", 0)

    # ------------------------------------------------------------ stats

    def stats(self) -> dict[str, object]:
        """runc's `events --stats` data: cpu, memory, pids, blkio (v2 files mapped)."""
        d = self._dir
        cpu = read_keyed(d, "cpu.stat")
        mem_raw = read_keyed(d, "memory.stat")
        mem_events = read_keyed(d, "memory.events")
        usage = read_int(d, "memory.current")
        limit = read_int(d, "memory.max", -1)
        swap_usage = read_int(d, "memory.swap.current")
        swap_limit = read_int(d, "memory.swap.max", -1)
        pids_limit = read_int(d, "pids.max", -1)
        return {
            "cpu": {
                "usage": {
                    "total": cpu.get("usage_usec", 0) * 1000,
                    "kernel": cpu.get("system_usec", 0) * 1000,
                    "user": cpu.get("user_usec", 0) * 1000,
                },
                "throttling": {
                    "periods": cpu.get("nr_periods", 0),
                    "throttledPeriods": cpu.get("nr_throttled", 0),
                    "throttledTime": cpu.get("throttled_usec", 0) * 1000,
                },
            },
            "memory": {
                "cache": mem_raw.get("file", 0),
                "usage": {
                    "usage": usage,
                    "max": read_int(d, "memory.peak", usage),
                    "limit": UINT64_MAX if limit < 0 else limit,
                    "failcnt": mem_events.get("max", 0),
                },
                # runc reports memory+swap here, as v1's memsw does.
                "swap": {
                    "usage": usage + swap_usage,
                    "limit": UINT64_MAX if swap_limit < 0 or limit < 0 else limit + swap_limit,
                    "failcnt": 0,
                },
                "raw": mem_raw,
            },
            "pids": {
                "current": read_int(d, "pids.current"),
                "limit": 0 if pids_limit < 0 else pids_limit,
            },
            "blkio": _io_stats(d),
            "hugetlb": {},
        }


def _io_stats(d: str) -> dict[str, list[dict[str, object]]]:
    nbytes: list[dict[str, object]] = []
    nios: list[dict[str, object]] = []
    try:
        text = read_file(d, "io.stat")
    except CgroupError:
        text = ""
    for line in text.splitlines():
        dev, *pairs = line.split()
        major, _, minor = dev.partition(":")
        if not (major.isdigit() and minor.isdigit()):
            continue
        kv = dict(p.split("=", 1) for p in pairs if "=" in p)
        for key, op, dest in (
            ("rbytes", "Read", nbytes),
            ("wbytes", "Write", nbytes),
            ("rios", "Read", nios),
            ("wios", "Write", nios),
        ):
            if kv.get(key, "").isdigit():
                dest.append(
                    {"major": int(major), "minor": int(minor), "op": op, "value": int(kv[key])}
                )
    return {"ioServiceBytesRecursive": nbytes, "ioServicedRecursive": nios}


def _in_user_namespace() -> bool:
    """A rootless caller may not load a device program (BPF needs the initial
    namespace's CAP_SYS_ADMIN); it needs none: its user namespace cannot
    make device nodes, only bind the host's, which their permissions guard
    (runc's rootless mode does the same)."""
    from portique.linux.ns import in_user_namespace

    return in_user_namespace()


def _enable_controllers(directory: str) -> None:
    """Let `directory`'s children use every controller it has (cgroup.subtree_control).

    One read of each file on the fast path (already enabled). If one write of
    all of them fails (EBUSY: a controller such as cpu cannot be enabled while
    the cgroup holds realtime tasks or processes), enable them one by one and
    let apply() report the one that matters.
    """
    available = read_file(directory, "cgroup.controllers").split()
    enabled = set(read_file(directory, "cgroup.subtree_control").split())
    missing = [c for c in available if c not in enabled]
    if not missing:
        return
    try:
        write_file(directory, "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
    except CgroupError:
        for c in missing:
            try:
                write_file(directory, "cgroup.subtree_control", f"+{c}")
            except CgroupError as e:
                _log().debug("%s", e)
