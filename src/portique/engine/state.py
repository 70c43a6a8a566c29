"""A container's status in the engine, and the one table of its legal changes.

Rule: every legal (status, event) pair lives in TRANSITIONS and nowhere
else; the predicates below are computed from it, and every write of a
container's status goes through `next_status` (engine/db.py `transition`,
and the monitor's fast path, engine/dblite.py, whose SQL is generated from
this table). The runtime has its own, smaller machine (runtime/state.py);
this one is Docker's, as `docker ps` and the API show it.

    created ──start──> running ──pause──> paused ──unpause──> running
       │                 │ exit / monitor lost      │ exit / monitor lost
       │                 └──restart pending──> restarting ──start──> running
       │                                           └──cancel / monitor lost──> exited
       └──remove──> removing (the row is deleted in the same transaction)
    exited ──start──> running;  exited ──remove──> removing

Events without a change of status (kill, exec, attach, stop) are in the
table too: they say which statuses a request is legal in. `dead` is
Docker's status for a container whose removal failed; portique finishes a
removal from its journal instead (engine/recovery.py), so no event enters
it, but the API and `ps --filter status=` accept the word.

The monitor records an exit without importing this module (enum alone costs
it ~5 ms on the path a foreground `run` waits on): engine/dblite.py holds
that one statement's statuses as constants, which a unit test derives from
this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from portique.errors import InvalidState


class Status(StrEnum):
    """Docker's words for a container's state (`State.Status`)."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    EXITED = "exited"
    REMOVING = "removing"
    DEAD = "dead"


class Event(StrEnum):
    # Facts the engine records.
    STARTED = "start"  # the monitor has the container's process running
    START_FAILED = "start failed"  # the monitor could not start it
    PAUSED = "pause"
    UNPAUSED = "unpause"
    EXITED = "exit"  # its process exited, no restart follows
    RESTART_PENDING = "restart"  # its process exited, the restart policy runs it again
    RESTART_CANCELLED = "cancel restart"  # a stop came while a restart was pending
    MONITOR_LOST = "lose its monitor"  # the monitor died: nothing owns the container
    REMOVE = "remove"
    # Requests that change no status: where they are legal.
    KILL = "kill"
    STOP = "stop"
    EXEC = "exec"
    ATTACH = "attach"


S, E = Status, Event

# (status, event) -> status after it.
TRANSITIONS: Final[Mapping[tuple[Status, Event], Status]] = {
    (S.CREATED, E.STARTED): S.RUNNING,
    (S.CREATED, E.START_FAILED): S.CREATED,  # Docker shows the error in State.Error
    (S.CREATED, E.REMOVE): S.REMOVING,
    (S.RUNNING, E.PAUSED): S.PAUSED,
    (S.RUNNING, E.EXITED): S.EXITED,
    (S.RUNNING, E.RESTART_PENDING): S.RESTARTING,
    (S.RUNNING, E.MONITOR_LOST): S.EXITED,
    (S.RUNNING, E.KILL): S.RUNNING,
    (S.RUNNING, E.STOP): S.RUNNING,
    (S.RUNNING, E.EXEC): S.RUNNING,
    (S.RUNNING, E.ATTACH): S.RUNNING,
    (S.PAUSED, E.UNPAUSED): S.RUNNING,
    (S.PAUSED, E.EXITED): S.EXITED,  # killed while frozen
    (S.PAUSED, E.RESTART_PENDING): S.RESTARTING,
    (S.PAUSED, E.MONITOR_LOST): S.EXITED,
    (S.PAUSED, E.KILL): S.PAUSED,
    (S.PAUSED, E.STOP): S.PAUSED,
    (S.PAUSED, E.ATTACH): S.PAUSED,
    (S.RESTARTING, E.STARTED): S.RUNNING,
    (S.RESTARTING, E.START_FAILED): S.EXITED,
    (S.RESTARTING, E.RESTART_CANCELLED): S.EXITED,
    (S.RESTARTING, E.MONITOR_LOST): S.EXITED,
    (S.RESTARTING, E.STOP): S.RESTARTING,
    (S.EXITED, E.STARTED): S.RUNNING,
    (S.EXITED, E.START_FAILED): S.EXITED,
    (S.EXITED, E.REMOVE): S.REMOVING,
}

