"""The terminal side of a foreground `run`/`exec` with process.terminal.

runc hands the pty master to whoever listens on `--console-socket`. When a
foreground caller gives none, we listen ourselves (a unix socket in a private
temporary directory), take the master, put our own terminal in raw mode and
copy bytes both ways until the container's side closes.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import sys
import tempfile
from pathlib import Path

from portique.errors import PortiqueError
from portique.termio import set_window_size, window_size, write_all

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from collections.abc import Iterator

_CHUNK = 65536


def receive_master(listener: socket.socket, timeout: float = 30.0) -> int:
    """Accept one connection on `listener` and return the fd sent with SCM_RIGHTS."""
    listener.settimeout(timeout)
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        raise PortiqueError("no terminal received on the console socket") from None
    with conn:
        conn.settimeout(timeout)
        _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)
    if not fds:
        raise PortiqueError("the console socket carried no file descriptor")
    for extra in fds[1:]:
        os.close(extra)
    os.set_inheritable(fds[0], False)
    return fds[0]


@contextlib.contextmanager
def console_listener() -> Iterator[tuple[Path, socket.socket]]:
    """A listening unix socket in a fresh 0700 directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="portique-console-") as tmp:
        path = Path(tmp) / "console.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        with sock:
            sock.bind(str(path))
            sock.listen(1)
            yield path, sock


def copy_window_size(src: int, dst: int) -> None:
    """Give the pty the caller's window size (when stdin is a terminal)."""
    size = window_size(src)
    if size is not None:
        set_window_size(dst, *size)


def relay(master: int, stdin: int | None = None, stdout: int | None = None) -> None:
    """Copy stdin -> master and master -> stdout until the pty's far side closes.

    The slave closes when every process holding it has exited; reads on the
    master then fail with EIO (Linux) or return b"".
    """
    stdin = sys.stdin.fileno() if stdin is None else stdin
    stdout = sys.stdout.fileno() if stdout is None else stdout
    poller = select.poll()
    poller.register(master, select.POLLIN)
    stdin_open = True
    try:
        poller.register(stdin, select.POLLIN)
    except (OSError, ValueError):
        stdin_open = False
    while True:
        for fd, events in poller.poll():
            if fd == master:
                try:
                    data = os.read(master, _CHUNK)
                except OSError:
                    data = b""
                if not data:
                    return
                write_all(stdout, data)
            elif fd == stdin and stdin_open:
                data = os.read(stdin, _CHUNK) if events & (select.POLLIN | select.POLLHUP) else b""
                if not data:
                    # Caller's input ended: stop reading it, keep copying output.
                    poller.unregister(stdin)
                    stdin_open = False
                    continue
                write_all(master, data)


def spawn_relay(listener: socket.socket, timeout: float = 30.0) -> int:
    """Fork a helper that takes the master from `listener` and relays our stdio.

    A separate process rather than a thread: the runtime library forks the
    container and must do so while single-threaded. Returns the helper's pid;
    it exits 0 once the container's side of the pty has closed.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the helper
        code = 1
        try:
            import signal

            from portique.cli.runc.forward import FORWARDED

            # The parent's forwarding handlers are not ours: die as usual.
            for sig in FORWARDED:
                signal.signal(sig, signal.SIG_DFL)
            master = receive_master(listener, timeout)
            copy_window_size(0, master)
            # The terminal sends SIGWINCH to its foreground group, us included.
            signal.signal(signal.SIGWINCH, lambda _s, _f: copy_window_size(0, master))
            relay(master)
            code = 0
        except BaseException:  # the helper must never unwind into main
            code = 1
        finally:
            os._exit(code)
    return pid


def reap(pid: int, *, kill: bool = False) -> None:
    """Wait for a relay helper (ours, by pid), killing it first if asked."""
    import signal

    if kill:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
