"""Resolve `-u user[:group]` against the container's own /etc/passwd and /etc/group.

The files belong to the image, so they are hostile: they are opened through
`portique.rootpath` (symlinks resolved inside the root, never out of it), read
with a size bound, and parsed leniently (malformed lines are skipped).
"""

from __future__ import annotations

import os
import stat

from portique.errors import InvalidArgument
from portique.oci.value import value

MAX_DB_FILE = 4 << 20


@value
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@value
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


@value
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def read_root_file(rootfs: str, path: str) -> str:
    """The text of `path` inside `rootfs`, or "" when it is missing or unreadable."""
    from portique.rootpath import open_in_root

    try:
        rfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        # O_NONBLOCK: an image (or a running container) whose /etc/passwd is a
        # FIFO would otherwise hang `run`, `start` and `exec -u` in this open.
        fd = open_in_root(rfd, path, flags=os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return ""
    finally:
        os.close(rfd)
    try:
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return ""
            return f.read(MAX_DB_FILE).decode("utf-8", "replace")
    except OSError:
        return ""


def parse_passwd(text: str) -> list[PasswdEntry]:
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 7 or not parts[2].isdigit() or not parts[3].isdigit():
            continue
        out.append(PasswdEntry(parts[0], int(parts[2]), int(parts[3]), parts[5] or "/"))
    return out


def parse_group(text: str) -> list[GroupEntry]:
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 4 or not parts[2].isdigit():
            continue
        members = tuple(m for m in parts[3].split(",") if m)
        out.append(GroupEntry(parts[0], int(parts[2]), members))
    return out


def _id(raw: str) -> int | None:
    if raw.isdigit():
        n = int(raw)
        if n < 2**32 - 1:
            return n
    return None


def resolve_user(spec: str, passwd: list[PasswdEntry], groups: list[GroupEntry]) -> ResolvedUser:
    """Docker's rules: a numeric uid need not exist; a name must; the group
    defaults to the user's primary group (0 for an unknown numeric uid); the
    supplementary groups are the primary one and those listing the user as a
    member."""
    user, _, group = spec.partition(":")
    entry: PasswdEntry | None = None
    uid = _id(user)
    if uid is None:
        entry = next((p for p in passwd if p.name == user), None)
        if entry is None:
            raise InvalidArgument(f"unable to find user {user}: no matching entries in passwd file")
        uid = entry.uid
    else:
        entry = next((p for p in passwd if p.uid == uid), None)
    gid = entry.gid if entry else 0
    if group:
        g = _id(group)
        if g is None:
            ge = next((x for x in groups if x.name == group), None)
            if ge is None:
                raise InvalidArgument(
                    f"unable to find group {group}: no matching entries in group file"
                )
            g = ge.gid
        gid = g
    # Docker lists the primary group among the supplementary ones too
    # (dockerd's spec: `"additionalGids": [0]` for root), then those that list
    # the user as a member.
    extra: list[int] = [gid]
    if entry is not None and not group:
        extra += [g.gid for g in groups if entry.name in g.members]
    return ResolvedUser(uid, gid, tuple(dict.fromkeys(extra)), entry.home if entry else "/")


def lookup(rootfs: str, spec: str, group_add: tuple[str, ...] = ()) -> ResolvedUser:
    """The user of `spec` in `rootfs`, with the --group-add groups (names from the
    image's /etc/group, or numbers) among its supplementary groups."""
    passwd = parse_passwd(read_root_file(rootfs, "/etc/passwd"))
    groups = parse_group(read_root_file(rootfs, "/etc/group"))
    if not spec:
        spec = "0"
    user = resolve_user(spec, passwd, groups)
    extra = list(user.additional_gids)
    for name in group_add:
        gid = _id(name)
        if gid is None:
            entry = next((g for g in groups if g.name == name), None)
            if entry is None:
                raise InvalidArgument(
                    f"unable to find group {name}: no matching entries in group file"
                )
            gid = entry.gid
        extra.append(gid)
    return ResolvedUser(user.uid, user.gid, tuple(dict.fromkeys(extra)), user.home)
