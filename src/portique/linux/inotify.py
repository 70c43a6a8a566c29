"""inotify(7): a descriptor that becomes readable when a watched file or directory
changes (`portique events` following its record without polling on a timer, the
warm server's stale-installation check)."""

from __future__ import annotations

import ctypes
import os

from portique.linux._libc import call, fsencode, libc

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

libc.inotify_init1.argtypes = [ctypes.c_int]
libc.inotify_init1.restype = ctypes.c_int
libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
libc.inotify_add_watch.restype = ctypes.c_int

__all__ = ["add_watch", "drain", "instance", "watch_directory"]


def instance() -> int:
    """A new non-blocking, close-on-exec inotify fd watching nothing yet."""
    return call("inotify_init1", lambda: libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC))


def add_watch(fd: int, path: str, mask: int) -> None:
    """Watch `path` (a symbolic link is followed) for the events in `mask`."""
    name = fsencode(path)
    call("inotify_add_watch", lambda: libc.inotify_add_watch(fd, name, mask), path)


def watch_directory(path: str) -> int:
    """A non-blocking, close-on-exec inotify fd watching `path` for files
    written, created and renamed; the caller closes it."""
    fd = instance()
    try:
        add_watch(fd, path, IN_MODIFY | IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO)
    except BaseException:
        os.close(fd)
        raise
    return fd


def drain(fd: int) -> None:
    """Discard the queued notifications (only "something changed" matters)."""
    for _ in range(1024):
        try:
            if not os.read(fd, 65536):
                return
        except BlockingIOError:
            return
