"""What a container changed: its overlay upper dir against its image's layers.

`changes` lists them as Docker's overlay2 driver does (moby's
`archive.OverlayChanges`), for `diff` and `GET /containers/{id}/changes`:

- a whiteout (a 0:0 character device) is a deletion, and so is an opaque
  directory that some lower layer holds;
- any other entry is an addition, or a modification when a lower layer
  holds the same path; a directory that a lower layer holds with the same
  size, mode and mtime is left out (it was only copied up);
- the parent of an addition or a deletion is reported modified, once.

Paths come in the walk's order (each directory's names sorted, depth
first), parents inserted before their first changed child, as Docker prints
them. `skip` names the runtime's mount points (what Docker keeps in a
container's init layer: /etc/hosts, /proc, ...), left out with all below
them; a directory leading to one is reported only as a changed parent.

The upper dir and the layers are hostile trees: walked one directory fd at
a time with O_NOFOLLOW, a lower layer looked up the same way, never through
one of its symlinks.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from portique.image import ovlxattr

MODIFIED: Final = 0
ADDED: Final = 1
DELETED: Final = 2
KIND_LETTERS: Final = {MODIFIED: "C", ADDED: "A", DELETED: "D"}

_DIR: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def changes(
    upper: Path, lowers: Sequence[Path], skip: frozenset[str] = frozenset()
) -> list[tuple[str, int]]:
    """[(absolute path, kind)] of the upper dir over `lowers` (any order)."""
    from portique.image.snapshots import leads_to

    ways = leads_to(skip)
    out: list[tuple[str, int]] = []
    changed_dirs: set[str] = set()
    with _Lowers(lowers) as below:
        for path, st, fd in _walk(upper, skip):
            is_dir = stat.S_ISDIR(st.st_mode)
            kind: int | None = ADDED
            whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
            if whiteout or (is_dir and _opaque(fd, path) and below.stat(path) is not None):
                kind = DELETED
            elif path in ways and is_dir:
                kind = None  # copied up, or made, for a runtime mount point only
            else:
                old = below.stat(path)
                if old is not None:
                    if is_dir and stat.S_ISDIR(old.st_mode) and _same_dir(st, old):
                        kind = None
                    else:
                        kind = MODIFIED
            if kind is None:
                continue
            if is_dir:
                changed_dirs.add(path)
            if kind in (ADDED, DELETED):
                parent = path.rpartition("/")[0]
                if parent and parent not in changed_dirs:
                    out.append(("/" + parent, MODIFIED))
                    changed_dirs.add(parent)
            out.append(("/" + path, kind))
    return out


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    """Docker's test: same size, mode and mtime (seconds alone when either
    side has no nanoseconds, as some filesystems keep none)."""
    ta, tb = a.st_mtime_ns, b.st_mtime_ns
    same_time = ta == tb or (
        ta // 1_000_000_000 == tb // 1_000_000_000
        and (ta % 1_000_000_000 == 0 or tb % 1_000_000_000 == 0)
    )
    return a.st_size == b.st_size and a.st_mode == b.st_mode and same_time


def _opaque(parent_fd: int, path: str) -> bool:
    name = path.rpartition("/")[2]
    try:
        fd = os.open(name, _DIR, dir_fd=parent_fd)
    except OSError:
        return False
    try:
        return ovlxattr.is_opaque(fd)
    except OSError:
        return False
    finally:
        os.close(fd)


def _walk(upper: Path, skip: frozenset[str]) -> Iterator[tuple[str, os.stat_result, int]]:
    """(relative path, lstat, fd of its directory) of every entry, depth first
    in name order; `skip` paths are neither listed nor entered."""
    try:
        fd = os.open(upper, _DIR)
    except FileNotFoundError:
        return  # a container never started has no upper dir yet
    levels: list[tuple[Iterator[str], str]] = [(iter(ovlxattr.listing(os.listdir(fd))), "")]
    try:
        while levels:
            names, prefix = levels[-1]
            name = next(names, None)
            if name is None:
                levels.pop()
                if levels:
                    parent = os.open("..", _DIR, dir_fd=fd)
                    os.close(fd)
                    fd = parent
                continue
            path = prefix + name
            if path in skip:
                continue
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # a running container removed it meanwhile
            yield path, st, fd
            if stat.S_ISDIR(st.st_mode):
                try:
                    sub = os.open(name, _DIR, dir_fd=fd)
                except OSError:
                    continue
                try:
                    listing = ovlxattr.listing(os.listdir(sub))
                except OSError:
                    os.close(sub)
                    continue
                os.close(fd)
                fd = sub
                levels.append((iter(listing), path + "/"))
    finally:
        os.close(fd)


class _Lowers:
    """Look a relative path up in each lower layer, never through a symlink."""

    def __init__(self, lowers: Sequence[Path]) -> None:
        self.paths = list(dict.fromkeys(lowers))
        self.fds: list[int] = []

    def __enter__(self) -> _Lowers:
        for p in self.paths:
            try:
                self.fds.append(os.open(p, _DIR))
            except OSError:
                continue
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self.fds:
            os.close(fd)

    def stat(self, path: str) -> os.stat_result | None:
        """The entry at `path` in the first layer that holds one (as Docker's check)."""
        parts = path.split("/")
        for top in self.fds:
            found = _lookup(top, parts)
            if found is not None:
                return found
        return None


def _lookup(top: int, parts: list[str]) -> os.stat_result | None:
    fd = top
    try:
        for i, name in enumerate(parts):
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                return None
            if i == len(parts) - 1:
                return st
            if not stat.S_ISDIR(st.st_mode):
                return None
            try:
                sub = os.open(name, _DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                    return None
                raise
            if fd != top:
                os.close(fd)
            fd = sub
        return None
    finally:
        if fd != top:
            os.close(fd)


__all__ = ["ADDED", "DELETED", "KIND_LETTERS", "MODIFIED", "changes"]
