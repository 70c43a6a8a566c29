"""`cp` and `export`: copying out of and into a hostile container filesystem.

The container side is always handled through directory fds: the starting
point is resolved with `portique.rootpath` (symlinks resolved inside the
root), and every step below it opens one component with O_NOFOLLOW relative
to its parent's fd. Symlinks are copied as symlinks, never followed, so a
container cannot redirect a copy to or from the host's files even if it
swaps directories for symlinks while we work. A file copied in is written to
a new file renamed into place, never through a name the container controls
(a FIFO, a device node). A running container is reached through
/proc/<pid>/root, so its volumes and tmpfs mounts are visible.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from portique.engine import db
from portique.engine.state import has_process

if TYPE_CHECKING:
    from portique.engine.engine import Engine
from portique.errors import InvalidArgument, NotFound
from portique.termio import write_all

_O_PATH = os.O_PATH
MAX_DEPTH = 256
CHUNK = 1 << 20


@contextmanager
def container_root(eng: Engine, row: db.ContainerRow) -> Iterator[str]:
    """A path to the container's root: its init's root while running, else the
    mounted rootfs.

    The init's root is opened first, then the runtime must still see that pid
    as the container's init (pid and start time): the row's pid alone could
    be a host process's by now (a dead monitor, a reused pid), and its root
    the host's.
    """
    if has_process(row.status) and row.pid:
        from portique.engine.lifecycle import check_init

        fd = os.open(f"/proc/{row.pid}/root", _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            check_init(eng, row.id, row.pid)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    from portique.engine import bundle

    paths = eng.paths(row.id)
    with ExitStack() as stack:
        rootfs = bundle.mount_rootfs(eng, row)
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
#
# The host side is handled through directory fds too: below the directory the
# user named, every entry is created with *at() calls that never follow a
# symlink. A container controls the names and types copied out: a symlink it
# left in an earlier copy (`x -> /etc`) must not turn a later copy of a
# directory `x` into a write to the host's /etc/passwd.


def copy_out(root: str, src: str, dest: str, *, owners: bool = False) -> None:
    """Container `src` -> host `dest` (Docker's cp rules for files and dirs).
    The host's files are the caller's, or with `owners` (`cp -a`) get the
    container files' uids and gids."""
    rfd = _open_root(root)
    try:
        parent, name = _split(src)
        pfd = _resolve(rfd, parent)
        try:
            if not name:
                # The root itself: its contents into `dest`.
                with _host_dir(dest) as hfd:
                    _copy_dir_out(pfd, hfd, 0, owners)
                return
            try:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                raise NotFound(f"could not find the file {src} in container") from None
            if stat.S_ISLNK(st.st_mode) and src.endswith("/"):
                fd = _resolve(rfd, src)
                try:
                    hdir, hname = _dest_for(dest, name, True)
                    _copy_entry_out(fd, ".", os.stat(fd), hdir, hname, 0, owners)
                finally:
                    os.close(fd)
                return
            if src.endswith("/.") and stat.S_ISDIR(st.st_mode):
                fd = os.open(name, _DIR_NOFOLLOW, dir_fd=pfd)
                try:
                    with _host_dir(dest) as hfd:
                        _copy_dir_out(fd, hfd, 0, owners)
                finally:
                    os.close(fd)
                return
            hdir, hname = _dest_for(dest, name, stat.S_ISDIR(st.st_mode))
            _copy_entry_out(pfd, name, st, hdir, hname, 0, owners)
        finally:
            os.close(pfd)
    finally:
        os.close(rfd)


_DIR_NOFOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@contextmanager
def _host_dir(path: str) -> Iterator[int]:
    """The directory the user named (made if missing), open; their symlinks are theirs."""
    os.makedirs(path, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def _dest_for(dest: str, name: str, is_dir: bool) -> tuple[str, str]:
    """(host directory chosen by the user, name to create in it)."""
    if os.path.isdir(dest):
        return dest, name
    full = os.path.abspath(dest)
    parent = os.path.dirname(full)
    if not os.path.isdir(parent):
        raise InvalidArgument(f"destination directory {parent} does not exist")
    if dest.endswith("/") and not is_dir:
        raise InvalidArgument(f"destination directory {dest} does not exist")
    return parent, os.path.basename(full)


def _copy_entry_out(
    pfd: int,
    name: str,
    st: os.stat_result,
    hdir: str | int,
    hname: str,
    depth: int,
    owners: bool = False,
) -> None:
    if isinstance(hdir, str):
        hfd = os.open(hdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _copy_entry_out(pfd, name, st, hfd, hname, depth, owners)
        finally:
            os.close(hfd)
        return
    if depth > MAX_DEPTH:
        raise InvalidArgument("directory tree too deep")
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        link = os.readlink(name, dir_fd=pfd)
        _make_room(hdir, hname, keep_dir=False)
        os.symlink(link, hname, dir_fd=hdir)
        if owners:
            os.chown(hname, st.st_uid, st.st_gid, dir_fd=hdir, follow_symlinks=False)
    elif stat.S_ISDIR(mode):
        fd = os.open(name, _DIR_NOFOLLOW, dir_fd=pfd)
        try:
            if _make_room(hdir, hname, keep_dir=True) is None:
                os.mkdir(hname, 0o700, dir_fd=hdir)
            out = os.open(hname, _DIR_NOFOLLOW, dir_fd=hdir)
            try:
                if owners:
                    os.fchown(out, st.st_uid, st.st_gid)
                os.fchmod(out, stat.S_IMODE(mode))
                _copy_dir_out(fd, out, depth, owners)
            finally:
                os.close(out)
        finally:
            os.close(fd)
    elif stat.S_ISREG(mode):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=pfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return  # swapped for a device or fifo since the stat: never read one
            existing = _make_room(hdir, hname, keep_dir=False, keep_file=True)
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                raise InvalidArgument(f"cannot overwrite directory {hname} with a file")
            out = os.open(
                hname,
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                stat.S_IMODE(mode),
                dir_fd=hdir,
            )
            try:
                _pipe_fds(fd, out)
                if owners:
                    os.fchown(out, st.st_uid, st.st_gid)
                os.fchmod(out, stat.S_IMODE(mode))
            finally:
                os.close(out)
        finally:
            os.close(fd)
    # Devices, fifos and sockets are skipped: they carry no data to copy.


def _make_room(
    hdir: int, hname: str, *, keep_dir: bool, keep_file: bool = False
) -> os.stat_result | None:
    """Unlink what is at `hname` unless it is a directory (kept when `keep_dir`)
    or a regular file (kept when `keep_file`); the kept entry's stat, else None."""
    try:
        st = os.stat(hname, dir_fd=hdir, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return st
        raise InvalidArgument(f"cannot overwrite directory {hname} with a non-directory")
    if keep_file and stat.S_ISREG(st.st_mode):
        return st
    os.unlink(hname, dir_fd=hdir)  # a symlink is replaced, never followed
    return None


def _copy_dir_out(fd: int, hfd: int, depth: int, owners: bool = False) -> None:
    dfd = (
        fd
        if not _is_path_fd(fd)
        else os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    )
    try:
        for entry in os.listdir(dfd):
            est = os.stat(entry, dir_fd=dfd, follow_symlinks=False)
            _copy_entry_out(dfd, entry, est, hfd, entry, depth + 1, owners)
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
        write_all(dst, data)


# ------------------------------------------------------------------- copy in


def copy_in(root: str, src: str, dest: str, *, owner: tuple[int, int] | None = None) -> None:
    """Host `src` -> container `dest`. The copies keep the host files' uids and
    gids, as Docker's do; `owner` (`cp -a` into a container with a USER: that
    user's) replaces them."""
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
                    _copy_entry_in(os.path.join(src, entry), parent_fd, entry, 0, owner)
            else:
                _copy_entry_in(src, parent_fd, name, 0, owner)
        finally:
            os.close(parent_fd)
    finally:
        os.close(rfd)


def _dir_fd(path_fd: int) -> int:
    return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=path_fd)


def _copy_entry_in(
    src: str, pfd: int, name: str, depth: int, owner: tuple[int, int] | None = None
) -> None:
    if depth > MAX_DEPTH:
        raise InvalidArgument("directory tree too deep")
    st = os.lstat(src)
    mode = st.st_mode
    uid, gid = owner if owner is not None else (st.st_uid, st.st_gid)
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
                _copy_entry_in(os.path.join(src, entry), fd, entry, depth + 1, owner)
            os.chown(fd, uid, gid)
            os.chmod(fd, stat.S_IMODE(mode))
        finally:
            os.close(fd)
        return
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise InvalidArgument(f"cannot overwrite directory {name} with non-directory {src}")
    if stat.S_ISLNK(mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=pfd)
        os.symlink(os.readlink(src), name, dir_fd=pfd)
        os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)
    elif stat.S_ISREG(mode):
        _write_new_file(src, pfd, name, stat.S_IMODE(mode), (uid, gid))


def _write_new_file(
    src: str, pfd: int, name: str, mode: int, owner: tuple[int, int] | None = None
) -> None:
    """Put a copy of host file `src` at `name` in the container directory `pfd`.

    Never by opening `name`: whatever the container leaves there (or puts back
    right after an unlink) could be a FIFO or a device node of the host's disk,
    which `cp`, outside the container's device cgroup, would write into. The
    data goes to a new file (O_EXCL) renamed over `name`, which replaces any
    non-directory without opening it.
    """
    with new_file_in(pfd, name) as (out, tmp):
        with open(src, "rb") as f:
            _pipe_fds(f.fileno(), out)
        if owner is not None:
            os.fchown(out, *owner)
        os.fchmod(out, mode)
        try:
            os.rename(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
        except IsADirectoryError:
            raise InvalidArgument(
                f"cannot overwrite directory {name} with non-directory {src}"
            ) from None
        mine = os.fstat(out)
        there = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        if (mine.st_dev, mine.st_ino) != (there.st_dev, there.st_ino):
            raise InvalidArgument(f"the container replaced {name} while it was copied")


@contextmanager
def new_file_in(pfd: int, name: str) -> Iterator[tuple[int, str]]:
    """A new file (O_EXCL, a random name) in the container directory `pfd`, for
    the caller to fill and rename over `name`: `name` itself is never opened.
    Yields its fd and name; unlinked if the caller fails, its fd closed."""
    for _ in range(100):
        tmp = f".portique-cp-{os.urandom(6).hex()}"
        try:
            out = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=pfd,
            )
            break
        except FileExistsError:
            continue  # the container guessed a name: take another
    else:
        raise InvalidArgument(f"cannot create a file next to {name} in the container")
    try:
        yield out, tmp
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=pfd)
        raise
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


def _export_dir(tar: tarfile.TarFile, top: int, prefix: str, depth: int) -> None:
    """Everything under `top`, depth first in name order, at any depth.

    The container decides how deep its tree goes; a depth limit would leave
    out, silently, what it nests below it (hidden from whoever inspects the
    export). So one directory fd at a time, down by name and up by "..",
    which must be the directory we came from: a running container that moves
    directories while we read makes the export fail, never wander off.
    """
    fd = os.dup(top)
    levels = [(iter(sorted(os.listdir(fd))), prefix, _ident(fd))]
    try:
        while levels:
            names, prefix, _ = levels[-1]
            entry = next(names, None)
            if entry is None:
                levels.pop()
                if levels:
                    parent = os.open("..", _DIR_NOFOLLOW, dir_fd=fd)
                    os.close(fd)
                    fd = parent
                    if _ident(fd) != levels[-1][2]:
                        raise InvalidArgument("the container moved a directory during the export")
                continue
            sub = _export_entry(tar, fd, entry, prefix)
            if sub < 0:
                continue
            try:
                listing = sorted(os.listdir(sub))
            except OSError:
                os.close(sub)
                continue
            os.close(fd)
            fd = sub
            levels.append((iter(listing), f"{prefix}{entry}/", _ident(fd)))
    finally:
        os.close(fd)


def _ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _export_entry(tar: tarfile.TarFile, dfd: int, entry: str, prefix: str) -> int:
    """Add one entry; for a directory to descend into (same filesystem: not the
    proc, sys or dev of a running root), return its open fd, else -1."""
    name = f"{prefix}{entry}"
    try:
        st = os.stat(entry, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return -1
    ti = _tarinfo(name, st)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        ti.type = tarfile.DIRTYPE
        tar.addfile(ti)
        try:
            sub = os.open(entry, _DIR_NOFOLLOW, dir_fd=dfd)
        except OSError:
            return -1
        if os.fstat(sub).st_dev == os.fstat(dfd).st_dev:
            return sub
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
            return -1
        with os.fdopen(fd, "rb") as f:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode):
                return -1  # swapped for a device or fifo since the stat: never read one
            ti.size = fst.st_size
            tar.addfile(ti, f)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tar.addfile(ti)
    elif stat.S_ISFIFO(mode):
        ti.type = tarfile.FIFOTYPE
        tar.addfile(ti)
    return -1


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
