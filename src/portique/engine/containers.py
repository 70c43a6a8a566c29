"""The container operations behind the CLI verbs (and the API server later).

Every operation takes the Engine (engine/engine.py) first and Docker's API
shapes after it: create() takes Config + HostConfig + NetworkingConfig, so
`portique serve` can pass a POST /containers/create body straight through.
State lives in the DB (engine/db.py); a running container's facts come from
its monitor.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from portique import faults, journal
from portique.engine import client, db, events, lifecycle
from portique.engine import filters as flt
from portique.engine import state as st
from portique.engine import volumes as vols
from portique.engine.lifecycle import finish_removal as finish_removal
from portique.engine.state import Event, Status
from portique.errors import Conflict, InvalidArgument, NoSuchObject, PortiqueError

if TYPE_CHECKING:
    from portique.engine.engine import Engine

# config, options and names load inside the functions that need them: most
# verbs (exec, logs, ps, rm, ...) never do, and they cost the CLI ~15 ms.

DEFAULT_STOP_TIMEOUT = 10


# -------------------------------------------------------------------- create


def resolve_image(
    eng: Engine,
    ref: str,
    pull: str,
    progress: Callable[[Any], None] | None = None,
    pulling: Callable[[str], None] | None = None,
) -> Any:
    """The image to create from, pulled per `pull` (missing, always, never);
    `pulling(ref)` is told before a pull of a missing image."""
    if pull not in ("missing", "always", "never"):
        raise InvalidArgument(
            f'invalid pull option: "{pull}": must be one of "always", "missing" or "never"'
        )
    imgs = eng.images
    if pull != "always" and imgs.exists(ref):
        return imgs.resolve(ref)
    if pull == "never":
        raise NoSuchObject("image", ref)
    if pull == "missing" and pulling is not None:
        pulling(ref)
    from portique.image.pull import pull_image

    result = pull_image(imgs, ref, progress=progress)
    events.pulled(eng, result.reference, result.record)
    return result.record


def _image_config(image: Any) -> dict[str, Any]:
    conf = image.config if isinstance(image.config, dict) else {}
    inner = conf.get("config")
    return dict(inner) if isinstance(inner, dict) else {}


def create(
    eng: Engine,
    config: Mapping[str, Any],
    host: Mapping[str, Any],
    networking: Mapping[str, Any] | None = None,
    *,
    name: str = "",
    pull: str = "missing",
    progress: Callable[[Any], None] | None = None,
    pulling: Callable[[str], None] | None = None,
) -> db.ContainerRow:
    """`POST /containers/create`: a new container in state "created" (nothing
    mounted, nothing running), from Docker's Config (its "Image" names the
    image), HostConfig and NetworkingConfig ({"EndpointsConfig": {network:
    {"Aliases", "IPAMConfig": {"IPv4Address"}}}}: aliases, addresses and
    further networks). The mounts come from HostConfig's Binds, Mounts and
    Tmpfs. `pull`: missing (pull first, telling `pulling`), always, never.
    Nothing is left behind on any error.
    """
    from portique.engine import config as cfg
    from portique.engine import options as opt
    from portique.engine.names import random_name

    conn = eng.db
    eng.recover()  # what a killed create or start left goes first
    image_ref = str(config.get("Image") or "")
    if not image_ref:
        raise InvalidArgument("no image given: Config.Image is empty")
    mounts = opt.mounts_from_host_config(host)
    from portique.engine import run_opts

    mounts += vols.volumes_from(eng, host, {m.target for m in mounts})
    name = opt.parse_name(name) if name else ""
    opt.check_container_strings(config, host, networking)
    _check_networking(eng, host, networking)
    if name and db.name_taken(conn, name):
        raise Conflict(
            f'the container name "/{name}" is already in use',
            hint="remove or rename that container to reuse the name",
        )
    image = resolve_image(eng, image_ref, pull, progress, pulling)
    from portique.engine.health import check as check_health

    check_health(config.get("Healthcheck"))
    merged = cfg.merge_image_config({**config, "Image": image_ref}, _image_config(image))
    cfg.command_of(merged)
    wd = merged.get("WorkingDir") or ""
    if wd and not wd.startswith("/"):
        raise InvalidArgument(
            f"the working directory '{wd}' is invalid, it needs to be an absolute path"
        )
    host = dict(host)
    if host.get("AutoRemove") and (host.get("RestartPolicy") or {}).get("Name") not in (
        None,
        "",
        "no",
    ):
        raise InvalidArgument("conflicting options: --restart and --rm")
    sec = opt.parse_security_opts(host.get("SecurityOpt") or [])
    if sec.seccomp not in ("", "unconfined"):
        host["SeccompProfile"] = _load_profile(sec.seccomp)
    # A bad capability name fails now, not at start.
    opt.capabilities(
        host.get("CapAdd") or [], host.get("CapDrop") or [], bool(host.get("Privileged"))
    )
    run_opts.check_at_create(eng, host)  # issue 13's flags, normalised in place
    cid = os.urandom(32).hex()
    if not merged.get("Hostname"):
        # Docker records the hostname the container will get: its short id,
        # or the host's name with --network host.
        import socket

        host_net = host.get("NetworkMode") == "host" or host.get("UTSMode") == "host"
        merged["Hostname"] = socket.gethostname() if host_net else cid[:12]
    paths = eng.paths(cid)
    # The journal entry comes first and goes in the transaction that inserts the
    # row: a crash in between leaves an entry whose recovery removes the directory.
    op = journal.Operation.begin(conn, "create", cid, [{"type": "container-create", "id": cid}])
    with ExitStack() as stack:
        stack.callback(op.end)
        paths.dir.mkdir(parents=True, mode=0o710)
        stack.callback(_rmtree, paths.dir)
        made_volumes: list[str] = []
        mounted: list[str] = []
        stack.callback(_remove_volume_dirs, eng, made_volumes)
        faults.point("create.dir-made")
        for attempt in range(16):
            cname = name or random_name(attempt)
            try:
                with db.transaction(conn):
                    before = {v.name for v in db.list_volumes(conn)}
                    points, used = vols.plan_mounts(
                        eng, mounts or [], (merged.get("Volumes") or {}).keys()
                    )
                    made_volumes[:] = [v for v in used if v not in before]
                    mounted[:] = used
                    row = db.ContainerRow(
                        id=cid,
                        name=cname,
                        image=image_ref,
                        image_id=image.id,
                        created=time.time(),
                        config={
                            "Config": merged,
                            "HostConfig": host,
                            "MountPoints": points,
                            **({"NetworkingConfig": dict(networking)} if networking else {}),
                        },
                    )
                    db.insert_container(conn, row)
                    for v in used:
                        db.link_volume(conn, cid, v)
                    db.add_image_user(conn, image.id, cid)
                    op.end_in(conn)
                break
            except Conflict:
                if name or attempt == 15:
                    raise
        stack.pop_all()
    faults.point("create.committed")
    # dockerd tells a `create` for each volume a new container mounts, existing or not.
    for v in mounted:
        events.volume(eng, v, "create")
    events.container(eng, row, "create")
    return row


def _check_networking(
    eng: Engine, host: Mapping[str, Any], networking: Mapping[str, Any] | None
) -> None:
    """--add-host and --dns values, and the networks named exist (a user-defined
    one, or the container of `container:REF`; bridge is made on first use)."""
    from portique.engine import network as net

    for h in host.get("ExtraHosts") or ():
        net.parse_extra_host(str(h))
    net.check_dns_servers([str(s) for s in host.get("Dns") or ()])
    mode = str(host.get("NetworkMode") or "bridge")
    eps = net.endpoints_config({"NetworkingConfig": networking or {}})
    if net.rootless():
        net.check_rootless_create(eng, host, networking or {}, [mode, *eps])
        return
    for name in dict.fromkeys([mode, *eps]):
        net.check_network(eng, name)


def _load_profile(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = f.read(4 << 20)
        profile = json.loads(data)
    except OSError as exc:
        raise InvalidArgument(f"opening seccomp profile ({path}) failed: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument(f"decoding seccomp profile ({path}) failed: {exc}") from None
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise InvalidArgument(f"seccomp profile {path}: not a seccomp profile (no defaultAction)")
    return profile


def _remove_volume_dirs(eng: Engine, names: list[str]) -> None:
    for n in names:
        vols.remove_tree(eng.volumes_dir / n)


# ------------------------------------------------------------------- queries


def get(eng: Engine, ref: str) -> db.ContainerRow:
    return refresh(eng, db.resolve_container(eng.db, ref))


def refresh(eng: Engine, row: db.ContainerRow) -> db.ContainerRow:
    """Trust the DB only while the monitor lives: a dead monitor means a dead container."""
    if not st.has_monitor(row.status):
        return row
    if lifecycle.is_alive(row.monitor_pid, row.id, row.started_at):
        return row
    conn = eng.db
    paths = eng.paths(row.id)
    with contextlib.suppress(Exception):
        lifecycle.cleanup_dead(eng, paths, dict(row.config["HostConfig"]))
    with db.transaction(conn):
        cur = db.get_container(conn, row.id)
        if cur is None or not st.has_monitor(cur.status) or cur.monitor_pid != row.monitor_pid:
            return cur or row
        if lifecycle.is_alive(cur.monitor_pid, cur.id, cur.started_at):
            return cur
        db.transition(
            conn,
            row.id,
            Event.MONITOR_LOST,
            exit_code=cur.exit_code or 255,
            error=cur.error or "the container's monitor died",
            pid=0,
            monitor_pid=0,
            finished_at=cur.finished_at or time.time(),
        )
    got = db.get_container(conn, row.id)
    return got or row


def list_all(eng: Engine) -> list[db.ContainerRow]:
    return [refresh(eng, r) for r in db.list_containers(eng.db)]


def get_for(eng: Engine, ref: str, event: Event) -> db.ContainerRow:
    """The container, if `event` (exec, attach, ...) is legal in its status now;
    else the state machine's refusal, in Docker's words."""
    row = get(eng, ref)
    st.next_status(row.status, event, row.name, row.id)
    return row


LIST_FILTERS = (
    "id",
    "name",
    "label",
    "status",
    "exited",
    "ancestor",
    "before",
    "since",
    "volume",
    "network",
    "publish",
    "expose",
    "health",
)


def list_containers(
    eng: Engine,
    *,
    all: bool = False,
    limit: int = -1,
    size: bool = False,
    filters: flt.Filters | None = None,
) -> list[dict[str, Any]]:
    """`GET /containers/json`: Docker's container summaries, newest first. Only
    those a monitor owns unless `all` (or a `limit`, or a status filter)."""
    from portique.engine import present
    from portique.engine.network import repair_leftovers

    wanted = flt.check(filters, LIST_FILTERS)
    for v in wanted.get("status", []):
        flt.one_of("status", v, [str(s) for s in Status])
    for key in ("publish", "expose"):
        if key in wanted:
            wanted[key] = [p for v in wanted[key] for p in present.port_filter(key, v)]
    for v in wanted.get("health", []):
        if v not in ("starting", "healthy", "unhealthy", "none"):
            raise InvalidArgument(f"Unrecognised filter value for health: {v}")
    repair_leftovers(eng)
    rows = list_all(eng)
    by_ref = {r.id: r for r in rows} | {r.name: r for r in rows} | {r.id[:12]: r for r in rows}
    every = all or limit > 0 or "status" in wanted or "exited" in wanted
    out = [
        r
        for r in rows
        if (every or st.has_monitor(r.status)) and present.matches(r, wanted, by_ref)
    ]
    if limit > 0:
        out = out[:limit]
    return [present.summary(r, size_rw=container_size(eng, r.id) if size else None) for r in out]


def inspect(eng: Engine, ref: str, *, size: bool = False) -> dict[str, Any]:
    """`GET /containers/{id}/json`: Docker's inspect object."""
    from portique.engine import present

    row = get(eng, ref)
    out = present.inspect(eng, row)
    if size:
        out["SizeRw"] = container_size(eng, row.id)
    return out


