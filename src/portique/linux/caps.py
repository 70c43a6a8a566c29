"""Capabilities: the name table, capget/capset (v3, 64-bit sets) and the bounding set."""

from __future__ import annotations

import ctypes

from portique.linux import prctl
from portique.linux._libc import call, libc
from portique.linux.proc import read_all

CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBERS: dict[str, int] = {name: i for i, name in enumerate(CAPABILITIES)}

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


libc.capget.argtypes = [ctypes.POINTER(_Header), ctypes.POINTER(_Data)]
libc.capget.restype = ctypes.c_int
libc.capset.argtypes = [ctypes.POINTER(_Header), ctypes.POINTER(_Data)]
libc.capset.restype = ctypes.c_int


def last_cap() -> int:
    """The highest capability number the running kernel knows."""
    try:
        text = read_all("/proc/sys/kernel/cap_last_cap")
    except OSError:
        return len(CAPABILITIES) - 1
    return int(text)


def to_mask(names: tuple[str, ...] | list[str]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAP_NUMBERS[name]
    return mask


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of `pid` (0 = the caller) as 64-bit masks."""
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_Data * 2)()
    call("capget", lambda: libc.capget(ctypes.byref(hdr), data))
    return (
        data[0].effective | data[1].effective << 32,
        data[0].permitted | data[1].permitted << 32,
        data[0].inheritable | data[1].inheritable << 32,
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    call("capset", lambda: libc.capset(ctypes.byref(hdr), data))


def drop_bounding(keep: int) -> None:
    """Drop from the bounding set every capability not in the `keep` mask."""
    for cap in range(last_cap() + 1):
        if not keep & (1 << cap) and prctl.capbset_read(cap):
            prctl.capbset_drop(cap)


def set_ambient(mask: int) -> list[int]:
    """Raise each capability of `mask` in the ambient set; returns those the
    kernel refused (a cap must be permitted and inheritable first). runc
    only warns about these, and configs from `runc spec` rely on it."""
    prctl.ambient_clear_all()
    refused = []
    for cap in range(last_cap() + 1):
        if mask & (1 << cap):
            try:
                prctl.ambient_raise(cap)
            except PermissionError:
                refused.append(cap)
    return refused
