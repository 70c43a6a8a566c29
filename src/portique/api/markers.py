"""Markers workers leave for each other under <runroot>/api/<kind>/<cid>.<pid>:
an attach pending on a created container (its start then holds the output),
a wait that has not reached the monitor yet (the attach lets it first).
A marker whose worker died (killed, the server stopped) counts for nothing
and is removed by the next look."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine

__all__ = ["live", "mine"]


def _dir(eng: Engine, kind: str) -> Path:
    d = eng.runroot / "api" / kind
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def mine(eng: Engine, kind: str, cid: str) -> Path:
    """This worker's marker for `cid` (not yet made: touch it)."""
    return _dir(eng, kind) / f"{cid}.{os.getpid()}"


def live(eng: Engine, kind: str, cid: str) -> list[Path]:
    """The markers of `cid` whose workers still run."""
    out = []
    for path in _dir(eng, kind).glob(f"{cid}.*"):
        pid_text = path.suffix[1:]
        alive = pid_text.isdigit()
        if alive:
            try:
                os.kill(int(pid_text), 0)
            except ProcessLookupError:
                alive = False
            except PermissionError:
                pass
        if alive:
            out.append(path)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return out
