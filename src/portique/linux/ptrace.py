"""ptrace(2), just enough to copy a process's seccomp filters out of the kernel.

The kernel hands a process's classic-BPF seccomp programs to a tracer that
has CAP_SYS_ADMIN (PTRACE_SECCOMP_GET_FILTER, Linux 4.4, CONFIG_CHECKPOINT_RESTORE),
and only while the tracee is in a ptrace-stop. PTRACE_SEIZE + PTRACE_INTERRUPT
stop it without a signal the process could see; PTRACE_DETACH resumes it. If
the tracer dies first, the kernel detaches and the tracee resumes on its own,
so callers run this in a short-lived child they can kill.
"""

from __future__ import annotations

import ctypes
import errno
import os
import time

from portique.linux._libc import call, libc

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_SECCOMP_GET_FILTER = 0x420C
__WALL = 0x40000000

libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


def _ptrace(request: int, pid: int, addr: int | None = None, data: object = None) -> int:
    return call("ptrace", lambda: libc.ptrace(request, pid, addr, data))


def seize(pid: int) -> None:
    _ptrace(PTRACE_SEIZE, pid)


def interrupt(pid: int) -> None:
    _ptrace(PTRACE_INTERRUPT, pid)


def detach(pid: int) -> None:
    _ptrace(PTRACE_DETACH, pid)


def wait_stop(pid: int, timeout: float) -> None:
    """Wait until the seized `pid` reports a ptrace-stop; TimeoutError if it does not
    (a frozen task, or one in uninterruptible sleep, stops only later)."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        got, status = os.waitpid(pid, os.WNOHANG | __WALL)
        if got == pid:
            if os.WIFSTOPPED(status):
                return
            raise ProcessLookupError(errno.ESRCH, f"ptrace: process {pid} exited")
        if time.monotonic() > deadline:
            raise TimeoutError(errno.ETIMEDOUT, f"ptrace: process {pid} did not stop")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def seccomp_filter(pid: int, index: int) -> bytes | None:
    """The classic-BPF program of filter `index` (0 = the most recently installed)
    of the stopped tracee `pid`, or None past the last one."""
    try:
        count = _ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, None)
    except FileNotFoundError:  # ENOENT: no filter at this index
        return None
    buf = ctypes.create_string_buffer(count * 8)
    got = _ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, buf)
    return buf.raw[: got * 8]


def seccomp_filters(pid: int, *, timeout: float = 5.0) -> list[bytes]:
    """Every seccomp filter of `pid`, oldest first (the order to install them in).

    Stops the process for the time of the copy (microseconds), then resumes it.
    """
    seize(pid)
    try:
        interrupt(pid)
        wait_stop(pid, timeout)
        programs: list[bytes] = []
        while (prog := seccomp_filter(pid, len(programs))) is not None:
            programs.append(prog)
    finally:
        try:
            detach(pid)
        except ProcessLookupError:
            pass  # not stopped (timeout) or gone: our exit detaches
    programs.reverse()
    return programs


__all__ = ["detach", "interrupt", "seccomp_filter", "seccomp_filters", "seize", "wait_stop"]
