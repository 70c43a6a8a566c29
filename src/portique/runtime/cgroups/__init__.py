"""Cgroup drivers: v1 (one directory per hierarchy) and v2 (one unified
directory) behind one `CgroupManager` interface, chosen from what the host
mounts at /sys/fs/cgroup.

    mgr = open_manager(spec_cgroups_path, container_id)
    mgr.create(); mgr.apply(resources); mgr.add_process(pid)
    ...
    mgr.destroy()

The drivers are imported lazily: the runtime's start path loads one of them.
"""

from __future__ import annotations

import os

from .base import (
    MOUNTINFO,
    ROOT,
    CgroupError,
    CgroupManager,
    detect,
    hierarchies,
    resolve_path,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _typeshed import StrPath


def open_manager(
    cgroups_path: str | None,
    container_id: str,
    *,
    root: StrPath = ROOT,
    mountinfo: StrPath = MOUNTINFO,
) -> CgroupManager:
    """The manager for a container's cgroup (nothing is created until create()).

    `cgroups_path`: None -> /portique/<id>; relative -> under /portique;
    absolute -> as given (relative to each hierarchy root); systemd's
    "slice:prefix:name" -> InvalidArgument.
    """
    path = resolve_path(cgroups_path, container_id)
    if os.fspath(root) == ROOT and not _may_create(ROOT, path):
        from .none import NoCgroupManager

        return NoCgroupManager(path)
    if detect(root) == "v2":
        from .v2 import V2Manager

        return V2Manager(path, root)
    from .v1 import V1Manager

    return V1Manager(path, root, mountinfo=mountinfo)


def delegated_parent(root: StrPath = ROOT, proc_cgroup: str = "/proc/self/cgroup") -> str:
    """Where a rootless caller's containers' cgroups go: on cgroup v2, the
    topmost ancestor of its own cgroup that it owns (a subtree delegated to
    the user, as systemd's user@UID.service or a directory root chowned to
    it), else "" (no cgroup: cgroups/none.py). As root: ""."""
    from portique.linux.ns import in_user_namespace

    if (os.geteuid() == 0 and not in_user_namespace()) or detect(root) != "v2":
        return ""
    try:
        with open(proc_cgroup, encoding="utf-8") as f:
            own = next((line[3:].strip() for line in f if line.startswith("0::")), "")
    except OSError:
        return ""
    found = ""
    parts = [p for p in own.split("/") if p]
    while parts:
        where = os.path.join(root, *parts)
        try:
            st = os.stat(where)
        except OSError:
            break
        if st.st_uid != os.geteuid() or not os.access(os.path.join(where, "cgroup.procs"), os.W_OK):
            break
        found = "/" + "/".join(parts)
        parts.pop()
    return found


def _may_create(root: str, path: str) -> bool:
    """False for a rootless caller (in a user namespace) that cannot write
    where the cgroup would go: the nearest existing directory on its path,
    in the unified hierarchy or, on v1, the memory one."""
    from portique.linux.ns import in_user_namespace

    if os.geteuid() == 0 and not in_user_namespace():
        return True
    base = root if detect(root) == "v2" else os.path.join(root, "memory")
    where = os.path.join(base, path.strip("/"))
    while where != base and not os.path.exists(where):
        where = os.path.dirname(where)
    return os.access(where, os.W_OK)


__all__ = [
    "CgroupError",
    "CgroupManager",
    "delegated_parent",
    "detect",
    "hierarchies",
    "open_manager",
    "resolve_path",
]
