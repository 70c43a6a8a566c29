"""`exec`: run another process in a running container, through the runtime library.

The process never gets an fd of ours. Without -t it gets pipes that a relay
thread copies to and from our stdio (engine/relay.py, stdin only with -i)
while `rt.exec` waits and returns its status. With -t the runtime makes a pty
inside the container and sends us the master over a console socket; a forked
child runs the blocking `rt.exec` while we pump our terminal <-> the master.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from portique.engine import db, userdb
from portique.engine import process_opts as opt
from portique.engine.state import Event
from portique.errors import InvalidState, PortiqueError
from portique.oci.value import replace, value
from portique.termio import set_window_size, window_size, write_all

if TYPE_CHECKING:
    from portique.engine.engine import Engine
    from portique.oci.runtime import Process


@value
class ExecRequest:
    argv: tuple[str, ...]
    env: tuple[str, ...] = ()
    user: str = ""
    workdir: str = ""
    tty: bool = False
    stdin: bool = False
    detach: bool = False
    privileged: bool = False
    console_size: tuple[int, int] | None = None  # (rows, columns); else our terminal's


def build_process(eng: Engine, row: db.ContainerRow, req: ExecRequest) -> Process:
    from portique.oci.runtime import Capabilities, User

    paths = eng.paths(row.id)
    # The spec the runtime holds for the container: parsed once, for this
    # process and for the runtime's exec that runs it.
    spec = eng.runtime().spec(row.id)
    base = spec.process
    if base is None:
        raise InvalidState(f"container {row.id[:12]} has no process")
    env = opt.merge_env(base.env, req.env)
    user = base.user
    if req.user:
        u = userdb.lookup(str(paths.dir / "rootfs"), req.user)
        user = User(uid=u.uid, gid=u.gid, additional_gids=u.additional_gids)
        env = (
            opt.merge_env(env, [f"HOME={u.home}"])
            if not any(e.startswith("HOME=") for e in req.env)
            else env
        )
    caps = base.capabilities
    if req.privileged:
        from portique.linux.caps import CAPABILITIES

        allc = tuple(CAPABILITIES)
        caps = Capabilities(bounding=allc, effective=allc, permitted=allc)
    size = req.console_size
    if req.tty and size is None:
        with contextlib.suppress(OSError):
            ts = os.get_terminal_size(sys.stdin.fileno())
            size = (ts.lines, ts.columns)
    if req.tty and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    return replace(
        base,
        args=tuple(req.argv),
        env=tuple(env),
        cwd=req.workdir or base.cwd,
        terminal=req.tty,
        console_size=size,
        user=user,
        capabilities=caps,
    )


def check_request(req: ExecRequest) -> None:
    """What `exec` refuses before it looks at the container (the API's exec
    create checks the same)."""
    from portique.errors import InvalidArgument

    if req.workdir and not req.workdir.startswith("/"):
        raise InvalidArgument(
            f"the working directory '{req.workdir}' is invalid, it needs to be an absolute path"
        )
    opt.parse_user(req.user)
    if not req.argv:
        raise InvalidArgument("exec requires at least one argument (the command)")


def prepare(eng: Engine, ref: str, req: ExecRequest) -> tuple[db.ContainerRow, Process]:
    """The checked request's container (running) and the process to run in it."""
    from portique.engine import containers

    check_request(req)
    row = containers.get_for(eng, ref, Event.EXEC)
    from portique.engine.foreign_runtime import refuse_foreign

    refuse_foreign(eng.paths(row.id), "exec")  # another OCI runtime holds it
    return row, build_process(eng, row, req)


def run_exec(eng: Engine, ref: str, req: ExecRequest) -> int:
    """Run `req` in container `ref` with our stdio; its exit code. (The API's
    exec start hands its own fds: api/exec.py, with `prepare`.)"""
    row, process = prepare(eng, ref, req)
    rt = eng.runtime()
    from portique.engine import events

    exec_id = os.urandom(32).hex()
    words = " ".join(req.argv)
    events.container(eng, row, f"exec_create: {words}", execID=exec_id)
    events.container(eng, row, f"exec_start: {words}", execID=exec_id)
    if req.detach:
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            rt.exec(row.id, replace(process, terminal=False), detach=True, stdio=(null, null, null))
        finally:
            os.close(null)
        return 0
    code = 126
    try:
        if not req.tty:
            from portique.engine.relay import Relay

            with Relay(stdin=req.stdin) as relay:
                code = int(
                    rt.exec(row.id, process, stdio=relay.container_stdio(), on_pid=relay.start)
                )
        else:
            code = _exec_tty(eng, row, process, req)
        return code
    finally:
        events.container(eng, row, "exec_die", execID=exec_id, exitCode=str(code))


def _exec_tty(eng: Engine, row: db.ContainerRow, process: Process, req: ExecRequest) -> int:
    """`exec -t` for the CLI: `spawn`'s pty (made inside the container: not
    even the runtime's helper holds our terminal), pumped to our terminal."""
    from portique.termio import raw_terminal

    spawned = spawn(eng, row, process, stdin=req.stdin)
    in_fd = sys.stdin.fileno() if req.stdin else -1
    try:
        with raw_terminal(in_fd) if in_fd >= 0 else contextlib.nullcontext():
            _pump_tty(spawned.master, in_fd)
    finally:
        os.close(spawned.master)
    return finish(spawned)


