"""Named crash points for the fault-injection tests (tests/integration/faults).

    from portique import faults
    faults.point("pull.blob-committed")

A point kills its own process with SIGKILL, as `kill -9` or a power cut of
one process would, when the environment names it:

    PORTIQUE_FAULT=pull.blob-committed        the first time it is passed
    PORTIQUE_FAULT=pull.blob-committed@3      the third time
    PORTIQUE_FAULT_HIT=/some/file             (optional) created just before
                                              the kill, holding the pid, so a
                                              test knows the point was reached

The variable is read once, at import (and by a warm worker, `configure`); an unset variable leaves each call one
comparison of a global with "". The harness finds the points by reading the
source for `faults.point("...")` calls, so a name must be a string literal,
`<operation>.<what just happened>`, and unique.
"""

from __future__ import annotations

import itertools
import os

_name = ""
_wanted = 1
_passes = itertools.count(1)  # next() is atomic: pull passes points from threads


def configure() -> None:
    """Read $PORTIQUE_FAULT (at import; again in a warm worker, whose environment
    is its client's: portique/warm)."""
    global _name, _wanted, _passes
    _name, _, nth = os.environ.get("PORTIQUE_FAULT", "").partition("@")
    _wanted = int(nth) if nth.isdigit() and int(nth) > 0 else 1
    _passes = itertools.count(1)


configure()


def point(name: str) -> None:
    """Die here (SIGKILL) if $PORTIQUE_FAULT names this point and pass."""
    if _name and name == _name:
        _pass()


def _pass() -> None:
    if next(_passes) != _wanted:
        return
    import signal

    marker = os.environ.get("PORTIQUE_FAULT_HIT", "")
    if marker:
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.close(fd)
        except OSError:
            pass
    os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["point"]
