"""The container's mounts as a plan: steps computed from the spec, no I/O.

`plan_mounts` lists what the init does in its new mount namespace before
pivot_root (propagation, the rootfs bound onto itself, each mounts[] entry,
a cgroup mount expanded into its parts); `plan_finish` what it does after
(sysctls, read-only and masked paths, the read-only root, shared root
propagation). runtime/rootfs.py carries a plan out through a `Kernel`, as
the cgroup drivers turn resources into writes and then write them.

Destinations are paths inside the container's root; every step names the
config field it comes from, which errors repeat.
"""

from __future__ import annotations

import errno
import posixpath

from portique.linux import mount as m
from portique.oci.value import value

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from typing import Final

    from portique.oci.runtime import Mount, Spec

_FLAGS: Final[dict[str, tuple[bool, int]]] = {
    # option: (clear?, flag)
    "defaults": (False, 0),
    "ro": (False, m.MS_RDONLY),
    "rw": (True, m.MS_RDONLY),
    "suid": (True, m.MS_NOSUID),
    "nosuid": (False, m.MS_NOSUID),
    "dev": (True, m.MS_NODEV),
    "nodev": (False, m.MS_NODEV),
    "exec": (True, m.MS_NOEXEC),
    "noexec": (False, m.MS_NOEXEC),
    "sync": (False, m.MS_SYNCHRONOUS),
    "async": (True, m.MS_SYNCHRONOUS),
    "dirsync": (False, m.MS_DIRSYNC),
    "remount": (False, m.MS_REMOUNT),
    "mand": (False, m.MS_MANDLOCK),
    "nomand": (True, m.MS_MANDLOCK),
    "atime": (True, m.MS_NOATIME),
    "noatime": (False, m.MS_NOATIME),
    "diratime": (True, m.MS_NODIRATIME),
    "nodiratime": (False, m.MS_NODIRATIME),
    "bind": (False, m.MS_BIND),
    "rbind": (False, m.MS_BIND | m.MS_REC),
    "relatime": (False, m.MS_RELATIME),
    "norelatime": (True, m.MS_RELATIME),
    "strictatime": (False, m.MS_STRICTATIME),
    "nostrictatime": (True, m.MS_STRICTATIME),
    "lazytime": (False, m.MS_LAZYTIME),
    "nolazytime": (True, m.MS_LAZYTIME),
    "symfollow": (True, m.MS_NOSYMFOLLOW),
    "nosymfollow": (False, m.MS_NOSYMFOLLOW),
}
PROPAGATION: Final[dict[str, int]] = {
    "private": m.MS_PRIVATE,
    "rprivate": m.MS_PRIVATE | m.MS_REC,
    "shared": m.MS_SHARED,
    "rshared": m.MS_SHARED | m.MS_REC,
    "slave": m.MS_SLAVE,
    "rslave": m.MS_SLAVE | m.MS_REC,
    "unbindable": m.MS_UNBINDABLE,
    "runbindable": m.MS_UNBINDABLE | m.MS_REC,
}
# Options other runtimes accept that change nothing for a plain mount here;
# idmap and ridmap are Mount.idmap (runtime/idmap.py), not mount(2) options.
_IGNORED: Final = frozenset({"tmpcopyup", "notmpcopyup", "idmap", "ridmap"})
# A bind takes its flags in a second, remounting call (mount(2) ignores them
# with MS_BIND); these are not such flags.
_BIND_ONLY: Final = m.MS_BIND | m.MS_REC | m.MS_REMOUNT
# File systems that must land on a plain directory (runc, youki): an image
# whose /proc is a symlink must not get procfs mounted where the link points.
PLAIN_DIR_TYPES: Final = frozenset({"proc", "sysfs"})


@value
class Options:
    """Mount options split into flags, propagation changes and fs data."""

    flags: int
    propagation: tuple[int, ...]
    data: str

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & m.MS_BIND)


def parse_options(options: tuple[str, ...] | list[str]) -> Options:
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    for opt in options:
        if opt in _FLAGS:
            clear, flag = _FLAGS[opt]
            flags = flags & ~flag if clear else flags | flag
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in _IGNORED or opt.startswith("x-"):
            continue
        else:
            data.append(opt)
    return Options(flags, tuple(propagation), ",".join(data))


