"""A process that holds the engine's database open while a warm server runs.

SQLite in WAL mode makes the last connection to close a database checkpoint
it (the WAL copied into the database file, two fsyncs) and delete the WAL
and its index, which the next command creates again. Every portique command
is a process of its own, so without another connection each one of them pays
that at its end (4-6 ms measured on a warm `run --rm`, more under I/O load).
With one idle connection held open elsewhere no command is the last: the WAL
is checkpointed by SQLite's auto-checkpoint every ~1000 pages instead.

Why a process of its own: SQLite's per-process state about open files (its
lock and shared-memory bookkeeping per inode) must not be carried across a
fork, and the server forks workers and the zygote that open the same
database. So the server forks the keeper before anything else, the keeper
alone opens the database (no transaction: an open read would hold the WAL
from being reset), and it leaves when the pipe from the server reaches end
of file: when the server exits, however it exits. It is double-forked (the
server has no child to track), owns nothing and serves nobody.
"""

from __future__ import annotations

import os
from pathlib import Path

COMM = "pq-dbkeeper"  # /proc/PID/comm


def start(database: Path) -> int:
    """Fork the keeper of `database` (if it exists); the write end of its pipe, for
    the server to hold (close-on-exec, never inherited by a fork that sweeps
    its fds), or -1."""
    if not database.is_file():
        return -1  # a new root: its first command creates it; the next server keeps it
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return -1
    if pid == 0:  # pragma: no cover - the intermediate, then the keeper
        code = 0
        try:
            os.close(w)
            os.setsid()
            if os.fork() == 0:
                _keep(database, r)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(r)
    os.waitpid(pid, 0)
    return w


def _keep(database: Path, r: int) -> None:  # pragma: no cover - the keeper
    code = 0
    try:
        from portique.linux.fs import close_other_fds

        close_other_fds({r})
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        with open("/proc/self/comm", "w") as f:
            f.write(COMM)
        import sqlite3

        # mode=rw: never create a database (nor a file of the wrong owner).
        conn = sqlite3.connect(f"file:{database}?mode=rw", uri=True, timeout=30.0)
        try:
            # A read maps the WAL index: from here on this connection counts.
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            while os.read(r, 1):
                pass  # nothing is ever written: end of file when the server exits
        finally:
            conn.close()
    except BaseException:
        code = 1
    os._exit(code)
