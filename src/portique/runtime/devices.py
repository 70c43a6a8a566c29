"""Device nodes and /dev links inside the rootfs (before pivot_root).

Outside a user namespace each device is a fresh mknod; inside one mknod is
not allowed, so the host's node is bind-mounted onto an empty file instead
(as runc does), after checking that the host path is that very device.

Devices replace whatever the image put at their path, so they are only ever
created in a directory that lies on one of the container's own mounts (the
rootfs, or a tmpfs the spec mounted; rootfs.apply lists them). A /dev
bound from the host (`-v /dev:/dev`) is left as it is, as runc does, and a
symlink or bind mount that leads elsewhere (an image whose /dev points into
a host directory bound at /host) fails the create: without this, the
unlink below removed the host's /dev/null and mknod put a new one there.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat

from portique.linux import mount as m
from portique.oci.runtime import Device
from portique.oci.value import value
from portique.runtime.paths import fd_path, open_in_root

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Final

    from portique.linux.kernel import Kernel
    from portique.oci.resources import LinuxResources
    from portique.oci.runtime import Mount, Spec

# The devices the runtime spec says every container gets.
DEFAULT_DEVICES: Final = (
    Device("c", "/dev/null", 1, 3, 0o666, 0, 0),
    Device("c", "/dev/zero", 1, 5, 0o666, 0, 0),
    Device("c", "/dev/full", 1, 7, 0o666, 0, 0),
    Device("c", "/dev/random", 1, 8, 0o666, 0, 0),
    Device("c", "/dev/urandom", 1, 9, 0o666, 0, 0),
    Device("c", "/dev/tty", 5, 0, 0o666, 0, 0),
)
DEFAULT_LINKS: Final = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
)
_TYPE_BITS: Final = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def needs_dev_setup(mounts: tuple[Mount, ...]) -> bool:
    """False when /dev itself is a bind mount: it is someone else's (runc's rule)."""
    return not any(
        posixpath.normpath("/" + mnt.destination.lstrip("/")) == "/dev"
        and (mnt.type == "bind" or "bind" in mnt.options or "rbind" in mnt.options)
        for mnt in mounts
    )


@value
class Node:
    """A device node at dev.path: made with mknod (a fifo with mkfifo), or in
    a user namespace, where mknod is refused, the host's node bound there."""

    device: Device
    bind_host: bool


@value
class Link:
    target: str
    path: str


@value
class Dir:
    path: str
    mode: int


DeviceStep = Node | Link | Dir


def plan(spec: Spec, userns: bool) -> list[DeviceStep]:
    """The default devices, linux.devices, the /dev links and /dev/shm
    (nothing when /dev is bound from elsewhere)."""
    if not needs_dev_setup(spec.mounts):
        return []
    wanted = {d.path: d for d in DEFAULT_DEVICES}
    wanted.update({d.path: d for d in spec.linux.devices})
    steps: list[DeviceStep] = [Node(d, userns and d.type != "p") for d in wanted.values()]
    steps.extend(Link(target, link) for target, link in DEFAULT_LINKS)
    steps.append(Dir("/dev/shm", 0o1777))
    return steps


def create_devices(
    rootfs: str, steps: Sequence[DeviceStep], owned: frozenset[int], kernel: Kernel
) -> None:
    """Carry out a device plan in `rootfs`; `owned`: the ids of the
    container's own mounts (rootfs.apply)."""
    if not steps:
        return
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    # Each parent directory (/dev, mostly) is resolved and checked once and
    # then used through its fd for every node and link in it: the fd pins
    # the directory the check passed on, however the paths change after.
    parents: dict[str, int] = {}
    try:
        for step in steps:
            if isinstance(step, Dir):
                os.close(own_dir(root_fd, step.path, owned, kernel, step.mode, check_last=False))
                continue
            path = step.device.path if isinstance(step, Node) else step.path
            parent_path, name = posixpath.split(path)
            parent = parents.get(parent_path)
            if parent is None:
                parent = parents[parent_path] = own_dir(root_fd, parent_path, owned, kernel)
            if isinstance(step, Node):
                create_device(parent, name, step, kernel)
            else:
                try:
                    os.symlink(step.target, name, dir_fd=parent)
                except FileExistsError:
                    pass
    finally:
        for fd in parents.values():
            os.close(fd)
        os.close(root_fd)


