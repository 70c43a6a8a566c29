"""The per-container monitor: a small, long-lived process (what conmon is for Podman).

`lifecycle.launch` creates and starts the container inside a session-leader,
child-subreaper process and then execs a fresh interpreter on this module, so
the long-lived process holds only what it needs: `os`, `select`, `_socket`,
`_signal`, `time`, and the log writer. Its jobs:

- own the container's stdio: pipes (stdout, stderr, stdin with -i) or the pty
  master (-t); write every output line to the json-file log;
- serve attach/wait/stop/kill/resize requests on <run_dir>/m.sock (stream.py);
- know its engine only from its arguments (`root=`, `runroot=`), never from
  the environment;
- reap the container's init (it is our child: either directly or reparented
  to us as the subreaper) and hand the exit to `lifecycle.finish`, which
  records it, cleans up, and tells us whether the restart policy wants another
  run; only then are the heavy modules imported, and a restart re-execs a
  fresh monitor so memory never accumulates.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]
import _socket
import os
import select
import sys
import time

from portique.engine import stream as st
from portique.engine.logfile import LogWriter

TYPE_CHECKING = False  # not typing's: the monitor does not import typing
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable

    from portique.engine.engine import Engine

STDIN_HIGH_WATER = 1 << 20  # stop reading clients' stdin frames while this much is queued
HOLD_SECONDS = 10.0  # foreground `run`: wait this long for the CLI to attach before reading
CLIENT_TIMEOUT = 30.0  # a client that does not read for this long is dropped
PROBE_GRACE = 10.0  # a healthcheck probe outliving its timeout by this much is killed
# The healthcheck probe: a fresh interpreter of our own (protected) file on
# engine/health.py's main (health.BOOT; not imported here, it is the engine's).
PROBE_BOOT = (
    "import sys;sys.path[:0]=sys.argv[1].split('\\n');"
    "from portique.engine.health import main;main(sys.argv[2:])"
)


class Client:
    __slots__ = ("buf", "mode", "out", "sock", "stdin")

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.mode = ""  # "", "attach", "wait", "stop"
        self.out = False
        self.stdin = False

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False


class Monitor:
    # Slots, not a __dict__: a monitor forked from the warm server would
    # otherwise build the class's shared dict keys, touching (and copying the
    # page of) every attribute name's string (engine/forkedmonitor.py).
    __slots__ = (
        "args",
        "clients",
        "err_fd",
        "hold_until",
        "id",
        "in_fd",
        "kill_deadline",
        "listen",
        "log",
        "out_fd",
        "pid",
        "poll",
        "probe",
        "probe_deadline",
        "probe_next",
        "probe_pid",
        "pty_fd",
        "reading",
        "started",
        "status",
        "stdin_buf",
        "stdin_eof",
        "stdin_once",
        "stop_requested",
        "throttled",
        "wake_r",
        "wake_w",
    )

    def __init__(self, args: dict[str, str]) -> None:
        self.id = args["id"]
        self.pid = int(args["pid"])
        self.listen = _socket.socket(fileno=int(args["listen"]))
        self.out_fd = int(args.get("out", "-1"))
        self.err_fd = int(args.get("err", "-1"))
        self.in_fd = int(args.get("in", "-1"))
        self.pty_fd = int(args.get("pty", "-1"))
        self.stdin_once = args.get("stdin_once") == "1"
        self.hold_until = time.monotonic() + HOLD_SECONDS if args.get("hold") == "1" else 0.0
        # Inherited across our exec; close-on-exec again so nothing we start
        # (a restarted container's runtime) inherits them.
        for fd in (self.listen.fileno(), self.out_fd, self.err_fd, self.in_fd, self.pty_fd):
            if fd >= 0:
                os.set_inheritable(fd, False)
        self.log = LogWriter(
            args["log"],
            int(args.get("log_max_size") or 0),
            int(args.get("log_max_file") or 1),
            args.get("log_none") == "1",
        )
        self.clients: dict[int, Client] = {}
        self.stdin_buf = bytearray()
        self.stdin_eof = False  # close the stdin pipe once the buffer is flushed
        self.throttled = False
        self.stop_requested = False
        self.kill_deadline = 0.0
        self.status: int | None = None
        # Healthcheck (engine/health.py): when the next probe starts, the probe
        # running (our child: never waited for, reaped with the others) and when
        # it is killed.
        self.args = args
        self.probe: tuple[float, float, float, float] | None = None
        health = args.get("health", "")
        if health:
            ns = [int(x) for x in health.split(":")]
            self.probe = (ns[0] / 1e9, ns[1] / 1e9, ns[2] / 1e9, ns[3] / 1e9)
        self.started = float(args.get("started", "0") or 0)
        self.probe_pid = 0
        self.probe_deadline = 0.0
        self.probe_next = time.monotonic() + self._probe_interval() if self.probe else 0.0
        self.poll = select.poll()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        _signal.set_wakeup_fd(self.wake_w)
        _signal.signal(_signal.SIGCHLD, _noop)
        for sig in (_signal.SIGHUP, _signal.SIGINT, _signal.SIGTERM, _signal.SIGPIPE):
            _signal.signal(sig, _signal.SIG_IGN)
        self.poll.register(self.wake_r, select.POLLIN)
        self.poll.register(self.listen.fileno(), select.POLLIN)
        self.reading = False
        for fd in (self.in_fd, self.pty_fd):
            if fd >= 0:
                os.set_blocking(fd, False)
        if not self.hold_until:
            self._start_reading()

    # ------------------------------------------------------------ output

    def _stdin_fd(self) -> int:
        return self.pty_fd if self.pty_fd >= 0 else self.in_fd

    def _update_mask(self, fd: int) -> None:
        """(Re)register `fd` for what we want from it now: output to read, stdin to write."""
        mask = 0
        if self.reading and fd in self._output_fds():
            mask |= select.POLLIN
        if fd == self._stdin_fd() and self.stdin_buf:
            mask |= select.POLLOUT
        try:
            if mask:
                self.poll.register(fd, mask)
            else:
                self.poll.unregister(fd)
        except (KeyError, ValueError):
            pass

    def _output_fds(self) -> list[int]:
        return [fd for fd in (self.out_fd, self.err_fd, self.pty_fd) if fd >= 0]

    def _start_reading(self) -> None:
        if self.reading:
            return
        self.reading = True
        self.hold_until = 0.0
        for fd in self._output_fds():
            os.set_blocking(fd, False)
            self._update_mask(fd)

    def _pump(self, fd: int) -> int:
        """Move available output to the log and attached clients.

        Returns the byte count, 0 at EOF (the fd is then closed), -1 when
        nothing is available right now.
        """
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return -1
        except OSError:
            data = b""  # EIO: the pty's last slave closed
        if not data:
            self._close_output(fd)
            return 0
        kind = st.STDERR if fd == self.err_fd else st.STDOUT
        self.log.write("stderr" if kind == st.STDERR else "stdout", data)
        msg = st.frame(kind, data)
        for c in list(self.clients.values()):
            if c.mode == "attach" and c.out and not c.send(msg):
                self._drop(c)
        return len(data)

    def _close_output(self, fd: int) -> None:
        try:
            self.poll.unregister(fd)
        except (KeyError, ValueError):
            pass
        os.close(fd)
        if fd == self.out_fd:
            self.out_fd = -1
        elif fd == self.err_fd:
            self.err_fd = -1
        else:
            self.pty_fd = -1

    def _drain(self) -> None:
        """After the init exited: read what is left in the pipes (bounded)."""
        for fd in self._output_fds():
            os.set_blocking(fd, False)
            for _ in range(65536):
                if self._pump(fd) <= 0:
                    break
        self.log.flush()

    # ----------------------------------------------------------- clients

    def _accept(self) -> None:
        try:
            fd, _ = self.listen._accept()  # type: ignore[attr-defined]
        except OSError:
            return
        sock = _socket.socket(fileno=fd)
        sock.settimeout(CLIENT_TIMEOUT)
        c = Client(sock)
        self.clients[fd] = c
        self.poll.register(fd, select.POLLIN)

    def _drop(self, c: Client) -> None:
        fd = c.sock.fileno()
        if self.clients.pop(fd, None) is None:
            return
        try:
            self.poll.unregister(fd)
        except (KeyError, ValueError):
            pass
        if c.stdin and self.stdin_once:
            self._close_stdin()
        c.sock.close()

    def _client_readable(self, c: Client) -> None:
        try:
            data = c.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(c)
            return
        try:
            frames, c.buf = st.split_frames(c.buf + data)
        except ValueError:
            self._drop(c)
            return
        for kind, payload in frames:
            self._handle(c, kind, payload)
            if c.sock.fileno() not in self.clients:
                return

    def _handle(self, c: Client, kind: int, payload: bytes) -> None:
        if kind == st.HELLO:
            self._request(c, payload.decode("ascii", "replace").split())
        elif kind == st.STDIN and c.stdin:
            self._write_stdin(payload)
        elif kind == st.EOF and c.stdin:
            if self.pty_fd < 0:
                self.stdin_eof = True
                self._flush_stdin()
        elif kind == st.RESIZE:
            self._resize(payload.decode("ascii", "replace").split())

    def _request(self, c: Client, words: list[str]) -> None:
        op = words[0] if words else ""
        if op == "attach" and len(words) == 4:
            c.mode = "attach"
            c.stdin = words[1] == "1" and (self.in_fd >= 0 or self.pty_fd >= 0)
            c.out = words[2] == "1" or words[3] == "1"
            if c.stdin and self.throttled:
                self.poll.register(c.sock.fileno(), 0)
            self._start_reading()
        elif op == "wait":
            c.mode = "wait"
        elif op == "stop" and len(words) == 3:
            c.mode = "wait"
            self.stop_requested = True
            sig = int(words[1])
            self._signal(sig)
            if sig != _signal.SIGKILL:  # SIGKILL already: no second one to escalate to
                self.kill_deadline = time.monotonic() + max(0.0, float(words[2]))
        elif op == "kill" and len(words) == 2:
            ok = self._signal(int(words[1]))
            c.send(st.frame(st.OK if ok else st.ERROR))
        elif op == "resize" and len(words) == 3:
            self._resize(words[1:])
            c.send(st.frame(st.OK))
        else:
            c.send(st.frame(st.ERROR, b"bad request"))
            self._drop(c)

    # ------------------------------------------------------------ container

    def _signal(self, sig: int) -> bool:
        if self.status is not None:
            return False
        try:
            # The init is our child and not yet reaped, so its pid cannot
            # have been reused.
            os.kill(self.pid, sig)
            return True
        except OSError:
            return False

    def _write_stdin(self, data: bytes) -> None:
        if self._stdin_fd() < 0:
            return
        self.stdin_buf += data
        self._flush_stdin()

    def _flush_stdin(self) -> None:
        """Write what the container will take now; queue the rest (never block:
        the container may be waiting for us to read its output)."""
        fd = self._stdin_fd()
        if fd < 0:
            self.stdin_buf.clear()
            return
        while self.stdin_buf:
            try:
                n = os.write(fd, self.stdin_buf[:65536])
            except BlockingIOError:
                break
            except OSError:
                # The reader is gone (EPIPE): nothing more will be consumed.
                self.stdin_buf.clear()
                break
            del self.stdin_buf[:n]
        if not self.stdin_buf and self.stdin_eof:
            self._close_stdin()
        else:
            self._update_mask(fd)
        self._throttle(len(self.stdin_buf) > STDIN_HIGH_WATER)

    def _throttle(self, on: bool) -> None:
        """Backpressure: stop reading the attached clients while stdin is backed up."""
        if on == self.throttled:
            return
        self.throttled = on
        for fd, c in self.clients.items():
            if c.stdin:
                self.poll.register(fd, 0 if on else select.POLLIN)

    def _close_stdin(self) -> None:
        self.stdin_buf.clear()
        self.stdin_eof = False
        if self.in_fd >= 0:
            try:
                self.poll.unregister(self.in_fd)
            except (KeyError, ValueError):
                pass
            os.close(self.in_fd)
            self.in_fd = -1

    def _resize(self, words: list[str]) -> None:
        if self.pty_fd < 0 or len(words) != 2:
            return
        from portique.linux.tty import set_winsize

        try:
            set_winsize(self.pty_fd, int(words[0]), int(words[1]))
        except OSError:
            pass

    # ----------------------------------------------------------- healthcheck

    def _probe_interval(self) -> float:
        """dockerd's: the start interval while within the start period, else the interval."""
        assert self.probe is not None
        interval, _timeout, start_period, start_interval = self.probe
        if start_period and time.time() - self.started < start_period:
            return start_interval
        return interval

    def _probe_timeout(self, now: float) -> float:
        """Seconds until the healthcheck needs us (-1: never)."""
        if self.probe is None or self.status is not None:
            return -1.0
        when = self.probe_deadline if self.probe_pid else self.probe_next
        if when == float("inf"):
            return -1.0  # killed: waiting to reap it
        return max(0.0, when - now)

    def _probe_tick(self, now: float) -> None:
        if self.probe is None or self.status is not None:
            return
        if self.probe_pid:
            if now >= self.probe_deadline:
                self._kill_probe()
            return
        if now < self.probe_next:
            return
        argv = [sys.executable, "-I", "-S", "-c", PROBE_BOOT, "\n".join(sys.path)]
        argv += [f"{k}={self.args[k]}" for k in ("root", "runroot", "id")]
        try:
            self.probe_pid = os.posix_spawn("/proc/self/exe", argv, {"PATH": os.defpath})
        except OSError:
            self.probe_next = now + self._probe_interval()
            return
        self.probe_deadline = now + self.probe[1] + PROBE_GRACE

    def _record_kill(self, sig: int) -> None:
        """A stop's grace ran out: dockerd's `kill` event with signal 9."""
        from portique.engine import dblite, eventlog

        try:
            conn = dblite.connect(self.args["root"])
            try:
                attrs = dblite.event_attributes(conn, self.id)
            finally:
                conn.close()
        except Exception:  # an event must not break the stop
            return
        if attrs is not None:
            line = eventlog.container_line(self.id, "kill", attrs, time.time_ns(), signal=str(sig))
            eventlog.append_line(self.args["root"], line)

    def _kill_probe(self) -> None:
        if self.probe_pid:
            try:
                # Our child, not yet reaped: the pid cannot have been reused.
                os.kill(self.probe_pid, _signal.SIGKILL)
            except OSError:
                pass
            self.probe_deadline = float("inf")  # reaped with the others

    def _reap(self) -> None:
        for _ in range(1000):
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.probe_pid and self.probe is not None:
                self.probe_pid = 0
                self.probe_next = time.monotonic() + self._probe_interval()
            if pid == self.pid:
                code = os.waitstatus_to_exitcode(status)
                # Killed by signal N: Docker reports 128 + N (137 for SIGKILL).
                self.status = 128 - code if code < 0 else code

    # ----------------------------------------------------------------- loop

    def run(self) -> int:
        self._reap()  # the init may have exited before we were exec'd
        # While held (foreground run), even a finished container waits for its
        # attach: the output is still in the pipes and the exit code is owed.
        while self.status is None or self.hold_until:
            timeout = -1.0
            now = time.monotonic()
            if self.hold_until:
                timeout = max(0.0, self.hold_until - now)
            if self.kill_deadline:
                t = max(0.0, self.kill_deadline - now)
                timeout = t if timeout < 0 else min(timeout, t)
            t = self._probe_timeout(now)
            if t >= 0:
                timeout = t if timeout < 0 else min(timeout, t)
            events = self.poll.poll(None if timeout < 0 else int(timeout * 1000) + 1)
            for fd, ev in events:
                if fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 512)
                    except OSError:
                        pass
                    self._reap()
                elif fd == self.listen.fileno():
                    self._accept()
                elif fd in self.clients:
                    self._client_readable(self.clients[fd])
                else:
                    if ev & (select.POLLOUT | select.POLLERR) and fd == self._stdin_fd():
                        self._flush_stdin()
                    if (
                        ev & (select.POLLIN | select.POLLHUP | select.POLLERR)
                        and fd in self._output_fds()
                    ):
                        self._pump(fd)
            now = time.monotonic()
            if self.hold_until and now >= self.hold_until:
                self._start_reading()
            if self.kill_deadline and now >= self.kill_deadline:
                self.kill_deadline = 0.0
                if self._signal(_signal.SIGKILL):
                    self._record_kill(int(_signal.SIGKILL))
            self._probe_tick(now)
        self._kill_probe()  # the container is gone: its probe has nothing to say
        self._drain()
        self.log.close()
        return self.status

    def broadcast_exit(self, code: int) -> None:
        msg = st.frame(st.EXIT, str(code).encode())
        for c in list(self.clients.values()):
            if c.mode:
                c.send(msg)
            self._drop(c)

    def wait_restart(self, delay: float) -> bool:
        """Serve clients for `delay` seconds; False when a stop cancels the restart."""
        deadline = time.monotonic() + delay
        for _ in range(100000):
            left = deadline - time.monotonic()
            if left <= 0 or self.stop_requested:
                break
            for fd, _ev in self.poll.poll(int(left * 1000) + 1):
                if fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 512)
                    except OSError:
                        pass
                    self._reap()
                elif fd == self.listen.fileno():
                    self._accept()
                elif fd in self.clients:
                    self._client_readable(self.clients[fd])
        return not self.stop_requested


