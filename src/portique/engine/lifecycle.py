"""Starting a container under its monitor, and what happens when it exits.

The start protocol (CLI process C, monitor M, container init I):

    C: fork -> child: setsid, fork again -> M (the middle child exits at once,
       so M is nobody's zombie and outlives C)
    M: stdio to /dev/null (C's pipes must not stay open), PR_SET_CHILD_SUBREAPER
       (I reparents to M whatever the runtime's intermediate processes do),
       listen on <run_dir>/m.sock, mount + write the bundle, rt.create with
       pipes (or a console socket for -t), loopback up for --network none,
       rt.start, record "running" in the DB, then one status line to C over a
       CLOEXEC pipe ("ok <pid>" or "err <exit code> <message>")
    M: exec a fresh `python -I -S` on engine/monitor.py with the fds it keeps,
       so the long-lived process carries none of the CLI's modules (the
       same interpreter file, through /proc/self/exe: linux/selfexe.py).
    C: reads the status line; prints the id or the error.

On failure before the status line M undoes everything it did (ExitStack:
runtime state, cgroup, rootfs mount) and leaves the DB row "created" or
"exited". When I exits, monitor.py calls `finish`, which records the exit
(OOMKilled from the cgroup before the runtime deletes it), unmounts, and
applies the restart policy: a restart runs the same `_launch_in_monitor` in
M and re-execs the monitor.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from portique.engine import db
from portique.engine.paths import ContainerPaths
from portique.engine.state import Event, Status
from portique.errors import (
    CommandNotExecutable,
    CommandNotFound,
    InvalidState,
    PortiqueError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from portique.engine.engine import Engine
    from portique.engine.monitor import Monitor
    from portique.engine.prefork import Forked

# A warm worker (portique/warm) sets this: the monitor is then forked from the
# warm server itself (engine/forkedmonitor.py), sharing its pages, instead of
# from this process with an exec of a fresh interpreter. Called as
# (root, runroot, cid, status_w, hold); raises OSError when it cannot, and
# returns False when it started nothing (then the monitor starts as without it).
MONITOR_SPAWNER: Callable[[Path, Path, str, int, bool], bool | None] | None = None

# A warm worker also sets this one: a monitor asked for before its container
# exists (prefork.fork_early), so that the warm server forks it, and it makes
# ready, while the row is made. Called as (root, runroot, status_w, go_r, hold);
# the monitor reads the id from `go_r` (end-of-file: no container after all).
# Returns what to call, before the id is sent, for the server's answer (it
# raises OSError when no monitor was started).
EARLY_SPAWNER: Callable[[Path, Path, int, int, bool], Callable[[], None]] | None = None

MONITOR_BOOT = (
    "import sys;sys.path[:0]=sys.argv[1].split('\\n');"
    "from portique.engine.monitor import main;main(sys.argv[2:])"
)


def open_runtime(paths: ContainerPaths) -> Any:
    """The container's runtime: the library, or the OCI runtime `--runtime` named."""
    from portique.engine.foreign_runtime import open_for

    return open_for(paths)


# ---------------------------------------------------------------- CLI side


def start(eng: Engine, cid: str, *, hold: bool = False) -> int:
    """Start container `cid` under a new monitor; returns the init's host pid.

    `hold`: the monitor waits (up to 10 s) for an attach before reading the
    container's output, so a foreground `run` misses nothing.
    """
    return launch(eng, cid, hold=hold)


def launch(eng: Engine, cid: str, *, hold: bool = False, forked: Forked | None = None) -> int:
    """start(); `forked`: the monitor prefork.fork_early made for this start, told
    `cid` now."""
    paths = eng.paths(cid)
    paths.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if forked is not None:
        return forked.go(cid)
    r, w = os.pipe2(os.O_CLOEXEC)
    if MONITOR_SPAWNER is not None:
        try:
            started = MONITOR_SPAWNER(eng.root, eng.runroot, cid, w, hold) is not False
        except BaseException:
            os.close(w)
            os.close(r)
            raise
        if started:
            os.close(w)
            return read_status(r)
        # False: the warm process could not even ask (its zygote is gone), so
        # nothing was started: start the monitor as without one.
    fork_monitor(eng, w, hold, lambda: cid, close=r)
    os.close(w)
    return read_status(r)


