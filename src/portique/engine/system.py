"""The engine as a whole: `info` (`GET /info`), disk usage (`system df`) and
`system prune`, for every face."""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING, Any

from portique.oci.value import value

if TYPE_CHECKING:
    from portique.engine.engine import Engine

__all__ = ["DiskUsage", "PruneReport", "Usage", "disk_usage", "info", "prune"]


def info(eng: Engine) -> dict[str, Any]:
    """Docker's `GET /info` fields that portique has."""
    from portique import __version__
    from portique.engine import containers, stats
    from portique.engine.state import Status, has_process

    rows = containers.list_all(eng)
    try:
        images = int(eng.images.disk_usage()["images"])
    except Exception:
        images = 0
    try:
        from portique.runtime.cgroups.base import detect

        cgroup = "2" if detect() == "v2" else "1"
    except Exception:
        cgroup = "1"
    uname = os.uname()
    return {
        "ID": "",
        "Containers": len(rows),
        "ContainersRunning": sum(r.status == Status.RUNNING for r in rows),
        "ContainersPaused": sum(r.status == Status.PAUSED for r in rows),
        "ContainersStopped": sum(not has_process(r.status) for r in rows),
        "Images": images,
        "Driver": "overlay2",
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup,
        "KernelVersion": uname.release,
        "OperatingSystem": _os_name(),
        "OSType": "linux",
        "Architecture": platform.machine(),
        "NCPU": os.cpu_count() or 1,
        "MemTotal": stats.host_memory(),
        "DockerRootDir": str(eng.root),
        "Name": uname.nodename,
        "ServerVersion": __version__,
        "DefaultRuntime": "portique",
        "Runtimes": {"portique": {"path": "portique-runtime"}},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Plugins": {"Volume": ["local"], "Network": ["host", "none"], "Log": ["json-file"]},
    }


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


@value
class Usage:
    """One line of `system df`: how many, how many in use, bytes, bytes a prune frees."""

    total: int
    active: int
    size: int
    reclaimable: int


@value
class DiskUsage:
    images: Usage
    containers: Usage
    volumes: Usage
    build_cache: Usage


def disk_usage(eng: Engine) -> DiskUsage:
    from portique.engine import containers, db, volumes
    from portique.engine.state import has_monitor

    usage = eng.images.disk_usage()
    rows = containers.list_all(eng)
    c_sizes = {r.id: containers.container_size(eng, r.id) for r in rows}
    active = {r.id for r in rows if has_monitor(r.status)}
    vols = db.list_volumes(eng.db)
    used = volumes.volumes_in_use(eng)
    v_sizes = {v.name: volumes.volume_size(v.mountpoint) for v in vols}
    return DiskUsage(
        images=Usage(
            int(usage["images"]),
            int(usage["active"]),
            int(usage["size"]),
            int(usage["reclaimable"]),
        ),
        containers=Usage(
            len(rows),
            len(active),
            sum(c_sizes.values()),
            sum(s for cid, s in c_sizes.items() if cid not in active),
        ),
        volumes=Usage(
            len(vols),
            len(used & set(v_sizes)),
            sum(v_sizes.values()),
            sum(s for n, s in v_sizes.items() if n not in used),
        ),
        build_cache=Usage(0, 0, 0, 0),
    )


@value
class PruneReport:
    containers: list[str]
    volumes: list[str]
    images: list[str]
    reclaimed: int


def prune(eng: Engine, *, all: bool = False, volumes: bool = False) -> PruneReport:
    """`system prune`: interrupted operations first (their mounts, runtime
    containers, files, stale rows, abandoned downloads), so that what they held
    goes too; then stopped containers, (anonymous) volumes, unused images."""
    from portique.engine import containers
    from portique.engine import volumes as vols
    from portique.engine.network import repair_leftovers

    eng.recover(images=True, prune=True, warn=True)
    repair_leftovers(eng, every=0)
    removed = containers.prune(eng)
    gone_volumes = vols.prune_volumes(eng) if volumes else []
    deleted, reclaimed = eng.images.prune(all=all)
    return PruneReport(removed, gone_volumes, deleted, reclaimed)