@value
class CgroupInfo:
    """What a `cgroup` mount needs, computed by the parent from the manager:
    v1, each hierarchy's mountpoint name ("cpu,cpuacct") and the host
    directory of the container's cgroup there; v2, ("", that directory)."""

    version: str  # "v1" | "v2"
    dirs: tuple[tuple[str, str], ...] = ()


# ---------------------------------------------------------------- the steps


@value
class Propagate:
    """mount(NULL, dest, NULL, flags): change the propagation of the mount at
    `dest`, or with `dest` None of every mount of the namespace ("/" of the
    process, before pivot_root)."""

    field: str
    dest: str | None
    flags: int


@value
class BindRootfs:
    """The rootfs bound onto itself (recursively): pivot_root wants a mount point."""

    field: str


@value
class Bind:
    """Bind `source` (a host path) at `dest`; then, if `flags`, remount the
    bind with them (keeping the flags the kernel locked)."""

    field: str
    dest: str
    source: str
    recursive: bool
    flags: int = 0


@value
class MountFs:
    """A new file system at `dest`.

    `owned`: it is the container's own (a fresh tmpfs), so devices may be
    created in it. `plain_dir`: the destination must be a plain directory
    (proc, sysfs). `fallback`, when the kernel answers one of `fallback_on`
    (errnos), is done instead: the host's /sys for a sysfs a user namespace
    may not mount; the container's own cgroup directory for a cgroup2 mount
    refused because the same cgroup2 mount already sits there (EBUSY: a
    rootless spec binds the host's /sys, /sys/fs/cgroup included).
    """

    field: str
    dest: str
    fstype: str
    source: str
    flags: int = 0
    data: str = ""
    owned: bool = False
    plain_dir: bool = False
    fallback: Bind | None = None
    fallback_on: tuple[int, ...] = ()


@value
class AttachIdmapped:
    """Attach the detached id-mapped mount made in stage 1 for mounts[`index`]
    (runtime/idmap.py) at `dest`, then remount it with `flags` if any."""

    field: str
    dest: str
    index: int
    flags: int = 0


@value
class Remount:
    """Remount the bind mount at `dest` with `flags` (locked flags kept)."""

    field: str
    dest: str
    flags: int


@value
class RemountFs:
    """Remount the file system at `dest` (its superblock) with `flags`."""

    field: str
    dest: str
    flags: int


@value
class Symlink:
    """A symlink `name` -> `target` in the directory `dest`; one already there stays."""

    field: str
    dest: str
    name: str
    target: str


@value
class Sysctl:
    field: str
    key: str
    value: str


@value
class ReadOnlyPath:
    """Bind `path` onto itself read-only (a missing path is skipped)."""

    field: str
    path: str


@value
class MaskPath:
    """Hide `path`: the null device over a file, an empty read-only tmpfs over
    a directory (a missing path is skipped)."""

    field: str
    path: str


@value
class ReadOnlyRoot:
    field: str


Step = (
    Propagate
    | BindRootfs
    | Bind
    | MountFs
    | AttachIdmapped
    | Remount
    | RemountFs
    | Symlink
    | Sysctl
    | ReadOnlyPath
    | MaskPath
    | ReadOnlyRoot
)


# ---------------------------------------------------------------- planning


def plan_mounts(
    spec: Spec,
    bundle: str,
    cgroup: CgroupInfo | None,
    userns: bool,
    idmapped: frozenset[int] = frozenset(),
) -> list[Step]:
    """The steps before pivot_root. `idmapped`: the indexes of mounts[] that
    stage 1 made into detached id-mapped mounts."""
    prop = spec.linux.rootfs_propagation
    # Nothing we mount may propagate back to the host: private (or slave, when
    # asked) before anything else. Shared propagation is applied after pivot.
    first = PROPAGATION[prop] if prop in ("slave", "rslave") else m.MS_PRIVATE
    steps: list[Step] = [
        Propagate("linux.rootfsPropagation", None, first | m.MS_REC),
        BindRootfs("root.path"),
    ]
    for i, mnt in enumerate(spec.mounts):
        steps.extend(
            _plan_mount(
                f"mounts[{i}] {mnt.destination}", i, mnt, bundle, cgroup, userns, i in idmapped
            )
        )
    return steps


