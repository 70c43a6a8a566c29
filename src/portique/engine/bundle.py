"""Turn a stored container into a runnable OCI bundle: mount, resolve, write config.json."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portique.engine.paths import ContainerPaths

# The spec's makers (config, options, volumes, the user database) load in the
# functions that build a bundle: a monitor's clean-up after the exit imports
# this module for unmount_rootfs alone, on the path a `run --rm` waits on.
if TYPE_CHECKING:
    from contextlib import ExitStack

    from portique.engine.db import ContainerRow
    from portique.engine.engine import Engine

TINI = "/usr/bin/tini-static"


def mount_rootfs(eng: Engine, row: ContainerRow) -> Path:
    from portique.linux.mount import is_mountpoint

    paths = eng.paths(row.id)
    rootfs = paths.dir / "rootfs"
    if rootfs.is_dir() and is_mountpoint(rootfs):
        return rootfs
    imgs = eng.images
    return Path(imgs.mount_rootfs(imgs.get(row.image_id), paths.dir))


def unmount_rootfs(paths: ContainerPaths) -> None:
    from portique.image.snapshots import unmount_overlay

    unmount_shm(paths)
    unmount_overlay(paths.dir)


SHM_DEFAULT = 64 << 20  # Docker's default /dev/shm size


def mount_shm(paths: ContainerPaths, size: int) -> str:
    """--ipc shareable: the container's /dev/shm is a tmpfs on the host, in its
    directory, so that `--ipc container:X` can bind the same one (a mount of
    another mount namespace cannot be bind-mounted)."""
    from portique.linux.mount import MS_NODEV, MS_NOEXEC, MS_NOSUID, is_mountpoint, mount

    shm = paths.dir / "shm"
    shm.mkdir(mode=0o700, exist_ok=True)
    if not is_mountpoint(shm):
        mount("shm", str(shm), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              f"mode=1777,size={size or SHM_DEFAULT}")  # fmt: skip
    return str(shm)


def unmount_shm(paths: ContainerPaths) -> None:
    from portique.linux.mount import MNT_DETACH, is_mountpoint, umount

    shm = paths.dir / "shm"
    if shm.is_dir() and is_mountpoint(shm):
        umount(str(shm), MNT_DETACH)


def _read_host(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20)
    except OSError:
        return ""


def write_etc_files(eng: Engine, row: ContainerRow, joined: Any = None) -> None:
    """/etc/hostname, hosts and resolv.conf of the container; `joined`, the row of the
    container whose network namespace it shares (`--network container:REF`), whose
    files it copies, as Docker does. The network layer rewrites hosts and
    resolv.conf once the container's endpoints exist."""
    import socket

    from portique.engine import config as cfg
    from portique.engine import network as net
    from portique.fileio import atomic_write

    paths = eng.paths(row.id)
    config = row.config["Config"]
    host = row.config["HostConfig"]
    host_net = host.get("NetworkMode") == "host"
    hostname = config.get("Hostname") or (socket.gethostname() if host_net else row.id[:12])
    atomic_write(paths.dir / "hostname", f"{hostname}\n".encode(), fsync=False)
    if joined is not None:
        other = eng.paths(joined.id).dir
        hosts = _read_host(str(other / "hosts"))
        resolv = _read_host(str(other / "resolv.conf"))
    else:
        hosts = cfg.hosts_file(hostname, host_net, _read_host("/etc/hosts"))
        extra = net.extra_host_lines(host, "")
        hosts += "".join(line + "\n" for line in extra)
        resolv = net.with_dns_flags(cfg.resolv_conf(_read_host("/etc/resolv.conf"), host_net), host)
    atomic_write(paths.dir / "hosts", hosts.encode(), fsync=False)
    atomic_write(paths.dir / "resolv.conf", resolv.encode(), fsync=False)


def seccomp_for(host: dict[str, Any], caps: list[str]) -> dict[str, Any] | None:
    from portique.engine import config as cfg
    from portique.engine import options as opt
    from portique.errors import InvalidArgument

    sec = opt.parse_security_opts(host.get("SecurityOpt") or [])
    if host.get("Privileged") or sec.seccomp == "unconfined":
        return None
    if sec.seccomp:
        # The profile was read and checked at create; stored in HostConfig.
        profile = host.get("SeccompProfile")
        if not isinstance(profile, dict):
            raise InvalidArgument(f"seccomp profile {sec.seccomp} was not loaded")
        return cfg.docker_profile_to_oci(profile, caps)
    from portique.runtime.seccomp_default import default_profile

    return dict(default_profile(caps))