def fork_monitor(
    eng: Engine, status_w: int, hold: bool, cid_of: Callable[[], str], *, close: int
) -> None:
    """Fork the monitor (setsid, then a second fork so that it is nobody's zombie);
    it runs _monitor_entry for the id `cid_of()` returns, or exits at once on ""."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 125
        try:
            os.close(close)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            cid = cid_of()
            if not cid:
                os._exit(0)  # the command ended before its container existed
            _monitor_entry(eng.root, eng.runroot, cid, status_w, hold)
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                import traceback

                traceback.print_exc()
                os.write(status_w, f"err 125 {exc}".encode()[:4000])
        os._exit(code)
    os.waitpid(pid, 0)


def read_status(r: int) -> int:
    with os.fdopen(r, "rb") as f:
        return parse_status(f.read(8192).decode("utf-8", "replace"))


def monitor_name(cid: str) -> str:
    """The comm (/proc/PID/comm, 15 characters) of a monitor forked from a warm server."""
    return f"pqm-{cid[:11]}"


def parse_status(msg: str) -> int:
    kind, _, rest = msg.partition(" ")
    if kind == "ok":
        return int(rest.split()[0])
    if kind == "err":
        code_s, _, text = rest.partition(" ")
        code = int(code_s) if code_s.isdigit() else 125
        if code == 127:
            raise CommandNotFound(text)
        if code == 126:
            raise CommandNotExecutable(text)
        raise PortiqueError(text or "container failed to start")
    raise PortiqueError("the container's monitor died before it reported (see its monitor.err)")


# ------------------------------------------------------------ monitor side


def _quiet_stdio(paths: ContainerPaths) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    err = os.open(paths.run_dir / "monitor.err", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(err, 2)
    os.close(null)
    os.close(err)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115


def _listen(paths: ContainerPaths) -> int:
    import socket

    # Bind through the directory fd: the full path may exceed sun_path's 108 bytes.
    dfd = os.open(paths.run_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        name = f"/proc/self/fd/{dfd}/m.sock"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(paths.socket)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.bind(name)
        os.chmod(paths.socket, 0o600)
        s.listen(16)
        return s.detach()
    finally:
        os.close(dfd)


def _monitor_entry(root: Path, runroot: Path, cid: str, status_w: int, hold: bool) -> NoReturn:
    from portique.engine.engine import Engine
    from portique.linux.prctl import set_child_subreaper

    # A fresh Engine: nothing the CLI process opened is used across the fork.
    eng = Engine(root, runroot)
    paths = eng.paths(cid)
    _quiet_stdio(paths)
    set_child_subreaper()
    listen_fd = _listen(paths)
    _launch_in_monitor(eng, cid, listen_fd, status_w, hold=hold, restart_count=None)


def _launch_in_monitor(
    eng: Engine,
    cid: str,
    listen_fd: int,
    status_w: int,
    *,
    hold: bool,
    restart_count: int | None,
    handoff: Callable[[dict[str, str], list[int]], NoReturn] | None = None,
    monitor_pid: int = 0,
) -> NoReturn:
    """Create and start the container, then exec the monitor (or report and exit).

    `handoff` (a forked monitor's creator, engine/forkedmonitor.py) gets the
    monitor's arguments and fds instead of the exec; `monitor_pid` is then
    the monitor's pid, this process's parent."""
    paths = eng.paths(cid)
    conn = eng.db
    try:
        row = db.get_container(conn, cid)
        if row is None:
            raise InvalidState(f"container {cid} was removed")
        fds, pid, started, oom_file = _create_and_start(
            eng, row, paths, restart_count, monitor_pid or os.getpid()
        )
    except PortiqueError as exc:
        _report(status_w, f"err {exc.exit_code} {exc}")
        _record_failure(conn, cid, exc)
        os._exit(exc.exit_code)
    except Exception as exc:  # an engine bug or an OSError: one line, exit 125
        import traceback

        traceback.print_exc()
        _report(status_w, f"err 125 {exc}")
        _record_failure(conn, cid, exc)
        os._exit(125)
    eng.close()
    _report(status_w, f"ok {pid}")
    if status_w >= 0:
        os.close(status_w)
    args = {
        "id": cid,
        "root": str(eng.root),
        "runroot": str(eng.runroot),
        "pid": str(pid),
        "listen": str(listen_fd),
        "log": str(paths.log),
        **_log_args(row.config["HostConfig"].get("LogConfig")),
        "hold": "1" if hold else "0",
        "stdin_once": "1" if row.config["Config"].get("StdinOnce") else "0",
        "restart": _policy_arg(row),
        "started": repr(started),
        "autoremove": "1" if row.config["HostConfig"].get("AutoRemove") else "0",
        "oom": oom_file,
        "net": "1" if _uses_network_layer(row) else "0",
        "health": _health_arg(row),
        **{k: str(v) for k, v in fds.items()},
    }
    keep = [listen_fd, *fds.values()]
    if handoff is not None:
        handoff(args, keep)
    for fd in keep:
        os.set_inheritable(fd, True)
    from portique.linux.fs import close_other_fds

    close_other_fds(keep)
    argv = [sys.executable, "-I", "-S", "-c", MONITOR_BOOT, "\n".join(sys.path)]
    argv += [f"{k}={v}" for k, v in args.items()]
    # The file we run, not sys.executable: the monitor restarts containers, so
    # it keeps our sealed copy or read-only mount (linux/selfexe.py).
    from portique.linux.selfexe import exec_self

    exec_self(argv)


def _report(status_w: int, msg: str) -> None:
    if status_w >= 0:
        with contextlib.suppress(OSError):
            os.write(status_w, msg.encode()[:4000])


def _record_failure(conn: Any, cid: str, exc: BaseException) -> None:
    with contextlib.suppress(Exception):
        code = exc.exit_code if isinstance(exc, PortiqueError) else 125
        with db.transaction(conn):
            # A container that never ran stays "created" (Docker shows the error
            # in State.Error); one that ran before is "exited" (state.py's table).
            db.transition(
                conn, cid, Event.START_FAILED, error=str(exc), exit_code=code, pid=0, monitor_pid=0
            )


def _create_and_start(
    eng: Engine,
    row: db.ContainerRow,
    paths: ContainerPaths,
    restart_count: int | None,
    monitor_pid: int,
) -> tuple[dict[str, int], int, float, str]:
    from portique import faults, journal
    from portique.engine import bundle, network, stdio

    conn = eng.db
    from portique.engine.foreign_runtime import mark

    mark(paths, str(row.config["HostConfig"].get("Runtime") or ""))
    rt = open_runtime(paths)
    # Until "running" is recorded (the same transaction ends the entry), a death
    # of this monitor leaves an entry whose recovery undoes the half-done start.
    resource = {"type": "container-start", "id": row.id, "host": row.config["HostConfig"]}
    op = journal.Operation.begin(conn, "start", row.id, [resource])
    with ExitStack() as stack:
        stack.callback(op.end)
        early = None
        if network.wants_early_setup(row):
            # Forked first: its endpoints are wired in the namespace it makes
            # while we mount and create. Released after it is reaped (LIFO).
            from portique.engine.earlynet import EarlySetup

            stack.callback(network.release, eng, row.id, row.config["HostConfig"])
            early = EarlySetup(eng, row)
            stack.callback(early.close)
        bundle.prepare(eng, row, stack, netns_path=early.netns if early is not None else "")
        faults.point("monitor.mounted")
        config = row.config["Config"]
        io = stdio.make(
            paths, tty=bool(config.get("Tty")), stdin=bool(config.get("OpenStdin")), stack=stack
        )
        state = rt.create(row.id, paths.dir, **io.runtime_kwargs())
        stack.callback(_force_delete, rt, row.id)
        faults.point("monitor.runtime-created")
        pid = int(state.pid)
        io.after_create()
        if early is not None:
            net_settings = early.finish(pid)
        else:
            net_settings = network.setup(eng, row, pid, stack)
        rt.start(row.id)
        faults.point("monitor.started")
        fds = io.monitor_fds()
        now = time.time()
        fields: dict[str, Any] = {
            "pid": pid,
            "started_at": now,
            "finished_at": 0.0,
            "exit_code": 0,
            "error": "",
            "oom_killed": False,
            "monitor_pid": monitor_pid,
            "stop_requested": False,
        }
        if restart_count is not None:
            fields["restart_count"] = restart_count
        with db.transaction(conn):
            if db.transition(conn, row.id, Event.STARTED, **fields) is None:
                raise InvalidState(f"container {row.id} was removed while starting")
            new_config = {**row.config, "NetworkSettings": net_settings}
            if "Health" in row.config or row.config["Config"].get("Healthcheck"):
                from portique.engine.health import reset

                new_config["Health"] = reset(row.config)
            db.update_config(conn, row.id, new_config)
            op.end_in(conn)
        stack.pop_all()
    from portique.engine import events
    from portique.engine.volumes import mount_events

    mount_events(eng, row.id, row.config.get("MountPoints") or (), "mount")
    for net_name, ep in (net_settings.get("Networks") or {}).items():
        events.network(eng, str(ep.get("NetworkID") or ""), net_name, "connect", container=row.id)
    events.container(eng, row, "start")  # row: read at this launch, so its name is current
    return fds, pid, now, _oom_file(row.id)


def _health_arg(row: db.ContainerRow) -> str:
    from portique.engine.health import monitor_arg

    return monitor_arg(row.config["Config"])


def _uses_network_layer(row: db.ContainerRow) -> bool:
    from portique.engine.network import needs_release

    return needs_release(row.config)


def _policy_arg(row: db.ContainerRow) -> str:
    policy = row.config["HostConfig"].get("RestartPolicy") or {}
    return f"{policy.get('Name') or 'no'}:{int(policy.get('MaximumRetryCount') or 0)}"


def _oom_file(cid: str) -> str:
    """The file whose oom_kill counter the monitor reads when the container exits."""
    try:
        from portique.runtime.cgroups import open_manager

        dirs = open_manager(f"/portique/{cid}", cid).dirs()
    except Exception:
        return ""
    if "" in dirs:  # cgroup v2: one unified directory
        return str(dirs[""] / "memory.events")
    for mountpoint, d in dirs.items():
        if "memory" in os.path.basename(mountpoint).split(","):
            return str(d / "memory.oom_control")
    return ""


def _log_args(log_config: Any) -> dict[str, str]:
    """--log-driver/--log-opt for the monitor's LogWriter."""
    from portique.engine.run_opts import rotation_of

    rot = rotation_of(log_config if isinstance(log_config, dict) else None)
    none = isinstance(log_config, dict) and log_config.get("Type") == "none"
    return {
        "log_max_size": str(rot.max_size),
        "log_max_file": str(rot.max_file),
        "log_none": "1" if none else "0",
    }


def _force_delete(rt: Any, cid: str) -> None:
    with contextlib.suppress(Exception):
        rt.delete(cid, force=True)


def cleanup_after_exit(eng: Engine, cid: str, net: bool) -> None:
    """After the exit was recorded (the container stays): runtime state, cgroup,
    rootfs mount, network endpoints."""
    paths = eng.paths(cid)
    with contextlib.suppress(Exception):
        cleanup_dead(eng, paths)
    if net:
        from portique.engine.network import _release

        _release(eng, cid)
    with contextlib.suppress(OSError):
        os.unlink(paths.socket)


def remove_after_exit(
    eng: Engine, cid: str, removed: tuple[list[str], dict[str, Any], int], net: bool
) -> int:
    """--rm, once its row is gone (`removed`: its anonymous volumes, HostConfig and
    journal entry, from dblite.delete_row): what anyone can see of the container
    goes now, before its exit is told, and `run --rm` returns at that word. The
    rootfs mount (an `rmi` right after must be able to delete its layers), the
    network endpoints (their addresses and ports), the anonymous volumes. The
    runtime state, cgroups and files, which nothing can see or reuse (they are
    named by the container's id), are `purge`'s, after the exit is told.

    In one transaction the removal's journal entry (about `cid`: what `run --rm`
    waits for) becomes the purge's (about nothing), which a recovery finishes if
    this process dies first; returns that entry's id."""
    from portique import journal

    paths = eng.paths(cid)
    anon, host, entry = removed
    if host.get("PidMode"):
        # Another pid namespace than its own: its processes may outlive its init,
        # and are killed first, as without --rm.
        with contextlib.suppress(Exception):
            cleanup_dead(eng, paths)
    else:
        from portique.engine import bundle

        # Its init is gone, so is every process of its pid namespace: nothing
        # runs in the rootfs (and a busy one is detached, unmount_overlay).
        with contextlib.suppress(Exception):
            bundle.unmount_rootfs(paths)
    if net:
        from portique.engine.network import _release

        _release(eng, cid)
    with contextlib.suppress(OSError):
        os.unlink(paths.socket)
    remove_anonymous_volumes(eng, cid, anon)
    conn = eng.db
    with db.transaction(conn):
        journal.delete(conn, entry)
        resource: dict[str, Any] = {
            "type": "container-remove",
            "id": cid,
            "host": None,
            "volumes": [],
        }
        return journal.insert(conn, "purge", "", [resource])


def purge(eng: Engine, cid: str, entry: int) -> None:
    """The rest of a --rm removal (remove_after_exit), once `run --rm` has its
    answer: runtime state and cgroups, then the container's files; forgets the
    journal `entry` when all went."""
    from portique import faults, journal

    faults.point("monitor.autoremove-told")
    try:
        if finish_removal(eng, cid, None, []):
            journal.forget(eng.db, entry)
    finally:
        eng.close()


def finish_removal(eng: Engine, cid: str, host: Mapping[str, Any] | None, anon: list[str]) -> bool:
    """What a removal does once the row is gone: runtime state and cgroups, network
    endpoints, rootfs mount, files, then the anonymous volumes `anon`. Idempotent;
    False when something must wait (a rootfs that would not unmount). Here, not in
    containers.py, so that a --rm monitor's clean-up loads no more of the engine."""
    from portique import faults

    paths = eng.paths(cid)
    with contextlib.suppress(Exception):
        cleanup_dead(eng, paths, dict(host) if host is not None else None)
    faults.point("rm.cleaned")
    if not remove_files(paths):
        return False
    faults.point("rm.files-removed")
    remove_anonymous_volumes(eng, cid, anon)
    return True


def remove_anonymous_volumes(eng: Engine, cid: str, anon: list[str]) -> None:
    """The anonymous volumes `anon` of removed container `cid`, but those another
    container still uses (--volumes-from)."""
    if not anon:
        return
    from portique.engine.volumes import remove_volume

    for name in anon:
        if any(u != cid for u in db.volume_users(eng.db, name)):
            continue
        with contextlib.suppress(PortiqueError):
            remove_volume(eng, name, force=True)


def finish_for_restart(
    eng: Engine, mon: Monitor, args: dict[str, str], code: int, oom: bool, delay: float
) -> NoReturn:
    """The restart policy wants another run: clean up, wait `delay`, launch again."""
    cid = args["id"]
    paths = eng.paths(cid)
    with contextlib.suppress(Exception):
        cleanup_dead(eng, paths)
    if args.get("net") == "1":
        from portique.engine.network import _release

        _release(eng, cid)
    conn = eng.db
    with db.transaction(conn):
        db.transition(
            conn,
            cid,
            Event.RESTART_PENDING,
            exit_code=code,
            oom_killed=oom,
            finished_at=time.time(),
            pid=0,
            monitor_pid=os.getpid(),
        )
    mon.broadcast_exit(code)
    if mon.wait_restart(delay):
        latest = db.get_container(conn, cid)
        if latest is not None and latest.status == Status.RESTARTING and not latest.stop_requested:
            listen_fd = mon.listen.detach()
            _launch_in_monitor(
                eng, cid, listen_fd, -1, hold=False, restart_count=latest.restart_count + 1
            )
    with contextlib.suppress(InvalidState), db.transaction(conn):
        db.transition(conn, cid, Event.RESTART_CANCELLED)
    mon.broadcast_exit(code)
    with contextlib.suppress(OSError):
        os.unlink(paths.socket)
    os._exit(0)


def remove_files(paths: ContainerPaths) -> bool:
    """Delete the container's directories, never through a rootfs still mounted
    (that would only write whiteouts into the overlay and leave the mount)."""
    from portique.image.snapshots import remove_tree
    from portique.linux.mount import is_mountpoint

    rootfs = paths.dir / "rootfs"
    if rootfs.is_dir() and is_mountpoint(rootfs):
        return False
    shm = paths.dir / "shm"  # --ipc shareable's /dev/shm (bundle.mount_shm)
    if shm.is_dir() and is_mountpoint(shm):
        return False
    # Its upper dir is the container's tree, at any depth. What cannot be removed
    # stays (as volumes.remove_tree, whose module a monitor's clean-up does not load).
    for tree in (paths.dir, paths.run_dir):
        with contextlib.suppress(OSError):
            remove_tree(tree)
    return True


def cleanup_dead(eng: Engine, paths: ContainerPaths, host: dict[str, Any] | None = None) -> None:
    """Undo a start whose monitor died: runtime state, cgroup, mount (and with the
    container's HostConfig, its network endpoints)."""
    rt = open_runtime(paths)
    _force_delete(rt, paths.id)
    if host is not None:
        from portique.engine.network import release

        release(eng, paths.id, host)
    from portique.engine import bundle

    with contextlib.suppress(Exception):
        bundle.unmount_rootfs(paths)


def check_init(eng: Engine, cid: str, pid: int) -> None:
    """InvalidState unless `pid` is still the init of running (or paused) container
    `cid`, as the runtime sees it: the same pid and start time as it recorded."""
    from portique.errors import NotFound

    try:
        state = open_runtime(eng.paths(cid)).state(cid)
    except NotFound:
        state = None
    if state is None or state.pid != pid or str(state.status) not in ("running", "paused"):
        raise InvalidState(f"container {cid[:12]} is not running")


def is_alive(pid: int, cid: str, started_at: float = 0.0) -> bool:
    """Whether `pid` is still the monitor of `cid` (pids get reused).

    After its exec the monitor's command line names the container (a monitor
    forked from a warm server: its comm, `monitor_name`); in the short window
    before it, the process's start time must match the start.
    """
    if pid <= 0:
        return False
    from portique.linux.proc import read_stat

    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read(1 << 16)
        stat = read_stat(pid)
    except (OSError, ValueError):
        return False
    if stat is None or stat.state == "Z":
        return False
    if f"id={cid}".encode() in cmd:
        return True
    try:
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() == monitor_name(cid):
                return True  # a monitor forked from a warm server
    except OSError:
        return False
    try:
        ticks = stat.start_time
        with open("/proc/stat", "rb") as f:
            btime = next(int(ln.split()[1]) for ln in f if ln.startswith(b"btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    began = btime + ticks / os.sysconf("SC_CLK_TCK")
    return started_at == 0.0 or abs(began - started_at) < 10
