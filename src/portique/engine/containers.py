"""The container operations behind the CLI verbs (and the API server later).

create() takes Docker's API shapes (Config + HostConfig) so `portique serve`
can pass a POST /containers/create body straight through. State lives in the
DB (engine/db.py); a running container's facts come from its monitor.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from portique import faults, journal
from portique.engine import client, db, lifecycle
from portique.engine.paths import ContainerPaths
from portique.errors import Conflict, InvalidArgument, InvalidState, NotFound, PortiqueError

if TYPE_CHECKING:
    from portique.engine.options import MountSpec

# config, options and names load inside the functions that need them: most
# verbs (exec, logs, ps, rm, ...) never do, and they cost the CLI ~15 ms.

RUNNING = ("running", "paused", "restarting")
DEFAULT_STOP_TIMEOUT = 10


def open_db() -> sqlite3.Connection:
    return db.open_db(ContainerPaths.of("x").root)


# -------------------------------------------------------------------- create


def resolve_image(ref: str, pull: str, progress: Callable[[Any], None] | None = None) -> Any:
    from portique.engine.bundle import open_images

    if pull not in ("missing", "always", "never"):
        raise InvalidArgument(
            f'invalid pull option: "{pull}": must be one of "always", "missing" or "never"'
        )
    imgs = open_images()
    try:
        if pull != "always" and imgs.exists(ref):
            return imgs.resolve(ref)
        if pull == "never":
            raise NotFound(f"no such image: {ref}")
        if pull == "missing":
            import sys

            sys.stderr.write(f"Unable to find image '{ref}' locally\n")
        from portique.image.pull import pull as do_pull

        return do_pull(imgs, ref, progress=progress)
    finally:
        imgs.close()


def _image_config(image: Any) -> dict[str, Any]:
    conf = image.config if isinstance(image.config, dict) else {}
    inner = conf.get("config")
    return dict(inner) if isinstance(inner, dict) else {}


def create(
    conn: sqlite3.Connection,
    image_ref: str,
    config: Mapping[str, Any],
    host: Mapping[str, Any],
    *,
    name: str = "",
    mounts: list[MountSpec] | None = None,
    pull: str = "missing",
    progress: Callable[[Any], None] | None = None,
    networking: Mapping[str, Any] | None = None,
) -> db.ContainerRow:
    """A new container in state "created" (nothing mounted, nothing running).

    `networking`: Docker's NetworkingConfig ({"EndpointsConfig": {network: {"Aliases",
    "IPAMConfig": {"IPv4Address"}}}}): aliases, addresses and further networks.

    `mounts` are the parsed -v/--mount/--tmpfs specs (HostConfig keeps their
    Docker spelling for inspect); None derives them from HostConfig's Binds,
    Mounts and Tmpfs (the API's way). Nothing is left behind on any error.
    """
    from portique.engine import config as cfg
    from portique.engine import options as opt
    from portique.engine.names import random_name

    if mounts is None:
        mounts = opt.mounts_from_host_config(host)
    name = opt.parse_name(name) if name else ""
    opt.check_container_strings(config, host, networking)
    if name and db.name_taken(conn, name):
        raise Conflict(
            f'the container name "/{name}" is already in use',
            hint="remove or rename that container to reuse the name",
        )
    image = resolve_image(image_ref, pull, progress)
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
    cid = os.urandom(32).hex()
    if not merged.get("Hostname"):
        # Docker records the hostname the container will get: its short id,
        # or the host's name with --network host.
        import socket

        host_net = host.get("NetworkMode") == "host"
        merged["Hostname"] = socket.gethostname() if host_net else cid[:12]
    paths = ContainerPaths.of(cid)
    # The journal entry comes first and goes in the transaction that inserts the
    # row: a crash in between leaves an entry whose recovery removes the directory.
    op = journal.Operation.begin(conn, "create", cid, [{"type": "container-create", "id": cid}])
    with ExitStack() as stack:
        stack.callback(op.end)
        paths.dir.mkdir(parents=True, mode=0o710)
        stack.callback(shutil.rmtree, paths.dir, True)
        made_volumes: list[str] = []
        stack.callback(_remove_volume_dirs, made_volumes)
        faults.point("create.dir-made")
        for attempt in range(16):
            cname = name or random_name(attempt)
            try:
                with db.transaction(conn):
                    from portique.engine import volumes

                    before = {v.name for v in db.list_volumes(conn)}
                    points, used = volumes.plan_mounts(
                        conn, mounts or [], (merged.get("Volumes") or {}).keys()
                    )
                    made_volumes[:] = [v for v in used if v not in before]
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
                        status="created",
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
    return row


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


def _remove_volume_dirs(names: list[str]) -> None:
    from portique.engine.paths import volumes_dir
    from portique.engine.volumes import remove_tree

    for n in names:
        remove_tree(volumes_dir() / n)


# ------------------------------------------------------------------- queries


def get(conn: sqlite3.Connection, ref: str) -> db.ContainerRow:
    return refresh(conn, db.resolve_container(conn, ref))


def refresh(conn: sqlite3.Connection, row: db.ContainerRow) -> db.ContainerRow:
    """Trust the DB only while the monitor lives: a dead monitor means a dead container."""
    if row.status not in RUNNING:
        return row
    if lifecycle.is_alive(row.monitor_pid, row.id, row.started_at):
        return row
    paths = ContainerPaths.of(row.id)
    with contextlib.suppress(Exception):
        lifecycle.cleanup_dead(paths, dict(row.config["HostConfig"]))
    with db.transaction(conn):
        cur = db.get_container(conn, row.id)
        if cur is None or cur.status not in RUNNING or cur.monitor_pid != row.monitor_pid:
            return cur or row
        if lifecycle.is_alive(cur.monitor_pid, cur.id, cur.started_at):
            return cur
        db.update_state(
            conn,
            row.id,
            status="exited",
            exit_code=cur.exit_code or 255,
            error=cur.error or "the container's monitor died",
            pid=0,
            monitor_pid=0,
            finished_at=cur.finished_at or time.time(),
        )
    got = db.get_container(conn, row.id)
    return got or row


def list_all(conn: sqlite3.Connection) -> list[db.ContainerRow]:
    return [refresh(conn, r) for r in db.list_containers(conn)]


# ----------------------------------------------------------------- lifecycle


def start(conn: sqlite3.Connection, ref: str, *, hold: bool = False) -> db.ContainerRow:
    import fcntl

    row = get(conn, ref)
    paths = ContainerPaths.of(row.id)
    # One start at a time per container: a second `start` waits here, then
    # finds it running. flock dies with its holders, so a crash leaves no lock.
    try:
        lock = os.open(paths.dir / ".start.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        raise NotFound(f"no such container: {ref}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        row = get(conn, row.id)
        if row.status in ("running", "restarting"):
            return row
        if row.status == "paused":
            raise InvalidState(f"cannot start a paused container {row.name}, try unpause instead")
        if row.status == "removing":
            raise InvalidState(f"container {row.name} is marked for removal and cannot be started")
        # The previous run's monitor may still be cleaning up (runtime state,
        # rootfs mount) after recording the exit: let it finish first.
        wait_monitor_gone(row)
        with db.transaction(conn):
            db.update_state(conn, row.id, stop_requested=False)
        lifecycle.start(row.id, hold=hold)
    finally:
        os.close(lock)
    return db.get_container(conn, row.id) or row


def stop(
    conn: sqlite3.Connection, ref: str, timeout: int | None = None, sig: int | None = None
) -> db.ContainerRow:
    row = get(conn, ref)
    if row.status not in RUNNING:
        return row
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
    paths = ContainerPaths.of(row.id)
    if row.status == "paused":
        # A frozen process cannot act on SIGTERM: SIGKILL, then thaw so it dies.
        sig, timeout = signal.SIGKILL, 0
        _runtime_kill(paths, row.id, sig)
        _runtime_resume(paths, row.id)
    try:
        client.wait_exit(paths, f"stop {int(sig)} {int(timeout)}", timeout=None)
    except client.MonitorGone:
        pass
    _wait_not_running(conn, row.id, 30.0)
    cur = get(conn, row.id)
    wait_monitor_gone(cur)
    return cur


def wait_monitor_gone(row: db.ContainerRow, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while lifecycle.is_alive(row.monitor_pid, row.id, row.started_at):
        if time.monotonic() > deadline:
            raise PortiqueError(f"the monitor of container {row.id[:12]} does not finish")
        time.sleep(0.01)


def _wait_not_running(conn: sqlite3.Connection, cid: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        cur = db.get_container(conn, cid)
        if cur is None or cur.status not in RUNNING:
            return
        cur = refresh(conn, cur)
        if cur.status not in RUNNING:
            return
        time.sleep(0.02)


def kill(conn: sqlite3.Connection, ref: str, sig: int = signal.SIGKILL) -> db.ContainerRow:
    row = get(conn, ref)
    if row.status not in ("running", "paused"):
        raise InvalidState(
            f"cannot kill container: {row.name}: container {row.id[:12]} is not running"
        )
    paths = ContainerPaths.of(row.id)
    if sig == signal.SIGKILL:
        # Docker counts a SIGKILL from the user as a manual stop: the restart
        # policy stays quiet.
        with db.transaction(conn):
            db.update_state(conn, row.id, stop_requested=True)
    try:
        reply = client.request(paths, f"kill {int(sig)}")
    except client.MonitorGone:
        reply = None
    if reply is None or reply[0] != 6:
        _runtime_kill(paths, row.id, sig)
    if row.status == "paused" and sig == signal.SIGKILL:
        _runtime_resume(paths, row.id)
    return row


def _runtime_kill(paths: ContainerPaths, cid: str, sig: int) -> None:
    rt = lifecycle.open_runtime(paths)
    try:
        rt.kill(cid, sig, all=sig == signal.SIGKILL)
    except PortiqueError:
        pass


def _runtime_resume(paths: ContainerPaths, cid: str) -> None:
    rt = lifecycle.open_runtime(paths)
    with contextlib.suppress(PortiqueError):
        rt.resume(cid)


def pause(conn: sqlite3.Connection, ref: str) -> db.ContainerRow:
    row = get(conn, ref)
    if row.status == "paused":
        raise InvalidState(f"container {row.id[:12]} is already paused")
    if row.status != "running":
        raise InvalidState(f"container {row.id[:12]} is not running")
    lifecycle.open_runtime(ContainerPaths.of(row.id)).pause(row.id)
    with db.transaction(conn):
        db.update_state(conn, row.id, status="paused")
    return row


def unpause(conn: sqlite3.Connection, ref: str) -> db.ContainerRow:
    row = get(conn, ref)
    if row.status != "paused":
        raise InvalidState(f"container {row.id[:12]} is not paused")
    lifecycle.open_runtime(ContainerPaths.of(row.id)).resume(row.id)
    with db.transaction(conn):
        db.update_state(conn, row.id, status="running")
    return row


def restart(conn: sqlite3.Connection, ref: str, timeout: int | None = None) -> db.ContainerRow:
    row = stop(conn, ref, timeout)
    return start(conn, row.id)


def wait(conn: sqlite3.Connection, ref: str) -> int:
    row = get(conn, ref)
    if row.status in RUNNING:
        with contextlib.suppress(client.MonitorGone):
            code = client.wait_exit(ContainerPaths.of(row.id))
            if code is not None:
                return code
        _wait_not_running(conn, row.id, 10.0)
    cur = db.get_container(conn, row.id)
    return (cur or row).exit_code


def rename(conn: sqlite3.Connection, ref: str, new: str) -> None:
    from portique.engine import options as opt

    new = opt.parse_name(new)
    with db.transaction(conn):
        row = db.resolve_container(conn, ref)
        if row.name == new:
            raise InvalidArgument("renaming a container with the same name as its current name")
        db.rename_container(conn, row.id, new)


def remove(
    conn: sqlite3.Connection, ref: str, *, force: bool = False, volumes: bool = False
) -> str:
    row = get(conn, ref)
    if row.status in RUNNING:
        if not force:
            raise Conflict(
                f'cannot remove container "/{row.name}": container is {row.status}',
                hint="stop the container before removing or force remove",
            )
        with db.transaction(conn):
            db.update_state(conn, row.id, stop_requested=True)
        paths = ContainerPaths.of(row.id)
        if row.status == "paused":
            _runtime_kill(paths, row.id, signal.SIGKILL)
            _runtime_resume(paths, row.id)
        try:
            # A stop request with no grace: SIGKILL now, and a monitor waiting
            # to restart the container gives up instead.
            client.wait_exit(paths, f"stop {int(signal.SIGKILL)} 0", timeout=30)
        except (client.MonitorGone, OSError):
            _runtime_kill(paths, row.id, signal.SIGKILL)
        _wait_not_running(conn, row.id, 30.0)
        row = get(conn, row.id)
        if row.status in RUNNING:
            raise PortiqueError(f"could not stop container {row.name} for removal")
    remove_stopped(conn, row.id, volumes=volumes)
    return row.id


def remove_stopped(conn: sqlite3.Connection, cid: str, *, volumes: bool = False) -> None:
    """Delete a stopped container: DB row, files, and (with `volumes`) its anonymous volumes.

    The row, its image_users row and a journal entry naming what remains to
    clean change in one transaction; the clean-up after it is `finish_removal`,
    which the recovery redoes if this process dies before it is done.
    """
    with db.transaction(conn):
        row = db.get_container(conn, cid)
        if row is None:
            return
        if row.status in RUNNING and lifecycle.is_alive(row.monitor_pid, cid, row.started_at):
            raise Conflict(f"container {row.name} is running")
        anon = [v.name for v in db.container_volumes(conn, cid) if v.anonymous] if volumes else []
        host = dict(row.config["HostConfig"])
        db.delete_container(conn, cid)
        op = journal.Operation.begin_in(conn, "remove", cid, [removal(cid, host, anon)])
    faults.point("rm.row-deleted")
    if finish_removal(conn, cid, host, anon):
        op.end()


def removal(cid: str, host: Mapping[str, Any], anon: list[str]) -> journal.Resource:
    """The journal's record of a removal whose row is gone."""
    return {"type": "container-remove", "id": cid, "host": dict(host), "volumes": list(anon)}


def finish_removal(
    conn: sqlite3.Connection | None, cid: str, host: Mapping[str, Any] | None, anon: list[str]
) -> bool:
    """What a removal does once the row is gone: runtime state and cgroups, network
    endpoints, rootfs mount, files, then the anonymous volumes `anon`. Idempotent;
    False when something must wait (a rootfs that would not unmount)."""
    paths = ContainerPaths.of(cid)
    with contextlib.suppress(Exception):
        lifecycle.cleanup_dead(paths, dict(host) if host is not None else None)
    faults.point("rm.cleaned")
    if not lifecycle.remove_files(paths):
        return False
    faults.point("rm.files-removed")
    if anon:
        from portique.engine.volumes import remove_volume

        own = conn is None
        if conn is None:
            conn = db.open_db(paths.root)
        try:
            for name in anon:
                with contextlib.suppress(PortiqueError):
                    remove_volume(conn, name, force=True)
        finally:
            if own:
                conn.close()
    return True


ORPHAN_AGE = 60.0  # `create` makes the directory just before its DB row


def sweep_orphans(conn: sqlite3.Connection) -> list[str]:
    """Directories under containers/ with no DB row: a `--rm` whose monitor died
    after dropping the row but before its clean-up. Unmount, delete, forget."""
    base = ContainerPaths.of("x").root / "containers"
    known = set(db.iter_ids(conn))
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
            paths = ContainerPaths.of(entry.name)
            with contextlib.suppress(Exception):
                lifecycle.cleanup_dead(paths, {"NetworkMode": "bridge"})
            if lifecycle.remove_files(paths):
                swept.append(entry.name)
        except FileNotFoundError:
            # A `--rm` container's monitor removed it while we looked: not ours.
            continue
    return swept


def prune(conn: sqlite3.Connection) -> list[str]:
    sweep_orphans(conn)
    removed = []
    for row in list_all(conn):
        if row.status in ("exited", "created", "dead"):
            with contextlib.suppress(PortiqueError):
                remove_stopped(conn, row.id)
                removed.append(row.id)
    return removed


def container_size(cid: str) -> int:
    from portique.engine.volumes import volume_size

    return volume_size(str(ContainerPaths.of(cid).dir / "upper"))


def signal_of(value: str) -> int:
    from portique.engine import options as opt

    return opt.parse_signal(value, "-s, --signal")


def os_exists(path: str) -> bool:
    return os.path.exists(path)
