"""The warm fork-server: one per engine run root, single-threaded, forking a worker per command.

    serve(runroot, handler, preload)      run the server in this process
    start(runroot, handler, preload)      run it as a daemon; returns its pid once it listens
    stop(runroot) / status(runroot)       through <runroot>/warm.pid and warm.lock

The face gives the server its `handler` (argv -> exit code: the CLI's main)
and the modules to import before serving; the server imports them and the
container start path (preload.py), freezes its heap (`gc.freeze()`: the
collector never writes to the pages its forks share) and accepts
connections on `<runroot>/warm.sock` (0600). Per connection it checks the
peer's uid (SO_PEERCRED: its own, root) and hands the connection to its
spare, a worker forked ahead that waits on its channel for it, then forks
the next spare a moment later, off the command's critical path (a fork of
this big process costs ~1 ms); everything else happens in the worker
(worker.py), so a slow or hostile client never holds the server. When a
worker is reaped the server writes its wait status to the client
(protocol.py) and closes the connection; a client that hangs up first
(killed) gets its worker killed, as killing the in-process CLI would.

The server owns no container: monitors are double-forked and setsid'd away
from its workers (engine/lifecycle.py), so containers outlive it. SIGTERM
(`stop`) closes the socket at once (new commands run in-process) and the
server exits when its running workers have finished. A worker that finds the
installation changed (installation.py) refuses its command and asks the
server to stop.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from portique.warm import preload, protocol
from portique.warm.installation import Installation

Handler = Callable[[list[str]], int]

MAX_WORKERS = 256  # beyond: refused, the client runs in-process
SPARE_DELAY_MS = 2  # after a command was handed over, before the next spare is forked
TICK_MS = 1000  # how often an idle server checks its socket and idle time
_PEERCRED = 12  # struct ucred: pid, uid, gid


class ServerError(Exception):
    """The server could not start (one line for the user)."""


class AlreadyRunning(ServerError):
    """Another server holds the run root's lock."""


def socket_path(runroot: Path) -> Path:
    return runroot / protocol.SOCKET_NAME


