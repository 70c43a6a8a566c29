"""Terminal and fd helpers both faces share: raw mode, window sizes, writing all.

`portique` (attach, exec -t) and `portique-runtime` (its console relay) put
the user's terminal in raw mode the same way and restore it the same way;
every copy loop writes a buffer whole, waiting when a non-blocking fd is
full. Standard library only; termios and fcntl load when first used.
"""

from __future__ import annotations

import contextlib
import os
import select
from collections.abc import Iterator

__all__ = ["raw_terminal", "set_window_size", "window_size", "write_all"]


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write all of `data` to `fd`; a non-blocking fd that is full is waited on."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [], 1.0)


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """`fd` in raw mode if it is a terminal (no echo, no line editing, no
    signals from keys: Ctrl-C is a byte for the container); restored on the
    way out, once what was written has drained."""
    if fd < 0 or not os.isatty(fd):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def window_size(fd: int) -> tuple[int, int] | None:
    """(rows, columns) of the terminal `fd`, or None when it is not one."""
    from portique.linux.tty import get_winsize

    try:
        return get_winsize(fd)
    except OSError:
        return None


def set_window_size(fd: int, rows: int, cols: int) -> None:
    """Give the terminal (a pty master) `fd` this size; errors are ignored: the
    other side may be gone already."""
    from portique.linux.tty import set_winsize

    with contextlib.suppress(OSError):
        set_winsize(fd, rows, cols)
