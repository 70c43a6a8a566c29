"""Subordinate ids (/etc/subuid, /etc/subgid) and the user behind a user namespace.

A rootless engine (engine/rootless.py) maps its user to root and the user's
subordinate range from 1 up. Without a range, only the user itself is mapped:
a file owned by any other id cannot be made, and the error names the line
root must add (`advice`).
"""

from __future__ import annotations

import os
import pwd


def subid_range(path: str, user: str, uid: int) -> tuple[int, int] | None:
    """The first range of /etc/subuid (or subgid) for `user` or `uid`: (start, count)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in (user, str(uid)):
            continue
        try:
            start, count = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if start > 0 and count > 0:
            return start, count
    return None


def _map(kind: str) -> list[tuple[int, int, int]]:
    try:
        with open(f"/proc/self/{kind}", encoding="ascii") as f:
            return [
                (int(a), int(b), int(c)) for a, b, c in (line.split() for line in f if line.strip())
            ]
    except (OSError, ValueError):
        return []


def outer_ids() -> tuple[int, int]:
    """The host's uid and gid of this process, inside a user namespace too."""
    ids = []
    for kind, own in (("uid_map", os.geteuid()), ("gid_map", os.getegid())):
        found = own
        for inside, outside, count in _map(kind):
            if inside <= own < inside + count:
                found = outside + own - inside
                break
        ids.append(found)
    return ids[0], ids[1]


def single_id() -> bool:
    """This process's user namespace maps one uid only (no subordinate range)."""
    uids = _map("uid_map")
    return len(uids) == 1 and uids[0][2] == 1


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def advice() -> str:
    """What root must do so that a single-id user gets other ids."""
    name = user_name(outer_ids()[0])
    return (
        f"user {name} has no subordinate ids: as root, add the line"
        f" '{name}:100000:65536' to /etc/subuid and /etc/subgid (a range no other user has),"
        " then run `portique system migrate`"
    )
