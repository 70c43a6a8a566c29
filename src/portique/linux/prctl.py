"""prctl(2) options the runtime uses, each as a small typed function, and personality(2)."""

from __future__ import annotations

import ctypes

from portique.linux._libc import call, libc

PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4

libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
libc.prctl.restype = ctypes.c_int


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return call("prctl", lambda: libc.prctl(option, arg2, arg3, arg4, arg5))


def set_dumpable(on: bool) -> None:
    prctl(PR_SET_DUMPABLE, 1 if on else 0)


def is_dumpable() -> bool:
    return prctl(PR_GET_DUMPABLE) == 1


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_child_subreaper(on: bool = True) -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0)


def is_child_subreaper() -> bool:
    out = ctypes.c_int(0)
    # PR_GET_CHILD_SUBREAPER writes through a pointer in arg2.
    call("prctl", lambda: libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(out), 0, 0, 0))
    return out.value != 0


def set_name(name: bytes) -> None:
    """This thread's comm (/proc/self/comm; the kernel keeps 15 bytes)."""
    buf = ctypes.create_string_buffer(name[:15])
    prctl(PR_SET_NAME, ctypes.addressof(buf))


def set_pdeathsig(sig: int) -> None:
    prctl(PR_SET_PDEATHSIG, sig)


def set_keepcaps(on: bool) -> None:
    prctl(PR_SET_KEEPCAPS, 1 if on else 0)


def capbset_drop(cap: int) -> None:
    prctl(PR_CAPBSET_DROP, cap)


def capbset_read(cap: int) -> bool:
    return prctl(PR_CAPBSET_READ, cap) == 1


def ambient_raise(cap: int) -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)


def ambient_clear_all() -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


libc.personality.argtypes = [ctypes.c_ulong]
libc.personality.restype = ctypes.c_int


def set_personality(persona: int) -> None:
    """personality(2): the execution domain (PER_LINUX32 makes uname say i686).

    Not a prctl, but a process attribute of the same kind; it survives execve.
    """
    call("personality", lambda: libc.personality(persona))


def get_personality() -> int:
    return call("personality", lambda: libc.personality(0xFFFFFFFF))