def _noop(signum: int, frame: object) -> None:
    pass


def parse_args(argv: list[str]) -> dict[str, str]:
    out = {}
    for arg in argv:
        k, _, v = arg.partition("=")
        out[k] = v
    return out


RESTART_MAX_DELAY = 60.0


def restart_delay(
    policy: str, code: int, stop_requested: bool, count: int, ran_for: float
) -> float | None:
    """Seconds before the next run, or None when the policy (`name:max`) says no."""
    name, _, limit_s = policy.partition(":")
    if stop_requested or name in ("", "no"):
        return None
    if name == "on-failure":
        if code == 0:
            return None
        limit = int(limit_s or 0)
        if limit and count >= limit:
            return None
    elif name not in ("always", "unless-stopped"):
        return None
    # Docker's backoff: 100 ms doubling per consecutive quick exit, back to
    # 100 ms after a run of 10 s or more.
    if ran_for >= 10:
        return 0.1
    delay: float = min(RESTART_MAX_DELAY, 0.1 * 2.0 ** min(count, 10))
    return delay


def main(argv: list[str]) -> None:
    serve(parse_args(argv))


def serve(args: dict[str, str], prepare: Callable[[], None] | None = None) -> None:
    """Monitor the container until it exits, then record the exit and apply
    its restart policy. `prepare` (a monitor forked from the warm server,
    engine/forkedmonitor.py) makes this process the asker's before any of
    that work: deferred until then, so the idle monitor never pays for it."""
    import gc

    mon = Monitor(args)
    # Nothing allocated from here on is cyclic garbage worth scanning for.
    gc.freeze()
    code = mon.run()
    if prepare is not None:
        prepare()
    # Record the exit and answer the waiters with bare sqlite3 first; the
    # engine proper (runtime, cgroups, images) is loaded only for clean-up.
    from portique.engine import dblite

    cid = args["id"]
    oom = dblite.read_oom_count(args.get("oom", "")) > 0
    conn = dblite.connect(args["root"])
    flags = dblite.stop_flags(conn, cid)
    if flags is None:  # removed under us (rm -f)
        mon.broadcast_exit(code)
        from portique.engine import lifecycle

        lifecycle.cleanup_after_exit(_engine(args), cid, args.get("net") == "1")
        os._exit(0)
    stop_requested = mon.stop_requested or flags[0]
    ran_for = time.time() - float(args.get("started", "0") or 0)
    policy = dblite.restart_policy(conn, cid) or args.get("restart", "")
    delay = restart_delay(policy, code, stop_requested, flags[1], ran_for)
    attrs = _record_die(conn, args, code, oom)
    if delay is None:
        removed = None
        if args.get("autoremove") == "1":
            removed = dblite.delete_row(conn, cid)
            from portique import faults

            faults.point("monitor.autoremove-row-deleted")
        else:
            dblite.record_exit(conn, cid, code, oom)
        conn.close()
        from portique.engine import lifecycle

        if removed is None:
            mon.broadcast_exit(code)
            lifecycle.cleanup_after_exit(_engine(args), cid, args.get("net") == "1")
            os._exit(0)
        # --rm: told once what anyone can see of it is gone (`run --rm` returns
        # then), its runtime state, cgroups and files removed after.
        eng = _engine(args)
        try:
            entry = lifecycle.remove_after_exit(eng, cid, removed, args.get("net") == "1")
        finally:
            if attrs is not None:
                # destroyed once its endpoints and volumes went, as dockerd tells it.
                from portique.engine import eventlog

                line = eventlog.container_line(cid, "destroy", attrs, time.time_ns())
                eventlog.append_line(args["root"], line)
            mon.broadcast_exit(code)
        lifecycle.purge(eng, cid, entry)
        os._exit(0)
    conn.close()
    from portique.engine import lifecycle

    lifecycle.finish_for_restart(_engine(args), mon, args, code, oom, delay)


def _record_die(conn: sqlite3.Connection, args: dict[str, str], code: int, oom: bool) -> str | None:
    """The `oom` and `die` events, before anyone learns of the exit; returns the
    container's event attributes (JSON text), None when it is gone."""
    from portique.engine import dblite, eventlog

    attrs = dblite.event_attributes(conn, args["id"])
    if attrs is None:
        return None
    now = time.time_ns()
    if oom:
        eventlog.append_line(args["root"], eventlog.container_line(args["id"], "oom", attrs, now))
    line = eventlog.container_line(args["id"], "die", attrs, now, exitCode=str(code))
    eventlog.append_line(args["root"], line)
    for name in dblite.volumes_of(conn, args["id"]):
        try:
            line = eventlog.volume_unmount_line(name, args["id"], time.time_ns())
        except ValueError:
            continue
        eventlog.append_line(args["root"], line)
    return attrs


def _engine(args: dict[str, str]) -> Engine:
    """The engine proper, for the clean-up after the exit was recorded."""
    from pathlib import Path

    from portique.engine.engine import Engine

    return Engine(Path(args["root"]), Path(args["runroot"]))


if __name__ == "__main__":
    main(sys.argv[1:])
