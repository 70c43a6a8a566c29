"""The config.json `portique-runtime spec` writes, as `runc spec` does.

A starting point for a bundle: busybox-friendly `sh` on a terminal, a
read-only root, runc's default mounts, masked and read-only /proc paths, and
the namespaces a container normally gets. `rootless=True` rewrites it the way
`runc spec --rootless` does (a user namespace mapping the caller to root,
/sys bind-mounted, no cgroup resources).

Pure data, no I/O: the caller writes the file.
"""

from __future__ import annotations

import copy
import os

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from typing import Any, Final

OCI_VERSION = "1.2.0"

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

# runc's masked paths (Docker masks more: runtime/confinement.py). The
# read-only paths are the same for both, defined here once.
MASKED_PATHS: Final[tuple[str, ...]] = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
)
READONLY_PATHS: Final[tuple[str, ...]] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

_TEMPLATE: dict[str, Any] = {
    "ociVersion": OCI_VERSION,
    "process": {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=xterm",
        ],
        "cwd": "/",
        # No ambient set (runc's default lists one): the kernel raises an
        # ambient capability only if it is also inheritable, and these are not.
        "capabilities": {
            "bounding": list(_CAPS),
            "effective": list(_CAPS),
            "permitted": list(_CAPS),
        },
        # 1024 is below any sane host hard limit (CAP_SYS_RESOURCE may be
        # missing, so asking for more than the host allows would fail).
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "portique",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": [
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        },
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [
            {"type": "pid"},
            {"type": "network"},
            {"type": "ipc"},
            {"type": "uts"},
            {"type": "mount"},
            {"type": "cgroup"},
        ],
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
    },
}


def default_spec(
    *, rootless: bool = False, uid: int | None = None, gid: int | None = None
) -> dict[str, Any]:
    """A fresh default config (a new dict each call: callers may edit it).

    With `rootless`, the caller's uid/gid (default: effective ids of this
    process) map to root inside a new user namespace.
    """
    spec = copy.deepcopy(_TEMPLATE)
    if rootless:
        _make_rootless(
            spec, os.geteuid() if uid is None else uid, os.getegid() if gid is None else gid
        )
    return spec


def _make_rootless(spec: dict[str, Any], uid: int, gid: int) -> None:
    linux = spec["linux"]
    # An unprivileged user cannot create a network namespace's devices or
    # cgroups: drop the network namespace and the resources, add a user ns.
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "network"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    linux.pop("resources", None)
    mounts = []
    for mount in spec["mounts"]:
        if mount["destination"] == "/sys":
            # sysfs cannot be mounted without owning the network namespace.
            mount = {
                "destination": "/sys",
                "type": "none",
                "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
            }
        else:
            # gid=5 (tty) does not exist in a one-id mapping.
            opts = [o for o in mount.get("options", []) if not o.startswith("gid=")]
            if "options" in mount:
                mount = {**mount, "options": opts}
        mounts.append(mount)
    spec["mounts"] = mounts
