"""Container status, the one table of legal transitions, and state.json on disk.

Rule: every legal (status, operation) pair lives in TRANSITIONS and nowhere
else; `can_*` predicates are computed from it. The stored status is never
trusted alone: `derive_status` recomputes it from facts (is the init still
the process we started, is the cgroup frozen, is the exec fifo still there).
"""

from __future__ import annotations

import os

from portique import jsonc
from portique.errors import InvalidState, PortiqueError
from portique.fileio import atomic_write
from portique.linux.proc import read_all
from portique.oci.value import field, value
from portique.pathtext import pure_text

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from collections.abc import Mapping
    from enum import StrEnum
    from typing import Any, Final

    from _typeshed import StrPath
else:
    # enum.StrEnum's behaviour without importing enum (oci/strenum.py).
    from portique.oci.strenum import StrEnum

OCI_VERSION: Final = "1.2.0"
STATE_FILE: Final = "state.json"
EXEC_FIFO: Final = "exec.fifo"


class Status(StrEnum):
    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class Op(StrEnum):
    CREATED = "finish creating"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    KILL = "kill"
    EXEC = "exec"
    DELETE = "delete"
    EXIT = "exit"  # the init died (observed, not requested)


# (status, operation) -> status after it. An operation that leaves the status
# unchanged (kill, exec) maps to the same status; delete maps to STOPPED (the
# state is then removed).
TRANSITIONS: Final[Mapping[tuple[Status, Op], Status]] = {
    (Status.CREATING, Op.CREATED): Status.CREATED,
    (Status.CREATING, Op.EXIT): Status.STOPPED,
    (Status.CREATED, Op.START): Status.RUNNING,
    (Status.CREATED, Op.KILL): Status.CREATED,
    (Status.CREATED, Op.EXEC): Status.CREATED,
    (Status.CREATED, Op.DELETE): Status.STOPPED,
    (Status.CREATED, Op.EXIT): Status.STOPPED,
    (Status.RUNNING, Op.PAUSE): Status.PAUSED,
    (Status.RUNNING, Op.KILL): Status.RUNNING,
    (Status.RUNNING, Op.EXEC): Status.RUNNING,
    (Status.RUNNING, Op.EXIT): Status.STOPPED,
    (Status.PAUSED, Op.RESUME): Status.RUNNING,
    (Status.PAUSED, Op.KILL): Status.PAUSED,
    (Status.PAUSED, Op.EXIT): Status.STOPPED,
    (Status.STOPPED, Op.DELETE): Status.STOPPED,
}


def next_status(current: Status, op: Op, container_id: str = "") -> Status:
    try:
        return TRANSITIONS[current, op]
    except KeyError:
        text = refusal(current, op)
        raise InvalidState(f"container {container_id}: {text}" if container_id else text) from None


# NOT_RUNNING is runc's wording: containerd's shim takes a failed kill
# for "already stopped" only when its error says "container not running"
# (or "no such process", "process already finished"); podman and dockerd
# match runc's texts too. The other refusals use runc's words as well.
NOT_RUNNING: Final = "container not running"


def refusal(current: Status, op: Op) -> str:
    """Why `op` is refused in status `current`, as runc words it."""
    if op in (Op.KILL, Op.PAUSE):
        return NOT_RUNNING
    if op is Op.RESUME:
        return "container not paused"
    if op is Op.START:
        if current is Status.STOPPED:
            return "cannot start a container that has stopped"
        if current is Status.RUNNING:
            return "cannot start an already running container"
        return f"cannot start a container in the {current} state"
    if op is Op.EXEC:
        return f"cannot exec in a {current} container"
    if op is Op.DELETE:
        return f"cannot delete a container that is not stopped: {current}"
    return f"cannot {op} a {current} container"


def can(current: Status, op: Op) -> bool:
    return (current, op) in TRANSITIONS


def can_start(current: Status) -> bool:
    return can(current, Op.START)


def can_kill(current: Status) -> bool:
    return can(current, Op.KILL)


def can_delete(current: Status) -> bool:
    return can(current, Op.DELETE)


def can_pause(current: Status) -> bool:
    return can(current, Op.PAUSE)


def can_resume(current: Status) -> bool:
    return can(current, Op.RESUME)


