"""Cancel long work when its client hangs up, even while the work is silent.

A build's RUN step may print nothing for minutes; a write is how a stream
notices a gone client, so a silent step would keep running for no one. With
`cancel_on_hangup(sock)` the kernel signals the worker (SIGIO, O_ASYNC on the
connection) when the client's end closes, and the handler raises ClientGone
in the worker's one thread: the work unwinds as after any failure (a build
undoes its step mounts and runtime containers; what an interrupted clean-up
left, the next operation's recovery finishes, as after a kill). Raised once:
the clean-up itself is not interrupted again. No thread is involved, so the
runtime may still fork. SIGTERM (the server stopping its workers) cancels the
same way, so a stopping server leaves no build step running.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from portique.api.http import ClientGone

__all__ = ["cancel_on_hangup", "client_gone"]


def client_gone(sock: socket.socket) -> bool:
    """Has the client closed its end (a read would return EOF, or fail)?"""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError, ValueError):  # ValueError: a TLS socket
        return False
    except OSError:
        return True


@contextmanager
def cancel_on_hangup(sock: socket.socket) -> Iterator[None]:
    fired = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise ClientGone("the server is stopping")

    def on_io(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if not fired and client_gone(sock):
            fired = True
            raise ClientGone("the client went away")

    # TLS: its records make peeking meaningless (writes still notice).
    plain = type(sock) is socket.socket
    fd = sock.fileno()
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    previous_term = signal.signal(signal.SIGTERM, on_term)
    previous_io = signal.signal(signal.SIGIO, on_io) if plain else None
    try:
        if plain:
            fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())
            fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_ASYNC)
            if client_gone(sock):
                fired = True
                raise ClientGone("the client went away")
        yield
    finally:
        fired = True
        if plain:
            fcntl.fcntl(fd, fcntl.F_SETFL, flags)
            signal.signal(signal.SIGIO, previous_io)
        signal.signal(signal.SIGTERM, previous_term)
