"""Snapshot directories (one unpacked layer each) and overlay root mounts.

    snapshots/<n>/            a complete layer; n is its `layers.id` in the database
    snapshots/empty/          the lower dir of images without layers
    snapshots/tmp-<random>/   a layer being unpacked, or being deleted
    snapshots/locks/<key>     flock(2) targets: one unpack of a blob at a time

A layer is unpacked into a tmp dir and renamed to <n> in the same database
transaction that records it; deletion renames <n> to a tmp dir before
removing it. So a crash leaves only tmp dirs (or a numbered dir no row names).
Every tmp dir is named after a lock its maker holds (tmp-<key>.<random>, lock
locks/<key>), so a tmp dir whose lock nobody holds is a dead process's:
`sweep_abandoned` removes those at once, `clean_stale` when old.

Overlay layers are independent directories, so every layer unpacks on its own
(in parallel) whatever its parent; the image's order only matters when the
lowerdir list is built.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol, cast

from portique.errors import InvalidArgument
from portique.image import ovlxattr

# The overlay options must fit in one page (the kernel copies mount data into
# a single page).
_MOUNT_DATA_MAX: Final = 4095
STALE_SECONDS: Final = 3600.0
_RO_DIR: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class Snapshots:
    def __init__(self, root: Path) -> None:
        self.dir = root / "snapshots"
        self.locks = self.dir / "locks"
        self.empty = self.dir / "empty"
        for d in (self.dir, self.locks, self.empty):
            d.mkdir(parents=True, exist_ok=True, mode=0o700 if d == self.dir else 0o755)

    def path(self, n: int) -> Path:
        return self.dir / str(n)

    def lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Serialise the unpacking of one blob across processes; no file stays behind."""
        from portique.image.store import flock_file

        return flock_file(self.locks / _lock_name(key), remove_if=lambda: True)

    @contextlib.contextmanager
    def staging(self, key: str = "") -> Iterator[tuple[Path, int]]:
        """A fresh tmp dir and an fd on it; removed on exit unless `install`ed.

        Give the `key` whose `lock` the caller holds: `clean_stale` then
        leaves the dir alone while that lock is held, however old it is.
        """
        tag = f"{_lock_name(key)}." if key else ""
        tmp = self.dir / f"tmp-{tag}{os.urandom(8).hex()}"
        os.mkdir(tmp, 0o755)
        fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield tmp, fd
        finally:
            os.close(fd)
            if tmp.exists():
                remove_tree(tmp)

    def install(self, tmp: Path, n: int) -> Path:
        """Rename a finished staging dir to snapshots/<n>."""
        target = self.path(n)
        if target.exists():
            # A numbered dir no database row names: left by a crash between
            # rename and commit (the id was then reused). It is garbage.
            self.remove(n)
        os.rename(tmp, target)
        return target

    def remove(self, n: int) -> None:
        target = self.path(n)
        key = f"del-{os.urandom(8).hex()}"
        with self.lock(key):
            trash = self.dir / f"tmp-{key}.0"
            try:
                os.rename(target, trash)
            except FileNotFoundError:
                return
            remove_tree(trash)

    def clean_stale(self, known: set[int], max_age: float = STALE_SECONDS) -> int:
        """Remove tmp dirs and unnamed numbered dirs older than `max_age` seconds."""
        now = time.time()
        removed = 0
        for entry in os.scandir(self.dir):
            name = entry.name
            orphan = name.isdigit() and int(name) not in known
            if not (name.startswith("tmp-") or orphan):
                continue
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime < max_age:
                    continue
            except FileNotFoundError:
                continue
            if name.startswith("tmp-") and self._in_use(name):
                continue  # a long unpack, still running
            remove_tree(Path(entry.path))
            removed += 1
        return removed

    def sweep_abandoned(self, key: str | None = None) -> int:
        """Remove tmp dirs (of `key` only, if given) and lock files nobody holds."""
        from portique.image.store import remove_if_unlocked

        prefix = f"tmp-{_lock_name(key)}." if key is not None else "tmp-"
        removed = 0
        for entry in os.scandir(self.dir):
            if entry.name.startswith(prefix) and not self._in_use(entry.name):
                remove_tree(Path(entry.path))
                removed += 1
        names = [_lock_name(key)] if key is not None else os.listdir(self.locks)
        for name in names:
            remove_if_unlocked(self.locks / name)
        return removed

    def orphans(self, known: set[int]) -> list[int]:
        """Numbered dirs no layer row names (a crash between rename and commit)."""
        return [
            int(e.name)
            for e in os.scandir(self.dir)
            if e.name.isdigit() and int(e.name) not in known
        ]

    def _in_use(self, tmp_name: str) -> bool:
        key, dot, _ = tmp_name[len("tmp-") :].rpartition(".")
        if not dot:
            # An older portique's trash (tmp-del-<random>): only its age tells.
            try:
                return time.time() - os.lstat(self.dir / tmp_name).st_mtime < STALE_SECONDS
            except FileNotFoundError:
                return False
        try:
            fd = os.open(self.locks / key, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


def _lock_name(key: str) -> str:
    return key.replace(":", "-").replace("/", "_")


def remove_tree(path: Path) -> None:
    """rm -rf `path`; see `remove_at`."""
    try:
        top = os.open(path.parent, _RO_DIR)
    except FileNotFoundError:
        return
    try:
        remove_at(top, path.name)
    finally:
        os.close(top)


def remove_at(dir_fd: int, name: str) -> None:
    """rm -rf `name` in `dir_fd`, without recursion and without following symlinks.

    shutil.rmtree recurses once per level, and a layer may nest deeper than
    Python's stack; this walks down and up again holding one directory fd
    (a child opened with O_NOFOLLOW, whose ".." is then its real parent).
    """
    try:
        fd = os.open(name, _RO_DIR | os.O_NOFOLLOW, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    except OSError:  # not a directory (or a symlink): just unlink it
        os.unlink(name, dir_fd=dir_fd)
        return
    names: list[str] = []
    try:
        while True:
            child = None
            with os.scandir(fd) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    os.unlink(entry.name, dir_fd=fd)
            if child is not None:
                sub = os.open(child, _RO_DIR | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = sub
                names.append(child)
            elif names:
                parent = os.open("..", _RO_DIR, dir_fd=fd)
                os.close(fd)
                fd = parent
                os.rmdir(names.pop(), dir_fd=fd)
            else:
                break
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def overlay_data(lowers: Sequence[Path], upper: Path, work: Path, fd_dir: int | None = None) -> str:
    """The overlay mount options; with `fd_dir`, lowers are named via /proc/self/fd/<fd_dir>."""
    for p in (upper, work, *lowers):
        if "," in str(p) or ":" in str(p):
            raise InvalidArgument(f"overlay path {p} contains ',' or ':'")
    if fd_dir is None:
        lower = ":".join(str(p) for p in lowers)
    else:
        lower = ":".join(f"/proc/self/fd/{fd_dir}/{p.name}" for p in lowers)
    # Pin the features that would put overlay-private metadata (redirect and
    # metacopy xattrs, an index) into the upper dir: `commit` and `build` turn
    # upper dirs into layers, which must hold plain files and whiteouts only.
    return f"lowerdir={lower},upperdir={upper},workdir={work},{ovlxattr.mount_options()}"


def lower_stack(lowers: Sequence[Path]) -> list[Path]:
    """`lowers` (topmost first) with each directory kept at its topmost place only.

    An image may hold one layer twice (two identical COPY steps, no-op RUNs,
    a pulled image repeating a diff_id), and snapshots are keyed by diff_id,
    so the same directory would appear twice in lowerdir=, which the kernel
    refuses (ELOOP: overlapping layers). The lower occurrence changes nothing
    in the merged tree: every path it holds (entry, whiteout, opaque marker,
    and the directories leading to it) is also in the upper occurrence, which
    overlay consults first; a whiteout or opaque directory of a layer between
    the two hides only what lies below it, so it hides the lower occurrence's
    entries exactly where the upper one already answers. So dropping it gives
    the tree the whole stack gives (tests/integration/image_store test the
    whiteout and opaque cases).
    """
    return list(dict.fromkeys(lowers))


def mount_overlay(snapshots_dir: Path, lowers: Sequence[Path], container_dir: Path) -> Path:
    """Mount container_dir/rootfs as overlay of `lowers` (topmost first) + a fresh upper."""

    from portique.image import fuseoverlay

    lowers = lower_stack(lowers)
    upper, work, rootfs = (container_dir / n for n in ("upper", "work", "rootfs"))
    for d in (upper, work, rootfs):
        d.mkdir(parents=True, exist_ok=True, mode=0o755)
    driver = fuseoverlay.chosen(snapshots_dir.parent)
    if driver == "fuse-overlayfs":
        fuseoverlay.mount(lowers, upper, work, rootfs, "")
        return rootfs
    try:
        _mount_native(snapshots_dir, lowers, upper, work, rootfs)
    except OSError as exc:
        # A rootless engine on a kernel that refuses overlayfs in a user
        # namespace (image/fuseoverlay.py), unless the root chose the kernel's.
        if (
            driver is not None
            or not ovlxattr.rootless()
            or exc.errno not in (errno.EPERM, errno.EINVAL)
        ):
            raise
        try:
            fuseoverlay.mount(lowers, upper, work, rootfs, "")
        except OSError as fuse_exc:
            raise fuseoverlay.neither(exc, fuse_exc) from None
    return rootfs


def _mount_native(
    snapshots_dir: Path, lowers: Sequence[Path], upper: Path, work: Path, rootfs: Path
) -> None:
    from portique.linux.mount import mount

    data = overlay_data(lowers, upper, work)
    if len(data) <= _MOUNT_DATA_MAX:
        mount("overlay", rootfs, "overlay", 0, data)
        return
    # Too long for one page: name each lower as /proc/self/fd/<fd>/<n>, which
    # the kernel resolves while mounting (lowers all live in snapshots_dir).
    if any(p.parent != snapshots_dir for p in lowers):
        raise InvalidArgument(f"too many layers to mount ({len(lowers)})")
    fd = os.open(snapshots_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        data = overlay_data(lowers, upper, work, fd_dir=fd)
        if len(data) > _MOUNT_DATA_MAX:
            raise InvalidArgument(f"too many layers to mount ({len(lowers)})")
        mount("overlay", rootfs, "overlay", 0, data)
    finally:
        os.close(fd)


def unmount_overlay(container_dir: Path) -> None:
    """Unmount container_dir/rootfs if mounted (lazily when busy); idempotent."""
    from portique.linux.mount import MNT_DETACH, is_mountpoint, umount

    rootfs = container_dir / "rootfs"
    for _ in range(16):  # stacked mounts are possible; bounded
        if not rootfs.exists() or not is_mountpoint(rootfs):
            return
        try:
            umount(rootfs)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                umount(rootfs, MNT_DETACH)
            elif exc.errno == errno.EINVAL:
                return
            else:
                raise


# ---- overlay upper dir -> OCI layer tar -------------------------------------------

_KEEP_XATTR_PREFIXES: Final = ("user.", "security.capability")


class _Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


def write_diff_tar(upper: Path, out: _Sink, skip: frozenset[str] = frozenset()) -> int:
    """Write the changes in an overlay upper dir as an OCI layer tar to `out`;
    return how many entries it holds.

    Overlay whiteouts (0:0 character devices) become `.wh.NAME` entries and
    opaque directories (trusted.overlay.opaque=y) get a `.wh..wh..opq` entry.
    The output is deterministic: entries sorted by name, mtimes and owners
    kept, no user/group names, hard links within the dir kept as links.

    `skip`: paths relative to the upper dir ("etc/hosts", "dev") that are not
    content: the mount points the runtime made for a container (what Docker
    keeps in a container's init layer). They are left out with everything
    under them, and so is a directory leading to one of them that holds
    nothing else (copied up, or made, only for the mount point).
    """
    import tarfile

    root_fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    seen: dict[tuple[int, int], str] = {}
    try:
        with tarfile.open(
            fileobj=cast("BinaryIO", out), mode="w|", format=tarfile.PAX_FORMAT
        ) as tf:
            return _walk(tf, root_fd, "", seen, skip)
    finally:
        os.close(root_fd)


def has_changes(upper: Path, skip: frozenset[str] = frozenset()) -> bool:
    """Would `write_diff_tar(upper, ..., skip)` write anything? Only the
    directories leading to `skip` paths are entered (a few levels at most)."""
    ways = leads_to(skip)
    todo = [""]
    while todo:
        rel = todo.pop()
        try:
            fd = os.open(upper / rel if rel else upper, _RO_DIR | os.O_NOFOLLOW)
        except FileNotFoundError:
            continue
        try:
            names = os.listdir(fd)
            for name in names:
                path = f"{rel}/{name}" if rel else name
                if path in skip:
                    continue
                if path not in ways:
                    return True
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    return True
                with contextlib.suppress(OSError):
                    if ovlxattr.is_opaque(name, follow_symlinks=False):
                        return True
                todo.append(path)
        finally:
            os.close(fd)
    return False


def leads_to(skip: frozenset[str]) -> frozenset[str]:
    """The directories (relative paths) on the way to the `skip` paths."""
    out: set[str] = set()
    for path in skip:
        parts = path.split("/")
        out.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return frozenset(out)


def _info(name: str, st: os.stat_result, xattrs: dict[str, str] | None = None) -> Any:
    import tarfile

    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    if xattrs:
        ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in sorted(xattrs.items())}
    return ti


def _xattrs(fd: int) -> dict[str, str]:
    """The xattrs a layer may carry (user.*, security.capability) of the open file `fd`."""
    out: dict[str, str] = {}
    try:
        names = os.listxattr(fd)
    except OSError:
        return out
    for name in names:
        if name.startswith(_KEEP_XATTR_PREFIXES) and not ovlxattr.is_private(name):
            with contextlib.suppress(OSError):
                value = os.getxattr(fd, name)
                out[name] = value.decode("utf-8", "surrogateescape")
    return out


def _walk(
    tf: Any, top_fd: int, prefix: str, seen: dict[tuple[int, int], str], skip: frozenset[str]
) -> int:
    """Every entry under `top_fd`, depth first in name order; how many were written.

    A RUN step decides how deep its tree is: one directory fd at a time, down
    by name and up by ".." (checked to be where we came from), never a
    recursion per level, nor an fd per level. A directory leading to a
    `skip` path is held back (with its opaque marker) until something under
    it is written, and dropped if nothing is.
    """
    import tarfile

    ways = leads_to(skip)
    written = 0

    def add(ti: Any, f: Any = None) -> None:
        nonlocal written
        for level in levels:
            held = level[3]
            for item in held:
                tf.addfile(item)
                written += 1
            held.clear()
        tf.addfile(ti, f)
        written += 1

    fd = os.dup(top_fd)
    levels: list[tuple[Any, str, tuple[int, int], list[Any]]] = [
        (iter(ovlxattr.listing(os.listdir(fd))), prefix, _identity(fd), [])
    ]
    try:
        while levels:
            names, prefix, _, _ = levels[-1]
            name = next(names, None)
            if name is None:
                levels.pop()
                if levels:
                    parent = os.open("..", _RO_DIR | os.O_NOFOLLOW, dir_fd=fd)
                    os.close(fd)
                    fd = parent
                    if _identity(fd) != levels[-1][2]:
                        raise OSError(errno.ESTALE, "the directory moved while it was read", prefix)
                continue
            path = prefix + name
            if path in skip:
                continue
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                _add_entry(add, fd, name, path, st, seen)
                continue
            sub = os.open(name, _RO_DIR | os.O_NOFOLLOW, dir_fd=fd)
            try:
                ti = _info(path, st, _xattrs(sub))
                ti.type = tarfile.DIRTYPE
                infos = [ti]
                try:
                    opaque = ovlxattr.is_opaque(sub)
                except OSError:
                    opaque = False
                if opaque:
                    marker = _info(f"{path}/.wh..wh..opq", st)
                    marker.type = tarfile.REGTYPE
                    marker.mode = 0o644
                    infos.append(marker)
                held: list[Any] = []
                if path in ways:
                    held = infos
                else:
                    for item in infos:
                        add(item)
                listing = ovlxattr.listing(os.listdir(sub))
            except BaseException:
                os.close(sub)
                raise
            os.close(fd)
            fd = sub
            levels.append((iter(listing), path + "/", _identity(fd), held))
    finally:
        os.close(fd)
    return written


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _add_entry(
    add: Any,
    dir_fd: int,
    name: str,
    path: str,
    st: os.stat_result,
    seen: dict[tuple[int, int], str],
) -> None:
    """One non-directory of an upper dir as its tar entry (whiteouts as .wh. files)."""
    import tarfile

    mode = st.st_mode
    prefix = path[: len(path) - len(name)]
    if stat.S_ISCHR(mode) and st.st_rdev == 0:
        wh = _info(f"{prefix}.wh.{name}", st)
        wh.type = tarfile.REGTYPE
        wh.mode = 0o644
        add(wh)
    elif stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in seen:
            ti = _info(path, st)
            ti.type = tarfile.LNKTYPE
            ti.linkname = seen[key]
            add(ti)
            return
        seen[key] = path
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as f:
            ti = _info(path, st, _xattrs(f.fileno()))
            ti.size = st.st_size
            add(ti, f)
    elif stat.S_ISLNK(mode):
        ti = _info(path, st)
        ti.type = tarfile.SYMTYPE
        ti.linkname = os.readlink(name, dir_fd=dir_fd)
        add(ti)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        ti = _info(path, st)
        if stat.S_ISFIFO(mode):
            ti.type = tarfile.FIFOTYPE
        else:
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        add(ti)
    # Sockets are not carried in layers (Docker skips them too).


__all__ = [
    "Snapshots",
    "has_changes",
    "leads_to",
    "lower_stack",
    "mount_overlay",
    "overlay_data",
    "remove_at",
    "remove_tree",
    "unmount_overlay",
    "write_diff_tar",
]
