"""COPY and ADD: put context (or stage) files into a mounted root filesystem.

Docker's rules, kept here:
- a directory source copies its contents, not itself;
- several sources, or a glob, need a destination ending in `/`;
- a file goes to `dest/basename` when dest ends in `/` or is a directory,
  otherwise to `dest` itself;
- permission bits and mtimes come from the source; owner is 0:0 unless
  `--chown`; `--chmod` replaces the permission bits of everything copied;
- missing parent directories are made 0755 root:root;
- symlinks are copied as symlinks, never followed;
- ADD of a local tar archive (plain, gzip or zstd) unpacks it.

The destination root is hostile (an image may hold `/app -> /etc`): the
destination is resolved inside the root (`portique.rootpath`) and every entry
is created relative to a directory fd with O_NOFOLLOW.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from portique.build.context import BuildContext, Source
from portique.errors import InvalidArgument, NotFound
from portique.rootpath import dir_in_root


@dataclass(frozen=True, slots=True)
class Owner:
    uid: int
    gid: int


def parse_chmod(value: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError:
        raise InvalidArgument(
            f"invalid --chmod value {value!r}: use an octal mode like 755"
        ) from None
    if not 0 <= mode <= 0o7777:
        raise InvalidArgument(f"invalid --chmod value {value!r}: out of range")
    return mode


def resolve_owner(spec: str, rootfs: Path) -> Owner:
    """`--chown user[:group]` with names looked up in the destination's /etc files."""
    user, _, group = spec.partition(":")
    uid = _lookup(user, rootfs, "passwd", 2)
    if group:
        gid = _lookup(group, rootfs, "group", 2)
    elif _is_number(user):
        gid = uid
    else:
        gid = _lookup_primary_gid(user, rootfs)
    return Owner(uid, gid)


def _read_db(rootfs: Path, name: str) -> list[list[str]]:
    try:
        with dir_in_root(str(rootfs), "/etc") as fd:
            # O_NONBLOCK: a base image's /etc/passwd may be a FIFO (no hang).
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            rfd = os.open(name, flags, dir_fd=fd)
            with os.fdopen(rfd, "r", errors="replace") as f:
                if not stat.S_ISREG(os.fstat(rfd).st_mode):
                    return []
                text = f.read(1 << 20)
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def _lookup(name: str, rootfs: Path, db: str, field: int) -> int:
    if _is_number(name):
        return int(name)
    for row in _read_db(rootfs, db):
        if len(row) > field and row[0] == name and _is_number(row[field]):
            return int(row[field])
    raise NotFound(
        f"unable to find {'user' if db == 'passwd' else 'group'} {name}: no matching entries in {db} file"
    )


