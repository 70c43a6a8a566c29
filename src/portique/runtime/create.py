"""`create`: a bundle becomes a container whose init waits on the exec fifo.

The runtime forks stage 1 and drives it and the init over the sync protocol
(runtime/sync.py), writing the user namespace maps and running the
runtime-namespace hooks when asked; every step of a failed create is undone
(runtime/undo.py: the state directory, the cgroup, the children, through
pidfds).
"""

from __future__ import annotations

import os
import time

from portique import jsonc
from portique.errors import Conflict, InvalidArgument
from portique.linux import proc as procfs
from portique.oci.value import replace
from portique.runtime import state as st
from portique.runtime.children import Child, fork
from portique.runtime.errors import ContainerError, failed_to_error, warn
from portique.runtime.state import State, Status
from portique.runtime.undo import Undo

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    import socket
    from typing import Any

    from _typeshed import StrPath

    from portique.oci.runtime import Spec
    from portique.runtime import sync
    from portique.runtime.cgroups import CgroupManager
    from portique.runtime.container import Runtime
    from portique.runtime.mountplan import CgroupInfo

# A bound on how long create waits for each message of the init: hooks may
# take a while, so be generous; a dead init closes the socket at once anyway.
STEP_TIMEOUT = 600.0


def create(
    rt: Runtime,
    container_id: str,
    bundle: StrPath,
    console_socket: StrPath | None,
    pid_file: StrPath | None,
    no_pivot: bool,
    preserve_fds: int,
    stdio: tuple[int, int, int] | None,
    no_new_keyring: bool,
) -> tuple[State, sync.Channel]:
    """Create the container; its state and the open channel to its init
    (which `run` reads for the exec result)."""
    from portique.oci.runtime import load_spec_and_json
    from portique.runtime import sync

    state_dir = rt._dir(container_id)
    bundle = os.path.abspath(bundle)  # text: see Runtime.__init__
    spec, raw_config = load_spec_and_json(bundle)
    if spec.process is None:
        raise InvalidArgument("config.json: process: required to create a container")
    rootfs = os.path.normpath(os.path.join(bundle, spec.root.path))
    if not os.path.isdir(rootfs):
        raise InvalidArgument(f"rootfs {rootfs} does not exist or is not a directory")
    if spec.process.terminal and console_socket is None:
        raise InvalidArgument("process.terminal needs a console socket (--console-socket)")
    if spec.process.apparmor_profile or spec.process.selinux_label:
        warn("apparmorProfile and selinuxLabel are ignored: no LSM support in this runtime")
    if preserve_fds < 0:
        raise InvalidArgument("preserve-fds must not be negative")
    refuse_host_uts(spec)

    os.makedirs(rt._root, 0o711, exist_ok=True)
    try:
        os.mkdir(state_dir, 0o711)  # exclusive: a duplicate id fails here
    except FileExistsError:
        raise Conflict(f"container {container_id} already exists") from None

    kernel = rt.kernel
    with Undo() as undo:
        undo.callback(st.remove_state_dir, state_dir)
        fifo = st.fifo_path(state_dir)
        os.mkfifo(fifo, 0o600)
        manager, cgroup_info = setup_cgroup(spec, container_id, undo)
        rt._managers[(spec.linux.cgroups_path, container_id)] = manager
        rt._specs[container_id] = (raw_config, spec)
        base = State(
            id=container_id,
            status=Status.CREATING,
            pid=0,
            bundle=bundle,
            rootfs=rootfs,
            created=now_rfc3339(),
            annotations=dict(spec.annotations),
            owner="",
            cgroups_path=spec.linux.cgroups_path,
            config=raw_config,
            no_new_keyring=no_new_keyring,
        )
        # Written before anything is forked: if this process dies mid-create,
        # the leftover is a "creating" container whose init is not alive,
        # i.e. stopped, which `delete` (cgroup, state) can clean up.
        st.write_state(state_dir, base)
        console = connect_console_socket(console_socket, undo) if spec.process.terminal else None
        # What the init needs, imported here once: a long-lived caller
        # (a monitor, an API server) then forks them ready, instead of
        # every init importing them again.
        import portique.runtime.devices
        import portique.runtime.hooks
        import portique.runtime.rootfs  # noqa: F401
        from portique.runtime.init import InitConfig, stage1
        from portique.runtime.process import build_seccomp

        kernel.preload(terminal=spec.process.terminal)
        # Compiled (or taken from the cache) before fork: once per create,
        # with the host's libraries and the cache directory reachable.
        seccomp = build_seccomp(spec.linux.seccomp, rt._seccomp_cache_dir())
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
            new_keyring=not no_new_keyring,
            seccomp=seccomp,
        )
        parent, child = sync.Channel.pair()
        undo.callback(parent.close)
        pid1 = fork()
        if pid1 == 0:
            parent.close()
            stage1(child, cfg, manager.join, kernel)
        child.close()
        first = Child.of(pid1)
        undo.callback(first.close)
        undo.callback(first.kill)
        parent.send(sync.Go())
        init = drive_create(parent, first, spec, base, console, undo)
        init_pid = init.pid
        start_time = procfs.start_time(init_pid) or 0
        s = replace(base, status=Status.CREATED, pid=init_pid, start_time=start_time)
        st.write_state(state_dir, s)
        if pid_file is not None:
            from portique.fileio import atomic_write

            atomic_write(os.path.abspath(pid_file), f"{init_pid}".encode())
        undo.pop_all()
        first.close()
        init.close()
    return s, parent