class Server:
    """The accept loop's state; a worker closes all of it (worker.py)."""

    def __init__(
        self,
        runroot: Path,
        handler: Handler,
        lock_fd: int,
        idle: float | None = None,
        installation: Installation | None = None,
    ) -> None:
        self.runroot = runroot
        self.idle = idle
        self.last_active = time.monotonic()
        self.handler = handler
        self.lock_fd = lock_fd
        self.installation = installation or Installation()
        self.identity = protocol.identity()
        self.workers: dict[int, socket.socket] = {}
        # Per worker, the server's end of its control channel (monitor requests).
        self.controls: dict[int, socket.socket] = {}
        self.stopping = False
        self.served = 0
        # The worker forked ahead of the next connection (0: none), and
        # whether the last one died without one: then the next is forked at
        # an accept, so a spare that cannot start costs a fork per command,
        # not a fork loop.
        self.spare = 0
        self.spare_lost = False
        self.spare_due = 0.0  # monotonic time before which no spare is forked
        with open("/proc/self/comm", "rb") as f:
            self.comm = f.read().rstrip(b"\n")  # a spare's, once a command is its
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.listen = _bind(socket_path(runroot))
        self.listen_ino = os.stat(socket_path(runroot)).st_ino
        self.poll = select.poll()
        self.poll.register(self.listen, select.POLLIN)
        self.poll.register(self.wake_r, select.POLLIN)
        self.zygote: socket.socket | None = None

    def run(self) -> None:
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, _note)
        signal.set_wakeup_fd(self.wake_w)
        while not (self.stopping and not self.workers and not self.spare):
            timeout = self._keep_spare()
            try:
                events = self.poll.poll(timeout)
            except InterruptedError:
                events = []
            if not events:
                self._tick()
            for fd, ev in events:
                if fd == self.wake_r:
                    self._signals()
                elif fd == self.listen.fileno():
                    self._accept()
                elif fd in self._control_fds():
                    self._control(fd)
                elif ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
                    self._client_gone(fd)
            self._reap()
        self._close_listener()

    def _tick(self) -> None:
        """Stop when our socket is gone or replaced (the run root was removed),
        or after `idle` seconds without a command."""
        try:
            gone = os.stat(socket_path(self.runroot)).st_ino != self.listen_ino
        except OSError:
            gone = True
        if self.workers:
            self.last_active = time.monotonic()
        idle = self.idle is not None and time.monotonic() - self.last_active > self.idle
        if gone or idle:
            self._stop()

    def _signals(self) -> None:
        with contextlib.suppress(BlockingIOError):
            for sig in os.read(self.wake_r, 512):
                if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    self.stopping = True
        if self.stopping:
            self._stop()

    def _stop(self) -> None:
        """New commands run in-process from now on; those in flight finish."""
        self.stopping = True
        self._close_listener()
        if self.spare:
            with contextlib.suppress(OSError):
                os.kill(self.spare, signal.SIGKILL)  # our unreaped child: the pid is still its

    def _close_listener(self) -> None:
        if self.listen.fileno() < 0:
            return
        self.poll.unregister(self.listen)
        path = socket_path(self.runroot)
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == self.listen_ino:
                os.unlink(path)
        self.listen.close()

    def _accept(self) -> None:
        self.last_active = time.monotonic()
        for _ in range(64):
            try:
                conn, _addr = self.listen.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: keep serving the others
                _log(f"accept: {exc}")
                return
            conn.setblocking(True)
            try:
                raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED)
                uid = int.from_bytes(raw[4:8], sys.byteorder)
            except OSError:
                conn.close()
                continue
            if uid != os.geteuid():
                _log(f"refused a client of uid {uid}")
                conn.close()
                continue
            if len(self.workers) >= MAX_WORKERS or self.stopping:
                with contextlib.suppress(OSError):
                    conn.sendall(protocol.REFUSED + b"busy\n")
                conn.close()
                continue
            self.spare_lost = False
            self._hand(conn)

    def _hand(self, conn: socket.socket) -> None:
        """The connection to the spare, or to a worker forked now when there is none."""
        for _ in range(2):  # a spare that died meanwhile: once more, with a fresh fork
            pid = self.spare or self._fork_worker()
            self.spare = 0
            if not pid:
                break
            chan = self.controls.get(pid)  # None: it hung up (died), not reaped yet
            try:
                if chan is None:
                    raise ConnectionResetError("its channel is closed")
                fd = conn.fileno().to_bytes(4, sys.byteorder, signed=True)
                chan.sendmsg([protocol.HANDOVER], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fd)])
            except OSError as exc:
                _log(f"handing a command to worker {pid}: {exc}")
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)  # our unreaped child: the pid is still its
                continue
            self.served += 1
            self.workers[pid] = conn
            self.poll.register(conn, select.POLLRDHUP)
            self.spare_due = time.monotonic() + SPARE_DELAY_MS / 1000
            return
        with contextlib.suppress(OSError):
            conn.sendall(protocol.REFUSED + b"fork failed\n")
        conn.close()

    def _keep_spare(self) -> int:
        """Fork the next command's worker before it arrives (not while stopping,
        nor past MAX_WORKERS, nor at once after a spare died unused), but not
        before SPARE_DELAY_MS after the last one took its command: woken by
        our message (a unix socket's wakeup is a synchronous one), it tends to
        run on this CPU, where a fork at once held it up ~0.5 ms (measured).
        How long the loop may wait for events (ms)."""
        if self.spare or self.stopping or self.spare_lost or len(self.workers) >= MAX_WORKERS:
            return TICK_MS
        wait = self.spare_due - time.monotonic()
        if wait > 0:
            return max(1, int(wait * 1000))
        self.spare = self._fork_worker()
        self.spare_lost = not self.spare
        return TICK_MS

    def _fork_worker(self) -> int:
        """A worker waiting for its connection (worker.main), or 0 if none could be forked."""
        try:
            ours, theirs = socket.socketpair(
                socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
            )
        except OSError as exc:
            _log(f"socketpair: {exc}")
            return 0
        try:
            pid = os.fork()
        except OSError as exc:
            _log(f"fork: {exc}")
            ours.close()
            theirs.close()
            return 0
        if pid == 0:  # pragma: no cover - the worker
            from portique.warm import worker

            worker.main(self, theirs)  # never returns
        theirs.close()
        self.controls[pid] = ours
        ours.setblocking(False)
        self.poll.register(ours, select.POLLIN)
        return pid

    def _control_fds(self) -> set[int]:
        return {s.fileno() for s in self.controls.values()}

    def _control(self, fd: int) -> None:
        """A worker asks for a monitor (engine/forkedmonitor.py), or hung up."""
        pid, chan = next((p, c) for p, c in self.controls.items() if c.fileno() == fd)
        try:
            data, anc, _flags, _addr = chan.recvmsg(protocol.MAX_REQUEST, socket.CMSG_SPACE(8))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, anc = b"", []
        fds = [f for level, kind, raw in anc for f in _fds_of(level, kind, raw)]
        if not data:  # the worker exited (or closed it): nothing more to serve
            for f in fds:
                os.close(f)
            self.poll.unregister(chan)
            chan.close()
            del self.controls[pid]
            return
        try:
            reply = self._spawn_monitor(data, fds)
        finally:
            for f in fds:
                os.close(f)
        with contextlib.suppress(OSError):
            chan.send(reply)

    def _spawn_monitor(self, data: bytes, fds: list[int]) -> bytes:
        from portique.warm.zygote import fd_count

        fields = data.split(b"\0")
        if len(fields) < 5 or not fds or fd_count(fields[0]) != len(fds):
            return b"err bad monitor request"
        if self.zygote is not None:
            try:
                raw = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
                self.zygote.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, raw)])
                reply = self.zygote.recv(4096)
                if reply:
                    return reply
            except OSError as exc:
                _log(f"the monitors' zygote: {exc}")
            self.zygote.close()  # gone: the server forks monitors itself from now on
            self.zygote = None
        try:
            pid = os.fork()
        except OSError as exc:
            return f"err fork: {exc}".encode()
        if pid == 0:  # pragma: no cover - becomes the monitor, nobody's child
            code = 125
            try:
                os.setsid()
                if os.fork() == 0:
                    from portique.warm import worker

                    go_r = fds[1] if len(fds) == 2 else -1
                    worker.become_monitor(self.forget, fields, fds[0], go_r)
                code = 0
            finally:
                os._exit(code)
        return b"ok"

    def forget(self, keep: set[int]) -> None:
        """In a fork of this server: its fds and handlers but `keep` dropped."""
        from portique.warm import worker

        worker.forget_server(self, keep)

    def _client_gone(self, fd: int) -> None:
        for pid, conn in self.workers.items():
            if conn.fileno() == fd:
                self.poll.unregister(conn)
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)  # our unreaped child: the pid is still its
                return

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            chan = self.controls.pop(pid, None)
            if chan is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.poll.unregister(chan)
                chan.close()
            if pid == self.spare:
                self.spare = 0
                self.spare_lost = True
                continue
            conn = self.workers.pop(pid, None)
            if conn is None:
                continue  # a monitor's intermediate process, a spare we gave up on
            with contextlib.suppress(KeyError, ValueError):
                self.poll.unregister(conn)
            with contextlib.suppress(OSError):
                conn.sendall(protocol.EXITED + b"%d\n" % status)
            conn.close()


