"""Docker's confinement of a container, defined once for `run` and for build steps.

`portique run` (engine/config.py) and every Dockerfile RUN step
(build/step.py) take the confining parts of their OCI spec from here, so a
Dockerfile gets exactly what a default container gets and nothing more:

- Docker's default capabilities, as far as this host's bounding set has them;
- portique's default seccomp profile for those capabilities
  (seccomp_default.py), which denies keyctl, unshare, mount, bpf, ...;
- the masked and read-only /proc and /sys paths;
- the /proc, /dev, /dev/pts, /sys (read-only), /sys/fs/cgroup (read-only),
  /dev/mqueue and /dev/shm mounts with their options;
- the device cgroup rules (mknod of anything, use of the standard devices);
- the namespaces every container gets (network is the caller's choice);
- no_new_privileges off, as in Docker and BuildKit (setuid programs work);
  `run --security-opt no-new-privileges` turns it on.

A `Confinement` holds the choices (capabilities, profile, privileged,
no_new_privileges) and renders the spec's pieces; `default_confinement()` is
the one a default container and a RUN step get. Pure data: the only I/O is
reading our own bounding set in `host_capabilities`.
"""

from __future__ import annotations

from portique.linux.caps import CAPABILITIES
from portique.oci.value import value
from portique.runtime.default_spec import READONLY_PATHS as _RUNC_READONLY_PATHS
from portique.runtime.seccomp_default import DOCKER_DEFAULT_CAPS

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, Final

__all__ = [
    "DEVICE_RULES",
    "MASKED_PATHS",
    "NAMESPACES",
    "READONLY_PATHS",
    "Confinement",
    "caps_from_mask",
    "default_confinement",
    "host_capabilities",
]

# Docker's masked paths: runc's (runtime/default_spec.py) and powercap.
MASKED_PATHS: Final[tuple[str, ...]] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
# Docker's read-only paths are runc's.
READONLY_PATHS: Final = _RUNC_READONLY_PATHS

# The device cgroup rules every unprivileged container gets (Docker's and
# runc's defaults): mknod of anything, use of the standard character devices.
DEVICE_RULES: Final[tuple[Mapping[str, Any], ...]] = (
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},  # null
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},  # zero
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},  # full
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},  # random
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},  # urandom
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},  # tty
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},  # console
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # ptmx
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # pts
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},  # tun
)

# Every container's own namespaces; the network namespace is the caller's
# choice (a new one, one to join, or the host's).
NAMESPACES: Final[tuple[str, ...]] = ("pid", "ipc", "uts", "mount", "cgroup")


@value
class Confinement:
    """What confines a container's processes, and its rendering as OCI spec pieces."""

    capabilities: tuple[str, ...]
    seccomp: Mapping[str, Any] | None  # linux.seccomp; None = unconfined
    privileged: bool = False
    no_new_privileges: bool = False

    def process_capabilities(self) -> dict[str, list[str]]:
        """process.capabilities: no inheritable or ambient set, as Docker."""
        return {k: list(self.capabilities) for k in ("bounding", "effective", "permitted")}

    def mounts(self) -> list[dict[str, Any]]:
        """The kernel filesystems, first in `mounts` (user mounts go on top)."""
        sys_opts = ["nosuid", "noexec", "nodev"] + ([] if self.privileged else ["ro"])
        return [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        ]  # fmt: skip

    def device_rules(self) -> list[dict[str, Any]]:
        """linux.resources.devices."""
        if self.privileged:
            return [{"allow": True, "access": "rwm"}]
        return [dict(d) for d in DEVICE_RULES]

    def linux_paths(self) -> dict[str, Any]:
        """linux.maskedPaths, readonlyPaths and seccomp (none when privileged)."""
        if self.privileged:
            return {}
        out: dict[str, Any] = {
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        }
        if self.seccomp is not None:
            out["seccomp"] = dict(self.seccomp)
        return out


def default_confinement(host_caps: Iterable[str] | None = None) -> Confinement:
    """A default container's: Docker's capabilities that `host_caps` (default:
    all) has, the default seccomp profile for them, unprivileged."""
    from portique.runtime.seccomp_default import default_profile

    allowed = set(CAPABILITIES if host_caps is None else host_caps)
    caps = tuple(c for c in DOCKER_DEFAULT_CAPS if c in allowed)
    return Confinement(caps, default_profile(caps))


def caps_from_mask(mask: int) -> list[str]:
    """Capability names of the bits set in `mask` (CAPABILITIES is in kernel number order)."""
    return [name for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1]


def host_capabilities(status: str = "/proc/self/status") -> list[str]:
    """Our bounding set: a container cannot get what we do not have (CAP_SYS_RESOURCE
    is missing on some hosts, and capset would fail)."""
    try:
        with open(status) as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return caps_from_mask(int(line.split()[1], 16))
    except (OSError, ValueError):
        pass
    return list(CAPABILITIES)
