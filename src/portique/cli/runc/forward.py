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

import os

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable
    from types import FrameType
    from typing import Any
else:
    import _signal as signal  # the numbers and calls, without signal's enum wrappers

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


class forward_signals:  # lower case: it reads as a function, `with forward_signals(send):`
    """While inside, deliver FORWARDED signals through `send(sig)` instead.

    `send` raises while the target does not exist yet; the signal is retried
    every RETRY_INTERVAL. Only in this process: a child forked meanwhile
    (the runtime's helpers, before their exec) ignores the inherited handler.
    A class, not contextlib's decorator: contextlib costs a cold call ~1 ms
    of imports (runtime/undo.py).
    """

    def __init__(self, send: Callable[[int], None]) -> None:
        self.send = send
        self.me = os.getpid()
        self.pending: list[int] = []
        self.retries = 0
        self.saved: dict[int, Any] = {}

    def flush(self) -> None:
        while self.pending:
            try:
                self.send(self.pending[0])
            except Exception:
                if self.retries < MAX_RETRIES:
                    self.retries += 1
                    signal.setitimer(signal.ITIMER_REAL, RETRY_INTERVAL)
                else:
                    self.pending.clear()
                return
            self.pending.pop(0)

    def on_signal(self, sig: int, frame: FrameType | None) -> None:
        if os.getpid() != self.me:
            return
        self.pending.append(sig)
        self.flush()

    def on_timer(self, sig: int, frame: FrameType | None) -> None:
        if os.getpid() == self.me:
            self.flush()

    def __enter__(self) -> None:
        try:
            self.saved[signal.SIGALRM] = signal.signal(signal.SIGALRM, self.on_timer)
            for sig in FORWARDED:
                self.saved[sig] = signal.signal(sig, self.on_signal)
        except BaseException:
            self.restore()
            raise

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, old in self.saved.items():
            signal.signal(sig, old)
