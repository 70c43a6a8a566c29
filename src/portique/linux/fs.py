"""File-system calls os lacks: openat2(2) with RESOLVE_IN_ROOT, pivot_root(2),
close_range(2), sethostname(2), setdomainname(2); closing the fds a fork
inherited (close_other_fds)."""

from __future__ import annotations

import ctypes
import os

from portique.linux._libc import call, libc

TYPE_CHECKING = False  # typing and collections cost the runtime's hot path
if TYPE_CHECKING:
    from collections.abc import Collection

# openat2 and close_range have the same number on every architecture (>= 5.x
# numbering); pivot_root does not, and glibc has no wrapper for it.
SYS_CLOSE_RANGE = 436
SYS_OPENAT2 = 437
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}[
    os.uname().machine
]

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

CLOSE_RANGE_CLOEXEC = 1 << 2
O_PATH = 0o10000000


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


libc.syscall.restype = ctypes.c_long
libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
libc.sethostname.restype = ctypes.c_int
libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
libc.setdomainname.restype = ctypes.c_int


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """openat2(2); the returned fd is always O_CLOEXEC."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    raw = os.fsencode(path)
    return call(
        "openat2",
        lambda: libc.syscall(
            ctypes.c_long(SYS_OPENAT2),
            ctypes.c_int(dirfd),
            ctypes.c_char_p(raw),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        ),
        path,
    )


def pivot_root(new_root: str, put_old: str) -> None:
    new, old = os.fsencode(new_root), os.fsencode(put_old)
    call(
        "pivot_root",
        lambda: libc.syscall(
            ctypes.c_long(SYS_PIVOT_ROOT), ctypes.c_char_p(new), ctypes.c_char_p(old)
        ),
        new_root,
    )


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    call(
        "close_range",
        lambda: libc.syscall(
            ctypes.c_long(SYS_CLOSE_RANGE),
            ctypes.c_uint(first),
            ctypes.c_uint(last),
            ctypes.c_uint(flags),
        ),
    )


def close_other_fds(keep: Collection[int] = ()) -> None:
    """Close every fd of this process above 2 but `keep` (a fork dropping what its
    parent held: a server's sockets and locks, a caller's pipes)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own fd, closed by now


def sethostname(name: str) -> None:
    raw = name.encode()
    call("sethostname", lambda: libc.sethostname(raw, len(raw)))


def setdomainname(name: str) -> None:
    raw = name.encode()
    call("setdomainname", lambda: libc.setdomainname(raw, len(raw)))
