"""What `portique-runtime features` reports (OCI runtime-spec features.md).

Callers (containerd, podman, tests) read it to learn what this runtime can
do before they write a config.json, so every entry must be true of the
runtime library, not of runc: no systemd cgroups, no AppArmor, no SELinux,
no intel RDT, no checkpoint/restore; id-mapped mounts where the kernel has
mount_setattr.
"""

from __future__ import annotations

from portique import __version__
from portique.linux.caps import CAPABILITIES
from portique.oci.seccomp import ARCHES, Op

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from typing import Any

OCI_VERSION_MIN = "1.0.0"
OCI_VERSION_MAX = "1.2.0"

HOOKS = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)

# Mount options the rootfs code understands: flags for mount(2), recursive
# variants applied with mount_setattr(2), and propagation types.
MOUNT_OPTIONS = (
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "rbind",
    "relatime",
    "remount",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "ro",
    "rw",
    "shared",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
)

NAMESPACES = ("cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts")


SECCOMP_ACTIONS = (
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
)

# The operators and architectures config.json accepts (oci/seccomp.py),
# sorted as runc lists them.
SECCOMP_OPERATORS = tuple(sorted(op.value for op in Op))
SECCOMP_ARCHS = tuple(sorted(ARCHES))


def _seccomp_api() -> int | None:
    """libseccomp's API level through its Python binding, or None without it."""
    try:
        import seccomp
    except ImportError:
        return None
    try:
        return int(seccomp.get_api())
    except (AttributeError, TypeError, ValueError, RuntimeError):
        return None


def _idmap_enabled() -> bool:
    """Id-mapped bind mounts need mount_setattr(2) (Linux 5.12); whether a
    given filesystem supports them is only known when one is made."""
    from portique.linux.mount import has_mount_setattr

    return has_mount_setattr()


def features() -> dict[str, Any]:
    """The features document, as a JSON-ready dict."""
    api = _seccomp_api()
    annotations = {
        "org.portique.runtime.version": __version__,
        # runc's org.opencontainers.runc.checkpoint.enabled, for the same question.
        "org.portique.runtime.checkpoint.enabled": "false",
    }
    if api is not None:
        annotations["io.github.seccomp.libseccomp.api"] = str(api)
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": list(HOOKS),
        "mountOptions": sorted(MOUNT_OPTIONS),
        "linux": {
            "namespaces": list(NAMESPACES),
            "capabilities": list(CAPABILITIES),  # kernel order, from linux/caps.py
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {
                "enabled": api is not None,
                "actions": list(SECCOMP_ACTIONS),
                "operators": list(SECCOMP_OPERATORS),
                "archs": list(SECCOMP_ARCHS),
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": _idmap_enabled()}},
        },
        "annotations": annotations,
    }