def published_ports(eng: Engine, ref: str) -> list[Any]:
    """The container's published ports (network.types.PortMapping), as `port` lists them."""
    from portique.engine import network as net

    row = get(eng, ref)
    if net.rootless():  # slirp4netns forwards: what the start recorded
        from portique.engine.usernet import recorded_ports

        return recorded_ports(row)
    return list(eng.networks.ports(row.id))


# ----------------------------------------------------------------- lifecycle


def start(eng: Engine, ref: str, *, hold: bool = False) -> db.ContainerRow:
    import fcntl

    eng.recover()  # a start whose monitor died is undone first
    conn = eng.db
    row = get(eng, ref)
    paths = eng.paths(row.id)
    # One start at a time per container: a second `start` waits here, then
    # finds it running. flock dies with its holders, so a crash leaves no lock.
    try:
        lock = os.open(paths.dir / ".start.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        raise NoSuchObject("container", ref) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        row = get(eng, row.id)
        if not st.start_needed(row.status, row.name, row.id):
            return row  # already up: Docker's "not modified"
        # The previous run's monitor may still be cleaning up (runtime state,
        # rootfs mount) after recording the exit: let it finish first.
        wait_monitor_gone(row)
        with db.transaction(conn):
            db.update_state(conn, row.id, stop_requested=False)
        lifecycle.start(eng, row.id, hold=hold)
    finally:
        os.close(lock)
    return db.get_container(conn, row.id) or row


def stop(
    eng: Engine, ref: str, timeout: int | None = None, sig: int | None = None
) -> db.ContainerRow:
    conn = eng.db
    row = get(eng, ref)
    if not st.has_monitor(row.status):
        return row  # nothing to stop: Docker's "not modified"
    if timeout is None:
        t = row.config["Config"].get("StopTimeout")
        timeout = DEFAULT_STOP_TIMEOUT if t is None else int(t)
    if sig is None:
        from portique.engine import options as opt

        try:
            sig = opt.parse_signal(str(row.config["Config"].get("StopSignal") or "SIGTERM"))
        except InvalidArgument:
            # The image's STOPSIGNAL is the image author's word: one that is no
            # signal must not make the container unstoppable (Docker: SIGTERM).
            sig = int(signal.SIGTERM)
    with db.transaction(conn):
        db.update_state(conn, row.id, stop_requested=True)
    paths = eng.paths(row.id)
    if row.status == Status.PAUSED:
        # A frozen process cannot act on SIGTERM: SIGKILL, then thaw so it dies.
        sig, timeout = signal.SIGKILL, 0
        _runtime_kill(eng, row.id, sig)
        _runtime_resume(eng, row.id)
    if st.has_process(row.status):
        events.container(eng, row, "kill", signal=str(int(sig)))
    try:
        client.wait_exit(paths, f"stop {int(sig)} {int(timeout)}", timeout=None)
    except client.MonitorGone:
        pass
    _wait_not_running(eng, row.id, 30.0)
    cur = get(eng, row.id)
    wait_monitor_gone(cur)
    events.container(eng, cur, "stop")
    return cur


def wait_monitor_gone(row: db.ContainerRow, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while lifecycle.is_alive(row.monitor_pid, row.id, row.started_at):
        if time.monotonic() > deadline:
            raise PortiqueError(f"the monitor of container {row.id[:12]} does not finish")
        time.sleep(0.01)


def _wait_not_running(eng: Engine, cid: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        cur = db.get_container(eng.db, cid)
        if cur is None or not st.has_monitor(cur.status):
            return
        cur = refresh(eng, cur)
        if not st.has_monitor(cur.status):
            return
        time.sleep(0.02)


def kill(eng: Engine, ref: str, sig: int = signal.SIGKILL) -> db.ContainerRow:
    conn = eng.db
    row = get(eng, ref)
    st.next_status(row.status, Event.KILL, row.name, row.id)
    paths = eng.paths(row.id)
    if sig == signal.SIGKILL:
        # Docker counts a SIGKILL from the user as a manual stop: the restart
        # policy stays quiet.
        with db.transaction(conn):
            db.update_state(conn, row.id, stop_requested=True)
    try:
        reply = client.request(paths, f"kill {int(sig)}")
    except client.MonitorGone:
        reply = None
    events.container(eng, row, "kill", signal=str(int(sig)))
    if reply is None or reply[0] != 6:
        _runtime_kill(eng, row.id, sig)
    if row.status == Status.PAUSED and sig == signal.SIGKILL:
        _runtime_resume(eng, row.id)
    return row


def _runtime_kill(eng: Engine, cid: str, sig: int) -> None:
    with contextlib.suppress(PortiqueError):
        lifecycle.open_runtime(eng.paths(cid)).kill(cid, sig, all=sig == signal.SIGKILL)


def _runtime_resume(eng: Engine, cid: str) -> None:
    with contextlib.suppress(PortiqueError):
        lifecycle.open_runtime(eng.paths(cid)).resume(cid)


def pause(eng: Engine, ref: str) -> db.ContainerRow:
    conn = eng.db
    row = get(eng, ref)
    st.next_status(row.status, Event.PAUSED, row.name, row.id)
    lifecycle.open_runtime(eng.paths(row.id)).pause(row.id)
    with db.transaction(conn):
        db.transition(conn, row.id, Event.PAUSED)
    events.container(eng, row, "pause")
    return row


def unpause(eng: Engine, ref: str) -> db.ContainerRow:
    conn = eng.db
    row = get(eng, ref)
    st.next_status(row.status, Event.UNPAUSED, row.name, row.id)
    lifecycle.open_runtime(eng.paths(row.id)).resume(row.id)
    with db.transaction(conn):
        db.transition(conn, row.id, Event.UNPAUSED)
    events.container(eng, row, "unpause")
    return row


def restart(eng: Engine, ref: str, timeout: int | None = None) -> db.ContainerRow:
    row = stop(eng, ref, timeout)
    row = start(eng, row.id)
    events.container(eng, row, "restart")
    return row


def recorded_exit(eng: Engine, row: db.ContainerRow) -> int | None:
    """The exit code the engine recorded for `row` (refreshed first), None if it
    has not exited."""
    cur = refresh(eng, db.get_container(eng.db, row.id) or row)
    return cur.exit_code if cur.status == Status.EXITED else None


def wait(eng: Engine, ref: str) -> int:
    row = get(eng, ref)
    if st.has_monitor(row.status):
        with contextlib.suppress(client.MonitorGone):
            code = client.wait_exit(eng.paths(row.id))
            if code is not None:
                return code
        _wait_not_running(eng, row.id, 10.0)
    cur = db.get_container(eng.db, row.id)
    return (cur or row).exit_code


def rename(eng: Engine, ref: str, new: str) -> None:
    from portique.engine import options as opt

    conn = eng.db
    new = opt.parse_name(new)
    with db.transaction(conn):
        row = db.resolve_container(conn, ref)
        if row.name == new:
            raise InvalidArgument("renaming a container with the same name as its current name")
        db.rename_container(conn, row.id, new)
    renamed = db.get_container(conn, row.id)
    if renamed is not None:
        events.container(eng, renamed, "rename", oldName=f"/{row.name}")


def remove(eng: Engine, ref: str, *, force: bool = False, volumes: bool = False) -> str:
    eng.recover()
    conn = eng.db
    row = get(eng, ref)
    if st.has_monitor(row.status):
        if not force:
            st.next_status(row.status, Event.REMOVE, row.name, row.id)  # refused, as Docker
        with db.transaction(conn):
            db.update_state(conn, row.id, stop_requested=True)
        paths = eng.paths(row.id)
        if st.has_process(row.status):
            events.container(eng, row, "kill", signal=str(int(signal.SIGKILL)))
        if row.status == Status.PAUSED:
            _runtime_kill(eng, row.id, signal.SIGKILL)
            _runtime_resume(eng, row.id)
        try:
            # A stop request with no grace: SIGKILL now, and a monitor waiting
            # to restart the container gives up instead.
            client.wait_exit(paths, f"stop {int(signal.SIGKILL)} 0", timeout=30)
        except (client.MonitorGone, OSError):
            _runtime_kill(eng, row.id, signal.SIGKILL)
        _wait_not_running(eng, row.id, 30.0)
        row = get(eng, row.id)
        if st.has_monitor(row.status):
            raise PortiqueError(f"could not stop container {row.name} for removal")
    remove_stopped(eng, row.id, volumes=volumes)
    return row.id


def remove_stopped(eng: Engine, cid: str, *, volumes: bool = False) -> None:
    """Delete a stopped container: DB row, files, and (with `volumes`) its anonymous volumes.

    The row, its image_users row and a journal entry naming what remains to
    clean change in one transaction; the clean-up after it is `finish_removal`,
    which the recovery redoes if this process dies before it is done.
    """
    conn = eng.db
    found = db.get_container(conn, cid)
    if found is not None:
        refresh(eng, found)  # a row whose monitor died is exited, and so removable
    with db.transaction(conn):
        row = db.get_container(conn, cid)
        if row is None:
            return
        st.next_status(row.status, Event.REMOVE, row.name, row.id)
        anon = [v.name for v in db.container_volumes(conn, cid) if v.anonymous] if volumes else []
        host = dict(row.config["HostConfig"])
        db.delete_container(conn, cid)
        op = journal.Operation.begin_in(conn, "remove", cid, [removal(cid, host, anon)])
    faults.point("rm.row-deleted")
    if finish_removal(eng, cid, host, anon):
        op.end()
    events.container(eng, row, "destroy")


def removal(cid: str, host: Mapping[str, Any], anon: list[str]) -> journal.Resource:
    """The journal's record of a removal whose row is gone."""
    return {"type": "container-remove", "id": cid, "host": dict(host), "volumes": list(anon)}


ORPHAN_AGE = 60.0  # `create` makes the directory just before its DB row


def sweep_orphans(eng: Engine) -> list[str]:
    """Directories under containers/ with no DB row: a `--rm` whose monitor died
    after dropping the row but before its clean-up. Unmount, delete, forget."""
    base = eng.containers_dir
    known = set(db.iter_ids(eng.db))
    swept: list[str] = []
    try:
        entries = list(os.scandir(base))
    except FileNotFoundError:
        return swept
    for entry in entries:
        if entry.name in known or len(entry.name) != 64 or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if time.time() - entry.stat(follow_symlinks=False).st_mtime < ORPHAN_AGE:
                continue
            paths = eng.paths(entry.name)
            with contextlib.suppress(Exception):
                lifecycle.cleanup_dead(eng, paths, {"NetworkMode": "bridge"})
            if lifecycle.remove_files(paths):
                swept.append(entry.name)
        except FileNotFoundError:
            # A `--rm` container's monitor removed it while we looked: not ours.
            continue
    return swept


def prune(eng: Engine) -> list[str]:
    eng.recover()
    sweep_orphans(eng)
    removed = []
    for row in list_all(eng):
        if st.can_remove(row.status):
            with contextlib.suppress(PortiqueError):
                remove_stopped(eng, row.id)
                removed.append(row.id)
    return removed


def container_size(eng: Engine, cid: str) -> int:
    return vols.volume_size(str(eng.paths(cid).dir / "upper"))


def signal_of(value: str) -> int:
    from portique.engine import options as opt

    return opt.parse_signal(value, "-s, --signal")


def os_exists(path: str) -> bool:
    return os.path.exists(path)


def _rmtree(path: object) -> None:
    """shutil.rmtree, imported only on the failure path (it loads bz2 and lzma)."""
    import shutil

    shutil.rmtree(str(path), ignore_errors=True)