def _receive_master(listener: socket.socket, pid: int, err_r: int) -> int | None:
    for _ in range(600):
        ready, _, _ = select.select([listener.fileno(), err_r], [], [], 0.1)
        if listener.fileno() in ready:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)
            for extra in fds[1:]:
                os.close(extra)
            return fds[0] if fds else None
        if err_r in ready:
            return None
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return None
    return None


def _child_result(pid: int, err_r: int) -> int:
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    with os.fdopen(err_r, "rb") as f:
        msg = f.read(4096).decode("utf-8", "replace")
    if msg:
        ecode, _, text = msg.partition(" ")
        n = int(ecode) if ecode.isdigit() else 125
        if n == 127:
            from portique.errors import CommandNotFound

            raise CommandNotFound(text)
        if n == 126:
            from portique.errors import CommandNotExecutable

            raise CommandNotExecutable(text)
        raise PortiqueError(text)
    return 128 - code if code < 0 else code


def _set_size(master: int, term_fd: int) -> None:
    size = window_size(term_fd)
    if size is not None:
        set_window_size(master, *size)


def _pump_tty(master: int, in_fd: int) -> None:
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old = signal.set_wakeup_fd(wake_w)
    prev = signal.signal(signal.SIGWINCH, lambda s, f: None)
    term = in_fd if in_fd >= 0 and os.isatty(in_fd) else -1
    if term >= 0:
        _set_size(master, term)
    try:
        for _ in range(1 << 40):
            fds: Sequence[int] = [master, wake_r] + ([in_fd] if in_fd >= 0 else [])
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if wake_r in ready:
                with contextlib.suppress(OSError):
                    os.read(wake_r, 256)
                if term >= 0:
                    _set_size(master, term)
            if in_fd >= 0 and in_fd in ready:
                data = os.read(in_fd, 65536)
                if not data:
                    in_fd = -1
                else:
                    write_all(master, data)
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    return
                write_all(1, data)
    finally:
        signal.set_wakeup_fd(old)
        signal.signal(signal.SIGWINCH, prev)
        os.close(wake_r)
        os.close(wake_w)


# ------------------------------------------------------- for a face's own fds


@value
class Spawned:
    """An exec running in a forked child of ours (`spawn`): its fds to pump,
    and what `finish` reads its exit code from."""

    pid: int
    report_r: int
    master: int = -1  # with a tty: the pty's master
    stdin_w: int = -1  # without: the process's stdin (with `stdin`), stdout, stderr
    stdout_r: int = -1
    stderr_r: int = -1


def spawn(eng: Engine, row: db.ContainerRow, process: Process, *, stdin: bool) -> Spawned:
    """Start `process` (from `prepare`) in the container, from a forked child
    that runs the blocking `rt.exec`, and return at once: the API's exec start
    pumps the fds itself. A tty process gets a pty made inside the container;
    else pipes made here (never a caller's fd). `finish` reaps the child."""
    rt = eng.runtime()
    if process.terminal:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="portique-exec-") as tmp:
            path = Path(tmp) / "console.sock"
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            listener.bind(str(path))
            listener.listen(1)
            r, w = os.pipe2(os.O_CLOEXEC)
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                listener.close()
                os.close(r)
                null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                _exec_child(
                    w,
                    lambda: rt.exec(row.id, process, console_socket=path, stdio=(null, null, null)),
                )
            os.close(w)
            master = _receive_master(listener, pid, r)
            listener.close()
            if master is None:
                finish(Spawned(pid, r))
                raise PortiqueError("exec: the runtime sent no terminal")
            return Spawned(pid, r, master=master)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    in_r, in_w = os.pipe2(os.O_CLOEXEC) if stdin else (null, -1)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        for fd in (in_w, out_r, err_r, r):
            if fd >= 0:
                os.close(fd)
        _exec_child(w, lambda: rt.exec(row.id, process, stdio=(in_r, out_w, err_w)))
    for fd in {in_r, out_w, err_w, w, null}:
        os.close(fd)
    return Spawned(pid, r, stdin_w=in_w, stdout_r=out_r, stderr_r=err_r)


def _exec_child(report_w: int, run: Any) -> NoReturn:  # pragma: no cover - child
    code = 125
    try:
        code = int(run())
    except PortiqueError as exc:
        with contextlib.suppress(BaseException):
            os.write(report_w, f"{exc.exit_code} {exc}".encode()[:4000])
        code = exc.exit_code
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            os.write(report_w, f"125 {exc}".encode()[:4000])
    os._exit(code)


def finish(spawned: Spawned) -> int:
    """Reap `spawn`'s child: the process's exit code, or its error raised.
    (The fds to pump are the caller's to close.)"""
    return _child_result(spawned.pid, spawned.report_r)
