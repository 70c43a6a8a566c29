"""Raw seccomp: install a classic-BPF program as a filter, and make one system
call by number to see how the kernel (and any filter) answers.

The runtime compiles OCI profiles through libseccomp (runtime/seccomp.py);
this module is for programs that already exist as bytes, such as those copied
out of a running process with ptrace (linux/ptrace.py).
"""

from __future__ import annotations

import ctypes

from portique.linux import prctl
from portique.linux._libc import libc

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
_INSN = 8  # sizeof(struct sock_filter)


class _Fprog(ctypes.Structure):
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


libc.syscall.restype = ctypes.c_long


def load_filter(program: bytes) -> None:
    """Install `program` on the calling thread. Needs no_new_privs or CAP_SYS_ADMIN."""
    if not program or len(program) % _INSN:
        raise ValueError(f"seccomp program of {len(program)} bytes is not whole instructions")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _Fprog(len(program) // _INSN, ctypes.cast(buf, ctypes.c_void_p))
    prctl.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog))


def syscall_errno(number: int, *args: int) -> int:
    """Make system call `number` with integer arguments; 0 if it succeeded, else errno.

    Callers choose arguments the kernel rejects before acting (a NULL path, an
    unknown command), so that the call tells what stands in its way and
    changes nothing.
    """
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    return ctypes.get_errno() if ret == -1 else 0


__all__ = ["load_filter", "syscall_errno"]
