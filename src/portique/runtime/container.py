"""The runtime library: create, start, run, state, list, kill, delete, pause,
resume, exec, ps and stats over OCI bundles.

Each operation refreshes the container's status from facts, checks the
transition table (runtime/state.py), acts, then persists. Creation forks a
stage-1 child and the init (runtime/init.py) and drives them over the sync
protocol (runtime/sync.py); every step of a failed create is undone by an
ExitStack.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import signal
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portique.errors import (
    CommandNotExecutable,
    CommandNotFound,
    Conflict,
    InvalidArgument,
    InvalidState,
    NotFound,
    PortiqueError,
)
from portique.linux import proc as procfs
from portique.runtime import state as st
from portique.runtime.state import Op, State, Status

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from portique.oci.runtime import Process, Spec
    from portique.runtime import sync
    from portique.runtime.cgroups import CgroupManager

DEFAULT_STATE_ROOT = Path("/run/portique-runtime")
_MAX_ID = 1024
# A bound on how long create waits for each message of the init: hooks may
# take a while, so be generous; a dead init closes the socket at once anyway.
_STEP_TIMEOUT = 600.0


class ContainerError(PortiqueError):
    """A container operation failed in the kernel, the init or a hook."""


def _check_id(container_id: str) -> None:
    ok = (
        0 < len(container_id) <= _MAX_ID
        and container_id not in (".", "..")
        and all(c.isalnum() or c in "_+-." for c in container_id)
        and container_id.isascii()
    )
    if not ok:
        raise InvalidArgument(f"invalid container id {container_id!r}")


def _now_rfc3339() -> str:
    # time, not datetime: one import less on the start path.
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _failed_to_error(msg: sync.Failed) -> PortiqueError:
    if msg.error == "notfound":
        return CommandNotFound(msg.message)
    if msg.error == "notexec":
        return CommandNotExecutable(msg.message)
    return ContainerError(msg.message)


class Runtime:
    """OCI runtime operations; state lives under `state_root/<id>/`."""

    def __init__(self, state_root: Path = DEFAULT_STATE_ROOT) -> None:
        self.state_root = Path(state_root)
        # One manager per container: opening one parses mountinfo (v1).
        self._managers: dict[tuple[str | None, str], CgroupManager] = {}

    # ------------------------------------------------------------ helpers

    def _dir(self, container_id: str) -> Path:
        _check_id(container_id)
        return self.state_root / container_id

    def _load(self, container_id: str) -> State:
        d = self._dir(container_id)
        try:
            return st.read_state(d)
        except FileNotFoundError:
            raise NotFound(f"container {container_id} does not exist") from None

    def _manager(self, s: State) -> CgroupManager:
        key = (s.cgroups_path, s.id)
        if key not in self._managers:
            from portique.runtime.cgroups import open_manager

            self._managers[key] = open_manager(s.cgroups_path, s.id)
        return self._managers[key]

    def _refresh(self, s: State) -> State:
        alive = s.pid > 0 and procfs.is_alive(s.pid, s.start_time or None)
        frozen = False
        if alive and s.status is not Status.CREATING:
            try:
                frozen = self._manager(s).is_frozen()
            except (PortiqueError, OSError):
                frozen = False
        status = st.derive_status(
            s.status,
            init_alive=alive,
            fifo_exists=st.exists_fifo(self._dir(s.id)),
            frozen=frozen,
        )
        if status is s.status:
            return s
        return _replace(s, status=status)

    @contextmanager
    def _locked(self, container_id: str) -> Iterator[None]:
        """Serialise state changes of one container across processes (flock
        on its state directory); the operation re-reads the state inside."""
        import fcntl

        try:
            fd = os.open(self._dir(container_id), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"container {container_id} does not exist") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _spec_of(self, s: State) -> Spec:
        from portique.oci.runtime import parse_spec

        return parse_spec(s.config)

    # ------------------------------------------------------------ create

    def create(
        self,
        container_id: str,
        bundle: Path,
        *,
        console_socket: Path | None = None,
        pid_file: Path | None = None,
        no_pivot: bool = False,
        preserve_fds: int = 0,
        stdio: tuple[int, int, int] | None = None,
    ) -> State:
        s, chan = self._create(
            container_id, bundle, console_socket, pid_file, no_pivot, preserve_fds, stdio
        )
        chan.close()
        return s

    def _create(
        self,
        container_id: str,
        bundle: Path,
        console_socket: Path | None,
        pid_file: Path | None,
        no_pivot: bool,
        preserve_fds: int,
        stdio: tuple[int, int, int] | None,
    ) -> tuple[State, sync.Channel]:
        from portique.oci.runtime import load_spec_and_json
        from portique.runtime import sync

        state_dir = self._dir(container_id)
        bundle = Path(os.path.abspath(bundle))
        spec, raw_config = load_spec_and_json(bundle)
        if spec.process is None:
            raise InvalidArgument("config.json: process: required to create a container")
        rootfs = Path(os.path.normpath(bundle / spec.root.path))
        if not rootfs.is_dir():
            raise InvalidArgument(f"rootfs {rootfs} does not exist or is not a directory")
        if spec.process.terminal and console_socket is None:
            raise InvalidArgument("process.terminal needs a console socket (--console-socket)")
        if spec.process.apparmor_profile or spec.process.selinux_label:
            _warn("apparmorProfile and selinuxLabel are ignored: no LSM support in this runtime")
        if preserve_fds < 0:
            raise InvalidArgument("preserve-fds must not be negative")
        _refuse_host_uts(spec)

        self.state_root.mkdir(parents=True, exist_ok=True, mode=0o711)
        try:
            state_dir.mkdir(mode=0o711)  # exclusive: a duplicate id fails here
        except FileExistsError:
            raise Conflict(f"container {container_id} already exists") from None

        with ExitStack() as undo:
            undo.callback(_rmtree, state_dir)
            fifo = st.fifo_path(state_dir)
            os.mkfifo(fifo, 0o600)
            manager, cgroup_info = self._setup_cgroup(spec, container_id, undo)
            self._managers[(spec.linux.cgroups_path, container_id)] = manager
            base = State(
                id=container_id,
                status=Status.CREATING,
                pid=0,
                bundle=bundle,
                rootfs=rootfs,
                created=_now_rfc3339(),
                annotations=dict(spec.annotations),
                owner="",
                cgroups_path=spec.linux.cgroups_path,
                config=raw_config,
            )
            # Written before anything is forked: if this process dies mid-create,
            # the leftover is a "creating" container whose init is not alive,
            # i.e. stopped, which `delete` (cgroup, state) can clean up.
            st.write_state(state_dir, base)
            console = (
                _connect_console_socket(console_socket, undo) if spec.process.terminal else None
            )
            # What the init needs, imported here once: a long-lived caller
            # (a monitor, an API server) then forks them ready, instead of
            # every init importing them again.
            import portique.runtime.devices
            import portique.runtime.hooks
            import portique.runtime.rootfs  # noqa: F401
            from portique.runtime.init import InitConfig, stage1

            cfg = InitConfig(
                spec=spec,
                process=spec.process,
                rootfs=str(rootfs),
                bundle=str(bundle),
                fifo=str(fifo),
                cgroup=cgroup_info,
                no_pivot=no_pivot,
                preserve_fds=preserve_fds,
                stdio=stdio,
            )
            parent, child = sync.Channel.pair()
            undo.callback(parent.close)
            pid1 = _fork()
            if pid1 == 0:
                parent.close()
                stage1(child, cfg, manager.join)
            child.close()
            undo.callback(_kill_and_reap, pid1)
            parent.send(sync.Go())
            init_pid = self._drive_create(parent, pid1, spec, base, console, undo)
            start_time = procfs.start_time(init_pid) or 0
            s = _replace(base, status=Status.CREATED, pid=init_pid, start_time=start_time)
            st.write_state(state_dir, s)
            if pid_file is not None:
                from portique.fileio import atomic_write

                atomic_write(Path(os.path.abspath(pid_file)), f"{init_pid}".encode())
            undo.pop_all()
        return s, parent

    def _setup_cgroup(
        self, spec: Spec, container_id: str, undo: ExitStack
    ) -> tuple[CgroupManager, Any]:
        from portique.runtime.cgroups import open_manager
        from portique.runtime.rootfs import CgroupInfo

        manager = open_manager(spec.linux.cgroups_path, container_id)
        manager.create()
        undo.callback(manager.destroy)
        from portique.runtime.devices import with_device_rules

        manager.apply(with_device_rules(spec.linux.resources, spec.linux.devices))
        dirs = manager.dirs()
        if manager.version == "v2":
            info = CgroupInfo("v2")
        else:
            info = CgroupInfo("v1", tuple((Path(mp).name, str(d)) for mp, d in dirs.items()))
        return manager, info

    def _drive_create(
        self,
        chan: sync.Channel,
        pid1: int,
        spec: Spec,
        base: State,
        console: Any,
        undo: ExitStack,
    ) -> int:
        """Answer the children until the init says Ready; returns the init's pid."""
        from portique.runtime import sync
        from portique.runtime.hooks import run_hooks

        init_pid = 0
        for _ in range(16):  # the protocol has fewer steps than this
            msg, fds = chan.recv(_STEP_TIMEOUT)
            if isinstance(msg, sync.MapIds):
                _write_id_maps(msg.pid, spec)
                chan.send(sync.MapIdsDone())
            elif isinstance(msg, sync.InitPid):
                init_pid = msg.pid
                undo.callback(_kill_and_reap, init_pid)
                _reap(pid1)
            elif init_pid == 0 and isinstance(msg, (sync.RunHooks, sync.Ready)):
                raise ContainerError(f"container init: {msg.kind} before its pid")
            elif isinstance(msg, sync.RunHooks):
                # The spec's lifecycle: "creating" ends when the environment
                # exists (step 2); prestart, createRuntime and createContainer
                # hooks (steps 3-5) see "created".
                state = _replace(base, pid=init_pid, status=Status.CREATED).to_oci_json()
                run_hooks("prestart", spec.hooks.prestart, state)
                run_hooks("createRuntime", spec.hooks.create_runtime, state)
                chan.send(sync.HooksDone(json.dumps(state, separators=(",", ":"))))
            elif isinstance(msg, sync.Pty):
                try:
                    _send_console(console, fds)
                finally:
                    for fd in fds:
                        os.close(fd)
            elif isinstance(msg, sync.Ready):
                if console is not None:
                    console.close()
                return init_pid
            elif isinstance(msg, sync.Failed):
                raise _failed_to_error(msg)
            else:
                raise ContainerError("container init exited during creation")
        raise ContainerError("container init: protocol did not finish")

    # ------------------------------------------------------------ start / run

    def start(self, container_id: str) -> None:
        with self._locked(container_id):
            self._start(container_id)

    def _start(self, container_id: str) -> None:
        s = self._refresh(self._load(container_id))
        if s.status is Status.STOPPED:
            raise InvalidState(
                f"container {container_id}: {st.refusal(s.status, Op.START)} ({_death_of(s.pid)})"
            )
        st.next_status(s.status, Op.START, container_id)
        fifo = st.fifo_path(self._dir(container_id))
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            if e.errno in (errno.ENXIO, errno.ENOENT):
                raise InvalidState(
                    f"container {container_id}: init is not waiting to start"
                ) from None
            raise
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
        fifo.unlink(missing_ok=True)
        s = _replace(s, status=Status.RUNNING)
        st.write_state(self._dir(container_id), s)
        spec = self._spec_of(s)
        if spec.hooks.poststart:
            from portique.runtime.hooks import HookError, run_hooks

            # poststart hooks run once the user program is executing.
            _wait_exec(s.pid, s.start_time)

            try:
                run_hooks("poststart", spec.hooks.poststart, s.to_oci_json())
            except HookError as e:
                # The spec: a poststart failure is logged; the container runs on.
                _warn(str(e))

    def run(
        self,
        container_id: str,
        bundle: Path,
        *,
        detach: bool = False,
        console_socket: Path | None = None,
        pid_file: Path | None = None,
        no_pivot: bool = False,
        preserve_fds: int = 0,
        stdio: tuple[int, int, int] | None = None,
        on_pid: Callable[[int], None] | None = None,
        keep: bool = False,
    ) -> int:
        """create + start; without detach, wait for the init, delete (unless
        `keep`: the stopped container stays, as runc run --keep), return its status.

        `on_pid(pid)`, without detach, is called with the init's host pid once
        the container's program runs, before it is waited for: the caller may
        serve the container's stdio there until it ends. If it raises, the
        container is killed and deleted.
        """
        if detach:
            return self._run(
                container_id, bundle, True, console_socket, pid_file, no_pivot, preserve_fds, stdio
            )
        from portique.linux import prctl

        # The init is our grandchild: as a subreaper we inherit it and can wait.
        # Only for this call: a library caller left a subreaper would inherit
        # (and have to reap) every orphan of its later children.
        was_subreaper = prctl.is_child_subreaper()
        prctl.set_child_subreaper(True)
        try:
            return self._run(
                container_id,
                bundle,
                False,
                console_socket,
                pid_file,
                no_pivot,
                preserve_fds,
                stdio,
                on_pid,
                keep,
            )
        finally:
            if not was_subreaper:
                prctl.set_child_subreaper(False)

    def _run(
        self,
        container_id: str,
        bundle: Path,
        detach: bool,
        console_socket: Path | None,
        pid_file: Path | None,
        no_pivot: bool,
        preserve_fds: int,
        stdio: tuple[int, int, int] | None,
        on_pid: Callable[[int], None] | None = None,
        keep: bool = False,
    ) -> int:
        from portique.runtime import sync

        s, chan = self._create(
            container_id, bundle, console_socket, pid_file, no_pivot, preserve_fds, stdio
        )
        try:
            try:
                self.start(container_id)
            except BaseException:
                self.delete(container_id, force=True)
                raise
            # exec success closes the init's end (O_CLOEXEC): EOF. A failed
            # exec reports its errno first.
            msg, fds = chan.recv(_STEP_TIMEOUT)
            for fd in fds:
                os.close(fd)
        finally:
            chan.close()
        if isinstance(msg, sync.Failed):
            if not detach:
                _reap(s.pid)
            self.delete(container_id, force=True)
            raise _failed_to_error(msg)
        if detach:
            return 0
        if on_pid is not None:
            try:
                on_pid(s.pid)
            except BaseException:
                self.delete(container_id, force=True)
                raise
        status = _wait_pid(s.pid)
        if not keep:
            self.delete(container_id, force=True)
        return status

    # ------------------------------------------------------------ queries

    def state(self, container_id: str) -> State:
        return self._refresh(self._load(container_id))

    def list(self) -> builtins.list[State]:
        out: builtins.list[State] = []
        try:
            names = sorted(os.listdir(self.state_root))
        except FileNotFoundError:
            return out
        for name in names:
            try:
                out.append(self.state(name))
            except (NotFound, InvalidArgument):
                continue
        return out

    def ps(self, container_id: str) -> builtins.list[int]:
        s = self._load(container_id)
        try:
            return sorted(self._manager(s).pids())
        except (PortiqueError, OSError):
            return []

    def stats(self, container_id: str) -> dict[str, object]:
        s = self._refresh(self._load(container_id))
        if s.status is Status.STOPPED:
            raise InvalidState(f"container {container_id}: {st.NOT_RUNNING}")
        return self._manager(s).stats()

    # ------------------------------------------------------------ signals, freezer

    def kill(self, container_id: str, sig: int, *, all: bool = False) -> None:
        s = self._refresh(self._load(container_id))
        st.next_status(s.status, Op.KILL, container_id)
        if all:
            manager = self._manager(s)
            pids = manager.pids()
            for pid in pids:
                _kill_quiet(pid, sig)
            if sig == signal.SIGKILL:
                if s.status is Status.PAUSED:
                    manager.thaw()  # frozen tasks die only once thawed
                # As a subreaper (a foreground `run`, a monitor), orphans of
                # the container are our children; once dead they leave the
                # cgroup, where delete no longer finds them: reap them now.
                _reap_killed(pids)
            return
        _signal_init(s, sig)

    def pause(self, container_id: str) -> None:
        with self._locked(container_id):
            self._pause(container_id)

    def _pause(self, container_id: str) -> None:
        s = self._refresh(self._load(container_id))
        new = st.next_status(s.status, Op.PAUSE, container_id)
        self._manager(s).freeze()
        st.write_state(self._dir(container_id), _replace(s, status=new))

    def resume(self, container_id: str) -> None:
        with self._locked(container_id):
            self._resume(container_id)

    def _resume(self, container_id: str) -> None:
        s = self._refresh(self._load(container_id))
        new = st.next_status(s.status, Op.RESUME, container_id)
        self._manager(s).thaw()
        st.write_state(self._dir(container_id), _replace(s, status=new))

    # ------------------------------------------------------------ delete

    def delete(self, container_id: str, *, force: bool = False) -> None:
        with self._locked(container_id):
            self._delete(container_id, force=force)

    def _delete(self, container_id: str, *, force: bool = False) -> None:
        s = self._refresh(self._load(container_id))
        # The spec: deleting a container that is not stopped MUST fail,
        # a created one included (runc 1.1 deletes that one anyway).
        if s.status is not Status.STOPPED and not force:
            raise InvalidState(
                f"cannot delete container {container_id} that is not stopped: {s.status}",
                hint="kill it first or use --force",
            )
        # Even a stopped container may have an unreaped init (our child when
        # we are a subreaper) or leftovers in its cgroup: kill and reap them
        # all, or the cgroup cannot be removed.
        self._kill_all_and_wait(s)
        errors: list[str] = []
        try:
            spec = self._spec_of(s)
        except PortiqueError as e:
            errors.append(str(e))
            spec = None
        try:
            self._manager(s).destroy()
        except (PortiqueError, OSError) as e:
            errors.append(f"cgroup: {e}")
        if spec is not None and spec.hooks.poststop:
            from portique.runtime.hooks import HookError, run_hooks

            try:
                run_hooks(
                    "poststop",
                    spec.hooks.poststop,
                    _replace(s, status=Status.STOPPED).to_oci_json(),
                )
            except HookError as e:
                _warn(str(e))
        _rmtree(self._dir(container_id))
        self._managers.pop((s.cgroups_path, s.id), None)
        if errors:
            raise ContainerError(f"delete {container_id}: " + "; ".join(errors))

    def _kill_all_and_wait(self, s: State) -> None:
        manager = self._manager(s)
        try:
            if manager.is_frozen():
                for pid in manager.pids():
                    _kill_quiet(pid, signal.SIGKILL)
                manager.thaw()
        except (PortiqueError, OSError):
            pass
        _signal_init(s, signal.SIGKILL, quiet=True)
        # With a pid namespace, the init's death takes every process with it;
        # without one, kill what is left in the cgroup.
        deadline = time.monotonic() + 10
        delay = 0.001
        # A pid namespace's init finishes dying only once every process of the
        # namespace is reaped; some may be our children (we may be their
        # subreaper), so reap every pid ever seen in the cgroup.
        seen: set[int] = {s.pid}
        while time.monotonic() < deadline:
            pids: builtins.list[int] = []
            try:
                pids = manager.pids()
            except (PortiqueError, OSError):
                pass
            seen.update(pids)
            for pid in pids:
                _kill_quiet(pid, signal.SIGKILL)
            for pid in seen:
                _reap_quiet(pid)
            if not pids and not procfs.is_alive(s.pid, s.start_time or None):
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        raise ContainerError(f"container {s.id}: processes did not die after SIGKILL")

    # ------------------------------------------------------------ exec

    def exec(
        self,
        container_id: str,
        process: Process,
        *,
        detach: bool = False,
        console_socket: Path | None = None,
        pid_file: Path | None = None,
        stdio: tuple[int, int, int] | None = None,
        preserve_fds: int = 0,
        on_pid: Callable[[int], None] | None = None,
    ) -> int:
        """Run `process` inside the container; its exit status, or its pid when detached.

        `on_pid(pid)` is called with the host pid as soon as the process is
        started (before it is waited for), e.g. to forward signals to it.
        """
        from portique.runtime.execution import exec_process

        s = self._refresh(self._load(container_id))
        st.next_status(s.status, Op.EXEC, container_id)
        spec = self._spec_of(s)
        return exec_process(
            s,
            spec,
            process,
            self._manager(s),
            detach=detach,
            console_socket=console_socket,
            pid_file=pid_file,
            stdio=stdio,
            preserve_fds=preserve_fds,
            on_pid=on_pid,
        )


