"""A cold `run`'s monitor, forked before its container is created.

`run` must create the container's row before its monitor can start it, and
the monitor then loads the modules that create and start a container
(bundle, stdio, the runtime's create and start): serial work, on a machine
with more than one core. Forked first, the monitor loads them while this
process creates the row, then reads the container's id from a pipe and goes
on exactly as a monitor forked by lifecycle.start (the same child: setsid,
a second fork, its own Engine); end-of-file instead of an id (the create
failed, or the command died) makes it exit having done nothing.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from portique.engine import lifecycle

if TYPE_CHECKING:
    from collections.abc import Callable

    from portique.engine.engine import Engine

# What the monitor imports to create and start a container (the engine's side,
# then the runtime's), in the order it does. A module that is gone (renamed) is
# simply not preloaded: it loads at its use, as without this.
PRELOAD = (
    "portique.engine.bundle",
    "portique.engine.stdio",
    "portique.engine.foreign_runtime",
    "portique.engine.network",
    "portique.engine.earlynet",
    "portique.engine.config",
    "portique.engine.userdb",
    "portique.engine.run_opts",
    "portique.engine.volumes",
    "portique.engine.netns",
    "portique.engine.health",
    "portique.image.images",
    "portique.image.fuseoverlay",
    "portique.rootpath",
    "portique.runtime.container",
    "portique.runtime.create",
    "portique.runtime.start",
    "portique.runtime.mountplan",
    "portique.runtime.devices",
    "portique.runtime.hooks",
    "portique.runtime.rootfs",
    "portique.runtime.init",
    "portique.runtime.process",
    "portique.runtime.seccomp_cache",
    "portique.oci.runtime",
    "portique.linux.seccomp",
)


class Forked:
    """A monitor forked before its container's row exists (fork_early), waiting
    for the id: `go(cid)` starts it, `cancel()` (no container after all) ends it.
    `confirm`: a warm server's answer to the request for it, read before either."""

    def __init__(self, go_w: int, status_r: int, confirm: Callable[[], None] | None = None) -> None:
        self._go_w = go_w
        self._status_r = status_r
        self._confirm = confirm

    def go(self, cid: str) -> int:
        """Start the container `cid`: its init's pid, as lifecycle.launch."""
        confirm, self._confirm = self._confirm, None
        if confirm is not None:
            try:
                confirm()  # no monitor: OSError, as lifecycle.launch's spawner
            except BaseException:
                self.cancel()
                raise
        try:
            os.write(self._go_w, cid.encode())
        except OSError:
            pass  # the monitor is gone: its status line is missing, which says so
        finally:
            os.close(self._go_w)
            self._go_w = -1
        return lifecycle.read_status(self._status_r)

    def cancel(self) -> None:
        """End the waiting monitor (it reads end-of-file and exits): idempotent."""
        if self._go_w >= 0:
            os.close(self._go_w)
            self._go_w = -1
            os.close(self._status_r)
        confirm, self._confirm = self._confirm, None
        if confirm is not None:
            with contextlib.suppress(OSError):
                confirm()  # the answer is read, whatever it is


def fork_early(eng: Engine, *, hold: bool) -> Forked | None:
    """Fork the monitor of a container about to be created, so that loading the
    start's modules (a cold `run`), or forking it and opening the database (a
    warm worker's: EARLY_SPAWNER), overlaps the creation here; None where only
    a warm server starts monitors, and only for a known id (MONITOR_SPAWNER
    alone: `portique serve`). The caller must `go` or `cancel`.

    The child is the same as start's (setsid, a second fork, its own Engine),
    forked earlier: it holds no more of this process than one forked later would
    (no database handle is open yet, and _launch_in_monitor closes every fd it
    does not keep before the monitor's exec)."""
    early = lifecycle.EARLY_SPAWNER
    if early is None and lifecycle.MONITOR_SPAWNER is not None:
        return None
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    r, w = os.pipe2(os.O_CLOEXEC)
    if early is not None:
        try:
            confirm = early(eng.root, eng.runroot, w, go_r, hold)
        except BaseException:
            for fd in (go_w, r):
                os.close(fd)
            raise
        finally:
            os.close(w)
            os.close(go_r)
        return Forked(go_w, r, confirm)

    def wait_for_id() -> str:
        os.close(go_w)
        _preload_start()
        with os.fdopen(go_r, "rb") as f:
            return f.read(128).decode("ascii", "replace")

    try:
        lifecycle.fork_monitor(eng, w, hold, wait_for_id, close=r)
    except BaseException:
        for fd in (go_r, go_w, r):
            os.close(fd)
        raise
    finally:
        os.close(w)
    os.close(go_r)
    return Forked(go_w, r)


def _preload_start() -> None:
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
