"""The engine as a whole: `info` (`GET /info`), disk usage (`system df`) and
`system prune`, for every face."""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING, Any

from portique.oci.value import value

if TYPE_CHECKING:
    from portique.engine.engine import Engine

__all__ = ["DiskUsage", "PruneReport", "Usage", "disk_usage", "info", "prune", "server_version"]


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
    security = ["name=seccomp,profile=builtin"]
    helpers = rootless_helpers()
    cgroup_driver = "cgroupfs"
    if helpers:
        security.append("name=rootless")
        cgroup_driver = helpers.pop("cgroup")
    return {
        "ID": "",
        "Containers": len(rows),
        "ContainersRunning": sum(r.status == Status.RUNNING for r in rows),
        "ContainersPaused": sum(r.status == Status.PAUSED for r in rows),
        "ContainersStopped": sum(not has_process(r.status) for r in rows),
        "Images": images,
        "Driver": "overlay2",
        "LoggingDriver": "json-file",
        "CgroupDriver": cgroup_driver,
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
        "SecurityOptions": security,
        "Plugins": {"Volume": ["local"], "Network": ["host", "none"], "Log": ["json-file"]},
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        },
        **({"Rootless": helpers} if helpers else {}),
    }


def server_version(min_api: str = "") -> dict[str, Any]:
    """Docker's `GET /version` (the Server part of `portique version`)."""
    from portique import API_VERSION, __version__

    arch = "amd64" if platform.machine() == "x86_64" else platform.machine()
    kernel = platform.release()
    python = f"python{platform.python_version()}"
    return {
        "Platform": {"Name": "portique"},
        "Components": [
            {
                "Name": "Engine",
                "Version": __version__,
                "Details": {
                    "ApiVersion": API_VERSION,
                    "Arch": arch,
                    "Os": "linux",
                    "KernelVersion": kernel,
                    "MinAPIVersion": min_api,
                    "GoVersion": python,
                    "GitCommit": "",
                    "BuildTime": "",
                    "Experimental": "false",
                },
            }
        ],
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": min_api,
        "GitCommit": "",
        "GoVersion": python,
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel,
        "Experimental": False,
        "BuildTime": "",
    }


def rootless_helpers() -> dict[str, str]:
    """A rootless engine's helpers (empty as root): how ids are mapped, the
    storage and network helpers, the cgroup driver ("none" without one)."""
    import shutil

    from portique.linux.ns import in_user_namespace
    from portique.subids import single_id

    if not in_user_namespace():
        return {}
    from portique.runtime.cgroups import delegated_parent, open_manager

    slirp = shutil.which("slirp4netns", path="/usr/bin:/bin:/usr/sbin:/sbin")
    return {
        "IdMapping": "single id (no /etc/subuid range)" if single_id() else "newuidmap/newgidmap",
        "Storage": "overlayfs in the user namespace (userxattr)",
        "Network": f"slirp4netns ({slirp})" if slirp else "slirp4netns missing: none and host only",
        "cgroup": "none"
        if open_manager(f"{delegated_parent()}/portique/info", "info").version == "none"
        else "cgroupfs",
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
        build_cache=build_cache_usage(eng),
    )


def build_cache_usage(eng: Engine) -> Usage:
    """The `Build Cache` line: entries, those in use, bytes of the layers they
    added (each counted once), bytes a `builder prune -a` could free."""
    from portique.engine import buildcache

    recs = buildcache.records(eng)
    sizes: dict[str, int] = {}
    free: dict[str, int] = {}
    for r in recs:
        sizes[r.layer] = r.size
        if not r.in_use:
            free[r.layer] = r.size
    for r in recs:  # a layer an entry in use holds stays
        if r.in_use:
            free.pop(r.layer, None)
    return Usage(len(recs), sum(r.in_use for r in recs), sum(sizes.values()), sum(free.values()))


@value
class PruneReport:
    containers: list[str]
    volumes: list[str]
    images: list[str]
    reclaimed: int
    build_cache: list[str]
    networks: tuple[str, ...] = ()


