"""Our stdio <-> a container process's pipes, for `exec` without -t.

A container process never gets an fd of ours (issue: our terminal, handed
to it read-write, stayed with whatever it left running and read what was
typed on the host afterwards). Instead, as Docker does, it gets:

- stdin: the read end of a pipe we feed from our stdin with -i, else /dev/null;
- stdout and stderr: the write ends of pipes we copy to our stdout and
  stderr. When those are the same file (one terminal, or `2>&1`) both get the same pipe,
  so their interleaving stays exactly as the process wrote it.

A thread copies while the runtime waits for the process in the main thread
(the runtime has forked its last process by the time `start` runs, see
Runtime.exec's on_pid). Once the process has exited, `close` copies what it
left in the pipes and closes our ends: whatever it left running inside gets
EOF on stdin and EPIPE on output, and cannot reach our terminal any more.

The thread blocks every signal, so Ctrl-C interrupts the main thread's wait
as it did before there was a thread.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

IN_HIGH_WATER = 1 << 20  # stop reading our stdin while this much waits for the process
DRAIN_LIMIT = 1 << 20  # at most a full pipe (pipe-max-size) is left when the process ends
CHUNK = 65536


class Relay:
    """`ours`: the fds we relay for (stdin, stdout, stderr), ours by default."""

    def __init__(self, *, stdin: bool, ours: tuple[int, int, int] = (0, 1, 2)) -> None:
        self._ours = ours
        self._mine: list[int] = []  # our ends (and the stop pipe), closed by close()
        self._theirs: list[int] = []  # the container's ends, closed once it has them
        self._thread: threading.Thread | None = None
        try:
            self._setup(stdin)
        except BaseException:
            self.close()
            raise

    def _setup(self, stdin: bool) -> None:
        if stdin:
            r, w = os.pipe2(os.O_CLOEXEC)
            self._theirs.append(r)
            self._mine.append(w)
            os.set_blocking(w, False)
            self._in_w = w
        else:
            self._theirs.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
            self._in_w = -1
        self._outs: dict[int, int] = {}  # our read end -> our fd it goes to
        r, w = os.pipe2(os.O_CLOEXEC)
        self._mine.append(r)
        self._theirs.append(w)
        self._outs[r] = self._ours[1]
        if _same_file(self._ours[1], self._ours[2]):
            self._theirs.append(w)
        else:
            r, w = os.pipe2(os.O_CLOEXEC)
            self._mine.append(r)
            self._theirs.append(w)
            self._outs[r] = self._ours[2]
        for r in self._outs:
            os.set_blocking(r, False)
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        self._mine += [self._stop_r, self._stop_w]

    def container_stdio(self) -> tuple[int, int, int]:
        return self._theirs[0], self._theirs[1], self._theirs[2]

    def start(self, _pid: int) -> None:
        """The process runs (the runtime's on_pid): drop our copies of its
        ends, then copy in a thread until `close`."""
        import threading

        for fd in dict.fromkeys(self._theirs):
            os.close(fd)
        self._theirs = []
        self._thread = threading.Thread(target=self._copy, name="exec-relay", daemon=True)
        self._thread.start()

    def close(self, *, interrupted: bool = False) -> None:
        """The process has ended: copy what it left, close our ends. When
        `interrupted` (Ctrl-C, an error), wait for the copy only briefly: our
        stdout may be what is stuck."""
        if self._thread is not None:
            with contextlib.suppress(OSError):
                os.write(self._stop_w, b"x")
            self._thread.join(1.0 if interrupted else None)
            if self._thread.is_alive():
                return  # a daemon thread, blocked on our stdout: leave its fds to it
            self._thread = None
        for fd in dict.fromkeys(self._theirs + self._mine):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._theirs = self._mine = []

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        self.close(interrupted=kind is not None)

    # -- the thread ------------------------------------------------------------

    def _copy(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            self._loop()
        except Exception:
            # Never leave the process blocked on a pipe nobody reads: without
            # our ends it gets EOF and EPIPE.
            for fd in [*self._outs, self._in_w]:
                if fd in self._mine:
                    self._close_mine(fd)

    def _loop(self) -> None:
        in_fd = self._ours[0] if self._in_w >= 0 and _usable(self._ours[0]) else -1
        to_proc = self._in_w
        pending = bytearray()
        outs = dict(self._outs)
        while True:
            rlist = [self._stop_r, *outs]
            if in_fd >= 0 and len(pending) < IN_HIGH_WATER:
                rlist.append(in_fd)
            wlist = [to_proc] if pending and to_proc >= 0 else []
            ready, writable, _ = select.select(rlist, wlist, [])
            if self._stop_r in ready:
                break
            if in_fd >= 0 and in_fd in ready:
                data = _read(in_fd)
                if data is None:
                    pass
                elif data:
                    pending += data
                else:
                    in_fd = -1  # our EOF becomes the process's once `pending` is out
            if to_proc >= 0 and to_proc in writable:
                try:
                    del pending[: os.write(to_proc, pending)]
                except BlockingIOError:
                    pass
                except OSError:  # the process closed its stdin
                    pending.clear()
                    in_fd = -1
            if to_proc >= 0 and in_fd < 0 and not pending:
                self._close_mine(to_proc)
                to_proc = -1
            for fd in [fd for fd in outs if fd in ready]:
                if not self._forward(fd, outs[fd], CHUNK):
                    self._close_mine(fd)
                    del outs[fd]
        for fd, target in outs.items():
            self._forward(fd, target, DRAIN_LIMIT)

    def _forward(self, fd: int, target: int, limit: int) -> bool:
        """Copy up to `limit` bytes that are there; False at EOF or when
        `target` is gone (the process then gets EPIPE, as it would have)."""
        moved = 0
        while moved < limit:
            data = _read(fd)
            if data is None:
                return True
            if not data:
                return False
            if not _write_all(target, data):
                return False
            moved += len(data)
        return True

    def _close_mine(self, fd: int) -> None:
        os.close(fd)
        self._mine.remove(fd)


def _usable(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _same_file(a: int, b: int) -> bool:
    try:
        return os.path.samestat(os.fstat(a), os.fstat(b))
    except OSError:
        return False


def _read(fd: int) -> bytes | None:
    """Some bytes, b"" at EOF (or when the fd is unusable), None if nothing is there yet."""
    try:
        return os.read(fd, CHUNK)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _write_all(fd: int, data: bytes) -> bool:
    """False when `fd` is gone (EPIPE, EBADF)."""
    from portique.termio import write_all

    try:
        write_all(fd, data)
    except OSError:
        return False
    return True
