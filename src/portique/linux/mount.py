"""mount(2), umount2(2), the flag tables used to translate option strings, and the
new mount API the runtime needs for id-mapped mounts (open_tree, mount_setattr,
move_mount)."""

from __future__ import annotations

import ctypes
import errno
import os

from portique.linux._libc import call, fsencode, libc
from portique.linux.proc import read_all

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


# statvfs f_flag bits and the mount flags they stand for.
_ST_FLAGS = (
    (os.ST_RDONLY, MS_RDONLY),
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
)


def mount_flags(path: str | os.PathLike[str]) -> int:
    """MS_RDONLY, MS_NOSUID, MS_NODEV and MS_NOEXEC as set on the mount at `path`."""
    st = os.statvfs(path)
    return sum(flag for bit, flag in _ST_FLAGS if st.f_flag & bit)


def mount_id(fd: int) -> int:
    """The id of the mount the open file `fd` lies on (mnt_id in /proc/self/fdinfo)."""
    # A bare read (read_all): asked for each directory the runtime creates
    # devices or mounts in.
    info = read_all(f"/proc/self/fdinfo/{fd}")
    for line in info.splitlines():
        if line.startswith(b"mnt_id:"):
            return int(line.split()[1])
    raise OSError(errno.ENOTSUP, "no mnt_id in /proc/self/fdinfo", str(fd))


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


# ---------------------------------------------------------------- the new mount API
# open_tree(2), move_mount(2) and mount_setattr(2): the same numbers on every
# architecture (the unified table from Linux 5.x on); glibc 2.36 has no
# wrappers for them.

SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_MOUNT_SETATTR = 442

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x00000004
MOVE_MOUNT_T_EMPTY_PATH = 0x00000040
MOUNT_ATTR_IDMAP = 0x00100000


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


libc.syscall.restype = ctypes.c_long


def open_tree(path: str, *, recursive: bool = False) -> int:
    """A detached copy of the mount at `path` (OPEN_TREE_CLONE), as an O_CLOEXEC fd."""
    raw = os.fsencode(path)
    flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    return call(
        "open_tree",
        lambda: libc.syscall(
            ctypes.c_long(SYS_OPEN_TREE),
            ctypes.c_int(AT_FDCWD),
            ctypes.c_char_p(raw),
            ctypes.c_uint(flags),
        ),
        path,
    )


def set_idmap(tree_fd: int, userns_fd: int, *, recursive: bool = False) -> None:
    """mount_setattr(MOUNT_ATTR_IDMAP): map the ids of the detached mount
    `tree_fd` through the user namespace `userns_fd` (Linux 5.12)."""
    attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    call(
        "mount_setattr",
        lambda: libc.syscall(
            ctypes.c_long(SYS_MOUNT_SETATTR),
            ctypes.c_int(tree_fd),
            ctypes.c_char_p(b""),
            ctypes.c_uint(flags),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        ),
    )


def move_mount(tree_fd: int, target_fd: int) -> None:
    """Attach the detached mount `tree_fd` on the directory or file `target_fd`
    (an O_PATH fd is enough; a /proc/self/fd path would not do: without
    MOVE_MOUNT_T_SYMLINKS the magic link itself is the target, EINVAL)."""
    call(
        "move_mount",
        lambda: libc.syscall(
            ctypes.c_long(SYS_MOVE_MOUNT),
            ctypes.c_int(tree_fd),
            ctypes.c_char_p(b""),
            ctypes.c_int(target_fd),
            ctypes.c_char_p(b""),
            ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
        ),
    )


def has_mount_setattr() -> bool:
    """Whether the kernel knows mount_setattr(2) (a bad fd answers EBADF, not ENOSYS)."""
    try:
        call(
            "mount_setattr",
            lambda: libc.syscall(
                ctypes.c_long(SYS_MOUNT_SETATTR),
                ctypes.c_int(-1),
                ctypes.c_char_p(b""),
                ctypes.c_uint(AT_EMPTY_PATH),
                None,
                ctypes.c_size_t(0),
            ),
        )
    except OSError as e:
        return e.errno != errno.ENOSYS
    return True
