"""An in-memory kernel for the runtime's unit tests: `FakeKernel` implements
portique.linux.kernel.Kernel without root.

It is a peer, not a mock: it records every call (`calls`) and keeps the state
the runtime reads back, so the code under test runs as it does on the real
kernel:

- a mount table (`mounts`): mount(2) adds an entry, a remount changes its
  flags, `mount_id(fd)` names the deepest entry holding the file and
  `mount_flags(path)` its flags, as /proc/self/fdinfo and statvfs would;
- device nodes: `mknod` makes an empty regular file and remembers what it
  stands for, which `fstat` then reports (type and device number);
- ids, groups, capability sets, host name, keyring, window sizes.

Paths the runtime passes as /proc/self/fd/N (every mount target is one) are
recorded as the real paths they lead to. `fail(...)` makes a call answer an
errno, as a busy or unwilling kernel would.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from portique.linux import mount as m
from portique.linux.kernel import Path

_PROPAGATION = m.MS_PRIVATE | m.MS_SHARED | m.MS_SLAVE | m.MS_UNBINDABLE
_VISIBLE = m.MS_RDONLY | m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC
ROOT_MOUNT_ID = 1  # the id of whatever no fake mount covers


@dataclass
class FakeMount:
    id: int
    target: str  # a real path
    source: str | None
    fstype: str  # "bind" for a bind mount
    flags: int
    data: str | None


@dataclass
class _Failure:
    name: str
    errno: int
    times: int
    when: Callable[[tuple[object, ...]], bool] | None


@dataclass
class FakeKernel:
    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    mounts: list[FakeMount] = field(default_factory=list)
    nodes: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    owners: dict[str, tuple[int, int]] = field(default_factory=dict)
    uid: tuple[int, int, int] = (0, 0, 0)
    gid: tuple[int, int, int] = (0, 0, 0)
    groups: list[int] = field(default_factory=list)
    caps: tuple[int, int, int] = ((1 << 41) - 1, (1 << 41) - 1, 0)
    bounding: int = (1 << 41) - 1
    ambient: int = 0
    hostname: str = ""
    keyring: int = 0
    winsize: dict[int, tuple[int, int]] = field(default_factory=dict)
    _failures: list[_Failure] = field(default_factory=list)
    _next_id: int = 100

    # ------------------------------------------------------------ test helpers

    def fail(
        self,
        name: str,
        err: int,
        *,
        times: int = 1,
        when: Callable[[tuple[object, ...]], bool] | None = None,
    ) -> None:
        """The next `times` calls of `name` (those `when(args)` accepts) fail with `err`."""
        self._failures.append(_Failure(name, err, times, when))

    def named(self, name: str) -> list[tuple[object, ...]]:
        """The arguments of every call of `name`, in order."""
        return [args for n, args in self.calls if n == name]

    def mount_at(self, path: str | os.PathLike[str]) -> FakeMount | None:
        """The topmost mount whose target is exactly `path`."""
        want = os.path.realpath(path)
        found = [x for x in self.mounts if x.target == want]
        return found[-1] if found else None

    def _call(self, name: str, *args: object) -> None:
        self.calls.append((name, args))
        for f in self._failures:
            if f.name == name and f.times > 0 and (f.when is None or f.when(args)):
                f.times -= 1
                raise OSError(f.errno, f"{name}: {os.strerror(f.errno)}")

    # ------------------------------------------------------------ the protocol

    def preload(self, *, terminal: bool = False) -> None:
        self._call("preload", terminal)

    def mount(
        self,
        source: Path | None,
        target: Path,
        fstype: str | None = None,
        flags: int = 0,
        data: str | None = None,
    ) -> None:
        src = None if source is None else _real(source)
        tgt = _real(target)
        self._call("mount", src, tgt, fstype, flags, data)
        if flags & m.MS_REMOUNT:
            mnt = self._covering(tgt)
            if mnt is None:
                raise OSError(errno.EINVAL, "mount: not a mount point", tgt)
            mnt.flags = flags & ~(m.MS_REMOUNT | m.MS_BIND | m.MS_REC)
        elif flags & m.MS_MOVE or (flags & _PROPAGATION and not flags & m.MS_BIND):
            return
        elif flags & m.MS_BIND:
            # A new bind has its source mount's flags: mount(2) ignores the
            # others until a remount.
            under = None if src is None else self._covering(src)
            self._next_id += 1
            inherited = 0 if under is None else under.flags & _VISIBLE
            self.mounts.append(FakeMount(self._next_id, tgt, src, "bind", inherited, data))
        else:
            self._next_id += 1
            self.mounts.append(FakeMount(self._next_id, tgt, src, fstype or "", flags, data))

    def umount(self, target: Path, flags: int = 0) -> None:
        self._call("umount", _real(target), flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._call("pivot_root", new_root, put_old)

    def chroot(self, path: str) -> None:
        self._call("chroot", path)

    def open_tree(self, path: str, *, recursive: bool = False) -> int:
        self._call("open_tree", path, recursive)
        return os.open(path, os.O_PATH | os.O_CLOEXEC)

    def set_idmap(self, tree_fd: int, userns_fd: int, *, recursive: bool = False) -> None:
        self._call("set_idmap", tree_fd, userns_fd, recursive)

    def move_mount(self, tree_fd: int, target_fd: int) -> None:
        src, tgt = _real(f"/proc/self/fd/{tree_fd}"), _real(f"/proc/self/fd/{target_fd}")
        self._call("move_mount", src, tgt)
        self._next_id += 1
        self.mounts.append(FakeMount(self._next_id, tgt, src, "idmapped", 0, None))

    def mount_id(self, fd: int) -> int:
        mnt = self._covering(_real(f"/proc/self/fd/{fd}"))
        return ROOT_MOUNT_ID if mnt is None else mnt.id

    def mount_flags(self, path: str) -> int:
        mnt = self._covering(_real(path))
        return 0 if mnt is None else mnt.flags & _VISIBLE

    def fstat(self, fd: int) -> os.stat_result:
        st = os.fstat(fd)
        node = self.nodes.get((st.st_dev, st.st_ino))
        if node is None:
            return st
        kind, rdev = node
        fields = list(st[:10])
        fields[0] = stat.S_IFMT(kind) | stat.S_IMODE(st.st_mode)
        return os.stat_result(fields, {"st_rdev": rdev})

    def mknod(self, name: str, mode: int, device: int, dir_fd: int) -> None:
        self._call("mknod", _at(dir_fd, name), mode, device)
        fd = os.open(
            name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=dir_fd
        )
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        self.nodes[(st.st_dev, st.st_ino)] = (mode, device)

    def chown(self, name: str, uid: int, gid: int, dir_fd: int) -> None:
        path = _at(dir_fd, name)
        self._call("chown", path, uid, gid)
        self.owners[path] = (uid, gid)

    def unshare(self, flags: int) -> None:
        self._call("unshare", flags)

    def setns(self, fd: int, nstype: int = 0) -> None:
        self._call("setns", fd, nstype)

    def sethostname(self, name: str) -> None:
        self._call("sethostname", name)
        self.hostname = name

    def setdomainname(self, name: str) -> None:
        self._call("setdomainname", name)

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        self._call("setresuid", ruid, euid, suid)
        self.uid = (ruid, euid, suid)

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        self._call("setresgid", rgid, egid, sgid)
        self.gid = (rgid, egid, sgid)

    def setgroups(self, gids: list[int]) -> None:
        self._call("setgroups", list(gids))
        self.groups = list(gids)

    def capget(self) -> tuple[int, int, int]:
        self._call("capget")
        return self.caps

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self._call("capset", effective, permitted, inheritable)
        self.caps = (effective, permitted, inheritable)

    def drop_bounding(self, keep: int) -> None:
        self._call("drop_bounding", keep)
        self.bounding &= keep

    def set_ambient(self, mask: int) -> list[int]:
        self._call("set_ambient", mask)
        allowed = self.caps[1] & self.caps[2]
        self.ambient = mask & allowed
        return [cap for cap in range(64) if mask & ~allowed & (1 << cap)]

    def clear_ambient(self) -> None:
        self._call("clear_ambient")
        self.ambient = 0

    def set_keepcaps(self, on: bool) -> None:
        self._call("set_keepcaps", on)

    def set_no_new_privs(self) -> None:
        self._call("set_no_new_privs")

    def set_personality(self, persona: int) -> None:
        self._call("set_personality", persona)

    def set_dumpable(self, on: bool) -> None:
        self._call("set_dumpable", on)

    def set_pdeathsig(self, sig: int) -> None:
        self._call("set_pdeathsig", sig)

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        self._call("setrlimit", resource, soft, hard)

    def join_session_keyring(self) -> int:
        self._call("join_session_keyring")
        self.keyring += 1
        return self.keyring

    def set_winsize(self, fd: int, rows: int, cols: int) -> None:
        self._call("set_winsize", fd, rows, cols)
        self.winsize[fd] = (rows, cols)

    def set_controlling_tty(self, fd: int) -> None:
        self._call("set_controlling_tty", fd)

    # ------------------------------------------------------------ internals

    def _covering(self, path: str) -> FakeMount | None:
        """The mount a file at `path` lies on: the last one made at the
        deepest target that is `path` or one of its parents."""
        best: FakeMount | None = None
        for mnt in self.mounts:
            inside = path == mnt.target or path.startswith(mnt.target.rstrip("/") + "/")
            if inside and (best is None or len(mnt.target) >= len(best.target)):
                best = mnt
        return best


def _real(path: Path) -> str:
    """The real path a target names (a /proc/self/fd/N link followed)."""
    text = os.fsdecode(path)
    if text.startswith("/proc/self/fd/"):
        return os.readlink(text)
    return os.path.realpath(text)


def _at(dir_fd: int, name: str) -> str:
    return os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), name)


__all__ = ["ROOT_MOUNT_ID", "FakeKernel", "FakeMount"]
