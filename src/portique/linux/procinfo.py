"""What /proc says about a process: status fields, namespaces, id maps,
mounts and cgroup membership.

Parsers take text (unit tests feed them samples); readers take the proc root
(`proc="/proc"`) so tests can point them at a fake tree. Nothing here
interprets the facts: that is the caller's business (engine/explain.py).

Ids and pids in /proc/<pid>/status are shown as the *reader* sees them: read
from the host, Uid is the host uid and NSpid starts with the host pid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from portique.linux.mount import unescape_mountinfo

# The eight namespace kinds, by their name under /proc/<pid>/ns/.
NAMESPACE_FILES: tuple[str, ...] = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of /proc/<pid>/mountinfo (proc(5))."""

    mount_id: int
    parent_id: int
    major: int
    minor: int
    root: str  # the path inside the source file system that is mounted
    target: str  # the mount point, relative to the process's root
    options: tuple[str, ...]  # per-mount options (rw/ro, nosuid, ...)
    propagation: tuple[str, ...]  # optional fields: shared:N, master:N, ...
    fstype: str
    source: str
    super_options: tuple[str, ...]  # per-superblock options (lowerdir=..., size=...)

    @property
    def read_only(self) -> bool:
        return "ro" in self.options


@dataclass(frozen=True, slots=True)
class IdRange:
    """One line of uid_map/gid_map: `count` ids from `inside` map to `outside`."""

    inside: int
    outside: int
    count: int


@dataclass(frozen=True, slots=True)
class CgroupEntry:
    """One line of /proc/<pid>/cgroup: hierarchy id, controllers, path."""

    hierarchy: int
    controllers: tuple[str, ...]  # () for the v2 (unified) line "0::/path"
    path: str


# ---------------------------------------------------------------- parsers


def _split_options(text: str) -> tuple[str, ...]:
    # Super options may hold escaped commas ("lowerdir=a\,b"): split on bare ones.
    out: list[str] = []
    cur = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] == ",":
            cur.append(",")
            i += 2
            continue
        if c == ",":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        out.append("".join(cur))
    return tuple(o for o in out if o)


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        pre, sep, post = line.partition(" - ")
        if not sep:
            continue
        fields = pre.split(" ")
        tail = post.split(" ")
        if len(fields) < 6 or len(tail) < 3:
            continue
        major, _, minor = fields[2].partition(":")
        mounts.append(
            Mount(
                mount_id=int(fields[0]),
                parent_id=int(fields[1]),
                major=int(major),
                minor=int(minor),
                root=unescape_mountinfo(fields[3].encode()),
                target=unescape_mountinfo(fields[4].encode()),
                options=tuple(fields[5].split(",")),
                propagation=tuple(f for f in fields[6:] if f),
                fstype=tail[0],
                source=unescape_mountinfo(tail[1].encode()),
                super_options=_split_options(unescape_mountinfo(" ".join(tail[2:]).encode())),
            )
        )
    return mounts


def parse_status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if sep:
            out[key] = rest.strip()
    return out


def parse_id_map(text: str) -> list[IdRange]:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append(IdRange(int(parts[0]), int(parts[1]), int(parts[2])))
    return out


def parse_cgroup(text: str) -> list[CgroupEntry]:
    out = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers = tuple(c for c in parts[1].split(",") if c)
        out.append(CgroupEntry(int(parts[0]), controllers, parts[2]))
    return out


def status_ids(status: dict[str, str], key: str) -> tuple[int, ...]:
    """Uid/Gid (real, effective, saved, filesystem), Groups, NSpid as ints."""
    return tuple(int(v) for v in status.get(key, "").split())


def status_mask(status: dict[str, str], key: str) -> int:
    """CapEff, CapBnd, ... as an int mask."""
    return int(status.get(key, "0"), 16)


def to_inside(outside: int, maps: list[IdRange]) -> int | None:
    """The id inside a user namespace of a host (`outside`) id, or None if unmapped."""
    for r in maps:
        if r.outside <= outside < r.outside + r.count:
            return r.inside + (outside - r.outside)
    return None


# ---------------------------------------------------------------- readers


def path(pid: int | str, name: str, proc: str = "/proc") -> str:
    return f"{proc}/{pid}/{name}"


def read(pid: int | str, name: str, proc: str = "/proc") -> str:
    """The text of /proc/<pid>/<name>; OSError (ENOENT, ESRCH, EACCES) passes up."""
    with open(path(pid, name, proc), encoding="utf-8", errors="replace") as f:
        return f.read()


def status(pid: int | str, proc: str = "/proc") -> dict[str, str]:
    return parse_status(read(pid, "status", proc))


def mountinfo(pid: int | str, proc: str = "/proc") -> list[Mount]:
    return parse_mountinfo(read(pid, "mountinfo", proc))


def cgroups(pid: int | str, proc: str = "/proc") -> list[CgroupEntry]:
    return parse_cgroup(read(pid, "cgroup", proc))


def id_map(pid: int | str, kind: str, proc: str = "/proc") -> list[IdRange]:
    """kind: "uid" or "gid"."""
    return parse_id_map(read(pid, f"{kind}_map", proc))


def namespace(pid: int | str, name: str, proc: str = "/proc") -> tuple[int, int]:
    """(device, inode) of /proc/<pid>/ns/<name>: equal pairs mean the same namespace."""
    st = os.stat(path(pid, f"ns/{name}", proc))
    return st.st_dev, st.st_ino


def pids(proc: str = "/proc") -> list[int]:
    """Every pid this /proc shows."""
    return sorted(int(n) for n in os.listdir(proc) if n.isdigit())


def cmdline(pid: int | str, proc: str = "/proc") -> list[str]:
    with open(path(pid, "cmdline", proc), "rb") as f:
        raw = f.read()
    return [os.fsdecode(a) for a in raw.split(b"\0")[:-1]] if raw else []


__all__ = [
    "NAMESPACE_FILES",
    "CgroupEntry",
    "IdRange",
    "Mount",
    "cgroups",
    "cmdline",
    "id_map",
    "mountinfo",
    "namespace",
    "parse_cgroup",
    "parse_id_map",
    "parse_mountinfo",
    "parse_status",
    "path",
    "pids",
    "read",
    "status",
    "status_ids",
    "status_mask",
    "to_inside",
]