def _fds_of(level: int, kind: int, raw: bytes) -> list[int]:
    if level != socket.SOL_SOCKET or kind != socket.SCM_RIGHTS:
        return []
    n = len(raw) - len(raw) % 4
    return [int.from_bytes(raw[i : i + 4], sys.byteorder, signed=True) for i in range(0, n, 4)]


def _note(signum: int, frame: object) -> None:
    """A signal's number reaches the loop through the wakeup fd."""


def _bind(path: Path) -> socket.socket:
    """Listen on `path`, mode 0600 from the start (bound under umask 0177)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        s.bind(str(path))
    finally:
        os.umask(old)
    s.listen(128)
    s.setblocking(False)
    return s


def _log(msg: str) -> None:
    with contextlib.suppress(OSError):
        sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} warm[{os.getpid()}]: {msg}\n")
        sys.stderr.flush()


def _lock(runroot: Path) -> int:
    """The server's lock on <runroot>/warm.lock (held for its life), or ServerError."""
    fd = os.open(runroot / protocol.LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + 2.0  # a status probe holds it for microseconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise AlreadyRunning("a warm server is already running for this run root") from None
            time.sleep(0.01)


def serve(
    runroot: Path,
    handler: Handler,
    modules: Sequence[str] = (),
    ready: Callable[[], None] | None = None,
    idle: float | None = None,
    database: Path | None = None,
    workers_only: Sequence[str] = (),
    warmup: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT/SIGHUP, a stale installation, the socket's removal
    or `idle` seconds without a command; ServerError if it cannot start.
    `database`: held open meanwhile by a keeper process (dbkeeper.py).
    `workers_only` is imported, then `warmup()` called, after the zygote is
    forked: the workers get them, the monitors (the zygote's forks) do not
    carry their pages."""
    runroot.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock_fd = _lock(runroot)
    keeper = -1
    try:
        if database is not None:
            from portique.warm import dbkeeper

            keeper = dbkeeper.start(database)
        # Fingerprinted before the imports: a file changed while they ran
        # makes the server stale at its first command.
        installation = Installation()
        preload.preload(("portique.engine.forkedmonitor", *modules))
        server = Server(runroot, handler, lock_fd, idle, installation)
        from portique.warm import zygote

        server.zygote = zygote.start(server.forget)
        if workers_only:
            preload.preload(workers_only)
        if warmup is not None:
            warmup()
        why_not = installation.watch()  # nothing is imported from here on
        if why_not is not None:
            _log(why_not)
        _write_pid(runroot)
        if ready is not None:
            ready()
        try:
            server.run()
        finally:
            with contextlib.suppress(OSError):
                os.unlink(runroot / protocol.PID_NAME)
    finally:
        if keeper >= 0:
            os.close(keeper)  # the keeper closes the database and exits
        os.close(lock_fd)


def _write_pid(runroot: Path) -> None:
    from portique.fileio import atomic_write
    from portique.linux.proc import read_stat

    stat = read_stat(os.getpid())
    start = stat.start_time if stat is not None else 0
    atomic_write(
        runroot / protocol.PID_NAME, f"{os.getpid()} {start}\n".encode(), mode=0o600, fsync=False
    )


def start(
    runroot: Path,
    handler: Handler,
    modules: Sequence[str] = (),
    idle: float | None = None,
    database: Path | None = None,
    workers_only: Sequence[str] = (),
    warmup: Callable[[], None] | None = None,
) -> int:
    """Start a daemon serving `runroot`; its pid once it listens. ServerError if it cannot."""
    running = status(runroot)
    if running is not None:
        return running
    runroot.mkdir(parents=True, exist_ok=True, mode=0o700)
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the daemon
        code = 1
        try:
            os.close(r)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            from portique.linux.fs import close_other_fds

            # What the starter's process had open (its caller's pipes, ...): a
            # daemon that held one would keep its reader waiting for the end.
            close_other_fds({w})
            _daemon_stdio(runroot)

            def ready() -> None:
                os.write(w, b"ok")
                os.close(w)

            serve(runroot, handler, modules, ready, idle, database, workers_only, warmup)
            code = 0
        except AlreadyRunning:  # another start won the race: it serves
            with contextlib.suppress(BaseException):
                os.write(w, b"running")
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                _log(f"cannot serve: {exc}")
                os.write(w, f"err {exc}".encode()[:2000])
        os._exit(code)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r, "rb") as f:
        msg = f.read(4096).decode("utf-8", "replace")
    if msg in ("ok", "running"):
        found = status(runroot)
        if found is not None:
            return found
        raise ServerError("the warm server stopped as soon as it started")
    raise ServerError(msg.removeprefix("err ") or "the warm server died while starting")


def _daemon_stdio(runroot: Path) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    log = os.open(runroot / protocol.LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    sys.stdout = open(1, "w", 1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", 1, closefd=False)  # noqa: SIM115


def status(runroot: Path) -> int | None:
    """The pid of the server holding `runroot`'s lock, or None."""
    try:
        fd = os.open(runroot / protocol.LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held: a server lives
        else:
            return None
    finally:
        os.close(fd)
    return _read_pid(runroot)


def _read_pid(runroot: Path) -> int | None:
    from portique.linux.proc import read_stat

    try:
        pid_s, start_s = (runroot / protocol.PID_NAME).read_text().split()
        pid, start = int(pid_s), int(start_s)
    except (OSError, ValueError):
        return None
    stat = read_stat(pid)
    if stat is None or stat.start_time != start:
        return None
    return pid


def stop(runroot: Path, timeout: float = 60.0) -> bool:
    """SIGTERM the server and wait until it exited (True), or `timeout` (False)."""
    pid = status(runroot)
    if pid is None:
        return True
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        if _read_pid(runroot) != pid:  # gone (and maybe reused) before we held it
            return True
        signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        return bool(p.poll(int(timeout * 1000)))
    finally:
        os.close(pidfd)
