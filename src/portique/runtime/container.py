"""The runtime library: create, start, run, state, list, kill, delete, pause,
resume, exec, ps and stats over OCI bundles.

`Runtime` is a small facade; each operation lives in its own module
(create.py, start.py, kill.py, delete.py, pause.py, execution.py), imported
when first used. Each refreshes the container's status from facts, checks
the transition table (runtime/state.py), acts, then persists; the facade
keeps what they share: where state lives, loading and refreshing it, the
per-container lock, the cgroup managers and the kernel.
"""

from __future__ import annotations

import builtins
import fcntl
import os

from portique.errors import InvalidArgument, InvalidState, NotFound, PortiqueError
from portique.linux import proc as procfs
from portique.pathtext import pure_text
from portique.runtime import state as st
from portique.runtime.state import Op, State, Status

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

    from _typeshed import StrPath

    from portique.linux.kernel import Kernel
    from portique.oci.resources import LinuxResources
    from portique.oci.runtime import Process, Spec
    from portique.runtime.cgroups import CgroupManager

DEFAULT_STATE_ROOT = "/run/portique-runtime"
# Compiled seccomp filters (runtime/seccomp_cache.py), beside the containers'
# directories: "@" is never in a container id, so no id can name it.
SECCOMP_CACHE = "@seccomp"
_MAX_ID = 1024


def _check_id(container_id: str) -> None:
    ok = (
        0 < len(container_id) <= _MAX_ID
        and container_id not in (".", "..")
        and all(c.isalnum() or c in "_+-." for c in container_id)
        and container_id.isascii()
    )
    if not ok:
        raise InvalidArgument(f"invalid container id {container_id!r}")


class _Locked:
    """Runtime._locked: the container's state directory held under flock
    (a class, not contextlib's decorator: see runtime/undo.py)."""

    __slots__ = ("container_id", "fd", "path")

    def __init__(self, path: str, container_id: str) -> None:
        self.path = path
        self.container_id = container_id
        self.fd = -1

    def __enter__(self) -> None:
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"container {self.container_id} does not exist") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


