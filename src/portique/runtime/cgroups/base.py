"""What both cgroup drivers share: the interface, host detection, path rules
and the file I/O helpers whose errors name the file.

Every function takes the cgroupfs `root` (default /sys/fs/cgroup) so unit
tests run the drivers against a fake tree in a temporary directory.

Paths are handled as text (os.path), not pathlib: importing pathlib costs
`portique-runtime` ~4 ms of every start (it pulls in re, fnmatch and
urllib.parse). The functions accept a str or a Path; what callers read as
Paths (hierarchies(), a manager's dirs()) is still made of Paths, built on
demand.
"""

from __future__ import annotations

import errno
import os
import time

from portique.errors import InvalidArgument, PortiqueError, Unsupported
from portique.linux.proc import read_all
from portique.pathtext import pure_parts, pure_text

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Final, Literal, Protocol

    from _typeshed import StrPath

    from portique.oci.resources import LinuxResources, RdmaLimit

    DEFAULT_ROOT: Path  # the Path of ROOT (module __getattr__)
else:
    Protocol = object  # a plain base at run time: importing typing costs every call

ROOT: Final = "/sys/fs/cgroup"
MOUNTINFO: Final = "/proc/self/mountinfo"
PARENT: Final = "portique"  # cgroups made for a None or relative cgroupsPath live under /portique
MAX_DEPTH: Final = 32


class CgroupError(PortiqueError):
    """A cgroup file could not be read or written."""


class CgroupManager(Protocol):
    """One container's cgroup, on one driver (v1: a dir per hierarchy; v2: one dir)."""

    version: str  # "v1" or "v2"
    path: str  # the cgroup path inside each hierarchy, e.g. "/portique/<id>"

    def create(self) -> None: ...
    def apply(self, resources: LinuxResources | None) -> None: ...
    def add_process(self, pid: int) -> None: ...
    def join(self) -> None:
        """Move the calling process, which must be single-threaded, in."""
        ...

    def freeze(self) -> None: ...
    def thaw(self) -> None: ...
    def is_frozen(self) -> bool: ...
    def pids(self) -> list[int]: ...
    def stats(self) -> dict[str, object]: ...
    def oom_kill_count(self) -> int: ...
    def kill_all(self, sig: int) -> None: ...
    def destroy(self) -> None: ...
    def exists(self) -> bool: ...
    def dirs(self) -> dict[str, Path]: ...
    def dir_texts(self) -> dict[str, str]:
        """dirs() as text (no pathlib import)."""
        ...


def __getattr__(name: str) -> object:
    # DEFAULT_ROOT, the Path of ROOT, for the callers that want one.
    if name == "DEFAULT_ROOT":
        from pathlib import Path

        return Path(ROOT)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------- detection


def detect(root: StrPath = ROOT) -> Literal["v1", "v2"]:
    """ "v2" when `root` itself is a cgroup2 mount, else "v1".

    A cgroup2 root has cgroup.controllers at its top; the v1 layouts (pure,
    or hybrid with cgroup2 at root/unified holding hugetlb or nothing) have a
    tmpfs there with one directory per hierarchy. The hybrid is v1 for us:
    its controllers live in the v1 hierarchies.
    """
    top = os.fspath(root)
    if os.path.exists(os.path.join(top, "cgroup.controllers")):
        return "v2"
    if os.path.isdir(top) and any(
        os.path.exists(os.path.join(top, name, "cgroup.procs"))
        for name in os.listdir(top)
        if name != "unified"
    ):
        return "v1"
    raise Unsupported(f"no cgroup filesystem mounted at {root}")


def hierarchies(
    root: StrPath = ROOT, *, mountinfo: StrPath = MOUNTINFO
) -> list[tuple[Path, tuple[str, ...]]]:
    """The v1 hierarchies mounted under `root`: (mountpoint, controllers).

    Controllers are as the kernel names them ("cpu", "cpuacct", "name=systemd");
    a co-mounted pair (cpu,cpuacct) is one entry. Symlinks such as
    /sys/fs/cgroup/cpu -> cpu,cpuacct are not mounts and do not appear.
    """
    from pathlib import Path

    return [(Path(mp), ctrls) for mp, ctrls in mounted_hierarchies(root, mountinfo)]