# ---------------------------------------------------------------- process helpers


def _refuse_host_uts(spec: Spec) -> None:
    """hostname/domainname in a uts namespace joined by path are fine, unless
    that namespace is the one the runtime runs in: the host's name is not
    the container's to change."""
    uts = spec.linux.namespace("uts")
    if uts is None or not uts.path or not (spec.hostname or spec.domainname):
        return
    try:
        theirs, mine = os.stat(uts.path), os.stat("/proc/self/ns/uts")
    except OSError as e:
        raise InvalidArgument(f"linux.namespaces: uts path {uts.path}: {e.strerror}") from None
    if (theirs.st_dev, theirs.st_ino) == (mine.st_dev, mine.st_ino):
        field = "hostname" if spec.hostname else "domainname"
        raise InvalidArgument(
            f"{field}: the uts namespace {uts.path} is the host's: "
            "cannot set a hostname without a private uts namespace"
        )


def _rmtree(path: Path) -> None:
    """Remove a container's state directory: flat (state.json, exec.fifo,
    temp files), so no shutil (and its compression imports) on the start path."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(path / name)
        except IsADirectoryError:
            import shutil

            shutil.rmtree(path / name, ignore_errors=True)
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def _replace(s: State, **changes: Any) -> State:
    from portique.oci.value import replace

    return replace(s, **changes)


def _fork() -> int:
    # A fork of a multi-threaded process may deadlock in the child on a lock
    # another thread held; the runtime forks only while single-threaded.
    # threading not imported means no Python thread was ever started.
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() != 1:
        raise ContainerError("the runtime cannot fork while other threads run")
    # The child is a container process: until its execve, the container sees
    # this interpreter as /proc/self/exe and could reopen it for writing
    # (linux/selfexe.py). Never from a file it could write.
    from portique.linux import selfexe

    if selfexe.protection() is None:
        raise ContainerError(
            f"refusing to start a container process from {os.readlink(selfexe.SELF_EXE)}: "
            "a container could rewrite this interpreter through /proc/self/exe "
            "(start through portique or portique-runtime, or call "
            "portique.linux.selfexe.ensure_protected() first)"
        )
    return os.fork()


def _write_id_maps(pid: int, spec: Spec) -> None:
    lx = spec.linux

    def fmt(maps: tuple[Any, ...]) -> bytes:
        return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps).encode()

    try:
        # Writing gid_map as root needs no setgroups deny; leave setgroups
        # allowed so the container can set its supplementary groups.
        with open(f"/proc/{pid}/uid_map", "wb") as f:
            f.write(fmt(lx.uid_mappings))
        with open(f"/proc/{pid}/gid_map", "wb") as f:
            f.write(fmt(lx.gid_mappings))
    except OSError as e:
        raise ContainerError(f"cannot write the user namespace mappings: {e.strerror}") from None


def _connect_console_socket(path: Path | None, undo: ExitStack) -> Any:
    import socket

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    undo.callback(conn.close)
    try:
        conn.connect(str(path))
    except OSError as e:
        raise InvalidArgument(f"console socket {path}: {e.strerror}") from None
    return conn


def _send_console(console: Any, fds: list[int]) -> None:
    import socket

    if console is None or not fds:
        raise ContainerError("terminal: no console socket for the pty master")
    socket.send_fds(console, [b"/dev/ptmx"], fds[:1])


def _signal_init(s: State, sig: int, *, quiet: bool = False) -> None:
    """Signal the init through a pidfd, after checking it is still ours."""
    if s.pid <= 0:
        return
    try:
        pidfd = os.pidfd_open(s.pid)
    except ProcessLookupError:
        if quiet:
            return
        raise InvalidState(f"container {s.id}: {st.NOT_RUNNING}") from None
    try:
        if s.start_time and procfs.start_time(s.pid) != s.start_time:
            if quiet:
                return
            raise InvalidState(f"container {s.id}: {st.NOT_RUNNING}")
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        if not quiet:
            raise InvalidState(f"container {s.id}: {st.NOT_RUNNING}") from None
    finally:
        os.close(pidfd)


def _kill_quiet(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pid: int) -> int | None:
    try:
        _, status = os.waitpid(pid, 0)
        return status
    except ChildProcessError:
        return None


def _death_of(pid: int) -> str:
    """How the init ended, when it is our child (we are its subreaper)."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return "its init is gone"
    if not done:
        return "its init is not the process it was"
    if os.WIFSIGNALED(status):
        return f"its init was killed by signal {os.WTERMSIG(status)}"
    return f"its init exited with status {os.WEXITSTATUS(status)}"