def setup_cgroup(
    spec: Spec, container_id: str, undo: Undo
) -> tuple[CgroupManager, CgroupInfo | None]:
    from portique.runtime.cgroups import open_manager
    from portique.runtime.devices import with_device_rules
    from portique.runtime.mountplan import CgroupInfo

    manager = open_manager(spec.linux.cgroups_path, container_id)
    manager.create()
    undo.callback(manager.destroy)
    manager.apply(with_device_rules(spec.linux.resources, spec.linux.devices))
    dirs = manager.dir_texts()
    if manager.version == "none":
        return manager, None
    if manager.version == "v2":
        info = CgroupInfo("v2", tuple(("", str(d)) for d in dirs.values()))
    else:
        info = CgroupInfo("v1", tuple((os.path.basename(mp), d) for mp, d in dirs.items()))
    return manager, info


def drive_create(
    chan: sync.Channel,
    first: Child,
    spec: Spec,
    base: State,
    console: socket.socket | None,
    undo: Undo,
) -> Child:
    """Answer the children until the init says Ready; returns the init (held
    by the pidfd stage 1 sent, which the caller closes)."""
    from portique.runtime import sync
    from portique.runtime.hooks import run_hooks

    init: Child | None = None
    init_pid = 0
    for _ in range(16):  # the protocol has fewer steps than this
        msg, fds = chan.recv(STEP_TIMEOUT)
        if isinstance(msg, sync.MapIds):
            write_id_maps(msg.pid, spec)
            chan.send(sync.MapIdsDone())
        elif isinstance(msg, sync.InitPid) and fds:
            init_pid = msg.pid
            init = Child(init_pid, fds[0])
            for extra in fds[1:]:
                os.close(extra)
            undo.callback(init.close)
            undo.callback(init.kill)
            first.wait()
        elif init_pid == 0 and isinstance(msg, (sync.RunHooks, sync.Ready)):
            raise ContainerError(f"container init: {msg.kind} before its pid")
        elif isinstance(msg, sync.RunHooks):
            # The spec's lifecycle: "creating" ends when the environment
            # exists (step 2); prestart, createRuntime and createContainer
            # hooks (steps 3-5) see "created".
            state = replace(base, pid=init_pid, status=Status.CREATED).to_oci_json()
            run_hooks("prestart", spec.hooks.prestart, state)
            run_hooks("createRuntime", spec.hooks.create_runtime, state)
            chan.send(sync.HooksDone(jsonc.dumps(state, separators=(",", ":"))))
        elif isinstance(msg, sync.Pty):
            try:
                send_console(console, fds)
            finally:
                for fd in fds:
                    os.close(fd)
        elif isinstance(msg, sync.Ready):
            assert init is not None  # Ready before InitPid is refused above
            if console is not None:
                console.close()
            return init
        elif isinstance(msg, sync.Failed):
            raise failed_to_error(msg)
        else:
            for fd in fds:
                os.close(fd)
            raise ContainerError("container init exited during creation")
    raise ContainerError("container init: protocol did not finish")