def mounted_hierarchies(root: StrPath, mountinfo: StrPath) -> list[tuple[str, tuple[str, ...]]]:
    """hierarchies(), the mountpoints as text."""
    out: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()
    prefix = os.fspath(root).rstrip("/") + "/"
    try:
        with open(mountinfo) as f:
            text = f.read()
    except OSError as e:
        raise CgroupError(f"cannot read {mountinfo}: {e.strerror}") from None
    for line in text.splitlines():
        # id parent major:minor root mountpoint options [optional...] - fstype source superopts
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3 or rfields[0] != "cgroup":
            continue
        mountpoint = _unescape(fields[4])
        if not mountpoint.startswith(prefix):
            continue
        ctrls = tuple(
            o
            for o in rfields[2].split(",")
            if o not in ("rw", "ro")
            and (o.startswith("name=") or "=" not in o)
            and o not in _SUPER_FLAGS
        )
        mp = pure_text(mountpoint)
        if ctrls and mp not in seen:
            seen.add(mp)
            out.append((mp, ctrls))
    return out


_SUPER_FLAGS: Final = frozenset(
    {"noprefix", "clone_children", "xattr", "cpuset_v2_mode", "favordynmods", "nsdelegate"}
)


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    if "\\" not in s:
        return s
    return (
        s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
    )


# ---------------------------------------------------------------- paths


def resolve_path(cgroups_path: str | None, container_id: str) -> str:
    """The cgroup path (as seen from a hierarchy root) for `cgroupsPath`.

    None -> /portique/<id>; relative -> /portique/<path>; absolute -> as given
    (containerd passes /default/<id>); "slice:prefix:name" is the systemd
    driver's syntax, which portique does not implement (InvalidArgument).
    """
    if cgroups_path is None or cgroups_path == "":
        if not container_id or "/" in container_id or container_id in (".", ".."):
            raise InvalidArgument(f"container id {container_id!r}: not usable as a cgroup name")
        return f"/{PARENT}/{container_id}"
    if len(cgroups_path) > 4096 or "\x00" in cgroups_path:
        raise InvalidArgument("linux.cgroupsPath: not a valid path")
    if ":" in cgroups_path and not cgroups_path.startswith("/"):
        raise InvalidArgument(
            f"linux.cgroupsPath {cgroups_path!r}: the systemd cgroup driver "
            "(slice:prefix:name) is not supported; give a path such as /portique/<id>"
        )
    parts = [p for p in pure_parts(cgroups_path) if p != "/"]
    if any(p in (".", "..") for p in parts) or not parts:
        raise InvalidArgument(f"linux.cgroupsPath {cgroups_path!r}: must not contain . or ..")
    if len(parts) > MAX_DEPTH:
        raise InvalidArgument(f"linux.cgroupsPath {cgroups_path!r}: deeper than {MAX_DEPTH}")
    if not cgroups_path.startswith("/"):
        parts.insert(0, PARENT)
    return "/" + "/".join(parts)


# ---------------------------------------------------------------- file I/O


def write_file(directory: StrPath, name: str, value: str) -> None:
    """Write one value to a cgroup interface file, one write(2), no truncation."""
    write_lines(directory, name, [value])


def write_lines(directory: StrPath, name: str, values: list[str]) -> None:
    """Write each value to a cgroup interface file with a write(2) of its own,
    through one open: for files that take one entry per write (v1's
    devices.allow and devices.deny), as write_file for each would."""
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(f"cannot write {name} in {directory}: {e.strerror}") from None
    try:
        for value in values:
            try:
                os.write(fd, value.encode())
            except OSError as e:
                raise CgroupError(
                    f"cannot write {name} in {directory}: {e.strerror} ({value!r})"
                ) from e
    finally:
        os.close(fd)


def read_file(directory: StrPath, name: str) -> str:
    try:
        return _read_text(os.path.join(directory, name))
    except OSError as e:
        raise CgroupError(f"cannot read {name} in {directory}: {e.strerror}") from None


def _read_text(path: str) -> str:
    """The file as open(path, encoding="ascii", errors="replace").read() gives
    it (newlines translated), by a bare read (read_all)."""
    text = read_all(path).decode("ascii", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def read_int(directory: StrPath, name: str, default: int = 0) -> int:
    """An integer file ("max" reads as -1); a missing file gives `default`."""
    try:
        text = read_file(directory, name).strip()
    except CgroupError:
        return default
    if text == "max":
        return -1
    try:
        return int(text)
    except ValueError:
        return default


def read_keyed(directory: StrPath, name: str) -> dict[str, int]:
    """A flat keyed file ("key value" per line); missing file -> {}."""
    out: dict[str, int] = {}
    try:
        text = read_file(directory, name)
    except CgroupError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value.strip())
        except ValueError:
            continue
    return out


