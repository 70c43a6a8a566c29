"""A warm worker: the fork of the server that becomes the client's command.

In order: forget the server (its signal handlers, its fds: the listening
socket, the lock, other clients' connections; then every fd but its channel
to the server and the installation's watch, so nothing of the engine's
reaches a container). Forked ahead of any command, as the server's spare
(comm `pq-spare`), wait for the connection the server hands over that
channel. Read the request (protocol.py), refuse it when it is not for this
server (another installation, a changed one: installation.py, a client in
other namespaces), then take the client's place: its stdin/stdout/stderr
(the terminal among them) as fds 0-2, its cwd, umask, environment and argv.
Only then does it tell the client it runs (b"P" and its own pidfd, through
which the client relays signals), and call the face's handler; once it
returned and the output is flushed, b"E<code>" lets the client leave
without waiting for the server to reap us. The exit code is the handler's;
an uncaught exception prints its traceback and exits 1, a KeyboardInterrupt
dies of SIGINT, as a Python process would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import traceback

from portique.warm import protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import NoReturn

    from portique.warm.server import Server

REQUEST_TIMEOUT = 30.0
SPARE_COMM = b"pq-spare"  # /proc/PID/comm while no command is ours: how `ps` and the tests tell
NAMESPACES = ("mnt", "pid", "net", "ipc", "uts", "user", "cgroup")


class Refused(Exception):
    """The command is not for this server: the client runs it in-process."""


def main(server: Server, control: socket.socket) -> NoReturn:
    code = 1
    try:
        code = _serve_one(server, control)
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:  # a bug of ours before the command started: to warm.log
        with contextlib.suppress(BaseException):
            os.write(_server_log, traceback.format_exc().encode())
        code = 125
    _flush()
    os._exit(code)


# The server's stderr (warm.log) until the command has started: what goes wrong
# before then is the server's to report; the client runs the command itself.
_server_log = 2


def _serve_one(server: Server, control: socket.socket) -> int:
    forget_server(server, {control.fileno(), server.installation.fd})
    own = _own_namespaces()  # the server's: read before the command arrives
    _rehearse()
    conn = _take_connection(server, control)
    if conn is None:
        return 0  # the server is gone
    try:
        req, fds = _read_request(conn)
        try:
            _check(server, req, conn, own)
        except Refused:
            for fd in fds:
                os.close(fd)
            raise
        finally:
            server.installation.close()
    except (Refused, ValueError, OSError) as exc:
        with contextlib.suppress(OSError):
            conn.sendall(protocol.REFUSED + str(exc).encode()[:500] + b"\n")
        return 0
    global _server_log
    _server_log = os.dup(2)
    _become_client(req, fds)
    from portique.engine import lifecycle

    lifecycle.MONITOR_SPAWNER = _spawner(control)
    lifecycle.EARLY_SPAWNER = _early_spawner(control)
    pidfd = os.pidfd_open(os.getpid())
    try:
        conn.sendmsg(
            [protocol.ACCEPTED], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _fd_bytes(pidfd))]
        )
    finally:
        os.close(pidfd)
    os.close(_server_log)
    _server_log = -1
    code = _run_handler(server, req.argv)
    _flush()
    with contextlib.suppress(OSError):
        conn.sendall(protocol.FINISHED + b"%d\n" % code)  # the client need not wait for our reaping
    return code


def forget_server(server: Server, keep: set[int]) -> None:
    """In a fork of the server: its signal handlers and every fd above 2 but `keep`."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sock in [server.listen, *server.workers.values(), *server.controls.values()]:
        if sock.fileno() not in keep:
            sock.close()
        else:
            sock.detach()  # the caller holds its own object on it
    server.workers.clear()
    server.controls.clear()
    for fd in (server.lock_fd, server.wake_r, server.wake_w):
        if fd >= 0 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
    # A fork of this fork (the zygote's monitors) must not close these numbers
    # again: by then they may be other files.
    server.lock_fd = server.wake_r = server.wake_w = -1
    if server.zygote is not None and server.zygote.fileno() not in keep:
        server.zygote.close()
    if server.installation.fd not in keep:
        server.installation.fd = -1  # closed below
    from portique.linux.fs import close_other_fds

    close_other_fds(keep)  # whatever else the server held


