"""Signals sent to a foreground `run`/`exec` go to the container, as runc forwards them.

A supervisor stopping `portique-runtime run` (SIGTERM), a user's Ctrl-C on a
non-terminal run (SIGINT): the container's process gets the signal and
decides; the runtime keeps waiting and exits with the container's status.

A signal can arrive before the target is known (the process already runs
but its pid is not recorded yet). It is then kept and retried from a short
timer: the handler runs in the thread that records the pid, so it must not
wait for it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from types import FrameType

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

# SIGALRM is not forwarded: its timer retries the pending signals.
FORWARDED: tuple[int, ...] = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCONT,
)
RETRY_INTERVAL = 0.02
MAX_RETRIES = 500  # 10 s: then the target is not coming


@contextlib.contextmanager
def forward_signals(send: Callable[[int], None]) -> Iterator[None]:
    """While inside, deliver FORWARDED signals through `send(sig)` instead.

    `send` raises while the target does not exist yet; the signal is retried
    every RETRY_INTERVAL. Only in this process: a child forked meanwhile
    (the runtime's helpers, before their exec) ignores the inherited handler.
    """
    me = os.getpid()
    pending: list[int] = []
    retries = [0]

    def flush() -> None:
        while pending:
            try:
                send(pending[0])
            except Exception:
                if retries[0] < MAX_RETRIES:
                    retries[0] += 1
                    signal.setitimer(signal.ITIMER_REAL, RETRY_INTERVAL)
                else:
                    pending.clear()
                return
            pending.pop(0)

    def on_signal(sig: int, frame: FrameType | None) -> None:
        if os.getpid() != me:
            return
        pending.append(sig)
        flush()

    def on_timer(sig: int, frame: FrameType | None) -> None:
        if os.getpid() == me:
            flush()

    saved: dict[int, Any] = {}
    try:
        saved[signal.SIGALRM] = signal.signal(signal.SIGALRM, on_timer)
        for sig in FORWARDED:
            saved[sig] = signal.signal(sig, on_signal)
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, old in saved.items():
            signal.signal(sig, old)