def read_pids(directory: StrPath, recursive: bool = True) -> list[int]:
    """Every pid in cgroup.procs of `directory` and (recursively) its children."""
    out: list[int] = []
    stack = [os.fspath(directory)]
    while stack:
        d = stack.pop()
        try:
            text = _read_text(os.path.join(d, "cgroup.procs"))
        except FileNotFoundError:
            continue
        except OSError as e:
            raise CgroupError(f"cannot read cgroup.procs in {d}: {e.strerror}") from None
        out.extend(int(x) for x in text.split())
        if recursive:
            # The sub-cgroups: directories, not symlinks to one (the entry's
            # type from getdents, where isdir and islink cost a stat each).
            try:
                with os.scandir(d) as entries:
                    stack.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
            except FileNotFoundError:
                continue
    return out


def mkdir_path(base: StrPath, rel: str) -> list[str]:
    """mkdir each component of `rel` under `base`; return the dirs, top first."""
    parts = [p for p in pure_parts(rel) if p != "/"]
    dirs = []
    d = os.fspath(base)
    for part in parts:
        d = os.path.join(d, part)
        dirs.append(d)
    # The parents (/portique) are there but for a container's first start:
    # the leaf first, and the walk below only when a parent is missing or
    # the leaf cannot be made (its error is the walk's to say).
    if dirs:
        try:
            os.mkdir(dirs[-1], 0o755)
            return dirs
        except FileExistsError:
            return dirs
        except OSError:
            pass
    for attempt in range(3):
        out = []
        d = os.fspath(base)
        try:
            for part in parts:
                d = os.path.join(d, part)
                try:
                    os.mkdir(d, 0o755)
                except FileExistsError:
                    pass
                out.append(d)
            return out
        except FileNotFoundError:
            # A concurrent delete removed an empty shared parent (/portique)
            # between our two mkdirs: start again from the top.
            if attempt == 2:
                raise CgroupError(
                    f"cannot create cgroup {d}: {os.path.dirname(d)} does not exist"
                ) from None
        except OSError as e:
            raise CgroupError(f"cannot create cgroup {d}: {e.strerror}") from None
    raise AssertionError("unreachable")


def remove_tree(directory: StrPath, *, attempts: int = 50) -> None:
    """rmdir `directory` and any sub-cgroups, deepest first; missing is fine.

    Only rmdir: a cgroup still holding processes stays (EBUSY), which is the
    caller's error to fix by killing them first. EBUSY right after the last
    process died is normal (the kernel frees the css asynchronously), so it is
    retried briefly.
    """
    top = os.fspath(directory)
    # The usual case, a leaf cgroup its processes have left, is one rmdir;
    # anything else (sub-cgroups, EBUSY, not a directory) takes the walk.
    try:
        os.rmdir(top)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    if not os.path.isdir(top):
        return
    order: list[str] = []
    for dirpath, dirnames, _ in os.walk(top):
        order.extend(os.path.join(dirpath, d) for d in dirnames)
    order.sort(key=lambda p: p.count("/"), reverse=True)  # deepest first
    order.append(top)
    for d in order:
        delay = 0.002
        for attempt in range(attempts):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY or attempt == attempts - 1:
                    raise CgroupError(f"cannot remove cgroup {d}: {e.strerror}") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll `predicate()` until true or `timeout` seconds pass (bounded)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def check_memory_update(resources: LinuxResources, directory: StrPath, usage_file: str) -> None:
    """memory.checkBeforeUpdate: refuse a limit below what is in use now
    (the kernel would reclaim, or OOM-kill, to get there)."""
    m = resources.memory
    if m is None or not m.check_before_update or m.limit is None or m.limit <= 0:
        return
    usage = read_int(directory, usage_file)
    if usage > m.limit:
        raise CgroupError(
            f"cannot set memory limit {m.limit} in {directory}: below current usage {usage}"
        )


# ---------------------------------------------------------------- conversions


def rdma_lines(limits: tuple[RdmaLimit, ...]) -> list[str]:
    """rdma.max lines (the same syntax on v1 and v2)."""
    out = []
    for r in limits:
        parts = [r.device]
        if r.hca_handles is not None:
            parts.append(f"hca_handle={r.hca_handles}")
        if r.hca_objects is not None:
            parts.append(f"hca_object={r.hca_objects}")
        if len(parts) > 1:
            out.append(" ".join(parts))
    return out


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares [2, 262144] -> v2 cpu.weight [1, 10000] (as runc and crun)."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """v1 blkio.weight [10, 1000] -> v2 io.weight [1, 10000] (as runc)."""
    return 1 + ((weight - 10) * 9999) // 990
