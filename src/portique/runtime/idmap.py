"""Id-mapped bind mounts (mounts[].uidMappings/gidMappings, options idmap/ridmap).

Stage 1 calls `open_idmapped` while it is still in the runtime's user and
mount namespaces: setting MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN in the user
namespace that owns the source's mount, which a container in a user
namespace of its own no longer has. Each source becomes a detached mount
(open_tree), mapped through a user namespace made for the purpose with the
mount's mappings (or the container's, for idmap without mappings), and the
init attaches it at its destination (rootfs.apply, move_mount).

A file owned by id N on disk shows through the mount as the id N maps to
(containerID N -> hostID), the same direction as a user namespace's maps:
with the container's own mappings, its root owns what root owns on disk.
"""

from __future__ import annotations

import errno
import os
import posixpath

from portique.linux import ns

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from portique.linux.kernel import Kernel
    from portique.oci.runtime import IDMapping, Spec


def open_idmapped(spec: Spec, bundle: str, kernel: Kernel) -> dict[int, int]:
    """mounts[] index -> a detached, id-mapped mount fd (O_CLOEXEC) for each
    id-mapped mount of `spec`; every fd opened is closed again on error."""
    out: dict[int, int] = {}
    users: dict[tuple[tuple[IDMapping, ...], tuple[IDMapping, ...]], int] = {}
    try:
        for i, mnt in enumerate(spec.mounts):
            if not mnt.idmap:
                continue
            maps = (
                (mnt.uid_mappings, mnt.gid_mappings)
                if mnt.uid_mappings
                else (spec.linux.uid_mappings, spec.linux.gid_mappings)
            )
            if maps not in users:
                users[maps] = userns_with(*maps, kernel)
            source = mnt.source
            if not source.startswith("/"):
                source = posixpath.join(bundle, source)
            what = f"mounts[{i}] {mnt.destination}: {mnt.idmap} of {source}"
            recursive = "rbind" in mnt.options
            try:
                out[i] = kernel.open_tree(source, recursive=recursive)
            except OSError as e:
                raise OSError(e.errno, f"{what}: open_tree: {e.strerror}") from None
            try:
                kernel.set_idmap(out[i], users[maps], recursive=mnt.idmap == "ridmap")
            except OSError as e:
                if e.errno == errno.ENOSYS:
                    why = "this kernel has no mount_setattr (Linux 5.12 or later)"
                elif e.errno == errno.EINVAL:
                    why = "its filesystem does not support id-mapped mounts on this kernel"
                else:
                    why = f"mount_setattr: {e.strerror}"
                raise OSError(e.errno, f"{what}: {why}") from None
    except BaseException:
        for fd in out.values():
            os.close(fd)
        raise
    finally:
        for fd in users.values():
            os.close(fd)
    return out


def userns_with(
    uid_mappings: tuple[IDMapping, ...], gid_mappings: tuple[IDMapping, ...], kernel: Kernel
) -> int:
    """An fd of a new user namespace with these mappings.

    A user namespace comes into being with a process: a short-lived child
    unshares one and waits while we write its maps and open it; the open
    fd keeps the namespace alive after the child is gone. The caller is a
    single-threaded forked runtime process (stage 1), so fork is safe.
    """
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(go_w)
            os.close(ready_r)
            kernel.unshare(ns.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(go_r, 1)  # EOF when the parent is done with us
            code = 0
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(ready_w)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(errno.EPERM, "id-mapped mount: cannot create a user namespace")
        for name, maps in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
            text = "".join(f"{x.container_id} {x.host_id} {x.size}\n" for x in maps)
            fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, text.encode())  # the kernel takes a map in one write
            finally:
                os.close(fd)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(go_w)
        os.close(ready_r)
        os.waitpid(pid, 0)


__all__ = ["open_idmapped", "userns_with"]
