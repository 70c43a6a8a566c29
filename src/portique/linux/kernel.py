"""The kernel as the container runtime sees it: one `Kernel` protocol.

Everything runtime/init.py, rootfs.py, devices.py, process.py, idmap.py and
execution.py do to the kernel beyond plain file I/O goes through a `Kernel`
passed in by the caller: mounts, the root switch, namespaces, host and
domain names, ids, groups and capabilities, prctl attributes, device nodes,
terminal ioctls and the session keyring. `LinuxKernel` is the real one (thin
calls into the other modules of linux/); tests hold an in-memory peer
(tests/support/fakekernel.py) that records each call and models the state
the runtime reads back (which mount a file lies on, what a device node is),
so the mount plan, masks and device creation run without root.

The composition roots (cli/runc/context.py, the engine) build one
`LinuxKernel` and hand it to `Runtime`; nothing patches it. Its methods
import their modules on first use: `portique-runtime state` never loads
ctypes.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # a plain base at run time: importing typing costs every call

Path = str | bytes | os.PathLike[str]


class Kernel(Protocol):
    def preload(self, *, terminal: bool = False) -> None:
        """Load now what the calls below need (`terminal`: the terminal ones
        too): after pivot_root, or setns into a container's mount namespace,
        the host's Python library is gone."""
        ...

    # ------------------------------------------------------------ mounts
    def mount(
        self,
        source: Path | None,
        target: Path,
        fstype: str | None = None,
        flags: int = 0,
        data: str | None = None,
    ) -> None: ...
    def umount(self, target: Path, flags: int = 0) -> None: ...
    def pivot_root(self, new_root: str, put_old: str) -> None: ...
    def chroot(self, path: str) -> None: ...
    def open_tree(self, path: str, *, recursive: bool = False) -> int: ...
    def set_idmap(self, tree_fd: int, userns_fd: int, *, recursive: bool = False) -> None: ...
    def move_mount(self, tree_fd: int, target_fd: int) -> None: ...
    def mount_id(self, fd: int) -> int:
        """The id of the mount the open file `fd` lies on."""
        ...

    def mount_flags(self, path: str) -> int:
        """The MS_RDONLY/NOSUID/NODEV/NOEXEC flags of the mount at `path`."""
        ...

    def fstat(self, fd: int) -> os.stat_result:
        """What the file `fd` is (a device node's type and number included)."""
        ...

    # ------------------------------------------------------------ devices
    def mknod(self, name: str, mode: int, device: int, dir_fd: int) -> None: ...
    def chown(self, name: str, uid: int, gid: int, dir_fd: int) -> None:
        """fchownat without following a symlink."""
        ...

    # ------------------------------------------------------------ namespaces, names
    def unshare(self, flags: int) -> None: ...
    def setns(self, fd: int, nstype: int = 0) -> None: ...
    def sethostname(self, name: str) -> None: ...
    def setdomainname(self, name: str) -> None: ...

    # ------------------------------------------------------------ ids, capabilities
    def setresuid(self, ruid: int, euid: int, suid: int) -> None: ...
    def setresgid(self, rgid: int, egid: int, sgid: int) -> None: ...
    def setgroups(self, gids: list[int]) -> None: ...
    def capget(self) -> tuple[int, int, int]:
        """(effective, permitted, inheritable) of the caller as 64-bit masks."""
        ...

    def capset(self, effective: int, permitted: int, inheritable: int) -> None: ...
    def drop_bounding(self, keep: int) -> None:
        """Drop every capability not in the `keep` mask from the bounding set."""
        ...

    def set_ambient(self, mask: int) -> list[int]:
        """Raise `mask` in the ambient set (cleared first); the caps refused."""
        ...

    def clear_ambient(self) -> None: ...
    def set_keepcaps(self, on: bool) -> None: ...

    # ------------------------------------------------------------ process attributes
    def set_no_new_privs(self) -> None: ...
    def set_personality(self, persona: int) -> None: ...
    def set_dumpable(self, on: bool) -> None: ...
    def set_pdeathsig(self, sig: int) -> None: ...
    def setrlimit(self, resource: int, soft: int, hard: int) -> None: ...
    def join_session_keyring(self) -> int:
        """A new anonymous session keyring for the caller; its serial."""
        ...

    # ------------------------------------------------------------ terminals
    def set_winsize(self, fd: int, rows: int, cols: int) -> None: ...
    def set_controlling_tty(self, fd: int) -> None: ...


