"""Reading `portique events` in tests: a streaming one, and the recorded ones
waited for (an exit's events are recorded by the container's monitor)."""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable

from support.engine_cli import PORTIQUE, Portique

DEADLINE = 60.0  # generous: the VM is slow


class Stream:
    """A running `portique events ...`: its lines as they come."""

    def __init__(self, pq: Portique, *args: str) -> None:
        self.proc = subprocess.Popen(
            [PORTIQUE, "events", *args],
            env=pq.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def until(self, pred: Callable[[str], bool], deadline: float = DEADLINE) -> list[str]:
        """Lines read until one satisfies `pred` (all lines so far)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
                continue
            self.seen.append(line)
            if pred(line):
                return list(self.seen)
        raise AssertionError(f"no such line within {deadline}s; seen: {self.seen}")

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=DEADLINE)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


def recorded(
    pq: Portique, since: str, *args: str, want: str = "", deadline: float = DEADLINE
) -> list[str]:
    """`events --since SINCE --until now ARGS`: the lines, waited for until one
    contains `want` (an exit's events are recorded by the monitor)."""
    end = time.monotonic() + deadline
    while True:
        until = f"{time.time():.9f}"
        lines = pq.ok("events", "--since", since, "--until", until, *args).splitlines()
        if not want or any(want in line for line in lines) or time.monotonic() > end:
            return lines
        time.sleep(0.1)


def now() -> str:
    return f"{time.time():.9f}"