def _reap_quiet(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _reap_killed(pids: builtins.list[int], timeout: float = 5.0) -> None:
    """Reap those of `pids` (just sent SIGKILL) that are our children."""
    waiting = set(pids)
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while waiting and time.monotonic() < deadline:
        for pid in builtins.list(waiting):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid  # not ours (or already reaped): nothing to do
            if done:
                waiting.discard(pid)
        if waiting:
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


def _kill_and_reap(pid: int) -> None:
    _kill_quiet(pid, signal.SIGKILL)
    _reap(pid)


def _wait_pid(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            # Not our child (no subreaper above us): poll until it is gone.
            while procfs.is_alive(pid):
                time.sleep(0.01)
            return 0
        return _exit_code(status)


def _wait_exec(pid: int, start_time: int, timeout: float = 60) -> None:
    """Wait until `pid` no longer runs the runtime's interpreter (it exec'd or died)."""
    # Compare files, not paths: the container may run a python at our path.
    me = os.stat("/proc/self/exe")
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while time.monotonic() < deadline and procfs.is_alive(pid, start_time or None):
        try:
            exe = os.stat(f"/proc/{pid}/exe")
            if (exe.st_dev, exe.st_ino) != (me.st_dev, me.st_ino):
                return
        except OSError:
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _warn(message: str) -> None:
    import sys

    print(f"portique-runtime: warning: {message}", file=sys.stderr)


__all__ = ["DEFAULT_STATE_ROOT", "ContainerError", "Runtime"]