def create_device(parent: int, name: str, node: Node, kernel: Kernel) -> None:
    """Make `node` as `name` in the directory `parent` (own_dir: checked to
    lie on one of the container's own mounts)."""
    dev = node.device
    # Whatever the image put there (a file, or a symlink aimed at the host)
    # is replaced; unlinkat never follows the link, and `parent` is on the
    # container's own file system.
    try:
        os.unlink(name, dir_fd=parent)
    except (FileNotFoundError, IsADirectoryError):
        pass
    mode = dev.file_mode if dev.file_mode is not None else 0o666
    if node.bind_host:
        _bind_host_device(parent, name, dev, kernel)
        return  # the host's node (bound) is not ours to chmod or chown
    if dev.type == "p":
        os.mkfifo(name, mode, dir_fd=parent)
    else:
        kernel.mknod(name, _TYPE_BITS[dev.type] | mode, os.makedev(dev.major, dev.minor), parent)
    os.chmod(name, mode, dir_fd=parent)  # mknod and mkfifo are filtered by the umask
    if dev.uid is not None or dev.gid is not None:
        kernel.chown(
            name,
            -1 if dev.uid is None else dev.uid,
            -1 if dev.gid is None else dev.gid,
            parent,
        )


def own_dir(
    root_fd: int,
    path: str,
    owned: frozenset[int],
    kernel: Kernel,
    mode: int = 0o755,
    *,
    check_last: bool = True,
) -> int:
    """Open the directory `path` inside the root (O_PATH), creating missing
    components only in directories on one of the `owned` mounts; with
    `check_last`, `path` itself must lie on one (something is created in it)."""
    parts = [p for p in path.split("/") if p and p != "."]
    cur = open_in_root(root_fd, "/")
    try:
        for i, name in enumerate(parts):
            sub = "/".join(parts[: i + 1])
            try:
                nxt = open_in_root(root_fd, sub)
            except FileNotFoundError:
                _require_owned(cur, "/" + "/".join(parts[:i]), owned, kernel)
                # mkdirat never follows a (dangling) symlink: EEXIST then.
                os.mkdir(name, mode, dir_fd=cur)
                nxt = open_in_root(root_fd, sub)
                os.chmod(fd_path(nxt), mode)  # mkdir is filtered by the umask
            os.close(cur)
            cur = nxt
        if check_last:
            _require_owned(cur, "/" + "/".join(parts), owned, kernel)
    except BaseException:
        os.close(cur)
        raise
    return cur


def _require_owned(fd: int, path: str, owned: frozenset[int], kernel: Kernel) -> None:
    if kernel.mount_id(fd) not in owned:
        raise OSError(
            errno.EXDEV,
            f"cannot create devices in {path}: it is not on the container's root or "
            "one of its tmpfs mounts (a symlink or a bind mount leads out of the container)",
            path,
        )


def _bind_host_device(parent: int, name: str, dev: Device, kernel: Kernel) -> None:
    # The source is the host's node at the same path: it must be that very
    # device, or any host file named in linux.devices would be bound inside.
    src = os.open(dev.path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = kernel.fstat(src)
        want = stat.S_IFBLK if dev.type == "b" else stat.S_IFCHR
        if stat.S_IFMT(st.st_mode) != want or st.st_rdev != os.makedev(dev.major, dev.minor):
            kind = "block" if dev.type == "b" else "character"
            raise OSError(
                errno.EINVAL,
                f"host {dev.path} is not the {kind} device {dev.major}:{dev.minor}",
                dev.path,
            )
        fd = os.open(
            name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o000, dir_fd=parent
        )
        os.close(fd)
        target = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            kernel.mount(fd_path(src), fd_path(target), None, m.MS_BIND)
        finally:
            os.close(target)
    finally:
        os.close(src)


def with_device_rules(
    resources: LinuxResources | None, devices: tuple[Device, ...]
) -> LinuxResources:
    """The spec's device cgroup rules followed by those the runtime's own
    devices need (the default set, ptys, and each of linux.devices), as runc
    appends its allowed list: rules apply in order, so these come last."""
    from portique.oci.resources import DeviceRule, LinuxResources
    from portique.oci.value import replace

    base = resources if resources is not None else LinuxResources()
    rules = [
        DeviceRule(True, "c", None, None, "m"),
        DeviceRule(True, "b", None, None, "m"),
        *(DeviceRule(True, "c", d.major, d.minor, "rwm") for d in DEFAULT_DEVICES),
        DeviceRule(True, "c", 5, 1, "rwm"),  # /dev/console
        DeviceRule(True, "c", 5, 2, "rwm"),  # /dev/ptmx
        DeviceRule(True, "c", 136, None, "rwm"),  # /dev/pts/*
    ]
    # A device the spec's own rules name exactly keeps the access they give it
    # (`run --device /dev/sda:/dev/xvdc:r` is read-only, as with runc).
    ruled = {(r.type, r.major, r.minor) for r in base.devices}
    for d in devices:
        kind = "c" if d.type == "u" else d.type
        if kind in ("c", "b") and (kind, d.major, d.minor) not in ruled:
            rules.append(DeviceRule(True, kind, d.major, d.minor, "rwm"))
    return replace(base, devices=(*base.devices, *rules))
