"""The report of `portique explain`: plain values, and their JSON form.

The JSON document (`--format json`) is these classes field by field
(`to_json`), with `schema_version` first; docs/explain.md describes every
field. Compatible additions keep the version; a renamed or removed field, or
a changed meaning, bumps it.

Every fact carries `source`: the file (or kernel interface) it was read
from, e.g. "/proc/4242/ns/pid". Errno values are names ("EPERM"), "ok" for
success, "SIGSYS" for a process killed by that signal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Target:
    id: str
    name: str
    runtime: str  # "portique" (engine) or "portique-runtime"
    status: str
    pid: int  # the container's first process, as the host numbers it
    reference_pid: int  # the process whose namespaces stand for "the host"
    reference_note: str  # why that process (PID 1, or ourselves when PID 1 is out of reach)


@dataclass(frozen=True, slots=True)
class Kernel:
    release: str
    release_source: str
    boot_id: str
    boot_id_source: str
    container_boot_id: str  # read through the container's own /proc ("" if unreadable)
    container_boot_id_source: str
    same_kernel: bool


@dataclass(frozen=True, slots=True)
class IdRange:
    inside: int
    outside: int
    count: int


@dataclass(frozen=True, slots=True)
class Namespace:
    type: str  # cgroup ipc mnt net pid time user uts
    inode: int
    host_inode: int
    shared: bool  # the same namespace as the reference process
    source: str
    reference: str


@dataclass(frozen=True, slots=True)
class Namespaces:
    items: list[Namespace]
    uid_map: list[IdRange]
    gid_map: list[IdRange]
    uid_map_source: str
    gid_map_source: str

    def get(self, kind: str) -> Namespace:
        return next(n for n in self.items if n.type == kind)


@dataclass(frozen=True, slots=True)
class Process:
    host_pid: int
    container_pid: int | None  # None when it has no number in the container's pid namespace
    nspid: list[int]  # NSpid: its number in each pid namespace, outermost first
    parent_host_pid: int
    host_uid: int
    command: str
    source: str


@dataclass(frozen=True, slots=True)
class Processes:
    pid_ns_shared: bool
    items: list[Process]
    visible: int  # how many processes the container can see in its /proc
    source: str


@dataclass(frozen=True, slots=True)
class Mount:
    target: str
    fstype: str
    source: str  # the mount's source as mountinfo says ("overlay", "/dev/vda", "proc")
    root: str  # the path mounted from inside the source file system
    host_path: str  # where that is on the host ("" when not a host directory)
    options: list[str]
    super_options: list[str]
    read_only: bool
    kind: str  # root, bind, volume, engine-file, masked, proc, sysfs, tmpfs, devpts, ...


@dataclass(frozen=True, slots=True)
class RootFs:
    fstype: str
    read_only: bool
    lower: list[str]
    upper: str
    work: str
    source: str


@dataclass(frozen=True, slots=True)
class Masked:
    path: str
    how: str  # "null-device" (a file) or "empty-tmpfs" (a directory)


@dataclass(frozen=True, slots=True)
class Filesystem:
    root: RootFs
    mounts: list[Mount]
    masked: list[Masked]
    unmasked: list[str]  # Docker's masked paths that are visible here
    read_only: list[str]  # read-only mounts under /proc and /sys, and /sys itself
    sys_writable: bool
    volumes: list[Mount]
    source: str


@dataclass(frozen=True, slots=True)
class Value:
    name: str
    value: int | None  # None: no limit
    raw: str
    source: str


@dataclass(frozen=True, slots=True)
class Resources:
    cgroup_version: str
    cgroup_paths: dict[str, str]
    limits: list[Value]
    usage: list[Value]
    cpuset: dict[str, str]
    frozen: bool
    source: str

    def get(self, name: str) -> Value | None:
        return next((v for v in (*self.limits, *self.usage) if v.name == name), None)


@dataclass(frozen=True, slots=True)
class Ids:
    real: int
    effective: int
    saved: int
    filesystem: int


@dataclass(frozen=True, slots=True)
class SyscallCheck:
    name: str
    call: str
    grants: str
    verdict: str  # denied, allowed, unknown (the kernel refuses it anyway), absent
    with_filter: str  # errno name under the container's filters
    without_filter: str  # errno name with no filter


@dataclass(frozen=True, slots=True)
class DeviceCheck:
    device: str  # "c 1:1"
    name: str
    verdict: str  # allowed, denied, unknown
    open_in_container_cgroup: str  # errno name of open() inside the container's cgroup
    open_outside: str  # the same open() from our own cgroup
    mknod: str  # mknod() inside the container's cgroup


@dataclass(frozen=True, slots=True)
class DeviceNode:
    path: str
    kind: str  # "c" or "b"
    major: int
    minor: int


@dataclass(frozen=True, slots=True)
class Probe:
    ran: bool
    filter_source: str  # "kernel" (copied with ptrace) or "config.json"; "" if no filter
    error: str


@dataclass(frozen=True, slots=True)
class Privileges:
    host_uid: Ids
    host_gid: Ids
    uid: Ids  # inside the container's user namespace
    gid: Ids
    host_groups: list[int]
    groups: list[int]
    capabilities: dict[str, list[str]]  # effective, permitted, inheritable, bounding, ambient
    no_new_privs: bool
    seccomp_mode: str  # disabled, strict, filter
    seccomp_filters: int
    lsm_label: str
    source: str
    syscall_probe: Probe
    syscalls: list[SyscallCheck]
    device_rules: list[str] | None  # v1 devices.list; None on v2 (an eBPF program)
    device_rules_source: str
    device_probe: Probe
    devices: list[DeviceCheck]
    device_nodes: list[DeviceNode]


@dataclass(frozen=True, slots=True)
class Interface:
    name: str
    kind: str
    state: str
    mac: str
    mtu: int
    addresses: list[str]


@dataclass(frozen=True, slots=True)
class Route:
    destination: str
    gateway: str
    device: str
    family: str


@dataclass(frozen=True, slots=True)
class PublishedPort:
    protocol: str
    host_ip: str
    host_port: str
    container_ip: str
    container_port: str
    table: str
    chain: str
    rule: str


@dataclass(frozen=True, slots=True)
class Network:
    netns_shared: bool
    interfaces: list[Interface]
    routes: list[Route]
    source: str
    dns_servers: list[str]
    dns_search: list[str]
    dns_source: str
    published: list[PublishedPort]
    published_source: str


@dataclass(frozen=True, slots=True)
class Weakening:
    id: str  # privileged, capabilities, seccomp, host-pid, host-network, ...
    title: str
    flag: str  # the portique/docker flag that causes it
    config: str  # the config.json field that carries it
    detail: str  # what this container has
    exposes: str  # what it gives a process inside
    docker_default: bool = False  # Docker does the same by default (still a risk)


@dataclass(frozen=True, slots=True)
class Report:
    target: Target
    kernel: Kernel
    namespaces: Namespaces
    processes: Processes
    filesystem: Filesystem
    resources: Resources
    privileges: Privileges
    network: Network
    verdict: list[Weakening] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION


def to_json(report: Report) -> dict[str, Any]:
    out = dataclasses.asdict(report)
    return {"schema_version": out.pop("schema_version"), **out}


__all__ = [
    "SCHEMA_VERSION",
    "DeviceCheck",
    "DeviceNode",
    "Filesystem",
    "IdRange",
    "Ids",
    "Interface",
    "Kernel",
    "Masked",
    "Mount",
    "Namespace",
    "Namespaces",
    "Network",
    "Privileges",
    "Probe",
    "Process",
    "Processes",
    "PublishedPort",
    "Report",
    "Resources",
    "RootFs",
    "Route",
    "SyscallCheck",
    "Target",
    "Value",
    "Weakening",
    "to_json",
]
