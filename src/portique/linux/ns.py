"""Namespaces: unshare(2), setns(2) and the CLONE_* flag of each OCI namespace type.

Python 3.11 lacks os.unshare/os.setns (added in 3.12), so both go through libc.
"""

from __future__ import annotations

import ctypes

from portique.linux._libc import call, libc
from portique.linux.proc import read_all

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# OCI namespace type -> (clone flag, name of the file under /proc/<pid>/ns/).
NAMESPACES: dict[str, tuple[int, str]] = {
    "pid": (CLONE_NEWPID, "pid"),
    "network": (CLONE_NEWNET, "net"),
    "mount": (CLONE_NEWNS, "mnt"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "user": (CLONE_NEWUSER, "user"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
}

libc.unshare.argtypes = [ctypes.c_int]
libc.unshare.restype = ctypes.c_int
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
libc.setns.restype = ctypes.c_int


def unshare(flags: int) -> None:
    call("unshare", lambda: libc.unshare(flags))


def setns(fd: int, nstype: int = 0) -> None:
    call("setns", lambda: libc.setns(fd, nstype))


def in_user_namespace(uid_map: str = "/proc/self/uid_map") -> bool:
    """True inside a user namespace other than the initial one (whose map is
    the whole range onto itself)."""
    # A bare read (read_all): a text file's ascii codec would cost an import
    # (encodings.ascii) on every start.
    try:
        raw = read_all(uid_map)
    except OSError:
        return False
    lines = raw.decode("ascii").split("\n")
    return [line.split() for line in lines if line.strip()] != [["0", "0", "4294967295"]]