def _take_connection(server: Server, control: socket.socket) -> socket.socket | None:
    """The client's connection, once the server hands it to us (protocol.HANDOVER);
    None when the server closed our channel (it exited)."""
    from portique.linux.prctl import set_name

    # ^C of a foreground server is the server's to handle; a command's
    # SIGINT comes from its client, once the command is ours.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_name(SPARE_COMM)
    data, anc, _flags, _addr = control.recvmsg(
        len(protocol.HANDOVER), socket.CMSG_SPACE(4), socket.MSG_CMSG_CLOEXEC
    )
    fds = [fd for level, kind, raw in anc for fd in _fds_of(level, kind, raw)]
    if data != protocol.HANDOVER or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        return None
    set_name(server.comm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return socket.socket(fileno=fds[0])


def _spawner(control: socket.socket) -> Callable[[Path, Path, str, int, bool], bool | None]:
    """lifecycle.MONITOR_SPAWNER for this worker: the server forks the monitor."""

    def spawn(root: Path, runroot: Path, cid: str, status_w: int, hold: bool) -> None:
        from portique.warm.zygote import request

        control.sendmsg(
            [request(root, runroot, cid, hold)],
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _fd_bytes(status_w))],
        )
        reply = control.recv(4096)
        if reply != b"ok":
            raise OSError(f"the warm server could not start a monitor: {reply.decode()}")

    return spawn


def _early_spawner(
    control: socket.socket,
) -> Callable[[Path, Path, int, int, bool], Callable[[], None]]:
    """lifecycle.EARLY_SPAWNER for this worker: the server forks a monitor that
    reads its container's id from `go_r`; the answer is read when `confirm`ed."""

    def spawn(
        root: Path, runroot: Path, status_w: int, go_r: int, hold: bool
    ) -> Callable[[], None]:
        from portique.warm.zygote import request

        control.sendmsg(
            [request(root, runroot, "", hold, early=True)],
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _fd_bytes(status_w) + _fd_bytes(go_r))],
        )

        def confirm() -> None:
            reply = control.recv(4096)
            if reply != b"ok":
                raise OSError(f"the warm server could not start a monitor: {reply.decode()}")

        return confirm

    return spawn


def become_monitor(
    forget: Callable[[set[int]], None] | None,
    fields: list[bytes],
    status_w: int,
    go_r: int = -1,
) -> NoReturn:
    """In a fork of a warm server (setsid'd, orphaned): the monitor that
    `fields` asks for (zygote.request). `forget(keep)` drops that server's fds
    and handlers but `keep` (None: a zygote's fork, which has none). An early
    request's monitor (no id in `fields`) reads the id from `go_r`.

    The asker's environment is taken by the process that creates the
    container, and by the monitor only once the container exited: until then
    the monitor does not even read it (engine/forkedmonitor.py: each object
    a fork touches costs it a page)."""
    if forget is not None:
        forget({status_w, go_r})
    from portique.engine import forkedmonitor

    def prepare() -> None:
        # fields[5:]: the environment's items, or all of them in one NUL-joined
        # blob (the zygote does not split it).
        items = (item for blob in fields[5:] for item in blob.split(b"\0"))
        env = (item.partition(b"=") for item in items if b"=" in item)
        _take_environment({k: v for k, _, v in env})
        from portique import faults

        faults.configure()

    root, runroot, cid = (f.decode("utf-8", "surrogateescape") for f in fields[1:4])
    forkedmonitor.run(root, runroot, cid, status_w, fields[4] == b"1", prepare, go_r)


def _read_request(conn: socket.socket) -> tuple[protocol.Request, list[int]]:
    conn.settimeout(REQUEST_TIMEOUT)
    data, anc, flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
    fds = [fd for level, kind, raw in anc for fd in _fds_of(level, kind, raw)]
    try:
        if flags & socket.MSG_CTRUNC or len(fds) != 4:
            raise ValueError("a request carries stdin, stdout, stderr and the cwd")
        if len(data) < 4:
            raise ValueError("short request")
        size = int.from_bytes(data[:4], "big")
        if size > protocol.MAX_REQUEST:
            raise ValueError("request too large")
        body = data[4:]
        if len(body) < size:
            rest = bytearray(body)
            while len(rest) < size:
                chunk = conn.recv(min(1 << 16, size - len(rest)))
                if not chunk:
                    raise ValueError("short request")
                rest += chunk
            body = bytes(rest)
        conn.settimeout(None)
        return protocol.Request(body), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _rehearse() -> None:
    """Parse a request and open text layers on fds 0-2 once, for nothing, while no
    command is ours: a fork's first write to each page it shares with the server
    copies the page, and the command's own parsing and streams then find the
    pages of these freed objects copied already (~0.2 ms less per command,
    measured). Best effort: the server's fds 0-2 may be closed."""
    with contextlib.suppress(Exception):
        protocol.Request(protocol.encode_request(sys.argv, 0o022)[4:])
        _reopen_stdio()


