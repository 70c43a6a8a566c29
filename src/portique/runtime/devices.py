"""Device nodes and /dev links inside the rootfs (before pivot_root).

Outside a user namespace each device is a fresh mknod; inside one mknod is
not allowed, so the host's node is bind-mounted onto an empty file instead
(as runc does).
"""

from __future__ import annotations

import os
import posixpath
import stat
from typing import TYPE_CHECKING, Final

from portique.linux import mount as m
from portique.oci.runtime import Device
from portique.runtime.paths import fd_path, make_in_root, open_in_root

if TYPE_CHECKING:
    from portique.oci.resources import LinuxResources

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


def create_devices(rootfs: str, devices: tuple[Device, ...], userns: bool) -> None:
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        wanted = {d.path: d for d in DEFAULT_DEVICES}
        wanted.update({d.path: d for d in devices})
        for dev in wanted.values():
            create_device(root_fd, dev, userns)
        for target, link in DEFAULT_LINKS:
            _symlink(root_fd, target, link)
        shm = make_in_root(root_fd, "/dev/shm", "dir", 0o1777)
        os.close(shm)
    finally:
        os.close(root_fd)


def create_device(root_fd: int, dev: Device, userns: bool) -> None:
    parent_path, name = posixpath.split(dev.path)
    parent = make_in_root(root_fd, parent_path, "dir")
    try:
        # Whatever the image put there (a file, or a symlink aimed at the
        # host) is replaced; unlinkat never follows the link.
        try:
            os.unlink(name, dir_fd=parent)
        except (FileNotFoundError, IsADirectoryError):
            pass
        mode = dev.file_mode if dev.file_mode is not None else 0o666
        if userns:
            if dev.type == "p":
                os.mkfifo(name, mode, dir_fd=parent)
            else:
                _bind_host_device(parent, name, dev)
        else:
            kind = _TYPE_BITS[dev.type]
            os.mknod(name, kind | mode, os.makedev(dev.major, dev.minor), dir_fd=parent)
            os.chmod(name, mode, dir_fd=parent)  # mknod is filtered by the umask
        bound = userns and dev.type != "p"  # the host's node: not ours to chown
        if not bound and (dev.uid is not None or dev.gid is not None):
            os.chown(
                name,
                -1 if dev.uid is None else dev.uid,
                -1 if dev.gid is None else dev.gid,
                dir_fd=parent,
                follow_symlinks=False,
            )
    finally:
        os.close(parent)


def _bind_host_device(parent: int, name: str, dev: Device) -> None:
    fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o000, dir_fd=parent)
    os.close(fd)
    target = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        m.mount(dev.path, fd_path(target), None, m.MS_BIND)
    finally:
        os.close(target)


def _symlink(root_fd: int, target: str, link: str) -> None:
    parent_path, name = posixpath.split(link)
    parent = open_in_root(root_fd, parent_path)
    try:
        os.symlink(target, name, dir_fd=parent)
    except FileExistsError:
        pass
    finally:
        os.close(parent)


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
    for d in devices:
        if d.type in ("c", "b"):
            rules.append(DeviceRule(True, d.type, d.major, d.minor, "rwm"))
        elif d.type == "u":
            rules.append(DeviceRule(True, "c", d.major, d.minor, "rwm"))
    return replace(base, devices=(*base.devices, *rules))
