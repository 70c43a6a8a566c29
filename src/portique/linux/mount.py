"""mount(2), umount2(2) and the flag tables used to translate option strings."""

from __future__ import annotations

import ctypes
import os

from portique.linux._libc import call, fsencode, libc

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
libc.mount.restype = ctypes.c_int
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.umount2.restype = ctypes.c_int


def mount(
    source: str | bytes | os.PathLike[str] | None,
    target: str | bytes | os.PathLike[str],
    fstype: str | None = None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    src = fsencode(source)
    tgt = fsencode(target)
    fs = fstype.encode() if fstype else None
    dat = data.encode() if data else None
    call("mount", lambda: libc.mount(src, tgt, fs, flags, dat), os.fsdecode(tgt or b""))


def umount(target: str | bytes | os.PathLike[str], flags: int = 0) -> None:
    tgt = fsencode(target)
    call("umount2", lambda: libc.umount2(tgt, flags), os.fsdecode(tgt or b""))


def is_mountpoint(path: str | os.PathLike[str]) -> bool:
    """True when `path` is listed as a mount point in /proc/self/mountinfo."""
    want = os.path.realpath(path)
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split(b" ", 5)
            if unescape_mountinfo(fields[4]) == want:
                return True
    return False


def unescape_mountinfo(field: bytes) -> str:
    """Decode the octal escapes (\\040 for space, ...) mountinfo uses in paths."""
    raw = os.fsdecode(field)
    if "\\" not in raw:
        return raw
    out = []
    i = 0
    while i < len(raw):
        if raw[i] == "\\" and i + 4 <= len(raw) and raw[i + 1 : i + 4].isdigit():
            out.append(chr(int(raw[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)
