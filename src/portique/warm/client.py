"""The thin client: hand this command to the engine root's warm server, if one answers.

Imports only `os`, `sys`, `_socket`, `_signal` and protocol.py: it runs
before the CLI imports anything (`python -X importtime`: under 1 ms). `run`
returns None whenever the command has not started in a worker (no socket,
no server, a refusal: a stale or foreign server, a busy one), and the caller
then runs it in-process; once a worker accepted it, the client relays the
signals it gets to the worker and returns or dies as the worker did.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]
import _socket
import os
import sys

from portique.warm import protocol

# Relayed to the worker as they arrive. SIGTSTP/SIGTTIN/SIGTTOU stop the
# client as they would the in-process CLI; SIGKILL and SIGSTOP cannot be
# caught (a killed client's worker is killed by the server).
RELAYED = (
    _signal.SIGINT,
    _signal.SIGTERM,
    _signal.SIGHUP,
    _signal.SIGQUIT,
    _signal.SIGUSR1,
    _signal.SIGUSR2,
    _signal.SIGWINCH,
    _signal.SIGCONT,
    _signal.SIGALRM,
)


def _connect(path: str) -> _socket.socket | None:
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
    except OSError:  # ENOENT, ECONNREFUSED (a dead server's socket), EACCES, ...
        s.close()
        return None
    return s


def run(argv: list[str], runroot: str) -> int | None:
    """The command's exit code from a warm worker, or None: run it in-process."""
    if sys.flags.dev_mode or sys._xoptions:
        return None  # `-X importtime` and friends measure this process: in-process
    try:
        for fd in (0, 1, 2):
            os.fstat(fd)
    except OSError:
        return None  # a closed standard fd stays closed in-process only
    sock = _connect(os.path.join(runroot, protocol.SOCKET_NAME))
    if sock is None:
        return None
    try:
        return _converse(sock, argv)
    finally:
        sock.close()


def _converse(sock: _socket.socket, argv: list[str]) -> int | None:
    umask = os.umask(0o22)
    os.umask(umask)
    try:
        cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None  # a removed cwd: in-process, as it would have run
    try:
        data = protocol.encode_request(argv, umask)
        ancillary = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, _pack_fds([0, 1, 2, cwd]))]
        try:
            sent = sock.sendmsg([data], ancillary)
            if sent < len(data):
                sock.sendall(data[sent:])
        except OSError:
            return None
    finally:
        os.close(cwd)
    try:
        first, anc, _flags, _addr = sock.recvmsg(1, _socket.CMSG_SPACE(4))
    except OSError:
        return None
    pidfds = [fd for level, kind, raw in anc for fd in _unpack_fds(level, kind, raw)]
    if first != protocol.ACCEPTED or len(pidfds) != 1:
        for fd in pidfds:
            os.close(fd)
        return None  # refused (stale, foreign, busy) or gone before starting
    return _wait(sock, pidfds[0])


def _wait(sock: _socket.socket, pidfd: int) -> int:
    old = {}

    def relay(signum: int, _frame: object) -> None:
        try:
            _signal.pidfd_send_signal(pidfd, signum)
        except OSError:
            pass  # the worker is gone: its status is on its way

    try:
        for sig in RELAYED:
            old[sig] = _signal.signal(sig, relay)
        data = b""
        end = None
        while end is None:
            chunk = sock.recv(4096)  # EINTR: relay() runs, then recv resumes (PEP 475)
            if not chunk:
                break
            data += chunk
            end = protocol.parse_end(data)
    finally:
        for sig, handler in old.items():
            _signal.signal(sig, handler)
        os.close(pidfd)
    if end is None:
        sys.stderr.write("portique: the warm server went away before the command finished\n")
        return 125
    kind, value = end
    return value if kind == protocol.FINISHED else exit_code(value)


def exit_code(status: int) -> int:
    """The worker's exit code; a worker killed by a signal kills us with it."""
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else _signal.SIGKILL
    sys.stdout.flush()
    try:
        _signal.signal(sig, _signal.SIG_DFL)
    except OSError:
        pass  # SIGKILL, SIGSTOP: no handler to reset
    os.kill(os.getpid(), sig)
    return 128 + sig  # a signal we could not die of (ignored by our parent?)


def _pack_fds(fds: list[int]) -> bytes:
    return b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)


def _unpack_fds(level: int, kind: int, raw: bytes) -> list[int]:
    if level != _socket.SOL_SOCKET or kind != _socket.SCM_RIGHTS:
        return []
    n = len(raw) - len(raw) % 4
    return [int.from_bytes(raw[i : i + 4], sys.byteorder, signed=True) for i in range(0, n, 4)]
