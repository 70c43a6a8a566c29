"""`cp` and `export`: copying out of and into a hostile container filesystem.

The container side is always handled through directory fds: the starting
point is resolved with `portique.rootpath` (symlinks resolved inside the
root), and every step below it opens one component with O_NOFOLLOW relative
to its parent's fd. Symlinks are copied as symlinks, never followed, so a
container cannot redirect a copy to or from the host's files even if it
swaps directories for symlinks while we work. A running container is reached
through /proc/<pid>/root, so its volumes and tmpfs mounts are visible.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import BinaryIO

from portique.engine import db
from portique.engine.paths import ContainerPaths
from portique.errors import InvalidArgument, NotFound

_O_PATH = os.O_PATH
MAX_DEPTH = 256
CHUNK = 1 << 20


@contextmanager
def container_root(row: db.ContainerRow) -> Iterator[str]:
    """A path to the container's root: /proc/<pid>/root while running, else the mounted rootfs."""
    if row.status in ("running", "paused") and row.pid:
        yield f"/proc/{row.pid}/root"
        return
    from portique.engine import bundle

    paths = ContainerPaths.of(row.id)
    with ExitStack() as stack:
        rootfs = bundle.mount_rootfs(row, paths)
        stack.callback(bundle.unmount_rootfs, paths)
        yield str(rootfs)


def _open_root(root: str) -> int:
    return os.open(root, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _resolve(root_fd: int, path: str) -> int:
    from portique.rootpath import open_in_root

    return open_in_root(root_fd, path, flags=_O_PATH)


def _split(path: str) -> tuple[str, str]:
    norm = os.path.normpath("/" + path)
    parent, name = os.path.split(norm)
    return parent or "/", name


# ------------------------------------------------------------------ copy out


def copy_out(root: str, src: str, dest: str) -> None:
    """Container `src` -> host `dest` (Docker's cp rules for files and dirs)."""
    rfd = _open_root(root)
    try:
        parent, name = _split(src)
        pfd = _resolve(rfd, parent)
        try:
            if not name:
                # The root itself: its contents into `dest`.
                _copy_dir_out(pfd, dest, 0)
                return
            try:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                raise NotFound(f"could not find the file {src} in container") from None
            if stat.S_ISLNK(st.st_mode) and src.endswith("/"):
                fd = _resolve(rfd, src)
                try:
                    _copy_dir_out(fd, _dest_for(dest, name, True), 0)
                finally:
                    os.close(fd)
                return
            contents_only = src.endswith("/.")
            target = dest if contents_only else _dest_for(dest, name, stat.S_ISDIR(st.st_mode))
            _copy_entry_out(pfd, name, st, target, 0)
        finally:
            os.close(pfd)
    finally:
        os.close(rfd)


def _dest_for(dest: str, name: str, is_dir: bool) -> str:
    if os.path.isdir(dest):
        return os.path.join(dest, name)
    parent = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(parent):
        raise InvalidArgument(f"destination directory {parent} does not exist")
    if dest.endswith("/") and not is_dir:
        raise InvalidArgument(f"destination directory {dest} does not exist")
    return dest


def _copy_entry_out(pfd: int, name: str, st: os.stat_result, target: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidArgument("directory tree too deep")
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        link = os.readlink(name, dir_fd=pfd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        os.symlink(link, target)
    elif stat.S_ISDIR(mode):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            _copy_dir_out(fd, target, depth)
        finally:
            os.close(fd)
    elif stat.S_ISREG(mode):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=pfd)
        try:
            if os.path.islink(target):
                os.unlink(target)
            out = os.open(
                target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, stat.S_IMODE(mode)
            )
            try:
                _pipe_fds(fd, out)
                os.fchmod(out, stat.S_IMODE(mode))
            finally:
                os.close(out)
        finally:
            os.close(fd)
    # Devices, fifos and sockets are skipped: they carry no data to copy.


def _copy_dir_out(fd: int, target: str, depth: int) -> None:
    st = os.stat(fd)
    os.makedirs(target, exist_ok=True)
    os.chmod(target, stat.S_IMODE(st.st_mode))
    dfd = (
        fd
        if not _is_path_fd(fd)
        else os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    )
    try:
        for entry in os.listdir(dfd):
            est = os.stat(entry, dir_fd=dfd, follow_symlinks=False)
            _copy_entry_out(dfd, entry, est, os.path.join(target, entry), depth + 1)
    finally:
        if dfd != fd:
            os.close(dfd)


def _is_path_fd(fd: int) -> bool:
    import fcntl

    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & _O_PATH)


def _pipe_fds(src: int, dst: int) -> None:
    for _ in range(1 << 30):
        data = os.read(src, CHUNK)
        if not data:
            return
        view = memoryview(data)
        while view:
            view = view[os.write(dst, view) :]


# ------------------------------------------------------------------- copy in


def copy_in(root: str, src: str, dest: str) -> None:
    """Host `src` -> container `dest`."""
    if not os.path.lexists(src):
        raise NotFound(f"could not find the file {src}")
    rfd = _open_root(root)
    try:
        try:
            dfd = _resolve(rfd, dest)
            dest_is_dir = stat.S_ISDIR(os.stat(dfd).st_mode)
        except FileNotFoundError:
            dfd, dest_is_dir = -1, False
        src_is_dir = os.path.isdir(src) and not os.path.islink(src)
        if dfd >= 0 and dest_is_dir:
            parent_fd = _dir_fd(dfd)
            name = "." if src.endswith("/.") else os.path.basename(os.path.normpath(src))
        else:
            if dfd >= 0:
                os.close(dfd)
            if dest.endswith("/") and not src_is_dir:
                raise InvalidArgument(
                    f"destination directory {dest} does not exist in the container"
                )
            parent, name = _split(dest)
            try:
                pfd = _resolve(rfd, parent)
            except FileNotFoundError:
                raise InvalidArgument(
                    f"destination directory {parent} does not exist in the container"
                ) from None
            parent_fd = _dir_fd(pfd)
            os.close(pfd)
        try:
            if name == ".":
                for entry in os.listdir(src):
                    _copy_entry_in(os.path.join(src, entry), parent_fd, entry, 0)
            else:
                _copy_entry_in(src, parent_fd, name, 0)
        finally:
            os.close(parent_fd)
    finally:
        os.close(rfd)


def _dir_fd(path_fd: int) -> int:
    return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=path_fd)