INITIAL: Final = S.CREATED  # what `create` inserts


def can(current: Status | str, event: Event) -> bool:
    return (Status(current), event) in TRANSITIONS


def next_status(current: Status | str, event: Event, name: str = "", cid: str = "") -> Status:
    """The status after `event`, or InvalidState worded as Docker words it
    (`name` and `cid` name the container in the message)."""
    status = Status(current)
    try:
        return TRANSITIONS[status, event]
    except KeyError:
        message, hint = refusal(status, event, name, cid[:12])
        raise InvalidState(message, hint=hint) from None


def refusal(current: Status, event: Event, name: str, short_id: str) -> tuple[str, str | None]:
    """Why `event` is refused in status `current`: (message, hint)."""
    if event is E.STARTED and current is S.PAUSED:
        return f"cannot start a paused container {name}, try unpause instead", None
    if event is E.KILL:
        return f"cannot kill container: {name}: container {short_id} is not running", None
    if event is E.PAUSED:
        if current is S.PAUSED:
            return f"container {short_id} is already paused", None
        return f"container {short_id} is not running", None
    if event is E.UNPAUSED:
        return f"container {short_id} is not paused", None
    if event is E.EXEC and current is S.PAUSED:
        return f"container {short_id} is paused, unpause the container before exec", None
    if event is E.ATTACH:
        return "you cannot attach to a stopped container, start it first", None
    if event is E.REMOVE:
        return (
            f'cannot remove container "/{name}": container is {current}',
            "stop the container before removing or force remove",
        )
    if event in (E.EXEC, E.STOP):
        return f"container {short_id} is not running", None
    return f"cannot {event} container {name or short_id}: it is {current}", None


def sources(event: Event) -> tuple[Status, ...]:
    """The statuses `event` is legal in, in the enum's order."""
    return tuple(s for s in Status if (s, event) in TRANSITIONS)


def target(event: Event) -> Status:
    """The one status `event` leads to (for SQL that writes it in one statement)."""
    found = {TRANSITIONS[s, event] for s in sources(event)}
    if len(found) != 1:
        raise ValueError(f"event {event} leads to {sorted(found)}, not to one status")
    return found.pop()


# -- predicates, all from the table --------------------------------------------


def can_start(current: Status | str) -> bool:
    """A user's start has work to do: created or exited."""
    return can(current, E.STARTED) and not has_monitor(current)


def start_needed(current: Status | str, name: str = "", cid: str = "") -> bool:
    """A user's start: True when it has work to do (created, exited), False when
    the container is already up (running, restarting: Docker's "not modified"),
    InvalidState when it is refused (paused: unpause it instead)."""
    if can_start(current):
        return True
    if has_monitor(current) and not can_unpause(current):
        return False
    next_status(current, E.STARTED, name, cid)  # legal only where can_start said so
    return True


def has_monitor(current: Status | str) -> bool:
    """A monitor owns the container (running, paused, restarting): `ps` lists it
    without -a, `rm` needs -f, `stop` and `wait` have something to wait for."""
    return can(current, E.STOP)


def has_process(current: Status | str) -> bool:
    """Its process exists (running or paused): it can be signalled, attached to,
    looked into (top, stats, cp through /proc), and its ports are published."""
    return can(current, E.KILL)


def can_pause(current: Status | str) -> bool:
    return can(current, E.PAUSED)


def can_unpause(current: Status | str) -> bool:
    return can(current, E.UNPAUSED)


def can_exec(current: Status | str) -> bool:
    return can(current, E.EXEC)


def can_attach(current: Status | str) -> bool:
    return can(current, E.ATTACH)


def can_remove(current: Status | str) -> bool:
    """Removable without force (created or exited)."""
    return can(current, E.REMOVE)


__all__ = [
    "INITIAL",
    "TRANSITIONS",
    "Event",
    "Status",
    "can",
    "can_attach",
    "can_exec",
    "can_pause",
    "can_remove",
    "can_start",
    "can_unpause",
    "has_monitor",
    "has_process",
    "next_status",
    "refusal",
    "sources",
    "start_needed",
    "target",
]
