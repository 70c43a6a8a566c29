"""Building the container's root filesystem: a mount plan carried out.

runtime/mountplan.py computes the steps from the spec; `apply` does them
through a `Kernel` (linux/kernel.py), inside the container's new mount
namespace: before pivot_root with the rootfs as the root, after it with
"/". Every target is resolved inside the root (runtime/paths.py) and the
mount made onto /proc/self/fd/<fd>, so no symlink of the image redirects a
mount out of the container. `pivot` switches the root.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from portique.linux import mount as m
from portique.runtime import mountplan as mp
from portique.runtime.errors import naming
from portique.runtime.paths import fd_path, make_in_root, open_in_root, open_plain_dir

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Final, Literal

    from portique.linux.kernel import Kernel

# Flags the kernel locks on a bind made in a user namespace (it cannot clear
# nosuid/nodev/noexec of its source): a remount must repeat them.
_LOCKED: Final = m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC
# A read-only remount fails with EBUSY while a write through that mount is
# in progress (mnt_hold_writers): tried a few times, as runc does.
BUSY_TRIES: Final = 5
_BUSY_DELAY: Final = 0.01


def apply(
    steps: Sequence[mp.Step],
    kernel: Kernel,
    root: str,
    idmapped: Mapping[int, int] | None = None,
) -> frozenset[int]:
    """Carry out `steps` with `root` as the container's root directory.

    `idmapped`: mounts[] index -> detached id-mapped mount (closed here).
    Returns the ids of the mounts that are the container's own: the rootfs
    and each fresh tmpfs. Only there may the runtime create, replace or
    remove files (devices.py): anything else (a bind mount, a devtmpfs,
    proc) shares its files with the host.
    """
    run = _Apply(kernel, root, dict(idmapped or {}))
    try:
        for step in steps:
            with naming(step.field):
                run.step(step)
    finally:
        run.close()
    return frozenset(run.owned)


class _Apply:
    def __init__(self, kernel: Kernel, root: str, idmapped: dict[int, int]) -> None:
        self.kernel = kernel
        self.root = root
        self.idmapped = idmapped
        self.root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.owned: set[int] = set()
        self.null_fd = -1

    def close(self) -> None:
        os.close(self.root_fd)
        if self.null_fd >= 0:
            os.close(self.null_fd)
        for fd in self.idmapped.values():
            os.close(fd)
        self.idmapped.clear()

    def step(self, step: mp.Step) -> None:
        k = self.kernel
        if isinstance(step, mp.Propagate):
            if step.dest is None:
                k.mount(None, "/", None, step.flags)
            else:
                with self._open(step.dest) as fd:
                    k.mount(None, fd_path(fd), None, step.flags)
        elif isinstance(step, mp.BindRootfs):
            k.mount(self.root, self.root, None, m.MS_BIND | m.MS_REC)
            # The fd must name the new mount, not the directory under it.
            os.close(self.root_fd)
            self.root_fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            self.owned.add(k.mount_id(self.root_fd))
        elif isinstance(step, mp.MountFs):
            self._mount_fs(step)
        elif isinstance(step, mp.Bind):
            self._bind(step)
        elif isinstance(step, mp.AttachIdmapped):
            tree = self.idmapped.pop(step.index)
            try:
                kind: Literal["dir", "file"] = (
                    "dir" if stat.S_ISDIR(k.fstat(tree).st_mode) else "file"
                )
                with self._make(step.dest, kind) as fd:
                    k.move_mount(tree, fd)
            finally:
                os.close(tree)
            if step.flags:
                self._remount(step.dest, step.flags)
        elif isinstance(step, mp.Remount):
            self._remount(step.dest, step.flags)
        elif isinstance(step, mp.RemountFs):
            with self._open(step.dest) as fd:
                self._busy_retry(None, fd_path(fd), m.MS_REMOUNT | step.flags)
        elif isinstance(step, mp.Symlink):
            with self._open(step.dest) as dfd:
                try:
                    os.symlink(step.target, step.name, dir_fd=dfd)
                except FileExistsError:
                    pass
        elif isinstance(step, mp.Sysctl):
            write_sysctl(self.root_fd, step.key, step.value)
        elif isinstance(step, mp.ReadOnlyPath):
            self._readonly_path(step.path)
        elif isinstance(step, mp.MaskPath):
            self._mask_path(step.path)
        elif isinstance(step, mp.ReadOnlyRoot):
            self._remount("/", m.MS_RDONLY)
        else:  # pragma: no cover - the Step union is closed
            raise TypeError(f"unknown mount step {step!r}")

    # ------------------------------------------------------------ steps

    def _mount_fs(self, step: mp.MountFs) -> None:
        if step.plain_dir:
            try:
                fd = open_plain_dir(self.root_fd, step.dest)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                raise OSError(
                    e.errno,
                    f"{step.fstype} must be mounted on a plain directory: {e.strerror}",
                ) from None
        else:
            fd = make_in_root(self.root_fd, step.dest, "dir")
        try:
            try:
                self.kernel.mount(
                    step.source, fd_path(fd), step.fstype, step.flags, step.data or None
                )
            except OSError as e:
                if step.fstype == "devpts" and e.errno == errno.EINVAL and "gid=" in step.data:
                    # A user namespace that maps no tty group (a rootless
                    # engine with one id): the ptys keep the caller's group.
                    data = ",".join(o for o in step.data.split(",") if not o.startswith("gid="))
                    self.kernel.mount(step.source, fd_path(fd), step.fstype, step.flags, data)
                elif step.fallback is None or e.errno not in step.fallback_on:
                    raise
                else:
                    self._bind_at(fd, step.fallback)
                    return
        finally:
            os.close(fd)
        if step.owned:
            with self._open(step.dest) as new:
                self.owned.add(self.kernel.mount_id(new))

    def _bind(self, step: mp.Bind) -> None:
        try:
            st = os.stat(step.source)  # what os.path.exists and isdir would each ask
        except (OSError, ValueError):
            raise OSError(
                errno.ENOENT, f"bind source {step.source} does not exist", step.source
            ) from None
        kind: Literal["dir", "file"] = "dir" if stat.S_ISDIR(st.st_mode) else "file"
        with self._make(step.dest, kind) as fd:
            self._bind_at(fd, step)

    def _bind_at(self, fd: int, step: mp.Bind) -> None:
        rec = m.MS_REC if step.recursive else 0
        self.kernel.mount(step.source, fd_path(fd), None, m.MS_BIND | rec)
        if step.flags & ~(m.MS_BIND | m.MS_REC | m.MS_REMOUNT):
            self._remount(step.dest, step.flags)

    def _remount(self, dest: str, flags: int) -> None:
        """Remount the bind mount at `dest` with `flags`, keeping locked ones."""
        flags &= ~(m.MS_BIND | m.MS_REC | m.MS_REMOUNT)
        with self._open(dest) as fd:
            path = fd_path(fd)
            flags |= self.kernel.mount_flags(path) & _LOCKED
            self._busy_retry(None, path, m.MS_BIND | m.MS_REMOUNT | flags)

    def _busy_retry(self, source: str | None, target: str, flags: int) -> None:
        delay = _BUSY_DELAY
        for attempt in range(BUSY_TRIES):
            try:
                self.kernel.mount(source, target, None, flags)
                return
            except OSError as e:
                if e.errno != errno.EBUSY or attempt == BUSY_TRIES - 1:
                    raise
            time.sleep(delay)
            delay *= 2

    def _readonly_path(self, path: str) -> None:
        try:
            fd = open_in_root(self.root_fd, path)
        except FileNotFoundError:
            return
        try:
            self.kernel.mount(fd_path(fd), fd_path(fd), None, m.MS_BIND | m.MS_REC)
        finally:
            os.close(fd)
        self._remount(path, m.MS_RDONLY | m.MS_REC)

    def _mask_path(self, path: str) -> None:
        try:
            fd = open_in_root(self.root_fd, path)
        except FileNotFoundError:
            return
        try:
            if stat.S_ISDIR(self.kernel.fstat(fd).st_mode):
                self.kernel.mount("tmpfs", fd_path(fd), "tmpfs", m.MS_RDONLY, "size=0k")
            else:
                if self.null_fd < 0:
                    self.null_fd = open_null_device(self.root_fd, self.kernel)
                self.kernel.mount(fd_path(self.null_fd), fd_path(fd), None, m.MS_BIND)
        finally:
            os.close(fd)

    # ------------------------------------------------------------ fds

    def _open(self, path: str) -> _Closing:
        return _Closing(open_in_root(self.root_fd, path))

    def _make(self, path: str, kind: Literal["dir", "file"]) -> _Closing:
        return _Closing(make_in_root(self.root_fd, path, kind))


# Context managers as small classes, not contextlib's decorator: contextlib
# costs every cold portique-runtime call ~1 ms of imports (runtime/undo.py).


class _Closing:
    """`with _Closing(fd) as fd:` closes the fd when the block ends."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def write_sysctl(root_fd: int, key: str, value: str) -> None:
    parts = key.split(".")
    if any(p in ("", "..") for p in parts):
        raise OSError(errno.EINVAL, f"invalid sysctl name {key!r}", key)
    # sysctl(8) convention: "/" inside a name component stands for a ".".
    rel = "proc/sys/" + "/".join(p.replace("/", ".") for p in parts)
    fd = open_in_root(root_fd, rel, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def open_null_device(root_fd: int, kernel: Kernel) -> int:
    """The container's /dev/null, opened without following a symlink and
    checked to be the 1:3 character device (CVE-2025-31133: a /dev/null
    replaced by a symlink must not become the source of a mask)."""
    fd = open_in_root(root_fd, "/dev/null", os.O_PATH | os.O_NOFOLLOW)
    st = kernel.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise OSError(
            errno.EINVAL, "/dev/null in the container is not the null device", "/dev/null"
        )
    return fd


# ---------------------------------------------------------------- pivot


def pivot(rootfs: str, no_pivot: bool, kernel: Kernel) -> None:
    """Make `rootfs` the root: pivot_root(".", ".") then detach the old root."""
    if no_pivot:
        os.chdir(rootfs)
        kernel.mount(rootfs, "/", None, m.MS_MOVE)
        kernel.chroot(".")
        os.chdir("/")
        return
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        # pivot_root(".", ".") stacks the old root on top of the new one; no
        # directory for it is needed inside the rootfs.
        kernel.pivot_root(".", ".")
        os.fchdir(old)
        # Make sure the unmount below cannot propagate to the host.
        kernel.mount(None, ".", None, m.MS_SLAVE | m.MS_REC)
        kernel.umount(".", m.MNT_DETACH)
    finally:
        os.close(old)
        os.close(new)
    os.chdir("/")


__all__ = ["apply", "naming", "open_null_device", "pivot", "write_sysctl"]
