"""The engine's container state machine (engine/state.py) and the monitor's SQL
(engine/dblite.py) held to it and to the schema (engine/db.py)."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from portique.engine import db, dblite
from portique.engine import state as st
from portique.engine.state import Event, Status
from portique.errors import Conflict, InvalidState

S, E = Status, Event

# The specification, written out per status as Docker behaves (not read from
# the module): the events legal in each status and where they lead.
EXPECTED: dict[Status, dict[Event, Status]] = {
    S.CREATED: {E.STARTED: S.RUNNING, E.START_FAILED: S.CREATED, E.REMOVE: S.REMOVING},
    S.RUNNING: {
        E.PAUSED: S.PAUSED,
        E.EXITED: S.EXITED,
        E.RESTART_PENDING: S.RESTARTING,
        E.MONITOR_LOST: S.EXITED,
        E.KILL: S.RUNNING,
        E.STOP: S.RUNNING,
        E.EXEC: S.RUNNING,
        E.ATTACH: S.RUNNING,
    },
    S.PAUSED: {
        E.UNPAUSED: S.RUNNING,
        E.EXITED: S.EXITED,
        E.RESTART_PENDING: S.RESTARTING,
        E.MONITOR_LOST: S.EXITED,
        E.KILL: S.PAUSED,
        E.STOP: S.PAUSED,
        E.ATTACH: S.PAUSED,
    },
    S.RESTARTING: {
        E.STARTED: S.RUNNING,
        E.START_FAILED: S.EXITED,
        E.RESTART_CANCELLED: S.EXITED,
        E.MONITOR_LOST: S.EXITED,
        E.STOP: S.RESTARTING,
    },
    S.EXITED: {E.STARTED: S.RUNNING, E.START_FAILED: S.EXITED, E.REMOVE: S.REMOVING},
    S.REMOVING: {},
    S.DEAD: {},
}

PAIRS = list(itertools.product(Status, Event))


@pytest.mark.parametrize(("status", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_every_transition_is_legal_or_refused_as_specified(status: Status, event: Event) -> None:
    expected = EXPECTED[status].get(event)
    if expected is not None:
        assert st.can(status, event)
        assert st.next_status(status, event) is expected
    else:
        assert not st.can(status, event)
        with pytest.raises(InvalidState):
            st.next_status(status, event, "web", "a" * 64)


def test_the_table_holds_nothing_more_than_the_specification() -> None:
    spec = {(s, e): to for s, events in EXPECTED.items() for e, to in events.items()}
    assert dict(st.TRANSITIONS) == spec


def test_a_status_given_as_a_word_is_read_as_the_enum() -> None:
    assert st.next_status("paused", E.UNPAUSED) is S.RUNNING
    with pytest.raises(ValueError, match="sleeping"):
        st.next_status("sleeping", E.STARTED)


def test_no_event_enters_dead_and_removing_leads_nowhere() -> None:
    assert S.DEAD not in st.TRANSITIONS.values()
    assert not any(s in (S.REMOVING, S.DEAD) for s, _ in st.TRANSITIONS)
    assert st.INITIAL is S.CREATED


@pytest.mark.parametrize(
    ("status", "event", "message"),
    [
        (S.PAUSED, E.STARTED, "cannot start a paused container web, try unpause instead"),
        (S.EXITED, E.KILL, "cannot kill container: web: container aaaaaaaaaaaa is not running"),
        (S.PAUSED, E.PAUSED, "container aaaaaaaaaaaa is already paused"),
        (S.EXITED, E.PAUSED, "container aaaaaaaaaaaa is not running"),
        (S.RUNNING, E.UNPAUSED, "container aaaaaaaaaaaa is not paused"),
        (S.PAUSED, E.EXEC, "container aaaaaaaaaaaa is paused, unpause the container before exec"),
        (S.CREATED, E.EXEC, "container aaaaaaaaaaaa is not running"),
        (S.EXITED, E.ATTACH, "you cannot attach to a stopped container, start it first"),
    ],
)
def test_refusals_use_dockers_words(status: Status, event: Event, message: str) -> None:
    with pytest.raises(InvalidState) as exc:
        st.next_status(status, event, "web", "a" * 64)
    assert exc.value.message == message


def test_removing_a_live_container_is_a_conflict_with_a_hint() -> None:
    with pytest.raises(Conflict) as exc:
        st.next_status(S.RUNNING, E.REMOVE, "web", "a" * 64)
    assert str(exc.value) == (
        'cannot remove container "/web": container is running'
        " (stop the container before removing or force remove)"
    )


# -- one test per predicate ------------------------------------------------------


def _holds(predicate: object) -> set[Status]:
    assert callable(predicate)
    return {s for s in Status if predicate(s)}


def test_can_start() -> None:
    assert _holds(st.can_start) == {S.CREATED, S.EXITED}


def test_has_monitor() -> None:
    assert _holds(st.has_monitor) == {S.RUNNING, S.PAUSED, S.RESTARTING}


def test_has_process() -> None:
    assert _holds(st.has_process) == {S.RUNNING, S.PAUSED}


def test_can_pause() -> None:
    assert _holds(st.can_pause) == {S.RUNNING}


def test_can_unpause() -> None:
    assert _holds(st.can_unpause) == {S.PAUSED}


def test_can_exec() -> None:
    assert _holds(st.can_exec) == {S.RUNNING}


def test_can_attach() -> None:
    assert _holds(st.can_attach) == {S.RUNNING, S.PAUSED}


def test_can_remove() -> None:
    assert _holds(st.can_remove) == {S.CREATED, S.EXITED}


def test_start_needed() -> None:
    assert st.start_needed(S.CREATED)
    assert st.start_needed(S.EXITED)
    assert not st.start_needed(S.RUNNING)  # Docker's "not modified"
    assert not st.start_needed(S.RESTARTING)
    with pytest.raises(InvalidState, match="try unpause instead"):
        st.start_needed(S.PAUSED, "web")
    with pytest.raises(InvalidState):
        st.start_needed(S.DEAD)


def test_sources_and_target() -> None:
    assert st.sources(E.EXITED) == (S.RUNNING, S.PAUSED)
    assert st.target(E.EXITED) is S.EXITED
    with pytest.raises(ValueError, match="not to one status"):
        st.target(E.START_FAILED)  # created stays created, the others exit


# -- the monitor's fast path, held to the table and to the schema ----------------------


def test_dblite_exit_is_the_tables_exit() -> None:
    assert tuple(str(s) for s in st.sources(E.EXITED)) == dblite.EXIT_FROM
    assert str(st.target(E.EXITED)) == dblite.EXIT_TO


def test_dblite_statements_compile_against_the_migrated_schema(tmp_path: Path) -> None:
    from portique.image.metadata import ImageDB

    ImageDB(tmp_path).close()  # image_users belongs to the image component
    conn = db.open_db(tmp_path)
    assert len(db.MIGRATIONS) == dblite.SCHEMA_VERSION
    for stmt in dblite.STATEMENTS:
        conn.execute(f"EXPLAIN {stmt}", (None,) * stmt.count("?"))
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        conn.execute("EXPLAIN UPDATE containers SET stat = 1")  # the check can fail


def _container(conn: sqlite3.Connection, cid: str) -> None:
    db.insert_container(
        conn,
        db.ContainerRow(
            id=cid,
            name=cid[:4],
            image="b",
            image_id="sha256:" + "0" * 64,
            created=1.0,
            config={"Config": {}, "HostConfig": {}},
        ),
    )


def test_dblite_records_an_exit_only_where_the_table_allows_it(tmp_path: Path) -> None:
    conn = db.open_db(tmp_path)
    lite = dblite.connect(str(tmp_path))
    created, paused = "c" * 64, "p" * 64
    _container(conn, created)
    _container(conn, paused)
    db.transition(conn, paused, E.STARTED)
    db.transition(conn, paused, E.PAUSED)
    assert not dblite.record_exit(lite, created, 1, False)
    assert db.get_container(conn, created).status is S.CREATED  # type: ignore[union-attr]
    assert dblite.record_exit(lite, paused, 137, False)
    assert db.get_container(conn, paused).status is S.EXITED  # type: ignore[union-attr]
    assert not dblite.record_exit(lite, paused, 137, False)  # exited already