def prepare(
    eng: Engine, row: ContainerRow, stack: ExitStack, netns_path: str = ""
) -> dict[str, Any]:
    """Mount the rootfs and write config.json; undo steps are pushed on `stack`.
    `netns_path`: a network namespace made for the container (engine/earlynet.py)."""
    from portique.engine import config as cfg
    from portique.engine import options as opt
    from portique.engine import run_opts, userdb, volumes
    from portique.fileio import atomic_write_json

    paths = eng.paths(row.id)
    config = dict(row.config["Config"])
    host = dict(row.config["HostConfig"])
    rootfs = mount_rootfs(eng, row)
    stack.callback(unmount_rootfs, paths)
    user = userdb.lookup(
        str(rootfs), str(config.get("User") or ""), tuple(host.get("GroupAdd") or ())
    )
    points = row.config.get("MountPoints") or []
    volumes.copy_image_content(str(rootfs), points)
    from portique.engine import network as net

    joined = None
    if net.joined_container(host):
        netns_path, joined = net.joined_netns(eng, host)
    write_etc_files(eng, row, joined)
    host_caps = opt.host_capabilities()
    caps = opt.capabilities(
        host.get("CapAdd") or [], host.get("CapDrop") or [], bool(host.get("Privileged")), host_caps
    )
    workdir = str(config.get("WorkingDir") or "/")
    if workdir != "/":
        # Docker creates a missing working directory; do it inside the root only.
        from portique.rootpath import dir_in_root

        with dir_in_root(str(rootfs), workdir, mkdirs=True):
            pass
    joined = _joined_namespaces(eng, host)
    if host.get("IpcMode") == "shareable":
        joined["shm_source"] = mount_shm(paths, int(host.get("ShmSize") or 0))
        stack.callback(unmount_shm, paths)
    inputs = cfg.SpecInputs(
        container_id=row.id,
        rootfs=str(rootfs),
        container_dir=str(paths.dir),
        user=user,
        mounts=volumes.oci_mounts(points),
        seccomp=seccomp_for(host, caps),
        init_binary=TINI if os.path.exists(TINI) else _which_tini(),
        host_caps=host_caps,
        netns_path=netns_path,
        devices=run_opts.host_devices(host),
        **joined,
    )
    spec = cfg.build_spec(config, host, inputs)
    atomic_write_json(paths.dir / "config.json", spec, 0o600, fsync=False)
    return spec


def _which_tini() -> str:
    import shutil  # (with bz2 and lzma: ~1.5 ms, only where tini is not at TINI)

    return shutil.which("tini-static") or ""


def _joined_namespaces(eng: Engine, host: dict[str, Any]) -> dict[str, Any]:
    """--pid/--ipc container:X (X running; for ipc, made `shareable` as Docker
    requires) and --ipc host: the namespace paths and the /dev/shm to bind."""
    from portique.engine import db
    from portique.engine.lifecycle import check_init
    from portique.engine.state import has_process
    from portique.errors import InvalidState

    paths: dict[str, str] = {}
    shm = ""
    for ns, key in (("pid", "PidMode"), ("ipc", "IpcMode")):
        mode = str(host.get(key) or "")
        if ns == "ipc" and mode == "host":
            shm = "/dev/shm"
        if not mode.startswith("container:"):
            continue
        other = db.resolve_container(eng.db, mode.removeprefix("container:"))
        what = "PID namespace" if ns == "pid" else "IPC namespace"
        if not has_process(other.status) or other.pid <= 0:
            raise InvalidState(f"cannot join the {what} of {other.name}: it is not running")
        check_init(eng, other.id, other.pid)
        if ns == "ipc":
            if other.config["HostConfig"].get("IpcMode") not in ("shareable", "host"):
                raise InvalidState(
                    f"cannot join the IPC namespace of {other.name}: non-shareable IPC"
                    " (hint: use --ipc shareable for the donor container)"
                )
            shm = str(eng.paths(other.id).dir / "shm") if mode != "host" else "/dev/shm"
        paths[ns] = f"/proc/{other.pid}/ns/{ns}"
    return {"ns_paths": paths, "shm_source": shm}
