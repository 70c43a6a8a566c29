"""The client end of attach: our stdio <-> the monitor's socket.

Used by foreground `run`, `attach` and `start -a`. With a tty: raw mode on our
terminal, SIGWINCH sent as RESIZE, and the detach keys (Ctrl-P Ctrl-Q by
default) end the attach without stopping the container. Ctrl-C in raw mode is
just a byte, so it reaches the container's terminal, as with Docker.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys

from portique.engine import stream as st
from portique.engine.client import FrameReader, connect
from portique.engine.paths import ContainerPaths
from portique.errors import InvalidArgument
from portique.oci.value import value
from portique.termio import raw_terminal, window_size, write_all

DETACHED = -1
OUT_HIGH_WATER = 1 << 20  # stop reading our stdin while this much waits for the monitor


@value
class AttachOptions:
    stdin: bool
    stdout: bool = True
    stderr: bool = True
    tty: bool = False
    detach_keys: bytes = b"\x10\x11"
    sig_proxy: bool = True


def parse_detach_keys(spec: str) -> bytes:
    """Docker's syntax: "ctrl-p,ctrl-q", single characters, "ctrl-@" .. "ctrl-_"."""
    out = bytearray()
    for key in spec.split(","):
        k = key.strip().lower()
        if len(k) == 1:
            out.append(ord(k))
        elif k.startswith("ctrl-") and len(k) == 6:
            c = k[5]
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c in "@[\\]^_":
                out.append("@[\\]^_".index(c) and (ord(c) - 64))
            else:
                raise InvalidArgument(f"invalid detach keys: {spec!r}")
        else:
            raise InvalidArgument(f"invalid detach keys: {spec!r}")
    if not out:
        raise InvalidArgument(f"invalid detach keys: {spec!r}")
    return bytes(out)


def attach(paths: ContainerPaths, opts: AttachOptions) -> int:
    """Stream until the container exits (its exit code) or the user detaches (DETACHED)."""
    sock = connect(paths, timeout=None)
    with sock:
        sock.sendall(
            st.frame(
                st.HELLO, f"attach {int(opts.stdin)} {int(opts.stdout)} {int(opts.stderr)}".encode()
            )
        )
        in_fd = sys.stdin.fileno() if opts.stdin else -1
        term_fd = in_fd if in_fd >= 0 and os.isatty(in_fd) else -1
        if opts.tty and term_fd >= 0:
            with raw_terminal(term_fd):
                return _pump(sock, opts, in_fd, term_fd, paths)
        return _pump(sock, opts, in_fd, term_fd, paths)


def _pump(
    sock: socket.socket, opts: AttachOptions, in_fd: int, term_fd: int, paths: ContainerPaths
) -> int:
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_wakeup = signal.set_wakeup_fd(wake_w)
    handlers: dict[int, object] = {}
    pending: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        pending.append(signum)

    forward = [
        signal.SIGINT,
        signal.SIGTERM,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    ]
    if opts.tty and term_fd >= 0:
        handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, on_signal)
        size = window_size(term_fd)
        if size:
            sock.sendall(st.frame(st.RESIZE, f"{size[0]} {size[1]}".encode()))
    elif opts.sig_proxy:
        for sig in forward:
            handlers[sig] = signal.signal(sig, on_signal)
    reader = FrameReader(sock)
    matched = 0
    # Frames to the monitor wait in `out` and leave only when the socket takes
    # them: blocking on a send while the monitor blocks sending us output
    # would deadlock a large `run -i` (both socket buffers full).
    out = bytearray()
    sock.setblocking(False)
    try:
        for _ in range(1 << 62):
            rlist = [sock.fileno(), wake_r]
            if in_fd >= 0 and len(out) < OUT_HIGH_WATER:
                rlist.append(in_fd)
            try:
                ready, writable, _ = select.select(rlist, [sock.fileno()] if out else [], [])
            except InterruptedError:
                ready, writable = [], []
            if writable and out:
                with contextlib.suppress(BlockingIOError, InterruptedError):
                    del out[: sock.send(out)]
            if wake_r in ready:
                with contextlib.suppress(OSError):
                    os.read(wake_r, 256)
            while pending:
                signum = pending.pop(0)
                if signum == signal.SIGWINCH:
                    size = window_size(term_fd)
                    if size:
                        out += st.frame(st.RESIZE, f"{size[0]} {size[1]}".encode())
                else:
                    _proxy_signal(paths, signum)
            if in_fd >= 0 and in_fd in ready:
                data = os.read(in_fd, 65536)
                if not data:
                    out += st.frame(st.EOF)
                    in_fd = -1
                else:
                    if opts.tty:
                        data, matched, detached = scan_detach(data, opts.detach_keys, matched)
                        if detached:
                            if data:
                                out += st.frame(st.STDIN, data)
                            _flush(sock, out)
                            return DETACHED
                    if data:
                        out += st.frame(st.STDIN, data)
            if sock.fileno() in ready:
                code = _read_frames(reader, opts)
                if code is not None:
                    return code
        return 125
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for signum, h in handlers.items():
            signal.signal(signum, h)  # type: ignore[arg-type]
        os.close(wake_r)
        os.close(wake_w)


def _flush(sock: socket.socket, out: bytearray, limit: float = 5.0) -> None:
    """Best effort: hand the monitor what is queued before we go (detach)."""
    sock.settimeout(limit)
    with contextlib.suppress(OSError):
        sock.sendall(out)


def _read_frames(reader: FrameReader, opts: AttachOptions) -> int | None:
    """Write what arrived; the exit code once EXIT came (125 if the monitor vanished)."""
    try:
        data = reader.sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return None
    if not data:
        return 125
    frames, reader.buf = st.split_frames(reader.buf + data)
    for kind, payload in frames:
        if kind == st.STDOUT and opts.stdout:
            write_all(1, payload)
        elif kind == st.STDERR and opts.stderr:
            write_all(2, payload)
        elif kind == st.EXIT:
            try:
                return int(payload)
            except ValueError:
                return 125
    return None


def scan_detach(data: bytes, keys: bytes, matched: int) -> tuple[bytes, int, bool]:
    """Pass bytes through, holding back a partial detach sequence: (bytes to
    pass, how much of the sequence is matched, whether it completed)."""
    out = bytearray()
    for b in data:
        if b == keys[matched]:
            matched += 1
            if matched == len(keys):
                return bytes(out), 0, True
            continue
        if matched:
            out += keys[:matched]
            matched = 0
            if b == keys[0]:
                matched = 1
                continue
        out.append(b)
    return bytes(out), matched, False


def _proxy_signal(paths: ContainerPaths, sig: int) -> None:
    # A separate request: the attach stream carries only stdio.
    from portique.engine.client import request

    with contextlib.suppress(Exception):
        request(paths, f"kill {sig}")