def refuse_host_uts(spec: Spec) -> None:
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


def now_rfc3339() -> str:
    # time, not datetime: one import less on the start path.
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


def write_id_maps(pid: int, spec: Spec) -> None:
    lx = spec.linux

    def fmt(maps: tuple[Any, ...]) -> bytes:
        return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps).encode()

    if os.geteuid() != 0:
        _write_id_maps_unprivileged(pid, lx.uid_mappings, lx.gid_mappings)
        return
    try:
        # Writing gid_map as root needs no setgroups deny; leave setgroups
        # allowed so the container can set its supplementary groups.
        with open(f"/proc/{pid}/uid_map", "wb") as f:
            f.write(fmt(lx.uid_mappings))
        with open(f"/proc/{pid}/gid_map", "wb") as f:
            f.write(fmt(lx.gid_mappings))
    except OSError as e:
        raise ContainerError(f"cannot write the user namespace mappings: {e.strerror}") from None


def _write_id_maps_unprivileged(pid: int, uids: tuple[Any, ...], gids: tuple[Any, ...]) -> None:
    """An ordinary user's runtime (runc's rootless mode): its own ids alone
    are written directly (setgroups denied first, as the kernel requires);
    anything more goes through the setuid newuidmap/newgidmap, which check
    /etc/subuid and /etc/subgid."""
    import shutil
    import subprocess

    own = ((os.geteuid(),), (os.getegid(),))
    for kind, maps, mine in (("uid", uids, own[0]), ("gid", gids, own[1])):
        if len(maps) == 1 and maps[0].size == 1 and (maps[0].host_id,) == mine:
            try:
                if kind == "gid":
                    with open(f"/proc/{pid}/setgroups", "wb") as f:
                        f.write(b"deny\n")
                with open(f"/proc/{pid}/{kind}_map", "wb") as f:
                    f.write(f"{maps[0].container_id} {maps[0].host_id} 1\n".encode())
            except OSError as e:
                raise ContainerError(
                    f"cannot write the user namespace {kind} mapping: {e.strerror}"
                ) from None
            continue
        helper = shutil.which(f"new{kind}map", path="/usr/bin:/bin:/usr/sbin:/sbin")
        if helper is None:
            raise ContainerError(
                f"linux.{kind}Mappings maps more than your own id: that needs new{kind}map"
                " (Debian's uidmap package)"
            )
        args = [helper, str(pid)]
        for m in maps:
            args += [str(m.container_id), str(m.host_id), str(m.size)]
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise ContainerError(f"new{kind}map {pid}: {why}")


def connect_console_socket(path: StrPath | None, undo: Undo) -> socket.socket:
    import socket

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    undo.callback(conn.close)
    try:
        conn.connect(str(path))
    except OSError as e:
        raise InvalidArgument(f"console socket {path}: {e.strerror}") from None
    return conn


def send_console(console: socket.socket | None, fds: list[int]) -> None:
    import socket

    if console is None or not fds:
        raise ContainerError("terminal: no console socket for the pty master")
    socket.send_fds(console, [b"/dev/ptmx"], fds[:1])


__all__ = ["create"]
