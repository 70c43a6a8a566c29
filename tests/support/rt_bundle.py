"""Bundles for runtime tests: a copy of the busybox rootfs plus a config.json
close to `runc spec`'s default, adjustable per test."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

from portique.runtime.default_spec import MASKED_PATHS, READONLY_PATHS

DEFAULT_CAPS = [
    "CAP_AUDIT_WRITE",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
    "CAP_SETFCAP",
]

BASE_CONFIG: dict[str, Any] = {
    "ociVersion": "1.2.0",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {
            "bounding": DEFAULT_CAPS,
            "effective": DEFAULT_CAPS,
            "permitted": DEFAULT_CAPS,
        },
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": False},
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
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
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


def make_config(args: list[str] | None = None, **changes: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(BASE_CONFIG)
    if args is not None:
        cfg["process"]["args"] = args
    cfg.update(changes)
    return cfg


def make_bundle(
    tmp: Path, rootfs_src: Path, config: dict[str, Any], *, copy_rootfs: bool = False
) -> Path:
    """tmp/bundle with config.json and a rootfs (a symlink-free copy when asked)."""
    bundle = tmp / "bundle"
    bundle.mkdir(exist_ok=True)
    if copy_rootfs:
        shutil.copytree(rootfs_src, bundle / "rootfs", symlinks=True)
    else:
        # The shared rootfs is bound read-only by root.readonly or written only
        # under tmpfs mounts; tests that write into it ask for a copy.
        config = copy.deepcopy(config)
        config["root"]["path"] = str(rootfs_src)
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle
