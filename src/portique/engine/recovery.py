"""Finish or undo what dead operations left behind, then repair stale rows.

The engine operations that make or delete state call `Engine.recover()` first
(build, pull, load, create, start, rm, rmi, the prunes); `system prune` calls
it with `prune=True`. It

1. takes over the journal entries (portique/journal.py) whose owner is gone,
   and for each undoes what it names, newest resource first: a build step's
   runtime container (its processes, cgroups and state), its overlay mount and
   work dir; a create's container dir; a start's runtime state, mount and
   network endpoints; a removal's clean-up (finished, not undone). An entry
   whose undo fails stays for a later try;
2. drops image_users rows whose container is gone;
3. with `images` (the image commands): removes the ingest and unpack files of
   dead processes (flock tells: each is locked while in use), and with
   `prune` also the abandoned partial downloads and orphan volume dirs.

Cheap when there is nothing to do: one read of the journal and one of
image_users.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portique import journal
from portique.engine import db
from portique.errors import NotFound, PortiqueError

if TYPE_CHECKING:
    from portique.engine.engine import Engine

# A runtime state dir without state.json is a create interrupted between its
# mkdir and its first state write (milliseconds apart): past this age, garbage.
HALF_CREATED_AGE = 30.0


def recover(
    eng: Engine, *, images: bool = False, prune: bool = False, warn: bool = False
) -> list[journal.Entry]:
    """See the module docstring; returns the entries recovered. `images`: also
    sweep the image store's dead ingest and unpack files. `warn`: say on stderr
    what could not be undone yet (else it is tried again next time)."""
    conn = eng.db
    recovered = []
    for entry in journal.claim(conn):
        problems = _recover_entry(eng, entry)
        if problems:
            if warn:
                sys.stderr.write(
                    f"portique: could not yet undo an interrupted {entry.kind}"
                    f" ({'; '.join(problems)}): will retry\n"
                )
            continue
        journal.forget(conn, entry.id)
        recovered.append(entry)
    db.drop_stale_image_users(conn)
    if prune:
        from portique.engine.volumes import sweep_orphan_dirs

        sweep_orphan_dirs(eng)
    if images or prune:
        eng.images.sweep_abandoned(keep_partials=not prune)
    return recovered


def _recover_entry(eng: Engine, entry: journal.Entry) -> list[str]:
    problems = []
    for res in reversed(entry.resources):
        kind = str(res.get("type", ""))
        handler = _HANDLERS.get(kind)
        if handler is None:  # written by a newer portique: kept for it
            problems.append(f"unknown resource {kind!r}")
            continue
        try:
            if not handler(eng, res):
                problems.append(f"{kind} {res.get('id') or res.get('path') or res.get('dir')}")
        except (OSError, PortiqueError, sqlite3.Error) as exc:
            problems.append(f"{kind}: {exc}")
    return problems


# ---- resources (see portique/journal.py for their shapes) -------------------------


def _tree(eng: Engine, res: Mapping[str, Any]) -> bool:
    from portique.image.snapshots import remove_tree

    path = Path(str(res["path"]))
    if _mounts_under(path):
        return False  # never delete through a mount: the overlay's undo comes first
    remove_tree(path)
    return True


def _overlay(eng: Engine, res: Mapping[str, Any]) -> bool:
    from portique.image.snapshots import unmount_overlay

    unmount_overlay(Path(str(res["dir"])))
    return True


def _runtime(eng: Engine, res: Mapping[str, Any]) -> bool:
    """Runtime containers made from bundle `res["bundle"]`: kill, delete (cgroups, state)."""
    from portique.runtime import Runtime
    from portique.runtime.container import SECCOMP_CACHE

    state_root = Path(str(res["root"]))
    bundle = os.path.abspath(str(res["bundle"]))
    rt = Runtime(state_root)
    try:
        names = os.listdir(state_root)
    except FileNotFoundError:
        return True
    for name in names:
        if name == SECCOMP_CACHE:
            continue
        if not (state_root / name / "state.json").exists():
            _half_created(state_root, name, HALF_CREATED_AGE)
            continue
        try:
            st = rt.state(name)
        except PortiqueError:
            continue
        if os.path.abspath(st.bundle) == bundle:
            rt.delete(name, force=True)
    return True


def _half_created(state_root: Path, name: str, min_age: float) -> None:
    """A state dir with no state.json (older than `min_age`): its create died before
    the first state write; its cgroup (the default path) may exist, empty, as
    nothing was forked yet."""
    import shutil

    from portique.runtime.cgroups import open_manager

    d = state_root / name
    try:
        if (d / "state.json").exists() or time.time() - d.stat().st_mtime < min_age:
            return
        open_manager(None, name).destroy()
    except (FileNotFoundError, NotFound):
        pass
    except PortiqueError:
        return  # not a name the runtime accepts: not one of ours
    shutil.rmtree(d, ignore_errors=True)


def _ingest(eng: Engine, res: Mapping[str, Any]) -> bool:
    eng.images.store.sweep_digest(str(res["digest"]))
    return True


def _staging(eng: Engine, res: Mapping[str, Any]) -> bool:
    eng.images.snapshots.sweep_abandoned(str(res["key"]))
    return True


def _blob(eng: Engine, res: Mapping[str, Any]) -> bool:
    """A blob a dead build made: deleted unless an image (image_blobs), a build cache
    row (it will be reused) or a live operation names it. The image and build
    components own those tables; this reads them across, as the journal's user."""
    conn = eng.db
    digest = str(res["digest"])
    if {"type": "blob", "digest": digest} in journal.live_resources(conn, others=True):
        return True
    for query in (
        "SELECT 1 FROM image_blobs WHERE digest = ? LIMIT 1",
        "SELECT 1 FROM build_cache WHERE instr(layers, ?) > 0 LIMIT 1",
    ):
        try:
            if conn.execute(query, (digest,)).fetchone() is not None:
                return True
        except sqlite3.OperationalError:  # that component never ran in this root
            continue
    eng.images.store.delete(digest)
    return True


def _container_create(eng: Engine, res: Mapping[str, Any]) -> bool:
    from portique.engine import lifecycle
    from portique.engine.volumes import sweep_orphan_dirs

    cid = str(res["id"])
    if db.get_container(eng.db, cid) is not None:
        return True  # committed after all (the entry goes in the same transaction)
    sweep_orphan_dirs(eng)  # volume dirs its rolled-back transaction made
    return bool(lifecycle.remove_files(eng.paths(cid)))


def _container_start(eng: Engine, res: Mapping[str, Any]) -> bool:
    """A monitor died while starting: undo its runtime state, mount and endpoints,
    unless the container runs again under a live monitor (a later start)."""
    import fcntl

    from portique.engine import lifecycle

    paths = eng.paths(str(res["id"]))
    try:
        lock = os.open(paths.dir / ".start.lock", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        lock = -1  # removed meanwhile: clean what may be left all the same
    try:
        if lock >= 0:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a start in progress finishes first
        row = db.get_container(eng.db, paths.id)
        if row is not None and lifecycle.is_alive(row.monitor_pid, row.id, row.started_at):
            return True
        host = res.get("host")
        lifecycle.cleanup_dead(eng, paths, dict(host) if isinstance(host, dict) else None)
        # A create killed before its first state write leaves a dir the runtime
        # cannot delete (and a later create of this id would collide with).
        _half_created(paths.runtime_root, paths.id, 0.0)
    finally:
        if lock >= 0:
            os.close(lock)
    return True


def _container_remove(eng: Engine, res: Mapping[str, Any]) -> bool:
    from portique.engine import containers

    host = res.get("host")
    vols = res.get("volumes")
    return containers.finish_removal(
        eng,
        str(res["id"]),
        host if isinstance(host, dict) else None,
        [str(v) for v in vols] if isinstance(vols, list) else [],
    )


_Handler = Callable[["Engine", Mapping[str, Any]], bool]
_HANDLERS: dict[str, _Handler] = {
    "tree": _tree,
    "overlay": _overlay,
    "runtime": _runtime,
    "ingest": _ingest,
    "staging": _staging,
    "blob": _blob,
    "container-create": _container_create,
    "container-start": _container_start,
    "container-remove": _container_remove,
}


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == str(path) or point.startswith(prefix):
                out.append(point)
    return out


def wait_removed(eng: Engine, cid: str, timeout: float = 30.0) -> None:
    """Wait until the removal of `cid` (its row, then its journal entry) is done: a
    `run --rm` returns only then. A removal whose owner died is finished here.

    The owner (the monitor, or an `rm -f`) forgets the entry and exits: we wake
    when it exits (a pidfd), not at the next tick of a poll."""
    conn = eng.db
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if db.get_container(conn, cid) is not None:
            return  # not removed (its monitor died first): nothing to wait for
        owners = journal.subject_owners(conn, cid)
        if owners is None:
            return
        if not owners:
            recover(eng)
            continue
        _wait_exit(owners[0], min(left, OWNER_RECHECK))


# A live owner is looked at again this often: it may forget the entry and go
# on living (an `rm -f` removing several containers), or its pid be reused.
OWNER_RECHECK = 0.05


def _wait_exit(pid: int, timeout: float) -> None:
    """Until `pid` exits, at most `timeout` seconds."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return  # gone already
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


__all__ = ["recover", "wait_removed"]
