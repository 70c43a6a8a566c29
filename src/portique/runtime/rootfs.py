"""Building the container's root filesystem inside its new mount namespace.

`parse_options` is pure (option strings -> flags, propagation, data);
`prepare` mounts everything under the rootfs before pivot_root; `finish`
does what needs the container's own /proc after it (masks, read-only paths,
sysctl, read-only root). Every target resolves inside the rootfs
(runtime/paths.py).
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Literal

from portique.linux import mount as m
from portique.oci.runtime import Mount, Spec
from portique.oci.value import value
from portique.runtime.paths import fd_path, make_in_root, mount_id, open_in_root

_FLAGS: Final[dict[str, tuple[bool, int]]] = {
    # option: (clear?, flag)
    "defaults": (False, 0),
    "ro": (False, m.MS_RDONLY),
    "rw": (True, m.MS_RDONLY),
    "suid": (True, m.MS_NOSUID),
    "nosuid": (False, m.MS_NOSUID),
    "dev": (True, m.MS_NODEV),
    "nodev": (False, m.MS_NODEV),
    "exec": (True, m.MS_NOEXEC),
    "noexec": (False, m.MS_NOEXEC),
    "sync": (False, m.MS_SYNCHRONOUS),
    "async": (True, m.MS_SYNCHRONOUS),
    "dirsync": (False, m.MS_DIRSYNC),
    "remount": (False, m.MS_REMOUNT),
    "mand": (False, m.MS_MANDLOCK),
    "nomand": (True, m.MS_MANDLOCK),
    "atime": (True, m.MS_NOATIME),
    "noatime": (False, m.MS_NOATIME),
    "diratime": (True, m.MS_NODIRATIME),
    "nodiratime": (False, m.MS_NODIRATIME),
    "bind": (False, m.MS_BIND),
    "rbind": (False, m.MS_BIND | m.MS_REC),
    "relatime": (False, m.MS_RELATIME),
    "norelatime": (True, m.MS_RELATIME),
    "strictatime": (False, m.MS_STRICTATIME),
    "nostrictatime": (True, m.MS_STRICTATIME),
    "lazytime": (False, m.MS_LAZYTIME),
    "nolazytime": (True, m.MS_LAZYTIME),
    "symfollow": (True, m.MS_NOSYMFOLLOW),
    "nosymfollow": (False, m.MS_NOSYMFOLLOW),
}
PROPAGATION: Final[dict[str, int]] = {
    "private": m.MS_PRIVATE,
    "rprivate": m.MS_PRIVATE | m.MS_REC,
    "shared": m.MS_SHARED,
    "rshared": m.MS_SHARED | m.MS_REC,
    "slave": m.MS_SLAVE,
    "rslave": m.MS_SLAVE | m.MS_REC,
    "unbindable": m.MS_UNBINDABLE,
    "runbindable": m.MS_UNBINDABLE | m.MS_REC,
}
# Options other runtimes accept that change nothing for a plain mount here;
# idmap and ridmap are Mount.idmap (runtime/idmap.py), not mount(2) options.
_IGNORED: Final = frozenset({"tmpcopyup", "notmpcopyup", "idmap", "ridmap"})
# statvfs f_flag bits a bind remount must keep when the kernel locked them
# (a user namespace cannot clear nosuid/nodev/noexec of its source).
_ST_LOCKED: Final = (
    (os.ST_NOSUID, m.MS_NOSUID),
    (os.ST_NODEV, m.MS_NODEV),
    (os.ST_NOEXEC, m.MS_NOEXEC),
)


@value
class Options:
    """Mount options split into flags, propagation changes and fs data."""

    flags: int
    propagation: tuple[int, ...]
    data: str

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & m.MS_BIND)


def parse_options(options: tuple[str, ...] | list[str]) -> Options:
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    for opt in options:
        if opt in _FLAGS:
            clear, flag = _FLAGS[opt]
            flags = flags & ~flag if clear else flags | flag
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in _IGNORED or opt.startswith("x-"):
            continue
        else:
            data.append(opt)
    return Options(flags, tuple(propagation), ",".join(data))


@value
class CgroupInfo:
    """What a `cgroup` mount needs, computed by the parent from the manager."""

    version: str  # "v1" | "v2"
    # v1: (hierarchy mountpoint name e.g. "cpu,cpuacct", host dir of the container's cgroup)
    dirs: tuple[tuple[str, str], ...] = ()


# ---------------------------------------------------------------- before pivot_root


def prepare(
    spec: Spec,
    rootfs: str,
    bundle: str,
    cgroup: CgroupInfo | None,
    userns: bool,
    idmapped: dict[int, int] | None = None,
) -> frozenset[int]:
    """Set propagation, bind the rootfs onto itself, and make every mount in it.

    `idmapped`: mounts[] index -> a detached id-mapped mount to attach there.
    Returns the ids of the mounts that are the container's own: the rootfs
    and each fresh tmpfs. Only there may the runtime create, replace or
    remove files (devices.py): anything else (a bind mount, a devtmpfs,
    proc) shares its files with the host.
    """
    prop = spec.linux.rootfs_propagation
    # Nothing we mount may propagate back to the host: private (or slave, when
    # asked) before anything else. Shared propagation is applied after pivot.
    first = PROPAGATION.get(prop, m.MS_PRIVATE) if prop in ("slave", "rslave") else m.MS_PRIVATE
    m.mount(None, "/", None, first | m.MS_REC)
    m.mount(rootfs, rootfs, None, m.MS_BIND | m.MS_REC)
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    idmapped = idmapped or {}
    try:
        owned = {mount_id(root_fd)}
        for i, mnt in enumerate(spec.mounts):
            with _naming(f"mounts[{i}] {mnt.destination}"):
                mount_one(root_fd, mnt, bundle, cgroup, userns, idmapped.get(i))
            if mnt.type == "tmpfs" and not parse_options(mnt.options).is_bind:
                fd = open_in_root(root_fd, mnt.destination)
                owned.add(mount_id(fd))
                os.close(fd)
    finally:
        os.close(root_fd)
        for fd in idmapped.values():
            os.close(fd)
    return frozenset(owned)


def _text(e: OSError) -> str:
    text = e.strerror or str(e)
    if e.filename and str(e.filename) not in text:
        text = f"{text}: {e.filename}"
    return text


def mount_one(
    root_fd: int,
    mnt: Mount,
    bundle: str,
    cgroup: CgroupInfo | None,
    userns: bool,
    tree_fd: int | None = None,
) -> None:
    opts = parse_options(mnt.options)
    if mnt.type == "bind":
        opts = Options(opts.flags | m.MS_BIND, opts.propagation, opts.data)
    if mnt.type == "cgroup":
        _mount_cgroup(root_fd, mnt, opts, cgroup)
        return
    source = mnt.source
    if opts.is_bind:
        source = source if source.startswith("/") else posixpath.join(bundle, source)
        if not os.path.exists(source):
            raise OSError(errno.ENOENT, f"bind source {source} does not exist", source)
        kind: Literal["dir", "file"] = "dir" if os.path.isdir(source) else "file"
    else:
        kind = "dir"
    fd = make_in_root(root_fd, mnt.destination, kind)
    try:
        if tree_fd is not None:
            # An id-mapped bind, made in stage 1: attach it, then flags as for a bind.
            m.move_mount(tree_fd, fd)
            extra = opts.flags & ~(m.MS_BIND | m.MS_REC | m.MS_REMOUNT)
            if extra:
                remount(root_fd, mnt.destination, extra)
            _propagate(root_fd, mnt.destination, opts)
        elif opts.is_bind:
            _bind(source, fd, root_fd, mnt.destination, opts, userns)
        else:
            try:
                m.mount(source or mnt.type, fd_path(fd), mnt.type, opts.flags, opts.data or None)
            except PermissionError:
                if mnt.type != "sysfs" or not userns:
                    raise
                # A user namespace that does not own the network namespace
                # cannot mount sysfs: give it the host's, read-only (as runc).
                ro = Options(m.MS_BIND | m.MS_REC | m.MS_RDONLY | opts.flags, (), "")
                _bind("/sys", fd, root_fd, mnt.destination, ro, userns)
                return
            _propagate(root_fd, mnt.destination, opts)
    finally:
        os.close(fd)


def _bind(source: str, fd: int, root_fd: int, dest: str, opts: Options, userns: bool) -> None:
    m.mount(source, fd_path(fd), None, m.MS_BIND | (opts.flags & m.MS_REC))
    extra = opts.flags & ~(m.MS_BIND | m.MS_REC | m.MS_REMOUNT)
    if extra:
        # Flags on a bind take a second call (mount(2) ignores them with MS_BIND).
        remount(root_fd, dest, extra)
    _propagate(root_fd, dest, opts)


def remount(root_fd: int, dest: str, flags: int) -> None:
    """Remount the bind mount at `dest` (inside the root) with `flags`, keeping locked ones."""
    fd = open_in_root(root_fd, dest)
    try:
        path = fd_path(fd)
        flags |= _locked_flags(path)
        m.mount(None, path, None, m.MS_BIND | m.MS_REMOUNT | flags)
    finally:
        os.close(fd)


def _locked_flags(path: str) -> int:
    st = os.statvfs(path)
    return sum(flag for bit, flag in _ST_LOCKED if st.f_flag & bit)


def _propagate(root_fd: int, dest: str, opts: Options) -> None:
    if not opts.propagation:
        return
    fd = open_in_root(root_fd, dest)
    try:
        for flag in opts.propagation:
            m.mount(None, fd_path(fd), None, flag)
    finally:
        os.close(fd)


def _mount_cgroup(root_fd: int, mnt: Mount, opts: Options, cgroup: CgroupInfo | None) -> None:
    fd = make_in_root(root_fd, mnt.destination, "dir")
    try:
        if cgroup is None or cgroup.version == "v2":
            m.mount("cgroup", fd_path(fd), "cgroup2", opts.flags, None)
            return
        # v1: a tmpfs with the container's directory of each hierarchy bound in.
        m.mount("cgroup", fd_path(fd), "tmpfs", opts.flags & ~m.MS_RDONLY, "mode=755")
    finally:
        os.close(fd)
    ro = opts.flags & m.MS_RDONLY
    for name, host_dir in cgroup.dirs:
        sub = posixpath.join(mnt.destination, name)
        sfd = make_in_root(root_fd, sub, "dir")
        try:
            m.mount(host_dir, fd_path(sfd), None, m.MS_BIND | m.MS_REC)
        finally:
            os.close(sfd)
        remount(root_fd, sub, m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC | ro)
        # cpu,cpuacct is also reachable as cpu and cpuacct, as on the host.
        if "," in name:
            dfd = open_in_root(root_fd, mnt.destination)
            try:
                for alias in name.split(","):
                    try:
                        os.symlink(name, alias, dir_fd=dfd)
                    except FileExistsError:
                        pass
            finally:
                os.close(dfd)
    if ro:
        remount_fs(root_fd, mnt.destination, m.MS_RDONLY | m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC)


def remount_fs(root_fd: int, dest: str, flags: int) -> None:
    fd = open_in_root(root_fd, dest)
    try:
        m.mount(None, fd_path(fd), None, m.MS_REMOUNT | flags)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- pivot


def pivot(rootfs: str, no_pivot: bool) -> None:
    """Make `rootfs` the root: pivot_root(".", ".") then detach the old root."""
    from portique.linux.fs import pivot_root

    if no_pivot:
        os.chdir(rootfs)
        m.mount(rootfs, "/", None, m.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
        return
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        # pivot_root(".", ".") stacks the old root on top of the new one; no
        # directory for it is needed inside the rootfs.
        pivot_root(".", ".")
        os.fchdir(old)
        # Make sure the unmount below cannot propagate to the host.
        m.mount(None, ".", None, m.MS_SLAVE | m.MS_REC)
        m.umount(".", m.MNT_DETACH)
    finally:
        os.close(old)
        os.close(new)
    os.chdir("/")


# ---------------------------------------------------------------- after pivot_root


def finish(spec: Spec) -> None:
    """Masks, read-only paths, sysctl, read-only root and root propagation (inside)."""
    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for key, value in spec.linux.sysctl:
            with _naming(f"linux.sysctl {key}"):
                write_sysctl(root_fd, key, value)
        for path in spec.linux.readonly_paths:
            with _naming(f"linux.readonlyPaths {path}"):
                readonly_path(root_fd, path)
        if spec.linux.masked_paths:
            devnull_fd = open_null_device(root_fd)
            try:
                for path in spec.linux.masked_paths:
                    with _naming(f"linux.maskedPaths {path}"):
                        mask_path(root_fd, path, devnull_fd)
            finally:
                os.close(devnull_fd)
    finally:
        os.close(root_fd)
    with _naming("root.readonly"):
        if spec.root.readonly:
            m.mount(None, "/", None, m.MS_BIND | m.MS_REMOUNT | m.MS_RDONLY | _locked_flags("/"))
    prop = spec.linux.rootfs_propagation
    if prop and prop not in ("slave", "rslave", "private", "rprivate"):
        with _naming(f"linux.rootfsPropagation {prop}"):
            m.mount(None, "/", None, PROPAGATION[prop])


@contextmanager
def _naming(what: str) -> Iterator[None]:
    """Prefix an OSError with the config field it came from."""
    try:
        yield
    except OSError as e:
        raise OSError(e.errno, f"{what}: {_text(e)}") from None


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


def readonly_path(root_fd: int, path: str) -> None:
    try:
        fd = open_in_root(root_fd, path)
    except FileNotFoundError:
        return
    try:
        m.mount(fd_path(fd), fd_path(fd), None, m.MS_BIND | m.MS_REC)
    finally:
        os.close(fd)
    remount(root_fd, path, m.MS_RDONLY | m.MS_REC)


def mask_path(root_fd: int, path: str, devnull_fd: int) -> None:
    """Hide `path`: the host's /dev/null over a file, an empty read-only tmpfs over a dir.

    `devnull_fd` comes from open_null_device: checked, never a symlink.
    """
    try:
        fd = open_in_root(root_fd, path)
    except FileNotFoundError:
        return
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            m.mount("tmpfs", fd_path(fd), "tmpfs", m.MS_RDONLY, "size=0k")
        else:
            m.mount(fd_path(devnull_fd), fd_path(fd), None, m.MS_BIND)
    finally:
        os.close(fd)


def open_null_device(root_fd: int) -> int:
    """The container's /dev/null, opened without following a symlink and
    checked to be the 1:3 character device (CVE-2025-31133: a /dev/null
    replaced by a symlink must not become the source of a mask)."""
    fd = open_in_root(root_fd, "/dev/null", os.O_PATH | os.O_NOFOLLOW)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise OSError(
            errno.EINVAL, "/dev/null in the container is not the null device", "/dev/null"
        )
    return fd
