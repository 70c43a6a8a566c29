"""Where a container is weaker than Docker's defaults, from the facts alone.

Each weakening names the flag that causes it (in portique's and Docker's
spelling), the config.json field that carries it (for containers of
`portique-runtime`) and what it exposes. `docker_default` marks a risk that
Docker's own defaults carry too (root without a user namespace), listed
because a learner should know it.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from portique.engine.explain import model as m
from portique.runtime.seccomp_default import DOCKER_DEFAULT_CAPS

if TYPE_CHECKING:
    from collections.abc import Callable

# What an added capability gives a process that is root in the container.
CAP_EXPOSES: dict[str, str] = {
    "CAP_SYS_ADMIN": "mount file systems, create namespaces, use BPF and keyrings: "
    "the capability most container escapes start from",
    "CAP_NET_ADMIN": "reconfigure interfaces, routes and firewall rules of its network namespace "
    "(of the host's, with --network host)",
    "CAP_SYS_PTRACE": "trace and read the memory of every process it can see "
    "(every host process, with --pid host)",
    "CAP_SYS_MODULE": "load code into the host's kernel",
    "CAP_SYS_RAWIO": "raw I/O: /dev/mem, I/O ports, disk commands",
    "CAP_DAC_READ_SEARCH": "open_by_handle_at: read any file of a mounted host file system "
    "(the 'shocker' escape)",
    "CAP_SYS_TIME": "set the host's clock",
    "CAP_SYSLOG": "read and clear the kernel's log",
    "CAP_BPF": "load eBPF programs",
    "CAP_PERFMON": "observe the host's kernel and processes with perf",
    "CAP_SYS_BOOT": "reboot the machine, or load a new kernel",
    "CAP_MAC_ADMIN": "change the host's security (LSM) policy",
    "CAP_MAC_OVERRIDE": "bypass the host's security (LSM) policy",
    "CAP_SYS_RESOURCE": "go past resource limits and reserved disk space",
    "CAP_IPC_LOCK": "lock memory, pinning host RAM",
    "CAP_LINUX_IMMUTABLE": "change immutable and append-only files",
    "CAP_NET_BROADCAST": "broadcast and listen to multicast",
    "CAP_SYS_NICE": "raise priorities and pin CPUs against other workloads",
    "CAP_SYS_PACCT": "switch process accounting",
    "CAP_SYS_TTY_CONFIG": "reconfigure terminals",
    "CAP_LEASE": "take leases on files",
    "CAP_AUDIT_CONTROL": "change the host's audit rules",
    "CAP_AUDIT_READ": "read the host's audit log",
    "CAP_BLOCK_SUSPEND": "keep the machine from suspending",
    "CAP_WAKE_ALARM": "set wake-up alarms",
    "CAP_CHECKPOINT_RESTORE": "checkpoint/restore operations on processes it can see",
    "CAP_IPC_OWNER": "bypass permission checks on System V IPC",
}

_HOST_NS_FLAGS: dict[str, tuple[str, str, str]] = {
    # kind: (flag, exposes, title)
    "pid": (
        "--pid host",
        "every process of the host: visible in /proc, and signalled or traced with "
        "the right capability",
        "the host's process namespace",
    ),
    "net": (
        "--network host",
        "the host's interfaces and every service listening on them, 127.0.0.1 included; "
        "with CAP_NET_ADMIN, the host's firewall and routes",
        "the host's network namespace",
    ),
    "ipc": (
        "--ipc host",
        "the host's System V IPC and POSIX message queues (shared memory of host programs)",
        "the host's IPC namespace",
    ),
    "uts": (
        "--uts host",
        "the host's hostname (and, with CAP_SYS_ADMIN, changing it)",
        "the host's UTS namespace",
    ),
    "mnt": (
        "(no docker flag)",
        "the host's mount table: the host's whole file system",
        "the host's mount namespace",
    ),
}
_OCI_NS = {
    "pid": "pid",
    "net": "network",
    "ipc": "ipc",
    "uts": "uts",
    "mnt": "mount",
    "cgroup": "cgroup",
}
# Devices outside Docker's default allow-list (runtime/confinement.py DEVICE_RULES).
_DEFAULT_DEVICES = {
    "c 1:3",
    "c 1:5",
    "c 1:7",
    "c 1:8",
    "c 1:9",
    "c 5:0",
    "c 5:1",
    "c 5:2",
    "c 10:200",
}
_ENGINE_SOCKETS = ("docker.sock", "containerd.sock", "podman.sock", "portique.sock", "m.sock")
_ENGINE_DIRS = (
    "/run",
    "/var/run",
    "/run/docker",
    "/var/run/docker",
    "/run/containerd",
    "/run/podman",
    "/run/portique",
    "/var/lib/docker",
    "/var/lib/portique",
)


def _short(cap: str) -> str:
    return cap.removeprefix("CAP_")


def host_grantable() -> set[str]:
    """What the host can grant a container: our own bounding set."""
    from portique.engine.explain.gather import cap_names
    from portique.linux import procinfo

    return set(cap_names(procinfo.status_mask(procinfo.status("self"), "CapBnd")))


def weakenings(
    report_parts: tuple[m.Namespaces, m.Filesystem, m.Resources, m.Privileges],
    *,
    pid: int,
    grantable: set[str],
    stat_in_root: Callable[[int, str], os.stat_result | None],
) -> list[m.Weakening]:
    ns, fs, res, priv = report_parts
    out: list[m.Weakening] = []
    caps = set(priv.capabilities["bounding"]) | set(priv.capabilities["effective"])
    extra = sorted(caps - set(DOCKER_DEFAULT_CAPS))
    no_filter = priv.seccomp_mode == "disabled"
    devices_open = [d for d in priv.devices if d.verdict == "allowed"]
    privileged = no_filter and grantable <= caps and (fs.sys_writable or not fs.masked)
    if privileged:
        out.append(
            m.Weakening(
                "privileged",
                "privileged container",
                "--privileged",
                "all capabilities, no linux.seccomp, no maskedPaths/readonlyPaths, "
                "/sys mounted rw, every device allowed",
                f"every capability ({len(caps)}), no seccomp filter, "
                f"/sys {'writable' if fs.sys_writable else 'read-only'}, "
                f"{len(fs.masked)} masked paths, "
                f"{len(devices_open)} of {len(priv.devices)} probed devices open",
                "nearly all that root on the host can do: mount the host's disks, reach every "
                "device, write kernel settings in /proc/sys and /sys; an escape is a few "
                "commands away",
            )
        )
    else:
        out += _capabilities(extra, priv)
        if no_filter:
            reached = [s.name for s in priv.syscalls if s.verdict == "allowed"]
            out.append(
                m.Weakening(
                    "seccomp",
                    "no seccomp filter",
                    "--security-opt seccomp=unconfined",
                    "no linux.seccomp",
                    "Seccomp: 0 in /proc/PID/status"
                    + (f"; the probe reached {len(reached)} dangerous calls" if reached else ""),
                    "every system call reaches the kernel, which then checks only "
                    "capabilities: its whole attack surface (keyrings, bpf, io_uring, "
                    "userfaultfd, perf) is one bug away",
                )
            )
        out += _filesystem_weakenings(fs)
        out += _devices(priv)
    out += _namespaces(ns, res)
    out += _host_binds(fs, pid, stat_in_root)
    if priv.host_uid.effective == 0 and ns.get("user").shared:
        out.append(
            m.Weakening(
                "root",
                "root in the container is root on the host",
                "no --user (Docker's default too)",
                "process.user.uid 0 and no user namespace",
                "uid 0 inside is uid 0 on the host (no user namespace maps it elsewhere)",
                "what contains it is only capabilities, seccomp and the namespaces: one escape "
                "and it is the host's root; files it writes to volumes belong to root",
                docker_default=True,
            )
        )
    return out


def _capabilities(extra: list[str], priv: m.Privileges) -> list[m.Weakening]:
    allowed = [s.name for s in priv.syscalls if s.verdict == "allowed" and s.name != "ptrace"]
    out = []
    for cap in extra:
        detail = f"{cap} is in the bounding/effective sets"
        if cap == "CAP_SYS_ADMIN" and allowed and priv.seccomp_mode == "filter":
            detail += f"; the seccomp filter then lets through: {', '.join(allowed)}"
        out.append(
            m.Weakening(
                f"capability:{cap}",
                f"added capability {cap}",
                f"--cap-add {_short(cap)}",
                f'process.capabilities with "{cap}"',
                detail,
                CAP_EXPOSES.get(cap, f"what {cap} allows, to root in the container"),
            )
        )
    return out


def _filesystem_weakenings(fs: m.Filesystem) -> list[m.Weakening]:
    out = []
    if fs.sys_writable:
        out.append(
            m.Weakening(
                "sys-writable",
                "/sys is writable",
                "--privileged (or a config.json /sys mount without ro)",
                'a mounts entry for /sys without "ro"',
                "the sysfs mount at /sys is read-write",
                "kernel and device settings of the whole host under /sys",
            )
        )
    if fs.unmasked:
        out.append(
            m.Weakening(
                "unmasked-paths",
                "kernel files are not masked",
                "--security-opt systempaths=unconfined",
                "linux.maskedPaths",
                "visible: " + ", ".join(fs.unmasked),
                "kernel memory and state (/proc/kcore, /proc/keys, /proc/timer_list, ...) "
                "that help an attacker",
            )
        )
    if not any(p == "/proc/sys" for p in fs.read_only) and any(
        x.target == "/proc" and x.fstype == "proc" for x in fs.mounts
    ):
        out.append(
            m.Weakening(
                "proc-sys-writable",
                "/proc/sys is writable",
                "--security-opt systempaths=unconfined",
                "linux.readonlyPaths",
                "no read-only mount over /proc/sys",
                "kernel settings; those that are not namespaced are the host's",
            )
        )
    return out


def _devices(priv: m.Privileges) -> list[m.Weakening]:
    return [
        m.Weakening(
            f"device:{d.device}",
            f"device {d.device} ({d.name}) can be opened",
            f"--device (or --device-cgroup-rule '{d.device} r')",
            "linux.resources.devices",
            f"open() of a {d.device} node from the container's cgroup: "
            f"{d.open_in_container_cgroup}",
            f"direct access to {d.name}",
        )
        for d in priv.devices
        if d.verdict == "allowed" and d.device not in _DEFAULT_DEVICES
    ]


def _namespaces(ns: m.Namespaces, res: m.Resources) -> list[m.Weakening]:
    out = []
    for n in ns.items:
        if not n.shared:
            continue
        if n.type in _HOST_NS_FLAGS:
            flag, exposes, title = _HOST_NS_FLAGS[n.type]
        elif n.type == "cgroup" and res.cgroup_version == "v2":
            # Docker makes a private cgroup namespace by default on v2 only.
            flag, exposes, title = (
                "--cgroupns host",
                "the host's whole cgroup tree in /proc/self/cgroup and /sys/fs/cgroup",
                "the host's cgroup namespace",
            )
        else:
            continue
        out.append(
            m.Weakening(
                f"host-{n.type}",
                f"shares {title}",
                flag,
                f'linux.namespaces has no "{_OCI_NS[n.type]}" entry (or a path to the host\'s)',
                f"{n.source} and {n.reference} are the same namespace (inode {n.inode})",
                exposes,
            )
        )
    return out


def _host_binds(
    fs: m.Filesystem, pid: int, stat_in_root: Callable[[int, str], os.stat_result | None]
) -> list[m.Weakening]:
    out = []
    host_root = os.stat("/")
    for x in fs.mounts:
        if x.kind in ("root", "masked", "engine-file") or x.fstype in ("proc", "sysfs"):
            continue
        st = stat_in_root(pid, x.target)
        if st is None:
            continue
        access = "read-only" if x.read_only else "read-write"
        if (st.st_dev, st.st_ino) == (host_root.st_dev, host_root.st_ino):
            out.append(
                m.Weakening(
                    "host-root",
                    f"the host's / is mounted at {x.target}",
                    f"-v /:{x.target}",
                    f"a bind mount of / in mounts (destination {x.target})",
                    f"{x.target} is the host's root directory ({access})",
                    "the host's whole file system: /etc/shadow, the engines' state and "
                    "sockets, other containers' files"
                    + (
                        "; written to, it is the host itself (cron, systemd units, ssh keys)"
                        if not x.read_only
                        else ""
                    ),
                )
            )
            continue
        sock = stat.S_ISSOCK(st.st_mode) and (
            x.host_path.endswith(_ENGINE_SOCKETS) or x.target.endswith(_ENGINE_SOCKETS)
        )
        engine_dir = stat.S_ISDIR(st.st_mode) and x.host_path.rstrip("/") in _ENGINE_DIRS
        if sock or engine_dir:
            out.append(
                m.Weakening(
                    "engine-socket",
                    f"a container engine's socket is reachable at {x.target}",
                    f"-v {x.host_path or '?'}:{x.target}",
                    f"a bind mount of {x.host_path or x.root} in mounts",
                    f"{x.target} is {x.host_path or x.root} of the host ({access})",
                    "the engine's API: whoever talks to it can start a privileged container "
                    "with the host's / mounted, which is root on the host",
                )
            )
    return out
