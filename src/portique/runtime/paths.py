"""Resolving paths inside a container's root without ever leaving it.

A hostile rootfs may hold symlinks (absolute or with ..) where the runtime
mounts, creates devices or masks. Every target is therefore opened with
openat2(RESOLVE_IN_ROOT), which makes the kernel resolve each component as
if the root directory were the rootfs, and the mount is then made onto
/proc/self/fd/<fd> (CVE-2025-31133 class: a symlink never redirects a mount
out of the container).
"""

from __future__ import annotations

import errno
import os
import posixpath

from portique.linux.fs import (
    O_PATH,
    RESOLVE_IN_ROOT,
    RESOLVE_NO_MAGICLINKS,
    RESOLVE_NO_SYMLINKS,
    openat2,
)

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from typing import Literal

_RESOLVE = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
MAX_DEPTH = 255


def open_in_root(root_fd: int, path: str, flags: int = O_PATH) -> int:
    """Open `path` resolved inside the root `root_fd`; O_CLOEXEC always."""
    return openat2(root_fd, path.lstrip("/") or ".", flags, 0, _RESOLVE)


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def make_in_root(
    root_fd: int, path: str, kind: Literal["dir", "file"], mode: int = 0o755, _depth: int = 0
) -> int:
    """Open `path` inside the root (O_PATH), creating it and missing parents.

    Each missing component is created relative to its already-resolved
    parent's fd, so a concurrent or pre-planted symlink cannot move the
    creation out of the root.
    """
    parts = [p for p in path.split("/") if p and p != "."]
    if len(parts) > MAX_DEPTH:
        raise OSError(errno.ENAMETOOLONG, f"path too deep: {path}", path)
    try:
        return open_in_root(root_fd, path)
    except FileNotFoundError:
        pass
    # Most often only the last component is missing (a mount point in an
    # existing directory): start from its parent, opened the same way the
    # walk below would reach it; anything else takes the whole walk.
    start, parent = 0, -1
    if len(parts) > 1:
        try:
            parent = open_in_root(root_fd, "/".join(parts[:-1]))
            start = len(parts) - 1
        except OSError:
            pass
    if parent < 0:
        parent = os.dup(root_fd)
    try:
        for i in range(start, len(parts)):
            name = parts[i]
            sub = "/".join(parts[: i + 1])
            last = i == len(parts) - 1
            fd = -1
            if not last:  # the whole path was found missing just above
                try:
                    fd = open_in_root(root_fd, sub)
                except FileNotFoundError:
                    pass
            if fd < 0:
                # Create relative to the already-resolved parent's fd, then
                # reopen through the root: a symlink planted at `name` still
                # resolves inside the root, or fails. mkdirat and
                # O_CREAT|O_EXCL|O_NOFOLLOW never follow a symlink: whatever
                # is there already, a dangling symlink too, is EEXIST.
                if not _create_at(parent, name, kind if last else "dir", mode):
                    link = _readlink_at(parent, name)
                    if link is not None:
                        # A dangling symlink: create its target, inside the root.
                        if _depth >= 40:
                            raise OSError(errno.ELOOP, f"too many symlinks in {path}", path)
                        base = "/" + "/".join(parts[:i])
                        dest = link if link.startswith("/") else posixpath.join(base, link)
                        os.close(
                            make_in_root(root_fd, dest, kind if last else "dir", mode, _depth + 1)
                        )
                fd = open_in_root(root_fd, sub)
            os.close(parent)
            parent = fd
        fd, parent = parent, -1
        return fd
    finally:
        if parent >= 0:
            os.close(parent)


def _create_at(parent: int, name: str, kind: Literal["dir", "file"], mode: int) -> bool:
    """Make `name` in `parent` (a file 0644, a directory `mode`); False when
    something is there already."""
    try:
        if kind == "dir":
            os.mkdir(name, mode, dir_fd=parent)
        else:
            os.close(
                os.open(
                    name,
                    os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o644,
                    dir_fd=parent,
                )
            )
    except FileExistsError:
        return False
    return True


def _readlink_at(parent: int, name: str) -> str | None:
    try:
        return os.readlink(name, dir_fd=parent)
    except OSError:
        return None


def open_plain_dir(root_fd: int, path: str, mode: int = 0o755) -> int:
    """Open `path` inside the root (O_PATH) as a directory reached through
    directories alone: a symlink anywhere on the way (even one resolving
    inside the root) or a file at the end is refused. Missing directories
    are created, each relative to its parent's fd (mkdirat does not follow
    a dangling symlink: it fails with EEXIST, then the reopen refuses it)."""
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise OSError(errno.EINVAL, f"{path} climbs out with ..", path)
    strict = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
    cur = os.dup(root_fd)
    try:
        for i, name in enumerate(parts):
            rel = "/".join(parts[: i + 1])
            try:
                nxt = openat2(root_fd, rel, O_PATH | os.O_DIRECTORY, 0, strict)
            except FileNotFoundError:
                try:
                    os.mkdir(name, mode, dir_fd=cur)
                except FileExistsError:
                    pass
                nxt = openat2(root_fd, rel, O_PATH | os.O_DIRECTORY, 0, strict)
            os.close(cur)
            cur = nxt
        return os.dup(cur)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise OSError(
                e.errno, f"{path} is a symlink or not a directory (or lies under one)", path
            ) from None
        raise
    finally:
        os.close(cur)