def _own_namespaces() -> dict[str, int]:
    """The inode of each of NAMESPACES this process is in (no cgroup one on old kernels)."""
    own = {}
    for ns in NAMESPACES:
        with contextlib.suppress(FileNotFoundError):
            own[ns] = os.stat(f"/proc/self/ns/{ns}").st_ino
    return own


def _check(server: Server, req: protocol.Request, conn: socket.socket, own: dict[str, int]) -> None:
    if (req.exe, req.pkg) != server.identity:
        raise Refused("another installation")
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    peer = int.from_bytes(raw[:4], sys.byteorder)
    for ns, inode in own.items():
        try:
            if os.stat(f"/proc/{peer}/ns/{ns}").st_ino != inode:
                raise Refused(f"the client is in another {ns} namespace")
        except FileNotFoundError:
            raise Refused("the client went away") from None
    if server.installation.changed():
        with contextlib.suppress(OSError):
            os.kill(os.getppid(), signal.SIGTERM)  # the installation changed: the server stops
        raise Refused("the installation changed since the server started")


def _become_client(req: protocol.Request, fds: list[int]) -> None:
    stdin, stdout, stderr, cwd = fds
    # What the server's streams still buffer is the server's log: written there
    # now, not by the old objects' finalizers once fds 1-2 are the client's.
    _flush()
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
    os.fchdir(cwd)
    for fd in fds:
        os.close(fd)
    os.umask(req.umask)
    _take_environment(req.env)
    sys.argv = req.argv[:]
    _reopen_stdio()
    if "portique.faults" in sys.modules:
        from portique import faults

        faults.configure()


def _take_environment(env: dict[bytes, bytes]) -> None:
    """Make os.environ `env`, touching only what differs (a fork's every write
    to the shared heap costs it a page: the client's environment is usually
    the server's)."""
    for key in [k for k in os.environb if k not in env]:
        del os.environb[key]
    for key, value in env.items():
        if os.environb.get(key) != value:
            os.environb[key] = value


def _reopen_stdio() -> None:
    """New text layers on fds 0-2: line buffering follows the client's files."""
    enc_out, enc_in = sys.stdout.encoding, sys.stdin.encoding
    sys.stdin = open(0, encoding=enc_in, errors=sys.stdin.errors, closefd=False)  # noqa: SIM115
    out_buffering = 1 if os.isatty(1) else -1  # 1: line-buffered
    sys.stdout = open(  # noqa: SIM115
        1, "w", out_buffering, enc_out, sys.stdout.errors, closefd=False
    )
    sys.stderr = open(2, "w", 1, enc_out, "backslashreplace", closefd=False)  # noqa: SIM115


def _run_handler(server: Server, argv: list[str]) -> int:
    try:
        return int(server.handler(argv[1:]) or 0) & 0xFF  # as a process's exit status
    except SystemExit as exc:
        return _exit_code(exc)
    except KeyboardInterrupt:
        _flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException:
        traceback.print_exc()
        return 1


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    with contextlib.suppress(Exception):
        print(exc.code, file=sys.stderr)
    return 1


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _fd_bytes(fd: int) -> bytes:
    return fd.to_bytes(4, sys.byteorder, signed=True)


def _fds_of(level: int, kind: int, raw: bytes) -> list[int]:
    if level != socket.SOL_SOCKET or kind != socket.SCM_RIGHTS:
        return []
    n = len(raw) - len(raw) % 4
    return [int.from_bytes(raw[i : i + 4], sys.byteorder, signed=True) for i in range(0, n, 4)]
