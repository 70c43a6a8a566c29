"""Resolve paths inside a root directory as a process chrooted there would.

A container's root filesystem is hostile: any component may be a symlink
pointing at `/etc` or `../../..`. Following it from the host would leave the
root. These helpers walk a path one component at a time with O_NOFOLLOW
opens relative to directory fds, and resolve every symlink *inside* the root
(an absolute target restarts at the root, `..` never climbs above it), the
way openat2(RESOLVE_IN_ROOT) does. Callers then act on the returned fd with
the `dir_fd=` forms of os functions, so nothing is looked up by path again.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

MAX_SYMLINKS = 40

_O_PATH = getattr(os, "O_PATH", 0o10000000)


class RootPathError(OSError):
    pass


def _components(path: str) -> list[str]:
    return [c for c in path.split("/") if c and c != "."]


def open_in_root(
    root_fd: int,
    path: str,
    *,
    flags: int = _O_PATH,
    mkdirs: bool = False,
    mode: int = 0o755,
    owner: tuple[int, int] | None = None,
) -> int:
    """Open `path` (absolute or relative, interpreted inside the root) and return an fd.

    The last component is opened with `flags` (O_NOFOLLOW is added when it is
    not a symlink we resolved ourselves). With `mkdirs`, missing directories
    along the way (including the last component) are created with `mode`,
    owned by `owner` (uid, gid) when given.
    """
    todo = _components(path)
    stack: list[int] = [os.dup(root_fd)]
    links = 0
    try:
        while todo:
            comp = todo.pop(0)
            if comp == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            cur = stack[-1]
            last = not todo
            try:
                st = os.stat(comp, dir_fd=cur, follow_symlinks=False)
            except FileNotFoundError:
                if not mkdirs:
                    raise
                os.mkdir(comp, mode, dir_fd=cur)
                if owner is not None:
                    os.chown(comp, *owner, dir_fd=cur, follow_symlinks=False)
                st = os.stat(comp, dir_fd=cur, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    raise RootPathError(40, "too many levels of symbolic links", path)
                target = os.readlink(comp, dir_fd=cur)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo[:0] = _components(target)
                continue
            if last:
                fd = os.open(comp, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
                return fd
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(20, "not a directory", comp)
            stack.append(
                os.open(comp, _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
            )
        # The path was the root itself (or resolved back to it).
        top = stack[-1]
        return os.open(".", flags | os.O_CLOEXEC, dir_fd=top) if flags != _O_PATH else os.dup(top)
    finally:
        for fd in stack:
            os.close(fd)


def resolve_in_root(root: str, path: str) -> str:
    """The host path that `path` names inside `root`, every symlink resolved inside it.

    Only for display and for callers that then re-open with O_NOFOLLOW; act on
    fds from `open_in_root` wherever a race with the container matters.
    """
    rfd = os.open(root, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = open_in_root(rfd, path)
    finally:
        os.close(rfd)
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


@contextmanager
def dir_in_root(
    root: str, path: str, *, mkdirs: bool = False, owner: tuple[int, int] | None = None
) -> Iterator[int]:
    """An O_DIRECTORY fd for `path` inside `root`, closed on exit."""
    rfd = os.open(root, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = open_in_root(rfd, path, flags=os.O_RDONLY | os.O_DIRECTORY, mkdirs=mkdirs, owner=owner)
    finally:
        os.close(rfd)
    try:
        yield fd
    finally:
        os.close(fd)