def can_exec(current: Status) -> bool:
    return can(current, Op.EXEC)


@value
class State:
    """What `state` reports, plus what later operations need (private fields)."""

    id: str
    status: Status
    pid: int
    # Text (as str(Path(...)) would read), not Paths: pathlib costs
    # portique-runtime an import of ~4 ms.
    bundle: str
    rootfs: str
    created: str
    annotations: dict[str, str] = field(default_factory=dict)
    owner: str = ""
    start_time: int = 0  # /proc/<pid>/stat field 22 of the init, to detect pid reuse
    cgroups_path: str | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the spec as created
    no_new_keyring: bool = False  # create --no-new-keyring: exec keeps the caller's too

    def to_runc_json(self) -> dict[str, object]:
        """The document `runc state` prints."""
        return {
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": self.pid if self.status is not Status.STOPPED else 0,
            "status": str(self.status),
            "bundle": str(self.bundle),
            "rootfs": str(self.rootfs),
            "created": self.created,
            "owner": self.owner,
            **({"annotations": self.annotations} if self.annotations else {}),
        }

    def to_oci_json(self) -> dict[str, object]:
        """The OCI state a hook reads on stdin."""
        return {
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "status": str(self.status),
            "pid": self.pid,
            "bundle": str(self.bundle),
            "annotations": self.annotations,
        }

    def to_disk(self) -> dict[str, object]:
        return {
            "id": self.id,
            "status": str(self.status),
            "pid": self.pid,
            "start_time": self.start_time,
            "bundle": str(self.bundle),
            "rootfs": str(self.rootfs),
            "created": self.created,
            "annotations": self.annotations,
            "owner": self.owner,
            "cgroups_path": self.cgroups_path,
            "config": self.config,
            **({"no_new_keyring": True} if self.no_new_keyring else {}),
        }

    @classmethod
    def from_disk(cls, obj: dict[str, Any]) -> State:
        return cls(
            id=str(obj["id"]),
            status=Status(obj["status"]),
            pid=int(obj["pid"]),
            bundle=pure_text(obj["bundle"]),
            rootfs=pure_text(obj["rootfs"]),
            created=str(obj["created"]),
            annotations=dict(obj.get("annotations") or {}),
            owner=str(obj.get("owner", "")),
            start_time=int(obj.get("start_time", 0)),
            cgroups_path=obj.get("cgroups_path"),
            config=dict(obj.get("config") or {}),
            no_new_keyring=obj.get("no_new_keyring") is True,
        )


def write_state(state_dir: StrPath, state: State) -> None:
    """Replace state.json atomically: temp file + rename, without fsync.

    Runtime state is gone at reboot by design (it lives in /run), so it only
    needs to be atomic against a crashed process, which rename gives; an
    fsync would cost milliseconds per start where /run is not a tmpfs.
    """
    data = jsonc.dumps(state.to_disk(), separators=(",", ":")).encode()
    atomic_write(os.path.join(state_dir, STATE_FILE), data, 0o600, fsync=False)


def read_state(state_dir: StrPath) -> State:
    try:
        return State.from_disk(jsonc.loads(read_all(os.path.join(state_dir, STATE_FILE))))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        name = os.path.basename(os.fspath(state_dir))
        raise PortiqueError(f"container {name}: unreadable state: {e}") from None


def derive_status(
    stored: Status,
    *,
    init_alive: bool,
    fifo_exists: bool,
    frozen: bool,
) -> Status:
    """The status the facts say, whatever state.json claims (runc refreshState)."""
    if not init_alive:
        return Status.STOPPED
    if stored is Status.CREATING:
        return Status.CREATING
    if frozen:
        return Status.PAUSED
    if fifo_exists:
        return Status.CREATED
    return Status.RUNNING


def remove_state_dir(path: StrPath) -> None:
    """Remove a container's state directory: flat (state.json, exec.fifo,
    temp files), so no shutil (and its compression imports) on the start path."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(path, name))
        except IsADirectoryError:
            import shutil

            shutil.rmtree(os.path.join(path, name), ignore_errors=True)
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def fifo_path(state_dir: StrPath) -> str:
    return os.path.join(state_dir, EXEC_FIFO)


def exists_fifo(state_dir: StrPath) -> bool:
    return os.path.lexists(fifo_path(state_dir))
