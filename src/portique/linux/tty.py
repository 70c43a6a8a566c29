"""Terminal ioctls: window size and the controlling terminal.

The engine, both faces and the container init change a pty's window size;
the init makes the pty slave its controlling terminal. fcntl.ioctl is the
raw call, so it lives here with the other kernel calls.
"""

from __future__ import annotations

import fcntl
import struct
import termios

_WINSIZE = struct.Struct("HHHH")  # struct winsize: rows, cols, xpixel, ypixel


def set_winsize(fd: int, rows: int, cols: int) -> None:
    """TIOCSWINSZ: the terminal `fd` now has `rows` x `cols` (SIGWINCH to its group)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, _WINSIZE.pack(rows, cols, 0, 0))


def get_winsize(fd: int) -> tuple[int, int]:
    """TIOCGWINSZ: (rows, cols) of the terminal `fd`."""
    rows, cols, _, _ = _WINSIZE.unpack(fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(_WINSIZE.size)))
    return rows, cols


def set_controlling_tty(fd: int) -> None:
    """TIOCSCTTY: make `fd` the controlling terminal of this session (the
    caller is a session leader without one)."""
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
