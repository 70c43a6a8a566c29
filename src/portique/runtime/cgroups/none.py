"""No cgroup: a rootless container where the user has no delegated cgroup.

An ordinary user cannot make cgroups on a cgroup v1 host, nor on a v2 host
without a subtree delegated to it. As runc's rootless mode, the container
then runs in the cgroup of its caller, and any limit is refused naming the
field (never dropped). Device rules need no cgroup there: a user namespace
cannot make device nodes, only bind the host's, which the host's own
permissions guard. The container's processes are still all in its pid
namespace: killing its init kills them all.
"""

from __future__ import annotations

from .base import CgroupError

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from pathlib import Path

    from portique.oci.resources import LinuxResources

WHY = "this user has no cgroup of its own (rootless, no delegated cgroup v2 subtree)"


def limits_set(resources: LinuxResources | None) -> list[str]:
    """The names of the limits `resources` sets (device rules are not limits)."""
    if resources is None:
        return []
    return [
        name
        for name in (
            "memory",
            "cpu",
            "pids",
            "block_io",
            "hugepage_limits",
            "network",
            "rdma",
            "unified",
        )
        if _set(getattr(resources, name, None))
    ]


def _set(value: object) -> bool:
    """A limit is set when some field of it is (an empty Memory() is not)."""
    match_args = getattr(type(value), "__match_args__", None)
    if match_args is not None:
        return any(_set(getattr(value, field)) for field in match_args)
    if isinstance(value, tuple):
        return bool(value)
    return value is not None


class NoCgroupManager:
    """A CgroupManager that holds nothing and refuses every limit."""

    version = "none"

    def __init__(self, path: str) -> None:
        self.path = path

    def create(self) -> None:
        pass

    def apply(self, resources: LinuxResources | None) -> None:
        names = limits_set(resources)
        if names:
            raise CgroupError(f"linux.resources.{names[0]}: cannot set limits: {WHY}")

    def add_process(self, pid: int) -> None:
        pass

    def join(self) -> None:
        pass

    def freeze(self) -> None:
        raise CgroupError(f"cannot pause: {WHY}")

    def thaw(self) -> None:
        raise CgroupError(f"cannot unpause: {WHY}")

    def is_frozen(self) -> bool:
        return False

    def pids(self) -> list[int]:
        return []

    def stats(self) -> dict[str, object]:
        return {}

    def oom_kill_count(self) -> int:
        return 0

    def kill_all(self, sig: int) -> None:
        pass

    def destroy(self) -> None:
        pass

    def exists(self) -> bool:
        return False

    def dirs(self) -> dict[str, Path]:
        return {}

    def dir_texts(self) -> dict[str, str]:
        return {}
