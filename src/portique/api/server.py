"""The accept loop of `portique serve`: listen, fork a worker per connection, reap.

The parent is single-threaded and does nothing else: it accepts, forks
(forking.py), closes its copy of the connection and reaps. Before the first
accept it imports what the workers use (engine, image store, runtime, the
route modules), so each worker starts warm.

Listening: a unix socket (mode 0660, root and the given group; a live server
on the path is an error, a stale socket file is replaced; the socket is made
under a temporary name and renamed into place), or TCP: loopback only, unless
TLS with client certificates is configured (as dockerd's --tlsverify).
SIGTERM/SIGINT close the listeners, stop the workers (their streams end; the
containers, which their monitors own, keep running) and remove the socket.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import grp
import ipaddress
import os
import selectors
import signal
import socket
import ssl
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from portique.api import forking
from portique.errors import InvalidArgument, PortiqueError

if TYPE_CHECKING:
    from portique.api.router import Router
    from portique.engine.engine import Engine

STOP_GRACE = 10.0
MAX_WORKERS = 1024  # connections served at once (a worker process each)

__all__ = ["Listener", "TLSConfig", "listen", "serve"]


@dataclass(frozen=True)
class TLSConfig:
    verify: bool
    cacert: str
    cert: str
    key: str


@dataclass
class Listener:
    sock: socket.socket
    address: str
    unix_path: str = ""
    tls: ssl.SSLContext | None = None

    def close(self) -> None:
        self.sock.close()
        if self.unix_path:
            with contextlib.suppress(OSError):
                st = os.lstat(self.unix_path)
                if st.st_ino == self._ino:
                    os.unlink(self.unix_path)

    _ino: int = 0


def listen(host: str, *, group: str = "", tls: TLSConfig | None = None) -> Listener:
    """A listening socket for one -H value."""
    scheme, sep, rest = host.partition("://")
    if not sep:
        raise InvalidArgument(f"invalid host {host!r}: want unix:///path or tcp://ADDR:PORT")
    if scheme == "unix":
        if not rest.startswith("/"):
            raise InvalidArgument(f"invalid host {host!r}: the socket path must be absolute")
        return _listen_unix(rest, group)
    if scheme == "tcp":
        return _listen_tcp(rest, tls)
    raise InvalidArgument(f"invalid host {host!r}: only unix:// and tcp:// are served")


def _listen_unix(path: str, group: str) -> Listener:
    gid = 0
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise InvalidArgument(f"group {group!r} does not exist") from None
    directory = os.path.dirname(path) or "/"
    os.makedirs(directory, mode=0o755, exist_ok=True)
    if os.path.lexists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            probe.settimeout(2)
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            pass  # stale: replaced below
        except OSError as exc:
            raise PortiqueError(
                f"{path}: cannot tell whether a server listens there: {exc}"
            ) from None
        else:
            raise PortiqueError(f"{path}: another server is listening on this socket")
        finally:
            probe.close()
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        old = os.umask(0o177)
        try:
            sock.bind(tmp)
        finally:
            os.umask(old)
        os.chown(tmp, 0 if os.geteuid() == 0 else -1, gid if group else -1)
        os.chmod(tmp, 0o660)
        sock.listen(128)
        os.rename(tmp, path)
    except OSError:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    lst = Listener(sock, f"unix://{path}", unix_path=path)
    lst._ino = os.lstat(path).st_ino
    return lst


def _listen_tcp(rest: str, tls: TLSConfig | None) -> Listener:
    addr, sep, port_text = rest.rstrip("/").rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidArgument(f"invalid host tcp://{rest}: want tcp://ADDR:PORT")
    addr = addr.strip("[]") or "127.0.0.1"
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise InvalidArgument(f"invalid host tcp://{rest}: ADDR must be an IP address") from None
    context = None
    if not ip.is_loopback and (tls is None or not tls.verify):
        raise InvalidArgument(
            f"refusing to listen on tcp://{rest} without TLS client verification: "
            "a non-loopback address needs --tlsverify --tlscacert --tlscert --tlskey"
        )
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(tls.cert, tls.key)
            if tls.verify:
                context.load_verify_locations(tls.cacert)
                context.verify_mode = ssl.CERT_REQUIRED
        except (OSError, ssl.SSLError) as exc:
            raise InvalidArgument(f"TLS configuration: {exc}") from None
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((str(ip), int(port_text)))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise PortiqueError(f"tcp://{rest}: {exc.strerror or exc}") from None
    return Listener(sock, f"tcp://{rest}", tls=context)


# What workers import on their first request beyond the container start
# path (warm/preload.py): imported once in the parent, so a worker starts warm
# (measured with cProfile on a first create, start, exec).
PRELOAD = (
    "portique.engine.archives",
    "portique.engine.client",
    "portique.engine.commit",
    "portique.engine.copy",
    "portique.engine.logs",
    "portique.engine.options",
    "portique.engine.request",
    "portique.engine.stats",
    "portique.engine.update",
    "portique.engine.volumes",
)


def serve(eng: Engine, listeners: list[Listener], router: Router, ready: int = -1) -> int:
    """Accept until SIGTERM/SIGINT; 0. `ready`: an fd written to (and closed)
    once the listeners accept."""
    from portique.api.worker import serve_connection
    from portique.warm.preload import preload

    preload(PRELOAD)
    from portique.db import DB_NAME
    from portique.warm import dbkeeper

    # Before any fork: no worker is then the database's last connection.
    keeper = dbkeeper.start(eng.root / DB_NAME)
    # Monitors come from a zygote forked now, before any connection: a fork
    # of the warm server that shares its pages (portique/warm/zygote.py).
    zchan = _start_zygote(listeners)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    stopping: list[int] = []

    def on_stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    old_wakeup = signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    sel = selectors.DefaultSelector()
    for lst in listeners:
        lst.sock.setblocking(False)
        sel.register(lst.sock, selectors.EVENT_READ, lst)
    sel.register(wake_r, selectors.EVENT_READ, None)
    children: set[int] = set()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

    def close_in_child() -> None:
        sel.close()
        for lst in listeners:
            lst.sock.close()
        os.close(wake_r)
        os.close(wake_w)
        if keeper >= 0:
            os.close(keeper)
        if zchan is not None:
            from portique.engine import lifecycle
            from portique.warm import zygote

            lifecycle.MONITOR_SPAWNER = zygote.spawner(zchan)

    if ready >= 0:
        os.write(ready, b"ready\n")
        os.close(ready)
    for address in (lst.address for lst in listeners):
        print(f"portique serve: listening on {address}", file=sys.stderr, flush=True)
    try:
        paused = False
        for _ in range(1 << 62):
            if stopping:
                break
            # At MAX_WORKERS connections, accept no more until one ends (the
            # kernel's backlog holds the next ones): a bound on our processes.
            if not paused and len(children) >= MAX_WORKERS:
                for lst in listeners:
                    sel.unregister(lst.sock)
                paused = True
            elif paused and len(children) < MAX_WORKERS:
                for lst in listeners:
                    sel.register(lst.sock, selectors.EVENT_READ, lst)
                paused = False
            for key, _mask in sel.select():
                if key.data is None:
                    with contextlib.suppress(OSError):
                        os.read(wake_r, 512)
                    continue
                lst = key.data
                try:
                    conn, _addr = lst.sock.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue
                except OSError as exc:  # EMFILE and the like: say it, keep serving
                    print(f"portique serve: accept: {exc}", file=sys.stderr, flush=True)
                    time.sleep(0.1)
                    continue
                try:
                    pid = forking.spawn(
                        functools.partial(_work, conn, lst.tls, eng, router, serve_connection),
                        close_in_child,
                    )
                except OSError as exc:
                    print(f"portique serve: fork: {exc}", file=sys.stderr, flush=True)
                    conn.close()
                    continue
                children.add(pid)
                conn.close()
            forking.reap(children)
    finally:
        sel.close()
        for lst in listeners:
            lst.close()
        _stop_workers(children)
        if zchan is not None:
            zchan.close()  # the zygote ends; its monitors keep their containers
        signal.set_wakeup_fd(old_wakeup)
        os.close(wake_r)
        os.close(wake_w)
        if keeper >= 0:
            os.close(keeper)  # the keeper closes the database and exits
    return 0


def _start_zygote(listeners: list[Listener]) -> socket.socket | None:
    """The monitors' zygote; None where it cannot be made (workers then start
    monitors as the CLI does)."""
    from portique.warm import zygote

    forgotten: list[bool] = []

    def forget(keep: set[int]) -> None:
        # In the zygote, then again in each monitor: the server's listeners
        # (once: their numbers may be reused by then), handlers and fds.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if not forgotten:
            forgotten.append(True)
            for lst in listeners:
                lst.sock.close()
        from portique.linux.fs import close_other_fds

        close_other_fds(keep)

    gc.collect()
    gc.freeze()
    return zygote.start(forget)


def _work(
    conn: socket.socket, tls: ssl.SSLContext | None, eng: Engine, router: Router, serve_fn: object
) -> int:
    conn.setblocking(True)
    if tls is not None:
        conn.settimeout(30)
        try:
            conn = tls.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            return 0
        conn.settimeout(None)
    assert callable(serve_fn)
    return int(serve_fn(conn, eng, router))


def _stop_workers(children: set[int]) -> None:
    """SIGTERM our workers (streams end, containers do not), SIGKILL after the grace."""
    for pid in list(children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    while children and time.monotonic() < deadline:
        forking.reap(children)
        if children:
            time.sleep(0.02)
    for pid in list(children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        children.discard(pid)
