"""Kernel keyrings (keyctl(2)): the session keyring a container process joins.

A process inherits its parent's session keyring across fork and execve. The
runtime's caller (a login shell, a service) usually has one holding its
user's keys, so every container process first joins a fresh, anonymous
session keyring of its own (runc does the same unless --no-new-keyring).
glibc has no keyctl wrapper (libkeyutils has), so this is the raw call.
"""

from __future__ import annotations

import ctypes
import os

from portique.linux._libc import call, libc

SYS_KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "ppc64le": 271, "s390x": 280}[
    os.uname().machine
]

KEYCTL_GET_KEYRING_ID = 0
KEYCTL_JOIN_SESSION_KEYRING = 1
KEY_SPEC_SESSION_KEYRING = -3

libc.syscall.restype = ctypes.c_long


def join_session_keyring(name: str | None = None) -> int:
    """KEYCTL_JOIN_SESSION_KEYRING: with no name, a new anonymous keyring
    becomes this process's session keyring; returns its serial."""
    raw = None if name is None else name.encode()
    return call(
        "keyctl(KEYCTL_JOIN_SESSION_KEYRING)",
        lambda: libc.syscall(
            ctypes.c_long(SYS_KEYCTL),
            ctypes.c_int(KEYCTL_JOIN_SESSION_KEYRING),
            ctypes.c_char_p(raw),
        ),
    )


def session_keyring() -> int:
    """The serial of this process's session keyring (created if it had none)."""
    return call(
        "keyctl(KEYCTL_GET_KEYRING_ID)",
        lambda: libc.syscall(
            ctypes.c_long(SYS_KEYCTL),
            ctypes.c_int(KEYCTL_GET_KEYRING_ID),
            ctypes.c_int(KEY_SPEC_SESSION_KEYRING),
            ctypes.c_int(1),
        ),
    )
