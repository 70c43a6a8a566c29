"""The monitor's socket protocol: length-prefixed frames over a unix stream socket.

A frame is one type byte, a 4-byte big-endian length, then the payload. The
client's first frame is HELLO with a space-separated request:

    attach <stdin 0|1> <stdout 0|1> <stderr 0|1>   then STDIN/EOF/RESIZE from the
                                                   client, STDOUT/STDERR/EXIT back
    wait                                           EXIT when the container exits
    stop <signal> <timeout>                        stop request; EXIT when it exited
    kill <signal>                                  OK once delivered
    resize <rows> <cols>                           OK (tty containers)

Light on purpose: the monitor imports it.
"""

from __future__ import annotations

import os

HELLO = 0x10
STDIN = 0
STDOUT = 1
STDERR = 2
RESIZE = 3
EXIT = 4
EOF = 5
OK = 6
ERROR = 7

HEADER = 5
MAX_FRAME = 1 << 20
SOCKET_NAME = "m.sock"


def frame(kind: int, payload: bytes = b"") -> bytes:
    return bytes((kind,)) + len(payload).to_bytes(4, "big") + payload


def split_frames(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Complete frames at the front of `buf`, and the incomplete rest."""
    out = []
    while len(buf) >= HEADER:
        n = int.from_bytes(buf[1:5], "big")
        if n > MAX_FRAME:
            raise ValueError("frame too large")
        if len(buf) < HEADER + n:
            break
        out.append((buf[0], buf[HEADER : HEADER + n]))
        buf = buf[HEADER + n :]
    return out, buf


def socket_path(run_dir: str) -> str:
    return os.path.join(run_dir, SOCKET_NAME)
