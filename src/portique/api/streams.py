"""Streams to a client: Docker's 8-byte multiplexed framing, the pumps of a
hijacked connection (attach to a monitor, exec's pipes or pty), and telling
whether the client is still there.

Without a TTY every chunk of output goes in a frame: one byte for the stream
(0 stdin, 1 stdout, 2 stderr), three zero bytes, a big-endian 32-bit length,
then the bytes. With a TTY the bytes go raw. A client's half-close (EOF on
its side of the socket) closes the process's stdin; the connection ends when
the process's output ends.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
from collections.abc import Callable

from portique.engine import stream as mon

__all__ = ["client_alive", "frame", "pump_fds", "pump_monitor"]

STDOUT, STDERR = 1, 2
OUT_HIGH_WATER = 1 << 20
LOOP_BOUND = 1 << 40


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(data)) + data


def client_alive(sock: socket.socket, *, half_close_ok: bool = False) -> bool:
    """False once the client closed (or reset) its end. `half_close_ok`: a
    hijacked client may shut down its sending side and still read (the
    docker CLI does when it has no stdin to send): that is not leaving."""
    p = select.poll()
    p.register(sock, select.POLLIN | select.POLLRDHUP)
    events = 0
    for _fd, ev in p.poll(0):
        events |= ev
    if events & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
        return False
    if events & select.POLLRDHUP and not half_close_ok:
        return False
    if events & select.POLLIN and not events & select.POLLRDHUP and not half_close_ok:
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False
    return True


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def pump_monitor(
    client: socket.socket,
    pending: bytes,
    monitor: socket.socket,
    *,
    tty: bool,
    stdin: bool,
    detach_keys: bytes = b"",
    on_output: Callable[[], None] | None = None,
) -> int | None:
    """Carry a hijacked attach: client bytes -> STDIN frames (EOF on half-close),
    STDOUT/STDERR frames -> the client (framed unless `tty`). The exit code
    when the container exited, None when the client left or detached."""
    from portique.engine.attach import scan_detach

    buf = b""
    out = bytearray()
    if pending and stdin:
        out += mon.frame(mon.STDIN, pending)
    client_open = True  # the client still sends (stdin, or its half-close to come)
    matched = 0
    monitor.setblocking(False)
    poller = select.poll()
    for _ in range(LOOP_BOUND):
        want = select.POLLIN | select.POLLRDHUP
        poller.register(client, want if client_open and len(out) < OUT_HIGH_WATER else 0)
        poller.register(monitor, select.POLLIN | (select.POLLOUT if out else 0))
        events = dict(poller.poll())
        cev, mev = events.get(client.fileno(), 0), events.get(monitor.fileno(), 0)
        if cev & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
            return None  # the client is gone (both ways)
        if mev & select.POLLOUT and out:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                del out[: monitor.send(out)]
        if client_open and cev & (select.POLLIN | select.POLLRDHUP):
            try:
                data = client.recv(65536)
            except OSError:
                return None
            if not data:
                client_open = False  # half-close: the container's stdin ends
                if stdin:
                    out += mon.frame(mon.EOF)
            elif stdin:
                if tty and detach_keys:
                    data, matched, detached = scan_detach(data, detach_keys, matched)
                    if detached:
                        return None
                if data:
                    out += mon.frame(mon.STDIN, data)
        if mev & (select.POLLIN | select.POLLHUP | select.POLLERR):
            try:
                data = monitor.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                return None
            frames, buf = mon.split_frames(buf + data)
            for kind, payload in frames:
                if kind in (mon.STDOUT, mon.STDERR):
                    if on_output is not None:
                        on_output()
                    chunk = payload if tty else frame(kind, payload)
                    if not _send(client, chunk):
                        return None
                elif kind == mon.EXIT:
                    try:
                        return int(payload)
                    except ValueError:
                        return None
    return None


def pump_fds(
    client: socket.socket,
    pending: bytes,
    stdin_w: int,
    outputs: dict[int, int],
    *,
    tty: bool,
    extra: socket.socket | None = None,
    on_extra: Callable[[socket.socket], None] | None = None,
    done_pid: int = 0,
) -> bool:
    """Carry a hijacked exec: client -> `stdin_w` (closed on half-close, -1 for
    none), each fd of `outputs` (fd -> stream number) -> the client, framed
    unless `tty`, until every output fd reached EOF. `extra`: a listening
    socket whose connections `on_extra` serves (resize). False if the client
    left. `stdin_w` is the pump's: closed when it returns. `done_pid`: once
    that child of ours exits, what the outputs hold is sent and the pump ends
    (a process the exec left running may keep them open)."""
    done = os.pidfd_open(done_pid) if done_pid else -1
    try:
        return _pump_fds(client, pending, stdin_w, outputs, tty, extra, on_extra, done)
    finally:
        _close(done)


def _pump_fds(
    client: socket.socket,
    pending: bytes,
    stdin_w: int,
    outputs: dict[int, int],
    tty: bool,
    extra: socket.socket | None,
    on_extra: Callable[[socket.socket], None] | None,
    done: int,
) -> bool:
    if stdin_w >= 0 and pending:
        _write_fd(stdin_w, pending)
    live = dict(outputs)
    client_open = True
    for _ in range(LOOP_BOUND):
        if not live:
            break
        rlist: list[int] = list(live)
        if client_open:
            rlist.append(client.fileno())
        if extra is not None:
            rlist.append(extra.fileno())
        if done >= 0:
            rlist.append(done)
        try:
            ready, _, _ = select.select(rlist, [], [])
        except InterruptedError:
            continue
        if done >= 0 and done in ready:
            _drain(client, live, tty)
            break
        if extra is not None and extra.fileno() in ready and on_extra is not None:
            with contextlib.suppress(OSError):
                conn, _ = extra.accept()
                with conn:
                    on_extra(conn)
        if client_open and client.fileno() in ready:
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data:
                client_open = False
                if stdin_w >= 0:
                    os.close(stdin_w)
                    stdin_w = -1
            elif stdin_w >= 0 and not _write_fd(stdin_w, data):
                os.close(stdin_w)
                stdin_w = -1
        for fd in [f for f in live if f in ready]:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                del live[fd]
                continue
            if not _send(client, data if tty else frame(live[fd], data)):
                _close(stdin_w)
                return False
    _close(stdin_w)
    return True


def _drain(client: socket.socket, live: dict[int, int], tty: bool) -> None:
    """What the outputs hold now, without waiting for their EOF."""
    for fd, stream in live.items():
        for _ in range(1 << 16):
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                break
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data or not _send(client, data if tty else frame(stream, data)):
                break


def _close(fd: int) -> None:
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)


def _write_fd(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except OSError:
            return False
        view = view[n:]
    return True