def _plan_mount(
    field: str,
    index: int,
    mnt: Mount,
    bundle: str,
    cgroup: CgroupInfo | None,
    userns: bool,
    idmapped: bool,
) -> list[Step]:
    opts = parse_options(mnt.options)
    dest = mnt.destination
    if mnt.type == "bind":
        opts = Options(opts.flags | m.MS_BIND, opts.propagation, opts.data)
    if mnt.type == "cgroup":
        return _plan_cgroup(field, dest, opts, cgroup)
    extra = opts.flags & ~_BIND_ONLY
    steps: list[Step]
    if idmapped:
        steps = [AttachIdmapped(field, dest, index, extra)]
    elif opts.is_bind:
        source = mnt.source if mnt.source.startswith("/") else posixpath.join(bundle, mnt.source)
        steps = [Bind(field, dest, source, bool(opts.flags & m.MS_REC), extra)]
    else:
        fallback = None
        if mnt.type == "sysfs" and userns:
            # A user namespace that does not own the network namespace cannot
            # mount sysfs: give it the host's, read-only (as runc).
            fallback = Bind(field, dest, "/sys", True, m.MS_RDONLY | opts.flags)
        steps = [
            MountFs(
                field,
                dest,
                mnt.type,
                mnt.source or mnt.type,
                opts.flags,
                opts.data,
                owned=mnt.type == "tmpfs",
                plain_dir=mnt.type in PLAIN_DIR_TYPES,
                fallback=fallback,
                fallback_on=(errno.EPERM,) if fallback else (),
            )
        ]
    steps.extend(Propagate(field, dest, flag) for flag in opts.propagation)
    return steps


def _plan_cgroup(field: str, dest: str, opts: Options, cgroup: CgroupInfo | None) -> list[Step]:
    if cgroup is None or cgroup.version == "v2":
        own = cgroup.dirs[0][1] if cgroup is not None and cgroup.dirs else ""
        fallback = Bind(field, dest, own, True, opts.flags) if own else None
        mount = MountFs(
            field,
            dest,
            "cgroup2",
            "cgroup",
            opts.flags,
            fallback=fallback,
            fallback_on=(errno.EPERM, errno.EBUSY) if fallback else (),
        )
        return [mount]
    # v1: a tmpfs with the container's directory of each hierarchy bound in.
    steps: list[Step] = [
        MountFs(field, dest, "tmpfs", "cgroup", opts.flags & ~m.MS_RDONLY, "mode=755")
    ]
    ro = opts.flags & m.MS_RDONLY
    for name, host_dir in cgroup.dirs:
        sub = posixpath.join(dest, name)
        steps.append(Bind(field, sub, host_dir, True, m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC | ro))
        # cpu,cpuacct is also reachable as cpu and cpuacct, as on the host.
        if "," in name:
            steps.extend(Symlink(field, dest, alias, name) for alias in name.split(","))
    if ro:
        steps.append(RemountFs(field, dest, m.MS_RDONLY | m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC))
    return steps


def plan_finish(spec: Spec) -> list[Step]:
    """The steps after pivot_root, inside the container's own /proc."""
    linux = spec.linux
    steps: list[Step] = [Sysctl(f"linux.sysctl {k}", k, v) for k, v in linux.sysctl]
    steps.extend(ReadOnlyPath(f"linux.readonlyPaths {p}", p) for p in linux.readonly_paths)
    steps.extend(MaskPath(f"linux.maskedPaths {p}", p) for p in linux.masked_paths)
    if spec.root.readonly:
        steps.append(ReadOnlyRoot("root.readonly"))
    prop = linux.rootfs_propagation
    if prop and prop not in ("slave", "rslave", "private", "rprivate"):
        steps.append(Propagate(f"linux.rootfsPropagation {prop}", "/", PROPAGATION[prop]))
    return steps


__all__ = [
    "PROPAGATION",
    "AttachIdmapped",
    "Bind",
    "BindRootfs",
    "CgroupInfo",
    "MaskPath",
    "MountFs",
    "Options",
    "Propagate",
    "ReadOnlyPath",
    "ReadOnlyRoot",
    "Remount",
    "RemountFs",
    "Step",
    "Symlink",
    "Sysctl",
    "parse_options",
    "plan_finish",
    "plan_mounts",
]
