"""For a process that forks many small long-lived children (the monitors'
zygote, warm/zygote.py): a fork(2) without the interpreter's at-fork
bookkeeping, and the heap's free memory handed back before the forks.

bare_fork:

`os.fork()` runs, in the child, the callbacks modules registered with
`os.register_at_fork`: threading's `_after_fork` (new locks, its thread
tables rebuilt) and random's reseeding among them. Each object they touch
is a page the child copies from its parent: about 0.45 MiB per child,
measured (bench/monitor_pss.py). Those callbacks repair state that other
threads or an import in progress could have left behind; a parent with a
single thread, outside any import, has none to repair, and then the bare
fork's child is sound: the same thread (pthread id) holds the GIL in it.
What stays the parent's in the child: `random`'s global generator state (so
the child must not draw from it for anything secret or that must differ
between children) and the cached native thread id of `threading`'s main
thread.
"""

from __future__ import annotations

import ctypes
import os
import threading

# PyDLL: the GIL stays held across the call, so the child resumes holding it.
_fork = ctypes.PyDLL(None, use_errno=True).fork
_fork.argtypes = []
_fork.restype = ctypes.c_int
_malloc_trim = ctypes.CDLL(None).malloc_trim
_malloc_trim.argtypes = [ctypes.c_size_t]
_malloc_trim.restype = ctypes.c_int


def bare_fork() -> int:
    """fork(2) as `os.fork()` returns it, skipping the at-fork callbacks; when
    this process runs other threads, plain `os.fork()` (they are needed then)."""
    if threading.active_count() != 1:
        return os.fork()
    pid = int(_fork())
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"fork: {os.strerror(err)}")
    return pid


def trim_heap() -> None:
    """malloc_trim(0): the C heap's free pages back to the kernel (glibc
    releases those inside the heap too). Every child maps each page its
    parent holds at the fork, and is charged its share of them in PSS: the
    server's start-up leaves about 1 MiB free there, measured."""
    _malloc_trim(0)
