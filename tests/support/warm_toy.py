"""A toy handler for the warm server's unit tests (tests/unit/warm): commands that
print, fail, crash, wait for signals and look at the worker's process state."""

from __future__ import annotations

import os
import signal
import sys


def handler(argv: list[str]) -> int:
    cmd, *rest = argv or ["echo"]
    if cmd == "echo":
        print(" ".join(rest))
        return 0
    if cmd == "exit":
        return int(rest[0])
    if cmd == "sysexit":
        raise SystemExit(rest[0] if rest else None)
    if cmd == "raise":
        raise RuntimeError("boom")
    if cmd == "abort":
        sys.stdout.flush()
        os.abort()
    if cmd == "state":
        print(os.getcwd(), oct(os.umask(0)), os.environ.get("TOY", "-"), sys.argv[1:])
        return 0
    if cmd == "fds":  # each open fd, and "e" when it is close-on-exec
        fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
        out = []
        for fd in fds:
            try:
                out.append(f"{fd}{'' if os.get_inheritable(fd) else 'e'}")
            except OSError:
                continue  # listdir's own fd, closed by now
        print(" ".join(out))
        return 0
    if cmd == "cat":
        sys.stdout.write(sys.stdin.read())
        return 0
    if cmd == "wait-signal":
        got: list[int] = []
        signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
        print("ready", flush=True)
        while not got:
            signal.pause()
        print("got", got[0], flush=True)
        return 9
    if cmd == "interrupt":
        print("ready", flush=True)
        while True:
            signal.pause()  # SIGINT: KeyboardInterrupt, uncaught
    print(f"unknown {cmd}", file=sys.stderr)
    return 2