def _is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "²", which int() refuses."""
    return text.isascii() and text.isdigit()


def _lookup_primary_gid(user: str, rootfs: Path) -> int:
    for row in _read_db(rootfs, "passwd"):
        if len(row) > 3 and row[0] == user and _is_number(row[3]):
            return int(row[3])
    raise NotFound(f"unable to find user {user}: no matching entries in passwd file")


def copy_sources(
    ctx: BuildContext,
    sources: list[Source],
    rootfs: Path,
    dest: str,
    *,
    workdir: str,
    owner: Owner | None,
    chmod: int | None,
    multiple: bool,
    unpack_archives: bool = False,
) -> None:
    """Copy `sources` (already resolved in `ctx`) to `dest` inside `rootfs`."""
    if not dest.startswith("/"):
        dest = posixpath.join(workdir or "/", dest)
    dest_is_dir = dest.endswith("/") or multiple
    if multiple and not dest.endswith("/"):
        raise InvalidArgument(
            "when using COPY with more than one source file,"
            " the destination must be a directory and end with a /"
        )
    dest = posixpath.normpath(dest)
    # Directories the copy has to make belong to --chown's owner too ("all new
    # files and directories", as Docker documents it).
    made_by = (owner.uid, owner.gid) if owner else None
    for src in sources:
        if src.is_dir:
            with dir_in_root(str(rootfs), dest, mkdirs=True, owner=made_by) as dfd:
                _copy_tree(ctx, src, dfd, owner, chmod)
            continue
        if unpack_archives and _is_archive(src.path):
            with dir_in_root(str(rootfs), dest, mkdirs=True, owner=made_by) as dfd:
                _unpack_archive(src.path, dfd)
            continue
        into_dir = dest_is_dir or _is_dir_in_root(rootfs, dest)
        parent, name = (dest, src.path.name) if into_dir else posixpath.split(dest)
        with dir_in_root(str(rootfs), parent or "/", mkdirs=True, owner=made_by) as dfd:
            _copy_entry(src.path, dfd, name, owner, chmod)


def _is_dir_in_root(rootfs: Path, path: str) -> bool:
    try:
        with dir_in_root(str(rootfs), path):
            return True
    except OSError:
        return False


def _copy_tree(
    ctx: BuildContext, src: Source, dest_fd: int, owner: Owner | None, chmod: int | None
) -> None:
    # Entries come parents first, so each parent exists when its children are made.
    dirs: dict[str, int] = {"": dest_fd}
    try:
        for rel, path in ctx.walk(src):
            if rel == "":
                continue
            parent, name = posixpath.split(rel)
            pfd = dirs.get(parent)
            if pfd is None:
                continue  # parent was excluded
            _copy_entry(path, pfd, name, owner, chmod)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                dirs[rel] = os.open(
                    name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd
                )
    finally:
        for rel, fd in dirs.items():
            if rel:
                os.close(fd)


def _copy_entry(path: Path, dir_fd: int, name: str, owner: Owner | None, chmod: int | None) -> None:
    st = os.lstat(path)
    uid, gid = (owner.uid, owner.gid) if owner else (0, 0)
    mode = chmod if chmod is not None else stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        try:
            existing = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None and not stat.S_ISDIR(existing.st_mode):
            os.unlink(name, dir_fd=dir_fd)
            existing = None
        if existing is None:
            os.mkdir(name, 0o700, dir_fd=dir_fd)
    else:
        _remove_nondir(dir_fd, name)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(path), name, dir_fd=dir_fd)
            os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
            os.utime(
                name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dir_fd, follow_symlinks=False
            )
            return
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgument(f"cannot copy {path}: not a regular file, directory or symlink")
        _copy_file(path, dir_fd, name)
    os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
    _chmod_nofollow(dir_fd, name, mode)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dir_fd, follow_symlinks=False)


def _chmod_nofollow(dir_fd: int, name: str, mode: int) -> None:
    # chmod(2) follows symlinks and lchmod does not exist on Linux; the entry
    # was just created by us as a file or directory, so open it without
    # following and fchmod the fd.
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _remove_nondir(dir_fd: int, name: str) -> None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise InvalidArgument(f"cannot overwrite directory {name!r} with a non-directory")
    os.unlink(name, dir_fd=dir_fd)


def _copy_file(path: Path, dir_fd: int, name: str) -> None:
    src = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        dst = os.open(
            name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dir_fd,
        )
        try:
            size = os.fstat(src).st_size
            offset = 0
            while offset < size:
                sent = os.sendfile(dst, src, offset, min(size - offset, 1 << 30))
                if sent == 0:
                    break
                offset += sent
        finally:
            os.close(dst)
    finally:
        os.close(src)


# gzip and zstd: the compressions the layer unpacker reads.
_MAGIC: Iterable[bytes] = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd")


def _is_archive(path: Path) -> bool:
    # O_NONBLOCK: a FIFO in the context must not block the build (it is no
    # archive; _copy_entry then refuses it).
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = f.read(512)
    if any(head.startswith(m) for m in _MAGIC):
        return True
    return len(head) == 512 and head[257:262] == b"ustar"


def _unpack_archive(path: Path, dest_fd: int) -> None:
    """ADD's auto-extraction, with the same hostile-tar rules as image layers."""
    from portique.image.unpack import unpack

    with open(path, "rb") as f:
        unpack(f, dest_fd)