def _copy_entry_in(src: str, pfd: int, name: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidArgument("directory tree too deep")
    st = os.lstat(src)
    mode = st.st_mode
    existing = None
    with contextlib.suppress(FileNotFoundError):
        existing = os.stat(name, dir_fd=pfd, follow_symlinks=False)
    if stat.S_ISDIR(mode):
        if existing is not None and not stat.S_ISDIR(existing.st_mode):
            os.unlink(name, dir_fd=pfd)
            existing = None
        if existing is None:
            os.mkdir(name, stat.S_IMODE(mode), dir_fd=pfd)
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            for entry in os.listdir(src):
                _copy_entry_in(os.path.join(src, entry), fd, entry, depth + 1)
            os.chmod(fd, stat.S_IMODE(mode))
        finally:
            os.close(fd)
        return
    if existing is not None and (
        stat.S_ISLNK(existing.st_mode) or not stat.S_ISREG(existing.st_mode)
    ):
        # Never write through a symlink the container planted.
        if stat.S_ISDIR(existing.st_mode):
            raise InvalidArgument(f"cannot overwrite directory {name} with non-directory {src}")
        os.unlink(name, dir_fd=pfd)
    if stat.S_ISLNK(mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=pfd)
        os.symlink(os.readlink(src), name, dir_fd=pfd)
    elif stat.S_ISREG(mode):
        out = os.open(
            name,
            os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
            stat.S_IMODE(mode),
            dir_fd=pfd,
        )
        try:
            with open(src, "rb") as f:
                _pipe_fds(f.fileno(), out)
            os.fchmod(out, stat.S_IMODE(mode))
        finally:
            os.close(out)


# -------------------------------------------------------------------- export


def export(root: str, out: BinaryIO) -> None:
    """The whole filesystem as a tar stream, walked through fds (no symlink followed)."""
    rfd = _open_root(root)
    try:
        dfd = _dir_fd(rfd)
    finally:
        os.close(rfd)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        try:
            _export_dir(tar, dfd, "", 0)
        finally:
            os.close(dfd)


def _tarinfo(name: str, st: os.stat_result) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.mtime = int(st.st_mtime)
    return ti


def _export_dir(tar: tarfile.TarFile, dfd: int, prefix: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    for entry in sorted(os.listdir(dfd)):
        name = f"{prefix}{entry}"
        try:
            st = os.stat(entry, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        ti = _tarinfo(name, st)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            ti.type = tarfile.DIRTYPE
            tar.addfile(ti)
            try:
                sub = os.open(
                    entry, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd
                )
            except OSError:
                continue
            try:
                # Don't descend into other filesystems (proc, sys, dev inside a running root).
                if os.fstat(sub).st_dev == os.fstat(dfd).st_dev:
                    _export_dir(tar, sub, name + "/", depth + 1)
            finally:
                os.close(sub)
        elif stat.S_ISLNK(mode):
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink(entry, dir_fd=dfd)
            tar.addfile(ti)
        elif stat.S_ISREG(mode):
            ti.type = tarfile.REGTYPE
            try:
                fd = os.open(
                    entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd
                )
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                ti.size = os.fstat(fd).st_size
                tar.addfile(ti, f)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            tar.addfile(ti)
        elif stat.S_ISFIFO(mode):
            ti.type = tarfile.FIFOTYPE
            tar.addfile(ti)


def parse_cp_arg(arg: str) -> tuple[str, str]:
    """ "name:path" -> (name, path); a host path -> ("", path). Docker's rule: a
    colon before any slash marks a container (so ./a:b is a host path)."""
    if arg.startswith(("/", ".")):
        return "", arg
    head, sep, tail = arg.partition(":")
    if sep and "/" not in head and head:
        return head, tail
    return "", arg


def as_path(p: str) -> Path:
    return Path(p)
