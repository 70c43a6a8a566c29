"""One worker process per connection: fork, run, exit; the parent reaps.

Kept apart and small so the warm fork-server (portique.warm) and this can
become one: everything that knows about fork() in the API is here.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import signal
from collections.abc import Callable

__all__ = ["reap", "spawn"]


def spawn(work: Callable[[], int], close_in_child: Callable[[], None]) -> int:
    """Fork a worker running `work()`; its pid. The child never returns: it
    exits with work's status (70 if it raised). `close_in_child` drops the
    parent's listening sockets and signal plumbing in the child first."""
    gc.freeze()  # what the parent made stays shared (copy-on-write) in the child
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        # `kill -USR1 WORKER`: its Python stack on the server's stderr.
        faulthandler.register(signal.SIGUSR1, all_threads=False)
        close_in_child()
        gc.unfreeze()
        code = work()
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def reap(children: set[int]) -> list[int]:
    """Collect every worker that has exited; their pids."""
    done: list[int] = []
    for _ in range(len(children) + 1):
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        children.discard(pid)
        done.append(pid)
    return done