class LinuxKernel:
    """The running kernel (each method is one call of the linux/ module named)."""

    def preload(self, *, terminal: bool = False) -> None:
        import resource  # noqa: F401

        from portique.linux import caps, fs, keyring, mount, ns, prctl  # noqa: F401

        if terminal:
            from portique.linux import tty  # noqa: F401

    def mount(
        self,
        source: Path | None,
        target: Path,
        fstype: str | None = None,
        flags: int = 0,
        data: str | None = None,
    ) -> None:
        from portique.linux.mount import mount

        mount(source, target, fstype, flags, data)

    def umount(self, target: Path, flags: int = 0) -> None:
        from portique.linux.mount import umount

        umount(target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        from portique.linux.fs import pivot_root

        pivot_root(new_root, put_old)

    def chroot(self, path: str) -> None:
        os.chroot(path)

    def open_tree(self, path: str, *, recursive: bool = False) -> int:
        from portique.linux.mount import open_tree

        return open_tree(path, recursive=recursive)

    def set_idmap(self, tree_fd: int, userns_fd: int, *, recursive: bool = False) -> None:
        from portique.linux.mount import set_idmap

        set_idmap(tree_fd, userns_fd, recursive=recursive)

    def move_mount(self, tree_fd: int, target_fd: int) -> None:
        from portique.linux.mount import move_mount

        move_mount(tree_fd, target_fd)

    def mount_id(self, fd: int) -> int:
        from portique.linux.mount import mount_id

        return mount_id(fd)

    def mount_flags(self, path: str) -> int:
        from portique.linux.mount import mount_flags

        return mount_flags(path)

    def fstat(self, fd: int) -> os.stat_result:
        return os.fstat(fd)

    def mknod(self, name: str, mode: int, device: int, dir_fd: int) -> None:
        os.mknod(name, mode, device, dir_fd=dir_fd)

    def chown(self, name: str, uid: int, gid: int, dir_fd: int) -> None:
        os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)

    def unshare(self, flags: int) -> None:
        from portique.linux.ns import unshare

        unshare(flags)

    def setns(self, fd: int, nstype: int = 0) -> None:
        from portique.linux.ns import setns

        setns(fd, nstype)

    def sethostname(self, name: str) -> None:
        from portique.linux.fs import sethostname

        sethostname(name)

    def setdomainname(self, name: str) -> None:
        from portique.linux.fs import setdomainname

        setdomainname(name)

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        os.setresuid(ruid, euid, suid)

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        os.setresgid(rgid, egid, sgid)

    def setgroups(self, gids: list[int]) -> None:
        os.setgroups(gids)

    def capget(self) -> tuple[int, int, int]:
        from portique.linux.caps import capget

        return capget()

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        from portique.linux.caps import capset

        capset(effective, permitted, inheritable)

    def drop_bounding(self, keep: int) -> None:
        from portique.linux.caps import drop_bounding

        drop_bounding(keep)

    def set_ambient(self, mask: int) -> list[int]:
        from portique.linux.caps import set_ambient

        return set_ambient(mask)

    def clear_ambient(self) -> None:
        from portique.linux.prctl import ambient_clear_all

        ambient_clear_all()

    def set_keepcaps(self, on: bool) -> None:
        from portique.linux.prctl import set_keepcaps

        set_keepcaps(on)

    def set_no_new_privs(self) -> None:
        from portique.linux.prctl import set_no_new_privs

        set_no_new_privs()

    def set_personality(self, persona: int) -> None:
        from portique.linux.prctl import set_personality

        set_personality(persona)

    def set_dumpable(self, on: bool) -> None:
        from portique.linux.prctl import set_dumpable

        set_dumpable(on)

    def set_pdeathsig(self, sig: int) -> None:
        from portique.linux.prctl import set_pdeathsig

        set_pdeathsig(sig)

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        import resource as _resource

        _resource.setrlimit(resource, (soft, hard))

    def join_session_keyring(self) -> int:
        from portique.linux.keyring import join_session_keyring

        return join_session_keyring()

    def set_winsize(self, fd: int, rows: int, cols: int) -> None:
        from portique.linux.tty import set_winsize

        set_winsize(fd, rows, cols)

    def set_controlling_tty(self, fd: int) -> None:
        from portique.linux.tty import set_controlling_tty

        set_controlling_tty(fd)


__all__ = ["Kernel", "LinuxKernel"]
