"""Signals sent to a foreground `run` go to the container, as runc forwards them.

A supervisor stopping `portique-runtime run` (SIGTERM), a user's Ctrl-C on a
non-terminal run (SIGINT): the container's init gets the signal and decides;
the runtime keeps waiting and exits with the container's status.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

FORWARDED: tuple[int, ...] = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
    signal.SIGCONT,
)


@contextlib.contextmanager
def forward_signals(send: Callable[[int], None]) -> Iterator[None]:
    """While inside, deliver FORWARDED signals through `send(sig)` instead.

    Only in this process: a child forked meanwhile (the runtime's stage 1,
    before its exec) that inherits the handler ignores it.
    """
    me = os.getpid()

    def handler(sig: int, frame: FrameType | None) -> None:
        if os.getpid() != me:
            return
        # The container may not exist yet or be gone already: nothing to do.
        with contextlib.suppress(Exception):
            send(sig)

    saved: dict[int, Any] = {}
    try:
        for sig in FORWARDED:
            saved[sig] = signal.signal(sig, handler)
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)