def prune(eng: Engine, *, all: bool = False, volumes: bool = False) -> PruneReport:
    """`system prune`: interrupted operations first (their mounts, runtime
    containers, files, stale rows, abandoned downloads), so that what they held
    goes too; then stopped containers, unused networks, (anonymous) volumes,
    unused images."""
    from portique.engine import containers
    from portique.engine import volumes as vols
    from portique.engine.network import repair_leftovers

    eng.recover(images=True, prune=True, warn=True)
    repair_leftovers(eng, every=0)
    removed = containers.prune(eng)
    from portique.engine import networks

    gone_networks = networks.prune(eng)
    gone_volumes = vols.prune_volumes(eng) if volumes else []
    deleted, reclaimed = eng.images.prune(all=all)
    # The build cache as Docker's: the dangling entries, with `all` every one.
    from portique.engine import buildcache

    cache, freed = buildcache.prune(eng, all=all)
    return PruneReport(
        removed, gone_volumes, deleted, reclaimed + freed, cache, tuple(gone_networks)
    )


def df(eng: Engine) -> dict[str, Any]:
    """`GET /system/df`: every image, container, volume and build cache entry with
    its usage, in the API's shapes (what `system df -v` lists)."""
    from portique.engine import buildcache, containers, db, images, volumes

    imgs = eng.images
    summaries = images.list_images(eng)
    with imgs.db.read() as c:
        layer_images: dict[str, set[str]] = {}
        for image_id, diff_id in c.execute("SELECT image_id, diff_id FROM image_layers"):
            layer_images.setdefault(diff_id, set()).add(image_id)
        sizes = dict(c.execute("SELECT diff_id, size FROM layers").fetchall())
        users: dict[str, int] = {}
        for (image_id,) in c.execute("SELECT image_id FROM image_users"):
            users[image_id] = users.get(image_id, 0) + 1
    out_images = []
    for s in summaries:
        record = imgs.get(s["Id"])
        shared = sum(
            int(sizes.get(d, 0))
            for d in dict.fromkeys(record.layers)
            if len(layer_images.get(d, ())) > 1
        )
        out_images.append({**s, "SharedSize": shared, "Containers": users.get(s["Id"], 0)})
    out_containers = containers.list_containers(eng, all=True, size=True)
    conn = eng.db
    out_volumes = []
    for v in db.list_volumes(conn):
        entry = volumes.volume_json(v)
        entry["UsageData"] = {
            "Size": volumes.volume_size(v.mountpoint),
            "RefCount": len(db.volume_users(conn, v.name)),
        }
        out_volumes.append(entry)
    cache = [
        {
            "ID": r.id,
            "Parent": "",
            "Type": "regular",
            "Description": f"image {r.image_id}" + (f" layer {r.layer}" if r.layer else ""),
            "InUse": r.in_use,
            "Shared": r.shared,
            "Size": r.size,
            "CreatedAt": _rfc3339(r.created),
            "LastUsedAt": _rfc3339(r.last_used),
            "UsageCount": 1,
        }
        for r in buildcache.records(eng)
    ]
    return {
        "LayersSize": int(imgs.disk_usage().get("size", 0)),
        "Images": out_images,
        "Containers": out_containers,
        "Volumes": out_volumes,
        "BuildCache": cache,
    }


def _rfc3339(ts: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def migrate(eng: Engine) -> None:
    """`system migrate`: a rootless engine's user namespace ends (its pause
    process, engine/rootless.py), so that the next command makes one with the
    ids /etc/subuid and /etc/subgid give now. Refused while containers run:
    they live in it. As root: nothing to do."""
    from portique.engine import db, rootless
    from portique.engine.state import has_monitor
    from portique.errors import Conflict
    from portique.linux.ns import in_user_namespace

    if not in_user_namespace():
        return
    running = [r.name for r in db.list_containers(eng.db) if has_monitor(r.status)]
    if running:
        raise Conflict(f"container {running[0]} is running: stop every container first")
    rootless.stop_pause(eng.runroot)