class Runtime:
    """OCI runtime operations; state lives under `state_root/<id>/`.

    `kernel`: what the container processes do to the kernel goes through it
    (linux/kernel.py); the faces pass the real one, `LinuxKernel`, also the
    default.
    """

    def __init__(
        self, state_root: StrPath = DEFAULT_STATE_ROOT, kernel: Kernel | None = None
    ) -> None:
        # Paths as text inside (as str(Path(...)) reads them): pathlib costs
        # portique-runtime ~4 ms of every call. state_root is the Path.
        self._root = pure_text(os.fspath(state_root))
        self._kernel = kernel
        # One manager per container: opening one parses mountinfo (v1).
        self._managers: dict[tuple[str | None, str], CgroupManager] = {}
        # The spec last parsed per container, with the config it came from:
        # `run` needs it in create, start and delete (a seccomp profile makes
        # each parse ~0.3 ms), and a config equal to the cached one (a C-level
        # comparison) is the same spec.
        self._specs: dict[str, tuple[dict[str, Any], Spec]] = {}

    @property
    def kernel(self) -> Kernel:
        if self._kernel is None:
            from portique.linux.kernel import LinuxKernel

            self._kernel = LinuxKernel()
        return self._kernel

    # ------------------------------------------------------------ for the operations

    @property
    def state_root(self) -> Path:
        from pathlib import Path

        return Path(self._root)

    @property
    def seccomp_cache(self) -> Path:
        return self.state_root / SECCOMP_CACHE

    def _seccomp_cache_dir(self) -> str:
        return os.path.join(self._root, SECCOMP_CACHE)

    def _dir(self, container_id: str) -> str:
        _check_id(container_id)
        return os.path.join(self._root, container_id)

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
        from portique.oci.value import replace

        return replace(s, status=status)

    def _locked(self, container_id: str) -> _Locked:
        """Serialise state changes of one container across processes (flock
        on its state directory); the operation re-reads the state inside."""
        return _Locked(self._dir(container_id), container_id)

    def spec(self, container_id: str) -> Spec:
        """The spec `container_id` was created with (parsed once per Runtime)."""
        return self._spec_of(self._load(container_id))

    def _spec_of(self, s: State) -> Spec:
        cached = self._specs.get(s.id)
        if cached is not None and cached[0] == s.config:
            return cached[1]
        from portique.oci.runtime import parse_spec

        spec = parse_spec(s.config)
        self._specs[s.id] = (s.config, spec)
        return spec

    # ------------------------------------------------------------ create, start, run

    def create(
        self,
        container_id: str,
        bundle: StrPath,
        *,
        console_socket: StrPath | None = None,
        pid_file: StrPath | None = None,
        no_pivot: bool = False,
        preserve_fds: int = 0,
        stdio: tuple[int, int, int] | None = None,
        no_new_keyring: bool = False,
    ) -> State:
        """Create the container from `bundle`; its program waits for `start`.

        `no_new_keyring`: its processes keep the caller's session keyring
        instead of each joining a new one (runc's --no-new-keyring)."""
        from portique.runtime.create import create

        s, chan = create(
            self,
            container_id,
            bundle,
            console_socket,
            pid_file,
            no_pivot,
            preserve_fds,
            stdio,
            no_new_keyring,
        )
        chan.close()
        return s

    def start(self, container_id: str) -> None:
        from portique.runtime.start import start

        with self._locked(container_id):
            start(self, container_id)

    def run(
        self,
        container_id: str,
        bundle: StrPath,
        *,
        detach: bool = False,
        console_socket: StrPath | None = None,
        pid_file: StrPath | None = None,
        no_pivot: bool = False,
        preserve_fds: int = 0,
        stdio: tuple[int, int, int] | None = None,
        no_new_keyring: bool = False,
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
        from portique.runtime.start import run

        args = (console_socket, pid_file, no_pivot, preserve_fds, stdio, no_new_keyring)
        if detach:
            return run(self, container_id, bundle, True, *args)
        from portique.linux import prctl

        # The init is our grandchild: as a subreaper we inherit it and can wait.
        # Only for this call: a library caller left a subreaper would inherit
        # (and have to reap) every orphan of its later children.
        was_subreaper = prctl.is_child_subreaper()
        prctl.set_child_subreaper(True)
        try:
            return run(self, container_id, bundle, False, *args, on_pid, keep)
        finally:
            if not was_subreaper:
                prctl.set_child_subreaper(False)

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

    # ------------------------------------------------------------ signals, freezer, delete

    def kill(self, container_id: str, sig: int, *, all: bool = False) -> None:
        from portique.runtime.kill import kill

        kill(self, container_id, sig, all=all)

    def pause(self, container_id: str) -> None:
        from portique.runtime.pause import pause

        with self._locked(container_id):
            pause(self, container_id)

    def resume(self, container_id: str) -> None:
        from portique.runtime.pause import resume

        with self._locked(container_id):
            resume(self, container_id)

    def update(self, container_id: str, resources: LinuxResources) -> None:
        """Apply `resources` (memory, cpu, pids, blockIO, unified) to a live
        container's cgroup, as `runc update` does; device rules are left alone."""
        with self._locked(container_id):
            s = self._refresh(self._load(container_id))
            if s.status is Status.STOPPED:
                raise InvalidState(f"container {container_id} is stopped: nothing to update")
            # The cgroup recorded at create time, not the bundle's (maybe edited) config.
            manager = self._manager(s)
            if not manager.exists():
                raise InvalidState(f"container {container_id} has no cgroup")
            manager.apply(resources)

    def delete(self, container_id: str, *, force: bool = False) -> None:
        from portique.runtime.delete import delete

        with self._locked(container_id):
            delete(self, container_id, force=force)

    # ------------------------------------------------------------ exec

    def exec(
        self,
        container_id: str,
        process: Process,
        *,
        detach: bool = False,
        console_socket: StrPath | None = None,
        pid_file: StrPath | None = None,
        stdio: tuple[int, int, int] | None = None,
        preserve_fds: int = 0,
        on_pid: Callable[[int], None] | None = None,
    ) -> int:
        """Run `process` inside the container; its exit status, or its pid when detached.

        `on_pid(pid)` is called with the host pid once the process runs its
        program (before it is waited for), e.g. to forward signals to it; if
        it raises, the process is killed and reaped.
        """
        from portique.runtime.execution import exec_process

        s = self._refresh(self._load(container_id))
        st.next_status(s.status, Op.EXEC, container_id)
        spec = self._spec_of(s)
        return exec_process(
            self.kernel,
            s,
            spec,
            process,
            self._manager(s),
            seccomp_cache=self._seccomp_cache_dir(),
            detach=detach,
            console_socket=console_socket,
            pid_file=pid_file,
            stdio=stdio,
            preserve_fds=preserve_fds,
            on_pid=on_pid,
        )


__all__ = ["DEFAULT_STATE_ROOT", "Runtime"]
